package iotapi_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/zenne-city/zenne/internal/apitest"
	"github.com/zenne-city/zenne/internal/app"
	"github.com/zenne-city/zenne/internal/mqtttest"
)

func publish(t *testing.T, broker, user, password string, msgs map[string]string, qos byte) {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(broker).SetClientID("zenne-test-" + t.Name()).SetUsername(user).SetPassword(password)
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect to %s: %v", broker, tok.Error())
	}
	defer c.Disconnect(100)
	for topic, payload := range msgs {
		if tok := c.Publish(topic, qos, false, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
}

// waitValue polls an attribute until it has the value.
func waitValue(t *testing.T, s *apitest.Server, id, attr string, want any, h map[string]string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	var got any
	for time.Now().Before(deadline) {
		if r := s.Get("/ngsi-ld/v1/entities/"+id+"?options=keyValues", h); r.Status == http.StatusOK {
			got = r.JSON(t).(map[string]any)[attr]
			if got == want {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s %s = %v, want %v", id, attr, got, want)
}

// Devices publish to the embedded broker: with their key (QoS 1) and, for
// a device without one, anonymously (QoS 0); a publication for another
// device is not taken.
func TestEmbeddedMQTT(t *testing.T) {
	s := apitest.StartWith(t, t.TempDir(), func(c *app.Config) {
		c.MQTTListen, c.MQTTAnonymous, c.MQTTTopic = "127.0.0.1:0", true, "bxl/{apikey}/{device}/up"
	})
	provision(t, s, nil)
	s.Post("/iot/devices", `{"devices": [{"device_id": "bin-0002", "apikey": "bins-k3y"}]}`, nil).Expect(t, http.StatusCreated)
	broker := "tcp://" + s.App.MQTTAddr()

	publish(t, broker, "bin-0001", "s3cret-device-key", map[string]string{"/bins-k3y/bin-0001/attrs": `{"f": 55}`}, 1)
	waitValue(t, s, "urn:ngsi-ld:WasteContainer:bxl-0001", "fillingLevel", 0.55, nil)
	publish(t, broker, "", "", map[string]string{"/json/bins-k3y/bin-0002/attrs": `{"f": 12}`}, 0)
	waitValue(t, s, "urn:ngsi-ld:WasteContainer:bin-0002", "fillingLevel", 0.12, nil)
	publish(t, broker, "", "", map[string]string{"bxl/bins-k3y/bin-0002/up": `{"f": 13}`}, 1)
	waitValue(t, s, "urn:ngsi-ld:WasteContainer:bin-0002", "fillingLevel", 0.13, nil)

	// Anonymous for the device with a key, and bin-0002 for bin-0001:
	// refused, nothing changes.
	publish(t, broker, "", "", map[string]string{"/bins-k3y/bin-0001/attrs": `{"f": 99}`}, 1)
	publish(t, broker, "bin-0002", "", map[string]string{"/bins-k3y/bin-0001/attrs": `{"f": 98}`}, 1)
	time.Sleep(200 * time.Millisecond)
	waitValue(t, s, "urn:ngsi-ld:WasteContainer:bxl-0001", "fillingLevel", 0.55, nil)
	// A wrong password does not connect.
	o := paho.NewClientOptions().AddBroker(broker).SetClientID("zenne-test-wrong").SetUsername("bin-0001").SetPassword("wrong-key")
	c := paho.NewClient(o)
	if tok := c.Connect(); tok.WaitTimeout(5*time.Second) && tok.Error() == nil {
		c.Disconnect(0)
		t.Fatal("connected with a wrong device key")
	}
}

// zenne subscribes to an external broker (the machine's Mosquitto) and
// takes the device messages published there.
func TestExternalMQTTBroker(t *testing.T) {
	broker := "tcp://" + mqtttest.Broker(t)
	s := apitest.StartWith(t, t.TempDir(), func(c *app.Config) { c.MQTTBroker = broker })
	// An API key of its own, so other tests on the shared broker do not
	// interfere.
	key := "ext-" + strings.ReplaceAll(time.Now().Format("150405.000000"), ".", "")
	s.Post("/iot/services", `{"services": [{"apikey": "`+key+`", "entity_type": "NoiseLevelObserved",
		"attributes": [{"object_id": "db", "name": "LAeq", "unitCode": "2N"}]}]}`, nil).Expect(t, http.StatusCreated)
	s.Post("/iot/devices", `{"devices": [{"device_id": "noise-01", "apikey": "`+key+`"}]}`, nil).Expect(t, http.StatusCreated)
	publish(t, broker, "", "", map[string]string{"/" + key + "/noise-01/attrs": `{"db": 61.5}`}, 1)
	waitValue(t, s, "urn:ngsi-ld:NoiseLevelObserved:noise-01", "LAeq", 61.5, nil)
}

package simulate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/zenne-city/zenne/internal/mqtttest"
)

// subscriber collects what the broker delivers on a topic filter.
type subscriber struct {
	mu   sync.Mutex
	msgs map[string][]map[string]any // topic -> payloads
	bad  []string
}

func subscribe(t *testing.T, addr, filter string) *subscriber {
	t.Helper()
	s := &subscriber{msgs: map[string][]map[string]any{}}
	o := mqtt.NewClientOptions().AddBroker("tcp://" + addr).
		SetClientID(fmt.Sprintf("zenne-sim-test-%d", time.Now().UnixNano())).
		SetAutoReconnect(false).SetOrderMatters(false)
	c := mqtt.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber: connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	tok := c.Subscribe(filter, 1, func(_ mqtt.Client, m mqtt.Message) {
		var v map[string]any
		err := json.Unmarshal(m.Payload(), &v)
		s.mu.Lock()
		defer s.mu.Unlock()
		if err != nil {
			s.bad = append(s.bad, fmt.Sprintf("%s: %s: %v", m.Topic(), m.Payload(), err))
			return
		}
		s.msgs[m.Topic()] = append(s.msgs[m.Topic()], v)
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", filter, tok.Error())
	}
	return s
}

func (s *subscriber) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, ms := range s.msgs {
		n += len(ms)
	}
	return n
}

func TestMQTTPublisher(t *testing.T) {
	addr := mqtttest.Broker(t)
	for _, qos := range []byte{0, 1} {
		t.Run(fmt.Sprintf("QoS %d", qos), func(t *testing.T) {
			// A topic of the test's own, so that other runs on the shared
			// broker do not count.
			prefix := fmt.Sprintf("zenne-sim-test-%d-%d", time.Now().UnixNano(), qos)
			sub := subscribe(t, addr, prefix+"/#")
			f, err := GeneratedFleet(FleetOptions{Seed: 11, Devices: 250, SilentFraction: -1, Transport: "MQTT"})
			if err != nil {
				t.Fatal(err)
			}
			s, err := DialMQTT(context.Background(), f, MQTTOptions{URL: "mqtt://" + addr, QoS: qos, Topic: prefix + DefaultTopic})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if s.Connections() != 3 {
				t.Errorf("%d connections for 250 devices, want one per 100", s.Connections())
			}
			sum, err := Run(context.Background(), Config{Fleet: f, Rate: 1000, Duration: time.Second}, s)
			if err != nil {
				t.Fatal(err)
			}
			if sum.Errors != 0 || sum.Sent < 500 {
				t.Fatalf("sent %d, errors %v %v", sum.Sent, sum.ErrorKinds, sum.ErrorSamples)
			}
			deadline := time.Now().Add(5 * time.Second)
			for sub.count() < int(sum.Sent) && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			// QoS 1 delivers at least once; QoS 0 may drop a few.
			if got := sub.count(); qos == 1 && (got < int(sum.Sent) || got > int(sum.Sent)+5) || got < int(sum.Sent)*95/100 {
				t.Errorf("published %d, received %d", sum.Sent, got)
			}
			sub.mu.Lock()
			defer sub.mu.Unlock()
			for _, b := range sub.bad {
				t.Error(b)
			}
			byTopic := make(map[string]*Device)
			for _, d := range f.Members() {
				byTopic[prefix+"/"+d.APIKey+"/"+d.ID+"/attrs"] = d
			}
			for topic, ms := range sub.msgs {
				d := byTopic[topic]
				if d == nil {
					t.Errorf("unexpected topic %s", topic)
					continue
				}
				for _, a := range d.Kind.Attributes() {
					if _, ok := ms[0][a.ObjectID]; !ok {
						t.Errorf("%s: %v lacks %s", topic, ms[0], a.ObjectID)
					}
				}
			}
			if len(sub.msgs) != 250 {
				t.Errorf("%d devices published, want 250", len(sub.msgs))
			}
		})
	}
}

func TestMQTTOneConnectionPerDevice(t *testing.T) {
	addr := mqtttest.Broker(t)
	f := generated(t, 12)
	s, err := DialMQTT(context.Background(), f, MQTTOptions{URL: "tcp://" + addr, DevicesPerConn: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Connections() != 12 || s.Workers() != 12 {
		t.Errorf("%d connections, %d workers", s.Connections(), s.Workers())
	}
	if err := s.Send(context.Background(), f.Members()[5], []byte(`{"f":1}`)); err != nil {
		t.Error(err)
	}
}

func TestMQTTConnectErrors(t *testing.T) {
	f := generated(t, 3)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = DialMQTT(context.Background(), f, MQTTOptions{URL: "mqtt://" + addr, ConnectTimeout: time.Second})
	var se *SendError
	if !errors.As(err, &se) || se.Kind != "connection refused" || !strings.Contains(err.Error(), "cannot connect to mqtt://"+addr) {
		t.Errorf("nothing listening: %v", err)
	}
	for _, bad := range []string{"http://localhost:1883", "localhost:1883", "mqtt://"} {
		if _, err := DialMQTT(context.Background(), f, MQTTOptions{URL: bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

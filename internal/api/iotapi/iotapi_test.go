package iotapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/apitest"
)

const binsGroup = `{"services": [{
	"apikey": "bins-k3y",
	"entity_type": "WasteContainer",
	"attributes": [
		{"object_id": "f", "name": "fillingLevel", "type": "Property", "unitCode": "P1", "scale": 0.01},
		{"object_id": "t", "name": "temperature", "unitCode": "CEL"},
		{"object_id": "gps", "name": "location", "type": "GeoProperty"}
	],
	"static_attributes": [{"name": "owner", "value": "Bruxelles-Propreté"}],
	"timestamp_field": "ts"
}]}`

const binDevice = `{"devices": [{
	"device_id": "bin-0001",
	"apikey": "bins-k3y",
	"entity_name": "urn:ngsi-ld:WasteContainer:bxl-0001",
	"key": "s3cret-device-key",
	"static_attributes": [{"name": "location", "type": "GeoProperty", "value": {"type": "Point", "coordinates": [4.3517, 50.8466]}}]
}]}`

func provision(t *testing.T, s *apitest.Server, h map[string]string) {
	t.Helper()
	s.Post("/iot/services", binsGroup, h).Expect(t, http.StatusCreated)
	s.Post("/iot/devices", binDevice, h).Expect(t, http.StatusCreated)
}

var deviceKey = map[string]string{"X-Device-Key": "s3cret-device-key"}

// keyValues returns an entity in keyValues form.
func keyValues(t *testing.T, s *apitest.Server, id string, h map[string]string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(s.Get("/ngsi-ld/v1/entities/"+id+"?options=keyValues", h).Expect(t, http.StatusOK).Body, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// An HTTP uplink becomes attribute updates with observedAt from the
// payload, unit codes, scaling and the static attributes; the Device entity
// says what it feeds.
func TestHTTPUplink(t *testing.T) {
	s := apitest.Start(t)
	provision(t, s, nil)
	s.Post("/iot/json?k=bins-k3y&i=bin-0001", `{"f": 42, "t": 18.5, "ts": "2026-11-22T10:15:00Z"}`, deviceKey).Expect(t, http.StatusOK)

	var e map[string]any
	if err := json.Unmarshal(s.Get("/ngsi-ld/v1/entities/urn:ngsi-ld:WasteContainer:bxl-0001", nil).Expect(t, http.StatusOK).Body, &e); err != nil {
		t.Fatal(err)
	}
	fl, _ := e["fillingLevel"].(map[string]any)
	if fl["value"] != 0.42 || fl["unitCode"] != "P1" || fl["observedAt"] != "2026-11-22T10:15:00.000Z" {
		t.Errorf("fillingLevel = %v, want 0.42 P1 observed at 10:15", fl)
	}
	if tp, _ := e["temperature"].(map[string]any); tp["value"] != 18.5 || tp["unitCode"] != "CEL" {
		t.Errorf("temperature = %v", tp)
	}
	if ow, _ := e["owner"].(map[string]any); ow["value"] != "Bruxelles-Propreté" {
		t.Errorf("owner (static) = %v", e["owner"])
	}
	if loc, _ := e["location"].(map[string]any); loc["type"] != "GeoProperty" {
		t.Errorf("location (static) = %v", e["location"])
	}
	// Static attributes are written once, not with every reading: the
	// second reading leaves owner's history at one instance.
	s.Post("/iot/json?k=bins-k3y&i=bin-0001", `{"f": 43}`, deviceKey).Expect(t, http.StatusOK)
	var h map[string]any
	if err := json.Unmarshal(s.Get("/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:WasteContainer:bxl-0001?attrs=owner,fillingLevel&options=temporalValues", nil).Expect(t, http.StatusOK).Body, &h); err != nil {
		t.Fatal(err)
	}
	for attr, want := range map[string]int{"owner": 1, "fillingLevel": 2} {
		a, _ := h[attr].(map[string]any)
		if values, _ := a["values"].([]any); len(values) != want {
			t.Errorf("history of %s holds %d instances, want %d: %v", attr, len(values), want, h[attr])
		}
	}
	dev := keyValues(t, s, "urn:ngsi-ld:Device:bin-0001", nil)
	if dev["controlledAsset"] != "urn:ngsi-ld:WasteContainer:bxl-0001" {
		t.Errorf("Device entity = %v", dev)
	}
	// The device as the API shows it: no key, but the fact it has one.
	body := string(s.Get("/iot/devices/bin-0001", nil).Expect(t, http.StatusOK).Body)
	if strings.Contains(body, "s3cret") || strings.Contains(body, "key_hash") || !strings.Contains(body, `"has_key":true`) {
		t.Errorf("GET /iot/devices/bin-0001 = %s", body)
	}
}

// A datalogger uploading a day of readings at once: every reading is in
// history with its own time, and the newest is the current value.
func TestMultiReadingUplink(t *testing.T) {
	s := apitest.Start(t)
	provision(t, s, nil)
	day := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
	var readings []string
	for i := range 96 {
		readings = append(readings, fmt.Sprintf(`{"f": %d, "ts": %q}`, i%100, day.Add(time.Duration(i)*15*time.Minute).Format(time.RFC3339)))
	}
	s.Post("/iot/json?k=bins-k3y&i=bin-0001", "["+strings.Join(readings, ",")+"]", deviceKey).Expect(t, http.StatusOK)

	if kv := keyValues(t, s, "urn:ngsi-ld:WasteContainer:bxl-0001", nil); kv["fillingLevel"] != 0.95 {
		t.Errorf("current fillingLevel = %v, want 0.95 (the newest reading)", kv["fillingLevel"])
	}
	var h map[string]any
	if err := json.Unmarshal(s.Get("/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:WasteContainer:bxl-0001?attrs=fillingLevel&options=temporalValues&timerel=between&timeAt=2026-11-21T00:00:00Z&endTimeAt=2026-11-22T00:00:00Z", nil).Expect(t, http.StatusOK).Body, &h); err != nil {
		t.Fatal(err)
	}
	fl, _ := h["fillingLevel"].(map[string]any)
	values, _ := fl["values"].([]any)
	if len(values) != 96 {
		t.Fatalf("history holds %d readings of the day, want 96: %v", len(values), h)
	}
}

// A The Things Stack v3 webhook uplink: device, fields and time from the
// message.
func TestLoRaWANWebhook(t *testing.T) {
	s := apitest.Start(t)
	s.Post("/iot/services", `{"services": [{"apikey": "ttn-k3y", "entity_type": "WaterMeter",
		"attributes": [{"object_id": "litres", "name": "waterConsumption", "unitCode": "LTR"}]}]}`, nil).Expect(t, http.StatusCreated)
	s.Post("/iot/devices", `{"devices": [{"device_id": "wm-0001", "apikey": "ttn-k3y"}]}`, nil).Expect(t, http.StatusCreated)
	msg := `{"end_device_ids": {"device_id": "wm-0001", "application_ids": {"application_id": "bxl-water"}},
		"received_at": "2026-11-22T03:00:01.5Z",
		"uplink_message": {"f_port": 1, "decoded_payload": {"litres": 12.5}, "received_at": "2026-11-22T03:00:01Z"}}`
	s.Post("/iot/ttn", msg, map[string]string{"X-Api-Key": "ttn-k3y"}).Expect(t, http.StatusOK)
	var e map[string]any
	if err := json.Unmarshal(s.Get("/ngsi-ld/v1/entities/urn:ngsi-ld:WaterMeter:wm-0001", nil).Expect(t, http.StatusOK).Body, &e); err != nil {
		t.Fatal(err)
	}
	wc, _ := e["waterConsumption"].(map[string]any)
	if wc["value"] != 12.5 || wc["unitCode"] != "LTR" || wc["observedAt"] != "2026-11-22T03:00:01.000Z" {
		t.Errorf("waterConsumption = %v", wc)
	}
}

// Bad uplinks are refused with a precise status and reason, kept in the
// device's dead letters, and change nothing.
func TestBadUplinks(t *testing.T) {
	s := apitest.Start(t)
	provision(t, s, nil)
	s.Post("/iot/json?k=bins-k3y&i=bin-0001", `{"f": 10}`, deviceKey).Expect(t, http.StatusOK)
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	for _, c := range []struct {
		name, path, body string
		header           map[string]string
		status           int
		reason           string
	}{
		{"unknown apikey", "/iot/json?k=nope&i=bin-0001", `{"f": 1}`, deviceKey, 401, "unknown apikey"},
		{"no apikey", "/iot/json?i=bin-0001", `{"f": 1}`, deviceKey, 401, "no apikey"},
		{"unknown device", "/iot/json?k=bins-k3y&i=bin-9999", `{"f": 1}`, deviceKey, 404, "unknown device"},
		{"wrong device key", "/iot/json?k=bins-k3y&i=bin-0001", `{"f": 1}`, map[string]string{"X-Device-Key": "wrong-key-123"}, 401, "device key"},
		{"malformed JSON", "/iot/json?k=bins-k3y&i=bin-0001", `{"f": `, deviceKey, 400, "malformed JSON"},
		{"wrong type", "/iot/json?k=bins-k3y&i=bin-0001", `{"f": "full"}`, deviceKey, 422, `field "f"`},
		{"bad geometry", "/iot/json?k=bins-k3y&i=bin-0001", `{"gps": "here"}`, deviceKey, 422, `field "gps"`},
		{"far future", "/iot/json?k=bins-k3y&i=bin-0001", `{"f": 1, "ts": "` + future + `"}`, deviceKey, 422, "future"},
		{"bad timestamp", "/iot/json?k=bins-k3y&i=bin-0001", `{"f": 1, "ts": "yesterday"}`, deviceKey, 400, "RFC 3339"},
		{"empty array", "/iot/json?k=bins-k3y&i=bin-0001", `[]`, deviceKey, 400, "empty array"},
		{"other tenant", "/iot/json?k=bins-k3y&i=bin-0001", `{"f": 1}`, map[string]string{"NGSILD-Tenant": "other", "X-Device-Key": "s3cret-device-key"}, 401, "another tenant"},
		{"bad tenant", "/iot/json?k=bins-k3y&i=bin-0001", `{"f": 1}`, map[string]string{"NGSILD-Tenant": "bad tenant!"}, 400, "tenant"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := s.Post(c.path, c.body, c.header).Expect(t, c.status)
			var p struct{ Type, Title, Detail string }
			if err := json.Unmarshal(r.Body, &p); err != nil || p.Type == "" || p.Title == "" || !strings.Contains(p.Detail, c.reason) {
				t.Errorf("body %s: want ProblemDetails whose detail says %q", r.Body, c.reason)
			}
		})
	}
	if kv := keyValues(t, s, "urn:ngsi-ld:WasteContainer:bxl-0001", nil); kv["fillingLevel"] != 0.1 {
		t.Errorf("fillingLevel = %v after the bad messages, want 0.1 unchanged", kv["fillingLevel"])
	}
	var dl struct {
		Count       int
		Deadletters []struct {
			Status int
			Reason string
		}
	}
	if err := json.Unmarshal(s.Get("/iot/devices/bin-0001/deadletters", nil).Expect(t, http.StatusOK).Body, &dl); err != nil {
		t.Fatal(err)
	}
	// Those that named the device: wrong key, malformed, wrong type, bad
	// geometry, far future, bad timestamp, empty array.
	if dl.Count != 7 {
		t.Errorf("%d dead letters, want 7: %+v", dl.Count, dl.Deadletters)
	}
}

// A device flooding is throttled with 429 and Retry-After; others go on.
func TestDeviceRateLimit(t *testing.T) {
	s := apitest.Start(t)
	provision(t, s, nil)
	s.Post("/iot/devices", `{"devices": [{"device_id": "bin-0002", "apikey": "bins-k3y"}]}`, nil).Expect(t, http.StatusCreated)
	limited := 0
	for range 150 {
		r := s.Post("/iot/json?k=bins-k3y&i=bin-0001", `{"f": 1}`, deviceKey)
		if r.Status == http.StatusTooManyRequests {
			limited++
			if r.Header.Get("Retry-After") == "" {
				t.Fatal("429 without Retry-After")
			}
		}
	}
	if limited == 0 {
		t.Error("150 messages at once were all accepted: no rate limit")
	}
	s.Post("/iot/json?k=bins-k3y&i=bin-0002", `{"f": 1}`, nil).Expect(t, http.StatusOK)
}

// Provisioning mistakes are refused with the reason; nothing is stored.
func TestProvisioningErrors(t *testing.T) {
	s := apitest.Start(t)
	provision(t, s, nil)
	for _, c := range []struct {
		name, path, body string
		status           int
		reason           string
	}{
		{"same apikey", "/iot/services", binsGroup, 409, "exists"},
		{"no entity type", "/iot/services", `{"services": [{"apikey": "x1"}]}`, 400, "entity_type"},
		{"apikey with slash", "/iot/services", `{"services": [{"apikey": "a/b", "entity_type": "T"}]}`, 400, "apikey"},
		{"unknown member", "/iot/services", `{"services": [{"apikey": "x2", "entity_type": "T", "atributes": []}]}`, 400, "atributes"},
		{"bad mapping type", "/iot/services", `{"services": [{"apikey": "x3", "entity_type": "T", "attributes": [{"name": "a", "type": "Number"}]}]}`, 400, "Property"},
		{"same device", "/iot/devices", binDevice, 409, "registered"},
		{"no group", "/iot/devices", `{"devices": [{"device_id": "d1", "apikey": "nope"}]}`, 400, "no service group"},
		{"short key", "/iot/devices", `{"devices": [{"device_id": "d2", "apikey": "bins-k3y", "key": "short"}]}`, 400, "8 characters"},
		{"bad entity name", "/iot/devices", `{"devices": [{"device_id": "d3", "apikey": "bins-k3y", "entity_name": "not a uri"}]}`, 400, "URI"},
		{"empty list", "/iot/devices", `{"devices": []}`, 400, "no device"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := s.Post(c.path, c.body, nil).Expect(t, c.status)
			if !strings.Contains(string(r.Body), c.reason) {
				t.Errorf("body %s: want a detail mentioning %q", r.Body, c.reason)
			}
		})
	}
	var list struct{ Count int }
	json.Unmarshal(s.Get("/iot/devices", nil).Expect(t, http.StatusOK).Body, &list)
	if list.Count != 1 {
		t.Errorf("%d devices registered after the refused requests, want 1", list.Count)
	}
}

// Registrations survive a restart, and a deleted device receives nothing.
func TestRegistryPersistsAndDeletes(t *testing.T) {
	dir := t.TempDir()
	s := apitest.StartIn(t, dir)
	provision(t, s, map[string]string{"NGSILD-Tenant": "water"})
	s.Stop()
	s = apitest.StartIn(t, dir)
	h := map[string]string{"NGSILD-Tenant": "water", "X-Device-Key": "s3cret-device-key"}
	s.Post("/iot/json?k=bins-k3y&i=bin-0001", `{"f": 5}`, h).Expect(t, http.StatusOK)
	// Other tenants do not see it.
	var list struct{ Count int }
	json.Unmarshal(s.Get("/iot/devices", nil).Expect(t, http.StatusOK).Body, &list)
	if list.Count != 0 {
		t.Errorf("the default tenant lists %d devices of tenant water", list.Count)
	}
	s.Delete("/iot/devices/bin-0001", h).Expect(t, http.StatusNoContent)
	s.Get("/ngsi-ld/v1/entities/urn:ngsi-ld:Device:bin-0001", h).Expect(t, http.StatusNotFound)
	s.Post("/iot/json?k=bins-k3y&i=bin-0001", `{"f": 6}`, h).Expect(t, http.StatusNotFound)
	if kv := keyValues(t, s, "urn:ngsi-ld:WasteContainer:bxl-0001", h); kv["fillingLevel"] != 0.05 {
		t.Errorf("fillingLevel = %v, want 0.05: the entity stays, and the deleted device changed nothing", kv["fillingLevel"])
	}
}

package simulate_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/apitest"
	"github.com/zenne-city/zenne/internal/app"
	"github.com/zenne-city/zenne/internal/demo"
	"github.com/zenne-city/zenne/internal/simulate"
)

// The simulator against a real zenne with the demo city loaded: the
// devices register, their uplinks (HTTP and the embedded MQTT broker)
// update the demo's entities, and the probe reads its values back.
func TestAgainstZenne(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts a zenne with the demo city")
	}
	s := apitest.StartWith(t, t.TempDir(), func(c *app.Config) {
		c.MQTTListen = "127.0.0.1:0"
		c.MQTTAnonymous = true // devices share connections
	})
	ctx := context.Background()
	if _, err := s.App.LoadDemo(ctx, nil); err != nil {
		t.Fatal(err)
	}
	// The demo loaded demo.City(1, now): the fleet of the same seed feeds
	// the same entities, wherever the demo put them when it was built.
	fleet, err := simulate.NewFleet(simulate.FleetOptions{Seed: 1, Probes: 1, SilentFraction: -1}, time.Now().Add(11*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	n, err := fleet.LocateFrom(ctx, s.URL, "", s.Client)
	if err != nil || n != len(fleet.Members()) {
		t.Fatalf("located %d of %d devices: %v", n, len(fleet.Members()), err)
	}
	for _, d := range fleet.Members() {
		if d.ID == "logger-bxl-0030" || d.ID == "water-bxl-0040" || d.ID == "bin-bxl-0007" {
			r := s.Get("/ngsi-ld/v1/entities/"+url.PathEscape(d.Entity)+"?attrs=location&options=keyValues", nil).Expect(t, http.StatusOK)
			c := r.JSON(t).(map[string]any)["location"].(map[string]any)["coordinates"].([]any)
			if c[0] != d.Lon || c[1] != d.Lat {
				t.Errorf("%s at %v,%v, its entity at %v", d.ID, d.Lon, d.Lat, c)
			}
		}
	}
	// Provisioning wants a key with the devices right; uplinks do not.
	_, err = fleet.Provision(ctx, s.URL, "", simulate.APIClient("", 10*time.Second))
	var se *simulate.StatusError
	if !errors.As(err, &se) || se.Status != http.StatusUnauthorized {
		t.Fatalf("provision without a key: %v, want 401", err)
	}
	res, err := fleet.Provision(ctx, s.URL, "", simulate.APIClient(s.AdminKey, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if res.Groups != 8 || res.Devices != fleet.Len() {
		t.Fatalf("provision: %+v", res)
	}
	if res, err = fleet.Provision(ctx, s.URL, "", s.Client); err != nil || res.GroupsExisting != 8 || res.DevicesExisting != fleet.Len() {
		t.Fatalf("provision again: %+v, %v", res, err)
	}

	h, err := simulate.NewHTTPSender(simulate.HTTPOptions{URL: s.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	sum, err := simulate.Run(ctx, simulate.Config{Fleet: fleet, Rate: 400, Duration: 1500 * time.Millisecond, Probe: &simulate.ProbeConfig{API: s.URL, Key: s.AdminKey, Every: 50 * time.Millisecond}}, h)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Errors != 0 || sum.Sent < 150 {
		t.Fatalf("HTTP: sent %d, errors %v %v", sum.Sent, sum.ErrorKinds, sum.ErrorSamples)
	}
	if sum.Probe.Count < 5 || sum.Probe.Timeouts+sum.Probe.Failed != 0 {
		t.Errorf("probe %+v", sum.Probe)
	}
	t.Logf("HTTP: %d messages, latency p99 %v; probe p50 %v p99 %v", sum.Sent, sum.Latency.P99, sum.Probe.P50, sum.Probe.P99)

	// The demo's entities got the readings, under the demo's attributes.
	link := map[string]string{"Link": apitest.LinkHeader(demo.SDMContext("WasteManagement"))}
	r := s.Get("/ngsi-ld/v1/entities/"+url.PathEscape("urn:ngsi-ld:WasteContainer:bxl-0001"), link).Expect(t, http.StatusOK)
	e := r.JSON(t).(map[string]any)
	fl, _ := e["fillingLevel"].(map[string]any)
	if fl == nil || fl["unitCode"] != "P1" {
		t.Fatalf("fillingLevel %v", e["fillingLevel"])
	}
	at, err := time.Parse(time.RFC3339, fl["observedAt"].(string))
	if err != nil || time.Since(at) > time.Minute {
		t.Errorf("fillingLevel observed at %v", fl["observedAt"])
	}
	for k := range e {
		if strings.HasPrefix(k, "https://") {
			t.Errorf("attribute %s beside the demo's", k)
		}
	}
	if e["type"] != "WasteContainer" {
		t.Errorf("type %v", e["type"])
	}

	// Over MQTT, through the embedded broker.
	m, err := simulate.DialMQTT(ctx, fleet, simulate.MQTTOptions{URL: "mqtt://" + s.App.MQTTAddr()})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	sum, err = simulate.Run(ctx, simulate.Config{Fleet: fleet, Rate: 400, Duration: time.Second, Probe: &simulate.ProbeConfig{API: s.URL, Key: s.AdminKey, Every: 50 * time.Millisecond}}, m)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Errors != 0 || sum.Sent < 150 || sum.Probe.Count < 5 || sum.Probe.Timeouts+sum.Probe.Failed != 0 {
		t.Fatalf("MQTT: sent %d, errors %v %v, probe %+v", sum.Sent, sum.ErrorKinds, sum.ErrorSamples, sum.Probe)
	}
	t.Logf("MQTT: %d messages; probe p50 %v p99 %v", sum.Sent, sum.Probe.P50, sum.Probe.P99)

	// Straight into the device service, as zenne demo would.
	sum, err = simulate.Run(ctx, simulate.Config{Fleet: fleet, Rate: 400, Duration: 500 * time.Millisecond}, &simulate.ReceiverSender{Receiver: s.App.Devices})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Errors != 0 || sum.Sent < 50 {
		t.Fatalf("Receiver: sent %d, errors %v %v", sum.Sent, sum.ErrorKinds, sum.ErrorSamples)
	}
}

// Registering in the same process and sending straight to the device
// service, as zenne demo can: entities of a generated fleet are created
// with their location and address.
func TestInProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts a zenne")
	}
	s := apitest.Start(t)
	ctx := context.Background()
	fleet, err := simulate.GeneratedFleet(simulate.FleetOptions{Seed: 3, Devices: 120, SilentFraction: -1})
	if err != nil {
		t.Fatal(err)
	}
	res, err := fleet.ProvisionIn(ctx, s.App.Devices, "")
	if err != nil || res != (simulate.ProvisionResult{Groups: 7, Devices: 120}) {
		t.Fatalf("provision: %+v, %v", res, err)
	}
	if res, err = fleet.ProvisionIn(ctx, s.App.Devices, ""); err != nil || res != (simulate.ProvisionResult{GroupsExisting: 7, DevicesExisting: 120}) {
		t.Fatalf("provision again: %+v, %v", res, err)
	}
	sum, err := simulate.Run(ctx, simulate.Config{Fleet: fleet, Rate: 1000, Duration: 600 * time.Millisecond}, &simulate.ReceiverSender{Receiver: s.App.Devices})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Errors != 0 || sum.Sent < 100 {
		t.Fatalf("sent %d, errors %v %v", sum.Sent, sum.ErrorKinds, sum.ErrorSamples)
	}
	d := fleet.Members()[0]
	r := s.Get("/ngsi-ld/v1/entities/"+url.PathEscape(d.Entity)+"?options=keyValues", nil).Expect(t, http.StatusOK)
	e := r.JSON(t).(map[string]any)
	loc, _ := e["location"].(map[string]any)
	addr, _ := e["address"].(map[string]any)
	if loc == nil || addr == nil || addr["postalCode"] != d.Postcode {
		t.Errorf("%s: %v", d.Entity, e)
	}
}

// zenne's embedded broker without anonymous publishing takes devices that
// connect with their own id; shared connections are refused, with a kind
// the command turns into advice.
func TestZenneMQTTWithoutAnonymous(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts a zenne")
	}
	s := apitest.StartWith(t, t.TempDir(), func(c *app.Config) { c.MQTTListen = "127.0.0.1:0" })
	ctx := context.Background()
	f, err := simulate.GeneratedFleet(simulate.FleetOptions{Seed: 4, Devices: 6, SilentFraction: -1, Transport: "MQTT"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Provision(ctx, s.URL, "", s.Client); err != nil {
		t.Fatal(err)
	}
	_, err = simulate.DialMQTT(ctx, f, simulate.MQTTOptions{URL: "mqtt://" + s.App.MQTTAddr()})
	var se *simulate.SendError
	if !errors.As(err, &se) || se.Kind != "mqtt not authorized" {
		t.Fatalf("shared connections: %v", err)
	}
	m, err := simulate.DialMQTT(ctx, f, simulate.MQTTOptions{URL: "mqtt://" + s.App.MQTTAddr(), DevicesPerConn: 1, QoS: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	sum, err := simulate.Run(ctx, simulate.Config{Fleet: f, Rate: 30, Duration: 400 * time.Millisecond}, m)
	if err != nil || sum.Errors != 0 || sum.Sent == 0 {
		t.Fatalf("one connection per device: %+v, %v", sum, err)
	}
}

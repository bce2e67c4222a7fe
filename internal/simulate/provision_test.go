package simulate

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/demo"
	"github.com/zenne-city/zenne/internal/jsonld"
)

// docExamples returns the provisioning examples of docs/DEVICES.md: the
// bodies of POST /iot/services and POST /iot/devices.
func docExamples(t *testing.T) (services, devices map[string]any) {
	t.Helper()
	b, err := os.ReadFile("../../docs/DEVICES.md")
	if err != nil {
		t.Fatalf("the provisioning API's description: %v", err)
	}
	for _, m := range regexp.MustCompile("(?s)```json\n(.*?)```").FindAllStringSubmatch(string(b), -1) {
		var v map[string]any
		if json.Unmarshal([]byte(m[1]), &v) != nil {
			continue
		}
		if _, ok := v["services"]; ok {
			services = v
		}
		if _, ok := v["devices"]; ok {
			devices = v
		}
	}
	if services == nil || devices == nil {
		t.Fatal("docs/DEVICES.md has no services or devices example")
	}
	return services, devices
}

func jsonKind(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "boolean"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "null"
}

// conforms checks that every member of got is one the example has (or an
// extra the doc's text describes), with the same JSON type.
func conforms(t *testing.T, what string, got, example map[string]any, extra map[string]string, required ...string) {
	t.Helper()
	for k, v := range got {
		want, ok := "", false
		if ev, in := example[k]; in {
			want, ok = jsonKind(ev), true
		} else if want, ok = extra[k]; !ok {
			t.Errorf("%s: member %q is not in docs/DEVICES.md", what, k)
			continue
		}
		if want != "any" && jsonKind(v) != want {
			t.Errorf("%s: %q is a %s, docs/DEVICES.md has a %s", what, k, jsonKind(v), want)
		}
	}
	for _, k := range required {
		if _, ok := got[k]; !ok {
			t.Errorf("%s: no %q", what, k)
		}
	}
}

func roundTrip(t *testing.T, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestBodiesFollowDevicesDoc(t *testing.T) {
	docServices, docDevices := docExamples(t)
	exGroup := docServices["services"].([]any)[0].(map[string]any)
	exAttr := exGroup["attributes"].([]any)[0].(map[string]any)
	exStatic := maps.Clone(exGroup["static_attributes"].([]any)[0].(map[string]any))
	delete(exStatic, "value")
	anyValue := map[string]string{"value": "any"} // a static attribute's value is any JSON
	exDevice := docDevices["devices"].([]any)[0].(map[string]any)
	// Described in the mapping table, not in the examples.
	attrExtra := map[string]string{"offset": "number", "scale": "number"}

	f, err := GeneratedFleet(FleetOptions{Seed: 1, Devices: 300, Probes: 1, Transport: "MQTT"})
	if err != nil {
		t.Fatal(err)
	}
	services := roundTrip(t, ServicesBody{Services: f.ServiceGroups()})
	groups := services["services"].([]any)
	if len(groups) != 8 {
		t.Errorf("%d service groups, want 7 kinds and the probe", len(groups))
	}
	keys := make(map[string]bool)
	for _, g := range groups {
		g := g.(map[string]any)
		key := g["apikey"].(string)
		keys[key] = true
		conforms(t, "group "+key, g, exGroup, nil, "apikey", "entity_type", "resource", "attributes")
		if g["resource"] != "/iot/json" || g["timestamp_field"] != "ts" {
			t.Errorf("group %s: resource %v, timestamp_field %v", key, g["resource"], g["timestamp_field"])
		}
		for _, a := range g["attributes"].([]any) {
			conforms(t, "group "+key+" attribute", a.(map[string]any), exAttr, attrExtra, "object_id", "name")
		}
		for _, a := range sliceOf(g["static_attributes"]) {
			conforms(t, "group "+key+" static attribute", a.(map[string]any), exStatic, anyValue, "name", "type", "value")
		}
	}
	if !keys["sim-bins"] || !keys["sim-probes"] {
		t.Errorf("group keys %v", keys)
	}

	devices := roundTrip(t, DevicesBody{Devices: f.Devices()})
	devs := devices["devices"].([]any)
	if len(devs) != 301 {
		t.Fatalf("%d devices, want 300 and the probe", len(devs))
	}
	for _, d := range devs {
		d := d.(map[string]any)
		id := d["device_id"].(string)
		conforms(t, "device "+id, d, exDevice, nil, "device_id", "apikey", "entity_name", "entity_type", "transport")
		if d["transport"] != "MQTT" || !keys[d["apikey"].(string)] {
			t.Errorf("device %s: transport %v, apikey %v", id, d["transport"], d["apikey"])
		}
		loc := false
		for _, a := range sliceOf(d["static_attributes"]) {
			a := a.(map[string]any)
			conforms(t, "device "+id+" static attribute", a, exStatic, anyValue, "name", "type", "value")
			if a["name"] == "location" {
				loc = a["type"] == "GeoProperty" && a["value"].(map[string]any)["type"] == "Point"
			}
		}
		if !loc {
			t.Errorf("device %s: no location Point", id)
		}
	}
}

func sliceOf(v any) []any {
	s, _ := v.([]any)
	return s
}

func TestUnitCodes(t *testing.T) {
	want := map[Kind]map[string]string{ // object_id -> unitCode
		Datalogger: {"e": "KWH", "p": "KWT", "t": "CEL"},
		WaterMeter: {"v": "LTR", "q": "LTR", "mf": "E32"},
		WasteBin:   {"f": "P1", "t": "CEL", "b": "P1"},
		AirQuality: {"no2": "GQ", "pm10": "GQ", "t": "CEL"},
		NoiseMeter: {"la": "2N", "lmax": "2N", "las": "2N"},
	}
	for k, units := range want {
		for _, a := range k.Attributes() {
			if units[a.ObjectID] != a.UnitCode {
				t.Errorf("%v %s (%s): unit %q, want %q", k, a.ObjectID, a.Name, a.UnitCode, units[a.ObjectID])
			}
			if a.UnitCode == "P1" && a.Scale != 0.01 {
				t.Errorf("%v %s: percent sent, scale %v", k, a.ObjectID, a.Scale)
			}
		}
	}
}

// The groups' entity types and attribute names are the IRIs the demo
// city's @contexts give its entities' types and attributes, so uplinks
// update the demo's attributes rather than add look-alikes.
func TestNamesMatchDemoEntities(t *testing.T) {
	city, err := demo.City(1, testNow)
	if err != nil {
		t.Fatal(err)
	}
	r := jsonld.NewResolver(jsonld.Options{})
	core := r.Core()
	matched := make(map[Kind]int)
	seen := make(map[Kind]bool)
	for _, e := range city {
		k, ok := kindOfType(e["type"].(string))
		if !ok || seen[k] {
			continue
		}
		seen[k] = true
		c, err := r.Resolve(context.Background(), e["@context"])
		if err != nil {
			t.Fatalf("%s: %v", e["id"], err)
		}
		if got, want := core.ExpandTerm(k.EntityType()), c.ExpandTerm(e["type"].(string)); got != want {
			t.Errorf("%v: entity type %s, the demo's is %s", k, got, want)
		}
		for _, a := range k.Attributes() {
			term := a.Name[strings.LastIndexByte(a.Name, '/')+1:]
			if _, ok := e[term]; !ok {
				continue
			}
			matched[k]++
			if got, want := core.ExpandTerm(a.Name), c.ExpandTerm(term); got != want {
				t.Errorf("%v: %s maps to %s, the demo's %s is %s", k, a.ObjectID, got, term, want)
			}
		}
	}
	want := map[Kind]int{WaterMeter: 2, WasteBin: 1, PedestrianCounter: 3, ParkingSensor: 1, AirQuality: 3, NoiseMeter: 3}
	for k, n := range want {
		if matched[k] != n {
			t.Errorf("%v: %d attributes of the demo entities fed, want %d", k, matched[k], n)
		}
	}
}

// fakeIoT is a provisioning API: it creates what is new and answers 409
// for what exists, as docs/DEVICES.md says.
type fakeIoT struct {
	mu      sync.Mutex
	tenants map[string]bool
	groups  map[string]ServiceGroup
	devices map[string]DeviceRegistration
	posts   int
}

func (s *fakeIoT) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.posts++
	s.tenants[r.Header.Get("NGSILD-Tenant")] = true
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	conflict := func() {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusConflict)
		w.Write([]byte(`{"type":"https://uri.etsi.org/ngsi-ld/errors/AlreadyExists","title":"exists"}`))
	}
	switch r.URL.Path {
	case "/iot/services":
		var b ServicesBody
		if err := json.NewDecoder(r.Body).Decode(&b); err != nil || len(b.Services) == 0 {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		for _, g := range b.Services {
			if _, ok := s.groups[g.APIKey]; ok {
				conflict()
				return
			}
		}
		for _, g := range b.Services {
			s.groups[g.APIKey] = g
		}
	case "/iot/devices":
		var b DevicesBody
		if err := json.NewDecoder(r.Body).Decode(&b); err != nil || len(b.Devices) == 0 {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		for _, d := range b.Devices {
			if _, ok := s.groups[d.APIKey]; !ok {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				w.Write([]byte(`{"type":"https://uri.etsi.org/ngsi-ld/errors/BadRequestData","title":"unknown apikey","detail":"register the service group first"}`))
				return
			}
			if _, ok := s.devices[d.DeviceID]; ok {
				conflict()
				return
			}
		}
		for _, d := range b.Devices {
			s.devices[d.DeviceID] = d
		}
	default:
		http.NotFound(w, r)
		return
	}
	w.WriteHeader(http.StatusCreated)
}

func TestProvision(t *testing.T) {
	api := &fakeIoT{tenants: map[string]bool{}, groups: map[string]ServiceGroup{}, devices: map[string]DeviceRegistration{}}
	srv := httptest.NewServer(api)
	defer srv.Close()
	f, err := GeneratedFleet(FleetOptions{Seed: 2, Devices: 450, Probes: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	res, err := f.Provision(ctx, srv.URL+"/", "brussels", srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	if res != (ProvisionResult{Groups: 8, Devices: 452}) {
		t.Errorf("first run: %+v", res)
	}
	if len(api.devices) != 452 || len(api.groups) != 8 || !api.tenants["brussels"] || len(api.tenants) != 1 {
		t.Errorf("server holds %d devices, %d groups; tenants %v", len(api.devices), len(api.groups), api.tenants)
	}
	if api.posts != 8+3 {
		t.Errorf("%d requests for 8 groups and 452 devices in batches of %d", api.posts, provisionBatch)
	}
	if got := api.devices["bin-sim-000001"]; got.DeviceID != "" && got.EntityName != "urn:ngsi-ld:WasteContainer:sim-000001" {
		t.Errorf("registered %+v", got)
	}

	// Again: everything is there.
	res, err = f.Provision(ctx, srv.URL, "brussels", srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	if res != (ProvisionResult{GroupsExisting: 8, DevicesExisting: 452}) {
		t.Errorf("second run: %+v", res)
	}

	// Some devices deleted: the batches that conflict go one by one.
	api.mu.Lock()
	for _, id := range []string{"bin-sim-000001", "park-sim-000002", f.Members()[300].ID} {
		delete(api.devices, id)
	}
	delete(api.devices, f.Members()[2].ID)
	api.mu.Unlock()
	res, err = f.Provision(ctx, srv.URL, "brussels", srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	if res.Devices+res.DevicesExisting != 452 || res.Devices < 2 || len(api.devices) != 452 {
		t.Errorf("third run: %+v, server holds %d", res, len(api.devices))
	}
}

func TestProvisionErrors(t *testing.T) {
	f, err := GeneratedFleet(FleetOptions{Seed: 2, Devices: 10})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	plain := httptest.NewServer(http.NotFoundHandler())
	defer plain.Close()
	if _, err := f.Provision(ctx, plain.URL, "", nil); !errors.Is(err, ErrNoProvisioning) {
		t.Errorf("a server without /iot/services: %v", err)
	}

	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "Bearer zk_k3y" {
			w.WriteHeader(http.StatusCreated)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"type":"about:blank","title":"Unauthorized","detail":"give an API key"}`))
	}))
	defer refusing.Close()
	_, err = f.Provision(ctx, refusing.URL, "", nil)
	var se *StatusError
	if err == nil || !strings.Contains(err.Error(), "give an API key") || !errors.As(err, &se) || se.Status != http.StatusUnauthorized || !se.Unauthorized() {
		t.Errorf("401: %v", err)
	}
	if res, err := f.Provision(ctx, refusing.URL, "", APIClient("zk_k3y", 5*time.Second)); err != nil || res.Groups == 0 || res.Devices != 10 {
		t.Errorf("with the key: %+v, %v", res, err)
	}

	srv := httptest.NewServer(nil)
	url := srv.URL
	srv.Close()
	if _, err := f.Provision(ctx, url, "", nil); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("nothing listening: %v", err)
	}
}

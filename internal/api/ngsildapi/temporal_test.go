package ngsildapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/apitest"
)

// Black-box tests of the temporal API (/ngsi-ld/v1/temporal/...) on the
// embedded store. History is recorded by every write of the normal API and
// by the temporal provisioning operations; these tests write through both
// and read the history back in every representation.
//
// Readings of ETSI GS CIM 009 the tests hold the broker to (they are the
// ones internal/ngsild/temporal documents):
//   - timerel=before excludes timeAt (t < timeAt), after includes it
//     (t >= timeAt), between is [timeAt, endTimeAt).
//   - Retrieving one entity's history needs no timerel; querying entities
//     (GET /temporal/entities, POST /temporal/entityOperations/query) does.
//   - stddev is the population standard deviation (divide by n).
//   - Aggregation periods are aligned at timeAt; empty periods are left out;
//     with between the last period is cut at endTimeAt.
//   - lastN keeps the last n instances of each datasetId.
//   - Instances without observedAt are placed at their modifiedAt.

const temporalBase = apiBase + "/temporal/entities"

func temporalPath(id string) string { return temporalBase + "/" + url.PathEscape(id) }

// obs is a Property instance observed at the given time.
func obs(v any, at string) map[string]any {
	return map[string]any{"type": "Property", "value": v, "observedAt": at}
}

// with returns a copy of attr with more members (key, value, key, value...).
func with(attr map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(attr)+len(kv)/2)
	for k, v := range attr {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

// getTemporal retrieves an entity's temporal evolution (query like
// "?options=temporalValues") and expects 200.
func getTemporal(t testing.TB, s *apitest.Server, id, query string, hdr map[string]string) *apitest.Response {
	t.Helper()
	return s.Get(temporalPath(id)+query, hdr).Expect(t, http.StatusOK)
}

// problem checks that r is a ProblemDetails of the status and error type
// and returns its detail, which must not be empty.
func problem(t testing.TB, r *apitest.Response, status int, errType string) string {
	t.Helper()
	r.ExpectProblem(t, status, errType)
	var p struct {
		Detail string `json:"detail"`
	}
	if err := json.Unmarshal(r.Body, &p); err != nil || p.Detail == "" {
		t.Fatalf("ProblemDetails without detail: %s", r.Body)
	}
	return p.Detail
}

// decode decodes a JSON body.
func decode(t testing.TB, body []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("not JSON (%v): %s", err, body)
	}
	return v
}

// wallClock is the earliest time a value can have to count as set by the
// wall clock (when the broker recorded something) rather than sent by the
// tests, whose times are all in 2024 or before.
func wallClock() time.Time { return time.Now().Add(-time.Hour) }

// normalizeTemporal replaces what depends on the wall clock so a temporal
// response can be compared with a golden file: instanceIds (they are made
// from the recording time) and DateTimes that are recent (the modifiedAt of
// instances without observedAt, system times).
func normalizeTemporal(v any, since time.Time) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if _, ok := e.(string); ok && k == "instanceId" {
				x[k] = "<instanceId>"
				continue
			}
			x[k] = normalizeTemporal(e, since)
		}
	case []any:
		for i := range x {
			x[i] = normalizeTemporal(x[i], since)
		}
	case string:
		if tm, err := time.Parse(time.RFC3339Nano, x); err == nil && !tm.Before(since) {
			return "<now>"
		}
	}
	return v
}

func temporalGolden(t testing.TB, name string, body []byte) {
	t.Helper()
	b, err := json.Marshal(normalizeTemporal(decode(t, body), wallClock()))
	if err != nil {
		t.Fatal(err)
	}
	apitest.Golden(t, name, b)
}

// member is the member name of body (a temporal entity), which must be
// present.
func member(t testing.TB, body map[string]any, name string) any {
	t.Helper()
	v, ok := body[name]
	if !ok {
		t.Fatalf("no %s in %v", name, body)
	}
	return v
}

// seriesOf returns the per-datasetId objects of a temporalValues or
// aggregatedValues attribute (one object, or an array of them).
func seriesOf(t testing.TB, v any) []map[string]any {
	t.Helper()
	switch x := v.(type) {
	case map[string]any:
		return []map[string]any{x}
	case []any:
		out := make([]map[string]any, len(x))
		for i, e := range x {
			m, ok := e.(map[string]any)
			if !ok {
				t.Fatalf("series %d is not an object: %v", i, v)
			}
			out[i] = m
		}
		return out
	}
	t.Fatalf("not a series or list of series: %v", v)
	return nil
}

// seriesFor is the series of datasetId ds ("" for the default instance).
func seriesFor(t testing.TB, v any, ds string) map[string]any {
	t.Helper()
	for _, s := range seriesOf(t, v) {
		if got, _ := s["datasetId"].(string); got == ds {
			return s
		}
	}
	t.Fatalf("no series with datasetId %q in %v", ds, v)
	return nil
}

// pair is one [value, time] of the simplified representation.
type pair struct {
	V  any
	At string
}

// tvPairs reads the pairs of attribute name, datasetId ds, from a
// temporalValues body; key is the member holding them (values, objects,
// languageMaps...).
func tvPairs(t testing.TB, body map[string]any, name, ds, key string) []pair {
	t.Helper()
	s := seriesFor(t, member(t, body, name), ds)
	raw, ok := s[key].([]any)
	if !ok {
		t.Fatalf("%s has no %s array: %v", name, key, s)
	}
	out := make([]pair, len(raw))
	for i, x := range raw {
		p, ok := x.([]any)
		if !ok || len(p) != 2 {
			t.Fatalf("%s: element %d is not a [value, time] pair: %v", name, i, x)
		}
		at, _ := p[1].(string)
		out[i] = pair{p[0], at}
	}
	return out
}

// tvValues are the values of tvPairs(..., "values").
func tvValues(t testing.TB, body map[string]any, name, ds string) []any {
	t.Helper()
	var out []any
	for _, p := range tvPairs(t, body, name, ds, "values") {
		out = append(out, p.V)
	}
	return out
}

// nums turns numbers into the []any JSON decoding gives.
func nums(vs ...float64) []any {
	out := make([]any, len(vs))
	for i, v := range vs {
		out[i] = v
	}
	return out
}

// instances is the normalized representation of attribute name: always
// an array of instance objects.
func instances(t testing.TB, body map[string]any, name string) []map[string]any {
	t.Helper()
	list, ok := member(t, body, name).([]any)
	if !ok {
		t.Fatalf("normalized %s is not an array: %v", name, body[name])
	}
	out := make([]map[string]any, len(list))
	for i, x := range list {
		m, ok := x.(map[string]any)
		if !ok {
			t.Fatalf("instance %d of %s is not an object", i, name)
		}
		out[i] = m
	}
	return out
}

// temporalAttrNames are the attribute members of a temporal entity.
func temporalAttrNames(body map[string]any) []string {
	var out []string
	for k := range body {
		switch k {
		case "id", "type", "scope", "@context", "createdAt", "modifiedAt":
			continue
		}
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// sealHistory moves every head record of the embedded store into its
// compressed chunks now (the background job does it after a delay), so a
// test can check that history reads the same before and after.
func sealHistory(t testing.TB, s *apitest.Server) {
	t.Helper()
	sealer, ok := s.App.Store.(interface {
		Seal(context.Context, time.Time) (int, error)
	})
	if !ok {
		t.Fatalf("the store (%T) has no Seal method", s.App.Store)
	}
	n, err := sealer.Seal(context.Background(), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatalf("seal: %v", err)
	}
	if n == 0 {
		t.Fatal("sealing moved no head records: the test would not test sealed history")
	}
}

// --- the vehicle: history recorded through the normal API ---

const (
	vehicleID = "urn:ngsi-ld:Vehicle:T1"
	datasetB  = "urn:ngsi-ld:Dataset:B"
)

// recordVehicle creates a vehicle and changes it through the normal API,
// each write with explicit observedAt except brandName, which never has one
// (its instances are placed at their modifiedAt):
//
//	POST /entities            speed 80 KMH (accuracy 0.95), temperature 20 and 21 (datasetId B),
//	                          isParked P1, street (fr, nl), location, brandName Mercedes   at 2024-05-01T10:00
//	PATCH /attrs/speed        speed 85                                                     at 10:30
//	PATCH /entities (merge)   speed 90, temperature B 22                                   at 11:00
//	PATCH /attrs (update)     isParked P2, street (fr changed)                             at 12:00
//	PATCH /attrs/brandName    BMW                                                          (no observedAt)
//	POST upsert?options=update speed 70 KMH, temperature 19                                at 2024-05-02T09:00
func recordVehicle(t testing.TB, s *apitest.Server, hdr map[string]string) {
	t.Helper()
	const t0 = "2024-05-01T10:00:00Z"
	e := map[string]any{
		"id": vehicleID, "type": "Vehicle",
		"speed": with(obs(80, t0), "unitCode", "KMH", "accuracy", pv(0.95)),
		"temperature": []any{
			obs(20, t0),
			with(obs(21, t0), "datasetId", datasetB),
		},
		"isParked": map[string]any{"type": "Relationship", "object": "urn:ngsi-ld:Parking:P1", "observedAt": t0},
		"street": map[string]any{"type": "LanguageProperty", "languageMap": map[string]any{"fr": "Grand Place", "nl": "Grote Markt"},
			"observedAt": t0},
		"location":  with(geoProp("Point", []any{4.3525, 50.8467}), "observedAt", t0),
		"brandName": pv("Mercedes"),
	}
	s.Post(apiBase+"/entities", e, hdr).Expect(t, http.StatusCreated)
	s.Patch(entityPath(vehicleID)+"/attrs/speed", map[string]any{"value": 85, "observedAt": "2024-05-01T10:30:00Z"}, hdr).
		Expect(t, http.StatusNoContent)
	s.Patch(entityPath(vehicleID), map[string]any{
		"speed":       map[string]any{"value": 90, "observedAt": "2024-05-01T11:00:00Z"},
		"temperature": with(obs(22, "2024-05-01T11:00:00Z"), "datasetId", datasetB),
	}, hdr).Expect(t, http.StatusNoContent)
	s.Patch(entityPath(vehicleID)+"/attrs", map[string]any{
		"isParked": map[string]any{"type": "Relationship", "object": "urn:ngsi-ld:Parking:P2", "observedAt": "2024-05-01T12:00:00Z"},
		"street": map[string]any{"type": "LanguageProperty", "languageMap": map[string]any{"fr": "Grand-Place", "nl": "Grote Markt"},
			"observedAt": "2024-05-01T12:00:00Z"},
	}, hdr).Expect(t, http.StatusNoContent)
	s.Patch(entityPath(vehicleID)+"/attrs/brandName", map[string]any{"value": "BMW"}, hdr).Expect(t, http.StatusNoContent)
	s.Post(apiBase+"/entityOperations/upsert?options=update", []any{map[string]any{
		"id": vehicleID, "type": "Vehicle",
		"speed":       with(obs(70, "2024-05-02T09:00:00Z"), "unitCode", "KMH"),
		"temperature": obs(19, "2024-05-02T09:00:00Z"),
	}}, hdr).Expect(t, http.StatusNoContent)
}

// vehicleWindow is a between window holding every observed instance of the
// vehicle and none of its instances placed by the wall clock (brandName).
const vehicleWindow = "timerel=between&timeAt=2024-05-01T00:00:00Z&endTimeAt=2024-05-03T00:00:00Z"

func TestTemporalRecordedThroughAPI(t *testing.T) {
	s := apitest.Start(t)
	recordVehicle(t, s, nil)

	goldens := []struct{ name, query string }{
		{"temporal_vehicle_normalized", ""},
		{"temporal_vehicle_normalized_sysAttrs", "?options=sysAttrs"},
		{"temporal_vehicle_temporalValues", "?options=temporalValues"},
		{"temporal_vehicle_aggregatedValues", "?options=aggregatedValues&aggrMethods=totalCount,distinctCount,sum,avg,min,max&aggrPeriodDuration=P1D&" + vehicleWindow},
	}
	bodies := map[string][]byte{}
	for _, g := range goldens {
		t.Run(g.name, func(t *testing.T) {
			r := getTemporal(t, s, vehicleID, g.query, nil)
			if ct := r.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if l := r.Header.Get("Link"); l != apitest.LinkHeader(coreContext) {
				t.Errorf("Link %q", l)
			}
			bodies[g.name] = r.Body
			temporalGolden(t, g.name, r.Body)
		})
	}

	t.Run("normalized", func(t *testing.T) {
		body := jsonObject(t, getTemporal(t, s, vehicleID, "", nil))
		// Every instance the writes added is there once, in time order,
		// as it was written: a partial update and a merge keep unitCode
		// and the sub-attribute, the batch update replaces the attribute.
		speed := instances(t, body, "speed")
		var got []string
		for _, in := range speed {
			_, hasAcc := in["accuracy"]
			got = append(got, fmt.Sprintf("%v@%v %v acc=%v", in["value"], in["observedAt"], in["unitCode"], hasAcc))
		}
		want := []string{
			"80@2024-05-01T10:00:00.000Z KMH acc=true",
			"85@2024-05-01T10:30:00.000Z KMH acc=true",
			"90@2024-05-01T11:00:00.000Z KMH acc=true",
			"70@2024-05-02T09:00:00.000Z KMH acc=false",
		}
		if !slices.Equal(got, want) {
			t.Errorf("speed instances\n got %q\nwant %q", got, want)
		}
		// brandName never had observedAt: its instances show modifiedAt,
		// the time they are placed at, recent and ascending.
		brand := instances(t, body, "brandName")
		if len(brand) != 2 || brand[0]["value"] != "Mercedes" || brand[1]["value"] != "BMW" {
			t.Fatalf("brandName instances %v", brand)
		}
		var prev time.Time
		for _, in := range brand {
			at, err := time.Parse(time.RFC3339Nano, fmt.Sprint(in["modifiedAt"]))
			if err != nil || at.Before(wallClock()) || at.Before(prev) {
				t.Errorf("brandName instance without observedAt has modifiedAt %v", in["modifiedAt"])
			}
			prev = at
			if _, ok := in["observedAt"]; ok {
				t.Errorf("brandName instance got an observedAt: %v", in)
			}
		}
		// Every instance has an instanceId, a URI, distinct within its
		// series (see TestTemporalInstanceIDsAcrossDatasets for ids
		// across the datasetIds of one attribute).
		for _, name := range temporalAttrNames(body) {
			seen := map[string]bool{}
			for _, in := range instances(t, body, name) {
				id, _ := in["instanceId"].(string)
				key := fmt.Sprint(in["datasetId"]) + " " + id
				if !strings.HasPrefix(id, "urn:") || seen[key] {
					t.Errorf("%s: instanceId %q missing, not a URN or repeated", name, id)
				}
				seen[key] = true
			}
		}
	})

	t.Run("temporalValues", func(t *testing.T) {
		body := jsonObject(t, getTemporal(t, s, vehicleID, "?options=temporalValues", nil))
		if got, want := tvValues(t, body, "speed", ""), nums(80, 85, 90, 70); !reflect.DeepEqual(got, want) {
			t.Errorf("speed %v, want %v", got, want)
		}
		if got, want := tvValues(t, body, "temperature", ""), nums(20, 19); !reflect.DeepEqual(got, want) {
			t.Errorf("temperature %v, want %v", got, want)
		}
		if got, want := tvValues(t, body, "temperature", datasetB), nums(21, 22); !reflect.DeepEqual(got, want) {
			t.Errorf("temperature %s %v, want %v", datasetB, got, want)
		}
		objs := tvPairs(t, body, "isParked", "", "objects")
		if len(objs) != 2 || objs[0] != (pair{"urn:ngsi-ld:Parking:P1", "2024-05-01T10:00:00.000Z"}) || objs[1].V != "urn:ngsi-ld:Parking:P2" {
			t.Errorf("isParked objects %v", objs)
		}
		if lm := tvPairs(t, body, "street", "", "languageMaps"); len(lm) != 2 {
			t.Errorf("street languageMaps %v", lm)
		}
	})

	t.Run("attrs", func(t *testing.T) {
		body := jsonObject(t, getTemporal(t, s, vehicleID, "?attrs=speed,isParked", nil))
		if got := temporalAttrNames(body); !slices.Equal(got, []string{"isParked", "speed"}) {
			t.Errorf("attrs=speed,isParked gave %v", got)
		}
		if body["type"] != "Vehicle" || body["id"] != vehicleID {
			t.Errorf("id/type %v %v", body["id"], body["type"])
		}
		// An attribute the entity never had is a 404, whether or not
		// another entity uses the name.
		mustCreate(t, s, map[string]any{"id": "urn:ngsi-ld:Other:1", "type": "Other", "colour": pv("red")}, nil)
		for _, a := range []string{"colour", "neverUsedAnywhere"} {
			d := problem(t, s.Get(temporalPath(vehicleID)+"?attrs="+a, nil), http.StatusNotFound, "ResourceNotFound")
			if !strings.Contains(d, vehicleID) {
				t.Errorf("attrs=%s: detail %q does not name the entity", a, d)
			}
		}
		// An attribute it has, with no instance in the window, is an
		// entity without attributes.
		body = jsonObject(t, getTemporal(t, s, vehicleID, "?attrs=speed&timerel=before&timeAt=2000-01-01T00:00:00Z", nil))
		if got := temporalAttrNames(body); len(got) != 0 || body["id"] != vehicleID {
			t.Errorf("empty window gave %v", body)
		}
	})

	t.Run("ld_json", func(t *testing.T) {
		r := getTemporal(t, s, vehicleID, "?attrs=speed", map[string]string{"Accept": "application/ld+json"})
		if ct := r.Header.Get("Content-Type"); ct != "application/ld+json" {
			t.Errorf("Content-Type %q", ct)
		}
		if got := jsonObject(t, r)["@context"]; got != coreContext {
			t.Errorf("@context %v", got)
		}
	})

	t.Run("current_state", func(t *testing.T) {
		// History is a record of the writes; the current entity is the
		// result of the last one.
		got := jsonObject(t, readEntity(t, s, vehicleID, "?options=keyValues&attrs=speed,brandName", nil))
		if got["speed"] != 70.0 || got["brandName"] != "BMW" {
			t.Errorf("current state %v", got)
		}
	})

	// Sealing moves the records into compressed chunks; every answer stays
	// the same, instanceIds included.
	t.Run("after_sealing", func(t *testing.T) {
		sealHistory(t, s)
		for _, g := range goldens {
			r := getTemporal(t, s, vehicleID, g.query, nil)
			if string(r.Body) != string(bodies[g.name]) {
				t.Errorf("%s changed after sealing\n--- before\n%s\n--- after\n%s", g.name, bodies[g.name], r.Body)
			}
		}
	})
}

// A partial update without observedAt keeps the attribute's observedAt
// (NGSI-LD merges the fragment into the attribute), so history then holds
// two instances at the same time, in the order they were written.
func TestTemporalUpdateWithoutObservedAt(t *testing.T) {
	s := apitest.Start(t)
	id := "urn:ngsi-ld:Sensor:U1"
	mustCreate(t, s, map[string]any{"id": id, "type": "Sensor", "level": obs(1, "2024-01-01T00:00:00Z")}, nil)
	s.Patch(entityPath(id)+"/attrs/level", map[string]any{"value": 2}, nil).Expect(t, http.StatusNoContent)
	s.Patch(entityPath(id)+"/attrs/level", map[string]any{"value": 3}, nil).Expect(t, http.StatusNoContent)
	body := jsonObject(t, getTemporal(t, s, id, "?options=temporalValues", nil))
	got := tvPairs(t, body, "level", "", "values")
	want := []pair{{1.0, "2024-01-01T00:00:00.000Z"}, {2.0, "2024-01-01T00:00:00.000Z"}, {3.0, "2024-01-01T00:00:00.000Z"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("level %v, want %v", got, want)
	}
}

// The instances of a multi-attribute written in one request with one
// observedAt have instanceIds of their own, and a DELETE of one removes only
// that one.
func TestTemporalInstanceIDsAcrossDatasets(t *testing.T) {
	s := apitest.Start(t)
	id := "urn:ngsi-ld:Sensor:D1"
	mustCreate(t, s, map[string]any{"id": id, "type": "Sensor", "temperature": []any{
		obs(20, "2024-05-01T10:00:00Z"),
		with(obs(21, "2024-05-01T10:00:00Z"), "datasetId", datasetB),
	}}, nil)
	insts := instances(t, jsonObject(t, getTemporal(t, s, id, "", nil)), "temperature")
	if len(insts) != 2 {
		t.Fatalf("instances %v", insts)
	}
	a, b := insts[0]["instanceId"], insts[1]["instanceId"]
	if a == b {
		t.Fatalf("two instances share the instanceId %v", a)
	}
	s.Delete(temporalPath(id)+"/attrs/temperature/"+url.PathEscape(b.(string)), nil).Expect(t, http.StatusNoContent)
	insts = instances(t, jsonObject(t, getTemporal(t, s, id, "", nil)), "temperature")
	if len(insts) != 1 || insts[0]["instanceId"] != a || insts[0]["value"] != 20.0 {
		t.Errorf("after deleting %v: %v, want only %v", b, insts, a)
	}
}

// Replacing an instance of a non-default datasetId with a body that has no
// datasetId keeps it in its datasetId.
func TestTemporalReplaceInstanceDatasetID(t *testing.T) {
	s := apitest.Start(t)
	id := "urn:ngsi-ld:Sensor:D2"
	mustCreate(t, s, map[string]any{"id": id, "type": "Sensor", "temperature": []any{
		obs(20, "2024-05-01T10:00:00Z"),
		with(obs(21, "2024-05-01T11:00:00Z"), "datasetId", datasetB),
	}}, nil)
	insts := instances(t, jsonObject(t, getTemporal(t, s, id, "", nil)), "temperature")
	if len(insts) != 2 || insts[1]["datasetId"] != datasetB {
		t.Fatalf("instances %v", insts)
	}
	iid := insts[1]["instanceId"].(string)
	s.Patch(temporalPath(id)+"/attrs/temperature/"+url.PathEscape(iid), pv(99), nil).Expect(t, http.StatusNoContent)
	insts = instances(t, jsonObject(t, getTemporal(t, s, id, "", nil)), "temperature")
	if len(insts) != 2 || insts[1]["value"] != 99.0 || insts[1]["instanceId"] != iid || insts[1]["datasetId"] != datasetB {
		t.Fatalf("after PATCH: %v, want instance %s of %s with 99", insts, iid, datasetB)
	}
	s.Delete(temporalPath(id)+"/attrs/temperature?datasetId="+url.QueryEscape(datasetB), nil).Expect(t, http.StatusNoContent)
	insts = instances(t, jsonObject(t, getTemporal(t, s, id, "", nil)), "temperature")
	if len(insts) != 1 || insts[0]["value"] != 20.0 {
		t.Errorf("after deleting datasetId B: %v", insts)
	}
}

// --- aggregation ---

// aggSample is one value of the aggregation fixture, observed at At.
type aggSample struct {
	At string
	V  float64
}

// aggSamples are recorded in this order (not the time order) on
// Sensor:agg's level. The window the tests use is
// [2024-03-01T00:00:00Z, 2024-03-03T00:00:00Z).
var aggSamples = []aggSample{
	{"2024-03-01T10:20:00Z", 5},
	{"2024-03-02T09:15:00Z", 7.25},
	{"2024-02-29T23:59:59Z", 1000}, // before the window
	{"2024-03-01T00:00:00Z", 2},    // at timeAt: inside
	{"2024-03-01T10:00:00Z", 3},
	{"2024-03-03T00:00:00Z", 100}, // at endTimeAt: outside
	{"2024-03-01T10:40:00Z", 5},
	{"2024-03-01T11:10:00Z", 8},
	{"2024-03-02T00:00:00Z", 4}, // the first instant of the second day
	{"2024-03-01T13:30:00Z", -2.5},
	{"2024-03-02T23:59:59.999Z", 1}, // the last millisecond of the window
}

const (
	aggID      = "urn:ngsi-ld:Sensor:agg"
	aggFrom    = "2024-03-01T00:00:00Z"
	aggTo      = "2024-03-03T00:00:00Z"
	aggBetween = "timerel=between&timeAt=" + aggFrom + "&endTimeAt=" + aggTo
)

// recordAggSensor records aggSamples through the normal API: a create,
// partial attribute updates and a batch upsert.
func recordAggSensor(t testing.TB, s *apitest.Server) {
	t.Helper()
	first := aggSamples[0]
	createEntity(t, s, map[string]any{"id": aggID, "type": "Sensor", "level": obs(first.V, first.At)}, nil)
	for i, x := range aggSamples[1:] {
		if i%4 == 3 {
			s.Post(apiBase+"/entityOperations/upsert?options=update", []any{map[string]any{
				"id": aggID, "type": "Sensor", "level": obs(x.V, x.At),
			}}, nil).Expect(t, http.StatusNoContent)
			continue
		}
		s.Patch(entityPath(aggID)+"/attrs/level", map[string]any{"value": x.V, "observedAt": x.At}, nil).Expect(t, http.StatusNoContent)
	}
}

// expBucket is one expected aggregation period.
type expBucket struct {
	Start, End time.Time
	Vals       []float64
}

// expectBuckets groups the samples in [from, to) into periods of d aligned
// at from (d 0: one period), leaving out empty ones: the test's own
// computation, independent of the broker's.
func expectBuckets(samples []aggSample, from, to time.Time, d time.Duration) []expBucket {
	byStart := map[time.Time]*expBucket{}
	for _, x := range samples {
		at, err := time.Parse(time.RFC3339Nano, x.At)
		if err != nil {
			panic(err)
		}
		if at.Before(from) || !at.Before(to) {
			continue
		}
		start, end := from, to
		if d > 0 {
			start = from.Add(at.Sub(from) / d * d)
			end = start.Add(d)
			if end.After(to) {
				end = to
			}
		}
		b := byStart[start]
		if b == nil {
			b = &expBucket{Start: start, End: end}
			byStart[start] = b
		}
		b.Vals = append(b.Vals, x.V)
	}
	out := make([]expBucket, 0, len(byStart))
	for _, b := range byStart {
		out = append(out, *b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

// aggregate computes method m over vals as the specification defines it
// (4.5.19.1), stddev being the population standard deviation (the one
// internal/ngsild/temporal documents).
func aggregate(m string, vals []float64) float64 {
	n := float64(len(vals))
	sum, sumsq := 0.0, 0.0
	lo, hi := math.Inf(1), math.Inf(-1)
	distinct := map[float64]bool{}
	for _, v := range vals {
		sum += v
		sumsq += v * v
		lo, hi = math.Min(lo, v), math.Max(hi, v)
		distinct[v] = true
	}
	mean := sum / n
	switch m {
	case "totalCount":
		return n
	case "distinctCount":
		return float64(len(distinct))
	case "sum":
		return sum
	case "avg":
		return mean
	case "min":
		return lo
	case "max":
		return hi
	case "stddev":
		dev := 0.0
		for _, v := range vals {
			dev += (v - mean) * (v - mean)
		}
		return math.Sqrt(dev / n)
	case "sumsq":
		return sumsq
	}
	panic("unknown method " + m)
}

var aggMethods = []string{"totalCount", "distinctCount", "sum", "avg", "min", "max", "stddev", "sumsq"}

func closeTo(got, want float64) bool {
	return math.Abs(got-want) <= 1e-9*math.Max(1, math.Abs(want))
}

// checkAggRows compares the [value, start, end] rows of one method with the
// expected buckets.
func checkAggRows(t *testing.T, rows any, m string, want []expBucket) {
	t.Helper()
	list, ok := rows.([]any)
	if !ok {
		t.Fatalf("%s is not an array: %v", m, rows)
	}
	if len(list) != len(want) {
		t.Fatalf("%s has %d periods, want %d: %v", m, len(list), len(want), list)
	}
	for i, x := range list {
		row, ok := x.([]any)
		if !ok || len(row) != 3 {
			t.Fatalf("%s row %d is not [value, start, end]: %v", m, i, x)
		}
		w := want[i]
		v, ok := row[0].(float64)
		if !ok || !closeTo(v, aggregate(m, w.Vals)) {
			t.Errorf("%s over %v: %v, want %v (values %v)", m, w.Start, row[0], aggregate(m, w.Vals), w.Vals)
		}
		start, err1 := time.Parse(time.RFC3339Nano, fmt.Sprint(row[1]))
		end, err2 := time.Parse(time.RFC3339Nano, fmt.Sprint(row[2]))
		if err1 != nil || err2 != nil || !start.Equal(w.Start) || !end.Equal(w.End) {
			t.Errorf("%s row %d period [%v, %v], want [%v, %v]", m, i, row[1], row[2], w.Start, w.End)
		}
	}
}

func TestTemporalAggregationMethods(t *testing.T) {
	s := apitest.Start(t)
	recordAggSensor(t, s)
	from, _ := time.Parse(time.RFC3339, aggFrom)
	to, _ := time.Parse(time.RFC3339, aggTo)

	// The test's oracle, checked by hand once: the first day holds
	// 2, 3, 5, 5, 8, -2.5 and the second 4, 7.25, 1.
	days := expectBuckets(aggSamples, from, to, 24*time.Hour)
	if len(days) != 2 || aggregate("sum", days[0].Vals) != 20.5 || aggregate("sum", days[1].Vals) != 12.25 ||
		aggregate("distinctCount", days[0].Vals) != 5 || aggregate("stddev", []float64{2, 4}) != 1 {
		t.Fatalf("the test's own aggregation is wrong: %v", days)
	}

	periods := []struct {
		name, param string
		d           time.Duration
	}{
		{"P1D", "&aggrPeriodDuration=P1D", 24 * time.Hour},
		{"PT1H", "&aggrPeriodDuration=PT1H", time.Hour},
		{"PT0S", "&aggrPeriodDuration=PT0S", 0},
		{"default_whole_window", "", 0},
	}
	for _, p := range periods {
		want := expectBuckets(aggSamples, from, to, p.d)
		for _, m := range aggMethods {
			t.Run(p.name+"/"+m, func(t *testing.T) {
				q := "?options=aggregatedValues&aggrMethods=" + m + p.param + "&" + aggBetween
				body := jsonObject(t, getTemporal(t, s, aggID, q, nil))
				level, ok := member(t, body, "level").(map[string]any)
				if !ok {
					t.Fatalf("level is not one series: %v", body["level"])
				}
				if level["type"] != "Property" {
					t.Errorf("type %v", level["type"])
				}
				checkAggRows(t, level[m], m, want)
				for _, other := range aggMethods {
					if _, has := level[other]; has && other != m {
						t.Errorf("%s was not asked for but is there", other)
					}
				}
			})
		}
		t.Run(p.name+"/all_at_once", func(t *testing.T) {
			q := "?options=aggregatedValues&aggrMethods=" + strings.Join(aggMethods, ",") + p.param + "&" + aggBetween
			level := member(t, jsonObject(t, getTemporal(t, s, aggID, q, nil)), "level").(map[string]any)
			for _, m := range aggMethods {
				checkAggRows(t, level[m], m, want)
			}
		})
	}

	// The same answers from sealed history (which the store may aggregate
	// from per-day summaries).
	t.Run("after_sealing", func(t *testing.T) {
		sealHistory(t, s)
		for _, p := range periods[:2] {
			want := expectBuckets(aggSamples, from, to, p.d)
			q := "?options=aggregatedValues&aggrMethods=" + strings.Join(aggMethods, ",") + p.param + "&" + aggBetween
			level := member(t, jsonObject(t, getTemporal(t, s, aggID, q, nil)), "level").(map[string]any)
			for _, m := range aggMethods {
				checkAggRows(t, level[m], m, want)
			}
		}
	})

	t.Run("format_parameter", func(t *testing.T) {
		a := getTemporal(t, s, aggID, "?format=aggregatedValues&aggrMethods=sum&aggrPeriodDuration=P1D&"+aggBetween, nil)
		b := getTemporal(t, s, aggID, "?options=aggregatedValues&aggrMethods=sum&aggrPeriodDuration=P1D&"+aggBetween, nil)
		sameJSON(t, a.Body, b.Body)
	})
}

// Methods that do not apply to an attribute's values answer null for each
// period (the current reading; see the report: 5.7.3.4 may want
// InvalidRequest instead).
func TestTemporalAggregationNotApplicable(t *testing.T) {
	s := apitest.Start(t)
	recordVehicle(t, s, nil)
	body := jsonObject(t, getTemporal(t, s, vehicleID, "?options=aggregatedValues&aggrMethods=totalCount,sum,stddev&attrs=isParked,street&"+vehicleWindow, nil))
	for _, name := range []string{"isParked", "street"} {
		series := seriesFor(t, member(t, body, name), "")
		for m, want := range map[string]any{"totalCount": 2.0, "sum": nil, "stddev": nil} {
			rows, _ := series[m].([]any)
			if len(rows) != 1 {
				t.Fatalf("%s %s rows %v", name, m, series[m])
			}
			if got := rows[0].([]any)[0]; got != want {
				t.Errorf("%s %s = %v, want %v", name, m, got, want)
			}
		}
	}
}

// --- timerel, timeproperty, lastN ---

func TestTemporalTimerel(t *testing.T) {
	s := apitest.Start(t)
	recordAggSensor(t, s)
	cases := []struct {
		name, query string
		want        []any
	}{
		{"no_timerel_all_in_time_order", "", nums(1000, 2, 3, 5, 5, 8, -2.5, 4, 7.25, 1, 100)},
		{"before_excludes_timeAt", "timerel=before&timeAt=2024-03-01T10:20:00Z", nums(1000, 2, 3)},
		{"after_includes_timeAt", "timerel=after&timeAt=2024-03-01T10:20:00Z", nums(5, 5, 8, -2.5, 4, 7.25, 1, 100)},
		{"between_includes_timeAt_excludes_endTimeAt", "timerel=between&timeAt=2024-03-01T10:20:00Z&endTimeAt=2024-03-01T11:10:00Z", nums(5, 5)},
		{"between_window", aggBetween, nums(2, 3, 5, 5, 8, -2.5, 4, 7.25, 1)},
		{"before_first_instant", "timerel=before&timeAt=2024-03-01T00:00:00Z", nums(1000)},
		{"after_last_instant", "timerel=after&timeAt=2024-03-03T00:00:00Z", nums(100)},
		{"timeAt_with_offset", "timerel=between&timeAt=" + url.QueryEscape("2024-03-01T11:20:00+01:00") + "&endTimeAt=2024-03-01T11:10:00Z", nums(5, 5)},
		{"pre_1.3_names_time_endTime", "timerel=between&time=2024-03-01T10:20:00Z&endTime=2024-03-01T11:10:00Z", nums(5, 5)},
		{"lastN", "lastN=2", nums(1, 100)},
		{"lastN_in_window", "lastN=3&timerel=before&timeAt=2024-03-02T00:00:00Z", nums(5, 8, -2.5)},
		{"lastN_between", "lastN=1&timerel=between&timeAt=2024-03-01T10:20:00Z&endTimeAt=2024-03-01T11:10:00Z", nums(5)},
		{"lastN_larger_than_history", "lastN=100", nums(1000, 2, 3, 5, 5, 8, -2.5, 4, 7.25, 1, 100)},
		{"attrs", "attrs=level&timerel=after&timeAt=2024-03-02T12:00:00Z", nums(1, 100)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := jsonObject(t, getTemporal(t, s, aggID, "?options=temporalValues&"+tc.query, nil))
			if got := tvValues(t, body, "level", ""); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("values %v, want %v", got, tc.want)
			}
			// The normalized representation selects the same instances.
			norm := jsonObject(t, getTemporal(t, s, aggID, "?"+tc.query, nil))
			var got []any
			for _, in := range instances(t, norm, "level") {
				got = append(got, in["value"])
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("normalized values %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("window_with_no_instance", func(t *testing.T) {
		body := jsonObject(t, getTemporal(t, s, aggID, "?timerel=before&timeAt=2000-01-01T00:00:00Z", nil))
		if got := temporalAttrNames(body); len(got) != 0 || body["id"] != aggID || body["type"] != "Sensor" {
			t.Errorf("got %v", body)
		}
	})
	t.Run("times_are_observedAt", func(t *testing.T) {
		body := jsonObject(t, getTemporal(t, s, aggID, "?options=temporalValues&lastN=1", nil))
		if got := tvPairs(t, body, "level", "", "values"); !reflect.DeepEqual(got, []pair{{100.0, "2024-03-03T00:00:00.000Z"}}) {
			t.Errorf("got %v", got)
		}
	})
}

// lastN keeps the last n instances of each datasetId.
func TestTemporalLastNPerDataset(t *testing.T) {
	s := apitest.Start(t)
	recordVehicle(t, s, nil)
	body := jsonObject(t, getTemporal(t, s, vehicleID, "?options=temporalValues&lastN=1&attrs=temperature,speed", nil))
	if got := tvValues(t, body, "temperature", ""); !reflect.DeepEqual(got, nums(19)) {
		t.Errorf("default temperature %v", got)
	}
	if got := tvValues(t, body, "temperature", datasetB); !reflect.DeepEqual(got, nums(22)) {
		t.Errorf("temperature B %v", got)
	}
	if got := tvValues(t, body, "speed", ""); !reflect.DeepEqual(got, nums(70)) {
		t.Errorf("speed %v", got)
	}
}

func TestTemporalTimeProperty(t *testing.T) {
	s := apitest.Start(t)
	id := "urn:ngsi-ld:Sensor:TP"
	start := time.Now()
	mustCreate(t, s, map[string]any{"id": id, "type": "Sensor", "x": obs(1, "2020-01-01T00:00:00Z")}, nil)
	time.Sleep(20 * time.Millisecond)
	mid := time.Now().UTC()
	time.Sleep(20 * time.Millisecond)
	// Observed earlier than the first value, recorded later.
	s.Patch(entityPath(id)+"/attrs/x", map[string]any{"value": 2, "observedAt": "2019-01-01T00:00:00Z"}, nil).Expect(t, http.StatusNoContent)
	midParam := url.QueryEscape(mid.Format(time.RFC3339Nano))

	cases := []struct {
		name, query string
		want        []any
	}{
		{"observedAt_order", "", nums(2, 1)},
		{"modifiedAt_order", "timeproperty=modifiedAt", nums(1, 2)},
		{"modifiedAt_after", "timeproperty=modifiedAt&timerel=after&timeAt=" + midParam, nums(2)},
		{"modifiedAt_before", "timeproperty=modifiedAt&timerel=before&timeAt=" + midParam, nums(1)},
		{"observedAt_explicit", "timeproperty=observedAt&timerel=before&timeAt=2019-06-01T00:00:00Z", nums(2)},
		// An instance's createdAt is its attribute's: the update kept it.
		{"createdAt_before", "timeproperty=createdAt&timerel=before&timeAt=" + midParam, nums(1, 2)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := jsonObject(t, getTemporal(t, s, id, "?options=temporalValues&"+tc.query, nil))
			if got := tvValues(t, body, "x", ""); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("values %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("modifiedAt_after_observed_none", func(t *testing.T) {
		body := jsonObject(t, getTemporal(t, s, id, "?timerel=after&timeAt="+midParam, nil))
		if got := temporalAttrNames(body); len(got) != 0 {
			t.Errorf("by observedAt nothing is after %v, got %v", mid, body)
		}
	})
	t.Run("times_are_modifiedAt", func(t *testing.T) {
		body := jsonObject(t, getTemporal(t, s, id, "?options=temporalValues&timeproperty=modifiedAt", nil))
		ps := tvPairs(t, body, "x", "", "values")
		if len(ps) != 2 {
			t.Fatalf("pairs %v", ps)
		}
		t0, err0 := time.Parse(time.RFC3339Nano, ps[0].At)
		t1, err1 := time.Parse(time.RFC3339Nano, ps[1].At)
		if err0 != nil || err1 != nil || t0.Before(start.Truncate(time.Millisecond)) || !t0.Before(mid) || t1.Before(mid) {
			t.Errorf("modifiedAt times %v around %v", ps, mid)
		}
		// The normalized instances show the time they are placed at.
		norm := jsonObject(t, getTemporal(t, s, id, "?timeproperty=modifiedAt&timerel=after&timeAt="+midParam, nil))
		insts := instances(t, norm, "x")
		if len(insts) != 1 || insts[0]["modifiedAt"] != ps[1].At || insts[0]["observedAt"] != "2019-01-01T00:00:00.000Z" {
			t.Errorf("instance %v", insts)
		}
	})
}

// --- querying entities ---

// recordFleet creates three vehicles and a sensor, each with two speed (or
// temperature) instances: 08:00 then 09:00 on 2024-06-01.
//
//	Vehicle:V1  speed 60 -> 80    Grand-Place
//	Vehicle:V2  speed 40 -> 50    Antwerp
//	Vehicle:V3  speed 100 -> 120  Brussels-Midi (1.7 km from Grand-Place)
//	Sensor:S1   temperature 10 -> 11, Grand-Place
func recordFleet(t testing.TB, s *apitest.Server, hdr map[string]string) {
	t.Helper()
	type v struct {
		id, typ, attr string
		a, b          float64
		coords        []any
	}
	for _, x := range []v{
		{"urn:ngsi-ld:Vehicle:V1", "Vehicle", "speed", 60, 80, []any{4.3525, 50.8467}},
		{"urn:ngsi-ld:Vehicle:V2", "Vehicle", "speed", 40, 50, []any{4.4025, 51.2194}},
		{"urn:ngsi-ld:Vehicle:V3", "Vehicle", "speed", 100, 120, []any{4.3355, 50.8357}},
		{"urn:ngsi-ld:Sensor:S1", "Sensor", "temperature", 10, 11, []any{4.3525, 50.8467}},
	} {
		s.Post(apiBase+"/entities", map[string]any{
			"id": x.id, "type": x.typ,
			x.attr:     obs(x.a, "2024-06-01T08:00:00Z"),
			"location": geoProp("Point", x.coords),
		}, hdr).Expect(t, http.StatusCreated)
		s.Patch(entityPath(x.id)+"/attrs/"+x.attr, map[string]any{"value": x.b, "observedAt": "2024-06-01T09:00:00Z"}, hdr).
			Expect(t, http.StatusNoContent)
	}
}

const fleetAfter = "timerel=after&timeAt=2024-01-01T00:00:00Z"

// temporalIDs runs GET /temporal/entities?<params> (200) and returns the
// ids and the bodies.
func temporalIDs(t testing.TB, s *apitest.Server, params string, hdr map[string]string) ([]string, []map[string]any, *apitest.Response) {
	t.Helper()
	r := s.Get(temporalBase+"?"+params, hdr).Expect(t, http.StatusOK)
	return temporalList(t, r)
}

func temporalList(t testing.TB, r *apitest.Response) ([]string, []map[string]any, *apitest.Response) {
	t.Helper()
	var list []map[string]any
	if err := json.Unmarshal(r.Body, &list); err != nil {
		t.Fatalf("not a JSON array of entities: %s", r.Body)
	}
	ids := make([]string, len(list))
	for i, e := range list {
		ids[i], _ = e["id"].(string)
	}
	return ids, list, r
}

func TestTemporalQuery(t *testing.T) {
	s := apitest.Start(t)
	recordFleet(t, s, nil)
	v1, v2, v3, s1 := "urn:ngsi-ld:Vehicle:V1", "urn:ngsi-ld:Vehicle:V2", "urn:ngsi-ld:Vehicle:V3", "urn:ngsi-ld:Sensor:S1"
	grandPlace := coordsParam([]any{4.3525, 50.8467})

	cases := []struct {
		name, params string
		want         []string
	}{
		{"type", "type=Vehicle", []string{v1, v2, v3}},
		{"other_type", "type=Sensor", []string{s1}},
		{"type_list", "type=Sensor,Vehicle", []string{v1, v2, v3, s1}},
		{"q_on_current_state", "type=Vehicle&q=" + enc("speed>70"), []string{v1, v3}},
		{"q_without_type", "q=" + enc("speed<60"), []string{v2}},
		{"idPattern", "idPattern=" + enc("^urn:ngsi-ld:Vehicle:V[12]$"), []string{v1, v2}},
		{"id", "id=" + v3 + "," + s1, []string{v3, s1}},
		{"georel_near", "type=Vehicle&georel=" + enc("near;maxDistance==2000") + "&geometry=Point&coordinates=" + grandPlace, []string{v1, v3}},
		{"georel_near_any_type", "georel=" + enc("near;maxDistance==100") + "&geometry=Point&coordinates=" + grandPlace, []string{v1, s1}},
		{"limit_offset", "type=Vehicle&limit=2&offset=1", []string{v2, v3}},
		{"attrs_selects_entities", "attrs=temperature", []string{s1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ids, _, _ := temporalIDs(t, s, tc.params+"&"+fleetAfter, nil)
			if !slices.Equal(ids, tc.want) {
				t.Errorf("ids %v, want %v", ids, tc.want)
			}
		})
	}

	t.Run("count", func(t *testing.T) {
		ids, _, r := temporalIDs(t, s, "type=Vehicle&count=true&limit=1&offset=1&"+fleetAfter, nil)
		if !slices.Equal(ids, []string{v2}) || r.Header.Get("NGSILD-Results-Count") != "3" {
			t.Errorf("ids %v, count %q", ids, r.Header.Get("NGSILD-Results-Count"))
		}
		ids, _, r = temporalIDs(t, s, "type=Vehicle&count=true&limit=0&"+fleetAfter, nil)
		if len(ids) != 0 || r.Header.Get("NGSILD-Results-Count") != "3" {
			t.Errorf("limit=0: ids %v, count %q", ids, r.Header.Get("NGSILD-Results-Count"))
		}
		_, _, r = temporalIDs(t, s, "type=Vehicle&"+fleetAfter, nil)
		if c := r.Header.Get("NGSILD-Results-Count"); c != "" {
			t.Errorf("count without count=true: %q", c)
		}
	})

	t.Run("history_of_each_entity", func(t *testing.T) {
		_, list, _ := temporalIDs(t, s, "type=Vehicle&options=temporalValues&timerel=between&timeAt=2024-06-01T08:30:00Z&endTimeAt=2024-06-01T09:30:00Z", nil)
		want := map[string][]any{v1: nums(80), v2: nums(50), v3: nums(120)}
		for _, e := range list {
			if got := tvValues(t, e, "speed", ""); !reflect.DeepEqual(got, want[e["id"].(string)]) {
				t.Errorf("%v speed %v", e["id"], got)
			}
			if _, has := e["location"]; has {
				t.Errorf("%v: location has no instance in the window but is there", e["id"])
			}
		}
		_, list, _ = temporalIDs(t, s, "type=Vehicle&lastN=1&"+fleetAfter, nil)
		for _, e := range list {
			if n := len(instances(t, e, "speed")); n != 1 {
				t.Errorf("%v: lastN=1 gave %d speed instances", e["id"], n)
			}
		}
	})

	t.Run("entity_without_instances_in_window", func(t *testing.T) {
		_, list, _ := temporalIDs(t, s, "type=Vehicle&timerel=before&timeAt=2000-01-01T00:00:00Z", nil)
		if len(list) != 3 {
			t.Fatalf("got %v", list)
		}
		for _, e := range list {
			if got := temporalAttrNames(e); len(got) != 0 || e["type"] != "Vehicle" {
				t.Errorf("%v: %v", e["id"], e)
			}
		}
	})

	t.Run("aggregated", func(t *testing.T) {
		_, list, _ := temporalIDs(t, s, "type=Vehicle&attrs=speed&options=aggregatedValues&aggrMethods=max,totalCount&timerel=between&timeAt=2024-06-01T00:00:00Z&endTimeAt=2024-06-02T00:00:00Z", nil)
		want := map[string]float64{v1: 80, v2: 50, v3: 120}
		for _, e := range list {
			sp := member(t, e, "speed").(map[string]any)
			row := sp["max"].([]any)[0].([]any)
			if row[0] != want[e["id"].(string)] || sp["totalCount"].([]any)[0].([]any)[0] != 2.0 {
				t.Errorf("%v: %v", e["id"], sp)
			}
			if row[1] != "2024-06-01T00:00:00.000Z" || row[2] != "2024-06-02T00:00:00.000Z" {
				t.Errorf("%v: period %v", e["id"], row)
			}
		}
	})

	t.Run("post_query", func(t *testing.T) {
		body := map[string]any{
			"type":     "Query",
			"entities": []any{map[string]any{"type": "Vehicle"}},
			"q":        "speed>70",
			"attrs":    []any{"speed"},
			"temporalQ": map[string]any{
				"timerel": "between", "timeAt": "2024-06-01T08:30:00Z", "endTimeAt": "2024-06-01T09:30:00Z",
			},
		}
		ids, list, _ := temporalList(t, s.Post(apiBase+"/temporal/entityOperations/query?options=temporalValues", body, nil).Expect(t, http.StatusOK))
		if !slices.Equal(ids, []string{v1, v3}) {
			t.Fatalf("ids %v", ids)
		}
		for i, want := range [][]any{nums(80), nums(120)} {
			if got := tvValues(t, list[i], "speed", ""); !reflect.DeepEqual(got, want) {
				t.Errorf("%s speed %v, want %v", ids[i], got, want)
			}
			if got := temporalAttrNames(list[i]); !slices.Equal(got, []string{"speed"}) {
				t.Errorf("%s attributes %v", ids[i], got)
			}
		}
	})

	t.Run("post_query_lastN_and_aggregation", func(t *testing.T) {
		body := map[string]any{
			"type":      "Query",
			"entities":  []any{map[string]any{"idPattern": "^urn:ngsi-ld:Vehicle:V[13]$"}},
			"temporalQ": map[string]any{"timerel": "after", "timeAt": "2024-01-01T00:00:00Z", "lastN": 1},
		}
		_, list, _ := temporalList(t, s.Post(apiBase+"/temporal/entityOperations/query?options=temporalValues", body, nil).Expect(t, http.StatusOK))
		if len(list) != 2 || !reflect.DeepEqual(tvValues(t, list[0], "speed", ""), nums(80)) || !reflect.DeepEqual(tvValues(t, list[1], "speed", ""), nums(120)) {
			t.Errorf("lastN 1: %v", list)
		}
		// lastN in the URL works for POST too.
		delete(body["temporalQ"].(map[string]any), "lastN")
		_, list, _ = temporalList(t, s.Post(apiBase+"/temporal/entityOperations/query?options=temporalValues&lastN=1", body, nil).Expect(t, http.StatusOK))
		if len(list) != 2 || !reflect.DeepEqual(tvValues(t, list[0], "speed", ""), nums(80)) {
			t.Errorf("URL lastN 1: %v", list)
		}
		// aggrMethods and aggrPeriodDuration in temporalQ.
		body["temporalQ"] = map[string]any{"timerel": "between", "timeAt": "2024-06-01T00:00:00Z", "endTimeAt": "2024-06-02T00:00:00Z",
			"aggrMethods": []any{"min", "sum"}, "aggrPeriodDuration": "PT1H"}
		_, list, _ = temporalList(t, s.Post(apiBase+"/temporal/entityOperations/query?options=aggregatedValues&attrs=speed", body, nil).Expect(t, http.StatusOK))
		if len(list) != 2 {
			t.Fatalf("aggregated: %v", list)
		}
		sp := member(t, list[0], "speed").(map[string]any)
		wantSum := []any{
			[]any{60.0, "2024-06-01T08:00:00.000Z", "2024-06-01T09:00:00.000Z"},
			[]any{80.0, "2024-06-01T09:00:00.000Z", "2024-06-01T10:00:00.000Z"},
		}
		if !reflect.DeepEqual(sp["sum"], wantSum) {
			t.Errorf("V1 sum %v, want %v", sp["sum"], wantSum)
		}
	})
}

// --- provisioning: POST /temporal/entities and the instance operations ---

func TestTemporalProvisioning(t *testing.T) {
	s := apitest.Start(t)
	id := "urn:ngsi-ld:Sensor:P1"
	hist := func(t *testing.T) map[string]any {
		t.Helper()
		return jsonObject(t, getTemporal(t, s, id, "?options=temporalValues", nil))
	}
	current := func(t *testing.T) map[string]any {
		t.Helper()
		return jsonObject(t, readEntity(t, s, id, "?options=keyValues", nil))
	}

	t.Run("create_with_back_filled_history", func(t *testing.T) {
		r := s.Post(temporalBase, map[string]any{
			"id": id, "type": "Sensor",
			// not in time order: the entity gets the latest of each
			"temperature": []any{
				obs(10, "2024-01-01T01:00:00Z"),
				with(obs(12, "2024-01-01T03:00:00Z"), "unitCode", "CEL"),
				obs(11, "2024-01-01T02:00:00Z"),
			},
			"status": obs("ok", "2024-01-01T01:00:00Z"),
		}, nil).Expect(t, http.StatusCreated)
		if got, want := r.Header.Get("Location"), temporalPath(id); got != want {
			t.Errorf("Location %q, want %q", got, want)
		}
		if len(r.Body) != 0 {
			t.Errorf("201 with a body: %s", r.Body)
		}
		cur := jsonObject(t, readEntity(t, s, id, "", nil))
		wantTemp := map[string]any{"type": "Property", "value": 12.0, "unitCode": "CEL", "observedAt": "2024-01-01T03:00:00.000Z"}
		if !reflect.DeepEqual(cur["temperature"], wantTemp) || cur["type"] != "Sensor" {
			t.Errorf("current entity %v", cur)
		}
		h := hist(t)
		got := tvPairs(t, h, "temperature", "", "values")
		want := []pair{{10.0, "2024-01-01T01:00:00.000Z"}, {11.0, "2024-01-01T02:00:00.000Z"}, {12.0, "2024-01-01T03:00:00.000Z"}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("temperature history %v, want %v", got, want)
		}
		if got := tvPairs(t, h, "status", "", "values"); !reflect.DeepEqual(got, []pair{{"ok", "2024-01-01T01:00:00.000Z"}}) {
			t.Errorf("status history %v", got)
		}
		// It is found by queries like any entity.
		if ids := queryIDs(t, s, "type=Sensor", nil); !slices.Equal(ids, []string{id}) {
			t.Errorf("query ids %v", ids)
		}
	})

	t.Run("again_on_the_existing_entity", func(t *testing.T) {
		before := readEntity(t, s, id, "?options=sysAttrs", nil).Body
		r := s.Post(temporalBase, map[string]any{
			"id": id, "type": "Sensor",
			"temperature": obs(50, "2024-01-01T04:00:00Z"),
		}, nil).Expect(t, http.StatusNoContent)
		if len(r.Body) != 0 || r.Header.Get("Location") != "" {
			t.Errorf("204 with a body or Location: %q %s", r.Header.Get("Location"), r.Body)
		}
		// The current state is left as it is, even by a later instance.
		sameJSON(t, readEntity(t, s, id, "?options=sysAttrs", nil).Body, before)
		if got := tvValues(t, hist(t), "temperature", ""); !reflect.DeepEqual(got, nums(10, 11, 12, 50)) {
			t.Errorf("temperature history %v", got)
		}
	})

	t.Run("add_attrs", func(t *testing.T) {
		before := readEntity(t, s, id, "?options=sysAttrs", nil).Body
		s.Post(temporalPath(id)+"/attrs", map[string]any{
			"temperature": obs(13, "2024-01-01T05:00:00Z"),
			"humidity":    []any{obs(30, "2024-01-01T01:00:00Z"), obs(31, "2024-01-01T02:00:00Z")},
		}, nil).Expect(t, http.StatusNoContent)
		h := hist(t)
		if got := tvValues(t, h, "temperature", ""); !reflect.DeepEqual(got, nums(10, 11, 12, 50, 13)) {
			t.Errorf("temperature history %v", got)
		}
		if got := tvValues(t, h, "humidity", ""); !reflect.DeepEqual(got, nums(30, 31)) {
			t.Errorf("humidity history %v", got)
		}
		sameJSON(t, readEntity(t, s, id, "?options=sysAttrs", nil).Body, before)
		if _, has := current(t)["humidity"]; has {
			t.Error("POST /temporal/entities/{id}/attrs changed the current entity")
		}
		// The body may repeat the entity's id.
		s.Post(temporalPath(id)+"/attrs", map[string]any{"id": id, "humidity": obs(32, "2024-01-01T03:00:00Z")}, nil).
			Expect(t, http.StatusNoContent)
		if got := tvValues(t, hist(t), "humidity", ""); !reflect.DeepEqual(got, nums(30, 31, 32)) {
			t.Errorf("humidity history %v", got)
		}
	})

	t.Run("add_attrs_to_missing_entity", func(t *testing.T) {
		missing := "urn:ngsi-ld:Sensor:none"
		problem(t, s.Post(temporalPath(missing)+"/attrs", map[string]any{"x": obs(1, "2024-01-01T00:00:00Z")}, nil),
			http.StatusNotFound, "ResourceNotFound")
		s.Get(temporalPath(missing), nil).ExpectProblem(t, http.StatusNotFound, "ResourceNotFound")
		s.Get(entityPath(missing), nil).ExpectProblem(t, http.StatusNotFound, "ResourceNotFound")
	})

	// The instanceId of temperature 11, taken from a GET.
	instanceAt := func(t *testing.T, attr, observedAt string) string {
		t.Helper()
		body := jsonObject(t, getTemporal(t, s, id, "?attrs="+attr, nil))
		for _, in := range instances(t, body, attr) {
			if in["observedAt"] == observedAt {
				return in["instanceId"].(string)
			}
		}
		t.Fatalf("no %s instance at %s", attr, observedAt)
		return ""
	}
	instancePath := func(attr, iid string) string {
		return temporalPath(id) + "/attrs/" + attr + "/" + url.PathEscape(iid)
	}

	t.Run("patch_instance", func(t *testing.T) {
		iid := instanceAt(t, "temperature", "2024-01-01T02:00:00.000Z")
		currentBefore := readEntity(t, s, id, "?options=sysAttrs", nil).Body
		s.Patch(instancePath("temperature", iid), map[string]any{
			"type": "Property", "value": 99, "unitCode": "CEL",
			// the instance keeps its time: this is not used
			"observedAt": "2030-01-01T00:00:00Z",
		}, nil).Expect(t, http.StatusNoContent)
		body := jsonObject(t, getTemporal(t, s, id, "?attrs=temperature", nil))
		insts := instances(t, body, "temperature")
		var values []any
		for _, in := range insts {
			values = append(values, in["value"])
			if in["instanceId"] == iid {
				want := map[string]any{"type": "Property", "value": 99.0, "unitCode": "CEL", "observedAt": "2024-01-01T02:00:00.000Z", "instanceId": iid}
				if !reflect.DeepEqual(in, want) {
					t.Errorf("replaced instance %v, want %v", in, want)
				}
			}
		}
		if !reflect.DeepEqual(values, nums(10, 99, 12, 50, 13)) {
			t.Errorf("temperature history %v", values)
		}
		sameJSON(t, readEntity(t, s, id, "?options=sysAttrs", nil).Body, currentBefore)
	})

	t.Run("patch_missing_instance", func(t *testing.T) {
		for _, iid := range []string{"urn:ngsi-ld:Instance:nope", instanceAt(t, "humidity", "2024-01-01T01:00:00.000Z")} {
			// An instanceId that exists, but of another attribute, is not found either.
			d := problem(t, s.Patch(instancePath("temperature", iid), pv(1), nil), http.StatusNotFound, "ResourceNotFound")
			if !strings.Contains(d, iid) {
				t.Errorf("detail %q does not name the instance", d)
			}
		}
	})

	t.Run("delete_instance", func(t *testing.T) {
		iid := instanceAt(t, "temperature", "2024-01-01T03:00:00.000Z")
		s.Delete(instancePath("temperature", iid), nil).Expect(t, http.StatusNoContent)
		if got := tvValues(t, hist(t), "temperature", ""); !reflect.DeepEqual(got, nums(10, 99, 50, 13)) {
			t.Errorf("temperature history %v", got)
		}
		problem(t, s.Delete(instancePath("temperature", iid), nil), http.StatusNotFound, "ResourceNotFound")
		// The current entity, whose temperature was that instance, stays.
		if got := current(t)["temperature"]; got != 12.0 {
			t.Errorf("current temperature %v", got)
		}
	})

	t.Run("delete_attribute_history", func(t *testing.T) {
		s.Delete(temporalPath(id)+"/attrs/humidity", nil).Expect(t, http.StatusNoContent)
		if _, has := hist(t)["humidity"]; has {
			t.Error("humidity history is still there")
		}
		problem(t, s.Delete(temporalPath(id)+"/attrs/humidity", nil), http.StatusNotFound, "ResourceNotFound")
	})

	t.Run("delete_entity_history", func(t *testing.T) {
		s.Delete(temporalPath(id), nil).Expect(t, http.StatusNoContent)
		problem(t, s.Get(temporalPath(id), nil), http.StatusNotFound, "ResourceNotFound")
		problem(t, s.Delete(temporalPath(id), nil), http.StatusNotFound, "ResourceNotFound")
		// Only history goes: the current entity stays (see the report).
		if got := current(t)["temperature"]; got != 12.0 {
			t.Errorf("current temperature %v", got)
		}
		// New writes start a new history.
		s.Patch(entityPath(id)+"/attrs/temperature", map[string]any{"value": 14, "observedAt": "2024-01-02T00:00:00Z"}, nil).Expect(t, http.StatusNoContent)
		if got := tvValues(t, hist(t), "temperature", ""); !reflect.DeepEqual(got, nums(14)) {
			t.Errorf("temperature history %v", got)
		}
	})
}

// Deleting an attribute's history by datasetId: the default instance
// without datasetId, one datasetId, or all with deleteAll.
func TestTemporalDeleteAttributeHistoryDatasets(t *testing.T) {
	id := "urn:ngsi-ld:Sensor:M1"
	dsA, dsB := "urn:ngsi-ld:Dataset:A", "urn:ngsi-ld:Dataset:B"
	setup := func(t *testing.T) *apitest.Server {
		s := apitest.Start(t)
		s.Post(temporalBase, map[string]any{"id": id, "type": "Sensor", "temperature": []any{
			obs(1, "2024-01-01T01:00:00Z"), obs(2, "2024-01-01T02:00:00Z"),
			with(obs(10, "2024-01-01T01:30:00Z"), "datasetId", dsA),
			with(obs(20, "2024-01-01T01:45:00Z"), "datasetId", dsB), with(obs(21, "2024-01-01T02:45:00Z"), "datasetId", dsB),
		}, "status": obs("ok", "2024-01-01T01:00:00Z")}, nil).Expect(t, http.StatusCreated)
		return s
	}
	datasets := func(t *testing.T, s *apitest.Server) map[string][]any {
		t.Helper()
		body := jsonObject(t, getTemporal(t, s, id, "?options=temporalValues", nil))
		out := map[string][]any{}
		if v, ok := body["temperature"]; ok {
			for _, ser := range seriesOf(t, v) {
				ds, _ := ser["datasetId"].(string)
				for _, p := range ser["values"].([]any) {
					out[ds] = append(out[ds], p.([]any)[0])
				}
			}
		}
		if _, ok := body["status"]; !ok {
			t.Error("status history went too")
		}
		return out
	}
	cases := []struct {
		name, query string
		want        map[string][]any
	}{
		{"default_instance", "", map[string][]any{dsA: nums(10), dsB: nums(20, 21)}},
		{"one_datasetId", "?datasetId=" + url.QueryEscape(dsB), map[string][]any{"": nums(1, 2), dsA: nums(10)}},
		{"deleteAll", "?deleteAll=true", map[string][]any{}},
		{"deleteAll_false_is_default_instance", "?deleteAll=false", map[string][]any{dsA: nums(10), dsB: nums(20, 21)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := setup(t)
			s.Delete(temporalPath(id)+"/attrs/temperature"+tc.query, nil).Expect(t, http.StatusNoContent)
			if got := datasets(t, s); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("left %v, want %v", got, tc.want)
			}
			problem(t, s.Delete(temporalPath(id)+"/attrs/temperature"+tc.query, nil), http.StatusNotFound, "ResourceNotFound")
		})
	}
	t.Run("unknown_datasetId", func(t *testing.T) {
		s := setup(t)
		problem(t, s.Delete(temporalPath(id)+"/attrs/temperature?datasetId=urn:ngsi-ld:Dataset:none", nil), http.StatusNotFound, "ResourceNotFound")
		if got := datasets(t, s); len(got) != 3 {
			t.Errorf("left %v", got)
		}
	})
}

// --- history outlives the entity ---

func TestTemporalHistorySurvivesEntityDeletion(t *testing.T) {
	s := apitest.Start(t)
	recordVehicle(t, s, nil)
	normalized := getTemporal(t, s, vehicleID, "", nil).Body
	values := getTemporal(t, s, vehicleID, "?options=temporalValues", nil).Body

	// Deleting an attribute keeps its history.
	s.Delete(entityPath(vehicleID)+"/attrs/isParked", nil).Expect(t, http.StatusNoContent)
	if got := getTemporal(t, s, vehicleID, "", nil).Body; string(got) != string(normalized) {
		t.Errorf("history changed by deleting an attribute\n--- before\n%s\n--- after\n%s", normalized, got)
	}

	s.Delete(entityPath(vehicleID), nil).Expect(t, http.StatusNoContent)
	s.Get(entityPath(vehicleID), nil).ExpectProblem(t, http.StatusNotFound, "ResourceNotFound")
	// Everything is still there, with the type it had.
	if got := getTemporal(t, s, vehicleID, "", nil).Body; string(got) != string(normalized) {
		t.Errorf("history changed by deleting the entity\n--- before\n%s\n--- after\n%s", normalized, got)
	}
	if got := getTemporal(t, s, vehicleID, "?options=temporalValues", nil).Body; string(got) != string(values) {
		t.Errorf("temporalValues changed by deleting the entity")
	}
	// The entity's own system times went with it.
	body := jsonObject(t, getTemporal(t, s, vehicleID, "?options=sysAttrs", nil))
	if _, has := body["createdAt"]; has {
		t.Errorf("a deleted entity has createdAt: %v", body["createdAt"])
	}
	// Queries select entities by their current state, so they do not find
	// it (see the report).
	if ids, _, _ := temporalIDs(t, s, "type=Vehicle&"+vehicleWindow, nil); len(ids) != 0 {
		t.Errorf("query found %v", ids)
	}

	// Creating it again continues its history.
	mustCreate(t, s, map[string]any{"id": vehicleID, "type": "Vehicle", "speed": obs(30, "2024-05-03T00:00:00Z")}, nil)
	body = jsonObject(t, getTemporal(t, s, vehicleID, "?options=temporalValues&attrs=speed", nil))
	if got := tvValues(t, body, "speed", ""); !reflect.DeepEqual(got, nums(80, 85, 90, 70, 30)) {
		t.Errorf("speed history %v", got)
	}
	// And the whole history can still be deleted.
	s.Delete(temporalPath(vehicleID), nil).Expect(t, http.StatusNoContent)
	s.Get(temporalPath(vehicleID), nil).ExpectProblem(t, http.StatusNotFound, "ResourceNotFound")
}

// --- bad input ---

// TestTemporalBadInput sends bad requests and checks the ProblemDetails
// (type, and a detail naming the parameter) and that nothing stored
// changed.
func TestTemporalBadInput(t *testing.T) {
	s := apitest.Start(t)
	recordVehicle(t, s, nil)
	recordFleet(t, s, nil)
	snapshot := func() []string {
		return []string{
			string(getTemporal(t, s, vehicleID, "?options=sysAttrs", nil).Body),
			string(readEntity(t, s, vehicleID, "?options=sysAttrs", nil).Body),
			string(s.Get(temporalBase+"?type=Vehicle,Sensor,Thing&options=sysAttrs&"+fleetAfter, nil).Expect(t, http.StatusOK).Body),
			string(s.Get(apiBase+"/entities?type=Thing", nil).Expect(t, http.StatusOK).Body),
		}
	}
	before := snapshot()

	iid := instances(t, jsonObject(t, getTemporal(t, s, vehicleID, "?attrs=speed", nil)), "speed")[1]["instanceId"].(string)
	one := temporalPath(vehicleID)
	newThing := func(attrs map[string]any) map[string]any {
		e := map[string]any{"id": "urn:ngsi-ld:Thing:new", "type": "Thing"}
		for k, v := range attrs {
			e[k] = v
		}
		return e
	}
	goodQuery := map[string]any{"type": "Query", "entities": []any{map[string]any{"type": "Vehicle"}}}
	postQuery := func(tq any) any {
		q := map[string]any{}
		for k, v := range goodQuery {
			q[k] = v
		}
		if tq != nil {
			q["temporalQ"] = tq
		}
		return q
	}
	between := "&timerel=between&timeAt=2024-05-01T00:00:00Z&endTimeAt=2024-05-02T00:00:00Z"
	aggr := "?options=aggregatedValues&aggrMethods=sum" + between

	cases := []struct {
		name    string
		req     apitest.Req
		status  int
		errType string
		detail  string // the detail must contain it
	}{
		// The temporal query.
		{"between_without_endTimeAt", apitest.Req{Method: "GET", Path: one + "?timerel=between&timeAt=2024-05-01T00:00:00Z"}, 400, "BadRequestData", "endTimeAt"},
		{"endTimeAt_before_timeAt", apitest.Req{Method: "GET", Path: one + "?timerel=between&timeAt=2024-05-02T00:00:00Z&endTimeAt=2024-05-01T00:00:00Z"}, 400, "BadRequestData", "endTimeAt"},
		{"endTimeAt_equal_timeAt", apitest.Req{Method: "GET", Path: one + "?timerel=between&timeAt=2024-05-01T00:00:00Z&endTimeAt=2024-05-01T00:00:00Z"}, 400, "BadRequestData", "endTimeAt"},
		{"timerel_without_timeAt", apitest.Req{Method: "GET", Path: one + "?timerel=before"}, 400, "BadRequestData", "timeAt"},
		{"timeAt_without_timerel", apitest.Req{Method: "GET", Path: one + "?timeAt=2024-05-01T00:00:00Z"}, 400, "BadRequestData", "timerel"},
		{"endTimeAt_with_after", apitest.Req{Method: "GET", Path: one + "?timerel=after&timeAt=2024-05-01T00:00:00Z&endTimeAt=2024-05-02T00:00:00Z"}, 400, "BadRequestData", "endTimeAt"},
		{"unknown_timerel", apitest.Req{Method: "GET", Path: one + "?timerel=during&timeAt=2024-05-01T00:00:00Z"}, 400, "BadRequestData", "timerel"},
		{"timeAt_not_a_DateTime", apitest.Req{Method: "GET", Path: one + "?timerel=after&timeAt=yesterday"}, 400, "BadRequestData", "timeAt"},
		{"timeAt_without_zone", apitest.Req{Method: "GET", Path: one + "?timerel=after&timeAt=2024-05-01T00:00:00"}, 400, "BadRequestData", "timeAt"},
		{"endTimeAt_not_a_DateTime", apitest.Req{Method: "GET", Path: one + "?timerel=between&timeAt=2024-05-01T00:00:00Z&endTimeAt=later"}, 400, "BadRequestData", "endTimeAt"},
		{"bad_timeproperty", apitest.Req{Method: "GET", Path: one + "?timeproperty=observedat"}, 400, "BadRequestData", "timeproperty"},
		{"timeproperty_deletedAt", apitest.Req{Method: "GET", Path: one + "?timeproperty=deletedAt"}, 422, "OperationNotSupported", "deletedAt"},
		{"lastN_0", apitest.Req{Method: "GET", Path: one + "?lastN=0"}, 400, "BadRequestData", "lastN"},
		{"lastN_negative", apitest.Req{Method: "GET", Path: one + "?lastN=-1"}, 400, "BadRequestData", "lastN"},
		{"lastN_not_a_number", apitest.Req{Method: "GET", Path: one + "?lastN=abc"}, 400, "BadRequestData", "lastN"},
		{"lastN_fraction", apitest.Req{Method: "GET", Path: one + "?lastN=1.5"}, 400, "BadRequestData", "lastN"},
		// The representation and the aggregation.
		{"unknown_aggrMethod", apitest.Req{Method: "GET", Path: one + "?options=aggregatedValues&aggrMethods=sum,median" + between}, 400, "BadRequestData", "aggrMethods"},
		{"aggregatedValues_without_aggrMethods", apitest.Req{Method: "GET", Path: one + "?options=aggregatedValues" + between}, 400, "BadRequestData", "aggrMethods"},
		{"aggrPeriodDuration_P", apitest.Req{Method: "GET", Path: one + aggr + "&aggrPeriodDuration=P"}, 400, "BadRequestData", "aggrPeriodDuration"},
		{"aggrPeriodDuration_PT", apitest.Req{Method: "GET", Path: one + aggr + "&aggrPeriodDuration=PT"}, 400, "BadRequestData", "aggrPeriodDuration"},
		{"aggrPeriodDuration_1D", apitest.Req{Method: "GET", Path: one + aggr + "&aggrPeriodDuration=1D"}, 400, "BadRequestData", "aggrPeriodDuration"},
		{"aggrPeriodDuration_P1X", apitest.Req{Method: "GET", Path: one + aggr + "&aggrPeriodDuration=P1X"}, 400, "BadRequestData", "aggrPeriodDuration"},
		{"aggrPeriodDuration_negative", apitest.Req{Method: "GET", Path: one + aggr + "&aggrPeriodDuration=-P1D"}, 400, "BadRequestData", "aggrPeriodDuration"},
		{"aggrMethods_without_aggregatedValues", apitest.Req{Method: "GET", Path: one + "?aggrMethods=sum"}, 400, "BadRequestData", "aggrMethods"},
		{"aggrPeriodDuration_without_aggregatedValues", apitest.Req{Method: "GET", Path: one + "?options=temporalValues&aggrPeriodDuration=P1D"}, 400, "BadRequestData", "aggrPeriodDuration"},
		{"unknown_option", apitest.Req{Method: "GET", Path: one + "?options=concise"}, 400, "BadRequestData", "concise"},
		{"two_representations", apitest.Req{Method: "GET", Path: one + "?options=temporalValues,aggregatedValues&aggrMethods=sum"}, 400, "BadRequestData", "representation"},
		{"entity_id_not_a_URI", apitest.Req{Method: "GET", Path: temporalBase + "/not%20a%20uri"}, 400, "BadRequestData", "not a uri"},
		// Querying entities.
		{"query_without_timerel", apitest.Req{Method: "GET", Path: temporalBase + "?type=Vehicle"}, 400, "BadRequestData", "timerel"},
		{"query_without_entity_filter", apitest.Req{Method: "GET", Path: temporalBase + "?" + fleetAfter}, 400, "BadRequestData", "type"},
		{"query_bad_lastN", apitest.Req{Method: "GET", Path: temporalBase + "?type=Vehicle&lastN=0&" + fleetAfter}, 400, "BadRequestData", "lastN"},
		{"query_bad_timerel", apitest.Req{Method: "GET", Path: temporalBase + "?type=Vehicle&timerel=around&timeAt=2024-05-01T00:00:00Z"}, 400, "BadRequestData", "timerel"},
		{"post_query_without_temporalQ", apitest.Req{Method: "POST", Path: apiBase + "/temporal/entityOperations/query", Body: postQuery(nil)}, 400, "BadRequestData", "timerel"},
		{"post_query_temporalQ_not_object", apitest.Req{Method: "POST", Path: apiBase + "/temporal/entityOperations/query", Body: postQuery("after")}, 400, "BadRequestData", "temporalQ"},
		{"post_query_temporalQ_unknown_timerel", apitest.Req{Method: "POST", Path: apiBase + "/temporal/entityOperations/query", Body: postQuery(map[string]any{"timerel": "during", "timeAt": "2024-05-01T00:00:00Z"})}, 400, "BadRequestData", "temporalQ.timerel"},
		{"post_query_temporalQ_between_without_endTimeAt", apitest.Req{Method: "POST", Path: apiBase + "/temporal/entityOperations/query", Body: postQuery(map[string]any{"timerel": "between", "timeAt": "2024-05-01T00:00:00Z"})}, 400, "BadRequestData", "temporalQ.endTimeAt"},
		{"post_query_temporalQ_lastN_0", apitest.Req{Method: "POST", Path: apiBase + "/temporal/entityOperations/query", Body: postQuery(map[string]any{"timerel": "after", "timeAt": "2024-05-01T00:00:00Z", "lastN": 0})}, 400, "BadRequestData", "temporalQ.lastN"},
		{"post_query_URL_lastN", apitest.Req{Method: "POST", Path: apiBase + "/temporal/entityOperations/query?lastN=abc", Body: postQuery(map[string]any{"timerel": "after", "timeAt": "2024-05-01T00:00:00Z"})}, 400, "BadRequestData", "lastN"},
		{"post_query_temporalQ_bad_aggrMethods", apitest.Req{Method: "POST", Path: apiBase + "/temporal/entityOperations/query?options=aggregatedValues", Body: postQuery(map[string]any{"timerel": "after", "timeAt": "2024-05-01T00:00:00Z", "aggrMethods": []any{"sum", "mode"}})}, 400, "BadRequestData", "aggrMethods"},
		{"post_query_temporalQ_bad_aggrPeriodDuration", apitest.Req{Method: "POST", Path: apiBase + "/temporal/entityOperations/query?options=aggregatedValues", Body: postQuery(map[string]any{"timerel": "after", "timeAt": "2024-05-01T00:00:00Z", "aggrMethods": "sum", "aggrPeriodDuration": "P1X"})}, 400, "BadRequestData", "aggrPeriodDuration"},
		// Provisioning.
		{"create_instance_without_observedAt", apitest.Req{Method: "POST", Path: temporalBase, Body: newThing(map[string]any{
			"good": obs(1, "2024-01-01T00:00:00Z"), "level": []any{obs(1, "2024-01-01T00:00:00Z"), pv(2)}})}, 400, "BadRequestData", "observedAt"},
		{"create_instance_not_an_object", apitest.Req{Method: "POST", Path: temporalBase, Body: newThing(map[string]any{"level": 5})}, 400, "BadRequestData", "level"},
		{"create_instances_not_objects", apitest.Req{Method: "POST", Path: temporalBase, Body: newThing(map[string]any{"level": []any{obs(1, "2024-01-01T00:00:00Z"), "2"}})}, 400, "BadRequestData", "level"},
		{"create_instance_null", apitest.Req{Method: "POST", Path: temporalBase, Body: newThing(map[string]any{"level": nil})}, 400, "BadRequestData", "level"},
		{"create_without_type", apitest.Req{Method: "POST", Path: temporalBase, Body: map[string]any{"id": "urn:ngsi-ld:Thing:new", "level": obs(1, "2024-01-01T00:00:00Z")}}, 400, "BadRequestData", "type"},
		{"create_without_id", apitest.Req{Method: "POST", Path: temporalBase, Body: map[string]any{"type": "Thing", "level": obs(1, "2024-01-01T00:00:00Z")}}, 400, "BadRequestData", "id"},
		{"create_without_instances", apitest.Req{Method: "POST", Path: temporalBase, Body: newThing(nil)}, 400, "BadRequestData", "instances"},
		{"create_bad_attribute", apitest.Req{Method: "POST", Path: temporalBase, Body: newThing(map[string]any{"r": map[string]any{"type": "Relationship", "value": "x", "observedAt": "2024-01-01T00:00:00Z"}})}, 400, "BadRequestData", "r"},
		{"create_bad_observedAt", apitest.Req{Method: "POST", Path: temporalBase, Body: newThing(map[string]any{"level": obs(1, "yesterday")})}, 400, "BadRequestData", "observedAt"},
		{"create_body_not_JSON", apitest.Req{Method: "POST", Path: temporalBase, Body: `{"id":`}, 400, "InvalidRequest", "JSON"},
		{"create_on_existing_with_bad_instance", apitest.Req{Method: "POST", Path: temporalBase, Body: map[string]any{"id": vehicleID, "type": "Vehicle",
			"speed": []any{obs(1, "2024-01-01T00:00:00Z"), map[string]any{"type": "Property", "value": 2}}}}, 400, "BadRequestData", "observedAt"},
		{"add_attrs_without_observedAt", apitest.Req{Method: "POST", Path: one + "/attrs", Body: map[string]any{"speed": pv(1)}}, 400, "BadRequestData", "observedAt"},
		{"add_attrs_id_mismatch", apitest.Req{Method: "POST", Path: one + "/attrs", Body: map[string]any{"id": "urn:ngsi-ld:Vehicle:other", "speed": obs(1, "2024-01-01T00:00:00Z")}}, 400, "BadRequestData", "id"},
		{"patch_instance_id_not_a_URI", apitest.Req{Method: "PATCH", Path: one + "/attrs/speed/notaURI", Body: pv(1)}, 400, "BadRequestData", "instanceId"},
		{"patch_instance_bad_body", apitest.Req{Method: "PATCH", Path: one + "/attrs/speed/" + url.PathEscape(iid), Body: map[string]any{"type": "Relationship", "value": 1}}, 400, "BadRequestData", "object"},
		{"delete_instance_id_not_a_URI", apitest.Req{Method: "DELETE", Path: one + "/attrs/speed/notaURI"}, 400, "BadRequestData", "instanceId"},
		{"delete_attr_datasetId_not_a_URI", apitest.Req{Method: "DELETE", Path: one + "/attrs/temperature?datasetId=not%20a%20uri"}, 400, "BadRequestData", "datasetId"},
		{"delete_attr_bad_deleteAll", apitest.Req{Method: "DELETE", Path: one + "/attrs/temperature?deleteAll=yes"}, 400, "BadRequestData", "deleteAll"},
		// Not found.
		{"entity_without_history", apitest.Req{Method: "GET", Path: temporalPath("urn:ngsi-ld:Vehicle:none")}, 404, "ResourceNotFound", "urn:ngsi-ld:Vehicle:none"},
		{"patch_missing_instance", apitest.Req{Method: "PATCH", Path: one + "/attrs/speed/urn:ngsi-ld:Instance:none", Body: pv(1)}, 404, "ResourceNotFound", "urn:ngsi-ld:Instance:none"},
		{"delete_missing_instance", apitest.Req{Method: "DELETE", Path: one + "/attrs/speed/urn:ngsi-ld:Instance:none"}, 404, "ResourceNotFound", "urn:ngsi-ld:Instance:none"},
		{"patch_instance_of_other_attribute", apitest.Req{Method: "PATCH", Path: one + "/attrs/brandName/" + url.PathEscape(iid), Body: pv(1)}, 404, "ResourceNotFound", iid},
		{"delete_history_of_missing_entity", apitest.Req{Method: "DELETE", Path: temporalPath("urn:ngsi-ld:Vehicle:none")}, 404, "ResourceNotFound", "urn:ngsi-ld:Vehicle:none"},
		{"delete_history_of_missing_attribute", apitest.Req{Method: "DELETE", Path: one + "/attrs/neverThere"}, 404, "ResourceNotFound", "neverThere"},
		{"add_attrs_to_missing_entity", apitest.Req{Method: "POST", Path: temporalPath("urn:ngsi-ld:Vehicle:none") + "/attrs", Body: map[string]any{"speed": obs(1, "2024-01-01T00:00:00Z")}}, 404, "ResourceNotFound", "urn:ngsi-ld:Vehicle:none"},
		// Methods and media types.
		{"put_not_allowed", apitest.Req{Method: "PUT", Path: one, Body: map[string]any{}}, 405, "MethodNotAllowed", "PUT"},
		{"not_acceptable", apitest.Req{Method: "GET", Path: one, Header: map[string]string{"Accept": "application/geo+json"}}, 406, "NotAcceptable", "application/json"},
		{"create_unsupported_media_type", apitest.Req{Method: "POST", Path: temporalBase, Body: `{}`, ContentType: "text/plain"}, 415, "UnsupportedMediaType", "text/plain"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := problem(t, s.Do(tc.req), tc.status, tc.errType)
			if !strings.Contains(d, tc.detail) {
				t.Errorf("detail %q does not mention %q", d, tc.detail)
			}
		})
	}
	// The entity the rejected creations named was not created.
	s.Get(temporalPath("urn:ngsi-ld:Thing:new"), nil).ExpectProblem(t, http.StatusNotFound, "ResourceNotFound")
	s.Get(entityPath("urn:ngsi-ld:Thing:new"), nil).ExpectProblem(t, http.StatusNotFound, "ResourceNotFound")
	after := snapshot()
	for i := range before {
		if before[i] != after[i] {
			t.Errorf("a rejected request changed what is stored (snapshot %d)\n--- before\n%s\n--- after\n%s", i, before[i], after[i])
		}
	}
}

// --- tenants ---

func TestTemporalTenants(t *testing.T) {
	s := apitest.Start(t)
	a, b := tenant("cityA"), tenant("cityB")
	recordVehicle(t, s, a)
	mustCreate(t, s, map[string]any{"id": vehicleID, "type": "Car", "speed": obs(5, "2024-05-01T10:00:00Z")}, b)
	s.Post(temporalBase, map[string]any{"id": "urn:ngsi-ld:Sensor:P1", "type": "Sensor", "level": obs(1, "2024-01-01T00:00:00Z")}, a).
		Expect(t, http.StatusCreated)

	speeds := func(t *testing.T, hdr map[string]string) []any {
		t.Helper()
		return tvValues(t, jsonObject(t, getTemporal(t, s, vehicleID, "?options=temporalValues&attrs=speed", hdr)), "speed", "")
	}
	if got := speeds(t, a); !reflect.DeepEqual(got, nums(80, 85, 90, 70)) {
		t.Errorf("cityA speed %v", got)
	}
	if got := speeds(t, b); !reflect.DeepEqual(got, nums(5)) {
		t.Errorf("cityB speed %v", got)
	}
	r := getTemporal(t, s, vehicleID, "", b)
	if r.Header.Get("NGSILD-Tenant") != "cityB" || jsonObject(t, r)["type"] != "Car" {
		t.Errorf("cityB: tenant header %q, body %s", r.Header.Get("NGSILD-Tenant"), r.Body)
	}

	t.Run("not_visible_elsewhere", func(t *testing.T) {
		s.Get(temporalPath("urn:ngsi-ld:Sensor:P1"), b).ExpectProblem(t, http.StatusNotFound, "ResourceNotFound")
		// The default tenant always exists.
		s.Get(temporalPath(vehicleID), nil).ExpectProblem(t, http.StatusNotFound, "ResourceNotFound")
		s.Get(temporalPath(vehicleID), tenant("nowhere")).ExpectProblem(t, http.StatusNotFound, "NonexistentTenant")
		ids, _, _ := temporalIDs(t, s, "type=Sensor,Vehicle,Car&"+fleetAfter, b)
		if !slices.Equal(ids, []string{vehicleID}) {
			t.Errorf("cityB query %v", ids)
		}
		s.Get(temporalBase+"?type=Vehicle&"+fleetAfter, tenant("nowhere")).ExpectProblem(t, http.StatusNotFound, "NonexistentTenant")
		_, list, _ := temporalIDs(t, s, "type=Car&options=temporalValues&"+fleetAfter, b)
		if len(list) != 1 || !reflect.DeepEqual(tvValues(t, list[0], "speed", ""), nums(5)) {
			t.Errorf("cityB query history %v", list)
		}
	})

	t.Run("writes_stay_in_their_tenant", func(t *testing.T) {
		s.Delete(temporalPath(vehicleID), b).Expect(t, http.StatusNoContent)
		s.Get(temporalPath(vehicleID), b).ExpectProblem(t, http.StatusNotFound, "ResourceNotFound")
		if got := speeds(t, a); !reflect.DeepEqual(got, nums(80, 85, 90, 70)) {
			t.Errorf("cityA speed after deleting cityB's history %v", got)
		}
		s.Post(temporalPath(vehicleID)+"/attrs", map[string]any{"speed": obs(6, "2024-05-01T11:00:00Z")}, b).Expect(t, http.StatusNoContent)
		if got := speeds(t, b); !reflect.DeepEqual(got, nums(6)) {
			t.Errorf("cityB speed %v", got)
		}
		if got := speeds(t, a); !reflect.DeepEqual(got, nums(80, 85, 90, 70)) {
			t.Errorf("cityA speed after cityB's provisioning %v", got)
		}
		// Instance ids of one tenant mean nothing in another.
		iid := instances(t, jsonObject(t, getTemporal(t, s, vehicleID, "?attrs=speed", a)), "speed")[0]["instanceId"].(string)
		s.Delete(temporalPath(vehicleID)+"/attrs/speed/"+url.PathEscape(iid), b).ExpectProblem(t, http.StatusNotFound, "ResourceNotFound")
		if got := speeds(t, a); len(got) != 4 {
			t.Errorf("cityA speed %v", got)
		}
		// A tenant is not created by provisioning history into an entity it does not have.
		s.Post(temporalPath(vehicleID)+"/attrs", map[string]any{"speed": obs(6, "2024-05-01T11:00:00Z")}, tenant("cityC")).
			ExpectProblem(t, http.StatusNotFound, "NonexistentTenant")
	})
}

// A history longer than the page size (1,000 instances) is answered 206
// with Content-Range; following the pages with timerel=after from each
// page's end returns every instance (the boundary instance twice), and
// lastN pages from the newest.
func TestTemporalPagination(t *testing.T) {
	s := apitest.Start(t)
	id := "urn:ngsi-ld:Sensor:P1"
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	const n = 2500
	var insts []any
	for i := range n {
		insts = append(insts, obs(i, base.Add(time.Duration(i)*time.Minute).Format(time.RFC3339)))
	}
	s.Post(temporalBase, map[string]any{"id": id, "type": "Sensor", "level": insts}, nil).Expect(t, http.StatusCreated)

	seen := map[float64]bool{}
	query := "?timerel=after&timeAt=" + base.Format(time.RFC3339)
	for page := 0; ; page++ {
		if page > 5 {
			t.Fatal("more pages than the history needs")
		}
		r := s.Get(temporalPath(id)+query+"&options=temporalValues", nil)
		vals := tvPairs(t, jsonObject(t, r), "level", "", "values")
		for _, p := range vals {
			seen[p.V.(float64)] = true
		}
		if r.Status == http.StatusOK {
			break
		}
		r.Expect(t, http.StatusPartialContent)
		if len(vals) > 1000 {
			t.Fatalf("page %d holds %d instances, more than the page size", page, len(vals))
		}
		cr := r.Header.Get("Content-Range")
		rest, ok := strings.CutPrefix(cr, "date-time ")
		if !ok || !strings.HasSuffix(rest, "/*") || len(rest) != len("2024-01-01T00:00:00.000Z-2024-01-01T00:00:00.000Z/*") {
			t.Fatalf("Content-Range %q", cr)
		}
		end := rest[25 : 25+24]
		if last := vals[len(vals)-1].At; last != end {
			t.Errorf("page %d ends at %s, Content-Range says %s", page, last, end)
		}
		query = "?timerel=after&timeAt=" + end
	}
	if len(seen) != n {
		t.Errorf("the pages held %d distinct instances, want %d", len(seen), n)
	}

	r := s.Get(temporalPath(id)+"?lastN=1500&options=temporalValues", nil).Expect(t, http.StatusPartialContent)
	vals := tvPairs(t, jsonObject(t, r), "level", "", "values")
	if len(vals) != 1000 || vals[len(vals)-1].V != float64(n-1) || vals[0].V != float64(n-1000) {
		t.Errorf("lastN page: %d instances from %v to %v, want the newest 1000", len(vals), vals[0].V, vals[len(vals)-1].V)
	}
	if cr := r.Header.Get("Content-Range"); !strings.HasSuffix(cr, "/1500") {
		t.Errorf("lastN Content-Range %q, want the size 1500", cr)
	}
	// Aggregation is never paginated.
	s.Get(temporalPath(id)+"?options=aggregatedValues&aggrMethods=totalCount", nil).Expect(t, http.StatusOK)
}

package ingest

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/jsonld"
	"github.com/zenne-city/zenne/internal/ngsild"
)

func testDevice(t testing.TB) *compiled {
	t.Helper()
	scale := 0.01
	g := &Group{APIKey: "k", EntityType: "WaterMeter", TimestampField: "ts", Attributes: []AttrMap{
		{ObjectID: "l", Name: "waterConsumption", UnitCode: "LTR"},
		{ObjectID: "p", Name: "pressure", Scale: &scale, Offset: 1},
		{ObjectID: "gps", Name: "location", Type: "GeoProperty"},
		{ObjectID: "m", Name: "refMeter", Type: "Relationship"},
	}}
	c, err := compile(context.Background(), jsonld.NewResolver(jsonld.Options{}), "", g, &Device{DeviceID: "wm-1", APIKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var now = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func TestReadings(t *testing.T) {
	c := testDevice(t)
	ns := ngsild.DefaultContextNS
	for _, tc := range []struct {
		name    string
		payload string
		attr    string
		want    any
		at      time.Time
		status  int // of the rejection; 0: accepted
	}{
		{"plain", `{"l": 12.5}`, ns + "waterConsumption", 12.5, now, 0},
		{"scaled and offset", `{"p": 250}`, ns + "pressure", 3.5, now, 0},
		{"number as text", `{"p": "250"}`, ns + "pressure", 3.5, now, 0},
		{"unmapped field kept", `{"battery": 90}`, ns + "battery", 90.0, now, 0},
		{"time RFC 3339", `{"l": 1, "ts": "2026-11-22T10:00:00+01:00"}`, ns + "waterConsumption", 1.0, time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC), 0},
		{"time Unix ms", `{"l": 1, "ts": 1763802000000}`, ns + "waterConsumption", 1.0, time.UnixMilli(1763802000000).UTC(), 0},
		{"point as pair", `{"gps": [4.35, 50.85]}`, ngsild.IRILocation, map[string]any{"type": "Point", "coordinates": []any{4.35, 50.85}}, now, 0},
		{"relationship", `{"m": "urn:ngsi-ld:Meter:1"}`, ns + "refMeter", "urn:ngsi-ld:Meter:1", now, 0},
		{"null skipped", `{"l": null, "p": 100}`, ns + "pressure", 2.0, now, 0},
		{"scaled text", `{"p": "high"}`, "", nil, now, http.StatusUnprocessableEntity},
		{"bad relationship", `{"m": 3}`, "", nil, now, http.StatusUnprocessableEntity},
		{"only nulls", `{"l": null}`, "", nil, now, http.StatusUnprocessableEntity},
		{"before 2000", `{"l": 1, "ts": "1999-12-31T23:59:59Z"}`, "", nil, now, http.StatusUnprocessableEntity},
		{"negative ms", `{"l": 1, "ts": -5}`, "", nil, now, http.StatusBadRequest},
		{"not an object", `42`, "", nil, now, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := decodeJSON([]byte(tc.payload))
			var rs []reading
			if err == nil {
				rs, err = c.readings(objs, now, now)
			}
			if tc.status != 0 {
				var rej *Rejection
				if !errors.As(err, &rej) || rej.Status != tc.status {
					t.Fatalf("err = %v, want a %d rejection", err, tc.status)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			a := rs[0].attrs[tc.attr]
			if len(a) != 1 || !equalJSON(a[0].Value, tc.want) || !a[0].ObservedAt.Equal(tc.at) {
				t.Fatalf("%s = %+v, want %v at %v", tc.attr, a, tc.want, tc.at)
			}
		})
	}
}

func equalJSON(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k := range x {
			if !equalJSON(x[k], y[k]) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equalJSON(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	return a == b
}

// FuzzPayload: no payload makes the parser panic, and an accepted one yields
// readings in time order with at least one attribute each.
func FuzzPayload(f *testing.F) {
	for _, s := range []string{`{"l": 1}`, `[{"l": 1, "ts": "2026-01-01T00:00:00Z"}, {"l": 2}]`, `{"gps": [1, 2]}`,
		`{"p": "1e400"}`, `[]`, `{`, `null`, `{"ts": 1e300}`} {
		f.Add([]byte(s))
	}
	c := testDevice(f)
	f.Fuzz(func(t *testing.T, payload []byte) {
		objs, err := decodeJSON(payload)
		if err != nil {
			return
		}
		rs, err := c.readings(objs, now, now)
		if err != nil {
			var rej *Rejection
			if !errors.As(err, &rej) || rej.Status < 400 || rej.Status > 499 {
				t.Fatalf("error %v is not a 4xx rejection", err)
			}
			return
		}
		for i, r := range rs {
			if len(r.attrs) == 0 || i > 0 && r.at.Before(rs[i-1].at) {
				t.Fatalf("readings %+v", rs)
			}
		}
	})
}

// FuzzTTS: no webhook body makes the parser panic.
func FuzzTTS(f *testing.F) {
	f.Add([]byte(`{"end_device_ids": {"device_id": "d"}, "uplink_message": {"decoded_payload": {"a": 1}}}`))
	f.Add([]byte(`{"end_device_ids": {}}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		id, fields, _, err := parseTTS(payload)
		if err == nil && (id == "" || fields == nil) {
			t.Fatalf("accepted without a device or fields: %q", payload)
		}
	})
}

// A Mapping gives what the device service stores for the same fields: scaled
// and offset numbers, integers as numbers, [lon, lat] as a Point, nothing
// for null or unmapped fields, and an error for a value the mapping cannot
// take.
func TestMapping(t *testing.T) {
	scale := 0.001
	m, err := NewMapping([]AttrMap{
		{ObjectID: "v", Name: "volume", UnitCode: "MTQ", Scale: &scale, Offset: 1},
		{ObjectID: "n", Name: "count"},
		{ObjectID: "p", Name: "location", Type: "GeoProperty"},
		{ObjectID: "z", Name: "nothing"},
	}, jsonld.NewResolver(jsonld.Options{}).Core())
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	attrs, err := m.Attributes(map[string]any{"v": 1234, "n": int64(7), "p": []any{4.35, 50.85}, "z": nil, "other": 1.0}, at)
	if err != nil {
		t.Fatal(err)
	}
	ns := ngsild.DefaultContextNS
	if len(attrs) != 3 {
		t.Fatalf("attributes %v, want volume, count and location", attrs)
	}
	if v := attrs[ns+"volume"][0]; v.Value != 2.234 || v.UnitCode != "MTQ" || !v.ObservedAt.Equal(at) {
		t.Errorf("volume %+v, want 2.234 MTQ at %s", v, at)
	}
	if v := attrs[ns+"count"][0]; v.Value != 7.0 {
		t.Errorf("count %v (%T), want the number 7", v.Value, v.Value)
	}
	if v := attrs[ngsild.IRILocation][0]; v.Kind != ngsild.GeoProperty {
		t.Errorf("location %+v, want a GeoProperty Point", v)
	}
	if _, err := m.Attributes(map[string]any{"v": "high"}, at); err == nil {
		t.Error("a text where the mapping scales a number: no error")
	}
	if _, err := NewMapping([]AttrMap{{Name: "x", Type: "Thing"}}, jsonld.NewResolver(jsonld.Options{}).Core()); err == nil {
		t.Error("an unknown attribute type: no error")
	}
}

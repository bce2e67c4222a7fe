package temporal

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zenne-city/zenne/internal/ngsild"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata with the output seen")

// testCompactor compacts the default-context and core names, as a request
// with the core @context does.
type testCompactor struct{}

func (testCompactor) CompactIRI(iri string) string {
	if s, ok := strings.CutPrefix(iri, ngsild.DefaultContextNS); ok {
		return s
	}
	if s, ok := strings.CutPrefix(iri, ngsild.CoreNS); ok {
		return s
	}
	return iri
}

// golden compares the JSON of v, indented, with testdata/name.json.
func golden(t *testing.T, name string, v any) {
	t.Helper()
	raw, err := ngsild.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		t.Fatal(err)
	}
	buf.WriteByte('\n')
	path := filepath.Join("testdata", name+".json")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("%s differs from the output (run go test -update and review the diff):\n%s", path, buf.String())
	}
}

const dc = ngsild.DefaultContextNS

// sensor is a temporal entity with an instance of every kind, a
// multi-attribute and an instance without observedAt.
func sensor() *Entity {
	at := func(s string) *ngsild.Attribute {
		return &ngsild.Attribute{ObservedAt: ts(s), CreatedAt: ts("2018-08-01T11:00:00Z"), ModifiedAt: ts(s).Add(500_000_000)}
	}
	with := func(a *ngsild.Attribute, kind ngsild.Kind, v any) *ngsild.Attribute {
		a.Kind, a.Value = kind, v
		return a
	}
	noObs := &ngsild.Attribute{Kind: ngsild.Property, Value: 22.5, UnitCode: "CEL",
		CreatedAt: ts("2018-08-01T11:00:00Z"), ModifiedAt: ts("2018-08-01T12:07:00Z")}
	pm := func(ds, obs string, v float64) Instance {
		a := with(at(obs), ngsild.Property, v)
		a.DatasetID = ds
		return Instance{ID: "urn:ngsi-ld:Instance:pm25-" + obs[11:16], Attr: a}
	}
	status := func(obs, v string) Instance {
		a := with(at(obs), ngsild.Property, v)
		a.Sub = map[string]*ngsild.Attribute{dc + "reason": {Kind: ngsild.Property, Value: "scheduled"}}
		return Instance{ID: "urn:ngsi-ld:Instance:status-" + obs[11:16], Attr: a}
	}
	rel := with(at("2018-08-01T12:02:00Z"), ngsild.Relationship, "urn:ngsi-ld:Parking:1")
	rel.ObjectType = []string{dc + "Parking"}
	return &Entity{
		ID:         "urn:ngsi-ld:Sensor:1",
		Types:      []string{dc + "Sensor"},
		Scopes:     []string{"/Brussels/Air"},
		CreatedAt:  ts("2018-08-01T11:00:00Z"),
		ModifiedAt: ts("2018-08-01T12:09:00Z"),
		Attrs: map[string][]Instance{
			dc + "temperature": {
				{ID: "urn:ngsi-ld:Instance:t1", Attr: func() *ngsild.Attribute {
					a := with(at("2018-08-01T12:03:00Z"), ngsild.Property, 20.5)
					a.UnitCode = "CEL"
					return a
				}()},
				{ID: "urn:ngsi-ld:Instance:t2", Attr: with(at("2018-08-01T12:05:00Z"), ngsild.Property, 21.0)},
				{ID: "urn:ngsi-ld:Instance:t3", Attr: noObs},
			},
			dc + "pm25": {
				pm("", "2018-08-01T12:01:00Z", 10),
				pm("urn:ngsi-ld:Dataset:b", "2018-08-01T12:02:00Z", 12),
				pm("", "2018-08-01T12:06:00Z", 14),
				pm("urn:ngsi-ld:Dataset:b", "2018-08-01T12:09:00Z", 9),
			},
			dc + "status": {status("2018-08-01T12:01:00Z", "open"), status("2018-08-01T12:08:00Z", "closed")},
			dc + "parkedAt": {
				{ID: "urn:ngsi-ld:Instance:r1", Attr: rel},
				{ID: "urn:ngsi-ld:Instance:r2", Attr: with(at("2018-08-01T12:06:00Z"), ngsild.Relationship, "urn:ngsi-ld:Parking:2")},
			},
			dc + "name": {{ID: "urn:ngsi-ld:Instance:n1", Attr: with(at("2018-08-01T12:00:00Z"), ngsild.LanguageProperty,
				map[string]any{"en": "Air sensor", "nl": "Luchtsensor"})}},
			dc + "category": {{ID: "urn:ngsi-ld:Instance:c1", Attr: with(at("2018-08-01T12:00:00Z"), ngsild.VocabProperty, dc+"outdoor")}},
			dc + "raw": {{ID: "urn:ngsi-ld:Instance:j1", Attr: with(at("2018-08-01T12:00:00Z"), ngsild.JsonProperty,
				map[string]any{"id": "frame-1", "bytes": []any{1.0, 2.0}})}},
			dc + "readings": {{ID: "urn:ngsi-ld:Instance:l1", Attr: with(at("2018-08-01T12:00:00Z"), ngsild.ListProperty, []any{1.0, 2.0, 3.0})}},
			dc + "neighbours": {{ID: "urn:ngsi-ld:Instance:o1", Attr: with(at("2018-08-01T12:00:00Z"), ngsild.ListRelationship,
				[]any{"urn:ngsi-ld:Sensor:2", "urn:ngsi-ld:Sensor:3"})}},
			ngsild.IRILocation: {{ID: "urn:ngsi-ld:Instance:g1", Attr: with(at("2018-08-01T12:00:00Z"), ngsild.GeoProperty,
				map[string]any{"type": "Point", "coordinates": []any{4.35, 50.85}})}},
		},
	}
}

var aggrAttrs = map[string]bool{dc + "temperature": true, dc + "pm25": true, dc + "status": true, dc + "parkedAt": true, dc + "readings": true}

func TestRender(t *testing.T) {
	between := &Query{Rel: RelBetween, At: ts("2018-08-01T12:00:00Z"), EndAt: ts("2018-08-01T13:00:00Z")}
	d4 := mustDuration(t, "PT4M")
	cases := []struct {
		name string
		opts RenderOptions
	}{
		{"normalized", RenderOptions{Format: Normalized, Compact: testCompactor{}}},
		{"normalized_sysattrs", RenderOptions{Format: Normalized, Compact: testCompactor{}, SysAttrs: true,
			Attrs: map[string]bool{dc + "temperature": true, dc + "parkedAt": true}}},
		{"normalized_modifiedat", RenderOptions{Format: Normalized, Compact: testCompactor{}, Query: &Query{Property: ModifiedAt},
			Attrs: map[string]bool{dc + "temperature": true}}},
		{"temporalvalues", RenderOptions{Format: TemporalValues, Compact: testCompactor{}}},
		{"temporalvalues_lang", RenderOptions{Format: TemporalValues, Compact: testCompactor{}, Lang: "nl",
			Attrs: map[string]bool{dc + "name": true}}},
		{"aggregated", RenderOptions{Format: Aggregated, Compact: testCompactor{}, Query: between, Period: d4,
			Methods: allMethods, Attrs: aggrAttrs, SysAttrs: true}},
		{"aggregated_whole_range", RenderOptions{Format: Aggregated, Compact: testCompactor{}, Query: between,
			Methods: []Method{Max, Avg}, Attrs: map[string]bool{dc + "temperature": true, dc + "pm25": true}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			golden(t, tc.name, Render(sensor(), tc.opts))
		})
	}
}

// TestRenderAggregatedRollups renders series a store built from rollups,
// without raw instances.
func TestRenderAggregatedRollups(t *testing.T) {
	e := &Entity{ID: "urn:ngsi-ld:Sensor:1", Types: []string{dc + "Sensor", dc + "Device"}}
	p := func(start, end string) Period { return Period{ts(start), ts(end)} }
	series := []Series{
		{Name: dc + "temperature", Kind: ngsild.Property, Buckets: []Bucket{
			{Period: p("2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z"), Acc: NumericAcc(24, 480, 9640, 15, 25)},
			{Period: p("2024-01-02T00:00:00Z", "2024-01-03T00:00:00Z"), Acc: NumericAcc(24, 456, 8700, 14, 23)},
		}},
		{Name: dc + "temperature", DatasetID: "urn:ngsi-ld:Dataset:roof", Kind: ngsild.Property, Buckets: []Bucket{
			{Period: p("2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z"), Acc: NumericAcc(2, 30, 452, 14, 16)},
		}},
		{Name: dc + "other", Kind: ngsild.Property}, // filtered out by Attrs
	}
	golden(t, "aggregated_rollups", RenderAggregated(e, series, RenderOptions{
		Compact: testCompactor{}, Methods: []Method{Avg, Min, Max, DistinctCount},
		Attrs: map[string]bool{dc + "temperature": true},
	}))
}

func TestRenderWithoutCompactor(t *testing.T) {
	obj := Render(sensor(), RenderOptions{Format: TemporalValues, Attrs: map[string]bool{dc + "category": true}})
	v, ok := obj.Get(dc + "category")
	if !ok {
		t.Fatalf("attribute not under its expanded name: %v", obj)
	}
	b, _ := ngsild.Marshal(v)
	if !strings.Contains(string(b), `{"vocab":"`+dc+`outdoor"}`) {
		t.Errorf("vocab not kept expanded: %s", b)
	}
	if typ, _ := obj.Get("type"); typ != dc+"Sensor" {
		t.Errorf("type = %v", typ)
	}
}

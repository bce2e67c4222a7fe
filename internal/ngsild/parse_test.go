package ngsild

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// testCtx expands unknown terms into the default context and keeps the core
// names, like the NGSI-LD core context does.
type testCtx struct{}

func (testCtx) ExpandTerm(t string) string {
	switch t {
	case "location", "observationSpace", "operationSpace", "createdAt", "modifiedAt", "observedAt":
		return CoreNS + t
	}
	if strings.Contains(t, ":") {
		return t
	}
	return DefaultContextNS + t
}

func (testCtx) CompactIRI(iri string) string {
	if s, ok := strings.CutPrefix(iri, DefaultContextNS); ok {
		return s
	}
	if s, ok := strings.CutPrefix(iri, CoreNS); ok {
		return s
	}
	return iri
}

func decode(t testing.TB, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestParseEntityErrors(t *testing.T) {
	cases := []struct{ name, body, want string }{
		{"no id", `{"type":"T"}`, "no id"},
		{"id not URI", `{"id":"not a uri","type":"T"}`, "not a URI"},
		{"id not string", `{"id":5,"type":"T"}`, "must be a string"},
		{"no type", `{"id":"urn:a:1"}`, "no type"},
		{"type number", `{"id":"urn:a:1","type":3}`, "entity type"},
		{"bad attr type", `{"id":"urn:a:1","type":"T","a":{"type":"Proprety","value":1}}`, "invalid type"},
		{"bad attr type without value", `{"id":"urn:a:1","type":"T","a":{"type":5}}`, "invalid type"},
		{"relationship without object", `{"id":"urn:a:1","type":"T","r":{"type":"Relationship"}}`, "no object"},
		{"relationship object not URI", `{"id":"urn:a:1","type":"T","r":{"type":"Relationship","object":"x y"}}`, "not a URI"},
		{"null value", `{"id":"urn:a:1","type":"T","a":{"type":"Property","value":null}}`, "null"},
		{"two default instances", `{"id":"urn:a:1","type":"T","a":[{"type":"Property","value":1},{"type":"Property","value":2}]}`, "more than one default instance"},
		{"duplicate datasetId", `{"id":"urn:a:1","type":"T","a":[{"type":"Property","value":1,"datasetId":"urn:d:1"},{"type":"Property","value":2,"datasetId":"urn:d:1"}]}`, "two instances"},
		{"bad observedAt", `{"id":"urn:a:1","type":"T","a":{"type":"Property","value":1,"observedAt":"yesterday"}}`, "observedAt"},
		{"bad languageMap", `{"id":"urn:a:1","type":"T","n":{"type":"LanguageProperty","languageMap":{"fr":3}}}`, "must be a string"},
		{"bad lang tag", `{"id":"urn:a:1","type":"T","n":{"type":"LanguageProperty","languageMap":{"f r":"x"}}}`, "language tag"},
		{"valueList not array", `{"id":"urn:a:1","type":"T","l":{"type":"ListProperty","valueList":3}}`, "must be an array"},
		{"objectList not URIs", `{"id":"urn:a:1","type":"T","l":{"type":"ListRelationship","objectList":["x y"]}}`, "not a URI"},
		{"bad attr name", `{"id":"urn:a:1","type":"T","a(b)":1}`, "invalid attribute name"},
		{"bad scope", `{"id":"urn:a:1","type":"T","scope":"Brussels"}`, "invalid scope"},
		{"objectType on property", `{"id":"urn:a:1","type":"T","a":{"type":"Property","value":1,"objectType":"X"}}`, "objectType"},
		{"datasetId on sub-attribute", `{"id":"urn:a:1","type":"T","a":{"type":"Property","value":1,"s":{"type":"Property","value":1,"datasetId":"urn:d:1"}}}`, "cannot have a datasetId"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseEntity(decode(t, tc.body), testCtx{}, ParseOptions{})
			if err == nil {
				t.Fatal("parsed, want an error")
			}
			if !IsType(err, BadRequestData) {
				t.Fatalf("error %v is not BadRequestData", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

func TestParseEntityKinds(t *testing.T) {
	body := `{
	  "id": "urn:ngsi-ld:Bin:1", "type": ["Bin", "Thing"], "scope": ["/Brussels/Clean"],
	  "level": {"type": "Property", "value": 0.5, "unitCode": "P1", "observedAt": "2026-01-02T03:04:05Z",
	            "accuracy": {"type": "Property", "value": 0.01}},
	  "owner": {"type": "Relationship", "object": "urn:ngsi-ld:Dept:1", "objectType": "Dept"},
	  "location": {"type": "Point", "coordinates": [4.35, 50.85]},
	  "name": {"type": "LanguageProperty", "languageMap": {"fr": "Poubelle", "nl": "Vuilnisbak"}},
	  "raw": {"type": "JsonProperty", "json": {"a": [1, 2]}},
	  "category": {"type": "VocabProperty", "vocab": "organic"},
	  "readings": {"type": "ListProperty", "valueList": [1, 2, 3]},
	  "neighbours": {"type": "ListRelationship", "objectList": [{"object": "urn:ngsi-ld:Bin:2"}]},
	  "temp": [{"type": "Property", "value": 20}, {"type": "Property", "value": 21, "datasetId": "urn:ds:2"}],
	  "concise": 7,
	  "conciseRel": {"object": "urn:x:1"}
	}`
	e, err := ParseEntity(decode(t, body), testCtx{}, ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d := DefaultContextNS
	checks := []struct {
		name string
		kind Kind
	}{
		{d + "level", Property}, {d + "owner", Relationship}, {IRILocation, GeoProperty},
		{d + "name", LanguageProperty}, {d + "raw", JsonProperty}, {d + "category", VocabProperty},
		{d + "readings", ListProperty}, {d + "neighbours", ListRelationship}, {d + "concise", Property},
		{d + "conciseRel", Relationship},
	}
	for _, c := range checks {
		insts := e.Attrs[c.name]
		if len(insts) != 1 || insts[0].Kind != c.kind {
			t.Errorf("%s: got %+v, want one %s", c.name, insts, c.kind)
		}
	}
	if got := e.Attrs[d+"category"][0].Value; got != d+"organic" {
		t.Errorf("vocab value %v not expanded", got)
	}
	if got := e.Attrs[d+"neighbours"][0].Value.([]any)[0]; got != "urn:ngsi-ld:Bin:2" {
		t.Errorf("objectList %v", got)
	}
	if len(e.Attrs[d+"temp"]) != 2 {
		t.Errorf("multi-attribute: %d instances", len(e.Attrs[d+"temp"]))
	}
	if e.Attrs[d+"level"][0].Sub[d+"accuracy"] == nil {
		t.Error("sub-attribute lost")
	}
	if len(e.Types) != 2 || e.Scopes[0] != "/Brussels/Clean" {
		t.Errorf("types %v scopes %v", e.Types, e.Scopes)
	}
}

func TestRenderFormats(t *testing.T) {
	body := `{"id":"urn:a:1","type":"T",
	  "n":{"type":"LanguageProperty","languageMap":{"fr":"Gare","nl":"Station"}},
	  "v":{"type":"Property","value":3,"unitCode":"C62"},
	  "w":{"type":"Property","value":4},
	  "r":{"type":"Relationship","object":"urn:b:1"}}`
	e, err := ParseEntity(decode(t, body), testCtx{}, ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		opts RenderOptions
		want string
	}{
		{"normalized", RenderOptions{}, `{"id":"urn:a:1","type":"T","n":{"type":"LanguageProperty","languageMap":{"fr":"Gare","nl":"Station"}},"r":{"type":"Relationship","object":"urn:b:1"},"v":{"type":"Property","value":3,"unitCode":"C62"},"w":{"type":"Property","value":4}}`},
		{"concise", RenderOptions{Format: Concise}, `{"id":"urn:a:1","type":"T","n":{"languageMap":{"fr":"Gare","nl":"Station"}},"r":{"object":"urn:b:1"},"v":{"value":3,"unitCode":"C62"},"w":4}`},
		{"keyValues", RenderOptions{Format: KeyValues}, `{"id":"urn:a:1","type":"T","n":{"languageMap":{"fr":"Gare","nl":"Station"}},"r":"urn:b:1","v":3,"w":4}`},
		{"lang", RenderOptions{Format: KeyValues, Lang: "nl"}, `{"id":"urn:a:1","type":"T","n":"Station","r":"urn:b:1","v":3,"w":4}`},
		{"pick", RenderOptions{Format: KeyValues, Pick: map[string]bool{"id": true, DefaultContextNS + "v": true}}, `{"id":"urn:a:1","v":3}`},
		{"omit", RenderOptions{Format: KeyValues, Omit: map[string]bool{"type": true, DefaultContextNS + "n": true}}, `{"id":"urn:a:1","r":"urn:b:1","v":3,"w":4}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Compact = testCtx{}
			got, err := json.Marshal(Render(e, tc.opts))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// FuzzParseEntity: any JSON body either parses or gives a BadRequestData;
// what parses renders, and the rendering parses back to the same entity.
func FuzzParseEntity(f *testing.F) {
	f.Add(`{"id":"urn:a:1","type":"T","a":{"type":"Property","value":1}}`)
	f.Add(`{"id":"urn:a:1","type":"T","l":{"type":"GeoProperty","value":{"type":"Point","coordinates":[4,50]}}}`)
	f.Add(`{"id":"urn:a:1","type":["T","U"],"a":[{"type":"Property","value":1},{"type":"Property","value":2,"datasetId":"urn:d:1"}]}`)
	f.Add(`{"id":"urn:a:1","type":"T","n":{"type":"LanguageProperty","languageMap":{"fr":"x"}},"s":{"value":1,"sub":{"object":"urn:x:y"}}}`)
	f.Fuzz(func(t *testing.T, s string) {
		var m map[string]any
		if json.Unmarshal([]byte(s), &m) != nil {
			return
		}
		e, err := ParseEntity(m, testCtx{}, ParseOptions{})
		if err != nil {
			if !IsType(err, BadRequestData) {
				t.Fatalf("error of type %v: %v", AsError(err).Type, err)
			}
			return
		}
		out, err := json.Marshal(Render(e, RenderOptions{Compact: testCtx{}}))
		if err != nil {
			t.Fatalf("render: %v", err)
		}
		var back map[string]any
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatal(err)
		}
		e2, err := ParseEntity(back, testCtx{}, ParseOptions{})
		if err != nil {
			t.Fatalf("rendering %s does not parse back: %v", out, err)
		}
		a, _ := json.Marshal(e)
		b, _ := json.Marshal(e2)
		if string(a) != string(b) {
			t.Fatalf("round trip changed the entity:\n%s\n%s", a, b)
		}
	})
}

// TestAppendTime holds the digit-by-digit formatter equal to time.Format with
// FormatTime's layout, for times in every zone, with and without fractions,
// and outside the four-digit years it writes itself.
func TestAppendTime(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	zones := []*time.Location{time.UTC, time.FixedZone("", 3600+1800), time.FixedZone("", -7*3600)}
	times := []time.Time{{}, time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2024, 2, 29, 0, 0, 0, 1e6-1, time.UTC)}
	for range 10000 {
		times = append(times, time.Unix(r.Int64N(1<<36)-1<<35, r.Int64N(1e9)).In(zones[r.IntN(len(zones))]))
	}
	for _, tm := range times {
		want := tm.UTC().Format("2006-01-02T15:04:05.000Z")
		if got := string(AppendTime([]byte("x"), tm)[1:]); got != want {
			t.Fatalf("AppendTime(%v) = %s, want %s", tm, got, want)
		}
	}
}

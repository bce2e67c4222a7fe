package subscription

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/zenne-city/zenne/internal/ngsild"
)

// FuzzParse holds that Parse never panics, fails only with *ngsild.Error, and
// that what it accepts renders to JSON that ParseStored and Parse read back
// to an equal subscription, which renders the same.
func FuzzParse(f *testing.F) {
	for _, tc := range renderBodies {
		f.Add([]byte(tc.body))
	}
	for _, tc := range parseErrors {
		f.Add([]byte(tc.body))
	}
	f.Add([]byte(sub(`"entities": [{"type": "Building;(Vehicle|ex:Truck)", "idPattern": "[a-z]+\\d"}], "q": "a.b[c]~=\"x.*\";d.observedAt>2024-01-01T00:00:00Z|e==1..5"`)))
	f.Add([]byte(sub(`"entities": [{"type": "Building"}], "geoQ": {"georel": "within", "geometry": "Polygon", "coordinates": "[[[0,0],[1,0],[1,1],[0,0]]]"}`)))
	f.Add([]byte(sub(`"watchedAttributes": ["@id", "ngsi-ld:x", "http://example.org/y"], "timeInterval": 0.0005`)))

	ctx := testContext(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		var body map[string]any
		if json.Unmarshal(data, &body) != nil {
			return
		}
		s, err := Parse(body, ctx, now)
		if err != nil {
			var e *ngsild.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T) is not an *ngsild.Error", err, err)
			}
			return
		}
		rendered, err := ngsild.Marshal(Render(s, Status{}, RenderOptions{Compact: ctx, SysAttrs: true, Now: now}))
		if err != nil {
			t.Fatalf("Render wrote unencodable JSON: %v", err)
		}
		var back map[string]any
		if err := json.Unmarshal(rendered, &back); err != nil {
			t.Fatalf("Render wrote invalid JSON %s: %v", rendered, err)
		}
		stored, err := ParseStored(back, ctx)
		if err != nil {
			t.Fatalf("ParseStored(Render(Parse(x))) failed: %v\n%s", err, rendered)
		}
		if d := sameSubscription(s, stored); d != "" {
			t.Fatalf("ParseStored(Render(Parse(x))) differs: %s\n%s", d, rendered)
		}
		again, err := Parse(back, ctx, now)
		if err != nil {
			t.Fatalf("Parse(Render(Parse(x))) failed: %v\n%s", err, rendered)
		}
		if d := sameSubscription(s, again); d != "" {
			t.Fatalf("Parse(Render(Parse(x))) differs: %s\n%s", d, rendered)
		}
		twice, _ := ngsild.Marshal(Render(stored, Status{}, RenderOptions{Compact: ctx, SysAttrs: true, Now: now}))
		if !bytes.Equal(rendered, twice) {
			t.Fatalf("renders differ:\n%s\n%s", rendered, twice)
		}
	})
}

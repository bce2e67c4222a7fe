package jsonld

import (
	"context"
	"encoding/json"
	"testing"
)

// FuzzExpand processes arbitrary JSON as a @context, then expands and compacts
// terms with the result. It must never panic, and compaction must round-trip:
// if a term expands to I, CompactIRI(I) expands back to I.
func FuzzExpand(f *testing.F) {
	f.Add([]byte(`{"schema": "https://schema.org/", "name": "schema:name"}`), "schema:name")
	f.Add([]byte(`{"ex": {"@id": "https://example.org/x", "@prefix": true}, "y": "ex:y"}`), "ex:z")
	f.Add([]byte(`[{"a": "https://example.org/a"}, null, {"@vocab": "https://example.org/v/"}]`), "a")
	f.Add([]byte(`"https://raw.githubusercontent.com/smart-data-models/dataModel.Parking/master/context.jsonld"`), "address")
	f.Add([]byte(`{"temperature": "https://example.org/t"}`), "ngsi-ld:default-context/temperature")
	r := NewResolver(Options{HTTPClient: noNetwork(), CacheSize: 64})
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, data []byte, term string) {
		var raw any
		if json.Unmarshal(data, &raw) != nil {
			return
		}
		c, err := r.Resolve(ctx, raw)
		if err != nil {
			return
		}
		terms := []string{term}
		if m, ok := raw.(map[string]any); ok {
			for k, v := range m {
				terms = append(terms, k)
				if s, ok := v.(string); ok {
					terms = append(terms, s)
				}
			}
		}
		for _, tm := range terms {
			iri := c.ExpandTerm(tm)
			c.CompactIRI(tm) // any string: must not panic
			if iri == "" {
				continue
			}
			back := c.CompactIRI(iri)
			if again := c.ExpandTerm(back); again != iri {
				t.Fatalf("term %q expands to %q, which compacts to %q, which expands to %q", tm, iri, back, again)
			}
		}
	})
}

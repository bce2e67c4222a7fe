package jsonld

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

const (
	ngsiNS    = "https://uri.etsi.org/ngsi-ld/"
	defaultNS = "https://uri.etsi.org/ngsi-ld/default-context/"
)

// offline returns a Resolver that never reaches the network.
func offline(t testing.TB) *Resolver {
	t.Helper()
	return NewResolver(Options{HTTPClient: noNetwork()})
}

func resolve(t *testing.T, r *Resolver, raw any) *Context {
	t.Helper()
	c, err := r.Resolve(context.Background(), raw)
	if err != nil {
		t.Fatalf("Resolve(%v): %v", raw, err)
	}
	return c
}

func TestCoreExpandCompact(t *testing.T) {
	c := offline(t).Core()
	tests := []struct {
		name, term, iri, compact string
	}{
		{"unknown term uses @vocab", "temperature", defaultNS + "temperature", "temperature"},
		{"core term", "location", ngsiNS + "location", "location"},
		{"core type", "Property", ngsiNS + "Property", "Property"},
		{"keyword alias", "id", "@id", "id"},
		{"keyword", "@type", "@type", "type"},
		{"compact IRI with core prefix", "ngsi-ld:foo", ngsiNS + "foo", "ngsi-ld:foo"},
		{"compact IRI to a core term", "ngsi-ld:observedAt", ngsiNS + "observedAt", "observedAt"},
		{"geojson prefix", "geojson:Point", "https://purl.org/geojson/vocab#Point", "Point"},
		{"term mapped to itself", "attributeCount", defaultNS + "attributeCount", "attributeCount"},
		{"urn stays", "urn:ngsi-ld:Building:1", "urn:ngsi-ld:Building:1", "urn:ngsi-ld:Building:1"},
		{"absolute IRI stays", "http://example.org/a", "http://example.org/a", "http://example.org/a"},
		{"absolute IRI in @vocab", defaultNS + "speed", defaultNS + "speed", "speed"},
		{"blank node", "_:b0", "_:b0", "_:b0"},
		{"colon without scheme uses @vocab", "1a:b", defaultNS + "1a:b", "1a:b"},
		{"empty", "", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := c.ExpandTerm(tc.term); got != tc.iri {
				t.Errorf("ExpandTerm(%q) = %q, want %q", tc.term, got, tc.iri)
			}
			if got := c.CompactIRI(tc.iri); got != tc.compact {
				t.Errorf("CompactIRI(%q) = %q, want %q", tc.iri, got, tc.compact)
			}
		})
	}
	if got := c.Source(); got != CoreContext {
		t.Errorf("Source() = %v, want %s", got, CoreContext)
	}
}

func TestCoreVersions(t *testing.T) {
	r := offline(t)
	for _, u := range []string{CoreContextV16, CoreContextV18, CoreContextV19, CoreContextLatest} {
		c := resolve(t, r, u)
		if c.Source() != u || c.Vocab() != defaultNS || c.ExpandTerm("Property") != ngsiNS+"Property" {
			t.Errorf("%s: source %v vocab %q", u, c.Source(), c.Vocab())
		}
	}
	// v1.9 defines "langString", v1.8 does not: naming v1.9 makes it the core applied last.
	if got := resolve(t, r, CoreContextV19).ExpandTerm("langString"); got != "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString" {
		t.Errorf("v1.9 langString = %q", got)
	}
	c := resolve(t, r, []any{map[string]any{"x": "http://example.org/x"}, CoreContextV19})
	if got := c.ExpandTerm("langString"); got != "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString" {
		t.Errorf("[x, v1.9] langString = %q", got)
	}
	if got := r.Core().ExpandTerm("langString"); got != defaultNS+"langString" {
		t.Errorf("core langString = %q", got)
	}
	latest, _ := r.Document(CoreContextLatest)
	v18, _ := r.Document(CoreContextV18)
	if string(latest) != string(v18) || len(v18) == 0 {
		t.Error("the un-versioned core context is not v1.8")
	}
	if n := len(r.EmbeddedURLs()); n != 4+len(sdmDomains) {
		t.Errorf("EmbeddedURLs: %d URLs", n)
	}
}

// TestSDMRoundTrip expands and compacts every term of every embedded Smart Data
// Models context.
func TestSDMRoundTrip(t *testing.T) {
	r := offline(t)
	core := r.Core()
	for _, domain := range sdmDomains {
		t.Run(domain, func(t *testing.T) {
			u := SDMContextURL(domain)
			doc, ok := r.Document(u)
			if !ok {
				t.Fatalf("no embedded document for %s", u)
			}
			var m struct {
				Context map[string]any `json:"@context"`
			}
			if err := json.Unmarshal(doc, &m); err != nil {
				t.Fatal(err)
			}
			c := resolve(t, r, u)
			byIRI := map[string]int{}
			for _, d := range c.terms {
				byIRI[d.iri]++
			}
			for term, def := range m.Context {
				want, ok := def.(string)
				if d, isMap := def.(map[string]any); isMap {
					want, ok = d["@id"].(string)
				}
				if !ok {
					t.Fatalf("%s: unexpected definition %v", term, def)
				}
				if _, isCore := core.terms[term]; isCore {
					want = core.ExpandTerm(term) // core terms win
				}
				iri := c.ExpandTerm(term)
				if iri != want {
					t.Errorf("ExpandTerm(%q) = %q, want %q", term, iri, want)
				}
				back := c.CompactIRI(iri)
				if c.ExpandTerm(back) != iri {
					t.Errorf("CompactIRI(%q) = %q, which expands to %q", iri, back, c.ExpandTerm(back))
				}
				if byIRI[iri] == 1 && back != term {
					t.Errorf("CompactIRI(%q) = %q, want %q", iri, back, term)
				}
			}
		})
	}
}

func TestUserContexts(t *testing.T) {
	r := offline(t)
	tests := []struct {
		name    string
		raw     any
		term    string
		iri     string
		compact string // "" means term
	}{
		{"user term", map[string]any{"speed": "https://example.org/speed"}, "speed", "https://example.org/speed", ""},
		{"expanded definition", map[string]any{"rel": map[string]any{"@id": "https://example.org/rel", "@type": "@id"}}, "rel", "https://example.org/rel", ""},
		{"core wins over user", map[string]any{"location": "https://example.org/loc"}, "location", ngsiNS + "location", ""},
		{"core wins over keyword alias", map[string]any{"type": "https://example.org/type"}, "type", "@type", ""},
		{"core wins even after core", []any{CoreContext, map[string]any{"Property": "https://example.org/P"}}, "Property", ngsiNS + "Property", ""},
		{"core @vocab wins", map[string]any{"@vocab": "https://example.org/"}, "foo", defaultNS + "foo", ""},
		{"user prefix", map[string]any{"schema": "https://schema.org/"}, "schema:name", "https://schema.org/name", ""},
		{"term via user prefix", map[string]any{"schema": "https://schema.org/", "name": "schema:name"}, "name", "https://schema.org/name", ""},
		{"no prefix without gen-delim", map[string]any{"ex": "https://example.org/x"}, "ex:y", "ex:y", ""},
		{"explicit @prefix", map[string]any{"ex": map[string]any{"@id": "https://example.org/x", "@prefix": true}}, "ex:y", "https://example.org/xy", ""},
		{"shortest term wins", map[string]any{"bb": "https://example.org/same", "a": "https://example.org/same", "c": "https://example.org/same"}, "bb", "https://example.org/same", "a"},
		{"term shadowing @vocab", map[string]any{"temperature": "https://example.org/t"}, "ngsi-ld:default-context/temperature", defaultNS + "temperature", "ngsi-ld:default-context/temperature"},
		{"null mapping", map[string]any{"hidden": nil}, "hidden", "", ""},
		{"null resets", []any{map[string]any{"foo": "https://example.org/foo"}, nil}, "foo", defaultNS + "foo", ""},
		{"later definition wins", []any{map[string]any{"foo": "https://example.org/1"}, map[string]any{"foo": "https://example.org/2"}}, "foo", "https://example.org/2", ""},
		{"@version and @protected", map[string]any{"@version": 1.1, "@protected": true, "foo": "https://example.org/foo"}, "foo", "https://example.org/foo", ""},
		{"scoped context ignored", map[string]any{"foo": map[string]any{"@id": "https://example.org/foo", "@context": "https://unreachable.invalid/c"}}, "foo", "https://example.org/foo", ""},
		{"embedded SDM and inline", []any{SDMContextURL("Parking"), map[string]any{"extra": "https://example.org/extra"}}, "extra", "https://example.org/extra", ""},
		{"[]string", []string{SDMContextURL("Parking"), CoreContextLatest}, "address", "https://smartdatamodels.org/address", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := resolve(t, r, tc.raw)
			if got := c.ExpandTerm(tc.term); got != tc.iri {
				t.Fatalf("ExpandTerm(%q) = %q, want %q", tc.term, got, tc.iri)
			}
			want := tc.compact
			if want == "" {
				want = tc.term
			}
			if tc.iri != "" {
				if got := c.CompactIRI(tc.iri); got != want {
					t.Errorf("CompactIRI(%q) = %q, want %q", tc.iri, got, want)
				}
			}
			if !reflect.DeepEqual(c.Source(), cloneJSON(tc.raw)) {
				t.Errorf("Source() = %v, want %v", c.Source(), tc.raw)
			}
		})
	}
}

func TestTermDefinition(t *testing.T) {
	// The core context comes first here so that its ngsi-ld prefix is defined
	// when "when" is processed.
	c := resolve(t, offline(t), []any{CoreContext, map[string]any{
		"rel":  map[string]any{"@id": "https://example.org/rel", "@type": "@vocab", "@container": []any{"@list"}},
		"when": map[string]any{"@id": "https://example.org/when", "@type": "ngsi-ld:DateTime"},
	}})
	d, ok := c.Term("rel")
	if !ok || d.IRI != "https://example.org/rel" || d.Type != "@vocab" || !reflect.DeepEqual(d.Container, []string{"@list"}) {
		t.Errorf("Term(rel) = %+v, %v", d, ok)
	}
	if d, _ := c.Term("when"); d.Type != ngsiNS+"DateTime" {
		t.Errorf("Term(when).Type = %q", d.Type)
	}
	if d, _ := c.Term("datasetId"); d.Type != "@id" {
		t.Errorf("Term(datasetId).Type = %q", d.Type)
	}
	if _, ok := c.Term("nope"); ok {
		t.Error("Term(nope) found")
	}
}

func TestInvalidContexts(t *testing.T) {
	tests := []struct {
		name string
		raw  any
	}{
		{"number", 42.0},
		{"boolean", true},
		{"term is a number", map[string]any{"foo": 1.0}},
		{"term is an array", map[string]any{"foo": []any{"x"}}},
		{"@id is a number", map[string]any{"foo": map[string]any{"@id": 1.0}}},
		{"@type is a number", map[string]any{"foo": map[string]any{"@id": "https://example.org/f", "@type": 1.0}}},
		{"@container is a number", map[string]any{"foo": map[string]any{"@id": "https://example.org/f", "@container": 1.0}}},
		{"@prefix not a boolean", map[string]any{"foo": map[string]any{"@id": "https://example.org/f", "@prefix": "yes"}}},
		{"@version 1.0", map[string]any{"@version": 1.0}},
		{"@vocab is a number", map[string]any{"@vocab": 3.0}},
		{"@vocab relative", map[string]any{"@vocab": "relative"}},
		{"@import not a string", map[string]any{"@import": 1.0}},
		{"cyclic IRI mapping", map[string]any{"a": "b:x", "b": "a:y"}},
		{"relative IRI without @vocab", map[string]any{"a": "relative"}},
		{"empty term", map[string]any{"": "https://example.org/e"}},
		{"nested array", []any{[]any{}}},
		{"relative URL", "context.jsonld"},
		{"unsupported Go type", map[string]any{"a": make(chan int)}},
	}
	r := offline(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.Resolve(context.Background(), tc.raw)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestResolveCachesContexts(t *testing.T) {
	r := offline(t)
	u := SDMContextURL("Environment")
	first, second := resolve(t, r, u), resolve(t, r, u)
	if first != second {
		t.Error("same URL resolved twice gives two contexts")
	}
	a := resolve(t, r, map[string]any{"a": "https://example.org/a", "b": "https://example.org/b"})
	b := resolve(t, r, map[string]any{"b": "https://example.org/b", "a": "https://example.org/a"})
	if a != b {
		t.Error("equal inline contexts resolved twice give two contexts")
	}
	if resolve(t, r, nil) != r.Core() || resolve(t, r, CoreContext) != r.Core() {
		t.Error("core context is not shared")
	}
}

func BenchmarkResolveCachedURL(b *testing.B) {
	r := offline(b)
	u := SDMContextURL("Transportation")
	ctx := context.Background()
	if _, err := r.Resolve(ctx, u); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := r.Resolve(ctx, u); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkExpandCompact(b *testing.B) {
	c, err := offline(b).Resolve(context.Background(), SDMContextURL("Transportation"))
	if err != nil {
		b.Fatal(err)
	}
	terms := []string{"intensity", "temperature", "location", "ngsi-ld:foo", "urn:x"}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		c.CompactIRI(c.ExpandTerm(terms[i%len(terms)]))
	}
}

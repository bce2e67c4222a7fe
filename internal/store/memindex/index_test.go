package memindex

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store/codec"
)

// randomEntity has every shape of attribute the index treats apart: numbers,
// booleans, short and long strings, points and other geometries, compound
// values, instances without content, several instances by datasetId,
// relationships, language maps, sub-attributes, several types and scopes.
func randomEntity(rng *rand.Rand, i int) *ngsild.Entity {
	e := &ngsild.Entity{ID: fmt.Sprintf("urn:ngsi-ld:E:%d", i), Types: []string{"https://example.org/T" + fmt.Sprint(rng.IntN(3))},
		Attrs: map[string][]*ngsild.Attribute{}}
	if rng.IntN(4) == 0 {
		e.Types = append(e.Types, "https://example.org/Other")
	}
	if rng.IntN(4) == 0 {
		e.Scopes = []string{"/brussels/" + fmt.Sprint(rng.IntN(5))}
	}
	point := func() any {
		return map[string]any{"type": "Point", "coordinates": []any{4.3 + rng.Float64()/10, 50.8 + rng.Float64()/10}}
	}
	values := []func() *ngsild.Attribute{
		func() *ngsild.Attribute { return &ngsild.Attribute{Kind: ngsild.Property, Value: rng.Float64() * 100} },
		func() *ngsild.Attribute { return &ngsild.Attribute{Kind: ngsild.Property, Value: rng.IntN(2) == 0} },
		func() *ngsild.Attribute { return &ngsild.Attribute{Kind: ngsild.Property, Value: "ok"} },
		func() *ngsild.Attribute {
			return &ngsild.Attribute{Kind: ngsild.Property, Value: strings.Repeat("long ", 40)}
		},
		func() *ngsild.Attribute {
			return &ngsild.Attribute{Kind: ngsild.Property, Value: map[string]any{"a": []any{1.0, "x"}}}
		},
		func() *ngsild.Attribute {
			return &ngsild.Attribute{Kind: ngsild.Relationship, Value: "urn:ngsi-ld:X:1"}
		},
		func() *ngsild.Attribute {
			return &ngsild.Attribute{Kind: ngsild.LanguageProperty, Value: map[string]any{"nl": "straat", "fr": "rue"}}
		},
		func() *ngsild.Attribute { return &ngsild.Attribute{Kind: ngsild.GeoProperty, Value: point()} },
		func() *ngsild.Attribute {
			return &ngsild.Attribute{Kind: ngsild.GeoProperty, Value: map[string]any{"type": "Polygon",
				"coordinates": []any{[]any{[]any{4.3, 50.8}, []any{4.4, 50.8}, []any{4.4, 50.9}, []any{4.3, 50.8}}}}}
		},
		func() *ngsild.Attribute {
			return &ngsild.Attribute{Kind: ngsild.Property, Value: 1.0, UnitCode: "CEL", ObservedAt: time.Unix(1e9, 0).UTC(),
				Sub: map[string]*ngsild.Attribute{"accuracy": {Kind: ngsild.Property, Value: 0.1}}}
		},
	}
	for a := range 1 + rng.IntN(6) {
		name := fmt.Sprintf("https://example.org/a%d", a)
		for d := range 1 + rng.IntN(2) {
			inst := values[rng.IntN(len(values))]()
			if d > 0 {
				inst.DatasetID = fmt.Sprintf("urn:ds:%d", d)
			}
			e.Attrs[name] = append(e.Attrs[name], inst)
		}
	}
	return e
}

// Names.Project, which builds index records from stored documents when a
// store opens, must give the records Names.Rec gives from the decoded
// entities.
func TestProjectMatchesRec(t *testing.T) {
	names := New().Names()
	rng := rand.New(rand.NewPCG(5, 5))
	for i := range 2000 {
		e := randomEntity(rng, i)
		doc, err := codec.EncodeEntity(e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := names.Project(doc, 3, 7)
		if err != nil {
			t.Fatalf("Project %s: %v", e.ID, err)
		}
		dec, err := codec.DecodeEntity(doc)
		if err != nil {
			t.Fatal(err)
		}
		want := names.Rec(3, 7, dec)
		if g, w := recSummary(got), recSummary(want); g != w {
			t.Fatalf("%s:\nProject %s\nRec     %s", e.ID, g, w)
		}
	}
}

// recSummary renders a record independently of attribute and box order.
func recSummary(r *Rec) string {
	var attrs, boxes []string
	for i := range r.attrs {
		a := &r.attrs[i]
		attrs = append(attrs, fmt.Sprintf("%d/%d/%d/%v", a.name, a.kind, a.val, r.value(a)))
	}
	for _, b := range r.boxes {
		boxes = append(boxes, fmt.Sprint(b))
	}
	slices.Sort(attrs)
	slices.Sort(boxes)
	return fmt.Sprint(r.tid, r.ver, r.id(), r.types(), r.scopeList(), attrs, boxes)
}

// FuzzProject: the query index build reads stored documents its own way; it
// must not panic on any input and must accept what codec.DecodeEntity
// accepts.
func FuzzProject(f *testing.F) {
	doc, _ := codec.EncodeEntity(&ngsild.Entity{ID: "urn:a", Types: []string{"T"},
		Attrs: map[string][]*ngsild.Attribute{"p": {{Kind: ngsild.Property, Value: []any{1.0, "x"}}}}})
	f.Add(doc)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 5 {
		doc, _ := codec.EncodeEntity(randomEntity(rng, i))
		f.Add(doc)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, err := codec.DecodeEntity(b)
		_, perr := New().Names().Project(b, 1, 1)
		if err == nil && perr != nil {
			t.Fatalf("codec.DecodeEntity accepts the document, Project says %v", perr)
		}
	})
}

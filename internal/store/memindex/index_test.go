package memindex

import (
	"fmt"
	"slices"
	"testing"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store/codec"
	"github.com/zenne-city/zenne/internal/store/storetest"
)

// Names.Project, which builds index records from stored documents when a
// store opens, must give the records Names.Rec gives from the decoded
// entities.
func TestProjectMatchesRec(t *testing.T) {
	names := New().Names()
	w := storetest.NewWorld(5) // entities with every shape of attribute the index treats apart
	for range 2000 {
		e := w.Create("").Entity
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
	w := storetest.NewWorld(1)
	for range 5 {
		doc, _ := codec.EncodeEntity(w.Create("").Entity)
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

// Package facts is what a backend's counters (Types, Attributes, counts per
// type) know about one entity, in a sorted form two versions of an entity
// can be diffed by cheaply.
package facts

import (
	"slices"
	"strings"

	"github.com/zenne-city/zenne/internal/ngsild"
)

// Attr is what the counters know about one attribute name of an entity.
type Attr struct {
	Name  string
	Kinds []ngsild.Kind // sorted, unique
}

// Entity is what the counters know about one entity.
type Entity struct {
	Types []string // sorted, unique
	Attrs []Attr   // by name; only names with an instance
}

// Of returns e's facts (none for nil).
func Of(e *ngsild.Entity) *Entity {
	r := &Entity{}
	if e == nil {
		return r
	}
	r.Types = slices.Clone(e.Types)
	slices.Sort(r.Types)
	r.Types = slices.Compact(r.Types)
	for name, insts := range e.Attrs {
		if len(insts) == 0 {
			continue
		}
		f := Attr{Name: name}
		for _, a := range insts {
			if a != nil {
				f.Kinds = append(f.Kinds, a.Kind)
			}
		}
		slices.Sort(f.Kinds)
		f.Kinds = slices.Compact(f.Kinds)
		r.Attrs = append(r.Attrs, f)
	}
	slices.SortFunc(r.Attrs, func(a, b Attr) int { return strings.Compare(a.Name, b.Name) })
	return r
}

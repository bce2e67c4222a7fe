package sqlite

import (
	"slices"
	"strings"

	"github.com/zenne-city/zenne/internal/ngsild"
)

// attrFacts is what the counters know about one attribute name of an entity.
type attrFacts struct {
	name  string
	kinds []ngsild.Kind // sorted, unique
}

// entityFacts are the facts the counters (type_counts, attr_counts,
// type_attrs) keep about one entity, sorted so two versions can be diffed
// cheaply. Queries use the in-memory index (memindex.go).
type entityFacts struct {
	types []string
	attrs []attrFacts // by name
}

func factsOf(e *ngsild.Entity) *entityFacts {
	r := &entityFacts{}
	if e == nil {
		return r
	}
	r.types = slices.Clone(e.Types)
	slices.Sort(r.types)
	r.types = slices.Compact(r.types)
	for name, insts := range e.Attrs {
		if len(insts) == 0 {
			continue
		}
		f := attrFacts{name: name}
		for _, a := range insts {
			if a != nil {
				f.kinds = append(f.kinds, a.Kind)
			}
		}
		slices.Sort(f.kinds)
		f.kinds = slices.Compact(f.kinds)
		r.attrs = append(r.attrs, f)
	}
	slices.SortFunc(r.attrs, func(a, b attrFacts) int { return strings.Compare(a.name, b.name) })
	return r
}

// diffSorted walks two sorted lists and calls del for elements only in old
// and add for elements only in new.
func diffSorted[T any](old, new []T, cmp func(a, b T) int, del, add func(T) error) error {
	i, j := 0, 0
	for i < len(old) || j < len(new) {
		switch {
		case j == len(new) || (i < len(old) && cmp(old[i], new[j]) < 0):
			if err := del(old[i]); err != nil {
				return err
			}
			i++
		case i == len(old) || cmp(old[i], new[j]) > 0:
			if err := add(new[j]); err != nil {
				return err
			}
			j++
		default:
			i++
			j++
		}
	}
	return nil
}

package store

import (
	"cmp"
	"slices"

	"github.com/zenne-city/zenne/internal/ngsild"
)

// TypeAttr is one (type, attribute, kind) that at least one entity of a
// tenant holds, as the backends count them on write.
type TypeAttr struct {
	Type, Name string
	Kind       ngsild.Kind
}

// TypeInfos is what Types answers from a backend's counters: the entities
// per type and the (type, attribute, kind) rows, in any order.
func TypeInfos(counts map[string]int, tas []TypeAttr) []TypeInfo {
	byType := make(map[string]*TypeInfo, len(counts))
	for t, n := range counts {
		byType[t] = &TypeInfo{Type: t, Count: n, Attrs: map[string][]ngsild.Kind{}}
	}
	for _, ta := range tas {
		if ti := byType[ta.Type]; ti != nil {
			ti.Attrs[ta.Name] = append(ti.Attrs[ta.Name], ta.Kind)
		}
	}
	out := make([]TypeInfo, 0, len(byType))
	for _, ti := range byType {
		for _, kinds := range ti.Attrs {
			slices.Sort(kinds)
		}
		out = append(out, *ti)
	}
	slices.SortFunc(out, func(a, b TypeInfo) int { return cmp.Compare(a.Type, b.Type) })
	return out
}

// AttributeInfos is what Attributes answers from a backend's counters: the
// entities per attribute name and the (type, attribute, kind) rows.
func AttributeInfos(counts map[string]int, tas []TypeAttr) []AttributeInfo {
	byName := make(map[string]*AttributeInfo, len(counts))
	for name, n := range counts {
		byName[name] = &AttributeInfo{Name: name, Count: n}
	}
	for _, ta := range tas {
		if ai := byName[ta.Name]; ai != nil {
			ai.Types = append(ai.Types, ta.Type)
			ai.Kinds = append(ai.Kinds, ta.Kind)
		}
	}
	out := make([]AttributeInfo, 0, len(byName))
	for _, ai := range byName {
		slices.Sort(ai.Types)
		ai.Types = slices.Compact(ai.Types)
		slices.Sort(ai.Kinds)
		ai.Kinds = slices.Compact(ai.Kinds)
		out = append(out, *ai)
	}
	slices.SortFunc(out, func(a, b AttributeInfo) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

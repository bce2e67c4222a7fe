package qlang

import "github.com/zenne-city/zenne/internal/ngsild"

// Bound is a comparison of an attribute's value with a number that every
// entity a query matches must satisfy: Attr > Num or >= Num (Above), or
// Attr < Num or <= Num. Subscriptions such as "fillingLevel>0.8" are filed
// by it, so a change is offered only to those whose threshold its values
// can pass.
type Bound struct {
	Attr  string // expanded
	Num   float64
	Above bool
}

// Bound returns a numeric bound q implies: q's one term, or a term of its
// top-level AND, that compares an attribute's own value (no sub-attribute,
// metadata or [key]) with a number by <, <=, > or >=.
func (q *Query) Bound() (Bound, bool) {
	if q == nil || q.root == nil {
		return Bound{}, false
	}
	if b, ok := termBound(q.root); ok {
		return b, true
	}
	if q.root.op == opAnd {
		for _, k := range q.root.kids {
			if b, ok := termBound(k); ok {
				return b, true
			}
		}
	}
	return Bound{}, false
}

func termBound(n *boolExpr[*term]) (Bound, bool) {
	if n.op != opTerm {
		return Bound{}, false
	}
	t := n.leaf
	p := &t.path
	if len(p.subs) > 0 || p.meta != "" || len(p.keys) > 0 || t.rng || len(t.vals) != 1 || t.vals[0].kind != vNum {
		return Bound{}, false
	}
	switch t.op {
	case tGt, tGe:
		return Bound{Attr: p.attr.iri, Num: t.vals[0].num, Above: true}, true
	case tLt, tLe:
		return Bound{Attr: p.attr.iri, Num: t.vals[0].num}, true
	}
	return Bound{}, false
}

// NumRange returns the least and the greatest number among the values of
// attribute attr (expanded) in e, read the way Match reads them for an
// ordered comparison with a number: any instance, any array element, the
// @value of a value object, any language of a LanguageProperty.
// Relationships never compare by order and are skipped. ok is false when
// there is no such number: then no Bound on attr holds.
func NumRange(e *ngsild.Entity, attr string) (lo, hi float64, ok bool) {
	if e == nil {
		return 0, 0, false
	}
	see := func(f float64) {
		if f != f { // NaN is unordered: no comparison holds
			return
		}
		if !ok || f < lo {
			lo = f
		}
		if !ok || f > hi {
			hi = f
		}
		ok = true
	}
	for _, a := range e.Attrs[attr] {
		if a == nil {
			continue
		}
		switch a.Kind {
		case ngsild.Relationship, ngsild.ListRelationship:
			continue
		}
		numbers(a.Value, a.Kind == ngsild.LanguageProperty, see)
	}
	return lo, hi, ok
}

// numbers calls see with every number anyOf would compare in v.
func numbers(v any, langMap bool, see func(float64)) {
	switch x := v.(type) {
	case []any:
		for _, el := range x {
			scalarNumber(el, see)
		}
		return
	case map[string]any:
		if v, ok := x["@value"]; ok && !langMap {
			scalarNumber(v, see)
			return
		}
		if langMap {
			for _, txt := range x {
				numbers(txt, false, see)
			}
		}
		return
	}
	scalarNumber(v, see)
}

func scalarNumber(x any, see func(float64)) {
	if m, ok := x.(map[string]any); ok && m["@value"] != nil {
		x = m["@value"]
	}
	if f, ok := toFloat(x); ok {
		see(f)
	}
}

package qlang

import (
	"slices"
	"strings"
)

// TypeQuery is a parsed entity type selection (ETSI GS CIM 009, 4.17): type
// names combined with ',' or '|' (OR), ';' (AND: the entity has both types)
// and parentheses. It is immutable and safe for concurrent use.
type TypeQuery struct {
	root  *boolExpr[seg] // leaves: type names
	anyOf []string
}

// ParseTypeQuery parses an entity type selection, already URL-decoded; expand
// maps a type name to its IRI (nil: identity). Errors are BadRequestData.
func ParseTypeQuery(s string, expand func(term string) string) (*TypeQuery, error) {
	if expand == nil {
		expand = identity
	}
	p := &scanner{s: s, lang: "type"}
	root, err := parseBool(p, "|,", "',', '|', ';' or end of input", func() (seg, error) {
		name := p.word(",|;()")
		if name == "" {
			return seg{}, p.unexpected("an entity type")
		}
		return seg{name, expand(name)}, nil
	})
	if err != nil {
		return nil, err
	}
	t := &TypeQuery{root: root}
	switch root.op {
	case opTerm:
		t.anyOf = []string{root.leaf.iri}
	case opOr:
		for _, k := range root.kids {
			if k.op != opTerm {
				t.anyOf = nil
				break
			}
			t.anyOf = append(t.anyOf, k.leaf.iri)
		}
	}
	return t, nil
}

// Match reports whether an entity with these (expanded) types satisfies t.
func (t *TypeQuery) Match(types []string) bool {
	if t == nil || t.root == nil {
		return true
	}
	if t.anyOf != nil { // the common case, a list of types: no expression tree to walk
		for _, x := range t.anyOf {
			if slices.Contains(types, x) {
				return true
			}
		}
		return false
	}
	return evalBool(t.root, types, func(name seg, types []string) bool { return slices.Contains(types, name.iri) })
}

// AnyOf returns the expanded types if the expression is a plain OR of types
// (A, "A,B", "A|B"), else nil. The slice is shared: do not modify it.
func (t *TypeQuery) AnyOf() []string {
	if t == nil {
		return nil
	}
	return t.anyOf
}

// String renders t canonically with the names as written (',' for OR).
func (t *TypeQuery) String() string { return t.render(asWritten) }

// Compact renders t like String with every type written as compact writes
// its IRI (a name that would not read back stays as written).
func (t *TypeQuery) Compact(compact func(iri string) string) string {
	return t.render(func(s seg) string {
		c := compact(s.iri)
		if c == "" || strings.ContainsAny(c, ",|;() ") {
			return s.term
		}
		return c
	})
}

func (t *TypeQuery) render(name func(seg) string) string {
	if t == nil || t.root == nil {
		return ""
	}
	var b strings.Builder
	t.root.write(&b, ',', func(s seg, b *strings.Builder) { b.WriteString(name(s)) })
	return b.String()
}

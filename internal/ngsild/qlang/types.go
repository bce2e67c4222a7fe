package qlang

import (
	"strings"

	"github.com/zenne-city/zenne/internal/ngsild"
)

// TypeQuery is a parsed entity type selection (ETSI GS CIM 009, 4.17): type
// names combined with ',' or '|' (OR), ';' (AND: the entity has both types)
// and parentheses. It is immutable and safe for concurrent use.
type TypeQuery struct {
	root  *tnode
	anyOf []string
}

type tnode struct {
	op   nodeOp
	kids []*tnode
	name seg // opTerm
}

// ParseTypeQuery parses an entity type selection, already URL-decoded; expand
// maps a type name to its IRI (nil: identity). Errors are BadRequestData.
func ParseTypeQuery(s string, expand func(term string) string) (*TypeQuery, error) {
	if expand == nil {
		expand = identity
	}
	p := &tparser{scanner: scanner{s: s, lang: "type", etype: ngsild.BadRequestData}, expand: expand}
	if err := p.check(); err != nil {
		return nil, err
	}
	root, err := p.or()
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.i < len(p.s) {
		return nil, p.unexpected("',', '|', ';' or end of input")
	}
	t := &TypeQuery{root: root}
	switch root.op {
	case opTerm:
		t.anyOf = []string{root.name.iri}
	case opOr:
		for _, k := range root.kids {
			if k.op != opTerm {
				t.anyOf = nil
				break
			}
			t.anyOf = append(t.anyOf, k.name.iri)
		}
	}
	return t, nil
}

type tparser struct {
	scanner
	expand func(string) string
}

func (p *tparser) or() (*tnode, error) {
	n := &tnode{op: opOr}
	for {
		k, err := p.and()
		if err != nil {
			return nil, err
		}
		tadd(n, k)
		p.skipSpace()
		if c := p.peek(); c != '|' && c != ',' {
			break
		}
		p.i++
	}
	return tcollapse(n), nil
}

func (p *tparser) and() (*tnode, error) {
	n := &tnode{op: opAnd}
	for {
		k, err := p.primary()
		if err != nil {
			return nil, err
		}
		tadd(n, k)
		p.skipSpace()
		if p.peek() != ';' {
			break
		}
		p.i++
	}
	return tcollapse(n), nil
}

func tadd(n, k *tnode) {
	if k.op == n.op {
		n.kids = append(n.kids, k.kids...)
	} else {
		n.kids = append(n.kids, k)
	}
}

func tcollapse(n *tnode) *tnode {
	if len(n.kids) == 1 {
		return n.kids[0]
	}
	return n
}

func (p *tparser) primary() (*tnode, error) {
	p.skipSpace()
	if p.peek() == '(' {
		open := p.i
		p.i++
		if err := p.enter(); err != nil {
			return nil, err
		}
		n, err := p.or()
		if err != nil {
			return nil, err
		}
		p.skipSpace()
		if p.peek() != ')' {
			if p.i >= len(p.s) {
				return nil, p.errf("unbalanced '(' at position %d", open+1)
			}
			return nil, p.unexpected("')'")
		}
		p.i++
		p.depth--
		return n, nil
	}
	name := p.word(",|;()")
	if name == "" {
		return nil, p.unexpected("an entity type")
	}
	return &tnode{op: opTerm, name: seg{name, p.expand(name)}}, nil
}

// Match reports whether an entity with these (expanded) types satisfies t.
func (t *TypeQuery) Match(types []string) bool {
	if t == nil || t.root == nil {
		return true
	}
	return t.root.eval(types)
}

func (n *tnode) eval(types []string) bool {
	switch n.op {
	case opAnd:
		for _, k := range n.kids {
			if !k.eval(types) {
				return false
			}
		}
		return true
	case opOr:
		for _, k := range n.kids {
			if k.eval(types) {
				return true
			}
		}
		return false
	}
	for _, x := range types {
		if x == n.name.iri {
			return true
		}
	}
	return false
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
func (t *TypeQuery) String() string {
	if t == nil || t.root == nil {
		return ""
	}
	var b strings.Builder
	t.root.write(&b)
	return b.String()
}

func (n *tnode) write(b *strings.Builder) {
	if n.op == opTerm {
		b.WriteString(n.name.term)
		return
	}
	sep := byte(';')
	if n.op == opOr {
		sep = ','
	}
	for i, k := range n.kids {
		if i > 0 {
			b.WriteByte(sep)
		}
		paren := n.op == opAnd && k.op == opOr
		if paren {
			b.WriteByte('(')
		}
		k.write(b)
		if paren {
			b.WriteByte(')')
		}
	}
}

package qlang

import "strings"

type nodeOp uint8

const (
	opTerm nodeOp = iota
	opAnd
	opOr
)

// boolExpr is the expression tree the three languages share: a leaf (a q
// term, a scope path, a type name), or the AND or OR of two or more
// subexpressions. parseBool flattens it: an AND has no AND kids, an OR no OR kids.
type boolExpr[L any] struct {
	op   nodeOp
	kids []*boolExpr[L] // opAnd, opOr
	leaf L              // opTerm
}

// parseBool parses all of p.s as
//
//	or      := and (orSep and)*
//	and     := primary (';' primary)*
//	primary := '(' or ')' | leaf
//
// where orSep is any byte of orSeps and leaf reads one leaf at p.i (spaces
// already skipped). atEnd says what may follow a complete expression, for the
// error when something else does.
func parseBool[L any](p *scanner, orSeps, atEnd string, leaf func() (L, error)) (*boolExpr[L], error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	bp := &boolParser[L]{scanner: p, orSeps: orSeps}
	root, err := bp.or(leaf)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.i < len(p.s) {
		return nil, p.unexpected(atEnd)
	}
	return root, nil
}

// boolParser's methods take the leaf parser as an argument rather than keep it
// in a field: a func value called from a field lets what it captures escape,
// costing ParseQ an allocation.
type boolParser[L any] struct {
	*scanner
	orSeps string
}

func (p *boolParser[L]) or(leaf func() (L, error)) (*boolExpr[L], error) {
	n := &boolExpr[L]{op: opOr}
	for {
		k, err := p.and(leaf)
		if err != nil {
			return nil, err
		}
		n.add(k)
		p.skipSpace()
		if strings.IndexByte(p.orSeps, p.peek()) < 0 {
			break
		}
		p.i++
	}
	return n.collapse(), nil
}

func (p *boolParser[L]) and(leaf func() (L, error)) (*boolExpr[L], error) {
	n := &boolExpr[L]{op: opAnd}
	for {
		k, err := p.primary(leaf)
		if err != nil {
			return nil, err
		}
		n.add(k)
		p.skipSpace()
		if p.peek() != ';' {
			break
		}
		p.i++
	}
	return n.collapse(), nil
}

func (p *boolParser[L]) primary(leaf func() (L, error)) (*boolExpr[L], error) {
	p.skipSpace()
	if p.peek() == '(' {
		open := p.i
		p.i++
		if err := p.enter(); err != nil {
			return nil, err
		}
		n, err := p.or(leaf)
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
	l, err := leaf()
	if err != nil {
		return nil, err
	}
	return &boolExpr[L]{op: opTerm, leaf: l}, nil
}

// add appends k to n, flattening a child of the same operator.
func (n *boolExpr[L]) add(k *boolExpr[L]) {
	if k.op == n.op {
		n.kids = append(n.kids, k.kids...)
	} else {
		n.kids = append(n.kids, k)
	}
}

// collapse replaces an AND or OR of one expression by that expression.
func (n *boolExpr[L]) collapse() *boolExpr[L] {
	if len(n.kids) == 1 {
		return n.kids[0]
	}
	return n
}

// evalBool reports whether n holds for x, holds deciding each leaf. (A plain
// function rather than a method, so that q passes (*term).eval with no closure.)
func evalBool[L, X any](n *boolExpr[L], x X, holds func(L, X) bool) bool {
	switch n.op {
	case opAnd:
		for _, k := range n.kids {
			if !evalBool(k, x, holds) {
				return false
			}
		}
		return true
	case opOr:
		for _, k := range n.kids {
			if evalBool(k, x, holds) {
				return true
			}
		}
		return false
	}
	return holds(n.leaf, x)
}

// write renders n canonically: ';' for AND, orSep for OR, AND binding tighter
// than OR and parentheses only where needed; leaf renders a leaf.
func (n *boolExpr[L]) write(b *strings.Builder, orSep byte, leaf func(L, *strings.Builder)) {
	if n.op == opTerm {
		leaf(n.leaf, b)
		return
	}
	sep := byte(';')
	if n.op == opOr {
		sep = orSep
	}
	for i, k := range n.kids {
		if i > 0 {
			b.WriteByte(sep)
		}
		paren := n.op == opAnd && k.op == opOr
		if paren {
			b.WriteByte('(')
		}
		k.write(b, orSep, leaf)
		if paren {
			b.WriteByte(')')
		}
	}
}

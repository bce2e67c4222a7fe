package qlang

import (
	"strings"

	"github.com/zenne-city/zenne/internal/ngsild"
)

// ScopeQuery is a parsed scopeQ expression (ETSI GS CIM 009, 4.19): scope
// paths such as /Brussels/Energy, where a level "+" matches exactly one level
// and a final "#" matches that level and everything below (so "/#" matches
// every scope), combined with ';' (AND), ',' or '|' (OR) and parentheses.
// It is immutable and safe for concurrent use.
type ScopeQuery struct{ root *snode }

type snode struct {
	op     nodeOp
	kids   []*snode
	levels []string // opTerm
}

// ParseScopeQ parses a scopeQ expression, already URL-decoded.
func ParseScopeQ(s string) (*ScopeQuery, error) {
	p := &sparser{scanner{s: s, lang: "scopeQ", etype: ngsild.BadRequestData}}
	if err := p.check(); err != nil {
		return nil, err
	}
	root, err := p.or()
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.i < len(p.s) {
		return nil, p.unexpected("';', ',', '|' or end of input")
	}
	return &ScopeQuery{root: root}, nil
}

type sparser struct{ scanner }

func (p *sparser) or() (*snode, error) {
	n := &snode{op: opOr}
	for {
		k, err := p.and()
		if err != nil {
			return nil, err
		}
		sadd(n, k)
		p.skipSpace()
		if c := p.peek(); c != '|' && c != ',' {
			break
		}
		p.i++
	}
	return scollapse(n), nil
}

func (p *sparser) and() (*snode, error) {
	n := &snode{op: opAnd}
	for {
		k, err := p.primary()
		if err != nil {
			return nil, err
		}
		sadd(n, k)
		p.skipSpace()
		if p.peek() != ';' {
			break
		}
		p.i++
	}
	return scollapse(n), nil
}

func sadd(n, k *snode) {
	if k.op == n.op {
		n.kids = append(n.kids, k.kids...)
	} else {
		n.kids = append(n.kids, k)
	}
}

func scollapse(n *snode) *snode {
	if len(n.kids) == 1 {
		return n.kids[0]
	}
	return n
}

func (p *sparser) primary() (*snode, error) {
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
	return p.scope()
}

// scope reads [/]level(/level)*.
func (p *sparser) scope() (*snode, error) {
	if p.peek() == '/' {
		p.i++
	}
	n := &snode{op: opTerm}
	for {
		start := p.i
		lvl := p.word("/;,|()")
		if lvl == "" {
			p.i = start
			return nil, p.unexpected("a scope level")
		}
		if (strings.Contains(lvl, "#") || strings.Contains(lvl, "+")) && lvl != "#" && lvl != "+" {
			return nil, p.errf("'+' and '#' must be a whole scope level (position %d)", start+1)
		}
		if len(n.levels) > 0 && n.levels[len(n.levels)-1] == "#" {
			return nil, p.errf("'#' must be the last scope level (position %d)", start+1)
		}
		n.levels = append(n.levels, lvl)
		if p.peek() != '/' {
			return n, nil
		}
		p.i++
	}
}

// Match reports whether the entity's scopes satisfy q; a scope term holds if
// any of the scopes matches it. An entity without scopes matches nothing.
func (q *ScopeQuery) Match(scopes []string) bool {
	if q == nil || q.root == nil {
		return true
	}
	return q.root.eval(scopes)
}

func (n *snode) eval(scopes []string) bool {
	switch n.op {
	case opAnd:
		for _, k := range n.kids {
			if !k.eval(scopes) {
				return false
			}
		}
		return true
	case opOr:
		for _, k := range n.kids {
			if k.eval(scopes) {
				return true
			}
		}
		return false
	}
	for _, s := range scopes {
		if matchScope(n.levels, s) {
			return true
		}
	}
	return false
}

// matchScope matches query levels against scope s without allocating.
func matchScope(levels []string, s string) bool {
	s = strings.TrimPrefix(s, "/")
	if s == "" {
		return false
	}
	for _, l := range levels {
		if l == "#" {
			return true
		}
		if s == "" {
			return false // the scope is shorter than the query
		}
		var lvl string
		if i := strings.IndexByte(s, '/'); i >= 0 {
			lvl, s = s[:i], s[i+1:]
			if s == "" {
				return false // trailing slash: malformed scope
			}
		} else {
			lvl, s = s, ""
		}
		if l != "+" && l != lvl {
			return false
		}
	}
	return s == ""
}

// String renders q canonically (AND binding tighter than OR, ',' for OR).
func (q *ScopeQuery) String() string {
	if q == nil || q.root == nil {
		return ""
	}
	var b strings.Builder
	q.root.write(&b)
	return b.String()
}

func (n *snode) write(b *strings.Builder) {
	if n.op == opTerm {
		for _, l := range n.levels {
			b.WriteByte('/')
			b.WriteString(l)
		}
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

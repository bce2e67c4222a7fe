package qlang

import (
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Query is a parsed q expression. It is immutable and safe for concurrent use.
type Query struct {
	root *boolExpr[*term]
}

type termOp uint8

const (
	tExists termOp = iota
	tNotExists
	tEq
	tNe
	tGt
	tGe
	tLt
	tLe
	tMatch
	tNotMatch
)

var termOpText = [...]string{"", "!", "==", "!=", ">", ">=", "<", "<=", "~=", "!~="}

// term is one query term: a path, an operator and its operand.
type term struct {
	path  path
	op    termOp
	vals  []value // one literal, a value list, or the two bounds of a range
	rng   bool
	re    *regexp.Regexp
	reSrc string
}

// seg is a name as written and as expanded.
type seg struct{ term, iri string }

// path is attr(.sub)*(.meta)?([key])*.
type path struct {
	attr seg
	subs []seg
	meta string // "", or one of metaNames
	keys []string
}

var metaNames = map[string]bool{
	"observedAt": true, "unitCode": true, "datasetId": true, "createdAt": true, "modifiedAt": true,
}

// ParseQ parses a q expression (ETSI GS CIM 009, 4.9), already URL-decoded.
// expand maps an attribute or sub-attribute name to its IRI (nil: identity).
func ParseQ(s string, expand func(term string) string) (*Query, error) {
	if expand == nil {
		expand = identity
	}
	p := &qparser{scanner: scanner{s: s, lang: "q"}, expand: expand}
	root, err := parseBool(&p.scanner, "|", "';', '|' or end of input", p.term)
	if err != nil {
		return nil, err
	}
	return &Query{root: root}, nil
}

type qparser struct {
	scanner
	expand func(string) string
}

func (p *qparser) term() (*term, error) {
	t := &term{}
	if p.peek() == '!' {
		p.i++
		t.op = tNotExists
		pa, err := p.path()
		if err != nil {
			return nil, err
		}
		t.path = pa
		return t, nil
	}
	pa, err := p.path()
	if err != nil {
		return nil, err
	}
	t.path = pa
	p.skipSpace()
	rest := p.s[p.i:]
	switch {
	case rest == "" || rest[0] == ';' || rest[0] == '|' || rest[0] == ')':
		t.op = tExists
		return t, nil
	case strings.HasPrefix(rest, "=="):
		t.op = tEq
	case strings.HasPrefix(rest, "!~="):
		t.op = tNotMatch
	case strings.HasPrefix(rest, "!="):
		t.op = tNe
	case strings.HasPrefix(rest, "~="):
		t.op = tMatch
	case strings.HasPrefix(rest, ">="):
		t.op = tGe
	case strings.HasPrefix(rest, "<="):
		t.op = tLe
	case strings.HasPrefix(rest, ">"):
		t.op = tGt
	case strings.HasPrefix(rest, "<"):
		t.op = tLt
	default:
		return nil, p.unexpected("an operator (==, !=, >, >=, <, <=, ~=, !~=), ';', '|' or ')'")
	}
	p.i += len(termOpText[t.op])
	p.skipSpace()
	if t.op == tMatch || t.op == tNotMatch {
		return t, p.pattern(t)
	}
	return t, p.operand(t)
}

func nameRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' || r == ':' || r == '-' || r == '@' || r == '/' || r == '#'
}

func (p *qparser) name() (string, error) {
	start := p.i
	for p.i < len(p.s) {
		r, n := utf8.DecodeRuneInString(p.s[p.i:])
		if !nameRune(r) {
			break
		}
		p.i += n
	}
	if p.i == start {
		return "", p.unexpected("an attribute name")
	}
	return p.s[start:p.i], nil
}

func (p *qparser) path() (path, error) {
	var pa path
	p.skipSpace()
	n, err := p.name()
	if err != nil {
		return pa, err
	}
	pa.attr = seg{n, p.expand(n)}
	for p.peek() == '.' {
		p.i++
		n, err := p.name()
		if err != nil {
			return pa, err
		}
		if pa.meta != "" {
			return pa, p.errf("nothing may follow %q, found %q at position %d", pa.meta, n, p.i-len(n)+1)
		}
		if metaNames[n] {
			pa.meta = n
			continue
		}
		pa.subs = append(pa.subs, seg{n, p.expand(n)})
	}
	for p.peek() == '[' {
		if pa.meta != "" {
			return pa, p.errf("%q has no keys, found '[' at position %d", pa.meta, p.i+1)
		}
		open := p.i
		p.i++
		end := strings.IndexAny(p.s[p.i:], "[]")
		if end < 0 || p.s[p.i+end] != ']' {
			return pa, p.errf("unbalanced '[' at position %d", open+1)
		}
		if end == 0 {
			return pa, p.errf("empty key at position %d", p.i+1)
		}
		pa.keys = append(pa.keys, p.s[p.i:p.i+end])
		p.i += end + 1
	}
	return pa, nil
}

// pattern reads the regular expression of ~= and !~=: a quoted string, or
// unquoted up to the next ';', '|' or ')' outside the expression's own
// parentheses, brackets and escapes.
func (p *qparser) pattern(t *term) error {
	start := p.i
	var src string
	if p.peek() == '"' {
		s, err := p.quotedString()
		if err != nil {
			return err
		}
		src = s
	} else {
		end := bareRegexpEnd(p.s, p.i)
		src = strings.TrimRight(p.s[p.i:end], " \t\r\n")
		p.i = end
		if src == "" {
			p.i = start
			return p.unexpected("a regular expression")
		}
	}
	re, err := regexp.Compile(src)
	if err != nil {
		return p.errf("invalid regular expression at position %d: %v", start+1, err)
	}
	t.re, t.reSrc = re, src
	return nil
}

// operand reads a value, a range a..b or a value list a,b,c.
func (p *qparser) operand(t *term) error {
	start := p.i
	v, err := p.value()
	if err != nil {
		return err
	}
	t.vals = append(t.vals, v)
	p.skipSpace()
	switch {
	case strings.HasPrefix(p.s[p.i:], ".."):
		p.i += 2
		p.skipSpace()
		hiPos := p.i
		hi, err := p.value()
		if err != nil {
			return err
		}
		if t.op != tEq && t.op != tNe {
			return p.errf("a range needs == or != (position %d)", start+1)
		}
		if !v.ordered() || !hi.ordered() {
			return p.errf("range bounds must be numbers, strings or times (position %d)", start+1)
		}
		if v.kind != hi.kind || v.kind == vTime && (v.tk == tkTime) != (hi.tk == tkTime) {
			return p.errf("range bounds at positions %d and %d are of different types", start+1, hiPos+1)
		}
		t.vals = append(t.vals, hi)
		t.rng = true
	case p.peek() == ',':
		for p.peek() == ',' {
			p.i++
			p.skipSpace()
			v, err := p.value()
			if err != nil {
				return err
			}
			t.vals = append(t.vals, v)
			p.skipSpace()
		}
		if t.op != tEq && t.op != tNe {
			return p.errf("a value list needs == or != (position %d)", start+1)
		}
	default:
		if t.op != tEq && t.op != tNe && !v.ordered() {
			return p.errf("%s needs a number, string or time, found %s at position %d", termOpText[t.op], v, start+1)
		}
	}
	return nil
}

func (p *qparser) value() (value, error) {
	if p.peek() == '"' {
		s, err := p.quotedString()
		if err != nil {
			return value{}, err
		}
		return value{kind: vStr, str: s, exp: p.expandValue(s)}, nil
	}
	start := p.i
	for p.i < len(p.s) {
		c := p.s[p.i]
		if c == ';' || c == '|' || c == ',' || c == '(' || c == ')' || c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '"' ||
			c == '.' && p.i+1 < len(p.s) && p.s[p.i+1] == '.' {
			break
		}
		p.i++
	}
	tok := p.s[start:p.i]
	if tok == "" {
		return value{}, p.unexpected("a value")
	}
	v, ok := classify(tok)
	if !ok {
		p.i = start
		return value{}, p.errf("invalid value %q at position %d: expected a number, a quoted string, true, false, a date, a time or a URI", tok, start+1)
	}
	if v.kind == vURI {
		v.exp = p.expandValue(tok)
	}
	return v, nil
}

// expandValue expands a string literal as a vocabulary term, for comparison
// with VocabProperty values (which hold expanded IRIs).
func (p *qparser) expandValue(s string) string {
	if s == "" || len(s) > 512 {
		return s
	}
	return p.expand(s)
}

// String renders q canonically: attribute names as written (not expanded),
// AND binding tighter than OR, parentheses only where needed, strings quoted.
func (q *Query) String() string { return q.render(asWritten) }

// Compact renders q like String with every attribute name written as
// compact writes its IRI, so q keeps its meaning under the @context compact
// stands for; a name compact cannot write as a q name stays as written.
func (q *Query) Compact(compact func(iri string) string) string {
	return q.render(compactedName(compact))
}

func (q *Query) render(name func(seg) string) string {
	if q == nil || q.root == nil {
		return ""
	}
	var b strings.Builder
	q.root.write(&b, '|', func(t *term, b *strings.Builder) { t.write(b, name) })
	return b.String()
}

func asWritten(s seg) string { return s.term }

// compactedName writes a name compacted, if the result can be read back.
func compactedName(compact func(iri string) string) func(seg) string {
	return func(s seg) string {
		c := compact(s.iri)
		if c == "" {
			return s.term
		}
		for _, r := range c {
			if !nameRune(r) {
				return s.term
			}
		}
		return c
	}
}

func (t *term) write(b *strings.Builder, name func(seg) string) {
	if t.op == tNotExists {
		b.WriteByte('!')
	}
	t.path.write(b, name)
	switch t.op {
	case tExists, tNotExists:
		return
	case tMatch, tNotMatch:
		b.WriteString(termOpText[t.op])
		b.WriteString(quote(t.reSrc))
		return
	}
	b.WriteString(termOpText[t.op])
	sep := ","
	if t.rng {
		sep = ".."
	}
	for i, v := range t.vals {
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(v.String())
	}
}

func (pa *path) write(b *strings.Builder, name func(seg) string) {
	b.WriteString(name(pa.attr))
	for _, s := range pa.subs {
		b.WriteByte('.')
		b.WriteString(name(s))
	}
	if pa.meta != "" {
		b.WriteByte('.')
		b.WriteString(pa.meta)
	}
	for _, k := range pa.keys {
		b.WriteByte('[')
		b.WriteString(k)
		b.WriteByte(']')
	}
}

// bareRegexpEnd returns where an unquoted regular expression starting at i ends.
func bareRegexpEnd(s string, i int) int {
	depth, class := 0, false
	for ; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			i++
		case class:
			class = c != ']'
		case c == '[':
			class = true
		case c == '(':
			depth++
		case c == ')':
			if depth == 0 {
				return i
			}
			depth--
		case (c == ';' || c == '|') && depth == 0:
			return i
		}
	}
	return len(s)
}

// ValueAttrs returns the expanded names of the attributes q reads, and
// whether q reads nothing but their values (no sub-attribute, no metadata
// such as observedAt or unitCode). When ok, q decides the same on an entity
// holding only those attributes, each instance with just its kind and value,
// as on the whole entity: a store can keep that much in memory and decide
// without loading entities.
func (q *Query) ValueAttrs() (attrs []string, ok bool) {
	if q == nil || q.root == nil {
		return nil, true
	}
	ok = true
	var walk func(n *boolExpr[*term])
	walk = func(n *boolExpr[*term]) {
		if n.op != opTerm {
			for _, k := range n.kids {
				walk(k)
			}
			return
		}
		p := &n.leaf.path
		if len(p.subs) > 0 || p.meta != "" {
			ok = false
		}
		if !slices.Contains(attrs, p.attr.iri) {
			attrs = append(attrs, p.attr.iri)
		}
	}
	walk(q.root)
	return attrs, ok
}

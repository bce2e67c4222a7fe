// Package jsonld processes JSON-LD @contexts the way an NGSI-LD broker needs
// them: resolving a request's @context (Link header or body member) into an
// active context, expanding terms to IRIs and compacting IRIs back to terms.
// The NGSI-LD core contexts are embedded, so no network is needed for them.
//
// CONTRACT (implemented by the jsonld work package; signatures are fixed):
//
//	type Context struct{ ... }                       // an active context, immutable, safe for concurrent use
//	func (c *Context) ExpandTerm(term string) string // vocab-relative expansion of an attribute name or type
//	func (c *Context) CompactIRI(iri string) string  // inverse of ExpandTerm
//	func (c *Context) Source() any                   // the @context value as the user gave it (for responses)
//
//	type Registry interface { ... }                  // where registered (hosted) contexts live (the store)
//	type Resolver struct{ ... }
//	func NewResolver(opts Options) *Resolver
//	func (r *Resolver) Core() *Context
//	func (r *Resolver) Resolve(ctx context.Context, raw any) (*Context, error)
//	var ErrNotAvailable, ErrInvalid error
package jsonld

import (
	"slices"
	"strings"
)

// Context is a processed active context. It is immutable and safe for
// concurrent use; build one with a Resolver.
type Context struct {
	terms  map[string]termDef
	vocab  string
	source any

	reverse    map[string]string   // IRI -> preferred term
	prefixes   map[string][]string // prefix IRI -> prefix terms, best first
	prefixLens []int               // distinct lengths of the keys of prefixes, longest first
}

// termDef is one term definition of an active context.
type termDef struct {
	iri       string // expanded IRI or keyword; "" when null
	null      bool   // explicitly mapped to null: the term expands to nothing
	prefix    bool   // usable as the prefix of a compact IRI
	typ       string // "@id", "@vocab", "@json", an expanded datatype IRI, or ""
	container []string
}

// Definition describes a term of a Context.
type Definition struct {
	IRI       string   // expanded IRI or keyword alias target (e.g. "@id"); "" if the term is mapped to null
	Type      string   // the term's @type: "@id", "@vocab", "@json", an expanded IRI, or ""
	Container []string // the term's @container values (e.g. "@list"), if any
	Prefix    bool     // the term can be used as the prefix of a compact IRI
}

// Term returns the definition of term, if the context defines it.
func (c *Context) Term(term string) (Definition, bool) {
	d, ok := c.terms[term]
	if !ok {
		return Definition{}, false
	}
	return Definition{IRI: d.iri, Type: d.typ, Container: slices.Clone(d.container), Prefix: d.prefix}, true
}

// Vocab returns the context's @vocab ("" if none).
func (c *Context) Vocab() string { return c.vocab }

// Source returns the @context value the context was built from, as the user
// gave it (a string, []any or map[string]any), for echoing in responses; for a
// core-only context it is the core context URL. Callers must not modify it.
func (c *Context) Source() any { return c.source }

// ExpandTerm expands an attribute name or type the way JSON-LD expands a
// vocabulary-relative IRI: keywords stay, a defined term gives its IRI, a
// compact IRI whose prefix is a defined prefix is expanded, an absolute IRI
// stays, anything else is appended to @vocab. It returns "" for "" and for a
// term explicitly mapped to null (which JSON-LD expansion drops).
func (c *Context) ExpandTerm(term string) string {
	if term == "" || term[0] == '@' {
		return term
	}
	if d, ok := c.terms[term]; ok {
		return d.iri
	}
	if i := strings.IndexByte(term, ':'); i > 0 {
		prefix, suffix := term[:i], term[i+1:]
		if prefix == "_" || strings.HasPrefix(suffix, "//") {
			return term
		}
		if d, ok := c.terms[prefix]; ok && d.prefix && !d.null {
			return d.iri + suffix
		}
		if hasScheme(term) {
			return term
		}
	}
	if c.vocab == "" {
		return term
	}
	return c.vocab + term
}

// CompactIRI returns the shortest form of iri that ExpandTerm turns back into
// iri: a term defined with that IRI (the shortest, then the lexicographically
// smallest), else the part after @vocab, else a compact IRI prefix:suffix, else
// iri itself.
func (c *Context) CompactIRI(iri string) string {
	if iri == "" {
		return ""
	}
	if t, ok := c.reverse[iri]; ok {
		return t
	}
	if c.vocab != "" && len(iri) > len(c.vocab) && strings.HasPrefix(iri, c.vocab) {
		if s := iri[len(c.vocab):]; c.ExpandTerm(s) == iri {
			return s
		}
	}
	best := ""
	for _, n := range c.prefixLens {
		if n >= len(iri) {
			continue
		}
		list, ok := c.prefixes[iri[:n]]
		if !ok {
			continue
		}
		for _, p := range list {
			if best != "" && len(p)+1+len(iri)-n > len(best) {
				break
			}
			cand := p + ":" + iri[n:]
			if (best == "" || shorter(cand, best)) && c.ExpandTerm(cand) == iri {
				best = cand
				break
			}
		}
	}
	if best != "" {
		return best
	}
	return iri
}

// shorter orders terms by length, then lexicographically.
func shorter(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

// newContext builds the lookup tables of an active context.
func newContext(terms map[string]termDef, vocab string, source any) *Context {
	c := &Context{
		terms:    terms,
		vocab:    vocab,
		source:   source,
		reverse:  make(map[string]string, len(terms)),
		prefixes: make(map[string][]string),
	}
	for t, d := range terms {
		if d.null {
			continue
		}
		if old, ok := c.reverse[d.iri]; !ok || shorter(t, old) {
			c.reverse[d.iri] = t
		}
		if d.prefix && d.iri != "" && d.iri[0] != '@' {
			c.prefixes[d.iri] = append(c.prefixes[d.iri], t)
		}
	}
	for iri, list := range c.prefixes {
		slices.SortFunc(list, func(a, b string) int {
			if shorter(a, b) {
				return -1
			}
			if shorter(b, a) {
				return 1
			}
			return 0
		})
		if !slices.Contains(c.prefixLens, len(iri)) {
			c.prefixLens = append(c.prefixLens, len(iri))
		}
	}
	slices.Sort(c.prefixLens)
	slices.Reverse(c.prefixLens)
	return c
}

// hasScheme reports whether s starts with an IRI scheme followed by a colon.
func hasScheme(s string) bool {
	i := strings.IndexByte(s, ':')
	if i <= 0 {
		return false
	}
	for j := 0; j < i; j++ {
		ch := s[j]
		switch {
		case 'a' <= ch && ch <= 'z', 'A' <= ch && ch <= 'Z':
		case j > 0 && ('0' <= ch && ch <= '9' || ch == '+' || ch == '-' || ch == '.'):
		default:
			return false
		}
	}
	return true
}

// isKeyword reports whether s is a JSON-LD 1.1 keyword.
func isKeyword(s string) bool {
	switch s {
	case "@base", "@container", "@context", "@direction", "@graph", "@id", "@import",
		"@included", "@index", "@json", "@language", "@list", "@nest", "@none", "@prefix",
		"@propagate", "@protected", "@reverse", "@set", "@type", "@value", "@version", "@vocab":
		return true
	}
	return false
}

package jsonld

import (
	"context"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
)

// maxDepth bounds the nesting of remote context references.
const maxDepth = 8

// loader returns the @context value of the document at an absolute URL.
type loader interface {
	load(ctx context.Context, url string) (value any, remote bool, err error)
}

// builder runs the JSON-LD 1.1 context processing algorithm, reduced to what a
// broker needs (no scoped contexts, no @base, protection not enforced because
// the core context is applied last anyway).
type builder struct {
	ld     loader
	terms  map[string]termDef
	vocab  string
	remote bool // a document came from the registry or the network
}

func newBuilder(ld loader) *builder {
	return &builder{ld: ld, terms: make(map[string]termDef)}
}

// process applies a context value (nil, URL string, object or array) to the
// active context. base is the URL of the document it came from ("" inline);
// stack the chain of URLs being processed, for cycle detection.
func (b *builder) process(ctx context.Context, v any, base string, stack []string) error {
	switch x := v.(type) {
	case nil:
		clear(b.terms)
		b.vocab = ""
		return nil
	case string:
		u, val, err := b.loadRef(ctx, x, base, stack)
		if err != nil {
			return err
		}
		return b.process(ctx, val, u, append(stack, u))
	case []any:
		for _, e := range x {
			if _, nested := e.([]any); nested {
				return fmt.Errorf("%w: nested array in @context", ErrInvalid)
			}
			if err := b.process(ctx, e, base, stack); err != nil {
				return err
			}
		}
		return nil
	case []string:
		for _, e := range x {
			if err := b.process(ctx, e, base, stack); err != nil {
				return err
			}
		}
		return nil
	case map[string]any:
		return b.processLocal(ctx, x, base, stack)
	default:
		return fmt.Errorf("%w: a @context must be a URL, an object or an array, not %s", ErrInvalid, jsonKind(v))
	}
}

// loadRef resolves a context reference against base and loads it.
func (b *builder) loadRef(ctx context.Context, ref, base string, stack []string) (string, any, error) {
	u, err := resolveRef(base, ref)
	if err != nil {
		return "", nil, err
	}
	if len(stack) >= maxDepth {
		return "", nil, fmt.Errorf("%w: context %s: references nested deeper than %d", ErrInvalid, u, maxDepth)
	}
	if slices.Contains(stack, u) {
		return "", nil, fmt.Errorf("%w: context %s includes itself (%s)", ErrInvalid, u, strings.Join(append(stack, u), " -> "))
	}
	val, remote, err := b.ld.load(ctx, u)
	if err != nil {
		return "", nil, err
	}
	b.remote = b.remote || remote
	return u, val, nil
}

// resolveRef makes ref absolute against base.
func resolveRef(base, ref string) (string, error) {
	if hasScheme(ref) {
		return ref, nil
	}
	if base == "" {
		return "", fmt.Errorf("%w: context reference %q is not an absolute URL", ErrInvalid, ref)
	}
	bu, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("%w: context reference %q: %v", ErrInvalid, ref, err)
	}
	ru, err := url.Parse(ref)
	if err != nil {
		return "", fmt.Errorf("%w: context reference %q: %v", ErrInvalid, ref, err)
	}
	return bu.ResolveReference(ru).String(), nil
}

// local is the state of processing one context definition (an object).
type local struct {
	def   map[string]any
	state map[string]uint8 // 1 being defined, 2 defined
}

func (b *builder) processLocal(ctx context.Context, m map[string]any, base string, stack []string) error {
	if imp, ok := m["@import"]; ok {
		ref, ok := imp.(string)
		if !ok {
			return fmt.Errorf("%w: @import must be a string, not %s", ErrInvalid, jsonKind(imp))
		}
		u, val, err := b.loadRef(ctx, ref, base, stack)
		if err != nil {
			return err
		}
		im, ok := val.(map[string]any)
		if !ok {
			return fmt.Errorf("%w: @import %s: the imported context must be an object", ErrInvalid, u)
		}
		if _, ok := im["@import"]; ok {
			return fmt.Errorf("%w: @import %s: the imported context has an @import itself", ErrInvalid, u)
		}
		merged := maps.Clone(im) // never modify a cached document
		for k, v := range m {
			if k != "@import" {
				merged[k] = v
			}
		}
		m = merged
	}
	if v, ok := m["@version"]; ok {
		if f, ok := v.(float64); !ok || f != 1.1 {
			return fmt.Errorf("%w: @version must be 1.1", ErrInvalid)
		}
	}
	if v, ok := m["@protected"]; ok {
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("%w: @protected must be a boolean", ErrInvalid)
		}
	}
	if v, ok := m["@vocab"]; ok {
		switch x := v.(type) {
		case nil:
			b.vocab = ""
		case string:
			iri := b.expandRuntime(x)
			if !isAbsolute(iri) {
				return fmt.Errorf("%w: @vocab %q is not an absolute IRI", ErrInvalid, x)
			}
			b.vocab = iri
		default:
			return fmt.Errorf("%w: @vocab must be a string or null, not %s", ErrInvalid, jsonKind(v))
		}
	}
	l := &local{def: m, state: make(map[string]uint8, len(m))}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if err := b.define(l, k); err != nil {
			return err
		}
	}
	return nil
}

// define creates the term definition of term from the local context l.
func (b *builder) define(l *local, term string) error {
	switch l.state[term] {
	case 2:
		return nil
	case 1:
		return fmt.Errorf("%w: cyclic IRI mapping for term %q", ErrInvalid, term)
	}
	l.state[term] = 1
	defer func() { l.state[term] = 2 }()
	if term == "" {
		return fmt.Errorf("%w: empty term", ErrInvalid)
	}
	if term[0] == '@' {
		return nil // context keywords are handled by processLocal; other keywords cannot be redefined
	}
	delete(b.terms, term)

	var d termDef
	id, hasID, simple, explicitPrefix := "", false, false, false
	switch v := l.def[term].(type) {
	case nil:
		d.null = true
	case string:
		id, hasID, simple = v, true, true
	case map[string]any:
		k, x, ok := "@id", v["@id"], false
		if _, ok = v["@id"]; !ok {
			k = "@reverse"
			x, ok = v["@reverse"]
		}
		if ok {
			switch s := x.(type) {
			case nil:
				d.null = true
			case string:
				id, hasID = s, true
			default:
				return fmt.Errorf("%w: term %q: %s must be a string, not %s", ErrInvalid, term, k, jsonKind(x))
			}
		}
		if x, ok := v["@type"]; ok {
			s, ok := x.(string)
			if !ok {
				return fmt.Errorf("%w: term %q: @type must be a string, not %s", ErrInvalid, term, jsonKind(x))
			}
			if s != "" && s[0] != '@' {
				t, err := b.expandDef(l, s)
				if err != nil {
					return err
				}
				s = t
			}
			d.typ = s
		}
		if x, ok := v["@container"]; ok {
			switch c := x.(type) {
			case nil:
			case string:
				d.container = []string{c}
			case []any:
				for _, e := range c {
					s, ok := e.(string)
					if !ok {
						return fmt.Errorf("%w: term %q: @container values must be strings", ErrInvalid, term)
					}
					d.container = append(d.container, s)
				}
			default:
				return fmt.Errorf("%w: term %q: @container must be a string or an array, not %s", ErrInvalid, term, jsonKind(x))
			}
		}
		if x, ok := v["@prefix"]; ok {
			p, ok := x.(bool)
			if !ok {
				return fmt.Errorf("%w: term %q: @prefix must be a boolean", ErrInvalid, term)
			}
			d.prefix, explicitPrefix = p, true
		}
	default:
		return fmt.Errorf("%w: the definition of term %q must be a string, an object or null, not %s", ErrInvalid, term, jsonKind(v))
	}

	if !d.null {
		var iri string
		switch {
		case hasID && id != term:
			if len(id) > 1 && id[0] == '@' && !isKeyword(id) {
				return nil // looks like a keyword: JSON-LD ignores the term
			}
			t, err := b.expandDef(l, id)
			if err != nil {
				return err
			}
			iri = t
		case strings.IndexByte(term, ':') > 0:
			t, err := b.expandDef(l, term)
			if err != nil {
				return err
			}
			iri = t
		case b.vocab != "":
			iri = b.vocab + term
		default:
			return fmt.Errorf("%w: term %q has no IRI and there is no @vocab", ErrInvalid, term)
		}
		if !isKeyword(iri) && !isAbsolute(iri) {
			return fmt.Errorf("%w: term %q: %q is not an absolute IRI", ErrInvalid, term, iri)
		}
		d.iri = iri
		if !explicitPrefix && simple &&
			!strings.ContainsAny(term, ":/") && (endsWithGenDelim(iri) || strings.HasPrefix(iri, "_:")) {
			d.prefix = true
		}
	}
	b.terms[term] = d
	return nil
}

// expandDef IRI-expands a value found while processing a local context, first
// defining the local terms it depends on.
func (b *builder) expandDef(l *local, v string) (string, error) {
	if v == "" || v[0] == '@' {
		return v, nil
	}
	if _, ok := l.def[v]; ok {
		if err := b.define(l, v); err != nil {
			return "", err
		}
	}
	if i := strings.IndexByte(v, ':'); i > 0 {
		if _, ok := l.def[v[:i]]; ok {
			if err := b.define(l, v[:i]); err != nil {
				return "", err
			}
		}
	}
	return b.expandRuntime(v), nil
}

// expandRuntime IRI-expands v against the active context built so far.
func (b *builder) expandRuntime(v string) string {
	c := Context{terms: b.terms, vocab: b.vocab}
	return c.ExpandTerm(v)
}

// isAbsolute reports whether s is an absolute IRI or a blank node identifier.
func isAbsolute(s string) bool {
	return hasScheme(s) || strings.HasPrefix(s, "_:")
}

func endsWithGenDelim(s string) bool {
	return s != "" && strings.IndexByte(":/?#[]@", s[len(s)-1]) >= 0
}

// jsonKind names the JSON type of a decoded value, for error messages.
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case float64, int, int64:
		return "a number"
	case string:
		return "a string"
	case []any, []string:
		return "an array"
	case map[string]any:
		return "an object"
	default:
		return fmt.Sprintf("%T", v)
	}
}

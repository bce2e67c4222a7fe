package qlang

import (
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
)

// Match reports whether e satisfies q. A term holds if any instance of the
// attribute (any datasetId) satisfies it; a comparison with an array value
// holds if any element satisfies it. Values of different types are unequal
// and unordered. Per the specification, a Relationship only supports == and !=.
func (q *Query) Match(e *ngsild.Entity) bool {
	if q == nil || q.root == nil {
		return true
	}
	if e == nil {
		return false
	}
	return evalBool(q.root, e, (*term).eval)
}

func (t *term) eval(e *ngsild.Entity) bool {
	insts := e.Attrs[t.path.attr.iri]
	if t.op == tNotExists {
		for _, a := range insts {
			if t.instance(a, true) {
				return false
			}
		}
		return true
	}
	for _, a := range insts {
		if t.instance(a, false) {
			return true
		}
	}
	return false
}

// instance evaluates t on one instance; exists asks only whether the path
// reaches a value.
func (t *term) instance(a *ngsild.Attribute, exists bool) bool {
	if a == nil {
		return false
	}
	for _, s := range t.path.subs {
		a = a.Sub[s.iri]
		if a == nil {
			return false
		}
	}
	if exists || t.op == tExists {
		exists = true
	}
	if t.path.meta != "" {
		var x any
		switch t.path.meta {
		case "observedAt":
			x = nonZero(a.ObservedAt)
		case "createdAt":
			x = nonZero(a.CreatedAt)
		case "modifiedAt":
			x = nonZero(a.ModifiedAt)
		case "unitCode":
			x = nonEmpty(a.UnitCode)
		case "datasetId":
			x = nonEmpty(a.DatasetID)
		}
		if x == nil {
			return false
		}
		if exists {
			return true
		}
		return t.test(x, false, false)
	}
	v := a.Value
	if len(t.path.keys) > 0 {
		for _, k := range t.path.keys {
			m, ok := v.(map[string]any)
			if !ok {
				return false
			}
			if v, ok = m[k]; !ok {
				return false
			}
		}
		if exists {
			return true
		}
		return t.test(v, false, false)
	}
	if exists {
		return true
	}
	switch a.Kind {
	case ngsild.Relationship, ngsild.ListRelationship:
		if t.op != tEq && t.op != tNe {
			return false
		}
	case ngsild.LanguageProperty:
		return t.test(v, true, false)
	case ngsild.VocabProperty:
		return t.test(v, false, true)
	}
	return t.test(v, false, false)
}

func nonZero(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

func nonEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// test applies the operator to target value v: a scalar, an array (any
// element), or with langMap a language map (any language's text).
func (t *term) test(v any, langMap, vocab bool) bool {
	switch t.op {
	case tNe:
		return !t.anyOf(v, langMap, vocab)
	case tNotMatch:
		return !t.anyOf(v, langMap, vocab)
	}
	return t.anyOf(v, langMap, vocab)
}

// anyOf reports whether some element of v satisfies the positive form of the
// operator (== for ==/!=, ~= for ~=/!~=).
func (t *term) anyOf(v any, langMap, vocab bool) bool {
	switch x := v.(type) {
	case []any:
		for _, el := range x {
			if t.scalar(el, vocab) {
				return true
			}
		}
		return false
	case map[string]any:
		if v, ok := x["@value"]; ok && !langMap {
			// A JSON-LD value object, e.g. {"@type": "DateTime", "@value":
			// "2024-05-01T10:00:00Z"}: compare its value.
			return t.scalar(v, vocab)
		}
		if !langMap {
			return false
		}
		for _, txt := range x {
			if t.anyOf(txt, false, false) {
				return true
			}
		}
		return false
	}
	return t.scalar(v, vocab)
}

func (t *term) scalar(x any, vocab bool) bool {
	if m, ok := x.(map[string]any); ok && m["@value"] != nil {
		x = m["@value"] // a JSON-LD value object in an array
	}
	switch t.op {
	case tMatch, tNotMatch:
		s, ok := x.(string)
		return ok && t.re.MatchString(s)
	case tEq, tNe:
		if t.rng {
			lo, ok1 := compare(x, &t.vals[0], false)
			hi, ok2 := compare(x, &t.vals[1], false)
			return ok1 && ok2 && lo >= 0 && hi <= 0
		}
		for i := range t.vals {
			if c, ok := compare(x, &t.vals[i], vocab); ok && c == 0 {
				return true
			}
		}
		return false
	}
	c, ok := compare(x, &t.vals[0], false)
	if !ok {
		return false
	}
	switch t.op {
	case tGt:
		return c > 0
	case tGe:
		return c >= 0
	case tLt:
		return c < 0
	case tLe:
		return c <= 0
	}
	return false
}

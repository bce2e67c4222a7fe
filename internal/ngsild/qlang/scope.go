package qlang

import (
	"strings"
)

// ScopeQuery is a parsed scopeQ expression (ETSI GS CIM 009, 4.19): scope
// paths such as /Brussels/Energy, where a level "+" matches exactly one level
// and a final "#" matches that level and everything below (so "/#" matches
// every scope), combined with ';' (AND), ',' or '|' (OR) and parentheses.
// It is immutable and safe for concurrent use.
type ScopeQuery struct{ root *boolExpr[[]string] } // leaves: scope levels

// ParseScopeQ parses a scopeQ expression, already URL-decoded.
func ParseScopeQ(s string) (*ScopeQuery, error) {
	p := &scanner{s: s, lang: "scopeQ"}
	root, err := parseBool(p, "|,", "';', ',', '|' or end of input", func() ([]string, error) { return scopeLevels(p) })
	if err != nil {
		return nil, err
	}
	return &ScopeQuery{root: root}, nil
}

// scopeLevels reads [/]level(/level)*.
func scopeLevels(p *scanner) ([]string, error) {
	if p.peek() == '/' {
		p.i++
	}
	var levels []string
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
		if len(levels) > 0 && levels[len(levels)-1] == "#" {
			return nil, p.errf("'#' must be the last scope level (position %d)", start+1)
		}
		levels = append(levels, lvl)
		if p.peek() != '/' {
			return levels, nil
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
	return evalBool(q.root, scopes, matchAnyScope)
}

// matchAnyScope reports whether any of scopes matches the query levels.
func matchAnyScope(levels, scopes []string) bool {
	for _, s := range scopes {
		if matchScope(levels, s) {
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
	q.root.write(&b, ',', func(levels []string, b *strings.Builder) {
		for _, l := range levels {
			b.WriteByte('/')
			b.WriteString(l)
		}
	})
	return b.String()
}

package qlang

import (
	"strings"
	"testing"

	"github.com/zenne-city/zenne/internal/ngsild"
)

func TestParseScopeQ(t *testing.T) {
	valid := []struct{ name, in, want string }{
		{"simple", "/Brussels/Energy", "/Brussels/Energy"},
		{"no leading slash", "Brussels", "/Brussels"},
		{"plus", "/a/+/c", "/a/+/c"},
		{"hash", "/a/#", "/a/#"},
		{"all", "/#", "/#"},
		{"or comma", "/a,/b", "/a,/b"},
		{"or bar", "/a|/b", "/a,/b"},
		{"and", "/a;/b", "/a;/b"},
		{"precedence", "/a;/b,/c", "/a;/b,/c"},
		{"parens", "/a;(/b,/c)", "/a;(/b,/c)"},
		{"unicode", "/Liège/Énergie_2", "/Liège/Énergie_2"},
	}
	for _, tc := range valid {
		t.Run(tc.name, func(t *testing.T) {
			q, err := ParseScopeQ(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if q.String() != tc.want {
				t.Fatalf("String() = %q, want %q", q.String(), tc.want)
			}
		})
	}
	invalid := []struct{ name, in, want string }{
		{"empty", "", "empty expression"},
		{"slash only", "/", "expected a scope level"},
		{"double slash", "/a//b", "unexpected '/' at position 4"},
		{"trailing slash", "/a/", "expected a scope level"},
		{"hash not last", "/a/#/b", "'#' must be the last"},
		{"partial wildcard", "/a/b+", "whole scope level"},
		{"empty term", "/a;;/b", "unexpected ';' at position 4"},
		{"unbalanced", "(/a", "unbalanced '('"},
		{"close", "/a)", "unexpected ')' at position 3"},
		{"garbage", "/a /b", "unexpected '/' at position 4"},
		{"too deep", strings.Repeat("(", 65) + "/a" + strings.Repeat(")", 65), "nested deeper"},
	}
	for _, tc := range invalid {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseScopeQ(tc.in)
			if err == nil || !ngsild.IsType(err, ngsild.BadRequestData) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseScopeQ(%q) error %v, want BadRequestData containing %q", tc.in, err, tc.want)
			}
		})
	}
}

func TestScopeMatch(t *testing.T) {
	scopes := []string{"/Brussels/Energy/Solar", "/Madrid/Gardens"}
	tests := []struct {
		q    string
		want bool
	}{
		{"/Brussels/Energy/Solar", true},
		{"/Brussels/Energy", false},
		{"/Brussels/Energy/#", true},
		{"/Brussels/Energy/Solar/#", true}, // "#" includes the level itself
		{"/Brussels/#", true},
		{"/Brussels/+", false},
		{"/Brussels/+/Solar", true},
		{"/+/Gardens", true},
		{"/+", false},
		{"/+/+/+", true},
		{"/+/+/+/+", false},
		{"/#", true},
		{"/Madrid/Gardens;/Brussels/#", true},
		{"/Madrid/Gardens;/Paris", false},
		{"/Paris,/Madrid/Gardens", true},
		{"/Paris|/Rome", false},
		{"/Paris;/Rome|/Madrid/#", true},
		{"/Madrid/#;(/Paris|/Rome)", false},
		{"Madrid/Gardens", true},
	}
	for _, tc := range tests {
		t.Run(tc.q, func(t *testing.T) {
			q, err := ParseScopeQ(tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if got := q.Match(scopes); got != tc.want {
				t.Fatalf("Match = %v, want %v", got, tc.want)
			}
		})
	}
	all, _ := ParseScopeQ("/#")
	if all.Match(nil) {
		t.Fatal("/# must not match an entity without scopes")
	}
	var nilq *ScopeQuery
	if !nilq.Match(nil) {
		t.Fatal("nil scope query should match")
	}
}

func TestParseTypeQuery(t *testing.T) {
	tests := []struct {
		name, in, want string
		anyOf          []string
	}{
		{"single", "Building", "Building", []string{ns + "Building"}},
		{"comma", "A,B", "A,B", []string{ns + "A", ns + "B"}},
		{"bar", "A|B", "A,B", []string{ns + "A", ns + "B"}},
		{"parens or", "(A|B),C", "A,B,C", []string{ns + "A", ns + "B", ns + "C"}},
		{"iri", "https://schema.org/Place", "https://schema.org/Place", []string{"https://schema.org/Place"}},
		{"and", "A;B", "A;B", nil},
		{"mixed", "A;B|C", "A;B,C", nil},
		{"parens", "A;(B|C)", "A;(B,C)", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q, err := ParseTypeQuery(tc.in, expand)
			if err != nil {
				t.Fatal(err)
			}
			if q.String() != tc.want {
				t.Fatalf("String() = %q, want %q", q.String(), tc.want)
			}
			if strings.Join(q.AnyOf(), " ") != strings.Join(tc.anyOf, " ") || (q.AnyOf() == nil) != (tc.anyOf == nil) {
				t.Fatalf("AnyOf() = %q, want %q", q.AnyOf(), tc.anyOf)
			}
		})
	}
	invalid := []struct{ name, in, want string }{
		{"empty", "", "empty expression"},
		{"empty term", "A,,B", "unexpected ',' at position 3"},
		{"trailing", "A;", "unexpected end of input at position 3"},
		{"unbalanced", "(A,B", "unbalanced '('"},
		{"close", "A)", "unexpected ')' at position 2"},
		{"space", "A B", "unexpected 'B' at position 3"},
	}
	for _, tc := range invalid {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseTypeQuery(tc.in, expand)
			if err == nil || !ngsild.IsType(err, ngsild.BadRequestData) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseTypeQuery(%q) error %v, want BadRequestData containing %q", tc.in, err, tc.want)
			}
		})
	}
}

func TestTypeMatch(t *testing.T) {
	types := []string{ns + "Building", ns + "Museum"}
	tests := []struct {
		q    string
		want bool
	}{
		{"Building", true},
		{"Park", false},
		{"Park,Building", true},
		{"Park|Garden", false},
		{"Building;Museum", true},
		{"Building;Park", false},
		{"Building;Park|Museum", true},
		{"Building;(Park|Museum)", true},
		{"(Building;Park)|Garden", false},
	}
	for _, tc := range tests {
		t.Run(tc.q, func(t *testing.T) {
			q, err := ParseTypeQuery(tc.q, expand)
			if err != nil {
				t.Fatal(err)
			}
			if got := q.Match(types); got != tc.want {
				t.Fatalf("Match = %v, want %v", got, tc.want)
			}
		})
	}
}

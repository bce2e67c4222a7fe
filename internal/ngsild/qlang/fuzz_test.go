package qlang

import (
	"testing"
)

func FuzzParseQ(f *testing.F) {
	for _, s := range []string{
		"temperature>20;name==\"x\"|(a.b[c]==1..5)", "!a", "a~=\"^x(y|z)\"", "a==urn:x:1,2,true",
		"a.observedAt>2020-01-01T00:00:00Z", "a==12:00:00Z..13:00:00", "((a))", "a!=\"\\u00e9\"",
	} {
		f.Add(s)
	}
	e := testEntity()
	f.Fuzz(func(t *testing.T, s string) {
		q, err := ParseQ(s, nil)
		if err != nil {
			return
		}
		q.Match(e)
		out := q.String()
		q2, err := ParseQ(out, nil)
		if err != nil {
			t.Fatalf("ParseQ(%q) ok but String() %q does not re-parse: %v", s, out, err)
		}
		if q2.String() != out {
			t.Fatalf("String() not stable: %q -> %q -> %q", s, out, q2.String())
		}
	})
}

func FuzzParseScopeQ(f *testing.F) {
	for _, s := range []string{"/a/b", "/a/+/c;/d/#|/#", "(/a,/b);/c", "a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := ParseScopeQ(s)
		if err != nil {
			return
		}
		q.Match([]string{"/a/b/c", "/x"})
		out := q.String()
		q2, err := ParseScopeQ(out)
		if err != nil {
			t.Fatalf("ParseScopeQ(%q) ok but String() %q does not re-parse: %v", s, out, err)
		}
		if q2.String() != out {
			t.Fatalf("String() not stable: %q -> %q -> %q", s, out, q2.String())
		}
	})
}

func FuzzParseTypeQuery(f *testing.F) {
	for _, s := range []string{"A", "A,B|C", "A;(B|C)", "https://schema.org/Place"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := ParseTypeQuery(s, nil)
		if err != nil {
			return
		}
		q.Match([]string{"A", "B"})
		q.AnyOf()
		out := q.String()
		q2, err := ParseTypeQuery(out, nil)
		if err != nil {
			t.Fatalf("ParseTypeQuery(%q) ok but String() %q does not re-parse: %v", s, out, err)
		}
		if q2.String() != out {
			t.Fatalf("String() not stable: %q -> %q -> %q", s, out, q2.String())
		}
	})
}

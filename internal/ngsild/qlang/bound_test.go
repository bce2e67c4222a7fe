package qlang

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/zenne-city/zenne/internal/ngsild"
)

func TestBound(t *testing.T) {
	tests := []struct {
		q    string
		want Bound
		ok   bool
	}{
		{"fillingLevel>0.8", Bound{ns + "fillingLevel", 0.8, true}, true},
		{"a>=3", Bound{ns + "a", 3, true}, true},
		{"a<-1", Bound{ns + "a", -1, false}, true},
		{"a<=1e3", Bound{ns + "a", 1000, false}, true},
		{`status=="on";a>5`, Bound{ns + "a", 5, true}, true},
		{"a>5;b<2", Bound{ns + "a", 5, true}, true},
		{"a>5|b<2", Bound{}, false}, // either may hold
		{"!a;a>5", Bound{ns + "a", 5, true}, true},
		{"a==5", Bound{}, false},    // equality: not a threshold
		{"a==1..5", Bound{}, false}, // range
		{`a>"m"`, Bound{}, false},   // string
		{"a>2024-01-01", Bound{}, false},
		{"a.sub>5", Bound{}, false}, // sub-attribute
		{"a.observedAt>5", Bound{}, false},
		{"a[k]>5", Bound{}, false},
		{"a", Bound{}, false},
	}
	for _, tc := range tests {
		q, err := ParseQ(tc.q, expand)
		if err != nil {
			t.Fatalf("%s: %v", tc.q, err)
		}
		got, ok := q.Bound()
		if ok != tc.ok || got != tc.want {
			t.Errorf("Bound(%s) = %+v, %v; want %+v, %v", tc.q, got, ok, tc.want, tc.ok)
		}
	}
	var nilQ *Query
	if _, ok := nilQ.Bound(); ok {
		t.Error("nil query has a bound")
	}
}

func TestNumRange(t *testing.T) {
	a := ns + "a"
	tests := []struct {
		name   string
		attrs  []*ngsild.Attribute
		lo, hi float64
		ok     bool
	}{
		{"none", nil, 0, 0, false},
		{"number", []*ngsild.Attribute{prop(4.0)}, 4, 4, true},
		{"instances", []*ngsild.Attribute{prop(4.0), prop(-2), prop("x")}, -2, 4, true},
		{"array", []*ngsild.Attribute{prop([]any{1.0, "z", 9.0, map[string]any{"@value": 12.0}})}, 1, 12, true},
		{"value object", []*ngsild.Attribute{prop(map[string]any{"@type": "x", "@value": 7.0})}, 7, 7, true},
		{"plain object", []*ngsild.Attribute{prop(map[string]any{"n": 7.0})}, 0, 0, false},
		{"language map", []*ngsild.Attribute{{Kind: ngsild.LanguageProperty, Value: map[string]any{"nl": 3.0, "fr": []any{8.0}}}}, 3, 8, true},
		{"relationship", []*ngsild.Attribute{{Kind: ngsild.Relationship, Value: 5.0}}, 0, 0, false},
		{"string", []*ngsild.Attribute{prop("12")}, 0, 0, false},
	}
	for _, tc := range tests {
		e := &ngsild.Entity{ID: "urn:x", Attrs: map[string][]*ngsild.Attribute{a: tc.attrs}}
		lo, hi, ok := NumRange(e, a)
		if ok != tc.ok || lo != tc.lo || hi != tc.hi {
			t.Errorf("%s: NumRange = %v, %v, %v; want %v, %v, %v", tc.name, lo, hi, ok, tc.lo, tc.hi, tc.ok)
		}
	}
	if _, _, ok := NumRange(nil, a); ok {
		t.Error("nil entity has a range")
	}
}

// TestBoundImpliedByMatch checks what the subscription index relies on:
// whenever a query with a Bound matches an entity, the entity's NumRange
// passes that bound. Values are drawn from every shape Match reads.
func TestBoundImpliedByMatch(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	num := func() any {
		switch r.IntN(3) {
		case 0:
			return float64(r.IntN(21) - 10)
		case 1:
			return r.IntN(21) - 10
		default:
			return float64(r.IntN(2001)-1000) / 100
		}
	}
	value := func() any {
		switch r.IntN(6) {
		case 0:
			return []any{num(), "x", num()}
		case 1:
			return map[string]any{"@value": num()}
		case 2:
			return fmt.Sprint(num())
		case 3:
			return []any{map[string]any{"@value": num()}}
		default:
			return num()
		}
	}
	kinds := []ngsild.Kind{ngsild.Property, ngsild.Property, ngsild.Relationship, ngsild.LanguageProperty}
	ops := []string{">", ">=", "<", "<="}
	checked := 0
	for range 20000 {
		var attrs []*ngsild.Attribute
		for range r.IntN(3) {
			k := kinds[r.IntN(len(kinds))]
			v := value()
			if k == ngsild.LanguageProperty {
				v = map[string]any{"nl": v, "fr": value()}
			}
			attrs = append(attrs, &ngsild.Attribute{Kind: k, Value: v})
		}
		e := &ngsild.Entity{ID: "urn:x", Attrs: map[string][]*ngsild.Attribute{ns + "a": attrs}}
		q, err := ParseQ(fmt.Sprintf("a%s%d", ops[r.IntN(4)], r.IntN(21)-10), expand)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := q.Bound()
		if !q.Match(e) {
			continue
		}
		checked++
		lo, hi, ok := NumRange(e, b.Attr)
		if !ok || b.Above && hi < b.Num || !b.Above && lo > b.Num {
			t.Fatalf("%s matches %+v but NumRange = %v, %v, %v", q, attrs, lo, hi, ok)
		}
	}
	if checked < 1000 {
		t.Fatalf("only %d matches checked", checked)
	}
}

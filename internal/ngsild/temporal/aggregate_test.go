package temporal

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
)

func TestParseMethods(t *testing.T) {
	good := []struct {
		in   string
		want []Method
	}{
		{"avg", []Method{Avg}},
		{"max,avg", []Method{Max, Avg}},
		{"totalCount,distinctCount,sum,avg,min,max,stddev,sumsq", allMethods},
		{"min, max", []Method{Min, Max}},
		{"avg,avg,min", []Method{Avg, Min}},
	}
	for _, tc := range good {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseMethods(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	bad := []struct{ in, part string }{
		{"", "aggrMethods is missing"},
		{" ", "aggrMethods is missing"},
		{"mean", `"mean" is not an aggregation method`},
		{"avg,count", `"count" is not an aggregation method`},
		{"AVG", `"AVG"`},
		{"avg,,max", "empty method"},
		{"avg,", "empty method"},
	}
	for _, tc := range bad {
		t.Run("bad "+tc.in, func(t *testing.T) {
			_, err := ParseMethods(tc.in)
			wantError(t, err, ngsild.BadRequestData, tc.part, "aggrMethods", "totalCount, distinctCount, sum, avg, min, max, stddev or sumsq")
		})
	}
}

func TestParseAggregation(t *testing.T) {
	a, err := ParseAggregation(params("aggrMethods", "max,avg", "aggrPeriodDuration", "PT4M"))
	if err != nil || !reflect.DeepEqual(a.Methods, []Method{Max, Avg}) || a.Period.String() != "PT4M" {
		t.Errorf("got %+v, %v", a, err)
	}
	a, err = ParseAggregation(params("aggrMethods", "sum"))
	if err != nil || !a.Period.IsZero() {
		t.Errorf("no aggrPeriodDuration: got %+v, %v", a, err)
	}
	_, err = ParseAggregation(params("aggrPeriodDuration", "PT4M"))
	wantError(t, err, ngsild.BadRequestData, "aggrMethods is missing")
	_, err = ParseAggregation(params("aggrMethods", "sum", "aggrPeriodDuration", "4 minutes"))
	wantError(t, err, ngsild.BadRequestData, `aggrPeriodDuration "4 minutes" is not an ISO 8601 duration`)

	a, err = ParseTemporalQAggregation(map[string]any{"aggrMethods": []any{"min", "max"}, "aggrPeriodDuration": "P1D"})
	if err != nil || !reflect.DeepEqual(a.Methods, []Method{Min, Max}) || a.Period.String() != "P1D" {
		t.Errorf("temporalQ: got %+v, %v", a, err)
	}
	a, err = ParseTemporalQAggregation(map[string]any{"aggrMethods": "totalCount"})
	if err != nil || !reflect.DeepEqual(a.Methods, []Method{TotalCount}) {
		t.Errorf("temporalQ string: got %+v, %v", a, err)
	}
	for _, tc := range []struct {
		m    map[string]any
		part string
	}{
		{map[string]any{}, "temporalQ.aggrMethods is missing"},
		{map[string]any{"aggrMethods": []any{"min", 3.0}}, "temporalQ.aggrMethods must hold method names"},
		{map[string]any{"aggrMethods": []any{"min,max"}}, "temporalQ.aggrMethods must hold method names"},
		{map[string]any{"aggrMethods": true}, "temporalQ.aggrMethods must be a list"},
		{map[string]any{"aggrMethods": []any{"median"}}, `temporalQ.aggrMethods: "median"`},
		{map[string]any{"aggrMethods": "avg", "aggrPeriodDuration": 4.0}, "temporalQ.aggrPeriodDuration must be a string"},
		{map[string]any{"aggrMethods": "avg", "aggrPeriodDuration": "P"}, `temporalQ.aggrPeriodDuration "P"`},
	} {
		_, err := ParseTemporalQAggregation(tc.m)
		wantError(t, err, ngsild.BadRequestData, tc.part)
	}
}

func dt(s string) map[string]any { return map[string]any{"@type": "DateTime", "@value": s} }

// checkValues compares every method's value with want (methods missing
// from want must be nil); floats within 1e-12 relative.
func checkValues(t *testing.T, a *Acc, want map[Method]any) {
	t.Helper()
	for _, m := range allMethods {
		got, exp := a.Value(m), want[m]
		if !sameValue(got, exp) {
			t.Errorf("%s = %#v, want %#v", m, got, exp)
		}
	}
}

func sameValue(got, want any) bool {
	g, ok1 := got.(float64)
	w, ok2 := want.(float64)
	if ok1 && ok2 {
		return g == w || math.Abs(g-w) <= 1e-12*math.Max(math.Abs(g), math.Abs(w))
	}
	return reflect.DeepEqual(got, want)
}

func TestAccValues(t *testing.T) {
	obj1 := map[string]any{"a": 1.0, "b": 2.0}
	cases := []struct {
		name   string
		values []any
		want   map[Method]any
	}{
		{"empty", nil, map[Method]any{TotalCount: int64(0), DistinctCount: int64(0)}},
		{"numbers", []any{1.0, 2.0, 3.0, 4.0}, map[Method]any{
			TotalCount: int64(4), DistinctCount: int64(4), Sum: 10.0, Avg: 2.5, Min: 1.0, Max: 4.0,
			StdDev: 1.118033988749895, // sqrt(((1.5²+0.5²)×2)/4) = sqrt(1.25)
			SumSq:  30.0,
		}},
		{"numbers with repeats", []any{2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0}, map[Method]any{
			TotalCount: int64(8), DistinctCount: int64(5), Sum: 40.0, Avg: 5.0, Min: 2.0, Max: 9.0,
			StdDev: 2.0, // the textbook population example
			SumSq:  232.0,
		}},
		{"one number", []any{-7.5}, map[Method]any{
			TotalCount: int64(1), DistinctCount: int64(1), Sum: -7.5, Avg: -7.5, Min: -7.5, Max: -7.5, StdDev: 0.0, SumSq: 56.25,
		}},
		{"booleans count as 1 and 0", []any{true, false, true, true}, map[Method]any{
			TotalCount: int64(4), DistinctCount: int64(2), Sum: 3.0, Avg: 0.75, Min: 0.0, Max: 1.0,
			StdDev: 0.4330127018922193, // sqrt(0.75 × 0.25)
			SumSq:  3.0,
		}},
		{"strings", []any{"pear", "apple", "fig", "apple"}, map[Method]any{
			TotalCount: int64(4), DistinctCount: int64(3), Min: "apple", Max: "pear",
		}},
		{"arrays by size", []any{[]any{1.0, 2.0}, []any{}, []any{1.0, 2.0, 3.0}, []any{1.0, 2.0}}, map[Method]any{
			TotalCount: int64(4), DistinctCount: int64(3), Sum: 7.0, Avg: 1.75, Min: 0.0, Max: 3.0,
		}},
		{"objects are counted", []any{obj1, map[string]any{"b": 2.0, "a": 1.0}, map[string]any{"a": 2.0}}, map[Method]any{
			TotalCount: int64(3), DistinctCount: int64(2),
		}},
		{"DateTimes in time order", []any{dt("2024-01-31T12:00:00+01:00"), dt("2024-01-31T11:30:00Z"), dt("2024-02-01T00:00:00Z")}, map[Method]any{
			TotalCount: int64(3), DistinctCount: int64(3), Min: dt("2024-01-31T12:00:00+01:00"), Max: dt("2024-02-01T00:00:00Z"),
		}},
		{"Dates", []any{map[string]any{"@type": "Date", "@value": "2024-01-02"}, map[string]any{"@type": "Date", "@value": "2023-12-31"}}, map[Method]any{
			TotalCount: int64(2), DistinctCount: int64(2),
			Min: map[string]any{"@type": "Date", "@value": "2023-12-31"}, Max: map[string]any{"@type": "Date", "@value": "2024-01-02"},
		}},
		{"Times are averaged", []any{
			map[string]any{"@type": "Time", "@value": "10:00:00Z"},
			map[string]any{"@type": "Time", "@value": "12:00:00Z"},
			map[string]any{"@type": "Time", "@value": "11:00:00+01:00"},
		}, map[Method]any{
			TotalCount: int64(3), DistinctCount: int64(3),
			Avg: map[string]any{"@type": "Time", "@value": "10:40:00.000Z"}, // (10 + 12 + 10) / 3 hours
			Min: map[string]any{"@type": "Time", "@value": "10:00:00Z"},
			Max: map[string]any{"@type": "Time", "@value": "12:00:00Z"},
		}},
		{"expanded DateTime type", []any{map[string]any{"@type": ngsild.CoreNS + "DateTime", "@value": "2024-01-01T00:00:00Z"}}, map[Method]any{
			TotalCount: int64(1), DistinctCount: int64(1),
			Min: map[string]any{"@type": ngsild.CoreNS + "DateTime", "@value": "2024-01-01T00:00:00Z"},
			Max: map[string]any{"@type": ngsild.CoreNS + "DateTime", "@value": "2024-01-01T00:00:00Z"},
		}},
		{"bad DateTime is an object", []any{dt("soon")}, map[Method]any{TotalCount: int64(1), DistinctCount: int64(1)}},
		{"numbers before strings", []any{3.0, "x", 5.0}, map[Method]any{
			TotalCount: int64(3), DistinctCount: int64(3), Sum: 8.0, Avg: 4.0, Min: 3.0, Max: 5.0, StdDev: 1.0, SumSq: 34.0,
		}},
		{"one number however written", []any{1.0, 1, int64(1), json.Number("1.0"), float32(1)}, map[Method]any{
			TotalCount: int64(5), DistinctCount: int64(1), Sum: 5.0, Avg: 1.0, Min: 1.0, Max: 1.0, StdDev: 0.0, SumSq: 5.0,
		}},
		{"true is not 1 for distinctCount", []any{true, 1.0}, map[Method]any{
			TotalCount: int64(2), DistinctCount: int64(2), Sum: 2.0, Avg: 1.0, Min: 1.0, Max: 1.0, StdDev: 0.0, SumSq: 2.0,
		}},
		{"deletions are skipped", []any{nil, ngsild.Null{}, ngsild.NullURI, 5.0}, map[Method]any{
			TotalCount: int64(1), DistinctCount: int64(1), Sum: 5.0, Avg: 5.0, Min: 5.0, Max: 5.0, StdDev: 0.0, SumSq: 25.0,
		}},
		{"NaN is not a number", []any{math.NaN(), 2.0}, map[Method]any{
			TotalCount: int64(2), DistinctCount: int64(2), Sum: 2.0, Avg: 2.0, Min: 2.0, Max: 2.0, StdDev: 0.0, SumSq: 4.0,
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var a Acc
			for _, v := range tc.values {
				a.Add(v)
			}
			checkValues(t, &a, tc.want)
		})
	}
}

func TestAddAttribute(t *testing.T) {
	rel := func(o string) *ngsild.Attribute { return &ngsild.Attribute{Kind: ngsild.Relationship, Value: o} }
	var a Acc
	for _, x := range []*ngsild.Attribute{rel("urn:a"), rel("urn:b"), rel("urn:a"), rel(ngsild.NullURI)} {
		a.AddAttribute(x)
	}
	checkValues(t, &a, map[Method]any{TotalCount: int64(3), DistinctCount: int64(2)})

	var l Acc // a ListProperty is an array: sizes
	l.AddAttribute(&ngsild.Attribute{Kind: ngsild.ListProperty, Value: []any{"a", "b"}})
	l.AddAttribute(&ngsild.Attribute{Kind: ngsild.ListProperty, Value: []any{"a"}})
	checkValues(t, &l, map[Method]any{TotalCount: int64(2), DistinctCount: int64(2), Sum: 3.0, Avg: 1.5, Min: 1.0, Max: 2.0})

	var j Acc // a JsonProperty holding a number is still opaque JSON
	j.AddAttribute(&ngsild.Attribute{Kind: ngsild.JsonProperty, Value: 4.0})
	checkValues(t, &j, map[Method]any{TotalCount: int64(1), DistinctCount: int64(1)})
}

// randomValue draws values of every class, from small sets so that
// distinct values repeat.
func randomValue(r *rand.Rand) any {
	switch r.IntN(9) {
	case 0, 1, 2:
		return float64(r.IntN(20)) / 4
	case 3:
		return r.IntN(2) == 0
	case 4:
		return string(rune('a' + r.IntN(6)))
	case 5:
		arr := make([]any, r.IntN(4))
		for i := range arr {
			arr[i] = float64(i)
		}
		return arr
	case 6:
		return map[string]any{"k": float64(r.IntN(3))}
	case 7:
		return dt(time.Date(2024, 1, 1+r.IntN(5), r.IntN(24), 0, 0, 0, time.UTC).Format(time.RFC3339))
	default:
		return map[string]any{"@type": "Time", "@value": fmt.Sprintf("%02d:%02d:00Z", r.IntN(24), r.IntN(60))}
	}
}

// TestMergeEqualsAdd holds Merge to adding all values to one Acc: values
// split at random into parts, accumulated separately, merged in random
// order.
func TestMergeEqualsAdd(t *testing.T) {
	r := rand.New(rand.NewPCG(2024, 131))
	for round := range 500 {
		values := make([]any, r.IntN(40))
		for i := range values {
			values[i] = randomValue(r)
		}
		var whole Acc
		for _, v := range values {
			whole.Add(v)
		}
		parts := make([]Acc, 1+r.IntN(5))
		for _, v := range values {
			parts[r.IntN(len(parts))].Add(v)
		}
		var merged Acc
		for _, i := range r.Perm(len(parts)) {
			merged.Merge(&parts[i])
		}
		for _, m := range allMethods {
			if g, w := merged.Value(m), whole.Value(m); !sameValue(g, w) {
				// Means of time of day may differ by rounding to the millisecond.
				t.Errorf("round %d (%d values in %d parts): merged %s = %#v, added %#v", round, len(values), len(parts), m, g, w)
			}
		}
	}
}

func TestNumericAcc(t *testing.T) {
	values := []float64{3.5, -1, 10, 2.25, 3.5}
	var raw Acc
	n, sum, sumsq, lo, hi := 0, 0.0, 0.0, math.Inf(1), math.Inf(-1)
	for _, v := range values {
		raw.Add(v)
		n++
		sum += v
		sumsq += v * v
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	roll := NumericAcc(n, sum, sumsq, lo, hi)
	for _, m := range allMethods {
		want := raw.Value(m)
		if m == DistinctCount {
			want = nil // unknown from a rollup
		}
		if got := roll.Value(m); !sameValue(got, want) {
			t.Errorf("rollup %s = %#v, want %#v", m, got, want)
		}
	}
	// Two rollups merge like the values together; a rollup merged into raw
	// values loses distinctCount.
	a, b := NumericAcc(2, 4.5, 13.25, 1, 3.5), NumericAcc(3, 15.75, 117.3125, 2.25, 10)
	a.Merge(&b)
	if got := a.Value(Avg); !sameValue(got, (4.5+15.75)/5) {
		t.Errorf("merged rollups avg = %v", got)
	}
	raw.Merge(&b)
	if raw.Value(DistinctCount) != nil {
		t.Errorf("distinctCount after merging a rollup = %v, want nil", raw.Value(DistinctCount))
	}
	if e := NumericAcc(0, 0, 0, 0, 0); e.Value(TotalCount) != int64(0) || e.Value(Avg) != nil {
		t.Errorf("empty rollup: %v %v", e.Value(TotalCount), e.Value(Avg))
	}
}

func TestEligible(t *testing.T) {
	prop := func(v any) *ngsild.Attribute { return &ngsild.Attribute{Kind: ngsild.Property, Value: v} }
	cases := []struct {
		name string
		a    *ngsild.Attribute
		ok   []Method
	}{
		{"number", prop(1.0), allMethods},
		{"boolean", prop(true), allMethods},
		{"string", prop("x"), []Method{TotalCount, DistinctCount, Min, Max}},
		{"array", prop([]any{1.0}), []Method{TotalCount, DistinctCount, Sum, Avg, Min, Max}},
		{"object", prop(map[string]any{"a": 1.0}), []Method{TotalCount, DistinctCount}},
		{"DateTime", prop(dt("2024-01-01T00:00:00Z")), []Method{TotalCount, DistinctCount, Min, Max}},
		{"Time", prop(map[string]any{"@type": "Time", "@value": "12:00:00"}), []Method{TotalCount, DistinctCount, Avg, Min, Max}},
		{"Relationship", &ngsild.Attribute{Kind: ngsild.Relationship, Value: "urn:a"}, []Method{TotalCount, DistinctCount}},
		{"GeoProperty", &ngsild.Attribute{Kind: ngsild.GeoProperty, Value: map[string]any{"type": "Point"}}, []Method{TotalCount, DistinctCount}},
		{"VocabProperty", &ngsild.Attribute{Kind: ngsild.VocabProperty, Value: "urn:v"}, []Method{TotalCount, DistinctCount}},
		{"ListProperty", &ngsild.Attribute{Kind: ngsild.ListProperty, Value: []any{1.0}}, []Method{TotalCount, DistinctCount, Sum, Avg, Min, Max}},
		{"deletion", prop(ngsild.NullURI), allMethods},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, m := range allMethods {
				want := false
				for _, o := range tc.ok {
					want = want || o == m
				}
				if got := Eligible(tc.a, m); got != want {
					t.Errorf("Eligible(%s) = %v, want %v", m, got, want)
				}
			}
		})
	}

	e := &Entity{Attrs: map[string][]Instance{
		ngsild.DefaultContextNS + "speed": {inst("i1", "", "2024-01-01T00:00:00Z", 3.0)},
		ngsild.DefaultContextNS + "name":  {inst("i2", "", "2024-01-01T00:00:00Z", "Joe")},
	}}
	if err := CheckEligible(e, []Method{Min, Max, TotalCount}, testCompactor{}); err != nil {
		t.Error(err)
	}
	wantError(t, CheckEligible(e, []Method{Max, Avg}, testCompactor{}), ngsild.InvalidRequest, "avg", "attribute name", "a string")
	wantError(t, CheckEligible(e, []Method{StdDev}, nil), ngsild.InvalidRequest, ngsild.DefaultContextNS+"name")
}

func TestPeriods(t *testing.T) {
	cases := []struct {
		name, from, to, d string
		want              []string // start/end pairs
	}{
		{"month ends in a leap year", "2024-01-31T00:00:00Z", "2024-06-01T00:00:00Z", "P1M", []string{
			"2024-01-31T00:00:00Z", "2024-02-29T00:00:00Z",
			"2024-02-29T00:00:00Z", "2024-03-31T00:00:00Z",
			"2024-03-31T00:00:00Z", "2024-04-30T00:00:00Z",
			"2024-04-30T00:00:00Z", "2024-05-31T00:00:00Z",
			"2024-05-31T00:00:00Z", "2024-06-01T00:00:00Z",
		}},
		{"year end", "2023-12-31T06:00:00Z", "2024-03-01T00:00:00Z", "P1M", []string{
			"2023-12-31T06:00:00Z", "2024-01-31T06:00:00Z",
			"2024-01-31T06:00:00Z", "2024-02-29T06:00:00Z",
			"2024-02-29T06:00:00Z", "2024-03-01T00:00:00Z",
		}},
		{"years from a leap day", "2024-02-29T00:00:00Z", "2029-01-01T00:00:00Z", "P1Y", []string{
			"2024-02-29T00:00:00Z", "2025-02-28T00:00:00Z",
			"2025-02-28T00:00:00Z", "2026-02-28T00:00:00Z",
			"2026-02-28T00:00:00Z", "2027-02-28T00:00:00Z",
			"2027-02-28T00:00:00Z", "2028-02-29T00:00:00Z",
			"2028-02-29T00:00:00Z", "2029-01-01T00:00:00Z",
		}},
		{"days over a leap day", "2024-02-28T00:00:00Z", "2024-03-02T00:00:00Z", "P1D", []string{
			"2024-02-28T00:00:00Z", "2024-02-29T00:00:00Z",
			"2024-02-29T00:00:00Z", "2024-03-01T00:00:00Z",
			"2024-03-01T00:00:00Z", "2024-03-02T00:00:00Z",
		}},
		{"last one cut", "2018-08-01T12:00:00Z", "2018-08-01T12:10:00Z", "PT4M", []string{
			"2018-08-01T12:00:00Z", "2018-08-01T12:04:00Z",
			"2018-08-01T12:04:00Z", "2018-08-01T12:08:00Z",
			"2018-08-01T12:08:00Z", "2018-08-01T12:10:00Z",
		}},
		{"zero is one period", "2018-08-01T12:00:00Z", "2018-08-01T13:00:00Z", "PT0S", []string{
			"2018-08-01T12:00:00Z", "2018-08-01T13:00:00Z",
		}},
		{"longer than the range", "2018-08-01T12:00:00Z", "2018-08-01T13:00:00Z", "P1D", []string{
			"2018-08-01T12:00:00Z", "2018-08-01T13:00:00Z",
		}},
		{"empty range", "2018-08-01T12:00:00Z", "2018-08-01T12:00:00Z", "PT4M", nil},
		{"reversed range", "2018-08-01T13:00:00Z", "2018-08-01T12:00:00Z", "PT0S", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, p := range Periods(ts(tc.from), ts(tc.to), mustDuration(t, tc.d)) {
				got = append(got, p.Start.Format(time.RFC3339), p.End.Format(time.RFC3339))
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %v\nwant %v", got, tc.want)
			}
		})
	}
	if n := len(Periods(ts("2018-08-01T12:00:00Z"), ts("2018-08-01T13:00:00Z"), mustDuration(t, "PT4M"))); n != 15 {
		t.Errorf("an hour of PT4M has %d periods, want 15", n)
	}
}

// TestPeriodIndex holds the direct computation of the period holding a
// time to the periods Periods lists.
func TestPeriodIndex(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	from := ts("2023-11-30T10:15:00Z")
	for _, c := range []struct {
		d    string
		span time.Duration
	}{
		{"PT4M", 48 * time.Hour}, {"PT1.5S", time.Hour}, {"P1D", 400 * 24 * time.Hour}, {"P1W", 400 * 24 * time.Hour},
		{"P1M", 5 * 365 * 24 * time.Hour}, {"P1Y", 40 * 365 * 24 * time.Hour}, {"P1M15D", 5 * 365 * 24 * time.Hour},
		{"P1Y2M3DT4H5M6.7S", 60 * 365 * 24 * time.Hour}, {"PT7H", 400 * 24 * time.Hour},
	} {
		d := mustDuration(t, c.d)
		to := from.Add(c.span)
		periods := Periods(from, to, d)
		for range 300 {
			tt := from.Add(time.Duration(r.Int64N(int64(c.span))))
			k := periodIndex(from, d, tt)
			if k < 0 || k >= int64(len(periods)) {
				t.Fatalf("%s: index %d of %v out of %d periods", c.d, k, tt, len(periods))
			}
			p := periods[k]
			if tt.Before(p.Start) || !tt.Before(p.End) {
				t.Errorf("%s: %v in period %d [%v, %v)", c.d, tt, k, p.Start, p.End)
			}
		}
		// Period boundaries belong to the period they start.
		for k, p := range periods {
			if got := periodIndex(from, d, p.Start); got != int64(k) {
				t.Errorf("%s: start of period %d (%v) indexed %d", c.d, k, p.Start, got)
			}
		}
	}
}

func speedAt(id, obs string, v float64) Instance {
	return Instance{ID: id, Attr: &ngsild.Attribute{Kind: ngsild.Property, Value: v, ObservedAt: ts(obs), ModifiedAt: ts(obs).Add(time.Hour)}}
}

type row struct {
	v          any
	start, end string
}

func rows(bs []Bucket, m Method) []row {
	var out []row
	for i := range bs {
		out = append(out, row{bs[i].Value(m), bs[i].Start.Format("15:04:05"), bs[i].End.Format("15:04:05")})
	}
	return out
}

func TestAggregate(t *testing.T) {
	// Annex C.5.14: max and avg of speed between 12:00 and 13:00 by PT4M.
	annex := []Instance{
		speedAt("i1", "2018-08-01T12:03:00Z", 120),
		speedAt("i2", "2018-08-01T12:05:00Z", 80),
		speedAt("i3", "2018-08-01T12:07:00Z", 100),
	}
	between := &Query{Rel: RelBetween, At: ts("2018-08-01T12:00:00Z"), EndAt: ts("2018-08-01T13:00:00Z")}
	bs := Aggregate(annex, between, []Method{Max, Avg}, mustDuration(t, "PT4M"))
	if got, want := rows(bs, Max), []row{{120.0, "12:00:00", "12:04:00"}, {100.0, "12:04:00", "12:08:00"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("annex max = %v, want %v", got, want)
	}
	if got, want := rows(bs, Avg), []row{{120.0, "12:00:00", "12:04:00"}, {90.0, "12:04:00", "12:08:00"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("annex avg = %v, want %v", got, want)
	}
	if bs[0].Value(DistinctCount) != nil {
		t.Errorf("distinct values tracked although distinctCount was not asked for")
	}

	two := []Instance{speedAt("a", "2018-08-01T12:03:00Z", 1), speedAt("b", "2018-08-01T12:09:00Z", 3)}
	cases := []struct {
		name  string
		insts []Instance
		q     *Query
		d     string
		want  []row // totalCount per period
	}{
		{"after: full periods from timeAt", two, &Query{Rel: RelAfter, At: ts("2018-08-01T12:00:00Z")}, "PT4M",
			[]row{{int64(1), "12:00:00", "12:04:00"}, {int64(1), "12:08:00", "12:12:00"}}},
		{"before: aligned at the first instance", two, &Query{Rel: RelBefore, At: ts("2018-08-01T13:00:00Z")}, "PT4M",
			[]row{{int64(1), "12:03:00", "12:07:00"}, {int64(1), "12:07:00", "12:11:00"}}},
		{"between: last period cut at endTimeAt", two, &Query{Rel: RelBetween, At: ts("2018-08-01T12:00:00Z"), EndAt: ts("2018-08-01T12:10:00Z")}, "PT4M",
			[]row{{int64(1), "12:00:00", "12:04:00"}, {int64(1), "12:08:00", "12:10:00"}}},
		{"between, zero: the whole window", two, between, "PT0S",
			[]row{{int64(2), "12:00:00", "13:00:00"}}},
		{"no timerel, zero: the instances' span, last included", two, &Query{}, "PT0S",
			[]row{{int64(2), "12:03:00", "12:09:00"}}},
		{"after, zero: from timeAt to the last instance", two, &Query{Rel: RelAfter, At: ts("2018-08-01T12:00:00Z")}, "PT0S",
			[]row{{int64(2), "12:00:00", "12:09:00"}}},
		{"outside the window", two, &Query{Rel: RelAfter, At: ts("2018-08-01T12:05:00Z")}, "PT4M",
			[]row{{int64(1), "12:09:00", "12:13:00"}}}, // 12:09 starts the second period
		{"nothing in the window", two, &Query{Rel: RelAfter, At: ts("2018-08-01T14:00:00Z")}, "PT4M", nil},
		{"by modifiedAt", two, &Query{Rel: RelBetween, At: ts("2018-08-01T13:00:00Z"), EndAt: ts("2018-08-01T14:00:00Z"), Property: ModifiedAt}, "PT5M",
			[]row{{int64(1), "13:00:00", "13:05:00"}, {int64(1), "13:05:00", "13:10:00"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := rows(Aggregate(tc.insts, tc.q, []Method{TotalCount}, mustDuration(t, tc.d)), TotalCount)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %v\nwant %v", got, tc.want)
			}
		})
	}

	// Monthly periods over a leap February: one instance a day.
	var daily []Instance
	for d := ts("2024-01-01T12:00:00Z"); d.Before(ts("2024-04-01T00:00:00Z")); d = d.AddDate(0, 0, 1) {
		daily = append(daily, Instance{Attr: &ngsild.Attribute{Kind: ngsild.Property, Value: 1.0, ObservedAt: d}})
	}
	q := &Query{Rel: RelBetween, At: ts("2024-01-01T00:00:00Z"), EndAt: ts("2024-04-01T00:00:00Z")}
	var counts []any
	for _, b := range Aggregate(daily, q, []Method{TotalCount, DistinctCount}, mustDuration(t, "P1M")) {
		counts = append(counts, b.Value(TotalCount), b.Value(DistinctCount), b.Start.Format("01-02"))
	}
	if want := []any{int64(31), int64(1), "01-01", int64(29), int64(1), "02-01", int64(31), int64(1), "03-01"}; !reflect.DeepEqual(counts, want) {
		t.Errorf("monthly counts = %v, want %v", counts, want)
	}
}

func TestAggregateEntityAligns(t *testing.T) {
	e := &Entity{Attrs: map[string][]Instance{
		"urn:b": {speedAt("b1", "2018-08-01T12:05:00Z", 5)},
		"urn:a": {
			speedAt("a1", "2018-08-01T12:01:00Z", 1),
			{ID: "a2", Attr: &ngsild.Attribute{Kind: ngsild.Property, Value: 2.0, DatasetID: "urn:ds:2", ObservedAt: ts("2018-08-01T12:02:00Z")}},
		},
		"urn:c": {speedAt("c1", "2018-08-01T14:00:00Z", 5)}, // outside the window
	}}
	q := &Query{Rel: RelBefore, At: ts("2018-08-01T13:00:00Z")}
	series := AggregateEntity(e, q, []Method{Sum}, mustDuration(t, "PT4M"))
	var got []string
	for _, s := range series {
		for _, b := range s.Buckets {
			got = append(got, fmt.Sprintf("%s|%s %s-%s %v", s.Name, s.DatasetID, b.Start.Format("15:04"), b.End.Format("15:04"), b.Value(Sum)))
		}
	}
	want := []string{"urn:a| 12:01-12:05 1", "urn:a|urn:ds:2 12:01-12:05 2", "urn:b| 12:05-12:09 5"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
	if AggregateEntity(&Entity{}, q, nil, Duration{}) != nil {
		t.Error("an entity without instances has series")
	}
}

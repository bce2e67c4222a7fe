package tsz

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestIntStream checks both integer formats directly: the residuals
// round-trip, the reader ends exactly where the writer did, and intCost
// predicts the written size exactly (the encoder's choices rely on it).
func TestIntStream(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	gens := []struct {
		name string
		gen  func(i int) int64
	}{
		{"zeros", func(int) int64 { return 0 }},
		{"small", func(int) int64 { return r.Int64N(15) - 7 }},
		{"sparse", func(int) int64 {
			if r.IntN(5) == 0 {
				return r.Int64N(1000) - 500
			}
			return 0
		}},
		{"wide", func(int) int64 { return r.Int64() >> r.IntN(64) }},
		{"extremes", func(i int) int64 {
			return []int64{math.MinInt64, math.MaxInt64, 1 << 62, -1 << 62, 1<<62 - 1, -(1<<62 - 1), 0, 1, -1}[i%9]
		}},
		{"outlier", func(i int) int64 {
			if i == 40 {
				return 1 << 40
			}
			return int64(i % 3)
		}},
	}
	for _, g := range gens {
		for _, n := range []int{0, 1, 2, 3, 31, 32, 33, 64, 100, 1000} {
			rs := make([]int64, n)
			for i := range rs {
				rs[i] = g.gen(i)
			}
			for head := range 3 {
				for _, packed := range []bool{false, true} {
					t.Run(fmt.Sprintf("%s/n=%d/head=%d/packed=%v", g.name, n, head, packed), func(t *testing.T) {
						cost := intCost{head: head}
						w := newIntWriter([]byte{0xAA}, packed, head)
						for _, x := range rs {
							cost.add(x)
							w.put(x)
						}
						b := w.finish()
						tok, pk := cost.sizes()
						want := tok
						if packed {
							want = pk
						}
						if got := len(b) - 1; got != want {
							t.Errorf("wrote %d bytes, intCost says %d", got, want)
						}
						// Trailing bytes must not be read.
						b = append(b, 0xFF, 0xFF)
						rd := newIntReader(b, 1, packed, head, n)
						for i, x := range rs {
							if got := rd.next(); got != x {
								t.Fatalf("residual %d = %d, want %d", i, got, x)
							}
						}
						if err := rd.done(); err != nil {
							t.Fatal(err)
						}
						if rd.pos != len(b)-2 {
							t.Errorf("reader ended at %d, want %d", rd.pos, len(b)-2)
						}
					})
				}
			}
		}
	}
}

func TestSeq(t *testing.T) {
	xs := []int64{5, 7, 7, 10, -3, math.MaxInt64, math.MinInt64, 0}
	for order := range uint8(3) {
		enc, dec := seq{order: order}, seq{order: order}
		for i, x := range xs {
			if got := dec.value(enc.residual(x)); got != x {
				t.Errorf("order %d, value %d: got %d, want %d", order, i, got, x)
			}
		}
	}
}

func TestUnits(t *testing.T) {
	tests := []struct {
		x    int64
		from uint8
		want uint8
	}{
		{0, unitS, unitS},
		{3e9, unitS, unitS},
		{-3e9, unitS, unitS},
		{3e9 + 1e6, unitS, unitMs},
		{3e9 + 1e6, unitUs, unitUs},
		{5e3, unitS, unitUs},
		{5, unitS, unitNs},
		{math.MinInt64, unitS, unitNs},
		{9_223_372_036 * 1e9, unitS, unitS},
		{math.MaxInt64, unitS, unitNs},
	}
	for _, tc := range tests {
		if got := coarsest(tc.x, tc.from); got != tc.want {
			t.Errorf("coarsest(%d, %d) = %d, want %d", tc.x, tc.from, got, tc.want)
		}
		if got := inUnit(tc.x, tc.want) * unitNanos[tc.want]; got != tc.x {
			t.Errorf("inUnit(%d, %d) * unit = %d", tc.x, tc.want, got)
		}
	}
}

package tsz

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
)

// sameSamples reports the first difference between want and got: T, R, Num
// and Rest exactly (nil and empty Rest alike), V bit for bit when Num and 0
// otherwise.
func sameSamples(want, got []Sample) error {
	if len(want) != len(got) {
		return fmt.Errorf("got %d samples, want %d", len(got), len(want))
	}
	for i := range want {
		w, g := want[i], got[i]
		wv := w.V
		if !w.Num {
			wv = 0
		}
		switch {
		case w.T != g.T:
			return fmt.Errorf("sample %d: T = %d, want %d", i, g.T, w.T)
		case w.R != g.R:
			return fmt.Errorf("sample %d: R = %d, want %d", i, g.R, w.R)
		case w.Num != g.Num:
			return fmt.Errorf("sample %d: Num = %v, want %v", i, g.Num, w.Num)
		case math.Float64bits(wv) != math.Float64bits(g.V):
			return fmt.Errorf("sample %d: V = %v (%#x), want %v (%#x)", i, g.V, math.Float64bits(g.V), wv, math.Float64bits(wv))
		case !bytes.Equal(w.Rest, g.Rest):
			return fmt.Errorf("sample %d: Rest = %q, want %q", i, g.Rest, w.Rest)
		}
	}
	return nil
}

// roundTrip encodes s after a prefix (to check that Encode appends), decodes
// it after a prefix sample (to check that Decode appends) and compares.
func roundTrip(t testing.TB, s []Sample) []byte {
	t.Helper()
	prefix := []byte("xyz")
	b := Encode(append([]byte(nil), prefix...), s)
	if !bytes.Equal(b[:3], prefix) {
		t.Fatalf("Encode overwrote dst")
	}
	b = b[3:]
	head := Sample{T: -1, Rest: []byte("head")}
	got, err := Decode(b, []Sample{head})
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if err := sameSamples([]Sample{head}, got[:1]); err != nil {
		t.Fatalf("Decode overwrote dst: %v", err)
	}
	if err := sameSamples(s, got[1:]); err != nil {
		t.Fatal(err)
	}
	if n, err := Len(b); err != nil || n != len(s) {
		t.Fatalf("Len = %d, %v; want %d", n, err, len(s))
	}
	return b
}

func regular(n int, start, dt int64, v func(i int) float64) []Sample {
	s := make([]Sample, n)
	for i := range s {
		t := start + int64(i)*dt
		s[i] = Sample{T: t, R: t, Num: true, V: v(i), Rest: unitRest}
	}
	return s
}

// valueMode describes the V column's encoding: "xor", "dec<d>" or "" when
// there is none. It decodes the columns before V as decode does.
func valueMode(t *testing.T, b []byte) string {
	t.Helper()
	h, err := readHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	if h.NumN == 0 {
		return ""
	}
	s := make([]Sample, h.N)
	pos := h.pos
	for range 2 { // T, R
		mode := b[pos]
		rd := newIntReader(b, pos+1, mode&modePacked != 0, int(mode&modeOrder), h.N)
		for range s {
			rd.next()
		}
		if err := rd.done(); err != nil {
			t.Fatal(err)
		}
		pos = rd.pos
	}
	if h.NumN < h.N {
		if pos, err = decodeFlags(b, pos, s, h.N, h.NumN); err != nil {
			t.Fatal(err)
		}
	}
	if b[pos] == modeXor {
		return "xor"
	}
	return fmt.Sprintf("dec%d", b[pos]>>4)
}

func TestRoundTrip(t *testing.T) {
	const day = int64(86_400e9)
	t0 := int64(1_704_067_200e9) // 2024-01-01
	neg := math.Copysign(0, -1)
	tests := []struct {
		name string
		s    []Sample
		mode string // expected valueMode, "*" for any
	}{
		{"empty", nil, "*"},
		{"empty non-nil", []Sample{}, "*"},
		{"one", []Sample{{T: t0, R: t0 + 5, Num: true, V: 21.5, Rest: unitRest}}, "dec1"},
		{"one non-numeric", []Sample{{T: t0, R: t0, Rest: []byte(`"open"`)}}, ""},
		{"one zero sample", []Sample{{}}, "*"},
		{"regular 15 min", regular(96, t0, step, func(i int) float64 { return float64(200+i%7) / 10 }), "dec1"},
		{"regular integers", regular(1000, t0, step, func(i int) float64 { return float64(i * i) }), "dec0"},
		{"irregular times", func() []Sample {
			s := regular(500, t0, step, func(i int) float64 { return float64(i) / 100 })
			r := rand.New(rand.NewPCG(1, 2))
			for i := range s {
				s[i].T += r.Int64N(60e9) - 30e9
				s[i].R = s[i].T + r.Int64N(1e9)
			}
			return s
		}(), "*"},
		{"times backwards", []Sample{
			{T: t0 + 3*day, R: 1, Num: true, V: 1}, {T: t0, R: 2, Num: true, V: 2},
			{T: t0 + day, R: 3, Num: true, V: 3}, {T: t0 - day, R: 4, Num: true, V: 4},
			{T: t0 - day, R: 5, Num: true, V: 5},
		}, "*"},
		{"equal times", regular(50, t0, 0, func(i int) float64 { return float64(i % 3) }), "*"},
		{"negative times", regular(50, -t0, step, func(i int) float64 { return -float64(i) / 1000 }), "*"},
		{"extreme times", []Sample{
			{T: math.MaxInt64, R: math.MinInt64}, {T: math.MinInt64, R: math.MaxInt64},
			{T: math.MaxInt64, R: 0}, {T: 0, R: math.MinInt64}, {T: math.MinInt64 + 1, R: -1},
			{T: 1 << 62, R: -1 << 62}, {T: -(1 << 62), R: 1<<62 - 1},
		}, "*"},
		{"large values", regular(20, t0, step, func(i int) float64 { return float64(1<<52) + float64(i*1000) }), "dec0"},
		{"huge values", regular(20, t0, step, func(i int) float64 { return math.MaxFloat64 / float64(i+1) }), "xor"},
		{"decimals 9", regular(20, t0, step, func(i int) float64 { return float64(i*7919+1) / 1e9 }), "dec9"},
		{"decimals 10 → xor", regular(20, t0, step, func(i int) float64 { return float64(i*7919+1) / 1e10 }), "xor"},
		{"NaN", regular(10, t0, step, func(i int) float64 {
			return []float64{1, math.NaN(), math.Float64frombits(0x7ff8dead00000001), 2}[i%4]
		}), "xor"},
		{"Inf", regular(10, t0, step, func(i int) float64 { return []float64{math.Inf(1), 0, math.Inf(-1)}[i%3] }), "xor"},
		{"negative zero", regular(10, t0, step, func(i int) float64 { return []float64{0, neg, 1.5}[i%3] }), "xor"},
		{"only negative zero", regular(3, t0, step, func(int) float64 { return neg }), "xor"},
		{"subnormals", regular(10, t0, step, func(i int) float64 { return math.SmallestNonzeroFloat64 * float64(i+1) }), "xor"},
		{"random bits", regular(300, t0, step, func(i int) float64 { return math.Float64frombits(rand.New(rand.NewPCG(uint64(i), 0)).Uint64()) }), "xor"},
		{"mixed num", func() []Sample {
			s := regular(100, t0, step, func(i int) float64 { return float64(i) / 10 })
			for i := range s {
				if i%10 < 3 || i == 99 {
					s[i].Num, s[i].V, s[i].Rest = false, 123, []byte(fmt.Sprintf(`"s%d"`, i/10))
				}
			}
			return s
		}(), "*"},
		{"all non-numeric", func() []Sample {
			s := regular(30, t0, step, func(int) float64 { return 0 })
			for i := range s {
				s[i].Num, s[i].Rest = false, []byte{byte(i / 4)}
			}
			return s
		}(), "*"},
		{"rest varying", func() []Sample {
			s := regular(40, t0, step, func(i int) float64 { return float64(i) })
			for i := range s {
				s[i].Rest = bytes.Repeat([]byte{byte(i)}, i%5)
			}
			return s
		}(), "*"},
		{"rest empty and nil", func() []Sample {
			s := regular(40, t0, step, func(i int) float64 { return float64(i) })
			for i := range s {
				s[i].Rest = [][]byte{nil, {}, {0}}[i%3]
			}
			return s
		}(), "*"},
		{"rest long", func() []Sample {
			s := regular(3, t0, step, func(i int) float64 { return float64(i) })
			s[1].Rest = bytes.Repeat([]byte("abc"), 10000)
			return s
		}(), "*"},
		{"max samples", regular(MaxSamples, t0, 1e9, func(i int) float64 { return float64(i % 100) }), "dec0"},
		{"max samples constant", regular(MaxSamples, t0, 1e9, func(i int) float64 { return 7 }), "dec0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := roundTrip(t, tc.s)
			if m := valueMode(t, b); tc.mode != "*" && m != tc.mode {
				t.Errorf("value mode = %s, want %s", m, tc.mode)
			}
		})
	}
}

// TestRandom round-trips random chunks of mixed shapes, fixed seed.
func TestRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for iter := range 2000 {
		n := r.IntN(300)
		if iter%100 == 0 {
			n = r.IntN(5000)
		}
		s := randomSamples(r, n)
		b := Encode(nil, s)
		got, err := Decode(b, nil)
		if err != nil {
			t.Fatalf("iteration %d: %v", iter, err)
		}
		if err := sameSamples(s, got); err != nil {
			t.Fatalf("iteration %d: %v", iter, err)
		}
		sum, err := Summarize(b)
		if err != nil {
			t.Fatal(err)
		}
		if want := refSummary(s); !sameSummary(sum, want) {
			t.Fatalf("iteration %d: Summarize = %+v, want %+v", iter, sum, want)
		}
	}
}

func randomSamples(r *rand.Rand, n int) []Sample {
	s := make([]Sample, n)
	t := r.Int64()
	dt := r.Int64N(1e12)
	d := r.IntN(10)
	v := float64(r.IntN(1e6)) / pow10[d]
	rest := []byte(nil)
	numProb := []int{0, 50, 95, 100}[r.IntN(4)]
	for i := range s {
		switch r.IntN(10) {
		case 0:
			t = r.Int64()
		case 1, 2:
			t += dt + r.Int64N(1e9) - 5e8
		default:
			t += dt
		}
		rec := t
		switch r.IntN(3) {
		case 0:
			rec = 42
		case 1:
			rec = t + r.Int64N(2e9)
		}
		switch r.IntN(20) {
		case 0:
			v = math.Float64frombits(r.Uint64())
		case 1:
			v = []float64{math.NaN(), math.Inf(1), math.Inf(-1), math.Copysign(0, -1), 5e-324}[r.IntN(5)]
		case 2, 3, 4:
		default:
			v += float64(r.IntN(21)-10) / pow10[d]
		}
		if r.IntN(30) == 0 {
			rest = make([]byte, r.IntN(30))
			for j := range rest {
				rest[j] = byte(r.Uint32())
			}
		}
		s[i] = Sample{T: t, R: rec, Num: r.IntN(100) < numProb, V: v, Rest: rest}
	}
	return s
}

// refSummary computes the summary directly from the definition.
func refSummary(s []Sample) Summary {
	var sum Summary
	sum.N = len(s)
	for i, x := range s {
		if i == 0 || x.T < sum.MinT {
			sum.MinT = x.T
		}
		if i == 0 || x.T > sum.MaxT {
			sum.MaxT = x.T
		}
		if !x.Num {
			continue
		}
		if sum.NumN == 0 {
			sum.Min, sum.Max = x.V, x.V
		}
		sum.NumN++
		sum.Sum += x.V
		sum.SumSq += x.V * x.V
		sum.Min = math.Min(sum.Min, x.V)
		sum.Max = math.Max(sum.Max, x.V)
	}
	return sum
}

// sameSummary compares floats bit for bit (so -0 != 0) but any NaN equals
// any NaN (which payload survives an addition or math.Min is not part of the
// contract), Min and Max only when there are numeric samples.
func sameSummary(a, b Summary) bool {
	eq := func(x, y float64) bool {
		return math.Float64bits(x) == math.Float64bits(y) || (math.IsNaN(x) && math.IsNaN(y))
	}
	if a.NumN == 0 || b.NumN == 0 {
		a.Min, a.Max, b.Min, b.Max = 0, 0, 0, 0
	}
	return a.N == b.N && a.NumN == b.NumN && a.MinT == b.MinT && a.MaxT == b.MaxT &&
		eq(a.Sum, b.Sum) && eq(a.SumSq, b.SumSq) && eq(a.Min, b.Min) && eq(a.Max, b.Max)
}

func TestSummarize(t *testing.T) {
	t0 := int64(1_704_067_200e9)
	tests := []struct {
		name string
		s    []Sample
		want Summary
	}{
		{"empty", nil, Summary{}},
		{"one", []Sample{{T: 5, Num: true, V: 2.5}}, Summary{N: 1, NumN: 1, Sum: 2.5, SumSq: 6.25, Min: 2.5, Max: 2.5, MinT: 5, MaxT: 5}},
		{"non-numeric only", []Sample{{T: 9}, {T: -3}}, Summary{N: 2, MinT: -3, MaxT: 9}},
		{"mixed", []Sample{
			{T: t0 + 10, Num: true, V: 1.5}, {T: t0, Num: false, V: 100},
			{T: t0 + 20, Num: true, V: -2}, {T: t0 + 5, Num: true, V: 4},
		}, Summary{N: 4, NumN: 3, Sum: 3.5, SumSq: 2.25 + 4 + 16, Min: -2, Max: 4, MinT: t0, MaxT: t0 + 20}},
		{"order of summation", []Sample{ // 1e16 + 1 + 1 is 1e16 left to right
			{T: 1, Num: true, V: 1e16}, {T: 2, Num: true, V: 1}, {T: 3, Num: true, V: 1},
		}, Summary{N: 3, NumN: 3, Sum: 1e16, SumSq: 1e32 + 1 + 1, Min: 1, Max: 1e16, MinT: 1, MaxT: 3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := Encode(nil, tc.s)
			got, err := Summarize(b)
			if err != nil {
				t.Fatal(err)
			}
			if !sameSummary(got, tc.want) {
				t.Errorf("Summarize = %+v, want %+v", got, tc.want)
			}
			if ref := refSummary(tc.s); !sameSummary(ref, tc.want) {
				t.Errorf("refSummary = %+v, want %+v (test table is wrong)", ref, tc.want)
			}
		})
	}

	// And on a realistic year, against the reference computation.
	for _, sr := range realisticSeries() {
		s := yearOf(sr, true, 1)
		for _, c := range chunks(s, perDay*7) {
			got, err := Summarize(Encode(nil, c))
			if err != nil {
				t.Fatal(err)
			}
			if want := refSummary(c); !sameSummary(got, want) {
				t.Fatalf("%s: Summarize = %+v, want %+v", sr.name, got, want)
			}
		}
	}
}

// TestCorrupt checks that damaged chunks give errors wrapping ErrCorrupt,
// never a panic, and leave dst's length alone.
func TestCorrupt(t *testing.T) {
	good := Encode(nil, regular(200, 1e18, step, func(i int) float64 { return float64(i%17) / 10 }))
	mixed := Encode(nil, randomSamples(rand.New(rand.NewPCG(3, 3)), 300))
	tests := []struct {
		name string
		b    []byte
	}{
		{"nil", nil},
		{"version", append([]byte{2}, good[1:]...)},
		{"too many samples", []byte{1, 0x81, 0x80, 0x40}}, // 2^20 + 1
		{"empty with trailing", []byte{1, 0, 0}},
		{"truncated header", good[:5]},
		{"truncated", good[:len(good)-1]},
		{"trailing", append(append([]byte(nil), good...), 0)},
		{"numN > n", []byte{1, 1, 0, 0, 2}},
		// Hand-made one-sample chunks, variations of valid below.
		{"run too long", []byte{1, 1, 0, 0, 0, 0, 4, 0, 2, 1, 0}},
		{"bad T mode", []byte{1, 1, 0, 0, 0, 3, 2, 0, 2, 1, 0}},
		{"bad R mode", []byte{1, 1, 0, 0, 0, 0, 2, 3, 2, 1, 0}},
		{"T below MinT", []byte{1, 1, 0, 0, 0, 0, 1, 0, 2, 1, 0}},
		{"zero Rest run", []byte{1, 1, 0, 0, 0, 0, 2, 0, 2, 0, 0}},
		{"Rest too long", []byte{1, 1, 0, 0, 0, 0, 2, 0, 2, 1, 1}},
		{"packed width > 64", []byte{1, 1, 0, 0, 0, 8, 65, 0, 2, 1, 0}},
		{"packed truncated", []byte{1, 1, 0, 0, 0, 8, 7, 0, 2, 1, 0}},
	}
	for i := 0; i < len(mixed); i += 7 {
		tests = append(tests, struct {
			name string
			b    []byte
		}{fmt.Sprintf("mixed truncated at %d", i), mixed[:i]})
	}
	// Sanity: the hand-made chunks differ from a valid one only where meant.
	// version 1, n 1, MinT 0, span 0, NumN 0; T: mode 0, run of 1 zero;
	// R: mode 0, run of 1 zero; Rest: run 1, length 0.
	valid := []byte{1, 1, 0, 0, 0, 0, 2, 0, 2, 1, 0}
	if _, err := Decode(valid, nil); err != nil {
		t.Fatalf("valid hand-made chunk: %v", err)
	}
	// Every byte of a valid chunk damaged in turn: no panic; what still
	// decodes must re-encode to the same samples.
	for i := range mixed {
		for _, flip := range []byte{0x01, 0x80, 0xFF} {
			b := append([]byte(nil), mixed...)
			b[i] ^= flip
			Len(b)
			Summarize(b)
			s, err := Decode(b, nil)
			if err != nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("byte %d ^ %#x: error %v does not wrap ErrCorrupt", i, flip, err)
				}
				continue
			}
			again, err := Decode(Encode(nil, s), nil)
			if err != nil {
				t.Fatalf("byte %d ^ %#x: re-encoded: %v", i, flip, err)
			}
			if err := sameSamples(s, again); err != nil {
				t.Fatalf("byte %d ^ %#x: re-encoded: %v", i, flip, err)
			}
		}
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dst := make([]Sample, 2, 10)
			got, err := Decode(tc.b, dst)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Decode error = %v, want ErrCorrupt", err)
			}
			if len(got) != 2 {
				t.Errorf("Decode returned %d samples on error, want dst's 2", len(got))
			}
		})
	}
}

func TestEncodeTooMany(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Encode of MaxSamples+1 samples did not panic")
		}
	}()
	Encode(nil, make([]Sample, MaxSamples+1))
}

func TestDecimal(t *testing.T) {
	tests := []struct {
		v  float64
		d  int
		k  int64
		ok bool
	}{
		{21.3, 1, 213, true},
		{21.3, 0, 0, false},
		{21.3, 3, 21300, true},
		{0.3, 1, 3, true},
		{math.Nextafter(0.3, 1), 1, 0, false}, // 0.30000000000000004, as 0.1+0.2 at run time
		{math.Nextafter(0.3, 1), 9, 0, false},
		{math.Copysign(0, -1), 0, 0, false},
		{0, 0, 0, true},
		{-12.5, 1, -125, true},
		{1 << 53, 0, 0, false},
		{1<<53 - 1, 0, 1<<53 - 1, true},
		{math.NaN(), 3, 0, false},
		{math.Inf(-1), 0, 0, false},
		{5e-324, 9, 0, false},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.v, "/", tc.d), func(t *testing.T) {
			k, ok := decimal(tc.v, tc.d)
			if ok != tc.ok || (ok && k != tc.k) {
				t.Errorf("decimal(%v, %d) = %d, %v; want %d, %v", tc.v, tc.d, k, ok, tc.k, tc.ok)
			}
		})
	}
}

// TestXorBound checks that the xor size bound the encoder uses to skip
// measuring xor never exceeds the real xor size, so skipping never loses.
func TestXorBound(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	for iter := range 500 {
		s := randomSamples(r, 1+r.IntN(200))
		p := planValues(s)
		if !p.decimal {
			continue
		}
		if xor := len(appendXor(nil, s)); p.xorMin > xor {
			t.Fatalf("iteration %d: xor bound %d > xor size %d", iter, p.xorMin, xor)
		}
	}
	for _, sr := range realisticSeries()[:3] {
		for _, c := range chunks(yearOf(sr, false, 2), perDay)[:30] {
			p := planValues(c)
			if !p.decimal {
				t.Fatalf("%s: not decimal", sr.name)
			}
			if xor := len(appendXor(nil, c)); p.xorMin > xor {
				t.Fatalf("%s: xor bound %d > xor size %d", sr.name, p.xorMin, xor)
			}
		}
	}
}

// TestCorruptHugeCount checks that a chunk claiming many samples in few
// bytes is walked before anything is allocated for it.
func TestCorruptHugeCount(t *testing.T) {
	good := Encode(nil, regular(MaxSamples, 0, 1e9, func(int) float64 { return 7 }))
	if len(good)*8 >= MaxSamples {
		t.Fatalf("test chunk is %d bytes: too big to take the checking path", len(good))
	}
	bad := append([]byte(nil), good[:len(good)-1]...) // Rest truncated
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := Decode(bad, nil)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Decode error = %v, want ErrCorrupt", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Errorf("Decode of a corrupt %d-byte chunk allocated %d bytes", len(bad), got)
	}
	if s, err := Decode(good, nil); err != nil || len(s) != MaxSamples {
		t.Errorf("Decode of the good chunk: %d samples, %v", len(s), err)
	}
}

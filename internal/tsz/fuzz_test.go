package tsz

import (
	"encoding/binary"
	"math"
	"testing"
)

// fuzzSeeds are small chunks of the shapes the codec meets, so that the
// fuzzer starts from valid encodings of every column mode.
func fuzzSeeds() [][]Sample {
	const t0 = int64(1_704_067_200e9)
	year := func(i int, live bool) []Sample {
		return yearOf(realisticSeries()[i], live, 1)[:100]
	}
	mixed := regular(40, t0, step, func(i int) float64 { return float64(i) / 10 })
	for i := range mixed {
		if i%7 < 2 {
			mixed[i].Num, mixed[i].Rest = false, []byte{'s', byte(i)}
		}
	}
	return [][]Sample{
		nil,
		{{T: 1, R: 2, Num: true, V: 1.5, Rest: []byte("x")}},
		year(0, false), year(1, true), year(2, false), year(3, true),
		regular(70, t0, step, func(i int) float64 { return []float64{math.NaN(), math.Inf(1), math.Copysign(0, -1), 1}[i%4] }),
		mixed,
		eventsOf(60, 1),
		{{T: math.MaxInt64, R: math.MinInt64}, {T: math.MinInt64, R: math.MaxInt64, Num: true, V: 5e-324}},
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(Encode(nil, s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n, lenErr := Len(b)
		_, sumErr := Summarize(b)
		s, err := Decode(b, nil)
		if err != nil {
			return
		}
		if lenErr != nil || sumErr != nil || n != len(s) {
			t.Fatalf("Decode ok but Len = %d, %v and Summarize error %v", n, lenErr, sumErr)
		}
		again, err := Decode(Encode(nil, s), nil)
		if err != nil {
			t.Fatalf("re-encoded chunk does not decode: %v", err)
		}
		if err := sameSamples(s, again); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0x10, 0x11, 0x12, 0x13, 0x14, 0x15})
	f.Add([]byte("\xff\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17"))
	f.Add([]byte{0x50, 5, 0, 0, 0, 0x50, 6, 0x30, 9, 1, 2, 3, 4, 0x20, 0x20, 0x21, 0x21})
	f.Fuzz(func(t *testing.T, data []byte) {
		s := samplesFrom(data)
		b := Encode(nil, s)
		got, err := Decode(b, nil)
		if err != nil {
			t.Fatalf("Decode: %v", err)
		}
		if err := sameSamples(s, got); err != nil {
			t.Fatal(err)
		}
		sum, err := Summarize(b)
		if err != nil {
			t.Fatal(err)
		}
		if want := refSummary(s); !sameSummary(sum, want) {
			t.Fatalf("Summarize = %+v, want %+v", sum, want)
		}
	})
}

// samplesFrom builds samples from fuzz bytes: per sample an op byte whose
// bit fields say how T, R, Num, V and Rest change, followed by the bytes
// those changes need (zeros once data runs out).
func samplesFrom(data []byte) []Sample {
	take := func(n int) []byte {
		out := make([]byte, 8)
		copy(out, data[:min(n, len(data))])
		data = data[min(n, len(data)):]
		return out
	}
	u8 := func() uint64 { return uint64(take(1)[0]) }
	u64 := func() uint64 { return binary.LittleEndian.Uint64(take(8)) }
	var (
		s       []Sample
		t, dt   int64 = 1_704_067_200e9, 900e9
		rConst  int64 = 42
		v       float64
		d       int
		rest    []byte
		numFlag bool
	)
	for len(data) > 0 && len(s) < 3000 {
		op := u8()
		switch op & 3 {
		case 0:
			t += dt
		case 1:
			t += int64(int8(u8()))
		case 2:
			dt = int64(int16(u8()|u8()<<8)) * 1e6
			t += dt
		case 3:
			t = int64(u64())
		}
		var r int64
		switch op >> 2 & 3 {
		case 0:
			r = t
		case 1:
			r = rConst
		case 2:
			r = t + int64(u8()|u8()<<8)*1000
		case 3:
			r = int64(u64())
		}
		if op>>4&1 == 1 {
			numFlag = !numFlag
		}
		switch op >> 5 & 3 {
		case 0:
		case 1:
			v += float64(int8(u8())) / pow10[d]
		case 2:
			v = math.Float64frombits(u64())
		case 3:
			d = int(u8() % (maxDecimals + 1))
			v = float64(int32(u64())) / pow10[d]
		}
		if op>>7 == 1 {
			k := int(u8() % 9)
			rest = take(k)[:k] // k == 0: empty, not nil, which decodes as nil
		}
		s = append(s, Sample{T: t, R: r, Num: numFlag, V: v, Rest: rest})
	}
	return s
}

package tsz

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// yearSize encodes s in chunks of size samples, checks each round-trips and
// returns the total encoded bytes per sample.
func yearSize(t testing.TB, s []Sample, size int) float64 {
	total := 0
	var buf []byte
	var dec []Sample
	for _, c := range chunks(s, size) {
		buf = Encode(buf[:0], c)
		total += len(buf)
		var err error
		if dec, err = Decode(buf, dec[:0]); err != nil {
			t.Fatal(err)
		}
		if err := sameSamples(c, dec); err != nil {
			t.Fatal(err)
		}
	}
	return float64(total) / float64(len(s))
}

// TestCompression measures a year of 15-minute readings of realistic
// series and holds the regular decimal ones (imported, R constant) to at
// most 4 bytes per sample. Run with -v to see every figure; the package doc
// records them.
func TestCompression(t *testing.T) {
	const limit = 4.0
	if len(unitRest) != 20 {
		t.Fatalf("unitRest is %d bytes, want the brief's 20", len(unitRest))
	}
	for _, sr := range realisticSeries() {
		for _, live := range []bool{false, true} {
			s := yearOf(sr, live, 1)
			for _, size := range []int{perDay, 1024} {
				name := fmt.Sprintf("%s/live=%v/chunk=%d", sr.name, live, size)
				bps := yearSize(t, s, size)
				t.Logf("%-36s %5.2f bytes/sample", name, bps)
				if !live && sr.name != "float" && bps > limit {
					t.Errorf("%s: %.2f bytes/sample, want <= %v", name, bps, limit)
				}
			}
		}
	}
	// Not a regular series: a door contact reporting 0/1 at irregular
	// times with whole-second observedAt, recorded live (R = T + jitter).
	for _, size := range []int{perDay, 1024} {
		bps := yearSize(t, eventsOf(perYear, 1), size)
		t.Logf("%-36s %5.2f bytes/sample", fmt.Sprintf("events/live=true/chunk=%d", size), bps)
	}
}

// eventsOf returns n events at exponentially distributed gaps (mean 10
// minutes) in whole seconds, alternating 0 and 1, with R = T + jitter.
func eventsOf(n int, seed uint64) []Sample {
	r := rand.New(rand.NewPCG(seed, 43))
	s := make([]Sample, n)
	t := yearStart
	for i := range s {
		t += int64(1+r.ExpFloat64()*600) * 1e9
		s[i] = Sample{T: t, R: t + 5e7 + r.Int64N(195e7), Num: true, V: float64(i % 2), Rest: unitRest}
	}
	return s
}

// benchCases are the temperature year (a) imported (R constant) in day
// and 1024-sample chunks, and live (R = T + jitter) in 1024-sample chunks.
var benchCases = []struct {
	name string
	live bool
	size int
}{
	{"import/day", false, perDay},
	{"import/1024", false, 1024},
	{"live/1024", true, 1024},
}

// BenchmarkEncode encodes the temperature year (a).
func BenchmarkEncode(b *testing.B) {
	for _, bc := range benchCases {
		b.Run(bc.name, func(b *testing.B) {
			cs := chunks(yearOf(realisticSeries()[0], bc.live, 1), bc.size)
			var buf []byte
			n, size := 0, 0
			for b.Loop() {
				for _, c := range cs {
					buf = Encode(buf[:0], c)
					n += len(c)
					size += len(buf)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/sample")
			b.ReportMetric(float64(size)/float64(n), "B/sample")
		})
	}
}

// BenchmarkDecode decodes the temperature year (a).
func BenchmarkDecode(b *testing.B) {
	for _, bc := range benchCases {
		b.Run(bc.name, func(b *testing.B) {
			cs := chunks(yearOf(realisticSeries()[0], bc.live, 1), bc.size)
			enc := make([][]byte, len(cs))
			for i, c := range cs {
				enc[i] = Encode(nil, c)
			}
			var dst []Sample
			n := 0
			for b.Loop() {
				for _, e := range enc {
					var err error
					if dst, err = Decode(e, dst[:0]); err != nil {
						b.Fatal(err)
					}
					n += len(dst)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/sample")
		})
	}
}

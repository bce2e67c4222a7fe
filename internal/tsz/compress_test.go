package tsz

import (
	"fmt"
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
}

func benchYear(b *testing.B) [][]Sample {
	return chunks(yearOf(realisticSeries()[0], false, 1), 1024)
}

// BenchmarkEncode encodes the temperature year (a) in 1024-sample chunks.
func BenchmarkEncode(b *testing.B) {
	cs := benchYear(b)
	var buf []byte
	n := 0
	for b.Loop() {
		for _, c := range cs {
			buf = Encode(buf[:0], c)
			n += len(c)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/sample")
}

// BenchmarkDecode decodes the temperature year (a) in 1024-sample chunks.
func BenchmarkDecode(b *testing.B) {
	cs := benchYear(b)
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
}

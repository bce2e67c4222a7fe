package temporal

import (
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
)

// BenchmarkRenderAggregatedYearHourly renders a year of hourly averages of
// one attribute (8,760 periods) to JSON, the response of the history goal
// "hourly averages over one year for one sensor".
func BenchmarkRenderAggregatedYearHourly(b *testing.B) {
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	s := Series{Name: "https://example.org/power", Kind: ngsild.Property}
	for i := range 8760 {
		bk := Bucket{Period: Period{Start: start.Add(time.Duration(i) * time.Hour), End: start.Add(time.Duration(i+1) * time.Hour)}}
		for j := range 4 {
			bk.Acc.Add(float64(i%97) + float64(j)*0.25)
		}
		s.Buckets = append(s.Buckets, bk)
	}
	e := &Entity{ID: "urn:ngsi-ld:Meter:1", Types: []string{"https://example.org/Meter"}}
	opts := RenderOptions{Methods: []Method{Avg}}
	b.ReportAllocs()
	for b.Loop() {
		obj := RenderAggregated(e, []Series{s}, opts)
		if _, err := ngsild.Marshal(obj); err != nil {
			b.Fatal(err)
		}
	}
}

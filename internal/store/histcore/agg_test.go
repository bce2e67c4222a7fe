package histcore

import (
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild/temporal"
)

// TestAggregatorBucketsOutOfOrder: samples of older periods arriving after
// newer ones (back-filled history in the head) land in their own buckets,
// and the series stays in period order.
func TestAggregatorBucketsOutOfOrder(t *testing.T) {
	from := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	d, err := temporal.ParseDuration("PT1H")
	if err != nil {
		t.Fatal(err)
	}
	q := &temporal.Query{Rel: temporal.RelBetween, At: from, EndAt: from.Add(10 * time.Hour)}
	ag := NewAggregator[string](q, nil, d)
	as := ag.seriesOf(SeriesKey[string]{})
	for _, h := range []int64{5, 1, 3, 5, 1, 9, 0, 3} {
		ag.bucket(as, h).Add(float64(h))
	}
	want := []int64{0, 1, 3, 5, 9}
	if len(as.buckets) != len(want) {
		t.Fatalf("%d buckets, want %d", len(as.buckets), len(want))
	}
	for i, h := range want {
		b := &as.buckets[i]
		if !b.Start.Equal(from.Add(time.Duration(h)*time.Hour)) || as.periods[i] != h {
			t.Errorf("bucket %d: period %d starting %v, want period %d", i, as.periods[i], b.Start, h)
		}
		n := 1
		if h == 5 || h == 1 || h == 3 {
			n = 2
		}
		if got := b.Value(temporal.TotalCount); got != any(n) && got != any(int64(n)) {
			t.Errorf("bucket of hour %d holds %v values, want %d", h, got, n)
		}
	}
}

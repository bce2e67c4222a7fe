package histcore

import (
	"cmp"
	"slices"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/ngsild/temporal"
	"github.com/zenne-city/zenne/internal/tsz"
)

// Aggregator aggregates the series of one entity over a between query on
// observedAt without building instances: a chunk whose UTC day lies within
// one period is merged from its summary (the daily rollup tsz keeps in
// every chunk's header) unless distinct values are asked for, rollups left
// by retention are merged by hour or day, and other samples are added one
// by one from their compressed form. Its buckets are exactly those
// temporal.AggregateEntity makes from the instances.
type Aggregator[N cmp.Ordered] struct {
	bk       temporal.Bucketer
	q        *temporal.Query
	distinct bool
	series   map[SeriesKey[N]]*aggSeries
}

// NewAggregator returns the aggregator of q (a between query) into periods
// of d for methods.
func NewAggregator[N cmp.Ordered](q *temporal.Query, methods []temporal.Method, d temporal.Duration) *Aggregator[N] {
	return &Aggregator[N]{
		bk:       temporal.NewBucketer(q.At, q.EndAt, d),
		q:        q,
		distinct: slices.Contains(methods, temporal.DistinctCount),
		series:   map[SeriesKey[N]]*aggSeries{},
	}
}

// aggSeries holds one series' buckets in period order. Chunks and samples
// come in time order for a between query, so a new bucket is almost always
// appended and the bucket used last is usually the one asked for: a year of
// hourly periods is 8,760 buckets, and keeping them in one slice, rather
// than one allocation each in a map, halved the aggregation's time.
type aggSeries struct {
	kind    ngsild.Kind
	buckets []temporal.Bucket
	periods []int64 // the period index of each bucket, ascending
	last    int     // position of the bucket used last, -1 before any
}

func (ag *Aggregator[N]) seriesOf(k SeriesKey[N]) *aggSeries {
	as := ag.series[k]
	if as == nil {
		// Regular series fill most periods of the window: room for all of
		// them up front (up to 16,384, a year and more of hours) saves
		// copying the buckets as the slice grows.
		n := ag.bk.Index(ag.q.EndAt.Add(-time.Nanosecond)) + 1
		n = max(1, min(n, 1<<14))
		as = &aggSeries{kind: ngsild.Property, buckets: make([]temporal.Bucket, 0, n), periods: make([]int64, 0, n), last: -1}
		ag.series[k] = as
	}
	return as
}

// bucket returns the bucket of period i. The pointer is valid until the
// next call.
func (ag *Aggregator[N]) bucket(as *aggSeries, i int64) *temporal.Bucket {
	if as.last >= 0 && as.periods[as.last] == i {
		return &as.buckets[as.last]
	}
	n := len(as.periods)
	p, found := n, false
	if n > 0 && as.periods[n-1] >= i {
		p, found = slices.BinarySearch(as.periods, i)
	}
	if !found {
		as.buckets = slices.Insert(as.buckets, p, *ag.bk.NewBucket(i, ag.distinct))
		as.periods = slices.Insert(as.periods, p, i)
	}
	as.last = p
	return &as.buckets[p]
}

// Whole reports whether a raw chunk of the day (days since the epoch) may
// be aggregated from its summary alone (see Summary): the whole day lies in
// one period and distinct values are not asked for. A store can then skip
// reading its samples.
func (ag *Aggregator[N]) Whole(day int64) bool {
	if ag.distinct {
		return false
	}
	start := time.Unix(0, day*DayNS)
	_, ok := ag.bk.Within(start, start.Add(24*time.Hour))
	return ok
}

// Summary merges the summary of a raw chunk of the day of series k into its
// period and reports true, when Whole(day) and all its samples are
// numbers; otherwise it does nothing and reports false, and the chunk's
// samples must be added (Chunk).
func (ag *Aggregator[N]) Summary(k SeriesKey[N], day int64, sum tsz.Summary) bool {
	if sum.N == 0 || sum.NumN != sum.N || ag.distinct {
		return false
	}
	start := time.Unix(0, day*DayNS)
	i, ok := ag.bk.Within(start, start.Add(24*time.Hour))
	if !ok {
		return false
	}
	acc := temporal.NumericAcc(sum.N, sum.Sum, sum.SumSq, sum.Min, sum.Max)
	ag.bucket(ag.seriesOf(k), i).Merge(&acc)
	return true
}

// Chunk adds one chunk of level of the day (days since the epoch) of series
// k.
func (ag *Aggregator[N]) Chunk(k SeriesKey[N], day int64, level int, data []byte) error {
	if level != LevelRaw {
		return ag.rollups(k, time.Unix(0, day*DayNS), level, data)
	}
	if ag.Whole(day) {
		sum, err := tsz.Summarize(data)
		if err != nil {
			return err
		}
		if ag.Summary(k, day, sum) {
			return nil
		}
	}
	samples, err := tsz.Decode(data, nil)
	if err != nil {
		return err
	}
	return ag.Samples(k, samples)
}

// rollups adds the rollups retention left of a day: each hour's (or the
// day's) to the period of its start. That is exact when periods are whole
// hours (days) and the window starts and ends on them; otherwise the rollup
// counts for the period it starts in, the best that is left.
func (ag *Aggregator[N]) rollups(k SeriesKey[N], start time.Time, level int, data []byte) error {
	h, hourly, err := DecodeLevel(level, data)
	if err != nil {
		return err
	}
	for i := range h {
		r := &h[i]
		if r.N == 0 {
			continue
		}
		t := start
		if hourly {
			t = start.Add(time.Duration(i) * time.Hour)
		}
		if !ag.q.Contains(t) {
			continue
		}
		acc := temporal.NumericAcc(r.N, r.Sum, r.SumSq, r.Min, r.Max)
		ag.bucket(ag.seriesOf(k), ag.bk.Index(t)).Merge(&acc)
	}
	return nil
}

// Samples adds the samples of series k the query's window holds.
func (ag *Aggregator[N]) Samples(k SeriesKey[N], samples []tsz.Sample) error {
	as := ag.seriesOf(k)
	for i := range samples {
		if err := ag.sample(as, &samples[i]); err != nil {
			return err
		}
	}
	return nil
}

// sample adds one sample of series as if the query's window holds it.
func (ag *Aggregator[N]) sample(as *aggSeries, smp *tsz.Sample) error {
	t := time.Unix(0, smp.T).UTC()
	if !ag.q.Contains(t) {
		return nil
	}
	b := ag.bucket(as, ag.bk.Index(t))
	if smp.Num {
		b.Add(smp.V)
		return nil
	}
	a, err := AttrOf(smp)
	if err != nil {
		return err
	}
	as.kind = a.Kind
	b.AddAttribute(a)
	return nil
}

// Result is the series in the order AggregateEntity gives: by name, the
// default instance first, then by datasetId; buckets in time order. name
// gives a series' expanded attribute name.
func (ag *Aggregator[N]) Result(name func(N) string) []temporal.Series {
	out := make([]temporal.Series, 0, len(ag.series))
	for k, as := range ag.series {
		if len(as.buckets) == 0 {
			continue // none of its samples was in the window
		}
		out = append(out, temporal.Series{Name: name(k.Name), DatasetID: k.Dataset, Kind: as.kind, Buckets: as.buckets})
	}
	slices.SortFunc(out, func(a, b temporal.Series) int {
		if c := cmp.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return cmp.Compare(a.DatasetID, b.DatasetID)
	})
	return out
}

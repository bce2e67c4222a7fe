package sqlite

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/ngsild/temporal"
	"github.com/zenne-city/zenne/internal/store"
	"github.com/zenne-city/zenne/internal/tsz"
)

const dayNS = int64(24 * time.Hour)

// AggregateHistory aggregates an entity's history (see store.History). For
// a between query on observedAt it never builds instances: a chunk whose UTC
// day lies within one period is merged from its summary (the daily rollup
// tsz keeps in every chunk's header) unless distinct values are asked for,
// and other samples are added one by one from their compressed form. Any
// other query aggregates EntityHistory's instances.
func (s *Store) AggregateHistory(ctx context.Context, tenant, id string, attrs []string, q *temporal.Query, methods []temporal.Method, d temporal.Duration) (*temporal.Entity, []temporal.Series, error) {
	if q == nil || q.Rel != temporal.RelBetween || !q.ByObservedAt() || q.LastN > 0 {
		h, err := s.EntityHistory(ctx, tenant, id, attrs, q)
		if err != nil {
			return nil, nil, err
		}
		series := temporal.AggregateEntity(h, q, methods, d)
		h.Attrs = nil
		return h, series, nil
	}
	tid, want, err := s.historyScope(tenant, attrs)
	if err != nil {
		return nil, nil, err
	}
	ag := &aggregator{
		bk:       temporal.NewBucketer(q.At, q.EndAt, d),
		q:        q,
		distinct: slices.Contains(methods, temporal.DistinctCount),
		series:   map[seriesKey]*aggSeries{},
	}
	seqs, _ := s.headSeqs(tid, []string{id}) // before the read transaction: see headIndex
	tx, err := s.rdb.BeginTx(ctx, nil)
	if err != nil {
		return nil, nil, err
	}
	defer tx.Rollback() // it only read
	r := &histReader{s: s, tx: tx, q: q, want: want, series: map[seriesKey][]tsz.Sample{}}
	if err := readHeads(ctx, tx, s.rs.headDocs, seqs, func(_ int64, doc []byte) error { return r.addHead(doc) }); err != nil {
		return nil, nil, fmt.Errorf("aggregate history of %s: %w", id, err)
	}
	sers, err := s.loadSeries(ctx, tx, tid, []string{id}, []*histReader{r})
	if err != nil {
		return nil, nil, fmt.Errorf("aggregate history of %s: %w", id, err)
	}
	if !r.found {
		return nil, nil, store.ErrNotFound
	}
	lo, hi := r.days()
	for _, x := range sers {
		if err := r.scanSeries(ctx, x.sid, x.key, lo, hi, func(day int64, level int, data []byte) error {
			return ag.chunk(x.key, day, level, data)
		}); err != nil {
			return nil, nil, fmt.Errorf("aggregate history of %s: %w", id, err)
		}
	}
	for k, samples := range r.series { // the head's samples
		as := ag.seriesOf(k)
		for i := range samples {
			if err := ag.sample(as, &samples[i]); err != nil {
				return nil, nil, err
			}
		}
	}
	return &temporal.Entity{ID: id, Types: r.typeNames()}, ag.result(s), nil
}

// aggregator accumulates the buckets of every series of one entity.
type aggregator struct {
	bk       temporal.Bucketer
	q        *temporal.Query
	distinct bool
	series   map[seriesKey]*aggSeries
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

func (ag *aggregator) seriesOf(k seriesKey) *aggSeries {
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
func (ag *aggregator) bucket(as *aggSeries, i int64) *temporal.Bucket {
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

// chunk adds one chunk of the day (days since the epoch) of series k.
func (ag *aggregator) chunk(k seriesKey, day int64, level int, data []byte) error {
	start := time.Unix(0, day*dayNS)
	if level != levelRaw {
		return ag.rollups(k, start, level, data)
	}
	if i, ok := ag.bk.Within(start, start.Add(24*time.Hour)); ok && !ag.distinct {
		sum, err := tsz.Summarize(data)
		if err != nil {
			return err
		}
		if sum.N > 0 && sum.NumN == sum.N {
			acc := temporal.NumericAcc(sum.N, sum.Sum, sum.SumSq, sum.Min, sum.Max)
			ag.bucket(ag.seriesOf(k), i).Merge(&acc)
			return nil
		}
	}
	samples, err := tsz.Decode(data, nil)
	if err != nil {
		return err
	}
	as := ag.seriesOf(k)
	for i := range samples {
		if err := ag.sample(as, &samples[i]); err != nil {
			return err
		}
	}
	return nil
}

// rollups adds the rollups retention left of a day: each hour's (or the
// day's) to the period of its start. That is exact when periods are whole
// hours (days) and the window starts and ends on them; otherwise the rollup
// counts for the period it starts in, the best that is left.
func (ag *aggregator) rollups(k seriesKey, start time.Time, level int, data []byte) error {
	h, hourly, err := decodeLevel(level, data)
	if err != nil {
		return err
	}
	for i := range h {
		r := &h[i]
		if r.n == 0 {
			continue
		}
		t := start
		if hourly {
			t = start.Add(time.Duration(i) * time.Hour)
		}
		if !ag.q.Contains(t) {
			continue
		}
		acc := temporal.NumericAcc(r.n, r.sum, r.sumsq, r.min, r.max)
		ag.bucket(ag.seriesOf(k), ag.bk.Index(t)).Merge(&acc)
	}
	return nil
}

// sample adds one sample of series as if the query's window holds it.
func (ag *aggregator) sample(as *aggSeries, smp *tsz.Sample) error {
	t := time.Unix(0, smp.T).UTC()
	if !ag.q.Contains(t) {
		return nil
	}
	b := ag.bucket(as, ag.bk.Index(t))
	if smp.Num {
		b.Add(smp.V)
		return nil
	}
	a, err := attrOf(smp)
	if err != nil {
		return err
	}
	as.kind = a.Kind
	b.AddAttribute(a)
	return nil
}

// result is the series in the order AggregateEntity gives: by name, the
// default instance first, then by datasetId; buckets in time order.
func (ag *aggregator) result(s *Store) []temporal.Series {
	out := make([]temporal.Series, 0, len(ag.series))
	for k, as := range ag.series {
		if len(as.buckets) == 0 {
			continue // none of its samples was in the window
		}
		out = append(out, temporal.Series{Name: s.nameByID(k.name), DatasetID: k.dataset, Kind: as.kind, Buckets: as.buckets})
	}
	slices.SortFunc(out, func(a, b temporal.Series) int {
		if c := cmp.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return cmp.Compare(a.DatasetID, b.DatasetID)
	})
	return out
}

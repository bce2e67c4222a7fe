package sqlite

import (
	"context"
	"fmt"

	"github.com/zenne-city/zenne/internal/ngsild/temporal"
	"github.com/zenne-city/zenne/internal/store"
	"github.com/zenne-city/zenne/internal/store/histcore"
	"github.com/zenne-city/zenne/internal/tsz"
)

// AggregateHistories aggregates each entity's history on its own (see
// store.AggregateEach).
func (s *Store) AggregateHistories(ctx context.Context, tenant string, ids []string, attrs []string, q *temporal.Query, methods []temporal.Method, d temporal.Duration) ([]*store.AggregatedHistory, error) {
	return store.AggregateEach(ctx, ids, func(ctx context.Context, id string) (*temporal.Entity, []temporal.Series, error) {
		return s.AggregateHistory(ctx, tenant, id, attrs, q, methods, d)
	})
}

// AggregateHistory aggregates an entity's history (see store.History). For
// a between query on observedAt it never builds instances (see
// histcore.Aggregator: a chunk whose UTC day lies within one period is
// merged from its summary unless distinct values are asked for, and other
// samples are added one by one from their compressed form). Any other query
// aggregates EntityHistory's instances.
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
	ag := histcore.NewAggregator[int64](q, methods, d)
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
			return ag.Chunk(x.key, day, level, data)
		}); err != nil {
			return nil, nil, fmt.Errorf("aggregate history of %s: %w", id, err)
		}
	}
	for k, samples := range r.series { // the head's samples
		if err := ag.Samples(k, samples); err != nil {
			return nil, nil, err
		}
	}
	return &temporal.Entity{ID: id, Types: r.typeNames()}, ag.Result(s.nameByID), nil
}

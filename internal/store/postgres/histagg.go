package postgres

import (
	"context"
	"fmt"

	"github.com/zenne-city/zenne/internal/ngsild/temporal"
	"github.com/zenne-city/zenne/internal/store"
	"github.com/zenne-city/zenne/internal/store/histcore"
)

// maxWholeDays bounds the list of days sent with an aggregation (a window
// of a thousand years and more reads every chunk's data instead).
const maxWholeDays = 1 << 19

// AggregateHistory aggregates an entity's history (see store.History). For
// a between query on observedAt it never builds instances
// (histcore.Aggregator): a day that lies within one period is merged from
// the rollup its chunk row carries, without reading its samples, unless
// distinct values are asked for; other samples are added one by one from
// their compressed form. Any other query aggregates EntityHistory's
// instances.
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
	if err := s.checkOpen(); err != nil {
		return nil, nil, err
	}
	tid, err := s.tenantID(ctx, s.pool, tenant)
	if err != nil {
		return nil, nil, s.wrapClosed(err)
	}
	ag := histcore.NewAggregator[string](q, methods, d)
	lo, hi := dayRange(q)
	var whole []int32
	if int64(hi)-int64(lo) < maxWholeDays {
		for day := int64(lo); day <= int64(hi); day++ {
			if ag.Whole(day) {
				whole = append(whole, int32(day))
			}
		}
	}
	r := newHistReader(q, attrs)
	// One statement: one snapshot.
	sers, chunks, err := readRows(ctx, s.pool, []*histReader{r}, sqlReadAgg, tid, []string{id}, namesArg(attrs), lo, hi, whole)
	if err != nil {
		return nil, nil, s.wrapClosed(fmt.Errorf("postgres: aggregating the history of %s: %w", id, err))
	}
	if !r.found {
		return nil, nil, store.ErrNotFound
	}
	for sid, cs := range chunks {
		k := sers[sid].key
		sortChunks(cs) // sums in the order the embedded store adds them
		for _, c := range cs {
			if c.data == nil {
				if !ag.Summary(k, c.day, c.sum) {
					return nil, nil, fmt.Errorf("postgres: aggregating the history of %s: the summary of day %d of %s does not stand for it", id, c.day, k.Name)
				}
				continue
			}
			if err := ag.Chunk(k, c.day, int(c.level), c.data); err != nil {
				return nil, nil, fmt.Errorf("postgres: aggregating the history of %s: chunk of %s day %d: %w", id, k.Name, c.day, err)
			}
		}
	}
	for k, samples := range r.series { // the head's samples
		if err := ag.Samples(k, samples); err != nil {
			return nil, nil, fmt.Errorf("postgres: aggregating the history of %s: %w", id, err)
		}
	}
	return &temporal.Entity{ID: id, Types: r.types}, ag.Result(sameName), nil
}

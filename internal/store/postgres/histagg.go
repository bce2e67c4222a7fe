package postgres

import (
	"context"
	"fmt"
	"runtime"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/zenne-city/zenne/internal/ngsild/temporal"
	"github.com/zenne-city/zenne/internal/store"
	"github.com/zenne-city/zenne/internal/store/histcore"
)

// maxWholeDays bounds the days an aggregation looks at to take from the
// summary columns (a window of a thousand years and more reads every
// chunk's data instead).
const maxWholeDays = 1 << 19

// maxAggGroup is the most entities one aggregation statement reads: a page
// is read by GOMAXPROCS statements at a time, each planned once for its
// group instead of once per entity.
const maxAggGroup = 256

// AggregateHistory aggregates an entity's history (AggregateHistories for
// one entity).
func (s *Store) AggregateHistory(ctx context.Context, tenant, id string, attrs []string, q *temporal.Query, methods []temporal.Method, d temporal.Duration) (*temporal.Entity, []temporal.Series, error) {
	hs, err := s.AggregateHistories(ctx, tenant, []string{id}, attrs, q, methods, d)
	if err != nil {
		return nil, nil, err
	}
	if hs[0] == nil {
		return nil, nil, store.ErrNotFound
	}
	return hs[0].Entity, hs[0].Series, nil
}

// AggregateHistories aggregates a page of entities' history (see
// store.History). For a between query on observedAt it never builds
// instances (histcore.Aggregator): a day that lies within one period is
// merged from the rollup its chunk row carries, without reading its
// samples, unless distinct values are asked for; other samples are added
// one by one from their compressed form. The page is read in groups of
// entities, one statement each, several at a time. Any other query
// aggregates EntityHistories' instances.
func (s *Store) AggregateHistories(ctx context.Context, tenant string, ids []string, attrs []string, q *temporal.Query, methods []temporal.Method, d temporal.Duration) ([]*store.AggregatedHistory, error) {
	out := make([]*store.AggregatedHistory, len(ids))
	if q == nil || q.Rel != temporal.RelBetween || !q.ByObservedAt() || q.LastN > 0 {
		hs, err := s.EntityHistories(ctx, tenant, ids, attrs, q)
		if err != nil {
			return nil, err
		}
		for i, h := range hs {
			if h != nil {
				out[i] = &store.AggregatedHistory{Entity: h, Series: temporal.AggregateEntity(h, q, methods, d)}
			}
		}
		for _, h := range hs {
			if h != nil {
				h.Attrs = nil // after every aggregation: an id asked twice has one entity
			}
		}
		return out, nil
	}
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	tid, err := s.tenantID(ctx, s.pool, tenant)
	if err != nil {
		return nil, s.wrapClosed(err)
	}
	uniq, pos := distinctIDs(ids)
	// Whether some days can be taken whole from their summaries is the same
	// for every entity (Whole only reads).
	whole := histcore.NewAggregator[string](q, methods, d)
	if lo, hi := dayRange(q); !anyWhole(whole, lo, hi) {
		whole = nil
	}
	results := make([]*store.AggregatedHistory, len(uniq))
	procs := runtime.GOMAXPROCS(0)
	size := min(maxAggGroup, (len(uniq)+procs-1)/procs)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(procs)
	for start := 0; start < len(uniq); start += size {
		end := min(start+size, len(uniq))
		g.Go(func() error {
			return s.aggregateGroup(gctx, tid, uniq[start:end], attrs, q, methods, d, whole, results[start:end])
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for i, id := range ids {
		out[i] = results[pos[id]]
	}
	return out, nil
}

// aggregateGroup aggregates the history of distinct ids into out (nil for
// an entity without history). When some days can be taken whole from their
// summaries (whole not nil), it reads the chunks' summaries, then the data of the chunks
// that need their samples, in one snapshot; else the chunks with their data
// in one statement.
func (s *Store) aggregateGroup(ctx context.Context, tid int64, ids []string, attrs []string, q *temporal.Query, methods []temporal.Method, d temporal.Duration, whole *histcore.Aggregator[string], out []*store.AggregatedHistory) error {
	readers := make([]*histReader, len(ids))
	for i := range readers {
		readers[i] = newHistReader(q, attrs)
	}
	lo, hi := dayRange(q)
	var sers map[int64]seriesRef
	var chunks map[int64][]chunk
	var err error
	if whole != nil {
		err = s.readSnapshot(ctx, func(tx pgx.Tx) error {
			if sers, chunks, err = readRows(ctx, tx, readers, sqlReadSums, tid, ids, namesArg(attrs), lo, hi); err != nil {
				return err
			}
			return readChunkData(ctx, tx, chunks, func(c *chunk) bool {
				return c.level != 0 || c.sum.N == 0 || c.sum.NumN != c.sum.N || !whole.Whole(c.day)
			})
		})
	} else {
		sers, chunks, err = readRows(ctx, s.pool, readers, sqlReadAgg, tid, ids, namesArg(attrs), lo, hi)
	}
	if err != nil {
		return s.wrapClosed(fmt.Errorf("postgres: aggregating history: %w", err))
	}
	ags := make([]*histcore.Aggregator[string], len(ids))
	for i, r := range readers {
		if r.found {
			ags[i] = histcore.NewAggregator[string](q, methods, d)
		}
	}
	for sid, cs := range chunks {
		x := sers[sid]
		ag, id := ags[x.i], ids[x.i]
		sortChunks(cs) // sums in the order the embedded store adds them
		for _, c := range cs {
			if c.data == nil {
				if !ag.Summary(x.key, c.day, c.sum) {
					return fmt.Errorf("postgres: aggregating the history of %s: the summary of day %d of %s does not stand for it", id, c.day, x.key.Name)
				}
				continue
			}
			if err := ag.Chunk(x.key, c.day, int(c.level), c.data); err != nil {
				return fmt.Errorf("postgres: aggregating the history of %s: chunk of %s day %d: %w", id, x.key.Name, c.day, err)
			}
		}
	}
	for i, r := range readers {
		if !r.found {
			continue
		}
		for k, samples := range r.series { // the head's samples
			if err := ags[i].Samples(k, samples); err != nil {
				return fmt.Errorf("postgres: aggregating the history of %s: %w", ids[i], err)
			}
		}
		out[i] = &store.AggregatedHistory{Entity: &temporal.Entity{ID: ids[i], Types: r.types}, Series: ags[i].Result(sameName)}
	}
	return nil
}

// anyWhole reports whether an aggregation takes a day of [lo, hi] whole.
func anyWhole(ag *histcore.Aggregator[string], lo, hi int32) bool {
	if int64(hi)-int64(lo) >= maxWholeDays {
		return false
	}
	for day := int64(lo); day <= int64(hi); day++ {
		if ag.Whole(day) {
			return true
		}
	}
	return false
}

// readChunkData reads the data of the chunks that need it, by key.
func readChunkData(ctx context.Context, tx pgx.Tx, chunks map[int64][]chunk, need func(*chunk) bool) error {
	var sids []int64
	var days, parts []int32
	var refs []*chunk
	for sid, cs := range chunks {
		for i := range cs {
			if c := &cs[i]; need(c) {
				sids, days, parts = append(sids, sid), append(days, int32(c.day)), append(parts, c.part)
				refs = append(refs, c)
			}
		}
	}
	if len(refs) == 0 {
		return nil
	}
	rows, err := tx.Query(ctx, sqlChunkData, sids, days, parts)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var ord int64
		var data []byte
		if err := rows.Scan(&ord, &data); err != nil {
			return err
		}
		refs[ord-1].data = data
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, c := range refs {
		if c.data == nil {
			return fmt.Errorf("chunk of day %d part %d: gone from the snapshot that listed it", c.day, c.part) // cannot happen
		}
	}
	return nil
}

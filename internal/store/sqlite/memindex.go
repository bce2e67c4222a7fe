package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"strconv"

	"golang.org/x/sync/errgroup"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store"
	"github.com/zenne-city/zenne/internal/store/memindex"
)

// The store answers queries from its in-memory index (package memindex):
// SQLite keeps no secondary index of its own, so a write costs one row. The
// writer updates the index after each commit, before answering, so a query
// started after a write was acknowledged sees it. It is built from the
// entities table when the store opens, in the background; queries wait for
// it.

// buildMemIndex reads every stored entity into the index: one goroutine per
// processor scans a range of eids and projects each document. Entities the
// writer sets meanwhile are skipped (its state is newer), so the ranges may
// see different snapshots.
func (s *Store) buildMemIndex(ctx context.Context) error {
	var last int64
	if err := s.rdb.QueryRowContext(ctx, `SELECT COALESCE(MAX(eid), 0) FROM entities`).Scan(&last); err != nil {
		return fmt.Errorf("build index: %w", err)
	}
	n := int64(runtime.GOMAXPROCS(0))
	step := last/n + 1
	g, gctx := errgroup.WithContext(ctx)
	for i := range n {
		g.Go(func() error { return s.buildRange(gctx, i*step, (i+1)*step) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	s.mem.Finish()
	return nil
}

// buildRange indexes the entities with lo < eid <= hi.
func (s *Store) buildRange(ctx context.Context, lo, hi int64) error {
	rows, err := s.rdb.QueryContext(ctx, `SELECT eid, tid, ver, doc FROM entities WHERE eid > ? AND eid <= ? ORDER BY eid`, lo, hi)
	if err != nil {
		return fmt.Errorf("build index: %w", err)
	}
	defer rows.Close()
	const batchSize = 512
	names := s.mem.Names()
	eids := make([]int64, 0, batchSize)
	recs := make([]*memindex.Rec, 0, batchSize)
	for rows.Next() {
		var eid, tid, ver int64
		var doc sql.RawBytes
		if err := rows.Scan(&eid, &tid, &ver, &doc); err != nil {
			return fmt.Errorf("build index: %w", err)
		}
		r, err := names.Project(doc, tid, ver)
		if err != nil {
			return fmt.Errorf("build index: entity %d: %w", eid, err)
		}
		eids, recs = append(eids, eid), append(recs, r)
		if len(eids) == batchSize {
			s.mem.Load(eids, recs)
			eids, recs = eids[:0], recs[:0]
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("build index: %w", err)
	}
	s.mem.Load(eids, recs)
	return nil
}

// memSource is what the index reads from SQLite (memindex.Source).
type memSource struct{ s *Store }

// EIDs maps the entity ids that exist in the tenant to their eids.
func (m memSource) EIDs(ctx context.Context, tid int64, ids []string) (map[string]int64, error) {
	eids := make(map[string]int64, len(ids))
	for _, id := range ids {
		var eid int64
		err := m.s.rs.idLookup.QueryRowContext(ctx, tid, id).Scan(&eid)
		switch {
		case err == nil:
			eids[id] = eid
		case !errors.Is(err, sql.ErrNoRows):
			return nil, fmt.Errorf("query: %w", err)
		}
	}
	return eids, nil
}

// Load reads the hits' entities from the cache when it holds the version
// judged, the others with one statement.
func (m memSource) Load(ctx context.Context, _ int64, hits []memindex.Hit, found func(eid int64, e *ngsild.Entity)) error {
	s := m.s
	ids := []byte{'['}
	for _, h := range hits {
		if c := s.cache.get(h.EID, h.Ver); c != nil {
			found(h.EID, c.ent)
			continue
		}
		if len(ids) > 1 {
			ids = append(ids, ',')
		}
		ids = strconv.AppendInt(ids, h.EID, 10)
	}
	if len(ids) == 1 {
		return nil
	}
	rows, err := s.rs.loadMany.QueryContext(ctx, string(append(ids, ']')))
	if err != nil {
		return fmt.Errorf("query load: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var eid, ver int64
		var doc []byte
		if err := rows.Scan(&eid, &ver, &doc); err != nil {
			return fmt.Errorf("query load: %w", err)
		}
		e, err := s.entity(eid, ver, doc)
		if err != nil {
			return err
		}
		found(eid, e)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("query load: %w", err)
	}
	return nil
}

var _ memindex.Source = memSource{}

// memQuery answers a query from the index.
func (s *Store) memQuery(ctx context.Context, tid int64, q *store.Query, limit, offset int) (*store.QueryResult, error) {
	return s.mem.Query(ctx, tid, q, limit, offset, memSource{s})
}

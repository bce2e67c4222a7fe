package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"github.com/zenne-city/zenne/internal/store/codec"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store"
)

// readStmts are prepared once on the reader pool; database/sql keeps one
// prepared copy per connection.
type readStmts struct {
	get, loadMany, idLookup *sql.Stmt
	// history (histread.go)
	histSeries, newestChunks, chunksAsc, chunksDesc, headDocs *sql.Stmt
}

func (s *Store) prepareReads(ctx context.Context) error {
	rs := &s.rs
	list := []struct {
		p   **sql.Stmt
		sql string
	}{
		{&rs.get, `SELECT eid, ver, doc FROM entities WHERE tid = ? AND id = ?`},
		{&rs.loadMany, `SELECT e.eid, e.ver, e.doc FROM json_each(?) AS j JOIN entities AS e ON e.eid = j.value`},
		{&rs.idLookup, `SELECT eid FROM entities WHERE tid = ? AND id = ?`},
		// The series of a JSON array of entity ids (j.key: the index); CROSS
		// JOIN keeps json_each outside, or SQLite scans the tenant's entities.
		{&rs.histSeries, `SELECT j.key, e.types, s.sid, s.name, s.dataset FROM json_each(?) AS j
			CROSS JOIN h_entities AS e ON e.tid = ? AND e.id = j.value LEFT JOIN h_series AS s ON s.hid = e.hid`},
		// The newest day in [?, ?] of each of a JSON array of series.
		{&rs.newestChunks, `SELECT c.sid, c.day, c.level, c.data FROM json_each(?) AS j JOIN h_chunks AS c ON c.sid = j.value
			AND c.day = (SELECT max(day) FROM h_chunks WHERE sid = j.value AND day BETWEEN ? AND ?) ORDER BY c.sid, c.part`},
		{&rs.chunksAsc, `SELECT day, level, data FROM h_chunks WHERE sid = ? AND day BETWEEN ? AND ? ORDER BY day, part`},
		{&rs.chunksDesc, `SELECT day, level, data FROM h_chunks WHERE sid = ? AND day BETWEEN ? AND ? ORDER BY day DESC, part`},
		{&rs.headDocs, `SELECT seq, doc FROM h_head WHERE seq IN (SELECT value FROM json_each(?)) ORDER BY seq`},
	}
	for _, p := range list {
		st, err := s.rdb.PrepareContext(ctx, p.sql)
		if err != nil {
			return fmt.Errorf("prepare %q: %w", p.sql, err)
		}
		*p.p = st
		s.rstmts = append(s.rstmts, st)
	}
	return nil
}

// entity returns the shared decoded value of a stored row (from the cache
// when the version matches). Callers must not modify it.
func (s *Store) entity(eid, ver int64, doc []byte) (*ngsild.Entity, error) {
	if c := s.cache.get(eid, ver); c != nil {
		return c.ent, nil
	}
	e, err := codec.DecodeEntity(doc)
	if err != nil {
		return nil, fmt.Errorf("decode entity %d: %w", eid, err)
	}
	s.cache.put(eid, &cached{ver: ver, ent: e})
	return e, nil
}

// Get returns the entity, shared with the cache: callers must not modify it.
func (s *Store) Get(ctx context.Context, tenant, id string) (*ngsild.Entity, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	tid, ok := s.tenantID(tenant)
	if !ok {
		return nil, store.ErrNoTenant
	}
	var eid, ver int64
	var doc []byte
	err := s.rs.get.QueryRowContext(ctx, tid, id).Scan(&eid, &ver, &doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", id, err)
	}
	return s.entity(eid, ver, doc)
}

// Query answers from the in-memory index (package memindex), waiting for it to be
// built after the store opened.
func (s *Store) Query(ctx context.Context, tenant string, q *store.Query) (*store.QueryResult, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	if q == nil {
		q = &store.Query{}
	}
	tid, ok := s.tenantID(tenant)
	if !ok {
		return nil, store.ErrNoTenant
	}
	limit, offset := max(q.Limit, 0), max(q.Offset, 0)
	if limit == 0 && !q.Count {
		return &store.QueryResult{Count: -1, Entities: []*ngsild.Entity{}}, nil
	}
	if err := s.WaitIndex(ctx); err != nil {
		return nil, fmt.Errorf("query index: %w", err)
	}
	return s.memQuery(ctx, tid, q, limit, offset)
}

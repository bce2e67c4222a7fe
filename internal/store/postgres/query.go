package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store"
	"github.com/zenne-city/zenne/internal/store/codec"
)

// scanDoc scans the current row into dst and its last column, a bytea,
// into *doc, without copying it when the server sent it in binary: *doc is
// then valid until the next row, long enough to decode it (decoding copies).
func scanDoc(rows pgx.Rows, doc *[]byte, dst ...any) error {
	fds := rows.FieldDescriptions()
	last := len(fds) - 1
	if fds[last].Format != pgx.BinaryFormatCode {
		return rows.Scan(append(dst, doc)...)
	}
	if err := rows.Scan(append(dst, nil)...); err != nil {
		return err
	}
	*doc = rows.RawValues()[last]
	return nil
}

// Get returns the entity, decoded for this call (callers must still not
// modify it: see store.Op).
func (s *Store) Get(ctx context.Context, tenant, id string) (*ngsild.Entity, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	if !storable(id) {
		if _, err := s.tenantID(ctx, s.pool, tenant); err != nil {
			return nil, err
		}
		return nil, store.ErrNotFound
	}
	// One round trip tells a missing tenant from a missing entity.
	var doc []byte
	err := s.pool.QueryRow(ctx, `SELECT e.doc FROM tenants AS t LEFT JOIN entities AS e ON e.tid = t.tid AND e.id = $2
		WHERE t.name = $1`, tenant, id).Scan(&doc)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, store.ErrNoTenant
	case err != nil:
		return nil, fmt.Errorf("postgres: get %s: %w", id, err)
	case doc == nil:
		return nil, store.ErrNotFound
	}
	e, err := codec.DecodeEntity(doc)
	if err != nil {
		return nil, fmt.Errorf("postgres: decode entity %s: %w", id, err)
	}
	return e, nil
}

// storableIDs is ids without those PostgreSQL text cannot hold (no entity
// has them, and they would fail the statement).
func storableIDs(ids []string) []string {
	return slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return !storable(id) })
}

// where is the SQL condition selecting a query's candidates among the
// entities of a tenant (alias e), with its arguments.
type where struct {
	conds []string
	args  []any
	// exact: the condition is the query (no id pattern, q, scopeQ,
	// geo-query or type expression beyond a list of types), so SQL can
	// count and page; otherwise Go decides each candidate.
	exact bool
}

func (w *where) arg(v any) string {
	w.args = append(w.args, v)
	return "$" + strconv.Itoa(len(w.args))
}

func (w *where) sql() string { return strings.Join(w.conds, " AND ") }

// candidates builds the condition for q in tenant tid: by ids, types (a
// plain list: the GIN index of types), attribute names (that of attrs),
// selectors, and the geo-query's property and box (entity_geo's GiST
// index).
func (s *Store) candidates(tid int64, q *store.Query) *where {
	w := &where{exact: true}
	w.conds = append(w.conds, "e.tid = "+w.arg(tid))
	if len(q.IDs) > 0 {
		// An id text cannot hold names no entity (and would fail the statement).
		w.conds = append(w.conds, "e.id = ANY("+w.arg(storableIDs(q.IDs))+"::text[])")
	}
	if q.IDPattern != nil {
		w.exact = false // Go's regexp syntax is not PostgreSQL's
	}
	var types []string // q's list of types
	if q.Type != nil {
		if types = q.Type.AnyOf(); types != nil {
			w.conds = append(w.conds, "e.types && "+w.arg(types)+"::text[]")
		} else {
			w.exact = false
		}
	}
	if len(q.Attrs) > 0 {
		w.conds = append(w.conds, "e.attrs && "+w.arg(q.Attrs)+"::text[]")
	}
	if len(q.Selectors) > 0 {
		var alts []string
		all := false // a selector any entity may satisfy
		mark := len(w.args)
		for _, sel := range q.Selectors {
			var parts []string
			switch {
			case sel.ID != "" && !storable(sel.ID):
				parts = append(parts, "false")
			case sel.ID != "":
				parts = append(parts, "e.id = "+w.arg(sel.ID))
			}
			if sel.IDPattern != nil {
				w.exact = false
			}
			if sel.Type != nil {
				if types := sel.Type.AnyOf(); types != nil {
					parts = append(parts, "e.types && "+w.arg(types)+"::text[]")
				} else {
					w.exact = false
				}
			}
			if len(parts) == 0 {
				all = true
			}
			alts = append(alts, "("+strings.Join(parts, " AND ")+")")
		}
		if all {
			w.args = w.args[:mark] // no condition: drop its arguments
		} else {
			w.conds = append(w.conds, "("+strings.Join(alts, " OR ")+")")
		}
	}
	if q.Q != nil || q.ScopeQ != nil {
		w.exact = false
	}
	if q.Geo != nil {
		w.exact = false
		prop := q.Geo.Property
		if prop == "" {
			prop = ngsild.IRILocation
		}
		propArg := w.arg(prop)
		c := "EXISTS (SELECT 1 FROM entity_geo AS g WHERE g.tid = e.tid AND g.id = e.id AND g.name = " + propArg
		// Before the join, only these types' candidates. The index answers
		// "tkey = $n" (type and name), not "= ANY" (GiST takes no arrays):
		// one type, the usual case, is asked that way.
		switch len(types) {
		case 0:
		case 1:
			typeArg := w.arg(types[0])
			c += " AND g.type = " + typeArg + " AND g.tkey = " + tkeySQL(typeArg+"::text", propArg+"::text")
		default:
			c += " AND g.type = ANY(" + w.arg(types) + "::text[])"
		}
		if b, ok := q.Geo.Bound(); ok {
			n := len(w.args) + 1
			w.args = append(w.args, b.Min[0], b.Min[1], b.Max[0], b.Max[1])
			c += " AND " + boxSQL(s.geo, n)
		}
		w.conds = append(w.conds, c+")")
	}
	return w
}

// Query selects candidates with SQL, in creation order, and decides them
// with q.Match.
func (s *Store) Query(ctx context.Context, tenant string, q *store.Query) (*store.QueryResult, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	if q == nil {
		q = &store.Query{}
	}
	tid, err := s.tenantID(ctx, s.pool, tenant)
	if err != nil {
		return nil, err
	}
	limit, offset := max(q.Limit, 0), max(q.Offset, 0)
	res := &store.QueryResult{Count: -1, Entities: []*ngsild.Entity{}}
	if limit == 0 && !q.Count {
		return res, nil
	}
	if res, ok, err := s.indexQuery(ctx, tid, q, limit, offset); ok {
		return res, err
	}
	w := s.candidates(tid, q)
	switch {
	case w.exact:
		err = s.exactQuery(ctx, q, w, limit, offset, res)
	case q.Count:
		err = s.countingQuery(ctx, q, w, limit, offset, res)
	default:
		err = s.pagingQuery(ctx, q, w, limit, offset, res)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: query: %w", err)
	}
	return res, nil
}

// exactQuery answers a query SQL decides: the count and the page in one
// round trip. Match still checks the page.
func (s *Store) exactQuery(ctx context.Context, q *store.Query, w *where, limit, offset int, res *store.QueryResult) error {
	b := &pgx.Batch{}
	if q.Count {
		b.Queue(`SELECT count(*) FROM entities AS e WHERE `+w.sql(), w.args...)
	}
	if limit > 0 {
		args := append(w.args[:len(w.args):len(w.args)], limit, offset)
		b.Queue(`SELECT e.doc FROM entities AS e WHERE `+w.sql()+
			` ORDER BY e.eid LIMIT $`+strconv.Itoa(len(args)-1)+` OFFSET $`+strconv.Itoa(len(args)), args...)
	}
	br := s.pool.SendBatch(ctx, b)
	defer br.Close()
	if q.Count {
		if err := br.QueryRow().Scan(&res.Count); err != nil {
			return err
		}
	}
	if limit > 0 {
		rows, err := br.Query()
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var doc []byte
			if err := scanDoc(rows, &doc); err != nil {
				return err
			}
			e, err := codec.DecodeEntity(doc)
			if err != nil {
				return fmt.Errorf("decode entity: %w", err)
			}
			if q.Match(e) {
				res.Entities = append(res.Entities, e)
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
	}
	return br.Close()
}

// countingQuery decides every candidate, read with one statement (one
// snapshot), counting the matches and keeping the page.
func (s *Store) countingQuery(ctx context.Context, q *store.Query, w *where, limit, offset int, res *store.QueryResult) error {
	rows, err := s.pool.Query(ctx, `SELECT e.id, e.doc FROM entities AS e WHERE `+w.sql()+` ORDER BY e.eid`, w.args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	matched := 0
	for rows.Next() {
		e, err := decideRow(rows, q)
		if err != nil {
			return err
		}
		if e == nil {
			continue
		}
		if matched >= offset && len(res.Entities) < limit {
			res.Entities = append(res.Entities, e)
		}
		matched++
	}
	if err := rows.Err(); err != nil {
		return err
	}
	res.Count = matched
	return nil
}

// Chunks of candidates a paging query reads: the first twice the page and
// its offset (at least firstChunk), then four times more each time, up to
// maxChunk, so that a query whose matches are rare reads few chunks, and
// one whose candidates mostly match reads little more than it returns.
const (
	firstChunk = 64
	maxChunk   = 16384
)

// pagingQuery decides candidates in creation order, chunk after chunk,
// until it has the page. Chunks are separate statements: an entity deleted
// and created again meanwhile has a new eid and could come back, so a
// match is taken once.
func (s *Store) pagingQuery(ctx context.Context, q *store.Query, w *where, limit, offset int, res *store.QueryResult) error {
	need := offset + limit
	if need < 0 {
		need = math.MaxInt // overflowed: all of them
	}
	chunk := maxChunk
	if need < maxChunk/2 {
		chunk = max(firstChunk, 2*need)
	}
	args := append(w.args[:len(w.args):len(w.args)], int64(0), 0)
	sql := `SELECT e.eid, e.id, e.doc FROM entities AS e WHERE ` + w.sql() +
		` AND e.eid > $` + strconv.Itoa(len(args)-1) + ` ORDER BY e.eid LIMIT $` + strconv.Itoa(len(args))
	seen := map[string]bool{}
	matched := 0
	for {
		args[len(args)-1] = chunk
		n, err := func() (int, error) {
			rows, err := s.pool.Query(ctx, sql, args...)
			if err != nil {
				return 0, err
			}
			defer rows.Close()
			n := 0
			for rows.Next() && matched < need {
				n++
				var eid int64
				var id string
				var doc []byte
				if err := scanDoc(rows, &doc, &eid, &id); err != nil {
					return n, err
				}
				args[len(args)-2] = eid
				if !preMatch(q, id) {
					continue
				}
				e, err := codec.DecodeEntity(doc)
				if err != nil {
					return n, fmt.Errorf("decode entity %s: %w", id, err)
				}
				if !q.Match(e) || seen[e.ID] {
					continue
				}
				seen[e.ID] = true
				if matched >= offset {
					res.Entities = append(res.Entities, e)
				}
				matched++
			}
			return n, rows.Err()
		}()
		if err != nil {
			return err
		}
		if matched >= need || n < chunk {
			return nil
		}
		chunk = min(4*chunk, maxChunk)
	}
}

// decideRow decodes the entity of a row (id, doc) and returns it if it
// matches q, else nil.
func decideRow(rows pgx.Rows, q *store.Query) (*ngsild.Entity, error) {
	var id string
	var doc []byte
	if err := scanDoc(rows, &doc, &id); err != nil {
		return nil, err
	}
	if !preMatch(q, id) {
		return nil, nil
	}
	e, err := codec.DecodeEntity(doc)
	if err != nil {
		return nil, fmt.Errorf("decode entity %s: %w", id, err)
	}
	if !q.Match(e) {
		return nil, nil
	}
	return e, nil
}

// preMatch rejects a candidate by its id alone, before decoding it.
func preMatch(q *store.Query, id string) bool {
	return q.IDPattern == nil || q.IDPattern.MatchString(id)
}

package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/paulmach/orb"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/ngsild/qlang"
	"github.com/zenne-city/zenne/internal/store"
)

// readStmts are prepared once on the reader pool; database/sql keeps one
// prepared copy per connection.
type readStmts struct {
	get, loadMany, idLookup          *sql.Stmt
	tenantChunk, typeChunk, hasChunk *sql.Stmt
	tenantN, typeN, typeSum, attrN   *sql.Stmt
	hasAll                           *sql.Stmt
	num                              map[string]*sql.Stmt // by predicate op: ==, >, >=, <, <=, range
	txt                              map[string]*sql.Stmt
}

func (s *Store) prepareReads(ctx context.Context) error {
	rs := &s.rs
	rs.num, rs.txt = map[string]*sql.Stmt{}, map[string]*sql.Stmt{}
	list := []struct {
		p   **sql.Stmt
		sql string
	}{
		{&rs.get, `SELECT eid, ver, doc FROM entities WHERE tid = ? AND id = ?`},
		{&rs.loadMany, `SELECT e.eid, e.ver, e.doc FROM json_each(?) AS j JOIN entities AS e ON e.eid = j.value ORDER BY j.key`},
		{&rs.idLookup, `SELECT eid FROM entities WHERE tid = ? AND id = ?`},
		{&rs.tenantChunk, `SELECT eid FROM entities WHERE tid = ? AND eid > ? ORDER BY eid LIMIT ?`},
		{&rs.typeChunk, `SELECT eid FROM entity_types WHERE tid = ? AND type = ? AND eid > ? ORDER BY eid LIMIT ?`},
		{&rs.hasChunk, `SELECT eid FROM attr_has WHERE tid = ? AND name = ? AND eid > ? ORDER BY eid LIMIT ?`},
		{&rs.hasAll, `SELECT eid FROM attr_has WHERE tid = ? AND name = ? LIMIT ?`},
		{&rs.tenantN, `SELECT n FROM tenants WHERE tid = ?`},
		{&rs.typeN, `SELECT n FROM type_counts WHERE tid = ? AND type = ?`},
		{&rs.typeSum, `SELECT coalesce(sum(n), 0) FROM type_counts WHERE tid = ?`},
		{&rs.attrN, `SELECT n, nx FROM attr_counts WHERE tid = ? AND name = ?`},
	}
	for _, p := range list {
		st, err := s.rdb.PrepareContext(ctx, p.sql)
		if err != nil {
			return fmt.Errorf("prepare %q: %w", p.sql, err)
		}
		*p.p = st
		s.rstmts = append(s.rstmts, st)
	}
	for _, op := range []struct{ op, cond string }{
		{"==", "= ?"}, {">", "> ?"}, {">=", ">= ?"}, {"<", "< ?"}, {"<=", "<= ?"}, {"range", "BETWEEN ? AND ?"},
	} {
		for _, t := range []struct {
			m   map[string]*sql.Stmt
			sql string
		}{
			{rs.num, `SELECT eid FROM attr_num WHERE tid = ? AND name = ? AND num ` + op.cond + ` LIMIT ?`},
			{rs.txt, `SELECT eid FROM attr_txt WHERE tid = ? AND name = ? AND txt ` + op.cond + ` LIMIT ?`},
		} {
			st, err := s.rdb.PrepareContext(ctx, t.sql)
			if err != nil {
				return fmt.Errorf("prepare %q: %w", t.sql, err)
			}
			t.m[op.op] = st
			s.rstmts = append(s.rstmts, st)
		}
	}
	return nil
}

// entity returns the shared decoded value of a stored row (from the cache
// when the version matches). Callers must not modify it.
func (s *Store) entity(eid, ver int64, doc []byte) (*ngsild.Entity, error) {
	if c := s.cache.get(eid, ver); c != nil {
		return c.ent, nil
	}
	e, err := decodeEntity(doc)
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
	e, err := s.entity(eid, ver, doc)
	if err != nil {
		return nil, err
	}
	return e, nil
}

// reader is one read transaction (a consistent snapshot).
type reader struct {
	s     *Store
	ctx   context.Context
	tx    *sql.Tx
	tid   int64
	stmts map[*sql.Stmt]*sql.Stmt
}

func (r *reader) st(p *sql.Stmt) *sql.Stmt {
	if t, ok := r.stmts[p]; ok {
		return t
	}
	t := r.tx.StmtContext(r.ctx, p)
	r.stmts[p] = t
	return t
}

func (r *reader) ids(p *sql.Stmt, args ...any) ([]int64, error) {
	return r.boundIDs(r.st(p), args...)
}

// boundIDs runs a statement already bound to the transaction.
func (r *reader) boundIDs(st *sql.Stmt, args ...any) ([]int64, error) {
	rows, err := st.QueryContext(r.ctx, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

func (r *reader) int(p *sql.Stmt, args ...any) (int64, error) {
	var n int64
	err := r.st(p).QueryRowContext(r.ctx, args...).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return n, err
}

// Query answers from the in-memory index once it is built (memquery.go).
// Until then it finds candidates with the most selective SQL index, then
// loads them in creation (eid) order and decides with q.Match.
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
	res := &store.QueryResult{Count: -1, Entities: []*ngsild.Entity{}}
	if limit == 0 && !q.Count {
		return res, nil
	}
	if s.mem != nil && s.mem.ready.Load() {
		return s.memQuery(ctx, tid, q, limit, offset)
	}
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("query: %w", err)
	}
	defer tx.Rollback()
	r := &reader{s: s, ctx: ctx, tx: tx, tid: tid, stmts: map[*sql.Stmt]*sql.Stmt{}}

	fastCount := int64(-1)
	if q.Count {
		if fastCount, err = r.plainCount(q); err != nil {
			return nil, fmt.Errorf("query count: %w", err)
		}
	}
	needAll := q.Count && fastCount < 0
	if !needAll && limit == 0 {
		res.Count = int(fastCount)
		return res, nil
	}
	need := offset + limit
	it, err := r.plan(q, need, needAll)
	if err != nil {
		return nil, fmt.Errorf("query plan: %w", err)
	}
	matched := 0
	load := r.st(s.rs.loadMany)
	batch := make([]int64, 0, 64)
	var ids []byte
	size := max(8, need+need/4)
	for done := false; !done; {
		// Take the next candidates and load them with one statement.
		batch = batch[:0]
		for len(batch) < size {
			eid, ok, err := it.next()
			if err != nil {
				return nil, fmt.Errorf("query candidates: %w", err)
			}
			if !ok {
				done = true
				break
			}
			batch = append(batch, eid)
		}
		size = min(size*2, 1024)
		if len(batch) == 0 {
			break
		}
		ids = append(ids[:0], '[')
		for i, eid := range batch {
			if i > 0 {
				ids = append(ids, ',')
			}
			ids = strconv.AppendInt(ids, eid, 10)
		}
		ids = append(ids, ']')
		rows, err := load.QueryContext(ctx, string(ids))
		if err != nil {
			return nil, fmt.Errorf("query load: %w", err)
		}
		for rows.Next() {
			var eid, ver int64
			var doc []byte
			if err := rows.Scan(&eid, &ver, &doc); err != nil {
				rows.Close()
				return nil, fmt.Errorf("query load: %w", err)
			}
			e, err := s.entity(eid, ver, doc)
			if err != nil {
				rows.Close()
				return nil, err
			}
			if !q.Match(e) {
				continue
			}
			matched++
			if matched > offset && len(res.Entities) < limit {
				res.Entities = append(res.Entities, e)
			}
			if !needAll && matched >= need {
				done = true
				break
			}
		}
		if err := rows.Close(); err != nil {
			return nil, fmt.Errorf("query load: %w", err)
		}
	}
	if q.Count {
		if fastCount >= 0 {
			res.Count = int(fastCount)
		} else {
			res.Count = matched
		}
	}
	return res, nil
}

// plainCount answers Count from the counters when the query is no filter or
// one plain type; -1 otherwise.
func (r *reader) plainCount(q *store.Query) (int64, error) {
	if len(q.IDs) > 0 || q.IDPattern != nil || len(q.Attrs) > 0 || q.Q != nil || q.ScopeQ != nil || q.Geo != nil {
		return -1, nil
	}
	if q.Type == nil {
		return r.int(r.s.rs.tenantN, r.tid)
	}
	types := q.Type.AnyOf()
	if len(types) == 0 {
		return -1, nil
	}
	if len(types) > 1 {
		// A union of types is the sum of their counters when no entity has
		// two types: every entity has at least one, so that is when the
		// counters of all types add up to the number of entities.
		entities, err := r.int(r.s.rs.tenantN, r.tid)
		if err != nil {
			return -1, err
		}
		memberships, err := r.int(r.s.rs.typeSum, r.tid)
		if err != nil || memberships != entities {
			return -1, err
		}
	}
	var n int64
	seen := map[int64]bool{}
	for _, t := range types {
		nid, ok := r.s.nameID(t)
		if !ok || seen[nid] {
			continue
		}
		seen[nid] = true
		c, err := r.int(r.s.rs.typeN, r.tid, nid)
		if err != nil {
			return -1, err
		}
		n += c
	}
	return n, nil
}

// plan chooses the candidate source. Sets (ids, geo box, selective
// predicates) are collected and intersected; otherwise candidates stream in
// eid order from the type index, the attribute index or the tenant.
func (r *reader) plan(q *store.Query, need int, needAll bool) (eidIter, error) {
	s := r.s
	var sets [][]int64
	if len(q.IDs) > 0 {
		var set []int64
		for _, id := range q.IDs {
			ids, err := r.ids(s.rs.idLookup, r.tid, id)
			if err != nil {
				return nil, err
			}
			set = append(set, ids...)
		}
		sets = append(sets, sortUnique(set))
	}
	var types []string
	if q.Type != nil {
		types = q.Type.AnyOf()
	}
	if q.Geo != nil {
		if b, ok := q.Geo.Bound(); ok {
			set, err := r.geoSet(q.Geo.Property, types, b)
			if err != nil {
				return nil, err
			}
			sets = append(sets, set)
		}
	}
	for _, set := range sets {
		if len(set) == 0 {
			return &sliceIter{}, nil
		}
	}

	var stream eidIter
	var est int64
	switch {
	case types != nil:
		var its []eidIter
		for _, t := range types {
			nid, ok := s.nameID(t)
			if !ok {
				continue
			}
			n, err := r.int(s.rs.typeN, r.tid, nid)
			if err != nil {
				return nil, err
			}
			if n > 0 {
				est += n
				its = append(its, r.chunks(s.rs.typeChunk, r.tid, nid))
			}
		}
		stream = union(its)
	case len(q.Attrs) > 0:
		var its []eidIter
		for _, a := range q.Attrs {
			nid, ok := s.nameID(a)
			if !ok {
				continue
			}
			var n, nx int64
			err := r.st(s.rs.attrN).QueryRowContext(r.ctx, r.tid, nid).Scan(&n, &nx)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return nil, err
			}
			if n > 0 {
				est += n
				its = append(its, r.chunks(s.rs.hasChunk, r.tid, nid))
			}
		}
		stream = union(its)
	default:
		n, err := r.int(s.rs.tenantN, r.tid)
		if err != nil {
			return nil, err
		}
		est = n
		stream = r.chunks(s.rs.tenantChunk, r.tid)
	}

	best := est
	for _, set := range sets {
		best = min(best, int64(len(set)))
	}
	if q.Q != nil {
		for _, p := range q.Q.Conjuncts() {
			if !needAll && best <= int64(2*need) {
				break
			}
			limit := best / 2
			if !needAll {
				limit = min(limit, int64(max(1000, 50*need)))
			}
			if limit < 1 {
				break
			}
			set, ok, err := r.predicateSet(p, limit)
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
			if len(set) == 0 {
				return &sliceIter{}, nil
			}
			sets = append(sets, set)
			best = int64(len(set))
		}
	}
	if len(sets) > 0 {
		return &sliceIter{a: intersect(sets)}, nil
	}
	return stream, nil
}

func (r *reader) geoSet(prop string, types []string, b orb.Bound) ([]int64, error) {
	s := r.s
	if prop == "" {
		prop = ngsild.IRILocation
	}
	pnid, ok := s.nameID(prop)
	if !ok {
		return nil, nil
	}
	var zs []int64
	s.mu.RLock()
	if types != nil {
		for _, t := range types {
			if tnid, ok := s.names[t]; ok {
				if z, ok := s.geoZ[geoKey{r.tid, tnid, pnid}]; ok {
					zs = append(zs, z)
				}
			}
		}
	} else {
		zs = slices.Clone(s.zByAttr[[2]int64{r.tid, pnid}])
	}
	s.mu.RUnlock()
	var out []int64
	for _, z := range zs {
		st, release, err := r.geoStmt(z)
		if err != nil {
			return nil, err
		}
		ids, err := r.boundIDs(st, b.Max[0], b.Min[0], b.Max[1], b.Min[1])
		release()
		if err != nil {
			return nil, err
		}
		out = append(out, ids...)
	}
	return sortUnique(out), nil
}

// geoStmt returns a statement searching R*Tree z, bound to this read
// transaction.
// A statement not prepared yet is prepared on the transaction's own
// connection and the shared one is prepared in the background: preparing on
// the pool while holding one of its connections deadlocks as soon as every
// connection is held by a query doing the same (as happens to a server
// restarted under load).
func (r *reader) geoStmt(z int64) (st *sql.Stmt, release func(), err error) {
	s := r.s
	s.geoMu.Lock()
	shared := s.geoSel[z]
	s.geoMu.Unlock()
	if shared != nil {
		return r.st(shared), func() {}, nil
	}
	s.geoPrep.Go(func() { s.prepareGeoStmt(context.Background(), z) })
	st, err = r.tx.PrepareContext(r.ctx, geoSelectSQL(z))
	if err != nil {
		return nil, nil, err
	}
	return st, func() { st.Close() }, nil
}

func geoSelectSQL(z int64) string {
	return fmt.Sprintf(`SELECT id FROM geo_%d WHERE minx <= ? AND maxx >= ? AND miny <= ? AND maxy >= ?`, z)
}

// predicateSet returns the candidates of one q conjunct from attr_has,
// attr_num or attr_txt, or ok=false when the index cannot answer it exactly
// enough (unsupported operator, values the index does not hold) or it has
// more than limit candidates.
func (r *reader) predicateSet(p qlang.Predicate, limit int64) (set []int64, ok bool, err error) {
	s := r.s
	nid, known := s.nameID(p.Attr)
	if !known {
		// No entity of any tenant ever had the attribute: no positive
		// condition on it can hold.
		return nil, p.Op != "!=", nil
	}
	var n, nx int64
	if err := r.st(s.rs.attrN).QueryRowContext(r.ctx, r.tid, nid).Scan(&n, &nx); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, p.Op != "!=", nil
		}
		return nil, false, err
	}
	if n == 0 {
		return nil, p.Op != "!=", nil
	}
	if p.Op == "exists" {
		ids, err := r.ids(s.rs.hasAll, r.tid, nid, limit+1)
		if err != nil || int64(len(ids)) > limit {
			return nil, false, err
		}
		return sortUnique(ids), true, nil
	}
	if nx > 0 {
		return nil, false, nil // some values of the attribute are not in the index
	}
	type lookup struct {
		st   *sql.Stmt
		args []any
	}
	var ls []lookup
	add := func(op string, vals ...any) bool {
		var num, txt bool
		args := []any{r.tid, nid}
		for _, v := range vals {
			switch x := v.(type) {
			case float64:
				num = true
				args = append(args, x)
			case bool:
				if op != "==" {
					return false
				}
				num = true
				args = append(args, boolNum(x))
			case string:
				txt = true
				args = append(args, x)
			default:
				return false
			}
		}
		switch {
		case num && !txt:
			ls = append(ls, lookup{s.rs.num[op], args})
		case txt && !num:
			ls = append(ls, lookup{s.rs.txt[op], args})
		default:
			return false
		}
		return true
	}
	switch p.Op {
	case "==", "in":
		for _, v := range p.Values {
			if !add("==", v) {
				return nil, false, nil
			}
		}
	case ">", ">=", "<", "<=":
		if len(p.Values) != 1 || !add(p.Op, p.Values[0]) {
			return nil, false, nil
		}
	case "range":
		if len(p.Values) != 2 || !add("range", p.Values[0], p.Values[1]) {
			return nil, false, nil
		}
	default:
		return nil, false, nil
	}
	for _, l := range ls {
		ids, err := r.ids(l.st, append(l.args, limit+1-int64(len(set)))...)
		if err != nil {
			return nil, false, err
		}
		set = append(set, ids...)
		if int64(len(set)) > limit {
			return nil, false, nil
		}
	}
	return sortUnique(set), true, nil
}

func sortUnique(a []int64) []int64 {
	slices.Sort(a)
	return slices.Compact(a)
}

// intersect intersects sorted unique sets.
func intersect(sets [][]int64) []int64 {
	slices.SortFunc(sets, func(a, b []int64) int { return len(a) - len(b) })
	out := slices.Clone(sets[0])
	for _, b := range sets[1:] {
		k, j := 0, 0
		for _, x := range out {
			for j < len(b) && b[j] < x {
				j++
			}
			if j < len(b) && b[j] == x {
				out[k] = x
				k++
			}
		}
		out = out[:k]
	}
	return out
}

// eidIter yields entity ids in ascending order, without duplicates.
type eidIter interface {
	next() (int64, bool, error)
}

type sliceIter struct {
	a []int64
	i int
}

func (it *sliceIter) next() (int64, bool, error) {
	if it.i >= len(it.a) {
		return 0, false, nil
	}
	it.i++
	return it.a[it.i-1], true, nil
}

// chunkIter pages through an index with keyset pagination: the statement's
// last two parameters are "eid > ?" and "LIMIT ?".
type chunkIter struct {
	r    *reader
	st   *sql.Stmt
	args []any
	last int64
	size int64
	buf  []int64
	i    int
	done bool
}

func (r *reader) chunks(st *sql.Stmt, args ...any) *chunkIter {
	return &chunkIter{r: r, st: st, args: args, size: 32}
}

func (it *chunkIter) next() (int64, bool, error) {
	if it.i >= len(it.buf) {
		if it.done {
			return 0, false, nil
		}
		ids, err := it.r.ids(it.st, append(slices.Clip(it.args), it.last, it.size)...)
		if err != nil {
			return 0, false, err
		}
		it.done = int64(len(ids)) < it.size
		it.size = min(it.size*4, 4096)
		it.buf, it.i = ids, 0
		if len(ids) == 0 {
			return 0, false, nil
		}
		it.last = ids[len(ids)-1]
	}
	it.i++
	return it.buf[it.i-1], true, nil
}

// union merges ascending iterators, dropping duplicates.
func union(its []eidIter) eidIter {
	switch len(its) {
	case 0:
		return &sliceIter{}
	case 1:
		return its[0]
	}
	return &unionIter{its: its}
}

type unionIter struct {
	its   []eidIter
	heads []int64
	live  []bool
	init  bool
	last  int64
}

func (u *unionIter) next() (int64, bool, error) {
	if !u.init {
		u.init = true
		u.heads = make([]int64, len(u.its))
		u.live = make([]bool, len(u.its))
		for i, it := range u.its {
			v, ok, err := it.next()
			if err != nil {
				return 0, false, err
			}
			u.heads[i], u.live[i] = v, ok
		}
		u.last = -1 << 63
	}
	for {
		best := -1
		for i := range u.its {
			if u.live[i] && (best < 0 || u.heads[i] < u.heads[best]) {
				best = i
			}
		}
		if best < 0 {
			return 0, false, nil
		}
		v := u.heads[best]
		nv, ok, err := u.its[best].next()
		if err != nil {
			return 0, false, err
		}
		u.heads[best], u.live[best] = nv, ok
		if v != u.last {
			u.last = v
			return v, true, nil
		}
	}
}

// prepareGeoStmt prepares the shared statement searching R*Tree z, unless
// it exists or is being prepared. It waits for a pool connection without
// holding geoMu or a connection, so it cannot block a query.
func (s *Store) prepareGeoStmt(ctx context.Context, z int64) {
	s.geoMu.Lock()
	if s.geoSel[z] != nil || s.geoPending[z] {
		s.geoMu.Unlock()
		return
	}
	s.geoPending[z] = true
	s.geoMu.Unlock()
	st, err := s.rdb.PrepareContext(ctx, geoSelectSQL(z))
	s.geoMu.Lock()
	defer s.geoMu.Unlock()
	delete(s.geoPending, z)
	if err == nil {
		s.geoSel[z] = st // the next query prepares on its transaction if this failed
	}
}

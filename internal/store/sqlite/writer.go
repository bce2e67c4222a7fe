package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store"
	"github.com/zenne-city/zenne/internal/store/codec"
	"github.com/zenne-city/zenne/internal/store/memindex"
)

// writeReq is one Write call (ops) or one job (fn) queued for the writer.
type writeReq struct {
	ctx    context.Context
	tenant string
	ops    []store.Op
	fn     func(ctx context.Context, c *sql.Conn) error

	res  []store.Result
	err  error
	done chan struct{}
}

// Write applies ops through the writer goroutine. Ops of concurrent calls are
// committed together (group commit); Write returns after the commit. Apply runs
// on the writer goroutine and may run twice for the same op if the shared
// transaction fails and the call is retried alone; it must be a function of
// cur only. A panic in Apply becomes that op's error.
//
// If ctx ends while the call is queued or being committed, Write returns
// ctx.Err() and the ops may or may not have been applied.
func (s *Store) Write(ctx context.Context, tenant string, ops []store.Op) ([]store.Result, error) {
	if len(ops) == 0 {
		return nil, s.checkOpen()
	}
	r := &writeReq{ctx: ctx, tenant: tenant, ops: ops, done: make(chan struct{})}
	if err := s.enqueue(ctx, r); err != nil {
		return nil, err
	}
	return r.res, r.err
}

func (s *Store) enqueue(ctx context.Context, r *writeReq) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case <-s.quit:
		return store.ErrClosed
	default:
	}
	select {
	case s.wch <- r:
	case <-s.quit:
		return store.ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.stopped:
		select {
		case <-r.done:
			return nil
		default:
			return store.ErrClosed
		}
	}
}

// do runs fn on the writer connection, between group commits.
func (s *Store) do(ctx context.Context, fn func(ctx context.Context, c *sql.Conn) error) error {
	r := &writeReq{ctx: ctx, fn: fn, done: make(chan struct{})}
	if err := s.enqueue(ctx, r); err != nil {
		return err
	}
	return r.err
}

// writer owns the write connection and its prepared statements.
type writer struct {
	s   *Store
	c   *sql.Conn
	ver int64 // last committed entities.ver

	batches, batchOps atomic.Int64 // statistics: transactions committed and their ops

	// known is the writer's own bounded cache of committed current states by
	// (tenant, id), so most writes need no lookup at all. Only the writer
	// touches it, after commit; entStates are never modified once published.
	known    map[entKey]*entState
	maxKnown int

	nextEID int64                  // the eid of the next new entity (eids are allocated here, never reused while open)
	lastSeq int64                  // the last committed h_head seq (history.go)
	multi   map[multiKey]*sql.Stmt // multi-row statements by operation and row count (see flush.go)

	selMany, selDoc    *sql.Stmt
	insTenant, insName *sql.Stmt
	insChanges         *sql.Stmt
	addTenantN         *sql.Stmt
	setVer             *sql.Stmt
	all                []*sql.Stmt
}

func newWriter(ctx context.Context, s *Store) (*writer, error) {
	w := &writer{s: s, c: s.wconn, known: map[entKey]*entState{}, maxKnown: s.opts.CacheEntities,
		multi: map[multiKey]*sql.Stmt{}}
	if err := w.c.QueryRowContext(ctx, `SELECT v FROM meta WHERE k = 'ver'`).Scan(&w.ver); err != nil {
		return nil, fmt.Errorf("read version: %w", err)
	}
	if err := w.c.QueryRowContext(ctx, `SELECT COALESCE(MAX(eid), 0) + 1 FROM entities`).Scan(&w.nextEID); err != nil {
		return nil, fmt.Errorf("read last entity: %w", err)
	}
	if err := w.c.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM h_head`).Scan(&w.lastSeq); err != nil {
		return nil, fmt.Errorf("read last history record: %w", err)
	}
	prep := []struct {
		p   **sql.Stmt
		sql string
	}{
		// The current rows of a list of ids (a JSON array) of one tenant.
		{&w.selMany, `SELECT e.id, e.eid, e.ver, e.doc FROM json_each(?) AS j CROSS JOIN entities AS e WHERE e.tid = ? AND e.id = j.value`},
		{&w.selDoc, `SELECT eid, ver, doc FROM entities WHERE tid = ? AND id = ?`},
		{&w.insTenant, `INSERT INTO tenants (name) VALUES (?)`},
		{&w.insName, `INSERT INTO names (name) VALUES (?)`},
		{&w.addTenantN, `UPDATE tenants SET n = n + ? WHERE tid = ?`},
		{&w.setVer, `UPDATE meta SET v = ? WHERE k = 'ver'`},
		{&w.insChanges, `INSERT INTO changes (seq, n, data) VALUES (?, ?, ?)`},
	}
	for _, p := range prep {
		st, err := w.c.PrepareContext(ctx, p.sql)
		if err != nil {
			w.close()
			return nil, fmt.Errorf("prepare %q: %w", p.sql, err)
		}
		*p.p = st
		w.all = append(w.all, st)
	}
	return w, nil
}

func (w *writer) close() error {
	var errs []error
	for _, st := range w.all {
		errs = append(errs, st.Close())
	}
	for k, st := range w.multi {
		errs = append(errs, st.Close())
		delete(w.multi, k)
	}
	w.all = nil
	return errors.Join(errs...)
}

// run is the writer goroutine: it takes everything pending (up to
// MaxBatchOps ops), commits it in one transaction and answers every caller.
// It never sleeps: while one batch commits, the next one queues up.
func (w *writer) run() {
	defer close(w.s.stopped)
	for {
		var first *writeReq
		select {
		case first = <-w.s.wch:
		case <-w.s.quit:
			// Drain what was queued before Close.
			for {
				select {
				case r := <-w.s.wch:
					w.process([]*writeReq{r})
				default:
					return
				}
			}
		}
		// Let the callers just answered run and queue their next writes,
		// so they join this transaction instead of waiting for the next.
		runtime.Gosched()
		batch := []*writeReq{first}
		n := len(first.ops)
	drain:
		for n < w.s.opts.MaxBatchOps {
			select {
			case r := <-w.s.wch:
				batch = append(batch, r)
				n += len(r.ops)
			default:
				break drain
			}
		}
		w.process(batch)
	}
}

func (w *writer) process(batch []*writeReq) {
	var writes []*writeReq
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.err = err
			close(r.done)
			continue
		}
		if r.fn != nil {
			r.err = w.runFn(r)
			close(r.done)
			continue
		}
		if res, stores := w.s.dryRunNewTenant(r); !stores {
			r.res = res
			close(r.done)
			continue
		}
		writes = append(writes, r)
	}
	if len(writes) == 0 {
		return
	}
	if err := w.commit(writes); err != nil {
		if len(writes) == 1 {
			writes[0].err = err
		} else {
			// One call broke the shared transaction: retry each alone so
			// the others still succeed.
			for _, r := range writes {
				if err := w.commit([]*writeReq{r}); err != nil {
					r.err = err
				}
			}
		}
	}
	for _, r := range writes {
		close(r.done)
	}
}

// dryRunNewTenant decides whether a write to a tenant that does not exist
// yet stores anything: a tenant is created only by a write that stores an
// entity. Applied to a missing entity, an op can only store one if it does
// so from nothing (a later op finds an entity only if an earlier one stored
// it), so calling every Apply with cur == nil tells; when none stores,
// those calls are the results. For existing tenants it does nothing.
func (s *Store) dryRunNewTenant(r *writeReq) (res []store.Result, stores bool) {
	if _, ok := s.tenantID(r.tenant); ok {
		return nil, true
	}
	res = make([]store.Result, len(r.ops))
	for i, op := range r.ops {
		next, err := callApply(op, nil)
		if err == nil && next != nil {
			return nil, true
		}
		res[i] = store.Result{ID: op.ID, Err: err}
	}
	return res, false
}

func (w *writer) runFn(r *writeReq) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("store job panicked: %v", p)
		}
	}()
	return r.fn(r.ctx, w.c)
}

// entKey identifies an entity within a transaction.
type entKey struct {
	tid int64
	id  string
}

// entState is an entity as the transaction sees it; ent nil = absent.
type entState struct {
	eid   int64
	ver   int64
	ent   *ngsild.Entity
	facts *entityFacts
	rec   *memindex.Rec // the query index record of a state the group wrote
}

type typeAttrKey struct {
	tid, typ, name int64
	kind           ngsild.Kind
}

// tx is the state of one write transaction. Nothing in it is visible to
// readers or to the shared dictionaries until commit succeeds. Ops are
// applied in memory (ents holds each entity as the group sees it); flush
// writes their net effect with multi-row statements (see flush.go).
type tx struct {
	w       *writer
	ctx     context.Context
	ver     int64
	tenants map[string]int64
	names   map[string]int64
	ents    map[entKey]*entState

	touched map[int64]*touch // by eid
	order   []int64          // eids touched
	bufs    rowBufs

	tenantN map[int64]int64
	typeN   map[[2]int64]int64
	attrN   map[[2]int64]int64
	taN     map[typeAttrKey]int64

	changes []store.Change // what the group's ops changed, in op order (changes.go)
	hist    []histEntry    // what the group records in history, in op order
	lastSeq int64          // the last h_head seq the group used
	heads   []headRow      // the head records the group adds
}

// commit runs reqs in one transaction and fills their results. On error
// nothing is committed and the results are left unset.
func (w *writer) commit(reqs []*writeReq) (err error) {
	ctx := context.Background() // a caller's cancellation must not break the others' transaction
	t := &tx{
		w: w, ctx: ctx, ver: w.ver,
		tenants: map[string]int64{}, names: map[string]int64{},
		ents: map[entKey]*entState{}, touched: map[int64]*touch{},
		tenantN: map[int64]int64{}, typeN: map[[2]int64]int64{}, attrN: map[[2]int64]int64{},
		taN: map[typeAttrKey]int64{},
	}
	nextEID := w.nextEID
	if _, err := w.c.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	results := make([][]store.Result, len(reqs))
	err = func() (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("write panicked: %v\n%s", p, debug.Stack())
			}
		}()
		tids := make([]int64, len(reqs))
		for i, r := range reqs {
			if tids[i], err = t.tenantID(r.tenant); err != nil {
				return err
			}
		}
		if err := t.prefetch(reqs, tids); err != nil {
			return err
		}
		for i, r := range reqs {
			res := make([]store.Result, len(r.ops))
			for j, op := range r.ops {
				if res[j], err = t.apply(tids[i], r.tenant, op); err != nil {
					return fmt.Errorf("write %s: %w", op.ID, err)
				}
			}
			results[i] = res
		}
		if err := t.flush(); err != nil {
			return err
		}
		if t.ver != w.ver {
			if _, err := w.setVer.ExecContext(ctx, t.ver); err != nil {
				return err
			}
		}
		_, err = w.c.ExecContext(ctx, `COMMIT`)
		return err
	}()
	if err != nil {
		if _, rerr := w.c.ExecContext(ctx, `ROLLBACK`); rerr != nil {
			err = errors.Join(err, fmt.Errorf("rollback: %w", rerr))
		}
		w.nextEID = nextEID
		return err
	}
	w.publish(t)
	if f := w.s.watch.Load(); f != nil && len(t.changes) > 0 {
		(*f)(t.changes)
	}
	select {
	case w.s.kick <- struct{}{}:
	default:
	}
	w.batches.Add(1)
	for _, r := range reqs {
		w.batchOps.Add(int64(len(r.ops)))
	}
	for i, r := range reqs {
		r.res = results[i]
	}
	return nil
}

// publish makes a committed transaction's dictionary entries and entities
// visible.
func (w *writer) publish(t *tx) {
	w.ver = t.ver
	s := w.s
	s.lastVer.Store(t.ver)
	w.lastSeq = max(w.lastSeq, t.lastSeq)
	s.heads.add(t.heads)
	if len(t.tenants) > 0 || len(t.names) > 0 {
		s.mu.Lock()
		for k, v := range t.tenants {
			s.tenants[k] = v
		}
		for k, v := range t.names {
			s.names[k] = v
			s.nameOf[v] = k
		}
		s.mu.Unlock()
	}
	var changes []memindex.Change
	for eid, tc := range t.touched {
		if tc.final.ent == nil {
			s.cache.remove(eid)
		}
		if tc.existed || tc.final.ent != nil {
			changes = append(changes, memindex.Change{EID: eid, Rec: tc.final.rec})
		}
	}
	s.mem.Apply(changes)
	for k, st := range t.ents {
		if st.ent == nil {
			delete(w.known, k)
			continue
		}
		s.cache.put(st.eid, &cached{ver: st.ver, ent: st.ent, facts: st.facts})
		if _, ok := w.known[k]; !ok && len(w.known) >= w.maxKnown {
			n := len(w.known)/16 + 1
			for k := range w.known {
				delete(w.known, k)
				if n--; n <= 0 {
					break
				}
			}
		}
		if w.maxKnown > 0 {
			w.known[k] = st
		}
	}
}

func (t *tx) tenantID(name string) (int64, error) {
	if tid, ok := t.w.s.tenantID(name); ok {
		return tid, nil
	}
	if tid, ok := t.tenants[name]; ok {
		return tid, nil
	}
	r, err := t.w.insTenant.ExecContext(t.ctx, name)
	if err != nil {
		return 0, fmt.Errorf("create tenant %q: %w", name, err)
	}
	tid, err := r.LastInsertId()
	if err != nil {
		return 0, err
	}
	t.tenants[name] = tid
	return tid, nil
}

func (t *tx) nameID(name string) (int64, error) {
	if nid, ok := t.w.s.nameID(name); ok {
		return nid, nil
	}
	if nid, ok := t.names[name]; ok {
		return nid, nil
	}
	r, err := t.w.insName.ExecContext(t.ctx, name)
	if err != nil {
		return 0, fmt.Errorf("intern name %q: %w", name, err)
	}
	nid, err := r.LastInsertId()
	if err != nil {
		return 0, err
	}
	t.names[name] = nid
	return nid, nil
}

// prefetch reads, with one statement per tenant and chunk, the entities the
// ops of reqs will load, except those the writer already knows.
func (t *tx) prefetch(reqs []*writeReq, tids []int64) error {
	byTenant := map[int64][]string{}
	for i, r := range reqs {
		for _, op := range r.ops {
			k := entKey{tids[i], op.ID}
			if _, ok := t.ents[k]; ok {
				continue
			}
			if st, ok := t.w.known[k]; ok {
				t.ents[k] = st
				continue
			}
			if !utf8.ValidString(op.ID) || strings.IndexByte(op.ID, 0) >= 0 {
				continue // not representable in JSON as is: load reads it alone
			}
			t.ents[k] = &entState{} // absent unless found below
			byTenant[k.tid] = append(byTenant[k.tid], op.ID)
		}
	}
	for tid, ids := range byTenant {
		for len(ids) > 0 {
			chunk := ids[:min(len(ids), 1000)]
			ids = ids[len(chunk):]
			js, err := json.Marshal(chunk)
			if err != nil {
				return err
			}
			rows, err := t.w.selMany.QueryContext(t.ctx, string(js), tid)
			if err != nil {
				return fmt.Errorf("read entities: %w", err)
			}
			for rows.Next() {
				var id string
				var doc []byte
				st := &entState{}
				if err := rows.Scan(&id, &st.eid, &st.ver, &doc); err != nil {
					rows.Close()
					return fmt.Errorf("read entities: %w", err)
				}
				if err := t.w.fill(st, doc); err != nil {
					rows.Close()
					return err
				}
				t.ents[entKey{tid, id}] = st
			}
			if err := rows.Close(); err != nil {
				return fmt.Errorf("read entities: %w", err)
			}
		}
	}
	return nil
}

// fill sets st's entity and counted facts from the cache or from doc.
func (w *writer) fill(st *entState, doc []byte) error {
	if c := w.s.cache.get(st.eid, st.ver); c != nil {
		st.ent, st.facts = c.ent, c.facts
	} else {
		var err error
		if st.ent, err = codec.DecodeEntity(doc); err != nil {
			return fmt.Errorf("decode stored entity: %w", err)
		}
	}
	if st.facts == nil {
		st.facts = factsOf(st.ent)
	}
	return nil
}

// load returns the entity as this transaction currently sees it.
func (t *tx) load(tid int64, id string) (*entState, error) {
	k := entKey{tid, id}
	if st, ok := t.ents[k]; ok {
		return st, nil
	}
	if st, ok := t.w.known[k]; ok {
		t.ents[k] = st
		return st, nil
	}
	st := &entState{}
	var doc []byte
	err := t.w.selDoc.QueryRowContext(t.ctx, tid, id).Scan(&st.eid, &st.ver, &doc)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		st.eid = 0
	case err != nil:
		return nil, err
	default:
		if err := t.w.fill(st, doc); err != nil {
			return nil, err
		}
	}
	t.ents[k] = st
	return st, nil
}

func callApply(op store.Op, cur *ngsild.Entity) (next *ngsild.Entity, err error) {
	defer func() {
		if p := recover(); p != nil {
			next, err = nil, fmt.Errorf("apply %s panicked: %v", op.ID, p)
		}
	}()
	if op.Apply == nil {
		return nil, fmt.Errorf("op %s has no Apply", op.ID)
	}
	return op.Apply(cur)
}

// apply runs one op in memory: the entity's new state is what later ops of
// the group see, and flush writes it. An error returned is a storage error
// that breaks the transaction; Apply's own error goes into the Result.
func (t *tx) apply(tid int64, tenant string, op store.Op) (store.Result, error) {
	cur, err := t.load(tid, op.ID)
	if err != nil {
		return store.Result{}, err
	}
	next, aerr := callApply(op, cur.ent)
	if aerr == nil && next != nil && next.ID != op.ID {
		aerr = fmt.Errorf("apply for %q returned entity %q", op.ID, next.ID)
	}
	if aerr == nil {
		t.record(tid, op, cur.ent, next)
	}
	if aerr != nil || next == cur.ent {
		return store.Result{ID: op.ID, Before: cur.ent, After: cur.ent, Err: aerr}, nil
	}
	// Before and After are shared with the cache (see the package comment):
	// the entity Apply returned is stored as is and never modified again.
	res := store.Result{ID: op.ID, Before: cur.ent, After: next}
	if cur.ent == nil && next == nil {
		return res, nil
	}
	eid := cur.eid
	if cur.ent == nil {
		eid = t.w.nextEID
		t.w.nextEID++
	}
	tc := t.touched[eid]
	if tc == nil {
		tc = &touch{tid: tid, id: op.ID}
		if cur.ent != nil {
			tc.existed, tc.orig = true, cur.facts
		}
		t.touched[eid] = tc
		t.order = append(t.order, eid)
	}
	t.ver++
	t.noteChange(t.ver, tenant, op.ID, cur.ent, next)
	// Only the final state of the group needs its facts and index record:
	// flush computes them.
	st := &entState{eid: eid, ver: t.ver, ent: next}
	tc.final = st
	// ent nil (deleted) makes publish drop the entity from the caches.
	t.ents[entKey{tid, op.ID}] = st
	return res, nil
}

func unixNano(t, def time.Time) int64 {
	if t.IsZero() {
		return def.UnixNano()
	}
	return t.UnixNano()
}

// count turns the difference between two versions' facts into counter
// deltas (Types, Attributes, counts). old is nil for a new entity, new is
// nil for a deleted one.
func (t *tx) count(tid int64, old, new *entityFacts) error {
	if old == nil {
		old = &entityFacts{}
	}
	if new == nil {
		new = &entityFacts{}
	}
	typeN := func(d int64) func(string) error {
		return func(typ string) error {
			nid, err := t.nameID(typ)
			if err != nil {
				return err
			}
			t.typeN[[2]int64{tid, nid}] += d
			return nil
		}
	}
	if err := diffSorted(old.Types, new.Types, cmp.Compare[string], typeN(-1), typeN(+1)); err != nil {
		return fmt.Errorf("count types: %w", err)
	}
	// Minus old, plus new, which cancel out when an update changed only values.
	if slices.Equal(old.Types, new.Types) && slices.EqualFunc(old.Attrs, new.Attrs, sameFacts) {
		return nil
	}
	if err := t.countAttrs(tid, old, -1); err != nil {
		return err
	}
	return t.countAttrs(tid, new, +1)
}

func sameFacts(a, b attrFacts) bool {
	return a.Name == b.Name && slices.Equal(a.Kinds, b.Kinds)
}

func (t *tx) countAttrs(tid int64, r *entityFacts, d int64) error {
	if len(r.Attrs) == 0 {
		return nil
	}
	tnids := make([]int64, len(r.Types))
	for i, typ := range r.Types {
		nid, err := t.nameID(typ)
		if err != nil {
			return err
		}
		tnids[i] = nid
	}
	for _, a := range r.Attrs {
		anid, err := t.nameID(a.Name)
		if err != nil {
			return err
		}
		k := [2]int64{tid, anid}
		t.attrN[k] += d
		for _, tn := range tnids {
			for _, kind := range a.Kinds {
				t.taN[typeAttrKey{tid, tn, anid, kind}] += d
			}
		}
	}
	return nil
}

package postgres

// Writes. Concurrent Write calls of one process queue up and are committed
// together, up to MaxBatchOps ops per transaction, by Options.Writers writer
// goroutines (group commit); every caller is answered after the commit.
//
// One group's transaction (READ COMMITTED):
//
//	BEGIN
//	pipeline: create the tenants it stores in first (sorted names);
//	          lock every entity it touches: pg_advisory_xact_lock on a hash
//	          of (tenant, id), in hash order (or, for a call of more than
//	          maxEntityLocks entities, every write: see maxEntityLocks);
//	          read those entities (after the locks, so the latest commit)
//	Go:       apply the ops in order on the states read (later ops see
//	          earlier ones), note history records and changes
//	recordHistory(tx, commit time, records)   (hist*.go)
//	pipeline: entity rows (delete, update, insert), their geometries, the
//	          counters (sorted), and last the change numbers and log row
//	COMMIT
//
// Why this is correct across processes: every write of an entity row
// happens in this transaction shape, under the advisory lock of its (tenant,
// id). A group reads an entity only once it holds the lock, and the holder
// before it has committed (or rolled back) by then, so each read-modify-write
// sees the previous one's result; a create sees the other process's row too,
// so two processes cannot both create one id. Locks are taken in one global
// order (tenants created, by name; the all-writes lock; entity locks, by
// hash; counters, by key; change_seq), so groups do not deadlock. Hash
// collisions only make two entities share a lock.
//
// Why not row locks (SELECT ... FOR UPDATE)? They cannot lock an id that
// does not exist yet, and a group that deletes and re-creates an entity
// makes a waiter's FOR UPDATE find no row while the entity exists; the
// advisory lock is held the same way whether the entity exists or not.
//
// If a shared group transaction fails, each call of the group is retried
// alone, so one bad call does not fail the others (Apply may run again);
// not if the connection broke while committing (see unknownCommit).

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store"
	"github.com/zenne-city/zenne/internal/store/codec"
	"github.com/zenne-city/zenne/internal/store/histcore"
)

// writeReq is one Write call waiting for a writer.
type writeReq struct {
	ctx    context.Context
	tenant string
	ops    []store.Op

	res  []store.Result
	err  error
	done chan struct{}
}

// Write applies ops through the writers (see the top of this file). Apply
// runs on a writer goroutine, inside the transaction, and may run more than
// once for one op; a panic in Apply becomes that op's error.
//
// If ctx ends while the call is queued or being committed, Write returns
// ctx.Err() and the ops may or may not have been applied.
func (s *Store) Write(ctx context.Context, tenant string, ops []store.Op) ([]store.Result, error) {
	if len(ops) == 0 {
		return nil, s.checkOpen()
	}
	r := &writeReq{ctx: ctx, tenant: tenant, ops: ops, done: make(chan struct{})}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	select {
	case s.wch <- r:
	case <-s.quit:
		return nil, store.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case <-r.done:
		return r.res, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.stopped:
		// The writers drained the queue before stopping; a call still
		// queued came too late and is refused, never applied.
		select {
		case <-r.done:
			return r.res, r.err
		default:
			return nil, store.ErrClosed
		}
	}
}

// Locks. Each entity lock takes a slot of the server's shared lock table,
// which holds max_locks_per_transaction times the number of connections
// (7,808 with the defaults) for all transactions together. So a group of
// several calls stops at maxEntityLocks ops, and one call that touches more
// entities takes the all-writes lock exclusively instead of entity locks;
// every other group takes that lock shared. A transaction thus holds at most
// maxEntityLocks+1 write locks, and a large batch excludes other writes
// only while it commits.
const (
	maxEntityLocks = 512
	// writeLockClass is the first key of the all-writes lock, in the
	// two-key advisory lock space (history's locks use other classes there).
	writeLockClass = 0x7a777269 // "zwri"
)

// writer takes what is queued (up to MaxBatchOps ops, and maxEntityLocks
// for a group of several calls), commits it in one transaction and answers
// every caller. After Close it drains the queue and stops.
func (s *Store) writer() {
	defer s.writers.Done()
	var next *writeReq // taken from the queue but left for the next group
	for {
		first := next
		next = nil
		if first == nil {
			select {
			case first = <-s.wch:
			case <-s.quit:
				select {
				case first = <-s.wch:
				default:
					return
				}
			}
			// Let the callers just answered run and queue their next
			// writes, so they join this transaction instead of waiting
			// for the next.
			runtime.Gosched()
		}
		batch := []*writeReq{first}
		n := len(first.ops)
	drain:
		for n < min(s.opts.MaxBatchOps, maxEntityLocks) {
			select {
			case r := <-s.wch:
				if n+len(r.ops) > maxEntityLocks {
					next = r
					break drain
				}
				batch = append(batch, r)
				n += len(r.ops)
			default:
				break drain
			}
		}
		s.process(batch)
	}
}

func (s *Store) process(batch []*writeReq) {
	ctx := context.Background() // a caller's cancellation must not break the others' transaction
	var writes []*writeReq
	unknown := map[string]error{} // tenants not cached: nil if committed, ErrNoTenant, or why the lookup failed
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.err = err
			close(r.done)
			continue
		}
		if _, ok := s.cachedTenant(r.tenant); !ok {
			err, seen := unknown[r.tenant]
			if !seen {
				_, err = s.tenantID(ctx, s.pool, r.tenant)
				unknown[r.tenant] = err
			}
			switch {
			case errors.Is(err, store.ErrNoTenant):
				if res, stores := dryRun(r); !stores {
					r.res = res
					close(r.done)
					continue
				}
			case err != nil:
				r.err = err
				close(r.done)
				continue
			}
		}
		writes = append(writes, r)
	}
	if len(writes) == 0 {
		return
	}
	if err := s.commit(ctx, writes); err != nil {
		var uc *unknownCommit
		if errors.As(err, &uc) {
			// It may have committed: trying again could apply ops twice.
			for _, r := range writes {
				r.err = err
			}
		} else if len(writes) == 1 {
			writes[0].err = s.retry(ctx, writes[0], err)
		} else {
			// One call broke the shared transaction (or it met a
			// transient failure): retry each alone so the others still
			// succeed.
			for _, r := range writes {
				r.err = s.retry(ctx, r, s.commit(ctx, []*writeReq{r}))
			}
		}
	}
	for _, r := range writes {
		close(r.done)
	}
}

// unknownCommit is a commit whose outcome is unknown: the connection broke
// while committing. Its calls fail without being tried again, and its
// changes are not told to the watcher (they are in the log if it
// committed).
type unknownCommit struct{ err error }

func (e *unknownCommit) Error() string {
	return fmt.Sprintf("postgres: commit: %v (the write may or may not have been applied)", e.err)
}

func (e *unknownCommit) Unwrap() error { return e.err }

// maxRetries is how often a call alone is tried again after a transient
// failure (a deadlock with another client of the database, a lost
// connection).
const maxRetries = 3

func (s *Store) retry(ctx context.Context, r *writeReq, err error) error {
	for i := 0; err != nil && i < maxRetries && transient(err) && s.checkOpen() == nil; i++ {
		time.Sleep(time.Duration(i+1) * 10 * time.Millisecond)
		err = s.commit(ctx, []*writeReq{r})
	}
	return err
}

// transient reports whether err may not happen again: a deadlock or
// serialization failure, or a connection that failed before the
// transaction began.
func transient(err error) bool {
	var uc *unknownCommit
	if errors.As(err, &uc) {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "40P01" || pe.Code == "40001"
	}
	return pgconn.SafeToRetry(err)
}

// dryRun decides whether a write to a tenant that does not exist yet
// stores anything: a tenant is created only by a write that stores an
// entity. Applied to a missing entity, an op can only store one if it does
// so from nothing (a later op finds an entity only if an earlier one stored
// it), so calling every Apply with cur == nil tells; when none stores,
// those calls are the results.
func dryRun(r *writeReq) (res []store.Result, stores bool) {
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

// entRef identifies an entity within a group, by tenant name (a group may
// create its tenants).
type entRef struct {
	tenant, id string
}

// writeLock is the advisory lock of an entity's writes: a 64-bit FNV-1a
// hash of its tenant and id, in the single-bigint key space (the
// migrations' lock is one key there too; history's locks use the two-key
// space).
func (k entRef) writeLock() int64 {
	h := fnv.New64a()
	var n [binary.MaxVarintLen64]byte
	h.Write(n[:binary.PutUvarint(n[:], uint64(len(k.tenant)))])
	h.Write([]byte(k.tenant))
	h.Write([]byte(k.id))
	return int64(h.Sum64())
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// storable reports whether PostgreSQL text can hold id.
func storable(id string) bool {
	return utf8.ValidString(id) && strings.IndexByte(id, 0) < 0
}

// touch is one entity a group changed: its state before the group (orig,
// nil if it did not exist) and now (final, nil if it does not exist now).
type touch struct {
	key   entRef
	tid   int64
	orig  *ngsild.Entity
	final *ngsild.Entity
	// died: it existed and an op of the group deleted it. Alive at the end,
	// it is a new entity (a new row, last in creation order).
	died bool
	born int // when an op last created it (orders the new rows)
	// from: the eid of its row before the group (orig's), to: after it (a
	// new row's is drawn by flush)
	from, to int64
	last     int // its last change in the group's list

	// computed by encode
	doc                   []byte
	shapeSame             bool // updated with the same shape (sameShape): no facts
	origFacts, finalFacts *entityFacts
	geo                   []geoInst // final's geometries
	geoSame               bool      // updated with the same geometries
}

// group is one write transaction's work.
type group struct {
	s       *Store
	reqs    []*writeReq
	tids    []int64
	cur     map[entRef]*ngsild.Entity // each entity as the group sees it now (nil: absent)
	eids    map[entRef]int64          // the eids of the entities read
	touched map[entRef]*touch
	order   []*touch // in first-change order
	births  int
	changes []store.Change
	hist    []histRecord
}

// commit runs reqs in one transaction and fills their results. On error
// nothing is committed (or, if the connection broke while committing, it is
// unknown) and the results are left unset.
func (s *Store) commit(ctx context.Context, reqs []*writeReq) (err error) {
	g := &group{s: s, reqs: reqs, tids: make([]int64, len(reqs)), cur: map[entRef]*ngsild.Entity{}, eids: map[entRef]int64{}, touched: map[entRef]*touch{}}
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		if pgconn.SafeToRetry(err) {
			// A pooled connection the server dropped ("conn closed"): the
			// database cannot be reached, nothing was sent.
			return fmt.Errorf("postgres: begin: %w: %w", store.ErrUnavailable, err)
		}
		return fmt.Errorf("postgres: begin: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	var results [][]store.Result
	var created map[string]int64
	var d *delivery
	err = func() (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("write panicked: %v\n%s", p, debug.Stack())
			}
		}()
		if created, err = g.lockAndLoad(ctx, tx); err != nil {
			return err
		}
		results = g.applyAll()
		now := time.Now()
		if len(g.hist) > 0 {
			if err := s.recordHistory(ctx, tx, now, g.hist); err != nil {
				return fmt.Errorf("record history: %w", err)
			}
		}
		first, err := g.flush(ctx, tx, now)
		if err != nil {
			return err
		}
		if len(g.changes) > 0 {
			for i := range g.changes {
				g.changes[i].Seq, g.changes[i].At = first+uint64(i), now
			}
			d = s.seq.register(g.changes)
		}
		return nil
	}()
	if err == nil {
		if err = tx.Commit(ctx); err != nil {
			var pe *pgconn.PgError
			if errors.As(err, &pe) || errors.Is(err, pgx.ErrTxCommitRollback) {
				err = fmt.Errorf("postgres: commit: %w", err) // the server rolled back
			} else {
				err = &unknownCommit{err}
			}
		}
	}
	committed = err == nil
	if !committed {
		if d != nil {
			s.seq.finish(d, false, s.deliver)
		}
		return err
	}
	for name, tid := range created {
		s.cacheTenant(name, tid)
	}
	if d != nil {
		s.seq.finish(d, true, s.deliver)
	}
	for i, r := range reqs {
		r.res = results[i]
	}
	return nil
}

// lockAndLoad creates the group's new tenants, locks its entities and reads
// them, in one round trip. It returns the tenants it created.
func (g *group) lockAndLoad(ctx context.Context, tx pgx.Tx) (map[string]int64, error) {
	var newNames []string
	for i, r := range g.reqs {
		if tid, ok := g.s.cachedTenant(r.tenant); ok {
			g.tids[i] = tid
		} else if !slices.Contains(newNames, r.tenant) {
			newNames = append(newNames, r.tenant)
		}
	}
	slices.Sort(newNames)
	var keys []entRef
	for _, r := range g.reqs {
		for _, op := range r.ops {
			k := entRef{r.tenant, op.ID}
			if !storable(op.ID) {
				continue // apply fails the op
			}
			if _, ok := g.cur[k]; !ok {
				g.cur[k] = nil
				keys = append(keys, k)
			}
		}
	}
	locks := make([]int64, len(keys))
	for i, k := range keys {
		locks[i] = k.writeLock()
	}
	slices.Sort(locks)
	locks = slices.Compact(locks)
	tenants, ids := make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		tenants[i], ids[i] = k.tenant, k.id
	}

	// Lock order, the same in every transaction: tenants created (sorted),
	// the all-writes lock, entity locks (sorted), then in flush counters
	// (sorted) and change_seq.
	b := &pgx.Batch{}
	if len(newNames) > 0 {
		// A tenant another process creates meanwhile makes this insert wait
		// for its commit, then update its row: either way it is returned.
		b.Queue(`INSERT INTO tenants (name) SELECT * FROM unnest($1::text[])
			ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING name, tid`, newNames)
	}
	entityLocks := len(locks) <= maxEntityLocks
	if entityLocks {
		b.Queue(`SELECT pg_advisory_xact_lock_shared($1, 0)`, int32(writeLockClass))
		// unnest yields the keys in array order: ascending.
		b.Queue(`SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k`, locks)
	} else {
		b.Queue(`SELECT pg_advisory_xact_lock($1, 0)`, int32(writeLockClass))
	}
	// One primary key lookup per entity (LATERAL ... LIMIT 1 keeps the
	// planner from joining otherwise: its generic plan chose bitmap scans).
	b.Queue(`SELECT u.n, e.eid, e.doc FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS u(tenant, id, n)
		JOIN tenants AS t ON t.name = u.tenant
		CROSS JOIN LATERAL (SELECT e.eid, e.doc FROM entities AS e WHERE e.tid = t.tid AND e.id = u.id LIMIT 1) AS e`, tenants, ids)
	br := tx.SendBatch(ctx, b)
	defer br.Close()
	var created map[string]int64
	if len(newNames) > 0 {
		rows, err := br.Query()
		if err != nil {
			return nil, fmt.Errorf("postgres: create tenants: %w", err)
		}
		created = map[string]int64{}
		var name string
		var tid int64
		if _, err := pgx.ForEachRow(rows, []any{&name, &tid}, func() error {
			created[name] = tid
			return nil
		}); err != nil {
			return nil, fmt.Errorf("postgres: create tenants: %w", err)
		}
		for i, r := range g.reqs {
			if tid, ok := created[r.tenant]; ok {
				g.tids[i] = tid
			}
		}
	}
	for range 1 + b2i(entityLocks) {
		if _, err := br.Exec(); err != nil {
			return nil, fmt.Errorf("postgres: lock entities: %w", err)
		}
	}
	rows, err := br.Query()
	if err != nil {
		return nil, fmt.Errorf("postgres: read entities: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var n, eid int64
		var doc []byte
		if err := scanDoc(rows, &doc, &n, &eid); err != nil {
			return nil, fmt.Errorf("postgres: read entities: %w", err)
		}
		e, err := codec.DecodeEntity(doc)
		if err != nil {
			return nil, fmt.Errorf("postgres: decode stored entity %s: %w", ids[n-1], err)
		}
		g.cur[keys[n-1]] = e
		g.eids[keys[n-1]] = eid
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: read entities: %w", err)
	}
	rows.Close()
	if err := br.Close(); err != nil {
		return nil, fmt.Errorf("postgres: read entities: %w", err)
	}
	return created, nil
}

// applyAll runs every op in order, in memory.
func (g *group) applyAll() [][]store.Result {
	results := make([][]store.Result, len(g.reqs))
	for i, r := range g.reqs {
		res := make([]store.Result, len(r.ops))
		for j, op := range r.ops {
			res[j] = g.apply(g.tids[i], r.tenant, op)
		}
		results[i] = res
	}
	return results
}

// apply runs one op: the entity's new state is what later ops of the group
// see, and flush writes the last one. Apply's error goes into the Result.
func (g *group) apply(tid int64, tenant string, op store.Op) store.Result {
	if !storable(op.ID) {
		return store.Result{ID: op.ID, Err: fmt.Errorf("entity id %q cannot be stored: PostgreSQL text holds valid UTF-8 without NUL", op.ID)}
	}
	k := entRef{tenant, op.ID}
	cur := g.cur[k]
	next, aerr := callApply(op, cur)
	if aerr == nil && next != nil && next.ID != op.ID {
		aerr = fmt.Errorf("apply for %q returned entity %q", op.ID, next.ID)
	}
	if aerr == nil {
		g.record(tid, op, cur, next)
	}
	if aerr != nil || next == cur {
		return store.Result{ID: op.ID, Before: cur, After: cur, Err: aerr}
	}
	// Before and After are shared (see store.Op): the entity Apply returned
	// is stored as is and never modified.
	res := store.Result{ID: op.ID, Before: cur, After: next}
	if cur == nil && next == nil {
		return res
	}
	tc := g.touched[k]
	if tc == nil {
		tc = &touch{key: k, tid: tid, orig: cur, from: g.eids[k]}
		g.touched[k] = tc
		g.order = append(g.order, tc)
	}
	if next == nil && tc.orig != nil {
		tc.died = true
	}
	if cur == nil {
		g.births++
		tc.born = g.births
	}
	tc.final = next
	g.cur[k] = next
	g.changes = append(g.changes, store.NewChange(tenant, op.ID, cur, next))
	tc.last = len(g.changes) - 1
	return res
}

// record notes what an applied op records in history (see
// histcore.Recorded).
func (g *group) record(tid int64, op store.Op, cur, next *ngsild.Entity) {
	if types, insts := histcore.Recorded(op, cur, next, !g.s.opts.NoHistory); len(insts) > 0 {
		g.hist = append(g.hist, histRecord{Tenant: tid, EntityID: op.ID, Types: types, Instances: insts})
	}
}

// parallelMin is the least number of entities worth encoding on several
// goroutines.
const parallelMin = 64

// encode computes, for every entity the group changed, its document, its
// counted facts before and after, and its geometries, on all processors
// for large groups.
func (g *group) encode() error {
	kind := g.s.geo
	errs := make([]error, len(g.order))
	work := func(from, step int) {
		for i := from; i < len(g.order); i += step {
			tc := g.order[i]
			errs[i] = func() (err error) {
				defer func() {
					if p := recover(); p != nil {
						err = fmt.Errorf("panicked: %v", p)
					}
				}()
				updated := tc.orig != nil && !tc.died && tc.final != nil
				tc.shapeSame = updated && sameShape(tc.orig, tc.final)
				if tc.orig != nil && !tc.shapeSame {
					tc.origFacts = factsOf(tc.orig)
				}
				if tc.final == nil {
					return nil
				}
				if !tc.shapeSame {
					tc.finalFacts = factsOf(tc.final)
				}
				if tc.doc, err = codec.EncodeEntity(tc.final); err != nil {
					return err
				}
				if updated {
					if tc.geoSame, err = sameGeo(tc.orig, tc.final, kind); err != nil || tc.geoSame {
						return err
					}
				}
				tc.geo, err = geoInsts(tc.final, kind)
				return err
			}()
		}
	}
	n := min(runtime.GOMAXPROCS(0), len(g.order)/parallelMin)
	if n <= 1 {
		work(0, 1)
	} else {
		var wg sync.WaitGroup
		for w := range n {
			wg.Go(func() { work(w, n) })
		}
		wg.Wait()
	}
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("postgres: encode entity %s: %w", g.order[i].key.id, err)
		}
	}
	return nil
}

// drawEIDs gives the group's new rows their eids, in creation order, from
// the identity's sequence: the change log names them (effects), so they are
// known before the rows are written.
func (g *group) drawEIDs(ctx context.Context, tx pgx.Tx, births []*touch) error {
	if len(births) == 0 {
		return nil
	}
	rows, err := tx.Query(ctx, `SELECT nextval(pg_get_serial_sequence('entities', 'eid')) FROM generate_series(1, $1)`, len(births))
	if err != nil {
		return fmt.Errorf("postgres: draw entity numbers: %w", err)
	}
	eids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return fmt.Errorf("postgres: draw entity numbers: %w", err)
	}
	if len(eids) != len(births) {
		return fmt.Errorf("postgres: draw entity numbers: %d numbers for %d entities", len(eids), len(births))
	}
	slices.Sort(eids)
	for i, tc := range births {
		tc.to = eids[i]
	}
	return nil
}

// effects is what the group does to entity rows, for the change log.
func (g *group) effects() []codec.RowEffect {
	var out []codec.RowEffect
	for _, tc := range g.order {
		e := codec.RowEffect{Change: -1}
		if tc.orig != nil {
			e.From = tc.from
		}
		if tc.final != nil {
			e.Change = tc.last
			if tc.orig != nil && !tc.died {
				e.To = tc.from
			} else {
				e.To = tc.to
			}
		}
		if e.From != 0 || e.To != 0 {
			out = append(out, e)
		}
	}
	return out
}

// entRows collects entity rows for one multi-row statement.
type entRows struct {
	tids                []int64
	ids                 []string
	types, attrs, scope []string // array literals
	docs                [][]byte
}

func (r *entRows) add(tc *touch) {
	r.tids = append(r.tids, tc.tid)
	r.ids = append(r.ids, tc.key.id)
	if tc.final != nil {
		r.types = append(r.types, arrayLiteral(tc.finalFacts.Types))
		r.attrs = append(r.attrs, arrayLiteral(attrNames(tc.finalFacts)))
		r.scope = append(r.scope, arrayLiteral(tc.final.Scopes))
		r.docs = append(r.docs, tc.doc)
	}
}

// addDoc adds the row of an update that changes the document only.
func (r *entRows) addDoc(tc *touch) {
	r.tids = append(r.tids, tc.tid)
	r.ids = append(r.ids, tc.key.id)
	r.docs = append(r.docs, tc.doc)
}

// flush writes the net effect of the group's ops in one round trip: entity
// rows, geometries, counters, and last the change log. It returns the
// number of the group's first change.
func (g *group) flush(ctx context.Context, tx pgx.Tx, now time.Time) (uint64, error) {
	if len(g.order) == 0 && len(g.changes) == 0 {
		return 0, nil
	}
	if err := g.encode(); err != nil {
		return 0, err
	}
	var dels, geoDels, upds, docUpds, inss entRows
	var newGeo geoRows
	var births []*touch
	cnt := newCounters()
	for _, tc := range g.order {
		existed := tc.orig != nil
		if !existed && tc.final == nil {
			continue // created and deleted within the group
		}
		if existed && (tc.final == nil || tc.died) {
			dels.add(&touch{key: tc.key, tid: tc.tid})
		}
		if existed && (tc.final == nil || tc.died || !tc.geoSame) {
			geoDels.add(&touch{key: tc.key, tid: tc.tid})
		}
		switch {
		case tc.final == nil:
		case tc.shapeSame:
			docUpds.addDoc(tc)
		case existed && !tc.died:
			upds.add(tc)
		default:
			births = append(births, tc)
		}
		if tc.final != nil && (!existed || tc.died || !tc.geoSame) {
			newGeo.add(tc.tid, tc.key.id, tc.final.Types, tc.geo)
		}
		if !tc.shapeSame {
			cnt.count(tc.tid, tc.origFacts, tc.finalFacts)
		}
	}
	slices.SortFunc(births, func(a, b *touch) int { return cmp.Compare(a.born, b.born) })
	if err := g.drawEIDs(ctx, tx, births); err != nil {
		return 0, err
	}
	var newEIDs []int64
	for _, tc := range births {
		inss.add(tc)
		newEIDs = append(newEIDs, tc.to)
	}

	type check struct {
		what string
		rows int64 // rows the statement must affect; -1: any
	}
	var checks []check
	b := &pgx.Batch{}
	if len(dels.ids) > 0 {
		b.Queue(`DELETE FROM entities AS e USING unnest($1::bigint[], $2::text[]) AS u(tid, id)
			WHERE e.tid = u.tid AND e.id = u.id`, dels.tids, dels.ids)
		checks = append(checks, check{"delete entities", int64(len(dels.ids))})
	}
	if len(geoDels.ids) > 0 {
		b.Queue(`DELETE FROM entity_geo AS g USING unnest($1::bigint[], $2::text[]) AS u(tid, id)
			WHERE g.tid = u.tid AND g.id = u.id`, geoDels.tids, geoDels.ids)
		checks = append(checks, check{"delete geometries", -1})
	}
	if len(upds.ids) > 0 {
		b.Queue(`UPDATE entities AS e SET ver = e.ver + 1, types = u.types::text[], attrs = u.attrs::text[],
				scopes = u.scopes::text[], doc = u.doc
			FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bytea[]) AS u(tid, id, types, attrs, scopes, doc)
			WHERE e.tid = u.tid AND e.id = u.id`, upds.tids, upds.ids, upds.types, upds.attrs, upds.scope, upds.docs)
		checks = append(checks, check{"update entities", int64(len(upds.ids))})
	}
	if len(docUpds.ids) > 0 {
		b.Queue(`UPDATE entities AS e SET ver = e.ver + 1, doc = u.doc
			FROM unnest($1::bigint[], $2::text[], $3::bytea[]) AS u(tid, id, doc)
			WHERE e.tid = u.tid AND e.id = u.id`, docUpds.tids, docUpds.ids, docUpds.docs)
		checks = append(checks, check{"update entities", int64(len(docUpds.ids))})
	}
	if len(inss.ids) > 0 {
		b.Queue(`INSERT INTO entities (tid, id, eid, types, attrs, scopes, doc) OVERRIDING SYSTEM VALUE
			SELECT u.tid, u.id, u.eid, u.types::text[], u.attrs::text[], u.scopes::text[], u.doc
			FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::bytea[])
				AS u(tid, id, eid, types, attrs, scopes, doc)`,
			inss.tids, inss.ids, newEIDs, inss.types, inss.attrs, inss.scope, inss.docs)
		checks = append(checks, check{"insert entities", int64(len(inss.ids))})
	}
	if len(newGeo.ids) > 0 {
		sql, args := newGeo.insertSQL(g.s.geo)
		b.Queue(sql, args...)
		checks = append(checks, check{"insert geometries", int64(len(newGeo.ids))})
	}
	nCounters := b.Len()
	cnt.queue(b)
	for range b.Len() - nCounters {
		checks = append(checks, check{"count types and attributes", -1})
	}
	var data []byte
	if len(g.changes) > 0 {
		docs := make(map[*ngsild.Entity][]byte, len(g.order))
		for _, tc := range g.order {
			if tc.final != nil {
				docs[tc.final] = tc.doc
			}
		}
		var err error
		if data, err = encodeChanges(g.changes, now, docs, g.effects()); err != nil {
			return 0, fmt.Errorf("postgres: %w", err)
		}
		// Last: the change_seq row stays locked until the commit.
		b.Queue(`WITH s AS (UPDATE change_seq SET last = last + $1 WHERE id = 1 RETURNING last)
			INSERT INTO changes (seq, n, data) SELECT s.last - $1 + 1, $1, $2 FROM s RETURNING seq`, len(g.changes), data)
	}
	if b.Len() == 0 {
		return 0, nil
	}
	br := tx.SendBatch(ctx, b)
	defer br.Close()
	for _, c := range checks {
		tag, err := br.Exec()
		if err != nil {
			return 0, fmt.Errorf("postgres: %s: %w", c.what, err)
		}
		if c.rows >= 0 && tag.RowsAffected() != c.rows {
			// Only a writer that bypassed the entity locks can cause this.
			return 0, fmt.Errorf("postgres: %s: %d rows changed, want %d", c.what, tag.RowsAffected(), c.rows)
		}
	}
	var first int64
	if data != nil {
		if err := br.QueryRow().Scan(&first); err != nil {
			return 0, fmt.Errorf("postgres: log changes: %w", err)
		}
	}
	if err := br.Close(); err != nil {
		return 0, fmt.Errorf("postgres: write entities: %w", err)
	}
	return uint64(first), nil
}

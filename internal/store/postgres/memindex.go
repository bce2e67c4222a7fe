package postgres

// The query index. Like the embedded store, each process keeps the query
// index of package memindex in memory, so that a query decides its
// candidates there and reads PostgreSQL only for the page it returns (and
// for the few entities the index cannot decide). Deciding candidates in SQL
// meant a GiST scan and the decoding of every candidate's document: half
// the embedded store's query rate at best (docs/PERFORMANCE.md).
//
// Every process writes, so the index follows the change log, which holds
// every process's commits in commit order: each row ends with what its group
// did to entity rows (codec.RowEffect, written by the writer with the eids
// it drew), and the follower applies rows in order. A query first reads
// the log's last number and waits until the index has applied it, so it
// sees every write acknowledged before it began, on any process; the
// entities it loads are checked against the query again (memindex.Query).
//
// Building: one REPEATABLE READ transaction reads the log's position and
// every entity, in the same snapshot; the follower starts from that
// position at once, and entities it sets meanwhile are newer than the
// build's (memindex.Index.Load skips them). Until the index is built, and
// whenever it cannot follow (the log was trimmed past it, a row without
// effects from an older zenne), queries are answered by SQL and the index
// is built again.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store"
	"github.com/zenne-city/zenne/internal/store/codec"
	"github.com/zenne-city/zenne/internal/store/memindex"
)

// queryIndex is one generation of the index with its follower.
type queryIndex struct {
	ix    *memindex.Index
	built atomic.Bool

	mu       sync.Mutex
	applied  uint64        // the last change number applied
	advanced chan struct{} // closed when applied moves or the follower stops
	stopped  error         // why the follower stopped; nil while it runs
	kick     chan struct{} // asks the follower to read the log now
}

// followEvery is how often the follower reads the log when nobody asks:
// writes of other processes reach an idle process's index within it.
const followEvery = 200 * time.Millisecond

// followBatch is the most log rows read at once.
const followBatch = 64

// runQueryIndex builds and follows the index until the store closes,
// starting over after a failure. It runs in s.bg.
func (s *Store) runQueryIndex() {
	defer s.bg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-s.quit
		cancel()
	}()
	log := slog.Default().With("store", "postgres")
	var first sync.Once
	firstDone := func(err error) {
		first.Do(func() {
			s.firstIndexErr = err
			close(s.firstIndex)
		})
	}
	defer firstDone(store.ErrClosed)
	wait := time.Second // after a failure; doubled up to a minute, reset by a build
	for {
		qi := &queryIndex{ix: memindex.New(), advanced: make(chan struct{}), kick: make(chan struct{}, 1)}
		start := time.Now()
		err := s.buildAndFollow(ctx, qi, func() {
			log.Info("query index built", "entities", qi.ix.Size(), "duration", time.Since(start).Round(time.Millisecond))
			wait = time.Second
			firstDone(nil)
		})
		s.qindex.CompareAndSwap(qi, nil)
		qi.stop(err)
		if ctx.Err() != nil {
			return
		}
		firstDone(err)
		log.Warn("the query index stopped following the change log; queries read PostgreSQL alone until it is built again",
			"err", err, "retry in", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Minute)
	}
}

// buildAndFollow builds qi and keeps it current until ctx ends or the log
// cannot be followed; built is called once the build is complete.
func (s *Store) buildAndFollow(ctx context.Context, qi *queryIndex, built func()) error {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("build the query index: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var last int64
	if err := tx.QueryRow(ctx, sqlLastChange).Scan(&last); err != nil {
		return fmt.Errorf("build the query index: %w", err)
	}
	qi.applied = uint64(last)
	s.qindex.Store(qi)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	followed := make(chan error, 1)
	go func() { followed <- s.follow(ctx, qi) }()
	if err := s.buildIndex(ctx, tx, qi.ix); err != nil {
		cancel()
		<-followed
		return err
	}
	tx.Rollback(ctx) // the snapshot is no longer needed
	qi.ix.Finish()
	qi.built.Store(true)
	built()
	return <-followed
}

// buildIndex loads every entity of tx's snapshot into ix: one goroutine
// reads, the others project documents.
func (s *Store) buildIndex(ctx context.Context, tx pgx.Tx, ix *memindex.Index) error {
	type row struct {
		eid, tid int64
		doc      []byte
	}
	const batchSize = 512
	batches := make(chan []row, runtime.GOMAXPROCS(0))
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(batches)
		rows, err := tx.Query(gctx, `SELECT eid, tid, doc FROM entities`)
		if err != nil {
			return fmt.Errorf("build the query index: %w", err)
		}
		defer rows.Close()
		batch := make([]row, 0, batchSize)
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.eid, &r.tid, &r.doc); err != nil {
				return fmt.Errorf("build the query index: %w", err)
			}
			if batch = append(batch, r); len(batch) == batchSize {
				select {
				case batches <- batch:
				case <-gctx.Done():
					return gctx.Err()
				}
				batch = make([]row, 0, batchSize)
			}
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("build the query index: %w", err)
		}
		batches <- batch
		return nil
	})
	for range runtime.GOMAXPROCS(0) {
		g.Go(func() error {
			names := ix.Names()
			for batch := range batches {
				eids := make([]int64, len(batch))
				recs := make([]*memindex.Rec, len(batch))
				for i, r := range batch {
					rec, err := names.Project(r.doc, r.tid, 0)
					if err != nil {
						return fmt.Errorf("build the query index: entity %d: %w", r.eid, err)
					}
					eids[i], recs[i] = r.eid, rec
				}
				ix.Load(eids, recs)
			}
			return nil
		})
	}
	return g.Wait()
}

// follow applies the log to qi from qi.applied on, until ctx ends or a row
// cannot be applied.
func (s *Store) follow(ctx context.Context, qi *queryIndex) error {
	tick := time.NewTicker(followEvery)
	defer tick.Stop()
	names := qi.ix.Names()
	for {
		more, err := s.followOnce(ctx, qi, names)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		if more {
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		case <-qi.kick:
		}
	}
}

// followOnce applies the next rows of the log; more reports that there may
// be more to read at once.
func (s *Store) followOnce(ctx context.Context, qi *queryIndex, names *memindex.Names) (more bool, err error) {
	qi.mu.Lock()
	after := qi.applied
	qi.mu.Unlock()
	next := after + 1
	nrows := 0
	tenantOf := s.tenantOf(ctx)
	last, err := s.logRows(ctx, after, followBatch, func(first uint64, n int, data []byte) (bool, error) {
		nrows++
		end := first + uint64(n)
		switch {
		case end <= next:
			return true, nil // applied already
		case first > next:
			return false, fmt.Errorf("%w: the query index needs change %d, the log goes on at %d", store.ErrChangesGone, next, first)
		}
		changes, err := indexChanges(data, first, n, names, tenantOf)
		if err != nil {
			return false, fmt.Errorf("row %d: %w", first, err)
		}
		qi.ix.Apply(changes)
		next = end
		qi.advance(end - 1)
		return true, nil
	})
	switch {
	case err != nil:
		return false, fmt.Errorf("follow the change log: %w", err)
	case last > after && next == after+1:
		return false, fmt.Errorf("follow the change log: %w: the query index needs change %d, the log ends before it", store.ErrChangesGone, next)
	}
	return nrows == followBatch, nil
}

// tenantOf returns a function giving tenant names' tids.
func (s *Store) tenantOf(ctx context.Context) func(name []byte) (int64, error) {
	return func(name []byte) (int64, error) {
		if tid, ok := s.cachedTenant(string(name)); ok {
			return tid, nil
		}
		return s.tenantID(ctx, s.pool, string(name))
	}
}

// indexChanges turns a log row (its first change numbered first) into the
// index changes of its effects.
func indexChanges(data []byte, first uint64, n int, names *memindex.Names, tenantOf func([]byte) (int64, error)) ([]memindex.Change, error) {
	entries, effects, ok, err := codec.ScanLogRow(data, n)
	switch {
	case err != nil:
		return nil, err
	case !ok:
		return nil, errors.New("the row does not say which entity rows it changed (written by an older zenne)")
	}
	out := make([]memindex.Change, 0, len(effects)+1)
	for _, e := range effects {
		if e.From != 0 && e.From != e.To {
			out = append(out, memindex.Change{EID: e.From})
		}
		if e.To == 0 {
			continue
		}
		if e.Change < 0 || len(entries[e.Change].After) == 0 {
			return nil, fmt.Errorf("%w: row %d has no document for entity row %d", codec.ErrCorrupt, first, e.To)
		}
		c := &entries[e.Change]
		tid, err := tenantOf(c.Tenant)
		if err != nil {
			return nil, err
		}
		rec, err := names.Project(c.After, tid, int64(first)+int64(e.Change))
		if err != nil {
			return nil, fmt.Errorf("entity %s: %w", c.ID, err)
		}
		out = append(out, memindex.Change{EID: e.To, Rec: rec})
	}
	return out, nil
}

// advance records that changes up to seq are applied.
func (qi *queryIndex) advance(seq uint64) {
	qi.mu.Lock()
	defer qi.mu.Unlock()
	if seq > qi.applied {
		qi.applied = seq
		close(qi.advanced)
		qi.advanced = make(chan struct{})
	}
}

// stop records that the follower stopped, releasing the queries waiting.
func (qi *queryIndex) stop(err error) {
	qi.mu.Lock()
	defer qi.mu.Unlock()
	if qi.stopped == nil {
		if err == nil {
			err = errors.New("the query index stopped")
		}
		qi.stopped = err
		close(qi.advanced)
	}
}

// waitFor waits until the index applied change seq; false: the follower
// stopped, the index cannot answer.
func (qi *queryIndex) waitFor(ctx context.Context, seq uint64) (bool, error) {
	for {
		qi.mu.Lock()
		applied, stopped, advanced := qi.applied, qi.stopped, qi.advanced
		qi.mu.Unlock()
		switch {
		case stopped != nil:
			return false, nil
		case applied >= seq:
			return true, nil
		}
		select {
		case qi.kick <- struct{}{}:
		default:
		}
		select {
		case <-advanced:
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
}

// WaitIndex waits until the query index is first built after Open (it
// returns at once with NoQueryIndex), and returns why if that failed:
// until then queries are answered, more slowly, by SQL alone.
func (s *Store) WaitIndex(ctx context.Context) error {
	select {
	case <-s.firstIndex:
		return s.firstIndexErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// indexQuery answers from the index when it is built and following; ok is
// false when it cannot, and the caller asks SQL.
func (s *Store) indexQuery(ctx context.Context, tid int64, q *store.Query, limit, offset int) (res *store.QueryResult, ok bool, err error) {
	qi := s.qindex.Load()
	if qi == nil || !qi.built.Load() {
		return nil, false, nil
	}
	var last int64
	if err := s.pool.QueryRow(ctx, sqlLastChange).Scan(&last); err != nil {
		return nil, true, s.wrapClosed(fmt.Errorf("postgres: query: %w", err))
	}
	if ok, err := qi.waitFor(ctx, uint64(last)); !ok || err != nil {
		return nil, ok, err
	}
	res, err = qi.ix.Query(ctx, tid, q, limit, offset, indexSource{s})
	return res, true, s.wrapClosed(err)
}

// indexSource is what the index reads from PostgreSQL (memindex.Source).
type indexSource struct{ s *Store }

func (src indexSource) EIDs(ctx context.Context, tid int64, ids []string) (map[string]int64, error) {
	out := make(map[string]int64, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := src.s.pool.Query(ctx, `SELECT id, eid FROM entities WHERE tid = $1 AND id = ANY($2::text[])`, tid, storableIDs(ids))
	if err != nil {
		return nil, fmt.Errorf("postgres: query: %w", err)
	}
	var id string
	var eid int64
	_, err = pgx.ForEachRow(rows, []any{&id, &eid}, func() error {
		out[id] = eid
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: query: %w", err)
	}
	return out, nil
}

func (src indexSource) Load(ctx context.Context, tid int64, hits []memindex.Hit, found func(eid int64, e *ngsild.Entity)) error {
	eids := make([]int64, len(hits))
	for i, h := range hits {
		eids[i] = h.EID
	}
	rows, err := src.s.pool.Query(ctx, `SELECT eid, doc FROM entities WHERE tid = $1 AND eid = ANY($2::bigint[])`, tid, eids)
	if err != nil {
		return fmt.Errorf("postgres: query load: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var eid int64
		var doc []byte
		if err := scanDoc(rows, &doc, &eid); err != nil {
			return fmt.Errorf("postgres: query load: %w", err)
		}
		e, err := codec.DecodeEntity(doc)
		if err != nil {
			return fmt.Errorf("postgres: decode entity %d: %w", eid, err)
		}
		found(eid, e)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("postgres: query load: %w", err)
	}
	return nil
}

var _ memindex.Source = indexSource{}

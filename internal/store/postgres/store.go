// Package postgres is the scale-out backend of the store contract: state,
// history, the change log and the subscription queue in PostgreSQL (with
// PostGIS when the server has it), shared by several zenne instances.
//
// Every instance may write. A write group takes a transaction-level
// advisory lock per entity it touches (one key per tenant and id, in one
// global order so two groups never deadlock) before it reads them, so
// read-modify-write ops of two instances on one entity never lose an update
// and two instances cannot both create one id. It numbers its changes from
// one counter row updated last in the transaction, so change numbers follow
// commit order across instances, without gaps (see writer.go).
//
// Queries select candidates with SQL (GIN indexes on types and attribute
// names, a GiST index on geometries) and decide them in Go with
// store.Query.Match, as every backend does (query.go).
//
// Geometries are PostGIS geometries when the first migration can create the
// extension, else bounding boxes of the native box type (geo.go); the
// setting zenne.postgis=off (in the URL, ?zenne.postgis=off, or ALTER
// DATABASE ... SET zenne.postgis = off) chooses boxes. The choice is the
// database's, made once.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/zenne-city/zenne/internal/store"
)

// Options tune a Store. Zero values take defaults.
type Options struct {
	// MaxConns is the size of the connection pool (default 4*GOMAXPROCS, at least 8).
	MaxConns int
	// MaxBatchOps caps the ops committed in one transaction (default 2000).
	MaxBatchOps int
	// Writers is how many write transactions of this process may run at
	// once (default 2): while one group commits, the next reads and
	// applies its ops. The URL parameter zenne.writers=N sets it: several
	// processes on one database make bigger groups with 1 each
	// (docs/PERFORMANCE.md).
	Writers int
	// Retention rules for history, as for the embedded store.
	Retention store.Retention
	// SealAfter is how long recorded history stays in its head rows before
	// it is sealed into compressed chunks (default 10 minutes).
	SealAfter time.Duration
	// NoHistory turns recording off: writes record nothing (the temporal
	// API still reads and provisions), as for the embedded store.
	NoHistory bool
	// NoQueryIndex answers queries with SQL alone, without the in-memory
	// query index (memindex.go), which takes about 360 bytes per entity.
	// The URL parameter zenne.query_index=off sets it.
	NoQueryIndex bool
}

// Store is a PostgreSQL-backed store.Store.
type Store struct {
	opts Options
	pool *pgxpool.Pool
	geo  geoKind // how entity_geo holds geometries (geo.go)

	tenantsMu sync.RWMutex
	tenants   map[string]int64 // name -> tid, of committed tenants

	wch    chan *writeReq // Write calls waiting for a writer (writer.go)
	seq    sequencer      // hands commits to the watcher in commit order (changes.go)
	last   atomic.Uint64  // the last change number this process knows committed
	watch  atomic.Pointer[func([]store.Change)]
	qindex atomic.Pointer[queryIndex] // nil or not built: queries use SQL alone (memindex.go)
	// firstIndex is closed when the first build of the query index ends,
	// with firstIndexErr set if it failed.
	firstIndex    chan struct{}
	firstIndexErr error
	writers       sync.WaitGroup
	stopped       chan struct{} // closed when every writer has stopped

	// quit is closed by Close: writers drain what is queued and stop, then
	// the background jobs in bg are waited for before the pool closes.
	quit      chan struct{}
	bg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

var (
	_ store.Store         = (*Store)(nil)
	_ store.Subscriptions = (*Store)(nil)
)

// Open connects to the database at url (postgres://...), runs the schema
// migrations it has not run yet and returns the store.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	opts.defaults()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	cfg.MaxConns = int32(opts.MaxConns)
	// zenne's own URL parameters, not PostgreSQL settings.
	if v, ok := cfg.ConnConfig.RuntimeParams["zenne.query_index"]; ok {
		delete(cfg.ConnConfig.RuntimeParams, "zenne.query_index")
		opts.NoQueryIndex = opts.NoQueryIndex || v == "off"
	}
	if v, ok := cfg.ConnConfig.RuntimeParams["zenne.writers"]; ok {
		delete(cfg.ConnConfig.RuntimeParams, "zenne.writers")
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 64 {
			return nil, fmt.Errorf("postgres: zenne.writers=%q: want a number of write transactions from 1 to 64", v)
		}
		opts.Writers = n
	}
	// Generic plans: the store's statements have fixed shapes and their
	// parameters (ids, types, days) do not change which plan is right, while
	// custom plans cost planning time on every execution (milliseconds with
	// history's monthly partitions) and, once statistics exist, chose to
	// hash every chunk of a year for a lastN read of 1,000 sensors (150 ms
	// instead of 13). A URL may still set plan_cache_mode.
	if _, set := cfg.ConnConfig.RuntimeParams["plan_cache_mode"]; !set {
		cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_generic_plan"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	s := &Store{opts: opts, pool: pool, tenants: map[string]int64{},
		wch: make(chan *writeReq, 1024), quit: make(chan struct{}), stopped: make(chan struct{}), firstIndex: make(chan struct{})}
	fail := func(err error) (*Store, error) {
		pool.Close()
		return nil, err
	}
	if err := s.migrate(ctx, migrations()); err != nil {
		return fail(err)
	}
	if s.geo, err = readGeoKind(ctx, pool); err != nil {
		return fail(err)
	}
	var last int64
	if err := pool.QueryRow(ctx, sqlLastChange).Scan(&last); err != nil {
		return fail(fmt.Errorf("postgres: reading the change log position: %w", err))
	}
	s.last.Store(uint64(last))
	for range opts.Writers {
		s.writers.Add(1)
		go s.writer()
	}
	go func() {
		s.writers.Wait()
		close(s.stopped)
	}()
	s.startHistory() // sealing and retention (histseal.go), stopped by Close
	if opts.NoQueryIndex {
		close(s.firstIndex)
	} else {
		s.bg.Add(1)
		go s.runQueryIndex()
	}
	return s, nil
}

func (s *Store) checkOpen() error {
	select {
	case <-s.quit:
		return store.ErrClosed
	default:
		return nil
	}
}

// Tenants lists the tenants, the default tenant ("") first.
func (s *Store) Tenants(ctx context.Context) ([]string, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT name FROM tenants ORDER BY tid`)
	if err != nil {
		return nil, fmt.Errorf("postgres: list tenants: %w", err)
	}
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, fmt.Errorf("postgres: list tenants: %w", err)
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: list tenants: %w", err)
	}
	return out, nil
}

// pingTimeout bounds Ping when its context has no deadline, so a readiness
// probe answers "not ready" instead of hanging on an unreachable server.
const pingTimeout = 5 * time.Second

// Ping reports whether the database answers (readiness).
func (s *Store) Ping(ctx context.Context) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, pingTimeout)
		defer cancel()
	}
	var one int
	if err := s.pool.QueryRow(ctx, `SELECT 1`).Scan(&one); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}

// Close stops accepting writes, lets the writers commit what is queued,
// waits for background jobs and closes the pool. It is safe to call more
// than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.quit)
		<-s.stopped
		s.bg.Wait()
		s.pool.Close()
	})
	return s.closeErr
}

// wrapClosed makes an error of a call that raced with Close an
// store.ErrClosed (the pool closes under it), keeping the cause.
func (s *Store) wrapClosed(err error) error {
	if err != nil && s.checkOpen() != nil && !errors.Is(err, store.ErrClosed) {
		return fmt.Errorf("%w: %w", store.ErrClosed, err)
	}
	return err
}

// Package sqlite is the embedded zenne store: one SQLite file (pure-Go driver
// modernc.org/sqlite, no cgo) in WAL mode.
//
// Durability: the file runs with journal_mode=WAL and synchronous=NORMAL. A
// commit appends to the WAL with write(2) but does not fsync it, so a committed
// write survives a crash of the process (kill -9, panic, OOM kill) because the
// kernel still holds the data, but the last transactions may be lost on power
// failure or kernel crash. That is the durability zenne promises for the
// embedded store; a checkpoint (which fsyncs) makes everything older safe
// against power loss too. Set Options.SyncFull for fsync on every commit.
//
// Sharing: entities are immutable once stored. The entity an Apply returns
// is stored and cached as is, and handed out as Result.After (and later as
// Before and as cur to the next Apply); Result.Before/After must therefore be
// treated as read-only by callers, as must the entities Get and Query return
// (they come from the same cache).
//
// Concurrency: all writes go through one writer goroutine that owns the only
// write connection and commits the pending writes of all callers in one
// transaction (group commit, see writer.go). Reads use a pool of read-only
// connections; WAL lets them run while the writer commits.
//
// Queries: SQLite holds one row per entity; what queries select and filter on
// is held in memory (package memindex), built when the store opens and kept by the
// writer.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/zenne-city/zenne/internal/store"
	"github.com/zenne-city/zenne/internal/store/memindex"
)

// Options configure a Store. The zero value is a good default.
type Options struct {
	// ReadConns is the size of the reader connection pool (default 2*GOMAXPROCS, at least 4).
	ReadConns int
	// MaxBatchOps caps the ops committed in one transaction (default 2000).
	MaxBatchOps int
	// CacheEntities is the number of decoded entities kept in memory
	// (default 20,000; negative disables the cache). Queries do not need
	// it (the query index holds what they filter on); it spares reads of
	// entities written or read often.
	CacheEntities int
	// BusyTimeoutMS is SQLite's busy_timeout in milliseconds (default 5000).
	BusyTimeoutMS int
	// CacheKiB is SQLite's page cache per connection in KiB (default 65536 for the writer, a quarter for readers).
	CacheKiB int
	// SyncFull makes every commit fsync (synchronous=FULL): durable against
	// power loss, much slower.
	SyncFull bool
	// Log receives the store's few messages (the index build); nil: none.
	Log *slog.Logger
	// SealAfter is how long history records stay in the head (one row per
	// write) before they move into compressed chunks (default 10 minutes);
	// SealEvery is how often that runs (default a minute, or half of
	// SealAfter when that is shorter). See history.go.
	SealAfter, SealEvery time.Duration
	// NoHistory turns history recording off: writes record nothing (the
	// temporal API still reads and provisions). For installations that keep
	// history elsewhere, and to measure what recording costs.
	NoHistory bool
	// Retention ages history (histretain.go); no rules keep it all. It is
	// applied every RetentionEvery (default an hour).
	Retention      store.Retention
	RetentionEvery time.Duration
}

func (o *Options) defaults() {
	if o.ReadConns <= 0 {
		o.ReadConns = max(4, 2*runtime.GOMAXPROCS(0))
	}
	if o.MaxBatchOps <= 0 {
		o.MaxBatchOps = 2000
	}
	if o.CacheEntities == 0 {
		o.CacheEntities = 20_000
	} else if o.CacheEntities < 0 {
		o.CacheEntities = 0
	}
	if o.BusyTimeoutMS <= 0 {
		o.BusyTimeoutMS = 5000
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.CacheKiB <= 0 {
		o.CacheKiB = 65536
	}
	if o.SealAfter <= 0 {
		o.SealAfter = 10 * time.Minute
	}
	if o.RetentionEvery <= 0 {
		o.RetentionEvery = time.Hour
	}
	if o.SealEvery <= 0 {
		o.SealEvery = max(min(time.Minute, o.SealAfter/2), 10*time.Millisecond)
	}
}

// Store is the SQLite implementation of store.Store.
type Store struct {
	opts   Options
	path   string
	wdb    *sql.DB   // the writer's pool, one connection
	wconn  *sql.Conn // owned by the writer goroutine
	rdb    *sql.DB   // readers
	cache  *entityCache
	rs     readStmts
	rstmts []*sql.Stmt

	// dictionaries, committed state only; the writer adds under mu after commit.
	mu      sync.RWMutex
	tenants map[string]int64
	names   map[string]int64
	nameOf  map[int64]string

	cdb      *sql.DB       // the checkpointer's connection
	kick     chan struct{} // the writer committed
	ckptDone chan struct{} // closed when the checkpointer has stopped
	sealDone chan struct{} // closed when the history sealer has stopped

	wch       chan *writeReq
	quit      chan struct{} // closed by Close: the writer drains and stops
	stopped   chan struct{} // closed when the writer has stopped
	closeOnce sync.Once
	closeErr  error

	w *writer

	mem       *memindex.Index // what queries read (memindex.go)
	memCancel context.CancelFunc
	memDone   chan struct{} // closed when the build has stopped
	buildErr  error         // why the build failed (queries then use SQL); read after memDone

	lock *os.File // held while open (lock_unix.go)

	heads *headIndex // each entity's unsealed history rows (headindex.go)

	lastVer atomic.Int64                         // the last committed version = the last change's Seq (changes.go)
	watch   atomic.Pointer[func([]store.Change)] // WatchChanges

	leaseMu sync.Mutex
	leases  map[string]lease // lease.go
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the store in the SQLite file at path and
// brings its schema up to date.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	opts.defaults()
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
	}
	lock, err := lockFile(path)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	sync := "NORMAL"
	if opts.SyncFull {
		sync = "FULL"
	}
	dsn := func(cacheKiB int, readOnly bool) string {
		// The writer never checkpoints: the checkpointer goroutine does,
		// off the commit path (see checkpoint.go).
		q := url.Values{}
		q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", opts.BusyTimeoutMS))
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous("+sync+")")
		q.Add("_pragma", fmt.Sprintf("cache_size(-%d)", cacheKiB))
		q.Add("_pragma", "temp_store(MEMORY)")
		q.Add("_pragma", "wal_autocheckpoint(0)")
		// A WAL that grew under a long burst of writes is cut back when it
		// starts again, instead of keeping its largest size on disk.
		q.Add("_pragma", fmt.Sprintf("journal_size_limit(%d)", 64<<20))
		if readOnly {
			q.Add("_pragma", "query_only(1)")
		}
		return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
	}
	s := &Store{
		opts:    opts,
		path:    path,
		cache:   newEntityCache(opts.CacheEntities),
		tenants: map[string]int64{},
		names:   map[string]int64{},
		nameOf:  map[int64]string{},
		wch:     make(chan *writeReq, 1024),
		quit:    make(chan struct{}),
		stopped: make(chan struct{}),
		lock:    lock,
	}
	if s.wdb, err = sql.Open("sqlite", dsn(opts.CacheKiB, false)); err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	s.wdb.SetMaxOpenConns(1)
	s.wdb.SetMaxIdleConns(1)
	s.wdb.SetConnMaxLifetime(0)
	s.wdb.SetConnMaxIdleTime(0)
	fail := func(err error) (*Store, error) {
		if s.wconn != nil {
			s.wconn.Close()
		}
		s.wdb.Close()
		if s.rdb != nil {
			s.rdb.Close()
		}
		if s.cdb != nil {
			s.cdb.Close()
		}
		s.unlock()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if s.wconn, err = s.wdb.Conn(ctx); err != nil {
		return fail(err)
	}
	if err := migrate(ctx, s.wconn); err != nil {
		return fail(err)
	}
	if err := s.loadDictionaries(ctx); err != nil {
		return fail(err)
	}
	s.heads = newHeadIndex()
	if err := s.heads.load(ctx, s.wconn); err != nil {
		return fail(fmt.Errorf("read history head: %w", err))
	}
	if s.rdb, err = sql.Open("sqlite", dsn(max(2048, opts.CacheKiB/4), true)); err != nil {
		return fail(err)
	}
	s.rdb.SetMaxOpenConns(opts.ReadConns)
	s.rdb.SetMaxIdleConns(opts.ReadConns)
	s.rdb.SetConnMaxLifetime(0)
	s.rdb.SetConnMaxIdleTime(0)
	if err := s.rdb.PingContext(ctx); err != nil {
		return fail(err)
	}
	if err := s.prepareReads(ctx); err != nil {
		return fail(err)
	}
	if s.w, err = newWriter(ctx, s); err != nil {
		return fail(err)
	}
	s.lastVer.Store(s.w.ver)
	if s.cdb, err = sql.Open("sqlite", dsn(2048, false)); err != nil {
		return fail(err)
	}
	s.cdb.SetMaxOpenConns(1)
	s.kick = make(chan struct{}, 1)
	s.ckptDone = make(chan struct{})
	// Before the writer starts, so that it records every change the build's
	// snapshot may miss.
	s.mem = memindex.New()
	var bctx context.Context
	bctx, s.memCancel = context.WithCancel(context.Background())
	s.memDone = make(chan struct{})
	go func() {
		defer close(s.memDone)
		start := time.Now()
		s.buildErr = s.buildMemIndex(bctx)
		switch {
		case s.buildErr == nil:
			s.opts.Log.Info("query index built", "entities", s.mem.Size(), "duration", time.Since(start).Round(time.Millisecond))
		case bctx.Err() == nil:
			s.opts.Log.Error("query index build failed: queries will fail", "err", s.buildErr)
		}
	}()
	s.sealDone = make(chan struct{})
	go s.w.run()
	go s.checkpointer()
	go s.sealer()
	return s, nil
}

// WaitIndex waits until the in-memory query index is built after Open
// (queries wait for it too). It returns why the build failed, if it did.
func (s *Store) WaitIndex(ctx context.Context) error {
	select {
	case <-s.memDone:
		return s.buildErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Store) loadDictionaries(ctx context.Context) error {
	rows, err := s.wconn.QueryContext(ctx, `SELECT tid, name FROM tenants`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var tid int64
		var name string
		if err := rows.Scan(&tid, &name); err != nil {
			rows.Close()
			return err
		}
		s.tenants[name] = tid
	}
	if err := rows.Close(); err != nil {
		return err
	}
	rows, err = s.wconn.QueryContext(ctx, `SELECT nid, name FROM names`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var nid int64
		var name string
		if err := rows.Scan(&nid, &name); err != nil {
			rows.Close()
			return err
		}
		s.names[name] = nid
		s.nameOf[nid] = name
	}
	return rows.Close()
}

func (s *Store) tenantID(name string) (int64, bool) {
	s.mu.RLock()
	tid, ok := s.tenants[name]
	s.mu.RUnlock()
	return tid, ok
}

func (s *Store) nameID(name string) (int64, bool) {
	s.mu.RLock()
	nid, ok := s.names[name]
	s.mu.RUnlock()
	return nid, ok
}

// Tenants lists the tenants, the default tenant ("") first.
func (s *Store) Tenants(ctx context.Context) ([]string, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT name FROM tenants ORDER BY tid`)
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("list tenants: %w", err)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// Ping reports whether the store is ready for traffic: the query index is
// built and both the readers and the writer answer.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	select {
	case <-s.memDone:
		if s.buildErr != nil {
			return fmt.Errorf("query index: %w", s.buildErr)
		}
	default:
		// Queries would wait for it: not ready for traffic yet.
		return errors.New("building the query index")
	}
	var one int
	if err := s.rdb.QueryRowContext(ctx, `SELECT 1 FROM tenants WHERE tid = 1`).Scan(&one); err != nil {
		return fmt.Errorf("ping store: %w", err)
	}
	return s.do(ctx, func(ctx context.Context, c *sql.Conn) error {
		return c.QueryRowContext(ctx, `SELECT 1`).Scan(&one)
	})
}

// unlock releases the store file for other processes.
func (s *Store) unlock() {
	if s.lock != nil {
		s.lock.Close() // closing the descriptor releases the flock
	}
}

func (s *Store) checkOpen() error {
	select {
	case <-s.quit:
		return store.ErrClosed
	default:
		return nil
	}
}

// Close stops accepting writes, lets the writer commit what is queued, and
// closes the connections. It is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.memCancel()
		<-s.memDone
		close(s.quit)
		<-s.stopped
		<-s.ckptDone
		<-s.sealDone
		var errs []error
		errs = append(errs, s.w.close())
		// Leave a small WAL behind; errors here lose nothing.
		s.wconn.ExecContext(context.Background(), `PRAGMA wal_checkpoint(TRUNCATE)`)
		errs = append(errs, s.cdb.Close())
		for _, st := range s.rstmts {
			errs = append(errs, st.Close())
		}
		errs = append(errs, s.wconn.Close(), s.wdb.Close(), s.rdb.Close())
		s.unlock()
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

package auth

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/store"
	"github.com/zenne-city/zenne/internal/store/postgres"
	"github.com/zenne-city/zenne/internal/store/postgres/pgtest"
	"github.com/zenne-city/zenne/internal/store/sqlite"
)

// fastPasswords keep tests quick; TestDefaultPasswordParams checks the
// real ones.
var fastPasswords = PasswordParams{Memory: 64, Time: 1, Threads: 1}

const (
	tenantA = "cityA"
	tenantB = "cityB"
	typeT1  = "https://example.org/T1"
	typeT2  = "https://example.org/T2"
	typeT3  = "https://example.org/T3"
	goodPW  = "correct horse battery"
	goodPW2 = "another long password"
)

// openSQLite opens a store in a temporary file.
func openSQLite(t testing.TB) store.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "zenne.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// openPostgres opens a store on a fresh database; skipped without
// ZENNE_TEST_POSTGRES.
func openPostgres(t testing.TB) store.Store {
	t.Helper()
	st, err := postgres.Open(context.Background(), pgtest.Database(t), postgres.Options{MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// eachStore runs f on the SQLite backend, and on PostgreSQL when
// ZENNE_TEST_POSTGRES is set.
func eachStore(t *testing.T, f func(t *testing.T, st store.Records)) {
	t.Run("sqlite", func(t *testing.T) { f(t, openSQLite(t)) })
	t.Run("postgres", func(t *testing.T) { f(t, openPostgres(t)) })
}

// clock is a clock tests move.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newService opens a Service for tests: a moved clock, cheap hashes, no
// background reloads unless opts says.
func newService(t testing.TB, st store.Records, c *clock, opts Options) *Service {
	t.Helper()
	if opts.Now == nil {
		opts.Now = c.Now
	}
	if opts.Password == (PasswordParams{}) {
		opts.Password = fastPasswords
	}
	if opts.Reload == 0 {
		opts.Reload = time.Hour
	}
	if opts.LoginBurst == 0 {
		opts.LoginBurst = 1000
	}
	s, err := New(context.Background(), st, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustUser(t testing.TB, s *Service, name, pw string, gs ...Grant) {
	t.Helper()
	if _, err := s.CreateUser(context.Background(), name, pw, gs); err != nil {
		t.Fatalf("CreateUser(%s): %v", name, err)
	}
}

func mustKey(t testing.TB, s *Service, owner string, gs ...Grant) (string, Key) {
	t.Helper()
	sec, k, err := s.CreateKey(context.Background(), owner, "test key", gs, time.Time{})
	if err != nil {
		t.Fatalf("CreateKey(%s, %v): %v", owner, gs, err)
	}
	return sec, k
}

// request makes a request with an Authorization header ("": none) from
// remote.
func request(auth, remote string) *http.Request {
	r := httptest.NewRequest("GET", "/ngsi-ld/v1/entities", nil)
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	if remote != "" {
		r.RemoteAddr = remote + ":4711"
	}
	return r
}

// logBuffer is a logger tests read.
func logBuffer() (*slog.Logger, *syncBuffer) {
	b := &syncBuffer{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

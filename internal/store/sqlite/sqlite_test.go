package sqlite

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/zenne-city/zenne/internal/store"
	"github.com/zenne-city/zenne/internal/store/storetest"
)

// tempStores opens a store in a temporary directory per test; opening again
// with the same test reopens the same file.
type tempStores struct {
	mu   sync.Mutex
	dirs map[*testing.T]string
	opts Options
}

func (ts *tempStores) open(t *testing.T) store.Store {
	ts.mu.Lock()
	dir, ok := ts.dirs[t]
	if !ok {
		dir = t.TempDir()
		ts.dirs[t] = dir
	}
	ts.mu.Unlock()
	s, err := Open(context.Background(), filepath.Join(dir, "data", "zenne.db"), ts.opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	waitMemIndex(t, s)
	return s
}

// openTemp opens a store in a fresh temporary directory, closed when the
// test ends, and waits for its query index.
func openTemp(t testing.TB, opts Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "zenne.db"), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	waitMemIndex(t, s)
	return s
}

// waitMemIndex waits for the in-memory index build, so that queries use it.
func waitMemIndex(t testing.TB, s *Store) {
	t.Helper()
	if err := s.WaitIndex(context.Background()); err != nil {
		t.Fatalf("building the in-memory index: %v", err)
	}
}

func TestConformance(t *testing.T) {
	ts := &tempStores{dirs: map[*testing.T]string{}}
	storetest.Run(t, ts.open)
}

// The cache must not change answers: run the suite without it too.
func TestConformanceNoCache(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("short, or under the race detector (same code paths as TestConformance, 15x slower)")
	}
	ts := &tempStores{dirs: map[*testing.T]string{}, opts: Options{CacheEntities: -1, MaxBatchOps: 3}}
	storetest.Run(t, ts.open)
}

// Readiness waits for the query index: queries would wait for it.
func TestPingWaitsForIndex(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t, Options{})
	built := s.memDone
	s.memDone = make(chan struct{}) // as while the build runs
	if err := s.Ping(ctx); err == nil {
		t.Error("Ping succeeded while the query index was being built")
	}
	s.memDone = built
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping after the build: %v", err)
	}
}

// A second Open of the same file fails with a message that says what to do,
// and works again once the first store is closed.
func TestOneProcessPerFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "zenne.db")
	s, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), path, Options{}); err == nil || !strings.Contains(err.Error(), "in use by another zenne process") {
		t.Errorf("second Open: %v, want an in-use error", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	s.Close()
}

func TestLeases(t *testing.T) {
	var mu sync.Mutex
	stores := map[*testing.T]*Store{}
	storetest.RunLeases(t, func(t *testing.T) store.Leaser {
		// One process owns a file: both "instances" are the same store.
		mu.Lock()
		defer mu.Unlock()
		if s, ok := stores[t]; ok {
			return s
		}
		s := openTemp(t, Options{})
		stores[t] = s
		return s
	})
}

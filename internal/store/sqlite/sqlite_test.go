package sqlite

import (
	"context"
	"path/filepath"
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

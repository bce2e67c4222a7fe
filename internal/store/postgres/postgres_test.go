package postgres

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/zenne-city/zenne/internal/ngsild/qlang"
	"github.com/zenne-city/zenne/internal/store"
	"github.com/zenne-city/zenne/internal/store/storetest"
)

// testStores opens a store on a fresh database per test; opening again
// with the same test opens the same database (the Reopen tests).
type testStores struct {
	mu   sync.Mutex
	urls map[*testing.T]string
	opts Options
	// query is appended to the URL (e.g. "zenne.postgis=off").
	query string
}

func (ts *testStores) open(t *testing.T) store.Store {
	s, err := Open(context.Background(), ts.url(t), ts.opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	// Queries go through the query index once it is built (SQL before).
	if err := s.WaitIndex(context.Background()); err != nil {
		t.Fatalf("WaitIndex: %v", err)
	}
	return s
}

// url is the test's database. The lock is released by defer: without
// ZENNE_TEST_POSTGRES, testDatabase skips the test (runtime.Goexit), and a
// lock held then would hang every later test.
func (ts *testStores) url(t *testing.T) string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	u, ok := ts.urls[t]
	if !ok {
		u = testDatabase(t)
		if ts.query != "" {
			u = withParam(u, ts.query)
		}
		ts.urls[t] = u
	}
	return u
}

// withParam adds a query parameter (k=v) to a URL.
func withParam(u, kv string) string {
	if strings.Contains(u, "?") {
		return u + "&" + kv
	}
	return u + "?" + kv
}

// Queries answered by the in-memory query index.
func TestConformance(t *testing.T) {
	ts := &testStores{urls: map[*testing.T]string{}, opts: Options{MaxConns: 8}}
	storetest.Run(t, ts.open)
}

// Queries answered by SQL alone (before the index is built, or without it),
// which must answer the same.
func TestConformanceSQL(t *testing.T) {
	ts := &testStores{urls: map[*testing.T]string{}, opts: Options{MaxConns: 8}, query: "zenne.query_index=off"}
	storetest.Run(t, ts.open)
}

// The SQL fallback without PostGIS (geometries as boxes) must answer the
// same, and so must groups of a few ops (MaxBatchOps 3) with one writer.
func TestConformanceWithoutPostGIS(t *testing.T) {
	if testing.Short() {
		t.Skip("short: the same paths as TestConformanceSQL but for geometries")
	}
	ts := &testStores{urls: map[*testing.T]string{}, opts: Options{MaxConns: 4, MaxBatchOps: 3, Writers: 1, NoQueryIndex: true},
		query: "zenne.postgis=off"}
	storetest.Run(t, ts.open)
}

func TestPostGISSetting(t *testing.T) {
	for _, tc := range []struct {
		query string
		want  geoKind
	}{{"", geoPostGIS}, {"zenne.postgis=off", geoBox}} {
		u := testDatabase(t)
		if tc.query != "" {
			u = withParam(u, tc.query)
		}
		s, err := Open(context.Background(), u, Options{MaxConns: 2})
		if err != nil {
			t.Fatal(err)
		}
		if tc.want == geoPostGIS {
			var has bool
			if err := s.pool.QueryRow(context.Background(),
				`SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'postgis')`).Scan(&has); err != nil {
				t.Fatal(err)
			}
			if !has {
				tc.want = geoBox // the server has no PostGIS to install
			}
		}
		if s.geo != tc.want {
			t.Errorf("URL with %q: geometries as %v, want %v", tc.query, s.geo, tc.want)
		}
		s.Close()
	}
}

// An id PostgreSQL text cannot hold fails its op only.
func TestUnstorableID(t *testing.T) {
	s, err := Open(context.Background(), testDatabase(t), Options{MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	res, err := s.Write(ctx, "", []store.Op{
		storetest.Upsert(storetest.Ent("urn:a\x00b", []string{"T"})),
		storetest.Upsert(storetest.Ent("urn:\xff", []string{"T"})),
		storetest.Upsert(storetest.Ent("urn:ok", []string{"T"})),
	})
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	if res[0].Err == nil || res[1].Err == nil || res[2].Err != nil {
		t.Errorf("results: %+v", res)
	}
	if _, err := s.Get(ctx, "", "urn:ok"); err != nil {
		t.Errorf("Get urn:ok: %v", err)
	}
	if _, err := s.Get(ctx, "", "urn:a\x00b"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get of an id text cannot hold: %v, want ErrNotFound", err)
	}
	r, err := s.Query(ctx, "", &store.Query{IDs: []string{"urn:\xff", "urn:ok"}, Limit: 10,
		Selectors: []store.Selector{{ID: "urn:a\x00b"}, {ID: "urn:ok"}}})
	if err != nil || len(r.Entities) != 1 || r.Entities[0].ID != "urn:ok" {
		t.Errorf("Query by ids text cannot hold: %+v %v", r, err)
	}
}

// Huge offsets and limits page without overflowing.
func TestQueryHugePage(t *testing.T) {
	s, err := Open(context.Background(), testDatabase(t), Options{MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if _, err := s.Write(ctx, "", []store.Op{storetest.Upsert(storetest.Ent("urn:a", []string{"T"}, "v", storetest.Prop(1.0)))}); err != nil {
		t.Fatal(err)
	}
	q, err := qlang.ParseQ("v>0", storetest.Expand)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ limit, offset, want int }{{math.MaxInt, 0, 1}, {math.MaxInt, math.MaxInt, 0}, {10, math.MaxInt - 5, 0}} {
		r, err := s.Query(ctx, "", &store.Query{Q: q, Limit: tc.limit, Offset: tc.offset})
		if err != nil || len(r.Entities) != tc.want {
			t.Errorf("limit %d offset %d: %v %v, want %d entities", tc.limit, tc.offset, r, err, tc.want)
		}
	}
}

// TestLeases: two stores on one database, as two instances, share leases.
func TestLeases(t *testing.T) {
	var mu sync.Mutex
	urls := map[*testing.T]string{}
	storetest.RunLeases(t, func(t *testing.T) store.Leaser {
		u := func() string {
			mu.Lock()
			defer mu.Unlock() // testDatabase skips the test without PostgreSQL
			if _, ok := urls[t]; !ok {
				urls[t] = testDatabase(t)
			}
			return urls[t]
		}()
		s, err := Open(context.Background(), u, Options{MaxConns: 4})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

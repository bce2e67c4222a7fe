package sqlite

// The in-memory index (package memindex) must answer every query exactly as
// store.Query.Match applied to every entity in creation order. These tests
// generate random entities, updates and queries (storetest.World) and
// compare the answers.

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store"
	"github.com/zenne-city/zenne/internal/store/memindex"
	"github.com/zenne-city/zenne/internal/store/storetest"
)

func mtSizes() (entities, updates, queries, reopenQueries int) {
	if raceEnabled {
		return 240, 120, 150, 60
	}
	return 600, 300, 400, 150
}

func TestMemIndexDifferential(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	memPath := filepath.Join(dir, "mem.db")
	sm, err := Open(ctx, memPath, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { sm.Close() }()
	waitMemIndex(t, sm) // the writes below update the built index
	stores := []store.Store{sm}

	nEnt, nUpd, nQ, nReopen := mtSizes()
	w := storetest.NewWorld(20240501)
	for done := 0; done < nEnt; {
		n := 1 + w.Rng.IntN(40)
		storetest.WriteAll(t, stores, w.Creates(n))
		done += n
	}
	for done := 0; done < nUpd; {
		n := 1 + w.Rng.IntN(12)
		storetest.WriteAll(t, stores, w.Updates(n))
		done += n
	}

	snap := w.Snapshot(t, sm)
	c := &storetest.Checker{T: t}
	both := map[string]store.Store{"mem": sm}
	specs := make([]storetest.Spec, nQ)
	for i := range specs {
		specs[i] = w.Spec()
		c.Check(fmt.Sprintf("query %d", i), specs[i], snap, both)
	}
	t.Logf("%d queries; entities per tenant: %d, %d", c.Checks(), len(snap[""]), len(snap["t2"]))

	// The index built from the file must answer the same, also while the
	// writer changes entities during the build.
	if err := sm.Close(); err != nil {
		t.Fatal(err)
	}
	if sm, err = Open(ctx, memPath, Options{}); err != nil {
		t.Fatal(err)
	}
	// A query before the build is done waits for it.
	c.Check("before build", specs[0], snap, map[string]store.Store{"mem": sm})
	waitMemIndex(t, sm)
	for i := range nReopen {
		c.Check(fmt.Sprintf("reopened, query %d", i), specs[i], snap, map[string]store.Store{"mem": sm})
	}

	// Writes during the build, and after it, on the reopened store.
	if err := sm.Close(); err != nil {
		t.Fatal(err)
	}
	if sm, err = Open(ctx, memPath, Options{}); err != nil {
		t.Fatal(err)
	}
	stores = []store.Store{sm}
	for round := range 6 {
		if round == 3 {
			waitMemIndex(t, sm)
		}
		storetest.WriteAll(t, stores, w.Updates(1+w.Rng.IntN(20)))
	}
	snap = w.Snapshot(t, sm)
	both = map[string]store.Store{"mem": sm}
	for i := range nReopen {
		c.Check(fmt.Sprintf("written after reopen, query %d", i), w.Spec(), snap, both)
	}
}

// Queries running while the writer changes entities (and while the index is
// being built) must not fail and must return only entities that match.
func TestMemIndexConcurrent(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "c.db")
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	nEnt, nWrites, readers := 400, 600, 4
	if raceEnabled {
		nEnt, nWrites = 200, 150
	}
	w := storetest.NewWorld(7)
	for done := 0; done < nEnt; done += 50 {
		storetest.WriteAll(t, []store.Store{s}, w.Creates(50))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopen: the index is built while the queries and writes below run.
	if s, err = Open(ctx, path, Options{}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	// Query specs are drawn up front from a world that knows the ids.
	var specs []storetest.Spec
	var queries []*store.Query
	for range 300 {
		specs = append(specs, w.Spec())
		queries = append(queries, specs[len(specs)-1].Query(t))
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	var nq atomic.Int64
	errs := make(chan error, readers)
	for i := range readers {
		wg.Go(func() {
			for n := i; !stop.Load(); n += readers {
				spec, q := specs[n%len(specs)], queries[n%len(specs)]
				if n%(8*readers) < readers {
					time.Sleep(time.Millisecond) // leave the writer some CPU
				}
				res, err := s.Query(ctx, spec.Tenant, q)
				nq.Add(1)
				if spec.Tenant == "nope" {
					if !errors.Is(err, store.ErrNoTenant) {
						errs <- fmt.Errorf("%s: %v, want ErrNoTenant", spec, err)
						return
					}
					continue
				}
				if err != nil {
					errs <- fmt.Errorf("%s: %v", spec, err)
					return
				}
				seen := map[string]bool{}
				for _, e := range res.Entities {
					if !q.Match(e) {
						errs <- fmt.Errorf("%s: returned %s, which does not match", spec, e.ID)
						return
					}
					if seen[e.ID] {
						errs <- fmt.Errorf("%s: returned %s twice", spec, e.ID)
						return
					}
					seen[e.ID] = true
				}
				if len(res.Entities) > max(q.Limit, 0) {
					errs <- fmt.Errorf("%s: %d entities, limit %d", spec, len(res.Entities), q.Limit)
					return
				}
				if q.Count && res.Count < len(res.Entities) || !q.Count && res.Count != -1 {
					errs <- fmt.Errorf("%s: count %d with %d entities", spec, res.Count, len(res.Entities))
					return
				}
			}
		})
	}
	defer func() { stop.Store(true); wg.Wait() }() // before Close, also on Fatal
	for range nWrites {
		storetest.WriteAll(t, []store.Store{s}, w.Updates(1+w.Rng.IntN(10)))
		if len(errs) > 0 {
			break
		}
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d queries during %d writes", nq.Load(), nWrites)

	// Quiet again: the index the build and the writer left must be exact.
	waitMemIndex(t, s)
	snap := w.Snapshot(t, s)
	c := &storetest.Checker{T: t}
	for i := range 100 {
		c.Check(fmt.Sprintf("after concurrent writes, query %d", i), w.Spec(), snap, map[string]store.Store{"mem": s})
	}
}

// Members of a GeoProperty's GeoJSON value (location[type]) are terms like
// any other: the index, which holds a Point as its coordinates, must answer
// them as Match does on the stored value.
func TestMemIndexGeoPropertyKeys(t *testing.T) {
	ctx := context.Background()
	e := &ngsild.Entity{ID: "urn:ngsi-ld:E:1", Types: []string{storetest.WorldExpand("T1")}, Attrs: map[string][]*ngsild.Attribute{
		ngsild.IRILocation: {{Kind: ngsild.GeoProperty, Value: storetest.PointValue([2]float64{4.35, 50.85})}},
	}}
	stores := map[string]store.Store{}
	for name, opts := range map[string]Options{"mem": {}} {
		s, err := Open(ctx, filepath.Join(t.TempDir(), name+".db"), opts)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		waitMemIndex(t, s)
		if err := storetest.WriteOps(s, "", []storetest.Op{{ID: e.ID, Entity: e}}); err != nil {
			t.Fatal(err)
		}
		stores[name] = s
	}
	snap := map[string][]*ngsild.Entity{"": {e}}
	c := &storetest.Checker{T: t}
	for _, q := range []string{`location[type]=="Point"`, `location[coordinates]`, `!location[type]`, `location[type]!="Polygon"`} {
		c.Check("point keys", storetest.Spec{Q: q, Limit: 10, Count: true}, snap, stores)
	}
}

// An index built while the writer changes entities must end up exact: what
// the writer sets during the build wins over the build's older snapshot.
func TestMemIndexBuildDuringWrites(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "b.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	waitMemIndex(t, s)
	nEnt, rounds := 1500, 4
	if raceEnabled {
		nEnt, rounds = 400, 2
	}
	w := storetest.NewWorld(99)
	for done := 0; done < nEnt; done += 100 {
		storetest.WriteAll(t, []store.Store{s}, w.Creates(100))
	}
	c := &storetest.Checker{T: t}
	for round := range rounds {
		// A fresh index, built the way Open builds it, while writes go on.
		// (No write or query is running: the writer and the build goroutine
		// see the new index through the channels that start them.)
		s.mem = memindex.New()
		built := make(chan error, 1)
		go func() { built <- s.buildMemIndex(ctx) }()
		writes := 0 // started before the build was done
		for n := 0; n < 3 || !s.mem.Built(); n++ {
			if !s.mem.Built() {
				writes++
			}
			storetest.WriteAll(t, []store.Store{s}, w.Updates(1+w.Rng.IntN(20)))
		}
		if err := <-built; err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: %d writes started during the build", round, writes)
		snap := w.Snapshot(t, s)
		for i := range 60 {
			c.Check(fmt.Sprintf("round %d (%d writes during the build), query %d", round, writes, i), w.Spec(), snap, map[string]store.Store{"mem": s})
		}
	}
}

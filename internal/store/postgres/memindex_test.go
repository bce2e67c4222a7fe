package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/ngsild/qlang"
	"github.com/zenne-city/zenne/internal/store"
	"github.com/zenne-city/zenne/internal/store/codec"
	"github.com/zenne-city/zenne/internal/store/memindex"
	"github.com/zenne-city/zenne/internal/store/storetest"
)

// counterQuery selects the counters with n > min.
func counterQuery(t *testing.T, min float64) *store.Query {
	t.Helper()
	expand := func(term string) string { return ngsild.DefaultContextNS + term }
	q, err := qlang.ParseQ(fmt.Sprintf("n>%g", min), expand)
	if err != nil {
		t.Fatal(err)
	}
	typ, err := qlang.ParseTypeQuery("Counter", expand)
	if err != nil {
		t.Fatal(err)
	}
	return &store.Query{Type: typ, Q: q, Limit: 100, Count: true}
}

func ids(res *store.QueryResult) []string {
	var out []string
	for _, e := range res.Entities {
		out = append(out, e.ID)
	}
	return out
}

func del(id string) store.Op {
	return store.Op{ID: id, Apply: func(*ngsild.Entity) (*ngsild.Entity, error) { return nil, nil }}
}

func set(e *ngsild.Entity) store.Op {
	return store.Op{ID: e.ID, Apply: func(*ngsild.Entity) (*ngsild.Entity, error) { return e, nil }}
}

// A query on one process sees, at once, what another process committed:
// creations, updates, deletions, and a deletion and re-creation in one
// group (a new row, last in creation order).
func TestQueryIndexFollowsOtherProcess(t *testing.T) {
	a, b := openTwo(t)
	ctx := context.Background()
	write := func(ops ...store.Op) {
		t.Helper()
		res, err := a.Write(ctx, "", ops)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
		}
	}
	query := func(min float64) ([]string, int) {
		t.Helper()
		res, err := b.Query(ctx, "", counterQuery(t, min))
		if err != nil {
			t.Fatal(err)
		}
		return ids(res), res.Count
	}
	check := func(what string, min float64, want ...string) {
		t.Helper()
		got, n := query(min)
		if !slices.Equal(got, want) || n != len(want) {
			t.Fatalf("%s: process b found %v (count %d), want %v", what, got, n, want)
		}
	}
	write(create(counter("urn:c1", 1)), create(counter("urn:c2", 2)), create(counter("urn:c3", 3)))
	check("created", 0, "urn:c1", "urn:c2", "urn:c3")
	write(set(counter("urn:c1", 10)))
	check("updated", 5, "urn:c1")
	write(del("urn:c2"))
	check("deleted", 0, "urn:c1", "urn:c3")
	write(del("urn:c1"), create(counter("urn:c1", 7)), create(counter("urn:c4", 4)), del("urn:c4"))
	check("deleted and created again in one group", 0, "urn:c3", "urn:c1")
	if qi := b.qindex.Load(); qi == nil || !qi.built.Load() {
		t.Fatal("process b's query index is not in use")
	}

	// Many groups from many writers: b's answers equal a's SQL ones.
	for i := range 200 {
		write(set(counter(fmt.Sprintf("urn:m%d", i%37), float64(i))))
		if i%3 == 0 {
			write(del(fmt.Sprintf("urn:m%d", (i*7)%37)))
		}
	}
	got, _ := query(50)
	sqlRes, err := func() (*store.QueryResult, error) {
		q := counterQuery(t, 50)
		tid, err := a.tenantID(ctx, a.pool, "")
		if err != nil {
			return nil, err
		}
		w := a.candidates(tid, q)
		res := &store.QueryResult{Count: -1, Entities: []*ngsild.Entity{}}
		err = a.countingQuery(ctx, q, w, q.Limit, 0, res)
		return res, err
	}()
	if err != nil {
		t.Fatal(err)
	}
	if want := ids(sqlRes); len(want) < 10 || !slices.Equal(got, want) {
		t.Fatalf("process b's index found %v, SQL finds %v", got, want)
	}
}

// A follower that needs changes the log no longer holds stops with
// store.ErrChangesGone (and runQueryIndex builds the index again).
func TestQueryIndexLogGone(t *testing.T) {
	a, _ := openTwo(t)
	ctx := context.Background()
	for i := range 5 {
		if _, err := a.Write(ctx, "", []store.Op{set(counter(fmt.Sprintf("urn:g%d", i), 1))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.TrimChanges(ctx, a.LastChange()); err != nil {
		t.Fatal(err)
	}
	qi := &queryIndex{ix: memindex.New(), advanced: make(chan struct{}), kick: make(chan struct{}, 1)}
	if _, err := a.followOnce(ctx, qi, qi.ix.Names()); !errors.Is(err, store.ErrChangesGone) {
		t.Fatalf("following from 0 after a trim: %v, want store.ErrChangesGone", err)
	}
}

// A log row without effects (from an older zenne) stops the follower;
// queries are answered by SQL meanwhile, and the index is built again.
func TestQueryIndexRowWithoutEffects(t *testing.T) {
	a, b := openTwo(t)
	ctx := context.Background()
	if _, err := a.Write(ctx, "", []store.Op{create(counter("urn:old", 1))}); err != nil {
		t.Fatal(err)
	}
	first := b.qindex.Load()
	// A change to no entity row, logged the old way.
	c := store.NewChange("", "urn:nothing", nil, counter("urn:nothing", 1))
	row := codec.AppendLogChange(codec.AppendLogTime(nil, time.Now()), &c, nil, nil)
	if _, err := a.pool.Exec(ctx, `WITH s AS (UPDATE change_seq SET last = last + 1 WHERE id = 1 RETURNING last)
		INSERT INTO changes (seq, n, data) SELECT s.last, 1, $1 FROM s`, row); err != nil {
		t.Fatal(err)
	}
	res, err := b.Query(ctx, "", counterQuery(t, 0))
	if err != nil || !slices.Equal(ids(res), []string{"urn:old"}) {
		t.Fatalf("query while the index stops: %v %v", ids(res), err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if qi := b.qindex.Load(); qi != nil && qi != first && qi.built.Load() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the query index was not built again")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := a.Write(ctx, "", []store.Op{create(counter("urn:new", 2))}); err != nil {
		t.Fatal(err)
	}
	res, err = b.Query(ctx, "", counterQuery(t, 0))
	if err != nil || !slices.Equal(ids(res), []string{"urn:old", "urn:new"}) {
		t.Fatalf("query on the new index: %v %v", ids(res), err)
	}
}

// The query index of a process answers random queries exactly as Match over
// every entity does, and as SQL does, while two processes write: one with
// the index, one without (zenne.query_index=off), on one database; then
// also from an index built anew from the table.
func TestQueryIndexDifferential(t *testing.T) {
	u := testDatabase(t)
	ctx := context.Background()
	open := func(opts Options) *Store {
		t.Helper()
		s, err := Open(ctx, u, opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		if err := s.WaitIndex(ctx); err != nil {
			t.Fatal(err)
		}
		return s
	}
	indexed, sqlOnly := open(Options{MaxConns: 6}), open(Options{MaxConns: 6, NoQueryIndex: true})
	writers := []store.Store{indexed, sqlOnly}
	nEnt, nUpd, nQ := 400, 300, 200
	if testing.Short() {
		nEnt, nUpd, nQ = 150, 100, 80
	}
	w := storetest.NewWorld(20261123)
	for done, i := 0, 0; done < nEnt; i++ {
		n := 1 + w.Rng.IntN(40)
		storetest.WriteAll(t, writers[i%2:i%2+1], w.Creates(n))
		done += n
	}
	for done, i := 0, 0; done < nUpd; i++ {
		n := 1 + w.Rng.IntN(12)
		storetest.WriteAll(t, writers[i%2:i%2+1], w.Updates(n))
		done += n
	}
	snap := w.Snapshot(t, indexed)
	c := &storetest.Checker{T: t}
	stores := map[string]store.Store{"index": indexed, "sql": sqlOnly}
	specs := make([]storetest.Spec, nQ)
	for i := range specs {
		specs[i] = w.Spec()
		c.Check(fmt.Sprintf("query %d", i), specs[i], snap, stores)
	}
	if qi := indexed.qindex.Load(); qi == nil || !qi.built.Load() {
		t.Fatal("the index was not in use")
	}
	// An index built from the table answers the same.
	rebuilt := open(Options{MaxConns: 6})
	for i := range nQ / 2 {
		c.Check(fmt.Sprintf("rebuilt, query %d", i), specs[i], snap, map[string]store.Store{"rebuilt": rebuilt})
	}
	t.Logf("%d queries; entities per tenant: %d, %d", c.Checks(), len(snap[""]), len(snap["t2"]))
}

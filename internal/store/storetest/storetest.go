// Package storetest is the conformance suite every store.Store backend must
// pass. A backend's test calls Run with a constructor:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { return openTemp(t) })
//	}
//
// open must return an empty store for a test it has not seen. Called again
// with the same t (after the test closed the first store), it must reopen the
// same data: that is how the suite checks durability across Close. The
// suite closes every store it opens.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/ngsild/geo"
	"github.com/zenne-city/zenne/internal/ngsild/qlang"
	"github.com/zenne-city/zenne/internal/store"
)

// Expand maps a short name to its IRI: the core GeoProperties to the core
// context, other names to the default context; IRIs are kept.
func Expand(s string) string {
	if strings.Contains(s, ":") {
		return s
	}
	if ngsild.IsGeoName(ngsild.CoreNS + s) {
		return ngsild.CoreNS + s
	}
	return ngsild.DefaultContextNS + s
}

var (
	errExists  = errors.New("already exists")
	errMissing = errors.New("does not exist")
)

// Run runs the conformance suite.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		f    func(t *testing.T, open func(t *testing.T) store.Store)
	}{
		{"WriteGet", testWriteGet},
		{"CreateConflict", testCreateConflict},
		{"Delete", testDelete},
		{"Upsert", testUpsert},
		{"MixedBatch", testMixedBatch},
		{"ApplyPanics", testApplyPanics},
		{"HandedOutEntitiesAreStable", testHandedOutEntitiesAreStable},
		{"NoLostUpdate", testNoLostUpdate},
		{"ConcurrentWritesAndReads", testConcurrentWritesAndReads},
		{"Tenants", testTenants},
		{"QueryFilters", testQueryFilters},
		{"QueryPaging", testQueryPaging},
		{"QueryOrder", testQueryOrder},
		{"QueryAfterUpdates", testQueryAfterUpdates},
		{"QueryCount", testQueryCount},
		{"TypesAttributes", testTypesAttributes},
		{"Contexts", testContexts},
		{"Reopen", testReopen},
		{"ChangeLog", testChangeLog},
		{"ChangeLogReopen", testChangeLogReopen},
		{"HistoryRecording", testHistoryRecording},
		{"HistoryTimeQueries", testHistoryTimeQueries},
		{"HistoryKeptAndDeleted", testHistoryKeptAndDeleted},
		{"HistoryBackfill", testHistoryBackfill},
		{"HistoryReopen", testHistoryReopen},
		{"HistoryImport", testHistoryImport},
		{"HistoryAggregate", testHistoryAggregate},
		{"HistoryMany", testHistoryMany},
		{"Subscriptions", testSubscriptions},
		{"Records", testRecords},
		{"Closed", testClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.f(t, open) })
	}
}

// --- helpers ---

func openStore(t *testing.T, open func(t *testing.T) store.Store) store.Store {
	t.Helper()
	s := open(t)
	t.Cleanup(func() { s.Close() })
	return s
}

// Ent builds an entity with attributes given as name, attribute pairs.
func Ent(id string, types []string, attrs ...any) *ngsild.Entity {
	e := &ngsild.Entity{ID: id, Attrs: map[string][]*ngsild.Attribute{}}
	for _, typ := range types {
		e.Types = append(e.Types, Expand(typ))
	}
	for i := 0; i+1 < len(attrs); i += 2 {
		name := Expand(attrs[i].(string))
		e.Attrs[name] = append(e.Attrs[name], attrs[i+1].(*ngsild.Attribute))
	}
	return e
}

// Prop is a Property with a JSON-decoded value (float64, string, bool, []any, map[string]any).
func Prop(v any) *ngsild.Attribute { return &ngsild.Attribute{Kind: ngsild.Property, Value: v} }

// Rel is a Relationship.
func Rel(obj string) *ngsild.Attribute {
	return &ngsild.Attribute{Kind: ngsild.Relationship, Value: obj}
}

// Point is a GeoProperty holding a GeoJSON Point.
func Point(lon, lat float64) *ngsild.Attribute {
	return &ngsild.Attribute{Kind: ngsild.GeoProperty, Value: map[string]any{"type": "Point", "coordinates": []any{lon, lat}}}
}

// Upsert is an op that replaces the entity with e (a copy).
func Upsert(e *ngsild.Entity) store.Op {
	return store.Op{ID: e.ID, Apply: func(*ngsild.Entity) (*ngsild.Entity, error) { return e.Clone(), nil }}
}

// Create is an op that creates e, failing if it exists.
func Create(e *ngsild.Entity) store.Op {
	return store.Op{ID: e.ID, Apply: func(cur *ngsild.Entity) (*ngsild.Entity, error) {
		if cur != nil {
			return nil, errExists
		}
		return e.Clone(), nil
	}}
}

// Delete is an op that deletes id, failing if it does not exist.
func Delete(id string) store.Op {
	return store.Op{ID: id, Apply: func(cur *ngsild.Entity) (*ngsild.Entity, error) {
		if cur == nil {
			return nil, errMissing
		}
		return nil, nil
	}}
}

// Update is an op that changes a copy of the existing entity with f.
func Update(id string, f func(e *ngsild.Entity)) store.Op {
	return store.Op{ID: id, Apply: func(cur *ngsild.Entity) (*ngsild.Entity, error) {
		if cur == nil {
			return nil, errMissing
		}
		n := cur.Clone()
		f(n)
		return n, nil
	}}
}

func write(t *testing.T, s store.Store, tenant string, ops ...store.Op) []store.Result {
	t.Helper()
	res, err := s.Write(context.Background(), tenant, ops)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	if len(res) != len(ops) {
		t.Fatalf("Write returned %d results for %d ops", len(res), len(ops))
	}
	return res
}

func mustWrite(t *testing.T, s store.Store, tenant string, ops ...store.Op) {
	t.Helper()
	for i, r := range write(t, s, tenant, ops...) {
		if r.Err != nil {
			t.Fatalf("op %d (%s): %v", i, r.ID, r.Err)
		}
	}
}

func get(t *testing.T, s store.Store, tenant, id string) *ngsild.Entity {
	t.Helper()
	e, err := s.Get(context.Background(), tenant, id)
	if err != nil {
		t.Fatalf("Get %s: %v", id, err)
	}
	return e
}

func sameEntity(t *testing.T, what string, got, want *ngsild.Entity) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got  %s\n want %s", what, dump(got), dump(want))
	}
}

func dump(e *ngsild.Entity) string {
	if e == nil {
		return "<nil>"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %v %v", e.ID, e.Types, e.Scopes)
	names := make([]string, 0, len(e.Attrs))
	for n := range e.Attrs {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		for _, a := range e.Attrs[n] {
			fmt.Fprintf(&b, " %s=%+v", strings.TrimPrefix(n, ngsild.DefaultContextNS), *a)
		}
	}
	return b.String()
}

func ids(es []*ngsild.Entity) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// --- entity writes ---

func testWriteGet(t *testing.T, open func(t *testing.T) store.Store) {
	s := openStore(t, open)
	ctx := context.Background()
	if _, err := s.Get(ctx, store.DefaultTenant, "urn:x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get on empty default tenant: %v, want ErrNotFound", err)
	}
	e := Ent("urn:ngsi-ld:Sensor:1", []string{"Sensor"},
		"temperature", &ngsild.Attribute{Kind: ngsild.Property, Value: 21.5, UnitCode: "CEL", ObservedAt: t0,
			Sub: map[string]*ngsild.Attribute{Expand("accuracy"): Prop(0.1)}},
		"name", Prop("Grand-Place"),
		"on", Prop(true),
		"tags", Prop([]any{"a", "b", 3.0}),
		"config", Prop(map[string]any{"x": 1.0, "y": []any{"z"}}),
		"refersTo", Rel("urn:ngsi-ld:Building:1"),
		"location", Point(4.3522, 50.8467),
		"label", &ngsild.Attribute{Kind: ngsild.LanguageProperty, Value: map[string]any{"nl": "Grote Markt", "fr": "Grand-Place"}},
	)
	e.Attrs[Expand("temperature")] = append(e.Attrs[Expand("temperature")],
		&ngsild.Attribute{Kind: ngsild.Property, Value: 19.0, DatasetID: "urn:ds:2"})
	e.Scopes = []string{"/Brussels/Centre"}
	e.CreatedAt, e.ModifiedAt = t0, t0.Add(time.Second)

	res := write(t, s, store.DefaultTenant, Create(e))
	if r := res[0]; r.Err != nil || r.Before != nil || r.After == nil || r.ID != e.ID {
		t.Fatalf("create result = %+v", r)
	}
	sameEntity(t, "After", res[0].After, e)
	sameEntity(t, "Get", get(t, s, store.DefaultTenant, e.ID), e)
	if _, err := s.Get(ctx, store.DefaultTenant, "urn:other"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get unknown id: %v, want ErrNotFound", err)
	}
	// Apply sees the current entity.
	var seen *ngsild.Entity
	write(t, s, store.DefaultTenant, store.Op{ID: e.ID, Apply: func(cur *ngsild.Entity) (*ngsild.Entity, error) {
		seen = cur.Clone()
		return nil, errors.New("no change")
	}})
	sameEntity(t, "cur given to Apply", seen, e)
	// An empty write is fine.
	if _, err := s.Write(ctx, store.DefaultTenant, nil); err != nil {
		t.Errorf("empty Write: %v", err)
	}
}

func testCreateConflict(t *testing.T, open func(t *testing.T) store.Store) {
	s := openStore(t, open)
	a := Ent("urn:a", []string{"T"}, "v", Prop(1.0))
	b := Ent("urn:a", []string{"T"}, "v", Prop(2.0))
	mustWrite(t, s, "", Create(a))
	res := write(t, s, "", Create(b))
	if !errors.Is(res[0].Err, errExists) {
		t.Fatalf("second create: err = %v, want Apply's error", res[0].Err)
	}
	sameEntity(t, "Before of failed op", res[0].Before, a)
	sameEntity(t, "After of failed op", res[0].After, a)
	sameEntity(t, "Get after failed create", get(t, s, "", "urn:a"), a)
}

func testDelete(t *testing.T, open func(t *testing.T) store.Store) {
	s := openStore(t, open)
	a := Ent("urn:a", []string{"T"}, "v", Prop(1.0), "location", Point(4.35, 50.85))
	mustWrite(t, s, "", Create(a))
	res := write(t, s, "", Delete("urn:a"))
	if res[0].Err != nil || res[0].After != nil {
		t.Fatalf("delete result = %+v", res[0])
	}
	sameEntity(t, "Before of delete", res[0].Before, a)
	if _, err := s.Get(context.Background(), "", "urn:a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get after delete: %v", err)
	}
	res = write(t, s, "", Delete("urn:a"))
	if !errors.Is(res[0].Err, errMissing) || res[0].Before != nil || res[0].After != nil {
		t.Fatalf("delete missing = %+v", res[0])
	}
	// Gone from every index.
	gq, _ := geo.ParseQuery("near;maxDistance==1000", "Point", "[4.35,50.85]", "", Expand)
	for _, q := range []*store.Query{{Limit: 10}, {Type: typeQ(t, "T"), Limit: 10}, {Attrs: []string{Expand("v")}, Limit: 10},
		{Q: qQ(t, "v==1"), Limit: 10}, {Geo: gq, Limit: 10}} {
		r, err := s.Query(context.Background(), "", q)
		if err != nil || len(r.Entities) != 0 {
			t.Errorf("query after delete: %v %v", r, err)
		}
	}
	// Re-create works.
	mustWrite(t, s, "", Create(a))
	sameEntity(t, "re-created", get(t, s, "", "urn:a"), a)
}

func testUpsert(t *testing.T, open func(t *testing.T) store.Store) {
	s := openStore(t, open)
	a := Ent("urn:a", []string{"T"}, "v", Prop(1.0), "w", Prop("x"))
	b := Ent("urn:a", []string{"U"}, "v", Prop(2.0))
	res := write(t, s, "", Upsert(a))
	if res[0].Before != nil {
		t.Errorf("first upsert Before = %v", res[0].Before)
	}
	res = write(t, s, "", Upsert(b))
	sameEntity(t, "Before", res[0].Before, a)
	sameEntity(t, "After", res[0].After, b)
	sameEntity(t, "Get", get(t, s, "", "urn:a"), b)
}

func testMixedBatch(t *testing.T, open func(t *testing.T) store.Store) {
	s := openStore(t, open)
	a := Ent("urn:a", []string{"T"}, "v", Prop(1.0))
	b := Ent("urn:b", []string{"T"}, "v", Prop(2.0))
	mustWrite(t, s, "", Create(a))
	setV := func(v float64) func(e *ngsild.Entity) {
		return func(e *ngsild.Entity) { e.Attrs[Expand("v")] = []*ngsild.Attribute{Prop(v)} }
	}
	res := write(t, s, "",
		Create(a),                 // 0 fails: exists
		Update("urn:b", setV(9)),  // 1 fails: missing
		Create(b),                 // 2 ok
		Update("urn:a", setV(10)), // 3 ok
		Update("urn:a", setV(11)), // 4 ok, sees 3
		Delete("urn:c"),           // 5 fails
		Delete("urn:b"),           // 6 ok, sees 2
		Create(b),                 // 7 ok again
		store.Op{ID: "urn:a", Apply: func(cur *ngsild.Entity) (*ngsild.Entity, error) { // 8 wrong id
			n := cur.Clone()
			n.ID = "urn:z"
			return n, nil
		}},
	)
	wantErr := []bool{true, true, false, false, false, true, false, false, true}
	for i, r := range res {
		if (r.Err != nil) != wantErr[i] {
			t.Errorf("op %d: err = %v, want error %v", i, r.Err, wantErr[i])
		}
	}
	v := func(e *ngsild.Entity) any {
		if e == nil || len(e.Attrs[Expand("v")]) == 0 {
			return nil
		}
		return e.Attrs[Expand("v")][0].Value
	}
	checks := []struct {
		op            int
		before, after any
	}{
		{0, 1.0, 1.0}, {1, nil, nil}, {2, nil, 2.0}, {3, 1.0, 10.0}, {4, 10.0, 11.0}, {5, nil, nil},
		{6, 2.0, nil}, {7, nil, 2.0}, {8, 11.0, 11.0},
	}
	for _, c := range checks {
		if got := v(res[c.op].Before); got != c.before {
			t.Errorf("op %d Before v = %v, want %v", c.op, got, c.before)
		}
		if got := v(res[c.op].After); got != c.after {
			t.Errorf("op %d After v = %v, want %v", c.op, got, c.after)
		}
		if res[c.op].ID != []string{"urn:a", "urn:b", "urn:b", "urn:a", "urn:a", "urn:c", "urn:b", "urn:b", "urn:a"}[c.op] {
			t.Errorf("op %d ID = %s", c.op, res[c.op].ID)
		}
	}
	if got := v(get(t, s, "", "urn:a")); got != 11.0 {
		t.Errorf("a = %v, want 11", got)
	}
	if got := v(get(t, s, "", "urn:b")); got != 2.0 {
		t.Errorf("b = %v, want 2", got)
	}
	if _, err := s.Get(context.Background(), "", "urn:z"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("entity with a changed id was stored: %v", err)
	}
}

func testApplyPanics(t *testing.T, open func(t *testing.T) store.Store) {
	s := openStore(t, open)
	a := Ent("urn:a", []string{"T"}, "v", Prop(1.0))
	res := write(t, s, "",
		store.Op{ID: "urn:p", Apply: func(*ngsild.Entity) (*ngsild.Entity, error) { panic("boom") }},
		Create(a))
	if res[0].Err == nil || res[1].Err != nil {
		t.Fatalf("results = %+v", res)
	}
	// Concurrent writes with panics in other calls still succeed.
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			op := Upsert(Ent(fmt.Sprintf("urn:c%d", i), []string{"T"}))
			if i%2 == 0 {
				op = store.Op{ID: op.ID, Apply: func(*ngsild.Entity) (*ngsild.Entity, error) { panic(i) }}
			}
			res, err := s.Write(context.Background(), "", []store.Op{op})
			if err != nil || (res[0].Err != nil) != (i%2 == 0) {
				t.Errorf("write %d: %v %+v", i, err, res)
			}
		})
	}
	wg.Wait()
	sameEntity(t, "after panics", get(t, s, "", "urn:a"), a)
	r, err := s.Query(context.Background(), "", &store.Query{Count: true})
	if err != nil || r.Count != 11 {
		t.Errorf("count after panics = %v %v, want 11", r, err)
	}
}

func testHandedOutEntitiesAreStable(t *testing.T, open func(t *testing.T) store.Store) {
	s := openStore(t, open)
	// Entities a store returns are shared and read-only; in exchange the store
	// never changes one it has handed out: later writes make new values.
	mustWrite(t, s, "", Create(Ent("urn:a", []string{"T"}, "v", Prop(1.0))))
	g := get(t, s, "", "urn:a")
	q, err := s.Query(context.Background(), "", &store.Query{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	before := g.Clone()
	mustWrite(t, s, "", Update("urn:a", func(e *ngsild.Entity) {
		e.Scopes = []string{"/x"}
		e.Attrs[Expand("v")][0].Value = 2.0
	}))
	sameEntity(t, "entity from Get after a later write", g, before)
	sameEntity(t, "entity from Query after a later write", q.Entities[0], before)
	want := before.Clone()
	want.Scopes = []string{"/x"}
	want.Attrs[Expand("v")][0].Value = 2.0
	sameEntity(t, "stored entity", get(t, s, "", "urn:a"), want)
}

func testNoLostUpdate(t *testing.T, open func(t *testing.T) store.Store) {
	s := openStore(t, open)
	mustWrite(t, s, "", Create(Ent("urn:counter", []string{"Counter"}, "n", Prop(0.0))))
	const workers = 100
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			res, err := s.Write(context.Background(), "", []store.Op{Update("urn:counter", func(e *ngsild.Entity) {
				a := e.Attrs[Expand("n")][0]
				a.Value = a.Value.(float64) + 1
			})})
			if err != nil || res[0].Err != nil {
				t.Errorf("increment: %v %+v", err, res)
			}
		})
	}
	wg.Wait()
	if got := get(t, s, "", "urn:counter").Attrs[Expand("n")][0].Value; got != float64(workers) {
		t.Errorf("counter = %v, want %d", got, workers)
	}
}

func testConcurrentWritesAndReads(t *testing.T, open func(t *testing.T) store.Store) {
	s := openStore(t, open)
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 25 {
				id := fmt.Sprintf("urn:w%d:%d", w, i)
				e := Ent(id, []string{"T"}, "v", Prop(float64(i)), "location", Point(4.3+float64(i)/1000, 50.8))
				if _, err := s.Write(ctx, fmt.Sprintf("t%d", w%2), []store.Op{Upsert(e)}); err != nil {
					t.Errorf("write: %v", err)
					return
				}
				if _, err := s.Query(ctx, fmt.Sprintf("t%d", w%2), &store.Query{Type: typeQ(t, "T"), Limit: 5, Count: true}); err != nil {
					t.Errorf("query: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, tenant := range []string{"t0", "t1"} {
		r, err := s.Query(ctx, tenant, &store.Query{Type: typeQ(t, "T"), Count: true})
		if err != nil || r.Count != 100 {
			t.Errorf("tenant %s count = %+v %v, want 100", tenant, r, err)
		}
	}
}

func testTenants(t *testing.T, open func(t *testing.T) store.Store) {
	s := openStore(t, open)
	ctx := context.Background()
	ts, err := s.Tenants(ctx)
	if err != nil || !slices.Equal(ts, []string{store.DefaultTenant}) {
		t.Fatalf("Tenants of a new store = %q %v, want [\"\"]", ts, err)
	}
	if r, err := s.Query(ctx, store.DefaultTenant, &store.Query{Limit: 10, Count: true}); err != nil || r.Count != 0 || len(r.Entities) != 0 {
		t.Errorf("query of empty default tenant = %+v %v", r, err)
	}
	if ti, err := s.Types(ctx, store.DefaultTenant); err != nil || len(ti) != 0 {
		t.Errorf("Types of empty default tenant = %v %v", ti, err)
	}
	if _, err := s.Get(ctx, "nope", "urn:a"); !errors.Is(err, store.ErrNoTenant) {
		t.Errorf("Get in unknown tenant: %v", err)
	}
	if _, err := s.Query(ctx, "nope", &store.Query{Limit: 1}); !errors.Is(err, store.ErrNoTenant) {
		t.Errorf("Query in unknown tenant: %v", err)
	}
	if _, err := s.Types(ctx, "nope"); !errors.Is(err, store.ErrNoTenant) {
		t.Errorf("Types in unknown tenant: %v", err)
	}
	if _, err := s.Attributes(ctx, "nope"); !errors.Is(err, store.ErrNoTenant) {
		t.Errorf("Attributes in unknown tenant: %v", err)
	}
	// A write that stores nothing does not create its tenant: its ops see
	// no entity.
	res := write(t, s, "ghost", Update("urn:a", func(*ngsild.Entity) {}), Delete("urn:b"))
	if len(res) != 2 || !errors.Is(res[0].Err, errMissing) || !errors.Is(res[1].Err, errMissing) {
		t.Errorf("ops in an unknown tenant: %+v", res)
	}
	if _, err := s.Get(ctx, "ghost", "urn:a"); !errors.Is(err, store.ErrNoTenant) {
		t.Errorf("a write that stored nothing created its tenant: %v", err)
	}
	a1 := Ent("urn:a", []string{"T"}, "v", Prop(1.0), "location", Point(4.35, 50.85))
	a2 := Ent("urn:a", []string{"U"}, "w", Prop(2.0), "location", Point(4.35, 50.85))
	mustWrite(t, s, store.DefaultTenant, Create(a1))
	mustWrite(t, s, "city", Create(a2))
	mustWrite(t, s, "city", Create(Ent("urn:b", []string{"T"})))
	sameEntity(t, "default tenant", get(t, s, "", "urn:a"), a1)
	sameEntity(t, "tenant city", get(t, s, "city", "urn:a"), a2)
	ts, err = s.Tenants(ctx)
	slices.Sort(ts)
	if err != nil || !slices.Equal(ts, []string{"", "city"}) {
		t.Errorf("Tenants = %q %v", ts, err)
	}
	r, err := s.Query(ctx, "city", &store.Query{Limit: 10, Count: true})
	if err != nil || r.Count != 2 || !slices.Equal(ids(r.Entities), []string{"urn:a", "urn:b"}) {
		t.Errorf("query city = %+v %v", r, err)
	}
	r, err = s.Query(ctx, "", &store.Query{Type: typeQ(t, "T"), Limit: 10, Count: true})
	if err != nil || r.Count != 1 || len(r.Entities) != 1 {
		t.Errorf("query default tenant by type = %+v %v", r, err)
	} else {
		sameEntity(t, "default tenant query", r.Entities[0], a1)
	}
	gq, _ := geo.ParseQuery("near;maxDistance==100", "Point", "[4.35,50.85]", "", Expand)
	r, err = s.Query(ctx, "city", &store.Query{Geo: gq, Limit: 10})
	if err != nil || len(r.Entities) != 1 {
		t.Errorf("geo query in tenant = %+v %v", r, err)
	} else {
		sameEntity(t, "tenant geo query", r.Entities[0], a2)
	}
	ti, err := s.Types(ctx, "city")
	if err != nil || len(ti) != 2 {
		t.Errorf("Types city = %+v %v", ti, err)
	}
	mustWrite(t, s, "city", Delete("urn:a"))
	sameEntity(t, "default tenant after delete in other tenant", get(t, s, "", "urn:a"), a1)
}

// --- queries ---

func typeQ(t *testing.T, s string) *qlang.TypeQuery {
	t.Helper()
	q, err := qlang.ParseTypeQuery(s, Expand)
	if err != nil {
		t.Fatalf("type %q: %v", s, err)
	}
	return q
}

func qQ(t *testing.T, s string) *qlang.Query {
	t.Helper()
	q, err := qlang.ParseQ(s, Expand)
	if err != nil {
		t.Fatalf("q %q: %v", s, err)
	}
	return q
}

func scopeQ(t *testing.T, s string) *qlang.ScopeQuery {
	t.Helper()
	q, err := qlang.ParseScopeQ(s)
	if err != nil {
		t.Fatalf("scopeQ %q: %v", s, err)
	}
	return q
}

func geoQ(t *testing.T, rel, geom, coords, prop string) *geo.Query {
	t.Helper()
	q, err := geo.ParseQuery(rel, geom, coords, prop, Expand)
	if err != nil {
		t.Fatalf("geo %s %s %s: %v", rel, geom, coords, err)
	}
	return q
}

// dataset writes n varied entities in creation order and returns them.
func dataset(t *testing.T, s store.Store, tenant string, n int, seed uint64) []*ngsild.Entity {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	types := [][]string{{"A"}, {"B"}, {"A", "B"}, {"C"}}
	statuses := []string{"ok", "warning", "broken", "off"}
	var out []*ngsild.Entity
	var ops []store.Op
	for i := range n {
		id := fmt.Sprintf("urn:ngsi-ld:E:%04d", i)
		var attrs []any
		if rng.IntN(10) > 0 {
			attrs = append(attrs, "temperature", Prop(float64(rng.IntN(400))/10-5))
		}
		if rng.IntN(5) == 0 {
			attrs = append(attrs, "temperature", &ngsild.Attribute{Kind: ngsild.Property, Value: float64(rng.IntN(40)), DatasetID: "urn:ds:b"})
		}
		if rng.IntN(4) > 0 {
			attrs = append(attrs, "status", Prop(statuses[rng.IntN(len(statuses))]))
		}
		if rng.IntN(3) == 0 {
			attrs = append(attrs, "on", Prop(rng.IntN(2) == 0))
		}
		if rng.IntN(3) == 0 {
			attrs = append(attrs, "refersTo", Rel(fmt.Sprintf("urn:ngsi-ld:Building:%d", rng.IntN(5))))
		}
		if rng.IntN(6) == 0 {
			attrs = append(attrs, "tags", Prop([]any{statuses[rng.IntN(4)], float64(rng.IntN(3))}))
		}
		if rng.IntN(8) == 0 {
			attrs = append(attrs, "status", Prop(map[string]any{"code": float64(rng.IntN(3))}))
		}
		if rng.IntN(7) == 0 {
			attrs = append(attrs, "name", &ngsild.Attribute{Kind: ngsild.LanguageProperty,
				Value: map[string]any{"nl": statuses[rng.IntN(4)], "fr": "x"}})
		}
		if rng.IntN(10) > 0 {
			// Around Brussels: 4.30..4.42 E, 50.80..50.89 N.
			attrs = append(attrs, "location", Point(4.30+rng.Float64()*0.12, 50.80+rng.Float64()*0.09))
		} else if rng.IntN(2) == 0 {
			attrs = append(attrs, "location", &ngsild.Attribute{Kind: ngsild.GeoProperty, Value: map[string]any{
				"type": "Polygon", "coordinates": []any{[]any{
					[]any{4.34, 50.84}, []any{4.36, 50.84}, []any{4.36, 50.86}, []any{4.34, 50.86}, []any{4.34, 50.84}}}}})
		}
		if rng.IntN(5) == 0 {
			attrs = append(attrs, "area", Point(4.35+rng.Float64()*0.01, 50.85))
		}
		e := Ent(id, types[rng.IntN(len(types))], attrs...)
		if rng.IntN(3) == 0 {
			e.Scopes = []string{[]string{"/Brussels/Centre", "/Brussels/Ixelles", "/Gent"}[rng.IntN(3)]}
		}
		out = append(out, e)
		ops = append(ops, Create(e))
		if len(ops) == 50 {
			mustWrite(t, s, tenant, ops...)
			ops = nil
		}
	}
	mustWrite(t, s, tenant, ops...)
	return out
}

func filter(all []*ngsild.Entity, q *store.Query) []*ngsild.Entity {
	var out []*ngsild.Entity
	for _, e := range all {
		if q.Match(e) {
			out = append(out, e)
		}
	}
	return out
}

// queryCases are filters checked against a brute-force evaluation of
// store.Query.Match over every entity.
func queryCases(t *testing.T) []struct {
	name string
	q    store.Query
} {
	return []struct {
		name string
		q    store.Query
	}{
		{"all", store.Query{}},
		{"ids", store.Query{IDs: []string{"urn:ngsi-ld:E:0007", "urn:ngsi-ld:E:0003", "urn:nope", "urn:ngsi-ld:E:0007"}}},
		{"ids+type", store.Query{IDs: []string{"urn:ngsi-ld:E:0001", "urn:ngsi-ld:E:0002", "urn:ngsi-ld:E:0003"}, Type: typeQ(t, "A")}},
		{"idPattern", store.Query{IDPattern: regexp.MustCompile(`E:00[1-3]\d$`)}},
		{"type", store.Query{Type: typeQ(t, "A")}},
		{"type or", store.Query{Type: typeQ(t, "A,C")}},
		{"type or pipe", store.Query{Type: typeQ(t, "B|C")}},
		{"type and", store.Query{Type: typeQ(t, "A;B")}},
		{"type expr", store.Query{Type: typeQ(t, "(A;B),C")}},
		{"type unknown", store.Query{Type: typeQ(t, "Nope")}},
		{"selectors", store.Query{Selectors: []store.Selector{
			{ID: "urn:ngsi-ld:E:0005", Type: typeQ(t, "C")},
			{ID: "urn:ngsi-ld:E:0006"},
			{ID: "urn:nope"},
			{Type: typeQ(t, "A;B")},
			{IDPattern: regexp.MustCompile(`E:001\d$`), Type: typeQ(t, "C")},
		}}},
		{"selectors and q", store.Query{Selectors: []store.Selector{{Type: typeQ(t, "C")}, {IDPattern: regexp.MustCompile(`E:00[0-4]\d$`)}},
			Q: qQ(t, "temperature>10")}},
		{"attrs", store.Query{Attrs: []string{Expand("on"), Expand("tags")}}},
		{"attrs unknown", store.Query{Attrs: []string{Expand("nope")}}},
		{"q gt", store.Query{Q: qQ(t, "temperature>30")}},
		{"q ge type", store.Query{Type: typeQ(t, "B"), Q: qQ(t, "temperature>=20")}},
		{"q lt", store.Query{Q: qQ(t, "temperature<0")}},
		{"q le", store.Query{Q: qQ(t, "temperature<=1")}},
		{"q eq number", store.Query{Q: qQ(t, "temperature==12")}},
		{"q range", store.Query{Q: qQ(t, "temperature==10..12")}},
		{"q list", store.Query{Q: qQ(t, "temperature==1,2,3,4,5,6,7,8,9,10")}},
		{"q ne", store.Query{Q: qQ(t, "temperature!=12")}},
		{"q string", store.Query{Q: qQ(t, `status=="broken"`)}},
		{"q string list", store.Query{Q: qQ(t, `status=="broken","off"`)}},
		{"q string range", store.Query{Q: qQ(t, `status=="broken".."ok"`)}},
		{"q string gt", store.Query{Q: qQ(t, `status>"ok"`)}},
		{"q array element", store.Query{Q: qQ(t, `tags=="off"`)}},
		{"q array number", store.Query{Q: qQ(t, `tags==2`)}},
		{"q bool", store.Query{Q: qQ(t, "on==true")}},
		{"q bool false", store.Query{Q: qQ(t, "on==false")}},
		{"q relationship", store.Query{Q: qQ(t, "refersTo==urn:ngsi-ld:Building:2")}},
		{"q language", store.Query{Q: qQ(t, `name=="off"`)}},
		{"q exists", store.Query{Q: qQ(t, "on")}},
		{"q not exists", store.Query{Q: qQ(t, "!on")}},
		{"q compound path", store.Query{Q: qQ(t, "status[code]==1")}},
		{"q and", store.Query{Q: qQ(t, `temperature>10;status=="ok"`)}},
		{"q or", store.Query{Q: qQ(t, `temperature>30|status=="broken"`)}},
		{"q unknown attr", store.Query{Q: qQ(t, "nope>1")}},
		{"q unknown attr ne", store.Query{Q: qQ(t, "nope!=1")}},
		{"q type and attrs", store.Query{Type: typeQ(t, "A"), Attrs: []string{Expand("temperature")}, Q: qQ(t, "on==false")}},
		{"scopeQ", store.Query{ScopeQ: scopeQ(t, "/Brussels/#")}},
		{"scopeQ exact", store.Query{ScopeQ: scopeQ(t, "/Gent")}},
		{"near", store.Query{Geo: geoQ(t, "near;maxDistance==1500", "Point", "[4.35,50.85]", "")}},
		{"near type", store.Query{Type: typeQ(t, "A"), Geo: geoQ(t, "near;maxDistance==2000", "Point", "[4.38,50.83]", "location")}},
		{"near type or", store.Query{Type: typeQ(t, "A,C"), Geo: geoQ(t, "near;maxDistance==2000", "Point", "[4.38,50.83]", "location")}},
		{"near type and", store.Query{Type: typeQ(t, "A;B"), Geo: geoQ(t, "near;maxDistance==3000", "Point", "[4.38,50.83]", "location")}},
		{"near type q", store.Query{Type: typeQ(t, "B"), Q: qQ(t, "temperature>15"), Geo: geoQ(t, "near;maxDistance==3000", "Point", "[4.35,50.85]", "")}},
		{"near min", store.Query{Geo: geoQ(t, "near;minDistance==3000", "Point", "[4.35,50.85]", "")}},
		{"near min max", store.Query{Geo: geoQ(t, "near;minDistance==1000;maxDistance==3000", "Point", "[4.35,50.85]", "")}},
		{"within", store.Query{Geo: geoQ(t, "within", "Polygon", "[[[4.32,50.82],[4.37,50.82],[4.37,50.86],[4.32,50.86],[4.32,50.82]]]", "")}},
		{"intersects", store.Query{Geo: geoQ(t, "intersects", "Polygon", "[[[4.35,50.85],[4.39,50.85],[4.39,50.88],[4.35,50.88],[4.35,50.85]]]", "")}},
		{"contains", store.Query{Geo: geoQ(t, "contains", "Point", "[4.35,50.85]", "")}},
		{"disjoint", store.Query{Geo: geoQ(t, "disjoint", "Polygon", "[[[4.32,50.82],[4.37,50.82],[4.37,50.86],[4.32,50.86],[4.32,50.82]]]", "")}},
		{"geoproperty", store.Query{Geo: geoQ(t, "near;maxDistance==800", "Point", "[4.355,50.85]", "area")}},
		{"geoproperty unknown", store.Query{Geo: geoQ(t, "near;maxDistance==800", "Point", "[4.355,50.85]", "nope")}},
		{"far away", store.Query{Geo: geoQ(t, "near;maxDistance==800", "Point", "[3.7,51.05]", "")}},
		{"everything", store.Query{Type: typeQ(t, "A,B"), Attrs: []string{Expand("temperature")}, Q: qQ(t, "temperature>5"),
			ScopeQ: scopeQ(t, "/Brussels/#"), Geo: geoQ(t, "near;maxDistance==5000", "Point", "[4.35,50.85]", "")}},
	}
}

// checkQueries compares every query case, with a few page sizes, against
// brute force over all.
func checkQueries(t *testing.T, s store.Store, tenant string, all []*ngsild.Entity) {
	t.Helper()
	ctx := context.Background()
	nonEmpty := 0
	for _, tc := range queryCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			want := filter(all, &tc.q)
			if len(want) > 0 {
				nonEmpty++
			}
			q := tc.q
			q.Limit, q.Count = len(all)+10, true
			r, err := s.Query(ctx, tenant, &q)
			if err != nil {
				t.Fatalf("Query: %v", err)
			}
			if r.Count != len(want) {
				t.Errorf("Count = %d, want %d", r.Count, len(want))
			}
			if !slices.Equal(ids(r.Entities), ids(want)) {
				t.Fatalf("got %d entities %v\nwant %d %v", len(r.Entities), ids(r.Entities), len(want), ids(want))
			}
			for i := range want {
				sameEntity(t, "query result", r.Entities[i], want[i])
			}
			// Pages (about ten), without Count.
			q.Count = false
			q.Limit = max(3, len(want)/10)
			var paged []string
			for q.Offset = 0; q.Offset < len(want)+3; q.Offset += q.Limit {
				r, err := s.Query(ctx, tenant, &q)
				if err != nil {
					t.Fatalf("Query page: %v", err)
				}
				if r.Count != -1 {
					t.Errorf("Count = %d without Query.Count, want -1", r.Count)
				}
				paged = append(paged, ids(r.Entities)...)
			}
			if !slices.Equal(paged, ids(want)) {
				t.Errorf("pages of %d: %v\nwant %v", q.Limit, paged, ids(want))
			}
			// Count only.
			q.Offset, q.Limit, q.Count = 0, 0, true
			r, err = s.Query(ctx, tenant, &q)
			if err != nil || r.Count != len(want) || len(r.Entities) != 0 {
				t.Errorf("count only = %d (%d entities) %v, want %d", r.Count, len(r.Entities), err, len(want))
			}
		})
	}
	if nonEmpty < len(queryCases(t))/2 {
		t.Errorf("only %d query cases have results: the dataset does not exercise the filters", nonEmpty)
	}
}

func testQueryFilters(t *testing.T, open func(t *testing.T) store.Store) {
	s := openStore(t, open)
	all := dataset(t, s, "", 400, 1)
	mustWrite(t, s, "other", Upsert(all[0]), Upsert(all[1]))
	checkQueries(t, s, "", all)
}

func testQueryPaging(t *testing.T, open func(t *testing.T) store.Store) {
	s := openStore(t, open)
	ctx := context.Background()
	all := dataset(t, s, "", 600, 2)
	for _, q := range []store.Query{{}, {Type: typeQ(t, "A")}, {Q: qQ(t, "temperature>10")}} {
		want := ids(filter(all, &q))
		var got []string
		for _, size := range []int{11, 100, 333} {
			got = got[:0]
			for off := 0; off < len(all); off += size {
				p := q
				p.Offset, p.Limit = off, size
				r, err := s.Query(ctx, "", &p)
				if err != nil {
					t.Fatal(err)
				}
				if len(r.Entities) > size {
					t.Fatalf("page has %d entities, limit %d", len(r.Entities), size)
				}
				got = append(got, ids(r.Entities)...)
			}
			if !slices.Equal(got, want) {
				t.Errorf("pages of %d: %d ids, want %d", size, len(got), len(want))
			}
		}
	}
	r, err := s.Query(ctx, "", &store.Query{Limit: 0})
	if err != nil || len(r.Entities) != 0 || r.Count != -1 {
		t.Errorf("Limit 0 = %+v %v", r, err)
	}
	r, err = s.Query(ctx, "", &store.Query{Limit: 10, Offset: 5000, Count: true})
	if err != nil || len(r.Entities) != 0 || r.Count != 600 {
		t.Errorf("offset past the end = %d entities, count %d, %v", len(r.Entities), r.Count, err)
	}
}

func testQueryOrder(t *testing.T, open func(t *testing.T) store.Store) {
	s := openStore(t, open)
	ctx := context.Background()
	for _, id := range []string{"urn:c", "urn:a", "urn:b", "urn:d"} {
		mustWrite(t, s, "", Create(Ent(id, []string{"T"}, "v", Prop(1.0))))
	}
	order := func() []string {
		r, err := s.Query(ctx, "", &store.Query{Type: typeQ(t, "T"), Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		return ids(r.Entities)
	}
	if got := order(); !slices.Equal(got, []string{"urn:c", "urn:a", "urn:b", "urn:d"}) {
		t.Errorf("creation order: %v", got)
	}
	mustWrite(t, s, "", Update("urn:c", func(e *ngsild.Entity) { e.Attrs[Expand("v")][0].Value = 2.0 }))
	if got := order(); !slices.Equal(got, []string{"urn:c", "urn:a", "urn:b", "urn:d"}) {
		t.Errorf("an update changed the order: %v", got)
	}
	mustWrite(t, s, "", Delete("urn:a"), Create(Ent("urn:a", []string{"T"})))
	if got := order(); !slices.Equal(got, []string{"urn:c", "urn:b", "urn:d", "urn:a"}) {
		t.Errorf("a re-created entity is not last: %v", got)
	}
}

func testQueryAfterUpdates(t *testing.T, open func(t *testing.T) store.Store) {
	s := openStore(t, open)
	all := dataset(t, s, "", 300, 3)
	rng := rand.New(rand.NewPCG(3, 3))
	byID := map[string]int{}
	for i, e := range all {
		byID[e.ID] = i
	}
	// Random changes of values, types, locations; deletes and re-creates.
	for range 5 {
		var ops []store.Op
		for range 60 {
			i := rng.IntN(len(all))
			e := all[i]
			if e == nil {
				continue
			}
			n := e.Clone()
			switch rng.IntN(6) {
			case 0:
				n.Attrs[Expand("temperature")] = []*ngsild.Attribute{Prop(float64(rng.IntN(50)))}
			case 1:
				n.Types = []string{Expand([]string{"A", "B", "C", "D"}[rng.IntN(4)])}
			case 2:
				n.Attrs[Expand("location")] = []*ngsild.Attribute{Point(4.30+rng.Float64()*0.12, 50.80+rng.Float64()*0.09)}
			case 3:
				delete(n.Attrs, Expand("location"))
				delete(n.Attrs, Expand("status"))
			case 4:
				n.Attrs[Expand("status")] = []*ngsild.Attribute{Prop([]string{"ok", "off"}[rng.IntN(2)])}
			case 5:
				ops = append(ops, Upsert(n))
				n = nil
				ops = append(ops, store.Op{ID: e.ID, Apply: func(*ngsild.Entity) (*ngsild.Entity, error) { return nil, nil }})
			}
			if n != nil {
				ops = append(ops, Upsert(n))
			}
			all[i] = n
		}
		mustWrite(t, s, "", ops...)
	}
	var live []*ngsild.Entity
	for _, e := range all {
		if e != nil {
			live = append(live, e)
		}
	}
	checkQueries(t, s, "", live)
}

func testQueryCount(t *testing.T, open func(t *testing.T) store.Store) {
	s := openStore(t, open)
	ctx := context.Background()
	all := dataset(t, s, "", 200, 4)
	mustWrite(t, s, "", Delete(all[0].ID), Delete(all[1].ID))
	all = all[2:]
	for _, tc := range []struct {
		name string
		q    store.Query
	}{
		{"all", store.Query{}},
		{"type", store.Query{Type: typeQ(t, "A")}},
		{"type B", store.Query{Type: typeQ(t, "B")}},
		{"type unknown", store.Query{Type: typeQ(t, "Nope")}},
		{"two types", store.Query{Type: typeQ(t, "A,B")}},
	} {
		q := tc.q
		q.Count, q.Limit = true, 5
		r, err := s.Query(ctx, "", &q)
		want := filter(all, &q)
		if err != nil || r.Count != len(want) {
			t.Errorf("%s: count = %d %v, want %d", tc.name, r.Count, err, len(want))
		}
		if len(r.Entities) != min(5, len(want)) {
			t.Errorf("%s: %d entities, want %d", tc.name, len(r.Entities), min(5, len(want)))
		}
	}
	// A union of types counts an entity with both types once (a store may
	// add per-type counters only while no entity has two types).
	countAB := func() int {
		r, err := s.Query(ctx, "", &store.Query{Type: typeQ(t, "A,B"), Count: true})
		if err != nil {
			t.Fatal(err)
		}
		return r.Count
	}
	before := countAB()
	mustWrite(t, s, "", Create(Ent("urn:both", []string{"A", "B"})))
	if got := countAB(); got != before+1 {
		t.Errorf("A,B after adding an entity of both types: %d, want %d", got, before+1)
	}
	mustWrite(t, s, "", Delete("urn:both"))
	if got := countAB(); got != before {
		t.Errorf("A,B after deleting it: %d, want %d", got, before)
	}
}

func testTypesAttributes(t *testing.T, open func(t *testing.T) store.Store) {
	s := openStore(t, open)
	ctx := context.Background()
	mustWrite(t, s, "",
		Create(Ent("urn:1", []string{"A"}, "v", Prop(1.0), "r", Rel("urn:x"))),
		Create(Ent("urn:2", []string{"A", "B"}, "v", &ngsild.Attribute{Kind: ngsild.JsonProperty, Value: map[string]any{"x": 1.0}}, "location", Point(4, 50))),
		Create(Ent("urn:3", []string{"C"})),
	)
	types, err := s.Types(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	want := []store.TypeInfo{
		{Type: Expand("A"), Count: 2, Attrs: map[string][]ngsild.Kind{
			Expand("v"): {ngsild.JsonProperty, ngsild.Property}, Expand("r"): {ngsild.Relationship}, Expand("location"): {ngsild.GeoProperty}}},
		{Type: Expand("B"), Count: 1, Attrs: map[string][]ngsild.Kind{Expand("v"): {ngsild.JsonProperty}, Expand("location"): {ngsild.GeoProperty}}},
		{Type: Expand("C"), Count: 1, Attrs: map[string][]ngsild.Kind{}},
	}
	normTypes(types)
	if !reflect.DeepEqual(types, want) {
		t.Errorf("Types =\n%+v\nwant\n%+v", types, want)
	}
	attrs, err := s.Attributes(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	wantAttrs := []store.AttributeInfo{
		{Name: Expand("location"), Count: 1, Types: []string{Expand("A"), Expand("B")}, Kinds: []ngsild.Kind{ngsild.GeoProperty}},
		{Name: Expand("r"), Count: 1, Types: []string{Expand("A")}, Kinds: []ngsild.Kind{ngsild.Relationship}},
		{Name: Expand("v"), Count: 2, Types: []string{Expand("A"), Expand("B")}, Kinds: []ngsild.Kind{ngsild.JsonProperty, ngsild.Property}},
	}
	normAttrs(attrs)
	normAttrs(wantAttrs)
	if !reflect.DeepEqual(attrs, wantAttrs) {
		t.Errorf("Attributes =\n%+v\nwant\n%+v", attrs, wantAttrs)
	}
	// Deletes and changes are reflected.
	mustWrite(t, s, "", Delete("urn:2"), Update("urn:1", func(e *ngsild.Entity) { delete(e.Attrs, Expand("r")) }), Delete("urn:3"))
	types, _ = s.Types(ctx, "")
	normTypes(types)
	want = []store.TypeInfo{{Type: Expand("A"), Count: 1, Attrs: map[string][]ngsild.Kind{Expand("v"): {ngsild.Property}}}}
	if !reflect.DeepEqual(types, want) {
		t.Errorf("Types after deletes =\n%+v\nwant\n%+v", types, want)
	}
	attrs, _ = s.Attributes(ctx, "")
	normAttrs(attrs)
	wantAttrs = []store.AttributeInfo{{Name: Expand("v"), Count: 1, Types: []string{Expand("A")}, Kinds: []ngsild.Kind{ngsild.Property}}}
	if !reflect.DeepEqual(attrs, wantAttrs) {
		t.Errorf("Attributes after deletes =\n%+v\nwant\n%+v", attrs, wantAttrs)
	}
}

func normTypes(ts []store.TypeInfo) {
	slices.SortFunc(ts, func(a, b store.TypeInfo) int { return strings.Compare(a.Type, b.Type) })
	for _, ti := range ts {
		for _, k := range ti.Attrs {
			slices.Sort(k)
		}
	}
}

func normAttrs(as []store.AttributeInfo) {
	slices.SortFunc(as, func(a, b store.AttributeInfo) int { return strings.Compare(a.Name, b.Name) })
	for i := range as {
		slices.Sort(as[i].Types)
		slices.Sort(as[i].Kinds)
	}
}

// --- contexts, durability, lifecycle ---

func testContexts(t *testing.T, open func(t *testing.T) store.Store) {
	s := openStore(t, open)
	ctx := context.Background()
	if _, err := s.GetContext(ctx, "urn:none"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetContext unknown: %v", err)
	}
	if err := s.DeleteContext(ctx, "urn:none"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeleteContext unknown: %v", err)
	}
	a := store.ContextRecord{ID: "http://x/a.jsonld", Kind: "Hosted", Body: []byte(`{"@context":{"a":"urn:a"}}`), CreatedAt: t0}
	b := store.ContextRecord{ID: "http://x/b.jsonld", Kind: "Cached", Body: []byte(`{"@context":{}}`), CreatedAt: t0.Add(time.Minute)}
	for _, c := range []store.ContextRecord{a, b} {
		if err := s.PutContext(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.GetContext(ctx, a.ID)
	if err != nil || got.ID != a.ID || got.Kind != a.Kind || string(got.Body) != string(a.Body) || !got.CreatedAt.Equal(a.CreatedAt) {
		t.Errorf("GetContext = %+v %v", got, err)
	}
	list, err := s.ListContexts(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("ListContexts = %v %v", list, err)
	}
	a.Body = []byte(`{"@context":{"a":"urn:a2"}}`)
	if err := s.PutContext(ctx, a); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetContext(ctx, a.ID); string(got.Body) != string(a.Body) {
		t.Errorf("replaced body = %s", got.Body)
	}
	// Contexts are not per tenant.
	mustWrite(t, s, "t", Create(Ent("urn:a", []string{"T"})))
	if err := s.DeleteContext(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.ListContexts(ctx); len(list) != 1 || list[0].ID != a.ID {
		t.Errorf("after delete: %+v", list)
	}
}

func testReopen(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	s := open(t)
	all := dataset(t, s, "", 120, 5)
	mustWrite(t, s, "city", Create(Ent("urn:c", []string{"T"}, "v", Prop(3.0))))
	mustWrite(t, s, "", Delete(all[0].ID))
	all = all[1:]
	if err := s.PutContext(ctx, store.ContextRecord{ID: "http://x/c", Kind: "Hosted", Body: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s = openStore(t, open)
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping after reopen: %v", err)
	}
	for _, e := range all {
		sameEntity(t, "after reopen", get(t, s, "", e.ID), e)
	}
	sameEntity(t, "other tenant after reopen", get(t, s, "city", "urn:c"), Ent("urn:c", []string{"T"}, "v", Prop(3.0)))
	if _, err := s.GetContext(ctx, "http://x/c"); err != nil {
		t.Errorf("context after reopen: %v", err)
	}
	checkQueries(t, s, "", all)
	// Writes after reopen keep creation order and indexes right.
	dataset(t, s, "x", 10, 6)
	mustWrite(t, s, "", Create(Ent("urn:zz", []string{"A"}, "temperature", Prop(1.0))))
	r, err := s.Query(ctx, "", &store.Query{Type: typeQ(t, "A"), Count: true, Limit: 1000})
	if err != nil || r.Entities[len(r.Entities)-1].ID != "urn:zz" {
		t.Errorf("new entity after reopen not last: %v", err)
	}
}

func testClosed(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := context.Background()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	// Writes queued at Close are committed or refused, never lost silently.
	var wg sync.WaitGroup
	results := make([]error, 50)
	for i := range results {
		wg.Go(func() {
			_, results[i] = s.Write(ctx, "", []store.Op{Create(Ent(fmt.Sprintf("urn:%d", i), []string{"T"}))})
		})
	}
	time.Sleep(time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := s.Write(ctx, "", []store.Op{Create(Ent("urn:late", []string{"T"}))}); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Write after Close: %v, want ErrClosed", err)
	}
	if _, err := s.Get(ctx, "", "urn:1"); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Get after Close: %v, want ErrClosed", err)
	}
	if err := s.Ping(ctx); err == nil {
		t.Errorf("Ping after Close succeeded")
	}
	s = openStore(t, open)
	for i, err := range results {
		_, gerr := s.Get(ctx, "", fmt.Sprintf("urn:%d", i))
		switch {
		case err == nil && gerr != nil:
			t.Errorf("write %d succeeded before Close but is lost: %v", i, gerr)
		case err != nil && !errors.Is(err, store.ErrClosed):
			t.Errorf("write %d: %v", i, err)
		}
	}
}

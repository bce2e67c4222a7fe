package migrate

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/core"
	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/ngsild/geo"
	"github.com/zenne-city/zenne/internal/ngsild/temporal"
	"github.com/zenne-city/zenne/internal/store"
	"github.com/zenne-city/zenne/internal/store/postgres"
	"github.com/zenne-city/zenne/internal/store/postgres/pgtest"
	"github.com/zenne-city/zenne/internal/store/sqlite"
)

const ns = ngsild.DefaultContextNS

func openSQLite(t *testing.T) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "zenne.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.WaitIndex(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

// fill writes a small city through the broker, as the API would: two
// tenants, entities updated with observedAt (history), one deleted (its
// history stays), a registered @context, subscriptions and notifications
// waiting for delivery, and records of two kinds (testRecords), one tenant
// holding only records.
func fill(t *testing.T, s store.Store) {
	t.Helper()
	ctx := context.Background()
	b := core.New(s, core.Options{})
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for _, tenant := range []string{"", "energy"} {
		for i := range 30 {
			e := &ngsild.Entity{ID: fmt.Sprintf("urn:ngsi-ld:Meter:%d", i), Types: []string{ns + "Meter"}, Attrs: map[string][]*ngsild.Attribute{
				ns + "power":       {{Kind: ngsild.Property, Value: float64(i), ObservedAt: start, UnitCode: "KWT"}},
				ns + "name":        {{Kind: ngsild.Property, Value: fmt.Sprintf("meter %d", i)}},
				ngsild.IRILocation: {{Kind: ngsild.GeoProperty, Value: map[string]any{"type": "Point", "coordinates": []any{4.35 + float64(i)/1000, 50.85}}}},
			}}
			if err := b.CreateEntity(ctx, tenant, e); err != nil {
				t.Fatal(err)
			}
			for k := 1; k <= 5; k++ {
				frag := &ngsild.Entity{Attrs: map[string][]*ngsild.Attribute{
					ns + "power": {{Kind: ngsild.Property, Value: float64(i*10 + k), ObservedAt: start.Add(time.Duration(k) * 15 * time.Minute), UnitCode: "KWT"}},
				}}
				if _, err := b.UpdateAttrs(ctx, tenant, e.ID, frag); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := b.DeleteEntity(ctx, tenant, "urn:ngsi-ld:Meter:7"); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutContext(ctx, store.ContextRecord{ID: "http://localhost/ctx/energy.jsonld", Kind: "Hosted",
		Body: []byte(`{"@context":{"power":"https://example.org/power"}}`), CreatedAt: start}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		sub := store.SubscriptionRecord{Tenant: "energy", ID: fmt.Sprintf("urn:ngsi-ld:Subscription:%d", i), Doc: []byte(fmt.Sprintf(`{"n":%d}`, i)), Status: []byte(`{"timesSent":4}`)}
		if err := s.SaveSubscription(ctx, sub); err != nil {
			t.Fatal(err)
		}
	}
	var queued []*store.QueuedNotification
	for i := range 5 {
		queued = append(queued, &store.QueuedNotification{Tenant: "energy", Subscription: "urn:ngsi-ld:Subscription:1", Created: start, Body: []byte(fmt.Sprintf(`{"k":%d}`, i))})
	}
	if err := s.Enqueue(ctx, s.LastChange(), queued); err != nil {
		t.Fatal(err)
	}
	for _, r := range testRecords() {
		if err := s.PutRecord(ctx, r.Kind, r.Tenant, r.ID, r.Doc); err != nil {
			t.Fatal(err)
		}
	}
}

// testRecords are the records fill stores, by kind, tenant and id: device
// registrations in two tenants and in one that holds no entity, alarm
// rules, an empty document and a binary one.
func testRecords() []store.Record {
	var rs []store.Record
	for _, tenant := range []string{"", "devices-only", "energy"} {
		for i := range 4 {
			id := fmt.Sprintf("urn:ngsi-ld:Device:%s/%d", tenant, i)
			rs = append(rs, store.Record{Kind: "device", Tenant: tenant, ID: id, Doc: []byte(fmt.Sprintf(`{"id":%q}`, id))})
		}
	}
	rs = append(rs,
		store.Record{Kind: "device", Tenant: "energy", ID: "urn:empty", Doc: []byte{}},
		store.Record{Kind: "alarm", Tenant: "energy", ID: "rule-é", Doc: []byte(`{"q":"power>100"}`)},
		store.Record{Kind: "alarm", Tenant: "energy", ID: "state/rule-é", Doc: []byte{0, 1, 0xff}},
	)
	return rs
}

// checkRecords checks that s holds exactly testRecords.
func checkRecords(t *testing.T, s store.Store) {
	t.Helper()
	byKind := map[string][]store.Record{}
	for _, r := range testRecords() {
		byKind[r.Kind] = append(byKind[r.Kind], r)
	}
	for kind, want := range byKind {
		slices.SortFunc(want, func(a, b store.Record) int {
			return cmp.Or(strings.Compare(a.Tenant, b.Tenant), strings.Compare(a.ID, b.ID))
		})
		got, err := s.ListRecords(context.Background(), kind, "", true)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Errorf("%d %s records in the copy, want %d", len(got), kind, len(want))
			continue
		}
		for i := range want {
			if got[i].Kind != kind || got[i].Tenant != want[i].Tenant || got[i].ID != want[i].ID || !bytes.Equal(got[i].Doc, want[i].Doc) {
				t.Errorf("%s record %d in the copy: %q %q %q, want %q %q %q", kind, i, got[i].Tenant, got[i].ID, got[i].Doc, want[i].Tenant, want[i].ID, want[i].Doc)
			}
		}
	}
}

// TestCopy copies a store into an empty one and finds the same entities,
// the same history (instance ids included), contexts, subscriptions and
// queued notifications, with the target's notifier placed after the copy.
func TestCopy(t *testing.T) {
	ctx := context.Background()
	from, to := openSQLite(t), openSQLite(t)
	fill(t, from)
	var stages []Stage
	rep, err := Copy(ctx, from, to, Options{Batch: 7, HistoryBatch: 11, Progress: func(p Progress) {
		if len(stages) == 0 || stages[len(stages)-1] != p.Stage {
			stages = append(stages, p.Stage)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []Stage{StageContexts, StageEntities, StageHistory, StageEntities, StageHistory, StageSubscriptions, StageRecords, StageVerify}; !reflect.DeepEqual(stages, want) {
		t.Errorf("progress stages %v, want %v", stages, want)
	}
	if rep.Contexts != 1 || rep.Subscriptions != 3 || rep.Notifications != 5 || len(rep.Tenants) != 2 {
		t.Errorf("report %+v", rep)
	}
	if want := []RecordsReport{{"alarm", 2, 2}, {"device", 13, 13}}; !reflect.DeepEqual(rep.Records, want) {
		t.Errorf("records report %+v, want %+v", rep.Records, want)
	}
	checkRecords(t, to)
	for _, tr := range rep.Tenants {
		// 29 entities; 30 with history, each 6 power instances and 1 name
		if tr.Entities != 29 || tr.EntitiesTo != 29 || tr.HistoryEntities != 30 || tr.History != 30*8 || tr.HistoryTo != tr.History || !tr.TypesMatch || !tr.AttrsMatch {
			t.Errorf("tenant report %+v", tr)
		}
	}
	for _, tenant := range []string{"", "energy"} {
		all := &store.Query{Limit: 1000, Count: true}
		a, err := from.Query(ctx, tenant, all)
		if err != nil {
			t.Fatal(err)
		}
		b, err := to.Query(ctx, tenant, all)
		if err != nil {
			t.Fatal(err)
		}
		if len(a.Entities) != len(b.Entities) || a.Count != b.Count {
			t.Fatalf("tenant %q: %d entities, copy %d", tenant, a.Count, b.Count)
		}
		for i := range a.Entities {
			if !reflect.DeepEqual(a.Entities[i], b.Entities[i]) {
				t.Errorf("tenant %q: entity %s differs in the copy:\n%+v\n%+v", tenant, a.Entities[i].ID, a.Entities[i], b.Entities[i])
			}
		}
		near, err := to.Query(ctx, tenant, &store.Query{Limit: 100, Geo: nearQuery(t)})
		if err != nil || len(near.Entities) == 0 {
			t.Errorf("tenant %q: a geo-query on the copy found %d entities (%v)", tenant, len(near.Entities), err)
		}
		ids := []string{"urn:ngsi-ld:Meter:3", "urn:ngsi-ld:Meter:7"}
		ha, err := from.EntityHistories(ctx, tenant, ids, nil, &temporal.Query{})
		if err != nil {
			t.Fatal(err)
		}
		hb, err := to.EntityHistories(ctx, tenant, ids, nil, &temporal.Query{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range ids {
			if ha[i] == nil || !reflect.DeepEqual(ha[i].Attrs, hb[i].Attrs) {
				t.Errorf("tenant %q: history of %s differs in the copy:\n%+v\n%+v", tenant, ids[i], ha[i], hb[i])
			}
		}
	}
	if c, err := to.GetContext(ctx, "http://localhost/ctx/energy.jsonld"); err != nil || c.Kind != "Hosted" {
		t.Errorf("context in the copy: %+v, %v", c, err)
	}
	subs, err := to.ListSubscriptions(ctx)
	if err != nil || len(subs) != 3 || string(subs[0].Status) != `{"timesSent":4}` {
		t.Errorf("subscriptions in the copy: %+v, %v", subs, err)
	}
	q, err := to.Queued(ctx, "energy", "urn:ngsi-ld:Subscription:1", 0, 100)
	if err != nil || len(q) != 5 || string(q[4].Body) != `{"k":4}` {
		t.Errorf("queued notifications in the copy: %d, %v", len(q), err)
	}
	if cur, err := to.NotifierCursor(ctx); err != nil || cur != to.LastChange() {
		t.Errorf("the copy's notifier cursor is %d (%v), want %d: the copy's own writes are not news", cur, err, to.LastChange())
	}
}

func nearQuery(t *testing.T) *geo.Query {
	t.Helper()
	q, err := geo.ParseQuery("near;maxDistance==2000", "Point", "[4.36,50.85]", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// TestCopyRefusesNonEmptyTarget: nothing already in the target is mixed
// with or overwritten by the copy.
func TestCopyRefusesNonEmptyTarget(t *testing.T) {
	ctx := context.Background()
	from, to := openSQLite(t), openSQLite(t)
	fill(t, from)
	e := &ngsild.Entity{ID: "urn:ngsi-ld:Other:1", Types: []string{ns + "Other"}}
	if _, err := to.Write(ctx, "", []store.Op{{ID: e.ID, Apply: func(*ngsild.Entity) (*ngsild.Entity, error) { return e, nil }}}); err != nil {
		t.Fatal(err)
	}
	if _, err := Copy(ctx, from, to, Options{}); !errors.Is(err, ErrTargetNotEmpty) {
		t.Fatalf("Copy into a store with an entity: %v, want ErrTargetNotEmpty", err)
	}
	if got, _ := to.Get(ctx, "", e.ID); got == nil {
		t.Error("the target's own entity is gone")
	}
	if n, _ := countEntities(ctx, to, ""); n != 1 {
		t.Errorf("the target holds %d entities after the refused copy, want 1", n)
	}

	// A record alone, of a kind the source has or not, is data too.
	for _, kind := range []string{"device", "account"} {
		to := openSQLite(t)
		if err := to.PutRecord(ctx, kind, "elsewhere", "urn:mine", []byte("mine")); err != nil {
			t.Fatal(err)
		}
		if _, err := Copy(ctx, from, to, Options{}); !errors.Is(err, ErrTargetNotEmpty) {
			t.Fatalf("Copy into a store with a %s record: %v, want ErrTargetNotEmpty", kind, err)
		}
		if doc, err := to.GetRecord(ctx, kind, "elsewhere", "urn:mine"); err != nil || string(doc) != "mine" {
			t.Errorf("the target's own record: %q, %v", doc, err)
		}
		if rs, _ := to.ListRecords(ctx, "device", "", true); kind != "device" && len(rs) != 0 {
			t.Errorf("the refused copy wrote %d device records", len(rs))
		}
	}
}

// TestCopyToPostgres copies an embedded store into PostgreSQL (zenne
// migrate's usual way up) and finds the same counts, subscriptions and
// records there.
func TestCopyToPostgres(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Database(t)
	from := openSQLite(t)
	fill(t, from)
	to, err := postgres.Open(ctx, url, postgres.Options{MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { to.Close() })
	rep, err := Copy(ctx, from, to, Options{Batch: 7, HistoryBatch: 11})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Contexts != 1 || rep.Subscriptions != 3 || rep.Notifications != 5 || len(rep.Tenants) != 2 {
		t.Errorf("report %+v", rep)
	}
	for _, tr := range rep.Tenants {
		if tr.Entities != 29 || tr.EntitiesTo != 29 || tr.History != 30*8 || tr.HistoryTo != tr.History || !tr.TypesMatch || !tr.AttrsMatch {
			t.Errorf("tenant report %+v", tr)
		}
	}
	if want := []RecordsReport{{"alarm", 2, 2}, {"device", 13, 13}}; !reflect.DeepEqual(rep.Records, want) {
		t.Errorf("records report %+v, want %+v", rep.Records, want)
	}
	checkRecords(t, to)
	// Copying again finds the target not empty.
	if _, err := Copy(ctx, from, to, Options{}); !errors.Is(err, ErrTargetNotEmpty) {
		t.Errorf("second Copy: %v, want ErrTargetNotEmpty", err)
	}
}

package storetest

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/zenne-city/zenne/internal/store"
)

// testRecords runs the store.Records cases.
func testRecords(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		f    func(t *testing.T, open func(t *testing.T) store.Store)
	}{
		{"RoundTrip", testRecordsRoundTrip},
		{"Replace", testRecordsReplace},
		{"Namespaces", testRecordsNamespaces},
		{"NotFound", testRecordsNotFound},
		{"List", testRecordsList},
		{"Reopen", testRecordsReopen},
		{"NotEntities", testRecordsNotEntities},
		{"Concurrent", testRecordsConcurrent},
		{"PutMany", testRecordsPutMany},
		{"Closed", testRecordsClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.f(t, open) })
	}
}

func putRecord(t *testing.T, s store.Store, kind, tenant, id string, doc []byte) {
	t.Helper()
	if err := s.PutRecord(context.Background(), kind, tenant, id, doc); err != nil {
		t.Fatalf("PutRecord(%s, %q, %s): %v", kind, tenant, id, err)
	}
}

// wantRecord checks that (kind, tenant, id) holds exactly doc.
func wantRecord(t *testing.T, s store.Store, kind, tenant, id string, doc []byte) {
	t.Helper()
	got, err := s.GetRecord(context.Background(), kind, tenant, id)
	if err != nil {
		t.Errorf("GetRecord(%s, %q, %s): %v", kind, tenant, id, err)
		return
	}
	if !bytes.Equal(got, doc) {
		t.Errorf("GetRecord(%s, %q, %s) = %s, want %s", kind, tenant, id, short(got), short(doc))
	}
}

// wantNoRecord checks that (kind, tenant, id) does not exist.
func wantNoRecord(t *testing.T, s store.Store, kind, tenant, id string) {
	t.Helper()
	if got, err := s.GetRecord(context.Background(), kind, tenant, id); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetRecord(%s, %q, %s) = %s, %v; want ErrNotFound", kind, tenant, id, short(got), err)
	}
}

// short renders a document for a message: whole if short, else its length
// and head.
func short(b []byte) string {
	if len(b) <= 64 {
		return fmt.Sprintf("%q", b)
	}
	return fmt.Sprintf("%d bytes %q...", len(b), b[:32])
}

// recordsString renders records one per line, in the order given.
func recordsString(rs []store.Record) string {
	var sb strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&sb, "%s %q %q %s\n", r.Kind, r.Tenant, r.ID, short(r.Doc))
	}
	return sb.String()
}

func wantList(t *testing.T, s store.Store, kind, tenant string, allTenants bool, want ...store.Record) {
	t.Helper()
	got, err := s.ListRecords(context.Background(), kind, tenant, allTenants)
	if err != nil {
		t.Errorf("ListRecords(%s, %q, %v): %v", kind, tenant, allTenants, err)
		return
	}
	if g, w := recordsString(got), recordsString(want); g != w {
		t.Errorf("ListRecords(%s, %q, %v):\n got\n%s want\n%s", kind, tenant, allTenants, g, w)
	}
}

// testRecordsRoundTrip: a document reads back byte for byte, the empty
// one and a large binary one included, and the store keeps its own copy.
func testRecordsRoundTrip(t *testing.T, open func(t *testing.T) store.Store) {
	s := openStore(t, open)
	big := make([]byte, 1<<20)
	r := rand.NewChaCha8([32]byte{1})
	r.Read(big)
	binary := []byte{0, 1, 0xff, 0xfe, '\n', 0, 'x', 0x80} // NULs and invalid UTF-8
	docs := []struct {
		id  string
		doc []byte
	}{
		{"urn:json", []byte(`{"deviceId":"d1","attrs":{"t":"temperature"}}`)},
		{"urn:empty", []byte{}},
		{"urn:nil", nil},
		{"urn:binary", binary},
		{"urn:big", big},
	}
	for _, d := range docs {
		putRecord(t, s, "device", "", d.id, d.doc)
	}
	for _, d := range docs {
		wantRecord(t, s, "device", "", d.id, d.doc)
	}
	// The store keeps its own copy: changing the slice put, or one got,
	// changes nothing stored.
	doc := []byte(`{"v":1}`)
	putRecord(t, s, "device", "", "urn:copy", doc)
	doc[6] = '2'
	got, err := s.GetRecord(context.Background(), "device", "", "urn:copy")
	if err != nil {
		t.Fatal(err)
	}
	got[6] = '3'
	wantRecord(t, s, "device", "", "urn:copy", []byte(`{"v":1}`))

	list, err := s.ListRecords(context.Background(), "device", "", false)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != len(docs)+1 {
		t.Fatalf("ListRecords: %d records, want %d", len(list), len(docs)+1)
	}
	for _, rec := range list {
		if rec.ID == "urn:big" && !bytes.Equal(rec.Doc, big) {
			t.Errorf("ListRecords: the 1 MiB document differs: %s", short(rec.Doc))
		}
		if rec.ID == "urn:binary" && !bytes.Equal(rec.Doc, binary) {
			t.Errorf("ListRecords: the binary document differs: %s", short(rec.Doc))
		}
		if (rec.ID == "urn:empty" || rec.ID == "urn:nil") && len(rec.Doc) != 0 {
			t.Errorf("ListRecords: the empty document %s reads %s", rec.ID, short(rec.Doc))
		}
	}
}

// testRecordsPutMany: PutRecords stores several records at once, across
// kinds and tenants, replacing existing ones; a key given twice keeps the
// last document.
func testRecordsPutMany(t *testing.T, open func(t *testing.T) store.Store) {
	s := openStore(t, open)
	ctx := context.Background()
	putRecord(t, s, "alarm.state", "", "r1", []byte("old"))
	recs := []store.Record{
		{Kind: "alarm.state", Tenant: "", ID: "r1", Doc: []byte("new")},
		{Kind: "alarm.state", Tenant: "t2", ID: "r1", Doc: []byte("other tenant")},
		{Kind: "alarm.cursor", Tenant: "", ID: "bus", Doc: []byte("42")},
		{Kind: "alarm.state", Tenant: "", ID: "r2", Doc: []byte("first")},
		{Kind: "alarm.state", Tenant: "", ID: "r2", Doc: []byte("second")},
		{Kind: "alarm.state", Tenant: "", ID: "r3", Doc: nil},
	}
	if err := s.PutRecords(ctx, recs); err != nil {
		t.Fatal(err)
	}
	wantRecord(t, s, "alarm.state", "", "r1", []byte("new"))
	wantRecord(t, s, "alarm.state", "t2", "r1", []byte("other tenant"))
	wantRecord(t, s, "alarm.cursor", "", "bus", []byte("42"))
	wantRecord(t, s, "alarm.state", "", "r2", []byte("second"))
	wantRecord(t, s, "alarm.state", "", "r3", []byte{})
	if err := s.PutRecords(ctx, nil); err != nil {
		t.Errorf("no records: %v", err)
	}
	many := make([]store.Record, 5000)
	for i := range many {
		many[i] = store.Record{Kind: "alarm.state", Tenant: "", ID: fmt.Sprintf("m%05d", i), Doc: []byte(fmt.Sprint(i))}
	}
	if err := s.PutRecords(ctx, many); err != nil {
		t.Fatal(err)
	}
	wantRecord(t, s, "alarm.state", "", "m04999", []byte("4999"))
}

// testRecordsReplace: putting a record again replaces its document.
func testRecordsReplace(t *testing.T, open func(t *testing.T) store.Store) {
	s := openStore(t, open)
	putRecord(t, s, "alarm", "city", "rule-1", []byte(`{"threshold":10,"long":"`+strings.Repeat("x", 5000)+`"}`))
	putRecord(t, s, "alarm", "city", "rule-1", []byte(`{"threshold":20}`))
	wantRecord(t, s, "alarm", "city", "rule-1", []byte(`{"threshold":20}`))
	putRecord(t, s, "alarm", "city", "rule-1", nil)
	wantRecord(t, s, "alarm", "city", "rule-1", nil)
	putRecord(t, s, "alarm", "city", "rule-1", []byte(`{"threshold":30}`))
	wantList(t, s, "alarm", "city", false, store.Record{Kind: "alarm", Tenant: "city", ID: "rule-1", Doc: []byte(`{"threshold":30}`)})
}

// testRecordsNamespaces: one id under two kinds and two tenants is four
// records; deleting one leaves the others.
func testRecordsNamespaces(t *testing.T, open func(t *testing.T) store.Store) {
	s := openStore(t, open)
	ctx := context.Background()
	const id = "urn:ngsi-ld:Device:1"
	for _, kind := range []string{"device", "alarm"} {
		for _, tenant := range []string{"", "city"} {
			putRecord(t, s, kind, tenant, id, []byte(kind+"@"+tenant))
		}
	}
	for _, kind := range []string{"device", "alarm"} {
		for _, tenant := range []string{"", "city"} {
			wantRecord(t, s, kind, tenant, id, []byte(kind+"@"+tenant))
		}
		wantList(t, s, kind, "", true,
			store.Record{Kind: kind, Tenant: "", ID: id, Doc: []byte(kind + "@")},
			store.Record{Kind: kind, Tenant: "city", ID: id, Doc: []byte(kind + "@city")})
	}
	// Kinds and tenants that are prefixes of others are not confused.
	putRecord(t, s, "dev", "cit", id, []byte("dev@cit"))
	wantList(t, s, "device", "city", false, store.Record{Kind: "device", Tenant: "city", ID: id, Doc: []byte("device@city")})
	wantList(t, s, "dev", "", true, store.Record{Kind: "dev", Tenant: "cit", ID: id, Doc: []byte("dev@cit")})

	if err := s.DeleteRecord(ctx, "device", "city", id); err != nil {
		t.Fatalf("DeleteRecord: %v", err)
	}
	wantNoRecord(t, s, "device", "city", id)
	wantRecord(t, s, "device", "", id, []byte("device@"))
	wantRecord(t, s, "alarm", "city", id, []byte("alarm@city"))
	wantRecord(t, s, "alarm", "", id, []byte("alarm@"))
	wantRecord(t, s, "dev", "cit", id, []byte("dev@cit"))
}

// testRecordsNotFound: reading or deleting a record that does not exist
// (never did, deleted, or only under another kind or tenant) is
// store.ErrNotFound.
func testRecordsNotFound(t *testing.T, open func(t *testing.T) store.Store) {
	s := openStore(t, open)
	ctx := context.Background()
	wantNoRecord(t, s, "device", "", "urn:none")
	if err := s.DeleteRecord(ctx, "device", "", "urn:none"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeleteRecord of a missing record: %v, want ErrNotFound", err)
	}
	putRecord(t, s, "device", "city", "urn:a", []byte("a"))
	wantNoRecord(t, s, "device", "", "urn:a")
	wantNoRecord(t, s, "alarm", "city", "urn:a")
	for _, k := range [][2]string{{"device", ""}, {"alarm", "city"}, {"device", "other"}} {
		if err := s.DeleteRecord(ctx, k[0], k[1], "urn:a"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("DeleteRecord(%s, %q, urn:a): %v, want ErrNotFound", k[0], k[1], err)
		}
	}
	wantRecord(t, s, "device", "city", "urn:a", []byte("a"))
	if err := s.DeleteRecord(ctx, "device", "city", "urn:a"); err != nil {
		t.Fatalf("DeleteRecord: %v", err)
	}
	wantNoRecord(t, s, "device", "city", "urn:a")
	if err := s.DeleteRecord(ctx, "device", "city", "urn:a"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second DeleteRecord: %v, want ErrNotFound", err)
	}
	wantList(t, s, "device", "city", false)
	wantList(t, s, "device", "", true)
}

// testRecordsList: ListRecords of one tenant and of all of them, sorted
// by tenant then id in byte order, with the default tenant, unicode and
// slashes in tenants and ids; other kinds are not listed.
func testRecordsList(t *testing.T, open func(t *testing.T) store.Store) {
	s := openStore(t, open)
	tenants := []string{"", "city", "Água", "água", "b/c", "日本"}
	ids := []string{"urn:ngsi-ld:Device:é", "a/b/c", "a/b", "Z", "a b", "日本/東京", "urn:x:1", "urn:x:10", "urn:x:2", "ﬁ"}
	var all []store.Record
	for i, tenant := range tenants {
		for j, id := range ids {
			if (i+j)%3 == 0 {
				continue // not every tenant has every id
			}
			r := store.Record{Kind: "device", Tenant: tenant, ID: id, Doc: []byte(fmt.Sprintf(`{"t":%d,"i":%d}`, i, j))}
			putRecord(t, s, r.Kind, r.Tenant, r.ID, r.Doc)
			all = append(all, r)
			putRecord(t, s, "alarm", tenant, id, []byte("not a device")) // another kind, same keys
		}
	}
	slices.SortFunc(all, func(a, b store.Record) int {
		return cmp.Or(strings.Compare(a.Tenant, b.Tenant), strings.Compare(a.ID, b.ID))
	})
	for _, tenant := range tenants {
		var want []store.Record
		for _, r := range all {
			if r.Tenant == tenant {
				want = append(want, r)
			}
		}
		wantList(t, s, "device", tenant, false, want...)
		wantRecord(t, s, "device", tenant, want[0].ID, want[0].Doc)
	}
	wantList(t, s, "device", "", true, all...)
	wantList(t, s, "device", "city", true, all...) // the tenant does not matter then
	wantList(t, s, "device", "nobody", false)
	wantList(t, s, "nothing", "", true)
	wantList(t, s, "devic", "", true) // kinds match exactly
}

// testRecordsReopen: records, replacements and deletions survive Close.
func testRecordsReopen(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	s := open(t)
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	putRecord(t, s, "device", "", "urn:a", []byte("a1"))
	putRecord(t, s, "device", "", "urn:a", []byte("a2"))
	putRecord(t, s, "device", "city", "urn:a/ü", big)
	putRecord(t, s, "device", "city", "urn:gone", []byte("gone"))
	putRecord(t, s, "alarm", "city", "urn:a", nil)
	if err := s.DeleteRecord(ctx, "device", "city", "urn:gone"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s = openStore(t, open)
	wantRecord(t, s, "device", "", "urn:a", []byte("a2"))
	wantRecord(t, s, "device", "city", "urn:a/ü", big)
	wantRecord(t, s, "alarm", "city", "urn:a", nil)
	wantNoRecord(t, s, "device", "city", "urn:gone")
	wantList(t, s, "device", "", true,
		store.Record{Kind: "device", Tenant: "", ID: "urn:a", Doc: []byte("a2")},
		store.Record{Kind: "device", Tenant: "city", ID: "urn:a/ü", Doc: big})
	// And they can be written after reopening.
	putRecord(t, s, "device", "", "urn:b", []byte("b"))
	wantRecord(t, s, "device", "", "urn:b", []byte("b"))
}

// testRecordsNotEntities: records are not entities: no Get or query finds
// them, they add no change to the change log, and a tenant holding only
// records does not exist.
func testRecordsNotEntities(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	s := openStore(t, open)
	var mu sync.Mutex
	var watched []store.Change
	s.WatchChanges(func(cs []store.Change) {
		mu.Lock()
		watched = append(watched, cs...)
		mu.Unlock()
	})
	base := s.LastChange()
	const id = "urn:ngsi-ld:Device:1"
	putRecord(t, s, "device", "", id, []byte(`{"id":"urn:ngsi-ld:Device:1","type":"Device"}`))
	putRecord(t, s, "device", "records-only", id, []byte(`{}`))
	putRecord(t, s, "device", "", "urn:gone", []byte(`{}`))
	if err := s.DeleteRecord(ctx, "device", "", "urn:gone"); err != nil {
		t.Fatal(err)
	}

	if last := s.LastChange(); last != base {
		t.Errorf("LastChange after record writes = %d, want %d", last, base)
	}
	if cs, err := s.Changes(ctx, base, 10); err != nil || len(cs) != 0 {
		t.Errorf("Changes after record writes: %v, %v; want none", cs, err)
	}
	mu.Lock()
	if len(watched) != 0 {
		t.Errorf("the watcher was told of %d changes for record writes", len(watched))
	}
	mu.Unlock()
	if _, err := s.Get(ctx, "", id); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get of a record's id: %v, want ErrNotFound", err)
	}
	r, err := s.Query(ctx, "", &store.Query{Limit: 100, Count: true})
	if err != nil || r.Count != 0 || len(r.Entities) != 0 {
		t.Errorf("Query with only records stored: %v, %v; want no entity", r, err)
	}
	if ts, err := s.Types(ctx, ""); err != nil || len(ts) != 0 {
		t.Errorf("Types with only records stored: %v, %v; want none", ts, err)
	}
	tenants, err := s.Tenants(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(tenants, "records-only") {
		t.Errorf("Tenants = %q: a tenant holding only records exists", tenants)
	}
	if _, err := s.Get(ctx, "records-only", id); !errors.Is(err, store.ErrNoTenant) {
		t.Errorf("Get in a tenant holding only records: %v, want ErrNoTenant", err)
	}

	// An entity of the same id is independent of the record.
	mustWrite(t, s, "records-only", Create(Ent(id, []string{"Device"}, "v", Prop(1.0))))
	if last := s.LastChange(); last != base+1 {
		t.Errorf("LastChange after one entity write = %d, want %d", last, base+1)
	}
	wantRecord(t, s, "device", "records-only", id, []byte(`{}`))
	if err := s.DeleteRecord(ctx, "device", "records-only", id); err != nil {
		t.Fatal(err)
	}
	sameEntity(t, "entity after deleting the record of its id", get(t, s, "records-only", id), Ent(id, []string{"Device"}, "v", Prop(1.0)))
	if last := s.LastChange(); last != base+1 {
		t.Errorf("LastChange after deleting a record = %d, want %d", last, base+1)
	}
}

// testRecordsConcurrent: record writes from several goroutines, while
// entity writes keep the writers busy, all land.
func testRecordsConcurrent(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	s := openStore(t, open)
	const workers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, 2*workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				id := fmt.Sprintf("urn:%d:%d", w, i)
				if err := s.PutRecord(ctx, "device", "", id, []byte(id)); err != nil {
					errs <- fmt.Errorf("PutRecord %s: %w", id, err)
				}
			}
		})
		wg.Go(func() {
			for i := range each {
				e := Ent(fmt.Sprintf("urn:e:%d:%d", w, i), []string{"T"}, "v", Prop(float64(i)))
				if _, err := s.Write(ctx, "", []store.Op{Upsert(e)}); err != nil {
					errs <- fmt.Errorf("write %s: %w", e.ID, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	list, err := s.ListRecords(ctx, "device", "", false)
	if err != nil || len(list) != workers*each {
		t.Fatalf("ListRecords: %d records (%v), want %d", len(list), err, workers*each)
	}
	for _, r := range list {
		if string(r.Doc) != r.ID {
			t.Errorf("record %s holds %s", r.ID, short(r.Doc))
		}
	}
}

// testRecordsClosed: a closed store refuses record calls with
// store.ErrClosed.
func testRecordsClosed(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	s := open(t)
	putRecord(t, s, "device", "", "urn:a", []byte("a"))
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.PutRecord(ctx, "device", "", "urn:b", []byte("b")); !errors.Is(err, store.ErrClosed) {
		t.Errorf("PutRecord after Close: %v, want ErrClosed", err)
	}
	if _, err := s.GetRecord(ctx, "device", "", "urn:a"); !errors.Is(err, store.ErrClosed) {
		t.Errorf("GetRecord after Close: %v, want ErrClosed", err)
	}
	if err := s.DeleteRecord(ctx, "device", "", "urn:a"); !errors.Is(err, store.ErrClosed) {
		t.Errorf("DeleteRecord after Close: %v, want ErrClosed", err)
	}
	if _, err := s.ListRecords(ctx, "device", "", true); !errors.Is(err, store.ErrClosed) {
		t.Errorf("ListRecords after Close: %v, want ErrClosed", err)
	}
	s = openStore(t, open)
	wantRecord(t, s, "device", "", "urn:a", []byte("a"))
	wantNoRecord(t, s, "device", "", "urn:b")
}

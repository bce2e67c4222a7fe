package auth

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/store"
)

func newAudit(t testing.TB, st store.Records, opts AuditOptions) *AuditLog {
	t.Helper()
	a := NewAuditLog(st, opts)
	t.Cleanup(func() { a.Close() })
	return a
}

// auditRecords returns the stored entries of every day, each as its JSON.
func auditRecords(t testing.TB, st store.Records) []store.Record {
	t.Helper()
	recs, err := st.ListRecords(context.Background(), kindAudit, "", true)
	if err != nil {
		t.Fatal(err)
	}
	var out []store.Record
	for _, r := range recs {
		es, err := decodeEntries(r.Doc)
		if err != nil {
			t.Fatalf("record %s: %v", r.ID, err)
		}
		for _, e := range es {
			doc, _ := json.Marshal(e)
			out = append(out, store.Record{Kind: r.Kind, Tenant: r.Tenant, ID: r.ID, Doc: doc})
		}
	}
	return out
}

func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10 s for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestAuditBatching(t *testing.T) {
	st := openSQLite(t)
	a := newAudit(t, st, AuditOptions{MaxBatch: 10, FlushEvery: time.Hour})
	t0 := time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC)
	for i := range 25 {
		a.Record(Entry{Time: t0.Add(time.Duration(i) * time.Second), Who: "alice", Action: "entity.create", Status: 201})
	}
	// Two full batches go at once; the rest waits for the clock.
	waitFor(t, "two batches", func() bool { return len(auditRecords(t, st)) == 20 })
	time.Sleep(50 * time.Millisecond)
	if n := len(auditRecords(t, st)); n != 20 {
		t.Errorf("%d entries stored before the flush, want 20", n)
	}
	if err := a.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(auditRecords(t, st)); n != 25 {
		t.Errorf("%d entries stored after the flush, want 25", n)
	}

	// With the clock: written within FlushEvery, without asking.
	b := newAudit(t, st, AuditOptions{FlushEvery: 20 * time.Millisecond})
	b.Record(Entry{Time: t0.Add(time.Hour), Who: "bob", Action: "login"})
	waitFor(t, "the timed flush", func() bool { return len(auditRecords(t, st)) == 26 })

	// Close writes what waits.
	c := NewAuditLog(st, AuditOptions{FlushEvery: time.Hour})
	c.Record(Entry{Time: t0.Add(2 * time.Hour), Who: "carol", Action: "login"})
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(auditRecords(t, st)); n != 27 {
		t.Errorf("%d entries after Close, want 27", n)
	}
}

func TestAuditQueries(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Records) {
		ctx := context.Background()
		a := newAudit(t, st, AuditOptions{FlushEvery: time.Hour})
		day1 := time.Date(2026, 3, 13, 23, 59, 0, 0, time.UTC)
		// Out of order, across midnight (UTC; times given in another zone
		// too), of several people, keys and tenants.
		brussels := time.FixedZone("CET", 3600)
		entries := []Entry{
			{Time: day1.Add(2 * time.Minute), Who: "alice", Tenant: tenantA, Action: "entity.create", Status: 201},
			{Time: day1, Who: "alice", Key: "abcdefghijk2", Tenant: tenantA, Action: "entity.update", Status: 204},
			{Time: day1.Add(time.Minute).In(brussels), Who: "anonymous", Tenant: tenantB, Action: "entity.create", Status: 401},
			{Time: day1.Add(-time.Hour), Who: "bob", Tenant: "", Action: "subscription.create", Status: 201},
			{Time: day1.Add(3 * time.Minute), Who: "bob", Tenant: AllTenants, Action: "login", Status: 200},
			{Time: day1.Add(24 * time.Hour), Who: "carol", Tenant: tenantB, Action: "entity.delete", Status: 500},
		}
		for _, e := range entries {
			a.Record(e)
		}
		// Entries recorded in the same nanosecond keep apart.
		for i := range 3 {
			a.Record(Entry{Time: day1.Add(-2 * time.Hour), Who: "dave", Action: fmt.Sprint("same.", i)})
		}
		times := func(es []Entry) string {
			var b strings.Builder
			for _, e := range es {
				fmt.Fprintf(&b, "%s %s %s|", e.Time.Format("02T15:04"), e.Who, e.Action)
			}
			return b.String()
		}
		cases := []struct {
			name string
			f    Filter
			want string
		}{
			{"all, newest first", Filter{}, "14T23:59 carol entity.delete|14T00:02 bob login|14T00:01 alice entity.create|14T00:00 anonymous entity.create|13T23:59 alice entity.update|13T22:59 bob subscription.create|13T21:59 dave same.2|13T21:59 dave same.1|13T21:59 dave same.0|"},
			{"limit", Filter{Limit: 2}, "14T23:59 carol entity.delete|14T00:02 bob login|"},
			{"a user and their keys", Filter{Who: "alice"}, "14T00:01 alice entity.create|13T23:59 alice entity.update|"},
			{"a key", Filter{Who: "abcdefghijk2"}, "13T23:59 alice entity.update|"},
			{"anonymous", Filter{Who: "anonymous"}, "14T00:00 anonymous entity.create|"},
			{"tenant B", Filter{Tenants: []string{tenantB}}, "14T23:59 carol entity.delete|14T00:00 anonymous entity.create|"},
			{"the default tenant", Filter{Tenants: []string{""}, Who: "bob"}, "13T22:59 bob subscription.create|"},
			{"platform-wide", Filter{Tenants: []string{AllTenants}}, "14T00:02 bob login|"},
			{"from", Filter{From: day1.Add(time.Minute)}, "14T23:59 carol entity.delete|14T00:02 bob login|14T00:01 alice entity.create|14T00:00 anonymous entity.create|"},
			{"to, exclusive", Filter{To: day1.Add(time.Minute)}, "13T23:59 alice entity.update|13T22:59 bob subscription.create|13T21:59 dave same.2|13T21:59 dave same.1|13T21:59 dave same.0|"},
			{"from and to across midnight", Filter{From: day1, To: day1.Add(3 * time.Minute)}, "14T00:01 alice entity.create|14T00:00 anonymous entity.create|13T23:59 alice entity.update|"},
			{"nothing", Filter{Who: "nobody"}, ""},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				got, err := a.Entries(ctx, tc.f)
				if err != nil {
					t.Fatal(err)
				}
				if s := times(got); s != tc.want {
					t.Errorf("got  %s\nwant %s", s, tc.want)
				}
				for _, e := range got {
					if e.Time.Location() != time.UTC {
						t.Errorf("time %v not in UTC", e.Time)
					}
				}
			})
		}
		// Outcomes follow the status.
		got, _ := a.Entries(ctx, Filter{})
		for _, e := range got {
			if e.Outcome != OutcomeOf(e.Status) {
				t.Errorf("%s: outcome %s for %d", e.Action, e.Outcome, e.Status)
			}
		}

		// Export: JSON lines, oldest first.
		var buf bytes.Buffer
		n, err := a.Export(ctx, &buf, Filter{Who: "bob"})
		if err != nil || n != 2 {
			t.Fatalf("Export = %d, %v", n, err)
		}
		sc := bufio.NewScanner(&buf)
		var exported []Entry
		for sc.Scan() {
			var e Entry
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Fatalf("line %q: %v", sc.Text(), err)
			}
			exported = append(exported, e)
		}
		if times(exported) != "13T22:59 bob subscription.create|14T00:02 bob login|" {
			t.Errorf("exported %s", times(exported))
		}

		// Prune: whole days, then the older part of a day.
		if n, err := a.Prune(ctx, day1.Add(-30*time.Minute)); err != nil || n != 4 {
			t.Errorf("Prune = %d, %v; want 4", n, err)
		}
		if n, err := a.Prune(ctx, day1.Add(2*time.Minute)); err != nil || n != 2 {
			t.Errorf("Prune = %d, %v; want 2", n, err)
		}
		got, _ = a.Entries(ctx, Filter{})
		if times(got) != "14T23:59 carol entity.delete|14T00:02 bob login|14T00:01 alice entity.create|" {
			t.Errorf("after pruning: %s", times(got))
		}
		days, _ := a.days(ctx)
		if strings.Join(days, " ") != "2026-03-14" {
			t.Errorf("days %v", days)
		}
	})
}

func TestAuditNoSecrets(t *testing.T) {
	ctx := context.Background()
	st := openSQLite(t)
	s := newService(t, st, newClock(), Options{MaxFailures: 1000})
	mustUser(t, s, "alice", goodPW, Grant{Tenant: tenantA, Role: RoleEditor})
	key, _ := mustKey(t, s, "alice", Grant{Tenant: tenantA, Role: RoleViewer})
	a := newAudit(t, st, AuditOptions{})
	secrets := []string{goodPW, key[16:], "s3cr3t-token-value", "hunter2hunter2", "zs_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"[3:]}
	reqs := []struct {
		target, auth string
	}{
		{"/ngsi-ld/v1/entities?type=Building", basic("alice", goodPW)},
		{"/ngsi-ld/v1/entities?type=Building", "Bearer " + key},
		{"/iot/json?k=s3cr3t-token-value&i=dev1", ""},
		{"/ngsi-ld/v1/entities?apikey=s3cr3t-token-value&q=a==1", ""},
		{"/x?access_token=s3cr3t-token-value", ""},
		{"/x?Password=hunter2hunter2&user=alice", ""},
		{"/x?api%5Fkey=s3cr3t-token-value", ""},
		{"/x?note=" + key, ""},
		{"/keys/" + key + "/revoke", ""},
		{"/x/%7A" + key[1:], ""},
		{"/setup?t=zs_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", ""},
	}
	for _, rq := range reqs {
		r := httptest.NewRequest("POST", rq.target, nil)
		if rq.auth != "" {
			r.Header.Set("Authorization", rq.auth)
		}
		p, err := s.Authenticate(r)
		status := 201
		if err != nil {
			status = 401
		}
		a.Record(NewEntry(r, p, tenantA, status, "entity.create"))
	}
	// A careless caller gives the raw path: Record cleans it.
	a.Record(Entry{Who: "alice", Path: "/iot?k=s3cr3t-token-value", Action: "x"})
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	recs := auditRecords(t, st)
	if len(recs) != len(reqs)+1 {
		t.Fatalf("%d entries", len(recs))
	}
	for _, r := range recs {
		for _, sec := range secrets {
			if strings.Contains(string(r.Doc), sec) {
				t.Errorf("entry %s holds a secret (%s…)", r.Doc, sec[:4])
			}
		}
	}
	es, _ := a.Entries(ctx, Filter{})
	whos := map[string]bool{}
	for _, e := range es {
		whos[e.Who+"/"+e.Key] = true
	}
	id, _ := KeyID(key)
	if !whos["alice/"] || !whos["alice/"+id] || !whos["anonymous/"] {
		t.Errorf("who: %v", whos)
	}
}

func TestSanitizePath(t *testing.T) {
	const key = "zk_abcdefghijk2_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_AbCdEfG"
	cases := []struct{ in, want string }{
		{"/ngsi-ld/v1/entities?type=Building&limit=10", "/ngsi-ld/v1/entities?type=Building&limit=10"},
		{"/ngsi-ld/v1/entities?options=keyValues", "/ngsi-ld/v1/entities?options=keyValues"},
		{"/iot/json?k=abc&i=dev1", "/iot/json?k=REDACTED&i=dev1"},
		{"/iot/json?i=dev1&K=abc", "/iot/json?i=dev1&K=REDACTED"},
		{"/x?apikey=1&api_key=2&x-api-key=3&token=4&id_token=5&secret=6&password=7&sig=8&code=9", "/x?apikey=REDACTED&api_key=REDACTED&x-api-key=REDACTED&token=REDACTED&id_token=REDACTED&secret=REDACTED&password=REDACTED&sig=REDACTED&code=REDACTED"},
		{"/x?k", "/x?k"},
		{"/x?k=", "/x?k=REDACTED"},
		{"/x?q=name==%22zk%22", "/x?q=name==%22zk%22"},
		{"/x?note=" + key, "/x?note=zk_abcdefghijk2_REDACTED"},
		{"/keys/" + key, "/keys/zk_abcdefghijk2_REDACTED"},
		{"/setup/zs_abc-def", "/setup/zs_REDACTED"},
		{"/x/%7Ak_abcdefghijk2_secretsecret", "/x/zk_abcdefghijk2_REDACTED"},
		{"/" + strings.Repeat("é", 1000), "/" + strings.Repeat("é", 511) + "…"},
	}
	for _, tc := range cases {
		if got := SanitizePath(tc.in); got != tc.want {
			t.Errorf("SanitizePath(%q)\n = %q\nwant %q", tc.in, got, tc.want)
		}
		if got := SanitizePath(SanitizePath(tc.in)); got != SanitizePath(tc.in) {
			t.Errorf("SanitizePath is not idempotent on %q: %q", tc.in, got)
		}
	}
}

// gatedRecords holds PutRecords until the gate opens, and fails the first
// fail calls.
type gatedRecords struct {
	store.Records
	gate  chan struct{}
	fail  atomic.Int32
	calls atomic.Int32
}

func (g *gatedRecords) PutRecords(ctx context.Context, recs []store.Record) error {
	g.calls.Add(1)
	<-g.gate
	if g.fail.Add(-1) >= 0 {
		return errors.New("store unavailable")
	}
	return g.Records.PutRecords(ctx, recs)
}

// A full buffer makes Record wait, not drop; only a wait longer than
// BlockFor drops, and counts.
func TestAuditBackPressure(t *testing.T) {
	st := openSQLite(t)
	g := &gatedRecords{Records: st, gate: make(chan struct{})}
	a := newAudit(t, g, AuditOptions{Buffer: 4, MaxBatch: 2, MaxPending: 2, FlushEvery: 5 * time.Millisecond, BlockFor: 5 * time.Second})
	t0 := time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC)
	rec := func(i int) {
		a.Record(Entry{Time: t0.Add(time.Duration(i) * time.Millisecond), Who: "w", Action: fmt.Sprint(i)})
	}
	rec(0)
	rec(1)
	waitFor(t, "the writer to block", func() bool { return g.calls.Load() == 1 })
	for i := 2; i < 6; i++ {
		rec(i) // into the buffer
	}
	var wg sync.WaitGroup
	wg.Add(1)
	started := time.Now()
	go func() { defer wg.Done(); rec(6) }()
	time.Sleep(50 * time.Millisecond)
	close(g.gate)
	wg.Wait()
	if d := time.Since(started); d < 40*time.Millisecond {
		t.Errorf("Record returned after %v: it did not wait", d)
	}
	if err := a.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(auditRecords(t, st)); n != 7 || a.Dropped() != 0 {
		t.Errorf("%d stored, %d dropped; want 7, 0", n, a.Dropped())
	}

	// Waiting longer than BlockFor drops the entry, and counts it.
	g2 := &gatedRecords{Records: st, gate: make(chan struct{})}
	log, buf := logBuffer()
	b := newAudit(t, g2, AuditOptions{Buffer: 1, MaxBatch: 1, MaxPending: 1, FlushEvery: 5 * time.Millisecond, BlockFor: 20 * time.Millisecond, Log: log})
	b.Record(Entry{Time: t0, Action: "a"})
	waitFor(t, "the writer to block", func() bool { return g2.calls.Load() == 1 })
	b.Record(Entry{Time: t0, Action: "b"})
	b.Record(Entry{Time: t0, Action: "c"})
	if b.Dropped() != 1 || !strings.Contains(buf.String(), "dropped") {
		t.Errorf("dropped %d; log %s", b.Dropped(), buf)
	}
	close(g2.gate)
}

// Entries wait in memory while the store refuses writes, and are written
// when it is back.
func TestAuditStoreDown(t *testing.T) {
	st := openSQLite(t)
	g := &gatedRecords{Records: st, gate: make(chan struct{})}
	close(g.gate)
	g.fail.Store(3)
	a := newAudit(t, g, AuditOptions{FlushEvery: 5 * time.Millisecond})
	for i := range 10 {
		a.Record(Entry{Time: time.Date(2026, 3, 14, 10, 0, i, 0, time.UTC), Who: "w", Action: "x"})
	}
	waitFor(t, "the store to take the entries", func() bool { return len(auditRecords(t, st)) == 10 })
	if g.calls.Load() < 4 {
		t.Errorf("%d writes", g.calls.Load())
	}
}

func BenchmarkAuditRecord(b *testing.B) {
	a := newAudit(b, openSQLite(b), AuditOptions{})
	r := httptest.NewRequest("PATCH", "/ngsi-ld/v1/entities/urn:ngsi-ld:X:1/attrs?k=secret", nil)
	b.ReportAllocs()
	for b.Loop() {
		a.Record(NewEntry(r, nil, tenantA, 204, "entity.update"))
	}
	a.Flush(context.Background())
}

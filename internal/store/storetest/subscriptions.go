package storetest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store"
)

// testSubscriptions runs the store.Subscriptions cases; a store that does
// not implement it skips them.
func testSubscriptions(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		f    func(t *testing.T, open func(t *testing.T) store.Store)
	}{
		{"SaveListDelete", testSubsSaveListDelete},
		{"SaveStatuses", testSubsSaveStatuses},
		{"Queue", testSubsQueue},
		{"QueueManyRows", testSubsQueueManyRows},
		{"DeleteDropsItsQueue", testSubsDeleteDropsItsQueue},
		{"Reopen", testSubsReopen},
		{"Concurrent", testSubsConcurrent},
		{"Closed", testSubsClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.f(t, open) })
	}
}

// subsOf returns s as store.Subscriptions; when the backend has none, it
// closes s and skips the test.
func subsOf(t *testing.T, s store.Store) store.Subscriptions {
	t.Helper()
	ss, ok := s.(store.Subscriptions)
	if !ok {
		s.Close()
		t.Skip("the store does not implement store.Subscriptions")
	}
	return ss
}

func sub(tenant, id, doc, status string) store.SubscriptionRecord {
	return store.SubscriptionRecord{Tenant: tenant, ID: id, Doc: []byte(doc), Status: []byte(status)}
}

// subsString renders subscriptions sorted by tenant and id (the contract
// does not order ListSubscriptions).
func subsString(rs []store.SubscriptionRecord) string {
	lines := make([]string, len(rs))
	for i, r := range rs {
		lines[i] = fmt.Sprintf("%q/%s doc=%s status=%s", r.Tenant, r.ID, r.Doc, r.Status)
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

func listSubs(t *testing.T, ss store.Subscriptions) string {
	t.Helper()
	rs, err := ss.ListSubscriptions(context.Background())
	if err != nil {
		t.Fatalf("ListSubscriptions: %v", err)
	}
	return subsString(rs)
}

func wantSubs(t *testing.T, ss store.Subscriptions, what string, want ...store.SubscriptionRecord) {
	t.Helper()
	if got, w := listSubs(t, ss), subsString(want); got != w {
		t.Errorf("%s: subscriptions\n got  %s\n want %s", what, got, w)
	}
}

func saveSub(t *testing.T, ss store.Subscriptions, r store.SubscriptionRecord) {
	t.Helper()
	if err := ss.SaveSubscription(context.Background(), r); err != nil {
		t.Fatalf("SaveSubscription %q/%s: %v", r.Tenant, r.ID, err)
	}
}

// note is a notification to enqueue, created at t0 plus ms milliseconds and
// a few nanoseconds (Created keeps nanoseconds).
func note(tenant, sub, body string, ms int) *store.QueuedNotification {
	return &store.QueuedNotification{Tenant: tenant, Subscription: sub, Body: []byte(body),
		Created: t0.Add(time.Duration(ms)*time.Millisecond + 7)}
}

func enqueue(t *testing.T, ss store.Subscriptions, cursor uint64, ns ...*store.QueuedNotification) {
	t.Helper()
	if err := ss.Enqueue(context.Background(), cursor, ns); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
}

// notesString renders notifications in the given order, with ids relative
// to base (ids are the store's, only their order and distinctness are
// specified).
func notesString(ns []*store.QueuedNotification, base int64) string {
	parts := make([]string, len(ns))
	for i, n := range ns {
		parts[i] = fmt.Sprintf("#%d %q/%s %d %s", n.ID-base, n.Tenant, n.Subscription, n.Created.UnixNano(), n.Body)
	}
	return strings.Join(parts, " | ")
}

func queued(t *testing.T, ss store.Subscriptions, tenant, sub string, after int64, max int) []*store.QueuedNotification {
	t.Helper()
	ns, err := ss.Queued(context.Background(), tenant, sub, after, max)
	if err != nil {
		t.Fatalf("Queued %q/%s: %v", tenant, sub, err)
	}
	return ns
}

func wantQueued(t *testing.T, ss store.Subscriptions, tenant, sub string, after int64, max int, want ...*store.QueuedNotification) {
	t.Helper()
	if got, w := notesString(queued(t, ss, tenant, sub, after, max), 0), notesString(want, 0); got != w {
		t.Errorf("Queued(%q, %s, after %d, max %d)\n got  %s\n want %s", tenant, sub, after, max, got, w)
	}
}

func wantCounts(t *testing.T, ss store.Subscriptions, want map[string]int) {
	t.Helper()
	got, err := ss.QueuedCounts(context.Background())
	if err != nil {
		t.Fatalf("QueuedCounts: %v", err)
	}
	if len(got) != len(want) {
		t.Errorf("QueuedCounts = %q, want %q", fmt.Sprint(got), fmt.Sprint(want))
		return
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("QueuedCounts = %q, want %q", fmt.Sprint(got), fmt.Sprint(want))
			return
		}
	}
}

func wantCursor(t *testing.T, ss store.Subscriptions, want uint64) {
	t.Helper()
	got, err := ss.NotifierCursor(context.Background())
	if err != nil {
		t.Fatalf("NotifierCursor: %v", err)
	}
	if got != want {
		t.Errorf("NotifierCursor = %d, want %d", got, want)
	}
}

func dequeue(t *testing.T, ss store.Subscriptions, ns ...*store.QueuedNotification) {
	t.Helper()
	ids := make([]int64, len(ns))
	for i, n := range ns {
		ids[i] = n.ID
	}
	if err := ss.Dequeue(context.Background(), ids); err != nil {
		t.Fatalf("Dequeue: %v", err)
	}
}

// increasing reports whether ns's ids are strictly increasing and after
// after.
func increasing(ns []*store.QueuedNotification, after int64) bool {
	for _, n := range ns {
		if n.ID <= after {
			return false
		}
		after = n.ID
	}
	return true
}

func testSubsSaveListDelete(t *testing.T, open func(t *testing.T) store.Store) {
	ss := subsOf(t, openStore(t, open))
	ctx := context.Background()
	wantSubs(t, ss, "empty store")
	a := sub("", "urn:s1", `{"a":1}`, `{"n":0}`)
	b := sub("city", "urn:s1", `{"b":1}`, `{"n":1}`) // same id, another tenant: another subscription
	c := sub("city", "urn:s2", `{"c":1}`, `{"n":2}`)
	for _, r := range []store.SubscriptionRecord{a, b, c} {
		saveSub(t, ss, r)
	}
	wantSubs(t, ss, "after saving three", a, b, c)

	a2 := sub("", "urn:s1", `{"a":2}`, `{"n":5}`)
	saveSub(t, ss, a2)
	wantSubs(t, ss, "after replacing one", a2, b, c)

	if err := ss.DeleteSubscription(ctx, "city", "urn:s1"); err != nil {
		t.Fatalf("DeleteSubscription: %v", err)
	}
	wantSubs(t, ss, "after deleting city/urn:s1", a2, c)
	for _, k := range [][2]string{{"city", "urn:s1"}, {"other", "urn:s2"}, {"", "urn:s2"}} {
		if err := ss.DeleteSubscription(ctx, k[0], k[1]); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("DeleteSubscription(%q, %s) = %v, want ErrNotFound", k[0], k[1], err)
		}
	}
	wantSubs(t, ss, "after deleting absent ones", a2, c)

	// A deleted subscription can be created again.
	saveSub(t, ss, b)
	wantSubs(t, ss, "after saving city/urn:s1 again", a2, b, c)
}

func testSubsSaveStatuses(t *testing.T, open func(t *testing.T) store.Store) {
	ss := subsOf(t, openStore(t, open))
	ctx := context.Background()
	a := sub("", "urn:s1", `{"a":1}`, `{"n":0}`)
	b := sub("city", "urn:s1", `{"b":1}`, `{"n":0}`)
	c := sub("city", "urn:s2", `{"c":1}`, `{"n":0}`)
	for _, r := range []store.SubscriptionRecord{a, b, c} {
		saveSub(t, ss, r)
	}
	err := ss.SaveStatuses(ctx, []store.SubscriptionRecord{
		{Tenant: "", ID: "urn:s1", Status: []byte(`{"n":10}`), Doc: []byte(`ignored`)},
		{Tenant: "city", ID: "urn:s2", Status: []byte(`{"n":12}`)},
		{Tenant: "other", ID: "urn:s1", Status: []byte(`{"n":13}`)}, // no such subscription: ignored
		{Tenant: "", ID: "urn:s9", Status: []byte(`{"n":14}`)},      // idem
	})
	if err != nil {
		t.Fatalf("SaveStatuses: %v", err)
	}
	wantSubs(t, ss, "after SaveStatuses", sub("", "urn:s1", `{"a":1}`, `{"n":10}`), b, sub("city", "urn:s2", `{"c":1}`, `{"n":12}`))
	if err := ss.SaveStatuses(ctx, nil); err != nil {
		t.Errorf("SaveStatuses(nil): %v", err)
	}
	wantSubs(t, ss, "after SaveStatuses(nil)", sub("", "urn:s1", `{"a":1}`, `{"n":10}`), b, sub("city", "urn:s2", `{"c":1}`, `{"n":12}`))
}

func testSubsQueue(t *testing.T, open func(t *testing.T) store.Store) {
	ss := subsOf(t, openStore(t, open))
	ctx := context.Background()
	wantCursor(t, ss, 0)
	wantCounts(t, ss, map[string]int{})
	wantQueued(t, ss, "", "urn:a", 0, 10)

	// One call, several subscriptions and tenants, interleaved.
	a1, c1, a2, b1, c2, a3 := note("", "urn:a", "a1", 1), note("city", "urn:a", "c1", 2), note("", "urn:a", "a2", 3),
		note("", "urn:b", "b1", 4), note("city", "urn:a", "c2", 5), note("", "urn:a", "a3", 6)
	first := []*store.QueuedNotification{a1, c1, a2, b1, c2, a3}
	enqueue(t, ss, 17, first...)
	if !increasing(first, 0) {
		t.Fatalf("ids of one Enqueue not increasing in order: %s", notesString(first, 0))
	}
	wantCursor(t, ss, 17)
	a4, b2 := note("", "urn:a", "a4", 7), note("", "urn:b", "b2", 8)
	enqueue(t, ss, 25, a4, b2)
	if !increasing([]*store.QueuedNotification{a3, a4, b2}, 0) {
		t.Fatalf("ids of a later Enqueue not after the earlier ones: %s", notesString(append(first, a4, b2), 0))
	}
	wantCursor(t, ss, 25)

	wantQueued(t, ss, "", "urn:a", 0, 10, a1, a2, a3, a4)
	wantQueued(t, ss, "city", "urn:a", 0, 10, c1, c2)
	wantQueued(t, ss, "", "urn:b", 0, 10, b1, b2)
	wantQueued(t, ss, "city", "urn:b", 0, 10)
	wantQueued(t, ss, "other", "urn:a", 0, 10)
	// Paging with after and max.
	wantQueued(t, ss, "", "urn:a", 0, 2, a1, a2)
	wantQueued(t, ss, "", "urn:a", a2.ID, 2, a3, a4)
	wantQueued(t, ss, "", "urn:a", a3.ID, 2, a4)
	wantQueued(t, ss, "", "urn:a", a4.ID, 2)
	wantQueued(t, ss, "", "urn:a", a1.ID, 1, a2)
	wantQueued(t, ss, "", "urn:a", c1.ID, 10, a2, a3, a4) // after an id of another queue
	wantCounts(t, ss, map[string]int{"\x00urn:a": 4, "city\x00urn:a": 2, "\x00urn:b": 2})

	// Dequeue removes exactly the given ids, from any queue; unknown ids
	// and an empty list change nothing.
	dequeue(t, ss, a2, c1, b1)
	if err := ss.Dequeue(ctx, []int64{b2.ID + 1000}); err != nil {
		t.Errorf("Dequeue of an unknown id: %v", err)
	}
	if err := ss.Dequeue(ctx, nil); err != nil {
		t.Errorf("Dequeue(nil): %v", err)
	}
	wantQueued(t, ss, "", "urn:a", 0, 10, a1, a3, a4)
	wantQueued(t, ss, "", "urn:a", a1.ID, 1, a3)
	wantQueued(t, ss, "city", "urn:a", 0, 10, c2)
	wantQueued(t, ss, "", "urn:b", 0, 10, b2)
	wantCounts(t, ss, map[string]int{"\x00urn:a": 3, "city\x00urn:a": 1, "\x00urn:b": 1})
	dequeue(t, ss, b2)
	wantCounts(t, ss, map[string]int{"\x00urn:a": 3, "city\x00urn:a": 1})

	// An Enqueue without notifications moves the cursor only.
	enqueue(t, ss, math.MaxInt64)
	wantCursor(t, ss, math.MaxInt64)
	enqueue(t, ss, 30)
	wantCursor(t, ss, 30)
	wantCounts(t, ss, map[string]int{"\x00urn:a": 3, "city\x00urn:a": 1})

	// Ids are never reused, not even the highest one after it is dequeued.
	dequeue(t, ss, a4)
	b3 := note("", "urn:b", "b3", 9)
	enqueue(t, ss, 31, b3)
	if b3.ID <= b2.ID {
		t.Errorf("id %d after dequeuing ids up to %d: reused", b3.ID, b2.ID)
	}
	wantQueued(t, ss, "", "urn:b", 0, 10, b3)
	wantQueued(t, ss, "", "urn:a", 0, 10, a1, a3)
}

// testSubsQueueManyRows enqueues more notifications in one call than a
// backend is likely to insert with one statement.
func testSubsQueueManyRows(t *testing.T, open func(t *testing.T) store.Store) {
	ss := subsOf(t, openStore(t, open))
	const n = 1000
	var ns []*store.QueuedNotification
	for i := range n {
		ns = append(ns, note([]string{"", "city"}[i%2], fmt.Sprintf("urn:s%d", i%3), fmt.Sprintf("n%04d", i), i))
	}
	enqueue(t, ss, 9, ns...)
	if !increasing(ns, 0) {
		t.Fatalf("ids not increasing in order")
	}
	counts := map[string]int{}
	for _, tenant := range []string{"", "city"} {
		for s := range 3 {
			id := fmt.Sprintf("urn:s%d", s)
			var want []*store.QueuedNotification
			for _, x := range ns {
				if x.Tenant == tenant && x.Subscription == id {
					want = append(want, x)
				}
			}
			counts[tenant+"\x00"+id] = len(want)
			wantQueued(t, ss, tenant, id, 0, n, want...)
			// Page through it.
			var got []*store.QueuedNotification
			for after := int64(0); ; {
				page := queued(t, ss, tenant, id, after, 50)
				if len(page) == 0 {
					break
				}
				if len(page) > 50 {
					t.Fatalf("page of %d, max 50", len(page))
				}
				got = append(got, page...)
				after = page[len(page)-1].ID
			}
			if g, w := notesString(got, 0), notesString(want, 0); g != w {
				t.Errorf("paging %q/%s:\n got  %s\n want %s", tenant, id, g, w)
			}
		}
	}
	wantCounts(t, ss, counts)
	wantCursor(t, ss, 9)
	dequeue(t, ss, ns[:n-1]...)
	wantCounts(t, ss, map[string]int{ns[n-1].Tenant + "\x00" + ns[n-1].Subscription: 1})
}

func testSubsDeleteDropsItsQueue(t *testing.T, open func(t *testing.T) store.Store) {
	ss := subsOf(t, openStore(t, open))
	ctx := context.Background()
	a, b, ca := sub("", "urn:a", `{}`, `{}`), sub("", "urn:b", `{}`, `{}`), sub("city", "urn:a", `{}`, `{}`)
	for _, r := range []store.SubscriptionRecord{a, b, ca} {
		saveSub(t, ss, r)
	}
	a1, b1, ca1, a2 := note("", "urn:a", "a1", 1), note("", "urn:b", "b1", 2), note("city", "urn:a", "ca1", 3), note("", "urn:a", "a2", 4)
	enqueue(t, ss, 3, a1, b1, ca1, a2)
	if err := ss.DeleteSubscription(ctx, "", "urn:a"); err != nil {
		t.Fatalf("DeleteSubscription: %v", err)
	}
	wantSubs(t, ss, "after delete", b, ca)
	wantQueued(t, ss, "", "urn:a", 0, 10)
	wantQueued(t, ss, "", "urn:b", 0, 10, b1)
	wantQueued(t, ss, "city", "urn:a", 0, 10, ca1)
	wantCounts(t, ss, map[string]int{"\x00urn:b": 1, "city\x00urn:a": 1})
	wantCursor(t, ss, 3)
	// A failed delete keeps the queue of the subscription it did not find
	// in another tenant.
	if err := ss.DeleteSubscription(ctx, "other", "urn:b"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeleteSubscription(other, urn:b) = %v, want ErrNotFound", err)
	}
	wantQueued(t, ss, "", "urn:b", 0, 10, b1)
}

func testSubsReopen(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ss := subsOf(t, s)
	a, ca := sub("", "urn:a", `{"a":1}`, `{"n":1}`), sub("city", "urn:a", `{"ca":1}`, `{"n":2}`)
	saveSub(t, ss, a)
	saveSub(t, ss, ca)
	a1, ca1, a2 := note("", "urn:a", "a1", 1), note("city", "urn:a", "ca1", 2), note("", "urn:a", "a2", 3)
	enqueue(t, ss, 40, a1, ca1)
	enqueue(t, ss, 42, a2)
	dequeue(t, ss, a2) // the highest id: not to be reused after reopening
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ss = subsOf(t, openStore(t, open))
	wantCursor(t, ss, 42)
	wantSubs(t, ss, "after reopen", a, ca)
	wantQueued(t, ss, "", "urn:a", 0, 10, a1)
	wantQueued(t, ss, "city", "urn:a", 0, 10, ca1)
	wantCounts(t, ss, map[string]int{"\x00urn:a": 1, "city\x00urn:a": 1})
	a3 := note("", "urn:a", "a3", 4)
	enqueue(t, ss, 43, a3)
	if a3.ID <= a2.ID {
		t.Errorf("id %d after reopening, ids up to %d used before: reused", a3.ID, a2.ID)
	}
	wantQueued(t, ss, "", "urn:a", 0, 10, a1, a3)
	wantCursor(t, ss, 43)
}

// testSubsConcurrent enqueues from several goroutines while entity writes
// keep the writer busy and a consumer dequeues: every notification is
// delivered exactly once, with its own body, and ids are unique.
func testSubsConcurrent(t *testing.T, open func(t *testing.T) store.Store) {
	s := openStore(t, open)
	ss := subsOf(t, s)
	ctx := context.Background()
	const (
		producers = 4
		calls     = 40
		perCall   = 8
		writers   = 4
		writes    = 40
	)
	type key struct{ tenant, sub string }
	subs := []key{{"", "urn:a"}, {"", "urn:b"}, {"city", "urn:a"}}

	var mu sync.Mutex
	enqueued := map[int64]string{} // id -> "tenant/sub/body"
	cursors := map[uint64]bool{}
	var producing, others sync.WaitGroup
	for p := range producers {
		producing.Go(func() {
			last := int64(0)
			for c := range calls {
				ns := make([]*store.QueuedNotification, perCall)
				for i := range ns {
					k := subs[(p+c+i)%len(subs)]
					ns[i] = note(k.tenant, k.sub, fmt.Sprintf("p%d-c%d-n%d", p, c, i), c)
				}
				cursor := uint64(1000*(p+1) + c)
				if err := ss.Enqueue(ctx, cursor, ns); err != nil {
					t.Errorf("Enqueue: %v", err)
					return
				}
				if !increasing(ns, last) {
					t.Errorf("producer %d call %d: ids not increasing after %d: %s", p, c, last, notesString(ns, 0))
				}
				last = ns[len(ns)-1].ID
				mu.Lock()
				cursors[cursor] = true
				for _, n := range ns {
					if prev, dup := enqueued[n.ID]; dup {
						t.Errorf("id %d given to %s and %s", n.ID, prev, n.Body)
					}
					enqueued[n.ID] = n.Tenant + "/" + n.Subscription + "/" + string(n.Body)
				}
				mu.Unlock()
			}
		})
	}
	for w := range writers {
		others.Go(func() {
			for i := range writes {
				tenant := []string{"", "city"}[w%2]
				e := Ent(fmt.Sprintf("urn:w%d:%d", w, i), []string{"T"}, "v", Prop(float64(i)))
				res, err := s.Write(ctx, tenant, []store.Op{Upsert(e), Update(e.ID, func(e *ngsild.Entity) {
					e.Attrs[Expand("v")][0].Value = float64(i) + 0.5
				})})
				if err != nil {
					t.Errorf("Write: %v", err)
					return
				}
				for _, r := range res {
					if r.Err != nil {
						t.Errorf("Write %s: %v", r.ID, r.Err)
					}
				}
			}
		})
	}
	// The consumer takes a page of each queue and dequeues it, as the
	// notifier does; it stops at the first inconsistency.
	delivered := map[int64]string{}
	drain := func() (int, error) {
		n := 0
		for _, k := range subs {
			page, err := ss.Queued(ctx, k.tenant, k.sub, 0, 50)
			if err != nil {
				return n, fmt.Errorf("queued: %w", err)
			}
			if !increasing(page, 0) {
				return n, fmt.Errorf("queue %q/%s not in id order: %s", k.tenant, k.sub, notesString(page, 0))
			}
			ids := make([]int64, len(page))
			for i, x := range page {
				ids[i] = x.ID
				v := x.Tenant + "/" + x.Subscription + "/" + string(x.Body)
				if !strings.HasPrefix(v, k.tenant+"/"+k.sub+"/") {
					return n, fmt.Errorf("queue %q/%s returned %s", k.tenant, k.sub, v)
				}
				if prev, dup := delivered[x.ID]; dup {
					return n, fmt.Errorf("id %d delivered twice (%s, then %s): Dequeue did not remove it", x.ID, prev, v)
				}
				delivered[x.ID] = v
			}
			if err := ss.Dequeue(ctx, ids); err != nil {
				return n, fmt.Errorf("dequeue: %w", err)
			}
			n += len(page)
		}
		return n, nil
	}
	done := make(chan struct{})
	var drainErr error
	others.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			n, err := drain()
			if err != nil {
				drainErr = err
				return
			}
			if n == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	})
	producing.Wait()
	close(done)
	others.Wait()
	for drainErr == nil {
		n, err := drain()
		if n == 0 || err != nil {
			drainErr = err
			break
		}
	}
	if drainErr != nil {
		t.Fatalf("consumer: %v", drainErr)
	}

	if len(enqueued) != producers*calls*perCall {
		t.Errorf("%d distinct ids for %d notifications", len(enqueued), producers*calls*perCall)
	}
	if len(delivered) != len(enqueued) {
		t.Errorf("%d delivered, %d enqueued", len(delivered), len(enqueued))
	}
	wrong := 0
	for id, v := range enqueued {
		if delivered[id] != v {
			if wrong++; wrong <= 5 {
				t.Errorf("notification %d %s: delivered as %q", id, v, delivered[id])
			}
		}
	}
	wantCounts(t, ss, map[string]int{})
	cur, err := ss.NotifierCursor(ctx)
	if err != nil || !cursors[cur] {
		t.Errorf("NotifierCursor = %d, %v: not one of the cursors set", cur, err)
	}
	for _, tenant := range []string{"", "city"} {
		r, err := s.Query(ctx, tenant, &store.Query{Type: typeQ(t, "T"), Count: true})
		if err != nil || r.Count != writers/2*writes {
			t.Errorf("tenant %q: %d entities (%v), want %d", tenant, r.Count, err, writers/2*writes)
		}
	}
}

func testSubsClosed(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ss := subsOf(t, s)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ctx := context.Background()
	calls := []struct {
		name string
		call func() error
	}{
		{"SaveSubscription", func() error { return ss.SaveSubscription(ctx, sub("", "urn:a", "{}", "{}")) }},
		{"SaveStatuses", func() error { return ss.SaveStatuses(ctx, []store.SubscriptionRecord{sub("", "urn:a", "{}", "{}")}) }},
		{"DeleteSubscription", func() error { return ss.DeleteSubscription(ctx, "", "urn:a") }},
		{"ListSubscriptions", func() error { _, err := ss.ListSubscriptions(ctx); return err }},
		{"Enqueue", func() error { return ss.Enqueue(ctx, 1, []*store.QueuedNotification{note("", "urn:a", "x", 1)}) }},
		{"NotifierCursor", func() error { _, err := ss.NotifierCursor(ctx); return err }},
		{"Queued", func() error { _, err := ss.Queued(ctx, "", "urn:a", 0, 10); return err }},
		{"QueuedCounts", func() error { _, err := ss.QueuedCounts(ctx); return err }},
		{"Dequeue", func() error { return ss.Dequeue(ctx, []int64{1}) }},
	}
	for _, c := range calls {
		if err := c.call(); !errors.Is(err, store.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", c.name, err)
		}
	}
}

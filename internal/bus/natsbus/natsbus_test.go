package natsbus_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/zenne-city/zenne/internal/bus/natsbus"
	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store"
)

// writeConcurrently writes n changes per instance from `writers`
// goroutines per instance, each instance's entities named urn:i<k>:...
func writeConcurrently(t *testing.T, s store.Store, instances, writers, n int) {
	t.Helper()
	var wg sync.WaitGroup
	for k := range instances {
		for w := range writers {
			wg.Go(func() {
				for i := range n / writers {
					if err := upsert(s, fmt.Sprintf("t%d", i%2), fmt.Sprintf("urn:i%d:w%d:%d", k, w, i%7), float64(i)); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
}

// Two instances on one database, each told only of its own commits and
// relaying them: readers on both get every change of both, once, in order,
// and the stream holds each at its own sequence.
func TestTwoInstancesSeeEverythingInOrder(t *testing.T) {
	name := newStream(t)
	sh := newShared(openStore(t), false)
	a := newBus(t, natsbus.Options{Stream: name, Log: sh.instance(0), Window: 64})
	b := newBus(t, natsbus.Options{Stream: name, Log: sh.instance(1), Window: 64})

	const per = 300
	var readers sync.WaitGroup
	got := make([][]store.Change, 4)
	for i, bb := range []*natsbus.Bus{a, b, a, b} {
		batch := []int{1000, 7, 1, 50}[i]
		readers.Go(func() {
			var err error
			if got[i], err = readAllErr(bb, 0, 2*per, batch); err != nil {
				t.Errorf("reader %d: %v", i, err)
			}
		})
	}
	writeConcurrently(t, sh, 2, 3, per)
	readers.Wait()
	if t.Failed() {
		t.FailNow()
	}
	want, err := sh.Changes(context.Background(), 0, 2*per)
	if err != nil || len(want) != 2*per {
		t.Fatalf("log: %d changes, %v", len(want), err)
	}
	for i, cs := range got {
		for j, c := range cs {
			w := want[j]
			if c.ID != w.ID || c.Tenant != w.Tenant || c.Kind != w.Kind || !c.At.Equal(w.At) || c.After == nil || c.After.ID != w.ID {
				t.Fatalf("reader %d, change %d: %s %s %q, want %s %s %q", i, c.Seq, c.Kind, c.Tenant, c.ID, w.Kind, w.Tenant, w.ID)
			}
			// The same as the log's, whether it came from memory or the stream.
			cj, _ := json.Marshal([]any{c.Before, c.After, c.Attrs})
			wj, _ := json.Marshal([]any{w.Before, w.After, w.Attrs})
			if string(cj) != string(wj) {
				t.Fatalf("reader %d, change %d:\n%s\nwant the log's\n%s", i, c.Seq, cj, wj)
			}
		}
	}
	waitFor(t, "both relays to finish", 10*time.Second, func() bool { return a.Durable() == 2*per && b.Durable() == 2*per })
	checkStream(t, jsFor(t), name, sh, 1, 2*per)
	if a.Last() != 2*per || b.Last() != 2*per {
		t.Fatalf("Last: %d and %d, want %d", a.Last(), b.Last(), 2*per)
	}
	for _, bb := range []*natsbus.Bus{a, b} {
		if err := bb.Ping(context.Background()); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	}
}

// Three instances each told of every commit publish all of them at once:
// the server takes each change once, at its place.
func TestRelaysRace(t *testing.T) {
	name := newStream(t)
	sh := newShared(openStore(t), true)
	var bs []*natsbus.Bus
	for k := range 3 {
		bs = append(bs, newBus(t, natsbus.Options{Stream: name, Log: sh.instance(k), GapWait: time.Millisecond}))
	}
	const n = 600
	var readers sync.WaitGroup
	for _, b := range bs {
		readers.Go(func() {
			if _, err := readAllErr(b, 0, n, 100); err != nil {
				t.Error(err)
			}
		})
	}
	writeConcurrently(t, sh, 1, 4, n)
	readers.Wait()
	waitFor(t, "the relays to finish", 10*time.Second, func() bool {
		return bs[0].Durable() == n && bs[1].Durable() == n && bs[2].Durable() == n
	})
	checkStream(t, jsFor(t), name, sh, 1, n)
}

// Changes committed while no bus ran (an instance crashed between its
// commits and their publishing) are published from the log; an instance
// whose commits are never reported still has them published by another;
// a bus started late reads from the start.
func TestCatchUpFromTheLog(t *testing.T) {
	name := newStream(t)
	sh := newShared(openStore(t), false)
	for i := range 20 {
		mustUpsert(t, sh, fmt.Sprintf("urn:i0:%d", i), 1)
	}
	a := newBus(t, natsbus.Options{Stream: name, Log: sh.instance(0)})
	if a.Last() != 20 {
		t.Fatalf("Last = %d, want 20", a.Last())
	}
	waitFor(t, "the log's changes to be published", 10*time.Second, func() bool { return a.Durable() == 20 })

	// Instance 1 "crashes" before publishing each of its commits.
	sh.mu.Lock()
	sh.mute[1] = true
	sh.mu.Unlock()
	b := newBus(t, natsbus.Options{Stream: name, Log: sh.instance(1)})
	for i := range 10 {
		mustUpsert(t, sh, fmt.Sprintf("urn:i1:%d", i), 1)
		mustUpsert(t, sh, fmt.Sprintf("urn:i0:%d", i), 2)
	}
	readAll(t, a, 0, 40, 1000)
	readAll(t, b, 0, 40, 7)
	waitFor(t, "the unreported changes to be published", 10*time.Second, func() bool { return a.Durable() == 40 })
	checkStream(t, jsFor(t), name, sh, 1, 40)

	late := newBus(t, natsbus.Options{Stream: name, Log: sh.instance(2), Window: 4})
	if late.Last() != 40 {
		t.Fatalf("late bus: Last = %d, want 40", late.Last())
	}
	cs := readAll(t, late, 0, 40, 1000)
	if cs[39].Seq != 40 {
		t.Fatal("late bus: wrong last change")
	}
}

// With NATS away, a bus keeps serving every change (its own at once, the
// others' from the log), reports the outage, and when NATS is back
// publishes what the stream lacks; nothing is lost or repeated.
func TestNATSAway(t *testing.T) {
	name := newStream(t)
	sh := newShared(openStore(t), false)
	p := newProxy(t)
	a := newBus(t, natsbus.Options{URL: p.url(), Stream: name, Log: sh.instance(0), DegradedPoll: 20 * time.Millisecond})
	b := newBus(t, natsbus.Options{Stream: name, Log: sh.instance(1)})

	ctx := context.Background() // Ping bounds its own wait
	const total = 3 * 60
	var readers sync.WaitGroup
	for _, bb := range []*natsbus.Bus{a, b} {
		readers.Go(func() {
			if _, err := readAllErr(bb, 0, total, 10); err != nil {
				t.Error(err)
			}
		})
	}
	write := func(from int) {
		for i := from; i < from+60; i++ {
			mustUpsert(t, sh, fmt.Sprintf("urn:i%d:%d", i%2, i%9), float64(i))
		}
	}
	write(0)
	waitFor(t, "a to publish", 10*time.Second, func() bool { return a.Durable() == 60 })

	p.down()
	waitFor(t, "a to see NATS gone", 10*time.Second, func() bool { return a.Ping(ctx) != nil })
	write(60)
	// a's own commits and b's (from the log) keep coming while NATS is away.
	away := readAll(t, a, 60, 60, 1000)
	if away[59].Seq != 120 {
		t.Fatal("a: wrong last change while NATS is away")
	}
	if err := a.Ping(ctx); err == nil || !strings.Contains(err.Error(), "not connected") {
		t.Fatalf("Ping while NATS is away: %v", err)
	}

	p.up()
	waitFor(t, "a to reconnect", 20*time.Second, func() bool { return a.Ping(ctx) == nil })
	write(120)
	readers.Wait()
	waitFor(t, "both to publish everything", 20*time.Second, func() bool { return a.Durable() == total && b.Durable() == total })
	checkStream(t, jsFor(t), name, sh, 1, total)
}

// A bus whose NATS cannot be reached at all starts anyway and serves the
// log, and says so.
func TestNATSNeverThere(t *testing.T) {
	natsURL(t)
	s := openStore(t)
	p := newProxy(t)
	p.down() // a port nobody listens on
	name := newStream(t)
	b := newBus(t, natsbus.Options{URL: p.url(), Stream: name, Log: s, DegradedPoll: 20 * time.Millisecond})
	if err := b.Ping(context.Background()); err == nil {
		t.Fatal("Ping succeeded without NATS")
	}
	for i := range 30 {
		mustUpsert(t, s, fmt.Sprintf("urn:a:%d", i%4), float64(i))
	}
	readAll(t, b, 0, 30, 7)
	cs := readAll(t, b, 25, 5, 100)
	if cs[4].Seq != 30 {
		t.Fatal("wrong last change")
	}
	// NATS comes: the stream is set up and gets everything.
	p.up()
	waitFor(t, "publishing", 20*time.Second, func() bool { return b.Durable() == 30 })
	checkStream(t, jsFor(t), name, s, 1, 30)
	waitFor(t, "Ping to succeed", 10*time.Second, func() bool { return b.Ping(context.Background()) == nil })
}

// A stream whose changes all expired goes on at the next change.
func TestStreamExpired(t *testing.T) {
	name := newStream(t)
	s := openStore(t)
	b := newBus(t, natsbus.Options{Stream: name, Log: s, MaxAge: time.Second})
	for i := range 3 {
		mustUpsert(t, s, "urn:a", float64(i))
	}
	waitFor(t, "publishing", 10*time.Second, func() bool { return b.Durable() == 3 })
	js := jsFor(t)
	waitFor(t, "the changes to expire", 10*time.Second, func() bool {
		st, err := js.Stream(context.Background(), name)
		return err == nil && st.CachedInfo().State.Msgs == 0
	})
	mustUpsert(t, s, "urn:a", 4)
	waitFor(t, "publishing", 10*time.Second, func() bool { return b.Durable() == 4 })
	checkStream(t, js, name, s, 4, 4)
	late := newBus(t, natsbus.Options{Stream: name, Log: s, Window: 1})
	readAll(t, late, 0, 4, 10) // the expired ones from the log
}

// A stream deleted under running buses is created again and filled from
// the log; readers notice nothing.
func TestStreamDeleted(t *testing.T) {
	name := newStream(t)
	sh := newShared(openStore(t), false)
	a := newBus(t, natsbus.Options{Stream: name, Log: sh.instance(0)})
	b := newBus(t, natsbus.Options{Stream: name, Log: sh.instance(1)})
	js := jsFor(t)
	for i := range 40 {
		mustUpsert(t, sh, fmt.Sprintf("urn:i%d:%d", i%2, i%5), float64(i))
	}
	waitFor(t, "publishing", 10*time.Second, func() bool { return a.Durable() == 40 || b.Durable() == 40 })
	if err := js.DeleteStream(context.Background(), name); err != nil {
		t.Fatal(err)
	}
	for i := 40; i < 80; i++ {
		mustUpsert(t, sh, fmt.Sprintf("urn:i%d:%d", i%2, i%5), float64(i))
	}
	readAll(t, a, 0, 80, 9)
	readAll(t, b, 0, 80, 1000)
	waitFor(t, "the stream to be refilled", 20*time.Second, func() bool {
		s, err := js.Stream(context.Background(), name)
		return err == nil && s.CachedInfo().State.LastSeq == 80
	})
	checkStream(t, js, name, sh, 1, 80)
}

// The stream keeps what the log trimmed; what neither keeps is
// ErrChangesGone.
func TestTrimmed(t *testing.T) {
	name := newStream(t)
	s := openStore(t)
	b := newBus(t, natsbus.Options{Stream: name, Log: s, Window: 2})
	for i := range 10 {
		mustUpsert(t, s, "urn:a", float64(i))
	}
	waitFor(t, "publishing", 10*time.Second, func() bool { return b.Durable() == 10 })
	if err := s.TrimChanges(context.Background(), 7); err != nil {
		t.Fatal(err)
	}
	cs := readAll(t, b, 2, 8, 100) // from the stream
	if cs[0].Seq != 3 || cs[7].Seq != 10 {
		t.Fatal("wrong changes from the stream")
	}
	js := jsFor(t)
	st, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Purge(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Read(context.Background(), 2, 10); !errors.Is(err, store.ErrChangesGone) {
		t.Fatalf("changes in neither the stream nor the log: %v, want ErrChangesGone", err)
	}
	cs = readAll(t, b, 7, 3, 10) // 8 from the log, 9 and 10 from memory
	if cs[0].Seq != 8 {
		t.Fatal("wrong change from the log")
	}
	// The stream goes on after a purge.
	mustUpsert(t, s, "urn:b", 1)
	waitFor(t, "publishing after a purge", 10*time.Second, func() bool { return b.Durable() == 11 })
	checkStream(t, js, name, s, 11, 11)
}

// A new stream on a trimmed log starts at the log's first change.
func TestNewStreamOnTrimmedLog(t *testing.T) {
	name := newStream(t)
	s := openStore(t)
	for i := range 10 {
		mustUpsert(t, s, "urn:a", float64(i))
	}
	if err := s.TrimChanges(context.Background(), 6); err != nil {
		t.Fatal(err)
	}
	b := newBus(t, natsbus.Options{Stream: name, Log: s})
	waitFor(t, "publishing", 10*time.Second, func() bool { return b.Durable() == 10 })
	checkStream(t, jsFor(t), name, s, 7, 10)
	if _, err := b.Read(context.Background(), 0, 10); !errors.Is(err, store.ErrChangesGone) {
		t.Fatalf("reading trimmed changes: %v, want ErrChangesGone", err)
	}
	if cs := readAll(t, b, 6, 4, 10); cs[0].Seq != 7 {
		t.Fatal("wrong first change")
	}
}

// Changes trimmed from the log before anyone published them leave a mark
// in the stream (which keeps its older changes): readers of them get
// ErrChangesGone, the others read on.
func TestTrimmedBeforePublished(t *testing.T) {
	name := newStream(t)
	s := openStore(t)
	b := newBus(t, natsbus.Options{Stream: name, Log: s})
	for i := range 5 {
		mustUpsert(t, s, "urn:a", float64(i))
	}
	waitFor(t, "publishing", 10*time.Second, func() bool { return b.Durable() == 5 })
	b.Close()
	for i := range 5 {
		mustUpsert(t, s, "urn:b", float64(i)) // 6..10, never published
	}
	if err := s.TrimChanges(context.Background(), 8); err != nil {
		t.Fatal(err)
	}
	c := newBus(t, natsbus.Options{Stream: name, Log: s, Window: 2})
	waitFor(t, "publishing", 10*time.Second, func() bool { return c.Durable() == 10 })
	js := jsFor(t)
	checkStream(t, js, name, s, 9, 10)
	st, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	if st.CachedInfo().State.Msgs != 10 {
		t.Fatalf("stream holds %d messages, want 10 (5 changes, 3 marks, 2 changes)", st.CachedInfo().State.Msgs)
	}
	for seq := uint64(6); seq <= 8; seq++ {
		m, err := st.GetMsg(context.Background(), seq)
		if err != nil || m.Header.Get("Zenne-Stub") != "gone" || m.Header.Get("Zenne-Seq") != fmt.Sprint(seq) {
			t.Fatalf("stream message %d: %v %v", seq, m, err)
		}
	}
	if cs := readAll(t, c, 0, 5, 100); cs[4].Seq != 5 {
		t.Fatal("the stream's older changes are not kept")
	}
	if _, err := c.Read(context.Background(), 5, 10); !errors.Is(err, store.ErrChangesGone) {
		t.Fatalf("reading changes marked gone: %v, want ErrChangesGone", err)
	}
	if cs := readAll(t, c, 8, 2, 10); cs[0].Seq != 9 {
		t.Fatal("wrong change after the gone ones")
	}
}

// A stream holding another store's changes is refused.
func TestForeignStream(t *testing.T) {
	name := newStream(t)
	s1 := openStore(t)
	b := newBus(t, natsbus.Options{Stream: name, Log: s1})
	for i := range 5 {
		mustUpsert(t, s1, "urn:a", float64(i))
	}
	waitFor(t, "publishing", 10*time.Second, func() bool { return b.Durable() == 5 })
	b.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s2 := openStore(t) // behind the stream
	mustUpsert(t, s2, "urn:x", 1)
	if b2, err := natsbus.New(ctx, natsbus.Options{URL: natsURL(t), Stream: name, Log: s2}); err == nil {
		b2.Close()
		t.Fatal("a stream ahead of the store's log was taken")
	} else if !strings.Contains(err.Error(), "another store") {
		t.Fatalf("unclear error: %v", err)
	}
	for i := range 5 { // as far as the stream, with other changes
		mustUpsert(t, s2, "urn:y", float64(i))
	}
	if b2, err := natsbus.New(ctx, natsbus.Options{URL: natsURL(t), Stream: name, Log: s2}); err == nil {
		b2.Close()
		t.Fatal("a stream with another store's changes was taken")
	} else if !strings.Contains(err.Error(), "another store") {
		t.Fatalf("unclear error: %v", err)
	}
	// The same store again is fine.
	newBus(t, natsbus.Options{Stream: name, Log: s1})
}

// A change too large for a NATS message goes as a stub; readers get it
// from the log.
func TestLargeChange(t *testing.T) {
	name := newStream(t)
	s := openStore(t)
	a := newBus(t, natsbus.Options{Stream: name, Log: s})
	nc, err := nats.Connect(natsURL(t))
	if err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", int(nc.MaxPayload()))
	nc.Close()
	mustUpsert(t, s, "urn:a", 1)
	if err := upsertString(s, "urn:big", big); err != nil {
		t.Fatal(err)
	}
	mustUpsert(t, s, "urn:c", 1)
	waitFor(t, "publishing", 10*time.Second, func() bool { return a.Durable() == 3 })
	b := newBus(t, natsbus.Options{Stream: name, Log: s, Window: 1})
	cs := readAll(t, b, 0, 3, 10)
	if cs[1].ID != "urn:big" || len(cs[1].After.Attrs["https://example.org/s"][0].Value.(string)) != len(big) {
		t.Fatal("the large change did not come whole")
	}
	js := jsFor(t)
	st, _ := js.Stream(context.Background(), name)
	m, err := st.GetMsg(context.Background(), 2)
	if err != nil || m.Header.Get("Zenne-Stub") != "too-large" {
		t.Fatalf("stream message 2: %v %v", m, err)
	}
}

// Last is the log's end as soon as New returns, even when the store's
// LastChange knows only its own process's commits: a notifier whose saved
// cursor were past Last would start over.
func TestLastIsTheLogsEnd(t *testing.T) {
	name := newStream(t)
	sh := newShared(openStore(t), false)
	stale := sh.staleInstance(1)
	for i := range 12 {
		mustUpsert(t, sh, fmt.Sprintf("urn:i0:%d", i), 1)
	}
	b := newBus(t, natsbus.Options{Stream: name, Log: stale})
	if b.Last() != 12 {
		t.Fatalf("Last = %d, want 12", b.Last())
	}
	readAll(t, b, 0, 12, 5)
}

// BenchmarkRelay: changes written in groups of 100 on one instance, until
// another instance has read them from the stream.
func BenchmarkRelay(b *testing.B) {
	name := newStream(b)
	sh := newShared(openStore(b), false)
	newBus(b, natsbus.Options{Stream: name, Log: sh.instance(0)})
	other := newBus(b, natsbus.Options{Stream: name, Log: sh.instance(1)})
	b.ResetTimer()
	for n := 0; n < b.N; n += 100 {
		ops := make([]store.Op, 100)
		for i := range ops {
			id := fmt.Sprintf("urn:i0:%d", i)
			e := &ngsild.Entity{ID: id, Types: []string{"https://example.org/T"}, Attrs: map[string][]*ngsild.Attribute{
				"https://example.org/v": {{Kind: ngsild.Property, Value: float64(n)}}}}
			ops[i] = store.Op{ID: id, Apply: func(*ngsild.Entity) (*ngsild.Entity, error) { return e, nil }}
		}
		if _, err := sh.Write(context.Background(), "", ops); err != nil {
			b.Fatal(err)
		}
	}
	want := sh.LastChange()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for pos := uint64(0); pos < want; {
		cs, err := other.Read(ctx, pos, 1000)
		if err != nil {
			b.Fatal(err)
		}
		pos = cs[len(cs)-1].Seq
	}
	b.StopTimer()
}

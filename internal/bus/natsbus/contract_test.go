package natsbus_test

// The assertions of internal/bus's tests of Local, run against any bus.Bus:
// against Local here too, to show they hold what they say, and against the
// NATS bus.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/zenne-city/zenne/internal/bus"
	"github.com/zenne-city/zenne/internal/bus/natsbus"
	"github.com/zenne-city/zenne/internal/store"
	"github.com/zenne-city/zenne/internal/store/sqlite"
)

// contractBus makes the bus under test on s; forget(upTo) makes the bus's
// own copies of the changes up to upTo go (the store's log is trimmed by
// the test).
type contractBus func(t *testing.T, s *sqlite.Store, window int) (b bus.Bus, forget func(upTo uint64))

func runContract(t *testing.T, mk contractBus) {
	t.Run("DeliversInOrder", func(t *testing.T) { contractDeliversInOrder(t, mk) })
	t.Run("ReadWaitsAndCancels", func(t *testing.T) { contractReadWaitsAndCancels(t, mk) })
	t.Run("TrimmedIsGone", func(t *testing.T) { contractTrimmedIsGone(t, mk) })
}

func TestContractLocal(t *testing.T) {
	runContract(t, func(t *testing.T, s *sqlite.Store, window int) (bus.Bus, func(uint64)) {
		return bus.NewLocal(s, window), func(uint64) {}
	})
}

func TestContractNATS(t *testing.T) {
	natsURL(t)
	runContract(t, func(t *testing.T, s *sqlite.Store, window int) (bus.Bus, func(uint64)) {
		name := newStream(t)
		b := newBus(t, natsbus.Options{Stream: name, Log: s, Window: window})
		js := jsFor(t)
		return b, func(upTo uint64) {
			waitFor(t, "the changes to be published", 10*time.Second, func() bool { return b.Durable() >= upTo })
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			st, err := js.Stream(ctx, name)
			if err == nil {
				err = st.Purge(ctx, jetstream.WithPurgeSequence(upTo+1))
			}
			if err != nil {
				t.Fatalf("purge the stream up to %d: %v", upTo, err)
			}
		}
	})
}

// Readers get every change in commit order, whether they wait for new ones,
// read from memory or (behind the window) from the stream or the log.
func contractDeliversInOrder(t *testing.T, mk contractBus) {
	s := openStore(t)
	b, _ := mk(t, s, 16) // a small window: early readers read what is older
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	const writers, each = 4, 50
	var wg sync.WaitGroup
	got := make(chan []uint64, 1)
	go func() { // a reader that waits from the start
		var seqs []uint64
		var pos uint64
		for len(seqs) < writers*each {
			cs, err := b.Read(ctx, pos, 7)
			if err != nil {
				t.Errorf("Read after %d: %v", pos, err)
				break
			}
			for _, c := range cs {
				seqs = append(seqs, c.Seq)
				pos = c.Seq
			}
		}
		got <- seqs
	}()
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if err := upsert(s, "", fmt.Sprintf("urn:w%d:%d", w, i%5), float64(i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if b.Last() != writers*each {
		t.Fatalf("Last = %d, want %d", b.Last(), writers*each)
	}
	seqs := <-got
	for i, q := range seqs {
		if q != uint64(i+1) {
			t.Fatalf("live reader: change %d has Seq %d", i, q)
		}
	}
	// A late reader starts behind the window.
	cs, err := b.Read(ctx, 0, 1000)
	if err != nil || len(cs) != writers*each || cs[0].Seq != 1 || cs[len(cs)-1].Seq != writers*each {
		t.Fatalf("late reader: %d changes, %v", len(cs), err)
	}
	for i, c := range cs {
		if c.Seq != uint64(i+1) {
			t.Fatalf("late reader: change %d has Seq %d", i, c.Seq)
		}
	}
	// Inside the window, memory serves it.
	recent, err := b.Read(ctx, writers*each-3, 10)
	if err != nil || len(recent) != 3 || recent[2].Seq != writers*each || recent[2].After.ID != cs[len(cs)-1].After.ID {
		t.Fatalf("recent: %v, %v", recent, err)
	}
}

func contractReadWaitsAndCancels(t *testing.T, mk contractBus) {
	s := openStore(t)
	b, _ := mk(t, s, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := b.Read(ctx, 0, 10); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Read with nothing to read: %v, want deadline exceeded", err)
	}
	cctx, ccancel := context.WithCancel(context.Background())
	ccancel()
	if _, err := b.Read(cctx, 0, 10); !errors.Is(err, context.Canceled) {
		t.Fatalf("Read with a canceled context: %v, want canceled", err)
	}
	done := make(chan []store.Change)
	go func() {
		cs, _ := b.Read(context.Background(), 0, 10)
		done <- cs
	}()
	time.Sleep(10 * time.Millisecond)
	if err := upsert(s, "t1", "urn:a", 1); err != nil {
		t.Fatal(err)
	}
	select {
	case cs := <-done:
		if len(cs) != 1 || cs[0].ID != "urn:a" || cs[0].Tenant != "t1" || cs[0].Kind != store.EntityCreated {
			t.Fatalf("woken reader got %+v", cs)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a waiting reader was not woken by a commit")
	}
}

func contractTrimmedIsGone(t *testing.T, mk contractBus) {
	s := openStore(t)
	b, forget := mk(t, s, 2)
	for i := range 5 {
		mustUpsert(t, s, "urn:a", float64(i))
	}
	forget(3)
	if err := s.TrimChanges(context.Background(), 3); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Read(context.Background(), 1, 10); !errors.Is(err, store.ErrChangesGone) {
		t.Fatalf("reading trimmed changes: %v, want ErrChangesGone", err)
	}
	cs, err := b.Read(context.Background(), 3, 10)
	if err != nil || len(cs) != 2 || cs[0].Seq != 4 {
		t.Fatalf("after the trimmed ones: %v, %v", cs, err)
	}
}

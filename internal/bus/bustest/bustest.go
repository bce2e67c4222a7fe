// Package bustest is the conformance suite of bus.Bus: what every bus
// (the in-process one, the NATS one) must do, on a real store.
package bustest

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/bus"
	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store"
	"github.com/zenne-city/zenne/internal/store/sqlite"
)

// Maker makes the bus under test on s; forget(upTo) makes the bus's own
// copies of the changes up to upTo go (the store's log is trimmed by the
// test).
type Maker func(t *testing.T, s *sqlite.Store, window int) (b bus.Bus, forget func(upTo uint64))

// Run runs the suite.
func Run(t *testing.T, mk Maker) {
	t.Run("DeliversInOrder", func(t *testing.T) { deliversInOrder(t, mk) })
	t.Run("ReadWaitsAndCancels", func(t *testing.T) { readWaitsAndCancels(t, mk) })
	t.Run("TrimmedIsGone", func(t *testing.T) { trimmedIsGone(t, mk) })
}

func openStore(t testing.TB) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "zenne.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func upsert(s store.Store, tenant, id string, v float64) error {
	e := &ngsild.Entity{ID: id, Types: []string{"https://example.org/T"}, Attrs: map[string][]*ngsild.Attribute{
		"https://example.org/v": {{Kind: ngsild.Property, Value: v}}}}
	res, err := s.Write(context.Background(), tenant, []store.Op{{ID: id, Apply: func(*ngsild.Entity) (*ngsild.Entity, error) { return e, nil }}})
	if err == nil && res[0].Err != nil {
		err = res[0].Err
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", id, err)
	}
	return nil
}

// Readers get every change in commit order, whether they wait for new ones,
// read from memory or (behind the window) from the stream or the log.
func deliversInOrder(t *testing.T, mk Maker) {
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

func readWaitsAndCancels(t *testing.T, mk Maker) {
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

func trimmedIsGone(t *testing.T, mk Maker) {
	s := openStore(t)
	b, forget := mk(t, s, 2)
	for i := range 5 {
		if err := upsert(s, "", "urn:a", float64(i)); err != nil {
			t.Fatal(err)
		}
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

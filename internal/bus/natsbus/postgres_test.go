package natsbus_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/bus/natsbus"
	"github.com/zenne-city/zenne/internal/store"
	"github.com/zenne-city/zenne/internal/store/postgres"
	"github.com/zenne-city/zenne/internal/store/postgres/pgtest"
)

// Two processes' stores on one PostgreSQL database, as two zenne instances
// have them: each store tells its bus only its own commits and its
// LastChange knows only those. Readers on both buses get every change of
// both, once, in order. Needs ZENNE_TEST_POSTGRES too.
func TestPostgresInstances(t *testing.T) {
	name := newStream(t)
	db := pgtest.Database(t)
	open := func() *postgres.Store {
		s, err := postgres.Open(context.Background(), db, postgres.Options{MaxConns: 4})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	s1, s2 := open(), open()
	for i := range 10 { // before any bus: published from the log
		if err := upsert(s1, "", fmt.Sprintf("urn:early:%d", i), 1); err != nil {
			t.Fatal(err)
		}
	}
	a := newBus(t, natsbus.Options{Stream: name, Log: s1})
	b := newBus(t, natsbus.Options{Stream: name, Log: s2})
	if a.Last() != 10 || b.Last() != 10 {
		t.Fatalf("Last: %d and %d, want 10", a.Last(), b.Last())
	}

	const per, writers = 201, 3 // per: a multiple of writers
	total := 10 + 2*per
	var readers sync.WaitGroup
	got := make([][]store.Change, 4)
	for i, bb := range []*natsbus.Bus{a, b, a, b} {
		readers.Go(func() {
			var err error
			if got[i], err = readAllErr(bb, 0, total, []int{1000, 3, 50, 1}[i]); err != nil {
				t.Errorf("reader %d: %v", i, err)
			}
		})
	}
	var wg sync.WaitGroup
	for k, s := range []*postgres.Store{s1, s2} {
		for w := range writers {
			wg.Go(func() {
				for i := range per / writers {
					if err := upsert(s, "t", fmt.Sprintf("urn:i%d:w%d:%d", k, w, i%5), float64(i)); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	readers.Wait()
	if t.Failed() {
		t.FailNow()
	}
	want, err := s1.Changes(context.Background(), 0, total)
	if err != nil || len(want) != total {
		t.Fatalf("log: %d changes, %v", len(want), err)
	}
	for i, cs := range got {
		for j, c := range cs {
			if w := want[j]; c.ID != w.ID || c.Kind != w.Kind || !c.At.Equal(w.At) {
				t.Fatalf("reader %d, change %d: %s %q, want %s %q", i, c.Seq, c.Kind, c.ID, w.Kind, w.ID)
			}
		}
	}
	waitFor(t, "both relays to finish", 10*time.Second, func() bool {
		return a.Durable() == uint64(total) && b.Durable() == uint64(total)
	})
	checkStream(t, jsFor(t), name, s1, 1, uint64(total))
}

package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/store"
)

// RunLeases checks store.Leaser: one holder at a time, renewal, expiry,
// release, and one winner among concurrent takers. open is called twice in
// one test where the backend allows several processes on one store (both
// stores then share the leases); it may return the same store.
func RunLeases(t *testing.T, open func(t *testing.T) store.Leaser) {
	ctx := context.Background()
	t.Run("OneHolder", func(t *testing.T) {
		a, b := open(t), open(t)
		mustLease(t, a, "job", "A", time.Minute, true)
		mustLease(t, b, "job", "B", time.Minute, false)
		mustLease(t, a, "job", "A", time.Minute, true) // renewal
		mustLease(t, b, "other", "B", time.Minute, true)
	})
	t.Run("Expiry", func(t *testing.T) {
		a, b := open(t), open(t)
		mustLease(t, a, "job", "A", 200*time.Millisecond, true)
		mustLease(t, b, "job", "B", time.Minute, false)
		time.Sleep(400 * time.Millisecond)
		mustLease(t, b, "job", "B", time.Minute, true)
		mustLease(t, a, "job", "A", time.Minute, false)
	})
	t.Run("Release", func(t *testing.T) {
		a, b := open(t), open(t)
		mustLease(t, a, "job", "A", time.Minute, true)
		if err := b.ReleaseLease(ctx, "job", "B"); err != nil { // not B's: nothing happens
			t.Fatal(err)
		}
		mustLease(t, b, "job", "B", time.Minute, false)
		if err := a.ReleaseLease(ctx, "job", "A"); err != nil {
			t.Fatal(err)
		}
		mustLease(t, b, "job", "B", time.Minute, true)
	})
	t.Run("ConcurrentTakers", func(t *testing.T) {
		a, b := open(t), open(t)
		for round := range 20 {
			name := "race" + string(rune('a'+round))
			var mu sync.Mutex
			winners := 0
			var wg sync.WaitGroup
			for i := range 8 {
				l := a
				if i%2 == 1 {
					l = b
				}
				wg.Go(func() {
					ok, err := l.Lease(ctx, name, string(rune('A'+i)), time.Minute)
					if err != nil {
						t.Error(err)
						return
					}
					if ok {
						mu.Lock()
						winners++
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			if winners != 1 {
				t.Fatalf("round %d: %d holders of one lease", round, winners)
			}
		}
	})
}

func mustLease(t *testing.T, l store.Leaser, name, holder string, ttl time.Duration, want bool) {
	t.Helper()
	got, err := l.Lease(context.Background(), name, holder, ttl)
	if err != nil {
		t.Fatalf("Lease(%s, %s): %v", name, holder, err)
	}
	if got != want {
		t.Fatalf("Lease(%s, %s) = %v, want %v", name, holder, got, want)
	}
}

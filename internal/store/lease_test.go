package store

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// grantAll is a Leaser that always grants, counting releases.
type grantAll struct {
	mu       sync.Mutex
	released int
}

func (g *grantAll) Lease(context.Context, string, string, time.Duration) (bool, error) {
	return true, nil
}
func (g *grantAll) ReleaseLease(context.Context, string, string) error {
	g.mu.Lock()
	g.released++
	g.mu.Unlock()
	return nil
}

// TestHoldLeaseStartFails: a work that could not start is tried again at
// the next renewal, and only a work that started is stopped (once, final)
// and its lease released when the context ends.
func TestHoldLeaseStartFails(t *testing.T) {
	g := &grantAll{}
	ctx, cancel := context.WithCancel(context.Background())
	var starts, stops int
	var finals []bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		HoldLease(ctx, g, "test", "me", 30*time.Millisecond, slog.New(slog.DiscardHandler), "the test",
			func() bool {
				starts++
				if starts == 2 {
					cancel()
				}
				return starts >= 2 // the first start fails
			},
			func(final bool) { stops++; finals = append(finals, final) })
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("HoldLease did not return after its context ended")
	}
	if starts != 2 || stops != 1 || !finals[0] || g.released != 1 {
		t.Errorf("starts %d, stops %d %v, releases %d; want 2, 1 [true], 1", starts, stops, finals, g.released)
	}
}

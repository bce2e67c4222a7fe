package ratelimit

import (
	"testing"
	"time"
)

// TestBuckets: each key has its own bucket; an empty one says how long
// until a token is back; full buckets are forgotten by the sweep.
func TestBuckets(t *testing.T) {
	b := New(2, 3) // 2 per second, bursts of 3
	now := time.Date(2026, 11, 23, 6, 0, 0, 0, time.UTC)
	for i := range 3 {
		if _, ok := b.Take("a", now); !ok {
			t.Fatalf("take %d within the burst refused", i)
		}
	}
	if d, ok := b.Take("a", now); ok || d != 500*time.Millisecond {
		t.Fatalf("past the burst: %v, %v; want refused for 500ms", d, ok)
	}
	if _, ok := b.Take("b", now); !ok {
		t.Fatal("another key was limited by a's bucket")
	}
	if _, ok := b.Take("a", now.Add(500*time.Millisecond)); !ok {
		t.Fatal("a token did not come back after 500ms")
	}
	b.sweep(now.Add(time.Hour))
	if len(b.m) != 0 {
		t.Errorf("%d buckets kept after every one refilled", len(b.m))
	}
}

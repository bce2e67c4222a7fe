package notify

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/bus"
	"github.com/zenne-city/zenne/internal/notify/endpoint"
	"github.com/zenne-city/zenne/internal/store/sqlite"
)

// TestInstancesShareSubscriptions runs two services on one store and one
// bus, as two zenne instances sharing a database and NATS: only the lease
// holder notifies, so each change is notified once; a subscription created
// or deleted on the other instance takes effect on the holder; when the
// holder stops, the other takes over and delivers what waited, in order.
func TestInstancesShareSubscriptions(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "zenne.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	b := bus.NewLocal(st, 0)
	rcv := newReceiver(t)
	start := func(name string) *Service {
		sender := endpoint.New(endpoint.Options{Timeout: 2 * time.Second})
		t.Cleanup(func() { sender.Close() })
		svc, err := New(ctx, st, b, resolver, sender, Options{Lease: st, Instance: name, LeaseTTL: 3 * time.Second,
			Refresh: 50 * time.Millisecond, RetryMin: 20 * time.Millisecond, RetryMax: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		svc.Start()
		return svc
	}
	a := start("A")
	waitFor(t, "A to take the lease", 5*time.Second, a.active.Load)
	bsvc := start("B")
	defer bsvc.Close()
	h := &harness{t: t, st: st, svc: bsvc, rcv: rcv}

	// Created on B, which does not notify: A picks it up from the store.
	h.subscribe("")
	waitFor(t, "A to see B's subscription", 5*time.Second, func() bool { _, err := a.Get(ctx, "", "urn:s:1"); return err == nil })
	if bsvc.active.Load() {
		t.Fatal("both instances run the subscriptions")
	}
	for i := 1; i <= 20; i++ {
		h.write(i%3, float64(i))
	}
	waitFor(t, "20 notifications", 10*time.Second, func() bool { return len(rcv.got()) >= 20 })

	// A stops with the receiver down: what waits is B's to deliver.
	rcv.down.Store(true)
	for i := 21; i <= 30; i++ {
		h.write(i%3, float64(i))
	}
	waitFor(t, "A to try", 5*time.Second, func() bool { return rcv.calls.Load() > 20 })
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	before, _ := a.Get(ctx, "", "urn:s:1")
	waitFor(t, "B to take over", 10*time.Second, bsvc.active.Load) // A released the lease: at B's next renewal
	rcv.down.Store(false)
	for i := 31; i <= 40; i++ {
		h.write(i%3, float64(i))
	}
	waitFor(t, "40 notifications", 10*time.Second, func() bool { return len(rcv.got()) >= 40 })
	time.Sleep(200 * time.Millisecond)
	if got := rcv.got(); !slices.Equal(got, increasing(40)) {
		t.Fatalf("received %v, want 1..40 once each, in order", got)
	}
	v, err := bsvc.Get(ctx, "", "urn:s:1")
	// B goes on counting from what A saved.
	if err != nil || v.Status.TimesSent <= before.Status.TimesSent || v.Status.TimesFailed < before.Status.TimesFailed || before.Status.TimesFailed == 0 {
		t.Errorf("status after the take-over: %+v (%v); A had %+v", v.Status, err, before.Status)
	}

	// Deleted on a third instance: B stops notifying.
	c := start("C")
	defer c.Close()
	waitFor(t, "C to see the subscription", 5*time.Second, func() bool { _, err := c.Get(ctx, "", "urn:s:1"); return err == nil })
	if err := c.Delete(ctx, "", "urn:s:1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "B to forget the subscription", 5*time.Second, func() bool { _, err := bsvc.Get(ctx, "", "urn:s:1"); return err != nil })
	h.write(1, 41)
	time.Sleep(300 * time.Millisecond)
	if n := len(rcv.got()); n != 40 {
		t.Errorf("%d notifications after the subscription was deleted elsewhere, want 40", n)
	}
}

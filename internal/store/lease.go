package store

import (
	"context"
	"log/slog"
	"time"
)

// Leaser grants named leases, so that work which must run once while
// several zenne instances share one store (the notifier, periodic
// notifications, retention) runs on one instance at a time, and moves to
// another when its holder dies.
type Leaser interface {
	// Lease takes lease name for holder, or renews it, until ttl from now,
	// and reports whether holder has it. A lease whose time has run out
	// can be taken by anyone. Holders renew well before ttl ends (a third
	// of it is usual) and stop the work as soon as Lease says false.
	Lease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
	// ReleaseLease gives lease name up if holder has it, so another
	// instance can take it at once.
	ReleaseLease(ctx context.Context, name, holder string) error
}

// HoldLease takes lease name for holder and renews it every third of ttl
// until ctx ends, running the work while it holds the lease: start when it
// takes it (start reports whether the work began; if not, it is tried
// again at the next renewal), stop(false) when it loses it. A renewal that
// fails (the store cannot be reached) keeps the work running until the
// lease may have run out, two thirds of ttl after the last renewal, since
// no other instance can take it before. When ctx ends, a running work is stopped with
// stop(true) and the lease released, so another instance takes over at
// once. what names the work in log messages.
func HoldLease(ctx context.Context, l Leaser, name, holder string, ttl time.Duration, log *slog.Logger, what string, start func() bool, stop func(final bool)) {
	tick := time.NewTicker(ttl / 3)
	defer tick.Stop()
	running := false
	var renewed time.Time
	for {
		ok, err := l.Lease(ctx, name, holder, ttl)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("renewing a lease failed", "lease", name, "err", err)
			if running && time.Since(renewed) > ttl*2/3 {
				log.Warn("the lease may have run out: another instance takes over "+what, "lease", name)
				stop(false)
				running = false
			}
		case ok:
			renewed = time.Now()
			if !running && start() {
				log.Info("this instance took over "+what, "lease", name, "instance", holder)
				running = true
			}
		case running && err == nil:
			log.Warn("lease lost: another instance takes over "+what, "lease", name)
			stop(false)
			running = false
		}
		select {
		case <-ctx.Done():
			if running {
				stop(true)
				rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				if err := l.ReleaseLease(rctx, name, holder); err != nil {
					log.Warn("releasing a lease failed", "lease", name, "err", err)
				}
				cancel()
			}
			return
		case <-tick.C:
		}
	}
}

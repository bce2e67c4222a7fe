package store

import (
	"context"
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

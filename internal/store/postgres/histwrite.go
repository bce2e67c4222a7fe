package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/zenne-city/zenne/internal/store"
)

// histRecord is what one committed op records in history: the attribute
// instances of one entity (see store.Op: the instances its new state holds
// that its old state did not, or Op.History's instances as given).
type histRecord struct {
	Tenant    int64
	EntityID  string
	Types     []string // expanded
	Instances []store.Recorded
}

// recordHistory stores recs inside tx, the write's transaction, so history
// and current state commit together; at is the commit time (the modifiedAt
// of instances without observedAt is already set by the broker).
func (s *Store) recordHistory(ctx context.Context, tx pgx.Tx, at time.Time, recs []histRecord) error {
	// SEAM: implemented by the history work (hist*.go).
	return nil
}

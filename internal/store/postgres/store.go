// Package postgres is the scale-out backend of the store contract: state,
// history, the change log and the subscription queue in PostgreSQL (with
// PostGIS when the server has it), shared by several zenne instances.
//
// Every instance may write: a write reads its entities with row locks, so
// read-modify-write ops of two instances on one entity never lose an update,
// and numbers its changes from one counter row updated last in the
// transaction, so change numbers follow commit order across instances.
package postgres

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/zenne-city/zenne/internal/store"
)

// Options tune a Store. Zero values take defaults.
type Options struct {
	// MaxConns is the size of the connection pool (default 4*GOMAXPROCS, at least 8).
	MaxConns int
	// MaxBatchOps caps the ops committed in one transaction (default 2000).
	MaxBatchOps int
	// Retention rules for history, as for the embedded store.
	Retention store.Retention
	// SealAfter is how long recorded history stays in its head rows before
	// it is sealed into compressed chunks (default 10 minutes).
	SealAfter time.Duration
}

// Store is a PostgreSQL-backed store.Store.
type Store struct {
	opts Options
	pool *pgxpool.Pool

	tenantsMu sync.RWMutex
	tenants   map[string]int64 // name -> tid, of committed tenants

	quit      chan struct{}
	closeOnce sync.Once
}

// Open connects to the database at url (postgres://...), runs the schema
// migrations it has not run yet and returns the store.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	opts.defaults()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	cfg.MaxConns = int32(opts.MaxConns)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	s := &Store{opts: opts, pool: pool, tenants: map[string]int64{}, quit: make(chan struct{})}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

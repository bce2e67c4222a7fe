package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/zenne-city/zenne/internal/store"
)

// querier is what both the pool and a transaction offer.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Tenants are identified by tid (tenants.tid) in every table but
// subscriptions and the queue, which name them. A tenant is created by the
// write transaction that first stores an entity in it (writer.go), and
// never deleted, so ids are cached once they are known to be committed.

// cachedTenant returns the tid of a tenant this process knows is committed.
func (s *Store) cachedTenant(name string) (int64, bool) {
	s.tenantsMu.RLock()
	tid, ok := s.tenants[name]
	s.tenantsMu.RUnlock()
	return tid, ok
}

func (s *Store) cacheTenant(name string, tid int64) {
	s.tenantsMu.Lock()
	s.tenants[name] = tid
	s.tenantsMu.Unlock()
}

// tenantID returns the id of a committed tenant, store.ErrNoTenant if it
// does not exist. q must not be a transaction that may have created it:
// what it finds is cached.
func (s *Store) tenantID(ctx context.Context, q querier, name string) (int64, error) {
	if tid, ok := s.cachedTenant(name); ok {
		return tid, nil
	}
	var tid int64
	err := q.QueryRow(ctx, `SELECT tid FROM tenants WHERE name = $1`, name).Scan(&tid)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, store.ErrNoTenant
	}
	if err != nil {
		return 0, fmt.Errorf("postgres: tenant %q: %w", name, err)
	}
	s.cacheTenant(name, tid)
	return tid, nil
}

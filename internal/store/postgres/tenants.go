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

// tenantID returns the id of tenant name. With create, a tenant that does
// not exist is created (in q's transaction); without, store.ErrNoTenant.
// Ids are cached: a tenant is never deleted.
func (s *Store) tenantID(ctx context.Context, q querier, name string, create bool) (int64, error) {
	s.tenantsMu.RLock()
	tid, ok := s.tenants[name]
	s.tenantsMu.RUnlock()
	if ok {
		return tid, nil
	}
	err := q.QueryRow(ctx, `SELECT tid FROM tenants WHERE name = $1`, name).Scan(&tid)
	if errors.Is(err, pgx.ErrNoRows) {
		if !create {
			return 0, store.ErrNoTenant
		}
		err = q.QueryRow(ctx, `INSERT INTO tenants (name) VALUES ($1)
			ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING tid`, name).Scan(&tid)
		if err != nil {
			return 0, fmt.Errorf("postgres: creating tenant: %w", err)
		}
		return tid, nil // cached once the creating transaction is known to have committed
	}
	if err != nil {
		return 0, fmt.Errorf("postgres: %w", err)
	}
	s.tenantsMu.Lock()
	s.tenants[name] = tid
	s.tenantsMu.Unlock()
	return tid, nil
}

package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/zenne-city/zenne/internal/store"
)

var _ store.Leaser = (*Store)(nil)

// Lease implements store.Leaser with a row per lease. Expiry is judged by
// the database's clock, so instances whose clocks differ agree on it. The
// row is taken when free, expired or already the holder's, in one
// statement: of several takers at once, one wins.
func (s *Store) Lease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	if err := s.checkOpen(); err != nil {
		return false, err
	}
	var got string
	err := s.pool.QueryRow(ctx, `INSERT INTO leases (name, holder, expires) VALUES ($1, $2, clock_timestamp() + $3 * interval '1 microsecond')
		ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires = EXCLUDED.expires
		WHERE leases.holder = EXCLUDED.holder OR leases.expires < clock_timestamp()
		RETURNING holder`, name, holder, ttl.Microseconds()).Scan(&got)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, s.wrapClosed(fmt.Errorf("postgres: lease %s: %w", name, err))
	}
	return got == holder, nil
}

// ReleaseLease implements store.Leaser.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM leases WHERE name = $1 AND holder = $2`, name, holder); err != nil {
		return s.wrapClosed(fmt.Errorf("postgres: release lease %s: %w", name, err))
	}
	return nil
}

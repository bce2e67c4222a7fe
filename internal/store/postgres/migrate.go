package postgres

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
)

// migration is one versioned schema step. Versions 1-99 are the entity
// store's (schema.go), 100-199 the history store's (histschema.go); each
// runs once, in version order, in its own transaction.
type migration struct {
	version int
	sql     string
}

// migrationLock is the advisory lock key that serializes migrations when
// several instances start at once.
const migrationLock = 0x7a656e6e65 // "zenne"

// migrations returns every migration in version order.
func migrations() []migration {
	all := slices.Concat(coreMigrations, histMigrations)
	slices.SortFunc(all, func(a, b migration) int { return a.version - b.version })
	return all
}

// migrate runs those of all (in version order) the database has not run.
func (s *Store) migrate(ctx context.Context, all []migration) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrationLock); err != nil {
		return fmt.Errorf("postgres: taking the migration lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrationLock)
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	done := map[int]bool{}
	rows, err := conn.Query(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	vs, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	for _, v := range vs {
		done[v] = true
	}
	if len(vs) > 0 && slices.Max(vs) > all[len(all)-1].version {
		return fmt.Errorf("postgres: the database has schema version %d, newer than this zenne knows (%d): upgrade zenne", slices.Max(vs), all[len(all)-1].version)
	}
	for _, m := range all {
		if done[m.version] {
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, m.version)
			return err
		})
		if err != nil {
			return fmt.Errorf("postgres: schema migration %d: %w", m.version, err)
		}
	}
	return nil
}

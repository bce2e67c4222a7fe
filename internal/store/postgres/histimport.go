package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/zenne-city/zenne/internal/store"
	"github.com/zenne-city/zenne/internal/store/histcore"
	"github.com/zenne-city/zenne/internal/tsz"
)

// ImportHistory adds instances straight into chunks, in one transaction
// (see store.HistoryImporter): an instance a day already holds with the
// same time, value and metadata is skipped, so an import can be run again.
// Instances without observedAt are recorded at their modifiedAt, or now. A
// tenant that does not exist is created.
func (s *Store) ImportHistory(ctx context.Context, tenant string, recs []store.ImportRecord) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if len(recs) == 0 {
		return nil
	}
	ents, err := histcore.GroupImport(recs, time.Now().UTC())
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	tid, err := s.tenantID(ctx, s.pool, tenant)
	create := errors.Is(err, store.ErrNoTenant)
	if err != nil && !create {
		return s.wrapClosed(err)
	}
	if err := s.importTx(ctx, tenant, create, tid, ents); err != nil {
		return s.wrapClosed(fmt.Errorf("postgres: importing history: %w", err))
	}
	return nil
}

// importTx is ImportHistory's transaction.
func (s *Store) importTx(ctx context.Context, tenant string, create bool, tid int64, ents []*histcore.ImportEntity) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if create {
			if err := tx.QueryRow(ctx, `INSERT INTO tenants (name) VALUES ($1)
				ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING tid`, tenant).Scan(&tid); err != nil {
				return fmt.Errorf("creating tenant %q: %w", tenant, err)
			}
		}
		keys := make([]entKey, len(ents))
		types := make(map[entKey][]string, len(ents))
		for i, e := range ents {
			keys[i] = entKey{tid, e.ID}
			types[keys[i]] = e.Types
		}
		if err := lockEntities(ctx, tx, keys); err != nil {
			return err
		}
		hids, err := historyEntities(ctx, tx, types, true)
		if err != nil {
			return err
		}
		bySeries := map[seriesRow][]tsz.Sample{}
		for _, e := range ents {
			hid := hids[entKey{tid, e.ID}]
			for k, samples := range e.Series {
				bySeries[seriesRow{hid, k.Name, k.Dataset}] = samples
			}
		}
		sids, err := seriesIDs(ctx, tx, bySeries)
		if err != nil {
			return err
		}
		add := map[dayKey][]tsz.Sample{}
		for k, samples := range bySeries {
			histcore.ByDay(samples, func(day int64, run []tsz.Sample) error {
				add[dayKey{sids[k], day}] = run
				return nil
			})
		}
		return mergeDays(ctx, tx, add, true)
	})
}

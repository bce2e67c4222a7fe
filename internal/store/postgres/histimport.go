package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
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
	now := time.Now().UTC()
	type pending struct {
		types []string
		by    map[seriesKey][]tsz.Sample
	}
	// Encoding is most of the work: done before the transaction.
	byEnt := map[string]*pending{}
	var order []string
	for i := range recs {
		r := &recs[i]
		p := byEnt[r.EntityID]
		if p == nil {
			p = &pending{by: map[seriesKey][]tsz.Sample{}}
			byEnt[r.EntityID] = p
			order = append(order, r.EntityID)
		}
		if len(r.Types) > 0 {
			p.types = r.Types
		}
		smp, err := histcore.SampleOf(r.Attr, now)
		if err != nil {
			return fmt.Errorf("postgres: import %s %s: %w", r.EntityID, r.Name, err)
		}
		k := seriesKey{Name: r.Name, Dataset: r.Attr.DatasetID}
		p.by[k] = append(p.by[k], smp)
	}
	tid, err := s.tenantID(ctx, s.pool, tenant)
	create := errors.Is(err, store.ErrNoTenant)
	if err != nil && !create {
		return s.wrapClosed(err)
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if create {
			if err := tx.QueryRow(ctx, `INSERT INTO tenants (name) VALUES ($1)
				ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING tid`, tenant).Scan(&tid); err != nil {
				return fmt.Errorf("creating tenant %q: %w", tenant, err)
			}
		}
		keys := make([]entKey, len(order))
		types := make(map[entKey][]string, len(order))
		for i, id := range order {
			keys[i] = entKey{tid, id}
			types[keys[i]] = byEnt[id].types
		}
		if err := lockEntities(ctx, tx, keys); err != nil {
			return err
		}
		hids, err := historyEntities(ctx, tx, types, true)
		if err != nil {
			return err
		}
		bySeries := map[seriesRow][]tsz.Sample{}
		for _, id := range order {
			hid := hids[entKey{tid, id}]
			for k, samples := range byEnt[id].by {
				bySeries[seriesRow{hid, k.Name, k.Dataset}] = samples
			}
		}
		sids, err := seriesIDs(ctx, tx, bySeries)
		if err != nil {
			return err
		}
		add := map[dayKey][]tsz.Sample{}
		for k, samples := range bySeries {
			slices.SortStableFunc(samples, func(a, b tsz.Sample) int { return cmp.Compare(a.T, b.T) })
			for len(samples) > 0 {
				day := histcore.DayOf(samples[0].T)
				n := 1
				for n < len(samples) && histcore.DayOf(samples[n].T) == day {
					n++
				}
				add[dayKey{sids[k], day}] = samples[:n:n]
				samples = samples[n:]
			}
		}
		return mergeDays(ctx, tx, add, true)
	})
	if err != nil {
		return s.wrapClosed(fmt.Errorf("postgres: importing history: %w", err))
	}
	return nil
}

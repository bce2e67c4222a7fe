package sqlite

import (
	"context"
	"errors"
	"fmt"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store"
	"github.com/zenne-city/zenne/internal/store/codec"
)

var _ store.Exporter = (*Store)(nil)

// ExportEntities implements store.Exporter: the tenant's rows in creation
// (rowid) order, read in pages so no read transaction stays open for long.
func (s *Store) ExportEntities(ctx context.Context, tenant string, f func(*ngsild.Entity) error) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	tid, ok := s.tenantID(tenant)
	if !ok {
		return nil
	}
	const page = 1000
	after := int64(0)
	for {
		rows, err := s.rdb.QueryContext(ctx, `SELECT eid, doc FROM entities WHERE tid = ? AND eid > ? ORDER BY eid LIMIT ?`, tid, after, page)
		if err != nil {
			return fmt.Errorf("export entities: %w", err)
		}
		var ents []*ngsild.Entity
		for rows.Next() {
			var doc []byte
			if err := rows.Scan(&after, &doc); err != nil {
				rows.Close()
				return fmt.Errorf("export entities: %w", err)
			}
			e, err := codec.DecodeEntity(doc)
			if err != nil {
				rows.Close()
				return fmt.Errorf("export entities: entity row %d: %w", after, err)
			}
			ents = append(ents, e)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("export entities: %w", err)
		}
		for _, e := range ents {
			if err := f(e); err != nil {
				return err
			}
		}
		if len(ents) < page {
			return nil
		}
	}
}

// HistoryEntityIDs implements store.Exporter: entities with sealed history
// and those with head records only.
func (s *Store) HistoryEntityIDs(ctx context.Context, tenant string) ([]string, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	tid, ok := s.tenantID(tenant)
	if !ok {
		return nil, nil
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT id FROM h_entities WHERE tid = ? UNION SELECT id FROM h_head WHERE tid = ? ORDER BY 1`, tid, tid)
	if err != nil {
		return nil, fmt.Errorf("history entities: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("history entities: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil && !errors.Is(err, context.Canceled) {
		return nil, fmt.Errorf("history entities: %w", err)
	}
	return ids, rows.Err()
}

package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store"
	"github.com/zenne-city/zenne/internal/store/codec"
)

var _ store.Exporter = (*Store)(nil)

// ExportEntities implements store.Exporter: the tenant's entities in
// creation order, a page per statement (keyset paging on the creation
// key), so no statement or snapshot lasts long.
func (s *Store) ExportEntities(ctx context.Context, tenant string, f func(*ngsild.Entity) error) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	tid, err := s.tenantID(ctx, s.pool, tenant)
	if errors.Is(err, store.ErrNoTenant) {
		return nil
	}
	if err != nil {
		return s.wrapClosed(err)
	}
	const page = 1000
	after := int64(-1 << 63)
	for {
		rows, err := s.pool.Query(ctx, `SELECT eid, doc FROM entities WHERE tid = $1 AND eid > $2 ORDER BY eid LIMIT $3`, tid, after, page)
		if err != nil {
			return s.wrapClosed(fmt.Errorf("postgres: export entities: %w", err))
		}
		var ents []*ngsild.Entity
		for rows.Next() {
			var doc []byte
			if err := scanDoc(rows, &doc, &after); err != nil {
				rows.Close()
				return fmt.Errorf("postgres: export entities: %w", err)
			}
			e, err := codec.DecodeEntity(doc)
			if err != nil {
				rows.Close()
				return fmt.Errorf("postgres: export entities: entity %d: %w", after, err)
			}
			ents = append(ents, e)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return s.wrapClosed(fmt.Errorf("postgres: export entities: %w", err))
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

package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/zenne-city/zenne/internal/store"
	"github.com/zenne-city/zenne/internal/store/histcore"
	"github.com/zenne-city/zenne/internal/tsz"
)

var _ store.HistoryImporter = (*Store)(nil)

// ImportHistory adds instances straight into chunks, in one transaction on
// the writer (see store.HistoryImporter). Instances without observedAt are
// recorded at their modifiedAt, or now.
func (s *Store) ImportHistory(ctx context.Context, tenant string, recs []store.ImportRecord) error {
	if len(recs) == 0 {
		return s.checkOpen()
	}
	ents, err := histcore.GroupImport(recs, time.Now().UTC())
	if err != nil {
		return err
	}
	return s.do(ctx, func(ctx context.Context, c *sql.Conn) error {
		// The writer's dictionaries intern new tenants and names (c is the
		// writer's connection); they are published once committed.
		t := &tx{w: s.w, ctx: ctx, tenants: map[string]int64{}, names: map[string]int64{}}
		err := inTx(ctx, c, func() error {
			tid, err := t.tenantID(tenant)
			if err != nil {
				return err
			}
			for _, e := range ents {
				types := make([]int64, len(e.Types))
				for i, typ := range e.Types {
					if types[i], err = t.nameID(typ); err != nil {
						return err
					}
				}
				hid, err := historyEntity(ctx, c, tid, e.ID, types)
				if err != nil {
					return err
				}
				for k, samples := range e.Series {
					nid, err := t.nameID(k.Name)
					if err != nil {
						return err
					}
					sid, err := seriesID(ctx, c, hid, nid, k.Dataset)
					if err != nil {
						return err
					}
					if err := histcore.ByDay(samples, func(day int64, run []tsz.Sample) error {
						return mergeChunk(ctx, c, sid, day, run, true)
					}); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		if len(t.tenants) > 0 || len(t.names) > 0 {
			s.mu.Lock()
			for k, v := range t.tenants {
				s.tenants[k] = v
			}
			for k, v := range t.names {
				s.names[k] = v
				s.nameOf[v] = k
			}
			s.mu.Unlock()
		}
		return nil
	})
}

// historyEntity returns the hid of an entity with sealed history, adding it
// with these types if it has none yet (an entity's types there are kept
// otherwise: sealing updates them from live writes).
func historyEntity(ctx context.Context, c *sql.Conn, tid int64, id string, types []int64) (int64, error) {
	var hid int64
	err := c.QueryRowContext(ctx, `INSERT INTO h_entities (tid, id, types) VALUES (?, ?, ?)
		ON CONFLICT (tid, id) DO UPDATE SET types = CASE WHEN length(excluded.types) > 1 AND length(h_entities.types) <= 1 THEN excluded.types ELSE h_entities.types END
		RETURNING hid`, tid, id, encodeNids(types)).Scan(&hid)
	if err != nil {
		return 0, fmt.Errorf("history entity %s: %w", id, err)
	}
	return hid, nil
}

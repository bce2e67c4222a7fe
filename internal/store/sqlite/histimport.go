package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
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
	now := time.Now().UTC()
	type ser struct{ name, ds string }
	type pending struct {
		types []string
		by    map[ser][]tsz.Sample
	}
	// Encoding is the bulk of the work: do it here, not on the writer.
	byEnt := map[string]*pending{}
	var order []string
	for i := range recs {
		r := &recs[i]
		p := byEnt[r.EntityID]
		if p == nil {
			p = &pending{by: map[ser][]tsz.Sample{}}
			byEnt[r.EntityID] = p
			order = append(order, r.EntityID)
		}
		if len(r.Types) > 0 {
			p.types = r.Types
		}
		smp, err := histcore.SampleOf(r.Attr, now)
		if err != nil {
			return fmt.Errorf("import %s %s: %w", r.EntityID, r.Name, err)
		}
		k := ser{r.Name, r.Attr.DatasetID}
		p.by[k] = append(p.by[k], smp)
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
			for _, id := range order {
				p := byEnt[id]
				types := make([]int64, len(p.types))
				for i, typ := range p.types {
					if types[i], err = t.nameID(typ); err != nil {
						return err
					}
				}
				hid, err := historyEntity(ctx, c, tid, id, types)
				if err != nil {
					return err
				}
				for k, samples := range p.by {
					nid, err := t.nameID(k.name)
					if err != nil {
						return err
					}
					sid, err := seriesID(ctx, c, hid, nid, k.ds)
					if err != nil {
						return err
					}
					slices.SortStableFunc(samples, func(a, b tsz.Sample) int { return cmp.Compare(a.T, b.T) })
					for len(samples) > 0 {
						day := histcore.DayOf(samples[0].T)
						n := 1
						for n < len(samples) && histcore.DayOf(samples[n].T) == day {
							n++
						}
						if err := mergeChunk(ctx, c, sid, day, samples[:n], true); err != nil {
							return err
						}
						samples = samples[n:]
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

package histimport

import (
	"context"
	"slices"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store"
)

// opsPerWrite is how many entities one store write creates.
const opsPerWrite = 1000

// createCurrent gives every entity of the file that has no current state
// one made of the latest instance of each of its attributes (and
// datasetIds), so that queries and the map find it. An entity that exists
// is left as it is, and nothing is recorded in history again (the op's
// History is empty). It returns how many entities it created.
func createCurrent(ctx context.Context, st Store, tenant string, n *names, now time.Time) (int, error) {
	ids := make([]string, 0, len(n.entities))
	for id, e := range n.entities {
		if len(e.latest) > 0 && len(e.types) > 0 {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	created := 0
	for len(ids) > 0 {
		chunk := ids[:min(opsPerWrite, len(ids))]
		ids = ids[len(chunk):]
		ops := make([]store.Op, len(chunk))
		for i, id := range chunk {
			e := currentOf(n.entities[id], now)
			ops[i] = store.Op{
				ID:      id,
				History: &store.HistoryWrite{},
				Apply: func(cur *ngsild.Entity) (*ngsild.Entity, error) {
					if cur != nil {
						return cur, nil
					}
					return e, nil
				},
			}
		}
		res, err := st.Write(ctx, tenant, ops)
		if err != nil {
			return created, err
		}
		for _, r := range res {
			if r.Err != nil {
				return created, r.Err
			}
			if r.Before == nil && r.After != nil {
				created++
			}
		}
	}
	return created, nil
}

// currentOf is the current state an entity gets from its latest instances.
func currentOf(e *entity, now time.Time) *ngsild.Entity {
	out := &ngsild.Entity{ID: e.id, Types: slices.Clone(e.types), CreatedAt: now, ModifiedAt: now,
		Attrs: make(map[string][]*ngsild.Attribute, len(e.latest))}
	for i := range e.latest {
		l := &e.latest[i]
		a := l.attr
		a.CreatedAt, a.ModifiedAt = now, now
		out.Attrs[l.name] = append(out.Attrs[l.name], &a)
	}
	return out
}

package core

import (
	"context"
	"reflect"
	"sort"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store"
)

// BatchError reports one entity a batch operation could not handle.
type BatchError struct {
	EntityID string
	Err      *ngsild.Error
}

// BatchResult is the outcome of a batch operation (BatchOperationResult).
type BatchResult struct {
	Success []string // ids handled
	Created []string // ids created (create and upsert)
	Errors  []BatchError
}

// BatchCreate creates every entity that does not exist yet.
func (b *Broker) BatchCreate(ctx context.Context, tenant string, entities []*ngsild.Entity) (*BatchResult, error) {
	ops := make([]store.Op, len(entities))
	for i, e := range entities {
		ops[i] = store.Op{ID: e.ID, Apply: b.createFn(e)}
	}
	return b.batch(ctx, tenant, ops)
}

// BatchUpsert creates missing entities and, for existing ones, replaces them
// (replace) or adds and overwrites their attributes (update).
func (b *Broker) BatchUpsert(ctx context.Context, tenant string, entities []*ngsild.Entity, update bool) (*BatchResult, error) {
	ops := make([]store.Op, len(entities))
	for i, e := range entities {
		if !update {
			ops[i] = store.Op{ID: e.ID, Apply: b.replaceFn(e.ID, e, true)}
			continue
		}
		fresh := b.created(e)
		ops[i] = store.Op{ID: e.ID, Apply: func(cur *ngsild.Entity) (*ngsild.Entity, error) {
			if cur == nil {
				return fresh, nil
			}
			next, _ := b.appendFn(cur, e, false)
			return next, nil
		}}
	}
	return b.batch(ctx, tenant, ops)
}

// BatchUpdate adds and overwrites (or, with noOverwrite, only adds)
// attributes of existing entities.
func (b *Broker) BatchUpdate(ctx context.Context, tenant string, entities []*ngsild.Entity, noOverwrite bool) (*BatchResult, error) {
	ops := make([]store.Op, len(entities))
	for i, e := range entities {
		ops[i] = store.Op{ID: e.ID, Apply: func(cur *ngsild.Entity) (*ngsild.Entity, error) {
			if cur == nil {
				return nil, notFound(e.ID)
			}
			next, _ := b.appendFn(cur, e, noOverwrite)
			return next, nil
		}}
	}
	return b.batch(ctx, tenant, ops)
}

// BatchMerge merges each fragment into its existing entity.
func (b *Broker) BatchMerge(ctx context.Context, tenant string, entities []*ngsild.Entity) (*BatchResult, error) {
	ops := make([]store.Op, len(entities))
	for i, e := range entities {
		ops[i] = store.Op{ID: e.ID, Apply: b.mergeFn(e.ID, e)}
	}
	return b.batch(ctx, tenant, ops)
}

// BatchDelete deletes the entities with the given ids.
func (b *Broker) BatchDelete(ctx context.Context, tenant string, ids []string) (*BatchResult, error) {
	ops := make([]store.Op, len(ids))
	for i, id := range ids {
		ops[i] = store.Op{ID: id, Apply: deleteFn(id)}
	}
	return b.batch(ctx, tenant, ops)
}

func (b *Broker) batch(ctx context.Context, tenant string, ops []store.Op) (*BatchResult, error) {
	checkTypes(ctx, ops)
	results, err := b.store.Write(ctx, tenant, ops)
	if err != nil {
		return nil, err
	}
	out := &BatchResult{}
	for _, r := range results {
		if r.Err != nil {
			out.Errors = append(out.Errors, BatchError{EntityID: r.ID, Err: ngsild.AsError(r.Err)})
			continue
		}
		out.Success = append(out.Success, r.ID)
		if r.Before == nil && r.After != nil {
			out.Created = append(out.Created, r.ID)
		}
	}
	return out, nil
}

// Query returns the entities matching q.
func (b *Broker) Query(ctx context.Context, tenant string, q *store.Query) (*store.QueryResult, error) {
	res, err := b.store.Query(ctx, tenant, q)
	return res, mapErr(err, "")
}

// Types describes the entity types of a tenant.
func (b *Broker) Types(ctx context.Context, tenant string) ([]store.TypeInfo, error) {
	ts, err := b.store.Types(ctx, tenant)
	return ts, mapErr(err, "")
}

// Attributes describes the attributes of a tenant.
func (b *Broker) Attributes(ctx context.Context, tenant string) ([]store.AttributeInfo, error) {
	as, err := b.store.Attributes(ctx, tenant)
	return as, mapErr(err, "")
}

func sortedNames(m map[string][]*ngsild.Attribute) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Measurement is a device's reading of one entity (internal/ingest).
// Reading's attributes are written as an append would write them; Static's
// (a device's location, address, owner) only where the entity lacks them or
// holds another value, so that a reading does not rewrite them, nor record
// them in history again, every time.
type Measurement struct {
	Reading *ngsild.Entity // id, type and the attributes read
	Static  map[string][]*ngsild.Attribute
}

// BatchMeasure writes measurements, creating the entities that do not exist
// (with the static attributes), in one store write.
func (b *Broker) BatchMeasure(ctx context.Context, tenant string, ms []Measurement) (*BatchResult, error) {
	ops := make([]store.Op, len(ms))
	for i, m := range ms {
		full := m.Reading.Derive()
		for name, insts := range m.Static {
			if _, read := full.Attrs[name]; !read {
				full.Attrs[name] = insts
			}
		}
		fresh := b.created(full)
		ops[i] = store.Op{ID: m.Reading.ID, Apply: func(cur *ngsild.Entity) (*ngsild.Entity, error) {
			if cur == nil {
				return fresh, nil
			}
			frag := m.Reading
			for name, insts := range m.Static {
				if _, read := frag.Attrs[name]; read || sameInstances(cur.Attrs[name], insts) {
					continue
				}
				if frag == m.Reading {
					frag = m.Reading.Derive()
				}
				frag.Attrs[name] = insts
			}
			next, _ := b.appendFn(cur, frag, false)
			return next, nil
		}}
	}
	return b.batch(ctx, tenant, ops)
}

// sameInstances reports whether stored instances hold the kinds, values,
// unit codes and datasetIds of want (system times aside).
func sameInstances(have, want []*ngsild.Attribute) bool {
	if len(have) != len(want) {
		return false
	}
	for i, w := range want {
		h := have[i]
		if h == nil || w == nil || h.Kind != w.Kind || h.DatasetID != w.DatasetID || h.UnitCode != w.UnitCode ||
			len(h.Sub) > 0 || len(w.Sub) > 0 || !reflect.DeepEqual(h.Value, w.Value) {
			return false // sub-attributes carry system times: written again
		}
	}
	return true
}

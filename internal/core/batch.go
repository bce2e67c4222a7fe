package core

import (
	"context"
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

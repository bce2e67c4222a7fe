package core

import (
	"context"
	"errors"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/ngsild/temporal"
	"github.com/zenne-city/zenne/internal/store"
)

// Temporal is the temporal evolution of one entity: its instances, or with
// an aggregation, its aggregated series (Entity then has no instances).
type Temporal struct {
	Entity *temporal.Entity
	Series []temporal.Series
}

// TemporalEntity returns the temporal evolution of one entity: the recorded
// instances of its attributes (attrs, expanded; all when empty) that q
// selects, or their aggregation when agg is not nil. Its types, scopes and
// system times are those of the current entity when it exists (history
// keeps the history of deleted entities too).
func (b *Broker) TemporalEntity(ctx context.Context, tenant, id string, attrs []string, q *temporal.Query, agg *temporal.Aggregation) (*Temporal, error) {
	t, err := b.history(ctx, tenant, id, attrs, q, agg)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, ngsild.Errorf(ngsild.ResourceNotFound, "entity %s has no recorded history%s", id, attrsNote(attrs))
		}
		return nil, mapErr(err, id)
	}
	if len(attrs) > 0 && len(t.Entity.Attrs) == 0 && len(t.Series) == 0 {
		// None of attrs has an instance in q's window. Whether that is an
		// empty window (200) or attributes the entity never had (404, as
		// for attribute names no entity has ever used) must not depend on
		// q: look at the whole history, one instance per series.
		h, err := b.store.EntityHistory(ctx, tenant, id, attrs, &temporal.Query{LastN: 1})
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, mapErr(err, id)
		}
		if err != nil || len(h.Attrs) == 0 {
			return nil, ngsild.Errorf(ngsild.ResourceNotFound, "entity %s has no recorded history%s", id, attrsNote(attrs))
		}
	}
	if cur, err := b.store.Get(ctx, tenant, id); err == nil {
		withCurrent(t.Entity, cur)
	}
	return t, nil
}

func (b *Broker) history(ctx context.Context, tenant, id string, attrs []string, q *temporal.Query, agg *temporal.Aggregation) (*Temporal, error) {
	if agg == nil {
		h, err := b.store.EntityHistory(ctx, tenant, id, attrs, q)
		if err != nil {
			return nil, err
		}
		return &Temporal{Entity: h}, nil
	}
	h, series, err := b.store.AggregateHistory(ctx, tenant, id, attrs, q, agg.Methods, agg.Period)
	if err != nil {
		return nil, err
	}
	return &Temporal{Entity: h, Series: series}, nil
}

func attrsNote(attrs []string) string {
	if len(attrs) == 0 {
		return ""
	}
	return " for the attributes asked for"
}

func withCurrent(h *temporal.Entity, cur *ngsild.Entity) {
	h.Types, h.Scopes = cur.Types, cur.Scopes
	h.CreatedAt, h.ModifiedAt = cur.CreatedAt, cur.ModifiedAt
}

// TemporalQuery selects entities by their current state with sel (type, id,
// idPattern, q, geo-query, scopeQ, pagination) and returns the temporal
// evolution of each entity of the page (see TemporalEntity); an entity with
// no instances that q selects comes with no attributes.
func (b *Broker) TemporalQuery(ctx context.Context, tenant string, sel *store.Query, attrs []string, q *temporal.Query, agg *temporal.Aggregation) ([]*Temporal, int, error) {
	res, err := b.store.Query(ctx, tenant, sel)
	if err != nil {
		return nil, 0, mapErr(err, "")
	}
	ids := make([]string, len(res.Entities))
	for i, e := range res.Entities {
		ids[i] = e.ID
	}
	out := make([]*Temporal, len(res.Entities))
	if agg == nil {
		hs, err := b.store.EntityHistories(ctx, tenant, ids, attrs, q)
		if err != nil {
			return nil, 0, mapErr(err, "")
		}
		for i, h := range hs {
			if h != nil {
				out[i] = &Temporal{Entity: h}
			}
		}
	} else {
		hs, err := b.store.AggregateHistories(ctx, tenant, ids, attrs, q, agg.Methods, agg.Period)
		if err != nil {
			return nil, 0, mapErr(err, "")
		}
		for i, h := range hs {
			if h != nil {
				out[i] = &Temporal{Entity: h.Entity, Series: h.Series}
			}
		}
	}
	for i, e := range res.Entities {
		if out[i] == nil { // no history: the entity without attributes
			out[i] = &Temporal{Entity: &temporal.Entity{ID: e.ID, Attrs: map[string][]temporal.Instance{}}}
		}
		withCurrent(out[i].Entity, e)
	}
	return out, res.Count, nil
}

// RecordHistory adds instances to an entity's history with their own times
// (the temporal API's provisioning; each instance must have observedAt).
// An entity that does not exist is created from the latest instance of each
// attribute and datasetId, so queries and the map find it; an existing
// entity's current state is left as it is. It reports whether the entity
// was created.
func (b *Broker) RecordHistory(ctx context.Context, tenant, id string, types []string, attrs map[string][]*ngsild.Attribute) (created bool, err error) {
	now := b.now().UTC()
	var recs []store.Recorded
	latest := &ngsild.Entity{ID: id, Types: types, CreatedAt: now, ModifiedAt: now, Attrs: map[string][]*ngsild.Attribute{}}
	for _, name := range sortedNames(attrs) {
		for _, a := range attrs[name] {
			if a.ObservedAt.IsZero() {
				return false, ngsild.Errorf(ngsild.BadRequestData, "an instance of %s has no observedAt: every instance added to history needs its time", name)
			}
			a = a.Clone()
			a.CreatedAt, a.ModifiedAt = now, now
			recs = append(recs, store.Recorded{Name: name, Attr: a})
			if old := latest.Instance(name, a.DatasetID); old == nil || a.ObservedAt.After(old.ObservedAt) {
				setInstance(latest, name, a)
			}
		}
	}
	if len(recs) == 0 {
		return false, ngsild.Errorf(ngsild.BadRequestData, "no attribute instances to add")
	}
	op := store.Op{
		ID:      id,
		History: &store.HistoryWrite{Types: types, Instances: recs},
		Apply: func(cur *ngsild.Entity) (*ngsild.Entity, error) {
			if cur != nil {
				return cur, nil
			}
			if len(types) == 0 {
				return nil, ngsild.Errorf(ngsild.ResourceNotFound, "entity %s not found: create it with POST /temporal/entities, with its type", id)
			}
			return latest, nil
		},
	}
	// b.write reports NonexistentTenant for a missing entity of a tenant
	// that does not exist, as the other single-entity operations do.
	res, err := b.write(ctx, tenant, op)
	if err != nil {
		return false, err
	}
	return res.Before == nil, nil
}

// DeleteHistory deletes recorded instances of an entity (see
// store.HistorySelector).
func (b *Broker) DeleteHistory(ctx context.Context, tenant, id string, sel store.HistorySelector) error {
	if err := b.checkStored(ctx, tenant, id); err != nil {
		return err
	}
	err := b.store.DeleteHistory(ctx, tenant, id, sel)
	if errors.Is(err, store.ErrNotFound) {
		switch {
		case sel.InstanceID != "":
			return ngsild.Errorf(ngsild.ResourceNotFound, "entity %s has no instance %s of %s", id, sel.InstanceID, sel.Attr)
		case sel.Attr != "":
			return ngsild.Errorf(ngsild.ResourceNotFound, "entity %s has no recorded history of %s", id, sel.Attr)
		}
		return ngsild.Errorf(ngsild.ResourceNotFound, "entity %s has no recorded history", id)
	}
	return mapErr(err, id)
}

// ReplaceInstance replaces one recorded instance, which keeps its time.
func (b *Broker) ReplaceInstance(ctx context.Context, tenant, id, attr, instanceID string, a *ngsild.Attribute) error {
	a = a.Clone()
	now := b.now().UTC()
	a.CreatedAt = now
	if err := b.checkStored(ctx, tenant, id); err != nil {
		return err
	}
	err := b.store.ReplaceInstance(ctx, tenant, id, attr, instanceID, a)
	if errors.Is(err, store.ErrNotFound) {
		return ngsild.Errorf(ngsild.ResourceNotFound, "entity %s has no instance %s of %s", id, instanceID, attr)
	}
	if err != nil {
		return mapErr(err, id)
	}
	return nil
}

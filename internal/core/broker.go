// Package core is the NGSI-LD broker: the operations of ETSI GS CIM 009 on
// entities (create, retrieve, update, merge, replace, delete, batch, query,
// discovery) as a plain Go API over a store.Store. Transports (the HTTP
// NGSI-LD API, later MQTT ingest and the console) are thin clients of it.
//
// All names are expanded IRIs; requests are parsed and responses compacted at
// the transport.
package core

import (
	"context"
	"errors"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store"
)

// Broker performs NGSI-LD operations on a store.
type Broker struct {
	store store.Store
	now   func() time.Time
}

// Options configure a Broker.
type Options struct {
	// Now returns the current time (tests pin it); defaults to time.Now.
	Now func() time.Time
}

// New returns a broker over s.
func New(s store.Store, opts Options) *Broker {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Broker{store: s, now: opts.Now}
}

// Store returns the broker's store (for readiness checks and discovery).
func (b *Broker) Store() store.Store { return b.store }

// mapErr turns store errors into NGSI-LD errors.
func mapErr(err error, id string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		return ngsild.Errorf(ngsild.ResourceNotFound, "entity %s not found", id)
	case errors.Is(err, store.ErrNoTenant):
		return ngsild.Errorf(ngsild.NonexistentTenant, "the tenant does not exist")
	}
	return err
}

// write runs one op and returns its result. A store creates a tenant only
// when a write stores an entity, so an op that did not find its entity may
// have been aimed at a tenant that does not exist: that is reported as
// NonexistentTenant. Only this error path asks the store about tenants.
func (b *Broker) write(ctx context.Context, tenant string, op store.Op) (store.Result, error) {
	ops := []store.Op{op}
	checkTypes(ctx, ops)
	res, err := b.store.Write(ctx, tenant, ops)
	if err != nil {
		return store.Result{}, err
	}
	if ngsild.IsType(res[0].Err, ngsild.ResourceNotFound) && tenant != store.DefaultTenant {
		// Get tells a missing tenant apart (ErrNoTenant); on any other
		// answer the entity's own error stands.
		if _, err := b.store.Get(ctx, tenant, op.ID); errors.Is(err, store.ErrNoTenant) {
			return res[0], mapErr(store.ErrNoTenant, op.ID)
		}
	}
	return res[0], res[0].Err
}

// CreateEntity stores a new entity; AlreadyExists if the id is taken.
func (b *Broker) CreateEntity(ctx context.Context, tenant string, e *ngsild.Entity) error {
	_, err := b.write(ctx, tenant, store.Op{ID: e.ID, Apply: b.createFn(e)})
	return err
}

func (b *Broker) createFn(e *ngsild.Entity) func(*ngsild.Entity) (*ngsild.Entity, error) {
	next := b.created(e)
	return func(cur *ngsild.Entity) (*ngsild.Entity, error) {
		if cur != nil {
			return nil, ngsild.Errorf(ngsild.AlreadyExists, "entity %s already exists", e.ID)
		}
		return next, nil
	}
}

// created returns e as stored when created now. Create, replace and upsert
// build it in the caller's goroutine, before the write, not in Apply: the
// store runs every Apply on its one writer goroutine. Apply may return the
// same value each time it is called, since stored entities are never changed.
func (b *Broker) created(e *ngsild.Entity) *ngsild.Entity {
	next := e.Clone()
	now := b.now().UTC()
	next.CreatedAt, next.ModifiedAt = now, now
	for _, insts := range next.Attrs {
		for _, a := range insts {
			stampNew(a, now)
		}
	}
	return next
}

// Entity returns the entity with the given id.
func (b *Broker) Entity(ctx context.Context, tenant, id string) (*ngsild.Entity, error) {
	e, err := b.store.Get(ctx, tenant, id)
	return e, mapErr(err, id)
}

// DeleteEntity removes an entity.
func (b *Broker) DeleteEntity(ctx context.Context, tenant, id string) error {
	_, err := b.write(ctx, tenant, store.Op{ID: id, Apply: deleteFn(id)})
	return err
}

func deleteFn(id string) func(*ngsild.Entity) (*ngsild.Entity, error) {
	return func(cur *ngsild.Entity) (*ngsild.Entity, error) {
		if cur == nil {
			return nil, notFound(id)
		}
		return nil, nil
	}
}

func notFound(id string) error {
	return ngsild.Errorf(ngsild.ResourceNotFound, "entity %s not found", id)
}

// NotUpdated names an attribute an update left alone, and why.
type NotUpdated struct {
	Name   string // expanded
	Reason string
}

// UpdateResult is the outcome of an attribute append or update: a 207 when
// NotUpdated is not empty.
type UpdateResult struct {
	Updated    []string // expanded names
	NotUpdated []NotUpdated
}

// AppendAttrs adds the fragment's attributes to the entity (POST
// /entities/{id}/attrs). Existing instances are overwritten unless
// noOverwrite, in which case they are reported as not updated. Types in the
// fragment are added to the entity's types.
func (b *Broker) AppendAttrs(ctx context.Context, tenant, id string, frag *ngsild.Entity, noOverwrite bool) (*UpdateResult, error) {
	var res *UpdateResult
	_, err := b.write(ctx, tenant, store.Op{ID: id, Apply: func(cur *ngsild.Entity) (*ngsild.Entity, error) {
		if cur == nil {
			return nil, notFound(id)
		}
		var next *ngsild.Entity
		next, res = b.appendFn(cur, frag, noOverwrite)
		return next, nil
	}})
	return res, err
}

// appendFn returns cur with frag's types, scope and attributes added (and,
// unless noOverwrite, overwriting instances with the same datasetId), and
// what it did.
func (b *Broker) appendFn(cur, frag *ngsild.Entity, noOverwrite bool) (*ngsild.Entity, *UpdateResult) {
	next := cur.Derive()
	res := &UpdateResult{}
	now := b.now().UTC()
	addTypesAndScope(next, frag)
	for _, name := range sortedNames(frag.Attrs) {
		for _, a := range frag.Attrs[name] {
			if noOverwrite && next.Instance(name, a.DatasetID) != nil {
				res.NotUpdated = append(res.NotUpdated, NotUpdated{name, "attribute exists and noOverwrite was given"})
				continue
			}
			putInstance(next, name, a.Clone(), now)
			res.Updated = appendOnce(res.Updated, name)
		}
	}
	next.ModifiedAt = now
	return next, res
}

// addTypesAndScope adds frag's types to next and replaces next's scope with
// frag's when it has one.
func addTypesAndScope(next, frag *ngsild.Entity) {
	for _, t := range frag.Types {
		if !next.HasType(t) {
			next.Types = append(next.Types, t)
		}
	}
	if frag.Scopes != nil {
		next.Scopes = frag.Scopes
	}
}

// UpdateAttrs replaces the fragment's attributes where the entity has them
// (PATCH /entities/{id}/attrs); the others are reported as not updated.
func (b *Broker) UpdateAttrs(ctx context.Context, tenant, id string, frag *ngsild.Entity) (*UpdateResult, error) {
	var res *UpdateResult
	_, err := b.write(ctx, tenant, store.Op{ID: id, Apply: func(cur *ngsild.Entity) (*ngsild.Entity, error) {
		if cur == nil {
			return nil, notFound(id)
		}
		res = &UpdateResult{}
		next := cur.Derive()
		now := b.now().UTC()
		changed := false
		for _, name := range sortedNames(frag.Attrs) {
			for _, a := range frag.Attrs[name] {
				if next.Instance(name, a.DatasetID) == nil {
					reason := "attribute does not exist"
					if a.DatasetID != "" {
						reason = "attribute instance with datasetId " + a.DatasetID + " does not exist"
					}
					res.NotUpdated = append(res.NotUpdated, NotUpdated{name, reason})
					continue
				}
				putInstance(next, name, a.Clone(), now)
				res.Updated = appendOnce(res.Updated, name)
				changed = true
			}
		}
		if !changed {
			return cur, nil
		}
		next.ModifiedAt = now
		return next, nil
	}})
	return res, err
}

// PartialAttrUpdate changes the members given in patch on one attribute
// instance (PATCH /entities/{id}/attrs/{attr}): its value, metadata and
// sub-attributes; the rest stays.
func (b *Broker) PartialAttrUpdate(ctx context.Context, tenant, id, name string, patch *ngsild.Attribute) error {
	_, err := b.write(ctx, tenant, store.Op{ID: id, Apply: func(cur *ngsild.Entity) (*ngsild.Entity, error) {
		if cur == nil {
			return nil, notFound(id)
		}
		next := cur.Derive()
		old := next.Instance(name, patch.DatasetID)
		if old == nil {
			return nil, attrNotFound(id, name, patch.DatasetID)
		}
		now := b.now().UTC()
		merged := old.Clone()
		mergeInstance(merged, patch, now)
		setInstance(next, name, merged)
		next.ModifiedAt = now
		return next, nil
	}})
	return err
}

// ReplaceAttr replaces an existing attribute's instances given in insts (PUT
// /entities/{id}/attrs/{attr}).
func (b *Broker) ReplaceAttr(ctx context.Context, tenant, id, name string, insts []*ngsild.Attribute) error {
	_, err := b.write(ctx, tenant, store.Op{ID: id, Apply: func(cur *ngsild.Entity) (*ngsild.Entity, error) {
		if cur == nil {
			return nil, notFound(id)
		}
		if len(cur.Attrs[name]) == 0 {
			return nil, attrNotFound(id, name, "")
		}
		next := cur.Derive()
		now := b.now().UTC()
		for _, a := range insts {
			putInstance(next, name, a.Clone(), now)
		}
		next.ModifiedAt = now
		return next, nil
	}})
	return err
}

// DeleteAttr removes an attribute instance (the default one, or datasetID's),
// or every instance with deleteAll.
func (b *Broker) DeleteAttr(ctx context.Context, tenant, id, name, datasetID string, deleteAll bool) error {
	_, err := b.write(ctx, tenant, store.Op{ID: id, Apply: func(cur *ngsild.Entity) (*ngsild.Entity, error) {
		if cur == nil {
			return nil, notFound(id)
		}
		next := cur.Derive()
		if deleteAll {
			if len(next.Attrs[name]) == 0 {
				return nil, attrNotFound(id, name, "")
			}
			delete(next.Attrs, name)
		} else if !removeInstance(next, name, datasetID) {
			return nil, attrNotFound(id, name, datasetID)
		}
		next.ModifiedAt = b.now().UTC()
		return next, nil
	}})
	return err
}

func attrNotFound(id, name, datasetID string) error {
	if datasetID != "" {
		return ngsild.Errorf(ngsild.ResourceNotFound, "entity %s has no attribute %s with datasetId %s", id, name, datasetID)
	}
	return ngsild.Errorf(ngsild.ResourceNotFound, "entity %s has no attribute %s", id, name)
}

// MergeEntity merges a fragment into the entity (PATCH /entities/{id}, JSON
// merge-patch semantics): new attributes are added, existing ones merged
// member by member, null values (ngsild.Null) delete.
func (b *Broker) MergeEntity(ctx context.Context, tenant, id string, frag *ngsild.Entity) error {
	_, err := b.write(ctx, tenant, store.Op{ID: id, Apply: b.mergeFn(id, frag)})
	return err
}

func (b *Broker) mergeFn(id string, frag *ngsild.Entity) func(*ngsild.Entity) (*ngsild.Entity, error) {
	return func(cur *ngsild.Entity) (*ngsild.Entity, error) {
		if cur == nil {
			return nil, notFound(id)
		}
		next := cur.Derive()
		now := b.now().UTC()
		addTypesAndScope(next, frag)
		for name, insts := range frag.Attrs {
			for _, a := range insts {
				if _, isNull := a.Value.(ngsild.Null); isNull {
					removeInstance(next, name, a.DatasetID)
					continue
				}
				if old := next.Instance(name, a.DatasetID); old != nil {
					merged := old.Clone()
					mergeInstance(merged, a, now)
					setInstance(next, name, merged)
					continue
				}
				add := a.Clone()
				dropNullSubs(add)
				if add.Kind == "" || add.Value == nil {
					continue // metadata for an attribute that does not exist
				}
				putInstance(next, name, add, now)
			}
		}
		next.ModifiedAt = now
		return next, nil
	}
}

// ReplaceEntity replaces all of an entity's types and attributes (PUT
// /entities/{id}); its creation time stays.
func (b *Broker) ReplaceEntity(ctx context.Context, tenant, id string, e *ngsild.Entity) error {
	_, err := b.write(ctx, tenant, store.Op{ID: id, Apply: b.replaceFn(id, e, false)})
	return err
}

func (b *Broker) replaceFn(id string, e *ngsild.Entity, createMissing bool) func(*ngsild.Entity) (*ngsild.Entity, error) {
	fresh := b.created(e) // every attribute is new; the entity keeps its creation time
	return func(cur *ngsild.Entity) (*ngsild.Entity, error) {
		if cur == nil {
			if !createMissing {
				return nil, notFound(id)
			}
			return fresh, nil
		}
		next := *fresh // shares the attributes, which nothing changes
		next.ID = cur.ID
		if len(next.Types) == 0 {
			next.Types = cur.Types
		}
		next.CreatedAt = cur.CreatedAt
		return &next, nil
	}
}

// putInstance sets attribute instance a on e, replacing the instance with the
// same datasetId and keeping its creation time.
func putInstance(e *ngsild.Entity, name string, a *ngsild.Attribute, now time.Time) {
	if e.Attrs == nil {
		e.Attrs = map[string][]*ngsild.Attribute{}
	}
	stampNew(a, now)
	if old := e.Instance(name, a.DatasetID); old != nil {
		a.CreatedAt = old.CreatedAt
	}
	setInstance(e, name, a)
}

// setInstance puts a in place of the instance with its datasetId (or adds
// it) in a fresh slice, since e's slices may be shared with a stored entity.
func setInstance(e *ngsild.Entity, name string, a *ngsild.Attribute) {
	insts := append([]*ngsild.Attribute(nil), e.Attrs[name]...)
	for i, old := range insts {
		if old.DatasetID == a.DatasetID {
			insts[i] = a
			e.Attrs[name] = insts
			return
		}
	}
	e.Attrs[name] = append(insts, a)
}

func removeInstance(e *ngsild.Entity, name, datasetID string) bool {
	insts := e.Attrs[name]
	for i, a := range insts {
		if a.DatasetID == datasetID {
			insts = append(insts[:i:i], insts[i+1:]...)
			if len(insts) == 0 {
				delete(e.Attrs, name)
			} else {
				e.Attrs[name] = insts
			}
			return true
		}
	}
	return false
}

// mergeInstance applies patch to old in place: members present in patch win,
// sub-attributes merge recursively, Null sub-attributes are removed.
func mergeInstance(old, patch *ngsild.Attribute, now time.Time) {
	if patch.Kind != "" && patch.Value != nil {
		if _, isNull := patch.Value.(ngsild.Null); !isNull {
			old.Kind = patch.Kind
			old.Value = patch.Value
		}
	}
	if !patch.ObservedAt.IsZero() {
		old.ObservedAt = patch.ObservedAt
	}
	if patch.UnitCode != "" {
		old.UnitCode = patch.UnitCode
	}
	if len(patch.ObjectType) > 0 {
		old.ObjectType = patch.ObjectType
	}
	for name, sub := range patch.Sub {
		if _, isNull := sub.Value.(ngsild.Null); isNull {
			delete(old.Sub, name)
			continue
		}
		if cur, ok := old.Sub[name]; ok {
			mergeInstance(cur, sub, now)
			continue
		}
		if old.Sub == nil {
			old.Sub = map[string]*ngsild.Attribute{}
		}
		add := sub.Clone()
		dropNullSubs(add)
		stampNew(add, now)
		old.Sub[name] = add
	}
	old.ModifiedAt = now
}

func dropNullSubs(a *ngsild.Attribute) {
	for name, s := range a.Sub {
		if _, isNull := s.Value.(ngsild.Null); isNull {
			delete(a.Sub, name)
		} else {
			dropNullSubs(s)
		}
	}
}

// stampNew sets the system times of a new attribute instance and its
// sub-attributes.
func stampNew(a *ngsild.Attribute, now time.Time) {
	a.CreatedAt, a.ModifiedAt = now, now
	for _, s := range a.Sub {
		stampNew(s, now)
	}
}

func appendOnce(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

package subscription

import (
	"slices"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store"
)

// Match decides whether the committed change c triggers s, and with which
// notificationTrigger (5.8.6). The entity must match one of the entity
// selectors (id, idPattern, type expression) and q, scopeQ and geoQ, all
// evaluated on the entity after the change (before it, for a deletion). Then
// the first of these that s lists and the change satisfies is the trigger:
//
//   - an entity creation: entityCreated, then attributeCreated (the entity's
//     attributes are all created);
//   - an entity deletion: entityDeleted, then attributeDeleted (its
//     attributes are all deleted);
//   - an update: attributeDeleted, attributeCreated, attributeUpdated (an
//     attribute the op deleted, created or wrote), then entityUpdated (any
//     of those, or with no watchedAttributes any update at all).
//
// With watchedAttributes, only changes of those attributes count, and
// entityCreated and entityDeleted need the entity to have one of them.
// attributeDeleted comes first for an update so that the notification shows
// the deletion (see Data).
//
// A periodic subscription (timeInterval) is never triggered by a change.
// Match does not look at isActive, expiresAt or throttling: the notifier does.
func (s *Subscription) Match(c *store.Change) (Trigger, bool) {
	if s.TimeInterval > 0 || c == nil {
		return "", false
	}
	e := c.Entity()
	if e == nil {
		return "", false
	}
	id := c.ID
	if id == "" {
		id = e.ID
	}
	if !s.selects(id, e.Types) {
		return "", false
	}
	if s.Q != nil && !s.Q.Match(e) {
		return "", false
	}
	if s.ScopeQ != nil && !s.ScopeQ.Match(e.Scopes) {
		return "", false
	}
	if s.GeoQ != nil && !s.GeoQ.Match(e) {
		return "", false
	}

	switch c.Kind {
	case store.EntityCreated:
		if s.has(EntityCreated) && s.hasWatched(e) {
			return EntityCreated, true
		}
		if s.has(AttributeCreated) && s.anyWatched(changedNames(c, e)) {
			return AttributeCreated, true
		}
	case store.EntityDeleted:
		if s.has(EntityDeleted) && s.hasWatched(e) {
			return EntityDeleted, true
		}
		if s.has(AttributeDeleted) && s.anyWatched(changedNames(c, e)) {
			return AttributeDeleted, true
		}
	case store.EntityUpdated:
		for _, t := range [...]struct {
			trigger Trigger
			kind    store.AttrChangeKind
		}{{AttributeDeleted, store.AttrDeleted}, {AttributeCreated, store.AttrCreated}, {AttributeUpdated, store.AttrUpdated}} {
			if s.has(t.trigger) && s.watchedChange(c, t.kind) {
				return t.trigger, true
			}
		}
		if s.has(EntityUpdated) {
			if len(s.WatchedAttributes) == 0 || s.watchedChange(c, 0) {
				return EntityUpdated, true
			}
		}
	}
	return "", false
}

// selects reports whether an entity with this id and these types matches
// one of the entity selectors (any entity when there are none: the
// subscription selects by watchedAttributes only).
func (s *Subscription) selects(id string, types []string) bool {
	if len(s.Entities) == 0 {
		return true
	}
	for i := range s.Entities {
		if s.Entities[i].Match(id, types) {
			return true
		}
	}
	return false
}

// Match reports whether an entity with this id and these (expanded) types
// satisfies the selector: its id (or, without an id, its idPattern) and its
// type expression.
func (sel *Selector) Match(id string, types []string) bool {
	switch {
	case sel.ID != "":
		// An id makes idPattern irrelevant: the id wins.
		if sel.ID != id {
			return false
		}
	case sel.IDPattern != nil:
		if !sel.IDPattern.MatchString(id) {
			return false
		}
	}
	return sel.Type == nil || sel.Type.Match(types)
}

func (s *Subscription) has(t Trigger) bool { return slices.Contains(s.Triggers, t) }

// watches reports whether a change of attribute name counts.
func (s *Subscription) watches(name string) bool {
	return len(s.WatchedAttributes) == 0 || slices.Contains(s.WatchedAttributes, name)
}

// anyWatched reports whether any of names counts.
func (s *Subscription) anyWatched(names []string) bool {
	for _, n := range names {
		if s.watches(n) {
			return true
		}
	}
	return false
}

// hasWatched reports whether the entity has a watched attribute (true
// without watchedAttributes).
func (s *Subscription) hasWatched(e *ngsild.Entity) bool {
	if len(s.WatchedAttributes) == 0 {
		return true
	}
	for _, n := range s.WatchedAttributes {
		if len(e.Attrs[n]) > 0 {
			return true
		}
	}
	return false
}

// changedNames lists the attributes the change touched, whatever the kind.
// For a created or deleted entity whose change lists none, they are the
// entity's attributes.
func changedNames(c *store.Change, e *ngsild.Entity) []string {
	if len(c.Attrs) == 0 && c.Kind != store.EntityUpdated {
		names := make([]string, 0, len(e.Attrs))
		for n, insts := range e.Attrs {
			if len(insts) > 0 {
				names = append(names, n)
			}
		}
		return names
	}
	names := make([]string, len(c.Attrs))
	for i, a := range c.Attrs {
		names[i] = a.Name
	}
	return names
}

// watchedChange reports whether the update c changed a watched attribute
// of kind k (0: of any kind).
func (s *Subscription) watchedChange(c *store.Change, k store.AttrChangeKind) bool {
	for _, a := range c.Attrs {
		if (k == 0 || a.Kind == k) && s.watches(a.Name) {
			return true
		}
	}
	return false
}

package store

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
)

// ChangeKind says what a committed op did to its entity.
type ChangeKind uint8

const (
	EntityCreated ChangeKind = iota + 1
	EntityUpdated
	EntityDeleted
)

func (k ChangeKind) String() string {
	switch k {
	case EntityCreated:
		return "entityCreated"
	case EntityUpdated:
		return "entityUpdated"
	case EntityDeleted:
		return "entityDeleted"
	}
	return "unknown"
}

// AttrChangeKind says what an op did to one attribute (all its instances).
type AttrChangeKind uint8

const (
	AttrCreated AttrChangeKind = iota + 1 // the entity had no instance of it before
	AttrUpdated                           // at least one instance was written (even with the same value)
	AttrDeleted                           // the entity has no instance of it now
)

func (k AttrChangeKind) String() string {
	switch k {
	case AttrCreated:
		return "attributeCreated"
	case AttrUpdated:
		return "attributeUpdated"
	case AttrDeleted:
		return "attributeDeleted"
	}
	return "unknown"
}

// AttrChange is one attribute an op created, updated or deleted.
type AttrChange struct {
	Name string // expanded
	Kind AttrChangeKind
}

// Change is one committed op that changed an entity: what the event bus
// carries. Changes are numbered by Seq, strictly increasing in commit order
// across all tenants (consecutive within one store; a consumer may see gaps
// after trimming).
type Change struct {
	Seq    uint64
	Tenant string
	At     time.Time // commit time
	Kind   ChangeKind
	ID     string
	// Before is the entity before the op, nil when it was created. It holds
	// at least the id, types, scopes and every attribute Attrs lists as
	// updated or deleted (a change read back from the durable log holds only
	// those attributes).
	Before *ngsild.Entity
	// After is the entity after the op, nil when it was deleted.
	After *ngsild.Entity
	// Attrs lists the attributes the op created, updated or deleted, by
	// name. An entity created or deleted lists all of its attributes.
	Attrs []AttrChange
}

// NewChange is the change an op made to entity id of tenant, from cur
// (nil: it did not exist) to next (nil: deleted), unnumbered (Seq, At). An
// attribute counts as updated when any of its instances is a new value
// (copy-on-write: see ngsild.Entity.Derive). Attrs are sorted by name.
func NewChange(tenant, id string, cur, next *ngsild.Entity) Change {
	c := Change{Tenant: tenant, ID: id, Before: cur, After: next}
	switch {
	case cur == nil:
		c.Kind = EntityCreated
		c.Attrs = attrChanges(next, AttrCreated)
	case next == nil:
		c.Kind = EntityDeleted
		c.Attrs = attrChanges(cur, AttrDeleted)
	default:
		c.Kind = EntityUpdated
		for name, as := range next.Attrs {
			old, ok := cur.Attrs[name]
			switch {
			case !ok || len(old) == 0:
				c.Attrs = append(c.Attrs, AttrChange{Name: name, Kind: AttrCreated})
			case !slices.Equal(old, as):
				c.Attrs = append(c.Attrs, AttrChange{Name: name, Kind: AttrUpdated})
			}
		}
		for name, as := range cur.Attrs {
			if len(as) > 0 && len(next.Attrs[name]) == 0 {
				c.Attrs = append(c.Attrs, AttrChange{Name: name, Kind: AttrDeleted})
			}
		}
		sortAttrChanges(c.Attrs)
	}
	return c
}

func attrChanges(e *ngsild.Entity, kind AttrChangeKind) []AttrChange {
	out := make([]AttrChange, 0, len(e.Attrs))
	for name, as := range e.Attrs {
		if len(as) > 0 {
			out = append(out, AttrChange{Name: name, Kind: kind})
		}
	}
	sortAttrChanges(out)
	return out
}

func sortAttrChanges(as []AttrChange) {
	slices.SortFunc(as, func(a, b AttrChange) int { return strings.Compare(a.Name, b.Name) })
}

// Entity returns the entity's latest state: After, or Before when it was deleted.
func (c *Change) Entity() *ngsild.Entity {
	if c.After != nil {
		return c.After
	}
	return c.Before
}

// ErrChangesGone: the changes asked for were trimmed from the log.
var ErrChangesGone = errors.New("changes no longer kept")

// ChangeLog is a store's durable log of committed changes, written in the
// same transaction as the changes themselves, so a consumer that remembers
// how far it got (its cursor) misses nothing across a crash. A store keeps
// changes until TrimChanges drops them.
type ChangeLog interface {
	// Changes returns up to max changes with Seq > after, in order. It
	// returns ErrChangesGone if some of those were trimmed.
	Changes(ctx context.Context, after uint64, max int) ([]Change, error)
	// LastChange is the Seq of the last committed change (0: none yet).
	LastChange() uint64
	// TrimChanges drops the changes with Seq <= upTo.
	TrimChanges(ctx context.Context, upTo uint64) error
	// WatchChanges makes the store call f after every commit with its
	// changes, in commit order, before the writers are answered. f runs on
	// the store's write path: it must be quick and must not block or keep
	// the slice (the changes themselves may be kept).
	WatchChanges(f func([]Change))
}

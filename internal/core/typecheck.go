package core

import (
	"context"
	"strings"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store"
)

type typeCheckKey struct{}

// WithTypeCheck limits the writes made with ctx to entities whose types
// allow accepts, before and after the write: an editor whose grant lists
// types may neither change another type's entity nor give an entity a type
// outside the list. The transport sets it for such principals only, so
// other writes pay nothing. A refused entity fails with Forbidden (in a
// batch, that entity alone).
func WithTypeCheck(ctx context.Context, allow func(types []string) bool) context.Context {
	return context.WithValue(ctx, typeCheckKey{}, allow)
}

func typeCheck(ctx context.Context) func([]string) bool {
	allow, _ := ctx.Value(typeCheckKey{}).(func([]string) bool)
	return allow
}

// checkTypes wraps ops' Apply with ctx's type check, if it has one.
func checkTypes(ctx context.Context, ops []store.Op) {
	allow := typeCheck(ctx)
	if allow == nil {
		return
	}
	for i := range ops {
		apply := ops[i].Apply
		ops[i].Apply = func(cur *ngsild.Entity) (*ngsild.Entity, error) {
			if cur != nil && !allow(cur.Types) {
				return nil, forbiddenTypes(cur)
			}
			next, err := apply(cur)
			if err == nil && next != nil && !allow(next.Types) {
				return nil, forbiddenTypes(next)
			}
			return next, err
		}
	}
}

// checkStored applies ctx's type check to the stored entity id, for the
// history operations that do not pass through Write.
func (b *Broker) checkStored(ctx context.Context, tenant, id string) error {
	allow := typeCheck(ctx)
	if allow == nil {
		return nil
	}
	e, err := b.store.Get(ctx, tenant, id)
	if err != nil {
		return mapErr(err, id)
	}
	if !allow(e.Types) {
		return forbiddenTypes(e)
	}
	return nil
}

func forbiddenTypes(e *ngsild.Entity) error {
	return ngsild.Errorf(ngsild.Forbidden, "entity %s has type %s: your rights do not cover writing it", e.ID, strings.Join(e.Types, ", "))
}

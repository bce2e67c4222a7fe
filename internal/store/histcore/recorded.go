package histcore

import (
	"slices"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store"
)

// Recorded is what an applied op records in history (see store.Op), and
// the entity types it is filed under: Op.History's instances as given, or
// else, when record is on, the attribute instances next holds that cur did
// not (the same *Attribute value: copy-on-write makes a changed instance a
// new value, so the diff is a pointer comparison).
func Recorded(op store.Op, cur, next *ngsild.Entity, record bool) (types []string, insts []store.Recorded) {
	if op.History != nil {
		types = op.History.Types
		if next != nil {
			types = next.Types
		}
		return types, op.History.Instances
	}
	if next == nil || !record {
		return nil, nil
	}
	for name, as := range next.Attrs {
		var old []*ngsild.Attribute
		if cur != nil {
			old = cur.Attrs[name]
		}
		for _, a := range as {
			if !slices.Contains(old, a) { // the same instance: not changed
				insts = append(insts, store.Recorded{Name: name, Attr: a})
			}
		}
	}
	return next.Types, insts
}

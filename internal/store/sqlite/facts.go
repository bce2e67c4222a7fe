package sqlite

import (
	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store/facts"
)

// The counters' view of an entity (store/facts).
type (
	attrFacts   = facts.Attr
	entityFacts = facts.Entity
)

func factsOf(e *ngsild.Entity) *entityFacts { return facts.Of(e) }

// diffSorted walks two sorted lists and calls del for elements only in old
// and add for elements only in new.
func diffSorted[T any](old, new []T, cmp func(a, b T) int, del, add func(T) error) error {
	i, j := 0, 0
	for i < len(old) || j < len(new) {
		switch {
		case j == len(new) || (i < len(old) && cmp(old[i], new[j]) < 0):
			if err := del(old[i]); err != nil {
				return err
			}
			i++
		case i == len(old) || cmp(old[i], new[j]) > 0:
			if err := add(new[j]); err != nil {
				return err
			}
			j++
		default:
			i++
			j++
		}
	}
	return nil
}

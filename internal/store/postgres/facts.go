package postgres

import (
	"cmp"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store/facts"
)

// The counters' view of an entity (store/facts).
type (
	attrFacts   = facts.Attr
	entityFacts = facts.Entity
)

func factsOf(e *ngsild.Entity) *entityFacts { return facts.Of(e) }

// attrNames lists f's attribute names (entities.attrs).
func attrNames(f *entityFacts) []string {
	names := make([]string, len(f.Attrs))
	for i, a := range f.Attrs {
		names[i] = a.Name
	}
	return names
}

// sameShape reports whether old and new have the same types, scopes,
// attribute names and kinds per name: an update of values only, which
// changes no counter and no column but the document. It errs on the side of
// false (types in another order, say), which only costs the full update.
func sameShape(old, new *ngsild.Entity) bool {
	if !slices.Equal(old.Types, new.Types) || !slices.Equal(old.Scopes, new.Scopes) || len(old.Attrs) != len(new.Attrs) {
		return false
	}
	for name, ns := range new.Attrs {
		os, ok := old.Attrs[name]
		if !ok || len(os) == 0 || len(ns) == 0 {
			return false
		}
		if !slices.Equal(os, ns) && !sameKinds(os, ns) {
			return false
		}
	}
	return true
}

// sameKinds reports whether two lists of instances have the same set of
// kinds.
func sameKinds(a, b []*ngsild.Attribute) bool {
	has := func(as []*ngsild.Attribute, k ngsild.Kind) bool {
		return slices.ContainsFunc(as, func(x *ngsild.Attribute) bool { return x != nil && x.Kind == k })
	}
	for _, x := range a {
		if x != nil && !has(b, x.Kind) {
			return false
		}
	}
	for _, x := range b {
		if x != nil && !has(a, x.Kind) {
			return false
		}
	}
	return true
}

// diffSorted walks two sorted lists and calls del for elements only in old
// and add for elements only in new.
func diffSorted[T any](old, new []T, cmp func(a, b T) int, del, add func(T)) {
	i, j := 0, 0
	for i < len(old) || j < len(new) {
		switch {
		case j == len(new) || (i < len(old) && cmp(old[i], new[j]) < 0):
			del(old[i])
			i++
		case i == len(old) || cmp(old[i], new[j]) > 0:
			add(new[j])
			j++
		default:
			i++
			j++
		}
	}
}

type tidName struct {
	tid  int64
	name string
}

type typeAttrKey struct {
	tid             int64
	typ, name, kind string
}

// counters are the deltas a write group makes to the counter tables.
type counters struct {
	typeN map[tidName]int64
	attrN map[tidName]int64
	taN   map[typeAttrKey]int64
}

func newCounters() *counters {
	return &counters{typeN: map[tidName]int64{}, attrN: map[tidName]int64{}, taN: map[typeAttrKey]int64{}}
}

// count adds the difference between an entity's facts before (nil: it did
// not exist) and after (nil: it does not exist now).
func (c *counters) count(tid int64, old, new *entityFacts) {
	if old == nil {
		old = &entityFacts{}
	}
	if new == nil {
		new = &entityFacts{}
	}
	typeN := func(d int64) func(string) {
		return func(typ string) { c.typeN[tidName{tid, typ}] += d }
	}
	diffSorted(old.Types, new.Types, strings.Compare, typeN(-1), typeN(+1))
	// Minus old, plus new, which cancel out when an update changed only values.
	if slices.Equal(old.Types, new.Types) && slices.EqualFunc(old.Attrs, new.Attrs, sameFacts) {
		return
	}
	c.countAttrs(tid, old, -1)
	c.countAttrs(tid, new, +1)
}

func sameFacts(a, b attrFacts) bool {
	return a.Name == b.Name && slices.Equal(a.Kinds, b.Kinds)
}

func (c *counters) countAttrs(tid int64, f *entityFacts, d int64) {
	for _, a := range f.Attrs {
		c.attrN[tidName{tid, a.Name}] += d
		for _, typ := range f.Types {
			for _, kind := range a.Kinds {
				c.taN[typeAttrKey{tid, typ, a.Name, string(kind)}] += d
			}
		}
	}
}

// queue adds the counter updates to b. Rows are sorted by key, so every
// transaction locks counter rows in one order and two never deadlock on
// them (unnest yields the rows in array order, and the insert takes them in
// that order).
func (c *counters) queue(b *pgx.Batch) {
	tn := nonZero(c.typeN, func(a, b tidName) int { return cmp.Or(cmp.Compare(a.tid, b.tid), strings.Compare(a.name, b.name)) })
	if len(tn) > 0 {
		tids, names, ns := make([]int64, len(tn)), make([]string, len(tn)), make([]int64, len(tn))
		for i, k := range tn {
			tids[i], names[i], ns[i] = k.tid, k.name, c.typeN[k]
		}
		b.Queue(`INSERT INTO type_counts AS c (tid, type, n) SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[])
			ON CONFLICT (tid, type) DO UPDATE SET n = c.n + excluded.n`, tids, names, ns)
	}
	an := nonZero(c.attrN, func(a, b tidName) int { return cmp.Or(cmp.Compare(a.tid, b.tid), strings.Compare(a.name, b.name)) })
	if len(an) > 0 {
		tids, names, ns := make([]int64, len(an)), make([]string, len(an)), make([]int64, len(an))
		for i, k := range an {
			tids[i], names[i], ns[i] = k.tid, k.name, c.attrN[k]
		}
		b.Queue(`INSERT INTO attr_counts AS c (tid, name, n) SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[])
			ON CONFLICT (tid, name) DO UPDATE SET n = c.n + excluded.n`, tids, names, ns)
	}
	ta := nonZero(c.taN, func(a, b typeAttrKey) int {
		return cmp.Or(cmp.Compare(a.tid, b.tid), strings.Compare(a.typ, b.typ), strings.Compare(a.name, b.name), strings.Compare(a.kind, b.kind))
	})
	if len(ta) > 0 {
		tids, types, names, kinds, ns := make([]int64, len(ta)), make([]string, len(ta)), make([]string, len(ta)), make([]string, len(ta)), make([]int64, len(ta))
		for i, k := range ta {
			tids[i], types[i], names[i], kinds[i], ns[i] = k.tid, k.typ, k.name, k.kind, c.taN[k]
		}
		b.Queue(`INSERT INTO type_attrs AS c (tid, type, name, kind, n) SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[])
			ON CONFLICT (tid, type, name, kind) DO UPDATE SET n = c.n + excluded.n`, tids, types, names, kinds, ns)
	}
}

// nonZero returns the keys of m with a non-zero value, sorted.
func nonZero[K comparable](m map[K]int64, cmp func(a, b K) int) []K {
	var ks []K
	for k, d := range m {
		if d != 0 {
			ks = append(ks, k)
		}
	}
	slices.SortFunc(ks, cmp)
	return ks
}

// arrayLiteral renders ss as a PostgreSQL array literal. Entities' types,
// attribute names and scopes are sent that way (text cast to text[] in the
// statement), because a multi-row statement cannot take a ragged text[][].
func arrayLiteral(ss []string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, s := range ss {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		for j := 0; j < len(s); j++ {
			if c := s[j]; c == '"' || c == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(s[j])
		}
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

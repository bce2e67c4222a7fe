package notify

import (
	"cmp"
	"regexp/syntax"
	"slices"

	"github.com/tidwall/rtree"
	"github.com/zenne-city/zenne/internal/ngsild/geo"
	"github.com/zenne-city/zenne/internal/ngsild/qlang"
	"github.com/zenne-city/zenne/internal/ngsild/subscription"
	"github.com/zenne-city/zenne/internal/store"
)

// The matching index: a change is checked only against the subscriptions
// that could match it, never against all of them. A subscription is filed
// by what every change it matches must have:
//
//   - its entity ids, when each entities entry names one;
//   - else its types, when each entry's type is a plain list of types;
//   - else in the tenant's "other" bucket (id patterns, type expressions,
//     no entities at all).
//
// Within a bucket, a subscription with a geoQ that has a bounding box is
// filed in an R-tree by that box (the change's entity must lie in it), else
// one whose q bounds a number ("fillingLevel>0.8") by that attribute and
// threshold (some value of the entity's attribute must pass it), else one
// with watchedAttributes by each of them (the change must touch one), else
// in the bucket's plain list. Subscription.Match decides every
// candidate exactly: the index only has to hold a superset.
//
// Indexes are immutable once built: a subscription change builds its
// tenant's index anew and swaps it in, so the matcher reads without locks
// held for long.

type tenantIndex struct {
	byID   map[string]*bucket
	byType map[string]*bucket
	other  *bucket
}

type bucket struct {
	all     []*entry
	byAttr  map[string][]*entry
	geo     map[string]*rtree.RTreeG[*entry] // by GeoProperty (expanded)
	byBound map[string]*thresholds           // by the attribute q bounds
}

// thresholds are the subscriptions whose q bounds one attribute: above
// holds "attr > n" and "attr >= n" by ascending n, below "attr < n" and
// "attr <= n" by descending n, so the candidates for a change are a prefix.
type thresholds struct {
	above, below []threshold
}

type threshold struct {
	num float64
	e   *entry
}

func newBucket() *bucket {
	return &bucket{byAttr: map[string][]*entry{}, geo: map[string]*rtree.RTreeG[*entry]{}, byBound: map[string]*thresholds{}}
}

func buildIndex(es []*entry) *tenantIndex {
	ix := &tenantIndex{byID: map[string]*bucket{}, byType: map[string]*bucket{}, other: newBucket()}
	get := func(m map[string]*bucket, k string) *bucket {
		b := m[k]
		if b == nil {
			b = newBucket()
			m[k] = b
		}
		return b
	}
	for _, e := range es {
		sub := e.sub.Load()
		if sub.TimeInterval > 0 {
			continue // periodic: not notified on change
		}
		ids, types := true, true
		for _, sel := range sub.Entities {
			ids = ids && selectedID(sel) != ""
			types = types && sel.Type != nil && sel.Type.AnyOf() != nil
		}
		switch {
		case len(sub.Entities) > 0 && ids:
			for _, sel := range sub.Entities {
				get(ix.byID, selectedID(sel)).add(e)
			}
		case len(sub.Entities) > 0 && types:
			seen := map[string]bool{}
			for _, sel := range sub.Entities {
				for _, t := range sel.Type.AnyOf() {
					if !seen[t] {
						seen[t] = true
						get(ix.byType, t).add(e)
					}
				}
			}
		default:
			ix.other.add(e)
		}
	}
	for _, b := range ix.buckets() {
		for _, th := range b.byBound {
			slices.SortFunc(th.above, func(x, y threshold) int { return cmp.Compare(x.num, y.num) })
			slices.SortFunc(th.below, func(x, y threshold) int { return cmp.Compare(y.num, x.num) })
		}
	}
	return ix
}

// buckets lists every bucket of the index.
func (ix *tenantIndex) buckets() []*bucket {
	out := []*bucket{ix.other}
	for _, b := range ix.byID {
		out = append(out, b)
	}
	for _, b := range ix.byType {
		out = append(out, b)
	}
	return out
}

func (b *bucket) add(e *entry) {
	sub := e.sub.Load()
	if box, ok := sub.GeoQ.Bound(); ok {
		t := b.geo[sub.GeoQ.Property]
		if t == nil {
			t = &rtree.RTreeG[*entry]{}
			b.geo[sub.GeoQ.Property] = t
		}
		t.Insert([2]float64(box.Min), [2]float64(box.Max), e)
		return
	}
	if bd, ok := sub.Q.Bound(); ok {
		th := b.byBound[bd.Attr]
		if th == nil {
			th = &thresholds{}
			b.byBound[bd.Attr] = th
		}
		if bd.Above {
			th.above = append(th.above, threshold{bd.Num, e})
		} else {
			th.below = append(th.below, threshold{bd.Num, e})
		}
		return
	}
	if len(sub.WatchedAttributes) > 0 {
		for _, a := range sub.WatchedAttributes {
			b.byAttr[a] = append(b.byAttr[a], e)
		}
		return
	}
	b.all = append(b.all, e)
}

// candidates calls visit once for every subscription c could match.
func (ix *tenantIndex) candidates(c *store.Change, stamp uint64, visit func(*entry)) {
	once := func(e *entry) {
		if e.stamp != stamp {
			e.stamp = stamp
			visit(e)
		}
	}
	if b := ix.byID[c.ID]; b != nil {
		b.candidates(c, once)
	}
	for _, t := range c.Entity().Types {
		if b := ix.byType[t]; b != nil {
			b.candidates(c, once)
		}
	}
	ix.other.candidates(c, once)
}

func (b *bucket) candidates(c *store.Change, visit func(*entry)) {
	for _, e := range b.all {
		visit(e)
	}
	if len(b.byAttr) > 0 {
		for _, a := range c.Attrs {
			for _, e := range b.byAttr[a.Name] {
				visit(e)
			}
		}
	}
	for attr, th := range b.byBound {
		lo, hi, ok := qlang.NumRange(c.Entity(), attr)
		if !ok {
			continue
		}
		for _, t := range th.above {
			if t.num > hi {
				break
			}
			visit(t.e)
		}
		for _, t := range th.below {
			if t.num < lo {
				break
			}
			visit(t.e)
		}
	}
	for prop, t := range b.geo {
		for _, a := range c.Entity().Attrs[prop] {
			g, err := geo.ValueGeometry(a.Value)
			if err != nil || g == nil {
				continue
			}
			box := geo.Bound(g)
			t.Search([2]float64(box.Min), [2]float64(box.Max), func(_, _ [2]float64, e *entry) bool {
				visit(e)
				return true
			})
		}
	}
}

// selectedID is the one entity id a selector can match, if there is one:
// its id, or the literal of an id pattern like ^urn:ngsi-ld:Sensor:42$.
func selectedID(sel subscription.Selector) string {
	if sel.ID != "" || sel.IDPattern == nil {
		return sel.ID
	}
	re, err := syntax.Parse(sel.IDPattern.String(), syntax.Perl)
	if err != nil {
		return ""
	}
	re = re.Simplify()
	if re.Op != syntax.OpConcat || len(re.Sub) != 3 || re.Sub[0].Op != syntax.OpBeginText ||
		re.Sub[1].Op != syntax.OpLiteral || re.Sub[1].Flags&syntax.FoldCase != 0 || re.Sub[2].Op != syntax.OpEndText {
		return ""
	}
	return string(re.Sub[1].Rune)
}

package sqlite

import (
	"encoding/json"
	"math"
	"slices"
	"strings"

	"github.com/paulmach/orb"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/ngsild/geo"
	"github.com/zenne-city/zenne/internal/ngsild/qlang"
)

// maxIndexedText is the longest string value kept in attr_txt. Longer values
// make the attribute "complex" (see attrFacts.complex) so q never relies on
// the index for it.
const maxIndexedText = 512

// attrFacts is what the index knows about one attribute name of an entity.
type attrFacts struct {
	name    string
	kinds   []ngsild.Kind // sorted, unique
	complex bool          // some instance value is not fully in attr_num/attr_txt
}

type numKey struct {
	name string
	v    float64
}

type txtKey struct {
	name string
	v    string
}

type geoBox struct {
	attr                   string
	minx, maxx, miny, maxy float64
}

// indexRows are the index entries derived from one entity, each list sorted
// and without duplicates, so two versions can be diffed cheaply.
type indexRows struct {
	types []string
	attrs []attrFacts // by name
	nums  []numKey
	txts  []txtKey
	geos  []geoBox // by attr: the union box of its instances
}

func computeIndex(e *ngsild.Entity) *indexRows {
	r := &indexRows{}
	if e == nil {
		return r
	}
	r.types = slices.Clone(e.Types)
	slices.Sort(r.types)
	r.types = slices.Compact(r.types)
	for name, insts := range e.Attrs {
		if len(insts) == 0 {
			continue
		}
		f := attrFacts{name: name}
		var box geoBox
		hasBox := false
		for _, a := range insts {
			if a == nil {
				continue
			}
			f.kinds = append(f.kinds, a.Kind)
			if !r.addValues(name, qlang.AttrValues(a)) {
				f.complex = true
			}
			if a.Kind == ngsild.GeoProperty {
				if b, ok := geometryBound(a.Value); ok {
					if !hasBox {
						box = geoBox{attr: name, minx: b.Min[0], maxx: b.Max[0], miny: b.Min[1], maxy: b.Max[1]}
						hasBox = true
					} else {
						box.minx = math.Min(box.minx, b.Min[0])
						box.maxx = math.Max(box.maxx, b.Max[0])
						box.miny = math.Min(box.miny, b.Min[1])
						box.maxy = math.Max(box.maxy, b.Max[1])
					}
				}
			}
		}
		slices.Sort(f.kinds)
		f.kinds = slices.Compact(f.kinds)
		r.attrs = append(r.attrs, f)
		if hasBox {
			r.geos = append(r.geos, box)
		}
	}
	slices.SortFunc(r.attrs, func(a, b attrFacts) int { return strings.Compare(a.name, b.name) })
	slices.SortFunc(r.geos, func(a, b geoBox) int { return strings.Compare(a.attr, b.attr) })
	slices.SortFunc(r.nums, cmpNum)
	r.nums = slices.Compact(r.nums)
	slices.SortFunc(r.txts, cmpTxt)
	r.txts = slices.Compact(r.txts)
	return r
}

func cmpNum(a, b numKey) int {
	if c := strings.Compare(a.name, b.name); c != 0 {
		return c
	}
	switch {
	case a.v < b.v:
		return -1
	case a.v > b.v:
		return 1
	}
	return 0
}

func cmpTxt(a, b txtKey) int {
	if c := strings.Compare(a.name, b.name); c != 0 {
		return c
	}
	return strings.Compare(a.v, b.v)
}

// addValues indexes the values a q comparison sees (qlang.AttrValues). It
// reports whether they are all represented in the index.
func (r *indexRows) addValues(name string, vs []any) bool {
	ok := true
	for _, v := range vs {
		if !r.addScalar(name, v) {
			ok = false
		}
	}
	return ok
}

func (r *indexRows) addScalar(name string, v any) bool {
	if f, ok := toFloat(v); ok {
		if math.IsNaN(f) {
			return false
		}
		r.nums = append(r.nums, numKey{name, f})
		return true
	}
	switch x := v.(type) {
	case nil:
		return true // no comparison holds on a missing value
	case bool:
		r.nums = append(r.nums, numKey{name, boolNum(x)})
		return true
	case string:
		if len(x) > maxIndexedText {
			return false
		}
		r.txts = append(r.txts, txtKey{name, x})
		return true
	}
	return false
}

func boolNum(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case int32:
		return float64(x), true
	case uint:
		return float64(x), true
	case uint64:
		return float64(x), true
	case uint32:
		return float64(x), true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	}
	return 0, false
}

// geometryBound returns the lon/lat box of a GeoProperty value the way
// geo.Query.Match reads it (a GeoJSON object, or its JSON text).
func geometryBound(v any) (orb.Bound, bool) {
	if s, ok := v.(string); ok {
		var m any
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			return orb.Bound{}, false
		}
		v = m
	}
	g, err := geo.ParseGeometry(v)
	if err != nil || g == nil {
		return orb.Bound{}, false
	}
	return g.Bound(), true
}

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

// geoEqual reports whether two entities have the same R*Tree entries.
func geoEqual(a, b *indexRows) bool {
	if len(a.geos) == 0 && len(b.geos) == 0 {
		return true
	}
	return slices.Equal(a.types, b.types) && slices.Equal(a.geos, b.geos)
}

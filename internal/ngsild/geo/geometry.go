package geo

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/paulmach/orb"

	"github.com/zenne-city/zenne/internal/ngsild"
)

// maxCollectionDepth bounds the nesting of GeometryCollections, so a hostile
// body cannot make ParseGeometry recurse without end.
const maxCollectionDepth = 8

// ParseGeometry validates a decoded GeoJSON geometry object (RFC 7946, 3.1) and
// returns it as an orb geometry: orb.Point, orb.MultiPoint, orb.LineString,
// orb.MultiLineString, orb.Polygon, orb.MultiPolygon or orb.Collection.
//
// Validation is strict: positions are 2 or 3 finite numbers (an altitude is
// dropped), longitude in [-180,180], latitude in [-90,90]; a LineString has at
// least 2 positions; a Polygon ring is closed and has at least 4 positions;
// Multi* geometries and collections are not empty. v may also be an
// orb.Geometry, which is validated the same way. Errors are BadRequestData
// with a detail naming the offending member.
func ParseGeometry(v any) (orb.Geometry, error) {
	g, err := parseGeometry(v, 0)
	if err != nil {
		return nil, err.ngsild()
	}
	return g, nil
}

// ValidateGeoJSON reports whether v is a valid GeoJSON geometry, with the
// semantics of ParseGeometry.
func ValidateGeoJSON(v any) error {
	_, err := ParseGeometry(v)
	return err
}

// Bound returns the lon/lat bounding box of g (the empty Bound for nil).
func Bound(g orb.Geometry) orb.Bound {
	if g == nil {
		return orb.Bound{}
	}
	return g.Bound()
}

// geoErr is a validation failure with the JSON path to the offending member,
// built on the way out so the happy path allocates no path strings.
type geoErr struct {
	path []string // innermost first
	msg  string
}

func fail(format string, args ...any) *geoErr {
	return &geoErr{msg: fmt.Sprintf(format, args...)}
}

// at prepends a path element: "[3]" or a member name.
func (e *geoErr) at(elem string) *geoErr {
	e.path = append(e.path, elem)
	return e
}

func (e *geoErr) atIndex(i int) *geoErr { return e.at("[" + strconv.Itoa(i) + "]") }

func (e *geoErr) pathString() string {
	var b []byte
	for i := len(e.path) - 1; i >= 0; i-- {
		el := e.path[i]
		if len(b) > 0 && el[0] != '[' {
			b = append(b, '.')
		}
		b = append(b, el...)
	}
	return string(b)
}

func (e *geoErr) detail() string {
	if p := e.pathString(); p != "" {
		return p + ": " + e.msg
	}
	return e.msg
}

func (e *geoErr) ngsild() error {
	return ngsild.Errorf(ngsild.BadRequestData, "invalid GeoJSON geometry: %s", e.detail())
}

func parseGeometry(v any, depth int) (orb.Geometry, *geoErr) {
	if g, ok := v.(orb.Geometry); ok {
		return validateOrb(g, depth)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fail("expected a JSON object, got %s", ngsild.JSONKind(v))
	}
	tv, ok := m["type"]
	if !ok {
		return nil, fail("missing member \"type\"")
	}
	typ, ok := tv.(string)
	if !ok {
		return nil, fail("member \"type\" must be a string, got %s", ngsild.JSONKind(tv))
	}
	if typ == "GeometryCollection" {
		if depth >= maxCollectionDepth {
			return nil, fail("GeometryCollection nested deeper than %d levels", maxCollectionDepth)
		}
		gv, ok := m["geometries"]
		if !ok {
			return nil, fail("GeometryCollection without member \"geometries\"")
		}
		arr, ok := gv.([]any)
		if !ok {
			return nil, fail("GeometryCollection member \"geometries\" must be an array, got %s", ngsild.JSONKind(gv))
		}
		if len(arr) == 0 {
			return nil, fail("GeometryCollection \"geometries\" must not be empty")
		}
		c := make(orb.Collection, 0, len(arr))
		for i, x := range arr {
			g, err := parseGeometry(x, depth+1)
			if err != nil {
				return nil, err.atIndex(i).at("geometries")
			}
			c = append(c, g)
		}
		return c, nil
	}
	cv, ok := m["coordinates"]
	if !ok {
		if !knownType(typ) {
			return nil, fail("unknown geometry type %q", typ)
		}
		return nil, fail("%s without member \"coordinates\"", typ)
	}
	if !knownType(typ) {
		return nil, fail("unknown geometry type %q", typ)
	}
	g, err := parseCoordinates(typ, cv)
	if err != nil {
		return nil, err.at("coordinates")
	}
	return g, nil
}

func knownType(t string) bool {
	switch t {
	case "Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon", "GeometryCollection":
		return true
	}
	return false
}

// parseCoordinates builds a geometry of type typ from its decoded coordinates;
// error paths are relative to the coordinates member.
func parseCoordinates(typ string, cv any) (orb.Geometry, *geoErr) {
	switch typ {
	case "Point":
		return parsePosition(cv)
	case "MultiPoint":
		arr, err := nonEmptyArray(cv, "MultiPoint")
		if err != nil {
			return nil, err
		}
		mp := make(orb.MultiPoint, len(arr))
		for i, x := range arr {
			if mp[i], err = parsePosition(x); err != nil {
				return nil, err.atIndex(i)
			}
		}
		return mp, nil
	case "LineString":
		return parseLineString(cv)
	case "MultiLineString":
		arr, err := nonEmptyArray(cv, "MultiLineString")
		if err != nil {
			return nil, err
		}
		ml := make(orb.MultiLineString, len(arr))
		for i, x := range arr {
			if ml[i], err = parseLineString(x); err != nil {
				return nil, err.atIndex(i)
			}
		}
		return ml, nil
	case "Polygon":
		return parsePolygon(cv)
	case "MultiPolygon":
		arr, err := nonEmptyArray(cv, "MultiPolygon")
		if err != nil {
			return nil, err
		}
		mp := make(orb.MultiPolygon, len(arr))
		for i, x := range arr {
			if mp[i], err = parsePolygon(x); err != nil {
				return nil, err.atIndex(i)
			}
		}
		return mp, nil
	}
	return nil, fail("unknown geometry type %q", typ)
}

func nonEmptyArray(v any, what string) ([]any, *geoErr) {
	arr, ok := v.([]any)
	if !ok {
		return nil, fail("expected an array, got %s", ngsild.JSONKind(v))
	}
	if len(arr) == 0 {
		return nil, fail("%s must not be empty", what)
	}
	return arr, nil
}

func parseLineString(v any) (orb.LineString, *geoErr) {
	arr, ok := v.([]any)
	if !ok {
		return nil, fail("expected an array of positions, got %s", ngsild.JSONKind(v))
	}
	if len(arr) < 2 {
		return nil, fail("a LineString needs at least 2 positions, got %d", len(arr))
	}
	ls := make(orb.LineString, len(arr))
	for i, x := range arr {
		p, err := parsePosition(x)
		if err != nil {
			return nil, err.atIndex(i)
		}
		ls[i] = p
	}
	return ls, nil
}

func parsePolygon(v any) (orb.Polygon, *geoErr) {
	arr, ok := v.([]any)
	if !ok {
		return nil, fail("expected an array of linear rings, got %s", ngsild.JSONKind(v))
	}
	if len(arr) == 0 {
		return nil, fail("a Polygon needs at least one linear ring")
	}
	poly := make(orb.Polygon, len(arr))
	for i, x := range arr {
		ring, err := parseRing(x)
		if err != nil {
			return nil, err.atIndex(i)
		}
		poly[i] = ring
	}
	return poly, nil
}

func parseRing(x any) (orb.Ring, *geoErr) {
	ra, ok := x.([]any)
	if !ok {
		return nil, fail("expected a linear ring (array of positions), got %s", ngsild.JSONKind(x))
	}
	if len(ra) < 4 {
		return nil, fail("a linear ring needs at least 4 positions, got %d", len(ra))
	}
	ring := make(orb.Ring, len(ra))
	for j, y := range ra {
		p, err := parsePosition(y)
		if err != nil {
			return nil, err.atIndex(j)
		}
		ring[j] = p
	}
	if ring[0] != ring[len(ring)-1] {
		return nil, fail("linear ring is not closed (first and last positions differ)")
	}
	return ring, nil
}

func parsePosition(v any) (orb.Point, *geoErr) {
	arr, ok := v.([]any)
	if !ok {
		return orb.Point{}, fail("expected a position (array of 2 or 3 numbers), got %s", ngsild.JSONKind(v))
	}
	if len(arr) < 2 || len(arr) > 3 {
		return orb.Point{}, fail("a position has 2 or 3 numbers, got %d", len(arr))
	}
	var f [3]float64
	for i, x := range arr {
		n, ok := toFloat(x)
		if !ok {
			return orb.Point{}, fail("position element %d must be a number, got %s", i, ngsild.JSONKind(x))
		}
		if math.IsNaN(n) || math.IsInf(n, 0) {
			return orb.Point{}, fail("position element %d is not a finite number", i)
		}
		f[i] = n
	}
	p := orb.Point{f[0], f[1]}
	return p, checkLonLat(p)
}

func checkLonLat(p orb.Point) *geoErr {
	if math.IsNaN(p[0]) || math.IsNaN(p[1]) || math.IsInf(p[0], 0) || math.IsInf(p[1], 0) {
		return fail("position is not finite")
	}
	if p[0] < -180 || p[0] > 180 {
		return fail("longitude %v out of range [-180,180]", p[0])
	}
	if p[1] < -90 || p[1] > 90 {
		return fail("latitude %v out of range [-90,90]", p[1])
	}
	return nil
}

func toFloat(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	case float32:
		return float64(n), true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	}
	return 0, false
}

// validateOrb applies the GeoJSON rules to a geometry already in orb form.
func validateOrb(g orb.Geometry, depth int) (orb.Geometry, *geoErr) {
	pts := func(ps []orb.Point) *geoErr {
		for i, pt := range ps {
			if err := checkLonLat(pt); err != nil {
				return err.atIndex(i)
			}
		}
		return nil
	}
	line := func(ls orb.LineString) *geoErr {
		if len(ls) < 2 {
			return fail("a LineString needs at least 2 positions, got %d", len(ls))
		}
		return pts(ls)
	}
	poly := func(pg orb.Polygon) *geoErr {
		if len(pg) == 0 {
			return fail("a Polygon needs at least one linear ring")
		}
		for i, r := range pg {
			if len(r) < 4 {
				return fail("a linear ring needs at least 4 positions, got %d", len(r)).atIndex(i)
			}
			if r[0] != r[len(r)-1] {
				return fail("linear ring is not closed (first and last positions differ)").atIndex(i)
			}
			if err := pts(r); err != nil {
				return err.atIndex(i)
			}
		}
		return nil
	}
	var err *geoErr
	switch x := g.(type) {
	case orb.Point:
		err = checkLonLat(x)
	case orb.MultiPoint:
		if len(x) == 0 {
			err = fail("MultiPoint must not be empty")
		} else {
			err = pts(x)
		}
	case orb.LineString:
		err = line(x)
	case orb.MultiLineString:
		if len(x) == 0 {
			err = fail("MultiLineString must not be empty")
		}
		for i, ls := range x {
			if err = line(ls); err != nil {
				err = err.atIndex(i)
				break
			}
		}
	case orb.Polygon:
		err = poly(x)
	case orb.MultiPolygon:
		if len(x) == 0 {
			err = fail("MultiPolygon must not be empty")
		}
		for i, pg := range x {
			if err = poly(pg); err != nil {
				err = err.atIndex(i)
				break
			}
		}
	case orb.Ring:
		return validateOrb(orb.Polygon{x}, depth)
	case orb.Bound:
		return validateOrb(x.ToPolygon(), depth)
	case orb.Collection:
		if depth >= maxCollectionDepth {
			return nil, fail("GeometryCollection nested deeper than %d levels", maxCollectionDepth)
		}
		if len(x) == 0 {
			return nil, fail("GeometryCollection \"geometries\" must not be empty")
		}
		for i, c := range x {
			if _, err = validateOrb(c, depth+1); err != nil {
				return nil, err.atIndex(i).at("geometries")
			}
		}
		return g, nil
	default:
		return nil, fail("unsupported geometry %s", g.GeoJSONType())
	}
	if err != nil {
		return nil, err.at("coordinates")
	}
	return g, nil
}

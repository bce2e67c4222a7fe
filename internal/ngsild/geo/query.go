package geo

import (
	"encoding/json"
	"math"
	"net/url"
	"strconv"
	"strings"

	"github.com/paulmach/orb"
	orbgeo "github.com/paulmach/orb/geo"

	"github.com/zenne-city/zenne/internal/ngsild"
)

// Rel is a geo relation: the georel without its distance modifiers.
type Rel string

// The georels of ETSI GS CIM 009, 4.10.
const (
	Near       Rel = "near"
	Within     Rel = "within"
	Contains   Rel = "contains"
	Intersects Rel = "intersects"
	Overlaps   Rel = "overlaps"
	Disjoint   Rel = "disjoint"
	Equals     Rel = "equals"
)

// Query is a parsed geo-query. Build it with ParseQuery or ParseQueryJSON and
// do not change it afterwards: the parsers precompute the query geometry's
// planar form and bound. A Query built as a literal also works, only slower
// (the geometry is prepared on every Match call).
type Query struct {
	Rel         Rel
	Geometry    orb.Geometry // the reference geometry (a Point for Near)
	Property    string       // expanded name of the GeoProperty, default ngsild.IRILocation
	MaxDistance float64      // meters; Near only; 0 when not given
	MinDistance float64      // meters; Near only; 0 when not given

	hasMax, hasMin bool
	prep           *shape // Geometry prepared by the parsers
}

// ParseQuery parses the geo-query parameters of a GET request (georel,
// geometry, coordinates, geoproperty). It returns nil, nil when georel,
// geometry and coordinates are all empty (no geo-query). expand turns a
// geoproperty name into its expanded IRI; nil leaves names as given (except
// the default "location"). Errors are BadRequestData.
//
// georel is one of near;maxDistance==M, near;minDistance==M (both may be
// given), within, contains, intersects, overlaps, disjoint, equals. geometry
// is the GeoJSON type name (Point, MultiPoint, LineString, MultiLineString,
// Polygon, MultiPolygon; matched case-insensitively). coordinates is the JSON
// array text, raw or still percent-encoded.
func ParseQuery(georel, geometry, coordinates, geoproperty string, expand func(string) string) (*Query, error) {
	georel, geometry, coordinates = strings.TrimSpace(georel), strings.TrimSpace(geometry), strings.TrimSpace(coordinates)
	if georel == "" && geometry == "" && coordinates == "" {
		return nil, nil
	}
	if err := requireAll(georel != "", geometry != "", coordinates != ""); err != nil {
		return nil, err
	}
	coords, err := decodeCoordinates(coordinates)
	if err != nil {
		return nil, err
	}
	return build(georel, geometry, coords, geoproperty, expand)
}

// ParseQueryJSON parses the geoQ member of a POST /entityOperations/query body
// (or of a subscription): {"georel": "near;maxDistance==2000", "geometry":
// "Point", "coordinates": [4.35, 50.85], "geoproperty": "location"}.
// coordinates is a JSON array; a string holding the array text is accepted
// too. A nil v returns nil, nil. Errors are BadRequestData.
func ParseQueryJSON(v any, expand func(string) string) (*Query, error) {
	if v == nil {
		return nil, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, ngsild.Errorf(ngsild.BadRequestData, "geoQ must be a JSON object, got %s", ngsild.JSONKind(v))
	}
	str := func(name string) (string, error) {
		x, ok := m[name]
		if !ok || x == nil {
			return "", nil
		}
		s, ok := x.(string)
		if !ok {
			return "", ngsild.Errorf(ngsild.BadRequestData, "geoQ member %q must be a string, got %s", name, ngsild.JSONKind(x))
		}
		return strings.TrimSpace(s), nil
	}
	georel, err := str("georel")
	if err != nil {
		return nil, err
	}
	geometry, err := str("geometry")
	if err != nil {
		return nil, err
	}
	geoproperty, err := str("geoproperty")
	if err != nil {
		return nil, err
	}
	coords, hasCoords := m["coordinates"]
	if coords == nil {
		hasCoords = false
	}
	if err := requireAll(georel != "", geometry != "", hasCoords); err != nil {
		return nil, err
	}
	switch c := coords.(type) {
	case []any:
	case string:
		if coords, err = decodeCoordinates(c); err != nil {
			return nil, err
		}
	default:
		return nil, ngsild.Errorf(ngsild.BadRequestData, "geoQ member \"coordinates\" must be an array, got %s", ngsild.JSONKind(coords))
	}
	return build(georel, geometry, coords, geoproperty, expand)
}

func requireAll(georel, geometry, coordinates bool) error {
	var missing []string
	if !georel {
		missing = append(missing, "georel")
	}
	if !geometry {
		missing = append(missing, "geometry")
	}
	if !coordinates {
		missing = append(missing, "coordinates")
	}
	if len(missing) == 0 {
		return nil
	}
	return ngsild.Errorf(ngsild.BadRequestData,
		"a geo-query needs georel, geometry and coordinates together; missing %s", strings.Join(missing, ", "))
}

// decodeCoordinates decodes the coordinates parameter: a JSON array, possibly
// still percent-encoded.
func decodeCoordinates(s string) (any, error) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "[") && strings.Contains(s, "%") {
		if u, err := url.QueryUnescape(s); err == nil {
			s = strings.TrimSpace(u)
		}
	}
	if !strings.HasPrefix(s, "[") {
		return nil, ngsild.Errorf(ngsild.BadRequestData, "coordinates must be a JSON array, e.g. [4.3525,50.8467]; got %q", clip(s))
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, ngsild.Errorf(ngsild.BadRequestData, "coordinates are not a valid JSON array: %v", err)
	}
	if rest := strings.TrimSpace(s[dec.InputOffset():]); rest != "" {
		return nil, ngsild.Errorf(ngsild.BadRequestData, "coordinates: unexpected text after the JSON array: %q", clip(rest))
	}
	return v, nil
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

var geometryTypes = []string{"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon"}

func build(georel, geometry string, coords any, geoproperty string, expand func(string) string) (*Query, error) {
	q := &Query{}
	if err := q.parseGeorel(georel); err != nil {
		return nil, err
	}
	typ := ""
	for _, t := range geometryTypes {
		if strings.EqualFold(t, geometry) {
			typ = t
			break
		}
	}
	if typ == "" {
		return nil, ngsild.Errorf(ngsild.BadRequestData,
			"unsupported geometry %q: expected one of %s", clip(geometry), strings.Join(geometryTypes, ", "))
	}
	g, gerr := parseCoordinates(typ, coords)
	if gerr != nil {
		return nil, ngsild.Errorf(ngsild.BadRequestData, "invalid coordinates for geometry %s: %s", typ, gerr.at("coordinates").detail())
	}
	switch q.Rel {
	case Near:
		if typ != "Point" {
			return nil, ngsild.Errorf(ngsild.BadRequestData, "georel near needs a Point geometry, got %s", typ)
		}
	case Within:
		if typ != "Polygon" && typ != "MultiPolygon" {
			return nil, ngsild.Errorf(ngsild.BadRequestData, "georel within needs a Polygon or MultiPolygon geometry, got %s", typ)
		}
	}
	q.Geometry = g
	q.Property = expandProperty(geoproperty, expand)
	q.prep = prepare(g)
	return q, nil
}

func expandProperty(name string, expand func(string) string) string {
	name = strings.TrimSpace(name)
	if name == "" {
		name = "location"
	}
	if expand != nil {
		if x := expand(name); x != "" {
			return x
		}
	}
	if name == "location" {
		return ngsild.IRILocation
	}
	return name
}

// parseGeorel parses "rel" or "near;maxDistance==M;minDistance==M".
func (q *Query) parseGeorel(s string) error {
	parts := strings.Split(s, ";")
	rel := Rel(strings.TrimSpace(parts[0]))
	switch rel {
	case Near, Within, Contains, Intersects, Overlaps, Disjoint, Equals:
	default:
		return ngsild.Errorf(ngsild.BadRequestData,
			"unknown georel %q: expected near, within, contains, intersects, overlaps, disjoint or equals", clip(string(rel)))
	}
	q.Rel = rel
	if rel != Near {
		if len(parts) > 1 {
			return ngsild.Errorf(ngsild.BadRequestData, "georel %s takes no modifiers, got %q", rel, clip(s))
		}
		return nil
	}
	if len(parts) == 1 {
		return ngsild.Errorf(ngsild.BadRequestData, "georel near needs maxDistance==<meters> or minDistance==<meters>")
	}
	for _, p := range parts[1:] {
		p = strings.TrimSpace(p)
		name, val, ok := strings.Cut(p, "==")
		if !ok {
			return ngsild.Errorf(ngsild.BadRequestData, "georel near: bad modifier %q, expected maxDistance==<meters> or minDistance==<meters>", clip(p))
		}
		d, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil || math.IsNaN(d) || math.IsInf(d, 0) || d < 0 {
			return ngsild.Errorf(ngsild.BadRequestData, "georel near: %s must be a non-negative number of meters, got %q", name, clip(val))
		}
		switch strings.TrimSpace(name) {
		case "maxDistance":
			if q.hasMax {
				return ngsild.Errorf(ngsild.BadRequestData, "georel near: maxDistance given twice")
			}
			q.MaxDistance, q.hasMax = d, true
		case "minDistance":
			if q.hasMin {
				return ngsild.Errorf(ngsild.BadRequestData, "georel near: minDistance given twice")
			}
			q.MinDistance, q.hasMin = d, true
		default:
			return ngsild.Errorf(ngsild.BadRequestData, "georel near: unknown modifier %q, expected maxDistance or minDistance", clip(name))
		}
	}
	if q.hasMax && q.hasMin && q.MinDistance > q.MaxDistance {
		return ngsild.Errorf(ngsild.BadRequestData, "georel near: minDistance %v is greater than maxDistance %v", q.MinDistance, q.MaxDistance)
	}
	return nil
}

// useMax and useMin report which distance limits apply. For a Query built as a
// literal, a positive distance counts as given.
func (q *Query) useMax() bool { return q.hasMax || q.MaxDistance > 0 }
func (q *Query) useMin() bool { return q.hasMin || q.MinDistance > 0 }

func (q *Query) shape() *shape {
	if q.prep != nil {
		return q.prep
	}
	return prepare(q.Geometry)
}

// Match reports whether any instance of e's geoproperty (kind GeoProperty)
// stands in the query's relation to the query geometry. Instances whose value
// is not a valid geometry never match.
func (q *Query) Match(e *ngsild.Entity) bool {
	if q == nil || e == nil || q.Geometry == nil {
		return false
	}
	insts := e.Attrs[q.Property]
	if len(insts) == 0 {
		return false
	}
	qs := q.shape()
	qb, hasBound := q.Bound()
	for _, a := range insts {
		if a == nil || a.Kind != ngsild.GeoProperty {
			continue
		}
		g, err := ValueGeometry(a.Value)
		if err != nil {
			continue
		}
		if hasBound && !g.Bound().Intersects(qb) {
			continue
		}
		if q.relate(g, qs) {
			return true
		}
	}
	return false
}

// ValueGeometry returns the geometry of a GeoProperty value the way Match
// reads it: a GeoJSON object, its JSON text, or an orb.Geometry already
// parsed (a store's in-memory copy).
func ValueGeometry(v any) (orb.Geometry, error) {
	if g, ok := v.(orb.Geometry); ok {
		return g, nil
	}
	if s, ok := v.(string); ok { // a geometry kept as JSON text
		var m any
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			return nil, err
		}
		v = m
	}
	return ParseGeometry(v)
}

// relate decides the relation between an entity geometry eg and the query shape qs.
func (q *Query) relate(eg orb.Geometry, qs *shape) bool {
	if q.Rel == Near {
		p, ok := q.Geometry.(orb.Point)
		if !ok {
			return false
		}
		var d float64
		if ep, ok := eg.(orb.Point); ok { // the common case, without preparing a shape
			d = orbgeo.DistanceHaversine(p, ep)
		} else {
			d = distance(p, prepare(eg))
		}
		if q.useMax() && d > q.MaxDistance {
			return false
		}
		if q.useMin() && d < q.MinDistance {
			return false
		}
		return true
	}
	es := prepare(eg)
	switch q.Rel {
	case Within:
		return within(es, qs)
	case Contains:
		return within(qs, es)
	case Intersects:
		return intersects(es, qs)
	case Disjoint:
		return !intersects(es, qs)
	case Overlaps:
		return overlaps(es, qs)
	case Equals:
		return equalGeometry(eg, q.Geometry, 1e-9)
	}
	return false
}

// Bound returns the lon/lat box that every matching entity geometry
// intersects, for an index prefilter: for near with maxDistance, the query
// point padded by maxDistance (plus a margin); for within, contains,
// intersects, overlaps and equals, the query geometry's bound. It returns
// false when no such box exists (disjoint; near with only minDistance).
func (q *Query) Bound() (orb.Bound, bool) {
	if q == nil || q.Geometry == nil {
		return orb.Bound{}, false
	}
	switch q.Rel {
	case Disjoint:
		return orb.Bound{}, false
	case Near:
		if !q.useMax() {
			return orb.Bound{}, false
		}
		p, ok := q.Geometry.(orb.Point)
		if !ok {
			return orb.Bound{}, false
		}
		return nearBound(p, q.MaxDistance), true
	case Within, Contains, Intersects, Overlaps, Equals:
		// Padded by the tolerances of the predicates (equals: 1e-9 degrees).
		if q.prep != nil {
			return q.prep.bound.Pad(boundPad), true
		}
		return Bound(q.Geometry).Pad(boundPad), true
	}
	return orb.Bound{}, false
}

// boundPad widens a query geometry's bound by the largest tolerance of the
// predicates, so the prefilter never rejects a match.
const boundPad = 1e-9

// nearBound pads p by d meters, converting to degrees of latitude and of
// longitude at the latitude farthest from the equator, with a 1% + ~1 m margin.
func nearBound(p orb.Point, d float64) orb.Bound {
	const metersPerDegree = orb.EarthRadius * math.Pi / 180
	dLat := d*1.01/metersPerDegree + 1e-5
	minLat, maxLat := p[1]-dLat, p[1]+dLat
	if minLat <= -90 || maxLat >= 90 || dLat >= 90 {
		return orb.Bound{Min: orb.Point{-180, math.Max(minLat, -90)}, Max: orb.Point{180, math.Min(maxLat, 90)}}
	}
	far := math.Max(math.Abs(minLat), math.Abs(maxLat))
	dLon := dLat / math.Cos(far*math.Pi/180)
	if dLon >= 180 || p[0]-dLon < -180 || p[0]+dLon > 180 {
		// Crosses the antimeridian: any longitude.
		return orb.Bound{Min: orb.Point{-180, minLat}, Max: orb.Point{180, maxLat}}
	}
	return orb.Bound{Min: orb.Point{p[0] - dLon, minLat}, Max: orb.Point{p[0] + dLon, maxLat}}
}

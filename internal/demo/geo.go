package demo

import (
	"embed"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/planar"
)

//go:embed data/*.geojson
var dataFS embed.FS

// feature is one GeoJSON feature as read from the embedded files: the
// geometry both parsed (for point-in-polygon) and as decoded JSON (to be
// copied unchanged into a GeoProperty).
type feature struct {
	props map[string]any
	geom  orb.Geometry
	raw   any
}

func readFeatures(name string) ([]feature, error) {
	b, err := dataFS.ReadFile("data/" + name)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	var fc struct {
		Features []struct {
			Properties map[string]any  `json:"properties"`
			Geometry   json.RawMessage `json:"geometry"`
		} `json:"features"`
	}
	if err := json.Unmarshal(b, &fc); err != nil {
		return nil, fmt.Errorf("decode %s: %w", name, err)
	}
	out := make([]feature, 0, len(fc.Features))
	for i, f := range fc.Features {
		var raw any
		if err := json.Unmarshal(f.Geometry, &raw); err != nil {
			return nil, fmt.Errorf("decode %s feature %d geometry: %w", name, i, err)
		}
		g, err := toOrb(raw)
		if err != nil {
			return nil, fmt.Errorf("decode %s feature %d geometry: %w", name, i, err)
		}
		out = append(out, feature{props: f.Properties, geom: g, raw: raw})
	}
	return out, nil
}

// toOrb converts a decoded GeoJSON Point, Polygon or MultiPolygon (the only
// geometries in the embedded files) to orb. orb/geojson is not used: it pulls
// in a BSON module that is not part of this build.
func toOrb(v any) (orb.Geometry, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("geometry is not an object")
	}
	c := m["coordinates"]
	switch m["type"] {
	case "Point":
		return toPoint(c)
	case "Polygon":
		return toPolygon(c)
	case "MultiPolygon":
		polys, ok := c.([]any)
		if !ok {
			return nil, fmt.Errorf("bad MultiPolygon coordinates")
		}
		mp := make(orb.MultiPolygon, 0, len(polys))
		for _, pc := range polys {
			p, err := toPolygon(pc)
			if err != nil {
				return nil, err
			}
			mp = append(mp, p)
		}
		return mp, nil
	}
	return nil, fmt.Errorf("unsupported geometry type %v", m["type"])
}

func toPoint(v any) (orb.Point, error) {
	c, ok := v.([]any)
	if !ok || len(c) < 2 {
		return orb.Point{}, fmt.Errorf("bad position %v", v)
	}
	x, ok1 := c[0].(float64)
	y, ok2 := c[1].(float64)
	if !ok1 || !ok2 {
		return orb.Point{}, fmt.Errorf("bad position %v", v)
	}
	return orb.Point{x, y}, nil
}

func toPolygon(v any) (orb.Polygon, error) {
	rings, ok := v.([]any)
	if !ok || len(rings) == 0 {
		return nil, fmt.Errorf("bad Polygon coordinates")
	}
	poly := make(orb.Polygon, 0, len(rings))
	for _, rv := range rings {
		pts, ok := rv.([]any)
		if !ok {
			return nil, fmt.Errorf("bad linear ring")
		}
		ring := make(orb.Ring, 0, len(pts))
		for _, pv := range pts {
			p, err := toPoint(pv)
			if err != nil {
				return nil, err
			}
			ring = append(ring, p)
		}
		poly = append(poly, ring)
	}
	return poly, nil
}

// municipality is one of the 19 municipalities of the Brussels-Capital Region.
type municipality struct {
	nis    string // NIS code, e.g. "21009"
	nameFR string
	nameNL string
	mp     orb.MultiPolygon
	bound  orb.Bound
	raw    any
}

func (m *municipality) id() string { return "urn:ngsi-ld:Municipality:" + m.nis }

func (m *municipality) contains(p orb.Point) bool {
	return m.bound.Contains(p) && planar.MultiPolygonContains(m.mp, p)
}

// geography holds the embedded boundaries, parsed once per City call.
type geography struct {
	region         orb.Polygon
	regionBound    orb.Bound
	municipalities []*municipality // sorted by NIS code
	neighbourhoods []feature       // sorted by mdzone
	stations       []feature       // sorted by iRail URI
}

func loadGeography() (*geography, error) {
	g := &geography{}

	region, err := readFeatures("brussels-region.geojson")
	if err != nil {
		return nil, err
	}
	if len(region) != 1 {
		return nil, fmt.Errorf("region: want 1 feature, got %d", len(region))
	}
	poly, ok := region[0].geom.(orb.Polygon)
	if !ok {
		return nil, fmt.Errorf("region: want a Polygon, got %s", region[0].geom.GeoJSONType())
	}
	g.region, g.regionBound = poly, poly.Bound()

	munis, err := readFeatures("brussels-municipalities.geojson")
	if err != nil {
		return nil, err
	}
	for i, f := range munis {
		mp, ok := asMultiPolygon(f.geom)
		if !ok {
			return nil, fmt.Errorf("municipality %d: unexpected geometry %s", i, f.geom.GeoJSONType())
		}
		m := &municipality{
			nis:    str(f.props["national_code"]),
			nameFR: str(f.props["name_fr"]),
			nameNL: str(f.props["name_nl"]),
			mp:     mp, bound: mp.Bound(), raw: f.raw,
		}
		if m.nis == "" || m.nameFR == "" || m.nameNL == "" {
			return nil, fmt.Errorf("municipality %d: missing national_code or names", i)
		}
		g.municipalities = append(g.municipalities, m)
	}
	sort.Slice(g.municipalities, func(i, j int) bool { return g.municipalities[i].nis < g.municipalities[j].nis })

	if g.neighbourhoods, err = readFeatures("brussels-monitoring-quartiers.geojson"); err != nil {
		return nil, err
	}
	for i, f := range g.neighbourhoods {
		if _, ok := asMultiPolygon(f.geom); !ok {
			return nil, fmt.Errorf("neighbourhood %d: unexpected geometry %s", i, f.geom.GeoJSONType())
		}
		if _, ok := f.props["mdzone"].(float64); !ok {
			return nil, fmt.Errorf("neighbourhood %d: missing mdzone", i)
		}
	}
	sort.Slice(g.neighbourhoods, func(i, j int) bool {
		return g.neighbourhoods[i].props["mdzone"].(float64) < g.neighbourhoods[j].props["mdzone"].(float64)
	})

	if g.stations, err = readFeatures("brussels-railway-stations.geojson"); err != nil {
		return nil, err
	}
	for i, f := range g.stations {
		if _, ok := f.geom.(orb.Point); !ok || str(f.props["uri"]) == "" {
			return nil, fmt.Errorf("station %d: want a Point with a uri", i)
		}
	}
	sort.Slice(g.stations, func(i, j int) bool { return str(g.stations[i].props["uri"]) < str(g.stations[j].props["uri"]) })
	return g, nil
}

func asMultiPolygon(g orb.Geometry) (orb.MultiPolygon, bool) {
	switch v := g.(type) {
	case orb.MultiPolygon:
		return v, true
	case orb.Polygon:
		return orb.MultiPolygon{v}, true
	}
	return nil, false
}

func (g *geography) inRegion(p orb.Point) bool {
	return g.regionBound.Contains(p) && planar.PolygonContains(g.region, p)
}

// municipalityAt returns the municipality containing p, or nil.
func (g *geography) municipalityAt(p orb.Point) *municipality {
	for _, m := range g.municipalities {
		if m.contains(p) {
			return m
		}
	}
	return nil
}

func (g *geography) municipalityByNIS(nis string) *municipality {
	for _, m := range g.municipalities {
		if m.nis == nis {
			return m
		}
	}
	return nil
}

// municipalityOf returns the municipality containing the centroid of mp;
// when the centroid falls outside every municipality (a concave or
// multi-part shape), the one holding most of mp's vertices.
func (g *geography) municipalityOf(mp orb.MultiPolygon) *municipality {
	c, _ := planar.CentroidArea(mp)
	if m := g.municipalityAt(c); m != nil {
		return m
	}
	votes := make(map[*municipality]int)
	for _, poly := range mp {
		for _, ring := range poly {
			for _, p := range ring {
				if m := g.municipalityAt(p); m != nil {
					votes[m]++
				}
			}
		}
	}
	var best *municipality
	for _, m := range g.municipalities { // deterministic tie-break by NIS order
		if votes[m] > votes[best] {
			best = m
		}
	}
	return best
}

// Centre of the demo city: the Grand-Place.
const centreLon, centreLat = 4.3525, 50.8467

// randomPoint draws a point inside the region (and inside one of its
// municipalities) by rejection sampling, denser towards the centre: a point at
// d km from the Grand-Place is kept with probability 0.2 + 0.8·exp(-d²/2σ²),
// σ = 3 km. Coordinates are rounded to 6 decimals (about 10 cm) before the
// containment test, so the returned point is exactly the one tested.
func (g *geography) randomPoint(r *rand.Rand) (orb.Point, *municipality, error) {
	b := g.regionBound
	for range 1_000_000 {
		p := orb.Point{
			round(b.Min[0]+r.Float64()*(b.Max[0]-b.Min[0]), 6),
			round(b.Min[1]+r.Float64()*(b.Max[1]-b.Min[1]), 6),
		}
		d := distanceKm(p, orb.Point{centreLon, centreLat})
		if r.Float64() > 0.2+0.8*math.Exp(-d*d/(2*3*3)) {
			continue
		}
		if !g.inRegion(p) {
			continue
		}
		if m := g.municipalityAt(p); m != nil {
			return p, m, nil
		}
	}
	return orb.Point{}, nil, fmt.Errorf("random point: no point found inside the region")
}

// distanceKm is an equirectangular approximation, good enough at city scale.
func distanceKm(a, b orb.Point) float64 {
	const kmPerDeg = 111.32
	dx := (a[0] - b[0]) * kmPerDeg * math.Cos((a[1]+b[1])/2*math.Pi/180)
	dy := (a[1] - b[1]) * kmPerDeg
	return math.Hypot(dx, dy)
}

func round(x float64, decimals int) float64 {
	p := math.Pow10(decimals)
	return math.Round(x*p) / p
}

// str renders a GeoJSON property as a string ("" when absent); whole numbers
// print without a decimal point.
func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return ""
}

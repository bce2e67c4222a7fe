package geo

import (
	"encoding/json"
	"testing"

	"github.com/paulmach/orb"

	"github.com/zenne-city/zenne/internal/ngsild"
)

// geoJSONMap renders an orb geometry as a decoded GeoJSON object, the way
// entity values are held.
func geoJSONMap(g orb.Geometry) map[string]any {
	pos := func(p orb.Point) []any { return []any{p[0], p[1]} }
	line := func(ps []orb.Point) []any {
		out := make([]any, len(ps))
		for i, p := range ps {
			out[i] = pos(p)
		}
		return out
	}
	poly := func(pg orb.Polygon) []any {
		out := make([]any, len(pg))
		for i, r := range pg {
			out[i] = line(r)
		}
		return out
	}
	switch x := g.(type) {
	case orb.Point:
		return map[string]any{"type": "Point", "coordinates": pos(x)}
	case orb.MultiPoint:
		return map[string]any{"type": "MultiPoint", "coordinates": line(x)}
	case orb.LineString:
		return map[string]any{"type": "LineString", "coordinates": line(x)}
	case orb.MultiLineString:
		out := make([]any, len(x))
		for i, l := range x {
			out[i] = line(l)
		}
		return map[string]any{"type": "MultiLineString", "coordinates": out}
	case orb.Polygon:
		return map[string]any{"type": "Polygon", "coordinates": poly(x)}
	case orb.MultiPolygon:
		out := make([]any, len(x))
		for i, pg := range x {
			out[i] = poly(pg)
		}
		return map[string]any{"type": "MultiPolygon", "coordinates": out}
	case orb.Collection:
		out := make([]any, len(x))
		for i, c := range x {
			out[i] = geoJSONMap(c)
		}
		return map[string]any{"type": "GeometryCollection", "geometries": out}
	}
	return nil
}

func geoEntity(v any) *ngsild.Entity {
	return &ngsild.Entity{ID: "urn:fuzz", Attrs: map[string][]*ngsild.Attribute{
		ngsild.IRILocation: {{Kind: ngsild.GeoProperty, Value: v}},
	}}
}

var fuzzEntities = []string{
	pointJSON(grandPlace),
	holedPoly,
	gpToAtomium,
	twoAreasMulti,
	`{"type":"GeometryCollection","geometries":[` + pointJSON(atomium) + `,` + gpToAtomium + `]}`,
	`{"type":"Polygon","coordinates":[[[0,0],[0,0],[0,0],[0,0]]]}`,
}

// checkSelf asserts the relations every valid geometry has with itself.
func checkSelf(t *testing.T, g orb.Geometry) {
	e := geoEntity(geoJSONMap(g))
	for _, rel := range []Rel{Intersects, Equals} {
		q := &Query{Rel: rel, Geometry: g, Property: ngsild.IRILocation}
		if !q.Match(e) {
			t.Fatalf("%s: geometry %v does not match itself", rel, g)
		}
	}
	if (&Query{Rel: Disjoint, Geometry: g, Property: ngsild.IRILocation}).Match(e) {
		t.Fatalf("disjoint: geometry %v is disjoint from itself", g)
	}
}

func FuzzParseGeoQuery(f *testing.F) {
	f.Add("near;maxDistance==500", "Point", "[4.3525,50.8467]")
	f.Add("near;minDistance==100;maxDistance==6000", "Point", "%5B4.3416%2C50.8949%5D")
	f.Add("within", "Polygon", "["+pentagon+","+gpHole+"]")
	f.Add("intersects", "LineString", "[[4.3525,50.8467],[4.3416,50.8949]]")
	f.Add("overlaps", "MultiPolygon", "[["+pentagon+"]]")
	f.Add("equals", "MultiPoint", "[[1,2],[3,4]]")
	f.Add("disjoint", "MultiLineString", "[[[0,0],[1,1]]]")
	f.Add("contains", "point", "[1,2,3]")
	f.Add("near", "Point", "[1]")
	f.Fuzz(func(t *testing.T, georel, geometry, coordinates string) {
		q, err := ParseQuery(georel, geometry, coordinates, "", nil)
		if err != nil {
			if !ngsild.IsType(err, ngsild.BadRequestData) {
				t.Fatalf("error of the wrong type: %v", err)
			}
			return
		}
		if q == nil {
			return
		}
		q.Bound()
		for _, s := range fuzzEntities {
			e := geoEntity(decode(t, s))
			got := q.Match(e)
			if b, ok := q.Bound(); ok && got {
				g, _ := ParseGeometry(e.Attrs[ngsild.IRILocation][0].Value)
				if !Bound(g).Intersects(b) {
					t.Fatalf("match outside Bound %v", b)
				}
			}
		}
		checkSelf(t, q.Geometry)
	})
}

func FuzzParseGeometry(f *testing.F) {
	for _, s := range fuzzEntities {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"type":"MultiLineString","coordinates":[[[0,0],[1,1]],[[1,0],[0,1]]]}`))
	f.Add([]byte(`{"type":"Polygon","coordinates":[[[0,0],[2,0],[0,2],[2,2],[0,0]]]}`)) // bow tie
	f.Add([]byte(`{"type":"Point","coordinates":[180,-90,12]}`))
	f.Add([]byte(`{"type":"LineString","coordinates":[[0,0]]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var v any
		if json.Unmarshal(data, &v) != nil {
			return
		}
		g, err := ParseGeometry(v)
		if err != nil {
			if !ngsild.IsType(err, ngsild.BadRequestData) {
				t.Fatalf("error of the wrong type: %v", err)
			}
			return
		}
		checkSelf(t, g)
		e := geoEntity(v)
		for _, rel := range []Rel{Within, Contains, Intersects, Overlaps, Disjoint, Equals} {
			for _, s := range fuzzEntities {
				qg, err := ParseGeometry(decode(t, s))
				if err != nil {
					t.Fatal(err)
				}
				(&Query{Rel: rel, Geometry: qg, Property: ngsild.IRILocation}).Match(e)
				(&Query{Rel: rel, Geometry: g, Property: ngsild.IRILocation}).Match(geoEntity(decode(t, s)))
			}
		}
		(&Query{Rel: Near, Geometry: orb.Point(grandPlace), Property: ngsild.IRILocation, MaxDistance: 1000}).Match(e)
	})
}

package geo

import (
	"fmt"
	"math"
	"testing"

	"github.com/paulmach/orb"
	orbgeo "github.com/paulmach/orb/geo"

	"github.com/zenne-city/zenne/internal/ngsild"
)

// Test shapes around central Brussels. "pentagon" is a box over the city
// centre with a hole around the Grand-Place.
var (
	pentagon      = square(4.34, 50.83, 4.37, 50.86)
	gpHole        = square(4.35, 50.845, 4.355, 50.848)
	pentagonPoly  = polyJSON(pentagon)
	holedPoly     = polyJSON(pentagon, gpHole)
	heyselPoly    = polyJSON(square(4.33, 50.89, 4.35, 50.90)) // around the Atomium
	twoAreasMulti = `{"type":"MultiPolygon","coordinates":[[` + pentagon + `],[` + square(4.33, 50.89, 4.35, 50.90) + `]]}`
	// a line from the Grand-Place to the Atomium: starts in the pentagon, ends in Heysel
	gpToAtomium = `{"type":"LineString","coordinates":[[4.3525,50.8467],[4.3416,50.8949]]}`
)

func coords(p [2]float64) string { return fmt.Sprintf("[%v,%v]", p[0], p[1]) }

func TestMatch(t *testing.T) {
	type tc struct {
		name     string
		entity   string // GeoJSON of the entity's location
		georel   string
		geometry string
		coords   string
		want     bool
	}
	polyQ := func(rings ...string) string { // coordinates of a Polygon query
		s := "["
		for i, r := range rings {
			if i > 0 {
				s += ","
			}
			s += r
		}
		return s + "]"
	}
	tests := []tc{
		// within (query is areal)
		{"within: point inside", pointJSON(grandPlace), "within", "Polygon", polyQ(pentagon), true},
		{"within: point outside", pointJSON(atomium), "within", "Polygon", polyQ(pentagon), false},
		{"within: point in hole", pointJSON(grandPlace), "within", "Polygon", polyQ(pentagon, gpHole), false},
		{"within: point on edge is not within", `{"type":"Point","coordinates":[4.34,50.84]}`, "within", "Polygon", polyQ(pentagon), false},
		{"within: point on hole edge", `{"type":"Point","coordinates":[4.35,50.846]}`, "within", "Polygon", polyQ(pentagon, gpHole), false},
		{"within: point in second part of multipolygon", pointJSON(atomium), "within", "MultiPolygon", "[[" + pentagon + "],[" + square(4.33, 50.89, 4.35, 50.90) + "]]", true},
		{"within: multipoint all inside", `{"type":"MultiPoint","coordinates":[[4.3525,50.8467],[4.345,50.835]]}`, "within", "Polygon", polyQ(pentagon), true},
		{"within: multipoint one outside", `{"type":"MultiPoint","coordinates":[[4.3525,50.8467],[4.3416,50.8949]]}`, "within", "Polygon", polyQ(pentagon), false},
		{"within: line inside", `{"type":"LineString","coordinates":[[4.345,50.835],[4.365,50.855]]}`, "within", "Polygon", polyQ(pentagon), true},
		{"within: line crossing out", gpToAtomium, "within", "Polygon", polyQ(pentagon), false},
		{"within: line crossing the hole", `{"type":"LineString","coordinates":[[4.345,50.8465],[4.365,50.8465]]}`, "within", "Polygon", polyQ(pentagon, gpHole), false},
		{"within: line beside the hole", `{"type":"LineString","coordinates":[[4.345,50.84],[4.365,50.84]]}`, "within", "Polygon", polyQ(pentagon, gpHole), true},
		{"within: line along the edge only", `{"type":"LineString","coordinates":[[4.34,50.83],[4.37,50.83]]}`, "within", "Polygon", polyQ(pentagon), false},
		{"within: line across the mouth of a U", `{"type":"LineString","coordinates":[[0.5,2.5],[2.5,2.5]]}`, "within", "Polygon", "[[[0,0],[3,0],[3,3],[2,3],[2,1],[1,1],[1,3],[0,3],[0,0]]]", false},
		{"within: line inside an arm of a U", `{"type":"LineString","coordinates":[[0.5,0.5],[2.5,0.5],[2.5,2.5]]}`, "within", "Polygon", "[[[0,0],[3,0],[3,3],[2,3],[2,1],[1,1],[1,3],[0,3],[0,0]]]", true},
		{"within: polygon inside", polyJSON(square(4.35, 50.84, 4.36, 50.85)), "within", "Polygon", polyQ(pentagon), true},
		{"within: polygon equal", pentagonPoly, "within", "Polygon", polyQ(pentagon), true},
		{"within: polygon sharing an edge, inside", polyJSON(square(4.34, 50.83, 4.35, 50.84)), "within", "Polygon", polyQ(pentagon), true},
		{"within: polygon partly outside", polyJSON(square(4.36, 50.85, 4.38, 50.87)), "within", "Polygon", polyQ(pentagon), false},
		{"within: polygon around the query's hole", polyJSON(square(4.345, 50.84, 4.36, 50.85)), "within", "Polygon", polyQ(pentagon, gpHole), false},
		{"within: polygon equal to the query's hole", polyJSON(gpHole), "within", "Polygon", polyQ(pentagon, gpHole), false},
		{"within: polygon with the same hole", holedPoly, "within", "Polygon", polyQ(pentagon, gpHole), true},
		{"within: holed polygon in plain one", holedPoly, "within", "Polygon", polyQ(pentagon), true},
		{"within: plain polygon in holed one", pentagonPoly, "within", "Polygon", polyQ(pentagon, gpHole), false},
		{"within: multipolygon across both parts", twoAreasMulti, "within", "MultiPolygon", "[[" + pentagon + "],[" + square(4.33, 50.89, 4.35, 50.90) + "]]", true},
		{"within: collection inside", `{"type":"GeometryCollection","geometries":[` + pointJSON(grandPlace) + `,{"type":"LineString","coordinates":[[4.345,50.835],[4.365,50.855]]}]}`, "within", "Polygon", polyQ(pentagon), true},
		{"within: collection partly outside", `{"type":"GeometryCollection","geometries":[` + pointJSON(grandPlace) + `,` + pointJSON(atomium) + `]}`, "within", "Polygon", polyQ(pentagon), false},

		// contains (entity contains query)
		{"contains: polygon contains point", pentagonPoly, "contains", "Point", coords(grandPlace), true},
		{"contains: holed polygon, point in hole", holedPoly, "contains", "Point", coords(grandPlace), false},
		{"contains: polygon, point on edge", pentagonPoly, "contains", "Point", "[4.34,50.84]", false},
		{"contains: polygon contains polygon", pentagonPoly, "contains", "Polygon", polyQ(square(4.35, 50.84, 4.36, 50.85)), true},
		{"contains: polygon does not contain bigger", polyJSON(square(4.35, 50.84, 4.36, 50.85)), "contains", "Polygon", polyQ(pentagon), false},
		{"contains: multipolygon contains point in part 2", twoAreasMulti, "contains", "Point", coords(atomium), true},
		{"contains: multipolygon, line across the gap", twoAreasMulti, "contains", "LineString", "[[4.3525,50.8467],[4.3416,50.8949]]", false},
		{"contains: point contains same point", pointJSON(grandPlace), "contains", "Point", coords(grandPlace), true},
		{"contains: line contains interior point", gpToAtomium, "contains", "Point", "[4.34705,50.8708]", true},
		{"contains: line does not contain its endpoint", gpToAtomium, "contains", "Point", coords(grandPlace), false},
		{"contains: line contains sub-line", `{"type":"LineString","coordinates":[[0,0],[1,1],[2,2]]}`, "contains", "LineString", "[[0.5,0.5],[1.5,1.5]]", true},
		{"contains: point does not contain line", pointJSON(grandPlace), "contains", "LineString", "[[4.3525,50.8467],[4.3416,50.8949]]", false},

		// intersects
		{"intersects: point in polygon", pointJSON(grandPlace), "intersects", "Polygon", polyQ(pentagon), true},
		{"intersects: point on edge", `{"type":"Point","coordinates":[4.34,50.84]}`, "intersects", "Polygon", polyQ(pentagon), true},
		{"intersects: point in hole", pointJSON(grandPlace), "intersects", "Polygon", polyQ(pentagon, gpHole), false},
		{"intersects: point outside", pointJSON(atomium), "intersects", "Polygon", polyQ(pentagon), false},
		{"intersects: same point", pointJSON(atomium), "intersects", "Point", coords(atomium), true},
		{"intersects: different points", pointJSON(atomium), "intersects", "Point", coords(grandPlace), false},
		{"intersects: point on line", `{"type":"Point","coordinates":[4.34705,50.8708]}`, "intersects", "LineString", "[[4.3525,50.8467],[4.3416,50.8949]]", true},
		{"intersects: line crosses polygon without a vertex inside", `{"type":"LineString","coordinates":[[4.30,50.845],[4.40,50.845]]}`, "intersects", "Polygon", polyQ(pentagon), true},
		{"intersects: line inside polygon", `{"type":"LineString","coordinates":[[4.345,50.835],[4.365,50.855]]}`, "intersects", "Polygon", polyQ(pentagon), true},
		{"intersects: line inside hole", `{"type":"LineString","coordinates":[[4.351,50.846],[4.354,50.847]]}`, "intersects", "Polygon", polyQ(pentagon, gpHole), false},
		{"intersects: crossing lines", `{"type":"LineString","coordinates":[[0,0],[2,2]]}`, "intersects", "LineString", "[[0,2],[2,0]]", true},
		{"intersects: lines touching at ends", `{"type":"LineString","coordinates":[[0,0],[1,1]]}`, "intersects", "LineString", "[[1,1],[2,0]]", true},
		{"intersects: parallel lines", `{"type":"LineString","coordinates":[[0,0],[2,2]]}`, "intersects", "LineString", "[[0,1],[2,3]]", false},
		{"intersects: collinear apart", `{"type":"LineString","coordinates":[[0,0],[1,1]]}`, "intersects", "LineString", "[[2,2],[3,3]]", false},
		{"intersects: polygons overlapping", polyJSON(square(4.36, 50.85, 4.38, 50.87)), "intersects", "Polygon", polyQ(pentagon), true},
		{"intersects: polygon inside polygon", polyJSON(square(4.35, 50.84, 4.36, 50.85)), "intersects", "Polygon", polyQ(pentagon), true},
		{"intersects: polygon around query", pentagonPoly, "intersects", "Polygon", polyQ(square(4.35, 50.84, 4.36, 50.85)), true},
		{"intersects: polygon inside the hole", polyJSON(square(4.351, 50.846, 4.354, 50.847)), "intersects", "Polygon", polyQ(pentagon, gpHole), false},
		{"intersects: polygons touching at a corner", polyJSON(square(4.37, 50.86, 4.38, 50.87)), "intersects", "Polygon", polyQ(pentagon), true},
		{"intersects: polygons apart", heyselPoly, "intersects", "Polygon", polyQ(pentagon), false},
		{"intersects: multipolygon vs line", twoAreasMulti, "intersects", "LineString", "[[4.3525,50.8467],[4.3416,50.8949]]", true},
		{"intersects: collection, one part hits", `{"type":"GeometryCollection","geometries":[` + pointJSON(atomium) + `,` + pointJSON(grandPlace) + `]}`, "intersects", "Polygon", polyQ(pentagon), true},
		{"intersects: multipoint vs multipoint", `{"type":"MultiPoint","coordinates":[[1,1],[2,2]]}`, "intersects", "MultiPoint", "[[3,3],[2,2]]", true},
		{"intersects: multilinestring vs polygon", `{"type":"MultiLineString","coordinates":[[[0,5],[0,6]],[[4.3,50.85],[4.4,50.85]]]}`, "intersects", "Polygon", polyQ(pentagon), true},

		// disjoint
		{"disjoint: point outside", pointJSON(atomium), "disjoint", "Polygon", polyQ(pentagon), true},
		{"disjoint: point inside", pointJSON(grandPlace), "disjoint", "Polygon", polyQ(pentagon), false},
		{"disjoint: point in hole", pointJSON(grandPlace), "disjoint", "Polygon", polyQ(pentagon, gpHole), true},
		{"disjoint: polygons apart", heyselPoly, "disjoint", "Polygon", polyQ(pentagon), true},
		{"disjoint: crossing lines", `{"type":"LineString","coordinates":[[0,0],[2,2]]}`, "disjoint", "LineString", "[[0,2],[2,0]]", false},
		{"disjoint: far point", pointJSON(grandPlace), "disjoint", "Point", coords(atomium), true},

		// overlaps
		{"overlaps: polygons overlapping", polyJSON(square(4.36, 50.85, 4.38, 50.87)), "overlaps", "Polygon", polyQ(pentagon), true},
		{"overlaps: polygon inside", polyJSON(square(4.35, 50.84, 4.36, 50.85)), "overlaps", "Polygon", polyQ(pentagon), false},
		{"overlaps: polygon around", pentagonPoly, "overlaps", "Polygon", polyQ(square(4.35, 50.84, 4.36, 50.85)), false},
		{"overlaps: equal polygons", pentagonPoly, "overlaps", "Polygon", polyQ(pentagon), false},
		{"overlaps: touching at an edge", polyJSON(square(4.37, 50.83, 4.38, 50.86)), "overlaps", "Polygon", polyQ(pentagon), false},
		{"overlaps: apart", heyselPoly, "overlaps", "Polygon", polyQ(pentagon), false},
		{"overlaps: polygon over the hole edge", polyJSON(square(4.352, 50.846, 4.36, 50.85)), "overlaps", "Polygon", polyQ(pentagon, gpHole), true},
		{"overlaps: polygon inside the hole", polyJSON(square(4.351, 50.846, 4.354, 50.847)), "overlaps", "Polygon", polyQ(pentagon, gpHole), false},
		{"overlaps: point vs polygon (dimensions differ)", pointJSON(grandPlace), "overlaps", "Polygon", polyQ(pentagon), false},
		{"overlaps: collinear lines sharing a stretch", `{"type":"LineString","coordinates":[[0,0],[2,2]]}`, "overlaps", "LineString", "[[1,1],[3,3]]", true},
		{"overlaps: crossing lines", `{"type":"LineString","coordinates":[[0,0],[2,2]]}`, "overlaps", "LineString", "[[0,2],[2,0]]", false},
		{"overlaps: line inside line", `{"type":"LineString","coordinates":[[0,0],[3,3]]}`, "overlaps", "LineString", "[[1,1],[2,2]]", false},
		{"overlaps: multipoints sharing some", `{"type":"MultiPoint","coordinates":[[1,1],[2,2]]}`, "overlaps", "MultiPoint", "[[2,2],[3,3]]", true},
		{"overlaps: multipoint subset", `{"type":"MultiPoint","coordinates":[[1,1],[2,2]]}`, "overlaps", "MultiPoint", "[[2,2]]", false},
		{"overlaps: multipolygon part overlaps", twoAreasMulti, "overlaps", "Polygon", polyQ(square(4.36, 50.85, 4.38, 50.87)), true},

		// equals
		{"equals: same point", pointJSON(grandPlace), "equals", "Point", coords(grandPlace), true},
		{"equals: point within 1e-10", pointJSON(grandPlace), "equals", "Point", "[4.3525000001,50.8467]", true},
		{"equals: point 1e-6 away", pointJSON(grandPlace), "equals", "Point", "[4.352501,50.8467]", false},
		{"equals: same polygon", holedPoly, "equals", "Polygon", polyQ(pentagon, gpHole), true},
		{"equals: polygon without the hole", pentagonPoly, "equals", "Polygon", polyQ(pentagon, gpHole), false},
		{"equals: ring starting elsewhere", pentagonPoly, "equals", "Polygon", "[[[4.37,50.83],[4.37,50.86],[4.34,50.86],[4.34,50.83],[4.37,50.83]]]", true},
		{"equals: ring reversed", pentagonPoly, "equals", "Polygon", "[[[4.34,50.83],[4.34,50.86],[4.37,50.86],[4.37,50.83],[4.34,50.83]]]", true},
		{"equals: line reversed", gpToAtomium, "equals", "LineString", "[[4.3416,50.8949],[4.3525,50.8467]]", true},
		{"equals: line vs longer line", gpToAtomium, "equals", "LineString", "[[4.3416,50.8949],[4.3525,50.8467],[4.36,50.84]]", false},
		{"equals: point vs polygon", pointJSON(grandPlace), "equals", "Polygon", polyQ(pentagon), false},
		{"equals: multipolygon", twoAreasMulti, "equals", "MultiPolygon", "[[" + pentagon + "],[" + square(4.33, 50.89, 4.35, 50.90) + "]]", true},

		// near (meters on WGS84)
		{"near: atomium within 6 km of grand-place", pointJSON(atomium), "near;maxDistance==6000", "Point", coords(grandPlace), true},
		{"near: atomium not within 5 km", pointJSON(atomium), "near;maxDistance==5000", "Point", coords(grandPlace), false},
		{"near: atomium beyond 5 km", pointJSON(atomium), "near;minDistance==5000", "Point", coords(grandPlace), true},
		{"near: atomium not beyond 6 km", pointJSON(atomium), "near;minDistance==6000", "Point", coords(grandPlace), false},
		{"near: ring 5-6 km", pointJSON(atomium), "near;minDistance==5000;maxDistance==6000", "Point", coords(grandPlace), true},
		{"near: same point, max 0", pointJSON(grandPlace), "near;maxDistance==0", "Point", coords(grandPlace), true},
		{"near: point in polygon has distance 0", pentagonPoly, "near;maxDistance==0", "Point", coords(grandPlace), true},
		{"near: point in polygon, minDistance 1", pentagonPoly, "near;minDistance==1", "Point", coords(grandPlace), false},
		{"near: point in the hole is not at distance 0", holedPoly, "near;minDistance==50", "Point", coords(grandPlace), true},
		{"near: line passing 5.4 km away at its end", gpToAtomium, "near;maxDistance==10", "Point", coords(atomium), true},
		{"near: polygon edge is ~3.88 km from the atomium", pentagonPoly, "near;maxDistance==3900", "Point", coords(atomium), true},
		{"near: polygon edge not within 3.85 km", pentagonPoly, "near;maxDistance==3850", "Point", coords(atomium), false},
		{"near: collection, the nearest part counts", `{"type":"GeometryCollection","geometries":[` + pointJSON(grandPlace) + `,` + pointJSON(atomium) + `]}`, "near;maxDistance==100", "Point", coords(atomium), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q, err := ParseQuery(tc.georel, tc.geometry, tc.coords, "", nil)
			if err != nil {
				t.Fatalf("ParseQuery: %v", err)
			}
			e := entity(t, tc.entity)
			if got := q.Match(e); got != tc.want {
				t.Fatalf("Match = %v, want %v", got, tc.want)
			}
			// A match must lie in the query's bound (the index prefilter).
			if b, ok := q.Bound(); ok && tc.want {
				g, _ := ParseGeometry(e.Attrs[ngsild.IRILocation][0].Value)
				if !Bound(g).Intersects(b) {
					t.Fatalf("match outside Bound %v", b)
				}
			}
			// A query built as a literal gives the same answer.
			lit := &Query{Rel: q.Rel, Geometry: q.Geometry, Property: q.Property, MaxDistance: q.MaxDistance, MinDistance: q.MinDistance}
			if got := lit.Match(e); got != tc.want {
				t.Fatalf("literal Query: Match = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestNearBoundary(t *testing.T) {
	gp := orb.Point(grandPlace)
	d := orbgeo.DistanceHaversine(gp, orb.Point(atomium))
	if d < 5300 || d > 5500 {
		t.Fatalf("Grand-Place to Atomium = %v m, want about 5.4 km", d)
	}
	check := func(t *testing.T, entityJSON string, georel string, want bool) {
		t.Helper()
		q, err := ParseQuery(georel, "Point", coords(grandPlace), "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := q.Match(entity(t, entityJSON)); got != want {
			t.Fatalf("%s: Match = %v, want %v", georel, got, want)
		}
	}
	t.Run("atomium by a few meters", func(t *testing.T) {
		check(t, pointJSON(atomium), fmt.Sprintf("near;maxDistance==%.1f", d+3), true)
		check(t, pointJSON(atomium), fmt.Sprintf("near;maxDistance==%.1f", d-3), false)
		check(t, pointJSON(atomium), fmt.Sprintf("near;minDistance==%.1f", d-3), true)
		check(t, pointJSON(atomium), fmt.Sprintf("near;minDistance==%.1f", d+3), false)
	})
	for _, bearing := range []float64{0, 60, 90, 200, 270} {
		t.Run(fmt.Sprintf("500 m at bearing %v", bearing), func(t *testing.T) {
			p := orbgeo.PointAtBearingAndDistance(gp, bearing, 500)
			pj := fmt.Sprintf(`{"type":"Point","coordinates":[%.10f,%.10f]}`, p[0], p[1])
			check(t, pj, "near;maxDistance==503", true)
			check(t, pj, "near;maxDistance==497", false)
		})
	}
	t.Run("line passing 300 m north", func(t *testing.T) {
		dLat := 300 / (orb.EarthRadius * math.Pi / 180)
		lj := fmt.Sprintf(`{"type":"LineString","coordinates":[[4.30,%.10f],[4.40,%.10f]]}`, grandPlace[1]+dLat, grandPlace[1]+dLat)
		check(t, lj, "near;maxDistance==303", true)
		check(t, lj, "near;maxDistance==297", false)
	})
	t.Run("polygon edge 300 m east", func(t *testing.T) {
		dLon := 300 / (orb.EarthRadius * math.Pi / 180 * math.Cos(grandPlace[1]*math.Pi/180))
		x := grandPlace[0] + dLon
		pj := polyJSON(fmt.Sprintf(`[[%.10f,50.80],[4.40,50.80],[4.40,50.90],[%.10f,50.90],[%.10f,50.80]]`, x, x, x))
		check(t, pj, "near;maxDistance==303", true)
		check(t, pj, "near;maxDistance==297", false)
	})
}

func TestMatchEntityShapes(t *testing.T) {
	q, err := ParseQuery("near;maxDistance==100", "Point", coords(atomium), "observationSpace", testExpand)
	if err != nil {
		t.Fatal(err)
	}
	prop := ngsild.IRIObservationSpace
	mk := func(insts ...*ngsild.Attribute) *ngsild.Entity {
		return &ngsild.Entity{ID: "urn:x", Attrs: map[string][]*ngsild.Attribute{prop: insts}}
	}
	geoAttr := func(v any) *ngsild.Attribute { return &ngsild.Attribute{Kind: ngsild.GeoProperty, Value: v} }
	tests := []struct {
		name string
		e    *ngsild.Entity
		want bool
	}{
		{"second instance matches", mk(geoAttr(decode(t, pointJSON(grandPlace))), geoAttr(decode(t, pointJSON(atomium)))), true},
		{"no instance matches", mk(geoAttr(decode(t, pointJSON(grandPlace)))), false},
		{"not a GeoProperty", mk(&ngsild.Attribute{Kind: ngsild.Property, Value: decode(t, pointJSON(atomium))}), false},
		{"invalid geometry skipped", mk(geoAttr("nonsense"), geoAttr(map[string]any{"type": "Point"}), geoAttr(decode(t, pointJSON(atomium)))), true},
		{"geometry as JSON text", mk(geoAttr(pointJSON(atomium))), true},
		{"nil instance", mk(nil), false},
		{"other attribute only", entity(t, pointJSON(atomium)), false},
		{"no attributes", &ngsild.Entity{ID: "urn:y"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := q.Match(tc.e); got != tc.want {
				t.Fatalf("Match = %v, want %v", got, tc.want)
			}
		})
	}
	if (*Query)(nil).Match(mk()) || q.Match(nil) {
		t.Fatal("nil query or entity matched")
	}
}

func TestMatchConcurrent(t *testing.T) {
	q, err := ParseQuery("within", "Polygon", "["+pentagon+","+gpHole+"]", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	in, out := entity(t, `{"type":"Point","coordinates":[4.345,50.835]}`), entity(t, pointJSON(grandPlace))
	done := make(chan bool)
	for range 8 {
		go func() {
			ok := true
			for range 200 {
				ok = ok && q.Match(in) && !q.Match(out)
			}
			done <- ok
		}()
	}
	for range 8 {
		if !<-done {
			t.Fatal("concurrent Match gave a wrong answer")
		}
	}
}

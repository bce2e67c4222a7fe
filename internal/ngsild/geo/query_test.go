package geo

import (
	"math"
	"strings"
	"testing"

	"github.com/paulmach/orb"
	orbgeo "github.com/paulmach/orb/geo"

	"github.com/zenne-city/zenne/internal/ngsild"
)

func testExpand(s string) string {
	if strings.Contains(s, ":") {
		return s
	}
	switch s {
	case "location", "observationSpace", "operationSpace":
		return ngsild.CoreNS + s
	}
	return ngsild.DefaultContextNS + s
}

func TestParseQuery(t *testing.T) {
	tests := []struct {
		name                                   string
		georel, geometry, coordinates, geoprop string
		expand                                 func(string) string
		want                                   *Query // compared on Rel, distances, Property, Geometry
		err                                    string
	}{
		{name: "none", want: nil},
		{name: "near max", georel: "near;maxDistance==500", geometry: "Point", coordinates: "[4.3525,50.8467]", expand: testExpand,
			want: &Query{Rel: Near, MaxDistance: 500, Property: ngsild.IRILocation, Geometry: orb.Point{4.3525, 50.8467}}},
		{name: "near min", georel: "near;minDistance==100", geometry: "Point", coordinates: "[4.3525,50.8467]",
			want: &Query{Rel: Near, MinDistance: 100, Property: ngsild.IRILocation, Geometry: orb.Point{4.3525, 50.8467}}},
		{name: "near both", georel: "near;minDistance==100;maxDistance==2000.5", geometry: "Point", coordinates: "[4.3525,50.8467]",
			want: &Query{Rel: Near, MinDistance: 100, MaxDistance: 2000.5, Property: ngsild.IRILocation, Geometry: orb.Point{4.3525, 50.8467}}},
		{name: "percent-encoded coordinates", georel: "near;maxDistance==10", geometry: "Point", coordinates: "%5B4.3525%2C50.8467%5D",
			want: &Query{Rel: Near, MaxDistance: 10, Property: ngsild.IRILocation, Geometry: orb.Point{4.3525, 50.8467}}},
		{name: "lowercase geometry", georel: "near;maxDistance==10", geometry: "point", coordinates: " [4.3525, 50.8467] ",
			want: &Query{Rel: Near, MaxDistance: 10, Property: ngsild.IRILocation, Geometry: orb.Point{4.3525, 50.8467}}},
		{name: "within polygon", georel: "within", geometry: "Polygon", coordinates: "[" + square(4.34, 50.83, 4.37, 50.86) + "]",
			want: &Query{Rel: Within, Property: ngsild.IRILocation, Geometry: orb.Polygon{{{4.34, 50.83}, {4.37, 50.83}, {4.37, 50.86}, {4.34, 50.86}, {4.34, 50.83}}}}},
		{name: "intersects linestring, custom property", georel: "intersects", geometry: "LineString", coordinates: "[[4.3525,50.8467],[4.3416,50.8949]]",
			geoprop: "observationSpace", expand: testExpand,
			want: &Query{Rel: Intersects, Property: ngsild.IRIObservationSpace, Geometry: orb.LineString{{4.3525, 50.8467}, {4.3416, 50.8949}}}},
		{name: "geoproperty without expander", georel: "equals", geometry: "Point", coordinates: "[1,2]", geoprop: "https://example.org/where",
			want: &Query{Rel: Equals, Property: "https://example.org/where", Geometry: orb.Point{1, 2}}},
		{name: "contains multipoint", georel: "contains", geometry: "MultiPoint", coordinates: "[[1,2],[3,4]]",
			want: &Query{Rel: Contains, Property: ngsild.IRILocation, Geometry: orb.MultiPoint{{1, 2}, {3, 4}}}},
		{name: "disjoint multipolygon", georel: "disjoint", geometry: "MultiPolygon", coordinates: "[[" + square(0, 0, 1, 1) + "]]",
			want: &Query{Rel: Disjoint, Property: ngsild.IRILocation, Geometry: orb.MultiPolygon{{{{0, 0}, {1, 0}, {1, 1}, {0, 1}, {0, 0}}}}}},
		{name: "overlaps multilinestring", georel: "overlaps", geometry: "MultiLineString", coordinates: "[[[0,0],[1,1]]]",
			want: &Query{Rel: Overlaps, Property: ngsild.IRILocation, Geometry: orb.MultiLineString{{{0, 0}, {1, 1}}}}},

		{name: "georel without geometry", georel: "within", err: "missing geometry, coordinates"},
		{name: "geometry without georel", geometry: "Point", coordinates: "[1,2]", err: "missing georel"},
		{name: "coordinates only", coordinates: "[1,2]", err: "missing georel, geometry"},
		{name: "unknown georel", georel: "nearby", geometry: "Point", coordinates: "[1,2]", err: `unknown georel "nearby"`},
		{name: "near without distance", georel: "near", geometry: "Point", coordinates: "[1,2]", err: "near needs maxDistance==<meters> or minDistance==<meters>"},
		{name: "near single =", georel: "near;maxDistance=500", geometry: "Point", coordinates: "[1,2]", err: `bad modifier "maxDistance=500"`},
		{name: "near negative", georel: "near;maxDistance==-1", geometry: "Point", coordinates: "[1,2]", err: "maxDistance must be a non-negative number"},
		{name: "near not a number", georel: "near;minDistance==far", geometry: "Point", coordinates: "[1,2]", err: "minDistance must be a non-negative number"},
		{name: "near NaN", georel: "near;maxDistance==NaN", geometry: "Point", coordinates: "[1,2]", err: "non-negative number"},
		{name: "near unknown modifier", georel: "near;radius==5", geometry: "Point", coordinates: "[1,2]", err: `unknown modifier "radius"`},
		{name: "near twice", georel: "near;maxDistance==5;maxDistance==6", geometry: "Point", coordinates: "[1,2]", err: "maxDistance given twice"},
		{name: "near min > max", georel: "near;minDistance==600;maxDistance==500", geometry: "Point", coordinates: "[1,2]", err: "minDistance 600 is greater than maxDistance 500"},
		{name: "modifier on within", georel: "within;maxDistance==5", geometry: "Polygon", coordinates: "[" + square(0, 0, 1, 1) + "]", err: "georel within takes no modifiers"},
		{name: "near polygon", georel: "near;maxDistance==5", geometry: "Polygon", coordinates: "[" + square(0, 0, 1, 1) + "]", err: "near needs a Point geometry, got Polygon"},
		{name: "within point", georel: "within", geometry: "Point", coordinates: "[1,2]", err: "within needs a Polygon or MultiPolygon geometry, got Point"},
		{name: "unknown geometry", georel: "intersects", geometry: "Circle", coordinates: "[1,2]", err: `unsupported geometry "Circle"`},
		{name: "collection geometry", georel: "intersects", geometry: "GeometryCollection", coordinates: "[1,2]", err: `unsupported geometry "GeometryCollection"`},
		{name: "coordinates not array", georel: "near;maxDistance==5", geometry: "Point", coordinates: "4.35,50.85", err: "coordinates must be a JSON array"},
		{name: "coordinates bad JSON", georel: "near;maxDistance==5", geometry: "Point", coordinates: "[4.35,", err: "coordinates are not a valid JSON array"},
		{name: "coordinates trailing", georel: "near;maxDistance==5", geometry: "Point", coordinates: "[4.35,50]]", err: "unexpected text after the JSON array"},
		{name: "coordinates wrong depth", georel: "intersects", geometry: "LineString", coordinates: "[4.35,50]", err: "invalid coordinates for geometry LineString: coordinates[0]: expected a position"},
		{name: "latitude out of range", georel: "near;maxDistance==5", geometry: "Point", coordinates: "[50.85,100]", err: "latitude 100 out of range [-90,90]"},
		{name: "ring not closed", georel: "within", geometry: "Polygon", coordinates: "[[[0,0],[1,0],[1,1],[0,1]]]", err: "[0]: linear ring is not closed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q, err := ParseQuery(tc.georel, tc.geometry, tc.coordinates, tc.geoprop, tc.expand)
			if tc.err != "" {
				if err == nil {
					t.Fatalf("want error containing %q, got %+v", tc.err, q)
				}
				if !ngsild.IsType(err, ngsild.BadRequestData) {
					t.Fatalf("want BadRequestData, got %v", err)
				}
				if d := ngsild.AsError(err).Detail; !strings.Contains(d, tc.err) {
					t.Fatalf("detail %q does not contain %q", d, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			checkQuery(t, q, tc.want)
		})
	}
}

func checkQuery(t *testing.T, got, want *Query) {
	t.Helper()
	if want == nil {
		if got != nil {
			t.Fatalf("want no query, got %+v", got)
		}
		return
	}
	if got == nil {
		t.Fatal("got nil query")
	}
	if got.Rel != want.Rel || got.MaxDistance != want.MaxDistance || got.MinDistance != want.MinDistance || got.Property != want.Property {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	if !orb.Equal(got.Geometry, want.Geometry) {
		t.Fatalf("geometry %#v, want %#v", got.Geometry, want.Geometry)
	}
}

func TestParseQueryJSON(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want *Query
		err  string
	}{
		{name: "near", in: `{"geometry":"Point","coordinates":[4.3525,50.8467],"georel":"near;maxDistance==2000","geoproperty":"location"}`,
			want: &Query{Rel: Near, MaxDistance: 2000, Property: ngsild.IRILocation, Geometry: orb.Point{4.3525, 50.8467}}},
		{name: "no geoproperty", in: `{"geometry":"Polygon","coordinates":[` + square(0, 0, 1, 1) + `],"georel":"within"}`,
			want: &Query{Rel: Within, Property: ngsild.IRILocation, Geometry: orb.Polygon{{{0, 0}, {1, 0}, {1, 1}, {0, 1}, {0, 0}}}}},
		{name: "coordinates as string", in: `{"geometry":"Point","coordinates":"[1,2]","georel":"equals"}`,
			want: &Query{Rel: Equals, Property: ngsild.IRILocation, Geometry: orb.Point{1, 2}}},
		{name: "null", in: `null`, want: nil},

		{name: "not object", in: `"near"`, err: "geoQ must be a JSON object, got a string"},
		{name: "missing georel", in: `{"geometry":"Point","coordinates":[1,2]}`, err: "missing georel"},
		{name: "missing coordinates", in: `{"geometry":"Point","georel":"equals"}`, err: "missing coordinates"},
		{name: "georel not string", in: `{"geometry":"Point","coordinates":[1,2],"georel":5}`, err: `geoQ member "georel" must be a string, got a number`},
		{name: "coordinates number", in: `{"geometry":"Point","coordinates":5,"georel":"equals"}`, err: `"coordinates" must be an array, got a number`},
		{name: "bad point", in: `{"geometry":"Point","coordinates":[1],"georel":"equals"}`, err: "a position has 2 or 3 numbers, got 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q, err := ParseQueryJSON(decode(t, tc.in), testExpand)
			if tc.err != "" {
				if err == nil || !ngsild.IsType(err, ngsild.BadRequestData) || !strings.Contains(ngsild.AsError(err).Detail, tc.err) {
					t.Fatalf("want BadRequestData containing %q, got %v", tc.err, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			checkQuery(t, q, tc.want)
		})
	}
}

func TestQueryBound(t *testing.T) {
	gp := orb.Point(grandPlace)
	mustQ := func(georel, geometry, coords string) *Query {
		t.Helper()
		q, err := ParseQuery(georel, geometry, coords, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		return q
	}
	t.Run("near max covers the circle", func(t *testing.T) {
		q := mustQ("near;maxDistance==1000", "Point", "[4.3525,50.8467]")
		b, ok := q.Bound()
		if !ok {
			t.Fatal("no bound")
		}
		for _, bearing := range []float64{0, 45, 90, 135, 180, 225, 270, 315} {
			p := orbgeo.PointAtBearingAndDistance(gp, bearing, 1000)
			if !b.Contains(p) {
				t.Errorf("bound %v misses the point at bearing %v: %v", b, bearing, p)
			}
		}
		// Not absurdly large: under 1.1 km from the centre along each axis.
		if d := orbgeo.DistanceHaversine(gp, orb.Point{b.Max[0], gp[1]}); d > 1100 {
			t.Errorf("east edge %v m away", d)
		}
		if d := orbgeo.DistanceHaversine(gp, orb.Point{gp[0], b.Max[1]}); d > 1100 {
			t.Errorf("north edge %v m away", d)
		}
	})
	t.Run("near pole spans all longitudes", func(t *testing.T) {
		q := mustQ("near;maxDistance==50000", "Point", "[10,89.9]")
		b, ok := q.Bound()
		if !ok || b.Min[0] != -180 || b.Max[0] != 180 || b.Max[1] != 90 {
			t.Fatalf("bound %v %v", b, ok)
		}
	})
	t.Run("near antimeridian spans all longitudes", func(t *testing.T) {
		q := mustQ("near;maxDistance==50000", "Point", "[179.9,0]")
		b, ok := q.Bound()
		if !ok || b.Min[0] != -180 || b.Max[0] != 180 {
			t.Fatalf("bound %v %v", b, ok)
		}
	})
	t.Run("near min only", func(t *testing.T) {
		if _, ok := mustQ("near;minDistance==10", "Point", "[1,2]").Bound(); ok {
			t.Fatal("want no bound")
		}
	})
	t.Run("disjoint", func(t *testing.T) {
		if _, ok := mustQ("disjoint", "Point", "[1,2]").Bound(); ok {
			t.Fatal("want no bound")
		}
	})
	for _, rel := range []string{"within", "contains", "intersects", "overlaps", "equals"} {
		t.Run(rel, func(t *testing.T) {
			b, ok := mustQ(rel, "Polygon", "["+square(4.34, 50.83, 4.37, 50.86)+"]").Bound()
			want := orb.Bound{Min: orb.Point{4.34, 50.83}, Max: orb.Point{4.37, 50.86}}
			if !ok || !b.Pad(-boundPad).Equal(want) || !b.Contains(want.Min) || !b.Contains(want.Max) {
				t.Fatalf("bound %v %v, want %v", b, ok, want)
			}
		})
	}
	t.Run("literal query", func(t *testing.T) {
		q := &Query{Rel: Near, Geometry: gp, MaxDistance: 100}
		b, ok := q.Bound()
		if !ok || !b.Contains(gp) || math.Abs(b.Max[1]-gp[1]) > 0.01 {
			t.Fatalf("bound %v %v", b, ok)
		}
	})
}

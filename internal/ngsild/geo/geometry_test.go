package geo

import (
	"strings"
	"testing"

	"github.com/paulmach/orb"

	"github.com/zenne-city/zenne/internal/ngsild"
)

func TestParseGeometry(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want orb.Geometry // nil: only check no error
		err  string       // substring of the detail; "" means valid
	}{
		{name: "point", in: pointJSON(grandPlace), want: orb.Point{4.3525, 50.8467}},
		{name: "point with altitude", in: `{"type":"Point","coordinates":[4.3525,50.8467,60]}`, want: orb.Point{4.3525, 50.8467}},
		{name: "point with bbox member", in: `{"type":"Point","bbox":[0,0,1,1],"coordinates":[1,1]}`, want: orb.Point{1, 1}},
		{name: "multipoint", in: `{"type":"MultiPoint","coordinates":[[4.3525,50.8467],[4.3416,50.8949]]}`,
			want: orb.MultiPoint{{4.3525, 50.8467}, {4.3416, 50.8949}}},
		{name: "linestring", in: `{"type":"LineString","coordinates":[[4.3525,50.8467],[4.3416,50.8949]]}`,
			want: orb.LineString{{4.3525, 50.8467}, {4.3416, 50.8949}}},
		{name: "multilinestring", in: `{"type":"MultiLineString","coordinates":[[[0,0],[1,1]],[[2,2],[3,3]]]}`,
			want: orb.MultiLineString{{{0, 0}, {1, 1}}, {{2, 2}, {3, 3}}}},
		{name: "polygon with hole", in: polyJSON(square(4.34, 50.83, 4.37, 50.86), square(4.35, 50.845, 4.355, 50.848))},
		{name: "multipolygon", in: `{"type":"MultiPolygon","coordinates":[[` + square(0, 0, 1, 1) + `],[` + square(2, 2, 3, 3) + `]]}`},
		{name: "collection", in: `{"type":"GeometryCollection","geometries":[` + pointJSON(grandPlace) + `,` + polyJSON(square(0, 0, 1, 1)) + `]}`},
		{name: "extreme coordinates", in: `{"type":"Point","coordinates":[-180,90]}`, want: orb.Point{-180, 90}},

		{name: "not an object", in: `[1,2]`, err: "expected a JSON object, got an array"},
		{name: "no type", in: `{"coordinates":[1,2]}`, err: `missing member "type"`},
		{name: "type not string", in: `{"type":1,"coordinates":[1,2]}`, err: `"type" must be a string`},
		{name: "unknown type", in: `{"type":"Circle","coordinates":[1,2]}`, err: `unknown geometry type "Circle"`},
		{name: "lowercase type", in: `{"type":"point","coordinates":[1,2]}`, err: `unknown geometry type "point"`},
		{name: "no coordinates", in: `{"type":"Point"}`, err: `Point without member "coordinates"`},
		{name: "longitude out of range", in: `{"type":"Point","coordinates":[180.5,50]}`, err: "coordinates: longitude 180.5 out of range [-180,180]"},
		{name: "latitude out of range", in: `{"type":"Point","coordinates":[4.35,95]}`, err: "coordinates: latitude 95 out of range [-90,90]"},
		{name: "swapped lat/lon out of range", in: `{"type":"LineString","coordinates":[[4,50],[50.8,120]]}`, err: "coordinates[1]: latitude 120 out of range"},
		{name: "position of 1", in: `{"type":"Point","coordinates":[4.35]}`, err: "a position has 2 or 3 numbers, got 1"},
		{name: "position of 4", in: `{"type":"Point","coordinates":[1,2,3,4]}`, err: "a position has 2 or 3 numbers, got 4"},
		{name: "string number", in: `{"type":"Point","coordinates":["4.35",50]}`, err: "position element 0 must be a number, got a string"},
		{name: "null coordinates", in: `{"type":"Point","coordinates":null}`, err: "expected a position (array of 2 or 3 numbers), got null"},
		{name: "linestring of 1", in: `{"type":"LineString","coordinates":[[1,2]]}`, err: "a LineString needs at least 2 positions, got 1"},
		{name: "empty multipoint", in: `{"type":"MultiPoint","coordinates":[]}`, err: "MultiPoint must not be empty"},
		{name: "ring not closed", in: `{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,1]]]}`, err: "coordinates[0]: linear ring is not closed"},
		{name: "ring too short", in: `{"type":"Polygon","coordinates":[[[0,0],[1,0],[0,0]]]}`, err: "a linear ring needs at least 4 positions, got 3"},
		{name: "polygon no rings", in: `{"type":"Polygon","coordinates":[]}`, err: "a Polygon needs at least one linear ring"},
		{name: "hole not closed", in: `{"type":"Polygon","coordinates":[` + square(0, 0, 10, 10) + `,[[1,1],[2,1],[2,2],[1,2]]]}`, err: "coordinates[1]: linear ring is not closed"},
		{name: "polygon as linestring coords", in: `{"type":"Polygon","coordinates":[[0,0],[1,1]]}`, err: "coordinates[0]: a linear ring needs at least 4 positions, got 2"},
		{name: "bad part of multipolygon", in: `{"type":"MultiPolygon","coordinates":[[` + square(0, 0, 1, 1) + `],[[[0,0],[1,0],[1,1]]]]}`, err: "coordinates[1][0]: a linear ring needs at least 4 positions"},
		{name: "collection without geometries", in: `{"type":"GeometryCollection"}`, err: `GeometryCollection without member "geometries"`},
		{name: "empty collection", in: `{"type":"GeometryCollection","geometries":[]}`, err: "must not be empty"},
		{name: "bad member of collection", in: `{"type":"GeometryCollection","geometries":[{"type":"Point","coordinates":[0,91]}]}`, err: "geometries[0].coordinates: latitude 91"},
		{name: "deep collection", in: strings.Repeat(`{"type":"GeometryCollection","geometries":[`, 10) + pointJSON(grandPlace) + strings.Repeat(`]}`, 10), err: "nested deeper than 8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, err := ParseGeometry(decode(t, tc.in))
			if tc.err != "" {
				if err == nil {
					t.Fatalf("want error containing %q, got geometry %v", tc.err, g)
				}
				if !ngsild.IsType(err, ngsild.BadRequestData) {
					t.Fatalf("want BadRequestData, got %v", err)
				}
				if !strings.Contains(ngsild.AsError(err).Detail, tc.err) {
					t.Fatalf("detail %q does not contain %q", ngsild.AsError(err).Detail, tc.err)
				}
				if ValidateGeoJSON(decode(t, tc.in)) == nil {
					t.Fatal("ValidateGeoJSON accepts what ParseGeometry rejects")
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tc.want != nil && !orb.Equal(g, tc.want) {
				t.Fatalf("got %#v, want %#v", g, tc.want)
			}
			if err := ValidateGeoJSON(decode(t, tc.in)); err != nil {
				t.Fatalf("ValidateGeoJSON: %v", err)
			}
		})
	}
}

func TestParseGeometryOrb(t *testing.T) {
	if _, err := ParseGeometry(orb.Point{4.35, 50.85}); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseGeometry(orb.Point{200, 50}); err == nil {
		t.Fatal("want error for longitude 200")
	}
	if _, err := ParseGeometry(orb.Polygon{{{0, 0}, {1, 0}, {1, 1}}}); err == nil {
		t.Fatal("want error for short ring")
	}
	if _, err := ParseGeometry(nil); err == nil {
		t.Fatal("want error for nil")
	}
}

func TestBound(t *testing.T) {
	g, err := ParseGeometry(decode(t, `{"type":"LineString","coordinates":[[4.3525,50.8467],[4.3416,50.8949]]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := orb.Bound{Min: orb.Point{4.3416, 50.8467}, Max: orb.Point{4.3525, 50.8949}}
	if b := Bound(g); !b.Equal(want) {
		t.Fatalf("Bound = %v, want %v", b, want)
	}
	if b := Bound(nil); !b.IsZero() {
		t.Fatalf("Bound(nil) = %v", b)
	}
}

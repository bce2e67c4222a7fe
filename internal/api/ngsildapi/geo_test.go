package ngsildapi_test

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/zenne-city/zenne/internal/apitest"
)

// Real places in Brussels, [lon, lat].
var (
	grandPlace   = []any{4.3525, 50.8467}
	atomium      = []any{4.3416, 50.8949}
	mannekenPis  = []any{4.3500, 50.8450}
	gareDuMidi   = []any{4.3357, 50.8358}
	lineMidPoint = []any{4.35125, 50.84585} // halfway between Grand-Place and Manneken Pis
)

func box(minLon, minLat, maxLon, maxLat float64) []any {
	return []any{
		[]any{minLon, minLat}, []any{maxLon, minLat}, []any{maxLon, maxLat}, []any{minLon, maxLat}, []any{minLon, minLat},
	}
}

func geoID(n string) string { return "urn:ngsi-ld:Place:" + n }

var (
	gPoint      = geoID("point")        // Point on the Grand-Place
	gMultiPoint = geoID("multipoint")   // Manneken Pis and Gare du Midi
	gLine       = geoID("line")         // Grand-Place to Manneken Pis
	gMultiLine  = geoID("multiline")    // Gare du Midi to Manneken Pis, and a stretch at the Atomium
	gPolygon    = geoID("polygon")      // the centre, with a hole around Manneken Pis
	gMultiPoly  = geoID("multipolygon") // squares around the Atomium and Gare du Midi
	gCollection = geoID("collection")   // the Atomium and a line from Gare du Midi
	gNoGeo      = geoID("nogeo")        // no location at all
)

// geoFixture creates one entity per GeoJSON geometry type. Each also has a
// servedArea GeoProperty (other than location) on some of them.
func geoFixture(t *testing.T) *apitest.Server {
	t.Helper()
	s := apitest.Start(t)
	mk := func(id, typ string, coords any) map[string]any {
		return map[string]any{"id": id, "type": "Place", "location": geoProp(typ, coords)}
	}
	polygon := mk(gPolygon, "Polygon", []any{
		box(4.345, 50.840, 4.360, 50.850),
		box(4.349, 50.844, 4.351, 50.846), // hole: Manneken Pis
	})
	polygon["servedArea"] = geoProp("Polygon", []any{box(4.330, 50.830, 4.340, 50.840)}) // around Gare du Midi
	point := mk(gPoint, "Point", grandPlace)
	point["servedArea"] = geoProp("Polygon", []any{box(4.338, 50.890, 4.345, 50.898)}) // around the Atomium
	entities := []map[string]any{
		point,
		mk(gMultiPoint, "MultiPoint", []any{mannekenPis, gareDuMidi}),
		mk(gLine, "LineString", []any{grandPlace, mannekenPis}),
		mk(gMultiLine, "MultiLineString", []any{
			[]any{gareDuMidi, mannekenPis},
			[]any{atomium, []any{4.3450, 50.8950}},
		}),
		polygon,
		mk(gMultiPoly, "MultiPolygon", []any{
			[]any{box(4.340, 50.894, 4.343, 50.896)},
			[]any{box(4.334, 50.835, 4.337, 50.837)},
		}),
		{"id": gCollection, "type": "Place", "location": map[string]any{"type": "GeoProperty", "value": map[string]any{
			"type": "GeometryCollection",
			"geometries": []any{
				map[string]any{"type": "Point", "coordinates": atomium},
				map[string]any{"type": "LineString", "coordinates": []any{gareDuMidi, []any{4.3380, 50.8370}}},
			},
		}}},
		{"id": gNoGeo, "type": "Place", "name": prop("nowhere")},
	}
	for _, e := range entities {
		createEntity(t, s, e, nil)
	}
	return s
}

func coordsParam(v any) string {
	b, _ := json.Marshal(v)
	return enc(string(b))
}

func TestGeoQuery(t *testing.T) {
	s := geoFixture(t)
	atomiumBox := []any{box(4.335, 50.890, 4.350, 50.900)}
	cases := []struct {
		name     string
		georel   string
		geometry string
		coords   any
		extra    string
		want     []string
	}{
		// near: the distance is from the point to the nearest point of the geometry
		{"near max", "near;maxDistance==300", "Point", mannekenPis, "",
			// Grand-Place is 258 m away; the hole's edge 70 m; the lines and points pass through it
			[]string{gPoint, gMultiPoint, gLine, gMultiLine, gPolygon}},
		{"near max small", "near;maxDistance==100", "Point", mannekenPis, "",
			[]string{gMultiPoint, gLine, gMultiLine, gPolygon}},
		{"near max zero", "near;maxDistance==0", "Point", grandPlace, "",
			[]string{gPoint, gLine, gPolygon}},
		{"near min", "near;minDistance==1000", "Point", mannekenPis, "",
			// the Midi square is 1276 m away, the collection's line 1227 m
			[]string{gMultiPoly, gCollection}},
		{"near min and max", "near;minDistance==200;maxDistance==1400", "Point", mannekenPis, "",
			[]string{gPoint, gMultiPoly, gCollection}},
		{"near max and min reversed", "near;maxDistance==1400;minDistance==200", "Point", mannekenPis, "",
			[]string{gPoint, gMultiPoly, gCollection}},
		{"near far", "near;maxDistance==6000", "Point", mannekenPis, "",
			[]string{gPoint, gMultiPoint, gLine, gMultiLine, gPolygon, gMultiPoly, gCollection}},
		// within: the entity's geometry lies inside the query's
		{"within the centre", "within", "Polygon", []any{box(4.330, 50.830, 4.370, 50.860)}, "",
			[]string{gPoint, gMultiPoint, gLine, gPolygon}},
		{"within multipolygon", "within", "MultiPolygon", []any{
			[]any{box(4.330, 50.830, 4.370, 50.860)},
			[]any{box(4.335, 50.890, 4.350, 50.900)},
		}, "", []string{gPoint, gMultiPoint, gLine, gMultiLine, gPolygon, gMultiPoly, gCollection}},
		{"within the hole", "within", "Polygon", []any{box(4.3495, 50.8445, 4.3505, 50.8455)}, "",
			[]string{}},
		// contains: the entity's geometry contains the query's
		{"contains point", "contains", "Point", lineMidPoint, "",
			[]string{gLine, gPolygon}},
		{"contains point in the hole", "contains", "Point", mannekenPis, "",
			[]string{gMultiPoint}},
		{"contains point itself", "contains", "Point", grandPlace, "",
			[]string{gPoint, gPolygon}},
		{"contains polygon", "contains", "Polygon", []any{box(4.355, 50.841, 4.358, 50.843)}, "",
			[]string{gPolygon}},
		{"contains line", "contains", "LineString", []any{[]any{4.346, 50.841}, []any{4.348, 50.849}}, "",
			[]string{gPolygon}},
		// intersects / disjoint
		{"intersects box", "intersects", "Polygon", atomiumBox, "",
			[]string{gMultiLine, gMultiPoly, gCollection}},
		{"intersects point in the hole", "intersects", "Point", mannekenPis, "",
			[]string{gMultiPoint, gLine, gMultiLine}},
		{"intersects line", "intersects", "LineString", []any{[]any{4.3520, 50.8420}, []any{4.3520, 50.8480}}, "",
			// crosses the Grand-Place–Manneken Pis line and the polygon, not the Grand-Place point
			[]string{gLine, gPolygon}},
		{"intersects multipoint", "intersects", "MultiPoint", []any{grandPlace, atomium}, "",
			[]string{gPoint, gLine, gMultiLine, gPolygon, gMultiPoly, gCollection}},
		{"intersects multilinestring", "intersects", "MultiLineString", []any{
			[]any{[]any{4.3380, 50.8300}, []any{4.3380, 50.8400}},
		}, "", []string{gMultiLine, gCollection}}, // crosses the Midi–Manneken Pis segment and touches the collection's line end
		{"disjoint box", "disjoint", "Polygon", atomiumBox, "",
			[]string{gPoint, gMultiPoint, gLine, gPolygon}},
		{"disjoint point", "disjoint", "Point", mannekenPis, "",
			[]string{gPoint, gPolygon, gMultiPoly, gCollection}},
		// overlaps: same dimension, interiors meet, neither covers the other
		{"overlaps polygon", "overlaps", "Polygon", []any{box(4.355, 50.845, 4.365, 50.855)}, "",
			[]string{gPolygon}},
		{"overlaps one part of a multipolygon", "overlaps", "Polygon", atomiumBox, "",
			[]string{gMultiPoly}},
		{"covering part of a multipolygon overlaps it", "overlaps", "Polygon", []any{box(4.330, 50.830, 4.370, 50.860)}, "",
			[]string{gMultiPoly}},
		{"covering is not overlapping", "overlaps", "Polygon", []any{box(4.344, 50.839, 4.361, 50.851)}, "",
			[]string{}},
		{"overlaps line", "overlaps", "LineString", []any{[]any{4.3510, 50.8458}, []any{4.3540, 50.8478}}, "",
			[]string{}}, // crosses the Grand-Place–Manneken Pis line at one point only
		// equals
		{"equals point", "equals", "Point", grandPlace, "", []string{gPoint}},
		{"equals line", "equals", "LineString", []any{grandPlace, mannekenPis}, "", []string{gLine}},
		{"equals line reversed", "equals", "LineString", []any{mannekenPis, grandPlace}, "", []string{gLine}},
		{"equals polygon with hole", "equals", "Polygon", []any{
			box(4.345, 50.840, 4.360, 50.850), box(4.349, 50.844, 4.351, 50.846),
		}, "", []string{gPolygon}},
		{"equals polygon without the hole", "equals", "Polygon", []any{box(4.345, 50.840, 4.360, 50.850)}, "", []string{}},
		{"equals multipoint", "equals", "MultiPoint", []any{gareDuMidi, mannekenPis}, "", []string{gMultiPoint}},
		// geo-query with other filters
		{"near and type", "near;maxDistance==300", "Point", mannekenPis, "&type=Place&q=" + enc("!servedArea"),
			[]string{gMultiPoint, gLine, gMultiLine}},
		{"near and id", "near;maxDistance==300", "Point", mannekenPis, "&id=" + gPoint + "," + gMultiPoly,
			[]string{gPoint}},
		// geoproperty other than location
		{"geoproperty", "intersects", "Point", atomium, "&geoproperty=servedArea",
			[]string{gPoint}},
		{"geoproperty near", "near;maxDistance==200", "Point", gareDuMidi, "&geoproperty=servedArea",
			[]string{gPolygon}},
		{"geoproperty location explicit", "near;maxDistance==1", "Point", grandPlace, "&geoproperty=location",
			[]string{gPoint, gLine, gPolygon}},
		{"geoproperty nobody has", "near;maxDistance==100000", "Point", grandPlace, "&geoproperty=footprint",
			[]string{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			params := "georel=" + enc(tc.georel) + "&geometry=" + tc.geometry + "&coordinates=" + coordsParam(tc.coords) + tc.extra
			got := queryIDs(t, s, params, nil)
			if !slices.Equal(got, tc.want) {
				t.Errorf("GET ?%s\n got %v\nwant %v", params, got, tc.want)
			}
			// The same as the geoQ of a POST query.
			geoQ := map[string]any{"georel": tc.georel, "geometry": tc.geometry, "coordinates": tc.coords}
			if tc.extra != "" {
				return
			}
			got = postQueryIDs(t, s, "", map[string]any{"type": "Query", "geoQ": geoQ}, nil)
			if !slices.Equal(got, tc.want) {
				t.Errorf("POST geoQ %v\n got %v\nwant %v", geoQ, got, tc.want)
			}
		})
	}
	t.Run("overlaps collinear", func(t *testing.T) {
		// A line that shares a stretch with the Grand-Place–Manneken Pis line
		// and goes on beyond Grand-Place overlaps it (same dimension,
		// interiors meet, neither covers the other).
		dx, dy := 4.3525-4.3500, 50.8467-50.8450
		coords := []any{[]any{4.3500 + dx/2, 50.8450 + dy/2}, []any{4.3525 + dx/2, 50.8467 + dy/2}}
		got := queryIDs(t, s, "georel=overlaps&geometry=LineString&coordinates="+coordsParam(coords), nil)
		if !slices.Equal(got, []string{gLine}) {
			t.Errorf("got %v, want [%s]", got, gLine)
		}
	})
	t.Run("geoQ geoproperty and coordinates as text", func(t *testing.T) {
		got := postQueryIDs(t, s, "", map[string]any{"type": "Query", "entities": []any{map[string]any{"type": "Place"}},
			"geoQ": map[string]any{"georel": "intersects", "geometry": "Point", "coordinates": "[4.3416,50.8949]", "geoproperty": "servedArea"}}, nil)
		if !slices.Equal(got, []string{gPoint}) {
			t.Errorf("got %v, want [%s]", got, gPoint)
		}
	})
	t.Run("geoQ with q and count", func(t *testing.T) {
		r := s.Post("/ngsi-ld/v1/entityOperations/query?count=true&limit=1", map[string]any{"type": "Query", "q": "servedArea",
			"geoQ": map[string]any{"georel": "within", "geometry": "Polygon", "coordinates": []any{box(4.330, 50.830, 4.370, 50.860)}}}, nil).Expect(t, 200)
		if c := r.Header.Get("NGSILD-Results-Count"); c != "2" {
			t.Errorf("count %q, want 2", c)
		}
		if ids := entityIDs(t, r); !slices.Equal(ids, []string{gPoint}) {
			t.Errorf("page %v", ids)
		}
	})
	t.Run("GeoJSON with geometryProperty", func(t *testing.T) {
		r := s.Get(entitiesPath+"?type=Place&q=servedArea&options=keyValues&geometryProperty=servedArea",
			map[string]string{"Accept": "application/geo+json"}).Expect(t, 200)
		apitest.Golden(t, "geo-geojson-geometryproperty", r.Body)
	})
	t.Run("GeoJSON of every geometry type", func(t *testing.T) {
		r := s.Get(entitiesPath+"?type=Place&attrs=location&limit=100", map[string]string{"Accept": "application/geo+json"}).Expect(t, 200)
		apitest.Golden(t, "geo-geojson-all-types", r.Body)
	})
}

// near is exact at the boundary: an entity 480 m away is in for 500 m, one
// 520 m away is out (and the other way round for minDistance), in every
// direction.
func TestGeoNearBoundary(t *testing.T) {
	s := apitest.Start(t)
	const metersPerDegree = 6378137.0 * math.Pi / 180
	lon0, lat0 := 4.3525, 50.8467 // Grand-Place
	kx := math.Cos(lat0 * math.Pi / 180)
	dirs := []struct {
		name   string
		dx, dy float64
	}{{"north", 0, 1}, {"south", 0, -1}, {"east", 1, 0}, {"west", -1, 0}}
	var in, out []string
	for _, d := range dirs {
		for _, m := range []float64{480, 520} {
			id := fmt.Sprintf("urn:ngsi-ld:Place:%s-%.0f", d.name, m)
			lon := lon0 + d.dx*m/(metersPerDegree*kx)
			lat := lat0 + d.dy*m/metersPerDegree
			createEntity(t, s, map[string]any{"id": id, "type": "Place", "location": geoProp("Point", []any{lon, lat})}, nil)
			if m < 500 {
				in = append(in, id)
			} else {
				out = append(out, id)
			}
		}
	}
	q := func(georel string) []string {
		got := queryIDs(t, s, "type=Place&georel="+enc(georel)+"&geometry=Point&coordinates="+coordsParam(grandPlace), nil)
		slices.Sort(got)
		return got
	}
	slices.Sort(in)
	slices.Sort(out)
	if got := q("near;maxDistance==500"); !slices.Equal(got, in) {
		t.Errorf("maxDistance==500: %v, want %v", got, in)
	}
	if got := q("near;minDistance==500"); !slices.Equal(got, out) {
		t.Errorf("minDistance==500: %v, want %v", got, out)
	}
	if got := q("near;maxDistance==479"); len(got) != 0 {
		t.Errorf("maxDistance==479: %v, want none", got)
	}
	if got := q("near;maxDistance==521"); len(got) != 8 {
		t.Errorf("maxDistance==521: %v, want all 8", got)
	}
	if got := q("near;minDistance==481;maxDistance==519"); len(got) != 0 {
		t.Errorf("between 481 and 519: %v, want none", got)
	}
}

func TestGeoErrors(t *testing.T) {
	s := geoFixture(t)
	pt := coordsParam(grandPlace)
	cases := []struct{ name, params string }{
		{"georel unknown", "georel=around&geometry=Point&coordinates=" + pt},
		{"georel with modifier", "georel=" + enc("within;maxDistance==5") + "&geometry=Polygon&coordinates=" + coordsParam([]any{box(4.3, 50.8, 4.4, 50.9)})},
		{"near twice max", "georel=" + enc("near;maxDistance==5;maxDistance==6") + "&geometry=Point&coordinates=" + pt},
		{"near unknown modifier", "georel=" + enc("near;radius==5") + "&geometry=Point&coordinates=" + pt},
		{"near not a number", "georel=" + enc("near;maxDistance==far") + "&geometry=Point&coordinates=" + pt},
		{"near a polygon", "georel=" + enc("near;maxDistance==5") + "&geometry=Polygon&coordinates=" + coordsParam([]any{box(4.3, 50.8, 4.4, 50.9)})},
		{"within a line", "georel=within&geometry=LineString&coordinates=" + coordsParam([]any{grandPlace, atomium})},
		{"geometry GeometryCollection", "georel=intersects&geometry=GeometryCollection&coordinates=" + pt},
		{"point with one number", "georel=intersects&geometry=Point&coordinates=" + coordsParam([]any{4.35})},
		{"point with strings", "georel=intersects&geometry=Point&coordinates=" + coordsParam([]any{"4.35", "50.8"})},
		{"longitude out of range", "georel=intersects&geometry=Point&coordinates=" + coordsParam([]any{190, 50.8})},
		{"line with one position", "georel=intersects&geometry=LineString&coordinates=" + coordsParam([]any{grandPlace})},
		{"polygon too short", "georel=intersects&geometry=Polygon&coordinates=" + coordsParam([]any{[]any{grandPlace, atomium, grandPlace}})},
		{"multipolygon empty", "georel=intersects&geometry=MultiPolygon&coordinates=" + coordsParam([]any{})},
		{"trailing text", "georel=intersects&geometry=Point&coordinates=" + enc("[4.35,50.8]x")},
		{"missing geometry", "georel=intersects&coordinates=" + pt},
		{"missing georel", "geometry=Point&coordinates=" + pt},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s.Get(entitiesPath+"?"+tc.params, nil).ExpectProblem(t, 400, "BadRequestData")
		})
	}
	t.Run("invalid GeoJSON in an entity", func(t *testing.T) {
		for name, v := range map[string]any{
			"unclosed ring":  map[string]any{"type": "Polygon", "coordinates": []any{[]any{grandPlace, atomium, mannekenPis, gareDuMidi}}},
			"unknown type":   map[string]any{"type": "Circle", "coordinates": grandPlace},
			"latitude range": map[string]any{"type": "Point", "coordinates": []any{4.35, 91}},
		} {
			r := s.Post(entitiesPath, map[string]any{"id": "urn:ngsi-ld:Place:bad", "type": "Place", "location": map[string]any{"type": "GeoProperty", "value": v}}, nil)
			if r.Status != 400 {
				t.Errorf("%s: status %d, want 400; %s", name, r.Status, r.Body)
			}
		}
	})
}

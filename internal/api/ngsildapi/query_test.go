package ngsildapi_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/zenne-city/zenne/internal/apitest"
)

// Helpers shared by query_test.go, geo_test.go and sdm_test.go.

const entitiesPath = "/ngsi-ld/v1/entities"

// createEntity POSTs an entity (application/json, core context unless hdr
// has a Link) and fails unless it is created.
func createEntity(t testing.TB, s *apitest.Server, e map[string]any, hdr map[string]string) {
	t.Helper()
	s.Post(entitiesPath, e, hdr).Expect(t, 201)
}

// entityIDs decodes a JSON array of entities and returns their ids in order.
func entityIDs(t testing.TB, r *apitest.Response) []string {
	t.Helper()
	var list []map[string]any
	if err := json.Unmarshal(r.Body, &list); err != nil {
		t.Fatalf("response is not a JSON array of objects (%v): %s", err, r.Body)
	}
	ids := make([]string, 0, len(list))
	for _, e := range list {
		id, _ := e["id"].(string)
		ids = append(ids, id)
	}
	return ids
}

// queryIDs runs GET /entities?<params> and returns the ids, failing unless 200.
func queryIDs(t testing.TB, s *apitest.Server, params string, hdr map[string]string) []string {
	t.Helper()
	return entityIDs(t, s.Get(entitiesPath+"?"+params, hdr).Expect(t, 200))
}

// postQueryIDs runs POST /entityOperations/query and returns the ids.
func postQueryIDs(t testing.TB, s *apitest.Server, params string, body any, hdr map[string]string) []string {
	t.Helper()
	p := "/ngsi-ld/v1/entityOperations/query"
	if params != "" {
		p += "?" + params
	}
	return entityIDs(t, s.Post(p, body, hdr).Expect(t, 200))
}

// enc percent-encodes one query parameter value.
func enc(v string) string { return url.QueryEscape(v) }

func prop(v any) map[string]any { return map[string]any{"type": "Property", "value": v} }

func rel(obj string) map[string]any { return map[string]any{"type": "Relationship", "object": obj} }

func geoProp(typ string, coords any) map[string]any {
	return map[string]any{"type": "GeoProperty", "value": map[string]any{"type": typ, "coordinates": coords}}
}

func sensorID(n string) string { return "urn:ngsi-ld:Sensor:" + n }

// queryFixture creates a small Brussels data set (core context, so terms
// expand into the default context) and returns the server.
//
//	Sensor:001  temperature 21.5 CEL observedAt 2024-05-01T10:00Z (accuracy 0.5), status "ok", active true,
//	            name "Grand-Place sensor", address Brussels 1000 floor 2, tags [a,b], refRoom Room:1,
//	            installedAt 2020-03-01T08:00:00Z, scope /Brussels/Centre
//	Sensor:002  temperature 18 FAH observedAt 2024-05-02T10:00Z, status "broken", active false, humidity 40,
//	            name "Atomium sensor", address Antwerp 2000 floor 0, tags [c], refRoom Room:2,
//	            installedAt 2022-07-15T12:30:00Z, scope /Antwerp
//	Sensor:003  temperature 30 (default instance) and 10 (datasetId urn:ngsi-ld:Dataset:b),
//	            name "Midi sensor", scopes /Brussels/Midi and /Brussels/Midi/Platform
//	Room:1      type Room
//	Building:1  types Building and Office (multi-typed)
//	Office:1    type Office
func queryFixture(t *testing.T) *apitest.Server {
	t.Helper()
	s := apitest.Start(t)
	temp1 := prop(21.5)
	temp1["unitCode"] = "CEL"
	temp1["observedAt"] = "2024-05-01T10:00:00Z"
	temp1["accuracy"] = prop(0.5)
	temp2 := prop(18)
	temp2["unitCode"] = "FAH"
	temp2["observedAt"] = "2024-05-02T10:00:00Z"
	temp2["accuracy"] = prop(1.5)
	tempB := prop(10)
	tempB["datasetId"] = "urn:ngsi-ld:Dataset:b"
	entities := []map[string]any{
		{
			"id": sensorID("001"), "type": "Sensor", "scope": "/Brussels/Centre",
			"temperature": temp1,
			"status":      prop("ok"),
			"active":      prop(true),
			"name":        prop("Grand-Place sensor"),
			"address":     prop(map[string]any{"addressLocality": "Brussels", "postalCode": "1000", "geo": map[string]any{"floor": 2}}),
			"tags":        prop([]any{"a", "b"}),
			"refRoom":     rel("urn:ngsi-ld:Room:1"),
			"installedAt": prop("2020-03-01T08:00:00Z"),
			"location":    geoProp("Point", []any{4.3525, 50.8467}),
		},
		{
			"id": sensorID("002"), "type": "Sensor", "scope": "/Antwerp",
			"temperature":  temp2,
			"status":       prop("broken"),
			"active":       prop(false),
			"humidity":     prop(40),
			"name":         prop("Atomium sensor"),
			"address":      prop(map[string]any{"addressLocality": "Antwerp", "postalCode": "2000", "geo": map[string]any{"floor": 0}}),
			"tags":         prop([]any{"c"}),
			"refRoom":      rel("urn:ngsi-ld:Room:2"),
			"installedAt":  prop("2022-07-15T12:30:00Z"),
			"calibratedAt": prop(map[string]any{"@type": "DateTime", "@value": "2024-02-01T09:00:00Z"}),
			"location":     geoProp("Point", []any{4.3416, 50.8949}),
		},
		{
			"id": sensorID("003"), "type": "Sensor", "scope": []any{"/Brussels/Midi", "/Brussels/Midi/Platform"},
			"temperature": []any{prop(30), tempB},
			"name":        prop("Midi sensor"),
		},
		{"id": "urn:ngsi-ld:Room:1", "type": "Room", "name": prop("Salle gothique")},
		{"id": "urn:ngsi-ld:Building:1", "type": []any{"Building", "Office"}, "name": prop("Hôtel de Ville")},
		{"id": "urn:ngsi-ld:Office:1", "type": "Office", "name": prop("Back office")},
	}
	for _, e := range entities {
		createEntity(t, s, e, nil)
	}
	return s
}

var (
	s1, s2, s3 = sensorID("001"), sensorID("002"), sensorID("003")
	room1      = "urn:ngsi-ld:Room:1"
	building1  = "urn:ngsi-ld:Building:1"
	office1    = "urn:ngsi-ld:Office:1"
)

func TestQueryFilters(t *testing.T) {
	s := queryFixture(t)
	cases := []struct {
		name   string
		params string
		want   []string // in creation order
	}{
		// id, idPattern
		{"id one", "id=" + s2, []string{s2}},
		{"id list", "id=" + s3 + "," + s1 + ",urn:ngsi-ld:Sensor:999", []string{s1, s3}},
		{"id and type", "id=" + s1 + "," + room1 + "&type=Room", []string{room1}},
		{"idPattern", "idPattern=" + enc("^urn:ngsi-ld:Sensor:00[12]$"), []string{s1, s2}},
		{"idPattern unanchored", "idPattern=" + enc("Room|Office"), []string{room1, office1}},
		{"idPattern with type", "idPattern=" + enc(":00") + "&type=Sensor", []string{s1, s2, s3}},
		// type
		{"type single", "type=Sensor", []string{s1, s2, s3}},
		{"type unknown", "type=Tram", []string{}},
		{"type list comma", "type=Room,Office", []string{room1, building1, office1}},
		{"type or", "type=" + enc("Room|Building"), []string{room1, building1}},
		{"type and multi-typed", "type=" + enc("Building;Office"), []string{building1}},
		{"type and nobody", "type=" + enc("Room;Office"), []string{}},
		{"type parentheses", "type=" + enc("(Building;Office)|Room"), []string{room1, building1}},
		{"type parentheses and", "type=" + enc("Office;(Building|Room)"), []string{building1}},
		{"type full IRI", "type=" + enc("https://uri.etsi.org/ngsi-ld/default-context/Room"), []string{room1}},
		// attrs: entities having at least one of them
		{"attrs one", "attrs=humidity", []string{s2}},
		{"attrs any of", "attrs=humidity,refRoom", []string{s1, s2}},
		{"attrs with type", "attrs=name&type=Office", []string{building1, office1}},
		{"attrs none has", "attrs=pressure", []string{}},
		// q: comparisons
		{"q == number", "q=" + enc("temperature==21.5"), []string{s1}},
		{"q == integer as float", "q=" + enc("humidity==40.0"), []string{s2}},
		{"q != number", "q=" + enc("temperature!=21.5"), []string{s2, s3}},
		{"q > number", "q=" + enc("temperature>18"), []string{s1, s3}},
		{"q >= number", "q=" + enc("temperature>=18"), []string{s1, s2, s3}},
		{"q < number", "q=" + enc("temperature<18"), []string{s3}},
		{"q <= number", "q=" + enc("temperature<=18"), []string{s2, s3}},
		{"q range", "q=" + enc("temperature==15..22"), []string{s1, s2}},
		{"q range inclusive bounds", "q=" + enc("temperature==18..21.5"), []string{s1, s2}},
		{"q not in range", "q=" + enc("temperature!=15..22"), []string{s3}},
		// "Atomium sensor", "Back office" and "Grand-Place sensor" sort between
		// "A" and "H"; "Hôtel de Ville" sorts after "H".
		{"q string range", "q=" + enc(`name=="A".."H"`), []string{s1, s2, office1}},
		{"q value list", "q=" + enc(`status=="ok","broken"`), []string{s1, s2}},
		{"q value list numbers", "q=" + enc("temperature==18,30"), []string{s2, s3}},
		{"q not in value list", "q=" + enc(`status!="ok","broken"`), []string{}},
		{"q string ==", "q=" + enc(`status=="ok"`), []string{s1}},
		{"q string !=", "q=" + enc(`status!="ok"`), []string{s2}},
		{"q string >", "q=" + enc(`name>"H"`), []string{s3, room1, building1}},
		{"q boolean", "q=" + enc("active==true"), []string{s1}},
		{"q boolean false", "q=" + enc("active==false"), []string{s2}},
		{"q boolean is not a number", "q=" + enc("active==1"), []string{}},
		{"q number is not a string", "q=" + enc(`humidity=="40"`), []string{}},
		{"q array element", "q=" + enc(`tags=="b"`), []string{s1}},
		{"q array element list", "q=" + enc(`tags=="c","z"`), []string{s2}},
		{"q relationship", "q=" + enc("refRoom==urn:ngsi-ld:Room:1"), []string{s1}},
		{"q relationship quoted", "q=" + enc(`refRoom=="urn:ngsi-ld:Room:2"`), []string{s2}},
		{"q relationship !=", "q=" + enc("refRoom!=urn:ngsi-ld:Room:1"), []string{s2}},
		// patterns
		{"q ~=", "q=" + enc("name~=^Grand"), []string{s1}},
		{"q ~= quoted", "q=" + enc(`name~="sensor$"`), []string{s1, s2, s3}},
		{"q ~= case-insensitive", "q=" + enc("name~=(?i)^atomium"), []string{s2}},
		{"q !~=", "q=" + enc("name!~=sensor"), []string{room1, building1, office1}},
		// logic
		{"q and", "q=" + enc(`status=="ok";temperature>20`), []string{s1}},
		{"q or", "q=" + enc(`status=="broken"|temperature>25`), []string{s2, s3}},
		{"q and binds tighter", "q=" + enc(`status=="ok"|status=="broken";temperature>20`), []string{s1}},
		{"q parentheses", "q=" + enc(`(status=="ok"|status=="broken");temperature<20`), []string{s2}},
		{"q nested parentheses", "q=" + enc(`((humidity|active==true);(temperature>=21|tags=="c"))`), []string{s1, s2}},
		{"q with spaces", "q=" + enc(`status == "ok" ; temperature > 20`), []string{s1}},
		// existence
		{"q exists", "q=humidity", []string{s2}},
		{"q not exists", "q=" + enc("!humidity") + "&type=Sensor", []string{s1, s3}},
		{"q not exists no type", "q=" + enc("!temperature"), []string{room1, building1, office1}},
		{"q exists sub-attribute", "q=" + enc("temperature.accuracy"), []string{s1, s2}},
		{"q exists compound key", "q=" + enc("address[geo][floor]"), []string{s1, s2}},
		{"q not exists compound key", "q=" + enc("!address[zip]") + "&type=Sensor", []string{s1, s2, s3}},
		// sub-attributes, compound values, metadata
		{"q sub-attribute", "q=" + enc("temperature.accuracy<1"), []string{s1}},
		{"q compound key", "q=" + enc(`address[addressLocality]=="Brussels"`), []string{s1}},
		{"q compound nested keys", "q=" + enc("address[geo][floor]>=1"), []string{s1}},
		{"q compound key range", "q=" + enc(`address[postalCode]=="1000".."1999"`), []string{s1}},
		{"q unitCode", "q=" + enc(`temperature.unitCode=="FAH"`), []string{s2}},
		{"q observedAt", "q=" + enc("temperature.observedAt>=2024-05-01T12:00:00Z"), []string{s2}},
		{"q observedAt range", "q=" + enc("temperature.observedAt==2024-05-01T00:00:00Z..2024-05-01T23:59:59Z"), []string{s1}},
		{"q observedAt exists", "q=" + enc("temperature.observedAt"), []string{s1, s2}},
		// datetimes in values
		{"q datetime >", "q=" + enc("installedAt>2021-01-01T00:00:00Z"), []string{s2}},
		{"q datetime ==", "q=" + enc("installedAt==2020-03-01T08:00:00Z"), []string{s1}},
		{"q datetime other zone", "q=" + enc("installedAt==2020-03-01T09:00:00+01:00"), []string{s1}},
		{"q date range", "q=" + enc("installedAt==2020-01-01..2021-01-01"), []string{s1}},
		{"q DateTime value object", "q=" + enc("calibratedAt>=2024-01-01T00:00:00Z"), []string{s2}},
		{"q DateTime value object ==", "q=" + enc("calibratedAt==2024-02-01T10:00:00+01:00"), []string{s2}},
		{"q DateTime value object <", "q=" + enc("calibratedAt<2024-01-01T00:00:00Z"), []string{}},
		// multi-instance attributes: any instance
		{"q multi-instance default", "q=" + enc("temperature==30"), []string{s3}},
		{"q multi-instance dataset", "q=" + enc("temperature==10"), []string{s3}},
		{"q multi-instance range", "q=" + enc("temperature<12"), []string{s3}},
		// scopeQ
		{"scopeQ exact", "scopeQ=" + enc("/Antwerp"), []string{s2}},
		{"scopeQ subtree", "scopeQ=" + enc("/Brussels/#"), []string{s1, s3}},
		{"scopeQ one level", "scopeQ=" + enc("/Brussels/+"), []string{s1, s3}},
		{"scopeQ two levels", "scopeQ=" + enc("/Brussels/+/Platform"), []string{s3}},
		{"scopeQ or", "scopeQ=" + enc("/Antwerp,/Brussels/Centre"), []string{s1, s2}},
		{"scopeQ and", "scopeQ=" + enc("/Brussels/Midi;/Brussels/Midi/Platform"), []string{s3}},
		{"scopeQ all", "scopeQ=" + enc("/#"), []string{s1, s2, s3}},
		// combined
		{"type q attrs", "type=Sensor&q=" + enc("temperature>10") + "&attrs=humidity", []string{s2}},
		{"local lists everything", "local=true", []string{s1, s2, s3, room1, building1, office1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := queryIDs(t, s, tc.params, nil)
			if !slices.Equal(got, tc.want) {
				t.Errorf("GET ?%s\n got %v\nwant %v", tc.params, got, tc.want)
			}
		})
	}
}

// The same filters through POST /entityOperations/query (Query data type).
func TestQueryPost(t *testing.T) {
	s := queryFixture(t)
	cases := []struct {
		name string
		body map[string]any
		want []string
	}{
		{"type selector", map[string]any{"type": "Query", "entities": []any{map[string]any{"type": "Sensor"}}}, []string{s1, s2, s3}},
		{"several type selectors", map[string]any{"type": "Query", "entities": []any{map[string]any{"type": "Room"}, map[string]any{"type": "Building"}}}, []string{room1, building1}},
		{"type expression selector", map[string]any{"type": "Query", "entities": []any{map[string]any{"type": "Building;Office"}}}, []string{building1}},
		{"id selectors", map[string]any{"type": "Query", "entities": []any{map[string]any{"id": s3, "type": "Sensor"}, map[string]any{"id": s1, "type": "Sensor"}}}, []string{s1, s3}},
		{"idPattern selector", map[string]any{"type": "Query", "entities": []any{map[string]any{"idPattern": "Sensor:00[23]", "type": "Sensor"}}}, []string{s2, s3}},
		{"q", map[string]any{"type": "Query", "q": `(status=="ok"|status=="broken");temperature<20`}, []string{s2}},
		{"q and selector", map[string]any{"type": "Query", "entities": []any{map[string]any{"type": "Sensor"}}, "q": "temperature>=20"}, []string{s1, s3}},
		{"attrs", map[string]any{"type": "Query", "attrs": []any{"humidity", "refRoom"}}, []string{s1, s2}},
		{"scopeQ", map[string]any{"type": "Query", "scopeQ": "/Brussels/#"}, []string{s1, s3}},
		{"id and type selectors", map[string]any{"type": "Query", "entities": []any{map[string]any{"id": s1, "type": "Sensor"}, map[string]any{"type": "Room"}}}, []string{s1, room1}},
		{"ids with different types", map[string]any{"type": "Query", "entities": []any{map[string]any{"id": s1, "type": "Sensor"}, map[string]any{"id": room1, "type": "Room"}}}, []string{s1, room1}},
		{"id with the wrong type", map[string]any{"type": "Query", "entities": []any{map[string]any{"id": s1, "type": "Room"}, map[string]any{"id": s2}}}, []string{s2}},
		{"type and id without type", map[string]any{"type": "Query", "entities": []any{map[string]any{"type": "Room"}, map[string]any{"id": s1}}}, []string{s1, room1}},
		{"two idPatterns", map[string]any{"type": "Query", "entities": []any{map[string]any{"idPattern": "Sensor:00[12]", "type": "Sensor"}, map[string]any{"idPattern": "Room", "type": "Room"}}}, []string{s1, s2, room1}},
		{"selectors and q", map[string]any{"type": "Query", "entities": []any{map[string]any{"type": "Room"}, map[string]any{"type": "Sensor"}}, "q": "temperature<20"}, []string{s2, s3}}, // s3 has an instance under 20
		{"id selectors without type", map[string]any{"type": "Query", "entities": []any{map[string]any{"id": room1}, map[string]any{"id": s2}}}, []string{s2, room1}},
		{"geoQ", map[string]any{"type": "Query", "geoQ": map[string]any{"georel": "near;maxDistance==1000", "geometry": "Point", "coordinates": []any{4.3500, 50.8450}}}, []string{s1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := postQueryIDs(t, s, "", tc.body, nil)
			if !slices.Equal(got, tc.want) {
				t.Errorf("POST %v\n got %v\nwant %v", tc.body, got, tc.want)
			}
		})
	}
	t.Run("attrs projection", func(t *testing.T) {
		r := s.Post("/ngsi-ld/v1/entityOperations/query", map[string]any{"type": "Query", "entities": []any{map[string]any{"type": "Sensor"}}, "attrs": []any{"humidity", "status"}}, nil).Expect(t, 200)
		apitest.Golden(t, "query-post-attrs", r.Body)
	})
	t.Run("keyValues and pagination in the URL", func(t *testing.T) {
		r := s.Post("/ngsi-ld/v1/entityOperations/query?options=keyValues&limit=1&offset=1&count=true",
			map[string]any{"type": "Query", "entities": []any{map[string]any{"type": "Sensor"}}, "attrs": []any{"temperature"}}, nil).Expect(t, 200)
		if got := r.Header.Get("NGSILD-Results-Count"); got != "3" {
			t.Errorf("NGSILD-Results-Count %q, want 3", got)
		}
		apitest.Golden(t, "query-post-keyvalues-page", r.Body)
	})
}

// Responses whose bodies matter: projection and representations.
func TestQueryRepresentations(t *testing.T) {
	s := queryFixture(t)
	cases := []struct {
		name, params string
		accept       string
	}{
		{"query-normalized", "type=Sensor&q=" + enc(`status=="ok"`), ""},
		{"query-attrs-projection", "type=Sensor&attrs=temperature,humidity", ""},
		{"query-keyvalues", "type=Sensor&options=keyValues", ""},
		{"query-concise", "type=Sensor&options=concise&q=" + enc("temperature>20"), ""},
		{"query-keyvalues-format", "type=Room,Office&format=keyValues", ""},
		{"query-sysattrs", "id=" + room1 + "&options=sysAttrs", ""},
		{"query-ld-json", "type=Room&options=keyValues", "application/ld+json"},
		{"query-geojson", "type=Sensor&attrs=name,location", "application/geo+json"},
		{"query-geojson-keyvalues", "type=Sensor&options=keyValues&attrs=name", "application/geo+json"},
		{"query-geojson-empty", "type=Tram", "application/geo+json"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			params := tc.params
			hdr := map[string]string{}
			if tc.accept != "" {
				hdr["Accept"] = tc.accept
			}
			r := s.Get(entitiesPath+"?"+params, hdr).Expect(t, 200)
			want := "application/json"
			if tc.accept != "" {
				want = tc.accept
			}
			if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, want) {
				t.Errorf("Content-Type %q, want %s", ct, want)
			}
			if want == "application/json" && !strings.Contains(r.Header.Get("Link"), "ngsi-ld-core-context") {
				t.Errorf("application/json response without the core context Link header: %q", r.Header.Get("Link"))
			}
			if tc.accept == "application/geo+json" {
				var fc struct {
					Type     string           `json:"type"`
					Features []map[string]any `json:"features"`
				}
				if err := json.Unmarshal(r.Body, &fc); err != nil || fc.Type != "FeatureCollection" || fc.Features == nil {
					t.Fatalf("not a GeoJSON FeatureCollection: %s", r.Body)
				}
				for _, f := range fc.Features {
					if f["type"] != "Feature" {
						t.Errorf("feature of type %v", f["type"])
					}
				}
			}
			apitest.Golden(t, tc.name, r.Body)
		})
	}
}

// A user @context (hosted by the broker) in the Link header expands the
// names of type, attrs and q, and compacts the response.
func TestQueryUserContext(t *testing.T) {
	s := apitest.Start(t)
	r := s.Do(apitest.Req{Method: "POST", Path: "/ngsi-ld/v1/jsonldContexts", ContentType: "application/ld+json",
		Body: map[string]any{"@context": map[string]any{
			"Bike":      "https://example.org/mobility#Bike",
			"battery":   "https://example.org/mobility#battery",
			"station":   "https://example.org/mobility#station",
			"available": "https://example.org/mobility#available",
		}}}).Expect(t, 201)
	ctxURL := s.URL + r.Header.Get("Location")
	link := map[string]string{"Link": apitest.LinkHeader(ctxURL)}
	for i, b := range []float64{90, 15, 55} {
		createEntity(t, s, map[string]any{
			"id": fmt.Sprintf("urn:ngsi-ld:Bike:%d", i+1), "type": "Bike",
			"battery":   prop(b),
			"available": prop(i != 1),
			"station":   rel("urn:ngsi-ld:Station:Midi"),
		}, link)
	}
	// The same names without the context are other attributes.
	createEntity(t, s, map[string]any{"id": "urn:ngsi-ld:Bike:other", "type": "Bike", "battery": prop(99)}, nil)

	got := queryIDs(t, s, "type=Bike&q="+enc("battery>50;available==true"), link)
	if want := []string{"urn:ngsi-ld:Bike:1", "urn:ngsi-ld:Bike:3"}; !slices.Equal(got, want) {
		t.Errorf("with the context: %v, want %v", got, want)
	}
	got = queryIDs(t, s, "type=Bike&q="+enc("battery>50"), nil)
	if want := []string{"urn:ngsi-ld:Bike:other"}; !slices.Equal(got, want) {
		t.Errorf("without the context: %v, want %v", got, want)
	}
	got = queryIDs(t, s, "type="+enc("https://example.org/mobility#Bike")+"&attrs="+enc("https://example.org/mobility#station"), nil)
	if len(got) != 3 {
		t.Errorf("expanded names without a context: %v, want the 3 bikes", got)
	}
	// POST query with the @context in an application/ld+json body.
	r = s.Do(apitest.Req{Method: "POST", Path: "/ngsi-ld/v1/entityOperations/query", ContentType: "application/ld+json",
		Body: map[string]any{"@context": ctxURL, "type": "Query", "entities": []any{map[string]any{"type": "Bike"}}, "q": "battery<50"}}).Expect(t, 200)
	if ids := entityIDs(t, r); !slices.Equal(ids, []string{"urn:ngsi-ld:Bike:2"}) {
		t.Errorf("ld+json POST query: %v", ids)
	}
	s.Do(apitest.Req{Method: "POST", Path: "/ngsi-ld/v1/entityOperations/query", ContentType: "application/ld+json", Header: link,
		Body: map[string]any{"@context": ctxURL, "type": "Query", "q": "battery<50"}}).ExpectProblem(t, 400, "BadRequestData")
	r = s.Get(entitiesPath+"?type=Bike&q="+enc("station==urn:ngsi-ld:Station:Midi")+"&options=keyValues&limit=1", link).Expect(t, 200)
	if !strings.Contains(r.Header.Get("Link"), ctxURL) {
		t.Errorf("response Link %q does not echo the request context %s", r.Header.Get("Link"), ctxURL)
	}
	var list []map[string]any
	json.Unmarshal(r.Body, &list)
	if len(list) != 1 || list[0]["battery"] != 90.0 || list[0]["station"] != "urn:ngsi-ld:Station:Midi" {
		t.Errorf("not compacted with the user context: %s", r.Body)
	}
}

// limit/offset: pages are disjoint and complete, in a stable order, with and
// without filters that the store answers from its indexes.
func TestQueryPagination(t *testing.T) {
	s := apitest.Start(t)
	const n = 47
	var all []string
	for i := range n {
		id := fmt.Sprintf("urn:ngsi-ld:Counter:%03d", (i*17)%n) // not created in id order
		all = append(all, id)
		createEntity(t, s, map[string]any{"id": id, "type": "Counter", "n": prop(i), "even": prop(i%2 == 0)}, nil)
	}
	createEntity(t, s, map[string]any{"id": "urn:ngsi-ld:Other:1", "type": "Other", "n": prop(1)}, nil)
	var evens []string
	for i, id := range all {
		if i%2 == 0 {
			evens = append(evens, id)
		}
	}
	for _, tc := range []struct {
		name, params string
		want         []string
	}{
		{"type", "type=Counter", all},
		{"q pushdown", "type=Counter&q=" + enc("n>=0"), all},
		{"q filter", "q=" + enc("even==true;n<1000"), evens},
		{"idPattern", "idPattern=Counter", all},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, limit := range []int{1, 7, 100} {
				var got []string
				for off := 0; off < n+limit; off += limit {
					page := queryIDs(t, s, fmt.Sprintf("%s&limit=%d&offset=%d", tc.params, limit, off), nil)
					if len(page) > limit {
						t.Fatalf("limit %d offset %d: %d entities", limit, off, len(page))
					}
					got = append(got, page...)
				}
				if !slices.Equal(got, tc.want) {
					t.Fatalf("limit %d: pages give\n%v\nwant (creation order)\n%v", limit, got, tc.want)
				}
			}
			// Asking twice gives the same page.
			a := queryIDs(t, s, tc.params+"&limit=6&offset=12", nil)
			b := queryIDs(t, s, tc.params+"&limit=6&offset=12", nil)
			if !slices.Equal(a, b) {
				t.Errorf("unstable order: %v then %v", a, b)
			}
		})
	}
	t.Run("default limit is 20", func(t *testing.T) {
		if got := queryIDs(t, s, "type=Counter", nil); len(got) != 20 {
			t.Errorf("%d entities, want 20", len(got))
		}
	})
	t.Run("offset past the end", func(t *testing.T) {
		r := s.Get(entitiesPath+"?type=Counter&offset=1000&count=true", nil).Expect(t, 200)
		if string(r.Body) != "[]" {
			t.Errorf("body %s, want []", r.Body)
		}
		if c := r.Header.Get("NGSILD-Results-Count"); c != strconv.Itoa(n) {
			t.Errorf("count %q, want %d", c, n)
		}
	})
	t.Run("count", func(t *testing.T) {
		for _, tc := range []struct {
			params string
			want   int
		}{
			{"type=Counter", n},
			{"type=Counter,Other", n + 1},
			{"q=" + enc("even==true"), len(evens)},
			{"q=" + enc("n==1"), 2},
			{"type=Nothing", 0},
			{"local=true", n + 1},
		} {
			for _, limit := range []string{"0", "3", ""} {
				p := tc.params + "&count=true"
				if limit != "" {
					p += "&limit=" + limit
				}
				r := s.Get(entitiesPath+"?"+p, nil).Expect(t, 200)
				if c := r.Header.Get("NGSILD-Results-Count"); c != strconv.Itoa(tc.want) {
					t.Errorf("%s: NGSILD-Results-Count %q, want %d", p, c, tc.want)
				}
				ids := entityIDs(t, r)
				wantLen := min(tc.want, 20)
				if limit != "" {
					l, _ := strconv.Atoi(limit)
					wantLen = min(tc.want, l)
				}
				if len(ids) != wantLen {
					t.Errorf("%s: %d entities, want %d", p, len(ids), wantLen)
				}
			}
		}
		r := s.Get(entitiesPath+"?type=Counter", nil).Expect(t, 200)
		if c := r.Header.Values("NGSILD-Results-Count"); len(c) != 0 {
			t.Errorf("NGSILD-Results-Count %v without count=true", c)
		}
		r = s.Get(entitiesPath+"?type=Counter&count=false&limit=2", nil).Expect(t, 200)
		if c := r.Header.Values("NGSILD-Results-Count"); len(c) != 0 {
			t.Errorf("NGSILD-Results-Count %v with count=false", c)
		}
	})
	t.Run("limit over the maximum", func(t *testing.T) {
		s.Get(entitiesPath+"?type=Counter&limit=1001", nil).ExpectProblem(t, 403, "TooManyResults")
		s.Post("/ngsi-ld/v1/entityOperations/query?limit=5000", map[string]any{"type": "Query", "entities": []any{map[string]any{"type": "Counter"}}}, nil).
			ExpectProblem(t, 403, "TooManyResults")
		if got := queryIDs(t, s, "type=Counter&limit=1000", nil); len(got) != n {
			t.Errorf("limit=1000 (the maximum): %d entities, want %d", len(got), n)
		}
	})
}

func TestQueryTenants(t *testing.T) {
	s := apitest.Start(t)
	a := map[string]string{"NGSILD-Tenant": "brussels"}
	b := map[string]string{"NGSILD-Tenant": "antwerp"}
	createEntity(t, s, map[string]any{"id": "urn:ngsi-ld:Sensor:1", "type": "Sensor", "t": prop(1)}, a)
	createEntity(t, s, map[string]any{"id": "urn:ngsi-ld:Sensor:1", "type": "Sensor", "t": prop(2)}, b)
	createEntity(t, s, map[string]any{"id": "urn:ngsi-ld:Sensor:2", "type": "Sensor", "t": prop(3)}, b)
	createEntity(t, s, map[string]any{"id": "urn:ngsi-ld:Sensor:9", "type": "Sensor", "t": prop(1)}, nil)

	check := func(name string, hdr map[string]string, params string, want []string) {
		t.Helper()
		if got := queryIDs(t, s, params, hdr); !slices.Equal(got, want) {
			t.Errorf("%s ?%s: %v, want %v", name, params, got, want)
		}
	}
	check("brussels", a, "type=Sensor", []string{"urn:ngsi-ld:Sensor:1"})
	check("antwerp", b, "type=Sensor", []string{"urn:ngsi-ld:Sensor:1", "urn:ngsi-ld:Sensor:2"})
	check("default", nil, "type=Sensor", []string{"urn:ngsi-ld:Sensor:9"})
	check("brussels q", a, "q="+enc("t==2"), []string{})
	check("antwerp q", b, "q="+enc("t==2"), []string{"urn:ngsi-ld:Sensor:1"})
	check("antwerp local", b, "local=true", []string{"urn:ngsi-ld:Sensor:1", "urn:ngsi-ld:Sensor:2"})
	r := s.Get(entitiesPath+"?type=Sensor&count=true&limit=0", b).Expect(t, 200)
	if c := r.Header.Get("NGSILD-Results-Count"); c != "2" {
		t.Errorf("antwerp count %q, want 2", c)
	}
	if ids := postQueryIDs(t, s, "", map[string]any{"type": "Query", "q": "t>=1"}, a); !slices.Equal(ids, []string{"urn:ngsi-ld:Sensor:1"}) {
		t.Errorf("brussels POST query: %v", ids)
	}

	ghent := map[string]string{"NGSILD-Tenant": "ghent"}
	s.Get(entitiesPath+"?type=Sensor", ghent).ExpectProblem(t, 404, "NonexistentTenant")
	s.Get(entitiesPath+"?local=true&count=true&limit=0", ghent).ExpectProblem(t, 404, "NonexistentTenant")
	s.Post("/ngsi-ld/v1/entityOperations/query", map[string]any{"type": "Query", "q": "t==1"}, ghent).ExpectProblem(t, 404, "NonexistentTenant")
	s.Get(entitiesPath+"?type=Sensor", map[string]string{"NGSILD-Tenant": "bad tenant!"}).ExpectProblem(t, 400, "BadRequestData")
}

func TestQueryErrors(t *testing.T) {
	s := queryFixture(t)
	cases := []struct {
		name, params string
		status       int
		errType      string
	}{
		{"no filter", "", 400, "BadRequestData"},
		{"only pagination", "limit=5&offset=0", 400, "BadRequestData"},
		{"local=false", "local=false", 400, "BadRequestData"},
		{"id not a URI", "id=" + enc("not a uri"), 400, "BadRequestData"},
		{"id list with a bad one", "id=" + s1 + ",nope", 400, "BadRequestData"},
		{"idPattern invalid", "idPattern=" + enc("urn:(ngsi"), 400, "BadRequestData"},
		{"idPattern invalid class", "idPattern=" + enc("[z-a]"), 400, "BadRequestData"},
		{"type unbalanced", "type=" + enc("(Room|Office"), 400, "BadRequestData"},
		{"type empty member", "type=" + enc("Room,,Office"), 400, "BadRequestData"},
		{"type dangling operator", "type=" + enc("Room;"), 400, "BadRequestData"},
		{"type stray paren", "type=" + enc("Room)"), 400, "BadRequestData"},
		{"attrs invalid name", "attrs=" + enc("a b"), 400, "BadRequestData"},
		{"q bad operator", "q=" + enc("temperature=>20"), 400, "BadRequestData"},
		{"q single =", "q=" + enc("temperature=20"), 400, "BadRequestData"},
		{"q missing value", "q=" + enc("temperature=="), 400, "BadRequestData"},
		{"q unquoted string", "q=" + enc("status==ok"), 400, "BadRequestData"},
		{"q unterminated string", "q=" + enc(`status=="ok`), 400, "BadRequestData"},
		{"q unbalanced parenthesis", "q=" + enc(`(status=="ok"`), 400, "BadRequestData"},
		{"q stray parenthesis", "q=" + enc(`status=="ok")`), 400, "BadRequestData"},
		{"q dangling and", "q=" + enc(`status=="ok";`), 400, "BadRequestData"},
		{"q range with >", "q=" + enc("temperature>1..5"), 400, "BadRequestData"},
		{"q range mixed types", "q=" + enc(`temperature==1.."5"`), 400, "BadRequestData"},
		{"q list with <", "q=" + enc("temperature<1,2"), 400, "BadRequestData"},
		{"q bad regexp", "q=" + enc("name~=(unclosed"), 400, "BadRequestData"},
		{"q unbalanced bracket", "q=" + enc("address[city==1"), 400, "BadRequestData"},
		{"q empty key", "q=" + enc("address[]==1"), 400, "BadRequestData"},
		{"q after metadata", "q=" + enc("temperature.observedAt.x==1"), 400, "BadRequestData"},
		{"q bad date", "q=" + enc("installedAt>2020-13-45"), 400, "BadRequestData"},
		{"q boolean ordered", "q=" + enc("active>true"), 400, "BadRequestData"},
		{"q whitespace only", "q=" + enc("  "), 400, "BadRequestData"},
		{"scopeQ # not last", "scopeQ=" + enc("/Brussels/#/Midi"), 400, "BadRequestData"},
		{"scopeQ partial wildcard", "scopeQ=" + enc("/Brussels/Mi+"), 400, "BadRequestData"},
		{"scopeQ empty level", "scopeQ=" + enc("/Brussels//x"), 400, "BadRequestData"},
		{"georel unknown", "georel=nearby&geometry=Point&coordinates=" + enc("[4.35,50.85]"), 400, "BadRequestData"},
		{"georel near without distance", "georel=near&geometry=Point&coordinates=" + enc("[4.35,50.85]"), 400, "BadRequestData"},
		{"georel near negative", "georel=" + enc("near;maxDistance==-5") + "&geometry=Point&coordinates=" + enc("[4.35,50.85]"), 400, "BadRequestData"},
		{"georel near bad modifier", "georel=" + enc("near;maxDistance=5") + "&geometry=Point&coordinates=" + enc("[4.35,50.85]"), 400, "BadRequestData"},
		{"georel near min over max", "georel=" + enc("near;minDistance==500;maxDistance==100") + "&geometry=Point&coordinates=" + enc("[4.35,50.85]"), 400, "BadRequestData"},
		{"georel within a point", "georel=within&geometry=Point&coordinates=" + enc("[4.35,50.85]"), 400, "BadRequestData"},
		{"geometry unknown", "georel=intersects&geometry=Circle&coordinates=" + enc("[4.35,50.85]"), 400, "BadRequestData"},
		{"georel without coordinates", "georel=intersects&geometry=Point", 400, "BadRequestData"},
		{"coordinates without georel", "geometry=Point&coordinates=" + enc("[4.35,50.85]"), 400, "BadRequestData"},
		{"coordinates not JSON", "georel=intersects&geometry=Point&coordinates=" + enc("[4.35,50.85"), 400, "BadRequestData"},
		{"coordinates not an array", "georel=intersects&geometry=Point&coordinates=" + enc("4.35,50.85"), 400, "BadRequestData"},
		{"coordinates wrong depth", "georel=intersects&geometry=Polygon&coordinates=" + enc("[4.35,50.85]"), 400, "BadRequestData"},
		{"coordinates latitude out of range", "georel=intersects&geometry=Point&coordinates=" + enc("[4.35,95]"), 400, "BadRequestData"},
		{"polygon not closed", "georel=within&geometry=Polygon&coordinates=" + enc("[[[4.3,50.8],[4.4,50.8],[4.4,50.9],[4.3,50.9]]]"), 400, "BadRequestData"},
		{"limit negative", "type=Sensor&limit=-1", 400, "BadRequestData"},
		{"limit not a number", "type=Sensor&limit=ten", 400, "BadRequestData"},
		{"offset negative", "type=Sensor&offset=-3", 400, "BadRequestData"},
		{"limit=0 without count", "type=Sensor&limit=0", 400, "BadRequestData"},
		{"count not boolean", "type=Sensor&count=yes", 400, "BadRequestData"},
		{"unknown option", "type=Sensor&options=fancy", 400, "BadRequestData"},
		{"two representations", "type=Sensor&options=keyValues,concise", 400, "BadRequestData"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s.Get(entitiesPath+"?"+tc.params, nil).ExpectProblem(t, tc.status, tc.errType)
		})
	}
	t.Run("not acceptable", func(t *testing.T) {
		s.Get(entitiesPath+"?type=Sensor", map[string]string{"Accept": "text/csv"}).ExpectProblem(t, 406, "NotAcceptable")
	})
	t.Run("problem details body", func(t *testing.T) {
		r := s.Get(entitiesPath+"?q="+enc("temperature=>20"), nil)
		apitest.Golden(t, "query-error-q", r.Body)
	})

	post := []struct {
		name    string
		body    any
		ct      string
		status  int
		errType string
	}{
		{"no filter", map[string]any{"type": "Query"}, "", 400, "BadRequestData"},
		{"wrong type", map[string]any{"type": "Subscription", "q": "a==1"}, "", 400, "BadRequestData"},
		{"entities not an array", map[string]any{"type": "Query", "entities": map[string]any{"type": "Sensor"}}, "", 400, "BadRequestData"},
		{"entities empty", map[string]any{"type": "Query", "entities": []any{}}, "", 400, "BadRequestData"},
		{"selector id not a URI", map[string]any{"type": "Query", "entities": []any{map[string]any{"id": "x", "type": "Sensor"}}}, "", 400, "BadRequestData"},
		{"selector bad idPattern", map[string]any{"type": "Query", "entities": []any{map[string]any{"idPattern": "(", "type": "Sensor"}}}, "", 400, "BadRequestData"},
		{"selector bad type", map[string]any{"type": "Query", "entities": []any{map[string]any{"type": "(Sensor"}}}, "", 400, "BadRequestData"},
		{"q not a string", map[string]any{"type": "Query", "q": 5}, "", 400, "BadRequestData"},
		{"q malformed", map[string]any{"type": "Query", "q": "a=="}, "", 400, "BadRequestData"},
		{"attrs not an array", map[string]any{"type": "Query", "attrs": "a"}, "", 400, "BadRequestData"},
		{"scopeQ malformed", map[string]any{"type": "Query", "scopeQ": "/a//b"}, "", 400, "BadRequestData"},
		{"geoQ not an object", map[string]any{"type": "Query", "geoQ": "near"}, "", 400, "BadRequestData"},
		{"geoQ bad georel", map[string]any{"type": "Query", "geoQ": map[string]any{"georel": "around", "geometry": "Point", "coordinates": []any{4.35, 50.85}}}, "", 400, "BadRequestData"},
		{"geoQ bad coordinates", map[string]any{"type": "Query", "geoQ": map[string]any{"georel": "near;maxDistance==5", "geometry": "Point", "coordinates": []any{"a", 50.85}}}, "", 400, "BadRequestData"},
		{"geoQ missing geometry", map[string]any{"type": "Query", "geoQ": map[string]any{"georel": "near;maxDistance==5", "coordinates": []any{4.35, 50.85}}}, "", 400, "BadRequestData"},
		{"body not JSON", "{type", "", 400, "InvalidRequest"},
		{"body an array", []any{map[string]any{"type": "Query"}}, "", 400, "BadRequestData"},
		{"content type", `{"type":"Query","q":"a==1"}`, "text/plain", 415, "UnsupportedMediaType"},
	}
	for _, tc := range post {
		t.Run("POST "+tc.name, func(t *testing.T) {
			s.Do(apitest.Req{Method: "POST", Path: "/ngsi-ld/v1/entityOperations/query", Body: tc.body, ContentType: tc.ct}).
				ExpectProblem(t, tc.status, tc.errType)
		})
	}
}

// With enough entities the store answers q conjuncts from its indexes
// (attr_num, attr_txt, attr_has) instead of scanning: every operator must
// give the same entities as evaluating the predicate on each one, for full
// lists, counts and small pages.
func TestQueryIndexedAgainstOracle(t *testing.T) {
	s := apitest.Start(t)
	type ent struct {
		id   string
		n    float64 // absent when i%11 == 0
		str  string
		b    bool
		tags []float64
		rel  string
		m    [2]float64 // default instance, datasetId instance
		hasN bool
	}
	const total = 240
	var all []ent
	letters := []string{"alpha", "bravo", "charlie", "delta", "echo"}
	for i := range total {
		e := ent{
			id:   fmt.Sprintf("urn:ngsi-ld:Thing:%03d", i),
			n:    float64(i % 17),
			hasN: i%11 != 0,
			str:  letters[i%5],
			b:    i%3 == 0,
			tags: []float64{float64(i % 4), float64(i % 6)},
			rel:  fmt.Sprintf("urn:ngsi-ld:Station:%d", i%7),
			m:    [2]float64{float64(i % 10), float64(i % 13)},
		}
		all = append(all, e)
		body := map[string]any{
			"id": e.id, "type": "Thing",
			"str":  prop(e.str),
			"b":    prop(e.b),
			"tags": prop([]any{e.tags[0], e.tags[1]}),
			"rel":  rel(e.rel),
			"m":    []any{prop(e.m[0]), map[string]any{"type": "Property", "value": e.m[1], "datasetId": "urn:ngsi-ld:Dataset:x"}},
		}
		if e.hasN {
			body["n"] = prop(e.n)
		}
		if i%2 == 0 {
			body["type"] = []any{"Thing", "EvenThing"}
		}
		createEntity(t, s, body, nil)
	}
	anyOf := func(xs []float64, f func(float64) bool) bool { return slices.ContainsFunc(xs, f) }
	cases := []struct {
		q    string
		pred func(e ent) bool
	}{
		{"n==5", func(e ent) bool { return e.hasN && e.n == 5 }},
		{"n!=5", func(e ent) bool { return e.hasN && e.n != 5 }},
		{"n>12", func(e ent) bool { return e.hasN && e.n > 12 }},
		{"n>=12", func(e ent) bool { return e.hasN && e.n >= 12 }},
		{"n<2", func(e ent) bool { return e.hasN && e.n < 2 }},
		{"n<=2", func(e ent) bool { return e.hasN && e.n <= 2 }},
		{"n==3..4", func(e ent) bool { return e.hasN && e.n >= 3 && e.n <= 4 }},
		{"n==1,7,16", func(e ent) bool { return e.hasN && (e.n == 1 || e.n == 7 || e.n == 16) }},
		{"n", func(e ent) bool { return e.hasN }},
		{"!n", func(e ent) bool { return !e.hasN }},
		{`str=="charlie"`, func(e ent) bool { return e.str == "charlie" }},
		{`str=="bravo","echo"`, func(e ent) bool { return e.str == "bravo" || e.str == "echo" }},
		{`str>"charlie"`, func(e ent) bool { return e.str > "charlie" }},
		{`str=="b".."d"`, func(e ent) bool { return e.str >= "b" && e.str <= "d" }},
		{`str~=^[a-c]`, func(e ent) bool { return e.str[0] <= 'c' }},
		{"b==true", func(e ent) bool { return e.b }},
		{"b==false", func(e ent) bool { return !e.b }},
		{"b==1", func(e ent) bool { return false }},
		{"tags==3", func(e ent) bool { return anyOf(e.tags, func(x float64) bool { return x == 3 }) }},
		{"tags>4", func(e ent) bool { return anyOf(e.tags, func(x float64) bool { return x > 4 }) }},
		{"tags!=0", func(e ent) bool { return !anyOf(e.tags, func(x float64) bool { return x == 0 }) }},
		{"rel==urn:ngsi-ld:Station:3", func(e ent) bool { return e.rel == "urn:ngsi-ld:Station:3" }},
		{"m==12", func(e ent) bool { return e.m[0] == 12 || e.m[1] == 12 }},
		{"m<1", func(e ent) bool { return e.m[0] < 1 || e.m[1] < 1 }},
		{"n==5;b==true", func(e ent) bool { return e.hasN && e.n == 5 && e.b }},
		{`n>=10;str=="alpha";m>5`, func(e ent) bool {
			return e.hasN && e.n >= 10 && e.str == "alpha" && (e.m[0] > 5 || e.m[1] > 5)
		}},
		{"n==5|b==true", func(e ent) bool { return (e.hasN && e.n == 5) || e.b }},
		{`(n<3|n>14);str!="alpha"`, func(e ent) bool { return e.hasN && (e.n < 3 || e.n > 14) && e.str != "alpha" }},
	}
	for _, tc := range cases {
		t.Run(tc.q, func(t *testing.T) {
			var want []string
			for _, e := range all {
				if tc.pred(e) {
					want = append(want, e.id)
				}
			}
			if want == nil {
				want = []string{}
			}
			got := queryIDs(t, s, "q="+enc(tc.q)+"&limit=1000", nil)
			if !slices.Equal(got, want) {
				t.Fatalf("q=%s: %d entities, want %d\n got %v\nwant %v", tc.q, len(got), len(want), got, want)
			}
			r := s.Get(entitiesPath+"?q="+enc(tc.q)+"&count=true&limit=0", nil).Expect(t, 200)
			if c := r.Header.Get("NGSILD-Results-Count"); c != strconv.Itoa(len(want)) {
				t.Errorf("count %s, want %d", c, len(want))
			}
			// The first small pages (the store uses an index for them when
			// it is selective) and the last one.
			paged := []string{}
			for off := 0; off < 9; off += 3 {
				paged = append(paged, queryIDs(t, s, fmt.Sprintf("type=Thing&q=%s&limit=3&offset=%d", enc(tc.q), off), nil)...)
			}
			if head := want[:min(9, len(want))]; !slices.Equal(paged, head) {
				t.Errorf("pages of 3: %v\nwant %v", paged, head)
			}
			if len(want) > 0 {
				last := queryIDs(t, s, fmt.Sprintf("type=Thing&q=%s&limit=3&offset=%d", enc(tc.q), len(want)-1), nil)
				if !slices.Equal(last, want[len(want)-1:]) {
					t.Errorf("last page: %v, want %v", last, want[len(want)-1:])
				}
			}
			// With a type that selects half of them.
			var even []string
			for _, id := range want {
				var i int
				fmt.Sscanf(id, "urn:ngsi-ld:Thing:%d", &i)
				if i%2 == 0 {
					even = append(even, id)
				}
			}
			if even == nil {
				even = []string{}
			}
			if got := queryIDs(t, s, "type=EvenThing&q="+enc(tc.q)+"&limit=1000", nil); !slices.Equal(got, even) {
				t.Errorf("type=EvenThing: %v\nwant %v", got, even)
			}
		})
	}
}

// Queries see updates and deletions: no stale index entries.
func TestQueryAfterWrites(t *testing.T) {
	s := apitest.Start(t)
	const total = 80
	id := func(i int) string { return fmt.Sprintf("urn:ngsi-ld:Meter:%02d", i) }
	for i := range total {
		createEntity(t, s, map[string]any{"id": id(i), "type": "Meter", "level": prop(1), "label": prop("old")}, nil)
	}
	// Change a third, delete a fifth, drop label from every seventh.
	var changed, deleted []string
	for i := range total {
		switch {
		case i%5 == 4:
			s.Delete(entitiesPath+"/"+id(i), nil).Expect(t, 204)
			deleted = append(deleted, id(i))
		case i%3 == 0:
			s.Patch(entitiesPath+"/"+id(i)+"/attrs", map[string]any{"level": prop(2), "label": prop("new")}, nil).Expect(t, 204)
			changed = append(changed, id(i))
		}
		if i%7 == 6 && i%5 != 4 {
			s.Delete(entitiesPath+"/"+id(i)+"/attrs/label", nil).Expect(t, 204)
		}
	}
	var unchanged, newLabel, noLabel []string
	for i := range total {
		if i%5 == 4 {
			continue
		}
		if i%3 != 0 {
			unchanged = append(unchanged, id(i))
		}
		if i%7 == 6 {
			noLabel = append(noLabel, id(i))
		} else if i%3 == 0 {
			newLabel = append(newLabel, id(i))
		}
	}
	for _, tc := range []struct {
		params string
		want   []string
	}{
		{"q=" + enc("level==2"), changed},
		{"q=" + enc("level==1"), unchanged},
		{"q=" + enc(`label=="new"`), newLabel},
		{"q=" + enc("!label") + "&type=Meter", noLabel},
		{"id=" + deleted[0] + "," + deleted[1], []string{}},
	} {
		if got := queryIDs(t, s, tc.params+"&limit=1000", nil); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v\nwant %v", tc.params, got, tc.want)
		}
	}
	r := s.Get(entitiesPath+"?type=Meter&count=true&limit=0", nil).Expect(t, 200)
	if c := r.Header.Get("NGSILD-Results-Count"); c != strconv.Itoa(total-len(deleted)) {
		t.Errorf("count %s, want %d", c, total-len(deleted))
	}
	if got := queryIDs(t, s, "q="+enc("level>=1")+"&limit=1", nil); !slices.Equal(got, []string{id(0)}) {
		t.Errorf("first page: %v", got)
	}
}

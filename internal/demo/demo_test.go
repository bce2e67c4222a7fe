package demo

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paulmach/orb"
)

var testNow = time.Date(2026, 11, 21, 15, 7, 30, 0, time.UTC) // a Saturday afternoon

// testCity is built once: City parses 1.8 MB of GeoJSON, slow under -race.
var testCity = sync.OnceValues(func() ([]Entity, error) { return City(42, testNow) })

func city(t *testing.T) []Entity {
	t.Helper()
	es, err := testCity()
	if err != nil {
		t.Fatalf("City: %v", err)
	}
	return es
}

func testGeography(t *testing.T) *geography {
	t.Helper()
	g, err := loadGeography()
	if err != nil {
		t.Fatalf("loadGeography: %v", err)
	}
	return g
}

func TestCityDeterministic(t *testing.T) {
	a := city(t)
	b, err := City(42, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatal("City(42, now) differs between two calls")
	}
	c, err := City(43, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if reflect.DeepEqual(a, c) {
		t.Fatal("City(43, now) equals City(42, now): the seed is ignored")
	}
}

func TestSummary(t *testing.T) {
	want := map[string]int{
		"Municipality":             19,
		"Neighbourhood":            145,
		"PointOfInterest":          35,
		"WasteContainer":           120,
		"ParkingSpot":              80,
		"Streetlight":              100,
		"AirQualityObserved":       8,
		"NoiseLevelObserved":       6,
		"WaterConsumptionObserved": 40,
		"Building":                 40,
		"CrowdFlowObserved":        10,
	}
	if got := Summary(city(t)); !reflect.DeepEqual(got, want) {
		t.Errorf("Summary = %v, want %v", got, want)
	}
	if got := Summary(nil); len(got) != 0 {
		t.Errorf("Summary(nil) = %v, want empty", got)
	}
}

func TestEntitiesAreValidNGSILD(t *testing.T) {
	es := city(t)
	seen := make(map[string]bool)
	for _, e := range es {
		id, _ := e["id"].(string)
		if u, err := url.Parse(id); err != nil || u.Scheme != "urn" || !strings.HasPrefix(id, "urn:ngsi-ld:") {
			t.Errorf("id %q is not an NGSI-LD URN", id)
		}
		if seen[id] {
			t.Errorf("duplicate id %s", id)
		}
		seen[id] = true
		typ, _ := e["type"].(string)
		if typ == "" || !strings.HasPrefix(id, "urn:ngsi-ld:"+typ+":") {
			t.Errorf("%s: type %q missing or not in the id", id, typ)
		}
		ctx, ok := e["@context"].([]any)
		if !ok || len(ctx) < 2 || ctx[len(ctx)-1] != CoreContext {
			t.Errorf("%s: @context %v must be an array ending with the core context", id, e["@context"])
		}
		attrs := 0
		for name, v := range e {
			switch name {
			case "id", "type", "@context":
				continue
			}
			attrs++
			checkAttribute(t, id+" "+name, v)
		}
		if attrs == 0 || e["location"] == nil {
			t.Errorf("%s: no attributes or no location", id)
		}
	}
	// Values are exactly what encoding/json decodes (no Go-specific types).
	b, err := json.Marshal(es)
	if err != nil {
		t.Fatal(err)
	}
	var back []Entity
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, es) {
		t.Error("entities change through a JSON round trip")
	}
}

// checkAttribute checks an NGSI-LD attribute (normalized form) and its
// sub-attributes.
func checkAttribute(t *testing.T, where string, v any) {
	t.Helper()
	a, ok := v.(map[string]any)
	if !ok {
		t.Errorf("%s: attribute is %T, not an object", where, v)
		return
	}
	switch a["type"] {
	case "Property":
		if a["value"] == nil {
			t.Errorf("%s: Property without value", where)
		}
	case "Relationship":
		obj, _ := a["object"].(string)
		if u, err := url.Parse(obj); err != nil || u.Scheme == "" {
			t.Errorf("%s: Relationship object %v is not a URI", where, a["object"])
		}
	case "GeoProperty":
		g, _ := a["value"].(map[string]any)
		if _, err := toOrb(g); err != nil {
			t.Errorf("%s: GeoProperty value: %v", where, err)
		}
	case "LanguageProperty":
		lm, _ := a["languageMap"].(map[string]any)
		if len(lm) == 0 {
			t.Errorf("%s: LanguageProperty without languageMap", where)
		}
		for lang, s := range lm {
			if s, _ := s.(string); s == "" {
				t.Errorf("%s: languageMap[%s] is empty", where, lang)
			}
		}
	default:
		t.Errorf("%s: attribute type %v", where, a["type"])
	}
	for k, sub := range a {
		switch k {
		case "type", "value", "object", "languageMap":
		case "observedAt":
			s, _ := sub.(string)
			at, err := time.Parse(time.RFC3339, s)
			if err != nil {
				t.Errorf("%s: observedAt %v: %v", where, sub, err)
			} else if at.After(testNow) || at.Before(testNow.Add(-48*time.Hour)) {
				t.Errorf("%s: observedAt %s not within the 48 hours before now", where, s)
			}
		case "unitCode":
			if s, _ := sub.(string); len(s) < 2 || len(s) > 3 {
				t.Errorf("%s: unitCode %v is not a UN/CEFACT code", where, sub)
			}
		default:
			checkAttribute(t, where+"."+k, sub)
		}
	}
}

func TestPointsInsideRegion(t *testing.T) {
	g := testGeography(t)
	n := 0
	for _, e := range city(t) {
		p, ok := point(e)
		if !ok {
			continue
		}
		n++
		if !g.inRegion(p) {
			t.Errorf("%s: %v lies outside the Brussels-Capital Region", e["id"], p)
		}
	}
	if n < 400 {
		t.Errorf("only %d point entities", n)
	}
}

// TestPlaceNamesMatchLocation: areaServed and addressLocality name the
// municipality the point lies in.
func TestPlaceNamesMatchLocation(t *testing.T) {
	g := testGeography(t)
	for _, e := range city(t) {
		p, ok := point(e)
		if !ok {
			continue
		}
		m := g.municipalityAt(p)
		if m == nil {
			t.Errorf("%s: %v lies in no municipality", e["id"], p)
			continue
		}
		if a, ok := e["areaServed"].(map[string]any); ok && a["value"] != m.nameFR {
			t.Errorf("%s: areaServed %v, point lies in %s", e["id"], a["value"], m.nameFR)
		}
		if a, ok := e["address"].(map[string]any); ok {
			if loc := a["value"].(map[string]any)["addressLocality"]; loc != m.nameFR {
				t.Errorf("%s: addressLocality %v, point lies in %s", e["id"], loc, m.nameFR)
			}
		}
	}
}

func TestAreas(t *testing.T) {
	g := testGeography(t)
	es := city(t)

	wantMunis := make(map[string]bool)
	for _, m := range g.municipalities {
		wantMunis["urn:ngsi-ld:Municipality:"+m.nis] = true
	}
	wantHoods := make(map[string]bool)
	for _, f := range g.neighbourhoods {
		wantHoods["urn:ngsi-ld:Neighbourhood:"+str(f.props["mdzone"])] = true
	}
	if len(wantMunis) != 19 || len(wantHoods) != 145 {
		t.Fatalf("embedded data: %d municipalities, %d neighbourhoods", len(wantMunis), len(wantHoods))
	}

	gotMunis, gotHoods := make(map[string]bool), make(map[string]bool)
	perMuni := make(map[string]int)
	for _, e := range es {
		id := e["id"].(string)
		switch e["type"] {
		case "Municipality":
			gotMunis[id] = true
			if nis := e["nisCode"].(map[string]any)["value"]; "urn:ngsi-ld:Municipality:"+nis.(string) != id {
				t.Errorf("%s: nisCode %v", id, nis)
			}
		case "Neighbourhood":
			gotHoods[id] = true
			obj := e["municipality"].(map[string]any)["object"].(string)
			if !wantMunis[obj] {
				t.Errorf("%s: municipality %s does not exist", id, obj)
			}
			perMuni[obj]++
		}
	}
	if !reflect.DeepEqual(gotMunis, wantMunis) {
		t.Errorf("municipalities: got %v", keys(gotMunis))
	}
	if !reflect.DeepEqual(gotHoods, wantHoods) {
		t.Errorf("neighbourhoods: got %d, want %d", len(gotHoods), len(wantHoods))
	}
	if len(perMuni) != 19 {
		t.Errorf("neighbourhoods fall in %d municipalities, want all 19: %v", len(perMuni), perMuni)
	}
	// Spot checks on well-known neighbourhoods (mdzone: name → municipality).
	for id, want := range map[string]string{
		"urn:ngsi-ld:Neighbourhood:36": "urn:ngsi-ld:Municipality:21009", // Matonge → Ixelles
	} {
		for _, e := range es {
			if e["id"] == id {
				if got := e["municipality"].(map[string]any)["object"]; got != want {
					t.Errorf("%s: municipality %v, want %s", id, got, want)
				}
			}
		}
	}
}

func TestPlaceTables(t *testing.T) {
	g := testGeography(t)
	local := localities()
	for _, m := range g.municipalities {
		if l, ok := local[m.nis]; !ok || l.postcode == "" || len(l.streets) == 0 {
			t.Errorf("no locality for %s %s", m.nis, m.nameFR)
		}
	}
	halls := townHalls()
	if len(halls) != 19 {
		t.Errorf("%d town halls", len(halls))
	}
	for _, s := range halls {
		p := orb.Point{s.lon, s.lat}
		if m := g.municipalityAt(p); m == nil || m.nis != s.nis {
			t.Errorf("%s at %v does not lie in %s", s.name, p, s.nis)
		}
	}
	for _, list := range [][]site{airStations(), noiseSites(), pedestrianCounters()} {
		for _, s := range list {
			if !g.inRegion(orb.Point{s.lon, s.lat}) {
				t.Errorf("%s lies outside the region", s.name)
			}
		}
	}
}

// TestTermsResolve: every attribute name and entity type is defined by the
// entity's @context (an inline object, its Smart Data Models domain context,
// or the core context), rather than falling through to the core @vocab.
func TestTermsResolve(t *testing.T) {
	terms := func(file string) map[string]bool {
		b, err := os.ReadFile(filepath.Join("testdata", "contexts", file))
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Context map[string]any `json:"@context"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		out := make(map[string]bool)
		for k := range doc.Context {
			out[k] = true
		}
		return out
	}
	core := terms("ngsi-ld-core-context-v1.8.jsonld")
	domains := make(map[string]map[string]bool)
	for _, e := range city(t) {
		id := e["id"].(string)
		defined := make(map[string]bool)
		for k := range core {
			defined[k] = true
		}
		for _, c := range e["@context"].([]any) {
			switch c := c.(type) {
			case map[string]any:
				for k, v := range c {
					if s, _ := v.(string); !strings.HasPrefix(s, "https://") {
						t.Errorf("%s: inline term %s → %v is not an IRI", id, k, v)
					}
					defined[k] = true
				}
			case string:
				if c == CoreContext {
					continue
				}
				domain, ok := strings.CutPrefix(c, "https://raw.githubusercontent.com/smart-data-models/dataModel.")
				domain, _, ok2 := strings.Cut(domain, "/")
				if !ok || !ok2 {
					t.Errorf("%s: unexpected context %s", id, c)
					continue
				}
				if domains[domain] == nil {
					domains[domain] = terms(domain + ".jsonld")
				}
				for k := range domains[domain] {
					defined[k] = true
				}
			}
		}
		if !defined[e["type"].(string)] {
			t.Errorf("%s: type %v not defined by its @context", id, e["type"])
		}
		for name := range e {
			if name != "@context" && name != "id" && name != "type" && !defined[name] {
				t.Errorf("%s: attribute %s not defined by its @context", id, name)
			}
		}
	}
}

func TestDark(t *testing.T) {
	tests := []struct {
		name string
		at   time.Time
		want bool
	}{
		{"winter noon", time.Date(2026, 12, 21, 12, 0, 0, 0, time.UTC), false},
		{"winter 17:30 local", time.Date(2026, 12, 21, 16, 30, 0, 0, time.UTC), true},
		{"winter 8:00 local", time.Date(2026, 12, 21, 7, 0, 0, 0, time.UTC), true},
		{"summer 21:00 local", time.Date(2026, 6, 21, 19, 0, 0, 0, time.UTC), false},
		{"summer 23:00 local", time.Date(2026, 6, 21, 21, 0, 0, 0, time.UTC), true},
		{"summer 6:00 local", time.Date(2026, 6, 21, 4, 0, 0, 0, time.UTC), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := dark(tc.at); got != tc.want {
				t.Errorf("dark(%s) = %v, want %v", tc.at, got, tc.want)
			}
		})
	}
}

func point(e Entity) (orb.Point, bool) {
	loc, _ := e["location"].(map[string]any)
	g, _ := loc["value"].(map[string]any)
	if g == nil || g["type"] != "Point" {
		return orb.Point{}, false
	}
	p, err := toPoint(g["coordinates"])
	return p, err == nil
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func BenchmarkCity(b *testing.B) {
	for b.Loop() {
		if _, err := City(42, testNow); err != nil {
			b.Fatal(err)
		}
	}
}

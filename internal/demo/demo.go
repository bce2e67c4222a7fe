// Package demo builds the Brussels demo city as NGSI-LD entities: the 19
// municipalities, the 145 monitoring neighbourhoods, the railway stations, and
// a few hundred Smart Data Models sensors and buildings placed inside the
// region. Boundaries are real (UrbIS, IBSA, iRail; see data/SOURCES.md);
// sensors and their readings are generated deterministically from a seed.
package demo

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"
	_ "time/tzdata" // Europe/Brussels for the daily rhythm of the readings, even without system tzdata

	"github.com/paulmach/orb"
)

// Entity is one NGSI-LD entity in the normalized representation with compact
// attribute names and an "@context" member. Values hold only the types
// encoding/json produces when decoding into any (map[string]any, []any,
// string, float64, bool).
type Entity = map[string]any

// CoreContext is the NGSI-LD core @context every entity's "@context" ends with.
const CoreContext = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"

// Namespace is where the terms zenne defines itself (not in Smart Data Models) live.
const Namespace = "https://zenne.city/ns/"

// SDMContext is the @context URL of a Smart Data Models domain, e.g.
// SDMContext("WasteManagement").
func SDMContext(domain string) string {
	return "https://raw.githubusercontent.com/smart-data-models/dataModel." + domain + "/master/context.jsonld"
}

// City returns the demo city for seed: the same seed and now always give the
// same entities. now anchors observedAt/dateObserved values (readings are
// from the last hour or so before now, following Brussels' daily rhythm).
// Areas come first (municipalities, then neighbourhoods), so that relationship
// targets precede the entities that point at them.
func City(seed int64, now time.Time) ([]Entity, error) {
	g, err := loadGeography()
	if err != nil {
		return nil, fmt.Errorf("demo city: %w", err)
	}
	loc, err := time.LoadLocation("Europe/Brussels")
	if err != nil {
		loc = time.FixedZone("CET", 3600)
	}
	b := &builder{
		geo:   g,
		rnd:   rand.New(rand.NewPCG(uint64(seed), 0x7a656e6e65)),
		now:   now.UTC().Truncate(time.Second),
		loc:   loc,
		local: localities(),
	}
	// Areas are built from decoded JSON only; they skip normalise, which
	// would re-encode 1.5 MB of polygons for nothing.
	steps := []struct {
		what      string
		fn        func() ([]Entity, error)
		jsonReady bool
	}{
		{"municipalities", b.municipalities, true},
		{"neighbourhoods", b.neighbourhoods, true},
		{"railway stations", b.stations, false},
		{"waste containers", b.wasteContainers, false},
		{"parking spots", b.parkingSpots, false},
		{"streetlights", b.streetlights, false},
		{"air quality", b.airQuality, false},
		{"noise levels", b.noiseLevels, false},
		{"buildings and water meters", b.buildingsAndWater, false},
		{"crowd flows", b.crowdFlows, false},
	}
	var out []Entity
	for _, s := range steps {
		es, err := s.fn()
		if err != nil {
			return nil, fmt.Errorf("demo city: %s: %w", s.what, err)
		}
		if !s.jsonReady {
			if es, err = normalise(es); err != nil {
				return nil, fmt.Errorf("demo city: %s: %w", s.what, err)
			}
		}
		out = append(out, es...)
	}
	return out, nil
}

// Summary counts entities per type.
func Summary(entities []Entity) map[string]int {
	n := make(map[string]int)
	for _, e := range entities {
		if t, ok := e["type"].(string); ok {
			n[t]++
		}
	}
	return n
}

// normalise turns every value into what encoding/json decodes, so that
// consumers see the same shapes as for a parsed request body.
func normalise(es []Entity) ([]Entity, error) {
	b, err := json.Marshal(es)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	var out []Entity
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	return out, nil
}

type builder struct {
	geo   *geography
	rnd   *rand.Rand
	now   time.Time
	loc   *time.Location
	local map[string]locality
}

// ---- areas ----

func (b *builder) municipalities() ([]Entity, error) {
	var out []Entity
	for _, m := range b.geo.municipalities {
		out = append(out, Entity{
			"id":       m.id(),
			"type":     "Municipality",
			"name":     langProp(m.nameFR, m.nameNL),
			"nisCode":  prop(m.nis),
			"location": geoProp(m.raw),
			"@context": []any{
				map[string]any{
					"Municipality": Namespace + "Municipality",
					"nisCode":      Namespace + "nisCode",
					"name":         "https://smartdatamodels.org/name",
				},
				CoreContext,
			},
		})
	}
	return out, nil
}

func (b *builder) neighbourhoods() ([]Entity, error) {
	var out []Entity
	for _, f := range b.geo.neighbourhoods {
		mp, _ := asMultiPolygon(f.geom)
		m := b.geo.municipalityOf(mp)
		if m == nil {
			return nil, fmt.Errorf("neighbourhood %s: in no municipality", str(f.props["mdzone"]))
		}
		area, ok := f.props["area"].(float64)
		if !ok {
			return nil, fmt.Errorf("neighbourhood %s: no area", str(f.props["mdzone"]))
		}
		out = append(out, Entity{
			"id":           "urn:ngsi-ld:Neighbourhood:" + str(f.props["mdzone"]),
			"type":         "Neighbourhood",
			"name":         langProp(str(f.props["namefre"]), str(f.props["namedut"])),
			"area":         withUnit(prop(round(area, 1)), "MTK"),
			"location":     geoProp(f.raw),
			"municipality": rel(m.id()),
			"@context": []any{
				map[string]any{
					"Neighbourhood": Namespace + "Neighbourhood",
					"area":          Namespace + "area",
					"municipality":  Namespace + "municipality",
					"name":          "https://smartdatamodels.org/name",
				},
				CoreContext,
			},
		})
	}
	return out, nil
}

func (b *builder) stations() ([]Entity, error) {
	var out []Entity
	for _, f := range b.geo.stations {
		uri := str(f.props["uri"])
		p := f.geom.(orb.Point)
		m := b.geo.municipalityAt(p)
		if m == nil {
			m = b.geo.municipalityByNIS(str(f.props["municipality_nis"]))
		}
		if m == nil {
			return nil, fmt.Errorf("station %s: in no municipality", uri)
		}
		out = append(out, Entity{
			"id":          "urn:ngsi-ld:PointOfInterest:bxl-station-" + lastSegment(uri),
			"type":        "PointOfInterest",
			"name":        prop(str(f.props["name"])),
			"description": prop("Gare SNCB / NMBS-station"),
			"category":    prop([]any{"railwayStation"}),
			"address":     prop(b.address("", p, m)),
			"areaServed":  prop(m.nameFR),
			"refSeeAlso":  prop([]any{uri}),
			"source":      prop("https://irail.be"),
			"location":    pointProp(p),
			"@context":    sdm("PointOfInterest"),
		})
	}
	return out, nil
}

// ---- attribute builders ----

func prop(v any) map[string]any { return map[string]any{"type": "Property", "value": v} }

func withUnit(a map[string]any, unitCode string) map[string]any {
	a["unitCode"] = unitCode
	return a
}

func observed(a map[string]any, at time.Time) map[string]any {
	a["observedAt"] = timestamp(at)
	return a
}

func rel(object string) map[string]any {
	return map[string]any{"type": "Relationship", "object": object}
}

func langProp(fr, nl string) map[string]any {
	return map[string]any{"type": "LanguageProperty", "languageMap": map[string]any{"fr": fr, "nl": nl}}
}

func geoProp(geometry any) map[string]any {
	return map[string]any{"type": "GeoProperty", "value": geometry}
}

func pointProp(p orb.Point) map[string]any {
	return geoProp(map[string]any{"type": "Point", "coordinates": []any{p[0], p[1]}})
}

// dateTimeProp is a Property whose value is a typed JSON-LD DateTime, as in
// the Smart Data Models examples.
func dateTimeProp(t time.Time) map[string]any {
	return prop(map[string]any{"@type": "DateTime", "@value": timestamp(t)})
}

func timestamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

func sdm(domain string) []any { return []any{SDMContext(domain), CoreContext} }

// address is a schema.org PostalAddress of a place p in m; street may be ""
// (locality only).
func (b *builder) address(street string, p orb.Point, m *municipality) map[string]any {
	a := map[string]any{
		"addressCountry":  "BE",
		"addressLocality": m.nameFR,
		"postalCode":      localityAt(b.local, m.nis, p).postcode,
	}
	if street != "" {
		a["streetAddress"] = street
	}
	return a
}

// street picks a real street near p in m (with a house number when numbered).
func (b *builder) street(p orb.Point, m *municipality, numbered bool) string {
	s := pick(b.rnd, localityAt(b.local, m.nis, p).streets)
	if numbered {
		return fmt.Sprintf("%s %d", s, 1+b.rnd.IntN(180))
	}
	return s
}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func lastSegment(uri string) string {
	for i := len(uri) - 1; i >= 0; i-- {
		if uri[i] == '/' {
			return uri[i+1:]
		}
	}
	return uri
}

func serial(n int) string { return fmt.Sprintf("bxl-%04d", n) }

package demo

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/paulmach/orb"
)

// What the simulator (internal/simulate) needs to keep the demo city alive:
// its sensor-fed entities with the parameters their readings follow, random
// places in the region for load-test fleets, and the city's daily rhythms.

// Sensor is one sensor-fed entity of the demo city.
type Sensor struct {
	ID   string // entity id
	Type string // entity type (short name: WasteContainer, Building...)
	Name string // "" when the entity has none

	Lon, Lat     float64
	CentreKm     float64 // distance from the Grand-Place
	Municipality string  // French name (the entity's areaServed)
	Street       string  // street address, "" when the entity has none

	// Category is the Building's category (civic, school, public...) or the
	// WasteContainer's stored waste kind (inorganic, glass...).
	Category string
	// Level is the type's base level:
	//   WasteContainer            days from empty to full
	//   Building                  kWh on a day the building is open
	//   WaterConsumptionObserved  maximum flow, l/h
	//   CrowdFlowObserved         pedestrians per 15 minutes at the Saturday-afternoon peak
	//   AirQualityObserved        typical NO₂, µg/m³
	//   NoiseLevelObserved        typical daytime LAeq, dB(A)
	//   ParkingSpot               0
	Level float64
	// Profile is "weekdays" (closed at weekends) or "everyday" for a
	// Building, the station's kind (traffic, urban, background, industrial)
	// for AirQualityObserved, "shopping" for CrowdFlowObserved.
	Profile string
	// LeakFlow is a WaterConsumptionObserved's flow that never stops (a leak
	// in progress), l/h; 0 when there is none.
	LeakFlow float64
	// Value is the reading the city starts with, observed at ObservedAt:
	// the WasteContainer's fillingLevel (0..1), the
	// WaterConsumptionObserved's waterConsumption (the meter's index in
	// litres); 0 for the other types.
	Value      float64
	ObservedAt time.Time
}

// Sensors lists the sensor-fed entities among a demo city's (as City
// returns them, same order): waste containers, parking spots, air-quality
// and noise stations, buildings with an energy datalogger, water meters and
// pedestrian counters. Streetlights, areas and stations are left out.
func Sensors(entities []Entity) []Sensor {
	daysToFill := make(map[float64]float64)
	for _, k := range containerKinds() {
		daysToFill[float64(k.capacity)] = k.daysToFill
	}
	weekdaysOnly := make(map[string]bool)
	townHall, others := buildingKinds()
	for _, k := range append(others, townHall) {
		weekdaysOnly[k.category] = k.weekday
	}
	sites := make(map[string]site)
	for _, s := range airStations() {
		sites["urn:ngsi-ld:AirQualityObserved:bxl-"+s.key] = s
	}
	for _, s := range noiseSites() {
		sites["urn:ngsi-ld:NoiseLevelObserved:bxl-"+s.key] = s
	}
	for _, s := range pedestrianCounters() {
		sites["urn:ngsi-ld:CrowdFlowObserved:bxl-"+s.key] = s
	}

	var out []Sensor
	for _, e := range entities {
		id, _ := e["id"].(string)
		typ, _ := e["type"].(string)
		s := Sensor{ID: id, Type: typ, Name: str(value(e, "name")), Municipality: str(value(e, "areaServed"))}
		if loc, ok := value(e, "location").(map[string]any); ok {
			if p, err := toPoint(loc["coordinates"]); err == nil {
				s.Lon, s.Lat = p[0], p[1]
				s.CentreKm = round(distanceKm(p, orb.Point{centreLon, centreLat}), 3)
			}
		}
		if a, ok := value(e, "address").(map[string]any); ok {
			s.Street = str(a["streetAddress"])
		}
		switch typ {
		case "WasteContainer":
			s.Category = str(value(e, "storedWasteKind"))
			s.Level = daysToFill[number(value(e, "binCapacity"))]
			s.Value = number(value(e, "fillingLevel"))
			s.ObservedAt = observedAt(e, "fillingLevel")
		case "ParkingSpot":
		case "AirQualityObserved":
			s.Level, s.Profile = sites[id].level, sites[id].profile
		case "NoiseLevelObserved":
			s.Level = sites[id].level
		case "CrowdFlowObserved":
			s.Level, s.Profile = sites[id].level, "shopping"
		case "Building":
			if cs, ok := value(e, "category").([]any); ok && len(cs) > 0 {
				s.Category = str(cs[0])
			}
			s.Profile = "everyday"
			if weekdaysOnly[s.Category] {
				s.Profile = "weekdays"
			}
			// energyConsumption is yesterday's, a third of an open day's
			// when the building was closed for the weekend.
			s.Level = number(value(e, "energyConsumption"))
			if at := observedAt(e, "energyConsumption"); s.Profile == "weekdays" && !at.IsZero() {
				if wd := at.Add(-12 * time.Hour).In(brussels()).Weekday(); wd == time.Saturday || wd == time.Sunday {
					s.Level = round(s.Level/0.35, 1)
				}
			}
		case "WaterConsumptionObserved":
			s.Level = number(value(e, "maxFlow"))
			if str(value(e, "alarmFlowPersistence")) == "In progress persistence" {
				s.LeakFlow = number(value(e, "minFlow"))
			}
			s.Value = number(value(e, "waterConsumption"))
			s.ObservedAt = observedAt(e, "waterConsumption")
		default:
			continue
		}
		out = append(out, s)
	}
	return out
}

// Place is a point inside the Brussels-Capital Region with its address.
type Place struct {
	Lon, Lat     float64
	CentreKm     float64 // distance from the Grand-Place
	Municipality string  // French name
	Street       string  // a real street of the municipality, with a house number
	Postcode     string
}

// Places draws n places inside the region, denser towards the centre (as
// the demo city's sensors are); the same seed gives the same places.
func Places(seed int64, n int) ([]Place, error) {
	g, err := loadGeography()
	if err != nil {
		return nil, fmt.Errorf("demo places: %w", err)
	}
	r := rand.New(rand.NewPCG(uint64(seed), 0x706c61636573))
	local := localities()
	out := make([]Place, 0, n)
	for range n {
		p, m, err := g.randomPoint(r)
		if err != nil {
			return nil, fmt.Errorf("demo places: %w", err)
		}
		l := localityAt(local, m.nis, p)
		out = append(out, Place{
			Lon: p[0], Lat: p[1],
			CentreKm:     round(distanceKm(p, orb.Point{centreLon, centreLat}), 3),
			Municipality: m.nameFR,
			Street:       fmt.Sprintf("%s %d", pick(r, l.streets), 1+r.IntN(180)),
			Postcode:     l.postcode,
		})
	}
	return out, nil
}

// TrafficFactor scales road-traffic pollution and noise by the wall-clock
// hour h in Brussels (13.5 is 13:30): about 0.55 at night, near 1.3 with the
// morning rush hour and 1.15 in the evening.
func TrafficFactor(h float64) float64 { return trafficFactor(h) }

// ShoppingFactor scales footfall in shopping streets by the hour h in
// Brussels and the weekday: shops open 10–19, busiest mid-afternoon and on
// Saturdays, Sunday quiet. 1 is the Saturday-afternoon peak.
func ShoppingFactor(h float64, wd time.Weekday) float64 { return shoppingFactor(h, wd) }

// value is the value of e's attribute name (a Property's value, a
// GeoProperty's geometry), or nil.
func value(e Entity, name string) any {
	a, ok := e[name].(map[string]any)
	if !ok {
		return nil
	}
	return a["value"]
}

func number(v any) float64 {
	f, _ := v.(float64)
	return f
}

func observedAt(e Entity, name string) time.Time {
	a, _ := e[name].(map[string]any)
	s, _ := a["observedAt"].(string)
	t, err := time.Parse(time.RFC3339, strings.TrimSpace(s))
	if err != nil {
		return time.Time{}
	}
	return t
}

func brussels() *time.Location {
	loc, err := time.LoadLocation("Europe/Brussels")
	if err != nil {
		return time.FixedZone("CET", 3600)
	}
	return loc
}

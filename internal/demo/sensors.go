package demo

import (
	"fmt"
	"math"
	"time"

	"github.com/paulmach/orb"
)

// How many generated entities of each kind the demo city holds.
const (
	nWasteContainers = 120
	nParkingSpots    = 80
	nStreetlights    = 100
	nBuildings       = 40 // the 19 town halls plus other public buildings; one water meter each
)

const simulated = "zenne demo city (simulated readings)"

// ---- daily rhythm ----

// localHour is the wall-clock hour in Brussels, as a fraction (13.5 = 13:30).
func (b *builder) localHour(t time.Time) float64 {
	l := t.In(b.loc)
	return float64(l.Hour()) + float64(l.Minute())/60
}

func bell(x, mean, sd float64) float64 { return math.Exp(-(x - mean) * (x - mean) / (2 * sd * sd)) }

// trafficFactor scales road-traffic pollution and noise: about 0.55 at night,
// peaking near 1.3 with the morning rush hour and 1.15 in the evening.
func trafficFactor(h float64) float64 { return 0.55 + 0.75*bell(h, 8.5, 1.5) + 0.6*bell(h, 18, 2) }

// shoppingFactor scales footfall in shopping streets: shops open 10–19,
// busiest mid-afternoon, Saturday busiest, Sunday quiet.
func shoppingFactor(h float64, wd time.Weekday) float64 {
	f := 0.03 + 0.97*bell(h, 15, 2.8)
	switch wd {
	case time.Saturday:
	case time.Sunday:
		f *= 0.3
	default:
		f *= 0.7
	}
	return f
}

// dark reports whether street lighting is needed at t in Brussels: between
// sunset and sunrise, from an approximation of day length at 50.85°N and of
// solar noon at 4.35°E (11:43 UTC).
func dark(t time.Time) bool {
	t = t.UTC()
	dayLength := 12 + 4.25*math.Sin(2*math.Pi*(float64(t.YearDay())-80)/365.25)
	h := float64(t.Hour()) + float64(t.Minute())/60
	return h < 11.72-dayLength/2 || h > 11.72+dayLength/2
}

// noise is a multiplicative log-normal jitter with the given spread.
func (b *builder) noise(spread float64) float64 { return math.Exp(b.rnd.NormFloat64() * spread) }

func (b *builder) minutesAgo(max int) time.Time {
	return b.now.Add(-time.Duration(b.rnd.IntN(max*60+1)) * time.Second)
}

// weighted picks an index with probability proportional to w[i].
func (b *builder) weighted(w ...float64) int {
	total := 0.0
	for _, x := range w {
		total += x
	}
	r := b.rnd.Float64() * total
	for i, x := range w {
		if r < x {
			return i
		}
		r -= x
	}
	return len(w) - 1
}

// fixedPoint checks that a tabulated place lies inside the region and returns
// its municipality.
func (b *builder) fixedPoint(s site) (orb.Point, *municipality, error) {
	p := orb.Point{s.lon, s.lat}
	if !b.geo.inRegion(p) {
		return p, nil, fmt.Errorf("%s: %v lies outside the region", s.name, p)
	}
	m := b.geo.municipalityAt(p)
	if m == nil {
		return p, nil, fmt.Errorf("%s: %v lies in no municipality", s.name, p)
	}
	return p, m, nil
}

// ---- WasteManagement ----

type containerKind struct {
	description string
	wasteKinds  []string
	colours     []string
	category    string
	capacity    int     // litres
	daysToFill  float64 // typical time from empty to full
}

func containerKinds() []containerKind {
	return []containerKind{
		{"Poubelle publique compacteuse / Compacterende openbare vuilnisbak", []string{"inorganic"}, []string{"Grey"}, "fixed", 600, 3},
		{"Bulle à verre / Glasbol", []string{"glass"}, []string{"Green"}, "ground", 2500, 14},
		{"Conteneur enterré / Ondergrondse container", []string{"paper", "plastic", "inorganic"}, []string{"Yellow", "Blue", "White"}, "underground", 5000, 5},
		{"Conteneur organique / Container gft", []string{"organic"}, []string{"Orange"}, "portable", 240, 2},
	}
}

func (b *builder) wasteContainers() ([]Entity, error) {
	kinds := containerKinds()
	statuses := []string{"ok", "lidOpen", "vandalized", "moved", "burning"}
	var out []Entity
	for i := 1; i <= nWasteContainers; i++ {
		p, m, err := b.geo.randomPoint(b.rnd)
		if err != nil {
			return nil, err
		}
		k := kinds[b.weighted(0.5, 0.2, 0.2, 0.1)]
		w := b.rnd.IntN(len(k.wasteKinds))
		fill := round(math.Pow(b.rnd.Float64(), 0.8), 2)
		emptied := b.now.Add(-time.Duration((fill*k.daysToFill*24 + b.rnd.Float64()) * float64(time.Hour))).Truncate(time.Minute)
		out = append(out, Entity{
			"id":               "urn:ngsi-ld:WasteContainer:" + serial(i),
			"type":             "WasteContainer",
			"description":      prop(k.description),
			"fillingLevel":     observed(prop(fill), b.minutesAgo(30)),
			"status":           prop(statuses[b.weighted(0.93, 0.03, 0.02, 0.015, 0.005)]),
			"storedWasteKind":  prop(k.wasteKinds[w]),
			"binColor":         prop(k.colours[w]),
			"category":         prop([]any{k.category}),
			"binCapacity":      withUnit(prop(k.capacity), "LTR"),
			"dateLastEmptying": dateTimeProp(emptied),
			"address":          prop(b.address(b.street(p, m, false), p, m)),
			"areaServed":       prop(m.nameFR),
			"dataProvider":     prop(simulated),
			"location":         pointProp(p),
			"@context":         sdm("WasteManagement"),
		})
	}
	return out, nil
}

// ---- Parking ----

func (b *builder) parkingSpots() ([]Entity, error) {
	var out []Entity
	for i := 1; i <= nParkingSpots; i++ {
		p, m, err := b.geo.randomPoint(b.rnd)
		if err != nil {
			return nil, err
		}
		d := distanceKm(p, orb.Point{centreLon, centreLat})
		status := "free"
		if b.rnd.Float64() < 0.55+0.35*bell(d, 0, 2.5) { // fuller near the centre
			status = "occupied"
		}
		out = append(out, Entity{
			"id":           "urn:ngsi-ld:ParkingSpot:" + serial(i),
			"type":         "ParkingSpot",
			"name":         prop(b.street(p, m, true)),
			"status":       observed(prop(status), b.minutesAgo(45)),
			"category":     prop([]any{"onStreet"}),
			"width":        withUnit(prop(2.0), "MTR"),
			"length":       withUnit(prop(5.0), "MTR"),
			"areaServed":   prop(m.nameFR),
			"dataProvider": prop(simulated),
			"location":     pointProp(p),
			"@context":     sdm("Parking"),
		})
	}
	return out, nil
}

// ---- Streetlighting ----

func (b *builder) streetlights() ([]Entity, error) {
	isDark := dark(b.now)
	h := b.localHour(b.now)
	quiet := h < 5.5 // footfall-driven dimming late at night
	statuses := []string{"ok", "defectiveLamp", "brokenLantern", "columnIssue"}
	ratings := []int{40, 60, 90} // W, LED lanterns
	heights := []int{6, 8, 10}   // m
	var out []Entity
	for i := 1; i <= nStreetlights; i++ {
		p, m, err := b.geo.randomPoint(b.rnd)
		if err != nil {
			return nil, err
		}
		status := statuses[b.weighted(0.95, 0.03, 0.01, 0.01)]
		state, level := "off", 0.0
		if isDark && status == "ok" {
			state, level = "on", pick(b.rnd, []float64{0.8, 1.0})
			if quiet && b.rnd.Float64() < 0.6 {
				state, level = "low", 0.3
			}
		}
		rating := pick(b.rnd, ratings)
		at := b.minutesAgo(10)
		lampChanged := b.now.AddDate(0, 0, -30-b.rnd.IntN(1500)).Truncate(24 * time.Hour).Add(9 * time.Hour)
		out = append(out, Entity{
			"id":                 "urn:ngsi-ld:Streetlight:" + serial(i),
			"type":               "Streetlight",
			"status":             prop(status),
			"powerState":         observed(prop(state), at),
			"illuminanceLevel":   observed(prop(level), at),
			"powerRating":        withUnit(prop(rating), "WTT"),
			"powerConsumption":   observed(withUnit(prop(round(float64(rating)*level, 1)), "WTT"), at),
			"lanternHeight":      withUnit(prop(pick(b.rnd, heights)), "MTR"),
			"controllingMethod":  prop("individual"),
			"dateLastLampChange": dateTimeProp(lampChanged),
			"address":            prop(b.address(b.street(p, m, false), p, m)),
			"areaServed":         prop(m.nameFR),
			"dataProvider":       prop(simulated),
			"location":           pointProp(p),
			"@context":           sdm("Streetlighting"),
		})
	}
	return out, nil
}

// ---- Environment ----

func (b *builder) airQuality() ([]Entity, error) {
	hour := b.now.Truncate(time.Hour)
	h := b.localHour(hour)
	doy := float64(hour.YearDay())
	var out []Entity
	for _, s := range airStations() {
		p, m, err := b.fixedPoint(s)
		if err != nil {
			return nil, err
		}
		tf := trafficFactor(h)
		if s.profile == "background" {
			tf = 0.5 + 0.5*tf
		}
		no2 := round(s.level*tf*b.noise(0.15), 1)
		pm10 := round((12+0.2*s.level)*(0.8+0.25*tf)*b.noise(0.2), 1)
		pm25 := round(pm10*(0.55+0.15*b.rnd.Float64()), 1)
		level := "good"
		switch {
		case no2 > 120 || pm10 > 80 || pm25 > 50:
			level = "unhealthy"
		case no2 > 40 || pm10 > 40 || pm25 > 20:
			level = "moderate"
		}
		temp := round(11+8*math.Sin(2*math.Pi*(doy-110)/365.25)+3*math.Sin(2*math.Pi*(h-9)/24)+b.rnd.NormFloat64(), 1)
		out = append(out, Entity{
			"id":               "urn:ngsi-ld:AirQualityObserved:bxl-" + s.key,
			"type":             "AirQualityObserved",
			"name":             prop(s.name),
			"dateObserved":     dateTimeProp(hour),
			"no2":              observed(withUnit(prop(no2), "GQ"), hour),
			"pm10":             observed(withUnit(prop(pm10), "GQ"), hour),
			"pm25":             observed(withUnit(prop(pm25), "GQ"), hour),
			"temperature":      observed(withUnit(prop(temp), "CEL"), hour),
			"relativeHumidity": observed(prop(round(0.6+0.3*b.rnd.Float64(), 2)), hour),
			"airQualityLevel":  prop(level),
			"typeofLocation":   prop("outdoor"),
			"address":          prop(b.address(s.street, p, m)),
			"areaServed":       prop(m.nameFR),
			"dataProvider":     prop(simulated),
			"location":         pointProp(p),
			"@context":         sdm("Environment"),
		})
	}
	return out, nil
}

func (b *builder) noiseLevels() ([]Entity, error) {
	to := b.now.Truncate(time.Hour)
	from := to.Add(-time.Hour)
	h := b.localHour(from.Add(30 * time.Minute))
	var out []Entity
	for _, s := range noiseSites() {
		p, m, err := b.fixedPoint(s)
		if err != nil {
			return nil, err
		}
		laeq := s.level + 6*math.Log10(trafficFactor(h)/1.1) + b.rnd.NormFloat64()
		if h < 6 || h >= 23 {
			laeq -= 6
		}
		laeq = round(laeq, 1)
		out = append(out, Entity{
			"id":               "urn:ngsi-ld:NoiseLevelObserved:bxl-" + s.key,
			"type":             "NoiseLevelObserved",
			"name":             prop(s.name),
			"LAeq":             observed(withUnit(prop(laeq), "2N"), to),
			"LAmax":            observed(withUnit(prop(round(laeq+12+8*b.rnd.Float64(), 1)), "2N"), to),
			"LAS":              observed(withUnit(prop(round(laeq+3+10*b.rnd.Float64(), 1)), "2N"), to),
			"LAeq_d":           withUnit(prop(round(s.level+b.rnd.NormFloat64()*0.7, 1)), "2N"),
			"dateObserved":     prop(timestamp(from) + "/" + timestamp(to)),
			"dateObservedFrom": dateTimeProp(from),
			"dateObservedTo":   dateTimeProp(to),
			"address":          prop(b.address(s.street, p, m)),
			"areaServed":       prop(m.nameFR),
			"dataProvider":     prop(simulated),
			"location":         pointProp(p),
			"@context":         sdm("Environment"),
		})
	}
	return out, nil
}

// ---- Building and WaterConsumption ----

type buildingKind struct {
	name      string
	category  string
	kWhPerDay [2]float64 // range of daily consumption on a working day
	weekday   bool       // closed at weekends
	floors    [2]int
}

// buildingKinds are the town halls' kind and the other public buildings'.
func buildingKinds() (townHall buildingKind, others []buildingKind) {
	return buildingKind{"", "civic", [2]float64{800, 2500}, true, [2]int{3, 6}},
		[]buildingKind{
			{"École fondamentale communale", "school", [2]float64{200, 600}, true, [2]int{2, 4}},
			{"Piscine communale", "public", [2]float64{1500, 4000}, false, [2]int{1, 2}},
			{"Bibliothèque communale", "public", [2]float64{80, 200}, false, [2]int{1, 3}},
			{"Crèche communale", "kindergarten", [2]float64{60, 150}, true, [2]int{1, 2}},
			{"Centre sportif communal", "public", [2]float64{300, 900}, false, [2]int{1, 2}},
			{"CPAS - Antenne sociale", "office", [2]float64{150, 500}, true, [2]int{2, 5}},
		}
}

// buildingsAndWater returns the public buildings (the 19 town halls first,
// then schools, pools, libraries... at random places) followed by one water
// meter with leak detection per building, at the same place.
func (b *builder) buildingsAndWater() ([]Entity, error) {
	townHall, others := buildingKinds()
	// Daily consumption is reported the next day (NRClick dataloggers):
	// the reading for yesterday, stamped at local midnight.
	l := b.now.In(b.loc)
	midnight := time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, b.loc)
	yesterday := midnight.AddDate(0, 0, -1).Weekday()
	weekend := yesterday == time.Saturday || yesterday == time.Sunday

	type placed struct {
		name, street string
		kind         buildingKind
		p            orb.Point
		m            *municipality
	}
	var places []placed
	for _, s := range townHalls() {
		p, m, err := b.fixedPoint(s)
		if err != nil {
			return nil, err
		}
		places = append(places, placed{s.name, s.street, townHall, p, m})
	}
	for len(places) < nBuildings {
		p, m, err := b.geo.randomPoint(b.rnd)
		if err != nil {
			return nil, err
		}
		k := pick(b.rnd, others)
		street := b.street(p, m, true)
		places = append(places, placed{fmt.Sprintf("%s – %s", k.name, street), street, k, p, m})
	}

	var buildings, meters []Entity
	leaks := 0
	for i, pl := range places {
		kwh := pl.kind.kWhPerDay[0] + b.rnd.Float64()*(pl.kind.kWhPerDay[1]-pl.kind.kWhPerDay[0])
		if weekend && pl.kind.weekday {
			kwh *= 0.35
		}
		floors := pl.kind.floors[0] + b.rnd.IntN(pl.kind.floors[1]-pl.kind.floors[0]+1)
		buildings = append(buildings, Entity{
			"id":                "urn:ngsi-ld:Building:" + serial(i+1),
			"type":              "Building",
			"name":              prop(pl.name),
			"category":          prop([]any{pl.kind.category}),
			"address":           prop(b.address(pl.street, pl.p, pl.m)),
			"areaServed":        prop(pl.m.nameFR),
			"floorsAboveGround": prop(floors),
			"energyConsumption": observed(withUnit(prop(round(kwh, 1)), "KWH"), midnight),
			"dataProvider":      prop(simulated),
			"location":          pointProp(pl.p),
			"@context": []any{
				SDMContext("Building"),
				map[string]any{"energyConsumption": Namespace + "energyConsumption"},
				CoreContext,
			},
		})
		// The last meter leaks when no other does: the demo always shows one.
		m, leak := b.waterMeter(i+1, "Compteur d'eau – "+pl.name, pl.street, pl.p, pl.m, leaks == 0 && i == len(places)-1)
		if leak {
			leaks++
		}
		meters = append(meters, m)
	}
	return append(buildings, meters...), nil
}

// waterMeter is a WaterConsumptionObserved for a meter with leak detection;
// about one in twelve shows a night-time flow that never stops (a leak),
// and one does when mustLeak. It reports whether the meter leaks.
func (b *builder) waterMeter(n int, name, street string, p orb.Point, m *municipality, mustLeak bool) (Entity, bool) {
	at := b.now.Truncate(15 * time.Minute)
	leak := b.rnd.Float64() < 1.0/12 || mustLeak
	intermittent := !leak && b.rnd.Float64() < 0.04
	minFlow, maxFlow := b.rnd.IntN(4), 300+b.rnd.IntN(2200)
	if leak {
		minFlow = 40 + b.rnd.IntN(140) // l/h that never stops, even at night
	}
	obs := func(v any) map[string]any { return observed(prop(v), at) }
	e := Entity{
		"id":                      "urn:ngsi-ld:WaterConsumptionObserved:" + serial(n),
		"type":                    "WaterConsumptionObserved",
		"name":                    prop(name),
		"waterConsumption":        observed(withUnit(prop(200_000+b.rnd.IntN(9_000_000)), "LTR"), at),
		"minFlow":                 observed(withUnit(prop(minFlow), "E32"), at),
		"maxFlow":                 observed(withUnit(prop(maxFlow), "E32"), at),
		"alarmInProgress":         obs(0),
		"alarmFlowPersistence":    obs("Nothing to report"),
		"alarmStopsLeaks":         obs(0),
		"alarmTamper":             obs(0),
		"alarmWaterQuality":       obs(0),
		"acquisitionStageFailure": obs(0),
		"moduleTampered":          obs(0),
		"address":                 prop(b.address(street, p, m)),
		"areaServed":              prop(m.nameFR),
		"dataProvider":            prop(simulated),
		"location":                pointProp(p),
		"@context":                sdm("WaterConsumption"),
	}
	switch {
	case leak:
		e["alarmInProgress"] = obs(1)
		e["alarmFlowPersistence"] = obs("In progress persistence")
		e["persistenceFlowDuration"] = withUnit(obs(pick(b.rnd, []string{"6h < 12h", "12h < 24h", "24h < 2d"})), "HUR")
	case intermittent:
		e["alarmInProgress"] = obs(1)
		e["alarmStopsLeaks"] = obs(1)
	}
	return e, leak
}

// ---- Transportation ----

func (b *builder) crowdFlows() ([]Entity, error) {
	to := b.now.Truncate(15 * time.Minute)
	from := to.Add(-15 * time.Minute)
	mid := from.Add(450 * time.Second)
	f := shoppingFactor(b.localHour(mid), mid.In(b.loc).Weekday())
	var out []Entity
	for _, s := range pedestrianCounters() {
		p, m, err := b.fixedPoint(s)
		if err != nil {
			return nil, err
		}
		count := int(math.Round(s.level * f * b.noise(0.12)))
		towards := int(math.Round(float64(count) * (0.4 + 0.2*b.rnd.Float64())))
		occupancy := round(math.Min(0.95, float64(count)/(s.level*1.4)), 2)
		e := Entity{
			"id":                 "urn:ngsi-ld:CrowdFlowObserved:bxl-" + s.key,
			"type":               "CrowdFlowObserved",
			"name":               prop(s.name),
			"peopleCount":        observed(prop(count), to),
			"peopleCountTowards": observed(prop(towards), to),
			"peopleCountAway":    observed(prop(count-towards), to),
			"occupancy":          observed(prop(occupancy), to),
			"congested":          observed(prop(occupancy > 0.6), to),
			"averageCrowdSpeed":  observed(withUnit(prop(round(4.8-2.5*occupancy, 1)), "KMH"), to),
			"direction":          prop("inbound"),
			"dateObserved":       dateTimeProp(to),
			"dateObservedFrom":   dateTimeProp(from),
			"dateObservedTo":     dateTimeProp(to),
			"address":            prop(b.address(s.street, p, m)),
			"areaServed":         prop(m.nameFR),
			"dataProvider":       prop(simulated),
			"location":           pointProp(p),
			"@context":           sdm("Transportation"),
		}
		if count > 0 {
			e["averageHeadwayTime"] = withUnit(prop(round(900/float64(count), 2)), "SEC")
		}
		out = append(out, e)
	}
	return out, nil
}

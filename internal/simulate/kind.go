package simulate

import (
	"fmt"
	"strings"
	"time"
)

// Kind is what a simulated device measures, and so the service group it
// belongs to, the entity type it feeds and its payload.
type Kind uint8

const (
	Datalogger        Kind = iota // energy datalogger on a public building (Building)
	WaterMeter                    // water meter with leak detection (WaterConsumptionObserved)
	WasteBin                      // fill-level sensor in a bin (WasteContainer)
	PedestrianCounter             // pedestrian counter in a street (CrowdFlowObserved)
	ParkingSensor                 // in-ground sensor of an on-street spot (ParkingSpot)
	AirQuality                    // air-quality station: NO₂, PM10 (AirQualityObserved)
	NoiseMeter                    // noise meter: LAeq, LAmax, LAS (NoiseLevelObserved)
	Probe                         // latency probe: sends unique values to be read back
)

// Kinds are the sensor kinds, Probe excepted.
func Kinds() []Kind {
	return []Kind{Datalogger, WaterMeter, WasteBin, PedestrianCounter, ParkingSensor, AirQuality, NoiseMeter}
}

// Namespace is where the terms zenne defines itself live (as in internal/demo).
const Namespace = "https://zenne.city/ns/"

func sdm(domain, term string) string {
	return "https://smartdatamodels.org/dataModel." + domain + "/" + term
}

// kindInfo is everything a kind fixes.
type kindInfo struct {
	name     string // for flags and messages
	apikey   string // the service group's key
	prefix   string // of device ids
	typ      string // entity type, short name (in entity ids)
	typeIRI  string // entity type as registered (what the demo's @context expands it to)
	interval time.Duration
	// aligned kinds report just after each interval boundary (quarter
	// hours), the others at a phase of their own.
	aligned bool
	attrs   []Attribute
}

func (k Kind) info() kindInfo {
	switch k {
	case Datalogger:
		return kindInfo{"datalogger", "sim-dataloggers", "logger", "Building", sdm("Building", "Building"), 15 * time.Minute, true, []Attribute{
			{ObjectID: "e", Name: Namespace + "energyConsumption15min", Type: "Property", UnitCode: "KWH"},
			{ObjectID: "p", Name: Namespace + "peakPower", Type: "Property", UnitCode: "KWT"},
			{ObjectID: "t", Name: "temperature", Type: "Property", UnitCode: "CEL"},
		}}
	case WaterMeter:
		return kindInfo{"water", "sim-water", "water", "WaterConsumptionObserved", sdm("WaterConsumption", "WaterConsumptionObserved"), 15 * time.Minute, true, []Attribute{
			{ObjectID: "v", Name: sdm("WaterConsumption", "waterConsumption"), Type: "Property", UnitCode: "LTR"},
			{ObjectID: "q", Name: Namespace + "waterConsumption15min", Type: "Property", UnitCode: "LTR"},
			{ObjectID: "mf", Name: sdm("WaterConsumption", "minFlow"), Type: "Property", UnitCode: "E32"},
		}}
	case WasteBin:
		return kindInfo{"bin", "sim-bins", "bin", "WasteContainer", sdm("WasteManagement", "WasteContainer"), 30 * time.Minute, false, []Attribute{
			{ObjectID: "f", Name: sdm("WasteManagement", "fillingLevel"), Type: "Property", UnitCode: "P1", Scale: 0.01},
			{ObjectID: "t", Name: sdm("WasteManagement", "temperature"), Type: "Property", UnitCode: "CEL"},
			{ObjectID: "b", Name: "batteryLevel", Type: "Property", UnitCode: "P1", Scale: 0.01},
		}}
	case PedestrianCounter:
		return kindInfo{"pedestrian", "sim-pedestrians", "ped", "CrowdFlowObserved", sdm("Transportation", "CrowdFlowObserved"), 15 * time.Minute, true, []Attribute{
			{ObjectID: "c", Name: sdm("Transportation", "peopleCount"), Type: "Property"},
			{ObjectID: "in", Name: sdm("Transportation", "peopleCountTowards"), Type: "Property"},
			{ObjectID: "out", Name: sdm("Transportation", "peopleCountAway"), Type: "Property"},
		}}
	case ParkingSensor:
		return kindInfo{"parking", "sim-parking", "park", "ParkingSpot", sdm("Parking", "ParkingSpot"), 5 * time.Minute, false, []Attribute{
			{ObjectID: "s", Name: "status", Type: "Property"},
			{ObjectID: "b", Name: "batteryLevel", Type: "Property", UnitCode: "P1", Scale: 0.01},
			{ObjectID: "t", Name: "temperature", Type: "Property", UnitCode: "CEL"},
		}}
	case AirQuality:
		return kindInfo{"air", "sim-air", "air", "AirQualityObserved", sdm("Environment", "AirQualityObserved"), 15 * time.Minute, true, []Attribute{
			{ObjectID: "no2", Name: sdm("Environment", "no2"), Type: "Property", UnitCode: "GQ"},
			{ObjectID: "pm10", Name: sdm("Environment", "pm10"), Type: "Property", UnitCode: "GQ"},
			{ObjectID: "t", Name: sdm("Environment", "temperature"), Type: "Property", UnitCode: "CEL"},
		}}
	case NoiseMeter:
		return kindInfo{"noise", "sim-noise", "noise", "NoiseLevelObserved", sdm("Environment", "NoiseLevelObserved"), 15 * time.Minute, true, []Attribute{
			{ObjectID: "la", Name: sdm("Environment", "LAeq"), Type: "Property", UnitCode: "2N"},
			{ObjectID: "lmax", Name: sdm("Environment", "LAmax"), Type: "Property", UnitCode: "2N"},
			{ObjectID: "las", Name: sdm("Environment", "LAS"), Type: "Property", UnitCode: "2N"},
		}}
	case Probe:
		return kindInfo{"probe", "sim-probes", "probe", "SimulatorProbe", "SimulatorProbe", time.Second, false, []Attribute{
			{ObjectID: "v", Name: ProbeAttribute, Type: "Property"},
		}}
	}
	return kindInfo{name: fmt.Sprintf("kind(%d)", k)}
}

// ProbeAttribute is the attribute probe devices write (a term of the core
// @context's default vocabulary).
const ProbeAttribute = "probe"

func (k Kind) String() string { return k.info().name }

// APIKey is the key of the kind's service group, e.g. "sim-bins".
func (k Kind) APIKey() string { return k.info().apikey }

// EntityType is the type of the entities the kind feeds, as registered: the
// IRI the Smart Data Models @context gives the demo city's type.
func (k Kind) EntityType() string { return k.info().typeIRI }

// Interval is how often a device of the kind reports in realistic mode.
func (k Kind) Interval() time.Duration { return k.info().interval }

// Attributes is the kind's payload mapping: field (object_id) -> attribute.
func (k Kind) Attributes() []Attribute { return k.info().attrs }

// ParseKinds reads a comma-separated list of kind names ("bin,parking");
// "" or "all" is every sensor kind.
func ParseKinds(s string) ([]Kind, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "all" {
		return Kinds(), nil
	}
	var out []Kind
	seen := make(map[Kind]bool)
next:
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		for _, k := range Kinds() {
			if name == k.String() || name == k.String()+"s" {
				if !seen[k] {
					out = append(out, k)
					seen[k] = true
				}
				continue next
			}
		}
		var names []string
		for _, k := range Kinds() {
			names = append(names, k.String())
		}
		return nil, fmt.Errorf("unknown device kind %q: use %s", name, strings.Join(names, ", "))
	}
	return out, nil
}

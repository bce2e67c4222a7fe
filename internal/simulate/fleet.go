// Package simulate produces realistic Brussels sensor streams for the demo
// city and for load tests: a Fleet of devices whose readings follow the
// city's rhythms (office hours, rush hours, Saturday shopping, collection
// days, leaks, devices that go silent), deterministic from a seed; the
// provisioning bodies that register them (docs/DEVICES.md); senders that
// deliver their uplinks over MQTT, HTTP or straight to an ingest.Receiver;
// and Run, which drives a fleet at a target rate or at each device's own
// pace, with counters and a latency probe.
package simulate

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // Europe/Brussels even without system tzdata

	"github.com/zenne-city/zenne/internal/demo"
)

// DefaultSilentFraction is the share of devices that go silent now and then
// when FleetOptions.SilentFraction is 0.
const DefaultSilentFraction = 0.03

// FleetOptions say which devices a fleet has.
type FleetOptions struct {
	// Seed makes everything deterministic: the same seed gives the same
	// devices and the same readings at the same times.
	Seed int64
	// Devices is the size of a generated fleet (GeneratedFleet): devices
	// spread over the region, of Kinds in city-like proportions.
	Devices int
	// Kinds restricts a generated fleet to these kinds (default: all).
	Kinds []Kind
	// SilentFraction is the share of devices that go silent for hours now
	// and then (0: DefaultSilentFraction; negative: none).
	SilentFraction float64
	// Probes adds this many latency-probe devices (see ProbeConfig).
	Probes int
	// Transport is put in the device registrations: "MQTT" or "HTTP"
	// (default "HTTP").
	Transport string
	// LoggerBatch > 0 makes dataloggers upload arrays of their last
	// LoggerBatch quarter-hour readings, each with its time (as NRClick
	// loggers do), every LoggerBatch quarter hours in realistic mode.
	LoggerBatch int
	// Outages, Collections and Surges script one-off happenings for
	// devices named by id (script.go): a device silent for a while, a bin
	// emptied besides its collection days, a day of unusual consumption.
	Outages     []Outage
	Collections []Collection
	Surges      []Surge
}

// Fleet is a set of simulated devices. It is read-only once built and safe
// for concurrent use.
type Fleet struct {
	members   []*Device
	probes    []*Device
	transport string
	seed      int64
	loc       *time.Location
}

// Members are the fleet's sensor devices (probes excepted).
func (f *Fleet) Members() []*Device { return f.members }

// Probes are the fleet's latency-probe devices.
func (f *Fleet) Probes() []*Device { return f.probes }

// Len is the number of devices, probes included.
func (f *Fleet) Len() int { return len(f.members) + len(f.probes) }

// all is members then probes; Device.index is the position in it.
func (f *Fleet) all() []*Device {
	return append(append(make([]*Device, 0, f.Len()), f.members...), f.probes...)
}

// Count is the number of devices per kind.
func (f *Fleet) Count() map[Kind]int {
	n := make(map[Kind]int)
	for _, d := range f.all() {
		n[d.Kind]++
	}
	return n
}

// Device is one simulated device and the entity it feeds. Its fields are
// for reading: the readings follow what the fleet set up.
type Device struct {
	ID     string // device_id
	Kind   Kind
	APIKey string
	Entity string // the entity it feeds (entity_name)
	Name   string // "" when unnamed

	Lon, Lat     float64
	Municipality string // French name
	Street       string // "" when unknown
	Postcode     string // "" when unknown (the demo city's entities have their address)

	// Interval is how often it reports in realistic mode.
	Interval time.Duration
	// LeakFlow is a water meter's flow that never stops, l/h (0: no leak).
	LeakFlow float64
	// SilentProne devices go silent for hours now and then (Silent).
	SilentProne bool

	index int    // position in the fleet (all())
	seed  uint64 // of its readings
	phase time.Duration
	batch int // LoggerBatch for dataloggers, else 0
	loc   *time.Location
	m     model
	// script is what FleetOptions scripted for it.
	script script
}

// model holds the parameters a device's readings follow.
type model struct {
	level    float64 // per kind: kWh per open day, max flow l/h, days to fill, people per 15 min at peak, µg/m³, dB(A)
	profile  string  // building: weekdays/everyday; air: traffic/urban/background/industrial; pedestrians: shopping/commuter
	centreKm float64
	// bins
	fillPerHour   float64   // fill added per active hour
	collectDays   [2]int    // weekdays of collection (-1: none)
	fortnightly   bool      // collected every other week
	collectParity int       // ISO week parity of fortnightly collections
	collectHour   float64   // local hour
	startFill     float64   // the demo city's fill, observed at startAt
	startAt       time.Time // zero: none
	// water
	waterBase   float64    // index offset, litres
	dayTotals   [7]float64 // litres per local day by weekday, leak included
	weekTotal   float64
	energyScale float64 // datalogger: kWh per quarter hour at relative load 1
}

// brussels is the time zone the rhythms follow.
func brussels() *time.Location {
	loc, err := time.LoadLocation("Europe/Brussels")
	if err != nil {
		return time.FixedZone("CET", 3600)
	}
	return loc
}

// NewFleet builds the demo city's fleet (o.Devices == 0: one device per
// sensor-fed entity of demo.City(o.Seed, now), with the ids the demo loads
// when it starts at now) or a generated one of o.Devices devices.
func NewFleet(o FleetOptions, now time.Time) (*Fleet, error) {
	if o.Devices > 0 {
		return GeneratedFleet(o)
	}
	city, err := demo.City(o.Seed, now)
	if err != nil {
		return nil, err
	}
	return DemoFleet(demo.Sensors(city), o)
}

// DemoFleet builds one device per sensor of the demo city (demo.Sensors of
// the entities the demo loaded; only o.Kinds when set), feeding that entity
// and continuing its readings (bin fill levels, water meter indexes).
func DemoFleet(sensors []demo.Sensor, o FleetOptions) (*Fleet, error) {
	if len(sensors) == 0 {
		return nil, errors.New("demo fleet: no sensors")
	}
	f := newFleet(o)
	r := rand.New(rand.NewPCG(uint64(o.Seed), 0x64656d6f666c74))
	for _, s := range sensors {
		k, ok := kindOfType(s.Type)
		if !ok || len(o.Kinds) > 0 && !slices.Contains(o.Kinds, k) {
			continue
		}
		suffix := s.ID[strings.LastIndexByte(s.ID, ':')+1:]
		d := f.add(k, k.info().prefix+"-"+suffix, s.ID, r, o)
		d.Name, d.Lon, d.Lat, d.Municipality, d.Street = s.Name, s.Lon, s.Lat, s.Municipality, s.Street
		d.m.level, d.m.profile, d.m.centreKm = s.Level, s.Profile, s.CentreKm
		switch k {
		case WaterMeter:
			d.LeakFlow = s.LeakFlow
		case WasteBin:
			d.m.startFill, d.m.startAt = s.Value, s.ObservedAt
		}
		d.setup(r)
		if k == WaterMeter && !s.ObservedAt.IsZero() {
			d.m.waterBase = s.Value - d.waterCumulative(s.ObservedAt)
		}
	}
	f.addProbes(o, r)
	if err := f.stage(o); err != nil {
		return nil, err
	}
	return f, nil
}

// GeneratedFleet builds o.Devices devices spread over the Brussels region,
// denser towards the centre, for load tests. Kinds come in city-like
// proportions (bins and parking sensors most); entity ids are
// urn:ngsi-ld:{Type}:sim-NNNNNN, apart from the demo city's.
func GeneratedFleet(o FleetOptions) (*Fleet, error) {
	if o.Devices <= 0 {
		return nil, fmt.Errorf("generated fleet: %d devices", o.Devices)
	}
	kinds := o.Kinds
	if len(kinds) == 0 {
		kinds = Kinds()
	}
	weights := make([]float64, len(kinds))
	for i, k := range kinds {
		weights[i] = map[Kind]float64{Datalogger: 10, WaterMeter: 10, WasteBin: 30, PedestrianCounter: 8, ParkingSensor: 27, AirQuality: 7, NoiseMeter: 8}[k]
		if weights[i] == 0 {
			return nil, fmt.Errorf("generated fleet: %v is not a sensor kind", k)
		}
	}
	places, err := demo.Places(o.Seed, o.Devices)
	if err != nil {
		return nil, err
	}
	f := newFleet(o)
	r := rand.New(rand.NewPCG(uint64(o.Seed), 0x67656e666c74))
	for i, p := range places {
		k := kinds[weighted(r, weights)]
		suffix := fmt.Sprintf("sim-%06d", i+1)
		d := f.add(k, k.info().prefix+"-"+suffix, "urn:ngsi-ld:"+k.info().typ+":"+suffix, r, o)
		d.Lon, d.Lat, d.Municipality, d.Street, d.Postcode = p.Lon, p.Lat, p.Municipality, p.Street, p.Postcode
		d.m.centreKm = p.CentreKm
		d.generate(r)
		d.setup(r)
	}
	f.addProbes(o, r)
	if err := f.stage(o); err != nil {
		return nil, err
	}
	return f, nil
}

func newFleet(o FleetOptions) *Fleet {
	t := o.Transport
	if t == "" {
		t = "HTTP"
	}
	return &Fleet{transport: t, seed: o.Seed, loc: brussels()}
}

func (f *Fleet) add(k Kind, id, entity string, r *rand.Rand, o FleetOptions) *Device {
	silent := o.SilentFraction
	if silent == 0 {
		silent = DefaultSilentFraction
	}
	d := &Device{
		ID: id, Kind: k, APIKey: k.APIKey(), Entity: entity,
		Interval:    k.Interval(),
		SilentProne: r.Float64() < silent,
		index:       len(f.members),
		seed:        r.Uint64(),
		loc:         f.loc,
	}
	if k == Datalogger && o.LoggerBatch > 0 {
		d.batch = o.LoggerBatch
		d.Interval = time.Duration(o.LoggerBatch) * 15 * time.Minute
	}
	if k.info().aligned {
		d.phase = time.Duration(r.Int64N(int64(time.Minute))) // just after each quarter hour
	} else {
		d.phase = time.Duration(r.Int64N(int64(d.Interval)))
	}
	f.members = append(f.members, d)
	return d
}

func (f *Fleet) addProbes(o FleetOptions, r *rand.Rand) {
	for i := range o.Probes {
		id := fmt.Sprintf("sim-probe-%02d", i+1)
		f.probes = append(f.probes, &Device{
			ID: id, Kind: Probe, APIKey: Probe.APIKey(), Entity: "urn:ngsi-ld:SimulatorProbe:" + id,
			Name: "zenne simulate latency probe", Lon: 4.3525, Lat: 50.8467, Municipality: "Bruxelles",
			Interval: Probe.Interval(), index: f.Len(), seed: r.Uint64(), loc: f.loc,
		})
	}
}

func kindOfType(t string) (Kind, bool) {
	for _, k := range Kinds() {
		if k.info().typ == t {
			return k, true
		}
	}
	return 0, false
}

// generate draws the base levels of a device of a generated fleet (a demo
// fleet's come from the demo city).
func (d *Device) generate(r *rand.Rand) {
	logUniform := func(lo, hi float64) float64 { return lo * math.Pow(hi/lo, r.Float64()) }
	switch d.Kind {
	case Datalogger:
		d.m.profile = "weekdays"
		if r.Float64() < 0.3 {
			d.m.profile = "everyday"
		}
		d.m.level = math.Round(logUniform(80, 3000))
	case WaterMeter:
		d.m.level = float64(300 + r.IntN(2200))
		if r.Float64() < 1.0/12 {
			d.LeakFlow = float64(40 + r.IntN(140))
		}
		d.m.waterBase = 50_000 + r.Float64()*5_000_000
	case WasteBin:
		d.m.level = []float64{3, 14, 5, 2}[weighted(r, []float64{0.5, 0.2, 0.2, 0.1})]
	case PedestrianCounter:
		d.m.profile = "commuter"
		if r.Float64() < 0.6 {
			d.m.profile = "shopping"
		}
		d.m.level = math.Round(logUniform(150, 2500))
	case AirQuality:
		d.m.profile = []string{"traffic", "urban", "background", "industrial"}[weighted(r, []float64{0.35, 0.35, 0.2, 0.1})]
		d.m.level = math.Round(map[string]float64{"traffic": 40, "urban": 30, "background": 19, "industrial": 28}[d.m.profile] * (0.85 + 0.3*r.Float64()))
	case NoiseMeter:
		d.m.level = math.Round(55 + 18*r.Float64())
	}
}

// setup derives what the readings need from the base levels.
func (d *Device) setup(r *rand.Rand) {
	switch d.Kind {
	case Datalogger:
		// level kWh over an open day, spread by the relative load.
		sum := 0.0
		for q := range 96 {
			sum += buildingLoad(float64(q)/4+0.125, time.Wednesday, d.m.profile)
		}
		d.m.energyScale = d.m.level / sum
	case WaterMeter:
		// An open day uses about three hours of the maximum flow.
		open := d.m.level * (2.5 + r.Float64())
		for wd := range 7 {
			total := open
			if !buildingOpen(time.Weekday(wd), "weekdays") {
				total = open * 0.04 // cleaning
			}
			d.m.dayTotals[wd] = total*(0.9+0.2*r.Float64()) + d.LeakFlow*24
			d.m.weekTotal += d.m.dayTotals[wd]
		}
	case WasteBin:
		// Busy streets and the centre fill bins faster: the street's own
		// factor (bins of a street share it) times closeness to the centre.
		street := streetName(d.Street)
		sf := (0.7 + 0.6*math.Exp(-d.m.centreKm*d.m.centreKm/(2*2.5*2.5))) * (0.75 + 0.5*hashUnit(street))
		days := d.m.level
		if days <= 0 {
			days = 5
		}
		d.m.fillPerHour = sf / (days * activeHoursPerDay)
		// Collection: on the municipality's weekday, twice a week for bins
		// that fill in days, every other week for glass.
		mday := 1 + int(hashUnit("collect:"+d.Municipality)*6) // Monday..Saturday
		d.m.collectDays = [2]int{mday, -1}
		switch {
		case days <= 3:
			second := (mday + 3) % 7
			if second == int(time.Sunday) {
				second = int(time.Monday)
			}
			d.m.collectDays[1] = second
		case days >= 10:
			d.m.fortnightly = true
			d.m.collectParity = int(hashUnit("parity:"+d.Municipality) * 2)
		}
		d.m.collectHour = 6 + 4*r.Float64()
	}
}

// streetName drops a house number: "Rue Neuve 12" -> "Rue Neuve".
func streetName(s string) string {
	if i := strings.LastIndexByte(s, ' '); i > 0 {
		if _, err := fmt.Sscanf(s[i+1:], "%d", new(int)); err == nil {
			return s[:i]
		}
	}
	return s
}

func weighted(r *rand.Rand, w []float64) int {
	total := 0.0
	for _, x := range w {
		total += x
	}
	x := r.Float64() * total
	for i, v := range w {
		if x < v {
			return i
		}
		x -= v
	}
	return len(w) - 1
}

package simulate

import (
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// A Saturday afternoon, as in internal/demo's tests.
var testNow = time.Date(2026, 11, 21, 15, 7, 30, 0, time.UTC)

// testDemoFleet is built once: the demo city parses 1.8 MB of GeoJSON.
var testDemoFleet = sync.OnceValues(func() (*Fleet, error) { return NewFleet(FleetOptions{Seed: 1}, testNow) })

func demoFleet(t *testing.T) *Fleet {
	t.Helper()
	f, err := testDemoFleet()
	if err != nil {
		t.Fatalf("demo fleet: %v", err)
	}
	return f
}

func generated(t *testing.T, n int, kinds ...Kind) *Fleet {
	t.Helper()
	f, err := GeneratedFleet(FleetOptions{Seed: 7, Devices: n, Kinds: kinds, SilentFraction: -1})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// at is a local time in Brussels.
func at(y int, m time.Month, d, h, min int) time.Time {
	return time.Date(y, m, d, h, min, 0, 0, brussels())
}

func num(t *testing.T, m map[string]any, field string) float64 {
	t.Helper()
	switch v := m[field].(type) {
	case float64:
		return v
	case int:
		return float64(v)
	}
	t.Fatalf("field %q of %v is not a number", field, m)
	return 0
}

func TestDemoFleet(t *testing.T) {
	f := demoFleet(t)
	want := map[Kind]int{Datalogger: 40, WaterMeter: 40, WasteBin: 120, PedestrianCounter: 10, ParkingSensor: 80, AirQuality: 8, NoiseMeter: 6}
	if got := f.Count(); !reflect.DeepEqual(got, want) {
		t.Errorf("devices per kind: got %v, want %v", got, want)
	}
	ids, entities := make(map[string]bool), make(map[string]bool)
	for _, d := range f.Members() {
		if ids[d.ID] || entities[d.Entity] {
			t.Errorf("%s (%s): not unique", d.ID, d.Entity)
		}
		ids[d.ID], entities[d.Entity] = true, true
	}
	for _, id := range []string{"bin-bxl-0001", "park-bxl-0080", "logger-bxl-0040", "water-bxl-0001", "air-bxl-41R001", "noise-bxl-regent", "ped-bxl-rue-neuve"} {
		if !ids[id] {
			t.Errorf("no device %s", id)
		}
	}
	if !entities["urn:ngsi-ld:CrowdFlowObserved:bxl-rue-neuve"] || !entities["urn:ngsi-ld:WasteContainer:bxl-0120"] {
		t.Error("the demo fleet does not feed the demo city's entities")
	}
	bins, err := NewFleet(FleetOptions{Seed: 1, Kinds: []Kind{WasteBin}}, testNow)
	if err != nil || len(bins.Members()) != 120 || bins.Count()[WasteBin] != 120 {
		t.Errorf("the demo's bins only: %v, %v", bins.Count(), err)
	}
}

func TestGeneratedFleet(t *testing.T) {
	f := generated(t, 2000)
	n := f.Count()
	if len(f.Members()) != 2000 || len(n) != 7 {
		t.Fatalf("%d devices, kinds %v", len(f.Members()), n)
	}
	if n[WasteBin] < n[AirQuality] || n[ParkingSensor] < n[NoiseMeter] {
		t.Errorf("proportions: %v", n)
	}
	only := generated(t, 50, WasteBin)
	if c := only.Count(); c[WasteBin] != 50 {
		t.Errorf("Kinds: bins only: %v", c)
	}
	if d := f.Members()[0]; d.Entity != "urn:ngsi-ld:"+d.Kind.info().typ+":sim-000001" || d.Postcode == "" || d.Street == "" {
		t.Errorf("first device %+v", d)
	}
}

func TestDeterministic(t *testing.T) {
	a, _ := GeneratedFleet(FleetOptions{Seed: 3, Devices: 300})
	b, _ := GeneratedFleet(FleetOptions{Seed: 3, Devices: 300})
	c, _ := GeneratedFleet(FleetOptions{Seed: 4, Devices: 300})
	same, differ := true, false
	for _, tm := range []time.Time{at(2026, 11, 17, 8, 30), at(2026, 11, 21, 15, 0), at(2027, 3, 28, 2, 15)} {
		for i := range a.Members() {
			pa, _ := a.Members()[i].Payload(tm, tm)
			pb, _ := b.Members()[i].Payload(tm, tm)
			pc, _ := c.Members()[i].Payload(tm, tm)
			same = same && string(pa) == string(pb)
			differ = differ || string(pa) != string(pc)
		}
	}
	if !same {
		t.Error("the same seed gave different readings")
	}
	if !differ {
		t.Error("another seed gave the same readings")
	}
}

// Every field a device sends is mapped by its group, so that nothing lands
// under a made-up name.
func TestPayloadFieldsAreMapped(t *testing.T) {
	f := generated(t, 400)
	for _, d := range f.Members() {
		mapped := map[string]bool{TimestampField: true}
		for _, a := range d.Kind.Attributes() {
			mapped[a.ObjectID] = true
		}
		m := d.Reading(at(2026, 11, 18, 12, 0))
		if len(m) != len(d.Kind.Attributes()) {
			t.Errorf("%s: %d fields %v for %d attributes", d.ID, len(m), m, len(d.Kind.Attributes()))
		}
		for k := range m {
			if !mapped[k] {
				t.Errorf("%s: field %q is not mapped", d.ID, k)
			}
		}
	}
}

func TestBinsEmptiedOnCollectionDays(t *testing.T) {
	f := generated(t, 60, WasteBin)
	start := at(2026, 11, 2, 0, 0) // a Monday
	for _, d := range f.Members() {
		days := d.CollectionDays()
		if len(days) == 0 {
			t.Fatalf("%s: no collection day", d.ID)
		}
		resets := 0
		prev := d.fill(start)
		for tm := start.Add(time.Hour); tm.Before(start.AddDate(0, 0, 14)); tm = tm.Add(time.Hour) {
			cur := d.fill(tm)
			if cur < prev-1e-9 {
				resets++
				wd := tm.In(brussels()).Weekday()
				collected := false
				for _, c := range days {
					collected = collected || c == wd
				}
				if !collected {
					t.Errorf("%s: emptied on %v, collected on %v", d.ID, wd, days)
				}
				if cur > 0.05 {
					t.Errorf("%s: %.2f an hour after emptying", d.ID, cur)
				}
				// What the bin sends says the same.
				if r := d.Reading(tm); num(t, r, "f") > 6 {
					t.Errorf("%s: sends f=%v just after emptying", d.ID, r["f"])
				}
			}
			if cur < 0 || cur > 1 {
				t.Errorf("%s: fill %v", d.ID, cur)
			}
			prev = cur
		}
		want := 2 // weekly, in two weeks
		switch {
		case len(days) == 2:
			want = 4
		case d.m.fortnightly:
			want = 1
		}
		if resets != want {
			t.Errorf("%s (fills in %v days, collected %v): emptied %d times in two weeks, want %d", d.ID, d.m.level, days, resets, want)
		}
	}
}

func TestBinsFillFasterInBusyStreets(t *testing.T) {
	f := generated(t, 400, WasteBin)
	var near, far []float64
	for _, d := range f.Members() {
		if d.m.level != 3 {
			continue
		}
		switch {
		case d.m.centreKm < 1.5:
			near = append(near, d.m.fillPerHour)
		case d.m.centreKm > 6:
			far = append(far, d.m.fillPerHour)
		}
	}
	if len(near) < 5 || len(far) < 5 {
		t.Fatalf("%d bins near the centre, %d far", len(near), len(far))
	}
	if mean(near) <= mean(far) {
		t.Errorf("bins near the centre fill at %.4f/h, far ones at %.4f/h", mean(near), mean(far))
	}
}

func TestLeakingMetersNeverReachZeroAtNight(t *testing.T) {
	f := generated(t, 600, WaterMeter)
	leaks, others := 0, 0
	for _, d := range f.Members() {
		for _, tm := range []time.Time{at(2026, 11, 17, 3, 0), at(2026, 11, 17, 3, 15), at(2026, 11, 22, 2, 30)} {
			r := d.Reading(tm)
			q, mf := num(t, r, "q"), num(t, r, "mf")
			if d.LeakFlow > 0 {
				if q < d.LeakFlow/4-0.5 || mf < d.LeakFlow {
					t.Errorf("%s leaks %v l/h but at %v sends q=%v mf=%v", d.ID, d.LeakFlow, tm, q, mf)
				}
			} else if q > 0.5 || mf != 0 {
				t.Errorf("%s does not leak but at %v sends q=%v mf=%v", d.ID, tm, q, mf)
			}
		}
		if d.LeakFlow > 0 {
			leaks++
		} else {
			others++
		}
	}
	if leaks < 20 || others < 400 {
		t.Errorf("%d leaking meters, %d others", leaks, others)
	}
	// In the demo city, the meters the demo shows as leaking leak.
	for _, d := range demoFleet(t).Members() {
		if d.Kind == WaterMeter && d.LeakFlow > 0 {
			if q := num(t, d.reading(at(2026, 11, 24, 3, 0)), "q"); q < 10 {
				t.Errorf("%s: demo leak of %v l/h sends q=%v at night", d.ID, d.LeakFlow, q)
			}
		}
	}
}

// The index only grows and the quarter-hour volumes add up to it, across
// the changes to and from summer time.
func TestWaterIndex(t *testing.T) {
	f := generated(t, 40, WaterMeter)
	for _, start := range []time.Time{at(2026, 3, 27, 0, 0), at(2026, 10, 23, 0, 0)} {
		for _, d := range f.Members() {
			first := num(t, d.Reading(start), "v")
			prev, sum := first, 0.0
			for tm := start.Add(15 * time.Minute); tm.Before(start.AddDate(0, 0, 4)); tm = tm.Add(15 * time.Minute) {
				r := d.Reading(tm)
				v, q := num(t, r, "v"), num(t, r, "q")
				if v < prev {
					t.Fatalf("%s: index went down at %v: %v -> %v", d.ID, tm, prev, v)
				}
				prev = v
				sum += q
			}
			if diff := prev - first; math.Abs(diff-sum) > 2+0.001*diff {
				t.Errorf("%s from %v: index grew %v, quarter hours add up to %v", d.ID, start, diff, sum)
			}
		}
	}
	// The demo city's meters continue from the index the demo shows.
	for _, d := range demoFleet(t).Members() {
		if d.Kind == WaterMeter {
			if v := num(t, d.reading(testNow), "v"); v < 200_000 || v > 9_300_000 {
				t.Errorf("%s: index %v, outside the demo's range", d.ID, v)
			}
		}
	}
}

func TestSaturdayPedestrianPeak(t *testing.T) {
	var counters []*Device
	for _, d := range demoFleet(t).Members() {
		if d.Kind == PedestrianCounter {
			counters = append(counters, d)
		}
	}
	afternoon := func(day time.Time) float64 {
		total := 0.0
		for _, d := range counters {
			for tm := day.Add(12 * time.Hour); tm.Before(day.Add(18 * time.Hour)); tm = tm.Add(15 * time.Minute) {
				total += num(t, d.reading(tm), "c") // silence aside
			}
		}
		return total
	}
	sat := afternoon(at(2026, 11, 21, 0, 0))
	for d := 16; d <= 22; d++ {
		day := at(2026, 11, d, 0, 0)
		if day.Weekday() == time.Saturday {
			continue
		}
		if c := afternoon(day); c >= sat {
			t.Errorf("%v afternoon: %v pedestrians, Saturday %v", day.Weekday(), c, sat)
		}
	}
	// Commuter streets peak on weekday mornings instead.
	f := generated(t, 300, PedestrianCounter)
	var morning, satMorning float64
	for _, d := range f.Members() {
		if d.m.profile == "commuter" {
			morning += num(t, d.Reading(at(2026, 11, 17, 8, 30)), "c")
			satMorning += num(t, d.Reading(at(2026, 11, 21, 8, 30)), "c")
		}
	}
	if morning < 2*satMorning {
		t.Errorf("commuter streets: Tuesday 8:30 %v, Saturday 8:30 %v", morning, satMorning)
	}
}

func TestRushHours(t *testing.T) {
	f := generated(t, 400, AirQuality, NoiseMeter)
	var no2Rush, no2Night, laRush, laNight float64
	for _, d := range f.Members() {
		for day := 16; day <= 20; day++ { // Monday to Friday
			rush, night := at(2026, 11, day, 8, 30), at(2026, 11, day, 3, 30)
			switch d.Kind {
			case AirQuality:
				no2Rush += num(t, d.Reading(rush), "no2")
				no2Night += num(t, d.Reading(night), "no2")
			case NoiseMeter:
				laRush += num(t, d.Reading(rush), "la")
				laNight += num(t, d.Reading(night), "la")
			}
		}
	}
	if no2Rush < 1.8*no2Night {
		t.Errorf("NO2: rush hour %v, night %v", no2Rush, no2Night)
	}
	if laRush < laNight+5*float64(len(f.Members()))/2 {
		t.Errorf("noise: rush hour %v, night %v", laRush, laNight)
	}
}

func TestDataloggerOfficeHours(t *testing.T) {
	f := generated(t, 300, Datalogger)
	for _, d := range f.Members() {
		e := func(tm time.Time) float64 { return num(t, d.Reading(tm), "e") }
		day, night := e(at(2026, 11, 18, 11, 0)), e(at(2026, 11, 18, 3, 0))
		if day < 2.5*night {
			t.Errorf("%s (%s): Wednesday 11:00 %v kWh, 3:00 %v kWh", d.ID, d.m.profile, day, night)
		}
		sunday := e(at(2026, 11, 22, 11, 0))
		if d.m.profile == "weekdays" && sunday > 1.5*night {
			t.Errorf("%s: closed on Sunday but uses %v kWh at 11:00 (night %v)", d.ID, sunday, night)
		}
		// A working day's quarter hours add up to about the day's level.
		total := 0.0
		for tm := at(2026, 11, 18, 0, 15); !tm.After(at(2026, 11, 19, 0, 0)); tm = tm.Add(15 * time.Minute) {
			total += e(tm)
		}
		if math.Abs(total-d.m.level) > 0.1*d.m.level {
			t.Errorf("%s: %v kWh on a Wednesday, level %v", d.ID, total, d.m.level)
		}
	}
}

func TestParkingOccupancy(t *testing.T) {
	f := generated(t, 500, ParkingSensor)
	taken := func(tm time.Time, centre bool) (n, of int) {
		for _, d := range f.Members() {
			if (d.m.centreKm < 2) != centre {
				continue
			}
			of++
			if d.Reading(tm)["s"] == "occupied" {
				n++
			}
		}
		return n, of
	}
	n, of := taken(at(2026, 11, 18, 13, 0), true)
	if of < 20 || float64(n) < 0.7*float64(of) {
		t.Errorf("centre, Wednesday 13:00: %d of %d spots taken", n, of)
	}
	night, _ := taken(at(2026, 11, 18, 3, 0), true)
	if night >= n {
		t.Errorf("centre: %d spots taken at 3:00, %d at 13:00", night, n)
	}
}

func TestSilentDevices(t *testing.T) {
	f, err := GeneratedFleet(FleetOptions{Seed: 5, Devices: 200, SilentFraction: 0.25})
	if err != nil {
		t.Fatal(err)
	}
	prone := 0
	for _, d := range f.Members() {
		silent := 0
		start := at(2026, 11, 2, 0, 0)
		for tm := start; tm.Before(start.AddDate(0, 0, 14)); tm = tm.Add(2 * time.Hour) {
			s := d.Silent(tm)
			if s {
				silent++
			}
			if (d.Reading(tm) == nil) != s {
				t.Fatalf("%s at %v: silent %v but reading %v", d.ID, tm, s, d.Reading(tm))
			}
			if p, _ := d.Payload(tm, tm); (p == nil) != s {
				t.Fatalf("%s at %v: silent %v but payload %s", d.ID, tm, s, p)
			}
		}
		if !d.SilentProne && silent > 0 {
			t.Errorf("%s is not silence-prone but was silent %d times", d.ID, silent)
		}
		if d.SilentProne {
			prone++
			if silent == 0 || silent == 14*12 {
				t.Errorf("%s: silent %d of %d two-hour steps", d.ID, silent, 14*12)
			}
		}
	}
	if prone < 25 || prone > 75 {
		t.Errorf("%d silence-prone devices of 200 at 25%%", prone)
	}
	g, _ := GeneratedFleet(FleetOptions{Seed: 5, Devices: 400, SilentFraction: -1})
	for _, d := range g.Members() {
		if d.SilentProne {
			t.Fatalf("%s: silence-prone with SilentFraction -1", d.ID)
		}
	}
}

func TestPayload(t *testing.T) {
	f := generated(t, 20, Datalogger)
	d := f.Members()[0]
	tm := at(2026, 11, 18, 10, 0)
	p, n := d.Payload(tm, tm.Add(time.Second))
	if n != 1 || !containsAll(string(p), `"ts":"2026-11-18T09:00:00.000Z"`, `"e":`) {
		t.Errorf("payload %s (%d readings)", p, n)
	}
	// Ahead of the clock (a fast simulation): no time, the server stamps it.
	if p, _ := d.Payload(tm, tm.Add(-time.Minute)); containsAll(string(p), `"ts"`) {
		t.Errorf("payload ahead of the clock carries a time: %s", p)
	}
	// Batches of quarter hours, as NRClick loggers upload.
	b, _ := GeneratedFleet(FleetOptions{Seed: 7, Devices: 20, Kinds: []Kind{Datalogger}, LoggerBatch: 4, SilentFraction: -1})
	d = b.Members()[0]
	if d.Interval != time.Hour {
		t.Errorf("batch of 4: interval %v", d.Interval)
	}
	p, n = d.Payload(tm.Add(7*time.Minute), tm.Add(time.Hour))
	if n != 4 || !containsAll(string(p), `[{`, `"ts":"2026-11-18T08:15:00.000Z"`, `"ts":"2026-11-18T09:00:00.000Z"`) || containsAll(string(p), `09:15:00`) {
		t.Errorf("batch payload %s (%d readings)", p, n)
	}
}

func containsAll(s string, subs ...string) bool {
	for _, x := range subs {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}

func mean(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

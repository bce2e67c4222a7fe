package simulate

import (
	"math"
	"sync"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/demo"
)

// testSensors are the demo city's sensors at testNow, built once.
var testSensors = sync.OnceValues(func() ([]demo.Sensor, error) {
	city, err := demo.City(1, testNow)
	if err != nil {
		return nil, err
	}
	return demo.Sensors(city), nil
})

func scripted(t *testing.T, o FleetOptions) *Fleet {
	t.Helper()
	ss, err := testSensors()
	if err != nil {
		t.Fatal(err)
	}
	o.Seed = 1
	f, err := DemoFleet(ss, o)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func device(t *testing.T, f *Fleet, id string) *Device {
	t.Helper()
	for _, d := range f.Members() {
		if d.ID == id {
			return d
		}
	}
	t.Fatalf("no device %s", id)
	return nil
}

func TestOutages(t *testing.T) {
	from, to := testNow.Add(-2*time.Hour), testNow.Add(3*time.Minute)
	f := scripted(t, FleetOptions{SilentFraction: -1, Outages: []Outage{
		{Device: "park-bxl-0001", From: from, To: to},
		{Device: "bin-bxl-0001", From: from},
	}})
	park, bin := device(t, f, "park-bxl-0001"), device(t, f, "bin-bxl-0001")
	for _, c := range []struct {
		d      *Device
		at     time.Time
		silent bool
	}{
		{park, from.Add(-time.Second), false}, {park, from, true}, {park, to.Add(-time.Second), true}, {park, to, false},
		{bin, from, true}, {bin, testNow.AddDate(1, 0, 0), true},
	} {
		if got := c.d.Silent(c.at); got != c.silent || (c.d.Reading(c.at) == nil) != c.silent {
			t.Errorf("%s at %v: silent %v, want %v", c.d.ID, c.at.Sub(from), got, c.silent)
		}
	}
	// Back from its outage, the sensor reports at once.
	if next := park.NextReport(to.Add(-time.Second)); !next.Equal(to) {
		t.Errorf("after the outage: next report %v, want %v", next, to)
	}
	// Its history stops where the outage starts.
	n, last := 0, time.Time{}
	for tm := range park.Backfill(from.Add(-time.Hour), testNow) {
		n++
		last = tm
	}
	if n < 10 || !last.Before(from) || from.Sub(last) > park.Interval {
		t.Errorf("history: %d readings, the last %v before the outage", n, from.Sub(last))
	}
	// Others are left alone; unknown devices are refused.
	if device(t, f, "park-bxl-0002").Silent(testNow) {
		t.Error("an outage silenced another device")
	}
	if _, err := DemoFleet(mustSensors(t), FleetOptions{Seed: 1, Outages: []Outage{{Device: "nope", From: from}}}); err == nil {
		t.Error("an outage of an unknown device was accepted")
	}
	if _, err := DemoFleet(mustSensors(t), FleetOptions{Seed: 1, Surges: []Surge{{Device: "bin-bxl-0001", Factor: 2}}}); err == nil {
		t.Error("a surge of a bin was accepted")
	}
}

func mustSensors(t *testing.T) []demo.Sensor {
	ss, err := testSensors()
	if err != nil {
		t.Fatal(err)
	}
	return ss
}

// A scripted collection empties the bin, and its sensor says so at once.
func TestScriptedCollection(t *testing.T) {
	// The fullest bin of the demo city.
	plain := scripted(t, FleetOptions{SilentFraction: -1})
	var full *Device
	for _, d := range plain.Members() {
		if d.Kind == WasteBin && (full == nil || d.fill(testNow) > full.fill(testNow)) {
			full = d
		}
	}
	at := testNow.Add(100 * time.Second)
	f := scripted(t, FleetOptions{SilentFraction: -1, Collections: []Collection{{Device: full.ID, At: at}}})
	d := device(t, f, full.ID)
	if before := d.fill(at.Add(-time.Second)); before < 0.8 || before != full.fill(at.Add(-time.Second)) {
		t.Errorf("before the collection: %.2f", before)
	}
	if r := d.Reading(at); num(t, r, "f") > 6 {
		t.Errorf("at the collection: f=%v", r["f"])
	}
	if after := d.fill(at.Add(time.Hour)); after > 0.1 {
		t.Errorf("an hour after the collection: %.2f", after)
	}
	if next := d.NextReport(at.Add(-time.Second)); !next.Equal(at) {
		t.Errorf("next report %v, want the collection at %v", next, at)
	}
	if next := d.NextReport(at); !next.Equal(plain.Members()[d.index].NextReport(at)) {
		t.Errorf("after the collection the bin is back on its grid: %v", next)
	}
}

// A history backfilled up to a time joins the run that starts then: no
// reading twice, none missing, and a bin's levels lead up to the demo
// city's reading.
func TestBackfillJoinsTheRun(t *testing.T) {
	f := scripted(t, FleetOptions{SilentFraction: -1})
	to := testNow
	for _, d := range f.Members() {
		var times []time.Time
		for tm := range d.Backfill(to.Add(-6*time.Hour), to) {
			times = append(times, tm)
		}
		if len(times) < int(5*time.Hour/d.Interval) {
			t.Fatalf("%s: %d readings in six hours", d.ID, len(times))
		}
		for i := 1; i < len(times); i++ {
			if !times[i].Equal(d.NextReport(times[i-1])) {
				t.Fatalf("%s: %v then %v, not its report times", d.ID, times[i-1], times[i])
			}
		}
		last := times[len(times)-1]
		if d.Kind.info().aligned {
			// The run's first reading covers the quarter hour before it.
			if last.After(to.Add(-d.Interval)) || !last.After(to.Add(-2*d.Interval)) {
				t.Errorf("%s (quarter hours): history ends %v before the run", d.ID, to.Sub(last))
			}
		} else if !last.Before(to) || to.Sub(last) > d.Interval {
			t.Errorf("%s: history ends %v before the run", d.ID, to.Sub(last))
		}
		if d.Kind == WasteBin && !d.m.startAt.IsZero() && d.lastCollection(d.m.startAt).Before(d.m.startAt.Add(-time.Hour)) {
			if got := d.fill(d.m.startAt.Add(-time.Minute)); math.Abs(got-d.m.startFill) > 0.01 {
				t.Errorf("%s: %.3f a minute before the demo city's reading %.3f", d.ID, got, d.m.startFill)
			}
		}
	}
}

// A surge makes one building's day stand out against the same hours of the
// same weekday in earlier weeks, as an anomaly rule judges it (sum, four
// weeks, three standard deviations and at least 1.5 times the mean), while
// no other building's does, at any hour.
func TestSurgeStandsOut(t *testing.T) {
	loc := brussels()
	for _, now := range []time.Time{at(2026, 11, 23, 0, 40), at(2026, 11, 23, 9, 30), at(2026, 11, 18, 14, 0),
		at(2026, 11, 21, 11, 0), at(2026, 11, 22, 2, 40), at(2026, 11, 20, 23, 50)} {
		day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, loc)
		f := scripted(t, FleetOptions{Surges: []Surge{{Device: "logger-bxl-0001", From: day, To: day.AddDate(0, 0, 1), Factor: 2}}})
		for _, d := range f.Members() {
			if d.Kind != Datalogger {
				continue
			}
			sum := func(from, to time.Time) float64 {
				s := 0.0
				for tm := d.NextReport(from); !tm.After(to); tm = d.NextReport(tm) {
					s += num(t, d.reading(tm), "e")
				}
				return s
			}
			today := sum(day, now)
			var usual []float64
			for k := 1; k <= 4; k++ {
				usual = append(usual, sum(day.AddDate(0, 0, -7*k), now.AddDate(0, 0, -7*k)))
			}
			if unusual := today > usualBound(usual, 3, 1.5); unusual != (d.ID == "logger-bxl-0001") {
				t.Errorf("%s, %s: %.1f kWh today, usually %.1f: unusual %v", d.ID, now.Format("Mon 15:04"), today, usual, unusual)
			}
		}
	}
}

// usualBound is the top of the usual range as internal/alarm's anomaly
// rule computes it.
func usualBound(usual []float64, sigma, minRatio float64) float64 {
	mean, sq := 0.0, 0.0
	for _, u := range usual {
		mean += u / float64(len(usual))
	}
	for _, u := range usual {
		sq += (u - mean) * (u - mean)
	}
	return math.Max(mean+sigma*math.Sqrt(sq/float64(len(usual)-1)), mean*minRatio)
}

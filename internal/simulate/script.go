package simulate

import (
	"fmt"
	"iter"
	"slices"
	"time"
)

// A fleet may be given a script of one-off happenings besides its rhythms
// (FleetOptions.Outages, Collections, Surges): what `zenne demo` stages so
// that its alarm rules have something to find. Readings stay pure functions
// of the device and the time: a script only changes which.

// Outage silences a device from From until To (zero: for good). When it
// ends the device reports at once, as a sensor that finds its network again.
type Outage struct {
	Device   string // device id
	From, To time.Time
}

// Collection empties a bin at At besides its collection days; its sensor
// reports the emptying at once.
type Collection struct {
	Device string // device id of a WasteBin
	At     time.Time
}

// Surge multiplies a datalogger's consumption by Factor for the quarter
// hours within From..To: a day the heating or the lights stayed on.
type Surge struct {
	Device   string // device id of a Datalogger
	From, To time.Time
	Factor   float64
}

// script is what a fleet's script does to one device.
type script struct {
	outages     []Outage
	collections []time.Time // sorted
	surges      []Surge
	events      []time.Time // extra report times: collections, outage ends
}

// stage hands the script of o to the devices it names.
func (f *Fleet) stage(o FleetOptions) error {
	if len(o.Outages)+len(o.Collections)+len(o.Surges) == 0 {
		return nil
	}
	byID := make(map[string]*Device, len(f.members))
	for _, d := range f.members {
		byID[d.ID] = d
	}
	get := func(id string, want ...Kind) (*Device, error) {
		d := byID[id]
		if d == nil {
			return nil, fmt.Errorf("fleet script: no device %q in the fleet", id)
		}
		if len(want) > 0 && !slices.Contains(want, d.Kind) {
			return nil, fmt.Errorf("fleet script: %s is a %v, not a %v", id, d.Kind, want[0])
		}
		return d, nil
	}
	for _, x := range o.Outages {
		d, err := get(x.Device)
		if err != nil {
			return err
		}
		if !x.To.IsZero() && !x.To.After(x.From) {
			return fmt.Errorf("fleet script: outage of %s ends (%v) before it starts (%v)", x.Device, x.To, x.From)
		}
		d.script.outages = append(d.script.outages, x)
		if !x.To.IsZero() {
			d.script.events = append(d.script.events, x.To)
		}
	}
	for _, x := range o.Collections {
		d, err := get(x.Device, WasteBin)
		if err != nil {
			return err
		}
		d.script.collections = append(d.script.collections, x.At)
		d.script.events = append(d.script.events, x.At)
	}
	for _, x := range o.Surges {
		d, err := get(x.Device, Datalogger)
		if err != nil {
			return err
		}
		if x.Factor <= 0 {
			return fmt.Errorf("fleet script: surge of %s: factor %v", x.Device, x.Factor)
		}
		d.script.surges = append(d.script.surges, x)
	}
	for _, d := range f.members {
		slices.SortFunc(d.script.collections, func(a, b time.Time) int { return a.Compare(b) })
		slices.SortFunc(d.script.events, func(a, b time.Time) int { return a.Compare(b) })
	}
	return nil
}

// out reports whether a scripted outage silences the device at t.
func (d *Device) out(t time.Time) bool {
	for _, o := range d.script.outages {
		if !t.Before(o.From) && (o.To.IsZero() || t.Before(o.To)) {
			return true
		}
	}
	return false
}

// surge is the factor scripted surges put on consumption at t.
func (d *Device) surge(t time.Time) float64 {
	f := 1.0
	for _, s := range d.script.surges {
		if !t.Before(s.From) && t.Before(s.To) {
			f *= s.Factor
		}
	}
	return f
}

// lastScripted is the latest scripted collection at or before t (zero:
// none).
func (d *Device) lastScripted(t time.Time) time.Time {
	var last time.Time
	for _, c := range d.script.collections {
		if c.After(t) {
			break
		}
		last = c
	}
	return last
}

// NextReport is the device's first report time after t in realistic mode:
// on its grid of Interval from the Unix epoch plus its phase, or a scripted
// event (a collection, the end of an outage) when one comes first.
func (d *Device) NextReport(t time.Time) time.Time { return d.nextReport(t) }

// Backfill yields the readings the device sent before a run started at to
// takes over, from from on, oldest first: the history that run continues.
// Devices on the quarter hours stop one interval short of to, because a
// run's first reading covers the quarter hour before it starts. Silence
// applies as it does to a run, except that dataloggers and water meters
// keep what they measured through the random silences of silence-prone
// devices (their loggers store it; a gap in weeks of history would look
// like a drop in consumption): only scripted outages silence them. A
// datalogger uploading batches (FleetOptions.LoggerBatch) yields one
// reading per upload, not the quarter hours of its batch.
func (d *Device) Backfill(from, to time.Time) iter.Seq2[time.Time, map[string]any] {
	aligned := d.Kind.info().aligned
	before := func(t time.Time) bool { return t.Before(to) }
	if aligned {
		last := to.Add(-d.Interval)
		before = func(t time.Time) bool { return !t.After(last) }
	}
	keeps := d.Kind == Datalogger || d.Kind == WaterMeter
	return func(yield func(time.Time, map[string]any) bool) {
		for t := d.nextReport(from.Add(-1)); before(t); t = d.nextReport(t) {
			if d.out(t) || !keeps && d.Silent(t) {
				continue
			}
			if !yield(t, d.reading(t)) {
				return
			}
		}
	}
}

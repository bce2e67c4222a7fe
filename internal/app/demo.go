package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/zenne-city/zenne/internal/core"
	"github.com/zenne-city/zenne/internal/demo"
	"github.com/zenne-city/zenne/internal/ingest"
	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/ngsild/geo"
	"github.com/zenne-city/zenne/internal/simulate"
	"github.com/zenne-city/zenne/internal/store"
)

// demoSeed is the seed of the demo city and of its sensors' readings.
const demoSeed = 1

// LoadDemo loads the Brussels demo city into the default tenant through the
// broker's batch upsert, as any client would, and returns the count per type.
func (a *App) LoadDemo(ctx context.Context, progress func(done, total int)) (map[string]int, error) {
	raw, err := demo.City(demoSeed, time.Now())
	if err != nil {
		return nil, fmt.Errorf("build demo city: %w", err)
	}
	a.demoCity = raw
	opts := ngsild.ParseOptions{ValidateGeometry: func(v any) error { _, err := geo.ParseGeometry(v); return err }}
	var batch []*ngsild.Entity
	flush := func(done int) error {
		if len(batch) == 0 {
			return nil
		}
		res, err := a.Broker.BatchUpsert(ctx, store.DefaultTenant, batch, false)
		if err != nil {
			return err
		}
		if len(res.Errors) > 0 {
			return fmt.Errorf("demo entity %s: %v", res.Errors[0].EntityID, res.Errors[0].Err)
		}
		batch = batch[:0]
		if progress != nil {
			progress(done, len(raw))
		}
		return nil
	}
	for i, body := range raw {
		c, err := a.Resolver.Resolve(ctx, body["@context"])
		if err != nil {
			return nil, fmt.Errorf("demo entity %v: @context: %w", body["id"], err)
		}
		e, err := ngsild.ParseEntity(body, c, opts)
		if err != nil {
			return nil, fmt.Errorf("demo entity %v: %w", body["id"], err)
		}
		batch = append(batch, e)
		if len(batch) == 200 {
			if err := flush(i + 1); err != nil {
				return nil, err
			}
		}
	}
	if err := flush(len(raw)); err != nil {
		return nil, err
	}
	return demo.Summary(raw), nil
}

// StartSimulator keeps the loaded demo city alive: a simulated device for
// each of its sensors (bins, meters, counters, stations) is registered with
// the device service and sends readings to it in-process, each at its own
// interval, the first within a second, until ctx ends. It returns the number
// of devices.
func (a *App) StartSimulator(ctx context.Context) (int, error) {
	if a.demoCity == nil {
		return 0, fmt.Errorf("load the demo city first")
	}
	fleet, err := simulate.DemoFleet(demo.Sensors(a.demoCity), simulate.FleetOptions{Seed: demoSeed})
	if err != nil {
		return 0, err
	}
	return a.runFleet(ctx, fleet)
}

// StartScriptedSimulator is StartSimulator for a demo whose history
// BackfillDemo wrote: the sensors continue that history and play its
// script (the outages, the bin emptied).
func (a *App) StartScriptedSimulator(ctx context.Context, s *DemoScript) (int, error) {
	if s == nil || s.fleet == nil {
		return 0, errors.New("backfill the demo's history first")
	}
	return a.runFleet(ctx, s.fleet)
}

func (a *App) runFleet(ctx context.Context, fleet *simulate.Fleet) (int, error) {
	if _, err := fleet.ProvisionIn(ctx, a.Devices, store.DefaultTenant); err != nil {
		return 0, fmt.Errorf("register the demo's devices: %w", err)
	}
	go func() {
		if _, err := simulate.Run(ctx, simulate.Config{Fleet: fleet}, &simulate.ReceiverSender{Receiver: a.Devices}); err != nil && ctx.Err() == nil {
			a.cfg.Log.Warn("the demo's simulated sensors stopped", "err", err)
		}
	}()
	return fleet.Len(), nil
}

// DemoScript is what the demo stages for its alarm rules: the history its
// sensors sent before it started (BackfillDemo) and the happenings it
// scripts for the minutes after (StartScriptedSimulator plays them).
type DemoScript struct {
	At        time.Time     // the history ends here; the simulator takes over
	Sensors   int           // sensors with history
	Readings  int           // readings written, each with its own time
	Instances int           // attribute instances they hold
	Took      time.Duration // how long the backfill took

	Leaking []string // water meters (entity ids) whose flow never stops at night
	Unusual string   // the building (entity id) whose consumption today is unusual
	Silent  []string // sensors' entities that fell silent one to three hours ago
	// Back is the one among Silent that reports again at BackAt.
	Back   string
	BackAt time.Time
	// Emptied is a full bin emptied at EmptiedAt, shortly after the start.
	Emptied   string
	EmptiedAt time.Time

	fleet *simulate.Fleet
	// held are the last readings of the sensors silent now, oldest first,
	// which StartDemoAlarms writes once the rules exist (writeReadings).
	held [][]*ngsild.Entity
}

// How far back the demo's history goes: five weeks of the energy loggers
// (a day is judged against the same weekday of four earlier weeks), four
// days of the water meters (three nights of leak), and a few hours of the
// others (a silent sensor's last reading, the usual interval).
func backfillSpan(k simulate.Kind) time.Duration {
	switch k {
	case simulate.Datalogger:
		return 35 * 24 * time.Hour
	case simulate.WaterMeter:
		return 4 * 24 * time.Hour
	}
	return 6 * time.Hour
}

// The demo's script, relative to the end of its history.
const (
	emptiedAfter = 100 * time.Second // a full bin is emptied (its alert clears)
	backAfter    = 150 * time.Second // a silent parking sensor reports again (its alert clears)
	surgeFactor  = 2                 // today's consumption of one building, against its usual
)

// importBatch is about how many attribute instances one history import
// writes (whole devices at a time, so that each day's chunk is written once).
const importBatch = 60_000

// BackfillDemo writes the history the demo city's sensors would have sent
// before now, from the same patterns the simulator follows, so that the
// live readings continue it: five weeks of the energy loggers, four days of
// the water meters, the last six hours of the other sensors. The history
// goes straight into the history store (store.HistoryImporter); each
// sensor's last reading becomes its entity's current value where it is the
// newer. It also scripts what the demo's alarm rules find: one building
// consuming twice its usual today, a few sensors silent for one to three
// hours, and (from the demo city) water meters leaking every night; and a
// full bin emptied, and a silent sensor coming back, minutes after the
// start. Call it after LoadDemo; StartScriptedSimulator plays the script.
// progress (may be nil) is told the sensors done.
func (a *App) BackfillDemo(ctx context.Context, progress func(done, total int)) (*DemoScript, error) {
	if a.demoCity == nil {
		return nil, errors.New("load the demo city first")
	}
	im, ok := a.Store.(store.HistoryImporter)
	if !ok {
		return nil, errors.New("the store cannot import history")
	}
	started := time.Now()
	s := &DemoScript{At: started}
	sensors := demo.Sensors(a.demoCity)
	plain, err := simulate.DemoFleet(sensors, simulate.FleetOptions{Seed: demoSeed})
	if err != nil {
		return nil, err
	}
	if s.fleet, err = simulate.DemoFleet(sensors, s.script(plain)); err != nil {
		return nil, err
	}

	// Readings become attributes as the device service maps them.
	maps := map[simulate.Kind]*ingest.Mapping{}
	for _, k := range simulate.Kinds() {
		var ams []ingest.AttrMap
		for _, at := range k.Attributes() {
			ams = append(ams, at.AttrMap())
		}
		if maps[k], err = ingest.NewMapping(ams, a.Resolver.Core()); err != nil {
			return nil, fmt.Errorf("demo history: %s: %w", k, err)
		}
	}
	devices := s.fleet.Members()
	var recs []store.ImportRecord
	var tails [][]*ngsild.Entity // each sensor's last readings, oldest first
	for i, d := range devices {
		types := []string{d.Kind.EntityType()}
		var tail []*ngsild.Entity
		for t, fields := range d.Backfill(s.At.Add(-backfillSpan(d.Kind)), s.At) {
			if len(tail) == tailReadings {
				for name, insts := range tail[0].Attrs {
					recs = append(recs, store.ImportRecord{EntityID: d.Entity, Types: types, Name: name, Attr: insts[0]})
				}
				tail = append(tail[:0], tail[1:]...)
			}
			attrs, err := maps[d.Kind].Attributes(fields, t.UTC())
			if err != nil {
				return nil, fmt.Errorf("demo history: %s: %w", d.Entity, err)
			}
			r := &ngsild.Entity{ID: d.Entity, Types: types, Attrs: attrs}
			tail = append(tail, r)
			s.Readings++
			s.Instances += len(r.Attrs)
		}
		switch {
		case len(tail) == 0:
		case d.Silent(s.At):
			s.Sensors++
			s.held = append(s.held, tail)
		default:
			s.Sensors++
			tails = append(tails, tail)
		}
		if len(recs) >= importBatch || i == len(devices)-1 {
			if err := im.ImportHistory(ctx, store.DefaultTenant, recs); err != nil {
				return nil, fmt.Errorf("demo history: %w", err)
			}
			recs = recs[:0]
			if progress != nil {
				progress(i+1, len(devices))
			}
		}
	}
	if err := a.writeReadings(ctx, tails, false); err != nil {
		return nil, fmt.Errorf("demo history: %w", err)
	}
	s.Took = time.Since(started)
	return s, nil
}

// tailReadings is how many of each sensor's last readings are written
// through the broker, as a device's readings are, rather than imported:
// rules that follow changes see them as if they had come live, and three
// readings give a silence rule two intervals, enough to know a sensor's
// usual one.
//
// The last readings of the sensors silent now are written only once the
// rules exist (StartDemoAlarms): a silence rule learns each entity's usual
// interval from its history when it starts, but only for the entities it
// has seen no change of; had its evaluation, running behind, seen only the
// last of these readings, it would never know a silent sensor's interval.
const tailReadings = 3

// writeReadings writes the last readings of each sensor, a round of one
// reading per sensor at a time, so that the newest become the entities'
// current values. Unless all, values older than the entity's own are left
// out (the demo city's readings are from its last minutes).
func (a *App) writeReadings(ctx context.Context, tails [][]*ngsild.Entity, all bool) error {
	// Each tail is oldest first, so comparing every round with the entity
	// as it is before the first decides as comparing with the entity as
	// the previous rounds left it.
	var cur map[string]*ngsild.Entity
	if !all {
		cur = make(map[string]*ngsild.Entity, len(tails))
		for _, tail := range tails {
			if len(tail) == 0 {
				continue
			}
			e, err := a.Store.Get(ctx, store.DefaultTenant, tail[0].ID)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			cur[tail[0].ID] = e
		}
	}
	for k := range tailReadings {
		if err := a.writeRound(ctx, tails, k, cur); err != nil {
			return err
		}
	}
	return nil
}

// writeRound writes the k-th reading of every tail; with cur, it leaves
// out values older than the entity's in cur.
func (a *App) writeRound(ctx context.Context, tails [][]*ngsild.Entity, k int, cur map[string]*ngsild.Entity) error {
	var ms []core.Measurement
	for _, tail := range tails {
		i := k - (tailReadings - len(tail)) // the newest of every tail in the last round
		if i < 0 {
			continue
		}
		r := tail[i]
		if e := cur[r.ID]; e != nil {
			for name, insts := range r.Attrs {
				if have := e.Instance(name, ""); have != nil && have.ObservedAt.After(insts[0].ObservedAt) {
					delete(r.Attrs, name)
				}
			}
		}
		if len(r.Attrs) > 0 {
			ms = append(ms, core.Measurement{Reading: r})
		}
	}
	if len(ms) == 0 {
		return nil
	}
	res, err := a.Broker.BatchMeasure(ctx, store.DefaultTenant, ms)
	if err != nil {
		return err
	}
	if len(res.Errors) > 0 {
		return fmt.Errorf("%s: %v", res.Errors[0].EntityID, res.Errors[0].Err)
	}
	return nil
}

// script picks the devices of the demo's script from the fleet without one
// (the same devices, the same readings) and returns the options that play
// it. Everything is relative to s.At.
func (s *DemoScript) script(f *simulate.Fleet) simulate.FleetOptions {
	o := simulate.FleetOptions{Seed: demoSeed}
	now := s.At
	var bins, parking []*simulate.Device
	for _, d := range f.Members() {
		switch {
		case d.Kind == simulate.WaterMeter && d.LeakFlow > 0:
			s.Leaking = append(s.Leaking, d.Entity)
		case d.Kind == simulate.Datalogger && s.Unusual == "":
			// The first town hall: twice its usual consumption, all day.
			day := localMidnight(now)
			o.Surges = append(o.Surges, simulate.Surge{Device: d.ID, From: day, To: day.AddDate(0, 0, 1), Factor: surgeFactor})
			s.Unusual = d.Entity
		case d.SilentProne || d.Silent(now):
		case d.Kind == simulate.WasteBin:
			bins = append(bins, d)
		case d.Kind == simulate.ParkingSensor:
			parking = append(parking, d)
		}
	}
	fill := func(d *simulate.Device) float64 { v, _ := d.Reading(now)["f"].(int); return float64(v) / 100 }
	// The fullest bin is emptied a little after the start; one far from
	// full fell silent 2 h 10 min before it.
	var full, quiet *simulate.Device
	for _, d := range bins {
		if full == nil || fill(d) > fill(full) {
			full = d
		}
		if quiet == nil && fill(d) < 0.6 {
			quiet = d
		}
	}
	if full != nil && fill(full) > 0.8 {
		s.Emptied, s.EmptiedAt = full.Entity, now.Add(emptiedAfter)
		o.Collections = append(o.Collections, simulate.Collection{Device: full.ID, At: s.EmptiedAt})
	}
	if quiet != nil {
		o.Outages = append(o.Outages, simulate.Outage{Device: quiet.ID, From: now.Add(-130 * time.Minute)})
		s.Silent = append(s.Silent, quiet.Entity)
	}
	// Two parking sensors: one silent since 2 h 40 min for good, one since
	// 1 h 25 min that comes back a little after the start.
	if len(parking) >= 2 {
		o.Outages = append(o.Outages,
			simulate.Outage{Device: parking[0].ID, From: now.Add(-160 * time.Minute)},
			simulate.Outage{Device: parking[1].ID, From: now.Add(-85 * time.Minute), To: now.Add(backAfter)})
		s.Silent = append(s.Silent, parking[0].Entity, parking[1].Entity)
		s.Back, s.BackAt = parking[1].Entity, now.Add(backAfter)
	}
	return o
}

// localMidnight is the start of t's day in Brussels.
func localMidnight(t time.Time) time.Time {
	loc, err := time.LoadLocation("Europe/Brussels")
	if err != nil {
		loc = time.FixedZone("CET", 3600)
	}
	l := t.In(loc)
	return time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, loc)
}

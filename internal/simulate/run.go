package simulate

import (
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Sender delivers one device's uplink payload (JSON) somewhere: an MQTT
// broker (MQTTSender), an HTTP endpoint (HTTPSender), or zenne's ingest in
// the same process (ReceiverSender). Run calls Send from several goroutines.
// A failed send returns an error, best a *SendError naming its kind.
type Sender interface {
	Send(ctx context.Context, d *Device, payload []byte) error
}

// Config says how to run a fleet.
type Config struct {
	Fleet *Fleet
	// Rate is the total of messages per second, spread evenly over the
	// devices in turn. 0 is realistic mode: each device reports at its own
	// interval (Device.Interval, e.g. every 15 minutes), divided by Speed.
	Rate float64
	// Speed is how many simulated seconds pass per second (default 1).
	// At 60 a day of readings passes in 24 minutes, and a device reporting
	// every 15 minutes does so every 15 seconds. Readings carry their time
	// ("ts") only while the simulated time is not ahead of the clock;
	// beyond, the server stamps them as they arrive.
	Speed float64
	// Start is the simulated time at the start (default now). A start in
	// the past replays it (readings keep their times, so they land in
	// history) until the simulated time catches up with the clock.
	Start time.Time
	// Duration stops the run after this long (0: when ctx is done).
	Duration time.Duration
	// Workers is how many sends run at once (default: what the sender
	// suggests, else 16).
	Workers int
	// Probe, when set, measures publish -> readable latency while the
	// load runs, with the fleet's probe devices (FleetOptions.Probes).
	Probe *ProbeConfig
	// Progress, when set, is called every ProgressEvery (default a second).
	Progress      func(Snapshot)
	ProgressEvery time.Duration
}

// workerHint is implemented by senders that know how many concurrent sends
// suit them (an MQTT sender: one per connection).
type workerHint interface{ Workers() int }

// Run sends the fleet's readings until cfg.Duration has passed or ctx is
// done, and returns what happened. It returns an error only for a config
// it cannot run; failed sends are counted in the Summary.
func Run(ctx context.Context, cfg Config, s Sender) (Summary, error) {
	if cfg.Fleet == nil || len(cfg.Fleet.members) == 0 {
		return Summary{}, errors.New("simulate: no devices to run")
	}
	if cfg.Rate < 0 {
		return Summary{}, fmt.Errorf("simulate: rate %v: give messages per second, or 0 for each device's own interval", cfg.Rate)
	}
	if cfg.Speed == 0 {
		cfg.Speed = 1
	}
	if cfg.Speed < 0 {
		return Summary{}, fmt.Errorf("simulate: speed %v: give a positive factor", cfg.Speed)
	}
	if cfg.Probe != nil && len(cfg.Fleet.probes) == 0 {
		return Summary{}, errors.New("simulate: a probe needs probe devices in the fleet (FleetOptions.Probes)")
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = time.Second
	}
	workers := cfg.Workers
	if workers <= 0 {
		workers = 16
		if h, ok := s.(workerHint); ok && h.Workers() > 0 {
			workers = h.Workers()
		}
	}
	workers = min(workers, len(cfg.Fleet.members))
	// A send under way when the duration ends is let finish, so that what
	// the receiver got and what the summary counts agree; only the caller's
	// own cancellation cuts sends short.
	sendCtx := ctx
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}

	now := time.Now()
	r := &runner{cfg: cfg, s: s, sendCtx: sendCtx, c: newCounters(), clock: clock{wall0: now, sim0: now, speed: cfg.Speed}}
	if !cfg.Start.IsZero() {
		r.clock.sim0 = cfg.Start
	}
	parts := make([][]*Device, workers)
	for i, d := range cfg.Fleet.members {
		parts[i%workers] = append(parts[i%workers], d)
	}
	var wg sync.WaitGroup
	for w, devs := range parts {
		wg.Go(func() {
			if cfg.Rate > 0 {
				r.paced(ctx, devs, w, workers)
			} else {
				r.realistic(ctx, devs)
			}
		})
	}
	if cfg.Probe != nil {
		r.probe = newProber(*cfg.Probe, cfg.Fleet, s)
		wg.Go(func() { r.probe.run(ctx) })
	}
	done := make(chan struct{})
	var pwg sync.WaitGroup
	if cfg.Progress != nil {
		pwg.Go(func() { r.progress(done) })
	}
	wg.Wait()
	close(done)
	pwg.Wait()
	return r.summary(), nil
}

// clock maps wall-clock time to simulated time.
type clock struct {
	wall0, sim0 time.Time
	speed       float64
}

func (c clock) sim(wall time.Time) time.Time {
	return c.sim0.Add(time.Duration(float64(wall.Sub(c.wall0)) * c.speed))
}

func (c clock) wall(sim time.Time) time.Time {
	return c.wall0.Add(time.Duration(float64(sim.Sub(c.sim0)) / c.speed))
}

type runner struct {
	cfg     Config
	s       Sender
	sendCtx context.Context // cancelled by the caller, not by the duration
	c       *counters
	clock   clock
	probe   *prober
}

// send sends d's reading at simulated time t; it reports false when d is
// silent.
func (r *runner) send(d *Device, t time.Time) bool {
	ctx := r.sendCtx
	payload, n := d.Payload(t, time.Now())
	if payload == nil {
		r.c.silent.Add(1)
		return false
	}
	start := time.Now()
	if err := r.s.Send(ctx, d, payload); err != nil {
		if ctx.Err() == nil { // a send cut short by the end is no failure
			r.c.fail(err)
		}
		return true
	}
	r.c.latency.record(time.Since(start))
	r.c.sent.Add(1)
	r.c.readings.Add(int64(n))
	return true
}

// paced sends worker w's share of the rate, its devices in turn.
func (r *runner) paced(ctx context.Context, devs []*Device, w, workers int) {
	interval := time.Duration(float64(workers) / r.cfg.Rate * float64(time.Second))
	next := r.clock.wall0.Add(interval * time.Duration(w) / time.Duration(workers))
	timer := time.NewTimer(0)
	defer timer.Stop()
	i := 0
	for {
		if !sleepUntil(ctx, timer, next) {
			return
		}
		for range devs { // a silent device passes its turn to the next
			d := devs[i]
			i = (i + 1) % len(devs)
			if r.send(d, r.clock.sim(time.Now())) {
				break
			}
		}
		next = next.Add(interval)
		if now := time.Now(); now.Sub(next) > time.Second {
			next = now
			r.c.behind.Add(1)
		}
	}
}

// realistic sends each device's readings at its own interval: first within
// the first second (so a fleet is alive at once), then on its grid of
// Interval from the Unix epoch plus its phase, in simulated time.
func (r *runner) realistic(ctx context.Context, devs []*Device) {
	q := make(schedule, 0, len(devs))
	for _, d := range devs {
		jitter := time.Duration(d.unit(saltReading, 0x6669727374) * float64(min(time.Second, time.Duration(float64(d.Interval)/r.clock.speed))))
		at := r.clock.wall0.Add(jitter)
		q = append(q, due{at: at, sim: r.clock.sim(at), d: d})
	}
	heap.Init(&q)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		next := q[0]
		if !sleepUntil(ctx, timer, next.at) {
			return
		}
		r.send(next.d, next.sim)
		sim := next.d.nextReport(next.sim)
		q[0] = due{at: r.clock.wall(sim), sim: sim, d: next.d}
		heap.Fix(&q, 0)
	}
}

// nextReport is the device's first report time after t: on its grid of
// Interval from the Unix epoch, plus its phase, or a scripted event first.
func (d *Device) nextReport(t time.Time) time.Time {
	iv := int64(d.Interval)
	k := floorDiv(t.UnixNano()-int64(d.phase), iv) + 1
	next := time.Unix(0, k*iv+int64(d.phase))
	for _, e := range d.script.events {
		if e.After(t) {
			if e.Before(next) {
				next = e
			}
			break
		}
	}
	return next
}

type due struct {
	at, sim time.Time
	d       *Device
}

type schedule []due

func (s schedule) Len() int           { return len(s) }
func (s schedule) Less(i, j int) bool { return s[i].at.Before(s[j].at) }
func (s schedule) Swap(i, j int)      { s[i], s[j] = s[j], s[i] }
func (s *schedule) Push(x any)        { *s = append(*s, x.(due)) }
func (s *schedule) Pop() any {
	old := *s
	x := old[len(old)-1]
	*s = old[:len(old)-1]
	return x
}

// sleepUntil waits until t; it reports false when ctx is done first.
func sleepUntil(ctx context.Context, timer *time.Timer, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer.Reset(d)
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// Payload is the JSON the device sends for its reading at simulated time t
// when the clock says now, and the number of readings in it: one object
// with its time in "ts" (left out when t is ahead of now: the server stamps
// it), or for a datalogger uploading in batches (FleetOptions.LoggerBatch)
// an array of its last quarter-hour readings up to t (or now, if earlier).
// It is nil while the device is silent.
func (d *Device) Payload(t, now time.Time) ([]byte, int) {
	if d.Silent(t) {
		return nil, 0
	}
	if d.batch > 0 {
		if t.After(now) {
			t = now
		}
		rs := d.Readings(t, d.batch)
		b, _ := json.Marshal(rs)
		return b, len(rs)
	}
	m := d.reading(t)
	if !t.After(now) {
		m[TimestampField] = timestamp(t)
	}
	b, _ := json.Marshal(m)
	return b, 1
}

func (r *runner) snapshot() Snapshot {
	s := Snapshot{
		Elapsed:  time.Since(r.clock.wall0),
		SimTime:  r.clock.sim(time.Now()),
		Sent:     r.c.sent.Load(),
		Readings: r.c.readings.Load(),
		Silent:   r.c.silent.Load(),
		Errors:   r.c.errors.Load(),
	}
	if r.probe != nil {
		s.Probe = r.probe.stats()
	}
	return s
}

func (r *runner) progress(done <-chan struct{}) {
	t := time.NewTicker(r.cfg.ProgressEvery)
	defer t.Stop()
	last := r.snapshot()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		s := r.snapshot()
		if dt := (s.Elapsed - last.Elapsed).Seconds(); dt > 0 {
			s.Rate = float64(s.Sent-last.Sent) / dt
		}
		r.cfg.Progress(s)
		last = s
	}
}

func (r *runner) summary() Summary {
	s := Summary{Snapshot: r.snapshot(), TargetRate: r.cfg.Rate, Latency: r.c.latency.percentiles(), Behind: r.c.behind.Load()}
	if secs := s.Elapsed.Seconds(); secs > 0 {
		s.Rate = float64(s.Sent) / secs
	}
	s.ErrorKinds, s.ErrorSamples = r.c.errorKinds()
	return s
}

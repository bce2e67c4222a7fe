package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/zenne-city/zenne/bench/internal/benchutil"
	"github.com/zenne-city/zenne/internal/alarm"
	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store"
)

// Backtest: cfg.meters WaterMeters with a year of 15-minute flow readings
// each, imported in bulk into the history store (as `zenne import history`
// does), of which every tenth leaks for a while: its flow never drops to
// zero at night. A leak rule (01:00 to 05:00, at most 0.05 m³/h, 3 nights)
// is back-tested over the year; the report checks that it finds exactly
// the leaks, each at the end of its third night, cleared the night after a
// repair.

const (
	every     = 15 * time.Minute
	yearDays  = 365
	leakRule  = `{"id":"leak-bench","kind":"leak","entities":[{"type":"WaterMeter"}],"attribute":"flow","leak":{"from":"01:00","to":"05:00","atMost":0.05,"nights":3}}`
	nightFrom = time.Hour
	nightTo   = 5 * time.Hour
	nights    = 3
)

// year is the year of readings: the last whole calendar year's first 365
// days (UTC), so every run of a given year generates the same data.
func year(now time.Time) (time.Time, time.Time) {
	from := time.Date(now.Year()-1, 1, 1, 0, 0, 0, 0, time.UTC)
	return from, from.AddDate(0, 0, yearDays)
}

func meterID(i int) string { return fmt.Sprintf("urn:ngsi-ld:WaterMeter:b%04d", i) }

// meter is one water meter of the data set; every tenth leaks from
// leakFrom until leakTo (zero: to the end).
type meter struct {
	i                int
	base             float64
	leaking          bool
	leak             float64 // m³/h added while leaking
	leakFrom, leakTo time.Time
}

func newMeter(i int, from time.Time) meter {
	r := rand.New(rand.NewPCG(uint64(i), 0x1ea4))
	m := meter{i: i, base: 0.2 + 0.8*r.Float64()}
	if i%10 == 3 {
		m.leaking = true
		m.leak = 0.08 + 0.3*r.Float64()
		m.leakFrom = from.AddDate(0, 0, 20+r.IntN(yearDays-80)).Add(13 * time.Hour)
		if r.IntN(2) == 0 {
			m.leakTo = m.leakFrom.AddDate(0, 0, 10+r.IntN(40)) // repaired
		}
	}
	return m
}

// readings appends the meter's year of readings (m³/h, 3 decimals): use
// by day, mostly zero at night, plus the leak while it lasts.
func (m meter) readings(recs []store.ImportRecord, attrs []ngsild.Attribute, from time.Time, loc *time.Location, typ, name string) ([]store.ImportRecord, []ngsild.Attribute) {
	r := rand.New(rand.NewPCG(uint64(m.i), 0xf10))
	n := int(yearDays * 24 * time.Hour / every)
	types := []string{typ}
	start := len(attrs)
	for k := range n {
		t := from.Add(time.Duration(k) * every)
		lt := t.In(loc)
		h := float64(lt.Hour()) + float64(lt.Minute())/60
		var v float64
		switch {
		case h < 6 || h >= 23:
			if r.IntN(100) < 8 {
				v = m.base * 0.2 * r.Float64()
			}
		case r.IntN(10) > 0:
			v = m.base * (0.3 + r.Float64()) * (1 + math.Sin((h-6)/17*math.Pi))
		}
		if m.leaking && !t.Before(m.leakFrom) && (m.leakTo.IsZero() || t.Before(m.leakTo)) {
			v += m.leak
		}
		attrs = append(attrs, ngsild.Attribute{Kind: ngsild.Property, Value: math.Round(v*1000) / 1000, ObservedAt: t})
	}
	for k := range n {
		recs = append(recs, store.ImportRecord{EntityID: meterID(m.i), Types: types, Name: name, Attr: &attrs[start+k]})
	}
	return recs, attrs
}

// window is the night window of the local day of d: from 01:00 to 05:00
// on the local clock, also on the days daylight saving time starts or ends.
func window(d time.Time, loc *time.Location) (time.Time, time.Time) {
	t := d.In(loc)
	at := func(h time.Duration) time.Time {
		return time.Date(t.Year(), t.Month(), t.Day(), int(h/time.Hour), int(h%time.Hour/time.Minute), 0, 0, loc)
	}
	return at(nightFrom), at(nightTo)
}

// expected is when the leak rule should open the meter's alert (the end
// of its third whole night of leak) and clear it (the end of the first
// night after the repair; zero if not within the year).
func (m meter) expected(loc *time.Location, to time.Time) (opened, cleared time.Time) {
	n := 0
	for d := m.leakFrom; ; d = d.AddDate(0, 0, 1) {
		if start, end := window(d, loc); !start.Before(m.leakFrom) {
			if n++; n == nights {
				opened = end
				break
			}
		}
	}
	if !m.leakTo.IsZero() {
		for d := m.leakTo; ; d = d.AddDate(0, 0, 1) {
			if start, end := window(d, loc); !start.Before(m.leakTo) {
				if end.Before(to) {
					cleared = end
				}
				break
			}
		}
	}
	return opened, cleared
}

// datasetMark says what an embedded store in -data holds, to reuse it.
type datasetMark struct {
	Meters int       `json:"meters"`
	From   time.Time `json:"from"`
	Rows   int64     `json:"rows"`
}

func backtestScenario(ctx context.Context, cfg *config, dir string, rep *report, out io.Writer) error {
	from, to := year(time.Now())
	loc, err := time.LoadLocation(alarm.DefaultTimezone)
	if err != nil {
		return err
	}
	rows := int64(cfg.meters) * int64(yearDays*24*time.Hour/every)
	fmt.Fprintf(out, "\n## backtest: %d WaterMeters, %d days of %s flow readings (%d rows) from %s, leak rule %s\n",
		cfg.meters, yearDays, every, rows, from.Format(time.DateOnly), leakRule)
	markPath := filepath.Join(dir, "dataset.json")
	want := datasetMark{Meters: cfg.meters, From: from, Rows: rows}
	reuse := false
	if cfg.storeURL == "" && cfg.dataDir != "" {
		var have datasetMark
		if b, err := os.ReadFile(markPath); err == nil && json.Unmarshal(b, &have) == nil && have.Meters == want.Meters && have.From.Equal(want.From) {
			reuse = true
		}
	}
	if cfg.storeURL == "" && !reuse {
		os.RemoveAll(dir)
	}
	s, err := startServer(ctx, cfg, dir, "backtest")
	if err != nil {
		return err
	}
	defer s.close()
	core := s.app.Resolver.Core()
	typ, name := core.ExpandTerm("WaterMeter"), core.ExpandTerm("flow")
	meters := make([]meter, cfg.meters)
	for i := range meters {
		meters[i] = newMeter(i, from)
	}

	if reuse {
		fmt.Fprintf(out, "data   reusing the %d meters' year imported in %s\n", cfg.meters, dir)
	} else {
		imp, ok := s.app.Store.(store.HistoryImporter)
		if !ok {
			return errors.New("the store cannot import history in bulk")
		}
		if err := s.loadMeters(ctx, cfg.meters); err != nil {
			return err
		}
		m := benchutil.StartCPU()
		start := time.Now()
		var gen time.Duration
		var recs []store.ImportRecord
		var attrs []ngsild.Attribute
		for _, mt := range meters {
			g := time.Now()
			recs, attrs = mt.readings(recs[:0], attrs[:0], from, loc, typ, name)
			gen += time.Since(g)
			if err := imp.ImportHistory(ctx, s.tenant, recs); err != nil {
				return fmt.Errorf("import %s: %w", meterID(mt.i), err)
			}
		}
		d := time.Since(start)
		fmt.Fprintf(out, "import %d rows in %s (%.0f rows/s; generating them: %s), ImportHistory one meter a call (%s)\n",
			rows, d.Round(time.Millisecond), float64(rows)/d.Seconds(), gen.Round(time.Millisecond), m)
		rep.add(fmt.Sprintf("import a year of 15-minute flow readings of %d meters (store.HistoryImporter)", cfg.meters),
			fmt.Sprintf("%d rows in %s (%.0f rows/s)", rows, d.Round(time.Millisecond), float64(rows)/d.Seconds()), "—", "—", "—", "—")
		if cfg.dataDir != "" && cfg.storeURL == "" {
			b, _ := json.Marshal(want)
			if err := os.WriteFile(markPath, b, 0o644); err != nil {
				return err
			}
		}
	}

	var body map[string]any
	if err := json.Unmarshal([]byte(leakRule), &body); err != nil {
		return err
	}
	var reps []*alarm.Report
	if err := profiled(cfg, "backtest", out, func() error {
		for run := range cfg.backtestRuns {
			b := maps(body)
			b["@context"] = coreContext
			r, err := s.app.Alarms.Backtest(ctx, s.tenant, b, from, to)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "run %d  %s: %d entities, %d readings replayed, %d firings\n", run+1, r.Elapsed.Round(time.Millisecond), r.Entities, r.Readings, len(r.Firings))
			reps = append(reps, r)
		}
		return nil
	}); err != nil {
		return err
	}
	chk := check(meters, reps[len(reps)-1], loc, to)
	fmt.Fprintf(out, "check  %s\n", chk)
	for _, p := range chk.problems {
		fmt.Fprintf(out, "       %s\n", p)
	}
	rep.backtest(cfg, reps, rows, chk)
	for _, l := range s.logs.summary() {
		rep.note("backtest: zenne logged " + l)
	}
	return nil
}

func maps(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// loadMeters stores the meters' current state (a flow now) by batch upsert.
func (s *server) loadMeters(ctx context.Context, n int) error {
	for from := 0; from < n; from += 1000 {
		b := []byte{'['}
		for i := from; i < min(from+1000, n); i++ {
			if i > from {
				b = append(b, ',')
			}
			r := rand.New(rand.NewPCG(uint64(i), 0x3e7))
			lon, lat := benchutil.RandomPoint(r)
			b = fmt.Appendf(b, `{"id":%q,"type":"WaterMeter","flow":{"type":"Property","value":0,"unitCode":"MQH"},`+
				`"location":{"type":"GeoProperty","value":{"type":"Point","coordinates":[%.6f,%.6f]}}}`, meterID(i), lon, lat)
		}
		b = append(b, ']')
		if _, _, err := s.do(s.client, http.MethodPost, "/ngsi-ld/v1/entityOperations/upsert", b); err != nil {
			return fmt.Errorf("load meters: %w", err)
		}
	}
	return ctx.Err()
}

// leakCheck compares a back-test's firings with the leaks generated.
type leakCheck struct {
	leaks, found, falseAlarms, repaired, clearedRight int
	problems                                          []string
}

func (c leakCheck) ok() bool {
	return c.found == c.leaks && c.falseAlarms == 0 && c.clearedRight == c.repaired
}

func (c leakCheck) String() string {
	return fmt.Sprintf("leaks found at the end of their third night: %d of %d; repaired leaks cleared the night after: %d of %d; false alarms: %d",
		c.found, c.leaks, c.clearedRight, c.repaired, c.falseAlarms)
}

func check(meters []meter, r *alarm.Report, loc *time.Location, to time.Time) leakCheck {
	var c leakCheck
	byEntity := map[string][]alarm.Firing{}
	for _, f := range r.Firings {
		byEntity[f.Entity] = append(byEntity[f.Entity], f)
	}
	for _, m := range meters {
		fs := byEntity[meterID(m.i)]
		if !m.leaking {
			if len(fs) > 0 {
				c.falseAlarms += len(fs)
				c.problems = append(c.problems, fmt.Sprintf("%s does not leak but fired %d times, first at %s", meterID(m.i), len(fs), fs[0].Opened.Format(time.RFC3339)))
			}
			continue
		}
		c.leaks++
		opened, cleared := m.expected(loc, to)
		if !cleared.IsZero() {
			c.repaired++
		}
		switch {
		case len(fs) == 0:
			c.problems = append(c.problems, fmt.Sprintf("%s leaks from %s but did not fire (expected at %s)", meterID(m.i), m.leakFrom.Format(time.RFC3339), opened.Format(time.RFC3339)))
			continue
		case len(fs) > 1:
			c.falseAlarms += len(fs) - 1
			c.problems = append(c.problems, fmt.Sprintf("%s leaks once but fired %d times", meterID(m.i), len(fs)))
		}
		f := fs[0]
		if f.Opened.Equal(opened) {
			c.found++
		} else {
			c.problems = append(c.problems, fmt.Sprintf("%s leaks from %s: fired at %s, expected at %s", meterID(m.i), m.leakFrom.Format(time.RFC3339), f.Opened.Format(time.RFC3339), opened.Format(time.RFC3339)))
		}
		if !cleared.IsZero() {
			if f.Cleared.Equal(cleared) {
				c.clearedRight++
			} else {
				c.problems = append(c.problems, fmt.Sprintf("%s repaired at %s: cleared at %s, expected at %s", meterID(m.i), m.leakTo.Format(time.RFC3339), f.Cleared.Format(time.RFC3339), cleared.Format(time.RFC3339)))
			}
		} else if !f.Cleared.IsZero() {
			c.problems = append(c.problems, fmt.Sprintf("%s leaks to the end but its alert cleared at %s", meterID(m.i), f.Cleared.Format(time.RFC3339)))
		}
	}
	slices.Sort(c.problems)
	return c
}

// median of the runs' elapsed times.
func medianElapsed(reps []*alarm.Report) time.Duration {
	d := make([]time.Duration, len(reps))
	for i, r := range reps {
		d[i] = r.Elapsed
	}
	slices.Sort(d)
	return d[len(d)/2]
}

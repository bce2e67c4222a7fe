package alarm

import (
	"context"
	"slices"
	"sort"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/ngsild/temporal"
)

// Report is what a back-test found: when the rule would have fired over
// stored history.
type Report struct {
	Rule     string    `json:"rule"`
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	Entities int       `json:"entities"` // entities selected that have history of the attribute
	Readings int64     `json:"readings"` // readings replayed
	Firings  []Firing  `json:"firings"`  // in order of opening
	// Truncated is set when more firings happened than the report lists
	// (MaxFirings).
	Truncated bool          `json:"truncated,omitempty"`
	Elapsed   time.Duration `json:"-"`
}

// Firing is one alert a back-test would have opened.
type Firing struct {
	Entity  string    `json:"entity"`
	Opened  time.Time `json:"opened"`
	Cleared time.Time `json:"cleared,omitzero"` // zero: still active at To
	Value   float64   `json:"value"`            // the value that opened it
}

// MaxFirings bounds a back-test report.
const MaxFirings = 10000

// Backtest runs a rule (a body as for CreateRule, stored or not) over the
// tenant's stored history between from and to and reports when it would
// have fired, with the same evaluation as live. Entities are those the
// rule selects now. Readings replay through Observe with Tick between
// them; leak rules judge each night; anomaly rules judge each whole day
// against the same weekday of earlier weeks (live, they judge the day so
// far every few minutes, so they may fire earlier in the day). Nothing is
// written.
func (s *Service) Backtest(ctx context.Context, tenant string, body map[string]any, from, to time.Time) (*Report, error) {
	start := time.Now()
	r, err := s.parse(ctx, body)
	if err != nil {
		return nil, err
	}
	if !from.Before(to) {
		return nil, ngsild.Errorf(ngsild.BadRequestData, "from %s is not before to %s", ngsild.FormatTime(from), ngsild.FormatTime(to))
	}
	ids, err := s.selected(ctx, tenant, r)
	if err != nil {
		return nil, err
	}
	rep := &Report{Rule: r.ID, From: from.UTC(), To: to.UTC()}
	bt := backtest{s: s, r: r, tenant: tenant, rep: rep}
	for page := range slices.Chunk(ids, pageIDs) {
		if err := bt.page(ctx, page, from, to); err != nil {
			return nil, err
		}
	}
	sort.SliceStable(rep.Firings, func(i, j int) bool { return rep.Firings[i].Opened.Before(rep.Firings[j].Opened) })
	if len(rep.Firings) > MaxFirings {
		rep.Firings, rep.Truncated = rep.Firings[:MaxFirings], true
	}
	if rep.Firings == nil {
		rep.Firings = []Firing{}
	}
	rep.Elapsed = time.Since(start)
	return rep, nil
}

type backtest struct {
	s      *Service
	r      *Rule
	tenant string
	rep    *Report
}

// span is how much history one read covers: a month of 15-minute readings
// of a page of entities is about 300,000 instances.
const span = 31 * 24 * time.Hour

// page back-tests a page of entities, reading their history a month at a
// time.
func (b *backtest) page(ctx context.Context, ids []string, from, to time.Time) error {
	r := b.r
	readFrom := from
	if r.Kind == Anomaly {
		readFrom = from.AddDate(0, 0, -7*r.Anomaly.Weeks)
	}
	states := make([]*State, len(ids))
	open := make([]int, len(ids)) // index of the entity's open firing + 1
	days := make([]map[time.Time]*dayAgg, len(ids))
	for i := range ids {
		states[i] = &State{}
		days[i] = map[time.Time]*dayAgg{}
	}
	record := func(i int, o Outcome) {
		switch o.Step {
		case Open:
			b.rep.Firings = append(b.rep.Firings, Firing{Entity: ids[i], Opened: o.At.UTC(), Value: round(o.Value)})
			open[i] = len(b.rep.Firings)
		case Clear:
			if open[i] > 0 {
				b.rep.Firings[open[i]-1].Cleared = o.At.UTC()
				open[i] = 0
			}
		}
	}
	seen := make([]bool, len(ids))
	for t := readFrom; t.Before(to); t = t.Add(span) {
		end := t.Add(span)
		if end.After(to) {
			end = to
		}
		got, err := b.read(ctx, ids, t, end)
		if err != nil {
			return err
		}
		for i, id := range ids {
			ss := got[id]
			if len(ss) > 0 {
				seen[i] = true
			}
			b.rep.Readings += int64(len(ss))
			switch r.Kind {
			case Leak, Anomaly:
				for _, x := range ss {
					b.bucket(days[i], x)
				}
			default:
				st := states[i]
				for _, x := range ss {
					if o := r.Tick(st, x.t); o.Step != None {
						record(i, o)
					}
					record(i, r.Observe(st, x.v, x.t))
				}
			}
		}
	}
	for i := range ids {
		if !seen[i] {
			continue
		}
		b.rep.Entities++
		switch r.Kind {
		case Leak:
			for _, d := range sortedDays(days[i]) {
				if !d.key.Before(from) {
					record(i, r.Night(states[i], d.key, d.low, true))
				}
			}
		case Anomaly:
			for _, d := range sortedDays(days[i]) {
				if d.key.Before(from) {
					continue
				}
				var usual []float64
				for k := 1; k <= r.Anomaly.Weeks; k++ {
					if u := days[i][d.key.AddDate(0, 0, -7*k)]; u != nil {
						usual = append(usual, u.value(r.Anomaly.Method))
					}
				}
				at := d.key.AddDate(0, 0, 1)
				if at.After(to) {
					at = to
				}
				record(i, r.Day(states[i], at, d.value(r.Anomaly.Method), usual))
			}
		default:
			record(i, r.Tick(states[i], to))
		}
	}
	return nil
}

// read reads the rule's readings (silence without an attribute: every
// update) of ids between from and to.
func (b *backtest) read(ctx context.Context, ids []string, from, to time.Time) (map[string][]sample, error) {
	if b.r.Kind != Silence || b.r.Attribute != "" {
		return b.s.readings(ctx, b.tenant, ids, b.r, from, to)
	}
	hs, err := b.s.st.EntityHistories(ctx, b.tenant, ids, nil, &temporal.Query{Rel: temporal.RelBetween, At: from, EndAt: to})
	if err != nil {
		return nil, err
	}
	out := make(map[string][]sample, len(ids))
	for i, h := range hs {
		if h == nil {
			continue
		}
		var ss []sample
		for _, insts := range h.Attrs {
			for _, in := range insts {
				ss = append(ss, sample{t: instantOf(in.Attr)})
			}
		}
		sort.Slice(ss, func(a, b int) bool { return ss[a].t.Before(ss[b].t) })
		out[ids[i]] = slices.CompactFunc(ss, func(a, b sample) bool { return a.t.Equal(b.t) })
	}
	return out, nil
}

// dayAgg is what a back-test keeps of one night (leak: keyed by the
// window's end) or one local day (anomaly: keyed by its midnight).
type dayAgg struct {
	key           time.Time
	n             int
	sum, low, top float64
}

func (d *dayAgg) value(method string) float64 {
	switch method {
	case "avg":
		return d.sum / float64(d.n)
	case "max":
		return d.top
	case "delta":
		return d.top - d.low
	}
	return d.sum
}

// bucket adds a reading to its night (leak) or day (anomaly).
func (b *backtest) bucket(m map[time.Time]*dayAgg, x sample) {
	r := b.r
	var key time.Time
	if r.Kind == Leak {
		// The window that holds x, if any: the next window end after x.
		end := r.Leak.windowEnd(x.t, r.Location)
		if end.Before(x.t) {
			end = end.AddDate(0, 0, 1)
		}
		if start, _ := r.Leak.window(end, r.Location); x.t.Before(start) {
			return
		}
		key = end
	} else {
		t := x.t.In(r.Location)
		key = time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, r.Location)
	}
	d := m[key]
	if d == nil {
		d = &dayAgg{key: key, low: x.v, top: x.v}
		m[key] = d
	}
	d.n++
	d.sum += x.v
	d.low, d.top = min(d.low, x.v), max(d.top, x.v)
}

func sortedDays(m map[time.Time]*dayAgg) []*dayAgg {
	out := make([]*dayAgg, 0, len(m))
	for _, d := range m {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key.Before(out[j].key) })
	return out
}

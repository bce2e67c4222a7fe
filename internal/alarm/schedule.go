package alarm

import (
	"context"
	"slices"
	"sort"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/ngsild/temporal"
)

// Leak and anomaly rules are judged on the clock from the history store:
// a night window once it has ended, a day so far every few minutes.
// Silence rules learn each entity's usual interval from its history when
// they start, so a device that fell silent before the rule existed is
// noticed too.

// graceAfterNight lets the readings of a night window's last minutes
// arrive before the night is judged.
const graceAfterNight = 2 * time.Minute

// pageIDs is how many entities one history read covers.
const pageIDs = 100

// sample is one reading of a rule's attribute.
type sample struct {
	t time.Time
	v float64
}

// schedule runs the clock-based checks of due rules until ctx ends.
func (s *Service) schedule(ctx context.Context) {
	t := time.NewTicker(s.opts.Tick)
	defer t.Stop()
	for {
		now := s.opts.Now()
		s.mu.Lock()
		var due []*running
		for _, rt := range s.rules { // every second: no sorting of thousands of rules
			r := rt.rule
			if rt.removed || r.Paused || now.Before(rt.next) {
				continue
			}
			if r.Kind == Leak || r.Kind == Anomaly || r.Kind == Silence {
				due = append(due, rt)
			}
		}
		s.mu.Unlock()
		for _, rt := range due {
			if ctx.Err() != nil {
				return
			}
			next, err := s.check(ctx, rt, now)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				s.log.Warn("alarms: a scheduled check failed; retrying in a minute", "rule", rt.rule.ID, "err", err)
				next = now.Add(time.Minute)
			}
			s.mu.Lock()
			rt.next, rt.dirty = next, true
			s.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// check runs one rule's scheduled check at now and returns when the next
// one is due.
func (s *Service) check(ctx context.Context, rt *running, now time.Time) (time.Time, error) {
	r := rt.rule
	ids, err := s.selected(ctx, rt.tenant, r)
	if err != nil {
		return time.Time{}, err
	}
	var ps []pending
	switch r.Kind {
	case Leak:
		ps, err = s.checkLeak(ctx, rt, ids, now)
	case Anomaly:
		ps, err = s.checkAnomaly(ctx, rt, ids, now)
	case Silence:
		err = s.seedSilence(ctx, rt, ids)
	}
	if err != nil {
		return time.Time{}, err
	}
	if rest := s.write(ctx, ps); len(rest) > 0 {
		return now.Add(time.Minute), nil // the states say what was decided; the alerts are written again
	}
	switch r.Kind {
	case Leak:
		return r.Leak.windowEnd(now, r.Location).AddDate(0, 0, 1).Add(graceAfterNight), nil
	case Anomaly:
		return now.Add(r.Anomaly.Every), nil
	}
	return now.Add(time.Hour), nil // silence: entities new since are seeded by their changes
}

// selected lists the ids of the entities a rule selects now.
func (s *Service) selected(ctx context.Context, tenant string, r *Rule) ([]string, error) {
	q := r.Selection()
	if r.Attribute != "" {
		q.Attrs = []string{r.Attribute}
	}
	var ids []string
	for q.Limit = 1000; ; q.Offset += q.Limit {
		res, err := s.broker.Query(ctx, tenant, q)
		if err != nil {
			if ngsild.IsType(err, ngsild.NonexistentTenant) {
				return nil, nil
			}
			return nil, err
		}
		for _, e := range res.Entities {
			ids = append(ids, e.ID)
		}
		if len(res.Entities) < q.Limit {
			return ids, nil
		}
	}
}

// windowEnd is the end of the latest night window that ended by now.
// Windows are local wall-clock times, also on the days clocks change.
func (l *LeakSpec) windowEnd(now time.Time, loc *time.Location) time.Time {
	t := now.In(loc)
	end := atTime(t.Year(), t.Month(), t.Day(), l.To, loc)
	if end.After(now) {
		end = atTime(t.Year(), t.Month(), t.Day()-1, l.To, loc)
	}
	return end
}

// window is the night window ending at end.
func (l *LeakSpec) window(end time.Time, loc *time.Location) (time.Time, time.Time) {
	t := end.In(loc)
	day := t.Day()
	if l.From > l.To {
		day-- // the window starts the evening before
	}
	return atTime(t.Year(), t.Month(), day, l.From, loc), end
}

// atTime is the local time of day tod on a date (normalised as time.Date does).
func atTime(y int, m time.Month, d int, tod time.Duration, loc *time.Location) time.Time {
	return time.Date(y, m, d, int(tod/time.Hour), int(tod%time.Hour/time.Minute), 0, 0, loc)
}

// checkLeak judges the nights that ended since each entity's last judged
// one (at most the rule's number of nights, for an entity new to it).
func (s *Service) checkLeak(ctx context.Context, rt *running, ids []string, now time.Time) ([]pending, error) {
	r := rt.rule
	last := r.Leak.windowEnd(now.Add(-graceAfterNight), r.Location)
	var out []pending
	for page := range slices.Chunk(ids, pageIDs) {
		// The oldest night any entity of the page still needs.
		s.mu.Lock()
		first := last
		for _, id := range page {
			from := last.AddDate(0, 0, -(r.Leak.Nights - 1))
			if st := rt.states[id]; st != nil && !st.Checked.IsZero() && st.Checked.After(from) {
				from = st.Checked.In(r.Location).AddDate(0, 0, 1) // the same wall time the next day
			}
			if from.Before(first) {
				first = from
			}
		}
		s.mu.Unlock()
		for end := first; !end.After(last); end = end.AddDate(0, 0, 1) {
			from, to := r.Leak.window(end, r.Location)
			got, err := s.readings(ctx, rt.tenant, page, r, from, to)
			if err != nil {
				return nil, err
			}
			s.mu.Lock()
			for _, id := range page {
				st := rt.states[id]
				if st == nil {
					st = &State{}
					rt.states[id] = st
				}
				low, has := lowest(got[id])
				if o := r.Night(st, end, low, has); o.Step != None {
					out = append(out, s.decided(rt, id, st, o, nil))
				}
				rt.dirty = true
			}
			s.mu.Unlock()
		}
	}
	return out, nil
}

func lowest(ss []sample) (float64, bool) {
	if len(ss) == 0 {
		return 0, false
	}
	low := ss[0].v
	for _, x := range ss[1:] {
		low = min(low, x.v)
	}
	return low, true
}

// checkAnomaly compares each entity's day so far with the same hours of
// the same weekday in earlier weeks.
func (s *Service) checkAnomaly(ctx context.Context, rt *running, ids []string, now time.Time) ([]pending, error) {
	r := rt.rule
	a := r.Anomaly
	t := now.In(r.Location)
	midnight := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, r.Location)
	var out []pending
	for page := range slices.Chunk(ids, pageIDs) {
		today, err := s.readings(ctx, rt.tenant, page, r, midnight, now)
		if err != nil {
			return nil, err
		}
		earlier := make([]map[string][]sample, a.Weeks)
		for k := 1; k <= a.Weeks; k++ {
			if earlier[k-1], err = s.readings(ctx, rt.tenant, page, r, midnight.AddDate(0, 0, -7*k), t.AddDate(0, 0, -7*k)); err != nil {
				return nil, err
			}
		}
		s.mu.Lock()
		for _, id := range page {
			v, ok := aggregate(a.Method, today[id])
			if !ok {
				continue
			}
			var usual []float64
			for _, w := range earlier {
				if u, ok := aggregate(a.Method, w[id]); ok {
					usual = append(usual, u)
				}
			}
			st := rt.states[id]
			if st == nil {
				st = &State{}
				rt.states[id] = st
			}
			rt.dirty = true
			rt.status.Evaluations++
			if o := r.Day(st, now, v, usual); o.Step != None {
				if o.Step == Stay && now.Sub(st.Reported) < s.opts.ReportEvery {
					continue
				}
				out = append(out, s.decided(rt, id, st, o, nil))
			}
		}
		s.mu.Unlock()
	}
	return out, nil
}

// aggregate applies an anomaly rule's method to a window's samples.
func aggregate(method string, ss []sample) (float64, bool) {
	if len(ss) == 0 {
		return 0, false
	}
	var sum float64
	lo, hi := ss[0].v, ss[0].v
	for _, x := range ss {
		sum += x.v
		lo, hi = min(lo, x.v), max(hi, x.v)
	}
	switch method {
	case "avg":
		return sum / float64(len(ss)), true
	case "max":
		return hi, true
	case "delta":
		return hi - lo, true
	}
	return sum, true
}

// seedSilence gives the entities of a silence rule whose usual interval is
// not known yet (no state, or fewer than two intervals seen live) their
// last updates and usual interval from their history.
func (s *Service) seedSilence(ctx context.Context, rt *running, ids []string) error {
	r := rt.rule
	s.mu.Lock()
	var todo []string
	for _, id := range ids {
		if st := rt.states[id]; st == nil || (st.Intervals < 2 && !st.Firing) {
			todo = append(todo, id)
		}
	}
	s.mu.Unlock()
	var attrs []string
	if r.Attribute != "" {
		attrs = []string{r.Attribute}
	}
	for page := range slices.Chunk(todo, pageIDs) {
		hs, err := s.st.EntityHistories(ctx, rt.tenant, page, attrs, &temporal.Query{LastN: 6})
		if err != nil {
			return err
		}
		s.mu.Lock()
		for i, h := range hs {
			cur := rt.states[page[i]]
			if h == nil || (cur != nil && (cur.Intervals >= 2 || cur.Firing)) {
				continue // learnt live meanwhile
			}
			var times []time.Time
			for _, insts := range h.Attrs {
				for _, in := range insts {
					times = append(times, instantOf(in.Attr))
				}
			}
			if cur != nil && !cur.At.IsZero() {
				times = append(times, cur.At) // what was seen live, maybe a repeat of the last recorded
			}
			sort.Slice(times, func(a, b int) bool { return times[a].Before(times[b]) })
			times = slices.CompactFunc(times, func(a, b time.Time) bool { return a.Equal(b) })
			if len(times) == 0 {
				continue
			}
			st := &State{At: times[len(times)-1]}
			if cur != nil {
				st.Seq = cur.Seq
			}
			for j := 1; j < len(times); j++ {
				iv := times[j].Sub(times[j-1]).Seconds()
				if st.Intervals == 0 {
					st.Interval = iv
				} else {
					st.Interval = 0.8*st.Interval + 0.2*iv
				}
				st.Intervals++
			}
			rt.states[page[i]] = st
			rt.dirty = true
		}
		s.mu.Unlock()
	}
	return nil
}

// instantOf is a recorded instance's time: when it was observed, else when
// it was recorded.
func instantOf(a *ngsild.Attribute) time.Time {
	if !a.ObservedAt.IsZero() {
		return a.ObservedAt
	}
	return a.CreatedAt
}

// readings reads a rule's attribute of entities ids between from and to
// from the history store.
func (s *Service) readings(ctx context.Context, tenant string, ids []string, r *Rule, from, to time.Time) (map[string][]sample, error) {
	hs, err := s.st.EntityHistories(ctx, tenant, ids, []string{r.Attribute}, &temporal.Query{Rel: temporal.RelBetween, At: from, EndAt: to})
	if err != nil {
		return nil, err
	}
	out := make(map[string][]sample, len(ids))
	for i, h := range hs {
		if h == nil {
			continue
		}
		for _, in := range h.Attrs[r.Attribute] {
			if in.Attr.DatasetID != r.DatasetID {
				continue
			}
			if v, ok := number(in.Attr.Value); ok {
				out[ids[i]] = append(out[ids[i]], sample{instantOf(in.Attr), v})
			}
		}
	}
	return out, nil
}

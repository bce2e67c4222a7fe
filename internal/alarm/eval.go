package alarm

import (
	"math"
	"time"
)

// The evaluation of a rule on one entity is a small state machine over
// readings and the passing of time, with no I/O, so that live evaluation
// and back-tests run the very same code.

// State is what a rule remembers about one entity. It is saved with the
// rule's other states, so a restart resumes where evaluation was.
type State struct {
	// Seq is the last change applied: a replay after a restart skips it.
	Seq   uint64    `json:"seq,omitempty"`
	Value float64   `json:"v,omitempty"` // the last reading
	At    time.Time `json:"at,omitzero"` // its time
	// Since is when the value crossed a threshold rule's bound (zero:
	// within bounds).
	Since  time.Time `json:"since,omitzero"`
	Firing bool      `json:"firing,omitempty"`
	// Alert is the open alert's id, Opened when it opened, Reported when
	// it was last updated.
	Alert    string    `json:"alert,omitempty"`
	Opened   time.Time `json:"opened,omitzero"`
	Reported time.Time `json:"reported,omitzero"`
	// Hits are a count rule's latest out-of-range readings (at most
	// moreThan+1).
	Hits []time.Time `json:"hits,omitempty"`
	// Interval is a silence rule's usual time between updates (seconds, a
	// moving average of Intervals).
	Interval  float64 `json:"iv,omitempty"`
	Intervals int     `json:"ivn,omitempty"`
	// Nights is how many nights running a leak rule saw flow; Checked is
	// the end of the last night window (leak) or the last check (anomaly).
	Nights  int       `json:"nights,omitempty"`
	Checked time.Time `json:"checked,omitzero"`
}

// Step is what one evaluation decided.
type Step int

const (
	None  Step = iota // nothing to report
	Open              // the condition began: open an alert
	Stay              // the condition goes on: update the alert
	Clear             // the condition ended: clear the alert
)

// Outcome is an evaluation's decision with what the alert reports.
type Outcome struct {
	Step  Step
	At    time.Time // when the condition began, went on or ended
	Value float64   // the value that decided
	// Bound is what the value was compared with (threshold, usual range,
	// silence limit in seconds).
	Bound float64
}

func (st *State) decide(beyond bool, at time.Time, v, bound float64) Outcome {
	switch {
	case beyond && !st.Firing:
		st.Firing = true
		return Outcome{Step: Open, At: at, Value: v, Bound: bound}
	case beyond:
		return Outcome{Step: Stay, At: at, Value: v, Bound: bound}
	case st.Firing:
		st.Firing = false
		return Outcome{Step: Clear, At: at, Value: v, Bound: bound}
	}
	return Outcome{}
}

// Observe evaluates a reading v at time t of the rule's attribute (for a
// silence rule: any update) and updates st. Readings older than the last
// one are ignored.
func (r *Rule) Observe(st *State, v float64, t time.Time) Outcome {
	if !st.At.IsZero() && t.Before(st.At) {
		return Outcome{}
	}
	prevV, prevT := st.Value, st.At
	st.Value, st.At = v, t
	switch r.Kind {
	case Threshold:
		return r.observeThreshold(st, v, t)
	case Rate:
		if prevT.IsZero() || !t.After(prevT) {
			return Outcome{}
		}
		s := r.Rate
		rate := (v - prevV) / t.Sub(prevT).Seconds() * s.Per.Seconds()
		switch {
		case s.Above != nil && rate > *s.Above:
			return st.decide(true, t, rate, *s.Above)
		case s.Below != nil && rate < *s.Below:
			return st.decide(true, t, rate, *s.Below)
		}
		return st.decide(false, t, rate, 0)
	case Count:
		s := r.Count
		if (s.Above != nil && v > *s.Above) || (s.Below != nil && v < *s.Below) {
			st.Hits = append(st.Hits, t)
			if len(st.Hits) > s.MoreThan+1 {
				st.Hits = append(st.Hits[:0], st.Hits[len(st.Hits)-s.MoreThan-1:]...)
			}
		}
		return r.countNow(st, t, v)
	case Silence:
		if !prevT.IsZero() && t.After(prevT) {
			iv := t.Sub(prevT).Seconds()
			if st.Intervals == 0 {
				st.Interval = iv
			} else {
				st.Interval = 0.8*st.Interval + 0.2*iv
			}
			st.Intervals++
		}
		if st.Firing {
			st.Firing = false
			return Outcome{Step: Clear, At: t, Value: t.Sub(prevT).Seconds()}
		}
	}
	return Outcome{}
}

func (r *Rule) observeThreshold(st *State, v float64, t time.Time) Outcome {
	s := r.Threshold
	var beyond, cleared bool
	var bound float64
	if s.Above != nil {
		bound = *s.Above
		beyond = v > *s.Above
		cleared = v < *s.ClearBelow || (*s.ClearBelow == *s.Above && !beyond)
	} else {
		bound = *s.Below
		beyond = v < *s.Below
		cleared = v > *s.ClearAbove || (*s.ClearAbove == *s.Below && !beyond)
	}
	if st.Firing {
		if cleared {
			st.Since = time.Time{}
			return st.decide(false, t, v, bound)
		}
		return Outcome{Step: Stay, At: t, Value: v, Bound: bound}
	}
	if !beyond {
		st.Since = time.Time{}
		return Outcome{}
	}
	if st.Since.IsZero() {
		st.Since = t
	}
	if t.Sub(st.Since) >= s.For {
		return st.decide(true, t, v, bound)
	}
	return Outcome{}
}

// countNow decides a count rule at time t from the hits within its window.
func (r *Rule) countNow(st *State, t time.Time, v float64) Outcome {
	s := r.Count
	from := t.Add(-s.Within)
	i := 0
	for i < len(st.Hits) && !st.Hits[i].After(from) {
		i++
	}
	st.Hits = st.Hits[i:]
	if len(st.Hits) == 0 {
		st.Hits = nil
	}
	return st.decide(len(st.Hits) > s.MoreThan, t, v, float64(s.MoreThan))
}

// Tick evaluates the passing of time up to now: a threshold held for its
// duration, a count window sliding past old readings, an entity falling
// silent. Readings come through Observe; Tick never sees a value.
func (r *Rule) Tick(st *State, now time.Time) Outcome {
	if st.At.IsZero() {
		return Outcome{}
	}
	switch r.Kind {
	case Threshold:
		if !st.Firing && !st.Since.IsZero() {
			if at := st.Since.Add(r.Threshold.For); !now.Before(at) {
				bound := r.Threshold.Above
				if bound == nil {
					bound = r.Threshold.Below
				}
				return st.decide(true, at, st.Value, *bound)
			}
		}
	case Count:
		if st.Firing {
			if o := r.countNow(st, now, st.Value); o.Step == Clear {
				return o // readings report while it lasts
			}
		}
	case Silence:
		limit, ok := r.silenceLimit(st)
		if ok && !st.Firing && now.Sub(st.At) > limit {
			st.Firing = true
			return Outcome{Step: Open, At: st.At.Add(limit), Value: now.Sub(st.At).Seconds(), Bound: limit.Seconds()}
		}
	}
	return Outcome{}
}

// silenceLimit is how long st's entity may stay quiet; ok is false while
// its usual interval is not known yet (fewer than two intervals seen).
func (r *Rule) silenceLimit(st *State) (time.Duration, bool) {
	s := r.Silence
	if s.After > 0 {
		return s.After, true
	}
	if st.Intervals < 2 {
		return 0, false
	}
	return max(s.AtLeast, time.Duration(s.Factor*st.Interval*float64(time.Second))), true
}

// Night evaluates a leak rule's night window ending at end, in which the
// lowest reading was low (hasData false: no reading in the window, which
// neither counts nor breaks a run).
func (r *Rule) Night(st *State, end time.Time, low float64, hasData bool) Outcome {
	if !end.After(st.Checked) {
		return Outcome{}
	}
	st.Checked = end
	if !hasData {
		return Outcome{}
	}
	s := r.Leak
	st.Value, st.At = low, end
	if low > s.AtMost {
		st.Nights++
	} else {
		st.Nights = 0
	}
	if !st.Firing && st.Nights < s.Nights {
		return Outcome{}
	}
	return st.decide(st.Nights >= s.Nights, end, low, s.AtMost)
}

// Day evaluates an anomaly rule at time at: today is the aggregate of the
// day so far, usual the same aggregate at the same time of day on the same
// weekday of earlier weeks (those with data). With fewer than two earlier
// weeks nothing is decided.
func (r *Rule) Day(st *State, at time.Time, today float64, usual []float64) Outcome {
	st.Checked = at
	st.Value, st.At = today, at
	if len(usual) < 2 {
		return Outcome{}
	}
	bound := UsualBound(r.Anomaly, usual)
	return st.decide(today > bound, at, today, bound)
}

// UsualBound is the top of the usual range: the mean of earlier weeks plus
// sigma standard deviations, and at least minRatio times the mean.
func UsualBound(s *AnomalySpec, usual []float64) float64 {
	var sum, sq float64
	for _, u := range usual {
		sum += u
	}
	mean := sum / float64(len(usual))
	for _, u := range usual {
		sq += (u - mean) * (u - mean)
	}
	sd := math.Sqrt(sq / float64(len(usual)-1))
	return max(mean+s.Sigma*sd, mean*s.MinRatio)
}

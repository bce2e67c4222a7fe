package benchutil

import (
	"slices"
	"time"
)

// Stats summarises one timed run of operations.
type Stats struct {
	Errs     int
	FirstErr error
	Elapsed  time.Duration
	Lat      []time.Duration // of the successful operations, sorted
}

// Ops is how many operations succeeded.
func (s *Stats) Ops() int { return len(s.Lat) }

// Rate is the successful operations per second.
func (s *Stats) Rate() float64 { return float64(s.Ops()) / s.Elapsed.Seconds() }

// Pct is the p-th percentile latency (p in [0, 100]).
func (s *Stats) Pct(p float64) time.Duration {
	if len(s.Lat) == 0 {
		return 0
	}
	return s.Lat[int(p/100*float64(len(s.Lat)-1))]
}

// WorkerResult is what one worker measured; only its goroutine writes it.
type WorkerResult struct {
	Lat      []time.Duration
	Errs     int
	FirstErr error
}

// Add records an operation started at t0 that ended now with err.
func (r *WorkerResult) Add(t0 time.Time, err error) {
	if err == nil {
		r.Lat = append(r.Lat, time.Since(t0))
		return
	}
	r.Errs++
	if r.FirstErr == nil {
		r.FirstErr = err
	}
}

// Merge sums the workers' results of a run that lasted elapsed.
func Merge(elapsed time.Duration, results []WorkerResult) Stats {
	s := Stats{Elapsed: elapsed}
	for _, r := range results {
		s.Lat = append(s.Lat, r.Lat...)
		s.Errs += r.Errs
		if s.FirstErr == nil {
			s.FirstErr = r.FirstErr
		}
	}
	slices.Sort(s.Lat)
	return s
}

package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// stats summarises one timed run.
type stats struct {
	errs     int
	firstErr error
	elapsed  time.Duration
	lat      []time.Duration // sorted
}

func (s *stats) ops() int { return len(s.lat) }

func (s *stats) rate() float64 { return float64(s.ops()) / s.elapsed.Seconds() }

func (s *stats) pct(p float64) time.Duration {
	if len(s.lat) == 0 {
		return 0
	}
	i := int(p / 100 * float64(len(s.lat)-1))
	return s.lat[i]
}

func (s *stats) String() string {
	out := fmt.Sprintf("%d ops in %s = %.0f/s, p50 %s p95 %s p99 %s max %s",
		s.ops(), s.elapsed.Round(time.Millisecond), s.rate(), ms(s.pct(50)), ms(s.pct(95)), ms(s.pct(99)), ms(s.pct(100)))
	if s.errs > 0 {
		out += fmt.Sprintf(", %d errors (first: %v)", s.errs, s.firstErr)
	}
	return out
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000) }

// runFor runs op on workers goroutines for warmup+d and measures the
// operations of the last d only. op gets its worker number and a per-worker
// sequence number.
func runFor(ctx context.Context, workers int, warmup, d time.Duration, op func(w, i int) error) *stats {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make([]workerResult, workers)
	start := time.Now()
	measureFrom := start.Add(warmup)
	end := measureFrom.Add(d)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := &results[w]
			res.lat = make([]time.Duration, 0, 4096)
			for i := 0; ctx.Err() == nil; i++ {
				t0 := time.Now()
				if t0.After(end) {
					return
				}
				err := op(w, i)
				if !t0.Before(measureFrom) {
					res.add(t0, err)
				}
			}
		}()
	}
	wg.Wait()
	return merge(time.Since(measureFrom), results)
}

// workerResult is what one worker of runFor or runN measured.
type workerResult struct {
	lat      []time.Duration
	errs     int
	firstErr error
}

// add records an operation started at t0 that ended now with err.
func (r *workerResult) add(t0 time.Time, err error) {
	if err == nil {
		r.lat = append(r.lat, time.Since(t0))
		return
	}
	r.errs++
	if r.firstErr == nil {
		r.firstErr = err
	}
}

func merge(elapsed time.Duration, results []workerResult) *stats {
	s := &stats{elapsed: elapsed}
	for _, r := range results {
		s.lat = append(s.lat, r.lat...)
		s.errs += r.errs
		if s.firstErr == nil {
			s.firstErr = r.firstErr
		}
	}
	slices.Sort(s.lat)
	return s
}

// runN runs op once for every i in [0, n) on workers goroutines and times
// every call.
func runN(ctx context.Context, workers, n int, op func(w, i int) error) *stats {
	var next atomic.Int64
	results := make([]workerResult, workers)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n && ctx.Err() == nil; i = int(next.Add(1) - 1) {
				t0 := time.Now()
				results[w].add(t0, op(w, i))
			}
		})
	}
	wg.Wait()
	return merge(time.Since(start), results)
}

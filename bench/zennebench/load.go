package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zenne-city/zenne/bench/internal/benchutil"
)

// stats summarises one timed run.
type stats struct{ benchutil.Stats }

func (s *stats) String() string {
	out := fmt.Sprintf("%d ops in %s = %.0f/s, p50 %s p95 %s p99 %s max %s",
		s.Ops(), s.Elapsed.Round(time.Millisecond), s.Rate(), ms(s.Pct(50)), ms(s.Pct(95)), ms(s.Pct(99)), ms(s.Pct(100)))
	if s.Errs > 0 {
		out += fmt.Sprintf(", %d errors (first: %v)", s.Errs, s.FirstErr)
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
	results := make([]benchutil.WorkerResult, workers)
	start := time.Now()
	measureFrom := start.Add(warmup)
	end := measureFrom.Add(d)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := &results[w]
			res.Lat = make([]time.Duration, 0, 4096)
			for i := 0; ctx.Err() == nil; i++ {
				t0 := time.Now()
				if t0.After(end) {
					return
				}
				err := op(w, i)
				if !t0.Before(measureFrom) {
					res.Add(t0, err)
				}
			}
		}()
	}
	wg.Wait()
	return merge(time.Since(measureFrom), results)
}

func merge(elapsed time.Duration, results []benchutil.WorkerResult) *stats {
	return &stats{benchutil.Merge(elapsed, results)}
}

// runN runs op once for every i in [0, n) on workers goroutines and times
// every call.
func runN(ctx context.Context, workers, n int, op func(w, i int) error) *stats {
	var next atomic.Int64
	results := make([]benchutil.WorkerResult, workers)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n && ctx.Err() == nil; i = int(next.Add(1) - 1) {
				t0 := time.Now()
				results[w].Add(t0, op(w, i))
			}
		})
	}
	wg.Wait()
	return merge(time.Since(start), results)
}

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/zenne-city/zenne/bench/internal/benchutil"
)

// The data set and the PATCH body are zennebench's (benchutil), so the
// figures compare with its patch scenario.

// load upserts the entities through the first instance, batch by batch,
// and checks through the last one that the shared store holds them all.
func load(ctx context.Context, cfg *config, client *http.Client, urls []string, n int, out io.Writer) error {
	batches := (cfg.entities + batch - 1) / batch
	u := urls[0] + "/ngsi-ld/v1/entityOperations/upsert"
	var next, done atomic.Int64
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	for range loadConc {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < batches && ctx.Err() == nil; i = int(next.Add(1) - 1) {
				from := i * batch
				to := min(from+batch, cfg.entities)
				resp, err := benchutil.Do(client, http.MethodPost, u, benchutil.BatchBody(from, to))
				// 207: some entities of the batch were refused.
				if err == nil && resp.StatusCode == http.StatusMultiStatus {
					err = fmt.Errorf("POST %s: status 207: some entities of [%d, %d) failed", u, from, to)
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					next.Store(int64(batches)) // stop the others
					return
				}
				done.Add(int64(to - from))
			}
		})
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
wait:
	for {
		select {
		case <-finished:
			break wait
		case <-tick.C:
			fmt.Fprintf(out, "  N=%d loading: %d/%d entities, %s\n", n, done.Load(), cfg.entities, time.Since(start).Round(time.Second))
		}
	}
	if firstErr != nil {
		return fmt.Errorf("load: %w", firstErr)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	el := time.Since(start)
	fmt.Fprintf(out, "  N=%d loaded %d entities through instance 0 in %s = %.0f entities/s (batches of %d, %d in flight)\n",
		n, cfg.entities, el.Round(time.Millisecond), float64(cfg.entities)/el.Seconds(), batch, loadConc)

	last := urls[len(urls)-1]
	resp, err := benchutil.Do(client, http.MethodGet, last+"/ngsi-ld/v1/entities?count=true&limit=0&local=true", nil)
	if err != nil {
		return fmt.Errorf("count after loading: %w", err)
	}
	if got := resp.Header.Get("NGSILD-Results-Count"); got != strconv.Itoa(cfg.entities) {
		return fmt.Errorf("count after loading, on instance %d: NGSILD-Results-Count %q, want %d", len(urls)-1, got, cfg.entities)
	}
	return nil
}

// result is what one instance count measured.
type result struct {
	n         int
	s         *stats
	zenne     float64  // cores the zenne processes used together during the measurement
	bench     float64  // cores this process used
	machine   float64  // cores the whole machine was busy
	warmErrs  int      // failed PATCHes during the warm-up (s.Errs counts the measurement's)
	firstErrs []string // the first few failures
}

// maxErrMsgs is how many failures are kept to print.
const maxErrMsgs = 5

// measure sends PATCH load from cfg.concurrency keep-alive clients, client i
// to instance i%N, for cfg.warmup+cfg.duration; only the requests started
// in the last cfg.duration are measured. A PATCH counts when it is answered
// 204 (after the commit: every update counted is durable); any other
// answer is an error.
func measure(ctx context.Context, cfg *config, client *http.Client, procs []*proc, out io.Writer) (*result, error) {
	n := len(procs)
	res := &result{n: n}
	var mu sync.Mutex // guards res.firstErrs
	var ok, failed atomic.Int64
	workers := make([]workerResult, cfg.concurrency)
	start := time.Now()
	measureFrom := start.Add(cfg.warmup)
	end := measureFrom.Add(cfg.duration)

	var wg sync.WaitGroup
	for w := range cfg.concurrency {
		base := procs[w%n].url + "/ngsi-ld/v1/entities/"
		rng := rand.New(rand.NewPCG(uint64(w), 1))
		wr := &workers[w]
		wr.Lat = make([]time.Duration, 0, 4096)
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				t0 := time.Now()
				if t0.After(end) {
					return
				}
				err := patch(ctx, client, base+url.PathEscape(benchutil.EntityID(rng.IntN(cfg.entities)))+"/attrs", benchutil.PatchBody(i))
				measured := !t0.Before(measureFrom)
				if measured {
					wr.Add(t0, err)
				}
				if err == nil {
					ok.Add(1)
					continue
				}
				failed.Add(1)
				if !measured {
					wr.warmErrs++
				}
				mu.Lock()
				if len(res.firstErrs) < maxErrMsgs {
					when := "measuring"
					if !measured {
						when = "warm-up"
					}
					res.firstErrs = append(res.firstErrs, fmt.Sprintf("%s: %v", when, err))
				}
				mu.Unlock()
			}
		})
	}

	// This goroutine prints progress and reads the CPU counters when the
	// measurement starts and when the last request has been answered.
	var before cpuSnapshot
	var meter benchutil.CPUMeter
	takeBefore := func() {
		before = takeCPU(procs)
		meter = benchutil.StartCPU()
	}
	warm := time.NewTimer(cfg.warmup)
	defer warm.Stop()
	stop := time.NewTimer(time.Until(end))
	defer stop.Stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last, lastAt := int64(0), start
progress:
	for {
		select {
		case <-ctx.Done():
			break progress
		case <-warm.C:
			takeBefore()
		case <-stop.C:
			if before.at.IsZero() { // the warm-up timer lost the race
				takeBefore()
			}
			break progress
		case now := <-tick.C:
			// Named for the second the rate covers: the one that ended now.
			phase := fmt.Sprintf("warm-up %s/%s", now.Sub(start).Round(time.Second), cfg.warmup)
			if !lastAt.Before(measureFrom) {
				phase = fmt.Sprintf("measuring %s/%s", now.Sub(measureFrom).Round(time.Second), cfg.duration)
			}
			cur := ok.Load()
			fmt.Fprintf(out, "  N=%d %s: %s updates/s, %d errors so far\n", n, phase,
				comma(float64(cur-last)/now.Sub(lastAt).Seconds()), failed.Load())
			last, lastAt = cur, now
		}
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	after := takeCPU(procs)
	res.s = merge(time.Since(measureFrom), workers)
	for _, w := range workers {
		res.warmErrs += w.warmErrs
	}
	window := after.at.Sub(before.at).Seconds()
	res.zenne = ticksToDuration(after.zenne-before.zenne).Seconds() / window
	res.bench = ticksToDuration(after.bench-before.bench).Seconds() / window
	res.machine = ticksToDuration(after.machine-before.machine).Seconds() / window
	fmt.Fprintf(out, "N=%d: PATCH, %d clients over %d instance(s): %s\n", n, cfg.concurrency, n, res.s)
	fmt.Fprintf(out, "N=%d: CPU: zenne processes %.2f cores, machine busy %.2f of %d cores; %s\n",
		n, res.zenne, res.machine, runtime.NumCPU(), meter)
	if res.s.Errs+res.warmErrs > 0 {
		fmt.Fprintf(out, "N=%d: %d PATCHes failed while measuring, %d during the warm-up; the first:\n", n, res.s.Errs, res.warmErrs)
		for _, m := range res.firstErrs {
			fmt.Fprintf(out, "    %s\n", m)
		}
	}
	return res, nil
}

// patch sends one PATCH and drains the answer; anything but 204 is an error.
func patch(ctx context.Context, client *http.Client, u string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPatch, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	msg, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("PATCH %s: read answer: %w", u, err)
	}
	if resp.StatusCode != http.StatusNoContent {
		if len(msg) > 300 {
			msg = msg[:300]
		}
		return fmt.Errorf("PATCH %s: status %d: %s", u, resp.StatusCode, msg)
	}
	return nil
}

// cpuSnapshot is the CPU time used so far, in clock ticks.
type cpuSnapshot struct {
	at                    time.Time
	zenne, bench, machine int64
}

// takeCPU reads the counters; a process that has exited counts nothing
// (runCluster fails the run then anyway).
func takeCPU(procs []*proc) cpuSnapshot {
	s := cpuSnapshot{at: time.Now()}
	for _, p := range procs {
		t, _ := cpuTicks(p.cmd.Process.Pid)
		s.zenne += t
	}
	s.bench, _ = cpuTicks(os.Getpid())
	s.machine, _ = machineBusyTicks()
	return s
}

// stats summarises one measurement (benchutil's, for the requests sent
// after the warm-up).
type stats struct{ benchutil.Stats }

func (s *stats) String() string {
	return fmt.Sprintf("%d updates in %s = %.0f/s, p50 %s p95 %s p99 %s max %s, %d errors",
		s.Ops(), s.Elapsed.Round(time.Millisecond), s.Rate(), ms(s.Pct(50)), ms(s.Pct(95)), ms(s.Pct(99)), ms(s.Pct(100)), s.Errs)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000) }

// workerResult is what one client measured; only its goroutine writes it.
// The embedded WorkerResult holds the measurement's requests only.
type workerResult struct {
	benchutil.WorkerResult
	warmErrs int // failed requests during the warm-up
}

func merge(elapsed time.Duration, workers []workerResult) *stats {
	rs := make([]benchutil.WorkerResult, len(workers))
	for i, w := range workers {
		rs[i] = w.WorkerResult
	}
	return &stats{benchutil.Merge(elapsed, rs)}
}

// report prints the results as a markdown table.
type report struct {
	cfg     *config
	results []*result
}

func (r *report) print(w io.Writer) {
	// One instance's rate: the mean of its runs when -instances repeats it.
	var one float64
	var ones []string
	for _, res := range r.results {
		if res.n == 1 {
			one += res.s.Rate()
			ones = append(ones, comma(res.s.Rate()))
		}
	}
	if len(ones) > 0 {
		one /= float64(len(ones))
	}

	fmt.Fprintf(w, "\n<!-- clusterbench, %d entities, %d clients, %s measured after %s warm-up, %d cores -->\n",
		r.cfg.entities, r.cfg.concurrency, r.cfg.duration, r.cfg.warmup, runtime.NumCPU())
	fmt.Fprintln(w, "| Scenario | Figure | Goal | Met | One instance (same run) | Ratio | CPU while measuring (cores) |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	for _, res := range r.results {
		s := res.s
		scenario := fmt.Sprintf("PATCH /entities/{id}/attrs, %d clients, %d instance", r.cfg.concurrency, res.n)
		if res.n > 1 {
			scenario += "s"
		}
		figure := fmt.Sprintf("%s updates/s, p50 %s, p95 %s, p99 %s", comma(s.Rate()), ms(s.Pct(50)), ms(s.Pct(95)), ms(s.Pct(99)))
		if s.Errs > 0 {
			figure += fmt.Sprintf(", **%d errors**", s.Errs)
		}
		goal, met, limit, ratio := "(not a goal)", "—", "—", "—"
		switch {
		case res.n == 1:
			goal = "(the baseline)"
		case one > 0:
			limit = comma(one) + " updates/s"
			ratio = fmt.Sprintf("%.2f", s.Rate()/one)
		}
		if res.n == 3 {
			goal = "≥ 1.0 × one instance"
			if one > 0 {
				// Failed requests would make a rate meaningless.
				met = benchutil.Verdict(s.Rate() >= one && s.Errs == 0)
			}
		}
		cpu := fmt.Sprintf("zenne %.2f, clusterbench %.2f, machine %.2f of %d", res.zenne, res.bench, res.machine, runtime.NumCPU())
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s |\n", scenario, figure, goal, met, limit, ratio, cpu)
	}
	if len(ones) > 1 {
		fmt.Fprintf(w, "\nNote: one instance's rate is the mean of its %d runs (%s updates/s).\n", len(ones), strings.Join(ones, "; "))
	}
	for _, res := range r.results {
		if res.s.Errs+res.warmErrs > 0 {
			fmt.Fprintf(w, "\nNote: %d instance(s): %d PATCHes failed while measuring, %d during the warm-up; first: %s\n",
				res.n, res.s.Errs, res.warmErrs, res.firstErrs[0])
		}
	}
}

// comma rounds x and writes it with thousands separators: 12,345.
func comma(x float64) string { return humanize.Comma(int64(math.Round(x))) }

// Command alarmbench measures the alarm rules (issue 7's goals) against zenne
// running in this process (internal/app, real HTTP on loopback), with the
// client on the same machine:
//
//   - throughput: the PATCH rate of 10,000 WasteContainers without rules (A)
//     and with 10,000 per-entity threshold rules plus a few type-wide ones
//     (B), alternately (A B A B), beside a no-op handler's rate with the same
//     client; and how far behind the rules' evaluation was when the load
//     stopped (B/A only counts if the rules kept up);
//
//   - latency: from the acknowledgement of an update that crosses a
//     threshold to its Alert entity being readable, under a background load;
//
//   - backtest: a leak rule over a year of 15-minute flow readings of 100
//     water meters (imported in bulk), some of which leak.
//
//     go run ./bench/alarmbench -scenario=all
//     go run ./bench/alarmbench -scenario=throughput -entities 2000 -rules 2000 -duration 5s   # quick
//     go run ./bench/alarmbench -scenario=backtest -meters 20
//
// The last thing printed is a markdown table for docs/PERFORMANCE.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/zenne-city/zenne/bench/internal/benchutil"
	"github.com/zenne-city/zenne/internal/app"
)

type config struct {
	scenario         string
	entities         int
	rules            int
	typeRules        int
	rounds           int
	duration, warmup time.Duration
	settle           time.Duration
	concurrency      int
	rate             int
	probes           int
	probeEvery       time.Duration
	dataDir          string
	storeURL         string
	meters           int
	backtestRuns     int
	cpuProfile       string
	ruleConc         int
}

func main() {
	app.TuneGC() // the in-process server runs as `zenne serve` does
	cfg := &config{}
	flag.StringVar(&cfg.scenario, "scenario", "all", "throughput, latency, backtest or all")
	flag.IntVar(&cfg.entities, "entities", 10000, "WasteContainer entities (throughput, latency)")
	flag.IntVar(&cfg.rules, "rules", 10000, "per-entity threshold rules, one for each of the first -rules entities (throughput, latency)")
	flag.IntVar(&cfg.typeRules, "type-rules", 10, "type-wide threshold rules besides them, which no update fires")
	flag.Float64Var(&fireAbove, "fire-above", fireAbove, "throughput: the per-sensor threshold; 0.98 makes 2% of updates open an alert, 0.999 0.1%")
	flag.IntVar(&cfg.rounds, "rounds", 2, "throughput: rounds of A (no rules) then B (rules)")
	flag.DurationVar(&cfg.duration, "duration", 20*time.Second, "throughput: measured time of each A and B")
	flag.DurationVar(&cfg.warmup, "warmup", 3*time.Second, "unmeasured warm-up before each measurement")
	flag.DurationVar(&cfg.settle, "settle", 3*time.Second, "pause before each measurement, after creating or deleting rules")
	flag.IntVar(&cfg.concurrency, "concurrency", 64, "keep-alive PATCH clients (and the no-op handler limit's)")
	flag.IntVar(&cfg.rate, "rate", 5000, "latency: background updates per second (values that fire nothing)")
	flag.IntVar(&cfg.probes, "probes", 300, "latency: updates that cross the threshold, one every -probe-every")
	flag.DurationVar(&cfg.probeEvery, "probe-every", 100*time.Millisecond, "latency: time between two probes")
	flag.StringVar(&cfg.dataDir, "data", "", "data directory (default: a temporary one, removed at the end); each scenario uses a subdirectory, "+
		"emptied first, except backtest, whose imported year is reused when complete")
	flag.StringVar(&cfg.storeURL, "store", "", "store URL, e.g. postgres://postgres@127.0.0.1:5432/bench (default: the embedded store in the data directory); "+
		"each scenario works in a tenant of its own, so the database may hold earlier runs")
	flag.IntVar(&cfg.meters, "meters", 100, "backtest: water meters, a year of 15-minute flow readings each")
	flag.IntVar(&cfg.backtestRuns, "backtest-runs", 3, "backtest: runs of the back-test (the figure is the median)")
	flag.StringVar(&cfg.cpuProfile, "cpuprofile", "", "directory to write a CPU profile of each measurement to")
	flag.IntVar(&cfg.ruleConc, "rule-concurrency", 8, "goroutines creating and deleting rules")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "alarmbench:", err)
		os.Exit(1)
	}
}

func (c *config) wants(s string) bool { return c.scenario == "all" || c.scenario == s }

func (c *config) check() error {
	switch c.scenario {
	case "throughput", "latency", "backtest", "all":
	default:
		return fmt.Errorf("unknown -scenario %q: throughput, latency, backtest or all", c.scenario)
	}
	switch {
	case c.entities < 10:
		return fmt.Errorf("-entities %d: at least 10", c.entities)
	case c.rules < 1 || c.rules > c.entities:
		return fmt.Errorf("-rules %d: between 1 and -entities (%d): each rule watches one entity", c.rules, c.entities)
	case c.rounds < 1, c.concurrency < 1, c.probes < 1, c.rate < 1, c.meters < 1, c.backtestRuns < 1, c.ruleConc < 1:
		return fmt.Errorf("-rounds, -concurrency, -probes, -rate, -meters, -backtest-runs and -rule-concurrency must be positive")
	}
	return nil
}

func run(ctx context.Context, cfg *config, out io.Writer) error {
	if err := cfg.check(); err != nil {
		return err
	}
	dir := cfg.dataDir
	if dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	} else {
		d, err := os.MkdirTemp("", "alarmbench-")
		if err != nil {
			return err
		}
		dir = d
		defer os.RemoveAll(dir)
	}
	env := benchutil.Environment()
	rep := &report{env: env, command: commandLine()}
	fmt.Fprintf(out, "alarmbench: %s, GOMAXPROCS %d, data in %s\n%s\n", cfg.scenario, runtime.GOMAXPROCS(0), dir, env)

	if cfg.wants("throughput") {
		if err := throughputScenario(ctx, cfg, filepath.Join(dir, "throughput"), rep, out); err != nil {
			return fmt.Errorf("throughput: %w", err)
		}
	}
	if cfg.wants("latency") {
		if err := latencyScenario(ctx, cfg, filepath.Join(dir, "latency"), rep, out); err != nil {
			return fmt.Errorf("latency: %w", err)
		}
	}
	if cfg.wants("backtest") {
		if err := backtestScenario(ctx, cfg, filepath.Join(dir, "backtest"), rep, out); err != nil {
			return fmt.Errorf("backtest: %w", err)
		}
	}
	rep.print(out)
	return nil
}

// commandLine is how this run was started, for the report.
func commandLine() string {
	args := []string{"go run ./bench/alarmbench"}
	for _, a := range os.Args[1:] {
		if strings.ContainsAny(a, " '\"$&;|") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		args = append(args, a)
	}
	return strings.Join(args, " ")
}

// profiled runs f under the CPU profiler when -cpuprofile is set.
func profiled(cfg *config, name string, out io.Writer, f func() error) error {
	return benchutil.Profiled(cfg.cpuProfile, name, out, f)
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

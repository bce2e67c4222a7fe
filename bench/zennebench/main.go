// Command zennebench measures zenne end to end: the server (in-process through
// internal/app, or the built binary for start-up and memory) and the client
// on loopback on the same machine, each figure printed beside the machine's
// limit measured in the same run.
//
//	go run ./bench/zennebench -scenario=all                   # 1,000,000 entities
//	go run ./bench/zennebench -scenario=all -entities=100000  # quick run
//
// Scenarios: patch, upsert, query, count, startup, limits, all. Every
// scenario but limits needs the data set; it is loaded by batch upsert (which
// is the upsert scenario) unless -data names a directory that holds it.
// The last thing printed is a markdown table for docs/PERFORMANCE.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
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
	duration, warmup time.Duration
	concurrency      int // PATCH and the no-op limit
	queryConc        int
	loadConc         int
	batch            int
	dataDir          string
	storeURL         string
	keep             bool
	binary           string
	cpuProfile       string // directory for one CPU profile per scenario
	sqliteRows       int
	history          bool // the server records history (its cost is the difference)
}

func main() {
	app.TuneGC() // the in-process server runs as `zenne serve` does
	cfg := &config{}
	flag.StringVar(&cfg.scenario, "scenario", "all", "patch, upsert, query, count, startup, limits or all")
	flag.IntVar(&cfg.entities, "entities", 0, "entities in the data set (default 1,000,000; 10,000 for -scenario=patch)")
	flag.DurationVar(&cfg.duration, "duration", 10*time.Second, "measured time of each timed scenario")
	flag.DurationVar(&cfg.warmup, "warmup", 2*time.Second, "unmeasured warm-up before each timed scenario")
	flag.IntVar(&cfg.concurrency, "concurrency", 64, "keep-alive clients for PATCH and the no-op handler limit")
	flag.IntVar(&cfg.queryConc, "query-concurrency", 16, "keep-alive clients for the query scenario")
	flag.IntVar(&cfg.loadConc, "load-concurrency", 4, "concurrent batch upsert requests while loading")
	flag.IntVar(&cfg.batch, "batch", 1000, "entities per batch upsert")
	flag.BoolVar(&cfg.history, "history", true, "the server records history (-history=false measures without)")
	flag.StringVar(&cfg.dataDir, "data", "", "data directory (default: a temporary one, removed at the end); reused if it already holds the data set")
	flag.StringVar(&cfg.storeURL, "store", "", "store URL, e.g. postgres://postgres@127.0.0.1:5432/bench (default: the embedded store in the data directory); a database that holds the data set is reused")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the temporary data directory")
	flag.StringVar(&cfg.binary, "zenne", "", "zenne binary for the startup scenario (default: go build ./cmd/zenne)")
	flag.StringVar(&cfg.cpuProfile, "cpuprofile", "", "directory to write a CPU profile of each in-process scenario to")
	flag.IntVar(&cfg.sqliteRows, "sqlite-rows", 200_000, "rows for the raw SQLite insert limit")
	flag.Parse()
	if cfg.entities == 0 {
		cfg.entities = 1_000_000
		if cfg.scenario == "patch" {
			cfg.entities = 10_000
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "zennebench:", err)
		os.Exit(1)
	}
}

func (c *config) wants(s string) bool { return c.scenario == "all" || c.scenario == s }

func run(ctx context.Context, cfg *config, out io.Writer) error {
	switch cfg.scenario {
	case "patch", "upsert", "query", "count", "startup", "limits", "all":
	default:
		return fmt.Errorf("unknown -scenario %q", cfg.scenario)
	}
	dir := cfg.dataDir
	if dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	} else {
		d, err := os.MkdirTemp("", "zennebench-")
		if err != nil {
			return err
		}
		dir = d
		if cfg.keep {
			fmt.Fprintf(out, "data directory %s is kept\n", dir)
		} else {
			defer os.RemoveAll(dir)
		}
	}
	rep := &report{entities: cfg.entities}
	fmt.Fprintf(out, "zennebench: %s, %d entities, GOMAXPROCS %d, data in %s\n", cfg.scenario, cfg.entities, runtime.GOMAXPROCS(0), dir)

	// The machine's limits, measured first while nothing else runs.
	var noop *stats
	var rawInsert float64
	if cfg.wants("limits") || cfg.wants("patch") || cfg.wants("query") {
		m := benchutil.StartCPU()
		s, err := noopLimit(ctx, cfg)
		if err != nil {
			return fmt.Errorf("no-op handler limit: %w", err)
		}
		noop = s
		fmt.Fprintf(out, "limit  no-op net/http handler, %d clients: %s\n", cfg.concurrency, s)
		fmt.Fprintf(out, "       no-op: %s\n", m)
	}
	if cfg.wants("limits") || cfg.wants("upsert") {
		tmp, err := os.MkdirTemp(dir, "raw-")
		if err != nil {
			return err
		}
		r, err := sqliteLimit(ctx, tmp, cfg.sqliteRows)
		os.RemoveAll(tmp)
		if err != nil {
			return fmt.Errorf("raw SQLite limit: %w", err)
		}
		rawInsert = r
		fmt.Fprintf(out, "limit  raw SQLite insert, %d rows in one transaction (WAL): %.0f rows/s\n", cfg.sqliteRows, r)
	}
	rep.limits(cfg, noop, rawInsert)
	if cfg.scenario == "limits" {
		rep.print(out)
		return nil
	}

	// The in-process server and the data set.
	srv, err := startApp(ctx, cfg, filepath.Join(dir, "zenne"))
	if err != nil {
		return err
	}
	defer srv.close()
	start := time.Now()
	if err := srv.app.WaitIndexed(ctx); err != nil {
		return err
	}
	fmt.Fprintf(out, "store opened, query index built in %s\n", time.Since(start).Round(time.Millisecond))
	client := benchutil.WithKey(benchutil.NewClient(max(cfg.concurrency, cfg.queryConc, cfg.loadConc)), srv.key)
	defer client.CloseIdleConnections()

	have, err := countAll(client, srv.url)
	if err != nil {
		return err
	}
	switch {
	case have >= cfg.entities:
		fmt.Fprintf(out, "data set: %d entities already stored, not loading\n", have)
		if cfg.scenario == "upsert" {
			return errors.New("the upsert scenario needs an empty data directory")
		}
	case have > 0:
		return fmt.Errorf("the data directory holds %d entities, not %d: use an empty or a complete one", have, cfg.entities)
	default:
		var s *stats
		err := profiled(cfg, "upsert", out, func() error {
			var err error
			s, err = load(ctx, cfg, client, srv.url, out)
			return err
		})
		if err != nil {
			return err
		}
		rep.upsert(cfg, s, rawInsert)
	}

	if cfg.wants("patch") {
		if err := profiled(cfg, "patch", out, func() error {
			s := patchScenario(ctx, cfg, client, srv.url)
			fmt.Fprintf(out, "patch  PATCH /entities/{id}/attrs, %d clients: %s\n", cfg.concurrency, s)
			rep.patch(cfg, s, noop)
			return nil
		}); err != nil {
			return err
		}
	}
	if cfg.wants("query") {
		if err := profiled(cfg, "query", out, func() error {
			matches, err := queryMatches(client, srv.url)
			if err != nil {
				return err
			}
			s := queryScenario(ctx, cfg, client, srv.url)
			fmt.Fprintf(out, "query  type+q+near 500 m, %d clients (%.0f matches per query on average, 20 returned): %s\n", cfg.queryConc, matches, s)
			rep.query(cfg, s, noop, matches)
			return nil
		}); err != nil {
			return err
		}
	}
	if cfg.wants("count") {
		if err := profiled(cfg, "count", out, func() error {
			res, err := countScenario(client, srv.url)
			if err != nil {
				return err
			}
			for _, r := range res {
				fmt.Fprintf(out, "count  %s: %d matches, %s\n", r.what, r.matches, r.s)
			}
			rep.count(res)
			return nil
		}); err != nil {
			return err
		}
	}
	if cfg.wants("startup") {
		client.CloseIdleConnections()
		if err := srv.close(); err != nil {
			return fmt.Errorf("close the in-process server: %w", err)
		}
		res, err := startupScenario(ctx, cfg, filepath.Join(dir, "zenne"), srv.key, out)
		if err != nil {
			return err
		}
		rep.startup(res)
	}
	rep.print(out)
	return nil
}

// profiled runs f under the CPU profiler when -cpuprofile is set.
func profiled(cfg *config, name string, out io.Writer, f func() error) error {
	return benchutil.Profiled(cfg.cpuProfile, name, out, f)
}

// inProcess is zenne running inside the benchmark through internal/app.
type inProcess struct {
	app *app.App
	url string
	key string // the administrator's API key, sent with every request
}

func startApp(ctx context.Context, cfg *config, dir string) (*inProcess, error) {
	if err := app.EnsureDir(dir); err != nil {
		return nil, err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	key := benchutil.AdminKey()
	a, err := app.New(ctx, app.Config{Listen: "127.0.0.1:0", DataDir: dir, StoreURL: cfg.storeURL, Version: "bench", Log: log, MaxBody: 64 << 20, NoHistory: !cfg.history,
		Env: benchutil.ServerEnv(key)})
	if err != nil {
		return nil, fmt.Errorf("start zenne: %w", err)
	}
	if err := a.Start(); err != nil {
		a.Close(context.Background())
		return nil, fmt.Errorf("start zenne: %w", err)
	}
	// A data set kept from an earlier run has that run's administrator.
	if key, err = benchutil.ServerKey(ctx, a.Auth, key); err != nil {
		a.Close(context.Background())
		return nil, err
	}
	return &inProcess{app: a, url: a.URL(), key: key}, nil
}

// close is idempotent.
func (p *inProcess) close() error {
	if p.app == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := p.app.Close(ctx)
	p.app = nil
	return err
}

// allTypes is the type parameter selecting the whole data set.
func allTypes() string { return strings.Join(benchutil.Types, ",") }

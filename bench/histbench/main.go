// Command histbench measures the bulk history import (zenne import history)
// end to end: it generates a CSV of sensor readings, imports it into a fresh
// embedded store through the same code as the command (in process), and
// prints the rate, the bytes per stored sample and the times of temporal
// queries on the result, asked of a real server on loopback; each figure
// beside the machine's limit measured in the same run.
//
//	go run ./bench/histbench                                # 1,000 sensors, a year of 15-minute readings
//	go run ./bench/histbench -sensors 100 -days 30          # quick run
//
// The last thing printed is a markdown table for docs/PERFORMANCE.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/zenne-city/zenne/bench/internal/benchutil"

	"github.com/zenne-city/zenne/internal/app"
)

type config struct {
	sensors    int
	days       int
	every      time.Duration
	dir        string
	keep       bool
	bySensor   bool
	batch      int
	cpuProfile string
	queryProf  string
	queryOnly  bool
	storeURL   string
	storeRows  int
	runs       int
}

func main() {
	app.TuneGC() // as zenne does
	cfg := &config{}
	flag.IntVar(&cfg.sensors, "sensors", 1000, "sensors in the data set")
	flag.IntVar(&cfg.days, "days", 365, "days of readings")
	flag.DurationVar(&cfg.every, "every", 15*time.Minute, "time between two readings of a sensor")
	flag.StringVar(&cfg.dir, "dir", "", "working directory (default: a temporary one, removed at the end); a CSV generated there before with the same parameters is reused")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the working directory (the CSV and the store)")
	order := flag.String("order", "time", "row order: time (every sensor at t, then t+every) or sensor (each sensor's whole series in turn)")
	flag.IntVar(&cfg.batch, "batch", 0, "rows per store transaction (default: the command's)")
	flag.StringVar(&cfg.cpuProfile, "cpuprofile", "", "write a CPU profile of the import to this file")
	flag.StringVar(&cfg.storeURL, "store", "", "store URL to import into and query, e.g. an empty postgres://postgres@127.0.0.1:5432/hb database (default: the embedded store in -dir)")
	flag.BoolVar(&cfg.queryOnly, "queries-only", false, "only time the queries, on the store an earlier run kept (-keep) in -dir")
	flag.StringVar(&cfg.queryProf, "query-cpuprofile", "", "write a CPU profile of the queries to this file")
	flag.IntVar(&cfg.storeRows, "store-rows", 2_000_000, "rows of the store-only limit (0 skips it)")
	flag.IntVar(&cfg.runs, "runs", 5, "runs of each query")
	flag.Parse()
	switch *order {
	case "time":
	case "sensor":
		cfg.bySensor = true
	default:
		fmt.Fprintln(os.Stderr, "histbench: -order is time or sensor")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "histbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg *config, out io.Writer) error {
	dir := cfg.dir
	if dir == "" {
		d, err := os.MkdirTemp("", "histbench-")
		if err != nil {
			return err
		}
		dir = d
		if !cfg.keep {
			defer os.RemoveAll(dir)
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if cfg.keep {
		fmt.Fprintf(out, "working directory %s is kept\n", dir)
	}
	order := "time"
	if cfg.bySensor {
		order = "sensor"
	}
	fmt.Fprintf(out, "histbench: %d sensors, %d days every %s (%s order), GOMAXPROCS %d, NumCPU %d, in %s\n",
		cfg.sensors, cfg.days, cfg.every, order, runtime.GOMAXPROCS(0), runtime.NumCPU(), dir)

	if cfg.queryOnly {
		return queriesOnly(ctx, filepath.Join(dir, "zenne"), cfg, out)
	}

	// The data set.
	csv := filepath.Join(dir, fmt.Sprintf("readings-%d-%d-%s-%s.csv", cfg.sensors, cfg.days, cfg.every, order))
	rows, size, err := dataSet(csv, cfg, out)
	if err != nil {
		return err
	}
	rep := &report{rows: rows, size: size, sensors: cfg.sensors, days: cfg.days, every: cfg.every}

	// The machine's limits, measured first.
	m := benchutil.StartCPU()
	parse, err := parseLimit(ctx, csv, cfg)
	if err != nil {
		return fmt.Errorf("parse limit: %w", err)
	}
	rep.parse = parse
	fmt.Fprintf(out, "limit  parse without storing: %d rows in %s, %.0f rows/s, %.0f MB/s (%s)\n",
		parse.rows, parse.d.Round(time.Millisecond), parse.rate(), float64(size)/1e6/parse.d.Seconds(), m)
	if cfg.storeRows > 0 {
		m := benchutil.StartCPU()
		s, err := storeLimit(ctx, csv, filepath.Join(dir, "store-limit"), cfg)
		if err != nil {
			return fmt.Errorf("store limit: %w", err)
		}
		rep.store = s
		fmt.Fprintf(out, "limit  store only (ImportHistory of parsed batches, first %d rows): %.0f rows/s (%s)\n", s.rows, s.rate(), m)
	}

	// The import.
	data := filepath.Join(dir, "zenne")
	os.RemoveAll(data)
	if err := app.EnsureDir(data); err != nil {
		return err
	}
	var stopProfile func()
	if cfg.cpuProfile != "" {
		f, err := os.Create(cfg.cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		stopProfile = func() { pprof.StopCPUProfile(); f.Close() }
	}
	m = benchutil.StartCPU()
	imp, err := importFile(ctx, csv, data, cfg, out)
	if stopProfile != nil {
		stopProfile()
	}
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	rep.imp = imp
	fmt.Fprintf(out, "import %d rows in %s: %.0f rows/s, %d entities created (%s)\n",
		imp.rows, imp.d.Round(time.Millisecond), imp.rate(), imp.created, m)

	sz, err := storeSize(ctx, data, cfg.storeURL)
	if err != nil {
		return fmt.Errorf("store size: %w", err)
	}
	rep.sz = sz
	fmt.Fprintf(out, "store  %d chunks, %s of chunk data (%.2f bytes/sample), database %s (%.2f bytes/sample)\n",
		sz.chunks, humanize.IBytes(uint64(sz.chunkBytes)), float64(sz.chunkBytes)/float64(sz.samples), humanize.IBytes(uint64(sz.fileBytes)), float64(sz.fileBytes)/float64(sz.samples))
	if sz.samples != rows {
		fmt.Fprintf(out, "NOTE   the store holds %d samples, the file %d rows\n", sz.samples, rows)
		rep.notes = append(rep.notes, fmt.Sprintf("the store holds %d samples, the file has %d rows", sz.samples, rows))
	}

	// Queries on a real server.
	qs, err := profiledQueries(ctx, data, cfg, out)
	if err != nil {
		return err
	}
	rep.queries = qs
	rep.print(out)
	return nil
}

// queriesOnly times the queries on a store kept by an earlier run.
func queriesOnly(ctx context.Context, data string, cfg *config, out io.Writer) error {
	if _, err := os.Stat(data); err != nil && cfg.storeURL == "" {
		return fmt.Errorf("-queries-only needs the store of an earlier run with -keep and the same -dir: %w", err)
	}
	qs, err := profiledQueries(ctx, data, cfg, out)
	if err != nil {
		return err
	}
	rep := &report{sensors: cfg.sensors, days: cfg.days, every: cfg.every, queries: qs}
	rep.printQueries(out)
	return nil
}

// profiledQueries runs the queries, under the CPU profiler with -query-cpuprofile.
func profiledQueries(ctx context.Context, data string, cfg *config, out io.Writer) ([]*queryResult, error) {
	if cfg.queryProf != "" {
		f, err := os.Create(cfg.queryProf)
		if err != nil {
			return nil, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, err
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	qs, err := queries(ctx, data, cfg, out)
	if err != nil {
		return nil, fmt.Errorf("queries: %w", err)
	}
	return qs, nil
}

// dataSet generates the CSV unless it is there already.
func dataSet(path string, cfg *config, out io.Writer) (rows, size int64, err error) {
	steps := int64(time.Duration(cfg.days) * 24 * time.Hour / cfg.every)
	want := steps * int64(cfg.sensors)
	if fi, err := os.Stat(path); err == nil && fi.Size() > 0 {
		fmt.Fprintf(out, "data   reusing %s (%s, %d rows)\n", path, humanize.IBytes(uint64(fi.Size())), want)
		return want, fi.Size(), nil
	}
	t := time.Now()
	rows, err = generate(path+".tmp", cfg.sensors, cfg.days, cfg.every, cfg.bySensor)
	if err != nil {
		return 0, 0, err
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return 0, 0, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return 0, 0, err
	}
	fmt.Fprintf(out, "data   generated %s: %d rows, %s in %s\n", path, rows, humanize.IBytes(uint64(fi.Size())), time.Since(t).Round(time.Millisecond))
	return rows, fi.Size(), nil
}

func discardLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

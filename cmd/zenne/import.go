package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/zenne-city/zenne/internal/app"
	"github.com/zenne-city/zenne/internal/histimport"
	"github.com/zenne-city/zenne/internal/jsonld"
	"github.com/zenne-city/zenne/internal/ngsild"
)

const importUsage = `Usage:
  zenne import history [--data DIR | --store URL] [--tenant NAME] [--context URL]
                       [--format csv|json] [--batch N] [--restart] FILE

Imports recorded attribute history (for the temporal API) from FILE into the
store, which must not be in use by a running zenne.

FILE is CSV (.csv) with a header row naming the columns
    entityId,attribute,time,value,unit[,type][,datasetId]
(time in RFC 3339; numbers stay numbers, true/false are booleans, anything
else is a string; without a type column the type comes from ids of the form
urn:ngsi-ld:<Type>:...), or NGSI-LD temporal JSON (.json): a temporal entity
or an array of them, normalized or temporalValues.

Rows that cannot be imported are listed and written to FILE.rejected. The
import records its progress in FILE.import-state after every batch: run the
same command again to resume an interrupted import (--restart starts over).
Entities that have no current state get one from their latest instances.

Flags:
`

// importCmd runs `zenne import ...`.
func importCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "history" {
		fmt.Fprint(stderr, importUsage)
		if len(args) == 0 {
			return errors.New("import what? zenne import history FILE")
		}
		return fmt.Errorf("unknown import %q: zenne import history FILE", args[0])
	}
	fs := flag.NewFlagSet("import history", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, importUsage)
		fs.PrintDefaults()
	}
	data := fs.String("data", env("ZENNE_DATA", "./zenne-data"), "data directory of the embedded store (ZENNE_DATA)")
	storeURL := fs.String("store", env("ZENNE_STORE", ""), "store URL, e.g. sqlite:///var/lib/zenne/zenne.db (ZENNE_STORE; default: the data directory's file)")
	tenant := fs.String("tenant", "", "tenant to import into (NGSILD-Tenant; default: the default tenant)")
	ctxURL := fs.String("context", "", "@context expanding the file's short names (default: the NGSI-LD core context), e.g. "+jsonld.SDMContextURL("Environment"))
	format := fs.String("format", "", "csv or json (default: from the file's extension)")
	batch := fs.Int("batch", histimport.DefaultBatch, "rows per store transaction")
	restart := fs.Bool("restart", false, "start over instead of resuming an interrupted import of FILE")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		if fs.NArg() == 0 {
			return errors.New("no FILE to import")
		}
		return fmt.Errorf("one FILE at a time (got %d; flags go before FILE)", fs.NArg())
	}
	file := fs.Arg(0)
	if *tenant != "" && !ngsild.ValidTenant(*tenant) {
		return fmt.Errorf("--tenant %q: use letters, digits, '_', '-' and '.' (at most 64)", *tenant)
	}
	if *batch <= 0 {
		return fmt.Errorf("--batch %d: give a positive number of rows", *batch)
	}
	if _, err := os.Stat(file); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	resolver := jsonld.NewResolver(jsonld.Options{})
	c := resolver.Core()
	if *ctxURL != "" {
		var err error
		if c, err = resolver.Resolve(ctx, *ctxURL); err != nil {
			return fmt.Errorf("--context %s: %w (the core contexts and the Smart Data Models contexts of %s are built in)",
				*ctxURL, err, "https://raw.githubusercontent.com/smart-data-models/dataModel.<Domain>/master/context.jsonld")
		}
	}

	cfg := app.Config{DataDir: *data, StoreURL: *storeURL}
	storeID := *storeURL
	if storeID == "" {
		if err := app.EnsureDir(*data); err != nil {
			return err
		}
		storeID = "sqlite://" + absPath(filepath.Join(*data, "zenne.db"))
	}
	st, err := app.OpenStore(ctx, cfg, resolver.Core())
	if err != nil {
		if strings.Contains(err.Error(), "in use by another zenne process") {
			return fmt.Errorf("%w\n\nA running zenne holds this store. Either stop it (zenne serve) and run the import again, "+
				"or import through its API instead: POST /ngsi-ld/v1/temporal/entities with the temporal entities", err)
		}
		return err
	}
	defer st.Close()
	hs, ok := st.(histimport.Store)
	if !ok {
		return fmt.Errorf("the store %s cannot import history in bulk: use the temporal API (POST /ngsi-ld/v1/temporal/entities)", storeID)
	}

	p := newProgress(stderr)
	opts := histimport.Options{
		Tenant: *tenant, Context: c, Resolver: resolver, Format: *format, Batch: *batch, Restart: *restart,
		StoreID: storeID, Progress: p.update,
		Notice: func(msg string) { p.println(msg) },
	}
	fmt.Fprintf(stderr, "importing %s into %s\n", file, storeID)
	sum, err := histimport.Import(ctx, hs, file, opts)
	p.done()
	if sum != nil && sum.AlreadyDone {
		fmt.Fprintf(stdout, "%s was imported completely before (%d rows, %d rejected): nothing to do. --restart imports it again (the store skips what it holds).\n",
			file, sum.Imported, sum.Rejected)
		return nil
	}
	if err != nil {
		if sum != nil && errors.Is(err, context.Canceled) {
			return fmt.Errorf("interrupted after %d rows: run the same command to resume", sum.Imported)
		}
		return err
	}
	printSummary(stdout, sum)
	return st.Close()
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

func printSummary(w io.Writer, s *histimport.Summary) {
	if s.Resumed {
		fmt.Fprintf(w, "resumed an interrupted import of %s\n", s.File)
	}
	fmt.Fprintf(w, "imported %d rows (%d by this run) in %s, %.0f rows/s\n", s.Imported, s.ImportedNow, s.Duration.Round(time.Millisecond), s.Rate())
	fmt.Fprintf(w, "entities: %d in the file, %d created", s.Entities, s.EntitiesCreated)
	if s.EntitiesCreated < s.Entities {
		fmt.Fprint(w, " (the others had a current state)")
	}
	fmt.Fprintln(w)
	if s.Rejected == 0 {
		fmt.Fprintln(w, "rejected: none")
		return
	}
	fmt.Fprintf(w, "rejected: %d rows, all listed in %s", s.Rejected, s.RejectedFile)
	if len(s.FirstRejects) > 0 {
		fmt.Fprintf(w, "; the first %d:\n", len(s.FirstRejects))
	} else {
		fmt.Fprintln(w)
	}
	for _, r := range s.FirstRejects {
		fmt.Fprintf(w, "  %s\n", r)
	}
}

// progress shows how an import goes on stderr: a bar redrawn at most five
// times a second on a terminal, a line every 10 seconds otherwise.
type progress struct {
	w     io.Writer
	tty   bool
	last  time.Time
	drawn bool
}

func newProgress(w io.Writer) *progress {
	tty := false
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return &progress{w: w, tty: tty, last: time.Now()}
}

func (p *progress) update(x histimport.Progress) {
	every := 10 * time.Second
	if p.tty {
		every = 200 * time.Millisecond
	}
	if time.Since(p.last) < every {
		return
	}
	p.last = time.Now()
	frac := 0.0
	if x.Size > 0 {
		frac = float64(x.Bytes) / float64(x.Size)
	}
	rate := 0.0
	if s := x.Elapsed.Seconds(); s > 0 {
		rate = float64(x.RowsNow) / s
	}
	eta := "?"
	if frac > 0 && x.Elapsed > 0 {
		eta = (time.Duration(float64(x.Elapsed)/frac) - x.Elapsed).Round(time.Second).String()
	}
	what := fmt.Sprintf("%d rows, %.0f rows/s, ETA %s", x.Rows, rate, eta)
	if x.Resuming {
		what = "re-reading what was imported before"
	}
	if x.Rejected > 0 {
		what += fmt.Sprintf(", %d rejected", x.Rejected)
	}
	if !p.tty {
		fmt.Fprintf(p.w, "%5.1f%%  %s / %s  %s\n", 100*frac, humanize.IBytes(uint64(x.Bytes)), humanize.IBytes(uint64(x.Size)), what)
		return
	}
	const width = 30
	n := int(frac * width)
	bar := strings.Repeat("█", n) + strings.Repeat("░", width-n)
	fmt.Fprintf(p.w, "\r%s %5.1f%%  %s / %s  %s\x1b[K", bar, 100*frac, humanize.IBytes(uint64(x.Bytes)), humanize.IBytes(uint64(x.Size)), what)
	p.drawn = true
}

// println prints a message on its own line.
func (p *progress) println(msg string) {
	if p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
	fmt.Fprintln(p.w, msg)
	p.drawn = false
}

// done ends the bar's line.
func (p *progress) done() {
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}

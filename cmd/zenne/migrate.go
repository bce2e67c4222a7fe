package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/zenne-city/zenne/internal/app"
	"github.com/zenne-city/zenne/internal/jsonld"
	"github.com/zenne-city/zenne/internal/migrate"
)

const migrateUsage = `Usage:
  zenne migrate --from URL --to URL

Copies a whole store into another, empty one: @contexts, every tenant's
entities and history, subscriptions and the notifications waiting for
delivery. Then it counts both sides and says whether they match. The usual
way up is from the embedded store to PostgreSQL:

  zenne migrate --from sqlite:///var/lib/zenne/zenne.db --to postgres://zenne@db/zenne

Stop the zenne that uses the source first: nothing may write to either store
while they are copied. A target that already holds data is refused.

Flags:
`

// migrateCmd runs `zenne migrate`.
func migrateCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, migrateUsage)
		fs.PrintDefaults()
	}
	fromURL := fs.String("from", "", "store to copy, e.g. sqlite:///var/lib/zenne/zenne.db")
	toURL := fs.String("to", "", "empty store to copy into, e.g. postgres://zenne@db/zenne")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *fromURL == "" || *toURL == "" || fs.NArg() > 0 {
		fs.Usage()
		return errors.New("give --from and --to store URLs (and nothing else)")
	}
	if *fromURL == *toURL {
		return errors.New("--from and --to name the same store")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	core := jsonld.NewResolver(jsonld.Options{}).Core()
	from, err := app.OpenStore(ctx, app.Config{StoreURL: *fromURL}, core)
	if err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	defer from.Close()
	to, err := app.OpenStore(ctx, app.Config{StoreURL: *toURL}, core)
	if err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	defer to.Close()
	src, ok := from.(migrate.Source)
	if !ok {
		return fmt.Errorf("--from %s: this store cannot be read whole", *fromURL)
	}
	dst, ok := to.(migrate.Target)
	if !ok {
		return fmt.Errorf("--to %s: this store cannot take history in bulk", *toURL)
	}

	fmt.Fprintf(stderr, "copying %s to %s\n", app.RedactURL(*fromURL), app.RedactURL(*toURL))
	start := time.Now()
	p := &migrateProgress{w: stderr}
	rep, err := migrate.Copy(ctx, src, dst, migrate.Options{Progress: p.update})
	p.finish()
	if rep != nil {
		printMigrateReport(stdout, rep)
	}
	if err != nil {
		if errors.Is(err, migrate.ErrTargetNotEmpty) {
			return fmt.Errorf("%w\n\nzenne migrate only fills an empty store: give --to a new database", err)
		}
		if errors.Is(err, context.Canceled) {
			return errors.New("interrupted: the target holds part of the data; empty it (a new database) before running the copy again")
		}
		return err
	}
	fmt.Fprintf(stdout, "copied and verified in %s\n", time.Since(start).Round(100*time.Millisecond))
	return nil
}

// migrateProgress prints a line when the copy moves to another stage or
// tenant, and every 5 seconds within one.
type migrateProgress struct {
	w       io.Writer
	last    migrate.Progress
	printed bool // last is on screen
	at      time.Time
}

func (p *migrateProgress) update(x migrate.Progress) {
	changed := x.Stage != p.last.Stage || x.Tenant != p.last.Tenant
	if !changed && time.Since(p.at) < 5*time.Second {
		p.last, p.printed = x, false
		return
	}
	p.print(x)
}

func (p *migrateProgress) print(x migrate.Progress) {
	tenant := ""
	if x.Tenant != "" {
		tenant = fmt.Sprintf(" (tenant %s)", x.Tenant)
	}
	switch {
	case x.Total > 0:
		fmt.Fprintf(p.w, "%-13s%s: %d of %d\n", x.Stage, tenant, x.Done, x.Total)
	case x.Done > 0:
		fmt.Fprintf(p.w, "%-13s%s: %d\n", x.Stage, tenant, x.Done)
	default:
		fmt.Fprintf(p.w, "%-13s%s\n", x.Stage, tenant)
	}
	p.last, p.printed, p.at = x, true, time.Now()
}

// finish prints where the copy ended, if that is not on screen yet.
func (p *migrateProgress) finish() {
	if !p.printed && p.last.Stage != "" {
		p.print(p.last)
	}
}

func printMigrateReport(w io.Writer, rep *migrate.Report) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "tenant\tentities\tcopied\thistory instances\tcopied\ttypes\tattributes")
	for _, t := range rep.Tenants {
		name := t.Tenant
		if name == "" {
			name = "(default)"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t%s\n", name, t.Entities, t.EntitiesTo, t.History, t.HistoryTo, same(t.TypesMatch), same(t.AttrsMatch))
	}
	tw.Flush()
	fmt.Fprintf(w, "@contexts: %d, subscriptions: %d, notifications waiting: %d\n", rep.Contexts, rep.Subscriptions, rep.Notifications)
	for _, r := range rep.Records {
		fmt.Fprintf(w, "records %s: %d, copied %d\n", r.Kind, r.Records, r.RecordsTo)
	}
}

func same(ok bool) string {
	if ok {
		return "same"
	}
	return "DIFFER"
}

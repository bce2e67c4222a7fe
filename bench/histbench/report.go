package main

import (
	"fmt"
	"io"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/zenne-city/zenne/bench/internal/benchutil"
)

// report collects the figures and prints them as a markdown table.
type report struct {
	rows, size   int64
	sensors      int
	days         int
	every        time.Duration
	parse, store rated
	imp          importResult
	sz           sizes
	queries      []*queryResult
	notes        []string
}

// The goals of issue 3: a year of 15-minute readings of 1,000 sensors
// (35,040,000 rows) in under 2 minutes, at most 4 bytes per sample.
const (
	goalRows    = 35_040_000
	goalTime    = 2 * time.Minute
	goalRate    = goalRows / 120
	goalPerSamp = 4.0
)

func (r *report) print(w io.Writer) {
	fmt.Fprintf(w, "\n<!-- histbench, %d sensors × %d days every %s: %d rows, %s CSV -->\n", r.sensors, r.days, r.every, r.rows, humanize.IBytes(uint64(r.size)))
	fmt.Fprintln(w, "| Scenario | Figure | Goal | Met | Limit (same run) | Ratio to limit |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	row := func(scenario, figure, goal, met, limit, ratio string) {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", scenario, figure, goal, met, limit, ratio)
	}
	row("limit: CSV parse, nothing stored", fmt.Sprintf("%.0f rows/s", r.parse.rate()), "—", "—", "—", "—")
	if r.store.rows > 0 {
		row(fmt.Sprintf("limit: store only (ImportHistory of %d parsed rows)", r.store.rows), fmt.Sprintf("%.0f rows/s", r.store.rate()), "—", "—", "—", "—")
	}
	limit, ratio := fmt.Sprintf("%.0f rows/s (parse)", r.parse.rate()), fmt.Sprintf("%.2f", r.imp.rate()/r.parse.rate())
	if r.store.rows > 0 && r.store.rate() < r.parse.rate() {
		limit, ratio = fmt.Sprintf("%.0f rows/s (store only)", r.store.rate()), fmt.Sprintf("%.2f", r.imp.rate()/r.store.rate())
	}
	goal := fmt.Sprintf("≥ %d rows/s (35,040,000 in < 2 min)", goalRate)
	row(fmt.Sprintf("import history, %d rows", r.imp.rows),
		fmt.Sprintf("%s, %.0f rows/s", r.imp.d.Round(100*time.Millisecond), r.imp.rate()), goal, benchutil.Verdict(r.imp.rate() >= goalRate), limit, ratio)
	perChunk := float64(r.sz.chunkBytes) / float64(r.sz.samples)
	row("history size: chunk data", fmt.Sprintf("%s, %.2f bytes/sample", humanize.IBytes(uint64(r.sz.chunkBytes)), perChunk), "≤ 4 bytes/sample", benchutil.Verdict(perChunk <= goalPerSamp), "—", "—")
	row("history size: database file", fmt.Sprintf("%s, %.2f bytes/sample", humanize.IBytes(uint64(r.sz.fileBytes)), float64(r.sz.fileBytes)/float64(r.sz.samples)), "(not a goal)", "—", "—", "—")
	r.queryRows(row)
	for _, n := range r.notes {
		fmt.Fprintf(w, "\nNote: %s\n", n)
	}
}

// printQueries prints the query figures alone (-queries-only).
func (r *report) printQueries(w io.Writer) {
	fmt.Fprintf(w, "\n<!-- histbench -queries-only, %d sensors × %d days every %s -->\n", r.sensors, r.days, r.every)
	fmt.Fprintln(w, "| Scenario | Figure | Goal | Met |")
	fmt.Fprintln(w, "|---|---|---|---|")
	r.queryRows(func(scenario, figure, goal, met, _, _ string) {
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", scenario, figure, goal, met)
	})
}

func (r *report) queryRows(row func(scenario, figure, goal, met, limit, ratio string)) {
	for _, q := range r.queries {
		goal, met := "(not a goal for this data set)", "—"
		if q.goal > 0 {
			goal, met = "p50 < "+ms(q.goal), benchutil.Verdict(q.pct(50) < q.goal)
		}
		row(q.name+" ("+q.what+")", fmt.Sprintf("p50 %s, max %s", ms(q.pct(50)), ms(q.pct(100))), goal, met, "—", "—")
	}
}

package main

import (
	"fmt"
	"io"
	"time"

	"github.com/zenne-city/zenne/bench/internal/benchutil"
)

// report collects the figures and prints them as a markdown table.
type report struct {
	entities int
	rows     []row
	notes    []string
}

type row struct {
	scenario, figure, goal, met, limit, ratio string
}

func (r *report) add(scenario, figure, goal string, ok bool, limit, ratio string) {
	r.rows = append(r.rows, row{scenario, figure, goal, benchutil.Verdict(ok), limit, ratio})
}

func (r *report) limits(cfg *config, noop *stats, raw float64) {
	if noop != nil {
		r.rows = append(r.rows, row{"limit: no-op net/http handler, " + fmt.Sprint(cfg.concurrency) + " keep-alive clients",
			fmt.Sprintf("%.0f req/s, p99 %s", noop.Rate(), ms(noop.Pct(99))), "—", "—", "—", "—"})
	}
	if raw > 0 {
		r.rows = append(r.rows, row{"limit: raw SQLite insert (modernc, 1 tx, WAL)",
			fmt.Sprintf("%.0f rows/s", raw), "—", "—", "—", "—"})
	}
}

func (r *report) upsert(cfg *config, s *stats, raw float64) {
	rate := float64(cfg.entities) / s.Elapsed.Seconds()
	limit, ratio := "—", "—"
	if raw > 0 {
		limit, ratio = fmt.Sprintf("%.0f rows/s (raw SQLite)", raw), fmt.Sprintf("%.2f", rate/raw)
	}
	r.add(fmt.Sprintf("batch upsert, %d/batch, %d in flight", cfg.batch, cfg.loadConc),
		fmt.Sprintf("%.0f entities/s (batch p99 %s)", rate, ms(s.Pct(99))), "≥ 100,000/s", rate >= 100_000, limit, ratio)
}

func (r *report) patch(cfg *config, s *stats, noop *stats) {
	limit, ratio := "—", "—"
	if noop != nil {
		limit, ratio = fmt.Sprintf("%.0f req/s (no-op)", noop.Rate()), fmt.Sprintf("%.3f", s.Rate()/noop.Rate())
	}
	name := fmt.Sprintf("PATCH /entities/{id}/attrs, %d clients", cfg.concurrency)
	r.add(name, fmt.Sprintf("%.0f updates/s", s.Rate()), "≥ 15,000/s", s.Rate() >= 15_000, limit, ratio)
	r.add(name, fmt.Sprintf("p50 %s, p95 %s, p99 %s", ms(s.Pct(50)), ms(s.Pct(95)), ms(s.Pct(99))), "p99 < 20 ms", s.Pct(99) < 20*time.Millisecond,
		"—", "—")
	r.errors(name, s)
}

func (r *report) query(cfg *config, s *stats, noop *stats, matches float64) {
	limit, ratio := "—", "—"
	if noop != nil {
		limit, ratio = fmt.Sprintf("%.0f req/s (no-op, %d clients)", noop.Rate(), cfg.concurrency), fmt.Sprintf("%.3f", s.Rate()/noop.Rate())
	}
	name := fmt.Sprintf("type + q + near 500 m, %d clients (~%.0f matches, 20 returned)", cfg.queryConc, matches)
	r.add(name, fmt.Sprintf("%.0f queries/s", s.Rate()), "≥ 2,000/s", s.Rate() >= 2000, limit, ratio)
	r.add(name, fmt.Sprintf("p50 %s, p95 %s, p99 %s", ms(s.Pct(50)), ms(s.Pct(95)), ms(s.Pct(99))), "p95 < 20 ms", s.Pct(95) < 20*time.Millisecond,
		"—", "—")
	r.errors(name, s)
}

// count reports the count cases; the goal is about the first (one type).
func (r *report) count(res []countResult) {
	for i, c := range res {
		name := fmt.Sprintf("%s (%d matches)", c.what, c.matches)
		figure := fmt.Sprintf("p50 %s, p99 %s, max %s", ms(c.s.Pct(50)), ms(c.s.Pct(99)), ms(c.s.Pct(100)))
		if i > 0 {
			r.rows = append(r.rows, row{name, figure, "(not a goal)", "—", "—", "—"})
			continue
		}
		r.add(name, figure, "< 100 ms", c.s.Pct(100) < 100*time.Millisecond, "—", "—")
	}
}

func (r *report) startup(s *startupResult) {
	r.add(fmt.Sprintf("start-up, exec to /health 200 (%.0f MiB store)", mib(s.dbBytes)),
		s.startup.Round(time.Millisecond).String(), "< 3 s", s.startup < 3*time.Second, "—", "—")
	r.add("start-up, exec to the first query (a count with q) answered",
		s.firstQuery.Round(time.Millisecond).String(), "< 3 s", s.firstQuery < 3*time.Second, "—", "—")
	r.add("RSS (VmRSS after a count and 5 s of queries; VmHWM)",
		fmt.Sprintf("%.0f MiB (ready: %.0f MiB, peak %.0f MiB)", mib(s.rssAfter), mib(s.rssReady), mib(s.hwm)),
		"< 1.5 GB", s.rssAfter < 1500*1000*1000 && s.hwm < 1500*1000*1000, "—", "—")
}

func (r *report) errors(name string, s *stats) {
	if s.Errs > 0 {
		r.notes = append(r.notes, fmt.Sprintf("%s: %d requests failed (first: %v)", name, s.Errs, s.FirstErr))
	}
}

func (r *report) print(w io.Writer) {
	fmt.Fprintf(w, "\n<!-- zennebench, %d entities -->\n", r.entities)
	fmt.Fprintln(w, "| Scenario | Figure | Goal | Met | Limit (same run) | Ratio to limit |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, x := range r.rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", x.scenario, x.figure, x.goal, x.met, x.limit, x.ratio)
	}
	for _, n := range r.notes {
		fmt.Fprintf(w, "\nNote: %s\n", n)
	}
}

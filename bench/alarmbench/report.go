package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/zenne-city/zenne/bench/internal/benchutil"
	"github.com/zenne-city/zenne/internal/alarm"
)

// report collects the figures and prints them as a markdown table.
type report struct {
	env     benchutil.Env
	command string
	rows    []row
	notes   []string
}

type row struct {
	scenario, figure, goal, met, limit, ratio string
}

func (r *report) add(scenario, figure, goal, met, limit, ratio string) {
	r.rows = append(r.rows, row{scenario, figure, goal, met, limit, ratio})
}

func (r *report) note(s string) { r.notes = append(r.notes, s) }

func mean(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

func rates(rs []*loadResult) (vals []float64, text string) {
	var parts []string
	for _, r := range rs {
		vals = append(vals, r.Rate())
		parts = append(parts, fmt.Sprintf("%.0f", r.Rate()))
	}
	return vals, strings.Join(parts, " and ") + " updates/s"
}

// keptUp is how far behind the evaluation may be when the load stops for
// B's rate to count: one second of updates.
const keptUp = time.Second

func (r *report) throughput(cfg *config, noop *loadResult, as, bs []*loadResult, lags []*evalLag) {
	a, aText := rates(as)
	b, bText := rates(bs)
	ratio := mean(b) / mean(a)
	limit := fmt.Sprintf("%.0f req/s (no-op)", noop.Rate())
	r.add(fmt.Sprintf("A: PATCH fillingLevel, no rules, %d entities, %d clients", cfg.entities, cfg.concurrency),
		aText, "—", "—", limit, fmt.Sprintf("%.3f", mean(a)/noop.Rate()))
	r.add(fmt.Sprintf("B: the same with %d per-entity threshold rules + %d type-wide (%.4g evaluations per update)", cfg.rules, cfg.typeRules,
		float64(cfg.typeRules)+float64(cfg.rules)/float64(cfg.entities)),
		bText, "—", "—", limit, fmt.Sprintf("%.3f", mean(b)/noop.Rate()))
	worst := 0.0 // seconds of load the evaluation was behind at the end of a B
	never := false
	var evals, behind, opened []string
	for i, l := range lags {
		sec := l.backlog / bs[i].Rate()
		worst = max(worst, sec)
		never = never || l.never
		evals = append(evals, fmt.Sprintf("%.0f", l.evalRate))
		if l.never {
			behind = append(behind, fmt.Sprintf("%.0f updates (%.1f s of load), never caught up (%.0f never evaluated)", l.backlog, sec, l.missing))
		} else {
			behind = append(behind, fmt.Sprintf("%.0f updates (%.1f s of load), caught up in %s", l.backlog, sec, l.caughtUp.Round(time.Millisecond)))
		}
		opened = append(opened, fmt.Sprintf("%.0f opened, %.0f cleared, %d Alert entities added", l.opened, l.cleared, l.stored))
		if l.ruleErrors > 0 || l.writeErrs > 0 {
			r.note(fmt.Sprintf("B%d: %.0f rule errors, %.0f alert write errors", i+1, l.ruleErrors, l.writeErrs))
		}
	}
	kept := !never && worst <= keptUp.Seconds()
	r.add("B/A: update rate with the rules", fmt.Sprintf("%.0f%% (mean of B / mean of A)", 100*ratio),
		"≥ 80%, rules keeping up", benchutil.Verdict(ratio >= 0.8 && kept), "—", "—")
	r.add("B: updates evaluated per second while measured", strings.Join(evals, " and "), "= B's rate", benchutil.Verdict(kept), "—", "—")
	r.add("B: evaluation behind when the load stopped", strings.Join(behind, "; "), fmt.Sprintf("≤ %s of load", keptUp), benchutil.Verdict(kept), "—", "—")
	r.add(fmt.Sprintf("B: alerts (level above %v opens, below %v clears)", fireAbove, clearBelow), strings.Join(opened, "; "), "—", "—", "—", "—")
	for i, x := range append(append([]*loadResult{}, as...), bs...) {
		name := fmt.Sprintf("A%d", i+1)
		if i >= len(as) {
			name = fmt.Sprintf("B%d", i-len(as)+1)
		}
		if x.Errs > 0 {
			r.note(fmt.Sprintf("%s: %d requests failed (first: %v)", name, x.Errs, x.FirstErr))
		}
	}
	for i, x := range bs {
		r.note(fmt.Sprintf("B%d PATCH latency: p50 %s, p99 %s (A%d: p50 %s, p99 %s)", i+1, ms(x.Pct(50)), ms(x.Pct(99)), i+1, ms(as[i].Pct(50)), ms(as[i].Pct(99))))
	}
}

func (r *report) latency(cfg *config, res *latencyResult) {
	n := len(res.sinceAck)
	r.add(fmt.Sprintf("update → Alert readable (%d probes, background %.0f updates/s, %d rules)", cfg.probes, res.background.Rate(), cfg.rules+cfg.typeRules),
		fmt.Sprintf("p50 %s, p95 %s, p99 %s, max %s; %d lost", ms(pct(res.sinceAck, 50)), ms(pct(res.sinceAck, 95)), ms(pct(res.sinceAck, 99)), ms(pct(res.sinceAck, 100)), res.lost),
		"p99 < 100 ms", benchutil.Verdict(n > 0 && res.lost == 0 && pct(res.sinceAck, 99) < 100*time.Millisecond), "—", "—")
	r.add("latency background load (values that fire nothing)", res.background.String(), fmt.Sprintf("%d/s", cfg.rate),
		benchutil.Verdict(res.background.Rate() >= 0.95*float64(cfg.rate)), "—", "—")
	if res.lost > 0 {
		r.note(fmt.Sprintf("latency: %d of %d probes saw no alert within 10 s", res.lost, cfg.probes))
	}
}

func (r *report) backtest(cfg *config, reps []*alarm.Report, rows int64, chk leakCheck) {
	var runs []string
	for _, x := range reps {
		runs = append(runs, x.Elapsed.Round(time.Millisecond).String())
	}
	med := medianElapsed(reps)
	last := reps[len(reps)-1]
	r.add(fmt.Sprintf("back-test of a leak rule, a year of 15-minute readings of %d meters", cfg.meters),
		fmt.Sprintf("p50 %s (runs: %s); %d readings replayed of %d stored, %d entities, %d firings",
			med.Round(time.Millisecond), strings.Join(runs, ", "), last.Readings, rows, last.Entities, len(last.Firings)),
		"< 5 s", benchutil.Verdict(med < 5*time.Second), "—", "—")
	r.add("back-test finds the leaks", chk.String(), "all, no false alarm", benchutil.Verdict(chk.ok() && last.Readings == rows), "—", "—")
	if last.Readings != rows {
		r.note(fmt.Sprintf("backtest: %d readings replayed, %d stored", last.Readings, rows))
	}
	for _, p := range chk.problems {
		r.note("backtest: " + p)
	}
}

func (r *report) print(w io.Writer) {
	fmt.Fprintf(w, "\n<!-- alarmbench -->\n%s\n\n```sh\n%s\n```\n\n", r.env, r.command)
	fmt.Fprintln(w, "| Scenario | Figure | Goal | Met | Limit (same run) | Ratio to limit |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, x := range r.rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", x.scenario, x.figure, x.goal, x.met, x.limit, x.ratio)
	}
	for _, n := range r.notes {
		fmt.Fprintf(w, "\nNote: %s\n", n)
	}
}

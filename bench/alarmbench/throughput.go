package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"time"

	"github.com/zenne-city/zenne/bench/internal/benchutil"
)

// Throughput: the PATCH rate at full speed without rules (A) and with
// cfg.rules per-entity rules and cfg.typeRules type-wide ones (B),
// alternately in one process, rules created before and deleted after each
// B. Every update of B is evaluated against each type-wide rule and its
// entity's own rule, so the service's evaluation counter says exactly how
// far it got: B's rate only counts if the evaluation kept up with it.

// evalLag is how the rules kept up with one B.
type evalLag struct {
	sent     int64   // updates acknowledged during B (warm-up included)
	evalRate float64 // updates evaluated per second during the measured part
	backlog  float64 // updates not yet evaluated when the load stopped
	caughtUp time.Duration
	never    bool    // the evaluation stalled before catching up
	missing  float64 // then: updates never evaluated
	opened   float64 // alerts opened during B
	cleared  float64
	stored   int // Alert entities added to the store during B
	// The rules' saved states after B: records, bytes, the largest.
	states, stateBytes, largestState int
	ruleErrors                       float64
	writeErrs                        float64
}

func throughputScenario(ctx context.Context, cfg *config, dir string, rep *report, out io.Writer) error {
	if cfg.storeURL == "" {
		os.RemoveAll(dir)
	}
	fmt.Fprintf(out, "\n## throughput: %d WasteContainers, %d per-entity rules + %d type-wide, %d clients, %s per measurement (+%s warm-up), %d rounds\n",
		cfg.entities, cfg.rules, cfg.typeRules, cfg.concurrency, cfg.duration, cfg.warmup, cfg.rounds)
	full := func(seed uint64) loadOpts {
		return loadOpts{workers: cfg.concurrency, warmup: cfg.warmup, duration: cfg.duration, seed: seed, ruled: cfg.rules,
			entity: func(r *rand.Rand) int { return r.IntN(cfg.entities) },
			value:  func(r *rand.Rand) float64 { return r.Float64() }}
	}

	// The machine's limit first, while nothing else runs.
	noopURL, stopNoop, err := noopServer()
	if err != nil {
		return err
	}
	noopClient := benchutil.WithKey(benchutil.NewClient(cfg.concurrency), benchutil.AdminKey()) // zenne's requests carry a key too
	m := benchutil.StartCPU()
	noop := patchLoad(ctx, target{client: noopClient, base: noopURL}, full(99))
	stopNoop()
	noopClient.CloseIdleConnections()
	fmt.Fprintf(out, "limit  no-op net/http handler, same client and requests: %s (%s)\n", noop, m)
	rep.add("limit: no-op net/http handler, same PATCH requests, "+fmt.Sprint(cfg.concurrency)+" keep-alive clients",
		fmt.Sprintf("%.0f req/s, p99 %s", noop.Rate(), ms(noop.Pct(99))), "—", "—", "—", "—")

	s, err := startServer(ctx, cfg, dir, "throughput")
	if err != nil {
		return err
	}
	defer s.close()
	took, err := s.loadBins(ctx, cfg.entities)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "loaded %d WasteContainers in %s\n", cfg.entities, took.Round(time.Millisecond))

	// Evaluations per update: every type-wide rule, and the entity's own
	// rule if it has one.
	perUpdate := float64(cfg.typeRules) + float64(cfg.rules)/float64(cfg.entities)
	var as, bs []*loadResult
	var lags []*evalLag
	for round := 1; round <= cfg.rounds; round++ {
		if err := sleep(ctx, cfg.settle); err != nil {
			return err
		}
		var a *loadResult
		if err := profiled(cfg, fmt.Sprintf("throughput-A%d", round), out, func() error {
			a = patchLoad(ctx, s.target(), full(uint64(2*round)))
			return ctx.Err()
		}); err != nil {
			return err
		}
		as = append(as, a)
		fmt.Fprintf(out, "A%d     no rules: %s\n", round, a)

		var ids []string
		if err := profiled(cfg, fmt.Sprintf("rules-create%d", round), out, func() error {
			ids, took, err = s.createRules(ctx, round)
			return err
		}); err != nil {
			return err
		}
		fmt.Fprintf(out, "rules  created %d in %s (%.0f/s, %d goroutines)\n", len(ids), took.Round(time.Millisecond), float64(len(ids))/took.Seconds(), cfg.ruleConc)
		if round == 1 {
			rep.add(fmt.Sprintf("creating %d rules (Service.CreateRule, %d goroutines)", len(ids), cfg.ruleConc),
				fmt.Sprintf("%s (%.0f/s)", took.Round(time.Millisecond), float64(len(ids))/took.Seconds()), "—", "—", "—", "—")
		}
		if err := s.rulesEvaluated(ctx, round, len(ids), out, rep); err != nil {
			return err
		}
		if err := sleep(ctx, cfg.settle); err != nil {
			return err
		}

		before, err := s.metrics()
		if err != nil {
			return err
		}
		alertsBefore, err := s.alerts()
		if err != nil {
			return err
		}
		var b *loadResult
		var atMeasure alarmMetrics
		if err := profiled(cfg, fmt.Sprintf("throughput-B%d", round), out, func() error {
			done := make(chan struct{})
			go func() {
				defer close(done)
				if sleep(ctx, cfg.warmup) == nil {
					atMeasure, _ = s.metrics()
				}
			}()
			b = patchLoad(ctx, s.target(), full(uint64(2*round+1)))
			<-done
			return ctx.Err()
		}); err != nil {
			return err
		}
		end, err := s.metrics()
		if err != nil {
			return err
		}
		bs = append(bs, b)
		lag := &evalLag{sent: b.sent}
		want := before.evaluations + float64(b.sent*int64(cfg.typeRules)+b.sentRuled)
		lag.backlog = max(0, want-end.evaluations) / perUpdate
		if !atMeasure.at.IsZero() {
			lag.evalRate = (end.evaluations - atMeasure.evaluations) / perUpdate / end.at.Sub(atMeasure.at).Seconds()
		}
		final, caught, err := s.catchUp(ctx, want, end)
		if err != nil {
			return err
		}
		lag.caughtUp = caught
		if final.evaluations < want {
			lag.never, lag.missing = true, (want-final.evaluations)/perUpdate
		}
		lag.opened, lag.cleared = final.opened-before.opened, final.cleared-before.cleared
		lag.ruleErrors, lag.writeErrs = final.errors-before.errors, final.writeErrors-before.writeErrors
		lag.stored = s.storedAlerts(ctx, alertsBefore+int(lag.opened)) - alertsBefore
		if lag.states, lag.stateBytes, lag.largestState, err = s.savedStates(ctx); err != nil {
			return err
		}
		lags = append(lags, lag)
		fmt.Fprintf(out, "B%d     %d rules: %s\n", round, len(ids), b)
		fmt.Fprintf(out, "       %s\n", lag)

		if err := profiled(cfg, fmt.Sprintf("rules-delete%d", round), out, func() error {
			took, err = s.deleteRules(ctx, ids)
			return err
		}); err != nil {
			return err
		}
		fmt.Fprintf(out, "rules  deleted %d in %s\n", len(ids), took.Round(time.Millisecond))
		if round == 1 {
			rep.add("deleting them (Service.DeleteRule, until their states are gone)",
				took.Round(time.Millisecond).String(), "—", "—", "—", "—")
		}
	}
	rep.throughput(cfg, noop, as, bs, lags)
	for _, l := range s.logs.summary() {
		rep.note("throughput: zenne logged " + l)
	}
	return nil
}

// catchUp waits until the service has made want evaluations, or has made
// none for 15 s, and says how long that took.
func (s *server) catchUp(ctx context.Context, want float64, m alarmMetrics) (alarmMetrics, time.Duration, error) {
	start, last, progress := m.at, m.evaluations, m.at
	for m.evaluations < want {
		if err := sleep(ctx, 10*time.Millisecond); err != nil {
			return m, 0, err
		}
		var err error
		if m, err = s.metrics(); err != nil {
			return m, 0, err
		}
		if m.evaluations > last {
			last, progress = m.evaluations, m.at
		} else if m.at.Sub(progress) > 15*time.Second {
			break
		}
	}
	return m, m.at.Sub(start), nil
}

// storedAlerts waits up to 5 s for the Alert entities to number want (the
// alerts are written after their evaluation) and returns how many there are.
func (s *server) storedAlerts(ctx context.Context, want int) int {
	n := -1
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		var err error
		if n, err = s.alerts(); err != nil || n >= want {
			break
		}
		if sleep(ctx, 50*time.Millisecond) != nil {
			break
		}
	}
	return n
}

func (l *evalLag) String() string {
	s := fmt.Sprintf("evaluation: %.0f updates/s evaluated while measured; %.0f updates behind when the load stopped", l.evalRate, l.backlog)
	if l.never {
		s += fmt.Sprintf("; NEVER caught up: %.0f updates not evaluated", l.missing)
	} else {
		s += fmt.Sprintf(", caught up %s later", l.caughtUp.Round(time.Millisecond))
	}
	s += fmt.Sprintf("; alerts opened %.0f, cleared %.0f, Alert entities added %d", l.opened, l.cleared, l.stored)
	s += fmt.Sprintf("; rule states saved: %d records, %.1f MB, the largest %.0f kB", l.states, float64(l.stateBytes)/1e6, float64(l.largestState)/1e3)
	if l.ruleErrors > 0 || l.writeErrs > 0 {
		s += fmt.Sprintf("; %0.f rule errors, %.0f alert write errors", l.ruleErrors, l.writeErrs)
	}
	return s
}

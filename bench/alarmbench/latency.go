package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"time"
)

// Latency: with the rules of the throughput scenario and a background load
// at cfg.rate of levels that fire nothing (below clearBelow), a probe every
// cfg.probeEvery sets an entity's level above the threshold with an
// observedAt, and polls the alert its rule opens (its id follows from the
// rule, the entity and observedAt) every millisecond; the clock starts when
// the update is acknowledged. The probe then sets the level back, which
// clears the alert. Probes use entities the background load leaves alone,
// so no background update overtakes a probe's reading.

type latencyResult struct {
	sinceAck, sinceSend []time.Duration // sorted
	lost                int
	background          *loadResult
	polls               int
}

func pct(lat []time.Duration, p float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	return lat[int(p/100*float64(len(lat)-1))]
}

func latencyScenario(ctx context.Context, cfg *config, dir string, rep *report, out io.Writer) error {
	if cfg.storeURL == "" {
		os.RemoveAll(dir)
	}
	// Probe entities: enough that each is probed at most every
	// few seconds, at most half the entities.
	pool := min(cfg.rules, cfg.entities/2, max(cfg.probes, 1000))
	fmt.Fprintf(out, "\n## latency: %d WasteContainers, %d per-entity rules + %d type-wide, background %d updates/s on %d clients, %d probes every %s on %d entities\n",
		cfg.entities, cfg.rules, cfg.typeRules, cfg.rate, cfg.concurrency, cfg.probes, cfg.probeEvery, pool)
	s, err := startServer(ctx, cfg, dir, "latency")
	if err != nil {
		return err
	}
	defer s.close()
	took, err := s.loadBins(ctx, cfg.entities)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "loaded %d WasteContainers in %s\n", cfg.entities, took.Round(time.Millisecond))
	ids, took, err := s.createRules(ctx, 1)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "rules  created %d in %s\n", len(ids), took.Round(time.Millisecond))
	if err := s.rulesEvaluated(ctx, 1, len(ids), out, rep); err != nil {
		return err
	}
	if err := sleep(ctx, cfg.settle); err != nil {
		return err
	}

	var res *latencyResult
	if err := profiled(cfg, "latency", out, func() error {
		var err error
		res, err = s.probes(ctx, pool)
		return err
	}); err != nil {
		return err
	}
	fmt.Fprintf(out, "background %s\n", res.background)
	fmt.Fprintf(out, "probes %d, %d without an alert within 10 s; acknowledgement to alert: p50 %s p95 %s p99 %s max %s; send to alert: p50 %s p99 %s; %.1f polls per probe\n",
		cfg.probes, res.lost, ms(pct(res.sinceAck, 50)), ms(pct(res.sinceAck, 95)), ms(pct(res.sinceAck, 99)), ms(pct(res.sinceAck, 100)),
		ms(pct(res.sinceSend, 50)), ms(pct(res.sinceSend, 99)), float64(res.polls)/float64(cfg.probes))
	rep.latency(cfg, res)
	for _, l := range s.logs.summary() {
		rep.note("latency: zenne logged " + l)
	}
	return nil
}

// probes runs the background load and the probes on entities [0, pool).
func (s *server) probes(ctx context.Context, pool int) (*latencyResult, error) {
	cfg := s.cfg
	bgCtx, stop := context.WithCancel(ctx)
	defer stop()
	bgDone := make(chan *loadResult, 1)
	go func() {
		bgDone <- patchLoad(bgCtx, s.target(), loadOpts{workers: cfg.concurrency, warmup: cfg.warmup, rate: float64(cfg.rate), seed: 7,
			entity: func(r *rand.Rand) int { return pool + r.IntN(cfg.entities-pool) },
			value:  func(r *rand.Rand) float64 { return r.Float64() * clearBelow * 0.98 }})
	}()
	if err := sleep(ctx, cfg.warmup); err != nil {
		return nil, err
	}
	client := s.newClient(2)
	defer client.CloseIdleConnections()
	res := &latencyResult{}
	var firstErr error
	next := time.Now()
	for k := range cfg.probes {
		if err := sleep(ctx, time.Until(next)); err != nil {
			return nil, err
		}
		next = next.Add(cfg.probeEvery)
		i := k % pool
		p, err := s.fire(ctx, client, i, binRuleID(1, i), 10*time.Second)
		res.polls += p.polls
		switch {
		case errors.Is(err, errNoAlert):
			res.lost++
			if firstErr == nil {
				firstErr = err
			}
		case err != nil:
			return nil, err
		default:
			res.sinceAck = append(res.sinceAck, p.sinceAck)
			res.sinceSend = append(res.sinceSend, p.sinceSend)
		}
		if err := s.calm(client, i); err != nil {
			return nil, err
		}
		if time.Now().After(next) {
			next = time.Now() // a slow probe: the next one at once
		}
	}
	stop()
	res.background = <-bgDone
	slices.Sort(res.sinceAck)
	slices.Sort(res.sinceSend)
	if firstErr != nil {
		fmt.Fprintf(os.Stderr, "alarmbench: first lost probe: %v\n", firstErr)
	}
	return res, nil
}

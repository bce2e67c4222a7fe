package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zenne-city/zenne/bench/internal/benchutil"
	"github.com/zenne-city/zenne/internal/alarm"
)

// The throughput and latency data set: WasteContainers with a fillingLevel
// in [0, 1), each watched by a rule of its own (a per-sensor threshold:
// above 0.98, cleared below 0.5) and by a few type-wide thresholds above
// 1, which every update is evaluated against and none fires.

// fireAbove is the per-sensor threshold (-fire-above): with levels drawn
// uniformly from [0, 1), 1 - fireAbove of the updates of a calm sensor open
// an alert.
var fireAbove = 0.98

const clearBelow = 0.5

// loadBins stores n WasteContainers by batch upsert, with levels below
// clearBelow.
func (s *server) loadBins(ctx context.Context, n int) (time.Duration, error) {
	const batch, inFlight = 1000, 4
	start := time.Now()
	now := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, inFlight)
	for w := range inFlight {
		wg.Go(func() {
			for from := int(next.Add(batch) - batch); from < n && ctx.Err() == nil; from = int(next.Add(batch) - batch) {
				b := []byte{'['}
				for i := from; i < min(from+batch, n); i++ {
					if i > from {
						b = append(b, ',')
					}
					r := rand.New(rand.NewPCG(uint64(i), 0xb1))
					lon, lat := benchutil.RandomPoint(r)
					b = fmt.Appendf(b, `{"id":%q,"type":"WasteContainer","fillingLevel":{"type":"Property","value":%.3f,"observedAt":%q},`+
						`"name":{"type":"Property","value":"Bin %d"},"location":{"type":"GeoProperty","value":{"type":"Point","coordinates":[%.6f,%.6f]}}}`,
						binID(i), r.Float64()*clearBelow*0.9, stamp(now), i, lon, lat)
				}
				b = append(b, ']')
				if _, _, err := s.do(s.client, http.MethodPost, "/ngsi-ld/v1/entityOperations/upsert", b); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, fmt.Errorf("load entities: %w", err)
	}
	return time.Since(start), ctx.Err()
}

func binRuleID(round, i int) string  { return fmt.Sprintf("bin%d-%05d", round, i) }
func typeRuleID(round, k int) string { return fmt.Sprintf("type%d-%02d", round, k) }

// binRule is round's rule on WasteContainer i alone.
func binRule(round, i int) map[string]any {
	return map[string]any{"id": binRuleID(round, i), "kind": "threshold",
		"entities":  []any{map[string]any{"id": binID(i), "type": "WasteContainer"}},
		"attribute": "fillingLevel", "threshold": map[string]any{"above": fireAbove, "clearBelow": clearBelow},
		"severity": "high", "@context": coreContext}
}

// typeRule is round's k-th rule on every WasteContainer; levels stay below
// 1, so it never fires.
func typeRule(round, k int) map[string]any {
	above := 1 + float64(k)/10
	return map[string]any{"id": typeRuleID(round, k), "kind": "threshold",
		"entities":  []any{map[string]any{"type": "WasteContainer"}},
		"attribute": "fillingLevel", "threshold": map[string]any{"above": above, "clearBelow": above - 0.2},
		"@context": coreContext}
}

// createRules creates round's rules through the service (as the API does)
// on cfg.ruleConc goroutines: first the type-wide ones, then one per
// entity of the first cfg.rules.
func (s *server) createRules(ctx context.Context, round int) ([]string, time.Duration, error) {
	var ids []string
	var bodies []map[string]any
	for k := range s.cfg.typeRules {
		ids, bodies = append(ids, typeRuleID(round, k)), append(bodies, typeRule(round, k))
	}
	for i := range s.cfg.rules {
		ids, bodies = append(ids, binRuleID(round, i)), append(bodies, binRule(round, i))
	}
	start := time.Now()
	err := forEach(ctx, s.cfg.ruleConc, len(bodies), func(i int) error {
		_, err := s.app.Alarms.CreateRule(ctx, s.tenant, bodies[i])
		if err != nil {
			return fmt.Errorf("create rule %s: %w", ids[i], err)
		}
		return nil
	})
	return ids, time.Since(start), err
}

// deleteRules deletes rules and waits until the service has dropped them
// and deleted their saved states.
func (s *server) deleteRules(ctx context.Context, ids []string) (time.Duration, error) {
	start := time.Now()
	err := forEach(ctx, s.cfg.ruleConc, len(ids), func(i int) error {
		if err := s.app.Alarms.DeleteRule(ctx, s.tenant, ids[i]); err != nil {
			return fmt.Errorf("delete rule %s: %w", ids[i], err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for deadline := time.Now().Add(2 * time.Minute); ; {
		m, err := s.metrics()
		if err != nil {
			return 0, err
		}
		states := 0
		if m.rules == 0 {
			// The service deletes the dropped rules' saved states next.
			if states, _, _, err = s.savedStates(ctx); err != nil {
				return 0, err
			}
			if states == 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("2 minutes after deleting the rules, the service still runs %.0f and keeps %d saved states", m.rules, states)
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return 0, err
		}
	}
	return time.Since(start), nil
}

// forEach calls f for every i in [0, n) on workers goroutines and returns
// the first error.
func forEach(ctx context.Context, workers, n int, f func(i int) error) error {
	var next atomic.Int64
	var first error
	var once sync.Once
	var failed atomic.Bool
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n && ctx.Err() == nil && !failed.Load(); i = int(next.Add(1) - 1) {
				if err := f(i); err != nil {
					once.Do(func() { first = err })
					failed.Store(true)
				}
			}
		})
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

// rulesLoaded waits until the service runs n rules (it reads the store's
// rules every few seconds).
func (s *server) rulesLoaded(ctx context.Context, n int, timeout time.Duration) error {
	for deadline := time.Now().Add(timeout); ; {
		m, err := s.metrics()
		if err != nil {
			return err
		}
		if int(m.rules) >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s after creating %d rules, the service runs %.0f", timeout, n, m.rules)
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

// errNoAlert is a probe whose alert did not appear in time.
var errNoAlert = errors.New("no alert")

// probe is one update that crosses entity i's threshold, timed until the
// alert its rule opens is readable.
type probe struct {
	sinceAck, sinceSend time.Duration
	polls               int
}

// fire sets entity i's level above fireAbove, observed now, and polls, every
// millisecond, the alert rule opens (alarm.AlertID: the rule, the entity
// and the reading's observedAt) until it is there or timeout passes.
func (s *server) fire(ctx context.Context, c *http.Client, i int, rule string, timeout time.Duration) (probe, error) {
	t := target{c, s.url, s.tenant}
	send := time.Now()
	observed := send.UTC().Truncate(time.Millisecond)
	if err := t.patch(i, levelBody((1+fireAbove)/2, observed)); err != nil {
		return probe{}, err
	}
	ack := time.Now()
	path := "/ngsi-ld/v1/entities/" + url.PathEscape(alarm.AlertID(rule, binID(i), observed))
	var p probe
	for deadline := ack.Add(timeout); ; {
		req, err := s.request(http.MethodGet, path, nil)
		if err != nil {
			return p, err
		}
		resp, err := c.Do(req)
		if err != nil {
			return p, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		p.polls++
		switch resp.StatusCode {
		case http.StatusOK:
			now := time.Now()
			p.sinceAck, p.sinceSend = now.Sub(ack), now.Sub(send)
			return p, nil
		case http.StatusNotFound:
		default:
			return p, fmt.Errorf("GET %s: status %d", path, resp.StatusCode)
		}
		if time.Now().After(deadline) {
			return p, fmt.Errorf("%w after %s: %s", errNoAlert, timeout, path)
		}
		if err := sleep(ctx, time.Millisecond); err != nil {
			return p, err
		}
	}
}

// calm sets entity i's level to 0.1 (below clearBelow: its alert clears).
func (s *server) calm(c *http.Client, i int) error {
	return target{c, s.url, s.tenant}.patch(i, levelBody(0.1, time.Now()))
}

// evaluates checks that round's rules are evaluated: an update crossing
// entity 0's threshold opens its alert within timeout. It then clears the
// alert and waits until that was evaluated too.
func (s *server) evaluates(ctx context.Context, round int, timeout time.Duration) (bool, error) {
	before, err := s.metrics()
	if err != nil {
		return false, err
	}
	_, err = s.fire(ctx, s.client, 0, binRuleID(round, 0), timeout)
	if errors.Is(err, errNoAlert) {
		return false, s.calm(s.client, 0)
	}
	if err != nil {
		return false, err
	}
	if err := s.calm(s.client, 0); err != nil {
		return false, err
	}
	for deadline := time.Now().Add(timeout); ; {
		m, err := s.metrics()
		if err != nil {
			return false, err
		}
		if m.cleared > before.cleared {
			return true, nil
		}
		if time.Now().After(deadline) {
			return false, fmt.Errorf("the alert of rule %s did not clear within %s", binRuleID(round, 0), timeout)
		}
		if err := sleep(ctx, 10*time.Millisecond); err != nil {
			return false, err
		}
	}
}

// rulesEvaluated makes sure round's rules are evaluated; when rules
// created while the service runs are not (a restart loads them), it
// restarts zenne and says so.
func (s *server) rulesEvaluated(ctx context.Context, round, rules int, out io.Writer, rep *report) error {
	if err := s.rulesLoaded(ctx, rules, 30*time.Second); err != nil {
		return err
	}
	ok, err := s.evaluates(ctx, round, 10*time.Second)
	if err != nil || ok {
		return err
	}
	start := time.Now()
	if err := s.restart(ctx); err != nil {
		return err
	}
	restart := time.Since(start)
	if err := s.rulesLoaded(ctx, rules, 30*time.Second); err != nil {
		return err
	}
	ok, err = s.evaluates(ctx, round, 30*time.Second)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("rule %s opens no alert, even after a restart", binRuleID(round, 0))
	}
	msg := fmt.Sprintf("rules created while zenne ran were not evaluated (no alert within 10 s) until zenne was restarted: "+
		"the benchmark restarted it after creating them (restart: %s)", restart.Round(time.Millisecond))
	fmt.Fprintf(out, "NOTE   %s\n", msg)
	rep.note(msg)
	return nil
}

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zenne-city/zenne/bench/internal/benchutil"
)

// loadOpts describe a PATCH load: workers keep-alive clients, each sending
// one update after the other (at most rate per second in all, when rate is
// set) to entity(r) with value(r), for warmup then duration (0: until the
// context ends).
type loadOpts struct {
	workers          int
	warmup, duration time.Duration
	rate             float64
	entity           func(r *rand.Rand) int
	value            func(r *rand.Rand) float64
	seed             uint64
	// ruled: entities [0, ruled) have a rule of their own; sentRuled
	// counts the updates acknowledged for them.
	ruled int
}

// loadResult is what a load measured. sent counts every acknowledged
// update, warm-up included (the rules evaluate those too); the rest is
// about the measured part.
type loadResult struct {
	benchutil.Stats
	sent      int64
	sentRuled int64 // of which to entities with a rule of their own (loadOpts.ruled)
	behind    int64 // paced loads: updates due that no client was free to send
}

func (r *loadResult) String() string {
	s := fmt.Sprintf("%d updates in %s = %.0f/s, p50 %s p95 %s p99 %s max %s",
		r.Ops(), r.Elapsed.Round(time.Millisecond), r.Rate(), ms(r.Pct(50)), ms(r.Pct(95)), ms(r.Pct(99)), ms(r.Pct(100)))
	if r.Errs > 0 {
		s += fmt.Sprintf(", %d errors (first: %v)", r.Errs, r.FirstErr)
	}
	if r.behind > 0 {
		s += fmt.Sprintf(", at most %d updates late (every client busy)", r.behind)
	}
	return s
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

// binID is the id of WasteContainer i.
func binID(i int) string { return fmt.Sprintf("urn:ngsi-ld:WasteContainer:b%05d", i) }

// stamp is t as observedAt, in UTC with milliseconds (what alert ids keep).
func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// levelBody is a PATCH body setting fillingLevel to v observed at t.
func levelBody(v float64, t time.Time) []byte {
	return fmt.Appendf(nil, `{"fillingLevel":{"type":"Property","value":%s,"observedAt":%q}}`,
		strconv.FormatFloat(v, 'f', 4, 64), stamp(t))
}

// target sends one update of entity i; it is the zenne server or the no-op
// handler.
type target struct {
	client *http.Client
	base   string // URL
	tenant string
}

func (s *server) target() target { return target{s.client, s.url, s.tenant} }

func (t target) patch(i int, body []byte) error {
	req, err := http.NewRequest(http.MethodPatch, t.base+"/ngsi-ld/v1/entities/"+url.PathEscape(binID(i))+"/attrs", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if t.tenant != "" {
		req.Header.Set("NGSILD-Tenant", t.tenant)
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return err
	}
	msg, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		if len(msg) > 300 {
			msg = msg[:300]
		}
		return fmt.Errorf("PATCH %s: status %d: %s", binID(i), resp.StatusCode, msg)
	}
	return nil
}

// patchLoad runs a load against t.
func patchLoad(ctx context.Context, t target, o loadOpts) *loadResult {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	measureFrom := start.Add(o.warmup)
	var end time.Time
	if o.duration > 0 {
		end = measureFrom.Add(o.duration)
	}
	var tokens chan struct{}
	var behind atomic.Int64
	var pacer sync.WaitGroup
	if o.rate > 0 {
		tokens = make(chan struct{}, o.workers)
		pacer.Go(func() {
			tick := time.NewTicker(time.Millisecond)
			defer tick.Stop()
			var issued int64
			for {
				select {
				case <-ctx.Done():
					return
				case now := <-tick.C:
					// Updates due that no client was free to take wait
					// for the next tick: the rate is kept on average.
					due := int64(now.Sub(start).Seconds() * o.rate)
				send:
					for ; issued < due; issued++ {
						select {
						case tokens <- struct{}{}:
						default:
							break send
						}
					}
					if late := due - issued; late > behind.Load() {
						behind.Store(late)
					}
				}
			}
		})
	}
	var sent, sentRuled atomic.Int64
	results := make([]benchutil.WorkerResult, o.workers)
	var wg sync.WaitGroup
	for w := range o.workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(o.seed, uint64(w)))
			res := &results[w]
			for ctx.Err() == nil {
				if tokens != nil {
					select {
					case <-ctx.Done():
						return
					case <-tokens:
					}
				}
				t0 := time.Now()
				if !end.IsZero() && t0.After(end) {
					cancel() // stops the pacer too
					return
				}
				i := o.entity(r)
				err := t.patch(i, levelBody(o.value(r), t0))
				if err == nil {
					sent.Add(1)
					if i < o.ruled {
						sentRuled.Add(1)
					}
				}
				if !t0.Before(measureFrom) {
					res.Add(t0, err)
				}
			}
		})
	}
	wg.Wait()
	cancel()
	pacer.Wait()
	res := &loadResult{Stats: benchutil.Merge(time.Since(measureFrom), results), sent: sent.Load(), sentRuled: sentRuled.Load()}
	res.behind = behind.Load() // the warm-up's included
	return res
}

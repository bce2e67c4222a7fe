package simulate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// ProbeConfig configures the latency probe: a probe device sends a unique
// value (through the same Sender as the load), then the entity is read back
// with GET /ngsi-ld/v1/entities/{id}?attrs=probe&options=keyValues until
// the value appears. The latency is from the send to the first read that
// shows it.
type ProbeConfig struct {
	// API is the base URL of zenne's NGSI-LD API, e.g. http://127.0.0.1:1026.
	API    string
	Tenant string
	// Key is the API key sent with the reads as a Bearer token ("": none,
	// enough on a public-read tenant).
	Key    string
	Client *http.Client // nil: a client of its own
	// Every is the pause between probes (default 200ms).
	Every time.Duration
	// Timeout gives up on one probe (default 10s): counted in Timeouts.
	Timeout time.Duration
	// Poll is the pause between reads (default 2ms).
	Poll time.Duration
}

type prober struct {
	cfg    ProbeConfig
	probes []*Device
	s      Sender
	base   int64

	mu        sync.Mutex
	latencies []time.Duration
	timeouts  int64
	failed    int64
	lastErr   string
	refused   bool
}

func newProber(cfg ProbeConfig, f *Fleet, s Sender) *prober {
	if cfg.Every <= 0 {
		cfg.Every = 200 * time.Millisecond
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 2 * time.Millisecond
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 10 * time.Second}
	}
	cfg.API = strings.TrimRight(cfg.API, "/")
	// Values unique across runs: milliseconds since the epoch × 1000 stays
	// below 2^53, exact in a JSON number.
	return &prober{cfg: cfg, probes: f.probes, s: s, base: time.Now().UnixMilli() * 1000}
}

func (p *prober) run(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for seq := int64(0); ; seq++ {
		start := time.Now()
		d := p.probes[int(seq)%len(p.probes)]
		p.one(ctx, d, p.base+seq)
		if !sleepUntil(ctx, timer, start.Add(p.cfg.Every)) {
			return
		}
	}
}

// one sends v for d and waits until the entity shows it.
func (p *prober) one(ctx context.Context, d *Device, v int64) {
	payload, _ := json.Marshal(map[string]any{"v": v})
	start := time.Now()
	if err := p.s.Send(ctx, d, payload); err != nil {
		if ctx.Err() == nil {
			p.fail(fmt.Errorf("send: %w", err))
		}
		return
	}
	deadline := start.Add(p.cfg.Timeout)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		got, err := p.read(ctx, d)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			p.fail(err)
			return
		}
		if got == float64(v) {
			p.mu.Lock()
			p.latencies = append(p.latencies, time.Since(start))
			p.mu.Unlock()
			return
		}
		if time.Now().After(deadline) {
			p.mu.Lock()
			p.timeouts++
			p.lastErr = fmt.Sprintf("%s did not show %s=%d within %s", d.Entity, ProbeAttribute, v, p.cfg.Timeout)
			p.refused = false
			p.mu.Unlock()
			return
		}
		if !sleepUntil(ctx, timer, time.Now().Add(p.cfg.Poll)) {
			return
		}
	}
}

// read returns the entity's probe value, -1 while it has none (not created
// yet, or no probe attribute).
func (p *prober) read(ctx context.Context, d *Device) (float64, error) {
	u := p.cfg.API + "/ngsi-ld/v1/entities/" + url.PathEscape(d.Entity) + "?attrs=" + ProbeAttribute + "&options=keyValues"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/json")
	if p.cfg.Tenant != "" {
		req.Header.Set("NGSILD-Tenant", p.cfg.Tenant)
	}
	if p.cfg.Key != "" {
		req.Header.Set("Authorization", "Bearer "+p.cfg.Key)
	}
	resp, err := p.cfg.Client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", d.Entity, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", d.Entity, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return -1, nil // not created yet
	case resp.StatusCode != http.StatusOK:
		return 0, statusError(http.MethodGet, u, resp, body)
	}
	var e map[string]any
	if err := json.Unmarshal(body, &e); err != nil {
		return 0, fmt.Errorf("GET %s: %w", u, err)
	}
	switch v := e[ProbeAttribute].(type) {
	case float64:
		return v, nil
	case map[string]any: // normalized, should keyValues be ignored
		if f, ok := v["value"].(float64); ok {
			return f, nil
		}
	}
	return -1, nil
}

func (p *prober) fail(err error) {
	var se *StatusError
	refused := errors.As(err, &se) && se.Unauthorized()
	p.mu.Lock()
	p.failed++
	p.lastErr = err.Error()
	p.refused = refused
	p.mu.Unlock()
}

func (p *prober) stats() ProbeStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return ProbeStats{Percentiles: percentilesOf(p.latencies), Timeouts: p.timeouts, Failed: p.failed, LastError: p.lastErr, Refused: p.refused}
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zenne-city/zenne/bench/internal/benchutil"
	"github.com/zenne-city/zenne/internal/alarm"
	"github.com/zenne-city/zenne/internal/app"
)

// coreContext is the @context rules are created with: the client sends no
// Link header either, so terms expand to the default vocabulary.
const coreContext = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"

// server is zenne running inside the benchmark through internal/app.
type server struct {
	cfg    *config
	dir    string
	app    *app.App
	url    string
	tenant string // "" on the embedded store; a tenant of this run's own on a shared database
	key    string // the administrator's API key; s.client and newClient send it
	client *http.Client
	logs   *logCounter
}

// startServer starts zenne on dir (the embedded store) or cfg.storeURL, as
// `zenne serve` does but without MQTT.
func startServer(ctx context.Context, cfg *config, dir, scenario string) (*server, error) {
	if err := app.EnsureDir(dir); err != nil {
		return nil, err
	}
	s := &server{cfg: cfg, dir: dir, logs: newLogCounter(os.Stderr), key: benchutil.AdminKey()}
	if cfg.storeURL != "" {
		s.tenant = fmt.Sprintf("alarmbench-%s-%d", scenario, time.Now().Unix())
	}
	if err := s.open(ctx); err != nil {
		return nil, err
	}
	s.client = s.newClient(cfg.concurrency + 16)
	return s, nil
}

// newClient is a client of conns keep-alive connections that sends the
// server's API key.
func (s *server) newClient(conns int) *http.Client {
	return benchutil.WithKey(benchutil.NewClient(conns), s.key)
}

func (s *server) open(ctx context.Context) error {
	a, err := app.New(ctx, app.Config{Listen: "127.0.0.1:0", DataDir: s.dir, StoreURL: s.cfg.storeURL, Version: "bench",
		Log: slog.New(s.logs), MaxBody: 64 << 20, Env: benchutil.ServerEnv(s.key)})
	if err != nil {
		return fmt.Errorf("start zenne: %w", err)
	}
	if err := a.Start(); err != nil {
		a.Close(context.Background())
		return fmt.Errorf("start zenne: %w", err)
	}
	// A shared database (-store) has the administrator of the first
	// scenario that ran on it, or of an earlier run.
	if s.key, err = benchutil.ServerKey(ctx, a.Auth, s.key); err != nil {
		a.Close(context.Background())
		return err
	}
	if err := a.WaitIndexed(ctx); err != nil {
		a.Close(context.Background())
		return err
	}
	s.app, s.url = a, a.URL()
	return nil
}

// close is idempotent.
func (s *server) close() error {
	if s.app == nil {
		return nil
	}
	if s.client != nil {
		s.client.CloseIdleConnections()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := s.app.Close(ctx)
	s.app = nil
	return err
}

// restart closes zenne and opens it again on the same store.
func (s *server) restart(ctx context.Context) error {
	if err := s.close(); err != nil {
		return err
	}
	return s.open(ctx)
}

// request builds a request to path (below the server's URL) in the run's
// tenant.
func (s *server) request(method, path string, body []byte) (*http.Request, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, s.url+path, r)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if s.tenant != "" {
		req.Header.Set("NGSILD-Tenant", s.tenant)
	}
	return req, nil
}

// do sends a request with client c and drains the answer; a status other
// than 2xx is an error (the response is returned as well).
func (s *server) do(c *http.Client, method, path string, body []byte) (*http.Response, []byte, error) {
	req, err := s.request(method, path, body)
	if err != nil {
		return nil, nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	msg, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return resp, nil, fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		if len(msg) > 300 {
			msg = msg[:300]
		}
		return resp, msg, fmt.Errorf("%s %s: status %d: %s", method, path, resp.StatusCode, msg)
	}
	return resp, msg, nil
}

// count is the number of entities of a type (expanded or a term of the
// core @context).
func (s *server) count(typ string) (int, error) {
	resp, _, err := s.do(s.client, http.MethodGet, "/ngsi-ld/v1/entities?count=true&limit=0&type="+url.QueryEscape(typ), nil)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(resp.Header.Get("NGSILD-Results-Count"))
	if err != nil {
		return 0, fmt.Errorf("count %s: NGSILD-Results-Count %q", typ, resp.Header.Get("NGSILD-Results-Count"))
	}
	return n, nil
}

// alerts is the number of Alert entities.
func (s *server) alerts() (int, error) { return s.count(alarm.AlertType) }

// stateKind is the store record kind the alarm service saves each rule's
// state in (internal/alarm's kindState).
const stateKind = "alarm.state"

// savedStates sums the rule states the service has saved in the store: how
// many records, their bytes, and the largest.
func (s *server) savedStates(ctx context.Context) (n, size, largest int, err error) {
	recs, err := s.app.Store.ListRecords(ctx, stateKind, s.tenant, false)
	if err != nil {
		return 0, 0, 0, err
	}
	for _, r := range recs {
		size += len(r.Doc)
		largest = max(largest, len(r.Doc))
	}
	return len(recs), size, largest, nil
}

// alarmMetrics are the alarm service's counters, read from /metrics.
type alarmMetrics struct {
	at          time.Time
	changes     float64 // changes read from the bus
	evaluations float64 // rule evaluations on a reading
	opened      float64
	cleared     float64
	errors      float64
	writeErrors float64
	rules       float64
}

func (s *server) metrics() (alarmMetrics, error) {
	m := alarmMetrics{at: time.Now()}
	req, err := http.NewRequest(http.MethodGet, s.url+"/metrics", nil)
	if err != nil {
		return m, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return m, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return m, fmt.Errorf("GET /metrics: status %d", resp.StatusCode)
	}
	fields := map[string]*float64{
		"zenne_alarm_changes_total":            &m.changes,
		"zenne_alarm_evaluations_total":        &m.evaluations,
		"zenne_alarm_alerts_opened_total":      &m.opened,
		"zenne_alarm_alerts_cleared_total":     &m.cleared,
		"zenne_alarm_rule_errors_total":        &m.errors,
		"zenne_alarm_alert_write_errors_total": &m.writeErrors,
		"zenne_alarm_rules":                    &m.rules,
	}
	found := 0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		if p := fields[name]; p != nil {
			if *p, err = strconv.ParseFloat(strings.TrimSpace(val), 64); err != nil {
				return m, fmt.Errorf("/metrics: %s %q", name, val)
			}
			found++
		}
	}
	if err := sc.Err(); err != nil {
		return m, err
	}
	if found < 3 {
		return m, fmt.Errorf("/metrics has no zenne_alarm_evaluations_total: is the alarm service registered?")
	}
	return m, nil
}

// logCounter passes zenne's warnings and errors to w and counts them by
// message, so the report can say what went wrong during a run.
type logCounter struct {
	h      slog.Handler
	mu     *sync.Mutex
	counts map[string]int
}

func newLogCounter(w io.Writer) *logCounter {
	return &logCounter{h: slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}), mu: &sync.Mutex{}, counts: map[string]int{}}
}

func (l *logCounter) Enabled(ctx context.Context, lv slog.Level) bool { return l.h.Enabled(ctx, lv) }

func (l *logCounter) Handle(ctx context.Context, r slog.Record) error {
	l.mu.Lock()
	l.counts[r.Level.String()+" "+r.Message]++
	l.mu.Unlock()
	return l.h.Handle(ctx, r)
}

func (l *logCounter) WithAttrs(as []slog.Attr) slog.Handler {
	return &logCounter{h: l.h.WithAttrs(as), mu: l.mu, counts: l.counts}
}

func (l *logCounter) WithGroup(name string) slog.Handler {
	return &logCounter{h: l.h.WithGroup(name), mu: l.mu, counts: l.counts}
}

// summary lists the messages logged, most frequent first, and resets the counts.
func (l *logCounter) summary() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	type count struct {
		msg string
		n   int
	}
	var cs []count
	for msg, n := range l.counts {
		cs = append(cs, count{msg, n})
		delete(l.counts, msg)
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].n > cs[j].n || cs[i].n == cs[j].n && cs[i].msg < cs[j].msg })
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = fmt.Sprintf("%d× %q", c.n, c.msg)
	}
	return out
}

// noopServer is a no-op net/http handler on loopback: the most any handler
// can do on this machine with the benchmark's client.
func noopServer() (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	})}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() { srv.Close() }, nil
}

package simulate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/ingest"
)

// uplinkServer is an HTTP uplink endpoint on loopback that records what it
// receives and serves the probe entities back.
type uplinkServer struct {
	*httptest.Server
	t *testing.T

	mu     sync.Mutex
	bodies map[string][]map[string]any // by device id, single readings only
	raw    map[string][][]byte
	errs   []string
	probe  map[string]float64 // entity -> probe value, once visible
	delay  time.Duration      // before a probe value is visible
	status int                // answer uplinks with this (default 200)
	// key, when set, is the API key the entity reads must carry (401
	// without it); uplinks carry none either way (devices have their own).
	key string
}

func newUplinkServer(t *testing.T) *uplinkServer {
	s := &uplinkServer{t: t, bodies: map[string][]map[string]any{}, raw: map[string][][]byte{}, probe: map[string]float64{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /iot/json", s.uplink)
	mux.HandleFunc("GET /ngsi-ld/v1/entities/{id}", s.entity)
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

func (s *uplinkServer) fail(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs = append(s.errs, fmt.Sprintf(format, args...))
}

func (s *uplinkServer) uplink(w http.ResponseWriter, r *http.Request) {
	k, i := r.URL.Query().Get("k"), r.URL.Query().Get("i")
	if k == "" || i == "" || len(r.URL.Query()) != 2 {
		s.fail("query %q", r.URL.RawQuery)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		s.fail("Content-Type %q", ct)
	}
	if a := r.Header.Get("Authorization"); a != "" {
		s.fail("an uplink with Authorization %q", a)
	}
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.raw[i] = append(s.raw[i], body)
	status := s.status
	s.mu.Unlock()
	var m map[string]any
	if body[0] == '{' {
		if err := json.Unmarshal(body, &m); err != nil {
			s.fail("body %s: %v", body, err)
		}
		s.mu.Lock()
		s.bodies[i] = append(s.bodies[i], m)
		s.mu.Unlock()
	}
	if k == Probe.APIKey() {
		v, _ := m["v"].(float64)
		entity := "urn:ngsi-ld:SimulatorProbe:" + i
		time.AfterFunc(s.delay, func() {
			s.mu.Lock()
			s.probe[entity] = v
			s.mu.Unlock()
		})
	}
	if status != 0 {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write([]byte(`{"type":"https://uri.etsi.org/ngsi-ld/errors/BadRequestData","title":"Too many messages","detail":"device over its rate"}`))
	}
}

func (s *uplinkServer) entity(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if q := r.URL.Query(); q.Get("attrs") != ProbeAttribute || q.Get("options") != "keyValues" {
		s.fail("probe query %q", r.URL.RawQuery)
	}
	s.mu.Lock()
	v, ok := s.probe[id]
	key := s.key
	s.mu.Unlock()
	if key != "" && r.Header.Get("Authorization") != "Bearer "+key {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"type":"about:blank","title":"Unauthorized","detail":"authentication required"}`))
		return
	}
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"id": id, "type": "SimulatorProbe", ProbeAttribute: v})
}

func (s *uplinkServer) check() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.errs {
		s.t.Error(e)
	}
}

func (s *uplinkServer) messages() (total int, perDevice map[string]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	perDevice = make(map[string]int)
	for id, bs := range s.raw {
		perDevice[id] = len(bs)
		total += len(bs)
	}
	return total, perDevice
}

func httpSender(t *testing.T, url, tenant string) *HTTPSender {
	t.Helper()
	s, err := NewHTTPSender(HTTPOptions{URL: url, Tenant: tenant, Concurrency: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestHTTPSender(t *testing.T) {
	var got *http.Request
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, body = r, must(io.ReadAll(r.Body))
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	f := generated(t, 5, WasteBin)
	d := f.Members()[0]
	d.APIKey = "sim bins&co" // escaped in the query
	s := httpSender(t, srv.URL+"/", "brussels")
	payload := []byte(`{"f":42,"t":18.5,"b":80,"ts":"2026-11-22T10:15:00.000Z"}`)
	if err := s.Send(context.Background(), d, payload); err != nil {
		t.Fatal(err)
	}
	if got.Method != http.MethodPost || got.URL.Path != "/iot/json" || got.URL.Query().Get("k") != "sim bins&co" || got.URL.Query().Get("i") != d.ID {
		t.Errorf("%s %s", got.Method, got.URL)
	}
	if got.Header.Get("Content-Type") != "application/json" || got.Header.Get("NGSILD-Tenant") != "brussels" {
		t.Errorf("headers %v", got.Header)
	}
	if string(body) != string(payload) {
		t.Errorf("body %s", body)
	}
}

func TestHTTPSenderErrors(t *testing.T) {
	up := newUplinkServer(t)
	up.status = http.StatusTooManyRequests
	f := generated(t, 5, WasteBin)
	err := httpSender(t, up.URL, "").Send(context.Background(), f.Members()[0], []byte(`{"f":1}`))
	var se *SendError
	if !errors.As(err, &se) || se.Kind != "http 429" || !strings.Contains(err.Error(), "device over its rate") {
		t.Errorf("429: %v", err)
	}
	srv := httptest.NewServer(nil)
	url := srv.URL
	srv.Close()
	err = httpSender(t, url, "").Send(context.Background(), f.Members()[0], []byte(`{"f":1}`))
	if !errors.As(err, &se) || se.Kind != "connection refused" {
		t.Errorf("nothing listening: %v", err)
	}
	if _, err := NewHTTPSender(HTTPOptions{URL: "mqtt://localhost:1883"}); err == nil {
		t.Error("an mqtt:// URL for HTTP uplinks")
	}
}

func TestRunAtRate(t *testing.T) {
	up := newUplinkServer(t)
	f := generated(t, 100)
	var progress []Snapshot
	var mu sync.Mutex
	sum, err := Run(context.Background(), Config{
		Fleet: f, Rate: 400, Duration: time.Second, ProgressEvery: 200 * time.Millisecond,
		Progress: func(s Snapshot) { mu.Lock(); progress = append(progress, s); mu.Unlock() },
	}, httpSender(t, up.URL, ""))
	if err != nil {
		t.Fatal(err)
	}
	up.check()
	total, per := up.messages()
	// A busy machine may keep it below the rate, never above.
	if sum.Sent < 200 || sum.Sent > 440 || int64(total) != sum.Sent || sum.Errors != 0 {
		t.Errorf("sent %d (server got %d, errors %d) in a second at 400/s", sum.Sent, total, sum.Errors)
	}
	if len(per) != 100 {
		t.Errorf("%d devices sent, want all 100", len(per))
	}
	lo, hi := 1<<30, 0
	for _, n := range per {
		lo, hi = min(lo, n), max(hi, n)
	}
	if hi > 6 || hi-lo > 3 {
		t.Errorf("devices sent %d to %d messages each, want about 4, in turn", lo, hi)
	}
	if sum.Latency.Count != sum.Sent || sum.Latency.P50 <= 0 || sum.Latency.P99 < sum.Latency.P50 || sum.Latency.Max < sum.Latency.P99 {
		t.Errorf("latency %+v", sum.Latency)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(progress) < 3 || progress[len(progress)-1].Rate < 100 {
		t.Errorf("progress %+v", progress)
	}
	// Single readings at the rate carry their time.
	up.mu.Lock()
	defer up.mu.Unlock()
	for id, bs := range up.bodies {
		if _, ok := bs[0][TimestampField]; !ok {
			t.Errorf("%s: %v has no time", id, bs[0])
		}
	}
}

func TestRunRealistic(t *testing.T) {
	up := newUplinkServer(t)
	f := generated(t, 60)
	// 15 minutes pass in half a second. Every device's first reading is
	// due within the first second; a loaded machine gets one more.
	const d = 2 * time.Second
	sum, err := Run(context.Background(), Config{Fleet: f, Speed: 1800, Duration: d}, httpSender(t, up.URL, ""))
	if err != nil {
		t.Fatal(err)
	}
	up.check()
	_, per := up.messages()
	for _, dev := range f.Members() {
		n := per[dev.ID]
		lo, hi := 1, 2+int(d*1800/dev.Interval)
		if n < lo || n > hi {
			t.Errorf("%s (every %v): %d messages, want %d..%d", dev.ID, dev.Interval, n, lo, hi)
		}
	}
	if sum.Errors != 0 {
		t.Errorf("%d errors: %v", sum.Errors, sum.ErrorSamples)
	}
	// Ahead of the clock, readings leave the time to the server.
	up.mu.Lock()
	for id, bs := range up.bodies {
		for _, b := range bs {
			if _, ok := b[TimestampField]; ok {
				t.Errorf("%s: %v carries a time ahead of the clock", id, b)
			}
		}
	}
	up.mu.Unlock()

	// Replaying the past keeps the readings' times.
	up2 := newUplinkServer(t)
	start := time.Now().Add(-48 * time.Hour)
	if _, err := Run(context.Background(), Config{Fleet: f, Speed: 3600, Start: start, Duration: 500 * time.Millisecond}, httpSender(t, up2.URL, "")); err != nil {
		t.Fatal(err)
	}
	up2.mu.Lock()
	defer up2.mu.Unlock()
	n := 0
	for id, bs := range up2.bodies {
		for _, b := range bs {
			ts, _ := b[TimestampField].(string)
			tm, err := time.Parse(time.RFC3339, ts)
			if err != nil || tm.Before(start) || tm.After(time.Now().Add(-46*time.Hour)) {
				t.Errorf("%s: %v: time %q not in the replayed hours", id, b, ts)
			}
			n++
		}
	}
	if n < 60 {
		t.Errorf("%d readings replayed", n)
	}
}

func TestRunSkipsSilentDevices(t *testing.T) {
	f, err := GeneratedFleet(FleetOptions{Seed: 9, Devices: 80, SilentFraction: 1})
	if err != nil {
		t.Fatal(err)
	}
	// An hour into a 6-hour silence block: nobody's state changes.
	start := time.Unix((time.Now().Unix()/silentBlock-3)*silentBlock+3600, 0)
	up := newUplinkServer(t)
	sum, err := Run(context.Background(), Config{Fleet: f, Rate: 400, Start: start, Duration: 800 * time.Millisecond}, httpSender(t, up.URL, ""))
	if err != nil {
		t.Fatal(err)
	}
	_, per := up.messages()
	silent := 0
	for _, d := range f.Members() {
		if d.Silent(start) {
			silent++
			if per[d.ID] > 0 {
				t.Errorf("%s is silent but sent %d messages", d.ID, per[d.ID])
			}
		} else if per[d.ID] == 0 {
			t.Errorf("%s is not silent but sent nothing", d.ID)
		}
	}
	if silent == 0 || silent == 80 || sum.Silent == 0 {
		t.Errorf("%d of 80 devices silent, %d silent turns", silent, sum.Silent)
	}
	// The rate holds: silent devices pass their turn on.
	if sum.Sent < 150 {
		t.Errorf("sent %d at 400/s for 0.8 s", sum.Sent)
	}
}

func TestRunBatches(t *testing.T) {
	up := newUplinkServer(t)
	f, err := GeneratedFleet(FleetOptions{Seed: 7, Devices: 10, Kinds: []Kind{Datalogger}, LoggerBatch: 96, SilentFraction: -1})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := Run(context.Background(), Config{Fleet: f, Rate: 50, Duration: 300 * time.Millisecond}, httpSender(t, up.URL, ""))
	if err != nil {
		t.Fatal(err)
	}
	if sum.Readings != 96*sum.Sent || sum.Sent == 0 {
		t.Errorf("%d messages, %d readings", sum.Sent, sum.Readings)
	}
	up.mu.Lock()
	defer up.mu.Unlock()
	for id, bs := range up.raw {
		var rs []map[string]any
		if err := json.Unmarshal(bs[0], &rs); err != nil || len(rs) != 96 {
			t.Fatalf("%s: %s… is not an array of 96 readings (%v)", id, bs[0][:min(80, len(bs[0]))], err)
		}
		last, _ := time.Parse(time.RFC3339, rs[95]["ts"].(string))
		if time.Since(last) > 16*time.Minute || time.Since(last) < 0 {
			t.Errorf("%s: last reading at %v", id, last)
		}
	}
}

func TestProbe(t *testing.T) {
	up := newUplinkServer(t)
	up.delay = 3 * time.Millisecond
	f, err := GeneratedFleet(FleetOptions{Seed: 7, Devices: 50, Probes: 2, SilentFraction: -1})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := Run(context.Background(), Config{
		Fleet: f, Rate: 100, Duration: 700 * time.Millisecond,
		Probe: &ProbeConfig{API: up.URL, Every: 20 * time.Millisecond},
	}, httpSender(t, up.URL, ""))
	if err != nil {
		t.Fatal(err)
	}
	up.check()
	p := sum.Probe
	if p.Count < 5 || p.Timeouts != 0 || p.Failed != 0 {
		t.Fatalf("probe %+v", p)
	}
	if p.P50 < 3*time.Millisecond || p.P99 > 200*time.Millisecond || p.Max < p.P99 {
		t.Errorf("probe latencies %+v with 3ms to become readable", p.Percentiles)
	}
	_, per := up.messages()
	if per["sim-probe-01"] == 0 || per["sim-probe-02"] == 0 {
		t.Errorf("probe devices sent %d and %d", per["sim-probe-01"], per["sim-probe-02"])
	}
	if _, err := Run(context.Background(), Config{Fleet: generated(t, 5), Probe: &ProbeConfig{API: up.URL}}, httpSender(t, up.URL, "")); err == nil {
		t.Error("a probe without probe devices")
	}
}

// The probe reads with ProbeConfig.Key; a server that wants one and gets
// none fails the reads as refused.
func TestProbeKey(t *testing.T) {
	up := newUplinkServer(t)
	up.key = "zk_k3y"
	f, err := GeneratedFleet(FleetOptions{Seed: 7, Devices: 20, Probes: 1, SilentFraction: -1})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		key     string
		refused bool
	}{{"with the key", "zk_k3y", false}, {"without", "", true}, {"a wrong one", "zk_nope", true}} {
		t.Run(c.name, func(t *testing.T) {
			sum, err := Run(context.Background(), Config{
				Fleet: f, Rate: 50, Duration: 300 * time.Millisecond,
				Probe: &ProbeConfig{API: up.URL, Key: c.key, Every: 20 * time.Millisecond},
			}, httpSender(t, up.URL, ""))
			if err != nil {
				t.Fatal(err)
			}
			p := sum.Probe
			switch {
			case !c.refused && (p.Count == 0 || p.Failed != 0 || p.Refused):
				t.Errorf("probe %+v", p)
			case c.refused && (p.Count != 0 || p.Failed == 0 || !p.Refused || !strings.Contains(p.LastError, "401 Unauthorized")):
				t.Errorf("probe %+v, want reads refused", p)
			}
		})
	}
	up.check()
}

type fakeReceiver struct {
	mu      sync.Mutex
	uplinks []ingest.Uplink
	reject  string
}

func (r *fakeReceiver) Receive(_ context.Context, u *ingest.Uplink) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.uplinks = append(r.uplinks, *u)
	if u.DeviceID == r.reject {
		return ingest.Reject(422, "value of the wrong type")
	}
	return nil
}

func TestReceiverSender(t *testing.T) {
	f := generated(t, 20)
	rec := &fakeReceiver{reject: f.Members()[3].ID}
	sum, err := Run(context.Background(), Config{Fleet: f, Rate: 200, Duration: 400 * time.Millisecond}, &ReceiverSender{Receiver: rec, Tenant: "t1"})
	if err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.uplinks) < 40 || sum.ErrorKinds["rejected 422"] == 0 || sum.Sent+sum.Errors != int64(len(rec.uplinks)) {
		t.Fatalf("%d uplinks, summary %+v", len(rec.uplinks), sum)
	}
	byID := make(map[string]*Device)
	for _, d := range f.Members() {
		byID[d.ID] = d
	}
	for _, u := range rec.uplinks {
		d := byID[u.DeviceID]
		if d == nil || u.APIKey != d.APIKey || u.Tenant != "t1" || u.Format != ingest.JSON || u.Transport != "simulator" || u.Received.IsZero() || !json.Valid(u.Payload) {
			t.Fatalf("uplink %+v", u)
		}
	}
	if !strings.Contains(sum.ErrorSamples["rejected 422"], "value of the wrong type") {
		t.Errorf("error samples %v", sum.ErrorSamples)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

package stream_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/api/access"
	"github.com/zenne-city/zenne/internal/api/stream"
	"github.com/zenne-city/zenne/internal/auth"
	"github.com/zenne-city/zenne/internal/bus"
	"github.com/zenne-city/zenne/internal/core"
	"github.com/zenne-city/zenne/internal/jsonld"
	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store/sqlite"
)

// env is a real store file, its bus, the stream handler and a server on
// loopback.
type env struct {
	t      *testing.T
	store  *sqlite.Store
	bus    *bus.Local
	broker *core.Broker
	core   *jsonld.Context
	h      *stream.Handler
	srv    *httptest.Server
}

// withKey sends key as the credentials of requests that have none.
func withKey(key string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			r.Header.Set("Authorization", "Bearer "+key)
		}
		next.ServeHTTP(w, r)
	})
}

func newEnv(t *testing.T, opts stream.Options, window int) *env {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "zenne.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := bus.NewLocal(st, window)
	coreCtx := jsonld.NewResolver(jsonld.Options{}).Core()
	h := stream.New(b, coreCtx, nil, opts)
	// The stream is served behind the real guard, with a platform
	// administrator's key.
	key := auth.NewKeySecret()
	authn, err := auth.New(ctx, st, auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := authn.Bootstrap(ctx, func(n string) string { return map[string]string{auth.EnvAdminKey: key}[n] }, nil); err != nil {
		t.Fatal(err)
	}
	guard := access.New(authn, access.Options{})
	h.Register(guard.API(stream.Tenant, access.Problem))
	srv := httptest.NewServer(guard)
	srv.Config.Handler = withKey(key, guard)
	t.Cleanup(func() {
		h.Close()
		srv.Close()
		authn.Close()
		st.Close()
	})
	return &env{t: t, store: st, bus: b, broker: core.New(st, core.Options{}), core: coreCtx, h: h, srv: srv}
}

func (e *env) entity(body string) *ngsild.Entity {
	e.t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		e.t.Fatal(err)
	}
	ent, err := ngsild.ParseEntity(m, e.core, ngsild.ParseOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return ent
}

func (e *env) fragment(body string) *ngsild.Entity {
	e.t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		e.t.Fatal(err)
	}
	ent, err := ngsild.ParseEntity(m, e.core, ngsild.ParseOptions{Fragment: true, Merge: true})
	if err != nil {
		e.t.Fatal(err)
	}
	return ent
}

func (e *env) create(tenant, body string) {
	e.t.Helper()
	if err := e.broker.CreateEntity(context.Background(), tenant, e.entity(body)); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) merge(tenant, id, body string) {
	e.t.Helper()
	if err := e.broker.MergeEntity(context.Background(), tenant, id, e.fragment(body)); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) delete(tenant, id string) {
	e.t.Helper()
	if err := e.broker.DeleteEntity(context.Background(), tenant, id); err != nil {
		e.t.Fatal(err)
	}
}

// upsert writes n entities urn:ngsi-ld:Thing:<from..from+n-1> in one batch.
func (e *env) upsert(tenant string, from, n int, extra string) {
	e.t.Helper()
	ents := make([]*ngsild.Entity, n)
	for i := range ents {
		ents[i] = e.entity(fmt.Sprintf(`{"id":"urn:ngsi-ld:Thing:%d","type":"Thing","n":{"type":"Property","value":%d}%s}`, from+i, from+i, extra))
	}
	res, err := e.broker.BatchUpsert(context.Background(), tenant, ents, true)
	if err != nil {
		e.t.Fatal(err)
	}
	if len(res.Errors) > 0 {
		e.t.Fatalf("upsert: %+v", res.Errors)
	}
}

// sseEvent is one dispatched event.
type sseEvent struct {
	ID, Event, Data string
}

// payload is the data of a change event.
type payload struct {
	ID     string         `json:"id"`
	Type   any            `json:"type"`
	Seq    uint64         `json:"seq"`
	At     string         `json:"at"`
	Attrs  []string       `json:"attrs"`
	Entity map[string]any `json:"entity"`
}

func (ev sseEvent) payload(t *testing.T) payload {
	t.Helper()
	var p payload
	if err := json.Unmarshal([]byte(ev.Data), &p); err != nil {
		t.Fatalf("event %s data %q: %v", ev.ID, ev.Data, err)
	}
	return p
}

// sseClient parses a stream the way a browser's EventSource does (WHATWG
// HTML, 9.2.6): lines, fields, comments, dispatch on a blank line, the last
// event id kept across events.
type sseClient struct {
	t      *testing.T
	resp   *http.Response
	events chan sseEvent

	mu       sync.Mutex
	lastID   string
	firstID  string // the id of the first dispatch (the stream's opening id)
	retry    string
	comments int
	err      error
	done     chan struct{}
}

func (e *env) dial(query string, hdr http.Header) *sseClient {
	e.t.Helper()
	c, status, body := e.tryDial(query, hdr)
	if c == nil {
		e.t.Fatalf("GET /api/stream?%s: %d %s", query, status, body)
	}
	return c
}

func (e *env) tryDial(query string, hdr http.Header) (*sseClient, int, string) {
	e.t.Helper()
	req, err := http.NewRequest("GET", e.srv.URL+"/api/stream?"+query, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return nil, resp.StatusCode, string(body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		e.t.Fatalf("Content-Type %q", ct)
	}
	// Like a browser, the client keeps its last event id across reconnections.
	c := &sseClient{t: e.t, resp: resp, events: make(chan sseEvent, 100000), done: make(chan struct{}),
		lastID: req.Header.Get("Last-Event-Id")}
	go c.read()
	e.t.Cleanup(c.close)
	return c, resp.StatusCode, ""
}

func (c *sseClient) read() {
	defer close(c.done)
	defer close(c.events)
	r := bufio.NewReader(c.resp.Body)
	var data []string
	var event, idBuf string
	c.mu.Lock()
	idBuf = c.lastID
	c.mu.Unlock()
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			c.mu.Lock()
			c.err = err
			c.mu.Unlock()
			return
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if line == "" { // dispatch
			c.mu.Lock()
			if c.firstID == "" {
				c.firstID = idBuf
			}
			c.lastID = idBuf
			c.mu.Unlock()
			if len(data) > 0 {
				c.events <- sseEvent{ID: idBuf, Event: event, Data: strings.Join(data, "\n")}
			}
			data, event = nil, ""
			continue
		}
		if line[0] == ':' {
			c.mu.Lock()
			c.comments++
			c.mu.Unlock()
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "data":
			data = append(data, value)
		case "event":
			event = value
		case "id":
			idBuf = value
		case "retry":
			c.mu.Lock()
			c.retry = value
			c.mu.Unlock()
		}
	}
}

func (c *sseClient) close() {
	c.resp.Body.Close()
	<-c.done
}

// next returns the next event, failing after d.
func (c *sseClient) next(d time.Duration) sseEvent {
	c.t.Helper()
	select {
	case ev, ok := <-c.events:
		if !ok {
			c.t.Fatalf("stream ended: %v", c.error())
		}
		return ev
	case <-time.After(d):
		c.t.Fatalf("no event within %v", d)
	}
	return sseEvent{}
}

// tryNext returns the next event; false if the stream ended.
func (c *sseClient) tryNext(d time.Duration) (sseEvent, bool) {
	c.t.Helper()
	select {
	case ev, ok := <-c.events:
		return ev, ok
	case <-time.After(d):
		c.t.Fatalf("no event within %v", d)
	}
	return sseEvent{}, false
}

func (c *sseClient) error() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *sseClient) lastEventID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastID
}

// until collects the events dispatched until the client's last event id
// reaches seq (heartbeats carry the id past filtered-out changes).
func (c *sseClient) until(seq uint64, d time.Duration) []sseEvent {
	c.t.Helper()
	var out []sseEvent
	deadline := time.After(d)
	for {
		select {
		case ev, ok := <-c.events:
			if !ok {
				c.t.Fatalf("stream ended: %v", c.error())
			}
			out = append(out, ev)
			continue
		default:
		}
		if id, _ := strconv.ParseUint(c.lastEventID(), 10, 64); id >= seq && len(c.events) == 0 {
			return out
		}
		select {
		case ev, ok := <-c.events:
			if !ok {
				c.t.Fatalf("stream ended: %v", c.error())
			}
			out = append(out, ev)
		case <-time.After(5 * time.Millisecond):
		case <-deadline:
			c.t.Fatalf("last event id %s did not reach %d within %v; got %d events", c.lastEventID(), seq, d, len(out))
		}
	}
}

// summary writes events as "kind id" lines.
func summary(evs []sseEvent) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		var p struct{ ID string }
		json.Unmarshal([]byte(ev.Data), &p)
		out[i] = ev.Event + " " + p.ID
	}
	return out
}

const (
	brussels = `{"type":"Point","coordinates":[4.35,50.85]}`
	paris    = `{"type":"Point","coordinates":[2.35,48.85]}`
	bin1     = "urn:ngsi-ld:Bin:1"
	bin2     = "urn:ngsi-ld:Bin:2"
	sensor1  = "urn:ngsi-ld:Sensor:1"
)

// script writes the changes the filter tests read, and returns the last Seq.
func (e *env) script() uint64 {
	e.create("", `{"id":"`+bin1+`","type":"Bin","location":{"type":"GeoProperty","value":`+brussels+`},"fillLevel":{"type":"Property","value":0.5}}`)
	e.create("", `{"id":"`+bin2+`","type":"Bin","location":{"type":"GeoProperty","value":`+paris+`},"fillLevel":{"type":"Property","value":0.1}}`)
	e.create("", `{"id":"`+sensor1+`","type":"https://example.org/Sensor","location":{"type":"GeoProperty","value":`+brussels+`},"temperature":{"type":"Property","value":20}}`)
	e.create("other", `{"id":"`+bin1+`","type":"Bin","location":{"type":"GeoProperty","value":`+brussels+`},"fillLevel":{"type":"Property","value":0.9}}`)
	e.merge("", bin1, `{"fillLevel":{"type":"Property","value":0.6}}`)
	e.merge("", sensor1, `{"temperature":{"type":"Property","value":21}}`)
	e.merge("", bin1, `{"location":{"type":"GeoProperty","value":`+paris+`}}`) // moves out of Brussels
	e.merge("other", bin1, `{"fillLevel":{"type":"Property","value":1}}`)
	e.delete("", bin2)
	e.create("other", `{"id":"`+sensor1+`","type":"https://example.org/Sensor","temperature":{"type":"Property","value":5}}`)
	return e.bus.Last()
}

var quick = stream.Options{Heartbeat: 20 * time.Millisecond, BatchDelay: time.Millisecond}

func TestFilters(t *testing.T) {
	e := newEnv(t, quick, 0)
	bxl := "4.2,50.7,4.5,51.0"
	cases := []struct {
		name  string
		query string
		hdr   http.Header
		want  []string
	}{
		{"none", "", nil, []string{
			"entityCreated " + bin1, "entityCreated " + bin2, "entityCreated " + sensor1,
			"entityUpdated " + bin1, "entityUpdated " + sensor1, "entityUpdated " + bin1, "entityDeleted " + bin2}},
		{"type short name", "type=Bin", nil, []string{
			"entityCreated " + bin1, "entityCreated " + bin2, "entityUpdated " + bin1, "entityUpdated " + bin1, "entityDeleted " + bin2}},
		{"type full IRI", "type=" + url.QueryEscape("https://example.org/Sensor"), nil, []string{
			"entityCreated " + sensor1, "entityUpdated " + sensor1}},
		{"type expanded name of a short one", "type=" + url.QueryEscape(ngsild.DefaultContextNS+"Bin"), nil, []string{
			"entityCreated " + bin1, "entityCreated " + bin2, "entityUpdated " + bin1, "entityUpdated " + bin1, "entityDeleted " + bin2}},
		{"type list", "type=Nothing,https://example.org/Sensor", nil, []string{
			"entityCreated " + sensor1, "entityUpdated " + sensor1}},
		{"id", "id=" + bin2, nil, []string{"entityCreated " + bin2, "entityDeleted " + bin2}},
		{"id list", "id=" + bin2 + "," + sensor1, nil, []string{
			"entityCreated " + bin2, "entityCreated " + sensor1, "entityUpdated " + sensor1, "entityDeleted " + bin2}},
		{"idPattern", "idPattern=" + url.QueryEscape("^urn:ngsi-ld:Sensor:"), nil, []string{
			"entityCreated " + sensor1, "entityUpdated " + sensor1}},
		// An update that moves an entity out of the box is sent (its old
		// location is in Before), so a map can remove the marker.
		{"bbox", "bbox=" + bxl, nil, []string{
			"entityCreated " + bin1, "entityCreated " + sensor1, "entityUpdated " + bin1, "entityUpdated " + sensor1, "entityUpdated " + bin1}},
		{"bbox of a deleted entity uses Before", "bbox=2,48,3,49", nil, []string{
			"entityCreated " + bin2, "entityUpdated " + bin1, "entityDeleted " + bin2}},
		{"bbox across the antimeridian", "bbox=170,-10,-170,10", nil, nil},
		{"attrs", "attrs=fillLevel", nil, []string{
			"entityCreated " + bin1, "entityCreated " + bin2, "entityUpdated " + bin1, "entityDeleted " + bin2}},
		{"combined", "type=Bin&bbox=" + bxl + "&attrs=location", nil, []string{
			"entityCreated " + bin1, "entityUpdated " + bin1}},
		{"tenant parameter", "tenant=other", nil, []string{
			"entityCreated " + bin1, "entityUpdated " + bin1, "entityCreated " + sensor1}},
		{"tenant header", "type=Bin", http.Header{"Ngsild-Tenant": {"other"}}, []string{
			"entityCreated " + bin1, "entityUpdated " + bin1}},
		{"tenant nobody wrote", "tenant=empty", nil, nil},
	}
	clients := make([]*sseClient, len(cases))
	for i, tc := range cases {
		clients[i] = e.dial(tc.query, tc.hdr)
	}
	last := e.script()
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := summary(clients[i].until(last, 10*time.Second))
			if !slices.Equal(got, tc.want) {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestEventFormat(t *testing.T) {
	e := newEnv(t, quick, 0)
	c := e.dial("", nil)
	waitFor(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.retry == "2000"
	})
	e.create("", `{"id":"`+bin1+`","type":"Bin","fillLevel":{"type":"Property","value":0.5},"temperature":{"type":"Property","value":3}}`)
	e.merge("", bin1, `{"fillLevel":{"type":"Property","value":0.6}}`)
	e.delete("", bin1)
	want := []struct {
		event string
		attrs []string
	}{
		{"entityCreated", []string{"fillLevel", "temperature"}},
		{"entityUpdated", []string{"fillLevel"}},
		{"entityDeleted", []string{"fillLevel", "temperature"}},
	}
	var prev uint64
	for _, w := range want {
		ev := c.next(5 * time.Second)
		p := ev.payload(t)
		if ev.Event != w.event || p.ID != bin1 || p.Type != "Bin" || !slices.Equal(p.Attrs, w.attrs) {
			t.Errorf("event %s %+v, want %s with attrs %v", ev.Event, p, w.event, w.attrs)
		}
		if ev.ID != strconv.FormatUint(p.Seq, 10) || p.Seq <= prev {
			t.Errorf("id %s, seq %d after %d", ev.ID, p.Seq, prev)
		}
		prev = p.Seq
		if _, err := time.Parse(time.RFC3339Nano, p.At); err != nil || !strings.HasSuffix(p.At, "Z") {
			t.Errorf("at %q: %v", p.At, err)
		}
		switch w.event {
		case "entityDeleted":
			if p.Entity != nil {
				t.Errorf("deleted entity has an entity: %v", p.Entity)
			}
		case "entityUpdated":
			if p.Entity["fillLevel"] != 0.6 || p.Entity["temperature"] != 3.0 {
				t.Errorf("updated entity %v", p.Entity)
			}
		}
	}
}

func TestFormats(t *testing.T) {
	e := newEnv(t, quick, 0)
	cases := []struct {
		name, query string
		want        string // the entity, as JSON
	}{
		{"keyValues by default", "",
			`{"id":"urn:ngsi-ld:Bin:1","type":"Bin","fillLevel":0.5,"location":` + brussels + `,"owner":"urn:ngsi-ld:Dept:1"}`},
		{"keyValues", "format=keyValues",
			`{"id":"urn:ngsi-ld:Bin:1","type":"Bin","fillLevel":0.5,"location":` + brussels + `,"owner":"urn:ngsi-ld:Dept:1"}`},
		{"normalized", "format=normalized",
			`{"id":"urn:ngsi-ld:Bin:1","type":"Bin","fillLevel":{"type":"Property","value":0.5,"unitCode":"P1"},"location":{"type":"GeoProperty","value":` + brussels + `},"owner":{"type":"Relationship","object":"urn:ngsi-ld:Dept:1"}}`},
		{"concise", "format=concise",
			`{"id":"urn:ngsi-ld:Bin:1","type":"Bin","fillLevel":{"value":0.5,"unitCode":"P1"},"location":` + brussels + `,"owner":{"object":"urn:ngsi-ld:Dept:1"}}`},
		{"normalized with attrs", "format=normalized&attrs=fillLevel",
			`{"id":"urn:ngsi-ld:Bin:1","type":"Bin","fillLevel":{"type":"Property","value":0.5,"unitCode":"P1"}}`},
	}
	clients := make([]*sseClient, len(cases))
	for i, tc := range cases {
		clients[i] = e.dial(tc.query, nil)
	}
	e.create("", `{"id":"`+bin1+`","type":"Bin","fillLevel":{"type":"Property","value":0.5,"unitCode":"P1"},
		"location":{"type":"GeoProperty","value":`+brussels+`},"owner":{"type":"Relationship","object":"urn:ngsi-ld:Dept:1"}}`)
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ev := clients[i].next(5 * time.Second)
			var got struct {
				Entity json.RawMessage `json:"entity"`
			}
			if err := json.Unmarshal([]byte(ev.Data), &got); err != nil {
				t.Fatal(err)
			}
			if !jsonEqual(t, string(got.Entity), tc.want) {
				t.Errorf("entity\n%s\nwant\n%s", got.Entity, tc.want)
			}
		})
	}
}

func jsonEqual(t *testing.T, a, b string) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal([]byte(a), &x); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal([]byte(b), &y); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	xs, _ := json.Marshal(x)
	ys, _ := json.Marshal(y)
	return string(xs) == string(ys)
}

// TestTenantIsolation: changes of one tenant never reach a client of
// another, with or without filters that would match them.
func TestTenantIsolation(t *testing.T) {
	e := newEnv(t, quick, 0)
	tenants := []string{"", "a", "b"}
	type cl struct {
		tenant string
		c      *sseClient
	}
	var cls []cl
	for _, tn := range tenants {
		for _, q := range []string{"", "type=Thing", "idPattern=.*", "attrs=n", "bbox=-180,-90,180,90"} {
			var hdr http.Header
			switch {
			case tn != "" && len(cls)%2 == 0:
				hdr = http.Header{"Ngsild-Tenant": {tn}}
			case tn != "":
				q += "&tenant=" + tn
			}
			cls = append(cls, cl{tn, e.dial(strings.TrimPrefix(q, "&"), hdr)})
		}
	}
	// The same ids in every tenant, so only the tenant tells them apart.
	for round := range 3 {
		for i, tn := range tenants {
			e.upsert(tn, 0, 5, fmt.Sprintf(`,"location":{"type":"GeoProperty","value":{"type":"Point","coordinates":[%d,%d]}},"round":{"type":"Property","value":%d}`, i, round, round))
		}
	}
	last := e.bus.Last()
	wantSeqs := map[string][]uint64{}
	cs, err := e.store.Changes(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		wantSeqs[c.Tenant] = append(wantSeqs[c.Tenant], c.Seq)
	}
	for _, x := range cls {
		evs := x.c.until(last, 10*time.Second)
		var got []uint64
		for _, ev := range evs {
			got = append(got, ev.payload(t).Seq)
		}
		if !slices.Equal(got, wantSeqs[x.tenant]) {
			t.Errorf("tenant %q client got seqs %v, want %v", x.tenant, got, wantSeqs[x.tenant])
		}
	}
}

// TestResume: a client that reconnects with Last-Event-ID gets exactly the
// changes it missed, in order, then the live ones.
func TestResume(t *testing.T) {
	for _, tc := range []struct {
		name   string
		missed int // changes written while disconnected
		query  string
	}{
		{"few missed, header", 5, ""},
		{"many missed: reads the log before joining the hub", 3000, ""},
		{"lastEventId parameter", 5, "lastEventId"},
		{"filtered", 40, "type=Thing&idPattern=" + url.QueryEscape(`[02468]$`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, stream.Options{Heartbeat: 20 * time.Millisecond, BatchDelay: time.Millisecond, ClientBuffer: 256}, 1024)
			filtered := strings.HasPrefix(tc.query, "type")
			base := ""
			if filtered {
				base = tc.query
			}
			c := e.dial(base, nil)
			e.upsert("", 0, 10, "")
			before := c.until(e.bus.Last(), 5*time.Second)
			c.close()
			lastID := c.lastEventID()
			if !filtered && lastID != before[len(before)-1].ID {
				t.Fatalf("last id %s, last event %s", lastID, before[len(before)-1].ID)
			}
			from, _ := strconv.ParseUint(lastID, 10, 64)
			for i := 0; i < tc.missed; i += 100 {
				e.upsert("", i, min(100, tc.missed-i), `,"gen":{"type":"Property","value":2}`)
			}
			q, hdr := base, http.Header{"Last-Event-Id": {lastID}}
			if tc.query == "lastEventId" {
				q, hdr = "lastEventId="+lastID, nil
			}
			c2 := e.dial(q, hdr)
			e.upsert("", 0, 3, `,"gen":{"type":"Property","value":3}`) // live ones
			last := e.bus.Last()
			got := c2.until(last, 30*time.Second)
			var want []uint64
			for s := from + 1; s <= last; s++ {
				if !filtered {
					want = append(want, s)
				}
			}
			if filtered {
				cs, err := e.store.Changes(context.Background(), from, 100000)
				if err != nil {
					t.Fatal(err)
				}
				for _, c := range cs {
					if n := c.ID[len(c.ID)-1]; (n-'0')%2 == 0 {
						want = append(want, c.Seq)
					}
				}
			}
			var gotSeqs []uint64
			for _, ev := range got {
				if ev.Event == "reset" {
					t.Fatalf("unexpected reset: %s", ev.Data)
				}
				gotSeqs = append(gotSeqs, ev.payload(t).Seq)
			}
			if !slices.Equal(gotSeqs, want) {
				t.Errorf("got %d events %v..., want %d from %d to %d", len(gotSeqs), head(gotSeqs), len(want), from+1, last)
			}
		})
	}
}

func head(s []uint64) []uint64 { return s[:min(len(s), 10)] }

// TestResetWhenGone: changes trimmed from the log cannot be replayed; the
// client is told to reload, then gets the new changes.
func TestResetWhenGone(t *testing.T) {
	e := newEnv(t, quick, 16)
	for i := range 10 {
		e.upsert("", i*10, 10, "")
	}
	if err := e.store.TrimChanges(context.Background(), 60); err != nil {
		t.Fatal(err)
	}
	end := e.bus.Last()
	for _, tc := range []struct{ name, lastID string }{
		{"trimmed", "10"},
		{"never given", strconv.FormatUint(end+1000, 10)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := e.dial("", http.Header{"Last-Event-Id": {tc.lastID}})
			ev := c.next(5 * time.Second)
			if ev.Event != "reset" || ev.ID != strconv.FormatUint(e.bus.Last(), 10) || !strings.Contains(ev.Data, "reload") {
				t.Fatalf("first event %+v, want a reset at %d", ev, e.bus.Last())
			}
			e.merge("", "urn:ngsi-ld:Thing:1", `{"n":{"type":"Property","value":-1}}`)
			ev = c.next(5 * time.Second)
			if p := ev.payload(t); ev.Event != "entityUpdated" || p.Seq != e.bus.Last() {
				t.Fatalf("after reset: %s %+v, want the update %d", ev.Event, p, e.bus.Last())
			}
		})
	}
}

// TestSlowClientDropped: a client that does not read is cut off once it is
// ClientBuffer changes behind, without holding up the others.
func TestSlowClientDropped(t *testing.T) {
	e := newEnv(t, stream.Options{Heartbeat: time.Second, BatchDelay: time.Millisecond, ClientBuffer: 100}, 0)
	fast := e.dial("", nil)
	conn, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /api/stream HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
	waitFor(t, func() bool { return e.h.Stats().Clients == 2 })

	big := `,"notes":{"type":"Property","value":"` + strings.Repeat("x", 32000) + `"}`
	var want []uint64
	var got []sseEvent
	start := time.Now()
	for i := 0; e.h.Stats().Dropped == 0; i++ {
		if time.Since(start) > 60*time.Second || i > 1000 {
			t.Fatalf("the silent client was not dropped after %d batches", i)
		}
		from := e.bus.Last()
		e.upsert("", (i%10)*20, 20, big)
		for s := from + 1; s <= e.bus.Last(); s++ {
			want = append(want, s)
		}
		// The reading client keeps up.
		got = append(got, fast.until(e.bus.Last(), 10*time.Second)...)
	}
	waitFor(t, func() bool { return e.h.Stats().Clients == 1 })
	// The silent client's connection is over: reading it ends.
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	t0 := time.Now()
	n, err := io.Copy(io.Discard, conn)
	if err != nil {
		t.Fatalf("the silent client's connection did not end: %v", err)
	}
	t.Logf("dropped after %d changes (%v); the silent client had %d bytes waiting, read in %v", len(want), time.Since(start), n, time.Since(t0))
	// The reader got everything, in order, and is still served.
	e.merge("", "urn:ngsi-ld:Thing:1", `{"n":{"type":"Property","value":-1}}`)
	want = append(want, e.bus.Last())
	got = append(got, fast.until(e.bus.Last(), 10*time.Second)...)
	if gs := seqs(t, got); !slices.Equal(gs, want) {
		t.Errorf("the reading client got %d events %v..., want %d", len(gs), head(gs), len(want))
	}
}

// TestBurstKeepsReaders: a burst far larger than ClientBuffer cuts off no
// client that keeps reading.
func TestBurstKeepsReaders(t *testing.T) {
	e := newEnv(t, stream.Options{Heartbeat: time.Second, ClientBuffer: 16}, 0)
	cls := make([]*sseClient, 20)
	for i := range cls {
		cls[i] = e.dial("", nil)
	}
	first := e.bus.Last()
	e.upsert("", 0, 2000, "")
	for i, c := range cls {
		if got := len(c.until(e.bus.Last(), 30*time.Second)); got != 2000 {
			t.Errorf("client %d got %d events", i, got)
		}
	}
	if st := e.h.Stats(); st.Dropped != 0 || st.Clients != len(cls) || e.bus.Last()-first != 2000 {
		t.Errorf("%+v, %d changes", st, e.bus.Last()-first)
	}
}

func seqs(t *testing.T, evs []sseEvent) []uint64 {
	t.Helper()
	out := make([]uint64, len(evs))
	for i, ev := range evs {
		out[i] = ev.payload(t).Seq
	}
	return out
}

// TestManyClients: every client receives every change, in order.
func TestManyClients(t *testing.T) {
	e := newEnv(t, stream.Options{Heartbeat: 50 * time.Millisecond}, 0)
	const n, writers, perWriter = 200, 4, 25
	cls := make([]*sseClient, n)
	for i := range cls {
		cls[i] = e.dial("", nil)
	}
	first := e.bus.Last()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				e.upsert("", w*1000+i*5, 5, "")
			}
		})
	}
	wg.Wait()
	last := e.bus.Last()
	if last-first != writers*perWriter*5 {
		t.Fatalf("%d changes written", last-first)
	}
	var want []uint64
	for s := first + 1; s <= last; s++ {
		want = append(want, s)
	}
	var bad sync.Map
	var cwg sync.WaitGroup
	for i, c := range cls {
		cwg.Go(func() {
			var got []uint64
			deadline := time.After(30 * time.Second)
			for len(got) < len(want) {
				select {
				case ev, ok := <-c.events:
					if !ok {
						bad.Store(i, fmt.Sprintf("stream ended after %d events: %v", len(got), c.error()))
						return
					}
					var p struct{ Seq uint64 }
					json.Unmarshal([]byte(ev.Data), &p)
					got = append(got, p.Seq)
				case <-deadline:
					bad.Store(i, fmt.Sprintf("%d events of %d", len(got), len(want)))
					return
				}
			}
			if !slices.Equal(got, want) {
				bad.Store(i, fmt.Sprintf("out of order: %v...", head(got)))
			}
		})
	}
	cwg.Wait()
	bad.Range(func(k, v any) bool {
		t.Errorf("client %d: %v", k, v)
		return true
	})
}

func TestBadParameters(t *testing.T) {
	e := newEnv(t, quick, 0)
	cases := []struct {
		name, query string
		hdr         http.Header
		detail      string // a part of the detail
	}{
		{"empty type", "type=", nil, "type is empty"},
		{"empty type item", "type=Bin,,Car", nil, "item 2"},
		{"bad type", "type=" + url.QueryEscape("Bin;Car"), nil, "invalid entity type"},
		{"bad id", "id=" + url.QueryEscape("not a uri"), nil, "not a URI"},
		{"bad idPattern", "idPattern=" + url.QueryEscape("(["), nil, "not a valid regular expression"},
		{"empty idPattern", "idPattern=", nil, "idPattern is empty"},
		{"bbox of three", "bbox=1,2,3", nil, "four numbers"},
		{"bbox not a number", "bbox=1,2,x,4", nil, "maxLon"},
		{"bbox NaN", "bbox=NaN,2,3,4", nil, "minLon"},
		{"bbox latitude", "bbox=1,-91,3,4", nil, "outside"},
		{"bbox south over north", "bbox=1,5,3,4", nil, "greater than maxLat"},
		{"bad attrs", "attrs=" + url.QueryEscape("a b"), nil, "invalid attribute name"},
		{"bad format", "format=xml", nil, "not one of keyValues"},
		{"bad tenant", "tenant=" + url.QueryEscape("a/b"), nil, "invalid tenant"},
		{"empty tenant", "tenant=", nil, "tenant is empty"},
		{"tenants differ", "tenant=a", http.Header{"Ngsild-Tenant": {"b"}}, "differ"},
		{"bad tenant header", "", http.Header{"Ngsild-Tenant": {"a b"}}, "invalid tenant"},
		{"bad lastEventId", "lastEventId=-1", nil, "lastEventId"},
		{"bad Last-Event-ID", "", http.Header{"Last-Event-Id": {"abc"}}, "Last-Event-ID"},
		{"unknown parameter", "types=Bin", nil, "unknown query parameter"},
		{"parameter twice", "type=A&type=B", nil, "2 times"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", e.srv.URL+"/api/stream?"+tc.query, nil)
			for k, v := range tc.hdr {
				req.Header[k] = v
			}
			resp, err := e.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var pd struct{ Type, Title, Detail string }
			if err := json.NewDecoder(resp.Body).Decode(&pd); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 400 || resp.Header.Get("Content-Type") != "application/json" ||
				pd.Type != "https://uri.etsi.org/ngsi-ld/errors/BadRequestData" || pd.Title == "" ||
				!strings.Contains(pd.Detail, tc.detail) {
				t.Errorf("%d %s %+v, want 400 BadRequestData with %q", resp.StatusCode, resp.Header.Get("Content-Type"), pd, tc.detail)
			}
		})
	}
}

func TestMaxClients(t *testing.T) {
	e := newEnv(t, stream.Options{MaxClients: 2}, 0)
	a := e.dial("", nil)
	e.dial("", nil)
	if c, status, body := e.tryDial("", nil); c != nil || status != 503 || !strings.Contains(body, "too many") {
		t.Fatalf("third client: %d %s", status, body)
	}
	a.close()
	waitFor(t, func() bool { return e.h.Stats().Clients == 1 })
	e.dial("", nil)
}

func TestCloseEndsStreams(t *testing.T) {
	e := newEnv(t, stream.Options{Heartbeat: time.Hour}, 0)
	var cls []*sseClient
	for _, q := range []string{"", "type=Bin", "tenant=x"} {
		cls = append(cls, e.dial(q, nil))
	}
	// One behind (reading the log) when Close comes.
	e.upsert("", 0, 50, "")
	cls = append(cls, e.dial("", http.Header{"Last-Event-Id": {"0"}}))
	done := make(chan struct{})
	go func() { e.h.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	for i, c := range cls {
		select {
		case <-c.done:
		case <-time.After(10 * time.Second):
			t.Fatalf("stream %d did not end", i)
		}
	}
	if c, status, _ := e.tryDial("", nil); c != nil || status != 503 {
		t.Fatalf("after Close: %d", status)
	}
}

// TestHeartbeat: an idle stream gets comments, and a filtered one learns how
// far the log went, so its reconnection does not replay what it filtered out.
func TestHeartbeat(t *testing.T) {
	e := newEnv(t, quick, 0)
	c := e.dial("type=Nothing", nil)
	e.upsert("", 0, 20, "")
	if evs := c.until(e.bus.Last(), 5*time.Second); len(evs) != 0 {
		t.Fatalf("filtered client got %d events", len(evs))
	}
	c.mu.Lock()
	n := c.comments
	c.mu.Unlock()
	if n == 0 {
		t.Fatal("no heartbeat comments")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestContiguousWhileWriting: clients that connect, drop and resume while
// changes keep coming get every change after their first id exactly once,
// in order: joining the hub (fresh or after reading the log) leaves no gap.
func TestContiguousWhileWriting(t *testing.T) {
	e := newEnv(t, stream.Options{Heartbeat: 20 * time.Millisecond, BatchDelay: time.Millisecond, ClientBuffer: 64}, 256)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var stopOnce sync.Once
	halt := func() { stopOnce.Do(func() { close(stop) }); wg.Wait() }
	defer halt()
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			ents := make([]*ngsild.Entity, 1+i%7)
			for j := range ents {
				ents[j] = &ngsild.Entity{ID: fmt.Sprintf("urn:ngsi-ld:Thing:%d", (i+j)%50), Types: []string{ngsild.DefaultContextNS + "Thing"},
					Attrs: map[string][]*ngsild.Attribute{ngsild.DefaultContextNS + "n": {{Kind: ngsild.Property, Value: float64(i)}}}}
			}
			if _, err := e.broker.BatchUpsert(context.Background(), "", ents, true); err != nil {
				t.Error(err)
				return
			}
		}
	})
	type track struct {
		c     *sseClient
		start uint64
		seqs  []uint64
	}
	seqOf := func(ev sseEvent) uint64 {
		if ev.Event == "reset" {
			t.Fatalf("unexpected reset %s %s", ev.ID, ev.Data)
		}
		return ev.payload(t).Seq
	}
	drain := func(tr *track) {
		for ev := range tr.c.events {
			tr.seqs = append(tr.seqs, seqOf(ev))
		}
	}
	var tracks []*track
	for range 10 {
		c := e.dial("", nil)
		var first string
		waitFor(t, func() bool {
			c.mu.Lock()
			defer c.mu.Unlock()
			first = c.firstID
			return first != ""
		})
		start, _ := strconv.ParseUint(first, 10, 64)
		tracks = append(tracks, &track{c: c, start: start})
		time.Sleep(3 * time.Millisecond)
	}
	for round := range 6 {
		for i, tr := range tracks {
			for range (i + round) % 5 {
				// A client cut off for lagging (the buffer is small, the
				// race detector slow) reconnects like the others.
				ev, ok := tr.c.tryNext(5 * time.Second)
				if !ok {
					break
				}
				tr.seqs = append(tr.seqs, seqOf(ev))
			}
			tr.c.close()
			drain(tr)
			if round%2 == 1 {
				time.Sleep(5 * time.Millisecond) // fall behind: resume from the log
			}
			tr.c = e.dial("", http.Header{"Last-Event-Id": {tr.c.lastEventID()}})
		}
	}
	halt()
	last := e.bus.Last()
	t.Logf("%d changes, %d streams cut off", last, e.h.Stats().Dropped)
	for _, tr := range tracks {
		for {
			ev, ok := tr.c.tryNext(10 * time.Second)
			if !ok { // cut off: reconnect
				tr.c = e.dial("", http.Header{"Last-Event-Id": {tr.c.lastEventID()}})
				continue
			}
			if tr.seqs = append(tr.seqs, seqOf(ev)); tr.seqs[len(tr.seqs)-1] >= last {
				break
			}
		}
	}
	for i, tr := range tracks {
		for j, s := range tr.seqs {
			if s != tr.start+uint64(j)+1 {
				t.Fatalf("client %d: event %d is %d, want %d (started at %d)", i, j, s, tr.start+uint64(j)+1, tr.start)
			}
		}
		if got := tr.start + uint64(len(tr.seqs)); got != last {
			t.Errorf("client %d got up to %d, want %d", i, got, last)
		}
	}
}

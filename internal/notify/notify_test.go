package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/zenne-city/zenne/internal/bus"
	"github.com/zenne-city/zenne/internal/jsonld"
	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/ngsild/subscription"
	"github.com/zenne-city/zenne/internal/notify/endpoint"
	"github.com/zenne-city/zenne/internal/store"
	"github.com/zenne-city/zenne/internal/store/sqlite"
)

var resolver = jsonld.NewResolver(jsonld.Options{})

func parseSub(t testing.TB, body string) *subscription.Subscription {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("bad test JSON: %v", err)
	}
	s, err := subscription.Parse(m, resolver.Core(), time.Now())
	if err != nil {
		t.Fatalf("Parse %s: %v", body, err)
	}
	return s
}

const ns = ngsild.DefaultContextNS

// TestIndexFindsEveryMatch: for random subscriptions and random changes, the
// index offers every subscription that Match accepts (it may offer more).
func TestIndexFindsEveryMatch(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	types := []string{"A", "B", "C"}
	attrs := []string{"x", "y", "z"}
	var es []*entry
	for i := range 400 {
		var sel []string
		for range 1 + r.IntN(2) {
			switch r.IntN(5) {
			case 0:
				sel = append(sel, fmt.Sprintf(`{"id":"urn:e:%d"}`, r.IntN(20)))
			case 4:
				sel = append(sel, fmt.Sprintf(`{"idPattern":"^urn:e:%d$"}`, r.IntN(20)))
			case 1:
				sel = append(sel, fmt.Sprintf(`{"type":%q}`, types[r.IntN(3)]))
			case 2:
				sel = append(sel, fmt.Sprintf(`{"type":"%s,%s"}`, types[r.IntN(3)], types[r.IntN(3)]))
			default:
				sel = append(sel, fmt.Sprintf(`{"idPattern":"urn:e:%d"}`, r.IntN(3)))
			}
		}
		body := fmt.Sprintf(`{"type":"Subscription","entities":[%s]`, join(sel))
		if r.IntN(2) == 0 {
			body += fmt.Sprintf(`,"watchedAttributes":[%q]`, attrs[r.IntN(3)])
		}
		if r.IntN(3) == 0 {
			body += fmt.Sprintf(`,"geoQ":{"georel":"near;maxDistance==%d","geometry":"Point","coordinates":[4.35,50.85]}`, 500+r.IntN(3000))
		}
		if r.IntN(3) == 0 {
			qs := []string{"x>50", "x>=20", "y<30", "y<=10;z>5", "x>70|y<3", "x==5", "z<=0"}
			body += fmt.Sprintf(`,"q":%q`, qs[r.IntN(len(qs))])
		}
		trig := []string{"entityCreated", "entityUpdated", "entityDeleted", "attributeCreated", "attributeUpdated", "attributeDeleted"}
		body += fmt.Sprintf(`,"notificationTrigger":[%q,%q],"notification":{"endpoint":{"uri":"http://x/%d"}}}`, trig[r.IntN(6)], trig[r.IntN(6)], i)
		e := &entry{tenant: ""}
		e.sub.Store(parseSub(t, body))
		es = append(es, e)
	}
	ix := buildIndex(es)
	entity := func() *ngsild.Entity {
		e := &ngsild.Entity{ID: fmt.Sprintf("urn:e:%d", r.IntN(20)), Types: []string{ns + types[r.IntN(3)]}, Attrs: map[string][]*ngsild.Attribute{}}
		for _, a := range attrs {
			if r.IntN(2) == 0 {
				e.Attrs[ns+a] = []*ngsild.Attribute{{Kind: ngsild.Property, Value: float64(r.IntN(100))}}
				if r.IntN(4) == 0 { // a second instance
					e.Attrs[ns+a] = append(e.Attrs[ns+a], &ngsild.Attribute{Kind: ngsild.Property, DatasetID: "urn:d:2", Value: []any{float64(r.IntN(100)), "n/a"}})
				}
			}
		}
		if r.IntN(4) != 0 {
			e.Attrs[ngsild.IRILocation] = []*ngsild.Attribute{{Kind: ngsild.GeoProperty, Value: map[string]any{"type": "Point",
				"coordinates": []any{4.33 + r.Float64()*0.04, 50.83 + r.Float64()*0.04}}}}
		}
		return e
	}
	var stamp uint64
	matched := 0
	for range 5000 {
		before, after := entity(), entity()
		after.ID, after.Types = before.ID, before.Types
		c := &store.Change{Kind: store.EntityUpdated, ID: before.ID, Before: before, After: after}
		switch r.IntN(3) {
		case 0:
			c.Kind, c.Before = store.EntityCreated, nil
		case 1:
			c.Kind, c.After = store.EntityDeleted, nil
		}
		c.Attrs = diffAttrs(c.Before, c.After)
		offered := map[*entry]bool{}
		stamp++
		ix.candidates(c, stamp, func(e *entry) {
			if offered[e] {
				t.Fatalf("subscription offered twice for one change")
			}
			offered[e] = true
		})
		for _, e := range es {
			if _, ok := e.sub.Load().Match(c); ok {
				matched++
				if !offered[e] {
					t.Fatalf("change %+v matches subscription %+v, which the index did not offer", c, e.sub.Load())
				}
			}
		}
	}
	if matched < 1000 {
		t.Fatalf("only %d matches: the test proves little", matched)
	}
}

// TestIndexSkipsThresholdsNotPassed: a subscription whose q bounds a number
// is not even offered a change whose values cannot pass it, which is what
// keeps thousands of idle threshold subscriptions cheap.
func TestIndexSkipsThresholdsNotPassed(t *testing.T) {
	var es []*entry
	for i, q := range []string{"level>0.8", "level>=0.5", "level<0.1", "level<=0.2;on==true"} {
		e := &entry{}
		e.sub.Store(parseSub(t, fmt.Sprintf(`{"type":"Subscription","entities":[{"type":"Bin"}],"q":%q,"notification":{"endpoint":{"uri":"http://x/%d"}}}`, q, i)))
		es = append(es, e)
	}
	ix := buildIndex(es)
	for level, want := range map[float64]int{0.05: 2, 0.15: 1, 0.3: 0, 0.5: 1, 0.9: 2} {
		e := &ngsild.Entity{ID: "urn:bin:1", Types: []string{ns + "Bin"}, Attrs: map[string][]*ngsild.Attribute{
			ns + "level": {{Kind: ngsild.Property, Value: level}}}}
		c := &store.Change{Kind: store.EntityUpdated, ID: e.ID, Before: e, After: e}
		n := 0
		ix.candidates(c, uint64(level*100), func(*entry) { n++ })
		if n != want {
			t.Errorf("level %v: %d subscriptions offered, want %d", level, n, want)
		}
	}
}

func TestSelectedID(t *testing.T) {
	for pattern, want := range map[string]string{
		`^urn:e:1$`:     "urn:e:1",
		`^urn:e:1`:      "",
		`urn:e:1$`:      "",
		`^urn:e:1.$`:    "",
		`^urn:e:\.$`:    "urn:e:.",
		`(?i)^urn:e:a$`: "",
		`^urn:e:(1|2)$`: "",
	} {
		sel := parseSub(t, `{"type":"Subscription","entities":[{"idPattern":`+strconv.Quote(pattern)+`}],"notification":{"endpoint":{"uri":"http://x"}}}`).Entities[0]
		if got := selectedID(sel); got != want {
			t.Errorf("selectedID(%s) = %q, want %q", pattern, got, want)
		}
	}
}

func join(ss []string) string {
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += ","
		}
		out += s
	}
	return out
}

// diffAttrs lists attribute changes the way a store does.
func diffAttrs(before, after *ngsild.Entity) []store.AttrChange {
	var out []store.AttrChange
	names := map[string]bool{}
	if before != nil {
		for n := range before.Attrs {
			names[n] = true
		}
	}
	if after != nil {
		for n := range after.Attrs {
			names[n] = true
		}
	}
	for n := range names {
		var b, a []*ngsild.Attribute
		if before != nil {
			b = before.Attrs[n]
		}
		if after != nil {
			a = after.Attrs[n]
		}
		switch {
		case len(b) == 0:
			out = append(out, store.AttrChange{Name: n, Kind: store.AttrCreated})
		case len(a) == 0:
			out = append(out, store.AttrChange{Name: n, Kind: store.AttrDeleted})
		default:
			out = append(out, store.AttrChange{Name: n, Kind: store.AttrUpdated})
		}
	}
	slices.SortFunc(out, func(x, y store.AttrChange) int {
		if x.Name < y.Name {
			return -1
		}
		return 1
	})
	return out
}

// --- delivery, with a real store, bus, sender and receiver ---

type harness struct {
	t    *testing.T
	path string
	st   *sqlite.Store
	svc  *Service
	rcv  *receiver
	opts Options
}

type receiver struct {
	srv    *httptest.Server
	down   atomic.Bool
	mu     sync.Mutex
	ids    []string  // notification ids received
	values []float64 // data values in arrival order
	calls  atomic.Int64
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.calls.Add(1)
		if r.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		body, _ := io.ReadAll(req.Body)
		var n struct {
			ID   string `json:"id"`
			Data []struct {
				V float64 `json:"v"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &n); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.ids = append(r.ids, n.ID)
		for _, d := range n.Data {
			r.values = append(r.values, d.V)
		}
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) got() []float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.values)
}

func newHarness(t *testing.T, opts Options) *harness {
	h := &harness{t: t, path: filepath.Join(t.TempDir(), "zenne.db"), rcv: newReceiver(t), opts: opts}
	h.open()
	return h
}

func (h *harness) open() {
	t := h.t
	st, err := sqlite.Open(context.Background(), h.path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := bus.NewLocal(st, 0)
	sender := endpoint.New(endpoint.Options{Timeout: 2 * time.Second})
	svc, err := New(context.Background(), st, b, resolver, sender, h.opts)
	if err != nil {
		t.Fatal(err)
	}
	svc.Start()
	h.st, h.svc = st, svc
	t.Cleanup(h.close)
}

func (h *harness) close() {
	if h.svc == nil {
		return
	}
	if err := h.svc.Close(); err != nil {
		h.t.Errorf("Close: %v", err)
	}
	h.st.Close()
	h.svc = nil
}

func (h *harness) subscribe(extra string) {
	h.t.Helper()
	sub := parseSub(h.t, `{"id":"urn:s:1","type":"Subscription","entities":[{"type":"T"}],`+
		`"notification":{"format":"keyValues","endpoint":{"uri":"`+h.rcv.srv.URL+`"}}`+extra+`}`)
	if err := h.svc.Create(context.Background(), "", sub); err != nil {
		h.t.Fatal(err)
	}
}

// write sets entity urn:e:<k>'s v to v (creating it).
func (h *harness) write(k int, v float64) {
	h.t.Helper()
	e := &ngsild.Entity{ID: fmt.Sprintf("urn:e:%d", k), Types: []string{ns + "T"},
		Attrs: map[string][]*ngsild.Attribute{ns + "v": {{Kind: ngsild.Property, Value: v}}}}
	res, err := h.st.Write(context.Background(), "", []store.Op{{ID: e.ID, Apply: func(*ngsild.Entity) (*ngsild.Entity, error) { return e, nil }}})
	if err != nil || res[0].Err != nil {
		h.t.Fatalf("write: %v %v", err, res)
	}
}

func waitFor(t *testing.T, what string, d time.Duration, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !ok(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func increasing(n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = float64(i + 1)
	}
	return out
}

// A receiver that is down makes notifications wait, in the store beyond
// MemQueue, and they arrive in order once it is back; the status counts the
// failures.
func TestDeliveryWaitsForReceiverInOrder(t *testing.T) {
	h := newHarness(t, Options{MemQueue: 4, RetryMin: 20 * time.Millisecond, RetryMax: 50 * time.Millisecond})
	h.subscribe("")
	h.rcv.down.Store(true)
	for i := range 40 {
		h.write(1, float64(i+1))
	}
	waitFor(t, "failed attempts", 5*time.Second, func() bool { return h.rcv.calls.Load() >= 3 })
	v, err := h.svc.Get(context.Background(), "", "urn:s:1")
	if err != nil || v.Status.TimesFailed == 0 || v.Status.LastFailure.IsZero() {
		t.Fatalf("status while the receiver is down: %+v, %v", v.Status, err)
	}
	h.rcv.down.Store(false)
	waitFor(t, "40 values", 10*time.Second, func() bool { return len(h.rcv.got()) >= 40 })
	if got := h.rcv.got(); !slices.Equal(got, increasing(40)) {
		t.Fatalf("values arrived as %v", got)
	}
	v, _ = h.svc.Get(context.Background(), "", "urn:s:1")
	if v.Status.LastSuccess.Before(v.Status.LastFailure) || v.Status.TimesSent < 2 {
		t.Errorf("status after recovery: %+v", v.Status)
	}
	if n := h.svc.queued(); n != 0 {
		t.Errorf("%d notifications still queued", n)
	}
}

// Notifications queued when zenne stops are delivered after it starts again.
func TestQueuedSurviveRestart(t *testing.T) {
	h := newHarness(t, Options{MemQueue: 3, RetryMin: time.Hour, RetryMax: time.Hour})
	h.subscribe("")
	h.rcv.down.Store(true)
	for i := range 10 {
		h.write(i%3, float64(i+1))
	}
	waitFor(t, "a failed attempt", 5*time.Second, func() bool { return h.rcv.calls.Load() >= 1 })
	h.close()
	h.rcv.down.Store(false)
	h.opts.RetryMin, h.opts.RetryMax = 0, 0
	h.open()
	waitFor(t, "10 values", 10*time.Second, func() bool { return len(h.rcv.got()) >= 10 })
	if got := h.rcv.got(); !slices.Equal(got, increasing(10)) {
		t.Fatalf("values after restart arrived as %v", got)
	}
	// Later changes keep the order and the ids stay unique.
	h.write(0, 11)
	waitFor(t, "11 values", 5*time.Second, func() bool { return len(h.rcv.got()) >= 11 })
	h.rcv.mu.Lock()
	ids := slices.Clone(h.rcv.ids)
	h.rcv.mu.Unlock()
	slices.Sort(ids)
	if len(slices.Compact(ids)) != len(h.rcv.ids) {
		t.Errorf("notification ids repeat: %v", h.rcv.ids)
	}
}

// A notification older than MaxAge is dropped and counted as a failure.
func TestTooOldIsDropped(t *testing.T) {
	h := newHarness(t, Options{MaxAge: 100 * time.Millisecond, RetryMin: 30 * time.Millisecond, RetryMax: 30 * time.Millisecond})
	h.subscribe("")
	h.rcv.down.Store(true)
	h.write(1, 1)
	h.write(1, 2)
	waitFor(t, "both dropped", 5*time.Second, func() bool {
		v, _ := h.svc.Get(context.Background(), "", "urn:s:1")
		h.svc.enqMu.Lock()
		matched := h.svc.cursor == h.st.LastChange()
		h.svc.enqMu.Unlock()
		return matched && h.svc.queued() == 0 && dropped(h.svc) >= 1 && v.Status.LastFailureCause != ""
	})
	h.rcv.down.Store(false)
	h.write(1, 3)
	waitFor(t, "the new value", 5*time.Second, func() bool { return len(h.rcv.got()) >= 1 })
	if got := h.rcv.got(); !slices.Equal(got, []float64{3}) {
		t.Errorf("received %v, want only the value written after the receiver came back", got)
	}
	v, _ := h.svc.Get(context.Background(), "", "urn:s:1")
	if v.Status.TimesFailed < 2 { // a failed attempt at least, and a drop
		t.Errorf("status: %+v, want the drops counted as failures", v.Status)
	}
}

// A paused subscription notifies nothing and does not send what waited;
// resumed, it notifies again.
func TestPauseAndDelete(t *testing.T) {
	h := newHarness(t, Options{})
	h.subscribe("")
	h.write(1, 1)
	waitFor(t, "value 1", 5*time.Second, func() bool { return len(h.rcv.got()) == 1 })
	pause := func(active bool) {
		err := h.svc.Update(context.Background(), "", "urn:s:1", func(old *subscription.Subscription) (*subscription.Subscription, error) {
			s := *old
			s.IsActive = active
			return &s, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	pause(false)
	h.write(1, 2)
	pause(true)
	h.write(1, 3)
	waitFor(t, "value 3", 5*time.Second, func() bool { return len(h.rcv.got()) == 2 })
	if got := h.rcv.got(); !slices.Equal(got, []float64{1, 3}) {
		t.Errorf("received %v, want [1 3]", got)
	}
	if err := h.svc.Delete(context.Background(), "", "urn:s:1"); err != nil {
		t.Fatal(err)
	}
	h.write(1, 4)
	h.subscribe("") // the same id again: a new subscription
	h.write(1, 5)
	waitFor(t, "value 5", 5*time.Second, func() bool { return len(h.rcv.got()) == 3 })
	if got := h.rcv.got(); !slices.Equal(got, []float64{1, 3, 5}) {
		t.Errorf("received %v, want [1 3 5]", got)
	}
}

// dropped is the number of notifications the service dropped.
func dropped(s *Service) int {
	var m dto.Metric
	s.m.dropped.Write(&m)
	return int(m.GetCounter().GetValue())
}

package ngsildapi_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/zenne-city/zenne/internal/apitest"
)

// Black-box tests of NGSI-LD subscriptions (ETSI GS CIM 009 v1.8, 5.2.12,
// 5.8, 6.10-6.11): a real zenne on loopback, real HTTP receivers that record
// every request, and the machine's Mosquitto for mqtt endpoints.
//
// Absence is proved without sleeping where it can be: after the expected
// notifications, a fence changes an entity that only a sentinel subscription
// watches, waits for the sentinel's notification at the same receiver and
// then checks that nothing more came. The notifier matches changes in commit
// order, so by then it has queued whatever the earlier changes triggered.
// (Each subscription is delivered on its own, so an unwanted notification
// queued just before the sentinel's could still be on its way; the tests
// wait for what they expect first, so only such extras could slip by.)
//
// What the implementation does where the spec leaves room, pinned here:
//   - a subscription sees only the changes after its creation;
//   - one change gives one notification per subscription, with the first
//     trigger of Subscription.Match's order, even when it lists several;
//   - timesSent counts attempts, failed ones included;
//   - changes made while a subscription is paused are never notified, not
//     even after it is resumed;
//   - a throttled subscription sends what gathered while it waited in one
//     notification (every state, in order, the last one last);
//   - a periodic notification has no triggerReason;
//   - showChanges is honoured in the normalized format only (docs/API.md):
//     a concise notification carries no previousValue.
//
// The tests at the end of the file (TestSubscriptionBatchKeepsOrder and
// the two after it) fail: they show bugs, described beside them.

const subsPath = apiBase + "/subscriptions"

func subPath(id string) string { return subsPath + "/" + url.PathEscape(id) }

// jobj is a JSON object in a test's source.
type jobj = map[string]any

// subWait bounds every wait for a notification.
const subWait = 10 * time.Second

// subSeq makes names unique within the test binary.
var subSeq atomic.Int64

func subUnique(prefix string) string { return fmt.Sprintf("%s%d", prefix, subSeq.Add(1)) }

// --- receivers ---

// hook is one request a receiver got.
type hook struct {
	Path   string // without the leading slash
	Method string
	Header http.Header
	Body   []byte
	At     time.Time
	Status int // what the receiver answered (closeConn: it closed the connection)
}

// closeConn is the answer that closes the connection instead of answering.
const closeConn = -1

// receiver is an HTTP server recording every request as it answers it (in
// arrival order, unless an answer takes its time). One receiver serves
// several subscriptions, each on a path of its own.
type receiver struct {
	srv     *httptest.Server
	mu      sync.Mutex
	got     []hook
	changed chan struct{}              // closed and replaced at each request
	answers map[string]func(n int) int // path -> status for the path's n-th request (from 0); it may sleep
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{changed: make(chan struct{}), answers: map[string]func(int) int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

// url is the endpoint URI of path.
func (r *receiver) url(path string) string { return r.srv.URL + "/" + path }

// answer makes the receiver answer path's requests with f(n) (200 by default).
func (r *receiver) answer(path string, f func(n int) int) {
	r.mu.Lock()
	r.answers[path] = f
	r.mu.Unlock()
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	h := hook{Path: strings.TrimPrefix(req.URL.Path, "/"), Method: req.Method, Header: req.Header.Clone(), Body: body, At: time.Now(), Status: http.StatusOK}
	r.mu.Lock()
	f, n := r.answers[h.Path], 0
	for _, g := range r.got {
		if g.Path == h.Path {
			n++
		}
	}
	r.mu.Unlock()
	if f != nil {
		h.Status = f(n) // may take its time: outside the lock
	}
	r.mu.Lock()
	r.got = append(r.got, h) // once answered: the n of the next request counts this one
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
	if h.Status == closeConn {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	w.WriteHeader(h.Status)
}

// all returns every request path got, failed attempts included.
func (r *receiver) all(path string) []hook {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []hook
	for _, h := range r.got {
		if h.Path == path {
			out = append(out, h)
		}
	}
	return out
}

// delivered returns the requests of path the receiver accepted (2xx).
func (r *receiver) delivered(path string) []hook {
	var out []hook
	for _, h := range r.all(path) {
		if h.Status >= 200 && h.Status < 300 {
			out = append(out, h)
		}
	}
	return out
}

// waitFor waits until done holds for path's accepted notifications and
// returns them.
func (r *receiver) waitFor(t testing.TB, path, what string, done func([]hook) bool) []hook {
	t.Helper()
	return r.waitForWithin(t, path, what, subWait, done)
}

func (r *receiver) waitForWithin(t testing.TB, path, what string, within time.Duration, done func([]hook) bool) []hook {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		ch := r.changed
		r.mu.Unlock()
		got := r.delivered(path)
		if done(got) {
			return got
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("%s: no %s within %v; got %d notifications:\n%s", path, what, within, len(got), hookBodies(got))
		}
	}
}

// wait waits for n accepted notifications at path.
func (r *receiver) wait(t testing.TB, path string, n int) []hook {
	t.Helper()
	return r.waitFor(t, path, fmt.Sprintf("%d notifications", n), func(h []hook) bool { return len(h) >= n })
}

// waitEvents waits until path's notifications carry n entities in all.
func (r *receiver) waitEvents(t testing.TB, path string, n int) []hook {
	t.Helper()
	return r.waitFor(t, path, fmt.Sprintf("%d notified entities", n), func(h []hook) bool { return len(eventsOf(t, h)) >= n })
}

func hookBodies(hs []hook) string {
	var b strings.Builder
	for _, h := range hs {
		fmt.Fprintf(&b, "  %s %d %s\n", h.At.Format("15:04:05.000"), h.Status, h.Body)
	}
	return b.String()
}

// notification decodes a hook's body.
func (h hook) notification(t testing.TB) jobj {
	t.Helper()
	var m jobj
	if err := json.Unmarshal(h.Body, &m); err != nil {
		t.Fatalf("notification is not a JSON object (%v): %s", err, h.Body)
	}
	return m
}

// --- notifications as events ---

// event is one entity of a notification's data, with the notification's
// triggerReason. A notification of several entities (changes matched
// together, or gathered by throttling) is several events, so tests do not
// depend on how the notifier batches.
type event struct {
	Trigger string
	Entity  jobj
}

func eventsOf(t testing.TB, hs []hook) []event {
	t.Helper()
	var out []event
	for _, h := range hs {
		n := h.notification(t)
		trg, _ := n["triggerReason"].(string)
		data, ok := n["data"].([]any)
		if !ok {
			t.Fatalf("notification without a data array: %s", h.Body)
		}
		for _, d := range data {
			e, ok := d.(jobj)
			if !ok {
				t.Fatalf("data member is not an object: %s", h.Body)
			}
			out = append(out, event{Trigger: trg, Entity: e})
		}
	}
	return out
}

// String summarises an event: "attributeUpdated 1 humidity=null temperature=21"
// (the trigger, the last segment of the entity id, its attributes' values
// by name, NGSI-LD Null as null; "deleted" for a deletedAt member).
func (e event) String() string {
	id, _ := e.Entity["id"].(string)
	parts := []string{e.Trigger, id[strings.LastIndexByte(id, ':')+1:]}
	var attrs []string
	for k, v := range e.Entity {
		switch k {
		case "id", "type", "@context", "createdAt", "modifiedAt":
		case "deletedAt":
			attrs = append(attrs, "~deleted") // sorts last
		default:
			attrs = append(attrs, k+"="+attrValue(v))
		}
	}
	sort.Strings(attrs)
	for _, a := range attrs {
		parts = append(parts, strings.TrimPrefix(a, "~"))
	}
	return strings.TrimSpace(strings.Join(parts, " "))
}

// attrValue is an attribute's value in any format: the value member of a
// normalized or concise attribute, or the keyValues value itself.
func attrValue(v any) string {
	switch x := v.(type) {
	case jobj:
		for _, k := range []string{"value", "object", "languageMap", "vocab", "json", "valueList", "objectList"} {
			if y, ok := x[k]; ok {
				return attrValue(y)
			}
		}
	case []any:
		vs := make([]string, len(x))
		for i, y := range x {
			vs[i] = attrValue(y)
		}
		return "[" + strings.Join(vs, ",") + "]"
	case string:
		if x == "urn:ngsi-ld:null" {
			return "null"
		}
		return x
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func summaries(es []event) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.String()
	}
	return out
}

// sameEvents fails unless the events are want, in order.
func sameEvents(t testing.TB, what string, got []event, want []string) bool {
	t.Helper()
	g := summaries(got)
	if len(g) == 0 && len(want) == 0 {
		return true
	}
	if !slices.Equal(g, want) {
		t.Errorf("%s notified\n  %s\nwant\n  %s", what, strings.Join(g, "\n  "), strings.Join(want, "\n  "))
		return false
	}
	return true
}

// --- the fence ---

// fence proves that no more notifications came: a sentinel subscription of
// its own on the same receiver, and an entity only it watches.
type fence struct {
	s    *apitest.Server
	r    *receiver
	hdr  map[string]string
	id   string // the sentinel entity
	path string
	n    int
}

func newFence(t *testing.T, s *apitest.Server, r *receiver, hdr map[string]string) *fence {
	t.Helper()
	f := &fence{s: s, r: r, hdr: hdr, id: subUnique("urn:ngsi-ld:Sentinel:"), path: subUnique("sentinel-")}
	createSub(t, s, jobj{
		"type":         "Subscription",
		"entities":     []any{jobj{"id": f.id, "type": "Sentinel"}},
		"notification": jobj{"endpoint": jobj{"uri": r.url(f.path)}},
	}, hdr)
	return f
}

// check makes the sentinel change, waits for its notification and returns
// every notification path had received by then: what the changes made
// before the check triggered, and nothing else.
func (f *fence) check(t testing.TB, path string) []hook {
	t.Helper()
	f.n++
	if f.n == 1 {
		f.s.Post(apiBase+"/entities", jobj{"id": f.id, "type": "Sentinel", "seq": pv(f.n)}, f.hdr).Expect(t, http.StatusCreated)
	} else {
		f.s.Patch(entityPath(f.id)+"/attrs", jobj{"seq": pv(f.n)}, f.hdr).Expect(t, http.StatusNoContent)
	}
	f.r.wait(t, f.path, f.n)
	return f.r.delivered(path)
}

// expect waits for the events want at path, then checks with the fence that
// nothing else came, and returns the notifications.
func (f *fence) expect(t testing.TB, path string, want []string) []hook {
	t.Helper()
	if len(want) > 0 {
		f.r.waitEvents(t, path, len(want))
	}
	got := f.check(t, path)
	if !sameEvents(t, path, eventsOf(t, got), want) {
		t.Logf("the notifications:\n%s", hookBodies(got))
	}
	return got
}

// --- requests ---

// createSub creates a subscription and returns its id (from Location).
func createSub(t testing.TB, s *apitest.Server, body jobj, hdr map[string]string) string {
	t.Helper()
	r := s.Post(subsPath, body, hdr).Expect(t, http.StatusCreated)
	loc := r.Header.Get("Location")
	if !strings.HasPrefix(loc, subsPath+"/") {
		t.Fatalf("Location %q", loc)
	}
	id, err := url.PathUnescape(strings.TrimPrefix(loc, subsPath+"/"))
	if err != nil {
		t.Fatal(err)
	}
	if want, ok := body["id"]; ok && want != id {
		t.Fatalf("Location %q, want the id %v", loc, want)
	}
	return id
}

// getSub retrieves a subscription as a JSON object.
func getSub(t testing.TB, s *apitest.Server, id string, hdr map[string]string) jobj {
	t.Helper()
	r := s.Get(subPath(id), hdr).Expect(t, http.StatusOK)
	var m jobj
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("subscription is not a JSON object: %s", r.Body)
	}
	return m
}

// pollSub retrieves a subscription until done holds (the notifier updates
// the status after a delivery's answer, so just after the receiver saw it).
func pollSub(t testing.TB, s *apitest.Server, id string, hdr map[string]string, what string, done func(sub jobj) bool) jobj {
	t.Helper()
	deadline := time.Now().Add(subWait)
	for {
		sub := getSub(t, s, id, hdr)
		if done(sub) {
			return sub
		}
		if time.Now().After(deadline) {
			b, _ := json.Marshal(sub)
			t.Fatalf("subscription %s: no %s within %v: %s", id, what, subWait, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// notifStatus reads notification.<member> of a retrieved subscription.
func notifStatus(sub jobj, member string) any {
	n, _ := sub["notification"].(jobj)
	return n[member]
}

func postEntity(e jobj) apitest.Req {
	return apitest.Req{Method: "POST", Path: apiBase + "/entities", Body: e}
}
func patchAttrs(id string, attrs jobj) apitest.Req {
	return apitest.Req{Method: "PATCH", Path: entityPath(id) + "/attrs", Body: attrs}
}
func appendAttrs(id string, attrs jobj) apitest.Req {
	return apitest.Req{Method: "POST", Path: entityPath(id) + "/attrs", Body: attrs}
}
func deleteAttr(id, name string) apitest.Req {
	return apitest.Req{Method: "DELETE", Path: entityPath(id) + "/attrs/" + name}
}
func deleteEntityReq(id string) apitest.Req {
	return apitest.Req{Method: "DELETE", Path: entityPath(id)}
}
func upsertReq(es ...any) apitest.Req {
	return apitest.Req{Method: "POST", Path: apiBase + "/entityOperations/upsert", Body: es}
}

// write sends a write of the entity API with hdr and fails unless it
// succeeded.
func write(t testing.TB, s *apitest.Server, req apitest.Req, hdr map[string]string) {
	t.Helper()
	if req.Header == nil {
		req.Header = hdr
	}
	r := s.Do(req)
	if r.Status < 200 || r.Status > 299 {
		t.Fatalf("%s %s: status %d: %s", req.Method, req.Path, r.Status, r.Body)
	}
}

// --- golden files ---

var (
	subReceiverURL = regexp.MustCompile(`http://127\.0\.0\.1:\d+/`)
	subTimeKeys    = map[string]bool{"notifiedAt": true, "lastNotification": true, "lastSuccess": true, "lastFailure": true, "deletedAt": true, "expiresAt": true}
)

// maskSub replaces what differs between runs: times, notification and
// subscription ids in notifications, and receivers' ports.
func maskSub(v any) any {
	switch x := v.(type) {
	case jobj:
		for k, e := range x {
			switch s, isStr := e.(string); {
			case isStr && subTimeKeys[k]:
				x[k] = "<time>"
			case isStr && k == "subscriptionId":
				x[k] = "<subscription>"
			case isStr && k == "id" && strings.HasPrefix(s, "urn:ngsi-ld:Notification:"):
				x[k] = "<notification>"
			default:
				x[k] = maskSub(e)
			}
		}
	case []any:
		for i := range x {
			x[i] = maskSub(x[i])
		}
	case string:
		return subReceiverURL.ReplaceAllString(x, "http://<receiver>/")
	}
	return v
}

// subGolden compares v, masked, with testdata/subscriptions/<name>.json
// (rewritten with -update, like the package's other golden files).
func subGolden(t testing.TB, name string, v any) {
	t.Helper()
	if b, ok := v.([]byte); ok {
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("not JSON (%v): %s", err, b)
		}
	}
	b, err := json.Marshal(maskSub(v))
	if err != nil {
		t.Fatal(err)
	}
	apitest.Golden(t, "../subscriptions/"+name, b)
}

// goldenNotifications is the bodies of hs as a JSON array, for subGolden.
func goldenNotifications(t testing.TB, hs []hook) []any {
	t.Helper()
	out := make([]any, len(hs))
	for i, h := range hs {
		out[i] = h.notification(t)
	}
	return out
}

// ============================================================================
// 1. CRUD
// ============================================================================

// binSubscription is a subscription using most members, in the terms of the
// Smart Data Models WasteManagement @context.
func binSubscription(id string) jobj {
	return jobj{
		"id":                  id,
		"type":                "Subscription",
		"subscriptionName":    "Bins almost full",
		"description":         "Containers of the centre over 80%",
		"entities":            []any{jobj{"type": "WasteContainer"}, jobj{"idPattern": "^urn:ngsi-ld:WasteContainer:B", "type": "WasteContainer"}},
		"watchedAttributes":   []any{"fillingLevel"},
		"notificationTrigger": []any{"attributeCreated", "attributeUpdated"},
		"q":                   "fillingLevel>0.8",
		"geoQ": jobj{"geometry": "Polygon", "georel": "within",
			"coordinates": []any{[]any{[]any{4.33, 50.83}, []any{4.37, 50.83}, []any{4.37, 50.86}, []any{4.33, 50.86}, []any{4.33, 50.83}}}},
		"scopeQ":     "/Brussels/#",
		"throttling": 2,
		"lang":       "fr",
		"notification": jobj{
			"attributes": []any{"fillingLevel", "location"},
			"format":     "keyValues",
			"endpoint": jobj{
				"uri":          "http://127.0.0.1:9/bins",
				"accept":       "application/json",
				"receiverInfo": []any{jobj{"key": "X-Token", "value": "t0k3n"}},
			},
		},
	}
}

func TestSubscriptionCRUD(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	waste := linkHdr(wasteContext)
	id := "urn:ngsi-ld:Subscription:bins"

	t.Run("create", func(t *testing.T) {
		r := s.Post(subsPath, binSubscription(id), waste).Expect(t, http.StatusCreated)
		if got, want := r.Header.Get("Location"), subPath(id); got != want {
			t.Errorf("Location %q, want %q", got, want)
		}
		if len(r.Body) != 0 {
			t.Errorf("201 with a body: %s", r.Body)
		}
		s.Post(subsPath, binSubscription(id), waste).ExpectProblem(t, http.StatusConflict, "AlreadyExists")
	})

	t.Run("create_without_id", func(t *testing.T) {
		body := binSubscription("")
		delete(body, "id")
		gen := createSub(t, s, body, waste)
		if !regexp.MustCompile(`^urn:ngsi-ld:Subscription:[0-9a-f]+$`).MatchString(gen) {
			t.Errorf("generated id %q", gen)
		}
		if got := getSub(t, s, gen, waste)["id"]; got != gen {
			t.Errorf("retrieved id %v, want %s", got, gen)
		}
		s.Delete(subPath(gen), nil).Expect(t, http.StatusNoContent)
	})

	t.Run("retrieve", func(t *testing.T) {
		cases := []struct {
			name   string
			query  string
			header map[string]string
			ctype  string
		}{
			// The request's @context compacts the names.
			{"link_header", "", waste, "application/json"},
			// The core @context cannot compact fillingLevel: full IRIs.
			{"core_context", "", nil, "application/json"},
			{"ld_json", "", map[string]string{"Link": waste["Link"], "Accept": "application/ld+json"}, "application/ld+json"},
			{"sysAttrs", "?options=sysAttrs", waste, "application/json"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				r := s.Get(subPath(id)+tc.query, tc.header).Expect(t, http.StatusOK)
				if got := r.Header.Get("Content-Type"); got != tc.ctype {
					t.Errorf("Content-Type %q, want %q", got, tc.ctype)
				}
				link := r.Header.Get("Link")
				if tc.ctype == "application/json" {
					want := apitest.LinkHeader(coreContext)
					if tc.header != nil {
						want = waste["Link"]
					}
					if link != want {
						t.Errorf("Link %q, want %q", link, want)
					}
				}
				if tc.ctype == "application/ld+json" {
					if link != "" {
						t.Errorf("Link %q with application/ld+json", link)
					}
					if got := jsonObject(t, r)["@context"]; got != wasteContext {
						t.Errorf("@context %v, want %s", got, wasteContext)
					}
				}
				subGolden(t, "get_"+tc.name, r.Body)
			})
		}
		t.Run("errors", func(t *testing.T) {
			s.Get(subPath("urn:ngsi-ld:Subscription:none"), nil).ExpectProblem(t, http.StatusNotFound, "ResourceNotFound")
			s.Get(subsPath+"/not%20a%20uri", nil).ExpectProblem(t, http.StatusBadRequest, "BadRequestData")
			s.Get(subPath(id)+"?options=keyValues,frobnicate", nil).ExpectProblem(t, http.StatusBadRequest, "BadRequestData")
		})
	})

	t.Run("list", func(t *testing.T) {
		hdr := tenant("listing")
		var ids []string
		for i := 1; i <= 5; i++ {
			b := binSubscription(fmt.Sprintf("urn:ngsi-ld:Subscription:list-%d", i))
			ids = append(ids, createSub(t, s, b, hdr))
		}
		cases := []struct {
			query string
			want  []string
			count string // NGSILD-Results-Count; "" none
		}{
			{"", ids, ""},
			{"?limit=2&offset=1&count=true", ids[1:3], "5"},
			{"?offset=4", ids[4:], ""},
			{"?offset=9", nil, ""},
			{"?limit=0&count=true", nil, "5"},
		}
		for _, tc := range cases {
			t.Run(tc.query, func(t *testing.T) {
				r := s.Get(subsPath+tc.query, hdr).Expect(t, http.StatusOK)
				var list []jobj
				if err := json.Unmarshal(r.Body, &list); err != nil {
					t.Fatalf("list is not an array of objects: %s", r.Body)
				}
				var got []string
				for _, sub := range list {
					got = append(got, sub["id"].(string))
				}
				if !slices.Equal(got, tc.want) {
					t.Errorf("ids %v, want %v", got, tc.want)
				}
				if c := r.Header.Get("NGSILD-Results-Count"); c != tc.count {
					t.Errorf("NGSILD-Results-Count %q, want %q", c, tc.count)
				}
			})
		}
		r := s.Get(subsPath+"?limit=2", map[string]string{"NGSILD-Tenant": "listing", "Accept": "application/ld+json"}).Expect(t, http.StatusOK)
		var list []jobj
		if err := json.Unmarshal(r.Body, &list); err != nil || len(list) != 2 {
			t.Fatalf("ld+json list: %s", r.Body)
		}
		for _, sub := range list {
			if sub["@context"] != coreContext {
				t.Errorf("ld+json list member without the @context: %v", sub["@context"])
			}
		}
		s.Get(subsPath+"?limit=0", hdr).ExpectProblem(t, http.StatusBadRequest, "BadRequestData")
		s.Get(subsPath+"?limit=-1", hdr).ExpectProblem(t, http.StatusBadRequest, "BadRequestData")
		s.Get(subsPath+"?limit=100000", hdr).ExpectProblem(t, http.StatusForbidden, "TooManyResults")
	})

	t.Run("delete", func(t *testing.T) {
		del := "urn:ngsi-ld:Subscription:to-delete"
		createSub(t, s, binSubscription(del), waste)
		s.Delete(subPath(del), nil).Expect(t, http.StatusNoContent)
		s.Get(subPath(del), nil).ExpectProblem(t, http.StatusNotFound, "ResourceNotFound")
		s.Delete(subPath(del), nil).ExpectProblem(t, http.StatusNotFound, "ResourceNotFound")
		s.Patch(subPath(del), jobj{"isActive": false}, nil).ExpectProblem(t, http.StatusNotFound, "ResourceNotFound")
		s.Delete(subsPath+"/not%20a%20uri", nil).ExpectProblem(t, http.StatusBadRequest, "BadRequestData")
		// The id is free again.
		createSub(t, s, binSubscription(del), waste)
	})
}

// TestSubscriptionPatch changes a subscription's members one at a time and
// checks each change in what it notifies.
func TestSubscriptionPatch(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	r := newReceiver(t)
	f := newFence(t, s, r, nil)
	id := "urn:ngsi-ld:Subscription:patched"
	e := "urn:ngsi-ld:PatchRoom:1"
	createSub(t, s, jobj{
		"id": id, "type": "Subscription",
		"entities":     []any{jobj{"type": "PatchRoom"}},
		"q":            "temperature>10",
		"notification": jobj{"format": "keyValues", "endpoint": jobj{"uri": r.url("a")}},
	}, nil)
	subGolden(t, "patch_before", s.Get(subPath(id), nil).Expect(t, http.StatusOK).Body)

	write(t, s, postEntity(jobj{"id": e, "type": "PatchRoom", "temperature": pv(5), "humidity": pv(40)}), nil)
	f.expect(t, "a", nil) // q does not hold

	patch := func(t *testing.T, fragment jobj) {
		t.Helper()
		s.Patch(subPath(id), fragment, nil).Expect(t, http.StatusNoContent)
	}

	t.Run("q", func(t *testing.T) {
		patch(t, jobj{"q": "temperature<10"})
		if got := getSub(t, s, id, nil)["q"]; got != "temperature<10" {
			t.Errorf("q %v after PATCH", got)
		}
		write(t, s, patchAttrs(e, jobj{"temperature": pv(6)}), nil)
		f.expect(t, "a", []string{"attributeUpdated 1 humidity=40 temperature=6"})
	})
	t.Run("watchedAttributes", func(t *testing.T) {
		patch(t, jobj{"watchedAttributes": []any{"humidity"}})
		write(t, s, patchAttrs(e, jobj{"temperature": pv(7)}), nil)
		write(t, s, patchAttrs(e, jobj{"humidity": pv(41)}), nil)
		f.expect(t, "a", []string{
			"attributeUpdated 1 humidity=40 temperature=6",
			"attributeUpdated 1 humidity=41 temperature=7",
		})
	})
	t.Run("endpoint", func(t *testing.T) {
		// notification and endpoint are merged: format and the rest stay.
		patch(t, jobj{"notification": jobj{"endpoint": jobj{"uri": r.url("b")}}})
		write(t, s, patchAttrs(e, jobj{"humidity": pv(42)}), nil)
		f.expect(t, "b", []string{"attributeUpdated 1 humidity=42 temperature=7"})
		if n := len(r.delivered("a")); n != 2 {
			t.Errorf("%d notifications at the old endpoint, want still 2", n)
		}
	})
	t.Run("isActive", func(t *testing.T) {
		patch(t, jobj{"isActive": false})
		sub := getSub(t, s, id, nil)
		if sub["isActive"] != false || sub["status"] != "paused" {
			t.Errorf("isActive %v, status %v after pausing", sub["isActive"], sub["status"])
		}
		write(t, s, patchAttrs(e, jobj{"humidity": pv(43)}), nil)
		f.expect(t, "b", []string{"attributeUpdated 1 humidity=42 temperature=7"})
		patch(t, jobj{"isActive": true})
		sub = getSub(t, s, id, nil)
		if sub["isActive"] != true || sub["status"] != "active" {
			t.Errorf("isActive %v, status %v after resuming", sub["isActive"], sub["status"])
		}
		write(t, s, patchAttrs(e, jobj{"humidity": pv(44)}), nil)
		f.expect(t, "b", []string{
			"attributeUpdated 1 humidity=42 temperature=7",
			"attributeUpdated 1 humidity=44 temperature=7",
		})
	})
	t.Run("remove_members", func(t *testing.T) {
		// null puts a member back to its default: no q, every attribute watched.
		patch(t, jobj{"q": nil, "watchedAttributes": "urn:ngsi-ld:null"})
		sub := getSub(t, s, id, nil)
		if _, ok := sub["q"]; ok {
			t.Errorf("q still there: %v", sub["q"])
		}
		if _, ok := sub["watchedAttributes"]; ok {
			t.Errorf("watchedAttributes still there: %v", sub["watchedAttributes"])
		}
		write(t, s, patchAttrs(e, jobj{"temperature": pv(30)}), nil)
		f.expect(t, "b", []string{
			"attributeUpdated 1 humidity=42 temperature=7",
			"attributeUpdated 1 humidity=44 temperature=7",
			"attributeUpdated 1 humidity=44 temperature=30",
		})
	})
	t.Run("rejected", func(t *testing.T) {
		before := s.Get(subPath(id)+"?options=sysAttrs", nil).Expect(t, http.StatusOK).Body
		cases := []struct {
			name, errType string
			fragment      any
		}{
			{"unknown_trigger", "BadRequestData", jobj{"notificationTrigger": []any{"entityTouched"}}},
			{"bad_q", "BadRequestData", jobj{"q": "temperature>"}},
			{"remove_notification", "BadRequestData", jobj{"notification": nil}},
			{"remove_uri", "BadRequestData", jobj{"notification": jobj{"endpoint": jobj{"uri": nil}}}},
			{"other_id", "BadRequestData", jobj{"id": "urn:ngsi-ld:Subscription:other"}},
			{"expired", "BadRequestData", jobj{"expiresAt": "2020-01-01T00:00:00Z"}},
			{"isActive_not_boolean", "InvalidRequest", jobj{"isActive": "no"}},
			{"bad_json", "InvalidRequest", `{"q":`},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				problem(t, s.Patch(subPath(id), tc.fragment, nil), http.StatusBadRequest, tc.errType)
			})
		}
		sameJSON(t, s.Get(subPath(id)+"?options=sysAttrs", nil).Expect(t, http.StatusOK).Body, before)
	})
	subGolden(t, "patch_after", s.Get(subPath(id), nil).Expect(t, http.StatusOK).Body)
}

// TestSubscriptionTenants checks that a subscription lives in its tenant:
// invisible from the others, notified only by its own tenant's changes.
func TestSubscriptionTenants(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	r := newReceiver(t)
	f := newFence(t, s, r, nil) // the matcher reads every tenant's changes in one order
	a, b := tenant("cityA"), tenant("cityB")
	subA, subB := "urn:ngsi-ld:Subscription:tenant-a", "urn:ngsi-ld:Subscription:tenant-b"
	sub := func(id, path string) jobj {
		return jobj{"id": id, "type": "Subscription", "entities": []any{jobj{"type": "TenantRoom"}},
			"notification": jobj{"format": "keyValues", "endpoint": jobj{"uri": r.url(path)}}}
	}
	createSub(t, s, sub(subA, "a"), a)
	createSub(t, s, sub(subB, "b"), b)
	// The same id may be used in another tenant.
	createSub(t, s, sub(subA, "b2"), b)

	s.Get(subPath(subA), nil).ExpectProblem(t, http.StatusNotFound, "ResourceNotFound")
	s.Get(subPath(subB), a).ExpectProblem(t, http.StatusNotFound, "ResourceNotFound")
	for _, tc := range []struct {
		hdr  map[string]string
		want []string
	}{{a, []string{subA}}, {b, []string{subA, subB}}, {nil, nil}} {
		var list []jobj
		if err := json.Unmarshal(s.Get(subsPath, tc.hdr).Expect(t, http.StatusOK).Body, &list); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, x := range list {
			if id := x["id"].(string); strings.HasPrefix(id, "urn:ngsi-ld:Subscription:tenant-") { // not the fence's
				ids = append(ids, id)
			}
		}
		if !slices.Equal(ids, tc.want) {
			t.Errorf("tenant %v lists %v, want %v", tc.hdr, ids, tc.want)
		}
	}
	// Pausing cityB's subA leaves cityA's alone.
	s.Patch(subPath(subA), jobj{"isActive": false}, b).Expect(t, http.StatusNoContent)
	if getSub(t, s, subA, a)["isActive"] != true {
		t.Error("pausing cityB's subscription paused cityA's")
	}

	write(t, s, postEntity(jobj{"id": "urn:ngsi-ld:TenantRoom:1", "type": "TenantRoom", "temperature": pv(1)}), a)
	write(t, s, postEntity(jobj{"id": "urn:ngsi-ld:TenantRoom:1", "type": "TenantRoom", "temperature": pv(2)}), b)
	write(t, s, postEntity(jobj{"id": "urn:ngsi-ld:TenantRoom:1", "type": "TenantRoom", "temperature": pv(3)}), nil)
	write(t, s, patchAttrs("urn:ngsi-ld:TenantRoom:1", jobj{"temperature": pv(4)}), a)
	f.expect(t, "a", []string{"attributeCreated 1 temperature=1", "attributeUpdated 1 temperature=4"})
	f.expect(t, "b", []string{"attributeCreated 1 temperature=2"})
	f.expect(t, "b2", nil) // paused

	s.Delete(subPath(subA), b).Expect(t, http.StatusNoContent)
	getSub(t, s, subA, a) // cityA's is still there
}

// TestSubscriptionNotificationTenantHeader: a notification of a subscription
// in a tenant other than the default one carries NGSILD-Tenant (6.3.14), so
// a receiver serving several tenants knows whose data it is; one of the
// default tenant carries none.
func TestSubscriptionNotificationTenantHeader(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	r := newReceiver(t)
	createSub(t, s, jobj{"type": "Subscription", "entities": []any{jobj{"type": "TenantHdrRoom"}},
		"notification": jobj{"endpoint": jobj{"uri": r.url("a")}}}, tenant("cityA"))
	createSub(t, s, jobj{"type": "Subscription", "entities": []any{jobj{"type": "TenantHdrRoom"}},
		"notification": jobj{"endpoint": jobj{"uri": r.url("default")}}}, nil)
	write(t, s, postEntity(jobj{"id": "urn:ngsi-ld:TenantHdrRoom:1", "type": "TenantHdrRoom", "temperature": pv(1)}), tenant("cityA"))
	write(t, s, postEntity(jobj{"id": "urn:ngsi-ld:TenantHdrRoom:1", "type": "TenantHdrRoom", "temperature": pv(1)}), nil)
	if got := r.wait(t, "a", 1)[0].Header.Values("NGSILD-Tenant"); !slices.Equal(got, []string{"cityA"}) {
		t.Errorf("notification of a cityA subscription: NGSILD-Tenant %q, want cityA", got)
	}
	if got := r.wait(t, "default", 1)[0].Header.Values("NGSILD-Tenant"); len(got) != 0 {
		t.Errorf("notification of a default-tenant subscription: NGSILD-Tenant %q, want none", got)
	}
}

// ============================================================================
// 2. Bad input
// ============================================================================

func TestSubscriptionBadInput(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	valid := func(change func(b jobj)) jobj {
		b := jobj{
			"type":         "Subscription",
			"entities":     []any{jobj{"type": "Room"}},
			"notification": jobj{"endpoint": jobj{"uri": "http://127.0.0.1:9/x"}},
		}
		if change != nil {
			change(b)
		}
		return b
	}
	endpoint := func(b jobj) jobj { return b["notification"].(jobj)["endpoint"].(jobj) }
	cases := []struct {
		name    string
		req     apitest.Req
		status  int
		errType string
		detail  string // a part of the detail
	}{
		{"unknown_trigger", apitest.Req{Body: valid(func(b jobj) { b["notificationTrigger"] = []any{"entityChanged"} })}, 400, "BadRequestData", `"entityChanged"`},
		{"empty_triggers", apitest.Req{Body: valid(func(b jobj) { b["notificationTrigger"] = []any{} })}, 400, "BadRequestData", "notificationTrigger"},
		{"q_syntax", apitest.Req{Body: valid(func(b jobj) { b["q"] = "temperature>>1" })}, 400, "BadRequestData", "q"},
		{"q_unbalanced", apitest.Req{Body: valid(func(b jobj) { b["q"] = "(a==1" })}, 400, "BadRequestData", "q"},
		{"endpoint_ftp", apitest.Req{Body: valid(func(b jobj) { endpoint(b)["uri"] = "ftp://example.org/in" })}, 400, "BadRequestData", `"ftp"`},
		{"endpoint_not_uri", apitest.Req{Body: valid(func(b jobj) { endpoint(b)["uri"] = "receiver" })}, 400, "BadRequestData", "notification.endpoint.uri"},
		{"endpoint_no_host", apitest.Req{Body: valid(func(b jobj) { endpoint(b)["uri"] = "http:///x" })}, 400, "BadRequestData", "no host"},
		{"endpoint_missing", apitest.Req{Body: valid(func(b jobj) { b["notification"] = jobj{"format": "keyValues"} })}, 400, "BadRequestData", "endpoint"},
		{"accept_xml", apitest.Req{Body: valid(func(b jobj) { endpoint(b)["accept"] = "application/xml" })}, 400, "BadRequestData", "accept"},
		{"receiverInfo_bad_header", apitest.Req{Body: valid(func(b jobj) {
			endpoint(b)["receiverInfo"] = []any{jobj{"key": "Bad Header", "value": "x"}}
		})}, 400, "BadRequestData", "receiverInfo"},
		{"mqtt_qos_3", apitest.Req{Body: valid(func(b jobj) {
			endpoint(b)["uri"] = "mqtt://127.0.0.1:1883/t"
			endpoint(b)["notifierInfo"] = []any{jobj{"key": "MQTT-QoS", "value": "3"}}
		})}, 400, "BadRequestData", "MQTT-QoS"},
		{"throttling_with_timeInterval", apitest.Req{Body: valid(func(b jobj) { b["timeInterval"] = 10; b["throttling"] = 1 })}, 400, "BadRequestData", "throttling and timeInterval"},
		{"watched_with_timeInterval", apitest.Req{Body: valid(func(b jobj) { b["timeInterval"] = 10; b["watchedAttributes"] = []any{"a"} })}, 400, "BadRequestData", "timeInterval"},
		{"negative_throttling", apitest.Req{Body: valid(func(b jobj) { b["throttling"] = -1 })}, 400, "BadRequestData", "throttling"},
		{"expiresAt_past", apitest.Req{Body: valid(func(b jobj) { b["expiresAt"] = "2020-01-01T00:00:00Z" })}, 400, "BadRequestData", "expiresAt"},
		{"expiresAt_not_time", apitest.Req{Body: valid(func(b jobj) { b["expiresAt"] = "tomorrow" })}, 400, "BadRequestData", "expiresAt"},
		{"missing_notification", apitest.Req{Body: valid(func(b jobj) { delete(b, "notification") })}, 400, "BadRequestData", "notification"},
		{"missing_type", apitest.Req{Body: valid(func(b jobj) { delete(b, "type") })}, 400, "BadRequestData", "type"},
		{"wrong_type", apitest.Req{Body: valid(func(b jobj) { b["type"] = "Subscriptions" })}, 400, "BadRequestData", "Subscription"},
		{"no_entities_nor_watched", apitest.Req{Body: valid(func(b jobj) { delete(b, "entities") })}, 400, "BadRequestData", "entities or watchedAttributes"},
		{"selector_empty", apitest.Req{Body: valid(func(b jobj) { b["entities"] = []any{jobj{}} })}, 400, "BadRequestData", "entities[0]"},
		{"idPattern_bad_regexp", apitest.Req{Body: valid(func(b jobj) { b["entities"] = []any{jobj{"idPattern": "(", "type": "Room"}} })}, 400, "BadRequestData", "idPattern"},
		{"geoQ_bad_georel", apitest.Req{Body: valid(func(b jobj) {
			b["geoQ"] = jobj{"geometry": "Point", "coordinates": []any{4.35, 50.85}, "georel": "around"}
		})}, 400, "BadRequestData", "geoQ"},
		{"scopeQ_bad", apitest.Req{Body: valid(func(b jobj) { b["scopeQ"] = "/a/#/b" })}, 400, "BadRequestData", "scopeQ"},
		{"showChanges_keyValues", apitest.Req{Body: valid(func(b jobj) {
			b["notification"].(jobj)["format"] = "keyValues"
			b["notification"].(jobj)["showChanges"] = true
		})}, 400, "BadRequestData", "showChanges"},
		{"format_unknown", apitest.Req{Body: valid(func(b jobj) { b["notification"].(jobj)["format"] = "compact" })}, 400, "BadRequestData", "format"},
		{"lang_bad", apitest.Req{Body: valid(func(b jobj) { b["lang"] = "not a tag" })}, 400, "BadRequestData", "lang"},
		{"id_not_uri", apitest.Req{Body: valid(func(b jobj) { b["id"] = "my subscription" })}, 400, "BadRequestData", "URI"},
		{"notification_not_object", apitest.Req{Body: valid(func(b jobj) { b["notification"] = "http://127.0.0.1:9/x" })}, 400, "InvalidRequest", "notification"},
		{"entities_not_array", apitest.Req{Body: valid(func(b jobj) { b["entities"] = jobj{"type": "Room"} })}, 400, "InvalidRequest", "entities"},
		{"isActive_not_boolean", apitest.Req{Body: valid(func(b jobj) { b["isActive"] = "yes" })}, 400, "InvalidRequest", "isActive"},
		{"bad_json", apitest.Req{Body: `{"type":"Subscription",`}, 400, "InvalidRequest", ""},
		{"empty_body", apitest.Req{Body: ``, ContentType: "application/json"}, 400, "InvalidRequest", ""},
		{"body_array", apitest.Req{Body: `[]`}, 400, "BadRequestData", ""},
		{"content_type_text", apitest.Req{Body: `{"type":"Subscription"}`, ContentType: "text/plain"}, 415, "UnsupportedMediaType", ""},
		{"content_type_merge_patch", apitest.Req{Body: valid(nil), ContentType: "application/merge-patch+json"}, 415, "UnsupportedMediaType", ""},
		{"ld_json_without_context", apitest.Req{Body: valid(nil), ContentType: "application/ld+json"}, 400, "BadRequestData", "@context"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.Method, tc.req.Path = "POST", subsPath
			detail := problem(t, s.Do(tc.req), tc.status, tc.errType)
			if !strings.Contains(detail, tc.detail) {
				t.Errorf("detail %q does not mention %q", detail, tc.detail)
			}
		})
	}
	// Nothing was stored.
	r := s.Get(subsPath+"?count=true", nil).Expect(t, http.StatusOK)
	if c := r.Header.Get("NGSILD-Results-Count"); c != "0" || string(r.Body) != "[]" {
		t.Errorf("after rejected creations: count %q, list %s", c, r.Body)
	}
}

// ============================================================================
// 3. Triggers
// ============================================================================

// TestSubscriptionTriggers drives one entity through its life with every
// kind of write and checks what each trigger notifies:
//
//  1. POST /entities          E1 created with temperature
//  2. PATCH /entities/E1/attrs temperature updated
//  3. POST /entities/E1/attrs  humidity created
//  4. DELETE .../attrs/humidity
//  5. batch upsert            E1 replaced (temperature updated), E2 created
//  6. DELETE /entities/E1
func TestSubscriptionTriggers(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	cases := []struct {
		name     string
		triggers []any // nil: the default
		want     []string
	}{
		{"default", nil, []string{
			"attributeCreated 1 temperature=20",
			"attributeUpdated 1 temperature=21",
			"attributeCreated 1 humidity=50 temperature=21",
			"attributeUpdated 1 temperature=22",
			"attributeCreated 2 temperature=30",
		}},
		{"entityCreated", []any{"entityCreated"}, []string{
			"entityCreated 1 temperature=20",
			"entityCreated 2 temperature=30",
		}},
		{"entityUpdated", []any{"entityUpdated"}, []string{
			"entityUpdated 1 temperature=21",
			"entityUpdated 1 humidity=50 temperature=21",
			"entityUpdated 1 humidity=null temperature=21",
			"entityUpdated 1 temperature=22",
		}},
		{"entityDeleted", []any{"entityDeleted"}, []string{
			"entityDeleted 1 deleted",
		}},
		{"attributeCreated", []any{"attributeCreated"}, []string{
			"attributeCreated 1 temperature=20",
			"attributeCreated 1 humidity=50 temperature=21",
			"attributeCreated 2 temperature=30",
		}},
		{"attributeUpdated", []any{"attributeUpdated"}, []string{
			"attributeUpdated 1 temperature=21",
			"attributeUpdated 1 temperature=22",
		}},
		{"attributeDeleted", []any{"attributeDeleted"}, []string{
			"attributeDeleted 1 humidity=null temperature=21",
			"attributeDeleted 1 temperature=null deleted",
		}},
		// Several triggers: still one notification per change.
		{"all", []any{"entityCreated", "entityUpdated", "entityDeleted", "attributeCreated", "attributeUpdated", "attributeDeleted"}, []string{
			"entityCreated 1 temperature=20",
			"attributeUpdated 1 temperature=21",
			"attributeCreated 1 humidity=50 temperature=21",
			"attributeDeleted 1 humidity=null temperature=21",
			"attributeUpdated 1 temperature=22",
			"entityCreated 2 temperature=30",
			"entityDeleted 1 deleted",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newReceiver(t)
			f := newFence(t, s, r, nil)
			typ := "Trig" + strings.ToUpper(tc.name[:1]) + tc.name[1:]
			e1, e2 := "urn:ngsi-ld:"+typ+":1", "urn:ngsi-ld:"+typ+":2"
			sub := jobj{"type": "Subscription", "entities": []any{jobj{"type": typ}},
				"notification": jobj{"endpoint": jobj{"uri": r.url("sub")}}}
			if tc.triggers != nil {
				sub["notificationTrigger"] = tc.triggers
			}
			createSub(t, s, sub, nil)

			for _, req := range []apitest.Req{
				postEntity(jobj{"id": e1, "type": typ, "temperature": pv(20)}),
				patchAttrs(e1, jobj{"temperature": pv(21)}),
				appendAttrs(e1, jobj{"humidity": pv(50)}),
				deleteAttr(e1, "humidity"),
				upsertReq(jobj{"id": e1, "type": typ, "temperature": pv(22)}, jobj{"id": e2, "type": typ, "temperature": pv(30)}),
				deleteEntityReq(e1),
			} {
				write(t, s, req, nil)
				// A barrier: the notifier has matched this write before the
				// next one, so each notification holds one write's changes.
				// (Changes matched together are TestSubscriptionBatchKeepsOrder's.)
				f.check(t, "sub")
			}
			hs := f.expect(t, "sub", tc.want)
			var golden []any
			for _, e := range eventsOf(t, hs) {
				golden = append(golden, jobj{"triggerReason": e.Trigger, "data": e.Entity})
			}
			subGolden(t, "trigger_"+tc.name, golden)
		})
	}
}

// ============================================================================
// 4. Filters
// ============================================================================

// subStep is a write and the events it must notify.
type subStep struct {
	req  apitest.Req
	want []string
}

func TestSubscriptionFilters(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	// Brussels' centre: the Grand-Place and Manneken Pis are in it, the
	// Atomium is not.
	centre := []any{[]any{[]any{4.33, 50.83}, []any{4.37, 50.83}, []any{4.37, 50.86}, []any{4.33, 50.86}, []any{4.33, 50.83}}}
	loc := func(c []any) jobj { return geoProp("Point", c) }

	cases := []struct {
		name  string
		sub   jobj // members of the subscription
		steps []subStep
	}{
		{"by_id", jobj{"entities": []any{jobj{"id": "urn:ngsi-ld:FltID:1", "type": "FltID"}}}, []subStep{
			{postEntity(jobj{"id": "urn:ngsi-ld:FltID:1", "type": "FltID", "temperature": pv(1)}), []string{"attributeCreated 1 temperature=1"}},
			{postEntity(jobj{"id": "urn:ngsi-ld:FltID:2", "type": "FltID", "temperature": pv(2)}), nil},
			{patchAttrs("urn:ngsi-ld:FltID:2", jobj{"temperature": pv(3)}), nil},
			{patchAttrs("urn:ngsi-ld:FltID:1", jobj{"temperature": pv(4)}), []string{"attributeUpdated 1 temperature=4"}},
		}},
		{"by_id_pattern", jobj{"entities": []any{jobj{"idPattern": "^urn:ngsi-ld:FltPat:a", "type": "FltPat"}}}, []subStep{
			{postEntity(jobj{"id": "urn:ngsi-ld:FltPat:a1", "type": "FltPat", "temperature": pv(1)}), []string{"attributeCreated a1 temperature=1"}},
			{postEntity(jobj{"id": "urn:ngsi-ld:FltPat:b1", "type": "FltPat", "temperature": pv(2)}), nil},
			{postEntity(jobj{"id": "urn:ngsi-ld:FltPat:a2", "type": "FltPat", "temperature": pv(3)}), []string{"attributeCreated a2 temperature=3"}},
			{patchAttrs("urn:ngsi-ld:FltPat:b1", jobj{"temperature": pv(4)}), nil},
		}},
		{"by_id_pattern_without_type", jobj{"entities": []any{jobj{"idPattern": "^urn:ngsi-ld:FltPatNT:a"}}}, []subStep{
			{postEntity(jobj{"id": "urn:ngsi-ld:FltPatNT:a1", "type": "Anything", "temperature": pv(1)}), []string{"attributeCreated a1 temperature=1"}},
			{postEntity(jobj{"id": "urn:ngsi-ld:FltPatNT:b1", "type": "Anything", "temperature": pv(2)}), nil},
		}},
		{"by_type", jobj{"entities": []any{jobj{"type": "FltTypeA,FltTypeC"}}}, []subStep{
			{postEntity(jobj{"id": "urn:ngsi-ld:Flt:A1", "type": "FltTypeA", "temperature": pv(1)}), []string{"attributeCreated A1 temperature=1"}},
			{postEntity(jobj{"id": "urn:ngsi-ld:Flt:B1", "type": "FltTypeB", "temperature": pv(2)}), nil},
			{postEntity(jobj{"id": "urn:ngsi-ld:Flt:C1", "type": "FltTypeC", "temperature": pv(3)}), []string{"attributeCreated C1 temperature=3"}},
			{postEntity(jobj{"id": "urn:ngsi-ld:Flt:BC1", "type": []any{"FltTypeB", "FltTypeC"}, "temperature": pv(4)}), []string{"attributeCreated BC1 temperature=4"}},
		}},
		{"watchedAttributes", jobj{"entities": []any{jobj{"type": "FltWatch"}}, "watchedAttributes": []any{"temperature"}}, []subStep{
			{postEntity(jobj{"id": "urn:ngsi-ld:FltWatch:1", "type": "FltWatch", "temperature": pv(1), "humidity": pv(40)}), []string{"attributeCreated 1 humidity=40 temperature=1"}},
			{patchAttrs("urn:ngsi-ld:FltWatch:1", jobj{"humidity": pv(41)}), nil},
			{postEntity(jobj{"id": "urn:ngsi-ld:FltWatch:2", "type": "FltWatch", "humidity": pv(50)}), nil},
			{appendAttrs("urn:ngsi-ld:FltWatch:2", jobj{"temperature": pv(2)}), []string{"attributeCreated 2 humidity=50 temperature=2"}},
			{patchAttrs("urn:ngsi-ld:FltWatch:1", jobj{"temperature": pv(3), "humidity": pv(42)}), []string{"attributeUpdated 1 humidity=42 temperature=3"}},
			{deleteAttr("urn:ngsi-ld:FltWatch:1", "humidity"), nil},
		}},
		{"watchedAttributes_only", jobj{"watchedAttributes": []any{"fltOnly"}}, []subStep{
			{postEntity(jobj{"id": "urn:ngsi-ld:FltWatchOnly:1", "type": "FltWatchOnly", "fltOnly": pv(1)}), []string{"attributeCreated 1 fltOnly=1"}},
			{postEntity(jobj{"id": "urn:ngsi-ld:FltWatchOnly:2", "type": "Else", "fltOnly": pv(2)}), []string{"attributeCreated 2 fltOnly=2"}},
			{postEntity(jobj{"id": "urn:ngsi-ld:FltWatchOnly:3", "type": "Else", "other": pv(3)}), nil},
		}},
		{"q", jobj{"entities": []any{jobj{"type": "FltQ"}}, "q": "temperature>25"}, []subStep{
			{postEntity(jobj{"id": "urn:ngsi-ld:FltQ:1", "type": "FltQ", "temperature": pv(20)}), nil},
			{patchAttrs("urn:ngsi-ld:FltQ:1", jobj{"temperature": pv(30)}), []string{"attributeUpdated 1 temperature=30"}},
			// The entity matched before the change, not after: no notification.
			{patchAttrs("urn:ngsi-ld:FltQ:1", jobj{"temperature": pv(22)}), nil},
			{patchAttrs("urn:ngsi-ld:FltQ:1", jobj{"temperature": pv(26)}), []string{"attributeUpdated 1 temperature=26"}},
			{postEntity(jobj{"id": "urn:ngsi-ld:FltQ:2", "type": "FltQ", "temperature": pv(40)}), []string{"attributeCreated 2 temperature=40"}},
		}},
		{"q_and_or", jobj{"entities": []any{jobj{"type": "FltQ2"}}, "q": "(temperature>25|humidity<10);status==\"on\""}, []subStep{
			{postEntity(jobj{"id": "urn:ngsi-ld:FltQ2:1", "type": "FltQ2", "temperature": pv(30), "humidity": pv(50), "status": pv("off")}), nil},
			{patchAttrs("urn:ngsi-ld:FltQ2:1", jobj{"status": pv("on")}), []string{"attributeUpdated 1 humidity=50 status=on temperature=30"}},
			{patchAttrs("urn:ngsi-ld:FltQ2:1", jobj{"temperature": pv(20)}), nil},
			{patchAttrs("urn:ngsi-ld:FltQ2:1", jobj{"humidity": pv(5)}), []string{"attributeUpdated 1 humidity=5 status=on temperature=20"}},
		}},
		{"geoQ_near", jobj{"entities": []any{jobj{"type": "FltNear"}},
			"geoQ": jobj{"geometry": "Point", "coordinates": grandPlace, "georel": "near;maxDistance==1000"}}, []subStep{
			{postEntity(jobj{"id": "urn:ngsi-ld:FltNear:manneken", "type": "FltNear", "location": loc(mannekenPis)}), []string{"attributeCreated manneken location={\"coordinates\":[4.35,50.845],\"type\":\"Point\"}"}},
			{postEntity(jobj{"id": "urn:ngsi-ld:FltNear:atomium", "type": "FltNear", "location": loc(atomium)}), nil},
			{patchAttrs("urn:ngsi-ld:FltNear:atomium", jobj{"location": loc(grandPlace)}), []string{"attributeUpdated atomium location={\"coordinates\":[4.3525,50.8467],\"type\":\"Point\"}"}},
			{patchAttrs("urn:ngsi-ld:FltNear:manneken", jobj{"location": loc(atomium)}), nil},
		}},
		{"geoQ_within", jobj{"entities": []any{jobj{"type": "FltWithin"}},
			"geoQ": jobj{"geometry": "Polygon", "coordinates": centre, "georel": "within"}}, []subStep{
			{postEntity(jobj{"id": "urn:ngsi-ld:FltWithin:in", "type": "FltWithin", "location": loc(grandPlace), "temperature": pv(1)}), []string{"attributeCreated in location={\"coordinates\":[4.3525,50.8467],\"type\":\"Point\"} temperature=1"}},
			{postEntity(jobj{"id": "urn:ngsi-ld:FltWithin:out", "type": "FltWithin", "location": loc(atomium), "temperature": pv(2)}), nil},
			{patchAttrs("urn:ngsi-ld:FltWithin:out", jobj{"temperature": pv(3)}), nil},
			{patchAttrs("urn:ngsi-ld:FltWithin:in", jobj{"temperature": pv(4)}), []string{"attributeUpdated in location={\"coordinates\":[4.3525,50.8467],\"type\":\"Point\"} temperature=4"}},
			{postEntity(jobj{"id": "urn:ngsi-ld:FltWithin:none", "type": "FltWithin", "temperature": pv(5)}), nil},
		}},
		{"scopeQ", jobj{"entities": []any{jobj{"type": "FltScope"}}, "scopeQ": "/Brussels/#"}, []subStep{
			{postEntity(jobj{"id": "urn:ngsi-ld:FltScope:1", "type": "FltScope", "scope": "/Brussels/Centre", "temperature": pv(1)}), []string{"attributeCreated 1 scope=/Brussels/Centre temperature=1"}},
			{postEntity(jobj{"id": "urn:ngsi-ld:FltScope:2", "type": "FltScope", "scope": "/Antwerp", "temperature": pv(2)}), nil},
			{postEntity(jobj{"id": "urn:ngsi-ld:FltScope:3", "type": "FltScope", "scope": []any{"/Antwerp", "/Brussels"}, "temperature": pv(3)}), []string{"attributeCreated 3 scope=[/Antwerp,/Brussels] temperature=3"}},
			{postEntity(jobj{"id": "urn:ngsi-ld:FltScope:4", "type": "FltScope", "temperature": pv(4)}), nil},
			{patchAttrs("urn:ngsi-ld:FltScope:2", jobj{"temperature": pv(5)}), nil},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newReceiver(t)
			f := newFence(t, s, r, nil)
			sub := jobj{"type": "Subscription", "notification": jobj{"endpoint": jobj{"uri": r.url("sub")}}}
			for k, v := range tc.sub {
				sub[k] = v
			}
			createSub(t, s, sub, nil)
			var want []string
			for _, st := range tc.steps {
				write(t, s, st.req, nil)
				want = append(want, st.want...)
			}
			f.expect(t, "sub", want)
		})
	}
}

// ============================================================================
// 5. Formats
// ============================================================================

// TestSubscriptionFormats sends the same two changes (a creation and an
// update of temperature) to subscriptions that differ in their notification
// members, and compares what each receiver got with a golden file: the
// notifications and the headers that matter.
func TestSubscriptionFormats(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	r := newReceiver(t)
	f := newFence(t, s, r, nil)
	room := "urn:ngsi-ld:FmtRoom:1"
	bin := "urn:ngsi-ld:WasteContainer:fmt1"
	waste := linkHdr(wasteContext)

	cases := []struct {
		name    string
		hdr     map[string]string // of the subscription's creation
		sub     jobj              // members besides the defaults
		notif   jobj              // notification members besides the endpoint
		ep      jobj              // endpoint members besides the uri
		headers []string          // headers to compare
	}{
		{"normalized", nil, nil, nil, nil, nil},
		{"keyValues", nil, nil, jobj{"format": "keyValues"}, nil, nil},
		{"simplified", nil, nil, jobj{"format": "simplified"}, nil, nil},
		{"concise", nil, nil, jobj{"format": "concise"}, nil, nil},
		{"attributes", nil, nil, jobj{"attributes": []any{"temperature", "owner"}}, nil, nil},
		{"sysAttrs", nil, nil, jobj{"sysAttrs": true}, nil, nil},
		{"showChanges", nil, nil, jobj{"showChanges": true}, nil, nil},
		{"showChanges_concise", nil, nil, jobj{"showChanges": true, "format": "concise"}, nil, nil},
		{"lang_fr", nil, jobj{"lang": "fr"}, nil, nil, nil},
		{"lang_fr_keyValues", nil, jobj{"lang": "fr"}, jobj{"format": "keyValues"}, nil, nil},
		{"accept_json", nil, nil, nil, jobj{"accept": "application/json"}, []string{"Content-Type", "Link"}},
		{"accept_ld_json", nil, nil, nil, jobj{"accept": "application/ld+json"}, []string{"Content-Type", "Link"}},
		{"receiverInfo", nil, nil, jobj{"format": "keyValues"}, jobj{"receiverInfo": []any{
			jobj{"key": "X-Auth-Token", "value": "s3cr3t"},
			jobj{"key": "Fiware-Service", "value": "brussels"},
			// A receiverInfo Content-Type does not replace the real one.
			jobj{"key": "Content-Type", "value": "text/plain"},
		}}, []string{"Content-Type", "Link", "X-Auth-Token", "Fiware-Service"}},
		// A subscription in the terms of another @context: names are
		// compacted with it and the Link header (or @context) is it.
		{"waste_context_json", waste, jobj{"entities": []any{jobj{"type": "WasteContainer"}}}, jobj{"format": "keyValues"}, nil, []string{"Content-Type", "Link"}},
		{"waste_context_ld_json", waste, jobj{"entities": []any{jobj{"type": "WasteContainer"}}}, jobj{"attributes": []any{"fillingLevel"}}, jobj{"accept": "application/ld+json"}, []string{"Content-Type", "Link"}},
	}
	for _, tc := range cases {
		ep := jobj{"uri": r.url(tc.name)}
		for k, v := range tc.ep {
			ep[k] = v
		}
		n := jobj{"endpoint": ep}
		for k, v := range tc.notif {
			n[k] = v
		}
		sub := jobj{"id": "urn:ngsi-ld:Subscription:fmt-" + tc.name, "type": "Subscription",
			"entities": []any{jobj{"type": "FmtRoom"}}, "notification": n}
		for k, v := range tc.sub {
			sub[k] = v
		}
		createSub(t, s, sub, tc.hdr)
	}

	write(t, s, postEntity(jobj{
		"id": room, "type": "FmtRoom",
		"temperature": jobj{"type": "Property", "value": 21.5, "unitCode": "CEL", "observedAt": "2024-05-01T10:00:00Z",
			"accuracy": pv(0.5)},
		"owner":    jobj{"type": "Relationship", "object": "urn:ngsi-ld:Person:alice"},
		"street":   jobj{"type": "LanguageProperty", "languageMap": jobj{"fr": "Grand-Place", "nl": "Grote Markt"}},
		"location": geoProp("Point", grandPlace),
	}), nil)
	write(t, s, patchAttrs(room, jobj{"temperature": jobj{"type": "Property", "value": 22.5, "unitCode": "CEL", "observedAt": "2024-05-01T10:15:00Z"}}), nil)
	write(t, s, postEntity(jobj{"id": bin, "type": "WasteContainer", "fillingLevel": pv(0.4), "name": pv("Bin 1")}), waste)
	write(t, s, patchAttrs(bin, jobj{"fillingLevel": pv(0.9)}), waste)

	for _, tc := range cases {
		r.wait(t, tc.name, 2)
	}
	f.check(t, "")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hs := r.delivered(tc.name)
			if len(hs) != 2 {
				t.Fatalf("%d notifications, want 2:\n%s", len(hs), hookBodies(hs))
			}
			var headers []any
			for _, h := range hs {
				if h.Method != "POST" {
					t.Errorf("method %s", h.Method)
				}
				hm := jobj{}
				for _, k := range tc.headers {
					hm[k] = strings.Join(h.Header.Values(k), " | ")
				}
				headers = append(headers, hm)
			}
			golden := jobj{"notifications": goldenNotifications(t, hs)}
			if tc.headers != nil {
				golden["headers"] = headers
			}
			subGolden(t, "format_"+tc.name, golden)

			// What every notification is, whatever the format.
			for _, h := range hs {
				n := h.notification(t)
				if n["type"] != "Notification" || n["subscriptionId"] != "urn:ngsi-ld:Subscription:fmt-"+tc.name {
					t.Errorf("type %v, subscriptionId %v", n["type"], n["subscriptionId"])
				}
				if id, _ := n["id"].(string); ngsiURI(id) != nil {
					t.Errorf("notification id %q is not a URI", id)
				}
				if at, _ := n["notifiedAt"].(string); !recent(at) {
					t.Errorf("notifiedAt %q is not now", at)
				}
				ct := h.Header.Get("Content-Type")
				_, hasCtx := n["@context"]
				link := h.Header.Get("Link")
				switch ct {
				case "application/ld+json":
					if !hasCtx || link != "" {
						t.Errorf("application/ld+json notification: @context %v, Link %q", n["@context"], link)
					}
				case "application/json":
					if hasCtx || !strings.Contains(link, `rel="http://www.w3.org/ns/json-ld#context"`) {
						t.Errorf("application/json notification: @context %v, Link %q", n["@context"], link)
					}
				default:
					t.Errorf("Content-Type %q", ct)
				}
			}
			if id0, id1 := hs[0].notification(t)["id"], hs[1].notification(t)["id"]; id0 == id1 {
				t.Errorf("two notifications with the id %v", id0)
			}
		})
	}
}

// ngsiURI checks a notification id the way the broker checks ids.
func ngsiURI(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" {
		return fmt.Errorf("not a URI: %q", s)
	}
	return nil
}

// recent reports whether s is a DateTime within the last minute.
func recent(s string) bool {
	tm, err := time.Parse(time.RFC3339Nano, s)
	return err == nil && time.Since(tm) < time.Minute && time.Until(tm) < time.Second
}

// ============================================================================
// 6. Throttling, periodic notifications, pause, expiry
// ============================================================================

func TestSubscriptionThrottling(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	r := newReceiver(t)
	e := "urn:ngsi-ld:ThrRoom:1"
	write(t, s, postEntity(jobj{"id": e, "type": "ThrRoom", "temperature": pv(0)}), nil)
	id := createSub(t, s, jobj{"type": "Subscription", "entities": []any{jobj{"id": e, "type": "ThrRoom"}},
		"throttling": 1, "notification": jobj{"format": "keyValues", "endpoint": jobj{"uri": r.url("thr")}}}, nil)
	if got := getSub(t, s, id, nil)["throttling"]; got != 1.0 {
		t.Errorf("throttling %v", got)
	}
	// The first change is notified at once; four quick ones after it wait
	// for the throttling period and come together.
	write(t, s, patchAttrs(e, jobj{"temperature": pv(1)}), nil)
	r.wait(t, "thr", 1)
	for i := 2; i <= 5; i++ {
		write(t, s, patchAttrs(e, jobj{"temperature": pv(i)}), nil)
	}
	hs := r.waitFor(t, "thr", "the final state", func(hs []hook) bool {
		es := eventsOf(t, hs)
		return len(es) > 0 && es[len(es)-1].Entity["temperature"] == 5.0
	})
	// Every state, in order, the last one last, in two notifications at
	// least a second apart.
	var vals []string
	for _, e := range eventsOf(t, hs) {
		vals = append(vals, attrValue(e.Entity["temperature"]))
	}
	if want := []string{"1", "2", "3", "4", "5"}; !slices.Equal(vals, want) {
		t.Errorf("values %v, want %v", vals, want)
	}
	if len(hs) != 2 {
		t.Errorf("%d notifications, want 2 (one, then the four quick changes after a second):\n%s", len(hs), hookBodies(hs))
	}
	for i := 1; i < len(hs); i++ {
		if gap := hs[i].At.Sub(hs[i-1].At); gap < time.Second-10*time.Millisecond {
			t.Errorf("notifications %d and %d only %v apart", i-1, i, gap)
		}
	}
}

func TestSubscriptionPeriodic(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	r := newReceiver(t)
	e := "urn:ngsi-ld:PerRoom:1"
	write(t, s, postEntity(jobj{"id": e, "type": "PerRoom", "temperature": pv(1)}), nil)
	write(t, s, postEntity(jobj{"id": "urn:ngsi-ld:PerRoom:2", "type": "PerRoom", "temperature": pv(100)}), nil)
	start := time.Now()
	id := createSub(t, s, jobj{"type": "Subscription", "entities": []any{jobj{"id": e, "type": "PerRoom"}},
		"timeInterval": 1, "notification": jobj{"format": "keyValues", "endpoint": jobj{"uri": r.url("per")}}}, nil)
	if got := getSub(t, s, id, nil)["timeInterval"]; got != 1.0 {
		t.Errorf("timeInterval %v", got)
	}
	first := r.wait(t, "per", 1)[0]
	// A change does not notify a periodic subscription; the next period
	// carries the new state.
	write(t, s, patchAttrs(e, jobj{"temperature": pv(2)}), nil)
	hs := r.wait(t, "per", 2)
	if d := hs[1].At.Sub(start); d > 3*time.Second {
		t.Errorf("second periodic notification %v after the creation", d)
	}
	if gap := hs[1].At.Sub(first.At); gap < 900*time.Millisecond {
		t.Errorf("periodic notifications only %v apart", gap)
	}
	sameEvents(t, "periodic", eventsOf(t, hs[:2]), []string{"1 temperature=1", "1 temperature=2"})
	subGolden(t, "periodic", goldenNotifications(t, hs[:2]))
}

// TestSubscriptionPause pins what a paused subscription does: nothing, and
// nothing later for what changed while it was paused.
func TestSubscriptionPause(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	r := newReceiver(t)
	f := newFence(t, s, r, nil)
	e := "urn:ngsi-ld:PauseRoom:1"
	id := createSub(t, s, jobj{"type": "Subscription", "entities": []any{jobj{"type": "PauseRoom"}},
		"notification": jobj{"format": "keyValues", "endpoint": jobj{"uri": r.url("p")}}}, nil)
	write(t, s, postEntity(jobj{"id": e, "type": "PauseRoom", "temperature": pv(1)}), nil)
	f.expect(t, "p", []string{"attributeCreated 1 temperature=1"})

	s.Patch(subPath(id), jobj{"isActive": false}, nil).Expect(t, http.StatusNoContent)
	if st := getSub(t, s, id, nil)["status"]; st != "paused" {
		t.Errorf("status %v while paused", st)
	}
	write(t, s, patchAttrs(e, jobj{"temperature": pv(2)}), nil)
	write(t, s, appendAttrs(e, jobj{"humidity": pv(50)}), nil)
	f.expect(t, "p", []string{"attributeCreated 1 temperature=1"})

	s.Patch(subPath(id), jobj{"isActive": true}, nil).Expect(t, http.StatusNoContent)
	f.expect(t, "p", []string{"attributeCreated 1 temperature=1"})
	write(t, s, patchAttrs(e, jobj{"temperature": pv(3)}), nil)
	f.expect(t, "p", []string{"attributeCreated 1 temperature=1", "attributeUpdated 1 humidity=50 temperature=3"})
}

func TestSubscriptionExpiry(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	r := newReceiver(t)
	f := newFence(t, s, r, nil)
	e := "urn:ngsi-ld:ExpRoom:1"
	expires := time.Now().Add(1500 * time.Millisecond).UTC().Truncate(time.Millisecond) // as the broker keeps it
	id := createSub(t, s, jobj{"type": "Subscription", "entities": []any{jobj{"type": "ExpRoom"}},
		"expiresAt":    expires.Format("2006-01-02T15:04:05.000Z"),
		"notification": jobj{"format": "keyValues", "endpoint": jobj{"uri": r.url("x")}}}, nil)
	sub := getSub(t, s, id, nil)
	if sub["status"] != "active" || sub["expiresAt"] != expires.Format("2006-01-02T15:04:05.000Z") {
		t.Errorf("status %v, expiresAt %v", sub["status"], sub["expiresAt"])
	}
	write(t, s, postEntity(jobj{"id": e, "type": "ExpRoom", "temperature": pv(1)}), nil)
	f.expect(t, "x", []string{"attributeCreated 1 temperature=1"})

	pollSub(t, s, id, nil, `status "expired"`, func(sub jobj) bool { return sub["status"] == "expired" })
	if time.Now().Before(expires) {
		t.Errorf("status expired before expiresAt")
	}
	write(t, s, patchAttrs(e, jobj{"temperature": pv(2)}), nil)
	f.expect(t, "x", []string{"attributeCreated 1 temperature=1"})
	// An expired subscription is still listed and can be renewed.
	s.Patch(subPath(id), jobj{"expiresAt": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}, nil).Expect(t, http.StatusNoContent)
	if st := getSub(t, s, id, nil)["status"]; st != "active" {
		t.Errorf("status %v after renewal", st)
	}
	write(t, s, patchAttrs(e, jobj{"temperature": pv(3)}), nil)
	f.expect(t, "x", []string{"attributeCreated 1 temperature=1", "attributeUpdated 1 temperature=3"})
}

// ============================================================================
// 7. Status counters, failures and retries
// ============================================================================

func TestSubscriptionStatus(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	r := newReceiver(t)
	newSub := func(t *testing.T, name string) (id, entity string) {
		id = "urn:ngsi-ld:Subscription:status-" + name
		entity = "urn:ngsi-ld:StatusRoom:" + name
		createSub(t, s, jobj{"id": id, "type": "Subscription", "entities": []any{jobj{"id": entity, "type": "StatusRoom"}},
			"notification": jobj{"format": "keyValues", "endpoint": jobj{"uri": r.url(name)}}}, nil)
		return id, entity
	}

	t.Run("delivered", func(t *testing.T) {
		t.Parallel()
		id, e := newSub(t, "ok")
		sub := getSub(t, s, id, nil)
		if notifStatus(sub, "timesSent") != 0.0 || notifStatus(sub, "timesFailed") != 0.0 || notifStatus(sub, "status") != nil || notifStatus(sub, "lastNotification") != nil {
			t.Errorf("new subscription's notification status: %v", sub["notification"])
		}
		write(t, s, postEntity(jobj{"id": e, "type": "StatusRoom", "temperature": pv(1)}), nil)
		write(t, s, patchAttrs(e, jobj{"temperature": pv(2)}), nil)
		r.wait(t, "ok", 2)
		sub = pollSub(t, s, id, nil, "timesSent 2", func(sub jobj) bool { return notifStatus(sub, "timesSent") == 2.0 })
		if notifStatus(sub, "status") != "ok" || notifStatus(sub, "timesFailed") != 0.0 || notifStatus(sub, "lastFailure") != nil {
			t.Errorf("after two deliveries: %v", sub["notification"])
		}
		last, _ := notifStatus(sub, "lastNotification").(string)
		if !recent(last) || notifStatus(sub, "lastSuccess") != last {
			t.Errorf("lastNotification %v, lastSuccess %v", last, notifStatus(sub, "lastSuccess"))
		}
		subGolden(t, "status_delivered", sub)
	})

	// A receiver slower than the endpoint's timeout fails the attempt; the
	// retry, a second after the timeout, is delivered.
	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		id, e := "urn:ngsi-ld:Subscription:status-timeout", "urn:ngsi-ld:StatusRoom:timeout"
		createSub(t, s, jobj{"id": id, "type": "Subscription", "entities": []any{jobj{"id": e, "type": "StatusRoom"}},
			"notification": jobj{"format": "keyValues", "endpoint": jobj{"uri": r.url("timeout"), "timeout": 300}}}, nil)
		r.answer("timeout", func(n int) int {
			if n == 0 {
				time.Sleep(time.Second)
			}
			return http.StatusOK
		})
		write(t, s, postEntity(jobj{"id": e, "type": "StatusRoom", "temperature": pv(1)}), nil)
		sub := pollSub(t, s, id, nil, "a delivery after the timeout", func(sub jobj) bool { return notifStatus(sub, "status") == "ok" })
		if notifStatus(sub, "timesSent") != 2.0 || notifStatus(sub, "timesFailed") != 1.0 || notifStatus(sub, "lastFailure") == nil {
			t.Errorf("after a timeout and a delivery: %v", sub["notification"])
		}
		if got := sub["notification"].(jobj)["endpoint"].(jobj)["timeout"]; got != 300.0 {
			t.Errorf("endpoint timeout %v, want 300", got)
		}
		attempts := r.all("timeout")
		if len(attempts) != 2 {
			t.Fatalf("%d attempts, want 2:\n%s", len(attempts), hookBodies(attempts))
		}
		if gap := attempts[1].At.Sub(attempts[0].At); gap < 1300*time.Millisecond-10*time.Millisecond {
			t.Errorf("retried %v after the first attempt, want the 300 ms timeout and a second more", gap)
		}
	})

	// The receiver fails until the test has seen the failure in the
	// subscription; the retry, about a second later, is delivered.
	for _, tc := range []struct {
		name string
		fail int // the receiver's answer while failing
	}{{"http_500", http.StatusInternalServerError}, {"http_503", http.StatusServiceUnavailable}, {"connection_closed", closeConn}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id, e := newSub(t, tc.name)
			var failing atomic.Bool
			failing.Store(true)
			r.answer(tc.name, func(int) int {
				if failing.Load() {
					return tc.fail
				}
				return http.StatusOK
			})
			write(t, s, postEntity(jobj{"id": e, "type": "StatusRoom", "temperature": pv(1)}), nil)
			sub := pollSub(t, s, id, nil, `notification status "failed"`, func(sub jobj) bool { return notifStatus(sub, "status") == "failed" })
			failing.Store(false)
			if notifStatus(sub, "timesFailed") != 1.0 || notifStatus(sub, "lastFailure") == nil || notifStatus(sub, "lastSuccess") != nil {
				t.Errorf("after a failure: %v", sub["notification"])
			}
			subGolden(t, "status_failed_"+tc.name, sub)

			r.wait(t, tc.name, 1)
			sub = pollSub(t, s, id, nil, `notification status "ok"`, func(sub jobj) bool { return notifStatus(sub, "status") == "ok" })
			attempts := r.all(tc.name)
			failed := len(attempts) - 1
			// timesSent counts attempts; each failed attempt is in timesFailed.
			if notifStatus(sub, "timesSent") != float64(len(attempts)) || notifStatus(sub, "timesFailed") != float64(failed) {
				t.Errorf("%d attempts (%d failed), notification status %v", len(attempts), failed, sub["notification"])
			}
			lf, _ := notifStatus(sub, "lastFailure").(string)
			ls, _ := notifStatus(sub, "lastSuccess").(string)
			if !(lf < ls) || notifStatus(sub, "lastNotification") != ls {
				t.Errorf("lastFailure %s, lastSuccess %s, lastNotification %v", lf, ls, notifStatus(sub, "lastNotification"))
			}
			// The retry is the same notification (same id and body but
			// notifiedAt), a second or more after the failure.
			first, retry := attempts[0].notification(t), attempts[len(attempts)-1].notification(t)
			if first["id"] != retry["id"] || !reflect.DeepEqual(first["data"], retry["data"]) {
				t.Errorf("retry differs:\n%s\n%s", attempts[0].Body, attempts[len(attempts)-1].Body)
			}
			if gap := attempts[1].At.Sub(attempts[0].At); gap < time.Second-10*time.Millisecond {
				t.Errorf("retried after %v, want about 1 s", gap)
			}
			// Delivery goes on normally.
			write(t, s, patchAttrs(e, jobj{"temperature": pv(2)}), nil)
			hs := r.wait(t, tc.name, 2)
			sameEvents(t, tc.name, eventsOf(t, hs), []string{"attributeCreated " + tc.name + " temperature=1", "attributeUpdated " + tc.name + " temperature=2"})
		})
	}
}

// ============================================================================
// 8. MQTT
// ============================================================================

// subMQTTBroker is the address of the machine's Mosquitto (ZENNE_TEST_MQTT,
// default 127.0.0.1:1883). Without one the test fails, unless
// ZENNE_TEST_NO_MQTT=1 says to skip.
func subMQTTBroker(t *testing.T) string {
	t.Helper()
	addr := os.Getenv("ZENNE_TEST_MQTT")
	if addr == "" {
		addr = "127.0.0.1:1883"
	}
	o := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(subUnique("zenne-probe-")).SetConnectTimeout(2 * time.Second).SetAutoReconnect(false)
	c := mqtt.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(3*time.Second) || tok.Error() != nil {
		msg := fmt.Sprintf("no MQTT broker at %s: %v", addr, tok.Error())
		if os.Getenv("ZENNE_TEST_NO_MQTT") == "1" {
			t.Skip("ZENNE_TEST_NO_MQTT=1: " + msg)
		}
		t.Fatal(msg + " (set ZENNE_TEST_NO_MQTT=1 to skip the MQTT tests)")
	}
	c.Disconnect(50)
	return addr
}

func TestSubscriptionMQTT(t *testing.T) {
	t.Parallel()
	addr := subMQTTBroker(t)
	s := apitest.Start(t)
	for _, tc := range []struct {
		name, qos string
		info      []any // notifierInfo
	}{
		{"default", "0", nil},
		{"qos0", "0", []any{jobj{"key": "MQTT-QoS", "value": "0"}}},
		{"qos1", "1", []any{jobj{"key": "MQTT-QoS", "value": "1"}}},
		{"mqtt5_qos1", "1", []any{jobj{"key": "MQTT-Version", "value": "mqtt5.0"}, jobj{"key": "MQTT-QoS", "value": "1"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			qos := tc.qos
			topic := fmt.Sprintf("zenne-test/%d-%s/notifications", time.Now().UnixNano(), subUnique(tc.name+"-"))
			msgs := make(chan mqtt.Message, 16)
			o := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(subUnique("zenne-sub-")).
				SetAutoReconnect(false).SetCleanSession(true).SetConnectTimeout(5 * time.Second)
			c := mqtt.NewClient(o)
			if tok := c.Connect(); !tok.WaitTimeout(subWait) || tok.Error() != nil {
				t.Fatalf("subscriber connect: %v", tok.Error())
			}
			t.Cleanup(func() { c.Disconnect(50) })
			if tok := c.Subscribe(topic, 1, func(_ mqtt.Client, m mqtt.Message) { msgs <- m }); !tok.WaitTimeout(subWait) || tok.Error() != nil {
				t.Fatalf("subscribe: %v", tok.Error())
			}

			e := "urn:ngsi-ld:MqttRoom:" + tc.name
			ep := jobj{"uri": "mqtt://" + addr + "/" + topic, "receiverInfo": []any{jobj{"key": "X-Tag", "value": "mqtt-" + tc.name}}}
			if tc.info != nil {
				ep["notifierInfo"] = tc.info
			}
			id := createSub(t, s, jobj{"type": "Subscription", "entities": []any{jobj{"id": e, "type": "MqttRoom"}},
				"notification": jobj{"format": "keyValues", "endpoint": ep}}, nil)
			write(t, s, postEntity(jobj{"id": e, "type": "MqttRoom", "temperature": pv(1)}), nil)
			write(t, s, patchAttrs(e, jobj{"temperature": pv(2)}), nil)

			var got []string
			var first jobj
			for len(got) < 2 {
				select {
				case m := <-msgs:
					if m.Topic() != topic {
						t.Errorf("topic %q", m.Topic())
					}
					if m.Qos() != qos[0]-'0' {
						t.Errorf("message QoS %d, want %s", m.Qos(), qos)
					}
					var p struct {
						Metadata map[string]string `json:"metadata"`
						Body     jobj              `json:"body"`
					}
					if err := json.Unmarshal(m.Payload(), &p); err != nil {
						t.Fatalf("payload is not {metadata, body} JSON (%v): %s", err, m.Payload())
					}
					if p.Metadata["Content-Type"] != "application/json" || p.Metadata["Link"] != apitest.LinkHeader(coreContext) || p.Metadata["X-Tag"] != "mqtt-"+tc.name {
						t.Errorf("metadata %v", p.Metadata)
					}
					if p.Body["type"] != "Notification" || p.Body["subscriptionId"] != id {
						t.Errorf("body %v", p.Body)
					}
					if first == nil {
						first = jobj{"metadata": p.Metadata, "body": p.Body}
					}
					for _, ev := range eventsOf(t, []hook{{Body: mustJSON(t, p.Body)}}) {
						got = append(got, ev.String())
					}
				case <-time.After(subWait):
					t.Fatalf("no MQTT notification within %v; got %v", subWait, got)
				}
			}
			if want := []string{"attributeCreated " + tc.name + " temperature=1", "attributeUpdated " + tc.name + " temperature=2"}; !slices.Equal(got, want) {
				t.Errorf("MQTT notifications %v, want %v", got, want)
			}
			subGolden(t, "mqtt_"+tc.name, first)
			pollSub(t, s, id, nil, "timesSent 2", func(sub jobj) bool {
				return notifStatus(sub, "timesSent") == 2.0 && notifStatus(sub, "status") == "ok"
			})
		})
	}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ============================================================================
// 9. Order
// ============================================================================

func TestSubscriptionOrder(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	r := newReceiver(t)
	e := "urn:ngsi-ld:OrderRoom:1"
	write(t, s, postEntity(jobj{"id": e, "type": "OrderRoom", "count": pv(0)}), nil)
	createSub(t, s, jobj{"type": "Subscription", "entities": []any{jobj{"id": e, "type": "OrderRoom"}},
		"notificationTrigger": []any{"attributeUpdated"},
		"notification":        jobj{"format": "keyValues", "endpoint": jobj{"uri": r.url("order")}}}, nil)
	const n = 200
	for i := 1; i <= n; i++ {
		write(t, s, patchAttrs(e, jobj{"count": pv(i)}), nil)
	}
	hs := r.waitEvents(t, "order", n)
	es := eventsOf(t, hs)
	if len(es) != n {
		t.Errorf("%d notified states, want %d", len(es), n)
	}
	prev := 0.0
	for i, ev := range es {
		v, _ := ev.Entity["count"].(float64)
		if v != prev+1 {
			t.Fatalf("state %d has count %v after %v: not in order", i, v, prev)
		}
		prev = v
	}
}

// ============================================================================
// An inline @context
// ============================================================================

// TestSubscriptionInlineContext creates subscriptions with an inline
// @context (application/ld+json): the broker hosts it, application/json
// notifications link to it and application/ld+json ones name it, and a
// receiver can fetch it from the broker.
func TestSubscriptionInlineContext(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	r := newReceiver(t)
	ctx := []any{jobj{"temp": "https://example.org/temp"}, coreContext}
	for _, accept := range []string{"application/json", "application/ld+json"} {
		s.Do(apitest.Req{Method: "POST", Path: subsPath, ContentType: "application/ld+json", Body: jobj{
			"@context": ctx, "type": "Subscription", "entities": []any{jobj{"type": "CtxRoom"}}, "watchedAttributes": []any{"temp"},
			"notification": jobj{"format": "keyValues", "endpoint": jobj{"uri": r.url(accept), "accept": accept}},
		}}).Expect(t, http.StatusCreated)
	}
	s.Do(apitest.Req{Method: "POST", Path: apiBase + "/entities", ContentType: "application/ld+json",
		Body: jobj{"@context": ctx, "id": "urn:ngsi-ld:CtxRoom:1", "type": "CtxRoom", "temp": pv(1)}}).Expect(t, http.StatusCreated)
	// Not the watched attribute: temp of the core context is another one.
	write(t, s, appendAttrs("urn:ngsi-ld:CtxRoom:1", jobj{"temp": pv(2)}), nil)

	js := r.wait(t, "application/json", 1)[0]
	ld := r.wait(t, "application/ld+json", 1)[0]
	for _, h := range []hook{js, ld} {
		if got := attrValue(h.notification(t)["data"].([]any)[0].(jobj)["temp"]); got != "1" {
			t.Errorf("%s: temp %s, want 1 (compacted with the subscription's @context): %s", h.Path, got, h.Body)
		}
	}
	m := regexp.MustCompile(`^<([^>]+)>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld\+json"$`).FindStringSubmatch(js.Header.Get("Link"))
	if m == nil {
		t.Fatalf("Link %q", js.Header.Get("Link"))
	}
	if got := ld.notification(t)["@context"]; got != m[1] {
		t.Errorf("application/ld+json notification @context %v, want the hosted context %s", got, m[1])
	}
	path, ok := strings.CutPrefix(m[1], s.URL)
	if !ok {
		t.Fatalf("Link %s does not point to the broker %s", m[1], s.URL)
	}
	hosted := jsonObject(t, s.Get(path, nil).Expect(t, http.StatusOK))
	if !reflect.DeepEqual(hosted["@context"], ctx) {
		t.Errorf("hosted @context %v, want %v", hosted["@context"], ctx)
	}
	f := newFence(t, s, r, nil)
	f.expect(t, "application/json", []string{"attributeCreated 1 temp=1"})
}

// ============================================================================
// Restart
// ============================================================================

// TestSubscriptionRestart: subscriptions, their state and status, and the
// numbering of notifications outlive a restart on the same data directory.
func TestSubscriptionRestart(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	r := newReceiver(t)
	id := "urn:ngsi-ld:Subscription:restart-same-context"
	e := "urn:ngsi-ld:RestartRoom2:1"
	sub := func(path string, active bool) jobj {
		return jobj{"type": "Subscription", "entities": []any{jobj{"type": "RestartRoom2"}}, "q": "temperature>1", "isActive": active,
			"notification": jobj{"format": "keyValues", "endpoint": jobj{"uri": r.url(path)}}}
	}
	b := sub("sub", true)
	b["id"] = id
	createSub(t, s, b, nil)
	paused := createSub(t, s, sub("paused", false), nil)
	write(t, s, postEntity(jobj{"id": e, "type": "RestartRoom2", "temperature": pv(5)}), nil)
	first := r.wait(t, "sub", 1)[0].notification(t)["id"].(string)
	pollSub(t, s, id, nil, "timesSent 1", func(sub jobj) bool { return notifStatus(sub, "timesSent") == 1.0 })
	before := map[string][]byte{}
	for _, x := range []string{id, paused} {
		before[x] = s.Get(subPath(x)+"?options=sysAttrs", nil).Expect(t, http.StatusOK).Body
	}

	s.Stop()
	s2 := apitest.StartIn(t, s.DataDir)
	f := newFence(t, s2, r, nil)
	f.check(t, "sub") // anything sent again at the start is in by now, or nearly
	// A notification delivered just before the shutdown may come again,
	// with the same id (at-least-once, docs/API.md: "a receiver can drop a
	// repeat by it"). After a clean shutdown it should not, but it does now
	// and then (about 1 run in 40 under load): the acker
	// (internal/notify/deliver.go:302-319) removes delivered notifications
	// with s.ctx; when Close cancels it during such a removal, Dequeue fails
	// and flush drops the ids instead of keeping them for its final flush,
	// so they stay queued and are sent again at the next start.
	repeats := 0
	if hs := r.delivered("sub"); len(hs) > 1 {
		if hs[1].notification(t)["id"] != first {
			t.Fatalf("after the restart, a notification with a new id:\n%s", hookBodies(hs))
		}
		repeats = 1
		t.Logf("delivered notification %s sent again after a clean restart", first)
	}
	for x, b := range before {
		if x != id || repeats == 0 {
			sameJSON(t, s2.Get(subPath(x)+"?options=sysAttrs", nil).Expect(t, http.StatusOK).Body, b)
		}
	}
	if st := getSub(t, s2, paused, nil)["status"]; st != "paused" {
		t.Errorf("paused subscription is %v after the restart", st)
	}
	if sent := notifStatus(getSub(t, s2, id, nil), "timesSent"); sent != float64(1+repeats) {
		t.Errorf("timesSent %v after the restart, want %d", sent, 1+repeats)
	}
	write(t, s2, patchAttrs(e, jobj{"temperature": pv(6)}), nil)
	want := []string{"attributeCreated 1 temperature=5", "attributeUpdated 1 temperature=6"}
	if repeats > 0 {
		want = slices.Insert(want, 1, want[0])
	}
	hs := f.expect(t, "sub", want)
	f.expect(t, "paused", nil)
	var n1, n2 int
	fmt.Sscanf(first, "urn:ngsi-ld:Notification:%d", &n1)
	fmt.Sscanf(hs[len(hs)-1].notification(t)["id"].(string), "urn:ngsi-ld:Notification:%d", &n2)
	if n1 == 0 || n2 <= n1 {
		t.Errorf("notification ids %d before the restart, %d after: a receiver dropping repeats by id would drop it", n1, n2)
	}
}

// ============================================================================
// Bugs found by these tests (they fail until fixed; see the comments)
// ============================================================================

// TestSubscriptionBatchKeepsOrder: changes that reach the notifier together
// (one batch operation, or writes the matcher reads in one go when it is
// behind) are grouped into one notification per subscription and trigger,
// placed where the group's first change was. A subscription's notifications
// then no longer follow the changes: here the receiver gets the entity
// with co2 before the state without it, and its last notification is not
// the entity's state. (Under load the same reordering shows with separate
// requests: that is why TestSubscriptionTriggers puts a barrier after each
// write.)
//
// Fix: internal/notify/match.go:122 (batchBuilder.offer) keys rows by
// (subscription, trigger) for the whole read. Keep instead, per
// subscription, its last row, and append a change to it only when it has
// the same trigger (and room); otherwise start a new row. Consecutive
// changes of one trigger are still sent together, in order.
func TestSubscriptionBatchKeepsOrder(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	r := newReceiver(t)
	f := newFence(t, s, r, nil)
	e := "urn:ngsi-ld:BatchRoom:1"
	createSub(t, s, jobj{"type": "Subscription", "entities": []any{jobj{"type": "BatchRoom"}},
		"notification": jobj{"format": "keyValues", "endpoint": jobj{"uri": r.url("sub")}}}, nil)
	write(t, s, postEntity(jobj{"id": e, "type": "BatchRoom", "temperature": pv(1)}), nil)
	f.check(t, "sub")
	// One request, three changes of the entity, in this order.
	s.Post(apiBase+"/entityOperations/update", []any{
		jobj{"id": e, "type": "BatchRoom", "humidity": pv(1)},
		jobj{"id": e, "type": "BatchRoom", "temperature": pv(2)},
		jobj{"id": e, "type": "BatchRoom", "co2": pv(3)},
	}, nil).Expect(t, http.StatusNoContent)
	hs := f.expect(t, "sub", []string{
		"attributeCreated 1 temperature=1",
		"attributeCreated 1 humidity=1 temperature=1",
		"attributeUpdated 1 humidity=1 temperature=2",
		"attributeCreated 1 co2=3 humidity=1 temperature=2",
	})
	es := eventsOf(t, hs)
	if len(es) == 0 {
		return
	}
	current := jsonObject(t, readEntity(t, s, e, "?options=keyValues", nil))
	if last := es[len(es)-1].Entity; !reflect.DeepEqual(last, current) {
		t.Errorf("the last notification says %v; the entity is %v", last, current)
	}
}

// TestSubscriptionRetrieveCompactsEntityTypes: a retrieved subscription is
// compacted with the request's @context (docs/API.md), but the entity
// selectors' types are written as the user wrote them. A subscription
// created with the WasteManagement @context for type WasteContainer, read
// with the core @context, says "type": "WasteContainer", which the core
// @context expands to https://uri.etsi.org/ngsi-ld/default-context/WasteContainer:
// another type. (q has the same problem.)
//
// Fix: internal/ngsild/subscription/render.go:76 writes sel.Type.String();
// give qlang.TypeQuery (internal/ngsild/qlang/types.go:67) and qlang.Query
// (q.go:311) a way to write their names compacted (their segs keep the
// IRI: write compact(seg.iri) instead of seg.term) and use it with
// opts.Compact in Render (render.go:76 and :96). testdata/subscriptions/get_core_context.json
// then needs -update.
func TestSubscriptionRetrieveCompactsEntityTypes(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	id := "urn:ngsi-ld:Subscription:bins-types"
	createSub(t, s, binSubscription(id), linkHdr(wasteContext))
	want := "https://smartdatamodels.org/dataModel.WasteManagement/WasteContainer"
	for _, sel := range getSub(t, s, id, nil)["entities"].([]any) {
		if got := sel.(jobj)["type"]; got != want {
			t.Errorf("entities[].type %v with the core @context, want %s", got, want)
		}
	}
	// With the @context it was created with, the short name.
	for _, sel := range getSub(t, s, id, linkHdr(wasteContext))["entities"].([]any) {
		if got := sel.(jobj)["type"]; got != "WasteContainer" {
			t.Errorf("entities[].type %v with the WasteManagement @context", got)
		}
	}
}

// TestSubscriptionPatchedTermsSurviveRestart: PATCH expands the fragment's
// names with the PATCH request's @context, and the subscription is stored
// as Render writes it with the @context it was created with. Render writes q
// (and entity types, and geoQ) as the user wrote them, so a q patched under
// another @context is stored with the creation @context and means another
// attribute once the subscription is reloaded at start-up.
//
// Here: created with the WasteManagement @context, q patched to
// "temperature>1" with the core @context (default-context temperature).
// Before the restart it notifies; after it, q has become the WasteManagement
// temperature and the entity no longer matches.
//
// Fix: store names expanded, or compacted with the subscription's own
// @context: in internal/notify/service.go:234 (encodeSub), Render compacts
// attribute names with the subscription's @context but copies q, entity
// types and geoQ's geoproperty as written (internal/ngsild/subscription/render.go:96,
// :76 and :99). With the compacting writers proposed in
// TestSubscriptionRetrieveCompactsEntityTypes, Render writes them in terms
// of the @context it is given, and the reload (ParseStored with the same
// @context) gets the same IRIs back.
func TestSubscriptionPatchedTermsSurviveRestart(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	r := newReceiver(t)
	id := "urn:ngsi-ld:Subscription:restart"
	e := "urn:ngsi-ld:RestartRoom:1"
	createSub(t, s, jobj{"id": id, "type": "Subscription", "entities": []any{jobj{"type": "RestartRoom"}},
		"notification": jobj{"format": "keyValues", "endpoint": jobj{"uri": r.url("sub")}}}, linkHdr(wasteContext))
	s.Patch(subPath(id), jobj{"q": "temperature>1"}, nil).Expect(t, http.StatusNoContent)
	write(t, s, postEntity(jobj{"id": e, "type": "RestartRoom", "temperature": pv(5)}), nil)
	f := newFence(t, s, r, nil)
	// The notification is compacted with the subscription's @context, where
	// the core temperature has no short name.
	f.expect(t, "sub", []string{"attributeCreated 1 ngsi-ld:default-context/temperature=5"})

	s.Stop()
	s2 := apitest.StartIn(t, s.DataDir)
	f2 := newFence(t, s2, r, nil)
	write(t, s2, patchAttrs(e, jobj{"temperature": pv(6)}), nil)
	f2.check(t, "sub")
	// The fence's own subscription races this one's delivery: a little
	// more time before judging.
	hs := r.waitForWithin(t, "sub", "second notification (after the restart)", 2*time.Second, func(hs []hook) bool { return len(hs) >= 2 })
	sameEvents(t, "after the restart", eventsOf(t, hs), []string{
		"attributeCreated 1 ngsi-ld:default-context/temperature=5",
		"attributeUpdated 1 ngsi-ld:default-context/temperature=6",
	})
}

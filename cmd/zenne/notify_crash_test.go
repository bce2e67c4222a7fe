package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/auth"
)

// TestCrashNotifications checks the promise of subscriptions: every
// acknowledged change that matches a subscription is notified, in order per
// entity, even when the receiver is down for a while and zenne is killed
// (kill -9) and restarted in between. Repeats are allowed only for
// notifications in flight at the kill, and they carry the same notification
// id, so the receiver here drops them by id.
func TestCrashNotifications(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a zenne process; skipped with -short")
	}
	bin := buildZenne(t)
	dir := t.TempDir()
	rcv := newCrashReceiver(t)
	key := auth.NewKeySecret() // the administrator's, registered on the first start
	srv := startZenne(t, bin, dir, key)

	sub := `{"id":"urn:ngsi-ld:Subscription:crash","type":"Subscription","entities":[{"type":"CrashTest"}],
		"watchedAttributes":["counter"],"notification":{"format":"keyValues","attributes":["counter"],
		"endpoint":{"uri":"` + rcv.url + `"}}}`
	client := keyClient(key, 16)
	defer client.CloseIdleConnections()
	w0 := &crashWriter{base: srv.url, client: client}
	if status, err := w0.send(http.MethodPost, "/ngsi-ld/v1/subscriptions", sub); err != nil || status != http.StatusCreated {
		t.Fatalf("create subscription: %d %v", status, err)
	}

	const writers = 16
	ws := make([]*crashWriter, writers)
	var killed atomic.Bool
	var wg sync.WaitGroup
	for g := range ws {
		w := &crashWriter{g: g, base: srv.url, client: client, ents: map[string]*crashEntity{}}
		ws[g] = w
		wg.Go(func() { w.run(&killed) })
	}
	time.Sleep(500 * time.Millisecond)
	rcv.stop() // the receiver goes away under load ...
	time.Sleep(time.Second)
	killed.Store(true)
	srv.kill(t) // ... and zenne is killed while notifications wait
	wg.Wait()
	acked := 0
	for _, w := range ws {
		if w.err != nil {
			t.Fatalf("writer %d before the kill: %v", w.g, w.err)
		}
		acked += w.acked
	}
	before := rcv.count()
	t.Logf("%d writes acknowledged; %d notifications received before the receiver stopped", acked, before)

	startZenne(t, bin, dir, key)
	rcv.start(t)
	// Every acknowledged counter value must arrive.
	deadline := time.Now().Add(60 * time.Second)
	for {
		missing := rcv.missing(ws)
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d acknowledged changes were never notified (received %d notifications)", missing, rcv.count())
		}
		time.Sleep(100 * time.Millisecond)
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if len(rcv.outOfOrder) > 0 {
		t.Errorf("notifications out of order per entity: %v", rcv.outOfOrder[:min(5, len(rcv.outOfOrder))])
	}
	t.Logf("all acknowledged changes notified: %d notifications, %d repeats dropped by id", len(rcv.seen), rcv.repeats)
}

// crashReceiver is a notification receiver that can be stopped (its port
// refuses connections) and started again on the same port.
type crashReceiver struct {
	url  string
	addr string
	srv  *http.Server

	mu         sync.Mutex
	seen       map[string]bool           // notification ids
	values     map[string]map[int64]bool // entity -> counters received
	last       map[string]int64          // entity -> last counter received
	outOfOrder []string                  // entity: counter after a larger one
	repeats    int
}

func newCrashReceiver(t *testing.T) *crashReceiver {
	r := &crashReceiver{seen: map[string]bool{}, values: map[string]map[int64]bool{}, last: map[string]int64{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	r.url = "http://" + r.addr + "/notify"
	r.serve(ln)
	t.Cleanup(r.stop)
	return r
}

func (r *crashReceiver) serve(ln net.Listener) {
	r.srv = &http.Server{Handler: http.HandlerFunc(r.handle)}
	go r.srv.Serve(ln)
}

func (r *crashReceiver) stop() {
	if r.srv != nil {
		r.srv.Close()
		r.srv = nil
	}
}

func (r *crashReceiver) start(t *testing.T) {
	var ln net.Listener
	var err error
	for range 50 { // the port was ours a moment ago
		if ln, err = net.Listen("tcp", r.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("restart the receiver on %s: %v", r.addr, err)
	}
	r.serve(ln)
}

func (r *crashReceiver) handle(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return
	}
	var n struct {
		ID   string `json:"id"`
		Data []struct {
			ID      string `json:"id"`
			Counter int64  `json:"counter"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &n); err != nil || !strings.HasPrefix(n.ID, "urn:ngsi-ld:Notification:") {
		http.Error(w, "not a notification", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen[n.ID] {
		r.repeats++
		return
	}
	r.seen[n.ID] = true
	for _, d := range n.Data {
		if r.values[d.ID] == nil {
			r.values[d.ID] = map[int64]bool{}
		}
		r.values[d.ID][d.Counter] = true
		if d.Counter <= r.last[d.ID] {
			r.outOfOrder = append(r.outOfOrder, d.ID)
		}
		r.last[d.ID] = d.Counter
	}
}

func (r *crashReceiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}

// missing counts acknowledged writes whose counter value was not notified.
func (r *crashReceiver) missing(ws []*crashWriter) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, w := range ws {
		for _, v := range w.acks {
			if !r.values[v.id][v.counter] {
				n++
			}
		}
	}
	return n
}

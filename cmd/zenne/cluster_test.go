package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/zenne-city/zenne/internal/auth"
	"github.com/zenne-city/zenne/internal/store/postgres/pgtest"
)

// TestClusterSurvivesKill runs three `zenne serve` processes sharing one
// PostgreSQL database and one NATS stream, sends writes through all of them
// and a subscription's notifications to one receiver, kills the instance
// that notifies (kill -9) in the middle, and checks that every acknowledged
// write is stored and every acknowledged change is notified, in order per
// entity (the receiver drops repeats by notification id).
func TestClusterSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills zenne processes; skipped with -short")
	}
	natsURL := os.Getenv("ZENNE_TEST_NATS")
	if natsURL == "" {
		t.Skip("ZENNE_TEST_NATS is not set: no NATS server to test against")
	}
	db := pgtest.Database(t)
	stream := clusterStream(t, natsURL)
	bin := buildZenne(t)
	// The administrator's key: the first instance registers it in the new
	// database, the others find it there.
	key := auth.NewKeySecret()
	var procs []*zenneProc
	for range 3 {
		procs = append(procs, startZenneWith(t, bin, key, "--store", db, "--bus", natsURL, "--bus-stream", stream))
	}
	rcv := newCrashReceiver(t)
	client := keyClient(key, 16)
	defer client.CloseIdleConnections()

	// Created on the third instance; the first one, started first, holds
	// the notifier lease.
	sub := `{"id":"urn:ngsi-ld:Subscription:cluster","type":"Subscription","entities":[{"type":"CrashTest"}],
		"watchedAttributes":["counter"],"notification":{"format":"keyValues","attributes":["counter"],
		"endpoint":{"uri":"` + rcv.url + `"}}}`
	w0 := &crashWriter{base: procs[2].url, client: client}
	if status, err := w0.send(http.MethodPost, "/ngsi-ld/v1/subscriptions", sub); err != nil || status != http.StatusCreated {
		t.Fatalf("create subscription: %d %v", status, err)
	}
	// An alarm rule, created on the third instance too: whichever instance
	// evaluates, before or after the kill, each entity whose counter
	// passes 50 gets one alert, and only one.
	seed := `{"id":"urn:ngsi-ld:CrashTest:seed","type":"CrashTest","counter":{"type":"Property","value":0}}`
	if status, err := w0.send(http.MethodPost, "/ngsi-ld/v1/entities", seed); err != nil || status != http.StatusCreated {
		t.Fatalf("create the first entity: %d %v", status, err)
	}
	rule := `{"id":"counter-high","kind":"threshold","entities":[{"type":"CrashTest"}],"attribute":"counter","threshold":{"above":50}}`
	if status, err := w0.send(http.MethodPost, "/alarms/rules", rule); err != nil || status != http.StatusCreated {
		t.Fatalf("create the rule: %d %v", status, err)
	}
	time.Sleep(2500 * time.Millisecond) // every instance reads them from the store within 2 s

	// A live stream on an instance no writer uses sees every change.
	live := followStream(t, procs[2].url+"/api/stream?type=CrashTest&attrs=counter", key)

	const writers = 12
	ws := make([]*crashWriter, writers)
	var killed, stop atomic.Bool
	var wg sync.WaitGroup
	for g := range ws {
		w := &crashWriter{g: g, base: procs[g%2].url, client: client, ents: map[string]*crashEntity{}, stop: &stop}
		ws[g] = w
		wg.Go(func() { w.run(&killed) })
	}
	time.Sleep(1500 * time.Millisecond)
	killed.Store(true)
	procs[0].kill(t) // writes are in flight on it, and it was notifying
	time.Sleep(1500 * time.Millisecond)
	stop.Store(true)
	wg.Wait()

	acked := 0
	for _, w := range ws {
		if w.err != nil && w.g%2 != 0 {
			t.Errorf("writer %d on a surviving instance: %v", w.g, w.err)
		}
		acked += w.acked
	}
	if t.Failed() {
		t.FailNow()
	}
	if acked < 3*writers {
		t.Fatalf("only %d writes acknowledged: the test proves little", acked)
	}

	// Nothing acknowledged is lost, whichever instance took it.
	stored := procs[1].counters(t, client)
	for _, w := range ws {
		for id, e := range w.ents {
			if e.created && stored[id] < e.acked {
				t.Errorf("%s: stored counter %d, but %d was acknowledged", id, stored[id], e.acked)
			}
		}
	}
	// The stream on the third instance saw every acknowledged change made
	// through the other two.
	waitFor(t, "the live stream", 30*time.Second, func() bool { return live.missing(ws) == 0 })

	// Every acknowledged change is notified, once the lease has moved.
	deadline := time.Now().Add(90 * time.Second)
	for missing := rcv.missing(ws); missing > 0; missing = rcv.missing(ws) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d acknowledged changes were never notified (received %d notifications)", missing, acked, rcv.count())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// One alert per entity past the threshold, none twice, whichever
	// instance opened it.
	var over []string
	for id, c := range stored {
		if c > 50 {
			over = append(over, id)
		}
	}
	sort.Strings(over)
	var sources []string
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if sources = procs[1].alertSources(t, client); slices.Equal(sources, over) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 60 s, alerts on %d entities, %d entities over the threshold: %s", len(sources), len(over), sameDiff(sources, over))
		}
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if len(rcv.outOfOrder) > 0 {
		t.Errorf("notifications out of order per entity: %v", rcv.outOfOrder[:min(5, len(rcv.outOfOrder))])
	}
	t.Logf("%d writes acknowledged through 2 of 3 instances, one killed; all streamed by the third; all notified: %d notifications, %d repeats dropped by id; %d alerts, one per entity",
		acked, len(rcv.seen), rcv.repeats, len(sources))
}

// sameDiff describes how two sorted lists differ.
func sameDiff(got, want []string) string {
	count := map[string]int{}
	for _, g := range got {
		count[g]++
	}
	var extra, missing, twice []string
	for _, w := range want {
		if count[w] == 0 {
			missing = append(missing, w)
		}
	}
	wanted := map[string]bool{}
	for _, w := range want {
		wanted[w] = true
	}
	for g, n := range count {
		if !wanted[g] {
			extra = append(extra, g)
		}
		if n > 1 {
			twice = append(twice, g)
		}
	}
	return fmt.Sprintf("missing %d %v, unexpected %d %v, more than once %d %v", len(missing), first(missing), len(extra), first(extra), len(twice), first(twice))
}

func first(s []string) []string { return s[:min(5, len(s))] }

// alertSources lists the entity of every alert, sorted (a duplicate
// alert shows as a repeated id).
func (p *zenneProc) alertSources(t *testing.T, client *http.Client) []string {
	t.Helper()
	u := p.url + "/ngsi-ld/v1/entities?type=" + url.QueryEscape("https://smartdatamodels.org/dataModel.Alert/Alert") +
		"&attrs=" + url.QueryEscape("https://smartdatamodels.org/dataModel.Alert/alertSource") + "&options=keyValues&limit=1000"
	resp, err := client.Get(u)
	if err != nil {
		t.Fatalf("alerts: %v", err)
	}
	defer resp.Body.Close()
	var alerts []map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&alerts); err != nil {
		t.Fatalf("alerts: %v", err)
	}
	var out []string
	for _, a := range alerts {
		out = append(out, fmt.Sprint(a["https://smartdatamodels.org/dataModel.Alert/alertSource"]))
	}
	sort.Strings(out)
	return out
}

// liveStream is an SSE client recording the counters it was sent.
type liveStream struct {
	mu     sync.Mutex
	values map[string]map[int64]bool // entity -> counters streamed
}

// followStream reads an /api/stream with an API key until the test ends.
func followStream(t *testing.T, u, key string) *liveStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("live stream: %v %v", res, err)
	}
	l := &liveStream{values: map[string]map[int64]bool{}}
	go func() {
		defer res.Body.Close()
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			var ev struct {
				ID     string `json:"id"`
				Entity struct {
					Counter int64 `json:"counter"`
				} `json:"entity"`
			}
			if json.Unmarshal([]byte(data), &ev) != nil {
				continue
			}
			l.mu.Lock()
			if l.values[ev.ID] == nil {
				l.values[ev.ID] = map[int64]bool{}
			}
			l.values[ev.ID][ev.Entity.Counter] = true
			l.mu.Unlock()
		}
	}()
	return l
}

// missing counts acknowledged writes the stream did not carry.
func (l *liveStream) missing(ws []*crashWriter) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, w := range ws {
		for _, v := range w.acks {
			if !l.values[v.id][v.counter] {
				n++
			}
		}
	}
	return n
}

func waitFor(t *testing.T, what string, d time.Duration, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !ok(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// clusterStream names a JetStream stream for one test and deletes it when
// the test ends.
func clusterStream(t *testing.T, natsURL string) string {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	name := "ZENNE_TEST_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		nc, err := nats.Connect(natsURL)
		if err != nil {
			return
		}
		defer nc.Close()
		if js, err := jetstream.New(nc); err == nil {
			js.DeleteStream(context.Background(), name)
		}
	})
	return name
}

// Command notifybench measures subscriptions and notifications on the
// embedded store (issue 4's goals), against zenne running in this process on
// loopback:
//
//   - deliver: N subscriptions of four kinds (by type, by id pattern, by q,
//     by geo area) while updates arrive at a fixed rate; a local HTTP
//     receiver checks that every notification the updates call for arrives,
//     none is lost and none is extra, and measures the time from each
//     update's acknowledgement to its notification's arrival;
//   - idle: the update rate with N subscriptions no update matches, beside
//     the rate with none, measured alternately in the same process.
//
// Usage: go run ./bench/notifybench [-scenario all|deliver|idle] [-subs 10000] [-rate 5000] [-duration 20s]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zenne-city/zenne/bench/internal/benchutil"
	"github.com/zenne-city/zenne/internal/app"
	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/ngsild/geo"
)

type config struct {
	scenario    string
	dir         string
	entities    int
	subs        int
	rate        int
	duration    time.Duration
	idleFor     time.Duration
	concurrency int
	cpuprofile  string
}

func main() {
	cfg := &config{}
	flag.StringVar(&cfg.scenario, "scenario", "all", "all, deliver or idle")
	flag.StringVar(&cfg.dir, "dir", "", "data directory (default: a temporary one)")
	flag.IntVar(&cfg.entities, "entities", 10000, "entities updated")
	flag.IntVar(&cfg.subs, "subs", 10000, "subscriptions")
	flag.IntVar(&cfg.rate, "rate", 5000, "updates per second (deliver)")
	flag.DurationVar(&cfg.duration, "duration", 20*time.Second, "how long updates arrive (deliver)")
	flag.DurationVar(&cfg.idleFor, "idle-duration", 10*time.Second, "length of each measurement (idle)")
	flag.IntVar(&cfg.concurrency, "concurrency", 32, "concurrent update clients")
	flag.StringVar(&cfg.cpuprofile, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	if cfg.cpuprofile != "" {
		f, err := os.Create(cfg.cpuprofile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "notifybench:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "notifybench:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func run(cfg *config) error {
	ctx := context.Background()
	app.TuneGC()
	dir := cfg.dir
	if dir == "" {
		d, err := os.MkdirTemp("", "notifybench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	key := benchutil.AdminKey()
	a, err := app.New(ctx, app.Config{Listen: "127.0.0.1:0", DataDir: filepath.Join(dir, "zenne"), Version: "bench", Log: log, MaxBody: 64 << 20,
		Env: benchutil.ServerEnv(key)})
	if err != nil {
		return err
	}
	if err := a.Start(); err != nil {
		return err
	}
	defer a.Close(context.Background())
	// A -dir kept from an earlier run has that run's administrator.
	if key, err = benchutil.ServerKey(ctx, a.Auth, key); err != nil {
		return err
	}
	base := a.URL()
	client := benchutil.WithKey(benchutil.NewClient(cfg.concurrency+8), key)
	fmt.Printf("notifybench: %d entities, %d subscriptions, GOMAXPROCS %d, %s\n", cfg.entities, cfg.subs, runtime.GOMAXPROCS(0), time.Now().Format(time.RFC3339))
	if err := loadEntities(client, base, cfg.entities); err != nil {
		return err
	}
	if cfg.scenario == "all" || cfg.scenario == "idle" {
		if err := idleScenario(cfg, client, base); err != nil {
			return err
		}
	}
	if cfg.scenario == "all" || cfg.scenario == "deliver" {
		if err := deliverScenario(cfg, client, base); err != nil {
			return err
		}
	}
	return nil
}

// --- data ---

// Entity k is a Sensor of type T<k%100> at a fixed random point of the
// Brussels region, with a numeric value in [0, 100).
const types = 100

func entityID(k int) string   { return fmt.Sprintf("urn:ngsi-ld:Sensor:%05d", k) }
func entityType(k int) string { return fmt.Sprintf("T%02d", k%types) }
func point(r *rand.Rand) [2]float64 {
	return [2]float64{4.30 + r.Float64()*0.12, 50.80 + r.Float64()*0.08}
}

// entityPoint is entity k's location as sent (6 decimals), so the
// benchmark's own geo decisions see what zenne stores.
func entityPoint(k int) [2]float64 {
	p := point(rand.New(rand.NewPCG(uint64(k), 7)))
	lon, _ := strconv.ParseFloat(fmt.Sprintf("%.6f", p[0]), 64)
	lat, _ := strconv.ParseFloat(fmt.Sprintf("%.6f", p[1]), 64)
	return [2]float64{lon, lat}
}

func loadEntities(client *http.Client, base string, n int) error {
	for from := 0; from < n; from += 1000 {
		var b strings.Builder
		b.WriteByte('[')
		for k := from; k < min(n, from+1000); k++ {
			if k > from {
				b.WriteByte(',')
			}
			p := entityPoint(k)
			fmt.Fprintf(&b, `{"id":%q,"type":%q,"value":{"type":"Property","value":0},"location":{"type":"GeoProperty","value":{"type":"Point","coordinates":[%.6f,%.6f]}}}`,
				entityID(k), entityType(k), p[0], p[1])
		}
		b.WriteByte(']')
		if _, err := benchutil.Do(client, http.MethodPost, base+"/ngsi-ld/v1/entityOperations/upsert", []byte(b.String())); err != nil {
			return fmt.Errorf("load entities: %w", err)
		}
	}
	return nil
}

// sub is one benchmark subscription, as the benchmark itself decides what
// it matches.
type sub struct {
	body  string
	typ   string     // "" = none
	id    string     // the one entity an id-pattern subscription matches
	q     float64    // value >= q (kind q)
	geo   *geo.Query // kind geo
	match func(int, float64) bool
}

// mixedSubs are n subscriptions, a quarter of each kind. About one of them
// match an update: type (25 of the 100 types have one), id pattern (a
// quarter of the entities have one), q (value >= 99, 25 per type), geo (500 m
// around a random point, 25 per type).
func mixedSubs(n int, recv string) []*sub {
	r := rand.New(rand.NewPCG(4, 4))
	out := make([]*sub, n)
	for i := range out {
		j := i / 4
		s := &sub{}
		endpoint := fmt.Sprintf(`"notification":{"format":"keyValues","attributes":["value"],"endpoint":{"uri":"%s/n/%d"}}`, recv, i)
		switch i % 4 {
		case 0:
			s.typ = fmt.Sprintf("Idle%04d", j)
			if j < 25 {
				s.typ = entityType(j)
			}
			s.body = fmt.Sprintf(`{"type":"Subscription","entities":[{"type":%q}],%s}`, s.typ, endpoint)
			s.match = func(k int, _ float64) bool { return entityType(k) == s.typ }
		case 1:
			k := (j * 4) % 10000
			s.id, s.typ = entityID(k), entityType(k)
			s.body = fmt.Sprintf(`{"type":"Subscription","entities":[{"type":%q,"idPattern":"^%s$"}],%s}`, s.typ, s.id, endpoint)
			s.match = func(k int, _ float64) bool { return entityID(k) == s.id }
		case 2:
			s.typ, s.q = entityType(j), 99
			s.body = fmt.Sprintf(`{"type":"Subscription","entities":[{"type":%q}],"q":"value>=99",%s}`, s.typ, endpoint)
			s.match = func(k int, v float64) bool { return entityType(k) == s.typ && v >= s.q }
		case 3:
			s.typ = entityType(j)
			p := point(r)
			coords := fmt.Sprintf("[%.6f,%.6f]", p[0], p[1])
			q, err := geo.ParseQuery("near;maxDistance==500", "Point", coords, "", nil)
			if err != nil {
				panic(err)
			}
			s.geo = q
			s.body = fmt.Sprintf(`{"type":"Subscription","entities":[{"type":%q}],"geoQ":{"georel":"near;maxDistance==500","geometry":"Point","coordinates":%s},%s}`, s.typ, coords, endpoint)
			s.match = func(k int, _ float64) bool {
				if entityType(k) != s.typ {
					return false
				}
				p := entityPoint(k)
				e := &ngsild.Entity{Attrs: map[string][]*ngsild.Attribute{ngsild.IRILocation: {{Kind: ngsild.GeoProperty,
					Value: map[string]any{"type": "Point", "coordinates": []any{p[0], p[1]}}}}}}
				return s.geo.Match(e)
			}
		}
		out[i] = s
	}
	return out
}

// idleSubs are n subscriptions of the same four kinds that no update matches.
func idleSubs(n int, recv string) []string {
	out := make([]string, n)
	for i := range out {
		endpoint := fmt.Sprintf(`"notification":{"endpoint":{"uri":"%s/n/%d"}}`, recv, i)
		switch i % 4 {
		case 0:
			out[i] = fmt.Sprintf(`{"type":"Subscription","entities":[{"type":"Idle%04d"}],%s}`, i, endpoint)
		case 1:
			out[i] = fmt.Sprintf(`{"type":"Subscription","entities":[{"type":"T%02d","idPattern":"^urn:ngsi-ld:Other:%d$"}],%s}`, i%types, i, endpoint)
		case 2:
			out[i] = fmt.Sprintf(`{"type":"Subscription","entities":[{"type":"T%02d"}],"q":"value>1000",%s}`, i%types, endpoint)
		case 3:
			out[i] = fmt.Sprintf(`{"type":"Subscription","entities":[{"type":"T%02d"}],"geoQ":{"georel":"near;maxDistance==100","geometry":"Point","coordinates":[3.0,51.5]},%s}`, i%types, endpoint)
		}
	}
	return out
}

func createSubs(client *http.Client, base string, bodies []string) ([]string, error) {
	ids := make([]string, len(bodies))
	err := forEach(len(bodies), func(i int) error {
		id := fmt.Sprintf("urn:ngsi-ld:Subscription:bench-%d-%d", time.Now().UnixNano(), i)
		body := `{"id":"` + id + `",` + bodies[i][1:]
		if _, err := benchutil.Do(client, http.MethodPost, base+"/ngsi-ld/v1/subscriptions", []byte(body)); err != nil {
			return err
		}
		ids[i] = id
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("create subscriptions: %w", err)
	}
	return ids, nil
}

func deleteSubs(client *http.Client, base string, ids []string) error {
	err := forEach(len(ids), func(i int) error {
		_, err := benchutil.Do(client, http.MethodDelete, base+"/ngsi-ld/v1/subscriptions/"+url.PathEscape(ids[i]), nil)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete subscriptions: %w", err)
	}
	return nil
}

// forEach calls f for every i in [0, n) on 16 goroutines; a worker stops at
// its first error, and the first error is returned.
func forEach(n int, f func(i int) error) error {
	var next atomic.Int64
	var firstErr atomic.Pointer[error] // not an atomic.Value: errors differ in type
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				if err := f(i); err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	if p := firstErr.Load(); p != nil {
		return *p
	}
	return nil
}

// --- the receiver ---

type delivery struct {
	sub int
	id  string
	val float64
}

type receiver struct {
	url  string
	srv  *http.Server
	mu   sync.Mutex
	got  map[delivery]time.Time
	dups int
	bad  int
	n    atomic.Int64
}

func newReceiver() (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &receiver{url: "http://" + ln.Addr().String(), got: map[delivery]time.Time{}}
	r.srv = &http.Server{Handler: http.HandlerFunc(r.handle)}
	go r.srv.Serve(ln)
	return r, nil
}

func (r *receiver) handle(w http.ResponseWriter, req *http.Request) {
	now := time.Now()
	body, _ := io.ReadAll(req.Body)
	i, err := strconv.Atoi(strings.TrimPrefix(req.URL.Path, "/n/"))
	var n struct {
		Data []struct {
			ID    string  `json:"id"`
			Value float64 `json:"value"`
		} `json:"data"`
	}
	if err != nil || json.Unmarshal(body, &n) != nil {
		r.mu.Lock()
		r.bad++
		r.mu.Unlock()
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	for _, d := range n.Data {
		k := delivery{i, d.ID, d.Value}
		if _, ok := r.got[k]; ok {
			r.dups++
			continue
		}
		r.got[k] = now
	}
	r.mu.Unlock()
	r.n.Add(1)
	w.WriteHeader(http.StatusNoContent)
}

// --- scenarios ---

func deliverScenario(cfg *config, client *http.Client, base string) error {
	rcv, err := newReceiver()
	if err != nil {
		return err
	}
	defer rcv.srv.Close()
	subs := mixedSubs(cfg.subs, rcv.url)
	bodies := make([]string, len(subs))
	for i, s := range subs {
		bodies[i] = s.body
	}
	t0 := time.Now()
	ids, err := createSubs(client, base, bodies)
	if err != nil {
		return err
	}
	fmt.Printf("\n## deliver: %d subscriptions created in %s\n", len(ids), time.Since(t0).Round(time.Millisecond))
	byType := map[string][]int{}
	for i, s := range subs {
		byType[s.typ] = append(byType[s.typ], i)
	}

	type update struct {
		k   int
		v   float64
		ack time.Time
	}
	var mu sync.Mutex
	var updates []update
	cpu := benchutil.StartCPU()
	tokens := make(chan struct{}, cfg.rate)
	stop := make(chan struct{})
	go func() { // the pacer: rate tokens per second, in 1 ms steps
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		start := time.Now()
		sent := 0
		for {
			select {
			case <-stop:
				close(tokens)
				return
			case now := <-tick.C:
				due := int(now.Sub(start).Seconds() * float64(cfg.rate))
				for ; sent < due; sent++ {
					select {
					case tokens <- struct{}{}:
					default: // the clients are behind: the rate is not reached
					}
				}
			}
		}
	}()
	var seq atomic.Int64
	var errs atomic.Int64
	var wg sync.WaitGroup
	for w := range cfg.concurrency {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 9))
			for range tokens {
				k := r.IntN(cfg.entities)
				n := seq.Add(1)
				v := float64(r.IntN(100)) + float64(n%1000000)/1e7 // unique per update
				body := fmt.Appendf(nil, `{"value":{"type":"Property","value":%v}}`, v)
				if _, err := benchutil.Do(client, http.MethodPatch, base+"/ngsi-ld/v1/entities/"+url.PathEscape(entityID(k))+"/attrs", body); err != nil {
					errs.Add(1)
					continue
				}
				ack := time.Now()
				mu.Lock()
				updates = append(updates, update{k, v, ack})
				mu.Unlock()
			}
		})
	}
	time.Sleep(cfg.duration)
	close(stop)
	wg.Wait()
	sent := time.Now()
	cpuLine := cpu.String()

	// What should arrive.
	want := map[delivery]time.Time{}
	for _, u := range updates {
		for _, i := range byType[entityType(u.k)] {
			if subs[i].match(u.k, u.v) {
				want[delivery{i, entityID(u.k), u.v}] = u.ack
			}
		}
	}
	// Wait for the last notifications (or 60 s).
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		rcv.mu.Lock()
		n := len(rcv.got)
		rcv.mu.Unlock()
		if n >= len(want) {
			time.Sleep(time.Second) // and a moment for extra ones
			break
		}
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	var lat []time.Duration
	lost, extra := 0, 0
	for k, ack := range want {
		at, ok := rcv.got[k]
		if !ok {
			lost++
			continue
		}
		lat = append(lat, max(0, at.Sub(ack)))
	}
	for k := range rcv.got {
		if _, ok := want[k]; !ok {
			extra++
		}
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	rate := float64(len(updates)) / cfg.duration.Seconds()
	fmt.Printf("updates: %d acknowledged in %s (%.0f/s, goal %d/s), %d errors\n", len(updates), cfg.duration, rate, cfg.rate, errs.Load())
	fmt.Printf("notifications: %d HTTP requests carrying %d entity notifications; expected %d; lost %d; extra %d; repeats %d; bad %d\n",
		rcv.n.Load(), len(rcv.got), len(want), lost, extra, rcv.dups, rcv.bad)
	fmt.Printf("latency from acknowledgement to arrival: p50 %s, p90 %s, p99 %s, max %s (goal p99 < 50ms: %s)\n",
		ms(pct(.5)), ms(pct(.9)), ms(pct(.99)), ms(pct(1)), benchutil.Verdict(pct(.99) < 50*time.Millisecond && lost == 0 && extra == 0))
	fmt.Printf("drained %s after the last update; %s\n", time.Since(sent).Round(time.Millisecond), cpuLine)
	return deleteSubs(client, base, ids)
}

// idleScenario measures the PATCH rate alternately without subscriptions
// and with cfg.subs idle ones. Each measurement starts after a pause, so the
// WAL checkpoint of creating or deleting 10,000 subscriptions is not
// counted against either side.
func idleScenario(cfg *config, client *http.Client, base string) error {
	fmt.Printf("\n## idle: PATCH at full speed, %d clients, %s per measurement\n", cfg.concurrency, cfg.idleFor)
	bodies := idleSubs(cfg.subs, "http://127.0.0.1:9")
	var none, idle []float64
	for round := range 2 {
		r := patchRate(cfg, client, base)
		none = append(none, r)
		fmt.Printf("round %d, no subscriptions: %.0f updates/s\n", round+1, r)
		ids, err := createSubs(client, base, bodies)
		if err != nil {
			return err
		}
		time.Sleep(settle)
		r = patchRate(cfg, client, base)
		idle = append(idle, r)
		fmt.Printf("round %d, %d idle subscriptions: %.0f updates/s\n", round+1, len(ids), r)
		if err := deleteSubs(client, base, ids); err != nil {
			return err
		}
		time.Sleep(settle)
	}
	avg := func(xs []float64) float64 {
		s := 0.0
		for _, x := range xs {
			s += x
		}
		return s / float64(len(xs))
	}
	ratio := avg(idle) / avg(none)
	fmt.Printf("with %d idle subscriptions: %.0f%% of the rate without (goal >= 80%%: %s)\n", cfg.subs, 100*ratio, benchutil.Verdict(ratio >= .8))
	return nil
}

// settle is the pause before each idle measurement.
const settle = 3 * time.Second

func patchRate(cfg *config, client *http.Client, base string) float64 {
	var n atomic.Int64
	end := time.Now().Add(cfg.idleFor)
	var wg sync.WaitGroup
	for w := range cfg.concurrency {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 11))
			for time.Now().Before(end) {
				k := r.IntN(cfg.entities)
				body := fmt.Appendf(nil, `{"value":{"type":"Property","value":%d}}`, r.IntN(100))
				if _, err := benchutil.Do(client, http.MethodPatch, base+"/ngsi-ld/v1/entities/"+url.PathEscape(entityID(k))+"/attrs", body); err == nil {
					n.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return float64(n.Load()) / cfg.idleFor.Seconds()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000) }

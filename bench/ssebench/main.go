// Command ssebench measures the live stream (GET /api/stream): N SSE clients
// with filters while updates are written at R/s, reporting what each client
// got against what its filter should have let through, and the latency from
// commit (the event's "at") and from the write (the update's sentAt) to
// receipt.
//
//	go run ./bench/ssebench                          # in-process: store, bus, stream on loopback
//	go run ./bench/ssebench -clients 200 -rate 1000
//	go run ./bench/ssebench -url http://localhost:1026 # a running zenne (writes by batch merge)
//
// In-process, the store is a fresh SQLite file in a temporary directory,
// updates go through the broker (one batch merge per 10 ms tick) and the
// stream handler is served by net/http on 127.0.0.1. Clients and server run
// on the same machine: the report says how much CPU the process used.
//
// Entity i is urn:ngsi-ld:T<i%10>:<i> of type T<i%10>, a Point location
// uniform over the Brussels region, n (its update count) and sentAt (the
// write's time, µs since the epoch). Updates change n and sentAt of a random
// entity. Client k has one of these filters: every -all-every-th none; the
// others in turn (-filters) a small bbox (1/100 of the region), a type with
// a bbox (1/16, normalized), 20 ids (with attrs=n,sentAt), an idPattern
// matching 2 ids in 100.
// A client cut off for being slow reconnects with Last-Event-ID, as a
// browser does; losses are counted after that.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"maps"
	"math"
	"math/bits"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zenne-city/zenne/bench/internal/benchutil"
	"github.com/zenne-city/zenne/internal/api/access"
	"github.com/zenne-city/zenne/internal/api/stream"
	"github.com/zenne-city/zenne/internal/auth"
	"github.com/zenne-city/zenne/internal/bus"
	"github.com/zenne-city/zenne/internal/core"
	"github.com/zenne-city/zenne/internal/jsonld"
	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store/sqlite"
)

type config struct {
	url        string
	clients    int
	rate       int
	entities   int
	duration   time.Duration
	warmup     time.Duration
	allEvery   int
	batchDelay time.Duration
	buffer     int
	cpuProfile string
	filters    []string
}

// types is the number of entity types, T0 to T9.
const types = 10

func main() {
	cfg := &config{}
	flag.StringVar(&cfg.url, "url", "", "base URL of a running zenne (default: in-process)")
	flag.IntVar(&cfg.clients, "clients", 1000, "SSE clients")
	flag.IntVar(&cfg.rate, "rate", 5000, "updates per second")
	flag.IntVar(&cfg.entities, "entities", 10000, "entities updated")
	flag.DurationVar(&cfg.duration, "duration", 10*time.Second, "measured time")
	flag.DurationVar(&cfg.warmup, "warmup", 2*time.Second, "unmeasured time before it")
	flag.IntVar(&cfg.allEvery, "all-every", 50, "every n-th client has no filter (0: none)")
	flag.DurationVar(&cfg.batchDelay, "batch-delay", 0, "in-process: stream.Options.BatchDelay (0: its default)")
	flag.IntVar(&cfg.buffer, "client-buffer", 0, "in-process: stream.Options.ClientBuffer (0: its default)")
	flag.StringVar(&cfg.cpuProfile, "cpuprofile", "", "write a CPU profile of the measured time to this file")
	filters := flag.String("filters", "bbox,type,id,idPattern", "the filters the clients take in turn (bbox, type, id, idPattern, none)")
	flag.Parse()
	cfg.filters = strings.Split(*filters, ",")
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(200) // as zenne serve does
	}
	if err := run(cfg); err != nil {
		log.Fatal(err)
	}
}

// writer writes the data set and the updates.
type writer interface {
	create(ctx context.Context, ents []ent) error
	update(ctx context.Context, ups []update) error
}

type ent struct {
	id, typ  string
	lon, lat float64
}

type update struct {
	i      int
	n      int
	sentAt int64 // µs
}

func run(cfg *config) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		w       writer
		base    = strings.TrimSuffix(cfg.url, "/")
		handler *stream.Handler
	)
	if cfg.url == "" {
		dir, err := os.MkdirTemp("", "ssebench")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		st, err := sqlite.Open(ctx, filepath.Join(dir, "zenne.db"), sqlite.Options{})
		if err != nil {
			return err
		}
		defer st.Close()
		coreCtx := jsonld.NewResolver(jsonld.Options{}).Core()
		handler = stream.New(bus.NewLocal(st, 0), coreCtx, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
			stream.Options{Heartbeat: time.Second, BatchDelay: cfg.batchDelay, ClientBuffer: cfg.buffer, MaxClients: cfg.clients + 100})
		// Behind the real guard, on a public-read tenant: dashboards
		// stream without credentials.
		authn, err := auth.New(ctx, st, auth.Options{})
		if err != nil {
			return err
		}
		defer authn.Close()
		if err := authn.SetPublicRead(ctx, "", true); err != nil {
			return err
		}
		guard := access.New(authn, access.Options{})
		handler.Register(guard.API(stream.Tenant, access.Problem))
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: guard}
		go srv.Serve(ln)
		defer srv.Close()
		defer handler.Close()
		base = "http://" + ln.Addr().String()
		w = &brokerWriter{b: core.New(st, core.Options{}), core: coreCtx}
	} else {
		w = &httpWriter{base: base, client: &http.Client{Timeout: 30 * time.Second}}
	}

	rng := rand.New(rand.NewPCG(1, 2))
	ents := make([]ent, cfg.entities)
	for i := range ents {
		t := fmt.Sprintf("T%d", i%types)
		lon, lat := benchutil.RandomPoint(rng)
		ents[i] = ent{id: fmt.Sprintf("urn:ngsi-ld:%s:%d", t, i), typ: t, lon: micro(lon), lat: micro(lat)}
	}
	start := time.Now()
	for i := 0; i < len(ents); i += 1000 {
		if err := w.create(ctx, ents[i:min(i+1000, len(ents))]); err != nil {
			return fmt.Errorf("create entities: %w", err)
		}
	}
	fmt.Printf("created %d entities in %v\n", len(ents), time.Since(start).Round(time.Millisecond))

	clients := make([]*client, cfg.clients)
	for k := range clients {
		clients[k] = newClient(k, cfg, ents, rng, base)
	}
	start = time.Now()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for _, c := range clients {
		sem <- struct{}{}
		wg.Go(func() { c.run(ctx) })
		go func() { c.waitOpen(time.Minute); <-sem }()
	}
	for _, c := range clients {
		if err := c.waitOpen(30 * time.Second); err != nil {
			return fmt.Errorf("client %d: %w", c.k, err)
		}
	}
	fmt.Printf("opened %d streams in %v\n", len(clients), time.Since(start).Round(time.Millisecond))

	// Write: warm-up, then the measured window (by sentAt), then stop.
	counts := make([]int, len(ents)) // updates of each entity in the window
	total := make([]int, len(ents))
	t0 := time.Now().Add(cfg.warmup)
	t1 := t0.Add(cfg.duration)
	window := [2]int64{t0.UnixMicro(), t1.UnixMicro()}
	for _, c := range clients {
		c.to.Store(window[1])
		c.from.Store(window[0])
	}
	var prof *os.File
	written, late := 0, 0
	tick := time.NewTicker(10 * time.Millisecond)
	var cpu benchutil.CPUMeter
	measuring := false
	begin, sent := time.Now(), 0
	for now := range tick.C {
		if now.After(t1) {
			break
		}
		if !measuring && now.After(t0) {
			measuring, cpu = true, benchutil.StartCPU()
			if cfg.cpuProfile != "" {
				var err error
				if prof, err = os.Create(cfg.cpuProfile); err != nil {
					return err
				}
				pprof.StartCPUProfile(prof)
			}
		}
		// The updates due by now (a late tick writes what it owes, up to 10 ticks).
		due := int(now.Sub(begin).Seconds()*float64(cfg.rate)) - sent
		if due > cfg.rate/10 {
			late++
			sent += due - cfg.rate/10 // given up
			due = cfg.rate / 10
		}
		sent += due
		ups := make([]update, due)
		at := time.Now().UnixMicro()
		for j := range ups {
			i := rng.IntN(len(ents))
			total[i]++
			ups[j] = update{i: i, n: total[i], sentAt: at}
			if at >= window[0] && at < window[1] {
				counts[i]++
				written++
			}
		}
		if err := w.update(ctx, ups); err != nil {
			return fmt.Errorf("update: %w", err)
		}
	}
	tick.Stop()
	cpuFigure := cpu.String()
	if prof != nil {
		pprof.StopCPUProfile()
		prof.Close()
	}

	// Drain: each client until it has what its filter should have let
	// through, or 15 s.
	for _, c := range clients {
		c.expected = 0
		for _, i := range c.matches {
			c.expected += counts[i]
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		done := true
		for _, c := range clients {
			if c.delivered.Load() < int64(c.expected) {
				done = false
				break
			}
		}
		if done {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	report(cfg, clients, written, late, cpuFigure, handler)
	return nil
}

// micro rounds to 1e-6 degrees, so the entities' coordinates and the boxes
// read the same in JSON and here.
func micro(x float64) float64 { return math.Round(x*1e6) / 1e6 }

func ftoa(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }

// brokerWriter writes through the broker into the store.
type brokerWriter struct {
	b    *core.Broker
	core *jsonld.Context
	ents []ent
}

func (w *brokerWriter) create(ctx context.Context, ents []ent) error {
	w.ents = append(w.ents, ents...)
	list := make([]*ngsild.Entity, len(ents))
	for j, e := range ents {
		var m map[string]any
		if err := json.Unmarshal(entityJSON(e), &m); err != nil {
			return err
		}
		x, err := ngsild.ParseEntity(m, w.core, ngsild.ParseOptions{})
		if err != nil {
			return err
		}
		list[j] = x
	}
	res, err := w.b.BatchUpsert(ctx, "", list, true)
	if err == nil && len(res.Errors) > 0 {
		err = fmt.Errorf("%d errors, first %+v", len(res.Errors), res.Errors[0])
	}
	return err
}

var (
	iriN      = ngsild.DefaultContextNS + "n"
	iriSentAt = ngsild.DefaultContextNS + "sentAt"
)

func (w *brokerWriter) update(ctx context.Context, ups []update) error {
	frags := make([]*ngsild.Entity, len(ups))
	for j, u := range ups {
		frags[j] = &ngsild.Entity{ID: w.ents[u.i].id, Attrs: map[string][]*ngsild.Attribute{
			iriN:      {{Kind: ngsild.Property, Value: float64(u.n)}},
			iriSentAt: {{Kind: ngsild.Property, Value: float64(u.sentAt)}},
		}}
	}
	res, err := w.b.BatchMerge(ctx, "", frags)
	if err == nil && len(res.Errors) > 0 {
		err = fmt.Errorf("%d errors, first %+v", len(res.Errors), res.Errors[0])
	}
	return err
}

func entityJSON(e ent) []byte {
	return fmt.Appendf(nil, `{"id":%q,"type":%q,"location":{"type":"GeoProperty","value":{"type":"Point","coordinates":[%s,%s]}},"n":{"type":"Property","value":0},"sentAt":{"type":"Property","value":0}}`,
		e.id, e.typ, ftoa(e.lon), ftoa(e.lat))
}

// httpWriter writes through a running zenne's batch operations.
type httpWriter struct {
	base   string
	client *http.Client
	ents   []ent
}

func (w *httpWriter) post(op string, body []byte) error {
	_, err := benchutil.Do(w.client, http.MethodPost, w.base+"/ngsi-ld/v1/entityOperations/"+op, body)
	return err
}

func (w *httpWriter) create(ctx context.Context, ents []ent) error {
	w.ents = append(w.ents, ents...)
	b := []byte{'['}
	for j, e := range ents {
		if j > 0 {
			b = append(b, ',')
		}
		b = append(b, entityJSON(e)...)
	}
	return w.post("upsert", append(b, ']'))
}

func (w *httpWriter) update(ctx context.Context, ups []update) error {
	b := []byte{'['}
	for j, u := range ups {
		if j > 0 {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, `{"id":%q,"n":{"type":"Property","value":%d},"sentAt":{"type":"Property","value":%d}}`, w.ents[u.i].id, u.n, u.sentAt)
	}
	return w.post("merge", append(b, ']'))
}

// client is one SSE client and what it got.
type client struct {
	k       int
	kind    string // its filter: none, bbox, type, id or idPattern
	query   string
	matches []int // the entities its filter lets through
	base    string

	from, to  atomic.Int64 // sentAt of the measured window, µs
	expected  int
	delivered atomic.Int64 // events of the window
	dups      atomic.Int64 // events of the window seen twice or out of order
	opened    chan struct{}
	openErr   error
	openOnce  sync.Once
	reconnect int
	ended     error

	lastID  string
	lastSeq uint64
	commit  hist // receipt - at (ms resolution)
	write   hist // receipt - sentAt
}

func newClient(k int, cfg *config, ents []ent, rng *rand.Rand, base string) *client {
	c := &client{k: k, base: base, opened: make(chan struct{})}
	c.from.Store(math.MaxInt64)
	var match func(e ent) bool
	q := url.Values{}
	box := func(frac float64) (float64, float64, float64, float64) {
		const minLon, maxLon, minLat, maxLat = benchutil.MinLon, benchutil.MaxLon, benchutil.MinLat, benchutil.MaxLat
		wd, ht := (maxLon-minLon)*frac, (maxLat-minLat)*frac
		x := micro(minLon + rng.Float64()*(maxLon-minLon-wd))
		y := micro(minLat + rng.Float64()*(maxLat-minLat-ht))
		return x, y, micro(x + wd), micro(y + ht)
	}
	c.kind = cfg.filters[k%len(cfg.filters)]
	if cfg.allEvery > 0 && k%cfg.allEvery == 0 {
		c.kind = "none"
	}
	switch c.kind {
	case "none":
		match = func(ent) bool { return true }
	case "bbox":
		x0, y0, x1, y1 := box(0.1)
		q.Set("bbox", ftoa(x0)+","+ftoa(y0)+","+ftoa(x1)+","+ftoa(y1))
		match = func(e ent) bool { return e.lon >= x0 && e.lon <= x1 && e.lat >= y0 && e.lat <= y1 }
	case "type":
		x0, y0, x1, y1 := box(0.25)
		t := fmt.Sprintf("T%d", rng.IntN(types))
		q.Set("type", t)
		q.Set("bbox", ftoa(x0)+","+ftoa(y0)+","+ftoa(x1)+","+ftoa(y1))
		q.Set("format", "normalized")
		match = func(e ent) bool {
			return e.typ == t && e.lon >= x0 && e.lon <= x1 && e.lat >= y0 && e.lat <= y1
		}
	case "id":
		ids := map[string]bool{}
		for len(ids) < min(20, len(ents)) {
			ids[ents[rng.IntN(len(ents))].id] = true
		}
		q.Set("id", strings.Join(slices.Sorted(maps.Keys(ids)), ","))
		q.Set("attrs", "n,sentAt")
		match = func(e ent) bool { return ids[e.id] }
	case "idPattern":
		a, b := rng.IntN(100), rng.IntN(100)
		pat := fmt.Sprintf(`^urn:ngsi-ld:T\d:\d*(%02d|%02d)$`, a, b)
		re := regexp.MustCompile(pat)
		q.Set("idPattern", pat)
		match = func(e ent) bool { return re.MatchString(e.id) }
	default:
		log.Fatalf("unknown filter %q", c.kind)
	}
	for i, e := range ents {
		if match(e) {
			c.matches = append(c.matches, i)
		}
	}
	c.query = q.Encode()
	return c
}

func (c *client) waitOpen(d time.Duration) error {
	select {
	case <-c.opened:
		return c.openErr
	case <-time.After(d):
		return fmt.Errorf("not open after %v", d)
	}
}

var transport = &http.Transport{MaxIdleConnsPerHost: 4096, MaxConnsPerHost: 0, DisableCompression: true}

// run reads the stream, reconnecting with Last-Event-ID when it ends.
func (c *client) run(ctx context.Context) {
	for ctx.Err() == nil {
		err := c.read(ctx)
		c.openOnce.Do(func() { c.openErr = err; close(c.opened) })
		if ctx.Err() != nil {
			return
		}
		c.ended = err
		c.reconnect++
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *client) read(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, "GET", c.base+"/api/stream?"+c.query, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	if c.lastID != "" {
		req.Header.Set("Last-Event-ID", c.lastID)
	}
	resp, err := transport.RoundTrip(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%d %s", resp.StatusCode, b)
	}
	c.openOnce.Do(func() { close(c.opened) })
	r := bufio.NewReaderSize(resp.Body, 64<<10)
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return err
		}
		switch {
		case bytes.HasPrefix(line, []byte("id: ")):
			c.lastID = string(bytes.TrimSpace(line[4:]))
		case bytes.HasPrefix(line, []byte("data: ")):
			c.event(line[6:], time.Now())
		}
	}
}

var (
	keySeq    = []byte(`"seq":`)
	keyAt     = []byte(`"at":"`)
	keySentAt = []byte(`"sentAt":`)
	keyValue  = []byte(`"value":`)
)

// event reads what the report needs from an event's data without decoding
// it all: seq, at, sentAt.
func (c *client) event(data []byte, now time.Time) {
	seq, _ := numberAfter(data, keySeq)
	i := bytes.Index(data, keyAt)
	s := bytes.Index(data, keySentAt)
	if i < 0 || s < 0 || len(data) < i+len(keyAt)+24 {
		return // a reset, or an entity without sentAt
	}
	rest := data[s+len(keySentAt):]
	if len(rest) > 0 && rest[0] == '{' { // normalized
		rest = rest[1:]
		j := bytes.Index(rest, keyValue)
		if j < 0 {
			return
		}
		rest = rest[j+len(keyValue):]
	}
	sentAt, ok := number(rest)
	if !ok {
		return
	}
	if int64(sentAt) < c.from.Load() || int64(sentAt) >= c.to.Load() {
		return
	}
	if uint64(seq) <= c.lastSeq {
		c.dups.Add(1)
		return
	}
	c.lastSeq = uint64(seq)
	c.delivered.Add(1)
	at, err := time.Parse("2006-01-02T15:04:05.000Z", string(data[i+len(keyAt):i+len(keyAt)+24]))
	if err == nil {
		c.commit.add(now.Sub(at))
	}
	c.write.add(now.Sub(time.UnixMicro(int64(sentAt))))
}

func numberAfter(b, key []byte) (float64, bool) {
	i := bytes.Index(b, key)
	if i < 0 {
		return 0, false
	}
	return number(b[i+len(key):])
}

// number parses the JSON number b starts with.
func number(b []byte) (float64, bool) {
	end := 0
	for end < len(b) && (b[end] == '-' || b[end] == '.' || b[end] == 'e' || b[end] == 'E' || b[end] == '+' || (b[end] >= '0' && b[end] <= '9')) {
		end++
	}
	f, err := strconv.ParseFloat(string(b[:end]), 64)
	return f, err == nil
}

// hist is a log-linear latency histogram (µs): 16 buckets per power of two.
type hist struct {
	n [64 * 16]uint32
}

func (h *hist) add(d time.Duration) {
	h.n[bucket(uint64(max(d.Microseconds(), 0)))]++
}

func bucket(us uint64) int {
	if us < 16 {
		return int(us)
	}
	e := bits.Len64(us) - 5 // us >> e is in [16, 32)
	return (e+1)*16 + int(us>>e) - 16
}

// upper is the largest value of bucket b.
func upper(b int) time.Duration {
	if b < 16 {
		return time.Duration(b) * time.Microsecond
	}
	e := b/16 - 1
	m := uint64(b%16 + 16)
	return time.Duration(((m+1)<<e)-1) * time.Microsecond
}

func (h *hist) merge(o *hist) {
	for i, v := range o.n {
		h.n[i] += v
	}
}

func (h *hist) quantile(q float64) time.Duration {
	var total uint64
	for _, v := range h.n {
		total += uint64(v)
	}
	if total == 0 {
		return 0
	}
	target := min(uint64(q*float64(total)), total-1)
	var acc uint64
	for i, v := range h.n {
		acc += uint64(v)
		if acc > target {
			return upper(i)
		}
	}
	return upper(len(h.n) - 1)
}

func report(cfg *config, clients []*client, written, late int, cpu string, h *stream.Handler) {
	var commit, write hist
	var delivered, expected, dups int64
	lossy, reconnects := 0, 0
	var got []int
	byKind := map[string][2]int64{}
	for _, c := range clients {
		commit.merge(&c.commit)
		write.merge(&c.write)
		d := c.delivered.Load()
		delivered += d
		expected += int64(c.expected)
		dups += c.dups.Load()
		if d < int64(c.expected) {
			lossy++
		}
		reconnects += c.reconnect
		got = append(got, int(d))
		x := byKind[c.kind]
		byKind[c.kind] = [2]int64{x[0] + 1, x[1] + d}
	}
	slices.Sort(got)
	secs := cfg.duration.Seconds()
	fmt.Printf("\n%d clients, %d updates/s asked, %.0f written/s in the window (%d late ticks)\n", len(clients), cfg.rate, float64(written)/secs, late)
	fmt.Printf("delivered %d of %d expected events (%.0f/s); %d lost, %d clients short; %d duplicates; %d reconnections\n",
		delivered, expected, float64(delivered)/secs, expected-delivered, lossy, dups, reconnects)
	fmt.Printf("per client: min %d, median %d, max %d events\n", got[0], got[len(got)/2], got[len(got)-1])
	for _, k := range []string{"none", "bbox", "type", "id", "idPattern"} {
		if x := byKind[k]; x[0] > 0 {
			fmt.Printf("  filter %-9s %4d clients, %.0f events/s each\n", k, x[0], float64(x[1])/float64(x[0])/secs)
		}
	}
	fmt.Printf("latency commit->receipt (at has ms resolution): p50 %v p99 %v max %v\n", commit.quantile(.5), commit.quantile(.99), commit.quantile(1))
	fmt.Printf("latency write->receipt: p50 %v p99 %v max %v\n", write.quantile(.5), write.quantile(.99), write.quantile(1))
	if h != nil {
		st := h.Stats()
		fmt.Printf("server: %d streams open, %d cut off for being slow\n", st.Clients, st.Dropped)
	}
	fmt.Printf("%s; GOMAXPROCS %d\n", cpu, runtime.GOMAXPROCS(0))
}

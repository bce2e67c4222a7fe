package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/auth"
)

// TestCrashDurability checks the promise of the embedded store: a write the
// server acknowledged with 2xx survives kill -9.
//
// Each writer goroutine owns its entities and writes one strictly increasing
// counter, so for every entity "the last acknowledged value" is well defined:
// after the restart the stored counter must be at least the last value
// acknowledged for it, and at most the last value sent for it (a write in
// flight at the kill may or may not have committed).
func TestCrashDurability(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a zenne process; skipped with -short")
	}
	bin := buildZenne(t)
	dir := t.TempDir()
	key := auth.NewKeySecret() // the administrator's, registered on the first start

	srv := startZenne(t, bin, dir, key)
	const writers = 16
	ws := make([]*crashWriter, writers)
	var killed atomic.Bool
	var wg sync.WaitGroup
	client := keyClient(key, writers)
	defer client.CloseIdleConnections()
	for g := range ws {
		w := &crashWriter{g: g, base: srv.url, client: client, ents: map[string]*crashEntity{}}
		ws[g] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run(&killed)
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	killed.Store(true)
	srv.kill(t) // writes are in flight: the writers never pause
	wg.Wait()

	acked, inFlight := 0, 0
	for _, w := range ws {
		if w.err != nil {
			t.Errorf("writer %d before the kill: %v", w.g, w.err)
		}
		acked += w.acked
		if w.inFlight {
			inFlight++
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	if acked < writers {
		t.Fatalf("only %d writes were acknowledged before the kill; the test proves nothing", acked)
	}
	t.Logf("%d writes acknowledged, %d writers had a write in flight at the kill", acked, inFlight)

	srv = startZenne(t, bin, dir, key)
	stored := srv.counters(t, client)
	checked := 0
	for _, w := range ws {
		for id, e := range w.ents {
			if !e.created {
				continue // its create was in flight at the kill: it may or may not exist
			}
			checked++
			got, ok := stored[id]
			switch {
			case !ok:
				t.Errorf("%s: acknowledged create (counter %d) is lost", id, e.acked)
			case got < e.acked:
				t.Errorf("%s: counter %d after the restart, but %d was acknowledged", id, got, e.acked)
			case got > e.sent:
				t.Errorf("%s: counter %d after the restart was never sent (last sent %d)", id, got, e.sent)
			}
		}
	}
	t.Logf("%d acknowledged entities checked after the restart", checked)
	srv.checkHistory(t, client, ws, stored)
}

// checkHistory checks that history and current state agree after the
// crash: the last recorded counter of an entity is its current counter, and
// its history only ever went up (each writer sends increasing counters).
// The server sealed history into chunks during the load (see startZenne),
// so both the sealed and the recent part are read.
func (p *zenneProc) checkHistory(t *testing.T, client *http.Client, ws []*crashWriter, stored map[string]int64) {
	t.Helper()
	checked := 0
	for _, w := range ws {
		for id, e := range w.ents {
			cur, ok := stored[id]
			if !ok || checked >= 400 {
				continue
			}
			checked++
			u := p.url + "/ngsi-ld/v1/temporal/entities/" + url.PathEscape(id) + "?attrs=counter&options=temporalValues"
			resp, err := client.Get(u)
			if err != nil {
				t.Fatalf("history of %s: %v", id, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("history of %s: status %d: %s", id, resp.StatusCode, body)
			}
			var h struct {
				Counter struct {
					Values [][2]any `json:"values"`
				} `json:"counter"`
			}
			if err := json.Unmarshal(body, &h); err != nil {
				t.Fatalf("history of %s: %v: %s", id, err, body)
			}
			vals := h.Counter.Values
			if len(vals) == 0 {
				t.Errorf("%s: current counter %d but no history", id, cur)
				continue
			}
			last := -1.0
			for _, v := range vals {
				f, _ := v[0].(float64)
				if f <= last {
					t.Errorf("%s: history %v does not only go up", id, vals)
					break
				}
				last = f
			}
			if int64(last) != cur {
				t.Errorf("%s: last recorded counter %v, current counter %d: history and current state disagree", id, last, cur)
			}
			if int64(last) > e.sent {
				t.Errorf("%s: recorded counter %v was never sent", id, last)
			}
		}
	}
	t.Logf("history of %d entities agrees with their current state", checked)
}

// crashEntity is what one writer knows about one of its entities.
type crashEntity struct {
	created bool  // the create was acknowledged
	acked   int64 // the last counter acknowledged
	sent    int64 // the last counter sent (acked, or in flight at the kill)
}

// crashWriter creates and patches its own entities until the server dies.
type crashWriter struct {
	g      int
	base   string
	client *http.Client
	ents   map[string]*crashEntity
	ids    []string // acknowledged entities, to patch

	counter  int64
	acked    int
	acks     []crashAck   // every acknowledged write
	inFlight bool         // a write got no answer (the server was killed)
	err      error        // a failure before the kill
	stop     *atomic.Bool // when set, the writer stops before its next write
}

// crashAck is one acknowledged write: the entity's counter became counter.
type crashAck struct {
	id      string
	counter int64
}

func (w *crashWriter) run(killed *atomic.Bool) {
	rng := rand.New(rand.NewPCG(uint64(w.g), 42))
	for n := 0; w.stop == nil || !w.stop.Load(); n++ {
		w.counter++
		var (
			id     string
			status int
			err    error
		)
		if len(w.ids) == 0 || rng.IntN(4) == 0 {
			id = fmt.Sprintf("urn:ngsi-ld:CrashTest:w%02d-%06d", w.g, n)
			w.ents[id] = &crashEntity{sent: w.counter}
			body := fmt.Sprintf(`{"id":%q,"type":"CrashTest","counter":{"type":"Property","value":%d}}`, id, w.counter)
			status, err = w.send(http.MethodPost, "/ngsi-ld/v1/entities", body)
		} else {
			id = w.ids[rng.IntN(len(w.ids))]
			w.ents[id].sent = w.counter
			body := fmt.Sprintf(`{"counter":{"type":"Property","value":%d}}`, w.counter)
			status, err = w.send(http.MethodPatch, "/ngsi-ld/v1/entities/"+url.PathEscape(id)+"/attrs", body)
		}
		if err != nil || status/100 != 2 {
			if killed.Load() {
				w.inFlight = err != nil
				return
			}
			if err == nil {
				err = fmt.Errorf("status %d", status)
			}
			w.err = fmt.Errorf("write %s: %w", id, err)
			return
		}
		e := w.ents[id]
		if !e.created {
			e.created = true
			w.ids = append(w.ids, id)
		}
		e.acked = w.counter
		w.acked++
		w.acks = append(w.acks, crashAck{id, w.counter})
	}
}

func (w *crashWriter) send(method, path, body string) (int, error) {
	req, err := http.NewRequest(method, w.base+path, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	msg, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err // the answer was cut: not acknowledged
	}
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, fmt.Errorf("status %d: %s", resp.StatusCode, msg)
	}
	return resp.StatusCode, nil
}

// buildZenne compiles this command into a temporary directory.
func buildZenne(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go tool is needed to build zenne: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "zenne")
	cmd := exec.Command(goTool, "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// zenneProc is a `zenne serve` subprocess.
type zenneProc struct {
	cmd  *exec.Cmd
	url  string
	log  *logWatch
	done chan struct{} // closed when the process has exited
}

// startZenne runs `zenne serve` on dir and waits until /health answers 200.
// key is the administrator's API key (see startZenneWith).
func startZenne(t *testing.T, bin, dir, key string) *zenneProc {
	t.Helper()
	// The data directory's file, whatever the environment says.
	return startZenneWith(t, bin, key, "--data", dir, "--store", "", "--bus", "")
}

// startZenneWith runs `zenne serve` with args and waits until /health
// answers 200. History is sealed quickly, so a crash hits sealing too.
// key (auth.NewKeySecret) is given as ZENNE_ADMIN_KEY: a new store registers
// it as the administrator's, and a restarted one, or another instance on
// the same database, keeps it; send it with keyClient.
func startZenneWith(t *testing.T, bin, key string, args ...string) *zenneProc {
	t.Helper()
	lw := &logWatch{addr: make(chan string, 1)}
	args = append([]string{"serve", "--listen", "127.0.0.1:0", "--mqtt-listen", "", "--log-level", "info", "--history-seal-after", "300ms"}, args...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), auth.EnvAdminKey+"="+key)
	cmd.Stdout = io.Discard
	cmd.Stderr = lw
	if err := cmd.Start(); err != nil {
		t.Fatalf("start zenne: %v", err)
	}
	p := &zenneProc{cmd: cmd, log: lw, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
			return
		default:
		}
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-p.done
		}
	})

	deadline := time.After(30 * time.Second)
	select {
	case addr := <-lw.addr:
		p.url = "http://" + addr
	case <-p.done:
		t.Fatalf("zenne exited before serving:\n%s", lw.String())
	case <-deadline:
		t.Fatalf("zenne did not report its address within 30s:\n%s", lw.String())
	}
	for {
		resp, err := http.Get(p.url + "/health")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case <-p.done:
			t.Fatalf("zenne exited before it was healthy:\n%s", lw.String())
		case <-deadline:
			t.Fatalf("zenne was not healthy within 30s:\n%s", lw.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// keyClient is an HTTP client that sends key as a Bearer token with every
// request, keeping up to conns connections alive.
func keyClient(key string, conns int) *http.Client {
	return &http.Client{
		Timeout:   10 * time.Second,
		Transport: bearer{auth: "Bearer " + key, next: &http.Transport{MaxIdleConnsPerHost: conns, MaxIdleConns: conns}},
	}
}

// bearer adds an Authorization header to every request.
type bearer struct {
	auth string
	next *http.Transport
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", b.auth)
	return b.next.RoundTrip(r)
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the
// transport.
func (b bearer) CloseIdleConnections() { b.next.CloseIdleConnections() }

// kill sends SIGKILL and waits for the process to be gone.
func (p *zenneProc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatalf("kill zenne: %v", err)
	}
	<-p.done
}

// counters reads the counter of every CrashTest entity.
func (p *zenneProc) counters(t *testing.T, client *http.Client) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	const page = 1000
	for offset := 0; ; offset += page {
		u := fmt.Sprintf("%s/ngsi-ld/v1/entities?type=CrashTest&options=keyValues&limit=%d&offset=%d", p.url, page, offset)
		resp, err := client.Get(u)
		if err != nil {
			t.Fatalf("query after restart: %v", err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("query after restart: status %d, %v: %s", resp.StatusCode, err, body)
		}
		var ents []struct {
			ID      string `json:"id"`
			Counter int64  `json:"counter"`
		}
		if err := json.Unmarshal(body, &ents); err != nil {
			t.Fatalf("query after restart: %v: %s", err, body)
		}
		for _, e := range ents {
			out[e.ID] = e.Counter
		}
		if len(ents) < page {
			return out
		}
	}
}

// logWatch keeps a process's log and reports the address from its
// "zenne serving" line.
type logWatch struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	scan int // bytes of buf already scanned for lines
	addr chan string
	sent bool
}

func (l *logWatch) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(b)
	for !l.sent {
		rest := l.buf.Bytes()[l.scan:]
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			break
		}
		l.scan += i + 1
		var line struct {
			Msg  string `json:"msg"`
			Addr string `json:"addr"`
		}
		if json.Unmarshal(rest[:i], &line) == nil && line.Msg == "zenne serving" && line.Addr != "" {
			l.addr <- line.Addr
			l.sent = true
		}
	}
	return len(b), nil
}

func (l *logWatch) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

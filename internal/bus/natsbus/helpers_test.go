package natsbus_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/zenne-city/zenne/internal/bus/natsbus"
	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store"
	"github.com/zenne-city/zenne/internal/store/codec"
	"github.com/zenne-city/zenne/internal/store/sqlite"
)

// natsURL is the NATS server the tests use; they are skipped without one.
func natsURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("ZENNE_TEST_NATS")
	if u == "" {
		t.Skip("ZENNE_TEST_NATS is not set (e.g. nats://127.0.0.1:4222)")
	}
	return u
}

var streamSerial atomic.Int64

// newStream names a stream for this test alone and deletes it afterwards.
func newStream(t testing.TB) string {
	t.Helper()
	u := natsURL(t)
	name := strings.NewReplacer("/", "_", " ", "_", ".", "_", "*", "_", ">", "_").Replace(t.Name())
	name = fmt.Sprintf("ZT_%s_%d_%d", name, os.Getpid(), streamSerial.Add(1))
	t.Cleanup(func() {
		nc, err := nats.Connect(u)
		if err != nil {
			t.Errorf("delete stream %s: %v", name, err)
			return
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := js.DeleteStream(ctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Errorf("delete stream %s: %v", name, err)
		}
	})
	return name
}

// jsFor is a JetStream client of the test's own, to look into streams.
func jsFor(t testing.TB) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(natsURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func openStore(t testing.TB) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "zenne.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func upsert(s store.Store, tenant, id string, v float64) error {
	e := &ngsild.Entity{ID: id, Types: []string{"https://example.org/T"}, Attrs: map[string][]*ngsild.Attribute{
		"https://example.org/v": {{Kind: ngsild.Property, Value: v}}}}
	res, err := s.Write(context.Background(), tenant, []store.Op{{ID: id, Apply: func(*ngsild.Entity) (*ngsild.Entity, error) { return e, nil }}})
	if err == nil && res[0].Err != nil {
		err = res[0].Err
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", id, err)
	}
	return nil
}

func upsertString(s store.Store, id, v string) error {
	e := &ngsild.Entity{ID: id, Types: []string{"https://example.org/T"}, Attrs: map[string][]*ngsild.Attribute{
		"https://example.org/s": {{Kind: ngsild.Property, Value: v}}}}
	res, err := s.Write(context.Background(), "", []store.Op{{ID: id, Apply: func(*ngsild.Entity) (*ngsild.Entity, error) { return e, nil }}})
	if err == nil && res[0].Err != nil {
		err = res[0].Err
	}
	return err
}

func mustUpsert(t *testing.T, s store.Store, id string, v float64) {
	t.Helper()
	if err := upsert(s, "", id, v); err != nil {
		t.Fatal(err)
	}
}

// shared is one SQLite store seen by several simulated instances: the
// store calls one watcher, which hands each commit's changes to the
// instance that "made" them (by the id's prefix "urn:i<k>:"), as a
// PostgreSQL store tells each process only its own commits. With all set,
// every instance is told of every commit, so all of them relay everything.
type shared struct {
	*sqlite.Store
	all bool

	mu       sync.Mutex
	watchers map[int]func([]store.Change)
	mute     map[int]bool // instances whose commits are never reported (they "crash" before publishing)
}

func newShared(s *sqlite.Store, all bool) *shared {
	sh := &shared{Store: s, all: all, watchers: map[int]func([]store.Change){}, mute: map[int]bool{}}
	s.WatchChanges(sh.dispatch)
	return sh
}

func (sh *shared) dispatch(cs []store.Change) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.all {
		for k, f := range sh.watchers {
			if !sh.mute[k] {
				f(cs)
			}
		}
		return
	}
	by := map[int][]store.Change{}
	for _, c := range cs {
		var k int
		fmt.Sscanf(c.ID, "urn:i%d:", &k)
		by[k] = append(by[k], c)
	}
	for k, part := range by {
		if f := sh.watchers[k]; f != nil && !sh.mute[k] {
			f(part)
		}
	}
}

// instance is instance k's view of the store's change log.
func (sh *shared) instance(k int) store.ChangeLog { return &view{shared: sh, k: k} }

// staleInstance is instance k's view whose LastChange is what it was when
// the instance "opened the store" (PostgreSQL's is this process's commits
// only).
func (sh *shared) staleInstance(k int) store.ChangeLog {
	return &view{shared: sh, k: k, stale: true, last: sh.Store.LastChange()}
}

type view struct {
	*shared
	k     int
	stale bool
	last  uint64
}

func (v *view) LastChange() uint64 {
	if v.stale {
		return v.last
	}
	return v.Store.LastChange()
}

func (v *view) WatchChanges(f func([]store.Change)) {
	v.mu.Lock()
	v.watchers[v.k] = f
	v.mu.Unlock()
}

func newBus(t testing.TB, o natsbus.Options) *natsbus.Bus {
	t.Helper()
	if o.URL == "" {
		o.URL = natsURL(t)
	}
	if o.GapWait == 0 {
		o.GapWait = 50 * time.Millisecond
	}
	if o.Poll == 0 {
		o.Poll = 200 * time.Millisecond
	}
	o.NATS = append(o.NATS, nats.ReconnectWait(100*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := natsbus.New(ctx, o)
	if err != nil {
		t.Fatalf("natsbus.New: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

type reader interface {
	Read(context.Context, uint64, int) ([]store.Change, error)
}

// readAll reads from b after `after` until it has n changes, checking that
// they come numbered one after the other.
func readAll(t *testing.T, b reader, after uint64, n int, batch int) []store.Change {
	t.Helper()
	cs, err := readAllErr(b, after, n, batch)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// readAllErr is readAll for other goroutines than the test's.
func readAllErr(b reader, after uint64, n int, batch int) ([]store.Change, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []store.Change
	pos := after
	for len(out) < n {
		cs, err := b.Read(ctx, pos, batch)
		if err != nil {
			if os.Getenv("ZENNE_TEST_STACKS") != "" {
				pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
			}
			return out, fmt.Errorf("Read after %d (%d of %d read): %w", pos, len(out), n, err)
		}
		for _, c := range cs {
			if c.Seq != pos+1 {
				return out, fmt.Errorf("Read after %d: got change %d", pos, c.Seq)
			}
			pos = c.Seq
			out = append(out, c)
		}
	}
	return out, nil
}

// waitFor polls cond until it holds or the time is up.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkStream checks that the stream holds every change from first to last
// once, at its own sequence, the same as the log (when it still has it).
func checkStream(t *testing.T, js jetstream.JetStream, name string, log store.ChangeLog, first, last uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	st := s.CachedInfo().State
	if st.LastSeq != last || st.FirstSeq > first || st.FirstSeq == first && st.Msgs != last-first+1 {
		t.Fatalf("stream: %d to %d, %d messages; want %d to %d, each once", st.FirstSeq, st.LastSeq, st.Msgs, first, last)
	}
	want, err := log.Changes(ctx, first-1, int(last-first+1))
	if err != nil {
		t.Fatal(err)
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: first})
	if err != nil {
		t.Fatal(err)
	}
	it, err := cons.Messages()
	if err != nil {
		t.Fatal(err)
	}
	defer it.Stop()
	for seq := first; seq <= last; seq++ {
		m, err := it.Next()
		if err != nil {
			t.Fatalf("stream message %d: %v", seq, err)
		}
		md, _ := m.Metadata()
		if md.Sequence.Stream != seq || m.Headers().Get("Zenne-Seq") != fmt.Sprint(seq) {
			t.Fatalf("stream message %d: at %d, Zenne-Seq %q", seq, md.Sequence.Stream, m.Headers().Get("Zenne-Seq"))
		}
		w := want[seq-first]
		if w.Seq != seq {
			t.Fatalf("log change %d is %d", seq, w.Seq)
		}
		c, err := codec.DecodeChange(m.Data())
		if err != nil || c.Seq != seq || c.ID != w.ID || c.Kind != w.Kind || c.Tenant != w.Tenant || !c.At.Equal(w.At) || len(c.Attrs) != len(w.Attrs) {
			t.Fatalf("stream message %d: %+v (%v), want the log's %+v", seq, c, err, w)
		}
	}
}

// proxy is a TCP relay to the NATS server that the test can cut off (NATS
// "goes away" for the buses connected through it) and restore.
type proxy struct {
	t      *testing.T
	target string
	addr   string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
}

func newProxy(t *testing.T) *proxy {
	t.Helper()
	u, err := url.Parse(natsURL(t))
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{t: t, target: u.Host, conns: map[net.Conn]bool{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.down)
	return p
}

func (p *proxy) url() string { return "nats://" + p.addr }

func (p *proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			d, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[d] = true, true
			p.mu.Unlock()
			go func() { io.Copy(d, c); d.Close(); c.Close() }()
			go func() { io.Copy(c, d); c.Close(); d.Close() }()
		}
	}()
}

// down stops listening and cuts every connection.
func (p *proxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// up listens again, on the same port.
func (p *proxy) up() {
	p.t.Helper()
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatalf("proxy: listen again on %s: %v", p.addr, err)
	}
	p.serve(ln)
}

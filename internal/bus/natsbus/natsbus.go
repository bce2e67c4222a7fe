// Package natsbus is the event bus (bus.Bus) of several zenne instances
// that share one store and one NATS server: every committed change,
// whichever instance committed it, is published once to a JetStream
// stream, in Seq order, and every instance reads all of them from there.
//
// The store's change log stays the source of truth; the stream is an
// ordered copy of it that every instance can follow without polling the
// database, and that keeps changes (MaxAge) after the log was trimmed.
//
// # One message per change, at the change's number
//
// The message with stream sequence n is change n (header Zenne-Seq says so
// again, and readers check it). A read from any Seq is therefore a
// consumer started at that sequence: no index, no search. A stream starts
// at sequence 1; when the log it must copy starts later (a new stream on a
// store whose log was trimmed), the relay purges the empty stream up to
// the first change the log has, which is how NATS 2.9 sets a stream's next
// sequence (2.10's FirstSeq is not needed). When changes were trimmed from
// the log before anyone published them and the stream holds older ones, a
// stub message (header Zenne-Stub: gone, no body) stands for each, so the
// stream keeps its history (beyond 100,000 of them, the purge again). A
// change too large for a NATS message is a stub too (too-large): readers
// take it from the log.
//
// # Relaying: every instance, serialised by the server
//
// There is no elected relay. Each instance publishes its own commits as
// soon as the store reports them (WatchChanges), provided the stream's last
// message is the change just before; a change committed by another
// instance that stays missing from the stream for GapWait (that instance
// crashed between its commit and its publish, or NATS was away) it reads
// from the log and publishes itself. Every publish of change n carries
//
//   - Nats-Expected-Last-Subject-Sequence: n-1 (0 when the stream holds no
//     message): the server stores it only if the stream's last message is
//     change n-1, so changes land in order and none twice, however many
//     instances race. (Not Nats-Expected-Last-Sequence: NATS 2.9 checks
//     that one against a counter a purge does not move; the per-subject
//     check reads the store. The stream has one subject.)
//   - Nats-Msg-Id: n: a repeat within the duplicate window is answered
//     "duplicate" (with the sequence it has) rather than refused, so two
//     instances publishing the same change both succeed.
//
// A refused publish means another instance got there first: the relay
// reads where the stream is and goes on from there. An election (a lease)
// would save those refusals but add a failover delay and a lease to keep
// alive, and the one relay would have to read every instance's changes from
// the database instead of taking its own from memory.
//
// # Reading
//
// Each instance keeps the last Window changes in memory, like bus.Local,
// fed by one ordered consumer on the stream (so many SSE clients and the
// notifier cost one NATS consumer per instance), by its own commits, and by
// reading the log (every Poll, every DegradedPoll while NATS is away). The
// window only takes the change after its last, so whichever source is first
// no change is repeated or skipped. Read serves from the window; older
// changes from the stream (a short-lived consumer), then from the log.
//
// # Durable consumers
//
// The modules keep their own positions where they must survive: the
// notifier its cursor in the store (written with its queue, in one
// transaction), a browser its Last-Event-ID. Since a change's number is its
// stream sequence, resuming is a read from that Seq, which the window, the
// stream or the log answers. A durable JetStream consumer per module would
// be a second cursor that could disagree with the one in the store, and
// server state per module and instance, for nothing the Seq does not give.
//
// # NATS away
//
// The connection reconnects by itself. Meanwhile Read goes on serving: an
// instance's own commits enter its window at once, the others' come from
// the log every DegradedPoll. Once NATS is back the relays publish what the
// stream lacks, from memory or the log; the consumer resumes, and what the
// window already has it skips. Ping reports the outage for readiness.
//
// The log must keep a change until it is in the stream: trimming it past
// Durable() while NATS is away makes the stream skip those changes (readers
// then get store.ErrChangesGone for them once the log no longer has them).
package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/zenne-city/zenne/internal/bus"
	"github.com/zenne-city/zenne/internal/store"
	"github.com/zenne-city/zenne/internal/store/codec"
)

var _ bus.Bus = (*Bus)(nil)

// Options configure a Bus. Every instance sharing a store must use the same
// Stream, Subject and limits (the last one started sets the limits).
type Options struct {
	// URL is the NATS server (nats://host:4222; several, comma-separated).
	URL string
	// Stream is the JetStream stream's name (default DefaultStream); it is
	// created if missing. Subject is its one subject (default Stream +
	// ".changes").
	Stream  string
	Subject string
	// Log is the store's change log: what is relayed, and what is read
	// while NATS is away or the stream no longer has a change. Required.
	Log store.ChangeLog
	// Window is how many recent changes are kept in memory (default
	// bus.DefaultWindow).
	Window int
	// MaxAge and MaxBytes limit what the stream keeps (defaults 24 h and
	// no byte limit); the oldest changes go first.
	MaxAge   time.Duration
	MaxBytes int64
	// Replicas is the stream's replica count in a NATS cluster (default 1).
	Replicas int
	// Duplicates is the stream's duplicate window (default 2 min, at most
	// MaxAge).
	Duplicates time.Duration
	// Poll is how often the log is read while NATS works (default 1 s): it
	// finds changes another instance committed but did not publish.
	// DegradedPoll is how often while NATS is away (default 100 ms): it
	// is then how other instances' changes arrive.
	Poll         time.Duration
	DegradedPoll time.Duration
	// GapWait is how long a change committed by another instance may stay
	// missing from the stream before this one publishes it from the log
	// (default 250 ms).
	GapWait time.Duration
	Logger  *slog.Logger
	// NATS are more connection options (credentials, TLS, ...). Handlers
	// set here replace the bus's own (which log and hurry recovery).
	NATS []nats.Option
}

// DefaultStream is the stream's name unless Options say otherwise.
const DefaultStream = "ZENNE_CHANGES"

const (
	hdrSeq     = "Zenne-Seq"  // the change's Seq: must equal the stream sequence
	hdrStub    = "Zenne-Stub" // the message holds no change: read it from the log
	stubLarge  = "too-large"  // the change does not fit in a NATS message
	stubGone   = "gone"       // trimmed from the log before it was published
	relayBatch = 512          // changes published before waiting for their acks
	readBatch  = 1000         // changes read from the log at once
	pendingMax = 8192         // own commits kept for publishing; the log has the rest
	fillMax    = 100_000      // most "gone" stubs published to keep a stream's history across a gap
)

// Bus is the NATS JetStream bus. It implements bus.Bus.
type Bus struct {
	o      Options
	log    store.ChangeLog
	logger *slog.Logger
	nc     *nats.Conn
	js     jetstream.JetStream

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once

	mu      sync.Mutex
	ring    []store.Change // the window: the most recent changes, a circular buffer
	head    int            // index of the oldest in ring
	n       int            // how many ring holds
	first   uint64         // Seq of the oldest held (when n > 0)
	last    atomic.Uint64  // Seq of the newest the window took (or skipped)
	wake    chan struct{}  // closed when the window moves
	pending []store.Change // own commits not yet known to be in the stream, in order
	iter    jetstream.MessagesContext
	closed  bool

	kick       chan struct{} // wakes the relay
	poke       chan struct{} // wakes the poller
	streamSeen atomic.Uint64 // highest sequence the consumer got from the stream
	logSeen    atomic.Uint64 // highest Seq the poller read from the log
	consuming  atomic.Bool   // the consumer follows the stream
	relayErr   atomic.Pointer[error]
	consumeErr atomic.Pointer[error]
	published  atomic.Uint64 // Durable(): changes up to it are in the stream (or never will be)
	trimWarned atomic.Bool   // the log lost changes while NATS was away (warned once per outage)
	ready      atomic.Bool   // setUp checked the stream: it may be read and written
	resync     atomic.Bool   // reconnected: the relay reads the stream's state again

	r relayState // the relay goroutine's (and Close's, after it ended)
}

// New connects to NATS, creates or updates the stream, and starts relaying
// and following. If NATS cannot be reached New still succeeds: the bus
// serves from the log and connects when NATS is back. It fails when the
// stream cannot be set up or holds another store's changes.
func New(ctx context.Context, o Options) (*Bus, error) {
	if o.Log == nil {
		return nil, errors.New("natsbus: no change log")
	}
	if o.URL == "" {
		return nil, errors.New("natsbus: no NATS URL")
	}
	if o.Stream == "" {
		o.Stream = DefaultStream
	}
	if o.Subject == "" {
		o.Subject = o.Stream + ".changes"
	}
	if o.Window <= 0 {
		o.Window = bus.DefaultWindow
	}
	if o.MaxAge <= 0 {
		o.MaxAge = 24 * time.Hour
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = -1
	}
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.Duplicates <= 0 {
		o.Duplicates = 2 * time.Minute
	}
	o.Duplicates = min(o.Duplicates, o.MaxAge)
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.DegradedPoll <= 0 {
		o.DegradedPoll = 100 * time.Millisecond
	}
	if o.GapWait <= 0 {
		o.GapWait = 250 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	b := &Bus{o: o, log: o.Log, logger: o.Logger.With("bus", "nats", "stream", o.Stream),
		ring: make([]store.Change, o.Window), wake: make(chan struct{}),
		kick: make(chan struct{}, 1), poke: make(chan struct{}, 1)}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.last.Store(o.Log.LastChange())

	opts := []nats.Option{
		nats.Name("zenne"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		// Connect in the background if NATS is away at start.
		nats.RetryOnFailedConnect(true),
		// Publishing while disconnected fails at once instead of being
		// buffered: the relay publishes again from memory or the log.
		nats.ReconnectBufSize(-1),
		nats.ConnectHandler(func(*nats.Conn) { b.logger.Info("natsbus: connected to NATS"); b.nudge() }),
		nats.ReconnectHandler(func(*nats.Conn) {
			b.logger.Info("natsbus: reconnected to NATS")
			b.trimWarned.Store(false)
			b.resync.Store(true) // the stream moved on meanwhile
			b.nudge()
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if b.ctx.Err() == nil && err != nil { // nil: closed by Close
				b.logger.Warn("natsbus: disconnected from NATS; serving changes from the store's log until it is back", "err", err)
			}
			b.nudge()
		}),
	}
	nc, err := nats.Connect(o.URL, append(opts, o.NATS...)...)
	if err != nil {
		return nil, fmt.Errorf("natsbus: connect to NATS: %w", err)
	}
	b.nc = nc
	if b.js, err = jetstream.New(nc, jetstream.WithPublishAsyncTimeout(10*time.Second)); err != nil {
		nc.Close()
		return nil, fmt.Errorf("natsbus: %w", err)
	}
	if nc.IsConnected() {
		ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
		tip, err := b.setUp(ictx)
		cancel()
		if err != nil {
			b.cancel()
			nc.Close()
			return nil, err
		}
		if tip > b.last.Load() {
			b.last.Store(tip)
		}
	} else {
		b.logger.Warn("natsbus: NATS is not reachable; serving changes from the store's log until it is")
	}

	o.Log.WatchChanges(b.onCommit)
	// Up to the log's end before anyone asks for Last: LastChange may be
	// only this process's (PostgreSQL), and a notifier whose cursor is
	// past Last would start over from it.
	b.pollOnce()
	b.wg.Add(3)
	go b.relay()
	go b.consume()
	go b.poll()
	return b, nil
}

// setUp creates or updates the stream and checks that it holds this store's
// changes. It returns the stream's last sequence. Until it succeeded the
// bus neither reads nor writes the stream.
func (b *Bus) setUp(ctx context.Context) (uint64, error) {
	s, err := b.js.CreateOrUpdateStream(ctx, b.streamConfig())
	if err != nil {
		return 0, fmt.Errorf("natsbus: create or update stream %s: %w", b.o.Stream, err)
	}
	st := s.CachedInfo().State
	if st.LastSeq == 0 {
		b.ready.Store(true)
		return 0, nil
	}
	// The stream's last change must be the log's change of that number,
	// or the stream belongs to another store (or the database was restored
	// to an earlier state): its changes would be taken for this store's.
	var sc *store.Change
	if st.Msgs > 0 {
		if m, err := s.GetMsg(ctx, st.LastSeq); err == nil {
			if c, ok := decodeMsg(st.LastSeq, m.Header, m.Data); ok {
				sc = &c
			}
		} else if !errors.Is(err, jetstream.ErrMsgNotFound) {
			return 0, fmt.Errorf("natsbus: read stream %s: %w", b.o.Stream, err)
		}
	}
	cs, err := b.log.Changes(ctx, st.LastSeq-1, 1)
	switch {
	case errors.Is(err, store.ErrChangesGone):
		b.ready.Store(true)
		return st.LastSeq, nil // trimmed: the log went past it
	case err != nil:
		return 0, fmt.Errorf("natsbus: read the change log: %w", err)
	case len(cs) == 0:
		return 0, fmt.Errorf("natsbus: stream %s holds changes up to %d but the store's change log ends before: "+
			"the stream belongs to another store, or the database was restored from a backup; "+
			"delete the stream (nats stream rm %s) or name another one", b.o.Stream, st.LastSeq, b.o.Stream)
	case sc != nil && !sameChange(sc, &cs[0]):
		return 0, fmt.Errorf("natsbus: stream %s holds a change %d (%s %q at %s) that is not the store's (%s %q at %s): "+
			"the stream belongs to another store, or the database was restored from a backup; "+
			"delete the stream (nats stream rm %s) or name another one", b.o.Stream, st.LastSeq,
			sc.Kind, sc.ID, sc.At.Format(time.RFC3339Nano), cs[0].Kind, cs[0].ID, cs[0].At.Format(time.RFC3339Nano), b.o.Stream)
	}
	b.ready.Store(true)
	return st.LastSeq, nil
}

func sameChange(a, b *store.Change) bool {
	return a.Seq == b.Seq && a.Tenant == b.Tenant && a.ID == b.ID && a.Kind == b.Kind && a.At.Equal(b.At)
}

func (b *Bus) streamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        b.o.Stream,
		Description: "zenne: committed changes; the message with sequence n is change n",
		Subjects:    []string{b.o.Subject},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		Storage:     jetstream.FileStorage,
		MaxAge:      b.o.MaxAge,
		MaxBytes:    b.o.MaxBytes,
		MaxMsgs:     -1,
		MaxMsgSize:  -1,
		Replicas:    b.o.Replicas,
		Duplicates:  b.o.Duplicates,
	}
}

// nudge wakes the relay and the poller (the connection changed).
func (b *Bus) nudge() {
	for _, c := range []chan struct{}{b.kick, b.poke} {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

func (b *Bus) kickRelay() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// Close stops relaying and following, publishes this instance's last
// commits if it can (so the others need not wait GapWait and read them
// from the log), and closes the connection. It does not close the log.
func (b *Bus) Close() error {
	b.closeOnce.Do(func() {
		b.mu.Lock()
		b.closed = true
		it := b.iter
		b.mu.Unlock()
		b.cancel()
		if it != nil {
			it.Stop()
		}
		b.wg.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		for range 8 {
			b.mu.Lock()
			left := len(b.pending)
			b.mu.Unlock()
			if left == 0 || !b.nc.IsConnected() || ctx.Err() != nil {
				break
			}
			b.relayStep(ctx)
		}
		cancel()
		b.nc.Close()
	})
	return nil
}

// Last implements bus.Bus.
func (b *Bus) Last() uint64 { return b.last.Load() }

// Durable is the Seq up to which every change is in the stream (or was
// skipped by it): the log may be trimmed up to here (and the notifier's
// cursor) without the stream missing anything.
func (b *Bus) Durable() uint64 { return b.published.Load() }

// Ping reports whether the bus works fully: connected to NATS, the stream
// there, relaying and following it. When it fails the bus still serves,
// from the store's log.
func (b *Bus) Ping(ctx context.Context) error {
	if !b.nc.IsConnected() {
		return fmt.Errorf("natsbus: not connected to NATS (%s); changes are read from the store's log", b.nc.Status())
	}
	if e := b.relayErr.Load(); e != nil {
		return *e
	}
	if e := b.consumeErr.Load(); e != nil {
		return *e
	}
	// A request in flight when the connection drops gets no answer.
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := b.js.Stream(ctx, b.o.Stream); err != nil {
		return fmt.Errorf("natsbus: stream %s: %w", b.o.Stream, err)
	}
	return nil
}

// degraded: NATS does not deliver changes now; the log must.
func (b *Bus) degraded() bool {
	return !b.nc.IsConnected() || !b.consuming.Load() || b.relayErr.Load() != nil || b.consumeErr.Load() != nil
}

func setErr(p *atomic.Pointer[error], err error) {
	if err == nil {
		p.Store(nil)
	} else {
		p.Store(&err)
	}
}

// Read implements bus.Bus.
func (b *Bus) Read(ctx context.Context, after uint64, max int) ([]store.Change, error) {
	if max <= 0 {
		return nil, nil
	}
	for {
		b.mu.Lock()
		last := b.last.Load()
		if after < last {
			if b.n > 0 && after+1 >= b.first {
				out := make([]store.Change, 0, min(max, int(last-after)))
				for i := int(after + 1 - b.first); i < b.n && len(out) < max; i++ {
					out = append(out, b.ring[(b.head+i)%len(b.ring)])
				}
				b.mu.Unlock()
				return out, nil
			}
			// Before the window: from the stream or the log, no further
			// than Last (what follows is not announced yet).
			b.mu.Unlock()
			cs, err := b.readOld(ctx, after, int(min(uint64(max), last-after)))
			if err != nil || len(cs) > 0 {
				return cs, err
			}
			// Neither has it yet (the log has not caught up with what this
			// instance knows): try again shortly.
			if !sleep(ctx, b.o.DegradedPoll) {
				return nil, ctx.Err()
			}
			continue
		}
		wake := b.wake
		b.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// readOld reads changes older than the window: from the stream, which keeps
// them longest, else from the log.
func (b *Bus) readOld(ctx context.Context, after uint64, max int) ([]store.Change, error) {
	var streamErr error
	switch {
	case !b.nc.IsConnected():
		streamErr = errors.New("not connected to NATS")
	case !b.ready.Load():
		streamErr = errors.New("the stream is not set up yet")
	default:
		cs, err := b.readStream(ctx, after, max)
		if err == nil && len(cs) > 0 {
			return b.topUp(ctx, cs, max), nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		streamErr = err
	}
	cs, err := b.log.Changes(ctx, after, max)
	if errors.Is(err, store.ErrChangesGone) && streamErr != nil && !errors.Is(streamErr, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("natsbus: change %d is no longer in the store's log and the stream cannot be read: %w", after+1, streamErr)
	}
	return cs, err
}

// topUp adds to what the stream gave (it ends where the relay got to, or
// before a change it holds no copy of) what follows, from the window or
// else the log, up to max and Last.
func (b *Bus) topUp(ctx context.Context, cs []store.Change, max int) []store.Change {
	next := cs[len(cs)-1].Seq
	b.mu.Lock()
	last := b.last.Load()
	if len(cs) == max || next >= last {
		b.mu.Unlock()
		return cs
	}
	if b.n > 0 && next+1 >= b.first {
		for i := int(next + 1 - b.first); i < b.n && len(cs) < max; i++ {
			cs = append(cs, b.ring[(b.head+i)%len(b.ring)])
		}
		b.mu.Unlock()
		return cs
	}
	b.mu.Unlock()
	more, err := b.log.Changes(ctx, next, int(min(uint64(max-len(cs)), last-next)))
	if err != nil || len(more) == 0 || more[0].Seq != next+1 {
		return cs // the next read gets the rest, or the error
	}
	return append(cs, more...)
}

// readStream reads up to max changes after `after` from the stream, with a
// consumer of its own (these reads are rare: readers far behind). It
// returns none if the stream does not hold change after+1.
func (b *Bus) readStream(ctx context.Context, after uint64, max int) ([]store.Change, error) {
	// A request in flight when the connection drops gets no answer: do
	// not wait for the caller's deadline.
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cons, err := b.js.CreateConsumer(ctx, b.o.Stream, jetstream.ConsumerConfig{
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       after + 1,
		AckPolicy:         jetstream.AckNonePolicy,
		MemoryStorage:     true,
		Replicas:          1,
		InactiveThreshold: time.Minute, // in case the delete below does not happen
	})
	if err != nil {
		return nil, err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = b.js.DeleteConsumer(dctx, b.o.Stream, cons.CachedInfo().Name)
		cancel()
	}()
	batch, err := cons.FetchNoWait(max)
	if err != nil {
		return nil, err
	}
	var out []store.Change
	for {
		select {
		case m, ok := <-batch.Messages():
			if !ok {
				if err := batch.Error(); err != nil && len(out) == 0 {
					return nil, err
				}
				return out, nil
			}
			md, err := m.Metadata()
			if err != nil {
				return out, nil
			}
			seq := md.Sequence.Stream
			c, ok := decodeMsg(seq, m.Headers(), m.Data())
			if !ok || seq != after+1+uint64(len(out)) {
				return out, nil // the rest from the log, or the next read
			}
			out = append(out, c)
			if len(out) == max {
				return out, nil
			}
		case <-ctx.Done():
			if parent.Err() != nil {
				return nil, parent.Err()
			}
			if len(out) == 0 {
				return nil, fmt.Errorf("natsbus: read stream %s: %w", b.o.Stream, ctx.Err())
			}
			return out, nil
		}
	}
}

// decodeMsg is the change a stream message with sequence seq holds; false
// if it holds none (a stub, or not the change numbered seq).
func decodeMsg(seq uint64, h nats.Header, data []byte) (store.Change, bool) {
	if h.Get(hdrSeq) != strconv.FormatUint(seq, 10) || h.Get(hdrStub) != "" {
		return store.Change{}, false
	}
	c, err := codec.DecodeChange(data)
	if err != nil || c.Seq != seq {
		return store.Change{}, false
	}
	return c, true
}

// takeLocked adds c to the window if it is the next change. It reports
// false if c is further on: the changes between must come first.
func (b *Bus) takeLocked(c store.Change) bool {
	last := b.last.Load()
	switch {
	case c.Seq <= last:
		return true // had it
	case c.Seq > last+1:
		return false
	}
	if b.n == 0 {
		b.head, b.first = 0, c.Seq
	}
	if b.n == len(b.ring) {
		b.ring[b.head] = store.Change{}
		b.head = (b.head + 1) % len(b.ring)
		b.first++
		b.n--
	}
	b.ring[(b.head+b.n)%len(b.ring)] = c
	b.n++
	b.last.Store(c.Seq)
	return true
}

func (b *Bus) wakeLocked() {
	close(b.wake)
	b.wake = make(chan struct{})
}

// add puts changes in order into the window; it returns how many it could
// (it stops at a gap).
func (b *Bus) add(cs []store.Change) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	before := b.last.Load()
	i := 0
	for i < len(cs) && b.takeLocked(cs[i]) {
		i++
	}
	if b.last.Load() != before {
		b.wakeLocked()
	}
	return i
}

// skipTo moves the window's end to seq without the changes up to it: they
// are no longer kept anywhere this instance can read.
func (b *Bus) skipTo(seq uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if seq <= b.last.Load() {
		return
	}
	b.n = 0
	b.last.Store(seq)
	b.wakeLocked()
}

// onCommit takes this instance's commits (the store's writer calls it).
func (b *Bus) onCommit(cs []store.Change) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	before := b.last.Load()
	for _, c := range cs {
		c.Before = codec.PriorPart(&c)
		// The window takes it if it follows (always, with one instance);
		// else it comes back from the stream or the log.
		b.takeLocked(c)
		if len(b.pending) < pendingMax {
			b.pending = append(b.pending, c)
		}
	}
	if b.last.Load() != before {
		b.wakeLocked()
	}
	b.mu.Unlock()
	b.kickRelay()
}

// fillFromLog brings the window up to upTo from the log. If the log no
// longer has those changes the window skips them. It reports false if
// the log could not be read.
func (b *Bus) fillFromLog(upTo uint64) bool {
	for {
		after := b.last.Load()
		if after >= upTo {
			return true
		}
		cs, err := b.log.Changes(b.ctx, after, int(min(upTo-after, readBatch)))
		switch {
		case errors.Is(err, store.ErrChangesGone):
			b.logger.Warn("natsbus: changes are in neither the stream nor the store's log; readers skip them", "after", after, "upTo", upTo)
			b.skipTo(upTo)
			return true
		case err != nil:
			if b.ctx.Err() == nil {
				b.logger.Warn("natsbus: read the change log", "err", err)
			}
			return false
		case len(cs) == 0:
			return false
		}
		b.add(cs)
	}
}

// firstKept is the first Seq after `after` that the log still has, or the
// one it will give next if it has none (after+1 is known to be gone).
func (b *Bus) firstKept(ctx context.Context, after uint64) (uint64, error) {
	gone := func(seq uint64) (bool, error) {
		_, err := b.log.Changes(ctx, seq-1, 1)
		if errors.Is(err, store.ErrChangesGone) {
			return true, nil
		}
		return false, err
	}
	lo, step := after+1, uint64(1) // lo is gone
	hi := lo + step
	for {
		g, err := gone(hi)
		if err != nil {
			return 0, err
		}
		if !g {
			break
		}
		lo, step = hi, step*2
		hi = lo + step
	}
	for hi-lo > 1 { // lo gone, hi not
		mid := lo + (hi-lo)/2
		g, err := gone(mid)
		if err != nil {
			return 0, err
		}
		if g {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi, nil
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

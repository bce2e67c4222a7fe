// Package stream serves committed changes as Server-Sent Events at
// GET /api/stream, for the live map and console and for dashboards that
// should not poll.
//
// Query parameters, all optional and combinable (a bad value is a 400
// BadRequestData ProblemDetails, an unknown parameter too):
//
//	type=T1,T2          entity types, short names (core @context) or IRIs
//	id=I1,I2            entity ids
//	idPattern=RE        a regular expression (RE2) over the id
//	bbox=W,S,E,N        the location GeoProperty's bounds meet the box: an
//	                    update's old location counts too (an entity moving
//	                    out is sent), a deleted entity's last one; W > E
//	                    crosses the antimeridian
//	attrs=A1,A2         only changes to these attributes, only these in the
//	                    payload
//	format=keyValues    (default) | normalized | concise
//	tenant=NAME         or the NGSILD-Tenant header: only that tenant's
//	                    changes are ever sent
//	lastEventId=N       or the Last-Event-ID header (which wins): resume
//	                    after event N
//
// The stream starts with "retry: 2000" and, for a new client, the id it
// starts from. Each change is one event:
//
//	id: <seq>
//	event: entityCreated | entityUpdated | entityDeleted
//	data: {"id":..,"type":..,"seq":..,"at":..,"attrs":[..],"entity":{..}}
//
// attrs lists the changed attributes, entity is the entity after the change
// in the format asked (absent for a deletion). Without an id to resume from
// a client gets the changes committed after it connected; with one, every
// change after it, in order, without gaps. When those are no longer kept
// (or the id is unknown) it gets "event: reset" with the id to go on from,
// and should reload its state. Idle streams get a comment every Heartbeat,
// with the id the stream has reached when it filtered changes out.
//
// One hub goroutine reads the event bus in batches and appends them to a
// linked list of batches (nodes). Every client goroutine follows the list
// at its own pace: it filters each batch's events, takes each matching
// event's frame (rendered once per representation and shared by all
// clients) and writes them with one Write and one Flush. The hub never
// waits for a client: one that falls more than Options.ClientBuffer changes
// behind and stops taking them is cut off, and reconnects with
// Last-Event-ID. A client that resumes from an older event reads the bus
// itself until it is close to the hub, then joins it.
package stream

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zenne-city/zenne/internal/api/access"
	"github.com/zenne-city/zenne/internal/auth"
	"github.com/zenne-city/zenne/internal/bus"
	"github.com/zenne-city/zenne/internal/jsonld"
	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store"
)

// Options tune the stream. Zero values take the defaults.
type Options struct {
	// Heartbeat is how often an idle stream gets a comment line, so proxies
	// keep it open (default 15 s).
	Heartbeat time.Duration
	// ClientBuffer is how many changes a client may be behind the newest:
	// a client further behind that takes nothing for a second (its
	// connection does not drain) is cut off (default 4096).
	ClientBuffer int
	// MaxClients bounds the open streams; more are answered 503 with
	// Retry-After (default 10,000).
	MaxClients int
	// BatchDelay is the least time between two batches of the hub: changes
	// that come sooner after a batch wait and go out together in the next
	// one, and clients write once per batch. Changes that come after a quiet
	// spell go out at once (default 5 ms; negative: no batching).
	BatchDelay time.Duration
	// Retry is the reconnection delay the stream asks browsers for
	// (default 2 s).
	Retry time.Duration
}

func (o *Options) defaults() {
	if o.Heartbeat <= 0 {
		o.Heartbeat = 15 * time.Second
	}
	if o.ClientBuffer <= 0 {
		o.ClientBuffer = 4096
	}
	if o.MaxClients <= 0 {
		o.MaxClients = 10000
	}
	if o.BatchDelay == 0 {
		o.BatchDelay = 5 * time.Millisecond
	}
	if o.Retry <= 0 {
		o.Retry = 2 * time.Second
	}
}

const (
	readMax  = 1000    // changes per bus read
	writeMax = 1 << 20 // bytes gathered into one write at most
)

// Handler serves GET /api/stream.
type Handler struct {
	bus  bus.Bus
	core *jsonld.Context
	log  *slog.Logger
	opts Options

	ctx     context.Context // ends with Close
	cancel  context.CancelFunc
	hubDone chan struct{}
	streams sync.WaitGroup
	dropped atomic.Uint64

	mu      sync.Mutex
	closed  bool
	tail    *node  // the next node the hub fills
	last    uint64 // Seq of the last change in the list
	clients map[*client]struct{}
	views   map[string]*view
}

// node is one batch of the hub's list. A node is filled once, then ready is
// closed; its fields never change after that.
type node struct {
	ready  chan struct{}
	events []event
	last   uint64 // Seq the list has reached with this node
	gap    bool   // changes before this node's were lost: clients send reset
	next   *node
}

func newNode() *node { return &node{ready: make(chan struct{})} }

// Stats describe the streams.
type Stats struct {
	Clients int    // open streams
	Dropped uint64 // streams cut off for being too slow
}

// New returns a handler streaming b's changes, compacted with core (the
// core @context), and starts its hub; Close stops it.
func New(b bus.Bus, core *jsonld.Context, log *slog.Logger, opts Options) *Handler {
	opts.defaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &Handler{
		bus: b, core: core, log: log, opts: opts,
		ctx: ctx, cancel: cancel, hubDone: make(chan struct{}),
		tail: newNode(), last: b.Last(),
		clients: map[*client]struct{}{}, views: map[string]*view{},
	}
	go h.run()
	return h
}

// Register adds GET /api/stream to mux; it needs the stream right on the
// tenant (Tenant).
func (h *Handler) Register(mux *access.Mux) {
	mux.HandleFunc("GET /api/stream", auth.PermStream, h.serve)
}

// Tenant is the tenant a stream request reads: the tenant parameter, or the
// NGSILD-Tenant header (EventSource cannot send headers). When both are
// given and differ, the handler refuses the request.
func Tenant(r *http.Request) string {
	if t := r.URL.Query().Get("tenant"); t != "" {
		return t
	}
	return r.Header.Get("NGSILD-Tenant")
}

// Close ends every stream and stops the hub; it returns when they are done.
// Requests after Close are answered 503.
func (h *Handler) Close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	for c := range h.clients {
		c.kick()
	}
	h.mu.Unlock()
	h.cancel()
	<-h.hubDone
	h.streams.Wait()
}

// Stats reports the open streams and how many were cut off.
func (h *Handler) Stats() Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	return Stats{Clients: len(h.clients), Dropped: h.dropped.Load()}
}

// run is the hub: it reads the bus and appends batches to the list.
func (h *Handler) run() {
	defer close(h.hubDone)
	after := h.last
	var published time.Time
	for {
		cs, err := h.bus.Read(h.ctx, after, readMax)
		if err == nil && len(cs) > 0 && len(cs) < readMax {
			if wait := time.Until(published.Add(h.opts.BatchDelay)); wait > 0 {
				cs = h.gather(cs, wait)
			}
		}
		switch {
		case h.ctx.Err() != nil:
			return
		case errors.Is(err, store.ErrChangesGone):
			// The hub fell behind what the bus keeps (it cannot, short of a
			// stall of the whole process): clients start over from now.
			after = h.bus.Last()
			h.log.Warn("stream: changes lost by the hub, clients reset", "seq", after)
			h.publish(nil, after, true)
			continue
		case err != nil:
			h.log.Error("stream: read changes", "err", err)
			select {
			case <-time.After(time.Second):
			case <-h.ctx.Done():
				return
			}
			continue
		case len(cs) == 0:
			continue
		}
		after = cs[len(cs)-1].Seq
		h.publish(cs, after, false)
		published = time.Now()
	}
}

// gather waits and adds what arrived meanwhile to cs.
func (h *Handler) gather(cs []store.Change, wait time.Duration) []store.Change {
	t := time.NewTimer(wait)
	select {
	case <-t.C:
	case <-h.ctx.Done():
		t.Stop()
		return cs
	}
	for len(cs) < readMax {
		last := cs[len(cs)-1].Seq
		if h.bus.Last() <= last {
			break
		}
		more, err := h.bus.Read(h.ctx, last, readMax-len(cs))
		if err != nil || len(more) == 0 {
			break // what we have goes out; the error comes back on the next read
		}
		cs = append(cs, more...)
	}
	return cs
}

// publish appends a batch to the list and cuts off the clients too far behind.
func (h *Handler) publish(cs []store.Change, last uint64, gap bool) {
	evs := make([]event, len(cs))
	for i := range cs {
		evs[i].c = cs[i]
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	n := h.tail
	n.events, n.last, n.gap, n.next = evs, last, gap, newNode()
	h.tail, h.last = n.next, last
	close(n.ready)
	h.cutOffSlow(last)
}

// stallTimeout is how long a client more than ClientBuffer behind may go
// without taking anything before it is cut off.
const stallTimeout = time.Second

// cutOffSlow ends the streams of the clients that cannot keep up (h.mu
// held): those more than ClientBuffer changes behind that took nothing for
// stallTimeout. A client takes changes in writes of up to 1 MiB, so one
// whose connection drains slower than changes come is soon stuck in a write
// that long; a client behind only because a burst came in faster than the
// processors could render it makes progress, and is left alone.
func (h *Handler) cutOffSlow(last uint64) {
	limit := uint64(h.opts.ClientBuffer)
	var now time.Time
	for c := range h.clients {
		if !c.joined {
			continue
		}
		pos := c.pos.Load()
		if last <= pos || last-pos <= limit {
			c.behindAt = time.Time{}
			continue
		}
		if now.IsZero() {
			now = time.Now()
		}
		if c.behindAt.IsZero() || c.behindPos != pos {
			c.behindAt, c.behindPos = now, pos
			continue
		}
		if now.Sub(c.behindAt) < stallTimeout {
			continue
		}
		if c.kick() {
			h.dropped.Add(1)
			h.log.Info("stream: client too slow, cut off", "tenant", c.p.tenant, "behind", last-pos)
		}
	}
}

// client is one open stream.
type client struct {
	p      *params
	view   *view
	pos    atomic.Uint64 // the Seq the client has been sent everything up to
	joined bool          // following the hub's list (guarded by Handler.mu)
	// behindAt is when the hub saw the client more than ClientBuffer behind
	// at behindPos (zero: it was not); guarded by Handler.mu.
	behindAt  time.Time
	behindPos uint64
	cancel    context.CancelFunc

	mu     sync.Mutex
	rc     *http.ResponseController
	alive  bool // the handler runs: rc may be used
	kicked bool
}

// kick ends the stream: its context ends and a write it is blocked in fails.
// It reports whether this call did it.
func (c *client) kick() bool {
	c.cancel()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.kicked {
		return false
	}
	c.kicked = true
	if c.alive {
		c.rc.SetWriteDeadline(time.Now())
	}
	return true
}

// serve answers GET /api/stream.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request) {
	p, err := parseParams(r.URL.Query(), r.Header, h.core)
	if err != nil {
		writeProblem(w, ngsild.AsError(err))
		return
	}
	rc := http.NewResponseController(w)
	// A stream outlives any server write timeout.
	if err := rc.SetWriteDeadline(time.Time{}); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	c := &client{p: p, cancel: cancel, rc: rc, alive: true}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		unavailable(w, "the server is shutting down")
		return
	}
	if len(h.clients) >= h.opts.MaxClients {
		h.mu.Unlock()
		unavailable(w, "too many open streams; retry later")
		return
	}
	h.streams.Add(1)
	defer h.streams.Done()
	h.clients[c] = struct{}{}
	c.view = h.internView(p)
	h.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.alive = false
		c.mu.Unlock()
		h.mu.Lock()
		delete(h.clients, c)
		h.releaseView(c.view)
		h.mu.Unlock()
	}()

	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	if p.tenant != "" {
		hd.Set("NGSILD-Tenant", p.tenant)
	}
	w.WriteHeader(http.StatusOK)
	s := &sender{h: h, c: c, w: w, ctx: ctx}
	if err := s.run(); err != nil && ctx.Err() == nil && h.ctx.Err() == nil {
		h.log.Debug("stream ended", "tenant", p.tenant, "err", err)
	}
}

// internView returns the shared view p asks for (h.mu held).
func (h *Handler) internView(p *params) *view {
	k := viewKey(p)
	v := h.views[k]
	if v == nil {
		v = &view{key: k, format: p.format, attrs: p.attrSet}
		h.views[k] = v
	}
	v.refs++
	return v
}

func (h *Handler) releaseView(v *view) {
	if v.refs--; v.refs == 0 {
		delete(h.views, v.key)
	}
}

// join makes c follow the list from its tail if c, at pos, is less than half
// its buffer behind the hub, or at once (force: c is then where the hub is,
// or at pos if that is further). It returns the node to follow and the Seq
// the list has reached before it (base).
func (h *Handler) join(c *client, pos uint64, force bool) (*node, uint64, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if force {
		pos = max(pos, h.last)
	} else if h.last > pos && h.last-pos > uint64(h.opts.ClientBuffer/2) {
		return nil, h.last, false
	}
	c.pos.Store(pos)
	c.joined = true
	return h.tail, h.last, true
}

// sender writes one client's stream.
type sender struct {
	h   *Handler
	c   *client
	w   http.ResponseWriter
	ctx context.Context
	buf []byte
	pos uint64 // everything up to here was sent (or filtered out)
	id  uint64 // the last id: line written (0: none)
}

func (s *sender) run() error {
	h, p := s.h, s.c.p
	var n *node
	s.buf = append(s.buf, "retry: "...)
	s.buf = strconv.AppendInt(s.buf, s.h.opts.Retry.Milliseconds(), 10)
	s.buf = append(s.buf, '\n')
	if !p.resume {
		// Only new changes: those after the bus's end once the client
		// follows the list (the list holds every change after base).
		var base uint64
		n, base, _ = h.join(s.c, 0, true)
		s.pos = max(base, h.bus.Last())
		s.c.pos.Store(s.pos)
		// The id lets a browser that got nothing before losing the
		// connection resume from here.
		s.buf = s.appendID(s.buf, s.pos)
	}
	s.buf = append(s.buf, '\n')
	if err := s.flush(); err != nil {
		return err
	}
	if p.resume {
		var err error
		if n, err = s.catchUp(p.after); err != nil {
			return err
		}
	}
	return s.follow(n)
}

// catchUp sends the changes after `after` from the bus until the client is
// close enough to join the hub; it returns the node to follow.
func (s *sender) catchUp(after uint64) (*node, error) {
	h := s.h
	s.pos = after
	if after > h.bus.Last() {
		// An id this bus never gave (another store, or a restart on a new one).
		s.pos = h.bus.Last()
		s.buf = resetFrame(s.buf, s.pos)
		s.id = s.pos
		if err := s.flush(); err != nil {
			return nil, err
		}
	}
	for {
		n, base, ok := h.join(s.c, s.pos, false)
		if ok {
			// Joined: the node has what follows base; send what lies between.
			return n, s.readUpTo(base, true)
		}
		if err := s.readUpTo(base, false); err != nil {
			return nil, err
		}
	}
}

// readUpTo sends changes from the bus after s.pos up to base: all of them
// when joined, one read's worth otherwise. Changes no longer kept make it
// send a reset and go on from the bus's end.
func (s *sender) readUpTo(base uint64, joined bool) error {
	for s.pos < base {
		cs, err := s.h.bus.Read(s.ctx, s.pos, int(min(uint64(readMax), base-s.pos)))
		if errors.Is(err, store.ErrChangesGone) {
			s.pos = max(base, s.h.bus.Last())
			s.buf = resetFrame(s.buf, s.pos)
			s.id = s.pos
			s.c.pos.Store(s.pos)
			return s.flush()
		}
		if err != nil {
			return err
		}
		for i := range cs {
			if cs[i].Seq > base {
				// Past base (the log had gaps): the list, or the next
				// read once joined, has it.
				s.pos = base
				break
			}
			s.add(&event{c: cs[i]})
			s.pos = cs[i].Seq
		}
		s.c.pos.Store(s.pos)
		if err := s.flush(); err != nil {
			return err
		}
		if !joined {
			return nil
		}
	}
	return nil
}

// add appends e's frame if the client wants it.
func (s *sender) add(e *event) {
	if !s.c.p.match(e) {
		return
	}
	if f := e.frame(s.c.view, s.h.core); f != nil {
		s.buf = append(s.buf, f...)
		s.id = e.c.Seq
	}
}

// follow sends the hub's batches from n on.
func (s *sender) follow(n *node) error {
	hb := time.NewTicker(s.h.opts.Heartbeat)
	defer hb.Stop()
	for {
		select {
		case <-n.ready:
		case <-hb.C:
			s.buf = append(s.buf, ":\n"...)
			if s.pos > s.id {
				// Filtered-out changes move the client on too: a reconnection
				// starts here rather than at its last matching event.
				s.buf = s.appendID(s.buf, s.pos)
			}
			s.buf = append(s.buf, '\n')
			if err := s.flush(); err != nil {
				return err
			}
			continue
		case <-s.ctx.Done():
			return s.ctx.Err()
		case <-s.h.ctx.Done():
			return nil
		}
		// Take every batch that is ready, up to one write's worth.
	batches:
		for len(s.buf) < writeMax {
			select {
			case <-n.ready:
			default:
				break batches
			}
			if n.gap {
				s.buf = resetFrame(s.buf, n.last)
				s.id = n.last
			}
			for i := range n.events {
				if e := &n.events[i]; e.c.Seq > s.pos {
					s.add(e)
				}
			}
			s.pos = max(s.pos, n.last)
			n = n.next
		}
		s.c.pos.Store(s.pos)
		if len(s.buf) > 0 {
			if err := s.flush(); err != nil {
				return err
			}
		}
	}
}

func (s *sender) appendID(b []byte, seq uint64) []byte {
	s.id = seq
	b = append(b, "id: "...)
	b = strconv.AppendUint(b, seq, 10)
	return append(b, '\n')
}

// flush writes the gathered frames and flushes them to the client.
func (s *sender) flush() error {
	if len(s.buf) == 0 {
		return nil
	}
	_, err := s.w.Write(s.buf)
	if err == nil {
		err = s.c.rc.Flush()
	}
	if cap(s.buf) > 4*writeMax {
		s.buf = nil
	} else {
		s.buf = s.buf[:0]
	}
	return err
}

func writeProblem(w http.ResponseWriter, e *ngsild.Error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.Status())
	data, _ := ngsild.Marshal(e.Object())
	w.Write(data)
}

func unavailable(w http.ResponseWriter, detail string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Retry-After", "5")
	w.WriteHeader(http.StatusServiceUnavailable)
	data, _ := ngsild.Marshal(ngsild.Object{{Key: "type", Value: "about:blank"},
		{Key: "title", Value: "Service unavailable"}, {Key: "detail", Value: detail}})
	w.Write(data)
}

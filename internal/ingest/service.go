package ingest

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/zenne-city/zenne/internal/core"
	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store"
)

// Options tune the service.
type Options struct {
	// Rate and Burst limit each device's messages (default 10/s, 100).
	Rate  float64
	Burst int
	// Writers is the number of write queues; a device's updates always go
	// through the same one, in order (default 4).
	Writers int
	// MaxBatch is the most entity updates of one write (default 1000).
	MaxBatch int
	// StatusEvery is how often device status and dead letters are saved
	// (default 5 s).
	StatusEvery time.Duration
	Now         func() time.Time
}

func (o *Options) defaults() {
	if o.Rate == 0 {
		o.Rate = 10
	}
	if o.Burst == 0 {
		o.Burst = 100
	}
	if o.Writers == 0 {
		o.Writers = 4
	}
	if o.MaxBatch == 0 {
		o.MaxBatch = 1000
	}
	if o.StatusEvery == 0 {
		o.StatusEvery = 5 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Service receives uplinks (Receiver), maps them with the registry and
// writes them through the broker's batch path, batching the updates of
// concurrent messages into one write per queue.
type Service struct {
	reg    *Registry
	broker *core.Broker
	log    *slog.Logger
	opts   Options
	queues []chan *pending
	seed   maphash.Seed
	status *statusBook

	stop chan struct{}
	// closing is held for writing while Close closes the queues, and for
	// reading while Receive queues: no send on a closed queue.
	closing sync.RWMutex
	closed  bool
	wg      sync.WaitGroup
}

// pending is one accepted uplink waiting for its write.
type pending struct {
	dev   *compiled
	reads []reading
	done  chan error // nil: async
}

// NewService starts the service's writers and status saver; Close stops
// them.
func NewService(reg *Registry, broker *core.Broker, log *slog.Logger, opts Options) *Service {
	opts.defaults()
	s := &Service{reg: reg, broker: broker, log: log, opts: opts, seed: maphash.MakeSeed(),
		status: newStatusBook(opts), stop: make(chan struct{})}
	for range opts.Writers {
		q := make(chan *pending, 4*opts.MaxBatch)
		s.queues = append(s.queues, q)
		s.wg.Go(func() { s.writer(q) })
	}
	s.wg.Go(s.saver)
	return s
}

// Registry returns the service's registry.
func (s *Service) Registry() *Registry { return s.reg }

// Close writes what is queued and stops.
func (s *Service) Close() error {
	select {
	case <-s.stop:
		return nil
	default:
	}
	close(s.stop)
	s.closing.Lock()
	s.closed = true
	for _, q := range s.queues {
		close(q)
	}
	s.closing.Unlock()
	s.wg.Wait()
	return nil
}

// Receive implements Receiver.
func (s *Service) Receive(ctx context.Context, u *Uplink) (err error) {
	now := s.opts.Now()
	if u.Received.IsZero() {
		u.Received = now
	}
	if len(u.Payload) > MaxPayload {
		return Reject(http.StatusRequestEntityTooLarge, "payload of %d bytes: send at most %d", len(u.Payload), MaxPayload)
	}
	ge, ok := s.reg.group(u.APIKey)
	if !ok {
		s.reg.reloadIfStale(ctx, time.Second)
		if ge, ok = s.reg.group(u.APIKey); !ok {
			s.status.unknown()
			return Reject(http.StatusUnauthorized, "unknown apikey: register the service group first (POST /iot/services)")
		}
	}
	if u.Tenant != "" && u.Tenant != ge.tenant || u.Tenant == "" && u.Transport != "mqtt" && ge.tenant != "" {
		return Reject(http.StatusUnauthorized, "the apikey belongs to another tenant")
	}
	at := u.Received
	var objs []map[string]any
	var perr error
	if u.Format == TTS {
		var fields map[string]any
		var ts string
		u.DeviceID, fields, ts, perr = parseTTS(u.Payload)
		if perr == nil {
			objs = []map[string]any{fields}
			if ts != "" {
				if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
					at = t.UTC()
				}
			}
		}
	}
	c := s.reg.lookup(ge.tenant, u.DeviceID)
	if c == nil {
		s.reg.reloadIfStale(ctx, time.Second)
		c = s.reg.lookup(ge.tenant, u.DeviceID)
	}
	if c == nil || c.apiKey != u.APIKey {
		rej := Reject(http.StatusNotFound, "unknown device %q for this apikey: register it (POST /iot/devices)", u.DeviceID)
		s.status.deadLetter(devKey{ge.tenant, "group:" + u.APIKey}, u, rej)
		return rej
	}
	k := devKey{c.tenant, c.id}
	defer func() {
		if err != nil {
			s.status.deadLetter(k, u, AsRejection(err))
		}
	}()
	if u.Transport != "mqtt" && !keyMatches(c.keyHash, u.DeviceKey) {
		return Reject(http.StatusUnauthorized, "wrong or missing device key (X-Device-Key)")
	}
	st := s.status.state(k) // once: the book's lock is shared by every device
	if !st.limiter.AllowN(now, 1) {
		return &Rejection{Status: http.StatusTooManyRequests, RetryAfter: time.Second,
			Reason: "too many messages from this device: slow down"}
	}
	if perr != nil {
		return perr
	}
	if objs == nil {
		if objs, err = decodeJSON(u.Payload); err != nil {
			return err
		}
	}
	reads, err := c.readings(objs, at, now)
	if err != nil {
		return err
	}
	p := &pending{dev: c, reads: reads}
	if !u.Async {
		p.done = make(chan error, 1)
	}
	if err := s.enqueue(ctx, p); err != nil {
		return err
	}
	st.seen(now, u.Transport)
	if p.done == nil {
		return nil
	}
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// enqueue puts p on its entity's queue, waiting while the queue is full.
func (s *Service) enqueue(ctx context.Context, p *pending) error {
	s.closing.RLock()
	defer s.closing.RUnlock()
	if s.closed {
		return Reject(http.StatusServiceUnavailable, "the server is stopping: send the message again")
	}
	q := s.queues[maphash.String(s.seed, p.dev.tenant+"\x00"+p.dev.entityID)%uint64(len(s.queues))]
	select {
	case q <- p:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.stop:
		return Reject(http.StatusServiceUnavailable, "the server is stopping: send the message again")
	}
}

// writer writes a queue's updates: what has accumulated, up to MaxBatch
// entity updates, in one batch per tenant. An entity updated twice goes to
// the next write, so every reading reaches history in order.
func (s *Service) writer(q chan *pending) {
	var carry []*pending
	for {
		var batch []*pending
		if len(carry) > 0 {
			batch, carry = carry, nil
		} else {
			p, ok := <-q
			if !ok {
				return
			}
			batch = append(batch, p)
		}
	fill:
		for len(batch) < s.opts.MaxBatch {
			select {
			case p, ok := <-q:
				if !ok {
					break fill
				}
				batch = append(batch, p)
			default:
				break fill
			}
		}
		seen := make(map[devKey]bool, len(batch))
		now := batch[:0:0]
		for _, p := range batch {
			k := devKey{p.dev.tenant, p.dev.entityID}
			if seen[k] {
				carry = append(carry, p)
				continue
			}
			seen[k] = true
			now = append(now, p)
		}
		s.write(now)
	}
}

// write stores a batch of updates of distinct entities.
func (s *Service) write(batch []*pending) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	byTenant := map[string][]*pending{}
	for _, p := range batch {
		byTenant[p.dev.tenant] = append(byTenant[p.dev.tenant], p)
	}
	for tenant, ps := range byTenant {
		// Readings before the newest go to history with their own times.
		for _, p := range ps {
			if len(p.reads) > 1 {
				if err := s.recordOlder(ctx, tenant, p); err != nil {
					s.finish(p, err)
					p.reads = nil
				}
			}
		}
		var ms []core.Measurement
		var owners []*pending
		for _, p := range ps {
			if len(p.reads) == 0 {
				continue
			}
			newest := p.reads[len(p.reads)-1]
			ms = append(ms, core.Measurement{Static: p.dev.static,
				Reading: &ngsild.Entity{ID: p.dev.entityID, Types: []string{p.dev.entityType}, Attrs: newest.attrs}})
			owners = append(owners, p)
		}
		if len(ms) == 0 {
			continue
		}
		res, err := s.broker.BatchMeasure(ctx, tenant, ms)
		if err != nil {
			for _, p := range owners {
				s.finish(p, err)
			}
			continue
		}
		failed := map[string]error{}
		for _, be := range res.Errors {
			failed[be.EntityID] = Reject(http.StatusUnprocessableEntity, "the update of %s was refused: %v", be.EntityID, be.Err)
		}
		for _, p := range owners {
			s.finish(p, failed[p.dev.entityID])
		}
	}
}

// recordOlder records every reading but the newest in history.
func (s *Service) recordOlder(ctx context.Context, tenant string, p *pending) error {
	attrs := map[string][]*ngsild.Attribute{}
	for _, r := range p.reads[:len(p.reads)-1] {
		for name, insts := range r.attrs {
			attrs[name] = append(attrs[name], insts...)
		}
	}
	_, err := s.broker.RecordHistory(ctx, tenant, p.dev.entityID, []string{p.dev.entityType}, attrs)
	return err
}

// finish reports a write's outcome to its sender, or counts and logs it.
func (s *Service) finish(p *pending, err error) {
	k := devKey{p.dev.tenant, p.dev.id}
	if err != nil {
		s.status.failed(k)
		var rej *Rejection
		if p.done == nil && !errors.As(err, &rej) {
			s.log.Warn("devices: a message could not be written", "device", p.dev.id, "err", err)
		}
	}
	if p.done != nil {
		p.done <- err
	}
}

// saver saves device status and dead letters every StatusEvery, and
// reloads the registry as often, so that a registration changed on another
// instance (a device deleted, a key changed) holds here within that time.
func (s *Service) saver() {
	t := time.NewTicker(s.opts.StatusEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			s.saveStatus()
			return
		case <-t.C:
			s.saveStatus()
			s.reg.reloadIfStale(context.Background(), s.opts.StatusEvery/2)
		}
	}
}

func (s *Service) saveStatus() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.status.save(ctx, s.reg.st, s.broker); err != nil && !errors.Is(err, context.Canceled) {
		if store.IsUnavailable(err) {
			return // saved at a later tick
		}
		s.log.Warn("devices: saving device status", "err", err)
	}
}

// Status returns a device's counters as this instance knows them.
func (s *Service) Status(tenant, id string) DeviceStatus {
	return s.status.get(devKey{tenant, id})
}

// DeadLetters returns a device's last rejected messages, newest first.
func (s *Service) DeadLetters(ctx context.Context, tenant, id string) ([]DeadLetter, error) {
	return s.status.deadLetters(ctx, s.reg.st, devKey{tenant, id})
}

var _ Receiver = (*Service)(nil)
var _ Authenticator = (*Registry)(nil)

// limiter is a device's message budget.
func newLimiter(o Options) *rate.Limiter { return rate.NewLimiter(rate.Limit(o.Rate), o.Burst) }

// Register registers devices of tenant and writes their Device entities.
func (s *Service) Register(ctx context.Context, tenant string, ds []Device) error {
	cs, err := s.reg.PutDevices(ctx, tenant, ds)
	if err != nil {
		return err
	}
	ents := make([]*ngsild.Entity, len(cs))
	for i, c := range cs {
		ents[i] = registeredEntity(c)
	}
	if _, err := s.broker.BatchUpsert(ctx, tenant, ents, true); err != nil {
		return fmt.Errorf("devices: the devices are registered, but their Device entities could not be written: %w", err)
	}
	return nil
}

// Unregister deletes a device's registration, dead letters and Device
// entity; the entity it fed stays.
func (s *Service) Unregister(ctx context.Context, tenant, id string) error {
	if err := s.reg.DeleteDevice(ctx, tenant, id); err != nil {
		return err
	}
	if err := s.broker.DeleteEntity(ctx, tenant, DeviceEntityID(id)); err != nil {
		var ne *ngsild.Error
		if !errors.As(err, &ne) || ne.Type != ngsild.ResourceNotFound {
			return err
		}
	}
	return nil
}

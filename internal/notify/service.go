// Package notify runs NGSI-LD subscriptions: it keeps them (in the store),
// reads every committed change from the bus, matches changes against the
// subscriptions through an index, queues the notifications durably and
// delivers them (HTTP, MQTT) with retries, in order per subscription.
//
// Nothing is lost between a write and its notification: the store logs each
// change in the write's own transaction (store.ChangeLog), and the matcher
// saves how far it read the log in the same transaction as the
// notifications it queued (store.Subscriptions.Enqueue). After a crash it
// reads on from there. A notification leaves the queue only once its
// receiver accepted it or it grew older than Options.MaxAge; one in flight
// at a crash is sent again (its id stays the same, so a receiver can drop
// the repeat).
package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zenne-city/zenne/internal/bus"
	"github.com/zenne-city/zenne/internal/jsonld"
	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/ngsild/subscription"
	"github.com/zenne-city/zenne/internal/notify/endpoint"
	"github.com/zenne-city/zenne/internal/store"
)

// Store is what the service needs from the store.
type Store interface {
	store.Subscriptions
	store.ChangeLog
	Query(ctx context.Context, tenant string, q *store.Query) (*store.QueryResult, error)
}

// Resolver resolves a subscription's @context (implemented by *jsonld.Resolver).
type Resolver interface {
	Resolve(ctx context.Context, raw any) (*jsonld.Context, error)
	Core() *jsonld.Context
}

// Sender delivers one notification (implemented by *endpoint.Sender).
type Sender interface {
	Send(ctx context.Context, m *endpoint.Message) error
}

// Options tune the service.
type Options struct {
	// MaxAge is how long a notification waits for its receiver before it
	// is dropped (default 24 hours). A drop counts as a failure.
	MaxAge time.Duration
	// RetryMin and RetryMax bound the pause between attempts, which
	// doubles from RetryMin (defaults 1 second and 5 minutes).
	RetryMin, RetryMax time.Duration
	// MaxEntities is the most entities one notification carries (default 100).
	MaxEntities int
	// Concurrency is how many notifications are sent at once (default 256).
	Concurrency int
	// MemQueue is how many queued notifications of one subscription are
	// kept in memory; more wait in the store only (default 1,000).
	MemQueue int
	// Lease, when several instances share one store and bus, makes this
	// service run the subscriptions (match, deliver, periodic
	// notifications) only while it holds the store's notifier lease; the
	// other instances keep their view of the subscriptions fresh from the
	// store every Refresh, for the API. Nil: this instance runs them.
	Lease store.Leaser
	// Instance names this instance as the lease's holder (default: random).
	Instance string
	// LeaseTTL is how long the lease lasts unrenewed: how long the
	// notifications wait when their instance dies (default 10 s).
	LeaseTTL time.Duration
	// Refresh is how often subscriptions created, changed or deleted on
	// other instances are read from the store (default 1 s).
	Refresh time.Duration
	// TrimFloor, if set, is the oldest change another consumer of the
	// change log may still need after a restart (the alarm rules' saved
	// position): the log is not trimmed past it.
	TrimFloor func(ctx context.Context) (uint64, bool)
	Log       *slog.Logger
	Registry  prometheus.Registerer // nil: metrics are not registered
	Now       func() time.Time
}

func (o *Options) defaults() {
	if o.MaxAge <= 0 {
		o.MaxAge = 24 * time.Hour
	}
	if o.RetryMin <= 0 {
		o.RetryMin = time.Second
	}
	if o.RetryMax <= 0 {
		o.RetryMax = 5 * time.Minute
	}
	if o.MaxEntities <= 0 {
		o.MaxEntities = 100
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 256
	}
	if o.MemQueue <= 0 {
		o.MemQueue = 1000
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Instance == "" {
		o.Instance = newID()
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 10 * time.Second
	}
	if o.Refresh <= 0 {
		o.Refresh = time.Second
	}
}

// leaseName is the store lease the notifying instance holds.
const leaseName = "notifier"

// Service runs the subscriptions of every tenant.
type Service struct {
	st       Store
	bus      bus.Bus
	resolver Resolver
	send     Sender
	opts     Options
	log      *slog.Logger
	m        *metrics

	mu       sync.RWMutex
	entries  map[string]map[string]*entry // tenant -> id -> subscription
	edits    uint64                       // local creations, changes and deletions so far (under mu)
	gone     map[[2]string]uint64         // tenant and id of local deletions -> edits then (under mu)
	index    atomic.Pointer[map[string]*tenantIndex]
	stale    map[string]bool // tenants whose index must be rebuilt (under mu)
	staleAny atomic.Bool

	enqMu  sync.Mutex // Enqueue calls, so the saved cursor never goes back
	cursor uint64     // the change log position saved with the last Enqueue

	sem  chan struct{} // sends in flight
	acks chan int64    // delivered or dropped notifications to remove from the store

	// The service lives from Start to Close (base); it runs the
	// subscriptions while active, always without a lease. ctx is the
	// current activation's, replaced only under mu once the previous
	// one's goroutines (wg) have stopped.
	base       context.Context
	baseCancel context.CancelFunc
	ctx        context.Context
	cancel     context.CancelFunc
	active     atomic.Bool
	wg         sync.WaitGroup // the activation's goroutines
	bg         sync.WaitGroup // the lease and refresh loops
}

// entry is one subscription and its delivery state.
type entry struct {
	tenant string
	sub    atomic.Pointer[subscription.Subscription]
	ctx    atomic.Pointer[jsonld.Context]
	doc    []byte // as stored, to notice changes made by other instances (under Service.mu)
	edit   uint64 // Service.edits when this instance last created or changed it (under Service.mu)

	stamp uint64        // the matcher's dedupe mark (matcher goroutine only)
	from  atomic.Uint64 // changes up to this one came before it was created or resumed

	mu       sync.Mutex
	status   subscription.Status
	dirty    bool                        // status not saved yet
	pending  []*store.QueuedNotification // the first queued notifications, in order
	spilled  bool                        // more are queued in the store than in pending
	spillGen int                         // incremented each time one is not kept in memory
	lastID   int64                       // the last notification id taken into pending
	queued   int                         // queued in all
	running  bool                        // a delivery goroutine works on it
	deleted  bool
	timer    *time.Timer // periodic notifications
}

// New loads the subscriptions; Start runs them.
func New(ctx context.Context, st Store, b bus.Bus, r Resolver, send Sender, opts Options) (*Service, error) {
	opts.defaults()
	s := &Service{st: st, bus: b, resolver: r, send: send, opts: opts, log: opts.Log,
		entries: map[string]map[string]*entry{}, stale: map[string]bool{}, sem: make(chan struct{}, opts.Concurrency),
		acks: make(chan int64, 4096)}
	s.m = newMetrics(s, opts.Registry)
	recs, err := st.ListSubscriptions(ctx)
	if err != nil {
		return nil, fmt.Errorf("load subscriptions: %w", err)
	}
	counts, err := st.QueuedCounts(ctx)
	if err != nil {
		return nil, fmt.Errorf("load notification queue: %w", err)
	}
	for _, rec := range recs {
		e, err := s.load(ctx, rec)
		if err != nil {
			// One unreadable subscription must not stop the others.
			s.log.Error("subscription not loaded", "tenant", rec.Tenant, "id", rec.ID, "err", err)
			continue
		}
		if n := counts[rec.Tenant+"\x00"+rec.ID]; n > 0 {
			e.queued, e.spilled = n, true
		}
		s.tenant(rec.Tenant)[rec.ID] = e
	}
	if s.cursor, err = st.NotifierCursor(ctx); err != nil {
		return nil, fmt.Errorf("read notifier cursor: %w", err)
	}
	if s.cursor == 0 || s.cursor > b.Last() {
		// A new store (or one whose log restarted): only what comes next.
		s.cursor = b.Last()
	}
	s.index.Store(&map[string]*tenantIndex{})
	for t := range s.entries {
		s.reindex(t) // built before the first match
	}
	return s, nil
}

func (s *Service) tenant(t string) map[string]*entry {
	m := s.entries[t]
	if m == nil {
		m = map[string]*entry{}
		s.entries[t] = m
	}
	return m
}

// storedSub is how a subscription is kept in the store: its JSON
// representation compacted with its own @context, and that context.
func (s *Service) load(ctx context.Context, rec store.SubscriptionRecord) (*entry, error) {
	var body map[string]any
	if err := json.Unmarshal(rec.Doc, &body); err != nil {
		return nil, err
	}
	raw := body["@context"]
	delete(body, "@context")
	c, err := s.resolve(ctx, raw)
	if err != nil {
		return nil, err
	}
	sub, err := subscription.ParseStored(body, c)
	if err != nil {
		return nil, err
	}
	sub.Context = raw
	e := &entry{tenant: rec.Tenant, doc: rec.Doc}
	e.sub.Store(sub)
	e.ctx.Store(c)
	st, err := decodeStatus(rec.Status)
	if err != nil {
		return nil, err
	}
	e.status = st.Status
	e.from.Store(st.From)
	return e, nil
}

func (s *Service) resolve(ctx context.Context, raw any) (*jsonld.Context, error) {
	if raw == nil {
		return s.resolver.Core(), nil
	}
	return s.resolver.Resolve(ctx, raw)
}

func encodeSub(sub *subscription.Subscription, c *jsonld.Context) ([]byte, error) {
	obj := subscription.Render(sub, subscription.Status{}, subscription.RenderOptions{Compact: c, SysAttrs: true})
	obj.Set("@context", contextOf(sub))
	return ngsild.Marshal(obj)
}

// contextOf is the @context a subscription was created with (the core
// context when none was given).
func contextOf(sub *subscription.Subscription) any {
	if sub.Context == nil {
		return jsonld.CoreContext
	}
	return sub.Context
}

// storedStatus is a subscription's status as stored, with the last change
// before it was created or resumed, so whichever instance notifies starts
// right after it.
type storedStatus struct {
	subscription.Status
	From uint64 `json:"from,omitempty"`
}

// encodeStatus is e's stored status (e.mu held).
func encodeStatus(e *entry) []byte {
	b, _ := json.Marshal(storedStatus{e.status, e.from.Load()}) // plain struct: cannot fail
	return b
}

func decodeStatus(b []byte) (storedStatus, error) {
	var st storedStatus
	if len(b) > 0 {
		if err := json.Unmarshal(b, &st); err != nil {
			return st, fmt.Errorf("status: %w", err)
		}
	}
	return st, nil
}

// reindex marks a tenant's index stale (s.mu held): the matcher rebuilds it
// before it matches the next changes it reads, which are all the changes
// committed after this call. Creating 10,000 subscriptions thus costs a
// few rebuilds, not 10,000.
func (s *Service) reindex(tenant string) {
	s.stale[tenant] = true
	s.staleAny.Store(true)
}

// freshIndex returns the index, rebuilding stale tenants first.
func (s *Service) freshIndex() map[string]*tenantIndex {
	if s.staleAny.Load() {
		s.mu.Lock()
		old := *s.index.Load()
		ix := make(map[string]*tenantIndex, len(old)+len(s.stale))
		for t, x := range old {
			ix[t] = x
		}
		for t := range s.stale {
			ix[t] = buildIndex(sortedEntries(s.entries[t]))
		}
		clear(s.stale)
		s.staleAny.Store(false)
		s.index.Store(&ix)
		s.mu.Unlock()
	}
	return *s.index.Load()
}

// sortedEntries orders a tenant's subscriptions by id, so candidates (and
// so notifications of one change to several subscriptions) come in a
// stable order.
func sortedEntries(m map[string]*entry) []*entry {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	es := make([]*entry, len(ids))
	for i, id := range ids {
		es[i] = m[id]
	}
	return es
}

// Start runs the subscriptions until Close: at once without a lease,
// else while this instance holds the lease.
func (s *Service) Start() {
	s.base, s.baseCancel = context.WithCancel(context.Background())
	if s.opts.Lease == nil {
		s.activate(false)
		return
	}
	s.bg.Add(2)
	go s.lead()
	go s.refresher()
}

// activate runs the subscriptions: the matcher, delivery of what is
// queued, periodic notifications and the background savers. reload first
// takes the queue and the matcher's position from the store, as another
// instance left them.
func (s *Service) activate(reload bool) {
	if reload {
		if err := s.reloadRun(s.base); err != nil {
			s.log.Warn("taking over notifications failed; retrying", "err", err)
			return
		}
	}
	s.mu.Lock()
	s.ctx, s.cancel = context.WithCancel(s.base)
	s.active.Store(true)
	for _, m := range s.entries {
		for _, e := range m {
			s.schedule(e)
			if e.queued > 0 {
				s.wake(e)
			}
		}
	}
	s.mu.Unlock()
	s.wg.Add(3)
	go s.matcher()
	go s.acker()
	go s.saver()
}

// deactivate stops running the subscriptions and waits until every
// delivery has stopped. Notifications not delivered stay queued.
func (s *Service) deactivate() {
	s.mu.Lock()
	s.active.Store(false)
	s.cancel()
	for _, m := range s.entries {
		for _, e := range m {
			e.mu.Lock()
			if e.timer != nil {
				e.timer.Stop()
				e.timer = nil
			}
			e.mu.Unlock()
		}
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// Close stops the service, saving statuses; notifications not delivered
// stay queued for the next start (or the next instance).
func (s *Service) Close() error {
	if s.baseCancel == nil {
		return nil
	}
	if s.opts.Lease != nil {
		s.baseCancel()
		s.bg.Wait() // the lease loop deactivated, saved and released
		return nil
	}
	s.deactivate()
	s.baseCancel()
	return s.saveStatuses(context.Background())
}

// lead runs the subscriptions while this instance holds the notifier
// lease; it saves their statuses when it stops at shutdown.
func (s *Service) lead() {
	defer s.bg.Done()
	store.HoldLease(s.base, s.opts.Lease, leaseName, s.opts.Instance, s.opts.LeaseTTL, s.log, "the subscriptions",
		func() bool { s.activate(true); return s.active.Load() },
		func(final bool) {
			s.deactivate()
			if final {
				if err := s.saveStatuses(context.Background()); err != nil {
					s.log.Warn("saving subscription statuses failed", "err", err)
				}
			}
		})
}

// refresher reads the subscriptions from the store every Refresh, so this
// instance sees what the others created, changed or deleted.
func (s *Service) refresher() {
	defer s.bg.Done()
	tick := time.NewTicker(s.opts.Refresh)
	defer tick.Stop()
	for {
		select {
		case <-s.base.Done():
			return
		case <-tick.C:
		}
		if err := s.refresh(s.base); err != nil && s.base.Err() == nil {
			s.log.Warn("reading subscriptions from the store failed", "err", err)
		}
	}
}

// refresh brings the subscriptions in memory up to what the store holds.
// While not active it also takes their statuses, which the active instance
// saves.
func (s *Service) refresh(ctx context.Context) error {
	// What this instance creates or changes while the list is read is newer
	// than the list: it is neither forgotten nor overwritten.
	s.mu.RLock()
	listed := s.edits
	s.mu.RUnlock()
	recs, err := s.st.ListSubscriptions(ctx)
	if err != nil {
		return err
	}
	// Parse what is new or changed outside the lock (resolving a context
	// may take a while).
	s.mu.RLock()
	var parsed []*entry
	for _, rec := range recs {
		if e := s.entries[rec.Tenant][rec.ID]; e == nil || !bytes.Equal(e.doc, rec.Doc) {
			ne, err := s.load(ctx, rec)
			if err != nil {
				s.log.Error("subscription not loaded", "tenant", rec.Tenant, "id", rec.ID, "err", err)
				continue
			}
			parsed = append(parsed, ne)
		}
	}
	s.mu.RUnlock()
	byKey := make(map[[2]string]*entry, len(parsed))
	for _, ne := range parsed {
		byKey[[2]string{ne.tenant, ne.sub.Load().ID}] = ne
	}
	active := s.active.Load()
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := make(map[[2]string]bool, len(recs))
	for _, rec := range recs {
		k := [2]string{rec.Tenant, rec.ID}
		seen[k] = true
		e := s.entries[rec.Tenant][rec.ID]
		if e != nil && e.edit > listed || s.gone[k] > listed {
			continue // changed or deleted here since the list was read
		}
		ne := byKey[k]
		switch {
		case e == nil && ne != nil: // created elsewhere
			s.tenant(rec.Tenant)[rec.ID] = ne
			s.reindex(rec.Tenant)
			if active {
				s.schedule(ne)
			}
		case e != nil && ne != nil && !bytes.Equal(e.doc, rec.Doc): // changed elsewhere
			e.sub.Store(ne.sub.Load())
			e.ctx.Store(ne.ctx.Load())
			e.doc = rec.Doc
			e.from.Store(max(e.from.Load(), ne.from.Load()))
			s.reindex(rec.Tenant)
			if active {
				s.schedule(e)
				s.wake(e)
			}
		}
		if e != nil && !active {
			if st, err := decodeStatus(rec.Status); err == nil {
				e.mu.Lock()
				e.status = st.Status
				e.mu.Unlock()
				e.from.Store(max(e.from.Load(), st.From))
			}
		}
	}
	for k, n := range s.gone {
		if n <= listed {
			delete(s.gone, k) // the list read after it no longer has it
		}
	}
	for t, m := range s.entries {
		for id, e := range m {
			if !seen[[2]string{t, id}] && e.edit <= listed { // deleted elsewhere
				s.forget(t, id, e)
			}
		}
	}
	return nil
}

// reloadRun takes the notification queue and the matcher's position from
// the store, before this instance starts running the subscriptions.
func (s *Service) reloadRun(ctx context.Context) error {
	if err := s.refresh(ctx); err != nil {
		return err
	}
	counts, err := s.st.QueuedCounts(ctx)
	if err != nil {
		return err
	}
	cursor, err := s.st.NotifierCursor(ctx)
	if err != nil {
		return err
	}
	s.mu.Lock()
	for t, m := range s.entries {
		for id, e := range m {
			e.mu.Lock()
			e.pending, e.lastID = nil, 0
			e.queued = counts[t+"\x00"+id]
			e.spilled = e.queued > 0
			e.mu.Unlock()
		}
	}
	s.mu.Unlock()
	s.enqMu.Lock()
	if cursor > 0 {
		s.cursor = cursor
	}
	s.enqMu.Unlock()
	return nil
}

// SubscriptionView is a subscription with its status, as the API shows it.
type SubscriptionView struct {
	Sub    *subscription.Subscription
	Status subscription.Status
}

func (e *entry) view() SubscriptionView {
	e.mu.Lock()
	st := e.status
	e.mu.Unlock()
	return SubscriptionView{Sub: e.sub.Load(), Status: st}
}

// Create adds a subscription. sub.ID "" gets a new id; sub.Context is the
// @context it was created with.
func (s *Service) Create(ctx context.Context, tenant string, sub *subscription.Subscription) error {
	if sub.ID == "" {
		sub.ID = newID()
	}
	c, err := s.resolve(ctx, sub.Context)
	if err != nil {
		return err
	}
	doc, err := encodeSub(sub, c)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.entries[tenant][sub.ID]; ok {
		return ngsild.Errorf(ngsild.AlreadyExists, "subscription %s already exists", sub.ID)
	}
	e := &entry{tenant: tenant, doc: doc}
	e.sub.Store(sub)
	e.ctx.Store(c)
	e.from.Store(s.bus.Last())
	if err := s.st.SaveSubscription(ctx, store.SubscriptionRecord{Tenant: tenant, ID: sub.ID, Doc: doc, Status: encodeStatus(e)}); err != nil {
		return err
	}
	s.edits++
	e.edit = s.edits
	s.tenant(tenant)[sub.ID] = e
	s.reindex(tenant)
	if s.active.Load() {
		s.schedule(e)
	}
	return nil
}

func notFound(id string) error {
	return ngsild.Errorf(ngsild.ResourceNotFound, "subscription %s not found", id)
}

// Get returns one subscription.
func (s *Service) Get(_ context.Context, tenant, id string) (SubscriptionView, error) {
	s.mu.RLock()
	e := s.entries[tenant][id]
	s.mu.RUnlock()
	if e == nil {
		return SubscriptionView{}, notFound(id)
	}
	return e.view(), nil
}

// List returns a tenant's subscriptions in id order.
func (s *Service) List(_ context.Context, tenant string) []SubscriptionView {
	s.mu.RLock()
	es := sortedEntries(s.entries[tenant])
	s.mu.RUnlock()
	out := make([]SubscriptionView, len(es))
	for i, e := range es {
		out[i] = e.view()
	}
	return out
}

// Update replaces a subscription with what change makes of it (change must
// not modify its argument). Its queued notifications stay queued.
func (s *Service) Update(ctx context.Context, tenant, id string, change func(old *subscription.Subscription) (*subscription.Subscription, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[tenant][id]
	if e == nil {
		return notFound(id)
	}
	sub, err := change(e.sub.Load())
	if err != nil {
		return err
	}
	sub.ID, sub.Context = id, e.sub.Load().Context
	doc, err := encodeSub(sub, e.ctx.Load())
	if err != nil {
		return err
	}
	from := e.from.Load()
	if sub.IsActive && !e.sub.Load().IsActive {
		from = s.bus.Last() // resumed: what changed while paused is not notified
	}
	e.mu.Lock()
	st, _ := json.Marshal(storedStatus{e.status, from})
	e.mu.Unlock()
	if err := s.st.SaveSubscription(ctx, store.SubscriptionRecord{Tenant: tenant, ID: id, Doc: doc, Status: st}); err != nil {
		return err
	}
	e.from.Store(from)
	e.sub.Store(sub)
	e.doc = doc
	s.edits++
	e.edit = s.edits
	s.reindex(tenant)
	if s.active.Load() {
		s.schedule(e)
		s.wake(e) // a resumed subscription delivers what waited
	}
	return nil
}

// Delete removes a subscription and drops its queued notifications.
func (s *Service) Delete(ctx context.Context, tenant, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[tenant][id]
	if e == nil {
		return notFound(id)
	}
	if err := s.st.DeleteSubscription(ctx, tenant, id); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	s.forget(tenant, id, e)
	s.edits++
	if s.gone == nil {
		s.gone = map[[2]string]uint64{}
	}
	s.gone[[2]string{tenant, id}] = s.edits
	return nil
}

// forget drops a deleted subscription from memory (s.mu held).
func (s *Service) forget(tenant, id string, e *entry) {
	delete(s.entries[tenant], id)
	s.reindex(tenant)
	e.mu.Lock()
	e.deleted = true
	e.pending = nil
	if e.timer != nil {
		e.timer.Stop()
	}
	e.mu.Unlock()
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "urn:ngsi-ld:Subscription:" + hex.EncodeToString(b[:])
}

// relayer is a bus that copies the change log elsewhere (natsbus): the log
// must keep what it has not copied yet.
type relayer interface{ Durable() uint64 }

// saver writes changed statuses every second, and trims the change log
// behind the matcher (and behind the bus's relay).
func (s *Service) saver() {
	defer s.wg.Done()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var trimmed uint64
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-tick.C:
		}
		if err := s.saveStatuses(s.ctx); err != nil && s.ctx.Err() == nil {
			s.log.Warn("saving subscription statuses failed", "err", err)
		}
		s.enqMu.Lock()
		cur := s.cursor
		s.enqMu.Unlock()
		if d, ok := s.bus.(relayer); ok {
			cur = min(cur, d.Durable())
		}
		if s.opts.TrimFloor != nil {
			if floor, ok := s.opts.TrimFloor(s.ctx); ok {
				cur = min(cur, floor)
			}
		}
		if cur > trimmed {
			if err := s.st.TrimChanges(s.ctx, cur); err != nil {
				if s.ctx.Err() == nil {
					s.log.Warn("trimming the change log failed", "err", err)
				}
			} else {
				trimmed = cur
			}
		}
	}
}

func (s *Service) saveStatuses(ctx context.Context) error {
	var recs []store.SubscriptionRecord
	s.mu.RLock()
	for t, m := range s.entries {
		for id, e := range m {
			e.mu.Lock()
			if e.dirty {
				e.dirty = false
				recs = append(recs, store.SubscriptionRecord{Tenant: t, ID: id, Status: encodeStatus(e)})
			}
			e.mu.Unlock()
		}
	}
	s.mu.RUnlock()
	if len(recs) == 0 {
		return nil
	}
	return s.st.SaveStatuses(ctx, recs)
}

package notify

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/zenne-city/zenne/internal/jsonld"
	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/ngsild/subscription"
	"github.com/zenne-city/zenne/internal/notify/endpoint"
	"github.com/zenne-city/zenne/internal/store"
)

// Delivery: each subscription with queued notifications has one goroutine
// sending them one after the other, so a subscription's notifications
// arrive in order and a slow or dead receiver holds up only its own
// subscription. At most Options.Concurrency sends run at once.

// push adds a just-queued notification to e's delivery.
func (s *Service) push(e *entry, n *store.QueuedNotification) {
	e.mu.Lock()
	e.queued++
	if e.spilled || len(e.pending) >= s.opts.MemQueue {
		// The store has it; the delivery goroutine reads it from there
		// once it has sent what is in memory.
		e.spilled = true
		e.spillGen++
	} else {
		e.pending = append(e.pending, n)
		e.lastID = n.ID
	}
	e.mu.Unlock()
	s.wake(e)
}

// wake starts e's delivery goroutine unless it runs.
func (s *Service) wake(e *entry) {
	e.mu.Lock()
	if e.running || e.deleted || s.ctx == nil || s.ctx.Err() != nil {
		e.mu.Unlock()
		return
	}
	e.running = true
	e.mu.Unlock()
	s.wg.Add(1)
	go s.deliver(e)
}

func (s *Service) deliver(e *entry) {
	defer s.wg.Done()
	failures := 0
	for {
		batch := s.next(e)
		if batch == nil {
			return
		}
		sub := e.sub.Load()
		if sub.Throttling > 0 {
			e.mu.Lock()
			wait := time.Until(e.status.LastNotification.Add(sub.Throttling))
			e.mu.Unlock()
			if wait > 0 {
				if !sleep(s.ctx, wait) {
					s.stopped(e)
					return
				}
				batch = s.coalesce(e) // what gathered while waiting goes in one notification
			}
		}
		if age := s.opts.Now().Sub(batch[0].Created); age > s.opts.MaxAge {
			s.finished(e, batch, false, "dropped after waiting "+age.Round(time.Second).String()+" for the receiver")
			s.m.dropped.Add(float64(len(batch)))
			failures = 0
			continue
		}
		msg := s.message(e, sub, batch)
		select {
		case s.sem <- struct{}{}:
		case <-s.ctx.Done():
			s.stopped(e)
			return
		}
		err := s.send.Send(s.ctx, msg)
		<-s.sem
		if s.ctx.Err() != nil {
			s.stopped(e)
			return
		}
		if err == nil {
			s.finished(e, batch, true, "")
			s.m.sent.Inc()
			s.m.latency.Observe(s.opts.Now().Sub(batch[len(batch)-1].Created).Seconds())
			failures = 0
			continue
		}
		s.m.failed.Inc()
		s.failed(e, err)
		failures++
		if !sleep(s.ctx, backoff(s.opts.RetryMin, s.opts.RetryMax, failures)) {
			s.stopped(e)
			return
		}
	}
}

// backoff is the pause after the n-th failure in a row: doubling from min,
// at most max.
func backoff(lo, hi time.Duration, n int) time.Duration {
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	return min(d, hi)
}

// next returns the notification to send next, reading queued ones from the
// store when memory holds none; nil when there is nothing to do (and marks
// the goroutine stopped).
func (s *Service) next(e *entry) []*store.QueuedNotification {
	e.mu.Lock()
	defer e.mu.Unlock()
	for len(e.pending) == 0 || e.deleted || !e.sub.Load().IsActive {
		if e.deleted || !e.spilled || !e.sub.Load().IsActive || s.ctx.Err() != nil {
			e.running = false
			return nil
		}
		gen, after := e.spillGen, e.lastID
		sub := e.sub.Load()
		e.mu.Unlock()
		ns, err := s.st.Queued(s.ctx, e.tenant, sub.ID, after, s.opts.MemQueue)
		e.mu.Lock()
		if err != nil {
			if s.ctx.Err() == nil {
				s.log.Warn("reading queued notifications failed; retrying", "subscription", sub.ID, "err", err)
				e.mu.Unlock()
				sleep(s.ctx, time.Second)
				e.mu.Lock()
			}
			continue
		}
		if e.deleted {
			continue
		}
		e.pending = append(e.pending, ns...)
		if len(ns) > 0 {
			e.lastID = ns[len(ns)-1].ID
		}
		if len(ns) < s.opts.MemQueue && gen == e.spillGen {
			e.spilled = false // everything queued is in memory now
		}
	}
	return e.pending[:1:1]
}

// coalesce returns e's first notification together with the following
// ones of the same trigger, up to ten times MaxEntities entities' worth of
// notifications: sent as one after a throttling pause.
func (s *Service) coalesce(e *entry) []*store.QueuedNotification {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 1
	for n < len(e.pending) && n < 10 && sameTrigger(e.pending[0].Body, e.pending[n].Body) {
		n++
	}
	return e.pending[:n:n]
}

var dataStart = []byte(`"data":[`)

func sameTrigger(a, b []byte) bool {
	i, j := bytes.Index(a, dataStart), bytes.Index(b, dataStart)
	return i >= 0 && i == j && bytes.Equal(a[:i], b[:j])
}

// message builds the notification of batch (one queued notification, or
// several coalesced) as the spec's Notification: its id is the first queued
// notification's, so a repeat after a crash has the same id.
func (s *Service) message(e *entry, sub *subscription.Subscription, batch []*store.QueuedNotification) *endpoint.Message {
	ep := sub.Notification.Endpoint
	accept := ep.Accept // Parse sets it: application/json unless asked otherwise
	raw := contextOf(sub)
	b := make([]byte, 0, 256+len(batch[0].Body))
	b = append(b, `{"id":"urn:ngsi-ld:Notification:`...)
	b = strconv.AppendInt(b, batch[0].ID, 10)
	b = append(b, `","type":"Notification","subscriptionId":`...)
	b, _ = ngsild.AppendJSON(b, sub.ID)
	b = append(b, `,"notifiedAt":`...)
	b, _ = ngsild.AppendJSON(b, ngsild.FormatTime(s.opts.Now()))
	if accept == subscription.MIMEJSONLD {
		b = append(b, `,"@context":`...)
		b, _ = ngsild.AppendJSON(b, raw)
	}
	b = append(b, ',')
	first := batch[0].Body
	if len(batch) == 1 {
		b = append(b, first[1:]...)
	} else {
		// {"triggerReason":..,"data":[ a ]} + [ b ] ... -> one data array.
		i := bytes.Index(first, dataStart) + len(dataStart)
		b = append(b, first[1:i]...)
		for k, n := range batch {
			if k > 0 {
				b = append(b, ',')
			}
			j := bytes.Index(n.Body, dataStart) + len(dataStart)
			b = append(b, n.Body[j:len(n.Body)-2]...)
		}
		b = append(b, ']', '}')
	}
	m := &endpoint.Message{URI: ep.URI, Accept: accept, Body: b, Timeout: ep.Timeout}
	if accept == subscription.MIMEJSON {
		u, ok := raw.(string)
		if !ok {
			u = jsonld.CoreContext
		}
		m.Link = "<" + u + `>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"`
	}
	if e.tenant != store.DefaultTenant {
		// A receiver serving several tenants knows whose data it is
		// (6.3.14); receiverInfo may still override it.
		m.Headers = append(m.Headers, endpoint.KV{Key: "NGSILD-Tenant", Value: e.tenant})
	}
	for _, kv := range ep.ReceiverInfo {
		m.Headers = append(m.Headers, endpoint.KV{Key: kv.Key, Value: kv.Value})
	}
	for _, kv := range ep.NotifierInfo {
		m.NotifierInfo = append(m.NotifierInfo, endpoint.KV{Key: kv.Key, Value: kv.Value})
	}
	return m
}

// finished takes batch off e's queue: delivered (ok) or given up.
func (s *Service) finished(e *entry, batch []*store.QueuedNotification, ok bool, cause string) {
	now := s.opts.Now()
	e.mu.Lock()
	if len(e.pending) >= len(batch) && e.pending[0] == batch[0] {
		e.pending = e.pending[len(batch):]
	}
	e.queued -= len(batch)
	if ok {
		e.status.TimesSent++
		e.status.LastNotification, e.status.LastSuccess = now, now
	} else {
		e.status.TimesFailed++
		e.status.LastFailure, e.status.LastFailureCause = now, cause
	}
	e.dirty = true
	e.mu.Unlock()
	for _, n := range batch {
		s.ack(n.ID)
	}
}

// failed records a failed attempt; the notification stays first in line.
func (s *Service) failed(e *entry, err error) {
	now := s.opts.Now()
	cause := err.Error()
	var ee *endpoint.Error
	if errors.As(err, &ee) {
		cause = ee.Cause
	}
	e.mu.Lock()
	e.status.TimesSent++
	e.status.TimesFailed++
	e.status.LastNotification, e.status.LastFailure, e.status.LastFailureCause = now, now, cause
	e.dirty = true
	e.mu.Unlock()
}

// stopped marks e's delivery goroutine gone (at Close).
func (s *Service) stopped(e *entry) {
	e.mu.Lock()
	e.running = false
	e.mu.Unlock()
}

// ack removes a notification from the store (in batches, see acker).
func (s *Service) ack(id int64) {
	select {
	case s.acks <- id:
	case <-s.ctx.Done():
		// Not removed: sent again after the restart, with the same id.
	}
}

// acker removes delivered notifications from the store in batches: one
// transaction for many.
func (s *Service) acker() {
	defer s.wg.Done()
	var ids []int64
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	flush := func(ctx context.Context) {
		if len(ids) == 0 {
			return
		}
		if err := s.st.Dequeue(ctx, ids); err != nil {
			if s.ctx.Err() != nil && ctx == s.ctx {
				return // shutting down: the final flush below removes them
			}
			s.log.Warn("removing delivered notifications failed; they may be sent again after a restart", "err", err)
		}
		ids = ids[:0]
	}
	for {
		select {
		case id := <-s.acks:
			ids = append(ids, id)
			if len(ids) >= 1000 {
				flush(s.ctx)
			}
		case <-tick.C:
			flush(s.ctx)
		case <-s.ctx.Done():
			for {
				select {
				case id := <-s.acks:
					ids = append(ids, id)
				default:
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					flush(ctx)
					cancel()
					return
				}
			}
		}
	}
}

// schedule (re)starts e's periodic notifications if it has timeInterval.
func (s *Service) schedule(e *entry) {
	sub := e.sub.Load()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.timer != nil {
		e.timer.Stop()
		e.timer = nil
	}
	if sub.TimeInterval <= 0 || e.deleted {
		return
	}
	ctx := s.ctx // this activation's (s.mu is held)
	var tick func()
	tick = func() {
		if ctx.Err() != nil {
			return
		}
		s.periodic(ctx, e)
		e.mu.Lock()
		if !e.deleted && e.timer != nil && ctx.Err() == nil {
			e.timer = time.AfterFunc(e.sub.Load().TimeInterval, tick)
		}
		e.mu.Unlock()
	}
	e.timer = time.AfterFunc(sub.TimeInterval, tick)
}

// periodic queues one notification of the current state of every entity
// e's subscription selects.
func (s *Service) periodic(ctx context.Context, e *entry) {
	sub := e.sub.Load()
	now := s.opts.Now()
	if !sub.IsActive || (!sub.ExpiresAt.IsZero() && !now.Before(sub.ExpiresAt)) {
		return
	}
	q := &store.Query{Q: sub.Q, ScopeQ: sub.ScopeQ, Geo: sub.GeoQ, Limit: s.opts.MaxEntities}
	for _, sel := range sub.Entities {
		qs := store.Selector{ID: sel.ID, IDPattern: sel.IDPattern, Type: sel.Type}
		if qs.ID != "" {
			qs.IDPattern = nil // as subscription.Selector.Match: an id makes the pattern irrelevant
		}
		q.Selectors = append(q.Selectors, qs)
	}
	var ns []*store.QueuedNotification
	for {
		res, err := s.st.Query(ctx, e.tenant, q)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("periodic notification: query failed", "subscription", sub.ID, "err", err)
			}
			return
		}
		var data []byte
		for i, ent := range res.Entities {
			if i > 0 {
				data = append(data, ',')
			}
			c := &store.Change{Tenant: e.tenant, At: now, Kind: store.EntityUpdated, ID: ent.ID, After: ent}
			data, _ = ngsild.AppendJSON(data, sub.Data(c, "", e.ctx.Load()))
		}
		if len(res.Entities) > 0 {
			ns = append(ns, &store.QueuedNotification{Tenant: e.tenant, Subscription: sub.ID, Created: now, Body: encodeBody("", data)})
		}
		if len(res.Entities) < q.Limit {
			break
		}
		q.Offset += q.Limit
	}
	if len(ns) == 0 {
		return
	}
	// Cursor 0: enqueue keeps the matcher's position as it is.
	if err := s.enqueue(ctx, 0, ns); err != nil && ctx.Err() == nil {
		s.log.Warn("periodic notification not queued", "subscription", sub.ID, "err", err)
	}
}

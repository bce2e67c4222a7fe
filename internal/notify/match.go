package notify

import (
	"context"
	"errors"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/ngsild/subscription"
	"github.com/zenne-city/zenne/internal/store"
)

// readBatch is the most changes the matcher takes from the bus at once.
const readBatch = 1000

// enqueueEvery is the least time between two queueing transactions: under
// load the matcher reads what gathered meanwhile in one go, so it queues
// with a few hundred transactions a second instead of one per change, at
// the price of a few milliseconds of latency.
const enqueueEvery = 5 * time.Millisecond

// cursorEvery is how often the matcher saves its position when it queued
// nothing: re-reading a few seconds of changes after a crash that matched
// nothing costs nothing, and sparing a transaction per read spares the writer.
const cursorEvery = 2 * time.Second

// matcher reads every change from the bus, finds the subscriptions it
// triggers and queues their notifications.
func (s *Service) matcher() {
	defer s.wg.Done()
	var stamp uint64
	lastSave := time.Now()
	pos := s.cursor
	var lastEnqueue time.Time
	for {
		if wait := enqueueEvery - time.Since(lastEnqueue); wait > 0 && !sleep(s.ctx, wait) {
			return
		}
		cs, err := s.bus.Read(s.ctx, pos, readBatch)
		if s.ctx.Err() != nil {
			return
		}
		if errors.Is(err, store.ErrChangesGone) {
			// Only when the log was trimmed behind us (it is trimmed only
			// up to our cursor, so: a store replaced under a running zenne).
			s.log.Error("changes were lost before they could be matched against subscriptions", "after", pos)
			s.m.lost.Inc()
			pos = s.bus.Last()
			continue
		}
		if err != nil {
			s.log.Warn("reading changes failed; retrying", "err", err)
			sleep(s.ctx, time.Second)
			continue
		}
		if len(cs) == 0 {
			continue
		}
		idx := s.freshIndex()
		b := batchBuilder{s: s, rows: map[*entry]*rowBuild{}}
		for i := range cs {
			c := &cs[i]
			ix := idx[c.Tenant]
			if ix == nil {
				continue
			}
			stamp++
			ix.candidates(c, stamp, func(e *entry) { b.offer(e, c) })
		}
		pos = cs[len(cs)-1].Seq
		if len(b.order) == 0 && time.Since(lastSave) < cursorEvery {
			continue
		}
		if err := s.enqueue(s.ctx, pos, b.finish()); err != nil {
			if s.ctx.Err() != nil {
				return
			}
			// Keep the notifications' changes: read them again.
			s.log.Error("queueing notifications failed; retrying", "err", err)
			s.enqMu.Lock()
			pos = s.cursor
			s.enqMu.Unlock()
			sleep(s.ctx, time.Second)
			continue
		}
		lastSave = time.Now()
		lastEnqueue = lastSave
	}
}

// rowKey is what one notification is for: a subscription and a trigger.
type rowKey struct {
	e   *entry
	trg subscription.Trigger
}

type rowBuild struct {
	key     rowKey
	data    []byte // the data array's members, comma-separated
	n       int
	created time.Time // the first change's commit time
}

// batchBuilder gathers the notifications of one read from the bus.
type batchBuilder struct {
	s     *Service
	rows  map[*entry]*rowBuild // each subscription's last notification
	order []*rowBuild
}

// offer adds change c to e's notification if it triggers e.
func (b *batchBuilder) offer(e *entry, c *store.Change) {
	sub := e.sub.Load()
	if !sub.IsActive || c.Seq <= e.from.Load() || (!sub.ExpiresAt.IsZero() && !c.At.Before(sub.ExpiresAt)) {
		return
	}
	trg, ok := sub.Match(c)
	if !ok {
		return
	}
	// A change joins its subscription's last notification if that has the
	// same trigger, else starts the next one: the notifications of one
	// subscription keep the order of its changes.
	k := rowKey{e, trg}
	r := b.rows[e]
	if r == nil || r.key != k || r.n >= b.s.opts.MaxEntities {
		r = &rowBuild{key: k, created: c.At}
		b.rows[e] = r
		b.order = append(b.order, r)
	}
	obj := sub.Data(c, trg, e.ctx.Load())
	if r.n > 0 {
		r.data = append(r.data, ',')
	}
	var err error
	if r.data, err = ngsild.AppendJSON(r.data, obj); err != nil {
		// Stored values always encode; a failure here is a bug, not input.
		b.s.log.Error("notification not built", "subscription", sub.ID, "entity", c.ID, "err", err)
		return
	}
	r.n++
}

// finish returns the notifications in the order their first change came.
func (b *batchBuilder) finish() []*store.QueuedNotification {
	out := make([]*store.QueuedNotification, 0, len(b.order))
	for _, r := range b.order {
		if r.n == 0 {
			continue
		}
		out = append(out, &store.QueuedNotification{
			Tenant: r.key.e.tenant, Subscription: r.key.e.sub.Load().ID, Created: r.created,
			Body: encodeBody(r.key.trg, r.data),
		})
	}
	return out
}

// A queued notification's body is the notification without what is known
// only when it is sent (id, notifiedAt, @context): {"triggerReason":...,"data":[...]}.
func encodeBody(trg subscription.Trigger, data []byte) []byte {
	b := make([]byte, 0, len(data)+48)
	b = append(b, '{')
	if trg != "" {
		b = append(b, `"triggerReason":"`...)
		b = append(b, trg...)
		b = append(b, `",`...)
	}
	b = append(b, `"data":[`...)
	b = append(b, data...)
	return append(b, ']', '}')
}

// enqueue stores ns and the matcher's position together, then hands ns to
// their subscriptions' delivery, in queue order.
func (s *Service) enqueue(ctx context.Context, cursor uint64, ns []*store.QueuedNotification) error {
	s.enqMu.Lock()
	defer s.enqMu.Unlock()
	cursor = max(cursor, s.cursor)
	if err := s.st.Enqueue(ctx, cursor, ns); err != nil {
		return err
	}
	s.cursor = cursor
	if len(ns) == 0 {
		return nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, n := range ns {
		e := s.entries[n.Tenant][n.Subscription]
		if e == nil {
			s.ack(n.ID) // deleted meanwhile
			continue
		}
		s.push(e, n)
	}
	return nil
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

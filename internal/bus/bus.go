// Package bus carries every committed change (store.Change) to the modules
// that react to them: subscriptions (internal/notify), the live stream
// (internal/api/stream), later rules. Each change is published once, in
// commit order. Consumers pull: each remembers the Seq it got to and reads
// what follows, so a durable consumer resumes after a restart from its saved
// position and a browser resumes from its Last-Event-ID.
//
// Local is the in-process bus of one zenne: the store's commit hook feeds it,
// recent changes are kept in memory, older ones are read from the store's
// durable change log. A NATS JetStream bus (several instances) implements the
// same interface.
package bus

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/zenne-city/zenne/internal/store"
)

// Bus delivers committed changes in commit order.
type Bus interface {
	// Read returns up to max changes with Seq > after, in order, waiting
	// until there is at least one or ctx ends. It returns
	// store.ErrChangesGone when some of them are no longer kept.
	Read(ctx context.Context, after uint64, max int) ([]store.Change, error)
	// Last is the Seq of the last change published (0: none).
	Last() uint64
}

// Local is the in-process bus over one store's change log.
type Local struct {
	log store.ChangeLog

	mu    sync.Mutex
	ring  []store.Change // the most recent changes, a circular buffer
	head  int            // index of the oldest in ring
	n     int            // how many ring holds
	first uint64         // Seq of the oldest held (when n > 0)
	last  atomic.Uint64
	wake  chan struct{} // closed at the next publish
}

// DefaultWindow is how many recent changes a Local keeps in memory.
const DefaultWindow = 1 << 16

// NewLocal returns the bus of log's store and starts taking its commits.
// window recent changes are kept in memory (DefaultWindow if <= 0); readers
// further behind read the store's log.
func NewLocal(log store.ChangeLog, window int) *Local {
	if window <= 0 {
		window = DefaultWindow
	}
	l := &Local{log: log, ring: make([]store.Change, window), wake: make(chan struct{})}
	l.last.Store(log.LastChange())
	log.WatchChanges(l.publish)
	return l
}

// publish takes one commit's changes (the store's writer calls it).
func (l *Local) publish(cs []store.Change) {
	l.mu.Lock()
	for _, c := range cs {
		if l.n > 0 && c.Seq != l.first+uint64(l.n) {
			l.n = 0 // not contiguous (cannot happen with one store): start over
		}
		if l.n == 0 {
			l.head, l.first = 0, c.Seq
		}
		if l.n == len(l.ring) {
			l.ring[l.head] = store.Change{}
			l.head = (l.head + 1) % len(l.ring)
			l.first++
			l.n--
		}
		l.ring[(l.head+l.n)%len(l.ring)] = c
		l.n++
	}
	l.last.Store(cs[len(cs)-1].Seq)
	close(l.wake)
	l.wake = make(chan struct{})
	l.mu.Unlock()
}

// Last implements Bus.
func (l *Local) Last() uint64 { return l.last.Load() }

// Read implements Bus.
func (l *Local) Read(ctx context.Context, after uint64, max int) ([]store.Change, error) {
	if max <= 0 {
		return nil, nil
	}
	for {
		l.mu.Lock()
		if after < l.last.Load() {
			if l.n > 0 && after+1 >= l.first {
				out := make([]store.Change, 0, min(max, int(l.first+uint64(l.n)-after-1)))
				for i := int(after + 1 - l.first); i < l.n && len(out) < max; i++ {
					out = append(out, l.ring[(l.head+i)%len(l.ring)])
				}
				l.mu.Unlock()
				return out, nil
			}
			l.mu.Unlock()
			return l.log.Changes(ctx, after, max)
		}
		wake := l.wake
		l.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

package natsbus

// Feeding the window: one ordered consumer follows the stream; the poller
// reads the log (the safety net while NATS works, the feed while it does
// not). The window takes only the change after its last, so whichever is
// first, nothing repeats.

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/zenne-city/zenne/internal/store"
)

func (b *Bus) consume() {
	defer b.wg.Done()
	for b.ctx.Err() == nil {
		if !b.nc.IsConnected() || !b.ready.Load() {
			sleep(b.ctx, b.o.DegradedPoll)
			continue
		}
		err := b.follow()
		b.consuming.Store(false)
		if b.ctx.Err() != nil {
			return
		}
		if err != nil {
			if b.consumeErr.Load() == nil {
				b.logger.Warn("natsbus: cannot follow the stream; reading changes from the store's log until it works", "err", err)
			}
			setErr(&b.consumeErr, err)
		}
		sleep(b.ctx, time.Second)
	}
}

// follow takes the stream's changes after the window's last until the
// consumer fails (its own recovery gave up) or the bus closes.
func (b *Bus) follow() error {
	oc, err := b.js.OrderedConsumer(b.ctx, b.o.Stream, jetstream.OrderedConsumerConfig{
		DeliverPolicy:    jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:      b.last.Load() + 1,
		MaxResetAttempts: 3,
	})
	if err != nil {
		return fmt.Errorf("natsbus: follow stream %s: %w", b.o.Stream, err)
	}
	// A short expiry and heartbeat: a lost consumer (stream deleted, server
	// restarted) is noticed in seconds.
	it, err := oc.Messages(jetstream.PullExpiry(5*time.Second), jetstream.PullHeartbeat(time.Second),
		jetstream.PullMaxMessagesWithBytesLimit(relayBatch, 16<<20))
	if err != nil {
		return fmt.Errorf("natsbus: follow stream %s: %w", b.o.Stream, err)
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		it.Stop()
		return nil
	}
	b.iter = it
	b.mu.Unlock()
	defer it.Stop()
	b.consuming.Store(true)
	if b.consumeErr.Load() != nil {
		b.logger.Info("natsbus: following the stream again")
		setErr(&b.consumeErr, nil)
	}
	for {
		// The context too, not only Stop: a Stop during the consumer's
		// own recovery can leave Next on a subscription created after it.
		m, err := it.Next(jetstream.NextContext(b.ctx))
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) || b.ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("natsbus: follow stream %s: %w", b.o.Stream, err)
		}
		if !b.takeMsg(m) {
			// The log could not fill a gap: start again after a pause from
			// what the window has.
			return errors.New("natsbus: a gap in the stream could not be filled from the store's log")
		}
	}
}

// takeMsg puts a stream message's change into the window. It reports false
// if the changes before it could not be read.
func (b *Bus) takeMsg(m jetstream.Msg) bool {
	md, err := m.Metadata()
	if err != nil {
		return true
	}
	seq := md.Sequence.Stream
	for {
		s := b.streamSeen.Load()
		if seq <= s || b.streamSeen.CompareAndSwap(s, seq) {
			break
		}
	}
	b.kickRelay() // its own changes up to seq are published
	if seq <= b.last.Load() {
		return true
	}
	c, ok := decodeMsg(seq, m.Headers(), m.Data())
	if !ok {
		if m.Headers().Get(hdrStub) == stubGone && m.Headers().Get(hdrSeq) == fmt.Sprint(seq) {
			// The relay found it trimmed from the log: no need to look.
			if !b.fillFromLog(seq - 1) {
				return false
			}
			b.skipTo(seq)
			return true
		}
		// Too large for a message, or a message not at its place: the
		// log has the change, or nothing does.
		return b.fillFromLog(seq)
	}
	if seq > b.last.Load()+1 && !b.fillFromLog(seq-1) {
		return false
	}
	b.add([]store.Change{c})
	return true
}

func (b *Bus) poll() {
	defer b.wg.Done()
	for {
		wait := b.o.Poll
		if b.degraded() {
			wait = b.o.DegradedPoll
		}
		t := time.NewTimer(wait)
		select {
		case <-b.ctx.Done():
			t.Stop()
			return
		case <-b.poke:
		case <-t.C:
		}
		t.Stop()
		b.pollOnce()
	}
}

// pollOnce puts what the log has after the window's last into the window.
func (b *Bus) pollOnce() {
	for b.ctx.Err() == nil {
		after := b.last.Load()
		cs, err := b.log.Changes(b.ctx, after, readBatch)
		switch {
		case errors.Is(err, store.ErrChangesGone):
			// Trimmed: the stream has them, unless they were trimmed
			// before anyone published them.
			if !b.nc.IsConnected() || !b.ready.Load() {
				if !b.trimWarned.Swap(true) {
					b.logger.Warn("natsbus: changes were trimmed from the store's log while NATS is away; waiting for NATS", "after", after)
				}
				return
			}
			cs, err = b.readStream(b.ctx, after, readBatch)
			if err != nil {
				return
			}
			if len(cs) == 0 {
				first, err := b.firstKept(b.ctx, after)
				if err != nil {
					return
				}
				b.logger.Warn("natsbus: changes are in neither the stream nor the store's log; readers skip them", "after", after, "upTo", first-1)
				b.skipTo(first - 1)
				continue
			}
		case err != nil:
			if b.ctx.Err() == nil {
				b.logger.Warn("natsbus: read the change log", "err", err)
			}
			return
		case len(cs) == 0:
			return
		}
		if last := cs[len(cs)-1].Seq; last > b.logSeen.Load() {
			b.logSeen.Store(last) // only the poller writes it
		}
		b.add(cs)
		b.kickRelay()
		if len(cs) < readBatch {
			return
		}
	}
}

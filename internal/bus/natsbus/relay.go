package natsbus

// The relay: publishes the changes the stream lacks, in Seq order, each at
// the stream sequence equal to its Seq (see the package comment).

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/zenne-city/zenne/internal/store"
	"github.com/zenne-city/zenne/internal/store/codec"
)

// relayState is what the relay knows of the stream.
type relayState struct {
	last      uint64    // the stream's last sequence: every change up to it is in the stream or never will be
	empty     bool      // the stream holds no message (expired, purged): the next publish expects none
	synced    bool      // last and empty were read from the server since the last surprise
	gapAt     uint64    // the change the relay waits for another instance to publish
	gapSince  time.Time // since when
	conflicts int       // publishes refused in a row because another instance was first
}

func (b *Bus) relay() {
	defer b.wg.Done()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-b.kick:
		case <-t.C:
		}
		t.Reset(b.relayStep(b.ctx))
	}
}

// relayStep publishes one batch if there is one to publish, and says when
// to look again at the latest.
func (b *Bus) relayStep(ctx context.Context) time.Duration {
	r := &b.r
	if !b.nc.IsConnected() {
		return b.o.Poll // the reconnect handler kicks
	}
	if !b.ready.Load() {
		// NATS was away when the bus started: set the stream up now.
		if _, err := b.setUp(ctx); err != nil {
			b.relayFailed(err)
			return 5 * time.Second
		}
		b.logger.Info("natsbus: stream set up")
	}
	if b.resync.Swap(false) {
		r.synced = false
	}
	if !r.synced {
		if err := b.syncRelay(ctx); err != nil {
			b.relayFailed(err)
			return time.Second
		}
	}
	if s := b.streamSeen.Load(); s > r.last {
		r.last, r.empty = s, false // another instance published up to s
		b.published.Store(s)
	}

	b.mu.Lock()
	i := 0
	for i < len(b.pending) && b.pending[i].Seq <= r.last {
		i++
	}
	b.pending = slices.Delete(b.pending, 0, i)
	var batch []store.Change
	for _, c := range b.pending {
		if len(batch) == relayBatch || c.Seq != r.last+1+uint64(len(batch)) {
			break
		}
		batch = append(batch, c)
	}
	tip := max(b.last.Load(), b.logSeen.Load())
	if len(b.pending) > 0 {
		tip = max(tip, b.pending[len(b.pending)-1].Seq)
	}
	b.mu.Unlock()

	if len(batch) == 0 {
		if tip <= r.last {
			r.gapAt = 0
			b.relayOK()
			return b.o.Poll
		}
		// The next change is another instance's (or this one's, from
		// before it started or past pendingMax): its instance has GapWait
		// to publish it, then this one takes it from the log.
		if r.gapAt != r.last+1 {
			r.gapAt, r.gapSince = r.last+1, time.Now()
		}
		if wait := b.o.GapWait - time.Since(r.gapSince); wait > 0 {
			return wait
		}
		cs, err := b.log.Changes(ctx, r.last, relayBatch)
		switch {
		case errors.Is(err, store.ErrChangesGone):
			return b.skipGone(ctx)
		case err != nil:
			if ctx.Err() == nil {
				b.logger.Warn("natsbus: read the change log to publish it", "after", r.last, "err", err)
			}
			return time.Second
		case len(cs) == 0:
			return b.o.Poll
		}
		batch = cs
	}
	if err := b.publish(ctx, batch, false); err != nil {
		if conflict(err) {
			// Another instance was first: go on from where the stream is.
			r.conflicts++
			b.logger.Debug("natsbus: another instance published first", "seq", batch[0].Seq)
			return time.Duration(min(r.conflicts, 100)) * time.Millisecond
		}
		if ctx.Err() == nil {
			b.relayFailed(err)
		}
		return time.Second
	}
	r.conflicts = 0
	b.relayOK()
	return 0 // more may wait
}

// conflict: the server refused a publish because the stream's last message
// was not the change before (another instance published meanwhile).
func conflict(err error) bool {
	var ae *jetstream.APIError
	return errors.As(err, &ae) &&
		(ae.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || ae.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

func (b *Bus) relayFailed(err error) {
	if b.ctx.Err() != nil {
		return // closing
	}
	if b.relayErr.Load() == nil {
		b.logger.Warn("natsbus: cannot publish changes; other instances get them from the store's log until this works", "err", err)
	} else {
		b.logger.Debug("natsbus: cannot publish changes", "err", err)
	}
	setErr(&b.relayErr, err)
}

func (b *Bus) relayOK() {
	if b.relayErr.Load() != nil {
		b.logger.Info("natsbus: publishing changes again")
		setErr(&b.relayErr, nil)
	}
}

// syncRelay reads where the stream is, creating it if it is missing (it
// was deleted under a running zenne).
func (b *Bus) syncRelay(ctx context.Context) error {
	r := &b.r
	s, err := b.js.Stream(ctx, b.o.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		b.logger.Warn("natsbus: the stream is missing; creating it again")
		s, err = b.js.CreateStream(ctx, b.streamConfig())
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			s, err = b.js.Stream(ctx, b.o.Stream)
		}
	}
	if err != nil {
		return fmt.Errorf("natsbus: stream %s: %w", b.o.Stream, err)
	}
	st := s.CachedInfo().State
	// What the consumer saw may have been a deleted stream's; the state
	// just read covers the rest.
	b.streamSeen.Store(0)
	r.last, r.empty, r.synced = st.LastSeq, st.Msgs == 0, true
	b.published.Store(r.last)
	return nil
}

// skipGone makes the stream go on after changes the log no longer has and
// the stream never got (trimmed while NATS was away, or a new stream on a
// trimmed log).
func (b *Bus) skipGone(ctx context.Context) time.Duration {
	r := &b.r
	first, err := b.firstKept(ctx, r.last)
	if err != nil {
		if ctx.Err() == nil {
			b.logger.Warn("natsbus: read the change log", "err", err)
		}
		return time.Second
	}
	// Another instance may have moved the stream on meanwhile.
	if err := b.syncRelay(ctx); err != nil {
		b.relayFailed(err)
		return time.Second
	}
	from := r.last + 1
	if from >= first {
		return 0
	}
	if r.empty || first-from > fillMax {
		// Nothing to keep, or too long a gap to fill: a purge up to first
		// sets the stream's next sequence to first (and drops what it
		// holds, all older).
		s, err := b.js.Stream(ctx, b.o.Stream)
		if err == nil {
			err = s.Purge(ctx, jetstream.WithPurgeSequence(first))
		}
		if err != nil {
			b.relayFailed(fmt.Errorf("natsbus: purge stream %s up to %d: %w", b.o.Stream, first, err))
			return time.Second
		}
		if r.empty {
			b.logger.Info("natsbus: the stream starts at the first change the store's log has", "seq", first)
		} else {
			b.logger.Warn("natsbus: changes were trimmed from the store's log before they were published; the stream skips them and drops its older ones",
				"from", from, "to", first-1)
		}
		r.last, r.empty = first-1, true
		b.published.Store(r.last)
		return 0
	}
	// A stub stands for each missing change, so the stream keeps its
	// history (and the sequence of every later change stays its Seq).
	b.logger.Warn("natsbus: changes were trimmed from the store's log before they were published; the stream marks them gone",
		"from", from, "to", first-1)
	stubs := make([]store.Change, 0, relayBatch)
	for seq := from; seq < first; {
		stubs = stubs[:0]
		for ; seq < first && len(stubs) < relayBatch; seq++ {
			stubs = append(stubs, store.Change{Seq: seq})
		}
		if err := b.publish(ctx, stubs, true); err != nil {
			if !conflict(err) && ctx.Err() == nil {
				b.relayFailed(err)
			}
			return time.Second
		}
	}
	return 0
}

// publish publishes batch, changes numbered from r.last+1 on, and waits for
// the acks. gone publishes stubs for changes no longer kept.
func (b *Bus) publish(ctx context.Context, batch []store.Change, gone bool) error {
	r := &b.r
	futs := make([]jetstream.PubAckFuture, 0, len(batch))
	for i := range batch {
		c := &batch[i]
		if c.Seq != r.last+1+uint64(i) {
			break
		}
		exp := c.Seq - 1
		if i == 0 && r.empty {
			exp = 0
		}
		f, err := b.js.PublishMsgAsync(b.message(c, exp, gone))
		if err != nil {
			if len(futs) == 0 {
				r.synced = false
				return fmt.Errorf("natsbus: publish change %d: %w", c.Seq, err)
			}
			break // publish what went out
		}
		futs = append(futs, f)
	}
	for i, f := range futs {
		seq := batch[i].Seq
		select {
		case ack := <-f.Ok():
			if ack.Sequence != seq {
				r.synced = false
				b.misplaced(ctx, ack.Sequence, seq)
				return fmt.Errorf("natsbus: change %d was stored at stream sequence %d", seq, ack.Sequence)
			}
			r.last, r.empty = seq, false
			b.published.Store(seq)
		case err := <-f.Err():
			// The ones after it fail as well (they expect it): read where
			// the stream is before going on.
			r.synced = false
			return fmt.Errorf("natsbus: publish change %d: %w", seq, err)
		case <-ctx.Done():
			r.synced = false
			return ctx.Err()
		}
	}
	return nil
}

// misplaced removes a change stored at another sequence than its Seq
// (the stream was purged or recreated between reading its state and
// publishing to it). Readers ignore such a message anyway (its Zenne-Seq
// is not its sequence); the change stays in the log.
func (b *Bus) misplaced(ctx context.Context, at, seq uint64) {
	b.logger.Warn("natsbus: a change landed at the wrong stream sequence; removing it", "seq", seq, "at", at)
	s, err := b.js.Stream(ctx, b.o.Stream)
	if err == nil {
		err = s.DeleteMsg(ctx, at)
	}
	if err != nil {
		b.logger.Warn("natsbus: remove a misplaced change", "at", at, "err", err)
	}
}

// message is change c's message, expecting the stream's last message at
// sequence exp (0: none).
func (b *Bus) message(c *store.Change, exp uint64, gone bool) *nats.Msg {
	seq := strconv.FormatUint(c.Seq, 10)
	m := &nats.Msg{Subject: b.o.Subject, Header: nats.Header{}}
	m.Header.Set(jetstream.MsgIDHeader, seq)
	m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(exp, 10))
	m.Header.Set(hdrSeq, seq)
	if gone {
		m.Header.Set(hdrStub, stubGone)
		return m
	}
	// Before is already the part the log keeps (see onCommit).
	data, err := codec.AppendChange(make([]byte, 0, 1024), c)
	switch {
	case err != nil:
		// Cannot happen with what the store encoded already; the log has it.
		b.logger.Error("natsbus: encode change; readers read it from the store's log", "seq", c.Seq, "err", err)
		m.Header.Set(hdrStub, "unencodable")
	case len(data) > int(b.nc.MaxPayload())-4096: // headers and protocol
		m.Header.Set(hdrStub, stubLarge)
	default:
		m.Data = data
	}
	return m
}

package postgres

// The change log: every write group adds one row to changes holding the
// changes its ops made (store.Change), in the group's transaction, so a
// consumer that saved how far it read misses nothing across a crash.
//
// Numbers: the group's last statement adds its number of changes to the one
// row of change_seq and inserts its row of changes with the numbers that
// gives. The row lock that update takes is held until the transaction ends,
// so the next group (of any process) gets its numbers only after this one
// committed or rolled back: numbers follow commit order, and a rolled-back
// group gives its numbers back, so there are no gaps. A reader that sees a
// change therefore sees every change numbered before it.
//
//	row    = varint(commit time, unix ns) n*change
//	change = kind str(tenant) str(id) uvarint(m) m*(str(name) attrKind) doc(after) doc(before)
//	doc    = uvarint(len) bytes (codec's entity encoding; len 0: none)
//
// The before document holds only what store.Change promises: id, types,
// scopes and the attributes the op updated or deleted. The encoding is the
// embedded store's, so the two logs read the same.

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store"
	"github.com/zenne-city/zenne/internal/store/codec"
)

// encodeChanges is the log row of a group's changes, committed at now.
// docs holds the encoded final states of the group's entities, reused for
// changes whose After is one of them (most are). The row ends with the
// group's effects on entity rows (codec.RowEffect), which the query index
// of every process reads (memindex.go), and is stored packed. It is sized
// first: it holds most of the group's documents again.
func encodeChanges(cs []store.Change, now time.Time, docs map[*ngsild.Entity][]byte, effects []codec.RowEffect) ([]byte, error) {
	afters, befores := make([][]byte, len(cs)), make([][]byte, len(cs))
	size := binary.MaxVarintLen64
	for i := range cs {
		c := &cs[i]
		var err error
		after, ok := docs[c.After]
		if !ok && c.After != nil {
			if after, err = codec.EncodeEntity(c.After); err != nil {
				return nil, fmt.Errorf("log change of %s: %w", c.ID, err)
			}
		}
		var before []byte
		if c.Before != nil {
			if before, err = codec.EncodeEntity(codec.PriorPart(c)); err != nil {
				return nil, fmt.Errorf("log change of %s: %w", c.ID, err)
			}
		}
		afters[i], befores[i] = after, before
		size += 1 + 8*binary.MaxVarintLen64 + len(c.Tenant) + len(c.ID) + len(after) + len(before)
		for _, a := range c.Attrs {
			size += binary.MaxVarintLen64 + len(a.Name) + 1
		}
	}
	b := make([]byte, 0, size)
	b = codec.AppendLogTime(b, now)
	for i := range cs {
		b = codec.AppendLogChange(b, &cs[i], afters[i], befores[i])
	}
	return codec.PackLogRow(codec.AppendLogEffects(b, effects)), nil
}

// Changes implements store.ChangeLog. It reads the table, so it returns the
// changes every process committed.
func (s *Store) Changes(ctx context.Context, after uint64, max int) ([]store.Change, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	if max <= 0 {
		return nil, nil
	}
	// Every row holds at least one change, so max+1 rows are enough.
	var out []store.Change
	last, err := s.logRows(ctx, after, max+1, func(first uint64, n int, data []byte) (bool, error) {
		var err error
		out, err = codec.DecodeLogRow(out, first, n, data, after)
		return len(out) < max, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: read changes: %w", err)
	}
	switch {
	case len(out) == 0 && last > after, len(out) > 0 && out[0].Seq != after+1:
		return nil, store.ErrChangesGone
	case len(out) == 0:
		return nil, nil
	}
	return out[:min(len(out), max)], nil
}

// sqlLastChange reads the number of the last change committed.
const sqlLastChange = `SELECT last FROM change_seq WHERE id = 1`

// logRows reads the number of the last change committed, then the log rows
// from the one holding change after+1 on (it starts at or before it), at
// most limit, and calls row with each (its first change's number, its
// number of changes, its data, valid until row returns) until row says
// stop. Every change numbered up to last committed before the rows were
// read, so one missing among them was trimmed.
func (s *Store) logRows(ctx context.Context, after uint64, limit int, row func(first uint64, n int, data []byte) (more bool, err error)) (last uint64, err error) {
	b := &pgx.Batch{}
	b.Queue(sqlLastChange)
	b.Queue(`SELECT seq, n, data FROM changes
		WHERE seq >= COALESCE((SELECT max(seq) FROM changes WHERE seq <= $1), 0) ORDER BY seq LIMIT $2`,
		int64(after+1), limit)
	br := s.pool.SendBatch(ctx, b)
	defer br.Close()
	var l int64
	if err := br.QueryRow().Scan(&l); err != nil {
		return 0, err
	}
	rows, err := br.Query()
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	for more := true; more && rows.Next(); {
		var seq int64
		var n int
		var data []byte
		if err := scanDoc(rows, &data, &seq, &n); err != nil {
			return 0, err
		}
		if more, err = row(uint64(seq), n, data); err != nil {
			return 0, err
		}
	}
	return uint64(l), rows.Err()
}

// LastChange implements store.ChangeLog: the last change this process
// committed, or the last one committed when it opened, whichever is later.
func (s *Store) LastChange() uint64 { return s.last.Load() }

// TrimChanges implements store.ChangeLog.
func (s *Store) TrimChanges(ctx context.Context, upTo uint64) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM changes WHERE seq <= $1 AND seq + n - 1 <= $1`, int64(min(upTo, 1<<63-1))); err != nil {
		return fmt.Errorf("postgres: trim changes: %w", err)
	}
	return nil
}

// WatchChanges implements store.ChangeLog: f gets this process's commits.
func (s *Store) WatchChanges(f func([]store.Change)) {
	s.watch.Store(&f)
}

// sequencer hands this process's commits to the watcher in commit order,
// while several writers commit at once. A group registers its changes
// after its numbers are given and before it commits; since the next group
// (of any process) can only get numbers after this one committed,
// registration order is number order. Each group, once its commit is
// decided, delivers every decided group at the head of the line, then
// waits until its own changes were delivered.
type sequencer struct {
	mu   sync.Mutex
	line []*delivery
}

type delivery struct {
	changes []store.Change
	decided bool
	ok      bool // committed: deliver
	done    chan struct{}
}

func (q *sequencer) register(cs []store.Change) *delivery {
	d := &delivery{changes: cs, done: make(chan struct{})}
	q.mu.Lock()
	q.line = append(q.line, d)
	q.mu.Unlock()
	return d
}

// finish records whether d's transaction committed, delivers what can be
// delivered and waits for d's turn. deliver is called in order, one at a
// time.
func (q *sequencer) finish(d *delivery, committed bool, deliver func([]store.Change)) {
	q.mu.Lock()
	d.decided, d.ok = true, committed
	for len(q.line) > 0 && q.line[0].decided {
		h := q.line[0]
		q.line[0] = nil
		q.line = q.line[1:]
		if h.ok {
			deliver(h.changes)
		}
		close(h.done)
	}
	q.mu.Unlock()
	<-d.done
}

// deliver records a commit's changes as committed and tells the watcher.
func (s *Store) deliver(cs []store.Change) {
	if last := cs[len(cs)-1].Seq; last > s.last.Load() {
		s.last.Store(last)
	}
	if f := s.watch.Load(); f != nil {
		(*f)(cs)
	}
}

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
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store"
	"github.com/zenne-city/zenne/internal/store/codec"
)

// newChange is the change an op made, numbered later (Seq, At).
func newChange(tenant, id string, cur, next *ngsild.Entity) store.Change {
	c := store.Change{Tenant: tenant, ID: id, Before: cur, After: next}
	switch {
	case cur == nil:
		c.Kind = store.EntityCreated
		c.Attrs = attrChanges(next, store.AttrCreated)
	case next == nil:
		c.Kind = store.EntityDeleted
		c.Attrs = attrChanges(cur, store.AttrDeleted)
	default:
		c.Kind = store.EntityUpdated
		for name, as := range next.Attrs {
			old, ok := cur.Attrs[name]
			switch {
			case !ok || len(old) == 0:
				c.Attrs = append(c.Attrs, store.AttrChange{Name: name, Kind: store.AttrCreated})
			case !slices.Equal(old, as):
				c.Attrs = append(c.Attrs, store.AttrChange{Name: name, Kind: store.AttrUpdated})
			}
		}
		for name, as := range cur.Attrs {
			if len(as) > 0 && len(next.Attrs[name]) == 0 {
				c.Attrs = append(c.Attrs, store.AttrChange{Name: name, Kind: store.AttrDeleted})
			}
		}
		sortAttrChanges(c.Attrs)
	}
	return c
}

func attrChanges(e *ngsild.Entity, kind store.AttrChangeKind) []store.AttrChange {
	out := make([]store.AttrChange, 0, len(e.Attrs))
	for name, as := range e.Attrs {
		if len(as) > 0 {
			out = append(out, store.AttrChange{Name: name, Kind: kind})
		}
	}
	sortAttrChanges(out)
	return out
}

func sortAttrChanges(as []store.AttrChange) {
	slices.SortFunc(as, func(a, b store.AttrChange) int { return strings.Compare(a.Name, b.Name) })
}

// encodeChanges is the log row of a group's changes, committed at now.
// docs holds the encoded final states of the group's entities, reused for
// changes whose After is one of them (most are). The row is sized first:
// it holds most of the group's documents again.
func encodeChanges(cs []store.Change, now time.Time, docs map[*ngsild.Entity][]byte) ([]byte, error) {
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
			if before, err = codec.EncodeEntity(priorPart(c)); err != nil {
				return nil, fmt.Errorf("log change of %s: %w", c.ID, err)
			}
		}
		afters[i], befores[i] = after, before
		size += 1 + 5*binary.MaxVarintLen64 + len(c.Tenant) + len(c.ID) + len(after) + len(before)
		for _, a := range c.Attrs {
			size += binary.MaxVarintLen64 + len(a.Name) + 1
		}
	}
	b := make([]byte, 0, size)
	b = binary.AppendVarint(b, now.UnixNano())
	for i := range cs {
		b = appendChange(b, &cs[i], afters[i], befores[i])
	}
	return b, nil
}

// appendChange appends c with its encoded after and before documents.
func appendChange(b []byte, c *store.Change, after, before []byte) []byte {
	b = append(b, byte(c.Kind))
	b = codec.AppendStr(b, c.Tenant)
	b = codec.AppendStr(b, c.ID)
	b = binary.AppendUvarint(b, uint64(len(c.Attrs)))
	for _, a := range c.Attrs {
		b = codec.AppendStr(b, a.Name)
		b = append(b, byte(a.Kind))
	}
	b = appendBytes(b, after)
	return appendBytes(b, before)
}

// appendBytes is codec.AppendStr of p without converting it to a string.
func appendBytes(b, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

// priorPart is the part of c.Before the log keeps.
func priorPart(c *store.Change) *ngsild.Entity {
	if c.Kind == store.EntityDeleted {
		return c.Before
	}
	p := &ngsild.Entity{ID: c.Before.ID, Types: c.Before.Types, Scopes: c.Before.Scopes,
		CreatedAt: c.Before.CreatedAt, ModifiedAt: c.Before.ModifiedAt}
	for _, a := range c.Attrs {
		if a.Kind == store.AttrCreated {
			continue
		}
		if p.Attrs == nil {
			p.Attrs = map[string][]*ngsild.Attribute{}
		}
		p.Attrs[a.Name] = c.Before.Attrs[a.Name]
	}
	return p
}

// decodeChanges appends the changes of one log row with Seq > after to out.
func decodeChanges(out []store.Change, first uint64, n int, row []byte, after uint64) ([]store.Change, error) {
	d := &codec.Decoder{B: row}
	at := time.Unix(0, d.Varint())
	for i := range n {
		c := store.Change{Seq: first + uint64(i), At: at}
		c.Kind = store.ChangeKind(d.Byte())
		c.Tenant = d.Str()
		c.ID = d.Str()
		m := d.Count()
		if m > 0 {
			c.Attrs = make([]store.AttrChange, m)
			for j := range c.Attrs {
				c.Attrs[j] = store.AttrChange{Name: d.Str(), Kind: store.AttrChangeKind(d.Byte())}
			}
		}
		afterDoc, beforeDoc := d.Raw(), d.Raw()
		if d.Err != nil {
			return out, fmt.Errorf("change %d: %w", c.Seq, d.Err)
		}
		if c.Seq <= after {
			continue
		}
		var err error
		if len(afterDoc) > 0 {
			if c.After, err = codec.DecodeEntity(afterDoc); err != nil {
				return out, fmt.Errorf("change %d: %w", c.Seq, err)
			}
		}
		if len(beforeDoc) > 0 {
			if c.Before, err = codec.DecodeEntity(beforeDoc); err != nil {
				return out, fmt.Errorf("change %d: %w", c.Seq, err)
			}
		}
		out = append(out, c)
	}
	return out, nil
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
	// First the last number given, then the rows: every change numbered up
	// to it committed before the rows are read, so a missing one was trimmed.
	// The row holding after+1 starts at or before it; every row holds at
	// least one change, so max+1 rows are enough.
	b := &pgx.Batch{}
	b.Queue(`SELECT last FROM change_seq WHERE id = 1`)
	b.Queue(`SELECT seq, n, data FROM changes
		WHERE seq >= COALESCE((SELECT max(seq) FROM changes WHERE seq <= $1), 0) ORDER BY seq LIMIT $2`,
		int64(after+1), max+1)
	br := s.pool.SendBatch(ctx, b)
	defer br.Close()
	var last int64
	if err := br.QueryRow().Scan(&last); err != nil {
		return nil, fmt.Errorf("postgres: read changes: %w", err)
	}
	rows, err := br.Query()
	if err != nil {
		return nil, fmt.Errorf("postgres: read changes: %w", err)
	}
	defer rows.Close()
	var out []store.Change
	for len(out) < max && rows.Next() {
		var seq int64
		var n int
		var data []byte
		if err := rows.Scan(&seq, &n, &data); err != nil {
			return nil, fmt.Errorf("postgres: read changes: %w", err)
		}
		if out, err = decodeChanges(out, uint64(seq), n, data, after); err != nil {
			return nil, fmt.Errorf("postgres: read changes: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: read changes: %w", err)
	}
	switch {
	case len(out) == 0 && uint64(last) > after, len(out) > 0 && out[0].Seq != after+1:
		return nil, store.ErrChangesGone
	case len(out) == 0:
		return nil, nil
	}
	return out[:min(len(out), max)], nil
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

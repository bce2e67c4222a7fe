package sqlite

// The change log: every write group adds one row to changes holding the
// changes its ops made (store.Change), in the group's transaction, so a
// consumer that saved how far it read misses nothing across a crash. A
// change's Seq is the entity version the op gave (entities.ver, kept in
// meta): every op that changes an entity takes the next version, so changes
// are numbered without gaps and without any more state.
//
//	row   = varint(commit time, unix ns) n*change
//	change = kind str(tenant) str(id) uvarint(m) m*(str(name) attrKind) doc(after) doc(before)
//	doc   = uvarint(len) bytes (codec.go's entity encoding; len 0: none)
//
// The before document holds only what store.Change promises: id, types,
// scopes and the attributes the op updated or deleted. Rows are stored
// packed (codec.PackLogRow).

import (
	"context"
	"database/sql"
	"fmt"
	"github.com/zenne-city/zenne/internal/store/codec"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store"
)

var _ store.ChangeLog = (*Store)(nil)

// noteChange adds the change an op made to the group's list. seq is the
// version the op gave the entity.
func (t *tx) noteChange(seq int64, tenant, id string, cur, next *ngsild.Entity) {
	c := store.NewChange(tenant, id, cur, next)
	c.Seq = uint64(seq)
	t.changes = append(t.changes, c)
}

// flushChanges writes the group's changes as one row of the log. docs are
// the encoded final states of touches, reused for changes whose After is
// one of them (most are: an entity written once in the group).
func (t *tx) flushChanges(now time.Time, touches []*touch, docs [][]byte) error {
	if len(t.changes) == 0 {
		return nil
	}
	final := make(map[*ngsild.Entity][]byte, len(touches))
	for i, tc := range touches {
		if tc.final.ent != nil {
			final[tc.final.ent] = docs[i]
		}
	}
	b := make([]byte, 0, 256*len(t.changes))
	b = codec.AppendLogTime(b, now)
	for i := range t.changes {
		c := &t.changes[i]
		c.At = now
		after, ok := final[c.After]
		var before []byte
		var err error
		if !ok && c.After != nil {
			after, err = codec.EncodeEntity(c.After)
		}
		if err == nil && c.Before != nil {
			before, err = codec.EncodeEntity(codec.PriorPart(c))
		}
		if err != nil {
			return fmt.Errorf("log change of %s: %w", c.ID, err)
		}
		b = codec.AppendLogChange(b, c, after, before)
	}
	if _, err := t.w.insChanges.ExecContext(t.ctx, t.changes[0].Seq, len(t.changes), codec.PackLogRow(b)); err != nil {
		return fmt.Errorf("log changes: %w", err)
	}
	return nil
}

// Changes implements store.ChangeLog.
func (s *Store) Changes(ctx context.Context, after uint64, max int) ([]store.Change, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	if max <= 0 || after >= s.LastChange() {
		return nil, nil
	}
	// The row holding after+1 starts at or before it.
	rows, err := s.rdb.QueryContext(ctx, `SELECT seq, n, data FROM changes
		WHERE seq >= COALESCE((SELECT MAX(seq) FROM changes WHERE seq <= ?), 0) ORDER BY seq`, after+1)
	if err != nil {
		return nil, fmt.Errorf("read changes: %w", err)
	}
	defer rows.Close()
	var out []store.Change
	for len(out) < max && rows.Next() {
		var seq uint64
		var n int
		var data []byte
		if err := rows.Scan(&seq, &n, &data); err != nil {
			return nil, fmt.Errorf("read changes: %w", err)
		}
		if out, err = codec.DecodeLogRow(out, seq, n, data, after); err != nil {
			return nil, err
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read changes: %w", err)
	}
	if len(out) == 0 || out[0].Seq != after+1 {
		return nil, store.ErrChangesGone
	}
	return out[:min(len(out), max)], nil
}

// LastChange implements store.ChangeLog.
func (s *Store) LastChange() uint64 { return uint64(s.lastVer.Load()) }

// TrimChanges implements store.ChangeLog.
func (s *Store) TrimChanges(ctx context.Context, upTo uint64) error {
	return s.do(ctx, func(ctx context.Context, c *sql.Conn) error {
		_, err := c.ExecContext(ctx, `DELETE FROM changes WHERE seq <= ? AND seq + n - 1 <= ?`, upTo, upTo)
		return err
	})
}

// WatchChanges implements store.ChangeLog.
func (s *Store) WatchChanges(f func([]store.Change)) {
	s.watch.Store(&f)
}

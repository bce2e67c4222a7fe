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
// scopes and the attributes the op updated or deleted.

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"github.com/zenne-city/zenne/internal/store/codec"
	"slices"
	"strings"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store"
)

var _ store.ChangeLog = (*Store)(nil)

// noteChange adds the change an op made to the group's list. seq is the
// version the op gave the entity.
func (t *tx) noteChange(seq int64, tenant, id string, cur, next *ngsild.Entity) {
	c := store.Change{Seq: uint64(seq), Tenant: tenant, ID: id, Before: cur, After: next}
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
	t.changes = append(t.changes, c)
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
	b = binary.AppendVarint(b, now.UnixNano())
	for i := range t.changes {
		c := &t.changes[i]
		c.At = now
		var err error
		if b, err = appendChange(b, c, final); err != nil {
			return fmt.Errorf("log change of %s: %w", c.ID, err)
		}
	}
	if _, err := t.w.insChanges.ExecContext(t.ctx, t.changes[0].Seq, len(t.changes), b); err != nil {
		return fmt.Errorf("log changes: %w", err)
	}
	return nil
}

func appendChange(b []byte, c *store.Change, docs map[*ngsild.Entity][]byte) ([]byte, error) {
	b = append(b, byte(c.Kind))
	b = codec.AppendStr(b, c.Tenant)
	b = codec.AppendStr(b, c.ID)
	b = binary.AppendUvarint(b, uint64(len(c.Attrs)))
	for _, a := range c.Attrs {
		b = codec.AppendStr(b, a.Name)
		b = append(b, byte(a.Kind))
	}
	after, ok := docs[c.After]
	if !ok && c.After != nil {
		var err error
		if after, err = codec.EncodeEntity(c.After); err != nil {
			return nil, err
		}
	}
	b = codec.AppendStr(b, string(after))
	var before []byte
	if c.Before != nil {
		var err error
		if before, err = codec.EncodeEntity(priorPart(c)); err != nil {
			return nil, err
		}
	}
	return codec.AppendStr(b, string(before)), nil
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
		if out, err = decodeChanges(out, seq, n, data, after); err != nil {
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

package codec

// The stored form of one store.Change, as the NATS bus carries it: a
// message holds a whole change, so a consumer on another instance needs
// nothing else (the entities travel as EncodeEntity documents).
//
//	change = 0x01 uvarint(seq) str(tenant) time(at) kind str(id)
//	         uvarint(n) n*(str(name) attrKind) doc(before) doc(after)
//	kind, attrKind = byte (store.ChangeKind, store.AttrChangeKind; 1..3)
//	doc    = uvarint(len) bytes (EncodeEntity's document; len 0: nil)
//
// The version byte comes first so the encoding can change while old
// messages are still kept in a stream.

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store"
)

// ChangeV1 is the first byte of an encoded change.
const ChangeV1 = 0x01

// ErrCorruptChange: the bytes are not an encoded change.
var ErrCorruptChange = errors.New("corrupt change")

// AppendChange appends c's encoding to b.
func AppendChange(b []byte, c *store.Change) ([]byte, error) {
	b = append(b, ChangeV1)
	b = binary.AppendUvarint(b, c.Seq)
	b = AppendStr(b, c.Tenant)
	b = AppendTime(b, c.At)
	b = append(b, byte(c.Kind))
	b = AppendStr(b, c.ID)
	b = binary.AppendUvarint(b, uint64(len(c.Attrs)))
	for _, a := range c.Attrs {
		b = AppendStr(b, a.Name)
		b = append(b, byte(a.Kind))
	}
	var err error
	if b, err = appendDoc(b, c.Before); err != nil {
		return nil, fmt.Errorf("encode change %d (before): %w", c.Seq, err)
	}
	if b, err = appendDoc(b, c.After); err != nil {
		return nil, fmt.Errorf("encode change %d (after): %w", c.Seq, err)
	}
	return b, nil
}

func appendDoc(b []byte, e *ngsild.Entity) ([]byte, error) {
	if e == nil {
		return append(b, 0), nil
	}
	doc, err := EncodeEntity(e)
	if err != nil {
		return nil, err
	}
	b = binary.AppendUvarint(b, uint64(len(doc)))
	return append(b, doc...), nil
}

// DecodeChange decodes what AppendChange wrote. It fails, without
// panicking, on anything else: a message from an unknown version, a
// truncated one, trailing bytes.
func DecodeChange(b []byte) (store.Change, error) {
	if len(b) == 0 || b[0] != ChangeV1 {
		return store.Change{}, ErrCorruptChange
	}
	d := &Decoder{B: b[1:]}
	var c store.Change
	c.Seq = d.Uvarint()
	c.Tenant = d.Str()
	c.At = d.Time()
	c.Kind = store.ChangeKind(d.Byte())
	c.ID = d.Str()
	if n := d.Count(); n > 0 {
		c.Attrs = make([]store.AttrChange, n)
		for i := range c.Attrs {
			c.Attrs[i] = store.AttrChange{Name: d.Str(), Kind: store.AttrChangeKind(d.Byte())}
			if k := c.Attrs[i].Kind; k < store.AttrCreated || k > store.AttrDeleted {
				d.Fail()
			}
		}
	}
	before, after := d.Raw(), d.Raw()
	switch {
	case d.Err != nil:
		return store.Change{}, ErrCorruptChange
	case len(d.B) > 0:
		return store.Change{}, fmt.Errorf("%w: %d bytes after the end", ErrCorruptChange, len(d.B))
	case c.Kind < store.EntityCreated || c.Kind > store.EntityDeleted:
		return store.Change{}, fmt.Errorf("%w: unknown kind %d", ErrCorruptChange, c.Kind)
	}
	var err error
	if c.Before, err = decodeDoc(before); err != nil {
		return store.Change{}, fmt.Errorf("%w: change %d (before): %w", ErrCorruptChange, c.Seq, err)
	}
	if c.After, err = decodeDoc(after); err != nil {
		return store.Change{}, fmt.Errorf("%w: change %d (after): %w", ErrCorruptChange, c.Seq, err)
	}
	return c, nil
}

func decodeDoc(doc []byte) (*ngsild.Entity, error) {
	if len(doc) == 0 {
		return nil, nil
	}
	// Only the binary form: DecodeEntity also reads JSON (old stored
	// documents), which a change never holds.
	if doc[0] != DocV1 {
		return nil, ErrCorrupt
	}
	return DecodeEntity(doc)
}

// PriorPart is the part of c.Before a logged change keeps (store.Change
// promises no more): the id, types, scopes and times, and the attributes
// the op updated or deleted; all of it for a deleted entity. The bus
// publishes this part too, so a change reads the same from the bus, from
// the log and on every instance, and messages stay small.
func PriorPart(c *store.Change) *ngsild.Entity {
	if c.Before == nil || c.Kind == store.EntityDeleted {
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

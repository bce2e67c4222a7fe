package codec

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/zenne-city/zenne/internal/store"
)

// The change log row both backends keep: one row per write group, holding
// its changes numbered from the row's first Seq on:
//
//	row    = varint(commit time, unix ns) n*change
//	change = kind str(tenant) str(id) uvarint(m) m*(str(name) attrKind)
//	         bytes(after document) bytes(before document: PriorPart)
//
// Documents are EncodeEntity's, empty for none.

// AppendLogTime starts a log row committed at t.
func AppendLogTime(b []byte, t time.Time) []byte { return binary.AppendVarint(b, t.UnixNano()) }

// AppendLogChange appends c to a log row with its encoded after and before
// (PriorPart) documents, which the caller may already have.
func AppendLogChange(b []byte, c *store.Change, after, before []byte) []byte {
	b = append(b, byte(c.Kind))
	b = AppendStr(b, c.Tenant)
	b = AppendStr(b, c.ID)
	b = binary.AppendUvarint(b, uint64(len(c.Attrs)))
	for _, a := range c.Attrs {
		b = AppendStr(b, a.Name)
		b = append(b, byte(a.Kind))
	}
	b = appendBytes(b, after)
	return appendBytes(b, before)
}

// appendBytes is AppendStr of p without converting it to a string.
func appendBytes(b, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

// DecodeLogRow appends the changes of one log row, numbered from first on,
// n of them, with Seq > after to out.
func DecodeLogRow(out []store.Change, first uint64, n int, row []byte, after uint64) ([]store.Change, error) {
	d := &Decoder{B: row}
	at := time.Unix(0, d.Varint())
	for i := range n {
		c := store.Change{Seq: first + uint64(i), At: at}
		c.Kind = store.ChangeKind(d.Byte())
		c.Tenant = d.Str()
		c.ID = d.Str()
		if m := d.Count(); m > 0 {
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
			if c.After, err = DecodeEntity(afterDoc); err != nil {
				return out, fmt.Errorf("change %d: %w", c.Seq, err)
			}
		}
		if len(beforeDoc) > 0 {
			if c.Before, err = DecodeEntity(beforeDoc); err != nil {
				return out, fmt.Errorf("change %d: %w", c.Seq, err)
			}
		}
		out = append(out, c)
	}
	return out, nil
}

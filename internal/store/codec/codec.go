// Package codec is the stored form of an entity, shared by the backends
// (SQLite, PostgreSQL) and the bus: a compact binary encoding of
// ngsild.Entity, several times faster to encode and decode than JSON
// (decoding is on the query path), and the primitives the stores' other
// records (history, change log) are written with.
package codec

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
)

// Values keep JSON semantics: numbers decode as float64, other Go types are
// stored as their JSON form. Documents starting with '{' are JSON (read only).
//
//	doc    = 0x01 entity
//	entity = str(id) list(str types) list(str scopes) time(created) time(modified) uvarint(n) n*(str(name) list(attr))
//	attr   = 0x00 (nil) | 0x01 kind value str(datasetId) time(observedAt) str(unitCode) list(str objectType)
//	         time(created) time(modified) uvarint(n) n*(str(name) attr)
//	kind   = byte code (0 = other, followed by str)
//	time   = 0x00 (zero) | 0x01 varint(unix s) uvarint(ns) (UTC) | 0x02 varint(s) uvarint(ns) varint(offset s)
//	value  = tag: 0 null, 1 false, 2 true, 3 float64 (8 bytes LE), 4 str, 5 array uvarint(n) n*value,
//	         6 object uvarint(n) n*(str value)
const DocV1 = 0x01

var KindCodes = []ngsild.Kind{"", ngsild.Property, ngsild.Relationship, ngsild.GeoProperty, ngsild.LanguageProperty,
	ngsild.JsonProperty, ngsild.VocabProperty, ngsild.ListProperty, ngsild.ListRelationship}

// KindCode is k's code in kindCodes, 0 for a kind without one.
func KindCode(k ngsild.Kind) byte {
	if i := slices.Index(KindCodes[1:], k); i >= 0 {
		return byte(i + 1)
	}
	return 0
}

func EncodeEntity(e *ngsild.Entity) ([]byte, error) {
	b := make([]byte, 0, 512)
	b = append(b, DocV1)
	b = AppendStr(b, e.ID)
	b = AppendStrs(b, e.Types)
	b = AppendStrs(b, e.Scopes)
	b = AppendTime(b, e.CreatedAt)
	b = AppendTime(b, e.ModifiedAt)
	b = binary.AppendUvarint(b, uint64(len(e.Attrs)))
	var err error
	for name, insts := range e.Attrs {
		b = AppendStr(b, name)
		b = binary.AppendUvarint(b, uint64(len(insts)))
		for _, a := range insts {
			if b, err = AppendAttr(b, a, 0); err != nil {
				return nil, err
			}
		}
	}
	return b, nil
}

func AppendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func AppendStrs(b []byte, ss []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(ss)))
	for _, s := range ss {
		b = AppendStr(b, s)
	}
	return b
}

func AppendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, 0)
	}
	_, off := t.Zone()
	if off == 0 {
		b = append(b, 1)
	} else {
		b = append(b, 2)
	}
	b = binary.AppendVarint(b, t.Unix())
	b = binary.AppendUvarint(b, uint64(t.Nanosecond()))
	if off != 0 {
		b = binary.AppendVarint(b, int64(off))
	}
	return b
}

const MaxDepth = 64

func AppendAttr(b []byte, a *ngsild.Attribute, depth int) ([]byte, error) {
	if a == nil {
		return append(b, 0), nil
	}
	if depth > MaxDepth {
		return nil, errors.New("attribute nesting too deep")
	}
	code := KindCode(a.Kind)
	b = append(b, 1, code)
	if code == 0 {
		b = AppendStr(b, string(a.Kind))
	}
	var err error
	if b, err = AppendValue(b, a.Value, 0); err != nil {
		return nil, err
	}
	b = AppendStr(b, a.DatasetID)
	b = AppendTime(b, a.ObservedAt)
	b = AppendStr(b, a.UnitCode)
	b = AppendStrs(b, a.ObjectType)
	b = AppendTime(b, a.CreatedAt)
	b = AppendTime(b, a.ModifiedAt)
	b = binary.AppendUvarint(b, uint64(len(a.Sub)))
	for name, s := range a.Sub {
		b = AppendStr(b, name)
		if b, err = AppendAttr(b, s, depth+1); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func AppendValue(b []byte, v any, depth int) ([]byte, error) {
	if depth > MaxDepth {
		return nil, errors.New("value nesting too deep")
	}
	switch x := v.(type) {
	case nil:
		return append(b, 0), nil
	case bool:
		if x {
			return append(b, 2), nil
		}
		return append(b, 1), nil
	case float64:
		return binary.LittleEndian.AppendUint64(append(b, 3), math.Float64bits(x)), nil
	case string:
		return AppendStr(append(b, 4), x), nil
	case []any:
		b = binary.AppendUvarint(append(b, 5), uint64(len(x)))
		var err error
		for _, el := range x {
			if b, err = AppendValue(b, el, depth+1); err != nil {
				return nil, err
			}
		}
		return b, nil
	case map[string]any:
		b = binary.AppendUvarint(append(b, 6), uint64(len(x)))
		var err error
		for k, el := range x {
			b = AppendStr(b, k)
			if b, err = AppendValue(b, el, depth+1); err != nil {
				return nil, err
			}
		}
		return b, nil
	}
	if f, ok := ToFloat(v); ok {
		return binary.LittleEndian.AppendUint64(append(b, 3), math.Float64bits(f)), nil
	}
	// Anything else is stored as what JSON makes of it.
	j, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode value: %w", err)
	}
	var g any
	if err := json.Unmarshal(j, &g); err != nil {
		return nil, fmt.Errorf("encode value: %w", err)
	}
	return AppendValue(b, g, depth+1)
}

var ErrCorrupt = errors.New("corrupt entity document")

type Decoder struct {
	B   []byte
	Err error
}

func DecodeEntity(doc []byte) (*ngsild.Entity, error) {
	if len(doc) > 0 && doc[0] == '{' {
		e := new(ngsild.Entity)
		if err := json.Unmarshal(doc, e); err != nil {
			return nil, err
		}
		return e, nil
	}
	if len(doc) == 0 || doc[0] != DocV1 {
		return nil, ErrCorrupt
	}
	d := &Decoder{B: doc[1:]}
	e := &ngsild.Entity{}
	e.ID = d.Str()
	e.Types = d.Strs()
	e.Scopes = d.Strs()
	e.CreatedAt = d.Time()
	e.ModifiedAt = d.Time()
	if n := d.Count(); n > 0 {
		e.Attrs = make(map[string][]*ngsild.Attribute, n)
		for range n {
			name := d.Str()
			m := d.Count()
			insts := make([]*ngsild.Attribute, m)
			for i := range insts {
				insts[i] = d.Attr(0)
			}
			e.Attrs[name] = insts
		}
	}
	if d.Err != nil {
		return nil, d.Err
	}
	return e, nil
}

func (d *Decoder) Fail() {
	if d.Err == nil {
		d.Err = ErrCorrupt
	}
	d.B = nil
}

func (d *Decoder) Uvarint() uint64 {
	v, n := binary.Uvarint(d.B)
	if n <= 0 {
		d.Fail()
		return 0
	}
	d.B = d.B[n:]
	return v
}

func (d *Decoder) Varint() int64 {
	v, n := binary.Varint(d.B)
	if n <= 0 {
		d.Fail()
		return 0
	}
	d.B = d.B[n:]
	return v
}

// Count reads a collection length, bounded by the bytes left (every element
// takes at least one byte) so corrupt input cannot make huge allocations.
func (d *Decoder) Count() int {
	n := d.Uvarint()
	if n > uint64(len(d.B)) {
		d.Fail()
		return 0
	}
	return int(n)
}

func (d *Decoder) Byte() byte {
	if len(d.B) == 0 {
		d.Fail()
		return 0
	}
	c := d.B[0]
	d.B = d.B[1:]
	return c
}

func (d *Decoder) Str() string { return string(d.Raw()) }

func (d *Decoder) Strs() []string {
	n := d.Count()
	if n == 0 {
		return nil
	}
	ss := make([]string, n)
	for i := range ss {
		ss[i] = d.Str()
	}
	return ss
}

func (d *Decoder) Time() time.Time {
	switch d.Byte() {
	case 0:
		return time.Time{}
	case 1:
		s, ns := d.Varint(), d.Uvarint()
		return time.Unix(s, int64(ns)).UTC()
	case 2:
		s, ns, off := d.Varint(), d.Uvarint(), d.Varint()
		return time.Unix(s, int64(ns)).In(time.FixedZone("", int(off)))
	}
	d.Fail()
	return time.Time{}
}

func (d *Decoder) Attr(depth int) *ngsild.Attribute {
	if d.Byte() == 0 || d.Err != nil || depth > MaxDepth {
		if depth > MaxDepth {
			d.Fail()
		}
		return nil
	}
	a := &ngsild.Attribute{Kind: d.Kind()}
	if d.Err != nil {
		return nil
	}
	a.Value = d.Value(0)
	a.DatasetID = d.Str()
	a.ObservedAt = d.Time()
	a.UnitCode = d.Str()
	a.ObjectType = d.Strs()
	a.CreatedAt = d.Time()
	a.ModifiedAt = d.Time()
	if n := d.Count(); n > 0 {
		a.Sub = make(map[string]*ngsild.Attribute, n)
		for range n {
			name := d.Str()
			a.Sub[name] = d.Attr(depth + 1)
		}
	}
	return a
}

func (d *Decoder) Value(depth int) any {
	if depth > MaxDepth {
		d.Fail()
		return nil
	}
	switch d.Byte() {
	case 0:
		return nil
	case 1:
		return false
	case 2:
		return true
	case 3:
		if len(d.B) < 8 {
			d.Fail()
			return nil
		}
		f := math.Float64frombits(binary.LittleEndian.Uint64(d.B))
		d.B = d.B[8:]
		return f
	case 4:
		return d.Str()
	case 5:
		n := d.Count()
		a := make([]any, n)
		for i := range a {
			a[i] = d.Value(depth + 1)
		}
		return a
	case 6:
		n := d.Count()
		m := make(map[string]any, n)
		for range n {
			k := d.Str()
			m[k] = d.Value(depth + 1)
		}
		return m
	}
	d.Fail()
	return nil
}

// Kind reads an attribute's Kind code (and name, for a Kind without code).
func (d *Decoder) Kind() ngsild.Kind {
	switch code := d.Byte(); {
	case code == 0:
		return ngsild.Kind(d.Str())
	case int(code) < len(KindCodes):
		return KindCodes[code]
	}
	d.Fail()
	return ""
}

// Raw reads a string without copying it.
func (d *Decoder) Raw() []byte {
	n := d.Uvarint()
	if n > uint64(len(d.B)) {
		d.Fail()
		return nil
	}
	s := d.B[:n]
	d.B = d.B[n:]
	return s
}

// SkipAttrRest skips what follows an attribute's value.
func (d *Decoder) SkipAttrRest(depth int) {
	d.SkipStr() // datasetId
	d.SkipTime()
	d.SkipStr() // unitCode
	for n := d.Count(); n > 0; n-- {
		d.SkipStr() // objectType
	}
	d.SkipTime()
	d.SkipTime()
	for n := d.Count(); n > 0 && d.Err == nil; n-- {
		d.SkipStr()
		d.SkipAttr(depth + 1)
	}
}

func (d *Decoder) SkipAttr(depth int) {
	if depth > MaxDepth {
		d.Fail()
		return
	}
	if d.Byte() == 0 || d.Err != nil {
		return
	}
	d.Kind()
	d.SkipValue(0)
	d.SkipAttrRest(depth)
}

func (d *Decoder) SkipStr() { d.Raw() }

func (d *Decoder) SkipTime() {
	switch d.Byte() {
	case 0:
	case 1:
		d.Varint()
		d.Uvarint()
	case 2:
		d.Varint()
		d.Uvarint()
		d.Varint()
	default:
		d.Fail()
	}
}

func (d *Decoder) SkipValue(depth int) {
	if depth > MaxDepth {
		d.Fail()
		return
	}
	switch d.Byte() {
	case 0, 1, 2:
	case 3:
		if len(d.B) < 8 {
			d.Fail()
			return
		}
		d.B = d.B[8:]
	case 4:
		d.SkipStr()
	case 5:
		for n := d.Count(); n > 0 && d.Err == nil; n-- {
			d.SkipValue(depth + 1)
		}
	case 6:
		for n := d.Count(); n > 0 && d.Err == nil; n-- {
			d.SkipStr()
			d.SkipValue(depth + 1)
		}
	default:
		d.Fail()
	}
}

// ToFloat reports v as a float64 if it is a Go number (entities built in Go
// may hold ints; decoded JSON holds float64).
func ToFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case int32:
		return float64(x), true
	case uint:
		return float64(x), true
	case uint64:
		return float64(x), true
	case uint32:
		return float64(x), true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	}
	return 0, false
}

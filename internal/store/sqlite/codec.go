package sqlite

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

// The stored document is a compact binary encoding of ngsild.Entity, several
// times faster to encode and decode than JSON (decoding is on the query path).
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
const docV1 = 0x01

var kindCodes = []ngsild.Kind{"", ngsild.Property, ngsild.Relationship, ngsild.GeoProperty, ngsild.LanguageProperty,
	ngsild.JsonProperty, ngsild.VocabProperty, ngsild.ListProperty, ngsild.ListRelationship}

// kindCode is k's code in kindCodes, 0 for a kind without one.
func kindCode(k ngsild.Kind) byte {
	if i := slices.Index(kindCodes[1:], k); i >= 0 {
		return byte(i + 1)
	}
	return 0
}

func encodeEntity(e *ngsild.Entity) ([]byte, error) {
	b := make([]byte, 0, 512)
	b = append(b, docV1)
	b = appendStr(b, e.ID)
	b = appendStrs(b, e.Types)
	b = appendStrs(b, e.Scopes)
	b = appendTime(b, e.CreatedAt)
	b = appendTime(b, e.ModifiedAt)
	b = binary.AppendUvarint(b, uint64(len(e.Attrs)))
	var err error
	for name, insts := range e.Attrs {
		b = appendStr(b, name)
		b = binary.AppendUvarint(b, uint64(len(insts)))
		for _, a := range insts {
			if b, err = appendAttr(b, a, 0); err != nil {
				return nil, err
			}
		}
	}
	return b, nil
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendStrs(b []byte, ss []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(ss)))
	for _, s := range ss {
		b = appendStr(b, s)
	}
	return b
}

func appendTime(b []byte, t time.Time) []byte {
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

const maxDepth = 64

func appendAttr(b []byte, a *ngsild.Attribute, depth int) ([]byte, error) {
	if a == nil {
		return append(b, 0), nil
	}
	if depth > maxDepth {
		return nil, errors.New("attribute nesting too deep")
	}
	code := kindCode(a.Kind)
	b = append(b, 1, code)
	if code == 0 {
		b = appendStr(b, string(a.Kind))
	}
	var err error
	if b, err = appendValue(b, a.Value, 0); err != nil {
		return nil, err
	}
	b = appendStr(b, a.DatasetID)
	b = appendTime(b, a.ObservedAt)
	b = appendStr(b, a.UnitCode)
	b = appendStrs(b, a.ObjectType)
	b = appendTime(b, a.CreatedAt)
	b = appendTime(b, a.ModifiedAt)
	b = binary.AppendUvarint(b, uint64(len(a.Sub)))
	for name, s := range a.Sub {
		b = appendStr(b, name)
		if b, err = appendAttr(b, s, depth+1); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func appendValue(b []byte, v any, depth int) ([]byte, error) {
	if depth > maxDepth {
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
		return appendStr(append(b, 4), x), nil
	case []any:
		b = binary.AppendUvarint(append(b, 5), uint64(len(x)))
		var err error
		for _, el := range x {
			if b, err = appendValue(b, el, depth+1); err != nil {
				return nil, err
			}
		}
		return b, nil
	case map[string]any:
		b = binary.AppendUvarint(append(b, 6), uint64(len(x)))
		var err error
		for k, el := range x {
			b = appendStr(b, k)
			if b, err = appendValue(b, el, depth+1); err != nil {
				return nil, err
			}
		}
		return b, nil
	}
	if f, ok := toFloat(v); ok {
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
	return appendValue(b, g, depth+1)
}

var errCorrupt = errors.New("corrupt entity document")

type decoder struct {
	b   []byte
	err error
}

func decodeEntity(doc []byte) (*ngsild.Entity, error) {
	if len(doc) > 0 && doc[0] == '{' {
		e := new(ngsild.Entity)
		if err := json.Unmarshal(doc, e); err != nil {
			return nil, err
		}
		return e, nil
	}
	if len(doc) == 0 || doc[0] != docV1 {
		return nil, errCorrupt
	}
	d := &decoder{b: doc[1:]}
	e := &ngsild.Entity{}
	e.ID = d.str()
	e.Types = d.strs()
	e.Scopes = d.strs()
	e.CreatedAt = d.time()
	e.ModifiedAt = d.time()
	if n := d.count(); n > 0 {
		e.Attrs = make(map[string][]*ngsild.Attribute, n)
		for range n {
			name := d.str()
			m := d.count()
			insts := make([]*ngsild.Attribute, m)
			for i := range insts {
				insts[i] = d.attr(0)
			}
			e.Attrs[name] = insts
		}
	}
	if d.err != nil {
		return nil, d.err
	}
	return e, nil
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errCorrupt
	}
	d.b = nil
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a collection length, bounded by the bytes left (every element
// takes at least one byte) so corrupt input cannot make huge allocations.
func (d *decoder) count() int {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return 0
	}
	return int(n)
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.fail()
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) str() string { return string(d.raw()) }

func (d *decoder) strs() []string {
	n := d.count()
	if n == 0 {
		return nil
	}
	ss := make([]string, n)
	for i := range ss {
		ss[i] = d.str()
	}
	return ss
}

func (d *decoder) time() time.Time {
	switch d.byte() {
	case 0:
		return time.Time{}
	case 1:
		s, ns := d.varint(), d.uvarint()
		return time.Unix(s, int64(ns)).UTC()
	case 2:
		s, ns, off := d.varint(), d.uvarint(), d.varint()
		return time.Unix(s, int64(ns)).In(time.FixedZone("", int(off)))
	}
	d.fail()
	return time.Time{}
}

func (d *decoder) attr(depth int) *ngsild.Attribute {
	if d.byte() == 0 || d.err != nil || depth > maxDepth {
		if depth > maxDepth {
			d.fail()
		}
		return nil
	}
	a := &ngsild.Attribute{Kind: d.kind()}
	if d.err != nil {
		return nil
	}
	a.Value = d.value(0)
	a.DatasetID = d.str()
	a.ObservedAt = d.time()
	a.UnitCode = d.str()
	a.ObjectType = d.strs()
	a.CreatedAt = d.time()
	a.ModifiedAt = d.time()
	if n := d.count(); n > 0 {
		a.Sub = make(map[string]*ngsild.Attribute, n)
		for range n {
			name := d.str()
			a.Sub[name] = d.attr(depth + 1)
		}
	}
	return a
}

func (d *decoder) value(depth int) any {
	if depth > maxDepth {
		d.fail()
		return nil
	}
	switch d.byte() {
	case 0:
		return nil
	case 1:
		return false
	case 2:
		return true
	case 3:
		if len(d.b) < 8 {
			d.fail()
			return nil
		}
		f := math.Float64frombits(binary.LittleEndian.Uint64(d.b))
		d.b = d.b[8:]
		return f
	case 4:
		return d.str()
	case 5:
		n := d.count()
		a := make([]any, n)
		for i := range a {
			a[i] = d.value(depth + 1)
		}
		return a
	case 6:
		n := d.count()
		m := make(map[string]any, n)
		for range n {
			k := d.str()
			m[k] = d.value(depth + 1)
		}
		return m
	}
	d.fail()
	return nil
}

// kind reads an attribute's kind code (and name, for a kind without code).
func (d *decoder) kind() ngsild.Kind {
	switch code := d.byte(); {
	case code == 0:
		return ngsild.Kind(d.str())
	case int(code) < len(kindCodes):
		return kindCodes[code]
	}
	d.fail()
	return ""
}

// opaque stands for a value indexValue skipped.
type opaque struct{}

// indexValue decodes a value the query index may hold (memindex.go,
// project): scalars, short strings and a GeoProperty's geometry. Others are
// skipped and returned as opaque{}, which project does not hold either.
func (d *decoder) indexValue(kind ngsild.Kind) any {
	if len(d.b) > 0 {
		switch tag := d.b[0]; {
		case (tag == 5 || tag == 6) && kind != ngsild.GeoProperty:
			d.skipValue(0)
			return opaque{}
		case tag == 4:
			if n, w := binary.Uvarint(d.b[1:]); w > 0 && n > maxMemText {
				d.skipValue(0)
				return opaque{}
			}
		}
	}
	return d.value(0)
}

// raw reads a string without copying it.
func (d *decoder) raw() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	s := d.b[:n]
	d.b = d.b[n:]
	return s
}

// skipAttrRest skips what follows an attribute's value.
func (d *decoder) skipAttrRest(depth int) {
	d.skipStr() // datasetId
	d.skipTime()
	d.skipStr() // unitCode
	for n := d.count(); n > 0; n-- {
		d.skipStr() // objectType
	}
	d.skipTime()
	d.skipTime()
	for n := d.count(); n > 0 && d.err == nil; n-- {
		d.skipStr()
		d.skipAttr(depth + 1)
	}
}

func (d *decoder) skipAttr(depth int) {
	if depth > maxDepth {
		d.fail()
		return
	}
	if d.byte() == 0 || d.err != nil {
		return
	}
	d.kind()
	d.skipValue(0)
	d.skipAttrRest(depth)
}

func (d *decoder) skipStr() { d.raw() }

func (d *decoder) skipTime() {
	switch d.byte() {
	case 0:
	case 1:
		d.varint()
		d.uvarint()
	case 2:
		d.varint()
		d.uvarint()
		d.varint()
	default:
		d.fail()
	}
}

func (d *decoder) skipValue(depth int) {
	if depth > maxDepth {
		d.fail()
		return
	}
	switch d.byte() {
	case 0, 1, 2:
	case 3:
		if len(d.b) < 8 {
			d.fail()
			return
		}
		d.b = d.b[8:]
	case 4:
		d.skipStr()
	case 5:
		for n := d.count(); n > 0 && d.err == nil; n-- {
			d.skipValue(depth + 1)
		}
	case 6:
		for n := d.count(); n > 0 && d.err == nil; n-- {
			d.skipStr()
			d.skipValue(depth + 1)
		}
	default:
		d.fail()
	}
}

// toFloat reports v as a float64 if it is a Go number (entities built in Go
// may hold ints; decoded JSON holds float64).
func toFloat(v any) (float64, bool) {
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

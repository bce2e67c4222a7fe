package sqlite

// History: every write records the attribute instances it adds or changes,
// in the same transaction as the current state, as one row of h_head per
// entity write (a "head record"): one more row per write, however many
// attributes changed, so recording costs little on the write path.
//
// A background job (histseal.go) later moves head records into compressed
// chunks, one per series (an attribute instance: entity, name, datasetId)
// and UTC day (h_chunks, encoded by internal/tsz). Readers combine chunks and
// head records in one read transaction, so they never see a record twice or
// miss one while it moves.
//
//	head record = 0x01 uvarint(n) n*uvarint(type nid) uvarint(m) m*instance
//	instance    = uvarint(name nid) str(datasetId) sample
//	sample      = varint(T) varint(R) 0x00 str(rest) | varint(T) varint(R) 0x01 float64 (8 bytes LE) str(rest)
//	rest        = flags attr (codec.go) of the instance without what T, R and V hold
//
// T is the instance's observedAt, or its modifiedAt when it has none; R is
// its modifiedAt (when it was recorded), both in ns since the epoch.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/zenne-city/zenne/internal/store/codec"
	"hash/fnv"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store"
	"github.com/zenne-city/zenne/internal/tsz"
)

const headV1 = 0x01

// rest flags.
const (
	restObserved = 1 << iota // the instance had observedAt (= T)
	restNum                  // the value is a number, held in the sample's V
)

var errCorruptHistory = errors.New("corrupt history record")

// histEntry is what one op records: the entity's types and instances.
type histEntry struct {
	tid   int64
	id    string
	types []string
	insts []store.Recorded
}

// record notes what an applied op records in history (see store.Op).
func (t *tx) record(tid int64, op store.Op, cur, next *ngsild.Entity) {
	if op.History != nil {
		types := op.History.Types
		if next != nil {
			types = next.Types
		}
		if len(op.History.Instances) > 0 {
			t.hist = append(t.hist, histEntry{tid: tid, id: op.ID, types: types, insts: op.History.Instances})
		}
		return
	}
	if next == nil || t.w.s.opts.NoHistory {
		return
	}
	var insts []store.Recorded
	for name, as := range next.Attrs {
		var old []*ngsild.Attribute
		if cur != nil {
			old = cur.Attrs[name]
		}
		for _, a := range as {
			if !slices.Contains(old, a) { // the same instance: not changed
				insts = append(insts, store.Recorded{Name: name, Attr: a})
			}
		}
	}
	if len(insts) > 0 {
		t.hist = append(t.hist, histEntry{tid: tid, id: op.ID, types: next.Types, insts: insts})
	}
}

// flushHistory adds the group's head records.
func (t *tx) flushHistory(now time.Time) error {
	if len(t.hist) == 0 {
		return nil
	}
	args := make([]any, 0, 4*len(t.hist))
	// seq orders an entity's head records and says when they were
	// recorded (sealing takes the old ones): the commit time, made strictly
	// increasing so no two records share one.
	seq := max(now.UnixNano(), t.w.lastSeq+1)
	for _, h := range t.hist {
		doc, err := t.headRecord(h, now)
		if err != nil {
			return fmt.Errorf("record history of %s: %w", h.id, err)
		}
		args = append(args, seq, h.tid, h.id, doc)
		t.heads = append(t.heads, headRow{entKey{h.tid, h.id}, seq})
		t.lastSeq = seq
		seq++
	}
	if err := t.execRows(opHead, args); err != nil {
		return fmt.Errorf("record history: %w", err)
	}
	return nil
}

func (t *tx) headRecord(h histEntry, now time.Time) ([]byte, error) {
	b := make([]byte, 0, 64+48*len(h.insts))
	b = append(b, headV1)
	b = binary.AppendUvarint(b, uint64(len(h.types)))
	for _, typ := range h.types {
		nid, err := t.nameID(typ)
		if err != nil {
			return nil, err
		}
		b = binary.AppendUvarint(b, uint64(nid))
	}
	b = binary.AppendUvarint(b, uint64(len(h.insts)))
	for _, in := range h.insts {
		nid, err := t.nameID(in.Name)
		if err != nil {
			return nil, err
		}
		b = binary.AppendUvarint(b, uint64(nid))
		b = codec.AppendStr(b, in.Attr.DatasetID)
		s, err := sampleOf(in.Attr, now)
		if err != nil {
			return nil, err
		}
		b = appendSample(b, s)
	}
	return b, nil
}

// sampleOf is a recorded instance as a tsz sample. now stands in for a
// missing modifiedAt.
func sampleOf(a *ngsild.Attribute, now time.Time) (tsz.Sample, error) {
	s := tsz.Sample{R: unixNano(a.ModifiedAt, now)}
	var flags byte
	stripped := *a
	stripped.ModifiedAt = time.Time{}
	if !a.ObservedAt.IsZero() {
		s.T = a.ObservedAt.UnixNano()
		flags |= restObserved
		stripped.ObservedAt = time.Time{}
	} else {
		s.T = s.R
	}
	if a.Kind == ngsild.Property {
		if f, ok := codec.ToFloat(a.Value); ok {
			s.Num, s.V = true, f
			stripped.Value = nil
			flags |= restNum
		}
	}
	rest, err := codec.AppendAttr(append(make([]byte, 0, 32), flags), &stripped, 0)
	if err != nil {
		return tsz.Sample{}, err
	}
	s.Rest = rest
	return s, nil
}

// attrOf rebuilds the recorded instance a sample holds.
func attrOf(s *tsz.Sample) (*ngsild.Attribute, error) {
	if len(s.Rest) == 0 {
		return nil, errCorruptHistory
	}
	flags := s.Rest[0]
	d := &codec.Decoder{B: s.Rest[1:]}
	a := d.Attr(0)
	if d.Err != nil || a == nil {
		return nil, errCorruptHistory
	}
	if flags&restNum != 0 {
		a.Value = s.V
	}
	if flags&restObserved != 0 {
		a.ObservedAt = time.Unix(0, s.T).UTC()
	}
	a.ModifiedAt = time.Unix(0, s.R).UTC()
	return a, nil
}

func appendSample(b []byte, s tsz.Sample) []byte {
	b = binary.AppendVarint(b, s.T)
	b = binary.AppendVarint(b, s.R)
	if s.Num {
		b = append(b, 1)
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(s.V))
	} else {
		b = append(b, 0)
	}
	return codec.AppendStr(b, string(s.Rest))
}

// headInst is one instance of a decoded head record.
type headInst struct {
	name    int64
	dataset string
	s       tsz.Sample
}

// decodeHead decodes a head record. Rest slices alias doc.
func decodeHead(doc []byte) (types []int64, insts []headInst, err error) {
	if len(doc) == 0 || doc[0] != headV1 {
		return nil, nil, errCorruptHistory
	}
	d := &codec.Decoder{B: doc[1:]}
	if n := d.Count(); n > 0 {
		types = make([]int64, n)
		for i := range types {
			types[i] = int64(d.Uvarint())
		}
	}
	m := d.Count()
	insts = make([]headInst, 0, m)
	for range m {
		in := headInst{name: int64(d.Uvarint()), dataset: d.Str()}
		in.s.T, in.s.R = d.Varint(), d.Varint()
		if d.Byte() == 1 {
			if len(d.B) < 8 {
				d.Fail()
				break
			}
			in.s.Num, in.s.V = true, math.Float64frombits(binary.LittleEndian.Uint64(d.B))
			d.B = d.B[8:]
		}
		in.s.Rest = d.Raw()
		insts = append(insts, in)
	}
	if d.Err != nil {
		return nil, nil, errCorruptHistory
	}
	return types, insts, nil
}

// encodeHead is decodeHead's inverse (for rewriting a record).
func encodeHead(types []int64, insts []headInst) []byte {
	b := []byte{headV1}
	b = binary.AppendUvarint(b, uint64(len(types)))
	for _, t := range types {
		b = binary.AppendUvarint(b, uint64(t))
	}
	b = binary.AppendUvarint(b, uint64(len(insts)))
	for _, in := range insts {
		b = binary.AppendUvarint(b, uint64(in.name))
		b = codec.AppendStr(b, in.dataset)
		b = appendSample(b, in.s)
	}
	return b
}

// instanceID names a recorded instance by its time, its recording time and
// (for a non-default instance) a hash of its datasetId, which stay the same
// when it moves from the head into a chunk: instances of several datasetIds
// written by one request at one time still have ids of their own.
func instanceID(s *tsz.Sample, dataset string) string {
	id := "urn:ngsi-ld:Instance:" + strconv.FormatInt(s.T, 36) + "." + strconv.FormatInt(s.R, 36)
	if dataset != "" {
		h := fnv.New32a()
		h.Write([]byte(dataset))
		id += "." + strconv.FormatUint(uint64(h.Sum32()), 36)
	}
	return id
}

// parseInstanceID reads the time and recording time of an instanceID.
func parseInstanceID(id string) (t, r int64, ok bool) {
	rest, found := strings.CutPrefix(id, "urn:ngsi-ld:Instance:")
	if !found {
		return 0, 0, false
	}
	parts := strings.Split(rest, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return 0, 0, false
	}
	t, err1 := strconv.ParseInt(parts[0], 36, 64)
	r, err2 := strconv.ParseInt(parts[1], 36, 64)
	return t, r, err1 == nil && err2 == nil
}

// dayOf is the UTC day (days since the epoch) of a time in ns.
func dayOf(ns int64) int64 {
	const day = int64(24 * time.Hour)
	d := ns / day
	if ns%day < 0 {
		d--
	}
	return d
}

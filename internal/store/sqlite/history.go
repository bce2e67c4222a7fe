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
//
// A sample (T, R, V, rest) and its encoding are histcore's (SampleOf,
// AppendSample), shared with the PostgreSQL backend: T is the instance's
// observedAt, or its modifiedAt when it has none; R is its modifiedAt (when
// it was recorded), both in ns since the epoch.

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store"
	"github.com/zenne-city/zenne/internal/store/codec"
	"github.com/zenne-city/zenne/internal/store/histcore"
	"github.com/zenne-city/zenne/internal/tsz"
)

const headV1 = 0x01

// histEntry is what one op records: the entity's types and instances.
type histEntry struct {
	tid   int64
	id    string
	types []string
	insts []store.Recorded
}

// record notes what an applied op records in history (see store.Op).
func (t *tx) record(tid int64, op store.Op, cur, next *ngsild.Entity) {
	if types, insts := histcore.Recorded(op, cur, next, !t.w.s.opts.NoHistory); len(insts) > 0 {
		t.hist = append(t.hist, histEntry{tid: tid, id: op.ID, types: types, insts: insts})
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
		s, err := histcore.SampleOf(in.Attr, now)
		if err != nil {
			return nil, err
		}
		b = histcore.AppendSample(b, s)
	}
	return b, nil
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
		return nil, nil, histcore.ErrCorrupt
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
		in.s = histcore.ReadSample(d)
		insts = append(insts, in)
	}
	if d.Err != nil {
		return nil, nil, histcore.ErrCorrupt
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
		b = histcore.AppendSample(b, in.s)
	}
	return b
}

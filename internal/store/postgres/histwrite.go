package postgres

// History: every write records the attribute instances it adds or changes
// in its own transaction, as one h_head row per entity written (a "head
// record"), so history and current state commit together and recording
// costs one multi-row statement per write group.
//
// A background job (histseal.go) later moves head records into compressed
// chunks, one per series (entity, attribute, datasetId) and UTC day. A
// reader (histread.go) reads head records and chunks in one snapshot, so it
// never sees an instance twice or misses one while it moves. The sample of
// an instance, its id and everything else that decides an answer are
// histcore's, shared with the embedded store.
//
//	head record = 0x01 uvarint(n) n*str(type) uvarint(m) m*instance
//	instance    = str(name) str(datasetId) sample (histcore.AppendSample)

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/zenne-city/zenne/internal/store"
	"github.com/zenne-city/zenne/internal/store/codec"
	"github.com/zenne-city/zenne/internal/store/histcore"
	"github.com/zenne-city/zenne/internal/tsz"
)

// histRecord is what one committed op records in history: the attribute
// instances of one entity (see store.Op: the instances its new state holds
// that its old state did not, or Op.History's instances as given).
type histRecord struct {
	Tenant    int64
	EntityID  string
	Types     []string // expanded
	Instances []store.Recorded
}

const headV1 = 0x01

// recordHistory stores recs inside tx, the write's transaction, so history
// and current state commit together; at is the commit time (the modifiedAt
// of instances without observedAt is already set by the broker; at stands
// in when it is not). One statement for the whole group: the rows append at
// the end of h_head's key.
func (s *Store) recordHistory(ctx context.Context, tx pgx.Tx, at time.Time, recs []histRecord) error {
	tids := make([]int64, 0, len(recs))
	ids := make([]string, 0, len(recs))
	docs := make([][]byte, 0, len(recs))
	for i := range recs {
		r := &recs[i]
		if len(r.Instances) == 0 {
			continue
		}
		doc, err := encodeHeadRecord(r.Types, r.Instances, at)
		if err != nil {
			return fmt.Errorf("postgres: recording the history of %s: %w", r.EntityID, err)
		}
		tids = append(tids, r.Tenant)
		ids = append(ids, r.EntityID)
		docs = append(docs, doc)
	}
	if len(docs) == 0 {
		return nil
	}
	// unnest keeps the order given, so an entity's records of one group
	// get increasing seqs in the order the ops applied.
	if _, err := tx.Exec(ctx, `INSERT INTO h_head (at, tid, id, rec)
		SELECT $1, r.tid, r.id, r.rec FROM unnest($2::bigint[], $3::text[], $4::bytea[]) AS r(tid, id, rec)`,
		at.UnixNano(), tids, ids, docs); err != nil {
		return fmt.Errorf("postgres: recording history: %w", err)
	}
	return nil
}

func encodeHeadRecord(types []string, insts []store.Recorded, now time.Time) ([]byte, error) {
	b := make([]byte, 0, 64+64*len(insts))
	b = append(b, headV1)
	b = codec.AppendStrs(b, types)
	b = binary.AppendUvarint(b, uint64(len(insts)))
	for _, in := range insts {
		smp, err := histcore.SampleOf(in.Attr, now)
		if err != nil {
			return nil, err
		}
		b = codec.AppendStr(b, in.Name)
		b = codec.AppendStr(b, in.Attr.DatasetID)
		b = histcore.AppendSample(b, smp)
	}
	return b, nil
}

// headInst is one instance of a decoded head record.
type headInst struct {
	name, dataset string
	s             tsz.Sample
}

// decodeHeadRecord decodes a head record. Rest slices alias doc.
func decodeHeadRecord(doc []byte) (types []string, insts []headInst, err error) {
	if len(doc) == 0 || doc[0] != headV1 {
		return nil, nil, histcore.ErrCorrupt
	}
	d := &codec.Decoder{B: doc[1:]}
	types = d.Strs()
	m := d.Count()
	insts = make([]headInst, 0, m)
	for range m {
		in := headInst{name: d.Str(), dataset: d.Str()}
		in.s = histcore.ReadSample(d)
		insts = append(insts, in)
	}
	if d.Err != nil || len(d.B) != 0 {
		return nil, nil, histcore.ErrCorrupt
	}
	return types, insts, nil
}

// encodeHeadInsts is decodeHeadRecord's inverse (for rewriting a record).
func encodeHeadInsts(types []string, insts []headInst) []byte {
	b := []byte{headV1}
	b = codec.AppendStrs(b, types)
	b = binary.AppendUvarint(b, uint64(len(insts)))
	for _, in := range insts {
		b = codec.AppendStr(b, in.name)
		b = codec.AppendStr(b, in.dataset)
		b = histcore.AppendSample(b, in.s)
	}
	return b
}

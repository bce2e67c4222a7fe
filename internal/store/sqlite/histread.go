package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/zenne-city/zenne/internal/ngsild/temporal"
	"github.com/zenne-city/zenne/internal/store"
	"github.com/zenne-city/zenne/internal/store/codec"
	"github.com/zenne-city/zenne/internal/store/histcore"
	"github.com/zenne-city/zenne/internal/tsz"
)

// seriesKey names a series within one entity: the nid of its attribute
// name and its datasetId.
type seriesKey = histcore.SeriesKey[int64]

// EntityHistory returns one entity's recorded instances that q selects
// (EntityHistories for one entity).
func (s *Store) EntityHistory(ctx context.Context, tenant, id string, attrs []string, q *temporal.Query) (*temporal.Entity, error) {
	hs, err := s.EntityHistories(ctx, tenant, []string{id}, attrs, q)
	if err != nil {
		return nil, err
	}
	if hs[0] == nil {
		return nil, store.ErrNotFound
	}
	return hs[0], nil
}

// EntityHistories returns the recorded instances of a page of entities
// that q selects (nil for an entity without history), from their sealed
// chunks and head records, in one read transaction and with one statement
// per table for all of them: the head records, the series and, for lastN,
// each series' newest day. Only a series that needs more than its newest
// day, or a query without lastN, reads its chunks on its own.
func (s *Store) EntityHistories(ctx context.Context, tenant string, ids []string, attrs []string, q *temporal.Query) ([]*temporal.Entity, error) {
	out := make([]*temporal.Entity, len(ids))
	tid, want, err := s.historyScope(tenant, attrs)
	if errors.Is(err, store.ErrNotFound) {
		return out, nil // none of attrs was ever recorded
	}
	if err != nil {
		return nil, err
	}
	if q == nil {
		q = &temporal.Query{}
	}
	if len(ids) == 0 {
		return out, nil
	}
	seqs, owner := s.headSeqs(tid, ids) // before the read transaction: see headIndex
	tx, err := s.rdb.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback() // it only read

	readers := make([]*histReader, len(ids))
	for i := range readers {
		readers[i] = &histReader{s: s, tx: tx, q: q, want: want, series: map[seriesKey][]tsz.Sample{}}
		if readers[i].lastN() {
			readers[i].enough = readers[i].hasLastN
		}
	}
	// The head first: with lastN, chunks are read newest day first only
	// until a series has enough (hasLastN).
	if err := readHeads(ctx, tx, s.rs.headDocs, seqs, func(seq int64, doc []byte) error {
		return readers[owner[seq]].addHead(doc)
	}); err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	sers, err := s.loadSeries(ctx, tx, tid, ids, readers)
	if err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	add := func(x ser, level int, data []byte) error {
		if level != levelRaw {
			return nil // rollups hold no instances
		}
		samples, err := tsz.Decode(data, nil)
		if err != nil {
			return fmt.Errorf("series %d: %w", x.sid, err)
		}
		readers[x.i].series[x.key] = append(readers[x.i].series[x.key], samples...)
		return nil
	}
	lo, hi := readers[0].days()
	older := make(map[int64]int64, len(sers)) // sid -> the last day still to read
	if readers[0].enough != nil {
		if err := s.newestDays(ctx, tx, sers, lo, hi, func(x ser, day int64, level int, data []byte) error {
			older[x.sid] = day - 1
			return add(x, level, data)
		}); err != nil {
			return nil, fmt.Errorf("read history: %w", err)
		}
	}
	for _, x := range sers {
		top := hi
		if readers[0].enough != nil {
			day, ok := older[x.sid]
			if !ok || readers[x.i].enough(x.key, day+1) {
				continue // nothing in the window, or the newest day was enough
			}
			top = day
		}
		if err := readers[x.i].scanSeries(ctx, x.sid, x.key, lo, top, func(_ int64, level int, data []byte) error {
			return add(x, level, data)
		}); err != nil {
			return nil, err
		}
	}
	for i, id := range ids {
		if readers[i].found {
			if out[i], err = readers[i].entity(id); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// historyScope checks the store is open and resolves the tenant and the
// attributes (nil: all). It returns ErrNotFound when none of attrs was
// ever recorded.
func (s *Store) historyScope(tenant string, attrs []string) (tid int64, want map[int64]bool, err error) {
	if err := s.checkOpen(); err != nil {
		return 0, nil, err
	}
	tid, ok := s.tenantID(tenant)
	if !ok {
		return 0, nil, store.ErrNoTenant
	}
	if len(attrs) == 0 {
		return tid, nil, nil
	}
	want = map[int64]bool{}
	for _, a := range attrs {
		if nid, ok := s.nameID(a); ok {
			want[nid] = true
		}
	}
	if len(want) == 0 {
		return 0, nil, store.ErrNotFound
	}
	return tid, want, nil
}

// headSeqs lists the head records of the entities ids and which entity
// (index into ids) each belongs to.
func (s *Store) headSeqs(tid int64, ids []string) (seqs []int64, owner map[int64]int) {
	owner = map[int64]int{}
	for i, id := range ids {
		for _, seq := range s.heads.get(entKey{tid, id}) {
			owner[seq] = i
			seqs = append(seqs, seq)
		}
	}
	return seqs, owner
}

// ser is one series of entity i of a read.
type ser struct {
	i   int
	sid int64
	key seriesKey
}

// loadSeries returns the wanted series of the entities ids, and marks the
// readers of those with sealed history found (with their types, unless
// their head records gave newer ones).
func (s *Store) loadSeries(ctx context.Context, tx *sql.Tx, tid int64, ids []string, readers []*histReader) ([]ser, error) {
	js, err := json.Marshal(ids)
	if err != nil {
		return nil, err
	}
	rows, err := tx.StmtContext(ctx, s.rs.histSeries).QueryContext(ctx, string(js), tid)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var sers []ser
	for rows.Next() {
		var i int
		var types []byte
		var sid, name sql.NullInt64
		var dataset sql.NullString
		if err := rows.Scan(&i, &types, &sid, &name, &dataset); err != nil {
			return nil, err
		}
		r := readers[i]
		r.found = true
		if r.types == nil {
			if r.types, err = decodeNids(types); err != nil {
				return nil, err
			}
		}
		if sid.Valid && r.wants(name.Int64) {
			sers = append(sers, ser{i, sid.Int64, seriesKey{Name: name.Int64, Dataset: dataset.String}})
		}
	}
	return sers, rows.Err()
}

// newestDays calls f with the chunks of each series' newest day in [lo, hi].
func (s *Store) newestDays(ctx context.Context, tx *sql.Tx, sers []ser, lo, hi int64, f func(x ser, day int64, level int, data []byte) error) error {
	if len(sers) == 0 {
		return nil
	}
	sids := make([]int64, len(sers))
	bySID := make(map[int64]ser, len(sers))
	for k, x := range sers {
		sids[k] = x.sid
		bySID[x.sid] = x
	}
	js, err := json.Marshal(sids)
	if err != nil {
		return err
	}
	rows, err := tx.StmtContext(ctx, s.rs.newestChunks).QueryContext(ctx, string(js), lo, hi)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var sid, day int64
		var level int
		var data []byte
		if err := rows.Scan(&sid, &day, &level, &data); err != nil {
			return err
		}
		if err := f(bySID[sid], day, level, data); err != nil {
			return err
		}
	}
	return rows.Err()
}

// readHeads calls f with every head record of seqs, in seq order.
func readHeads(ctx context.Context, tx *sql.Tx, st *sql.Stmt, seqs []int64, f func(seq int64, doc []byte) error) error {
	if len(seqs) == 0 {
		return nil
	}
	js, err := json.Marshal(seqs)
	if err != nil {
		return err
	}
	rows, err := tx.StmtContext(ctx, st).QueryContext(ctx, string(js))
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var doc []byte
		if err := rows.Scan(&seq, &doc); err != nil {
			return err
		}
		if err := f(seq, doc); err != nil {
			return err
		}
	}
	return rows.Err()
}

// histReader collects the samples of one entity's series.
type histReader struct {
	s      *Store
	tx     *sql.Tx // the read transaction: one snapshot
	q      *temporal.Query
	want   map[int64]bool
	found  bool // the entity has history (head records or sealed)
	types  []int64
	series map[seriesKey][]tsz.Sample
	// enough, when set, makes scanSeries read days newest first and stop
	// once it reports that the series has all it needs.
	enough func(k seriesKey, day int64) bool
}

// lastN reports whether q asks for the last instances by observedAt, which
// reading days newest first can answer without reading all of them.
func (r *histReader) lastN() bool { return histcore.NewestFirst(r.q) }

// hasLastN reports whether series k already holds q.LastN instances in q's
// window timed at or after the start of day: older days cannot change its
// last n.
func (r *histReader) hasLastN(k seriesKey, day int64) bool {
	return histcore.HasLastN(r.q, r.series[k], day)
}

func (r *histReader) wants(name int64) bool { return r.want == nil || r.want[name] }

// typeNames are the entity's types (expanded).
func (r *histReader) typeNames() []string {
	var out []string
	for _, t := range r.types {
		out = append(out, r.s.nameByID(t))
	}
	return out
}

// scanSeries calls f with the chunks of one series in [lo, hi] (days), in
// day order, or newest first until r.enough when set.
func (r *histReader) scanSeries(ctx context.Context, sid int64, k seriesKey, lo, hi int64, f func(day int64, level int, data []byte) error) error {
	st := r.tx.StmtContext(ctx, r.s.rs.chunksAsc)
	if r.enough != nil {
		st = r.tx.StmtContext(ctx, r.s.rs.chunksDesc)
	}
	rows, err := st.QueryContext(ctx, sid, lo, hi)
	if err != nil {
		return err
	}
	defer rows.Close()
	prev := int64(math.MinInt64)
	for rows.Next() {
		var day int64
		var level int
		var data []byte
		if err := rows.Scan(&day, &level, &data); err != nil {
			return err
		}
		if r.enough != nil && day != prev && prev != math.MinInt64 && r.enough(k, prev) {
			break // every part of day prev is read: older days do not matter
		}
		prev = day
		if err := f(day, level, data); err != nil {
			return fmt.Errorf("series %d, day %d: %w", sid, day, err)
		}
	}
	return rows.Err()
}

// days is the range of chunk days that can hold instances of q's window.
func (r *histReader) days() (lo, hi int64) { return histcore.Days(r.q) }

// addHead adds the wanted instances of one head record.
func (r *histReader) addHead(doc []byte) error {
	types, insts, err := decodeHead(doc)
	if err != nil {
		return err
	}
	r.found, r.types = true, types
	for _, in := range insts {
		if r.wants(in.name) {
			k := seriesKey{Name: in.name, Dataset: in.dataset}
			r.series[k] = append(r.series[k], in.s)
		}
	}
	return nil
}

// entity turns the collected samples into the temporal entity: q's window,
// ascending in q's time property, the last q.LastN of each series.
func (r *histReader) entity(id string) (*temporal.Entity, error) {
	return histcore.Entity(id, r.typeNames(), r.series, r.q, r.s.nameByID)
}

func decodeNids(b []byte) ([]int64, error) {
	d := &codec.Decoder{B: b}
	n := d.Count()
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(d.Uvarint())
	}
	if d.Err != nil {
		return nil, histcore.ErrCorrupt
	}
	return out, nil
}

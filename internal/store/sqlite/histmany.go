package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"

	"github.com/zenne-city/zenne/internal/ngsild/temporal"
	"github.com/zenne-city/zenne/internal/store"
	"github.com/zenne-city/zenne/internal/tsz"
)

// EntityHistories is EntityHistory for a page of entities, in one read
// transaction and with one statement per table for all of them (the
// series, the unsealed rows and, for lastN, each series' newest day), so a
// temporal query costs a few statements instead of a few per entity. An
// entity without history is nil in the result.
func (s *Store) EntityHistories(ctx context.Context, tenant string, ids []string, attrs []string, q *temporal.Query) ([]*temporal.Entity, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	tid, ok := s.tenantID(tenant)
	if !ok {
		return nil, store.ErrNoTenant
	}
	if q == nil {
		q = &temporal.Query{}
	}
	out := make([]*temporal.Entity, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	var want map[int64]bool
	if len(attrs) > 0 {
		want = map[int64]bool{}
		for _, a := range attrs {
			if nid, ok := s.nameID(a); ok {
				want[nid] = true
			}
		}
		if len(want) == 0 {
			return out, nil
		}
	}
	// Before the read transaction: see headIndex.
	owner := map[int64]int{} // head seq -> index in ids
	var seqs []int64
	for i, id := range ids {
		for _, seq := range s.heads.get(entKey{tid, id}) {
			owner[seq] = i
			seqs = append(seqs, seq)
		}
	}
	tx, err := s.rdb.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback() // it only read

	readers := make([]*histReader, len(ids))
	found := make([]bool, len(ids))
	for i := range readers {
		readers[i] = &histReader{s: s, tx: tx, q: q, want: want, series: map[seriesKey][]tsz.Sample{}}
		if readers[i].lastN() {
			readers[i].enough = readers[i].hasLastN
		}
	}
	if err := readHeads(ctx, tx, seqs, func(seq int64, doc []byte) error {
		i := owner[seq]
		found[i] = true
		return readers[i].addHead(doc)
	}); err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}

	// Series of every entity.
	idsJSON, err := json.Marshal(ids)
	if err != nil {
		return nil, err
	}
	rows, err := tx.QueryContext(ctx, `SELECT j.key, e.types, s.sid, s.name, s.dataset
		FROM json_each(?) AS j CROSS JOIN h_entities AS e ON e.tid = ? AND e.id = j.value
		LEFT JOIN h_series AS s ON s.hid = e.hid`, string(idsJSON), tid)
	if err != nil {
		return nil, err
	}
	type ser struct {
		i   int
		sid int64
		key seriesKey
	}
	var sers []ser
	for rows.Next() {
		var i int
		var types []byte
		var sid, name sql.NullInt64
		var dataset sql.NullString
		if err := rows.Scan(&i, &types, &sid, &name, &dataset); err != nil {
			rows.Close()
			return nil, err
		}
		found[i] = true
		if readers[i].types == nil { // the unsealed rows' types are newer
			if readers[i].types, err = decodeNids(types); err != nil {
				rows.Close()
				return nil, err
			}
		}
		if sid.Valid && readers[i].wants(name.Int64) {
			sers = append(sers, ser{i, sid.Int64, seriesKey{name.Int64, dataset.String}})
		}
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}

	lo, hi := readers[0].days()
	add := func(x ser, level int, data []byte) error {
		if level != levelRaw {
			return nil
		}
		samples, err := tsz.Decode(data, nil)
		if err != nil {
			return fmt.Errorf("series %d: %w", x.sid, err)
		}
		readers[x.i].series[x.key] = append(readers[x.i].series[x.key], samples...)
		return nil
	}
	rest := sers // series still to read the usual way
	if readers[0].enough != nil && len(sers) > 0 {
		// Each series' newest day in the window, all at once; a series
		// that needs more reads older days on its own below.
		sids := make([]int64, len(sers))
		bySID := make(map[int64]ser, len(sers))
		for k, x := range sers {
			sids[k] = x.sid
			bySID[x.sid] = x
		}
		js, err := json.Marshal(sids)
		if err != nil {
			return nil, err
		}
		rows, err := tx.QueryContext(ctx, `SELECT c.sid, c.day, c.level, c.data FROM json_each(?) AS j
			JOIN h_chunks AS c ON c.sid = j.value
			AND c.day = (SELECT max(day) FROM h_chunks WHERE sid = j.value AND day BETWEEN ? AND ?)
			ORDER BY c.sid, c.part`, string(js), lo, hi)
		if err != nil {
			return nil, err
		}
		newest := map[int64]int64{}
		for rows.Next() {
			var sid, day int64
			var level int
			var data []byte
			if err := rows.Scan(&sid, &day, &level, &data); err != nil {
				rows.Close()
				return nil, err
			}
			newest[sid] = day
			if err := add(bySID[sid], level, data); err != nil {
				rows.Close()
				return nil, err
			}
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
		for _, x := range sers {
			if day, ok := newest[x.sid]; ok && !readers[x.i].enough(x.key, day) {
				// Older days, newest first, until it has enough.
				if err := readers[x.i].scanSeries(ctx, x.sid, x.key, lo, day-1, func(level int, data []byte) error {
					return add(x, level, data)
				}); err != nil {
					return nil, err
				}
			}
		}
		rest = nil
	}
	for _, x := range rest {
		if err := readers[x.i].scanSeries(ctx, x.sid, x.key, lo, hi, func(level int, data []byte) error {
			return add(x, level, data)
		}); err != nil {
			return nil, err
		}
	}
	for i, id := range ids {
		if !found[i] {
			continue
		}
		if out[i], err = readers[i].entity(s, id); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// scanSeries calls f with the chunks of one series in [lo, hi] (days), in
// day order, or newest first until r.enough when set.
func (r *histReader) scanSeries(ctx context.Context, sid int64, k seriesKey, lo, hi int64, f func(level int, data []byte) error) error {
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
			break
		}
		prev = day
		if err := f(level, data); err != nil {
			return fmt.Errorf("series %d, day %d: %w", sid, day, err)
		}
	}
	return rows.Err()
}

// readHeads calls f with every head record of seqs, in seq order.
func readHeads(ctx context.Context, tx *sql.Tx, seqs []int64, f func(seq int64, doc []byte) error) error {
	if len(seqs) == 0 {
		return nil
	}
	js, err := json.Marshal(seqs)
	if err != nil {
		return err
	}
	rows, err := tx.QueryContext(ctx, `SELECT seq, doc FROM h_head WHERE seq IN (SELECT value FROM json_each(?)) ORDER BY seq`, string(js))
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

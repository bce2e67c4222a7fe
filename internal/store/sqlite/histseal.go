package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store"
	"github.com/zenne-city/zenne/internal/store/histcore"
	"github.com/zenne-city/zenne/internal/tsz"
)

// sealSlice is the most head records one sealing transaction moves, so the
// writer is never held up for long.
const sealSlice = 2000

// sealer moves head records older than SealAfter into chunks, every
// SealEvery, and applies the retention every RetentionEvery, until the store
// closes.
func (s *Store) sealer() {
	defer close(s.sealDone)
	tick := time.NewTicker(s.opts.SealEvery)
	defer tick.Stop()
	var retained time.Time
	for {
		select {
		case <-s.quit:
			return
		case <-tick.C:
		}
		if _, err := s.Seal(context.Background(), time.Now().Add(-s.opts.SealAfter)); err != nil && !errors.Is(err, store.ErrClosed) {
			s.opts.Log.Error("sealing history failed; head records stay where they are and are retried", "err", err)
		}
		if time.Since(retained) >= s.opts.RetentionEvery {
			retained = time.Now()
			n, err := s.Retain(context.Background(), retained)
			switch {
			case err != nil && !errors.Is(err, store.ErrClosed):
				s.opts.Log.Error("applying the history retention failed; it is retried later", "err", err)
			case n > 0:
				s.opts.Log.Info("history retention applied", "chunks", n)
			}
		}
	}
}

// Seal moves the head records recorded before cutoff into chunks and
// returns how many it moved. It runs in slices between write groups.
func (s *Store) Seal(ctx context.Context, cutoff time.Time) (int, error) {
	total := 0
	for {
		var n int
		var more bool
		err := s.do(ctx, func(ctx context.Context, c *sql.Conn) error {
			var moved []headRow
			err := inTx(ctx, c, func() (err error) {
				moved, more, err = sealOnce(ctx, c, cutoff.UnixNano())
				return err
			})
			if err == nil {
				s.heads.remove(moved)
				n = len(moved)
			}
			return err
		})
		total += n
		if err != nil || !more {
			return total, err
		}
	}
}

// inTx runs f in a write transaction on c.
func inTx(ctx context.Context, c *sql.Conn, f func() error) error {
	if _, err := c.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		return err
	}
	if err := f(); err != nil {
		c.ExecContext(context.Background(), `ROLLBACK`)
		return err
	}
	_, err := c.ExecContext(ctx, `COMMIT`)
	return err
}

// sealOnce moves up to sealSlice head records recorded before cutoff (ns),
// oldest first, and returns them. more reports whether there may be others.
func sealOnce(ctx context.Context, c *sql.Conn, cutoff int64) (moved []headRow, more bool, err error) {
	rows, err := c.QueryContext(ctx, `SELECT seq, tid, id, doc FROM h_head WHERE seq < ? ORDER BY seq LIMIT ?`, cutoff, sealSlice)
	if err != nil {
		return nil, false, err
	}
	type rec struct {
		tid   int64
		id    string
		types []int64
		insts []headInst
	}
	var recs []rec
	for rows.Next() {
		var hr headRow
		var x rec
		var doc []byte
		if err := rows.Scan(&hr.seq, &hr.k.tid, &hr.k.id, &doc); err != nil {
			rows.Close()
			return nil, false, err
		}
		x.tid, x.id = hr.k.tid, hr.k.id
		if x.types, x.insts, err = decodeHead(doc); err != nil {
			rows.Close()
			return nil, false, fmt.Errorf("head record %d: %w", hr.seq, err)
		}
		recs = append(recs, x)
		moved = append(moved, hr)
	}
	if err := rows.Close(); err != nil {
		return nil, false, err
	}
	if len(recs) == 0 {
		return nil, false, nil
	}
	type dayKey struct {
		sid, day int64
	}
	// The latest record's types win.
	latest := map[entKey][]int64{}
	for _, x := range recs {
		latest[entKey{x.tid, x.id}] = x.types
	}
	hids := make(map[entKey]int64, len(latest))
	for k, types := range latest {
		var hid int64
		if err := c.QueryRowContext(ctx, `INSERT INTO h_entities (tid, id, types) VALUES (?, ?, ?)
			ON CONFLICT (tid, id) DO UPDATE SET types = excluded.types RETURNING hid`,
			k.tid, k.id, encodeNids(types)).Scan(&hid); err != nil {
			return nil, false, fmt.Errorf("history entity %s: %w", k.id, err)
		}
		hids[k] = hid
	}
	type entSeries struct {
		hid int64
		seriesKey
	}
	sids := map[entSeries]int64{}
	add := map[dayKey][]tsz.Sample{}
	for _, x := range recs {
		hid := hids[entKey{x.tid, x.id}]
		for _, in := range x.insts {
			sk := entSeries{hid, seriesKey{Name: in.name, Dataset: in.dataset}}
			sid, ok := sids[sk]
			if !ok {
				if sid, err = seriesID(ctx, c, hid, in.name, in.dataset); err != nil {
					return nil, false, err
				}
				sids[sk] = sid
			}
			ck := dayKey{sid, histcore.DayOf(in.s.T)}
			add[ck] = append(add[ck], in.s)
		}
	}
	days := make([]dayKey, 0, len(add))
	for k := range add {
		days = append(days, k)
	}
	slices.SortFunc(days, func(a, b dayKey) int {
		if c := cmp.Compare(a.sid, b.sid); c != 0 {
			return c
		}
		return cmp.Compare(a.day, b.day)
	})
	for _, k := range days {
		if err := mergeChunk(ctx, c, k.sid, k.day, add[k], false); err != nil {
			return nil, false, err
		}
	}
	if _, err := c.ExecContext(ctx, `DELETE FROM h_head WHERE seq <= ?`, moved[len(moved)-1].seq); err != nil {
		return nil, false, err
	}
	return moved, len(moved) == sealSlice, nil
}

// seriesID returns the sid of a series of the entity hid, adding it if new.
func seriesID(ctx context.Context, c *sql.Conn, hid, name int64, dataset string) (int64, error) {
	var sid int64
	if err := c.QueryRowContext(ctx, `INSERT INTO h_series (hid, name, dataset) VALUES (?, ?, ?)
		ON CONFLICT (hid, name, dataset) DO UPDATE SET name = excluded.name RETURNING sid`,
		hid, name, dataset).Scan(&sid); err != nil {
		return 0, fmt.Errorf("history series: %w", err)
	}
	return sid, nil
}

// partMax is the most samples one chunk row holds (see histcore.PartMax).
const partMax = histcore.PartMax

// mergeChunk adds samples to the day (sid, day). With dedupe, a sample the
// day already holds (sameSample) is not added again. A day retention has
// rolled up takes the numbers into its rollups (late data for an old day),
// and nothing else.
func mergeChunk(ctx context.Context, c *sql.Conn, sid, day int64, samples []tsz.Sample, dedupe bool) error {
	old, level, h, err := readDay(ctx, c, sid, day)
	if err != nil {
		return err
	}
	if level != levelRaw {
		return mergeRollups(ctx, c, sid, day, level, h, samples)
	}
	if dedupe && len(old) > 0 {
		at := make(map[int64][]int, len(old))
		for i := range old {
			at[old[i].T] = append(at[old[i].T], i)
		}
		samples = slices.DeleteFunc(slices.Clone(samples), func(n tsz.Sample) bool {
			return slices.ContainsFunc(at[n.T], func(i int) bool { return histcore.SameSample(&old[i], &n) })
		})
		if len(samples) == 0 {
			return nil
		}
	}
	return writeDay(ctx, c, sid, day, append(old, samples...))
}

// mergeRollups adds the numbers of samples to a rolled-up day and stores its
// rollups as one row.
func mergeRollups(ctx context.Context, c *sql.Conn, sid, day int64, level int, h histcore.HourRollups, samples []tsz.Sample) error {
	data, n := histcore.MergeRollups(level, h, samples)
	if _, err := c.ExecContext(ctx, `DELETE FROM h_chunks WHERE sid = ? AND day = ?`, sid, day); err != nil {
		return err
	}
	_, err := c.ExecContext(ctx, `INSERT INTO h_chunks (sid, day, part, level, n, data) VALUES (?, ?, 0, ?, ?, ?)`, sid, day, level, n, data)
	return err
}

// readDay reads the day (sid, day): its samples when it holds instances
// (level 0), else its level and rollups (all parts' rollups together, a
// daily rollup in hour 0).
func readDay(ctx context.Context, c *sql.Conn, sid, day int64) (samples []tsz.Sample, level int, h histcore.HourRollups, err error) {
	rows, err := c.QueryContext(ctx, `SELECT level, data FROM h_chunks WHERE sid = ? AND day = ? ORDER BY part`, sid, day)
	if err != nil {
		return nil, 0, h, err
	}
	defer rows.Close()
	type part struct {
		level int
		data  []byte
	}
	var parts []part
	for rows.Next() {
		var p part
		if err := rows.Scan(&p.level, &p.data); err != nil {
			return nil, 0, h, err
		}
		parts = append(parts, p)
		level = max(level, p.level)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, h, err
	}
	for _, p := range parts {
		if level == levelRaw {
			if samples, err = tsz.Decode(p.data, samples); err != nil {
				return nil, 0, h, fmt.Errorf("chunk %d/%d: %w", sid, day, err)
			}
			continue
		}
		ph, hourly, err := histcore.DecodeLevel(p.level, p.data)
		if err != nil {
			return nil, 0, h, fmt.Errorf("chunk %d/%d: %w", sid, day, err)
		}
		for i := range ph {
			dst := i
			if level == levelDaily || !hourly {
				dst = 0
			}
			h[dst].Merge(&ph[i])
		}
	}
	return samples, level, h, nil
}

// writeDay stores samples (sorted here by time, then recording time) as the
// day (sid, day), in parts of at most partMax, replacing what it held.
func writeDay(ctx context.Context, c *sql.Conn, sid, day int64, samples []tsz.Sample) error {
	if _, err := c.ExecContext(ctx, `DELETE FROM h_chunks WHERE sid = ? AND day = ?`, sid, day); err != nil {
		return err
	}
	histcore.SortSamples(samples)
	for part := 0; len(samples) > 0; part++ {
		n := min(len(samples), partMax)
		if _, err := c.ExecContext(ctx, `INSERT INTO h_chunks (sid, day, part, level, n, data) VALUES (?, ?, ?, 0, ?, ?)`,
			sid, day, part, n, tsz.Encode(nil, samples[:n])); err != nil {
			return err
		}
		samples = samples[n:]
	}
	return nil
}

func encodeNids(ns []int64) []byte {
	b := make([]byte, 0, 1+3*len(ns))
	b = binary.AppendUvarint(b, uint64(len(ns)))
	for _, n := range ns {
		b = binary.AppendUvarint(b, uint64(n))
	}
	return b
}

// DeleteHistory deletes recorded instances of one entity (see store.History).
func (s *Store) DeleteHistory(ctx context.Context, tenant, id string, sel store.HistorySelector) error {
	tid, ok := s.tenantID(tenant)
	if !ok {
		return store.ErrNoTenant
	}
	return s.do(ctx, func(ctx context.Context, c *sql.Conn) error {
		return s.editHistoryTx(ctx, c, tid, id, sel, nil)
	})
}

// editHistoryTx runs editHistory in a transaction and, once committed,
// drops the head records it deleted from the head index.
func (s *Store) editHistoryTx(ctx context.Context, c *sql.Conn, tid int64, id string, sel store.HistorySelector, with *ngsild.Attribute) error {
	var gone []headRow
	err := inTx(ctx, c, func() (err error) {
		gone, err = s.editHistory(ctx, c, tid, id, sel, with)
		return err
	})
	if err == nil {
		s.heads.remove(gone)
	}
	return err
}

// ReplaceInstance replaces one recorded instance (see store.History). The
// instance keeps its time and recording time, hence its instanceId.
func (s *Store) ReplaceInstance(ctx context.Context, tenant, id, attr, instanceID string, a *ngsild.Attribute) error {
	tid, ok := s.tenantID(tenant)
	if !ok {
		return store.ErrNoTenant
	}
	return s.do(ctx, func(ctx context.Context, c *sql.Conn) error {
		return s.editHistoryTx(ctx, c, tid, id, store.HistorySelector{Attr: attr, InstanceID: instanceID}, a)
	})
}

// editHistory deletes the instances sel selects or, when with is not nil,
// replaces the one instance sel names with it, and returns the head records
// it deleted. It returns ErrNotFound when nothing matched.
func (s *Store) editHistory(ctx context.Context, c *sql.Conn, tid int64, id string, sel store.HistorySelector, with *ngsild.Attribute) (gone []headRow, err error) {
	var name int64 = -1
	if sel.Attr != "" {
		nid, ok := s.nameID(sel.Attr)
		if !ok {
			return nil, store.ErrNotFound
		}
		name = nid
	}
	var it int64
	if sel.InstanceID != "" {
		var ok bool
		if it, _, ok = histcore.ParseInstanceID(sel.InstanceID); !ok {
			return nil, store.ErrNotFound
		}
	}
	matched := 0
	// edit decides one instance (head record or chunk) of attribute n and
	// datasetId dataset: hit when sel selects it, which counts it and then
	// replaces *smp by the instance with or, without with, drops it (keep
	// false).
	edit := func(n int64, dataset string, smp *tsz.Sample) (hit, keep bool, err error) {
		if (name >= 0 && n != name) || (sel.DatasetID != nil && dataset != *sel.DatasetID) ||
			(sel.InstanceID != "" && histcore.InstanceID(smp, dataset) != sel.InstanceID) {
			return false, true, nil
		}
		matched++
		if with == nil {
			return true, false, nil
		}
		r, err := histcore.Replacement(smp, dataset, with)
		if err != nil {
			return true, true, err
		}
		*smp = r
		return true, true, nil
	}

	// Head records (the writer is not running: the head index is exact).
	type headDoc struct {
		seq int64
		doc []byte
	}
	var heads []headDoc
	js, err := json.Marshal(s.heads.get(entKey{tid, id}))
	if err != nil {
		return nil, err
	}
	rows, err := c.QueryContext(ctx, `SELECT seq, doc FROM h_head WHERE seq IN (SELECT value FROM json_each(?)) ORDER BY seq`, string(js))
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var h headDoc
		if err := rows.Scan(&h.seq, &h.doc); err != nil {
			rows.Close()
			return nil, err
		}
		heads = append(heads, h)
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	for _, h := range heads {
		types, insts, err := decodeHead(h.doc)
		if err != nil {
			return nil, err
		}
		kept := insts[:0:0]
		changed := false
		for _, in := range insts {
			hit, keep, err := edit(in.name, in.dataset, &in.s)
			if err != nil {
				return nil, err
			}
			changed = changed || hit
			if keep {
				kept = append(kept, in)
			}
		}
		switch {
		case !changed:
		case len(kept) == 0:
			if _, err := c.ExecContext(ctx, `DELETE FROM h_head WHERE seq = ?`, h.seq); err != nil {
				return nil, err
			}
			gone = append(gone, headRow{entKey{tid, id}, h.seq})
		default:
			if _, err := c.ExecContext(ctx, `UPDATE h_head SET doc = ? WHERE seq = ?`, encodeHead(types, kept), h.seq); err != nil {
				return nil, err
			}
		}
	}

	// Sealed chunks.
	var hid int64
	err = c.QueryRowContext(ctx, `SELECT hid FROM h_entities WHERE tid = ? AND id = ?`, tid, id).Scan(&hid)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	if err == nil {
		type ser struct {
			sid     int64
			name    int64
			dataset string
		}
		var sers []ser
		rows, err := c.QueryContext(ctx, `SELECT sid, name, dataset FROM h_series WHERE hid = ?`, hid)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var x ser
			if err := rows.Scan(&x.sid, &x.name, &x.dataset); err != nil {
				rows.Close()
				return nil, err
			}
			sers = append(sers, x)
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
		for _, x := range sers {
			if (name >= 0 && x.name != name) || (sel.DatasetID != nil && x.dataset != *sel.DatasetID) {
				continue
			}
			if sel.InstanceID == "" {
				// The whole series.
				r, err := c.ExecContext(ctx, `DELETE FROM h_chunks WHERE sid = ?`, x.sid)
				if err != nil {
					return nil, err
				}
				if n, _ := r.RowsAffected(); n > 0 {
					matched++
				}
				if _, err := c.ExecContext(ctx, `DELETE FROM h_series WHERE sid = ?`, x.sid); err != nil {
					return nil, err
				}
				continue
			}
			day := histcore.DayOf(it)
			samples, level, _, err := readDay(ctx, c, x.sid, day)
			if err != nil {
				return nil, err
			}
			if level != levelRaw {
				continue // rolled up: no instances left
			}
			kept := samples[:0:0]
			changed := false
			for i := range samples {
				hit, keep, err := edit(x.name, x.dataset, &samples[i])
				if err != nil {
					return nil, err
				}
				changed = changed || hit
				if keep {
					kept = append(kept, samples[i])
				}
			}
			if changed {
				if err := writeDay(ctx, c, x.sid, day, kept); err != nil {
					return nil, err
				}
			}
		}
		if sel.Attr == "" {
			if _, err := c.ExecContext(ctx, `DELETE FROM h_entities WHERE hid = ?`, hid); err != nil {
				return nil, err
			}
		}
	}
	if matched == 0 {
		return nil, store.ErrNotFound
	}
	return gone, nil
}

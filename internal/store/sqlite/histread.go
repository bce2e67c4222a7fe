package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild/temporal"
	"github.com/zenne-city/zenne/internal/store"
	"github.com/zenne-city/zenne/internal/tsz"
)

// seriesKey names a series within one entity.
type seriesKey struct {
	name    int64
	dataset string
}

// EntityHistory returns one entity's recorded instances that q selects,
// from its sealed chunks and its head records, read in one transaction.
func (s *Store) EntityHistory(ctx context.Context, tenant, id string, attrs []string, q *temporal.Query) (*temporal.Entity, error) {
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
	var want map[int64]bool // nil: every attribute
	if len(attrs) > 0 {
		want = map[int64]bool{}
		for _, a := range attrs {
			if nid, ok := s.nameID(a); ok {
				want[nid] = true
			}
		}
		if len(want) == 0 {
			return nil, store.ErrNotFound
		}
	}
	seqs := s.heads.get(entKey{tid, id}) // before the read transaction: see headIndex
	tx, err := s.rdb.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback() // it only read

	r := &histReader{s: s, tx: tx, q: q, want: want, series: map[seriesKey][]tsz.Sample{}}
	// The head first: with lastN, the chunks are read newest first only
	// until the series has enough (see enough).
	inHead, err := r.readHead(ctx, seqs)
	if err != nil {
		return nil, fmt.Errorf("read history of %s: %w", id, err)
	}
	found, err := r.readSealed(ctx, tid, id)
	if err != nil {
		return nil, fmt.Errorf("read history of %s: %w", id, err)
	}
	if !found && !inHead {
		return nil, store.ErrNotFound
	}
	return r.entity(s, id)
}

// histReader collects the samples of one entity's series.
type histReader struct {
	s      *Store
	tx     *sql.Tx // the read transaction: one snapshot
	q      *temporal.Query
	want   map[int64]bool
	types  []int64
	series map[seriesKey][]tsz.Sample
	// enough, when set, makes scanChunks read each series newest day
	// first and stop once it reports that the series has all it needs.
	enough func(k seriesKey, day int64) bool
}

// lastN reports whether q asks for the last instances by observedAt, which
// reading days newest first can answer without reading all of them.
func (r *histReader) lastN() bool {
	return r.q.LastN > 0 && (r.q.Property == "" || r.q.Property == temporal.ObservedAt)
}

// hasLastN reports whether series k already holds q.LastN instances in q's
// window timed at or after the start of day: older days cannot change its
// last n.
func (r *histReader) hasLastN(k seriesKey, day int64) bool {
	n := 0
	for i := range r.series[k] {
		t := r.series[k][i].T
		if t >= day*dayNS && r.q.Contains(time.Unix(0, t).UTC()) {
			if n++; n >= r.q.LastN {
				return true
			}
		}
	}
	return false
}

func (r *histReader) wants(name int64) bool { return r.want == nil || r.want[name] }

// readSealed reads the entity's chunks in q's window. It reports whether the
// entity has sealed history.
func (r *histReader) readSealed(ctx context.Context, tid int64, id string) (bool, error) {
	if r.lastN() {
		r.enough = r.hasLastN
	}
	return r.scanChunks(ctx, tid, id, func(k seriesKey, day int64, level int, data []byte) error {
		if level != levelRaw {
			return nil // rollups hold no instances
		}
		samples, err := tsz.Decode(data, nil)
		if err != nil {
			return err
		}
		r.series[k] = append(r.series[k], samples...)
		return nil
	})
}

// scanChunks calls f with every chunk of the entity's wanted series that
// can hold instances of q's window, in day order per series, and reports
// whether the entity has sealed history (and its types, in r.types).
func (r *histReader) scanChunks(ctx context.Context, tid int64, id string, f func(k seriesKey, day int64, level int, data []byte) error) (bool, error) {
	rows, err := r.tx.StmtContext(ctx, r.s.rs.histSeries).QueryContext(ctx, tid, id)
	if err != nil {
		return false, err
	}
	type ser struct {
		sid int64
		key seriesKey
	}
	var sers []ser
	found := false
	for rows.Next() {
		var types []byte
		var sid, name sql.NullInt64
		var dataset sql.NullString
		if err := rows.Scan(&types, &sid, &name, &dataset); err != nil {
			rows.Close()
			return false, err
		}
		if !found {
			found = true
			if r.types == nil { // the unsealed rows' types are newer
				if r.types, err = decodeNids(types); err != nil {
					rows.Close()
					return false, err
				}
			}
		}
		x := ser{sid.Int64, seriesKey{name.Int64, dataset.String}}
		if sid.Valid && r.wants(x.key.name) {
			sers = append(sers, x)
		}
	}
	if err := rows.Close(); err != nil {
		return false, err
	}
	if !found {
		return false, nil
	}
	lo, hi := r.days()
	query := r.tx.StmtContext(ctx, r.s.rs.chunksAsc)
	if r.enough != nil {
		query = r.tx.StmtContext(ctx, r.s.rs.chunksDesc)
	}
	for _, x := range sers {
		rows, err := query.QueryContext(ctx, x.sid, lo, hi)
		if err != nil {
			return false, err
		}
		prev := int64(math.MinInt64)
		for rows.Next() {
			var day int64
			var level int
			var data []byte
			if err := rows.Scan(&day, &level, &data); err != nil {
				rows.Close()
				return false, err
			}
			if r.enough != nil && day != prev && prev != math.MinInt64 && r.enough(x.key, prev) {
				break // every part of day prev is read: older days do not matter
			}
			prev = day
			if err := f(x.key, day, level, data); err != nil {
				rows.Close()
				return false, fmt.Errorf("series %d, day %d: %w", x.sid, day, err)
			}
		}
		if err := rows.Close(); err != nil {
			return false, err
		}
	}
	return true, nil
}

// days is the range of chunk days that can hold instances of q's window:
// chunks are by the day of T, which is the observedAt time property.
func (r *histReader) days() (lo, hi int64) {
	lo, hi = -(1 << 62), 1<<62
	if p := r.q.Property; p != "" && p != temporal.ObservedAt {
		return lo, hi
	}
	from, to := r.q.Window()
	if !from.IsZero() {
		lo = dayOf(from.UnixNano())
	}
	if !to.IsZero() {
		hi = dayOf(to.UnixNano())
	}
	return lo, hi
}

// readHead reads the head records seqs names (taken from the headIndex
// before the read transaction started). It reports whether there were any.
func (r *histReader) readHead(ctx context.Context, seqs []int64) (bool, error) {
	if len(seqs) == 0 {
		return false, nil
	}
	js, err := json.Marshal(seqs)
	if err != nil {
		return false, err
	}
	rows, err := r.tx.StmtContext(ctx, r.s.rs.headDocs).QueryContext(ctx, string(js))
	if err != nil {
		return false, err
	}
	defer rows.Close()
	any := false
	for rows.Next() {
		var doc []byte
		if err := rows.Scan(&doc); err != nil {
			return false, err
		}
		if err := r.addHead(doc); err != nil {
			return false, err
		}
		any = true
	}
	return any, rows.Err()
}

// addHead adds the wanted instances of one head record.
func (r *histReader) addHead(doc []byte) error {
	types, insts, err := decodeHead(doc)
	if err != nil {
		return err
	}
	r.types = types
	for _, in := range insts {
		if r.wants(in.name) {
			k := seriesKey{in.name, in.dataset}
			r.series[k] = append(r.series[k], in.s)
		}
	}
	return nil
}

// entity turns the collected samples into the temporal entity: q's window,
// ascending in q's time property, the last q.LastN of each series.
func (r *histReader) entity(s *Store, id string) (*temporal.Entity, error) {
	e := &temporal.Entity{ID: id, Attrs: map[string][]temporal.Instance{}}
	for _, t := range r.types {
		e.Types = append(e.Types, s.nameByID(t))
	}
	// Series in a fixed order (the default instance first), so instances of
	// several datasetIds at the same time always come in the same order.
	keys := slices.SortedFunc(maps.Keys(r.series), func(a, b seriesKey) int {
		if c := cmp.Compare(a.name, b.name); c != 0 {
			return c
		}
		return cmp.Compare(a.dataset, b.dataset)
	})
	for _, k := range keys {
		samples := r.preselect(r.series[k])
		insts := make([]temporal.Instance, len(samples))
		for i := range samples {
			a, err := attrOf(&samples[i])
			if err != nil {
				return nil, err
			}
			insts[i] = temporal.Instance{ID: instanceID(&samples[i], k.dataset), Attr: a}
		}
		if insts = r.q.Select(insts); len(insts) > 0 {
			name := s.nameByID(k.name)
			e.Attrs[name] = append(e.Attrs[name], insts...)
		}
	}
	for name, insts := range e.Attrs {
		// Several datasetIds: one timeline.
		slices.SortStableFunc(insts, func(a, b temporal.Instance) int {
			return r.q.TimeOf(a.Attr).Compare(r.q.TimeOf(b.Attr))
		})
		e.Attrs[name] = insts
	}
	return e, nil
}

// preselect narrows a series' samples (which the reader owns: it changes
// them in place) to those q can select before they are decoded into
// instances, most of a read's work: by observedAt, a sample's time is T, so
// the window and lastN apply to the samples as they are. Select then
// decides exactly, as for any other time property.
func (r *histReader) preselect(samples []tsz.Sample) []tsz.Sample {
	if p := r.q.Property; p != "" && p != temporal.ObservedAt {
		return samples
	}
	if r.q.Rel != temporal.RelNone {
		samples = slices.DeleteFunc(samples, func(x tsz.Sample) bool {
			return !r.q.Contains(time.Unix(0, x.T).UTC())
		})
	}
	if n := r.q.LastN; n > 0 && len(samples) > n {
		slices.SortStableFunc(samples, func(a, b tsz.Sample) int { return cmp.Compare(a.T, b.T) })
		samples = samples[len(samples)-n:]
	}
	return samples
}

func decodeNids(b []byte) ([]int64, error) {
	d := &decoder{b: b}
	n := d.count()
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(d.uvarint())
	}
	if d.err != nil {
		return nil, errCorruptHistory
	}
	return out, nil
}

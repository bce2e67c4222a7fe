package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/zenne-city/zenne/internal/store/histcore"
	"github.com/zenne-city/zenne/internal/tsz"
)

// sealSlice is the most head records one sealing transaction moves, so no
// transaction holds many entities' history locks for long.
const sealSlice = 2000

// retentionEvery is how often the retention runs: once for all the
// processes sharing the database (h_jobs).
var retentionEvery = time.Hour

// sealEvery is how often the background job seals: a minute, or half of
// SealAfter when that is shorter.
func (s *Store) sealEvery() time.Duration {
	return max(min(time.Minute, s.opts.SealAfter/2), 10*time.Millisecond)
}

// startHistory starts the history's background job: sealing head records
// older than SealAfter, every sealEvery, and the retention every
// retentionEvery across processes. Open calls it once the schema is
// migrated; it stops when quit is closed, and Close waits for it (bg)
// before closing the pool.
func (s *Store) startHistory() {
	s.bg.Add(1)
	go s.historyJob()
}

func (s *Store) historyJob() {
	defer s.bg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.quit:
			cancel()
		case <-ctx.Done():
		}
	}()
	log := slog.Default().With("store", "postgres")
	tick := time.NewTicker(s.sealEvery())
	defer tick.Stop()
	var ahead time.Time
	for {
		if time.Since(ahead) >= time.Hour {
			ahead = time.Now()
			if err := s.partitionsAhead(ctx, ahead); err != nil && ctx.Err() == nil {
				log.Error("creating the next months' history partitions failed; sealing creates them when it needs them", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if _, err := s.seal(ctx, time.Now().Add(-s.opts.SealAfter), false); err != nil && ctx.Err() == nil {
			log.Error("sealing history failed; head records stay where they are and are retried", "err", err)
		}
		if len(s.opts.Retention.Rules) == 0 {
			continue
		}
		now := time.Now()
		run, err := s.claimJob(ctx, "retention", retentionEvery, now)
		if err != nil {
			if ctx.Err() == nil {
				log.Error("scheduling the history retention failed; it is retried", "err", err)
			}
			continue
		}
		if !run {
			continue // another process ran it less than retentionEvery ago
		}
		n, err := s.Retain(ctx, now)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Error("applying the history retention failed; it is retried at the next period", "err", err)
		case n > 0:
			log.Info("history retention applied", "chunks", n)
		}
	}
}

// claimJob reports whether this process should run the job name now: it
// has not run (in any process) for every. Claiming records the run.
func (s *Store) claimJob(ctx context.Context, name string, every time.Duration, now time.Time) (bool, error) {
	var got string
	err := s.pool.QueryRow(ctx, `INSERT INTO h_jobs (name, last_run) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET last_run = EXCLUDED.last_run WHERE h_jobs.last_run <= $3
		RETURNING name`, name, now.UnixNano(), now.Add(-every).UnixNano()).Scan(&got)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("postgres: claiming the %s job: %w", name, err)
	}
	return true, nil
}

// Seal moves the head records recorded before cutoff into chunks and
// returns how many it moved. When another process (or goroutine) is
// sealing, it waits for it. It runs in transactions of at most sealSlice
// records.
func (s *Store) Seal(ctx context.Context, cutoff time.Time) (int, error) {
	return s.seal(ctx, cutoff, true)
}

// seal is Seal; without wait, it returns at once when another sealer is at
// work (the background job: that one will have moved the same records).
// One sealer at a time is an economy, not what makes sealing safe: two
// would lock the same entities in turn, and the second find the records
// gone.
func (s *Store) seal(ctx context.Context, cutoff time.Time, wait bool) (int, error) {
	if err := s.checkOpen(); err != nil {
		return 0, err
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return 0, s.wrapClosed(fmt.Errorf("postgres: sealing history: %w", err))
	}
	defer conn.Release()
	if wait {
		if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1, $2)`, int32(histJobClass), int32(jobSeal)); err != nil {
			return 0, s.wrapClosed(fmt.Errorf("postgres: waiting for the sealing lock: %w", err))
		}
	} else {
		var got bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, $2)`, int32(histJobClass), int32(jobSeal)).Scan(&got); err != nil {
			return 0, s.wrapClosed(fmt.Errorf("postgres: taking the sealing lock: %w", err))
		}
		if !got {
			return 0, nil
		}
	}
	defer unlockSession(ctx, conn, jobSeal)
	total := 0
	for {
		n, more, err := s.sealOnce(ctx, conn, cutoff.UnixNano())
		total += n
		if err != nil {
			return total, s.wrapClosed(fmt.Errorf("postgres: sealing history: %w", err))
		}
		if !more {
			return total, nil
		}
	}
}

// unlockSession releases a session-level job lock of conn. If that fails
// the connection is closed, which releases it, rather than returned to the
// pool holding it.
func unlockSession(ctx context.Context, conn *pgxpool.Conn, job int32) {
	ctx = context.WithoutCancel(ctx)
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1, $2)`, int32(histJobClass), job); err != nil {
		conn.Conn().Close(ctx)
	}
}

// headRef is a head record's key and entity.
type headRef struct {
	at, seq int64
	k       entKey
}

// sealOnce moves up to sealSlice of the oldest head records recorded before
// cutoff (ns) and returns how many it moved; more reports whether there
// may be others.
func (s *Store) sealOnce(ctx context.Context, conn *pgxpool.Conn, cutoff int64) (n int, more bool, err error) {
	// The candidates, read without locks; the transaction reads them again
	// once their entities are locked.
	rows, err := conn.Query(ctx, `SELECT at, seq, tid, id FROM h_head WHERE at < $1 ORDER BY at, seq LIMIT $2`, cutoff, sealSlice)
	if err != nil {
		return 0, false, err
	}
	var cands []headRef
	for rows.Next() {
		var h headRef
		if err := rows.Scan(&h.at, &h.seq, &h.k.tid, &h.k.id); err != nil {
			rows.Close()
			return 0, false, err
		}
		cands = append(cands, h)
	}
	if err := rows.Err(); err != nil {
		return 0, false, err
	}
	if len(cands) == 0 {
		return 0, false, nil
	}
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		n = 0
		keys := make([]entKey, 0, len(cands))
		ats := make([]int64, len(cands))
		seqs := make([]int64, len(cands))
		for i, h := range cands {
			keys = append(keys, h.k)
			ats[i], seqs[i] = h.at, h.seq
		}
		if err := lockEntities(ctx, tx, keys); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT h.at, h.seq, h.tid, h.id, h.rec FROM h_head AS h
			JOIN unnest($1::bigint[], $2::bigint[]) AS k(at, seq) ON h.at = k.at AND h.seq = k.seq
			ORDER BY h.at, h.seq`, ats, seqs)
		if err != nil {
			return err
		}
		type rec struct {
			k     entKey
			types []string
			insts []headInst
		}
		var recs []rec
		var gone []headRef
		for rows.Next() {
			var h headRef
			var doc []byte
			if err := rows.Scan(&h.at, &h.seq, &h.k.tid, &h.k.id, &doc); err != nil {
				rows.Close()
				return err
			}
			types, insts, err := decodeHeadRecord(doc)
			if err != nil {
				rows.Close()
				return fmt.Errorf("head record %d of %s: %w", h.seq, h.k.id, err)
			}
			recs = append(recs, rec{h.k, types, insts})
			gone = append(gone, h)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if len(recs) == 0 {
			return nil // edited away meanwhile
		}
		// The latest record's types win.
		latest := map[entKey][]string{}
		for _, x := range recs {
			latest[x.k] = x.types
		}
		hids, err := historyEntities(ctx, tx, latest, false)
		if err != nil {
			return err
		}
		bySeries := map[seriesRow][]tsz.Sample{}
		for _, x := range recs {
			for _, in := range x.insts {
				k := seriesRow{hids[x.k], in.name, in.dataset}
				bySeries[k] = append(bySeries[k], in.s)
			}
		}
		sids, err := seriesIDs(ctx, tx, bySeries)
		if err != nil {
			return err
		}
		add := map[dayKey][]tsz.Sample{}
		for k, samples := range bySeries {
			for _, smp := range samples {
				dk := dayKey{sids[k], histcore.DayOf(smp.T)}
				add[dk] = append(add[dk], smp)
			}
		}
		if err := mergeDays(ctx, tx, add, false); err != nil {
			return err
		}
		if err := deleteHeads(ctx, tx, gone); err != nil {
			return err
		}
		n = len(gone)
		return nil
	})
	if err != nil {
		return 0, false, err
	}
	return n, len(cands) == sealSlice, nil
}

func deleteHeads(ctx context.Context, tx pgx.Tx, hs []headRef) error {
	if len(hs) == 0 {
		return nil
	}
	ats := make([]int64, len(hs))
	seqs := make([]int64, len(hs))
	for i, h := range hs {
		ats[i], seqs[i] = h.at, h.seq
	}
	_, err := tx.Exec(ctx, `DELETE FROM h_head AS h USING unnest($1::bigint[], $2::bigint[]) AS k(at, seq)
		WHERE h.at = k.at AND h.seq = k.seq`, ats, seqs)
	return err
}

// historyEntities returns the hid of each entity of types (whose history
// locks tx holds), adding those without sealed history with the types
// given. The types of the others are replaced, or with keep (an import)
// only set when they had none: live writes know them better.
func historyEntities(ctx context.Context, tx pgx.Tx, types map[entKey][]string, keep bool) (map[entKey]int64, error) {
	tids := make([]int64, 0, len(types))
	ids := make([]string, 0, len(types))
	for k := range types {
		tids = append(tids, k.tid)
		ids = append(ids, k.id)
	}
	rows, err := tx.Query(ctx, `SELECT e.hid, e.tid, e.id, e.types FROM unnest($1::bigint[], $2::text[]) AS k(tid, id)
		JOIN h_entities AS e ON e.tid = k.tid AND e.id = k.id`, tids, ids)
	if err != nil {
		return nil, err
	}
	hids := make(map[entKey]int64, len(types))
	old := map[entKey][]string{}
	for rows.Next() {
		var hid int64
		var k entKey
		var ts []string
		if err := rows.Scan(&hid, &k.tid, &k.id, &ts); err != nil {
			rows.Close()
			return nil, err
		}
		hids[k], old[k] = hid, ts
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	b := &pgx.Batch{}
	for k, ts := range types {
		if ts == nil {
			ts = []string{} // the column is NOT NULL
		}
		hid, ok := hids[k]
		switch {
		case !ok:
			b.Queue(`INSERT INTO h_entities (tid, id, types) VALUES ($1, $2, $3) RETURNING hid`, k.tid, k.id, ts).QueryRow(func(r pgx.Row) error {
				var hid int64
				if err := r.Scan(&hid); err != nil {
					return err
				}
				hids[k] = hid
				return nil
			})
		case keep && (len(ts) == 0 || len(old[k]) > 0), !keep && slices.Equal(ts, old[k]):
		default:
			b.Queue(`UPDATE h_entities SET types = $2 WHERE hid = $1`, hid, ts)
		}
	}
	if b.Len() == 0 {
		return hids, nil
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("history entities: %w", err)
	}
	return hids, nil
}

// seriesRow names a series by its entity's hid.
type seriesRow struct {
	hid           int64
	name, dataset string
}

// seriesIDs returns the sid of every series of want (of entities whose
// history locks tx holds), adding those that are new.
func seriesIDs(ctx context.Context, tx pgx.Tx, want map[seriesRow][]tsz.Sample) (map[seriesRow]int64, error) {
	var hids []int64
	seen := map[int64]bool{}
	for k := range want {
		if !seen[k.hid] {
			seen[k.hid] = true
			hids = append(hids, k.hid)
		}
	}
	sids := make(map[seriesRow]int64, len(want))
	scan := func(rows pgx.Rows) error {
		for rows.Next() {
			var sid int64
			var k seriesRow
			if err := rows.Scan(&sid, &k.hid, &k.name, &k.dataset); err != nil {
				rows.Close()
				return err
			}
			sids[k] = sid
		}
		return rows.Err()
	}
	rows, err := tx.Query(ctx, `SELECT sid, hid, name, dataset FROM h_series WHERE hid = ANY($1)`, hids)
	if err != nil {
		return nil, err
	}
	if err := scan(rows); err != nil {
		return nil, err
	}
	var nh []int64
	var nn, nd []string
	for k := range want {
		if _, ok := sids[k]; !ok {
			nh, nn, nd = append(nh, k.hid), append(nn, k.name), append(nd, k.dataset)
		}
	}
	if len(nh) == 0 {
		return sids, nil
	}
	rows, err = tx.Query(ctx, `INSERT INTO h_series (hid, name, dataset)
		SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[]) RETURNING sid, hid, name, dataset`, nh, nn, nd)
	if err != nil {
		return nil, err
	}
	if err := scan(rows); err != nil {
		return nil, fmt.Errorf("history series: %w", err)
	}
	return sids, nil
}

// dayKey is one series' UTC day.
type dayKey struct{ sid, day int64 }

// days32 is days as the int4 h_chunks holds them (days since the epoch
// of the times int64 ns can hold fit).
func days32(days []int64) []int32 {
	out := make([]int32, len(days))
	for i, d := range days {
		out[i] = int32(d)
	}
	return out
}

// chunkRow is a chunk row to write.
type chunkRow struct {
	sid, day         int64
	part             int32
	level            int16
	n, numn          int32
	sum, sumsq, l, h *float64
	data             []byte
}

// mergeDays adds samples to the days of add, in tx (which holds the
// history locks of their entities). With dedupe, a sample a day already
// holds (histcore.SameSample) is not added again. A day retention has
// rolled up takes the numbers into its rollups (late data for an old day),
// and nothing else. Each day touched is rewritten whole, in parts of at
// most histcore.PartMax samples; three statements for all of them.
func mergeDays(ctx context.Context, tx pgx.Tx, add map[dayKey][]tsz.Sample, dedupe bool) error {
	if len(add) == 0 {
		return nil
	}
	keys := make([]dayKey, 0, len(add))
	for k := range add {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b dayKey) int {
		if c := cmp.Compare(a.sid, b.sid); c != 0 {
			return c
		}
		return cmp.Compare(a.day, b.day)
	})
	sids := make([]int64, len(keys))
	days := make([]int64, len(keys))
	for i, k := range keys {
		sids[i], days[i] = k.sid, k.day
	}
	if err := ensurePartitions(ctx, tx, days); err != nil {
		return err
	}
	old, err := readDays(ctx, tx, sids, days32(days))
	if err != nil {
		return err
	}
	var rows []chunkRow
	var rewrite []dayKey // days whose old rows go
	for _, k := range keys {
		samples := add[k]
		o, had := old[k]
		if had && o.level != histcore.LevelRaw {
			data, n := histcore.MergeRollups(o.level, o.h, samples)
			r, err := rollupRow(k, o.level, data, n)
			if err != nil {
				return err
			}
			rows = append(rows, r)
			rewrite = append(rewrite, k)
			continue
		}
		if dedupe && len(o.samples) > 0 {
			at := make(map[int64][]int, len(o.samples))
			for i := range o.samples {
				at[o.samples[i].T] = append(at[o.samples[i].T], i)
			}
			samples = slices.DeleteFunc(slices.Clone(samples), func(n tsz.Sample) bool {
				return slices.ContainsFunc(at[n.T], func(i int) bool { return histcore.SameSample(&o.samples[i], &n) })
			})
			if len(samples) == 0 {
				continue
			}
		}
		if had {
			rewrite = append(rewrite, k)
		}
		rows = append(rows, dayRows(k, append(o.samples, samples...))...)
	}
	if err := deleteDays(ctx, tx, rewrite); err != nil {
		return err
	}
	return insertChunks(ctx, tx, rows)
}

// oldDay is what a day held.
type oldDay struct {
	level   int
	samples []tsz.Sample         // level 0
	h       histcore.HourRollups // other levels (a daily rollup in hour 0)
}

// readDays reads the days (sids[i], days[i]).
func readDays(ctx context.Context, tx pgx.Tx, sids []int64, days []int32) (map[dayKey]oldDay, error) {
	rows, err := tx.Query(ctx, `SELECT c.sid, c.day, c.part, c.level, c.data
		FROM unnest($1::bigint[], $2::int4[]) AS k(sid, day) JOIN h_chunks AS c ON c.sid = k.sid AND c.day = k.day`, sids, days)
	if err != nil {
		return nil, err
	}
	type part struct {
		part  int32
		level int16
		data  []byte
	}
	parts := map[dayKey][]part{}
	for rows.Next() {
		var k dayKey
		var p part
		if err := rows.Scan(&k.sid, &k.day, &p.part, &p.level, &p.data); err != nil {
			rows.Close()
			return nil, err
		}
		parts[k] = append(parts[k], p)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make(map[dayKey]oldDay, len(parts))
	for k, ps := range parts {
		slices.SortFunc(ps, func(a, b part) int { return cmp.Compare(a.part, b.part) })
		var o oldDay
		for _, p := range ps {
			o.level = max(o.level, int(p.level))
		}
		for _, p := range ps {
			if o.level == histcore.LevelRaw {
				if o.samples, err = tsz.Decode(p.data, o.samples); err != nil {
					return nil, fmt.Errorf("chunk %d/%d: %w", k.sid, k.day, err)
				}
				continue
			}
			ph, hourly, err := histcore.DecodeLevel(int(p.level), p.data)
			if err != nil {
				return nil, fmt.Errorf("chunk %d/%d: %w", k.sid, k.day, err)
			}
			for i := range ph {
				dst := i
				if o.level == histcore.LevelDaily || !hourly {
					dst = 0
				}
				o.h[dst].Merge(&ph[i])
			}
		}
		out[k] = o
	}
	return out, nil
}

// dayRows encodes samples (sorted here) as the raw chunk rows of day k.
func dayRows(k dayKey, samples []tsz.Sample) []chunkRow {
	histcore.SortSamples(samples)
	var rows []chunkRow
	for part := int32(0); len(samples) > 0; part++ {
		n := min(len(samples), histcore.PartMax)
		data := tsz.Encode(nil, samples[:n])
		sum, err := tsz.Summarize(data)
		if err != nil {
			panic(fmt.Sprintf("tsz: a chunk just encoded does not summarize: %v", err)) // a bug in tsz
		}
		// The columns repeat the header's summary: the same sums, added in
		// the same order.
		r := chunkRow{sid: k.sid, day: k.day, part: part, level: histcore.LevelRaw, n: int32(sum.N), numn: int32(sum.NumN), data: data}
		if sum.NumN > 0 {
			r.sum, r.sumsq, r.l, r.h = &sum.Sum, &sum.SumSq, &sum.Min, &sum.Max
		}
		rows = append(rows, r)
		samples = samples[n:]
	}
	return rows
}

// rollupRow is the row of day k at a rollup level.
func rollupRow(k dayKey, level int, data []byte, n int) (chunkRow, error) {
	h, _, err := histcore.DecodeLevel(level, data)
	if err != nil {
		return chunkRow{}, err
	}
	all := h.Total()
	r := chunkRow{sid: k.sid, day: k.day, level: int16(level), n: int32(n), numn: int32(n), data: data}
	if all.N > 0 {
		r.sum, r.sumsq, r.l, r.h = &all.Sum, &all.SumSq, &all.Min, &all.Max
	}
	return r, nil
}

// deleteDays deletes every part of the days of keys.
func deleteDays(ctx context.Context, tx pgx.Tx, keys []dayKey) error {
	if len(keys) == 0 {
		return nil
	}
	sids := make([]int64, len(keys))
	days := make([]int32, len(keys))
	for i, k := range keys {
		sids[i], days[i] = k.sid, int32(k.day)
	}
	_, err := tx.Exec(ctx, `DELETE FROM h_chunks AS c USING unnest($1::bigint[], $2::int4[]) AS k(sid, day)
		WHERE c.sid = k.sid AND c.day = k.day`, sids, days)
	return err
}

// insertChunks inserts rows, in one statement.
func insertChunks(ctx context.Context, tx pgx.Tx, rows []chunkRow) error {
	if len(rows) == 0 {
		return nil
	}
	n := len(rows)
	sids, days := make([]int64, n), make([]int32, n)
	parts, ns, numns := make([]int32, n), make([]int32, n), make([]int32, n)
	levels := make([]int16, n)
	sums, sumsqs, mins, maxs := make([]*float64, n), make([]*float64, n), make([]*float64, n), make([]*float64, n)
	data := make([][]byte, n)
	for i, r := range rows {
		sids[i], days[i], parts[i], levels[i], ns[i], numns[i] = r.sid, int32(r.day), r.part, r.level, r.n, r.numn
		sums[i], sumsqs[i], mins[i], maxs[i], data[i] = r.sum, r.sumsq, r.l, r.h, r.data
	}
	_, err := tx.Exec(ctx, `INSERT INTO h_chunks (sid, day, part, level, n, numn, sum, sumsq, min, max, data)
		SELECT * FROM unnest($1::bigint[], $2::int4[], $3::int4[], $4::int2[], $5::int4[], $6::int4[],
			$7::float8[], $8::float8[], $9::float8[], $10::float8[], $11::bytea[])`,
		sids, days, parts, levels, ns, numns, sums, sumsqs, mins, maxs, data)
	return err
}

// The conformance suite seals the stores that can (storetest.Sealer).
var _ interface {
	Seal(ctx context.Context, cutoff time.Time) (int, error)
} = (*Store)(nil)

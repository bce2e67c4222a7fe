package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/zenne-city/zenne/internal/store"
	"github.com/zenne-city/zenne/internal/store/histcore"
)

// Retention (Options.Retention) ages chunks as the embedded store does
// (histcore.TargetLevel, histcore.Retire): a day older than its rule's Raw
// has its instances replaced by hourly or daily rollups in the same row,
// and is deleted past the last level. It walks the months whose days may
// need it, partition by partition, in transactions of at most retainSlice
// chunk rows. When every tenant and attribute has a rule (a "*" rule for
// every attribute) and every rule ends, a month past all of them is
// dropped whole: that is what the partitioning is for.

// retainSlice is the most chunk rows one retention transaction looks at.
const retainSlice = 1000

// dropLockTimeout bounds how long dropping a partition waits for readers
// of h_chunks (and makes new ones wait behind it); when it is not enough,
// the month's rows are aged one by one instead.
const dropLockTimeout = "500ms"

// chunkKey is a chunk row's key.
type chunkKey struct {
	sid  int64
	day  int32
	part int32
}

// Retain applies Options.Retention to the chunks of days that ended before
// now and returns how many chunks it changed or deleted. Any process may
// run it at any time; the background job runs it once every
// retentionEvery across the processes sharing the database.
func (s *Store) Retain(ctx context.Context, now time.Time) (int, error) {
	rules := s.opts.Retention
	if len(rules.Rules) == 0 {
		return 0, s.checkOpen()
	}
	if err := s.checkOpen(); err != nil {
		return 0, err
	}
	minRaw := store.Forever
	for _, r := range rules.Rules {
		minRaw = min(minRaw, r.Raw)
	}
	// Days from before are too young for every rule.
	before := histcore.DayOf(now.Add(-minRaw).UnixNano())
	tenants, err := s.tenantNames(ctx)
	if err != nil {
		return 0, err
	}
	months, err := partitions(ctx, s.pool)
	if err != nil {
		return 0, s.wrapClosed(fmt.Errorf("postgres: retention: %w", err))
	}
	horizon, droppable := dropHorizon(rules)
	changed := 0
	for _, m := range months {
		if m.first >= before {
			break
		}
		if droppable && histcore.DayAge(now, m.next-1) >= horizon {
			n, dropped, err := s.dropMonth(ctx, m)
			if err != nil {
				return changed, s.wrapClosed(fmt.Errorf("postgres: retention: %w", err))
			}
			if dropped {
				changed += n
				continue
			}
		}
		from := chunkKey{math.MinInt64, 0, 0}
		for {
			n, more, last, err := s.retainOnce(ctx, now, tenants, int32(m.first), int32(min(m.next, before)), from)
			changed += n
			if err != nil {
				return changed, s.wrapClosed(fmt.Errorf("postgres: retention: %w", err))
			}
			if !more {
				break
			}
			from = last
		}
	}
	return changed, nil
}

// dropHorizon is the age past which no rule keeps anything, and whether
// every tenant and attribute has a rule that ends (so a month that old can
// go whole).
func dropHorizon(r store.Retention) (time.Duration, bool) {
	catchAll := false
	var horizon time.Duration
	for _, rule := range r.Rules {
		if rule.Tenant == "*" && rule.Attr == "" {
			catchAll = true
		}
		end := rule.Raw
		if rule.Hourly > 0 {
			end = max(end, rule.Hourly)
		}
		if rule.Daily > 0 {
			end = max(end, rule.Daily)
		}
		if end == store.Forever {
			return 0, false
		}
		horizon = max(horizon, end)
	}
	return horizon, catchAll
}

// dropMonth drops the partition of m and returns how many chunk rows it
// held; dropped is false when it had to wait too long for readers.
func (s *Store) dropMonth(ctx context.Context, m month) (n int, dropped bool, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '`+dropLockTimeout+`'`); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM `+m.table()).Scan(&n); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DROP TABLE `+m.table())
		return err
	})
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "55P03": // lock_not_available: readers held it longer than dropLockTimeout
			return 0, false, nil
		case "42P01": // undefined_table: another process dropped it
			return 0, true, nil
		}
	}
	if err != nil {
		return 0, false, fmt.Errorf("dropping %s: %w", m.table(), err)
	}
	return n, true, nil
}

// tenantNames maps tenant ids to names.
func (s *Store) tenantNames(ctx context.Context) (map[int64]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT tid, name FROM tenants`)
	if err != nil {
		return nil, s.wrapClosed(fmt.Errorf("postgres: tenants: %w", err))
	}
	m := map[int64]string{}
	for rows.Next() {
		var tid int64
		var name string
		if err := rows.Scan(&tid, &name); err != nil {
			rows.Close()
			return nil, err
		}
		m[tid] = name
	}
	return m, rows.Err()
}

// retainOnce ages up to retainSlice chunk rows of days [lo, hi) after from,
// in key order, in one transaction: it picks the rows to change, locks
// their entities, and reads and changes them under the locks (a seal or an
// edit may have rewritten them meanwhile).
func (s *Store) retainOnce(ctx context.Context, now time.Time, tenants map[int64]string, lo, hi int32, from chunkKey) (n int, more bool, last chunkKey, err error) {
	last = from
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		n, more, last = 0, false, from
		rows, err := tx.Query(ctx, `SELECT c.sid, c.day, c.part, c.level, e.tid, e.id, s.name
			FROM h_chunks AS c JOIN h_series AS s ON s.sid = c.sid JOIN h_entities AS e ON e.hid = s.hid
			WHERE c.day >= $1 AND c.day < $2 AND (c.sid, c.day, c.part) > ($3, $4, $5)
			ORDER BY c.sid, c.day, c.part LIMIT $6`, lo, hi, from.sid, from.day, from.part, retainSlice)
		if err != nil {
			return err
		}
		targets := map[chunkKey]int{}
		var keys []entKey
		seen := 0
		for rows.Next() {
			var k chunkKey
			var level int16
			var e entKey
			var name string
			if err := rows.Scan(&k.sid, &k.day, &k.part, &level, &e.tid, &e.id, &name); err != nil {
				rows.Close()
				return err
			}
			seen++
			last = k
			rule, ok := s.opts.Retention.For(tenants[e.tid], name)
			if !ok {
				continue
			}
			if target := histcore.TargetLevel(rule, histcore.DayAge(now, int64(k.day))); target > int(level) {
				targets[k] = target
				keys = append(keys, e)
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
		more = seen == retainSlice
		if len(targets) == 0 {
			return nil
		}
		if err := lockEntities(ctx, tx, keys); err != nil {
			return err
		}
		var sids []int64
		var days, parts []int32
		for k := range targets {
			sids, days, parts = append(sids, k.sid), append(days, k.day), append(parts, k.part)
		}
		rows, err = tx.Query(ctx, `SELECT c.sid, c.day, c.part, c.level, c.data
			FROM unnest($1::bigint[], $2::int4[], $3::int4[]) AS k(sid, day, part)
			JOIN h_chunks AS c ON c.sid = k.sid AND c.day = k.day AND c.part = k.part`, sids, days, parts)
		if err != nil {
			return err
		}
		var gone []chunkKey
		var kept []chunkRow
		for rows.Next() {
			var k chunkKey
			var level int16
			var data []byte
			if err := rows.Scan(&k.sid, &k.day, &k.part, &level, &data); err != nil {
				rows.Close()
				return err
			}
			target := targets[k]
			if target <= int(level) {
				continue // aged meanwhile
			}
			lv, d, cnt, err := histcore.Retire(int(level), data, target)
			if err != nil {
				rows.Close()
				return fmt.Errorf("chunk %d/%d/%d: %w", k.sid, k.day, k.part, err)
			}
			if lv == histcore.LevelGone {
				gone = append(gone, k)
				continue
			}
			r, err := rollupRow(dayKey{k.sid, int64(k.day)}, lv, d, cnt)
			if err != nil {
				rows.Close()
				return err
			}
			r.part = k.part
			kept = append(kept, r)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if err := deleteChunkRows(ctx, tx, gone); err != nil {
			return err
		}
		if err := updateChunkRows(ctx, tx, kept); err != nil {
			return err
		}
		n = len(gone) + len(kept)
		return nil
	})
	return n, more, last, err
}

func deleteChunkRows(ctx context.Context, tx pgx.Tx, keys []chunkKey) error {
	if len(keys) == 0 {
		return nil
	}
	var sids []int64
	var days, parts []int32
	for _, k := range keys {
		sids, days, parts = append(sids, k.sid), append(days, k.day), append(parts, k.part)
	}
	_, err := tx.Exec(ctx, `DELETE FROM h_chunks AS c USING unnest($1::bigint[], $2::int4[], $3::int4[]) AS k(sid, day, part)
		WHERE c.sid = k.sid AND c.day = k.day AND c.part = k.part`, sids, days, parts)
	return err
}

// updateChunkRows rewrites the level, rollup and data of rows in place.
func updateChunkRows(ctx context.Context, tx pgx.Tx, rows []chunkRow) error {
	if len(rows) == 0 {
		return nil
	}
	n := len(rows)
	sids := make([]int64, n)
	days, parts, ns := make([]int32, n), make([]int32, n), make([]int32, n)
	levels := make([]int16, n)
	sums, sumsqs, mins, maxs := make([]*float64, n), make([]*float64, n), make([]*float64, n), make([]*float64, n)
	data := make([][]byte, n)
	for i, r := range rows {
		sids[i], days[i], parts[i], levels[i], ns[i] = r.sid, int32(r.day), r.part, r.level, r.n
		sums[i], sumsqs[i], mins[i], maxs[i], data[i] = r.sum, r.sumsq, r.l, r.h, r.data
	}
	_, err := tx.Exec(ctx, `UPDATE h_chunks AS c SET level = u.level, n = u.n, numn = u.n,
			sum = u.sum, sumsq = u.sumsq, min = u.min, max = u.max, data = u.data
		FROM unnest($1::bigint[], $2::int4[], $3::int4[], $4::int2[], $5::int4[],
			$6::float8[], $7::float8[], $8::float8[], $9::float8[], $10::bytea[]) AS u(sid, day, part, level, n, sum, sumsq, min, max, data)
		WHERE c.sid = u.sid AND c.day = u.day AND c.part = u.part`,
		sids, days, parts, levels, ns, sums, sumsqs, mins, maxs, data)
	return err
}

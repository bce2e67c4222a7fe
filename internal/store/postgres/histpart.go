package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/zenne-city/zenne/internal/store/histcore"
)

// Concurrency. Several processes may seal, import, edit and retain history
// at once. Every transaction that rewrites an entity's sealed history or
// moves or edits its head records first takes a transaction-level advisory
// lock per entity (histLockClass, a hash of tenant and id), all of them at
// its start and in ascending key order, so two such transactions never
// deadlock and never both rewrite one chunk; the head records and chunks it
// works on are read after the locks are held (READ COMMITTED: each
// statement sees what committed before it), so it works on the latest
// state. The write path only inserts head records, which needs none of
// these locks. Readers take no locks: one REPEATABLE READ snapshot shows a
// head record either before or after the transaction that seals it.
//
// The advisory locks of history use the two-key form, a key space of its
// own (the one-key form serves the migrations and the write path).
const (
	histLockClass = 0x68697374 // "hist": per entity
	histJobClass  = 0x686a6f62 // "hjob": per job
	jobSeal       = 1          // session lock held while sealing: one sealer at a time
	jobPartitions = 2          // transaction lock serializing partition creation
)

// entKey is an entity of a tenant.
type entKey struct {
	tid int64
	id  string
}

// lockKey is the advisory lock key of an entity's history.
func (k entKey) lockKey() int32 {
	h := fnv.New32a()
	var b [8]byte
	for i := range b {
		b[i] = byte(k.tid >> (8 * i))
	}
	h.Write(b[:])
	h.Write([]byte(k.id))
	return int32(h.Sum32())
}

// lockEntities takes the history lock of every entity of keys, in
// ascending key order (unnest keeps the array's order), until tx ends.
func lockEntities(ctx context.Context, tx pgx.Tx, keys []entKey) error {
	locks := make([]int32, 0, len(keys))
	for _, k := range keys {
		locks = append(locks, k.lockKey())
	}
	slices.Sort(locks)
	locks = slices.Compact(locks)
	if len(locks) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, `SELECT count(pg_advisory_xact_lock($1, k)) FROM unnest($2::int4[]) AS k`, int32(histLockClass), locks); err != nil {
		return fmt.Errorf("locking history: %w", err)
	}
	return nil
}

// Partitions. h_chunks is partitioned by month (of the UTC day); a
// partition is named h_chunks_yYYYYmMM and holds the days from the first
// of its month to the first of the next. They are created on demand, in
// the transaction that first writes a day of a month (ensurePartitions),
// and the background job creates the next months' ahead of time, so
// sealing live data normally finds them.
//
// A partition is made as a table of the parent's shape, then attached:
// ATTACH PARTITION takes a lock on h_chunks that does not conflict with
// reads and writes, where CREATE TABLE ... PARTITION OF would wait for
// every running reader of h_chunks and make new ones wait behind it.

// month is a month of UTC days: [first, next).
type month struct {
	y, m        int
	first, next int64 // days since the epoch
}

func monthOfDay(day int64) month {
	t := time.Unix(day*(histcore.DayNS/int64(time.Second)), 0).UTC()
	start := time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	return month{
		y: start.Year(), m: int(start.Month()),
		first: histcore.DayOf(start.UnixNano()),
		next:  histcore.DayOf(start.AddDate(0, 1, 0).UnixNano()),
	}
}

func (m month) table() string { return fmt.Sprintf("h_chunks_y%04dm%02d", m.y, m.m) }

// parsePartition reads the month of a partition's name.
func parsePartition(name string) (month, bool) {
	if len(name) != len("h_chunks_y2006m01") || name[:10] != "h_chunks_y" || name[14] != 'm' {
		return month{}, false
	}
	y, err1 := strconv.Atoi(name[10:14])
	m, err2 := strconv.Atoi(name[15:17])
	if err1 != nil || err2 != nil || m < 1 || m > 12 {
		return month{}, false
	}
	start := time.Date(y, time.Month(m), 1, 0, 0, 0, 0, time.UTC)
	return monthOfDay(histcore.DayOf(start.UnixNano())), true
}

// ensurePartitions makes sure h_chunks has the partitions of days, in tx.
// The common case, all there, is one statement.
func ensurePartitions(ctx context.Context, tx pgx.Tx, days []int64) error {
	var names []string
	byName := map[string]month{}
	for _, d := range days {
		m := monthOfDay(d)
		if _, ok := byName[m.table()]; !ok {
			byName[m.table()] = m
			names = append(names, m.table())
		}
	}
	if len(names) == 0 {
		return nil
	}
	missing, err := missingTables(ctx, tx, names)
	if err != nil || len(missing) == 0 {
		return err
	}
	// Serialize creators, then look again: another transaction may have
	// attached them while this one waited.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, int32(histJobClass), int32(jobPartitions)); err != nil {
		return fmt.Errorf("locking the partitions of h_chunks: %w", err)
	}
	if missing, err = missingTables(ctx, tx, missing); err != nil {
		return err
	}
	for _, name := range missing {
		if err := createPartition(ctx, tx, name, byName[name]); err != nil {
			return err
		}
	}
	return nil
}

// createPartition creates and attaches one partition, under a savepoint: a
// process that created (and attached, in the same transaction) the same
// partition after this transaction's catalog snapshot makes CREATE fail
// with "already exists", which then only means the partition is there, and
// the transaction goes on.
func createPartition(ctx context.Context, tx pgx.Tx, name string, m month) error {
	sp, err := tx.Begin(ctx)
	if err != nil {
		return fmt.Errorf("creating partition %s: %w", name, err)
	}
	defer sp.Rollback(ctx) // after Commit, a no-op
	if _, err := sp.Exec(ctx, `CREATE TABLE `+name+` (LIKE h_chunks INCLUDING DEFAULTS INCLUDING STORAGE)`); err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "42P07" {
			return nil
		}
		return fmt.Errorf("creating partition %s: %w", name, err)
	}
	if _, err := sp.Exec(ctx, fmt.Sprintf(`ALTER TABLE h_chunks ATTACH PARTITION %s FOR VALUES FROM (%d) TO (%d)`, name, m.first, m.next)); err != nil {
		return fmt.Errorf("attaching partition %s: %w", name, err)
	}
	return sp.Commit(ctx)
}

// missingTables returns the names of names that are not tables.
func missingTables(ctx context.Context, tx pgx.Tx, names []string) ([]string, error) {
	rows, err := tx.Query(ctx, `SELECT n FROM unnest($1::text[]) AS n WHERE to_regclass(n) IS NULL`, names)
	if err != nil {
		return nil, fmt.Errorf("looking for the partitions of h_chunks: %w", err)
	}
	missing, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("looking for the partitions of h_chunks: %w", err)
	}
	return missing, nil
}

// rowQuerier is what the pool, a connection and a transaction offer.
type rowQuerier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// partitions lists the months h_chunks has partitions for, oldest first.
func partitions(ctx context.Context, q rowQuerier) ([]month, error) {
	rows, err := q.Query(ctx, `SELECT c.relname FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'h_chunks'::regclass`)
	if err != nil {
		return nil, fmt.Errorf("listing the partitions of h_chunks: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("listing the partitions of h_chunks: %w", err)
	}
	var out []month
	for _, n := range names {
		if m, ok := parsePartition(n); ok {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b month) int { return int(a.first - b.first) })
	return out, nil
}

// monthsAhead is how many months after the current one the background job
// keeps partitions for.
const monthsAhead = 2

// partitionsAhead creates the partitions of this month and the next
// monthsAhead ones if they are missing.
func (s *Store) partitionsAhead(ctx context.Context, now time.Time) error {
	var days []int64
	start := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	for i := range monthsAhead + 1 {
		days = append(days, histcore.DayOf(start.AddDate(0, i, 0).UnixNano()))
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return ensurePartitions(ctx, tx, days) })
}

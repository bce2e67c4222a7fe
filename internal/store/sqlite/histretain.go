package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"time"

	"github.com/zenne-city/zenne/internal/store"
	"github.com/zenne-city/zenne/internal/store/histcore"
)

// Retention (Options.Retention) ages chunks: a day older than its rule's Raw
// has its instances replaced by hourly rollups (level 1) or a daily one
// (level 2) in the same h_chunks row, and is deleted past the last level.
// The levels, the rollups' encoding and the aging of one chunk
// (histcore.Retire) are histcore's, shared with the PostgreSQL backend.
const (
	levelRaw    = histcore.LevelRaw
	levelHourly = histcore.LevelHourly
	levelDaily  = histcore.LevelDaily
	levelGone   = histcore.LevelGone
)

// retainSlice is the most chunks one retention transaction looks at.
const retainSlice = 1000

// Retain applies Options.Retention to the chunks of days that ended before
// now, in slices between write groups, and returns how many chunks it
// changed or deleted.
func (s *Store) Retain(ctx context.Context, now time.Time) (int, error) {
	if len(s.opts.Retention.Rules) == 0 {
		return 0, nil
	}
	minRaw := store.Forever
	for _, r := range s.opts.Retention.Rules {
		minRaw = min(minRaw, r.Raw)
	}
	// Days whose end is older than the shortest raw retention.
	before := histcore.DayOf(now.Add(-minRaw).UnixNano())
	changed := 0
	from := chunkKey{0, math.MinInt64, 0}
	for {
		var n int
		var more bool
		err := s.do(ctx, func(ctx context.Context, c *sql.Conn) error {
			return inTx(ctx, c, func() (err error) {
				n, more, from, err = s.retainOnce(ctx, c, now, before, from)
				return err
			})
		})
		changed += n
		if err != nil || !more {
			return changed, err
		}
	}
}

// chunkKey is a chunk row's key.
type chunkKey struct{ sid, day, part int64 }

// retainOnce ages up to retainSlice chunk rows after from, in key order.
func (s *Store) retainOnce(ctx context.Context, c *sql.Conn, now time.Time, before int64, from chunkKey) (n int, more bool, last chunkKey, err error) {
	rows, err := c.QueryContext(ctx, `SELECT c.sid, c.day, c.part, c.level, c.data, e.tid, s.name
		FROM h_chunks AS c JOIN h_series AS s ON s.sid = c.sid JOIN h_entities AS e ON e.hid = s.hid
		WHERE (c.sid, c.day, c.part) > (?, ?, ?) AND c.day < ?
		ORDER BY c.sid, c.day, c.part LIMIT ?`, from.sid, from.day, from.part, before, retainSlice)
	if err != nil {
		return 0, false, from, err
	}
	type change struct {
		chunkKey
		level int
		data  []byte
	}
	var changes []change
	seen := 0
	last = from
	tenants := s.tenantNames()
	for rows.Next() {
		var k chunkKey
		var tid, name int64
		var level int
		var data []byte
		if err := rows.Scan(&k.sid, &k.day, &k.part, &level, &data, &tid, &name); err != nil {
			rows.Close()
			return 0, false, from, err
		}
		seen++
		last = k
		sid, day := k.sid, k.day
		rule, ok := s.opts.Retention.For(tenants[tid], s.nameByID(name))
		if !ok {
			continue
		}
		target := histcore.TargetLevel(rule, histcore.DayAge(now, day))
		if target <= level {
			continue
		}
		ch := change{chunkKey: k}
		if ch.level, ch.data, _, err = histcore.Retire(level, data, target); err != nil {
			rows.Close()
			return 0, false, from, fmt.Errorf("chunk %d/%d: %w", sid, day, err)
		}
		changes = append(changes, ch)
	}
	if err := rows.Close(); err != nil {
		return 0, false, from, err
	}
	for _, ch := range changes {
		if ch.level == levelGone {
			_, err = c.ExecContext(ctx, `DELETE FROM h_chunks WHERE sid = ? AND day = ? AND part = ?`, ch.sid, ch.day, ch.part)
		} else {
			_, err = c.ExecContext(ctx, `UPDATE h_chunks SET level = ?, data = ? WHERE sid = ? AND day = ? AND part = ?`, ch.level, ch.data, ch.sid, ch.day, ch.part)
		}
		if err != nil {
			return 0, false, from, err
		}
	}
	return len(changes), seen == retainSlice, last, nil
}

// tenantNames maps tenant ids to names.
func (s *Store) tenantNames() map[int64]string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	m := make(map[int64]string, len(s.tenants))
	for name, tid := range s.tenants {
		m[tid] = name
	}
	return m
}

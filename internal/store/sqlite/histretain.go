package sqlite

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"github.com/zenne-city/zenne/internal/store/codec"
	"math"
	"time"

	"github.com/zenne-city/zenne/internal/store"
	"github.com/zenne-city/zenne/internal/tsz"
)

// Retention (Options.Retention) ages chunks: a day older than its rule's Raw
// has its instances replaced by hourly rollups (level 1) or a daily one
// (level 2), and is deleted past the last level. Rollups keep what
// aggregation needs for numbers (count, sum, sum of squares, minimum,
// maximum); instance reads skip them, and a non-numeric series has nothing
// to roll up, so its old days are deleted.
//
//	level 1 = uvarint(k) k*(byte(hour) rollup)
//	level 2 = rollup
//	rollup  = uvarint(n) float64(sum) float64(sumsq) float64(min) float64(max) (little endian)
const (
	levelRaw    = 0
	levelHourly = 1
	levelDaily  = 2
	levelGone   = 3
)

// rollup is the numeric summary of some samples.
type rollup struct {
	n                    int
	sum, sumsq, min, max float64
}

func (r *rollup) add(v float64) {
	if r.n == 0 || v < r.min {
		r.min = v
	}
	if r.n == 0 || v > r.max {
		r.max = v
	}
	r.n++
	r.sum += v
	r.sumsq += v * v
}

func (r *rollup) merge(o *rollup) {
	if o.n == 0 {
		return
	}
	if r.n == 0 || o.min < r.min {
		r.min = o.min
	}
	if r.n == 0 || o.max > r.max {
		r.max = o.max
	}
	r.n += o.n
	r.sum += o.sum
	r.sumsq += o.sumsq
}

func appendRollup(b []byte, r *rollup) []byte {
	b = binary.AppendUvarint(b, uint64(r.n))
	for _, f := range [4]float64{r.sum, r.sumsq, r.min, r.max} {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
	}
	return b
}

func readRollup(d *codec.Decoder) rollup {
	r := rollup{n: int(d.Uvarint())}
	if len(d.B) < 32 {
		d.Fail()
		return rollup{}
	}
	r.sum = math.Float64frombits(binary.LittleEndian.Uint64(d.B))
	r.sumsq = math.Float64frombits(binary.LittleEndian.Uint64(d.B[8:]))
	r.min = math.Float64frombits(binary.LittleEndian.Uint64(d.B[16:]))
	r.max = math.Float64frombits(binary.LittleEndian.Uint64(d.B[24:]))
	d.B = d.B[32:]
	return r
}

// hourOf is the UTC hour of day (0-23) of a time in ns.
func hourOf(ns int64) int { return int((ns%dayNS + dayNS) % dayNS / int64(time.Hour)) }

// hourRollups are the rollups of one day by hour (index 0-23).
type hourRollups [24]rollup

// decodeLevel reads the hourly rollups a chunk of any level holds (a daily
// rollup is all in hour 0); hourly reports whether they are by hour.
func decodeLevel(level int, data []byte) (h hourRollups, hourly bool, err error) {
	switch level {
	case levelRaw:
		samples, err := tsz.Decode(data, nil)
		if err != nil {
			return h, false, err
		}
		for i := range samples {
			if samples[i].Num {
				h[hourOf(samples[i].T)].add(samples[i].V)
			}
		}
		return h, true, nil
	case levelHourly:
		d := &codec.Decoder{B: data}
		k := d.Count()
		for range k {
			hr := d.Byte()
			r := readRollup(d)
			if hr > 23 {
				d.Fail()
			}
			if d.Err != nil {
				return h, false, errCorruptHistory
			}
			h[hr] = r
		}
		return h, true, d.Err
	case levelDaily:
		d := &codec.Decoder{B: data}
		h[0] = readRollup(d)
		return h, false, d.Err
	}
	return h, false, errCorruptHistory
}

func encodeHourly(h *hourRollups) []byte {
	var b []byte
	k := 0
	for i := range h {
		if h[i].n > 0 {
			k++
		}
	}
	b = binary.AppendUvarint(b, uint64(k))
	for i := range h {
		if h[i].n > 0 {
			b = append(b, byte(i))
			b = appendRollup(b, &h[i])
		}
	}
	return b
}

// targetLevel is the level a day of this age should be at under rule.
func targetLevel(rule store.RetentionRule, age time.Duration) int {
	switch {
	case age < rule.Raw:
		return levelRaw
	case rule.Hourly > 0 && age < rule.Hourly:
		return levelHourly
	case rule.Daily > 0 && age < rule.Daily:
		return levelDaily
	}
	return levelGone
}

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
	before := dayOf(now.Add(-minRaw).UnixNano())
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
		age := now.Sub(time.Unix(0, (day+1)*dayNS))
		target := targetLevel(rule, age)
		if target <= level {
			continue
		}
		ch := change{chunkKey: k, level: target}
		if target != levelGone {
			h, _, err := decodeLevel(level, data)
			if err != nil {
				rows.Close()
				return 0, false, from, fmt.Errorf("chunk %d/%d: %w", sid, day, err)
			}
			if target == levelHourly {
				ch.data = encodeHourly(&h)
			} else {
				var all rollup
				for i := range h {
					all.merge(&h[i])
				}
				ch.data = appendRollup(nil, &all)
				if all.n == 0 {
					ch.level = levelGone
				}
			}
			if target == levelHourly && len(ch.data) == 1 { // no numbers
				ch.level = levelGone
			}
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

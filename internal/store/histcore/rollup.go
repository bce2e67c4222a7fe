package histcore

import (
	"encoding/binary"
	"math"
	"time"

	"github.com/zenne-city/zenne/internal/store"
	"github.com/zenne-city/zenne/internal/store/codec"
	"github.com/zenne-city/zenne/internal/tsz"
)

// Retention (store.Retention) ages the chunk of a day: past its rule's Raw
// its instances are replaced by hourly rollups (level 1) or a daily one
// (level 2), and past the last level it is deleted. Rollups keep what
// aggregation needs for numbers (count, sum, sum of squares, minimum,
// maximum); instance reads skip them, and a non-numeric series has nothing
// to roll up, so its old days are deleted.
//
//	level 1 = uvarint(k) k*(byte(hour) rollup)
//	level 2 = rollup
//	rollup  = uvarint(n) float64(sum) float64(sumsq) float64(min) float64(max) (little endian)
const (
	LevelRaw    = 0
	LevelHourly = 1
	LevelDaily  = 2
	LevelGone   = 3 // deleted: never stored
)

// Rollup is the numeric summary of some samples.
type Rollup struct {
	N                    int
	Sum, SumSq, Min, Max float64
}

// Add adds one value.
func (r *Rollup) Add(v float64) {
	if r.N == 0 || v < r.Min {
		r.Min = v
	}
	if r.N == 0 || v > r.Max {
		r.Max = v
	}
	r.N++
	r.Sum += v
	r.SumSq += v * v
}

// Merge adds another rollup.
func (r *Rollup) Merge(o *Rollup) {
	if o.N == 0 {
		return
	}
	if r.N == 0 || o.Min < r.Min {
		r.Min = o.Min
	}
	if r.N == 0 || o.Max > r.Max {
		r.Max = o.Max
	}
	r.N += o.N
	r.Sum += o.Sum
	r.SumSq += o.SumSq
}

// AppendRollup appends the encoding of r.
func AppendRollup(b []byte, r *Rollup) []byte {
	b = binary.AppendUvarint(b, uint64(r.N))
	for _, f := range [4]float64{r.Sum, r.SumSq, r.Min, r.Max} {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
	}
	return b
}

// ReadRollup reads what AppendRollup wrote; on bad input d.Err is set.
func ReadRollup(d *codec.Decoder) Rollup {
	r := Rollup{N: int(d.Uvarint())}
	if len(d.B) < 32 {
		d.Fail()
		return Rollup{}
	}
	r.Sum = math.Float64frombits(binary.LittleEndian.Uint64(d.B))
	r.SumSq = math.Float64frombits(binary.LittleEndian.Uint64(d.B[8:]))
	r.Min = math.Float64frombits(binary.LittleEndian.Uint64(d.B[16:]))
	r.Max = math.Float64frombits(binary.LittleEndian.Uint64(d.B[24:]))
	d.B = d.B[32:]
	return r
}

// HourRollups are the rollups of one day by hour (index 0-23).
type HourRollups [24]Rollup

// Total is the day's rollup.
func (h *HourRollups) Total() Rollup {
	var all Rollup
	for i := range h {
		all.Merge(&h[i])
	}
	return all
}

// DecodeLevel reads the hourly rollups a chunk of any level holds (a daily
// rollup is all in hour 0); hourly reports whether they are by hour.
func DecodeLevel(level int, data []byte) (h HourRollups, hourly bool, err error) {
	switch level {
	case LevelRaw:
		samples, err := tsz.Decode(data, nil)
		if err != nil {
			return h, false, err
		}
		for i := range samples {
			if samples[i].Num {
				h[HourOf(samples[i].T)].Add(samples[i].V)
			}
		}
		return h, true, nil
	case LevelHourly:
		d := &codec.Decoder{B: data}
		k := d.Count()
		for range k {
			hr := d.Byte()
			r := ReadRollup(d)
			if hr > 23 {
				d.Fail()
			}
			if d.Err != nil {
				return h, false, ErrCorrupt
			}
			h[hr] = r
		}
		if d.Err != nil {
			return h, false, ErrCorrupt
		}
		return h, true, nil
	case LevelDaily:
		d := &codec.Decoder{B: data}
		h[0] = ReadRollup(d)
		if d.Err != nil {
			return h, false, ErrCorrupt
		}
		return h, false, nil
	}
	return h, false, ErrCorrupt
}

// EncodeHourly encodes the hours of h that hold values (level 1).
func EncodeHourly(h *HourRollups) []byte {
	var b []byte
	k := 0
	for i := range h {
		if h[i].N > 0 {
			k++
		}
	}
	b = binary.AppendUvarint(b, uint64(k))
	for i := range h {
		if h[i].N > 0 {
			b = append(b, byte(i))
			b = AppendRollup(b, &h[i])
		}
	}
	return b
}

// TargetLevel is the level a day should be at under rule, age being how
// long ago it ended.
func TargetLevel(rule store.RetentionRule, age time.Duration) int {
	switch {
	case age < rule.Raw:
		return LevelRaw
	case rule.Hourly > 0 && age < rule.Hourly:
		return LevelHourly
	case rule.Daily > 0 && age < rule.Daily:
		return LevelDaily
	}
	return LevelGone
}

// DayAge is how long before now the UTC day ended.
func DayAge(now time.Time, day int64) time.Duration {
	return now.Sub(time.Unix(0, (day+1)*DayNS))
}

// Retire turns a chunk of level into one of target (> level): its rollups,
// with their count, or LevelGone when nothing numeric is left to keep.
func Retire(level int, data []byte, target int) (newLevel int, newData []byte, n int, err error) {
	if target == LevelGone {
		return LevelGone, nil, 0, nil
	}
	h, _, err := DecodeLevel(level, data)
	if err != nil {
		return 0, nil, 0, err
	}
	all := h.Total()
	if all.N == 0 {
		return LevelGone, nil, 0, nil // no numbers: nothing to roll up
	}
	if target == LevelHourly {
		return LevelHourly, EncodeHourly(&h), all.N, nil
	}
	return LevelDaily, AppendRollup(nil, &all), all.N, nil
}

// MergeRollups adds the numbers of samples to the rollups h of a day of
// level (late data for a day retention has rolled up) and returns the
// day's new encoding and count.
func MergeRollups(level int, h HourRollups, samples []tsz.Sample) (data []byte, n int) {
	for i := range samples {
		if !samples[i].Num {
			continue
		}
		hr := 0
		if level == LevelHourly {
			hr = HourOf(samples[i].T)
		}
		h[hr].Add(samples[i].V)
	}
	if level == LevelHourly {
		all := h.Total()
		return EncodeHourly(&h), all.N
	}
	return AppendRollup(nil, &h[0]), h[0].N
}

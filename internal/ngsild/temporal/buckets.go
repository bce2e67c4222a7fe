package temporal

import "time"

// Bucketer places times in the aggregation periods of a window with both
// ends, [from, to), the way Aggregate does for a between query: periods of d
// aligned at from, the last one cut at to. Stores that aggregate without
// building instances (from rollups, or straight from compressed samples)
// use it so their buckets are exactly Aggregate's.
type Bucketer struct {
	from, to time.Time
	d        Duration
}

// NewBucketer returns the Bucketer of [from, to) with periods of d (zero:
// one period).
func NewBucketer(from, to time.Time, d Duration) Bucketer {
	return Bucketer{from: from.UTC(), to: to.UTC(), d: d}
}

// Index is the index of the period holding t, which must be in [from, to).
func (b Bucketer) Index(t time.Time) int64 {
	if b.d.IsZero() {
		return 0
	}
	return periodIndex(b.from, b.d, t)
}

// Period is the k-th period.
func (b Bucketer) Period(k int64) Period {
	if b.d.IsZero() {
		return Period{b.from, b.to}
	}
	p := Period{b.d.addN(b.from, k), b.d.addN(b.from, k+1)}
	if p.End.After(b.to) {
		p.End = b.to
	}
	return p
}

// Within reports whether all of [start, end) lies in the window and in one
// period, and which: then a summary of values timed in that range can be
// merged into the period's bucket without looking at each value.
func (b Bucketer) Within(start, end time.Time) (int64, bool) {
	if start.Before(b.from) || end.After(b.to) || !start.Before(end) {
		return 0, false
	}
	k := b.Index(start)
	return k, b.Index(end.Add(-time.Nanosecond)) == k
}

// NewBucket is an empty bucket for period k, tracking distinct values only
// when asked (they cost memory).
func (b Bucketer) NewBucket(k int64, distinct bool) *Bucket {
	return &Bucket{Period: b.Period(k), Acc: Acc{noDistinct: !distinct}}
}

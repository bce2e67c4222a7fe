package histcore

import (
	"cmp"
	"maps"
	"slices"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild/temporal"
	"github.com/zenne-city/zenne/internal/tsz"
)

// SeriesKey names a series within one entity: an attribute (N is its
// expanded name, or a store's id for it) and a datasetId ("" for the
// default instance).
type SeriesKey[N cmp.Ordered] struct {
	Name    N
	Dataset string
}

// NewestFirst reports whether q asks for the last instances by observedAt,
// which reading days newest first can answer without reading all of them.
func NewestFirst(q *temporal.Query) bool {
	return q.LastN > 0 && q.ByObservedAt()
}

// Days is the range of chunk days that can hold instances of q's window:
// chunks are by the UTC day of T, which is the observedAt time property.
func Days(q *temporal.Query) (lo, hi int64) {
	lo, hi = -(1 << 62), 1<<62
	if !q.ByObservedAt() {
		return lo, hi
	}
	from, to := q.Window()
	if !from.IsZero() {
		lo = DayOf(from.UnixNano())
	}
	if !to.IsZero() {
		hi = DayOf(to.UnixNano())
	}
	return lo, hi
}

// HasLastN reports whether samples (of one series) already hold q.LastN
// instances in q's window timed at or after the start of day: older days
// cannot change its last n.
func HasLastN(q *temporal.Query, samples []tsz.Sample, day int64) bool {
	n := 0
	for i := range samples {
		t := samples[i].T
		if t >= day*DayNS && q.Contains(time.Unix(0, t).UTC()) {
			if n++; n >= q.LastN {
				return true
			}
		}
	}
	return false
}

// Preselect narrows a series' samples (changed in place) to those q can
// select before they are decoded into instances, most of a read's work: by
// observedAt, a sample's time is T, so the window and lastN apply to the
// samples as they are. Query.Select then decides exactly, as for any other
// time property.
func Preselect(q *temporal.Query, samples []tsz.Sample) []tsz.Sample {
	if !q.ByObservedAt() {
		return samples
	}
	if q.Rel != temporal.RelNone {
		samples = slices.DeleteFunc(samples, func(x tsz.Sample) bool {
			return !q.Contains(time.Unix(0, x.T).UTC())
		})
	}
	if n := q.LastN; n > 0 && len(samples) > n {
		slices.SortStableFunc(samples, func(a, b tsz.Sample) int { return cmp.Compare(a.T, b.T) })
		samples = samples[len(samples)-n:]
	}
	return samples
}

// Entity builds the temporal entity of id from the samples of its series
// (which it owns: they are narrowed in place): q's window, ascending in q's
// time property, the last q.LastN of each series. name gives a series'
// expanded attribute name.
func Entity[N cmp.Ordered](id string, types []string, series map[SeriesKey[N]][]tsz.Sample, q *temporal.Query, name func(N) string) (*temporal.Entity, error) {
	e := &temporal.Entity{ID: id, Types: types, Attrs: map[string][]temporal.Instance{}}
	// Series in a fixed order (the default instance first), so instances of
	// several datasetIds at the same time always come in the same order.
	keys := slices.SortedFunc(maps.Keys(series), func(a, b SeriesKey[N]) int {
		if c := cmp.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return cmp.Compare(a.Dataset, b.Dataset)
	})
	for _, k := range keys {
		samples := Preselect(q, series[k])
		insts := make([]temporal.Instance, len(samples))
		for i := range samples {
			a, err := AttrOf(&samples[i])
			if err != nil {
				return nil, err
			}
			insts[i] = temporal.Instance{ID: InstanceID(&samples[i], k.Dataset), Attr: a}
		}
		if insts = q.Select(insts); len(insts) > 0 {
			n := name(k.Name)
			e.Attrs[n] = append(e.Attrs[n], insts...)
		}
	}
	for n, insts := range e.Attrs {
		// Several datasetIds: one timeline.
		slices.SortStableFunc(insts, func(a, b temporal.Instance) int {
			return q.TimeOf(a.Attr).Compare(q.TimeOf(b.Attr))
		})
		e.Attrs[n] = insts
	}
	return e, nil
}

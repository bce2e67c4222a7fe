package histcore

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/zenne-city/zenne/internal/store"
	"github.com/zenne-city/zenne/internal/tsz"
)

// ImportEntity is what an import brings for one entity.
type ImportEntity struct {
	ID     string
	Types  []string // the last types given for it
	Series map[SeriesKey[string]][]tsz.Sample
}

// GroupImport encodes recs as samples (recorded at now when they have no
// recording time of their own), grouped by entity in first-seen order, then
// by series. Encoding is most of an import's work: stores do it before
// their transaction.
func GroupImport(recs []store.ImportRecord, now time.Time) ([]*ImportEntity, error) {
	byID := map[string]*ImportEntity{}
	var out []*ImportEntity
	for i := range recs {
		r := &recs[i]
		e := byID[r.EntityID]
		if e == nil {
			e = &ImportEntity{ID: r.EntityID, Series: map[SeriesKey[string]][]tsz.Sample{}}
			byID[r.EntityID] = e
			out = append(out, e)
		}
		if len(r.Types) > 0 {
			e.Types = r.Types
		}
		smp, err := SampleOf(r.Attr, now)
		if err != nil {
			return nil, fmt.Errorf("import %s %s: %w", r.EntityID, r.Name, err)
		}
		k := SeriesKey[string]{Name: r.Name, Dataset: r.Attr.DatasetID}
		e.Series[k] = append(e.Series[k], smp)
	}
	return out, nil
}

// ByDay sorts samples by time (stably) and calls f with each UTC day's run.
func ByDay(samples []tsz.Sample, f func(day int64, run []tsz.Sample) error) error {
	slices.SortStableFunc(samples, func(a, b tsz.Sample) int { return cmp.Compare(a.T, b.T) })
	for len(samples) > 0 {
		day := DayOf(samples[0].T)
		n := 1
		for n < len(samples) && DayOf(samples[n].T) == day {
			n++
		}
		if err := f(day, samples[:n:n]); err != nil {
			return err
		}
		samples = samples[n:]
	}
	return nil
}

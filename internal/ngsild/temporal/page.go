package temporal

import (
	"slices"
	"strconv"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
)

// Page is the time range a paginated temporal response covers (6.3.10):
// the client asks for the rest by moving timeAt (or, with lastN, endTimeAt)
// to End.
type Page struct {
	Start, End time.Time // ascending, or descending for lastN
	Size       int       // lastN, 0 when not given
}

// ContentRange is the Content-Range header of the page:
// "date-time <start>-<end>/<lastN or *>".
func (p Page) ContentRange() string {
	size := "*"
	if p.Size > 0 {
		size = strconv.Itoa(p.Size)
	}
	return "date-time " + ngsild.FormatTime(p.Start) + "-" + ngsild.FormatTime(p.End) + "/" + size
}

// Paginate limits the instances of each attribute of ents to limit, as
// 6.3.10 asks when a response would hold more, and reports the range the
// response then covers. Without lastN the page is the oldest instances:
// every attribute keeps its instances up to the earliest time at which one
// attribute reaches limit instances, so no attribute skips instances the
// next page would not return. With lastN it is the newest, the same way
// backwards. Instances at the range's end are included (a client continuing
// with timerel=after at End receives them again). ok is false, and nothing
// changes, when no attribute has more than limit instances.
func Paginate(ents []*Entity, q *Query, limit int) (p Page, ok bool) {
	if limit <= 0 {
		return Page{}, false
	}
	newest := q != nil && q.LastN > 0
	var cut time.Time
	var first, last time.Time // over all instances kept
	for _, e := range ents {
		for _, insts := range e.Attrs {
			if len(insts) == 0 {
				continue
			}
			lo, hi := q.TimeOf(insts[0].Attr), q.TimeOf(insts[len(insts)-1].Attr)
			if first.IsZero() || lo.Before(first) {
				first = lo
			}
			if last.IsZero() || hi.After(last) {
				last = hi
			}
			if len(insts) <= limit {
				continue
			}
			var t time.Time
			if newest {
				t = q.TimeOf(insts[len(insts)-limit].Attr)
				if cut.IsZero() || t.After(cut) {
					cut = t
				}
			} else {
				t = q.TimeOf(insts[limit-1].Attr)
				if cut.IsZero() || t.Before(cut) {
					cut = t
				}
			}
		}
	}
	if cut.IsZero() {
		return Page{}, false
	}
	for _, e := range ents {
		for name, insts := range e.Attrs {
			e.Attrs[name] = slices.DeleteFunc(insts, func(in Instance) bool {
				t := q.TimeOf(in.Attr)
				if newest {
					return t.Before(cut)
				}
				return t.After(cut)
			})
		}
	}
	from, to := q.Window()
	if newest {
		p = Page{Start: last, End: cut, Size: q.LastN}
		if !to.IsZero() {
			p.Start = to
		}
		return p, true
	}
	p = Page{Start: first, End: cut}
	if !from.IsZero() {
		p.Start = from
	}
	return p, true
}

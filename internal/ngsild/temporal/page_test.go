package temporal

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
)

var pageT0 = time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)

// series builds instances at the given minutes after pageT0.
func series(mins ...int) []Instance {
	out := make([]Instance, len(mins))
	for i, m := range mins {
		out[i] = Instance{ID: fmt.Sprint(m), Attr: &ngsild.Attribute{Kind: ngsild.Property, Value: float64(m), ObservedAt: pageT0.Add(time.Duration(m) * time.Minute)}}
	}
	return out
}

func mins(insts []Instance) string {
	var s []string
	for _, in := range insts {
		s = append(s, in.ID)
	}
	return strings.Join(s, " ")
}

func TestPaginate(t *testing.T) {
	at := func(m int) time.Time { return pageT0.Add(time.Duration(m) * time.Minute) }
	cases := []struct {
		name      string
		q         Query
		a, b      []Instance
		limit     int
		ok        bool
		wantA     string
		wantB     string
		wantRange string
	}{
		{"under the limit", Query{}, series(1, 2, 3), series(1, 2), 3, false, "1 2 3", "1 2", ""},
		{"oldest first, the attribute reaching the limit first decides",
			Query{}, series(1, 2, 3, 4, 5), series(2, 4, 6, 8), 2, true, "1 2", "2", "date-time 2026-05-01T00:01:00.000Z-2026-05-01T00:02:00.000Z/*"},
		{"between starts at timeAt",
			Query{Rel: RelBetween, At: at(0), EndAt: at(100)}, series(10, 20, 30), series(15), 2, true, "10 20", "15", "date-time 2026-05-01T00:00:00.000Z-2026-05-01T00:20:00.000Z/*"},
		{"lastN goes backwards from the newest",
			Query{LastN: 5}, series(1, 2, 3, 4, 5), series(2, 4, 6, 8), 2, true, "", "6 8", "date-time 2026-05-01T00:08:00.000Z-2026-05-01T00:06:00.000Z/5"},
		{"lastN with endTimeAt starts there",
			Query{LastN: 3, Rel: RelBetween, At: at(0), EndAt: at(60)}, series(1, 2, 3), nil, 2, true, "2 3", "", "date-time 2026-05-01T01:00:00.000Z-2026-05-01T00:02:00.000Z/3"},
		{"ties at the cut are kept", Query{}, series(1, 2, 2, 3), series(2, 3), 2, true, "1 2 2", "2", "date-time 2026-05-01T00:01:00.000Z-2026-05-01T00:02:00.000Z/*"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := &Entity{ID: "urn:x", Attrs: map[string][]Instance{"a": c.a, "b": c.b}}
			p, ok := Paginate([]*Entity{e}, &c.q, c.limit)
			if ok != c.ok {
				t.Fatalf("ok = %v, want %v", ok, c.ok)
			}
			if got := mins(e.Attrs["a"]); got != c.wantA {
				t.Errorf("a = %q, want %q", got, c.wantA)
			}
			if got := mins(e.Attrs["b"]); got != c.wantB {
				t.Errorf("b = %q, want %q", got, c.wantB)
			}
			if ok && p.ContentRange() != c.wantRange {
				t.Errorf("Content-Range = %q, want %q", p.ContentRange(), c.wantRange)
			}
		})
	}
}

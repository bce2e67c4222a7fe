package storetest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/ngsild/temporal"
	"github.com/zenne-city/zenne/internal/store"
)

// RunHistory runs the history part of the suite (the History* tests of
// Run), for a backend whose history is built apart from the rest.
func RunHistory(t *testing.T, open func(t *testing.T) store.Store) {
	for _, tc := range []struct {
		name string
		f    func(t *testing.T, open func(t *testing.T) store.Store)
	}{
		{"HistoryRecording", testHistoryRecording},
		{"HistoryTimeQueries", testHistoryTimeQueries},
		{"HistoryKeptAndDeleted", testHistoryKeptAndDeleted},
		{"HistoryBackfill", testHistoryBackfill},
		{"HistoryReopen", testHistoryReopen},
		{"HistoryImport", testHistoryImport},
		{"HistoryAggregate", testHistoryAggregate},
		{"HistoryMany", testHistoryMany},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.f(t, open) })
	}
}

// Sealer is implemented by stores that move recent history into a compacted
// form in the background; the suite asks for it so every history test runs
// on both forms.
type Sealer interface {
	Seal(ctx context.Context, cutoff time.Time) (int, error)
}

// seal compacts all history recorded so far, if s can.
func seal(t *testing.T, s store.Store) {
	t.Helper()
	if sl, ok := s.(Sealer); ok {
		if _, err := sl.Seal(context.Background(), time.Now().Add(time.Hour)); err != nil {
			t.Fatalf("Seal: %v", err)
		}
	}
}

// forms runs f on recent history and, when the store seals, again after
// sealing (the answers must not change).
func forms(t *testing.T, s store.Store, f func(t *testing.T)) {
	t.Run("recent", f)
	if _, ok := s.(Sealer); ok {
		seal(t, s)
		t.Run("sealed", f)
	}
}

var h0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// at is a Property with value v observed at h0 plus min minutes, modified at
// the same time.
func at(v any, min int) *ngsild.Attribute {
	tm := h0.Add(time.Duration(min) * time.Minute)
	return &ngsild.Attribute{Kind: ngsild.Property, Value: v, ObservedAt: tm, ModifiedAt: tm, CreatedAt: h0}
}

// setAttr is an op replacing one attribute instance of an existing entity
// (copy-on-write, as the broker does).
func setAttr(id, name string, a *ngsild.Attribute) store.Op {
	return store.Op{ID: id, Apply: func(cur *ngsild.Entity) (*ngsild.Entity, error) {
		if cur == nil {
			return nil, errMissing
		}
		n := cur.Derive()
		name := Expand(name)
		var insts []*ngsild.Attribute
		for _, x := range n.Attrs[name] {
			if x.DatasetID != a.DatasetID {
				insts = append(insts, x)
			}
		}
		n.Attrs[name] = append(insts, a)
		return n, nil
	}}
}

func history(t *testing.T, s store.Store, tenant, id string, attrs []string, q *temporal.Query) *temporal.Entity {
	t.Helper()
	var exp []string
	for _, a := range attrs {
		exp = append(exp, Expand(a))
	}
	h, err := s.EntityHistory(context.Background(), tenant, id, exp, q)
	if err != nil {
		t.Fatalf("EntityHistory(%s): %v", id, err)
	}
	return h
}

// timeline writes an attribute's instances as "value@minute[/datasetId]".
func timeline(h *temporal.Entity, name string) string {
	var parts []string
	for _, in := range h.Attrs[Expand(name)] {
		s := fmt.Sprintf("%v@%d", in.Attr.Value, int(in.Attr.ObservedAt.Sub(h0)/time.Minute))
		if in.Attr.ObservedAt.IsZero() {
			s = fmt.Sprintf("%v@-", in.Attr.Value)
		}
		if in.Attr.DatasetID != "" {
			s += "/" + in.Attr.DatasetID
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

func testHistoryRecording(t *testing.T, open func(t *testing.T) store.Store) {
	s := openStore(t, open)
	const id = "urn:ngsi-ld:WaterMeter:h1"
	e := Ent(id, []string{"WaterMeter"}, "flow", at(1.5, 0), "status", at("ok", 0))
	rich := at(7.0, 0)
	rich.DatasetID, rich.UnitCode = "urn:ngsi-ld:Dataset:raw", "MTQ"
	rich.Sub = map[string]*ngsild.Attribute{Expand("quality"): {Kind: ngsild.Property, Value: "good"}}
	e.Attrs[Expand("flow")] = append(e.Attrs[Expand("flow")], rich)
	mustWrite(t, s, "", Create(e))
	mustWrite(t, s, "", setAttr(id, "flow", at(2.5, 15)))
	mustWrite(t, s, "", setAttr(id, "flow", at(0.0, 30)), setAttr(id, "flow", at(3.25, 45)))
	// A change without observedAt is recorded at its modification time.
	noObs := &ngsild.Attribute{Kind: ngsild.Property, Value: "leak", ModifiedAt: h0.Add(50 * time.Minute)}
	mustWrite(t, s, "", setAttr(id, "status", noObs))

	forms(t, s, func(t *testing.T) {
		h := history(t, s, "", id, nil, &temporal.Query{})
		if !slices.Equal(h.Types, []string{Expand("WaterMeter")}) {
			t.Errorf("types = %v", h.Types)
		}
		if got, want := timeline(h, "flow"), "1.5@0 7@0/urn:ngsi-ld:Dataset:raw 2.5@15 0@30 3.25@45"; got != want {
			t.Errorf("flow history = %q, want %q", got, want)
		}
		if got, want := timeline(h, "status"), "ok@0 leak@-"; got != want {
			t.Errorf("status history = %q, want %q (unchanged attributes are not recorded again)", got, want)
		}
		for _, in := range h.Attrs[Expand("flow")] {
			if in.Attr.DatasetID == "urn:ngsi-ld:Dataset:raw" {
				if in.Attr.UnitCode != "MTQ" || in.Attr.Sub[Expand("quality")] == nil || in.Attr.Sub[Expand("quality")].Value != "good" {
					t.Errorf("metadata lost: %+v", in.Attr)
				}
			}
			if !strings.HasPrefix(in.ID, "urn:") {
				t.Errorf("instanceId %q is not a URI", in.ID)
			}
		}
		st := h.Attrs[Expand("status")]
		if len(st) == 2 && !st[1].Attr.ModifiedAt.Equal(h0.Add(50*time.Minute)) {
			t.Errorf("modifiedAt of the last status = %v", st[1].Attr.ModifiedAt)
		}
	})
}

func testHistoryTimeQueries(t *testing.T, open func(t *testing.T) store.Store) {
	s := openStore(t, open)
	const id = "urn:ngsi-ld:Sensor:t1"
	mustWrite(t, s, "", Create(Ent(id, []string{"Sensor"}, "temp", at(10.0, 0), "hum", at(50.0, 0))))
	// Days apart, so a sealed history spans several chunks.
	for i := 1; i <= 6; i++ {
		mustWrite(t, s, "", setAttr(id, "temp", at(10.0+float64(i), i*720)))
	}
	forms(t, s, func(t *testing.T) {
		cases := []struct {
			name  string
			attrs []string
			q     temporal.Query
			want  string
		}{
			{"all", []string{"temp"}, temporal.Query{}, "10@0 11@720 12@1440 13@2160 14@2880 15@3600 16@4320"},
			{"before", []string{"temp"}, temporal.Query{Rel: temporal.RelBefore, At: h0.Add(1440 * time.Minute)}, "10@0 11@720"},
			{"after (inclusive)", []string{"temp"}, temporal.Query{Rel: temporal.RelAfter, At: h0.Add(3600 * time.Minute)}, "15@3600 16@4320"},
			{"between", []string{"temp"}, temporal.Query{Rel: temporal.RelBetween, At: h0.Add(720 * time.Minute), EndAt: h0.Add(2880 * time.Minute)}, "11@720 12@1440 13@2160"},
			{"lastN", []string{"temp"}, temporal.Query{LastN: 2}, "15@3600 16@4320"},
			{"between+lastN", []string{"temp"}, temporal.Query{Rel: temporal.RelBetween, At: h0, EndAt: h0.Add(2000 * time.Minute), LastN: 1}, "12@1440"},
			{"other attribute", []string{"hum"}, temporal.Query{}, "50@0"},
		}
		for _, c := range cases {
			h := history(t, s, "", id, c.attrs, &c.q)
			if got := timeline(h, c.attrs[0]); got != c.want {
				t.Errorf("%s: %q, want %q", c.name, got, c.want)
			}
			for name := range h.Attrs {
				if name != Expand(c.attrs[0]) {
					t.Errorf("%s: attribute %s was not asked for", c.name, name)
				}
			}
		}
	})
}

func testHistoryKeptAndDeleted(t *testing.T, open func(t *testing.T) store.Store) {
	s := openStore(t, open)
	ctx := context.Background()
	const id = "urn:ngsi-ld:Bin:d1"
	dsA := "urn:ngsi-ld:Dataset:a"
	a := at(0.5, 10)
	a.DatasetID = dsA
	mustWrite(t, s, "", Create(Ent(id, []string{"Bin"}, "fill", at(0.1, 0), "fill", a, "temp", at(20.0, 0))))
	mustWrite(t, s, "", setAttr(id, "fill", at(0.2, 20)))
	mustWrite(t, s, "", Delete(id))
	if _, err := s.EntityHistory(ctx, "", "urn:ngsi-ld:Bin:none", nil, &temporal.Query{}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("history of an unknown entity: %v, want ErrNotFound", err)
	}
	if _, err := s.EntityHistory(ctx, "no-such-tenant", id, nil, &temporal.Query{}); !errors.Is(err, store.ErrNoTenant) {
		t.Errorf("history in an unknown tenant: %v, want ErrNoTenant", err)
	}
	forms(t, s, func(t *testing.T) {
		h := history(t, s, "", id, nil, &temporal.Query{})
		if got, want := timeline(h, "fill"), "0.1@0 0.5@10/"+dsA+" 0.2@20"; got != want {
			t.Fatalf("history after the entity was deleted = %q, want %q", got, want)
		}
	})
	// One instance, by its id.
	h := history(t, s, "", id, nil, &temporal.Query{})
	victim := h.Attrs[Expand("fill")][2].ID
	if err := s.DeleteHistory(ctx, "", id, store.HistorySelector{Attr: Expand("fill"), InstanceID: victim}); err != nil {
		t.Fatalf("delete instance: %v", err)
	}
	if err := s.DeleteHistory(ctx, "", id, store.HistorySelector{Attr: Expand("fill"), InstanceID: victim}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleting it again: %v, want ErrNotFound", err)
	}
	if got, want := timeline(history(t, s, "", id, nil, &temporal.Query{}), "fill"), "0.1@0 0.5@10/"+dsA; got != want {
		t.Errorf("after deleting an instance: %q, want %q", got, want)
	}
	// Replace one: it keeps its time and id.
	keep := history(t, s, "", id, nil, &temporal.Query{}).Attrs[Expand("fill")][0].ID
	if err := s.ReplaceInstance(ctx, "", id, Expand("fill"), keep, &ngsild.Attribute{Kind: ngsild.Property, Value: 0.15, UnitCode: "P1"}); err != nil {
		t.Fatalf("replace instance: %v", err)
	}
	h = history(t, s, "", id, nil, &temporal.Query{})
	if got, want := timeline(h, "fill"), "0.15@0 0.5@10/"+dsA; got != want || h.Attrs[Expand("fill")][0].ID != keep || h.Attrs[Expand("fill")][0].Attr.UnitCode != "P1" {
		t.Errorf("after replacing an instance: %q (id %s), want %q (id %s)", got, h.Attrs[Expand("fill")][0].ID, want, keep)
	}
	// One datasetId of an attribute.
	if err := s.DeleteHistory(ctx, "", id, store.HistorySelector{Attr: Expand("fill"), DatasetID: &dsA}); err != nil {
		t.Fatalf("delete a datasetId: %v", err)
	}
	if got, want := timeline(history(t, s, "", id, nil, &temporal.Query{}), "fill"), "0.15@0"; got != want {
		t.Errorf("after deleting a datasetId: %q, want %q", got, want)
	}
	// The whole entity.
	if err := s.DeleteHistory(ctx, "", id, store.HistorySelector{}); err != nil {
		t.Fatalf("delete history: %v", err)
	}
	if _, err := s.EntityHistory(ctx, "", id, nil, &temporal.Query{}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("history after deleting it: %v, want ErrNotFound", err)
	}
}

func testHistoryBackfill(t *testing.T, open func(t *testing.T) store.Store) {
	s := openStore(t, open)
	const id = "urn:ngsi-ld:Meter:b1"
	cur := Ent(id, []string{"Meter"}, "kwh", at(100.0, 600))
	mustWrite(t, s, "", Create(cur))
	old := []store.Recorded{{Name: Expand("kwh"), Attr: at(90.0, 0)}, {Name: Expand("kwh"), Attr: at(95.0, 300)}}
	res := write(t, s, "", store.Op{ID: id, History: &store.HistoryWrite{Instances: old},
		Apply: func(cur *ngsild.Entity) (*ngsild.Entity, error) { return cur, nil }})
	if res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	if v := get(t, s, "", id).Attrs[Expand("kwh")][0].Value; v != 100.0 {
		t.Errorf("back-filling changed the current value to %v", v)
	}
	forms(t, s, func(t *testing.T) {
		if got, want := timeline(history(t, s, "", id, nil, &temporal.Query{}), "kwh"), "90@0 95@300 100@600"; got != want {
			t.Errorf("history = %q, want %q", got, want)
		}
	})
}

func testHistoryReopen(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	const id = "urn:ngsi-ld:Sensor:r1"
	mustWrite(t, s, "", Create(Ent(id, []string{"Sensor"}, "v", at(1.0, 0))))
	mustWrite(t, s, "", setAttr(id, "v", at(2.0, 1)))
	seal(t, s)
	mustWrite(t, s, "", setAttr(id, "v", at(3.0, 2)))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, open)
	if got, want := timeline(history(t, s, "", id, nil, &temporal.Query{}), "v"), "1@0 2@1 3@2"; got != want {
		t.Errorf("history after reopening = %q, want %q", got, want)
	}
}

func testHistoryImport(t *testing.T, open func(t *testing.T) store.Store) {
	s := openStore(t, open)
	im, ok := s.(store.HistoryImporter)
	if !ok {
		t.Skip("the store has no bulk import")
	}
	ctx := context.Background()
	const id = "urn:ngsi-ld:Meter:i1"
	mustWrite(t, s, "", Create(Ent(id, []string{"Meter"}, "kwh", at(30.0, 3000))))
	var recs []store.ImportRecord
	for i := range 5 {
		recs = append(recs, store.ImportRecord{EntityID: id, Types: []string{Expand("Meter")}, Name: Expand("kwh"), Attr: at(float64(i), i*720)})
	}
	recs = append(recs, store.ImportRecord{EntityID: "urn:ngsi-ld:Meter:only-history", Types: []string{Expand("Meter")}, Name: Expand("kwh"), Attr: at(7.0, 0)})
	for range 2 { // the second run adds nothing
		if err := im.ImportHistory(ctx, "", recs); err != nil {
			t.Fatalf("ImportHistory: %v", err)
		}
	}
	if err := im.ImportHistory(ctx, "new-tenant", recs[:1]); err != nil {
		t.Fatalf("ImportHistory into a new tenant: %v", err)
	}
	forms(t, s, func(t *testing.T) {
		if got, want := timeline(history(t, s, "", id, nil, &temporal.Query{}), "kwh"), "0@0 1@720 2@1440 3@2160 4@2880 30@3000"; got != want {
			t.Errorf("history = %q, want %q", got, want)
		}
		h := history(t, s, "", "urn:ngsi-ld:Meter:only-history", nil, &temporal.Query{})
		if got, want := timeline(h, "kwh"), "7@0"; got != want || !slices.Equal(h.Types, []string{Expand("Meter")}) {
			t.Errorf("history of an entity known only from the import = %q %v, want %q", got, h.Types, want)
		}
		if got := timeline(history(t, s, "new-tenant", id, nil, &temporal.Query{}), "kwh"); got != "0@0" {
			t.Errorf("history in the new tenant = %q", got)
		}
	})
}

// testHistoryAggregate holds AggregateHistory equal to aggregating the
// instances EntityHistory returns, on randomized series over several days,
// for windows and periods aligned with days and not, before and after
// sealing (when a store answers from rollups, it must not differ).
func testHistoryAggregate(t *testing.T, open func(t *testing.T) store.Store) {
	s := openStore(t, open)
	ctx := context.Background()
	const id = "urn:ngsi-ld:Meter:agg"
	day0 := time.Date(2026, 1, 30, 0, 0, 0, 0, time.UTC)
	mk := func(v any, tm time.Time, ds string) *ngsild.Attribute {
		return &ngsild.Attribute{Kind: ngsild.Property, Value: v, ObservedAt: tm, ModifiedAt: tm, DatasetID: ds}
	}
	mustWrite(t, s, "", Create(Ent(id, []string{"Meter"}, "kwh", mk(0.0, day0, ""))))
	var recs []store.Recorded
	v := 0.0
	for i := 1; i < 6*96; i++ { // six days of 15-minute readings
		tm := day0.Add(time.Duration(i) * 15 * time.Minute)
		v += float64(i%7) * 0.125
		recs = append(recs, store.Recorded{Name: Expand("kwh"), Attr: mk(v, tm, "")})
		if i%5 == 0 {
			recs = append(recs, store.Recorded{Name: Expand("kwh"), Attr: mk(float64(i%3), tm, "urn:ngsi-ld:Dataset:b")})
		}
		if i%11 == 0 {
			recs = append(recs, store.Recorded{Name: Expand("status"), Attr: mk([]string{"ok", "low", "ok"}[i%3], tm, "")})
		}
	}
	res := write(t, s, "", store.Op{ID: id, History: &store.HistoryWrite{Instances: recs},
		Apply: func(cur *ngsild.Entity) (*ngsild.Entity, error) { return cur, nil }})
	if res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	// A second meter, read with the first by AggregateHistories: every
	// third reading of the first, doubled.
	const id2 = "urn:ngsi-ld:Meter:agg2"
	mustWrite(t, s, "", Create(Ent(id2, []string{"Meter"}, "kwh", mk(0.0, day0, ""))))
	var recs2 []store.Recorded
	for i, r := range recs {
		if i%3 == 0 {
			a := *r.Attr
			if f, ok := a.Value.(float64); ok {
				a.Value = 2 * f
			}
			recs2 = append(recs2, store.Recorded{Name: r.Name, Attr: &a})
		}
	}
	res = write(t, s, "", store.Op{ID: id2, History: &store.HistoryWrite{Instances: recs2},
		Apply: func(cur *ngsild.Entity) (*ngsild.Entity, error) { return cur, nil }})
	if res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	all := []temporal.Method{temporal.TotalCount, temporal.DistinctCount, temporal.Sum, temporal.Avg, temporal.Min, temporal.Max, temporal.StdDev, temporal.SumSq}
	noDistinct := []temporal.Method{temporal.TotalCount, temporal.Sum, temporal.Avg, temporal.Min, temporal.Max, temporal.StdDev, temporal.SumSq}
	dur := func(s string) temporal.Duration {
		d, err := temporal.ParseDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	between := func(from, to time.Time) *temporal.Query {
		return &temporal.Query{Rel: temporal.RelBetween, At: from, EndAt: to}
	}
	cases := []struct {
		name    string
		q       *temporal.Query
		methods []temporal.Method
		d       string
	}{
		{"days aligned", between(day0, day0.AddDate(0, 0, 6)), noDistinct, "P1D"},
		{"days aligned with distinct", between(day0, day0.AddDate(0, 0, 6)), all, "P1D"},
		{"hours", between(day0.Add(90*time.Minute), day0.AddDate(0, 0, 2)), noDistinct, "PT1H"},
		{"two days from midday", between(day0.Add(12*time.Hour), day0.AddDate(0, 0, 5)), noDistinct, "P2D"},
		{"month", between(day0, day0.AddDate(0, 1, 0)), noDistinct, "P1M"},
		{"one period", between(day0.Add(time.Hour), day0.AddDate(0, 0, 4)), noDistinct, ""},
		{"before (instances)", &temporal.Query{Rel: temporal.RelBefore, At: day0.AddDate(0, 0, 3)}, all, "P1D"},
	}
	forms(t, s, func(t *testing.T) {
		for _, c := range cases {
			var d temporal.Duration
			if c.d != "" {
				d = dur(c.d)
			}
			h, err := s.EntityHistory(ctx, "", id, nil, c.q)
			if err != nil {
				t.Fatal(err)
			}
			want := temporal.AggregateEntity(h, c.q, c.methods, d)
			_, got, err := s.AggregateHistory(ctx, "", id, nil, c.q, c.methods, d)
			if err != nil {
				t.Fatalf("%s: AggregateHistory: %v", c.name, err)
			}
			if len(want) == 0 {
				t.Fatalf("%s: nothing to aggregate: the test proves nothing", c.name)
			}
			if err := sameSeries(got, want, c.methods); err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			// A page: each entity as on its own, twice if asked twice, nil
			// without history.
			_, got2, err := s.AggregateHistory(ctx, "", id2, nil, c.q, c.methods, d)
			if err != nil {
				t.Fatalf("%s: AggregateHistory of %s: %v", c.name, id2, err)
			}
			page, err := s.AggregateHistories(ctx, "", []string{id, "urn:ngsi-ld:Meter:none", id2, id}, nil, c.q, c.methods, d)
			if err != nil {
				t.Fatalf("%s: AggregateHistories: %v", c.name, err)
			}
			if len(page) != 4 || page[1] != nil || page[0] == nil || page[2] == nil || page[3] == nil {
				t.Fatalf("%s: AggregateHistories = %v, want 3 entities and nil for the one without history", c.name, page)
			}
			for i, w := range [][]temporal.Series{got, nil, got2, got} {
				if w == nil {
					continue
				}
				if e := page[i].Entity; e.ID != []string{id, "", id2, id}[i] || len(e.Attrs) != 0 {
					t.Errorf("%s: AggregateHistories[%d] is %s with %d attributes", c.name, i, e.ID, len(e.Attrs))
				}
				if err := sameSeries(page[i].Series, w, c.methods); err != nil {
					t.Errorf("%s: AggregateHistories[%d]: %v", c.name, i, err)
				}
			}
		}
	})
}

func sameSeries(got, want []temporal.Series, methods []temporal.Method) error {
	if len(got) != len(want) {
		return fmt.Errorf("%d series, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := &got[i], &want[i]
		if g.Name != w.Name || g.DatasetID != w.DatasetID || g.Kind != w.Kind || len(g.Buckets) != len(w.Buckets) {
			return fmt.Errorf("series %d: %s/%s %s with %d buckets, want %s/%s %s with %d", i, g.Name, g.DatasetID, g.Kind, len(g.Buckets), w.Name, w.DatasetID, w.Kind, len(w.Buckets))
		}
		for j := range w.Buckets {
			gb, wb := &g.Buckets[j], &w.Buckets[j]
			if !gb.Start.Equal(wb.Start) || !gb.End.Equal(wb.End) {
				return fmt.Errorf("series %s bucket %d: [%v, %v), want [%v, %v)", w.Name, j, gb.Start, gb.End, wb.Start, wb.End)
			}
			for _, m := range methods {
				gv, wv := gb.Value(m), wb.Value(m)
				gf, gok := gv.(float64)
				wf, wok := wv.(float64)
				if gok && wok {
					if math.Abs(gf-wf) > 1e-9*math.Max(1, math.Abs(wf)) {
						return fmt.Errorf("series %s bucket %d %s: %v, want %v", w.Name, j, m, gv, wv)
					}
					continue
				}
				if fmt.Sprint(gv) != fmt.Sprint(wv) {
					return fmt.Errorf("series %s bucket %d %s: %v, want %v", w.Name, j, m, gv, wv)
				}
			}
		}
	}
	return nil
}

// testHistoryMany holds EntityHistories equal to EntityHistory of each
// entity, for entities with recent and sealed history, types changed since
// sealing, and none.
func testHistoryMany(t *testing.T, open func(t *testing.T) store.Store) {
	s := openStore(t, open)
	ctx := context.Background()
	ids := []string{"urn:ngsi-ld:Sensor:m1", "urn:ngsi-ld:Sensor:m2", "urn:ngsi-ld:Sensor:none", "urn:ngsi-ld:Sensor:m3"}
	for k, id := range []string{ids[0], ids[1], ids[3]} {
		mustWrite(t, s, "", Create(Ent(id, []string{"Sensor"}, "v", at(float64(k), 0), "w", at("a", 0))))
		for i := 1; i <= 4; i++ {
			mustWrite(t, s, "", setAttr(id, "v", at(float64(10*k+i), i*600)))
		}
	}
	check := func(t *testing.T) {
		for _, q := range []temporal.Query{{}, {LastN: 1}, {LastN: 3}, {Rel: temporal.RelBetween, At: h0.Add(500 * time.Minute), EndAt: h0.Add(2000 * time.Minute), LastN: 1}, {Rel: temporal.RelAfter, At: h0.Add(1200 * time.Minute)}} {
			for _, attrs := range [][]string{nil, {Expand("v")}} {
				many, err := s.EntityHistories(ctx, "", ids, attrs, &q)
				if err != nil {
					t.Fatal(err)
				}
				for i, id := range ids {
					one, err := s.EntityHistory(ctx, "", id, attrs, &q)
					if errors.Is(err, store.ErrNotFound) {
						if many[i] != nil {
							t.Errorf("%s %+v: EntityHistories has history, EntityHistory none", id, q)
						}
						continue
					}
					if err != nil {
						t.Fatal(err)
					}
					if many[i] == nil {
						t.Errorf("%s %+v: EntityHistories has no history", id, q)
						continue
					}
					for _, name := range []string{"v", "w"} {
						if a, b := timeline(many[i], name), timeline(one, name); a != b {
							t.Errorf("%s %+v %s: EntityHistories %q, EntityHistory %q", id, q, name, a, b)
						}
					}
					if !slices.Equal(many[i].Types, one.Types) {
						t.Errorf("%s: types %v and %v", id, many[i].Types, one.Types)
					}
				}
			}
		}
	}
	forms(t, s, check)
	// Recent history on top of sealed history, and a type added since.
	mustWrite(t, s, "", setAttr(ids[0], "v", at(99.0, 5000)))
	mustWrite(t, s, "", Update(ids[1], func(e *ngsild.Entity) {
		e.Types = append(e.Types, Expand("Thing"))
		e.Attrs[Expand("v")] = []*ngsild.Attribute{at(77.0, 4000)}
	}))
	t.Run("mixed", check)
	if h := history(t, s, "", ids[1], nil, &temporal.Query{}); !slices.Contains(h.Types, Expand("Thing")) {
		t.Errorf("types %v: the newest record's types should win", h.Types)
	}
}

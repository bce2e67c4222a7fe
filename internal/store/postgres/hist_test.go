package postgres

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/ngsild/temporal"
	"github.com/zenne-city/zenne/internal/store"
	"github.com/zenne-city/zenne/internal/store/histcore"
	"github.com/zenne-city/zenne/internal/store/storetest"
)

// TestHistoryConformance runs the History* tests of the conformance suite
// on PostgreSQL, each on a fresh database (the same one when a test opens
// the store again).
func TestHistoryConformance(t *testing.T) {
	ts := &testStores{urls: map[*testing.T]string{}}
	storetest.RunHistory(t, ts.open)
}

// openAt opens a store on the database at url, closed when the test ends.
func openAt(t testing.TB, url string, opts Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), url, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// record stores recs as a write transaction would (recordHistory at at).
func record(t testing.TB, s *Store, at time.Time, recs ...histRecord) {
	t.Helper()
	ctx := context.Background()
	if err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return s.recordHistory(ctx, tx, at, recs) }); err != nil {
		t.Fatalf("recordHistory: %v", err)
	}
}

// num is a recorded numeric instance of name observed at obs.
func num(name string, v float64, obs time.Time, dataset string) store.Recorded {
	return store.Recorded{Name: storetest.Expand(name), Attr: &ngsild.Attribute{
		Kind: ngsild.Property, Value: v, ObservedAt: obs, ModifiedAt: obs, DatasetID: dataset}}
}

func countRows(t testing.TB, s *Store, table string) int {
	t.Helper()
	var n int
	if err := s.pool.QueryRow(context.Background(), `SELECT count(*) FROM `+table).Scan(&n); err != nil {
		t.Fatalf("counting %s: %v", table, err)
	}
	return n
}

// values are the values of an attribute's instances, in order.
func values(h *temporal.Entity, name string) []float64 {
	var out []float64
	for _, in := range h.Attrs[storetest.Expand(name)] {
		out = append(out, in.Attr.Value.(float64))
	}
	return out
}

func TestHeadRecordRoundTrip(t *testing.T) {
	obs := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	insts := []store.Recorded{num("v", 1.5, obs, ""), num("v", 2, obs, "urn:ds"),
		{Name: storetest.Expand("s"), Attr: &ngsild.Attribute{Kind: ngsild.Property, Value: "ok", UnitCode: "X"}}}
	now := obs.Add(time.Minute)
	doc, err := encodeHeadRecord([]string{"urn:T1", "urn:T2"}, insts, now)
	if err != nil {
		t.Fatal(err)
	}
	types, got, err := decodeHeadRecord(doc)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(types, []string{"urn:T1", "urn:T2"}) || len(got) != 3 {
		t.Fatalf("decoded %v and %d instances", types, len(got))
	}
	for i, in := range got {
		a, err := histcore.AttrOf(&in.s)
		if err != nil {
			t.Fatal(err)
		}
		if in.name != insts[i].Name || in.dataset != insts[i].Attr.DatasetID || fmt.Sprint(a.Value) != fmt.Sprint(insts[i].Attr.Value) {
			t.Errorf("instance %d: %s/%s %v, want %s/%s %v", i, in.name, in.dataset, a.Value, insts[i].Name, insts[i].Attr.DatasetID, insts[i].Attr.Value)
		}
	}
	if !got[2].s.Num && got[2].s.R != now.UnixNano() {
		t.Errorf("an instance without modifiedAt is recorded at %d, want the commit time", got[2].s.R)
	}
	if again := encodeHeadInsts(types, got); string(again) != string(doc) {
		t.Error("re-encoding a decoded record changes it")
	}
	for i := range doc {
		if _, _, err := decodeHeadRecord(doc[:i]); err == nil {
			t.Fatalf("a record cut at %d bytes decodes", i)
		}
	}
}

// TestHistorySealWhileReading records, seals and reads at once: every read
// sees each instance committed before it started, exactly once, and lastN
// reads see a series' newest instances without a gap, wherever they are
// (head records, chunks, or moving between them).
func TestHistorySealWhileReading(t *testing.T) {
	s := openAt(t, testDatabase(t), Options{})
	ctx := context.Background()
	const ents = 16
	ids := make([]string, ents)
	for i := range ids {
		ids[i] = fmt.Sprintf("urn:ngsi-ld:Sensor:sw%02d", i)
	}
	// Instance i belongs to entity i%ents, observed 7 minutes after i-1:
	// the series cross days (and a month), so sealing writes many chunks.
	t0 := time.Date(2026, 3, 27, 0, 0, 0, 0, time.UTC)
	var committed atomic.Int64
	deadline := time.Now().Add(3 * time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	stop := make(chan struct{})
	wg.Add(1)
	go func() { // writer
		defer wg.Done()
		defer close(stop)
		for i := 0; time.Now().Before(deadline); {
			var recs []histRecord
			for range 8 {
				obs := t0.Add(time.Duration(i) * 7 * time.Minute)
				recs = append(recs, histRecord{Tenant: 1, EntityID: ids[i%ents], Types: []string{"urn:T"},
					Instances: []store.Recorded{num("v", float64(i), obs, "")}})
				i++
			}
			err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return s.recordHistory(ctx, tx, time.Now(), recs) })
			if err != nil {
				errs <- err
				return
			}
			committed.Store(int64(i))
		}
	}()
	wg.Add(1)
	go func() { // sealer
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := s.Seal(ctx, time.Now().Add(time.Hour)); err != nil {
				errs <- err
				return
			}
		}
	}()
	reads := atomic.Int64{}
	for range 2 {
		wg.Add(1)
		go func() { // readers
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				c := committed.Load()
				hs, err := s.EntityHistories(ctx, "", ids, nil, &temporal.Query{})
				if err != nil {
					errs <- err
					return
				}
				for e, h := range hs {
					var vs []float64
					if h != nil {
						vs = values(h, "v")
					}
					// Entity e holds e, e+ents, e+2*ents, ... in order.
					for k, v := range vs {
						if v != float64(e+k*ents) {
							errs <- fmt.Errorf("entity %d: instance %d is %v, want %d (a duplicate or a gap): %v", e, k, v, e+k*ents, vs)
							return
						}
					}
					if want := (c - int64(e) + ents - 1) / ents; int64(len(vs)) < want {
						errs <- fmt.Errorf("entity %d: %d instances, want at least the %d committed before the read", e, len(vs), want)
						return
					}
				}
				e := int(c) % ents
				h, err := s.EntityHistory(ctx, "", ids[e], nil, &temporal.Query{LastN: 5})
				if err == nil {
					vs := values(h, "v")
					for k := 1; k < len(vs); k++ {
						if vs[k] != vs[k-1]+ents {
							errs <- fmt.Errorf("lastN of entity %d: %v is not the newest instances in a row", e, vs)
							return
						}
					}
				}
				reads.Add(1)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if reads.Load() == 0 || committed.Load() == 0 {
		t.Fatalf("%d reads of %d instances: the test proves nothing", reads.Load(), committed.Load())
	}
	if _, err := s.Seal(ctx, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, s, "h_head"); n != 0 {
		t.Errorf("%d head records left after sealing", n)
	}
	t.Logf("%d instances, %d reads", committed.Load(), reads.Load())
}

// TestHistoryTwoSealers seals one database from two stores at once, through
// Seal (one at a time, by the session lock) and through sealOnce directly
// (only the entity locks keep them apart), while records keep coming: in
// the end every instance is in a chunk exactly once.
func TestHistoryTwoSealers(t *testing.T) {
	url := testDatabase(t)
	s1 := openAt(t, url, Options{})
	s2 := openAt(t, url, Options{})
	ctx := context.Background()
	const ents, rounds, per = 40, 30, 40
	t0 := time.Date(2026, 5, 30, 20, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	done := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(done)
		for r := range rounds {
			var recs []histRecord
			for j := range per {
				i := r*per + j
				recs = append(recs, histRecord{Tenant: 1, EntityID: fmt.Sprintf("urn:e%d", i%ents),
					Instances: []store.Recorded{num("v", float64(i), t0.Add(time.Duration(i)*time.Minute), ""), num("w", float64(i), t0.Add(time.Duration(i)*time.Minute), "urn:ds")}})
			}
			s := s1
			if r%2 == 1 {
				s = s2
			}
			if err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return s.recordHistory(ctx, tx, time.Now(), recs) }); err != nil {
				errs <- err
				return
			}
		}
	}()
	for i, s := range []*Store{s1, s2, s1, s2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				finished := false
				select {
				case <-done:
					finished = true
				default:
				}
				var err error
				switch i {
				case 0:
					_, err = s.Seal(ctx, time.Now().Add(time.Hour))
				case 1:
					_, err = s.seal(ctx, time.Now().Add(time.Hour), false)
				default: // around the sealing lock
					var c *pgxpool.Conn
					if c, err = s.pool.Acquire(ctx); err == nil {
						_, _, err = s.sealOnce(ctx, c, time.Now().Add(time.Hour).UnixNano())
						c.Release()
					}
				}
				if err != nil {
					errs <- fmt.Errorf("sealer %d: %w", i, err)
					return
				}
				if finished {
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if _, err := s2.Seal(ctx, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, s1, "h_head"); n != 0 {
		t.Fatalf("%d head records left", n)
	}
	ids := make([]string, ents)
	for e := range ids {
		ids[e] = fmt.Sprintf("urn:e%d", e)
	}
	hs, err := s1.EntityHistories(ctx, "", ids, nil, &temporal.Query{})
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for e, h := range hs {
		for _, name := range []string{"v", "w"} {
			vs := values(h, name)
			total += len(vs)
			for k, v := range vs {
				if v != float64(e+k*ents) {
					t.Fatalf("entity %d %s: instance %d is %v, want %d: %v", e, name, k, v, e+k*ents, vs)
				}
			}
		}
	}
	if total != 2*rounds*per {
		t.Errorf("%d instances sealed, want %d", total, 2*rounds*per)
	}
}

// TestHistoryLastN holds lastN reads (which read days newest first, in
// rounds) equal to selecting from the whole history, on series of
// different densities over six weeks, partly sealed.
func TestHistoryLastN(t *testing.T) {
	s := openAt(t, testDatabase(t), Options{})
	ctx := context.Background()
	const id = "urn:ngsi-ld:Sensor:ln"
	t0 := time.Date(2026, 1, 20, 0, 0, 0, 0, time.UTC)
	rnd := rand.New(rand.NewPCG(1, 2))
	var recs []store.Recorded
	for i := range 42 * 24 { // hourly, with gaps
		if rnd.IntN(10) == 0 {
			continue
		}
		obs := t0.Add(time.Duration(i) * time.Hour)
		recs = append(recs, num("v", float64(i), obs, ""))
		if i%17 == 0 {
			recs = append(recs, num("v", float64(-i), obs, "urn:ds"))
		}
	}
	half := len(recs) / 2
	record(t, s, time.Now(), histRecord{Tenant: 1, EntityID: id, Instances: recs[:half]})
	if _, err := s.Seal(ctx, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	record(t, s, time.Now(), histRecord{Tenant: 1, EntityID: id, Instances: recs[half:]})
	all, err := s.EntityHistory(ctx, "", id, nil, &temporal.Query{})
	if err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T) {
		for _, n := range []int{1, 5, 30, 200, 700, 5000} {
			for _, q := range []temporal.Query{
				{LastN: n},
				{LastN: n, Rel: temporal.RelBefore, At: t0.AddDate(0, 0, 20)},
				{LastN: n, Rel: temporal.RelBetween, At: t0.AddDate(0, 0, 3), EndAt: t0.AddDate(0, 0, 30)},
			} {
				got, err := s.EntityHistory(ctx, "", id, nil, &q)
				if err != nil {
					t.Fatal(err)
				}
				want := q.Select(all.Attrs[storetest.Expand("v")])
				g := got.Attrs[storetest.Expand("v")]
				if len(g) != len(want) {
					t.Fatalf("lastN %d %v: %d instances, want %d", n, q.Rel, len(g), len(want))
				}
				for i := range want {
					if g[i].ID != want[i].ID {
						t.Fatalf("lastN %d %v: instance %d is %s, want %s", n, q.Rel, i, g[i].ID, want[i].ID)
					}
				}
			}
		}
	}
	t.Run("head and chunks", check)
	if _, err := s.Seal(ctx, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	t.Run("sealed", check)
}

// TestHistoryRetention ages twelve days of 15-minute readings under "raw 2
// days, hourly rollups to 5, daily to 10", as the embedded store's test
// does: instances, hourly and daily aggregates are kept exactly as long as
// the rule says, aggregates over rolled-up days equal those over the raw
// data, late data joins a rollup, and running it again changes nothing.
func TestHistoryRetention(t *testing.T) {
	ctx := context.Background()
	rules, err := store.ParseRetention("*=raw:2d,hourly:5d,daily:10d; */status=raw:1d; energy=raw:30d", storetest.Expand)
	if err != nil {
		t.Fatal(err)
	}
	s := openAt(t, testDatabase(t), Options{Retention: rules})
	now := time.Date(2026, 6, 13, 6, 0, 0, 0, time.UTC)
	day0 := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	const id = "urn:ngsi-ld:Meter:ret"
	kwh, status := storetest.Expand("kwh"), storetest.Expand("status")
	var recs []store.ImportRecord
	for i := 0; i < 12*96; i++ {
		tm := day0.Add(time.Duration(i) * 15 * time.Minute)
		recs = append(recs,
			store.ImportRecord{EntityID: id, Types: []string{storetest.Expand("Meter")}, Name: kwh,
				Attr: &ngsild.Attribute{Kind: ngsild.Property, Value: float64(i%37) * 0.5, ObservedAt: tm}},
			store.ImportRecord{EntityID: id, Name: status, Attr: &ngsild.Attribute{Kind: ngsild.Property, Value: "ok", ObservedAt: tm}})
	}
	for _, tenant := range []string{"", "energy"} {
		if err := s.ImportHistory(ctx, tenant, recs); err != nil {
			t.Fatal(err)
		}
	}
	whole := &temporal.Query{Rel: temporal.RelBetween, At: day0, EndAt: day0.AddDate(0, 0, 12)}
	methods := []temporal.Method{temporal.TotalCount, temporal.Sum, temporal.Min, temporal.Max, temporal.Avg}
	aggregate := func(d string) []temporal.Series {
		t.Helper()
		p, err := temporal.ParseDuration(d)
		if err != nil {
			t.Fatal(err)
		}
		_, series, err := s.AggregateHistory(ctx, "", id, []string{kwh}, whole, methods, p)
		if err != nil {
			t.Fatal(err)
		}
		return series
	}
	dailyBefore, hourlyBefore := aggregate("P1D"), aggregate("PT1H")

	n, err := s.Retain(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("retention changed nothing")
	}
	h, err := s.EntityHistory(ctx, "", id, []string{kwh}, &temporal.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if insts := h.Attrs[kwh]; len(insts) != 2*96 || !insts[0].Attr.ObservedAt.Equal(day0.AddDate(0, 0, 10)) {
		t.Errorf("%d instances, want 192 from day 10", len(insts))
	}
	if h, err = s.EntityHistory(ctx, "", id, []string{status}, &temporal.Query{}); err != nil {
		t.Fatal(err)
	}
	if got := len(h.Attrs[status]); got != 96 {
		t.Errorf("%d status instances, want 96 (the last day)", got)
	}
	if h, err = s.EntityHistory(ctx, "energy", id, []string{kwh}, &temporal.Query{}); err != nil {
		t.Fatal(err)
	}
	if got := len(h.Attrs[kwh]); got != 12*96 {
		t.Errorf("energy tenant: %d instances, want all %d", got, 12*96)
	}
	daily := aggregate("P1D")
	if len(daily) != 1 || len(daily[0].Buckets) != 10 {
		t.Fatalf("daily series after retention: %+v", daily)
	}
	for i, b := range daily[0].Buckets {
		want := dailyBefore[0].Buckets[i+2]
		for _, m := range methods {
			if !near(b.Value(m), want.Value(m)) {
				t.Errorf("day %d %s: %v after retention, %v before", i+2, m, b.Value(m), want.Value(m))
			}
		}
	}
	byStart := map[time.Time]temporal.Bucket{}
	for _, b := range aggregate("PT1H")[0].Buckets {
		byStart[b.Start] = b
	}
	for _, want := range hourlyBefore[0].Buckets {
		if want.Start.Before(day0.AddDate(0, 0, 7)) {
			continue
		}
		got, ok := byStart[want.Start]
		if !ok || !near(got.Value(temporal.Sum), want.Value(temporal.Sum)) || !near(got.Value(temporal.Max), want.Value(temporal.Max)) {
			t.Errorf("hour %v: %v after retention, %v before", want.Start, got.Value(temporal.Sum), want.Value(temporal.Sum))
		}
	}
	if b, ok := byStart[day0.AddDate(0, 0, 3)]; !ok || b.Value(temporal.TotalCount) != int64(96) {
		t.Errorf("day 3 (daily rollup) in hourly periods: %v, want its 96 values in its first hour", b.Value(temporal.TotalCount))
	}
	// Late data for a rolled-up day joins its rollup, through sealing too.
	late := []store.ImportRecord{{EntityID: id, Name: kwh, Attr: &ngsild.Attribute{Kind: ngsild.Property, Value: 1000.0, ObservedAt: day0.AddDate(0, 0, 8).Add(time.Minute)}}}
	if err := s.ImportHistory(ctx, "", late); err != nil {
		t.Fatal(err)
	}
	record(t, s, time.Now(), histRecord{Tenant: 1, EntityID: id, Instances: []store.Recorded{num("kwh", -5, day0.AddDate(0, 0, 4).Add(time.Hour), "")}})
	if _, err := s.Seal(ctx, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	daily = aggregate("P1D")
	if got := daily[0].Buckets[6].Value(temporal.Max); got != 1000.0 {
		t.Errorf("max of day 8 after a late value: %v, want 1000", got)
	}
	if got := daily[0].Buckets[2].Value(temporal.Min); got != -5.0 {
		t.Errorf("min of day 4 after a late value sealed: %v, want -5", got)
	}
	if n, err := s.Retain(ctx, now); err != nil || n != 0 {
		t.Errorf("second Retain: %d changes, %v", n, err)
	}
}

// TestHistoryRetentionDropsMonths: when every tenant and attribute has a
// rule and every rule ends, a month past all of them is dropped whole, and
// data arriving later for it finds its partition again.
func TestHistoryRetentionDropsMonths(t *testing.T) {
	ctx := context.Background()
	rules, err := store.ParseRetention("*=raw:20d,hourly:40d; */status=raw:60d", storetest.Expand)
	if err != nil {
		t.Fatal(err)
	}
	s := openAt(t, testDatabase(t), Options{Retention: rules})
	const id = "urn:ngsi-ld:Meter:drop"
	var recs []store.ImportRecord
	for _, day := range []time.Time{
		time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC), // gone: January ended more than 60 days before now
		time.Date(2026, 2, 27, 0, 0, 0, 0, time.UTC), // February: its last days are within 60 days
		time.Date(2026, 4, 20, 0, 0, 0, 0, time.UTC), // raw
	} {
		for h := range 24 {
			recs = append(recs, store.ImportRecord{EntityID: id, Name: storetest.Expand("kwh"),
				Attr: &ngsild.Attribute{Kind: ngsild.Property, Value: float64(h), ObservedAt: day.Add(time.Duration(h) * time.Hour)}})
		}
	}
	if err := s.ImportHistory(ctx, "", recs); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 4, 25, 0, 0, 0, 0, time.UTC)
	n, err := s.Retain(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	months, err := partitions(ctx, s.pool)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range months {
		names = append(names, m.table())
	}
	if slices.Contains(names, "h_chunks_y2026m01") || !slices.Contains(names, "h_chunks_y2026m02") || !slices.Contains(names, "h_chunks_y2026m04") {
		t.Errorf("partitions after retention: %v, want January dropped, February and April kept", names)
	}
	if n != 2 { // January's chunk row, dropped; February's, deleted (past hourly:40d)
		t.Errorf("retention reports %d chunks, want 2", n)
	}
	h, err := s.EntityHistory(ctx, "", id, nil, &temporal.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(h.Attrs[storetest.Expand("kwh")]); got != 24 {
		t.Errorf("%d instances left, want April's 24", got)
	}
	// Late data for January: its partition is made again.
	late := []store.ImportRecord{{EntityID: id, Name: storetest.Expand("kwh"), Attr: &ngsild.Attribute{Kind: ngsild.Property, Value: 1.0, ObservedAt: time.Date(2026, 1, 11, 0, 0, 0, 0, time.UTC)}}}
	if err := s.ImportHistory(ctx, "", late); err != nil {
		t.Fatalf("importing into a dropped month: %v", err)
	}
	if n := countRows(t, s, "h_chunks_y2026m01"); n != 1 {
		t.Errorf("%d rows in January's new partition, want 1", n)
	}
}

// A day of a dense series is stored in parts of at most PartMax samples,
// and reads, aggregation (from the rows' rollups) and late data see the
// whole day.
func TestHistoryDenseDayParts(t *testing.T) {
	ctx := context.Background()
	s := openAt(t, testDatabase(t), Options{})
	day := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	const id = "urn:ngsi-ld:Counter:dense"
	n := histcore.PartMax + histcore.PartMax/2
	step := 24 * time.Hour / time.Duration(n)
	var recs []store.ImportRecord
	sum := 0.0
	for i := range n {
		v := float64(i % 10)
		sum += v
		recs = append(recs, store.ImportRecord{EntityID: id, Types: []string{storetest.Expand("Counter")}, Name: storetest.Expand("count"),
			Attr: &ngsild.Attribute{Kind: ngsild.Property, Value: v, ObservedAt: day.Add(time.Duration(i) * step)}})
	}
	if err := s.ImportHistory(ctx, "", recs); err != nil {
		t.Fatal(err)
	}
	late := store.ImportRecord{EntityID: id, Name: storetest.Expand("count"), Attr: &ngsild.Attribute{Kind: ngsild.Property, Value: 100.0, ObservedAt: day.Add(12*time.Hour + time.Millisecond)}}
	if err := s.ImportHistory(ctx, "", []store.ImportRecord{late}); err != nil {
		t.Fatal(err)
	}
	if parts := countRows(t, s, "h_chunks"); parts != 2 {
		t.Fatalf("%d chunk rows, want the day in 2 parts", parts)
	}
	var rowsN, rowsSum float64
	if err := s.pool.QueryRow(ctx, `SELECT sum(n), sum(sum) FROM h_chunks`).Scan(&rowsN, &rowsSum); err != nil {
		t.Fatal(err)
	}
	if rowsN != float64(n+1) || rowsSum != sum+100 {
		t.Errorf("the rows' rollups hold %v values summing to %v, want %d and %v", rowsN, rowsSum, n+1, sum+100)
	}
	h, err := s.EntityHistory(ctx, "", id, nil, &temporal.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(h.Attrs[storetest.Expand("count")]); got != n+1 {
		t.Errorf("%d instances, want %d", got, n+1)
	}
	q := &temporal.Query{Rel: temporal.RelBetween, At: day, EndAt: day.AddDate(0, 0, 1)}
	_, series, err := s.AggregateHistory(ctx, "", id, nil, q, []temporal.Method{temporal.Sum, temporal.TotalCount}, temporal.Duration{})
	if err != nil {
		t.Fatal(err)
	}
	if got := series[0].Buckets[0].Value(temporal.Sum); got != sum+100 {
		t.Errorf("sum %v, want %v", got, sum+100)
	}
}

// TestHistoryBackgroundJob: the job seals what is older than SealAfter and
// stops with Close; partitions for the coming months are made ahead.
func TestHistoryBackgroundJob(t *testing.T) {
	s, err := Open(context.Background(), testDatabase(t), Options{SealAfter: 40 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.startHistory() // harmless if Open started it too: sealers take turns
	const id = "urn:ngsi-ld:Sensor:bg"
	obs := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	record(t, s, time.Now(), histRecord{Tenant: 1, EntityID: id, Instances: []store.Recorded{num("v", 1, obs, "")}})
	deadline := time.Now().Add(10 * time.Second)
	for countRows(t, s, "h_head") > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the background job did not seal the head record")
		}
		time.Sleep(20 * time.Millisecond)
	}
	h, err := s.EntityHistory(context.Background(), "", id, nil, &temporal.Query{})
	if err != nil || len(values(h, "v")) != 1 {
		t.Fatalf("history after sealing: %v %v", h, err)
	}
	months, err := partitions(context.Background(), s.pool)
	if err != nil {
		t.Fatal(err)
	}
	next := monthOfDay(histcore.DayOf(time.Now().AddDate(0, monthsAhead, 0).UnixNano())).table()
	if !slices.ContainsFunc(months, func(m month) bool { return m.table() == next }) {
		t.Errorf("no partition for %s ahead of time", next)
	}
	closed := make(chan error)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return: the background job does not stop")
	}
}

// TestHistoryJobClaim: of processes claiming a job at once, one runs it.
func TestHistoryJobClaim(t *testing.T) {
	url := testDatabase(t)
	stores := []*Store{openAt(t, url, Options{}), openAt(t, url, Options{})}
	now := time.Now()
	var got atomic.Int32
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := stores[i%2].claimJob(context.Background(), "retention", time.Hour, now)
			if err != nil {
				t.Error(err)
			}
			if ok {
				got.Add(1)
			}
		}()
	}
	wg.Wait()
	if got.Load() != 1 {
		t.Errorf("%d claims succeeded, want 1", got.Load())
	}
	if ok, err := stores[0].claimJob(context.Background(), "retention", time.Hour, now.Add(59*time.Minute)); ok || err != nil {
		t.Errorf("claimed again within the period: %v %v", ok, err)
	}
	if ok, err := stores[1].claimJob(context.Background(), "retention", time.Hour, now.Add(61*time.Minute)); !ok || err != nil {
		t.Errorf("not claimed after the period: %v %v", ok, err)
	}
}

// HistoryEntityIDs lists entities with sealed history and with head
// records only, sorted, once each.
func TestHistoryEntityIDs(t *testing.T) {
	ctx := context.Background()
	s := openAt(t, testDatabase(t), Options{})
	obs := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	record(t, s, time.Now(), histRecord{Tenant: 1, EntityID: "urn:b", Instances: []store.Recorded{num("v", 1, obs, "")}},
		histRecord{Tenant: 1, EntityID: "urn:c", Instances: []store.Recorded{num("v", 1, obs, "")}})
	if _, err := s.Seal(ctx, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	record(t, s, time.Now(), histRecord{Tenant: 1, EntityID: "urn:a", Instances: []store.Recorded{num("v", 1, obs, "")}},
		histRecord{Tenant: 1, EntityID: "urn:c", Instances: []store.Recorded{num("v", 2, obs, "")}})
	if err := s.ImportHistory(ctx, "other", []store.ImportRecord{{EntityID: "urn:z", Name: storetest.Expand("v"), Attr: num("v", 1, obs, "").Attr}}); err != nil {
		t.Fatal(err)
	}
	ids, err := s.HistoryEntityIDs(ctx, "")
	if err != nil || !slices.Equal(ids, []string{"urn:a", "urn:b", "urn:c"}) {
		t.Errorf("HistoryEntityIDs = %v, %v; want urn:a urn:b urn:c", ids, err)
	}
	if ids, err := s.HistoryEntityIDs(ctx, "no-such-tenant"); err != nil || len(ids) != 0 {
		t.Errorf("HistoryEntityIDs of an unknown tenant = %v, %v", ids, err)
	}
}

func near(a, b any) bool {
	x, ok1 := a.(float64)
	y, ok2 := b.(float64)
	if ok1 && ok2 {
		return math.Abs(x-y) <= 1e-9*math.Max(1, math.Abs(y))
	}
	return a == b
}

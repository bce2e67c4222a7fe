package sqlite

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/ngsild/temporal"
	"github.com/zenne-city/zenne/internal/store"
	"github.com/zenne-city/zenne/internal/store/storetest"
)

// TestRetention ages twelve days of 15-minute readings under
// "raw 2 days, hourly rollups to 5, daily to 10" and checks that instances,
// hourly and daily aggregates are kept exactly as long as the rule says, and
// that aggregates over rolled-up days equal those over the raw data.
func TestRetention(t *testing.T) {
	ctx := context.Background()
	rules, err := store.ParseRetention("*=raw:2d,hourly:5d,daily:10d; */status=raw:1d; energy=raw:30d", storetest.Expand)
	if err != nil {
		t.Fatal(err)
	}
	s := openTemp(t, Options{Retention: rules})

	now := time.Date(2026, 6, 13, 6, 0, 0, 0, time.UTC)
	day0 := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC) // 12 whole days before now's day
	const id = "urn:ngsi-ld:Meter:ret"
	var recs []store.ImportRecord
	for i := 0; i < 12*96; i++ {
		tm := day0.Add(time.Duration(i) * 15 * time.Minute)
		v := float64(i%37) * 0.5
		recs = append(recs,
			store.ImportRecord{EntityID: id, Types: []string{storetest.Expand("Meter")}, Name: storetest.Expand("kwh"),
				Attr: &ngsild.Attribute{Kind: ngsild.Property, Value: v, ObservedAt: tm}},
			store.ImportRecord{EntityID: id, Name: storetest.Expand("status"),
				Attr: &ngsild.Attribute{Kind: ngsild.Property, Value: "ok", ObservedAt: tm}})
	}
	for _, tenant := range []string{"", "energy"} {
		if err := s.ImportHistory(ctx, tenant, recs); err != nil {
			t.Fatal(err)
		}
	}
	whole := &temporal.Query{Rel: temporal.RelBetween, At: day0, EndAt: day0.AddDate(0, 0, 12)}
	dur := func(s string) temporal.Duration {
		d, err := temporal.ParseDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	methods := []temporal.Method{temporal.TotalCount, temporal.Sum, temporal.Min, temporal.Max, temporal.Avg}
	_, dailyBefore, err := s.AggregateHistory(ctx, "", id, []string{storetest.Expand("kwh")}, whole, methods, dur("P1D"))
	if err != nil {
		t.Fatal(err)
	}
	_, hourlyBefore, err := s.AggregateHistory(ctx, "", id, []string{storetest.Expand("kwh")}, whole, methods, dur("PT1H"))
	if err != nil {
		t.Fatal(err)
	}

	n, err := s.Retain(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("retention changed nothing")
	}

	// Instances: days 10 and 11 (ended less than 2 days before now) only.
	h, err := s.EntityHistory(ctx, "", id, []string{storetest.Expand("kwh")}, &temporal.Query{})
	if err != nil {
		t.Fatal(err)
	}
	insts := h.Attrs[storetest.Expand("kwh")]
	if len(insts) != 2*96 || !insts[0].Attr.ObservedAt.Equal(day0.AddDate(0, 0, 10)) {
		t.Errorf("%d instances from %v, want 192 from day 10", len(insts), insts[0].Attr.ObservedAt)
	}
	// status has its own rule: raw for one day, then nothing.
	h, err = s.EntityHistory(ctx, "", id, []string{storetest.Expand("status")}, &temporal.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(h.Attrs[storetest.Expand("status")]); got != 96 {
		t.Errorf("%d status instances, want 96 (the last day)", got)
	}
	// The energy tenant keeps everything for 30 days.
	h, err = s.EntityHistory(ctx, "energy", id, []string{storetest.Expand("kwh")}, &temporal.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(h.Attrs[storetest.Expand("kwh")]); got != 12*96 {
		t.Errorf("energy tenant: %d instances, want all %d", got, 12*96)
	}

	// Daily aggregates: days 2-11 are still known (days 0 and 1 ended
	// more than 10 days before now), equal to before.
	_, daily, err := s.AggregateHistory(ctx, "", id, []string{storetest.Expand("kwh")}, whole, methods, dur("P1D"))
	if err != nil {
		t.Fatal(err)
	}
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
	// Hourly aggregates: days 7-11 (hourly rollups for 5 days) equal
	// before; days 2-6 fold into the first hour of their day.
	_, hourly, err := s.AggregateHistory(ctx, "", id, []string{storetest.Expand("kwh")}, whole, methods, dur("PT1H"))
	if err != nil {
		t.Fatal(err)
	}
	byStart := map[time.Time]temporal.Bucket{}
	for _, b := range hourly[0].Buckets {
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

	// Late data for a rolled-up day joins its rollup.
	late := []store.ImportRecord{{EntityID: id, Name: storetest.Expand("kwh"), Attr: &ngsild.Attribute{Kind: ngsild.Property, Value: 1000.0, ObservedAt: day0.AddDate(0, 0, 8).Add(time.Minute)}}}
	if err := s.ImportHistory(ctx, "", late); err != nil {
		t.Fatal(err)
	}
	_, daily, err = s.AggregateHistory(ctx, "", id, []string{storetest.Expand("kwh")}, whole, methods, dur("P1D"))
	if err != nil {
		t.Fatal(err)
	}
	if got := daily[0].Buckets[6].Value(temporal.Max); got != 1000.0 {
		t.Errorf("max of day 8 after a late value: %v, want 1000", got)
	}
	// Retention again changes nothing more.
	if n, err := s.Retain(ctx, now); err != nil || n != 0 {
		t.Errorf("second Retain: %d changes, %v", n, err)
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

// A day of a dense series is stored in parts of at most partMax samples,
// and reads, aggregation and late data see the whole day.
func TestDenseDayParts(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t, Options{})
	day := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	const id = "urn:ngsi-ld:Counter:dense"
	n := partMax + partMax/2
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
	// A late value in the middle of the day.
	late := store.ImportRecord{EntityID: id, Name: storetest.Expand("count"), Attr: &ngsild.Attribute{Kind: ngsild.Property, Value: 100.0, ObservedAt: day.Add(12*time.Hour + time.Millisecond)}}
	if err := s.ImportHistory(ctx, "", []store.ImportRecord{late}); err != nil {
		t.Fatal(err)
	}
	var parts int
	if err := s.rdb.QueryRow(`SELECT count(*) FROM h_chunks`).Scan(&parts); err != nil || parts != 2 {
		t.Fatalf("%d chunk rows (%v), want the day in 2 parts", parts, err)
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

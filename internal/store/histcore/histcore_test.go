package histcore

import (
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store"
	"github.com/zenne-city/zenne/internal/store/codec"
	"github.com/zenne-city/zenne/internal/tsz"
)

func TestSampleRoundTrip(t *testing.T) {
	obs := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	now := obs.Add(time.Hour)
	for _, a := range []*ngsild.Attribute{
		{Kind: ngsild.Property, Value: 1.25, ObservedAt: obs, ModifiedAt: obs, UnitCode: "CEL", DatasetID: "urn:ds"},
		{Kind: ngsild.Property, Value: "text", ModifiedAt: obs},
		{Kind: ngsild.Relationship, Value: "urn:x", ObservedAt: obs}, // no modifiedAt: recorded now
	} {
		s, err := SampleOf(a, now)
		if err != nil {
			t.Fatal(err)
		}
		d := &codec.Decoder{B: AppendSample(nil, s)}
		back := ReadSample(d)
		if d.Err != nil || len(d.B) != 0 || !SameSample(&s, &back) || back.R != s.R {
			t.Fatalf("%+v: sample does not round-trip", a)
		}
		got, err := AttrOf(&back)
		if err != nil {
			t.Fatal(err)
		}
		wantMod := a.ModifiedAt
		if wantMod.IsZero() {
			wantMod = now
		}
		if got.Value != a.Value || got.Kind != a.Kind || got.UnitCode != a.UnitCode || got.DatasetID != a.DatasetID ||
			!got.ObservedAt.Equal(a.ObservedAt) || !got.ModifiedAt.Equal(wantMod) {
			t.Errorf("AttrOf(SampleOf(%+v)) = %+v", a, got)
		}
		if s.T != got.ObservedAt.UnixNano() && !a.ObservedAt.IsZero() {
			t.Errorf("T is not observedAt")
		}
	}
}

func TestInstanceIDs(t *testing.T) {
	s := tsz.Sample{T: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC).UnixNano(), R: 42}
	a, b := InstanceID(&s, ""), InstanceID(&s, "urn:ds")
	if a == b || a == InstanceID(&s, "urn:other") || b == InstanceID(&s, "urn:other") {
		t.Errorf("instances of different datasetIds share an id: %s %s", a, b)
	}
	for _, id := range []string{a, b} {
		tt, r, ok := ParseInstanceID(id)
		if !ok || tt != s.T || r != s.R {
			t.Errorf("ParseInstanceID(%s) = %d %d %v", id, tt, r, ok)
		}
	}
	for _, bad := range []string{"", "urn:ngsi-ld:Instance:", "urn:ngsi-ld:Instance:x", "urn:ngsi-ld:Instance:1.2.3.4", "urn:x:1.2"} {
		if _, _, ok := ParseInstanceID(bad); ok {
			t.Errorf("ParseInstanceID(%q) succeeds", bad)
		}
	}
	// The scheme is what both backends and every stored id rely on.
	if got := InstanceID(&tsz.Sample{T: 35, R: 36}, ""); got != "urn:ngsi-ld:Instance:z.10" {
		t.Errorf("InstanceID = %s, want urn:ngsi-ld:Instance:z.10", got)
	}
}

func TestDays(t *testing.T) {
	for _, c := range []struct {
		t    time.Time
		day  int64
		hour int
	}{
		{time.Unix(0, 0).UTC(), 0, 0},
		{time.Date(1970, 1, 1, 23, 59, 0, 0, time.UTC), 0, 23},
		{time.Date(1969, 12, 31, 23, 0, 0, 0, time.UTC), -1, 23},
		{time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC), -1, 0},
		{time.Date(2026, 3, 1, 5, 30, 0, 0, time.UTC), 20513, 5},
	} {
		if d, h := DayOf(c.t.UnixNano()), HourOf(c.t.UnixNano()); d != c.day || h != c.hour {
			t.Errorf("%v: day %d hour %d, want %d %d", c.t, d, h, c.day, c.hour)
		}
	}
}

func TestRetire(t *testing.T) {
	day := int64(20513)
	var samples []tsz.Sample
	for i := range 48 {
		samples = append(samples, tsz.Sample{T: day*DayNS + int64(i)*int64(30*time.Minute), Num: true, V: float64(i), Rest: []byte{RestNum}})
	}
	raw := tsz.Encode(nil, samples)
	lv, hourly, n, err := Retire(LevelRaw, raw, LevelHourly)
	if err != nil || lv != LevelHourly || n != 48 {
		t.Fatalf("to hourly: level %d, %d values, %v", lv, n, err)
	}
	h, _, err := DecodeLevel(LevelHourly, hourly)
	if err != nil || h[3].N != 2 || h[3].Sum != 13 || h[3].Min != 6 || h[3].Max != 7 {
		t.Fatalf("hour 3 = %+v, %v", h[3], err)
	}
	lv, daily, n, err := Retire(LevelHourly, hourly, LevelDaily)
	if err != nil || lv != LevelDaily || n != 48 {
		t.Fatalf("to daily: level %d, %d values, %v", lv, n, err)
	}
	h, _, err = DecodeLevel(LevelDaily, daily)
	if err != nil || h[0].N != 48 || h[0].Sum != 47*48/2 || h[0].Max != 47 {
		t.Fatalf("daily = %+v, %v", h[0], err)
	}
	text := tsz.Encode(nil, []tsz.Sample{{T: day * DayNS, Rest: []byte{0}}})
	if lv, _, _, _ := Retire(LevelRaw, text, LevelHourly); lv != LevelGone {
		t.Errorf("a day without numbers rolls up to level %d, want gone", lv)
	}
	// Late data joins a rollup.
	data, n := MergeRollups(LevelDaily, h, []tsz.Sample{{T: day * DayNS, Num: true, V: 100}})
	if h2, _, _ := DecodeLevel(LevelDaily, data); n != 49 || h2[0].Max != 100 {
		t.Errorf("after a late value: %d values, max %v", n, h2[0].Max)
	}
	rule := store.RetentionRule{Raw: 48 * time.Hour, Hourly: 5 * 24 * time.Hour}
	for _, c := range []struct {
		age  time.Duration
		want int
	}{{time.Hour, LevelRaw}, {3 * 24 * time.Hour, LevelHourly}, {6 * 24 * time.Hour, LevelGone}} {
		if got := TargetLevel(rule, c.age); got != c.want {
			t.Errorf("age %v: level %d, want %d", c.age, got, c.want)
		}
	}
}

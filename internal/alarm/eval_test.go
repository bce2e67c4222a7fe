package alarm

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/jsonld"
	"github.com/zenne-city/zenne/internal/ngsild"
)

var t0 = time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC) // a Monday

func mustRule(t *testing.T, body string) *Rule {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatal(err)
	}
	r, err := Parse(m, jsonld.NewResolver(jsonld.Options{}).Core())
	if err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	return r
}

// step is one input of an evaluation script: a reading (v at minute m) or,
// with tick, the clock reaching minute m.
type step struct {
	m    float64
	v    float64
	tick bool
	want Step
}

func run(t *testing.T, r *Rule, steps []step) {
	t.Helper()
	st := &State{}
	for i, s := range steps {
		at := t0.Add(time.Duration(s.m * float64(time.Minute)))
		var o Outcome
		if s.tick {
			o = r.Tick(st, at)
		} else {
			o = r.Observe(st, s.v, at)
		}
		if o.Step != s.want {
			t.Fatalf("step %d (%+v): got %v, want %v (state %+v)", i, s, o.Step, s.want, st)
		}
	}
}

func TestThresholdHysteresisAndDuration(t *testing.T) {
	r := mustRule(t, `{"kind":"threshold","entities":[{"type":"WasteContainer"}],"attribute":"fillingLevel",
		"threshold":{"above":0.8,"clearBelow":0.6,"for":"PT10M"}}`)
	run(t, r, []step{
		{m: 0, v: 0.5},
		{m: 1, v: 0.85},              // above, not for long
		{m: 5, v: 0.7},               // back below: the run breaks
		{m: 6, v: 0.9},               // above again
		{m: 15, v: 0.95},             // 9 minutes
		{m: 16, v: 0.95, want: Open}, // 10 minutes
		{m: 17, v: 0.7, want: Stay},  // between the bounds: still firing
		{m: 18, v: 0.59, want: Clear},
		{m: 19, v: 0.7},
	})
	// The clock fires a threshold held with no new reading.
	run(t, r, []step{
		{m: 0, v: 0.9},
		{m: 9, tick: true},
		{m: 10, tick: true, want: Open},
		{m: 11, tick: true},
	})
	// Without clearBelow the threshold itself clears.
	r = mustRule(t, `{"kind":"threshold","entities":[{"type":"T"}],"attribute":"a","threshold":{"below":10}}`)
	run(t, r, []step{{m: 0, v: 9, want: Open}, {m: 1, v: 10, want: Clear}, {m: 2, v: 11}})
}

func TestRate(t *testing.T) {
	r := mustRule(t, `{"kind":"rate","entities":[{"type":"T"}],"attribute":"a","rate":{"above":10,"below":-20,"per":"PT1H"}}`)
	run(t, r, []step{
		{m: 0, v: 100},
		{m: 60, v: 105},
		{m: 90, v: 111, want: Open}, // +12 per hour
		{m: 120, v: 120, want: Stay},
		{m: 180, v: 121, want: Clear},
		{m: 181, v: 100, want: Open}, // a drop of 1,260 per hour
	})
}

func TestCount(t *testing.T) {
	r := mustRule(t, `{"kind":"count","entities":[{"type":"T"}],"attribute":"a","count":{"above":50,"below":0,"moreThan":2,"within":"PT1H"}}`)
	run(t, r, []step{
		{m: 0, v: 60},
		{m: 10, v: 20},
		{m: 20, v: -1},
		{m: 30, v: 70, want: Open}, // three out of range within the hour
		{m: 40, v: 20, want: Stay},
		{m: 59, tick: true},              // minute 0's reading is an hour old
		{m: 61, tick: true, want: Clear}, // it left the window: two remain
		{m: 200, tick: true},
	})
}

func TestSilence(t *testing.T) {
	r := mustRule(t, `{"kind":"silence","entities":[{"type":"T"}],"silence":{"factor":3,"atLeast":"PT1M"}}`)
	run(t, r, []step{
		{m: 0},
		{m: 10, tick: true}, // the usual interval is not known yet
		{m: 15},
		{m: 30},
		{m: 60, tick: true},
		{m: 76, tick: true, want: Open}, // 3 × 15 minutes
		{m: 77, tick: true},
		{m: 80, want: Clear},
	})
	fixed := mustRule(t, `{"kind":"silence","entities":[{"type":"T"}],"silence":{"after":"PT1H"}}`)
	run(t, fixed, []step{{m: 0}, {m: 60, tick: true}, {m: 61, tick: true, want: Open}})
}

func TestLeakNights(t *testing.T) {
	r := mustRule(t, `{"kind":"leak","entities":[{"type":"WaterMeter"}],"attribute":"flow","leak":{"from":"01:00","to":"05:00","atMost":0.5,"nights":3}}`)
	st := &State{}
	night := func(d int) time.Time { return time.Date(2026, 3, d, 5, 0, 0, 0, r.Location) }
	steps := []struct {
		day  int
		low  float64
		has  bool
		want Step
	}{
		{1, 2, true, None}, {2, 1.5, true, None}, {3, 0, false, None}, // no data: neither counts nor breaks
		{4, 1, true, Open}, {5, 3, true, Stay}, {6, 0.1, true, Clear}, {7, 1, true, None},
	}
	for _, s := range steps {
		if o := r.Night(st, night(s.day), s.low, s.has); o.Step != s.want {
			t.Fatalf("night %d: %v, want %v", s.day, o.Step, s.want)
		}
	}
	if o := r.Night(st, night(7), 9, true); o.Step != None {
		t.Errorf("a night judged twice: %v", o.Step)
	}
	if end := r.Leak.windowEnd(time.Date(2026, 3, 8, 4, 0, 0, 0, r.Location), r.Location); !end.Equal(night(7)) {
		t.Errorf("window end before 05:00 is the day before's: %v", end)
	}
	if start, _ := r.Leak.window(night(7), r.Location); !start.Equal(time.Date(2026, 3, 7, 1, 0, 0, 0, r.Location)) {
		t.Errorf("window start %v", start)
	}
}

func TestAnomalyBound(t *testing.T) {
	r := mustRule(t, `{"kind":"anomaly","entities":[{"type":"T"}],"attribute":"a","anomaly":{"weeks":4}}`)
	st := &State{}
	if o := r.Day(st, t0, 500, []float64{100}); o.Step != None {
		t.Error("one earlier week decides nothing")
	}
	usual := []float64{100, 110, 90, 100}
	if b := UsualBound(r.Anomaly, usual); b < 120 || b > 150 {
		t.Errorf("bound %v: mean 100 + 3 sd (8.2), at least 1.2 × mean", b)
	}
	if o := r.Day(st, t0, 200, usual); o.Step != Open || o.Bound == 0 {
		t.Errorf("twice the usual: %+v", o)
	}
	if o := r.Day(st, t0.Add(time.Hour), 105, usual); o.Step != Clear {
		t.Errorf("back to usual: %+v", o)
	}
}

func TestParseRejects(t *testing.T) {
	core := jsonld.NewResolver(jsonld.Options{}).Core()
	base := `"entities":[{"type":"T"}],"attribute":"a"`
	cases := []struct{ body, want string }{
		{`{` + base + `}`, "kind is missing"},
		{`{"kind":"often",` + base + `}`, "not a rule kind"},
		{`{"kind":"threshold","attribute":"a","threshold":{"above":1}}`, "entities is missing"},
		{`{"kind":"threshold","entities":[{}],"attribute":"a","threshold":{"above":1}}`, "needs a type"},
		{`{"kind":"threshold","entities":[{"type":"T"}],"threshold":{"above":1}}`, "attribute is missing"},
		{`{"kind":"threshold",` + base + `}`, "threshold is missing"},
		{`{"kind":"threshold",` + base + `,"threshold":{"above":1,"below":0}}`, "either above or below"},
		{`{"kind":"threshold",` + base + `,"threshold":{"above":1,"clearBelow":2}}`, "still too high"},
		{`{"kind":"threshold",` + base + `,"threshold":{"above":"1"}}`, "must be a number"},
		{`{"kind":"threshold",` + base + `,"threshold":{"above":1,"for":"10 minutes"}}`, "ISO 8601"},
		{`{"kind":"threshold",` + base + `,"threshold":{"above":1,"for":"P1M"}}`, "no fixed length"},
		{`{"kind":"threshold",` + base + `,"threshold":{"abov":1}}`, "abov is not a parameter"},
		{`{"kind":"threshold",` + base + `,"threshold":{"above":1},"rate":{}}`, "rate is given"},
		{`{"kind":"threshold",` + base + `,"threshold":{"above":1},"severity":"dire"}`, "severity"},
		{`{"kind":"threshold",` + base + `,"threshold":{"above":1},"message":{"de":"x"}}`, "message.de"},
		{`{"kind":"threshold",` + base + `,"threshold":{"above":1},"message":{"en":"{valu}"}}`, "not a placeholder"},
		{`{"kind":"threshold",` + base + `,"threshold":{"above":1},"timezone":"Mars/Olympus"}`, "time zone"},
		{`{"kind":"threshold",` + base + `,"threshold":{"above":1},"q":"a>>1"}`, "q:"},
		{`{"kind":"threshold",` + base + `,"threshold":{"above":1},"colour":"red"}`, "colour is not a member"},
		{`{"kind":"threshold",` + base + `,"threshold":{"above":1},"id":"a b"}`, "id"},
		{`{"kind":"rate",` + base + `,"rate":{"above":-1,"per":"PT1H"}}`, "negative"},
		{`{"kind":"rate",` + base + `,"rate":{"above":1}}`, "per is missing"},
		{`{"kind":"count",` + base + `,"count":{"above":1,"below":2,"moreThan":3,"within":"PT1H"}}`, "every reading would be out of range"},
		{`{"kind":"count",` + base + `,"count":{"above":1,"moreThan":0,"within":"PT1H"}}`, "at least 1"},
		{`{"kind":"silence","entities":[{"type":"T"}],"silence":{"factor":1}}`, "1.5"},
		{`{"kind":"silence","entities":[{"type":"T"}],"silence":{"after":"PT1S"}}`, "10 seconds"},
		{`{"kind":"silence","entities":[{"type":"T"}],"silence":{}}`, "after"},
		{`{"kind":"leak",` + base + `,"leak":{"from":"1h","to":"05:00","nights":3}}`, "time of day"},
		{`{"kind":"leak",` + base + `,"leak":{"from":"05:00","to":"05:00","nights":3}}`, "same time"},
		{`{"kind":"leak",` + base + `,"leak":{"from":"01:00","to":"05:00","nights":0}}`, "nights"},
		{`{"kind":"anomaly",` + base + `,"anomaly":{"method":"median"}}`, "method"},
		{`{"kind":"anomaly",` + base + `,"anomaly":{"weeks":1}}`, "weeks"},
		{`{"kind":"anomaly",` + base + `,"anomaly":{"minRatio":0.5}}`, "minRatio"},
	}
	for _, c := range cases {
		var m map[string]any
		if err := json.Unmarshal([]byte(c.body), &m); err != nil {
			t.Fatal(c.body, err)
		}
		_, err := Parse(m, core)
		e := ngsild.AsError(err)
		if e == nil || e.Status() != 400 || !strings.Contains(e.Detail, c.want) {
			t.Errorf("%s: %v, want a 400 saying %q", c.body, err, c.want)
		}
	}
}

func TestRender(t *testing.T) {
	got := Render("Bak {name} is {value} vol sinds {since} {unknown}", map[string]string{"name": "B1", "value": "0.9", "since": "10:00"})
	if got != "Bak B1 is 0.9 vol sinds 10:00 {unknown}" {
		t.Error(got)
	}
	a, again := AlertID("r", "urn:a", t0), AlertID("r", "urn:a", t0)
	if a != again || a == AlertID("r", "urn:b", t0) || a == AlertID("r", "urn:a", t0.Add(time.Millisecond)) {
		t.Error("alert ids are a function of rule, entity and time")
	}
}

func TestLeakWindowsAcrossClockChanges(t *testing.T) {
	r := mustRule(t, `{"kind":"leak","entities":[{"type":"WaterMeter"}],"attribute":"flow","leak":{"from":"01:00","to":"05:00","atMost":0.5,"nights":3}}`)
	loc := r.Location
	// Brussels moved to summer time at 02:00 on 2025-03-30.
	for _, day := range []int{29, 30, 31} {
		end := r.Leak.windowEnd(time.Date(2025, 3, day, 12, 0, 0, 0, loc), loc)
		if end.In(loc).Hour() != 5 || end.In(loc).Day() != day {
			t.Errorf("30 March %d: window ends %v, want 05:00 local", day, end.In(loc))
		}
		start, _ := r.Leak.window(end, loc)
		if start.In(loc).Hour() != 1 || start.In(loc).Day() != day {
			t.Errorf("window starts %v, want 01:00 local", start.In(loc))
		}
		if next := end.AddDate(0, 0, 1); !next.Equal(r.Leak.windowEnd(next.Add(time.Minute), loc)) {
			t.Errorf("the next night's end %v is not the window end after it", next)
		}
	}
	night := mustRule(t, `{"kind":"leak","entities":[{"type":"WaterMeter"}],"attribute":"flow","leak":{"from":"22:00","to":"04:00","atMost":0.5,"nights":3}}`)
	end := night.Leak.windowEnd(time.Date(2025, 10, 26, 12, 0, 0, 0, loc), loc) // winter time began at 03:00
	start, _ := night.Leak.window(end, loc)
	if got := end.Sub(start); got != 7*time.Hour {
		t.Errorf("the night of the change back lasts %v, want 7 h (22:00 to 04:00 with an hour repeated)", got)
	}
}

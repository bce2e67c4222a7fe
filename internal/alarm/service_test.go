package alarm_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/alarm"
	"github.com/zenne-city/zenne/internal/apitest"
	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/ngsild/qlang"
	"github.com/zenne-city/zenne/internal/store"
)

// These tests drive rules with real data through a real server: entities
// are written over HTTP, the rules' service follows the bus, and the
// alerts are read back as entities.

const coreCtx = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"

func rule(t *testing.T, body string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatal(err)
	}
	m["@context"] = coreCtx
	return m
}

func createRule(t *testing.T, s *apitest.Server, body string) {
	t.Helper()
	if _, err := s.App.Alarms.CreateRule(context.Background(), "", rule(t, body)); err != nil {
		t.Fatalf("create rule: %v", err)
	}
}

func upsert(t *testing.T, s *apitest.Server, entities ...map[string]any) {
	t.Helper()
	if r := s.Do(apitest.Req{Method: "POST", Path: "/ngsi-ld/v1/entityOperations/upsert?options=update", Body: entities}); r.Status >= 300 {
		t.Fatalf("upsert: %d %s", r.Status, r.Body)
	}
}

func reading(id, typ, attr string, v float64, at time.Time) map[string]any {
	a := map[string]any{"type": "Property", "value": v}
	if !at.IsZero() {
		a["observedAt"] = at.UTC().Format(time.RFC3339Nano)
	}
	return map[string]any{"id": id, "type": typ, attr: a,
		"location": map[string]any{"type": "GeoProperty", "value": map[string]any{"type": "Point", "coordinates": []any{4.35, 50.85}}}}
}

// alerts lists the alerts of a rule, oldest first.
func alerts(t *testing.T, s *apitest.Server, ruleID string) []*ngsild.Entity {
	t.Helper()
	res, err := s.App.Broker.Query(context.Background(), "", &store.Query{Limit: 1000,
		Selectors: []store.Selector{{Type: typeQuery(t, alarm.AlertType)}}})
	if err != nil {
		t.Fatal(err)
	}
	var out []*ngsild.Entity
	for _, e := range res.Entities {
		if by := e.Instance("https://smartdatamodels.org/dataModel.Alert/detectedBy", ""); by != nil && by.Value == ruleID {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b *ngsild.Entity) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out
}

func value(e *ngsild.Entity, name string) any {
	if a := e.Instance(name, ""); a != nil {
		return a.Value
	}
	return nil
}

// waitFor polls until cond holds or the deadline passes.
func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// conditions is the condition of each alert of a rule, oldest first.
func conditions(t *testing.T, s *apitest.Server, ruleID string) []string {
	var out []string
	for _, a := range alerts(t, s, ruleID) {
		out = append(out, fmt.Sprint(value(a, alarm.AttrCondition)))
	}
	return out
}

func equal(a, b []string) bool { return slices.Equal(a, b) }

func TestThresholdAlertLifeCycle(t *testing.T) {
	s := apitest.Start(t)
	upsert(t, s, reading("urn:ngsi-ld:WasteContainer:1", "WasteContainer", "fillingLevel", 0.5, time.Time{}))
	createRule(t, s, `{"id":"bins-full","kind":"threshold","entities":[{"type":"WasteContainer"}],"attribute":"fillingLevel",
		"threshold":{"above":0.8,"clearBelow":0.6},"severity":"high","category":"environment",
		"message":{"nl":"Container {name} is voor {value} vol","fr":"Le conteneur {name} est rempli à {value}","en":"Bin {name} is {value} full"}}`)
	upsert(t, s, reading("urn:ngsi-ld:WasteContainer:1", "WasteContainer", "fillingLevel", 0.9, time.Time{}))
	waitFor(t, "an alert opens", 5*time.Second, func() bool { return equal(conditions(t, s, "bins-full"), []string{"active"}) })
	a := alerts(t, s, "bins-full")[0]
	if value(a, "https://smartdatamodels.org/dataModel.Alert/severity") != "high" ||
		value(a, "https://smartdatamodels.org/dataModel.Alert/measuredValue") != 0.9 ||
		value(a, alarm.AttrStatus) != "open" || a.Instance(ngsild.IRILocation, "") == nil {
		t.Errorf("alert %+v", a.Attrs)
	}
	desc, _ := value(a, "http://purl.org/dc/terms/description").(map[string]any)
	if desc["nl"] != "Container urn:ngsi-ld:WasteContainer:1 is voor 0.9 vol" || desc["fr"] == nil {
		t.Errorf("description %v", desc)
	}
	// Between the bounds the alert stays; below clearBelow it clears; a
	// new crossing opens a new alert.
	upsert(t, s, reading("urn:ngsi-ld:WasteContainer:1", "WasteContainer", "fillingLevel", 0.7, time.Time{}))
	time.Sleep(1500 * time.Millisecond)
	if got := conditions(t, s, "bins-full"); !equal(got, []string{"active"}) {
		t.Fatalf("in the hysteresis band: %v", got)
	}
	upsert(t, s, reading("urn:ngsi-ld:WasteContainer:1", "WasteContainer", "fillingLevel", 0.1, time.Time{}))
	waitFor(t, "the alert clears", 5*time.Second, func() bool { return equal(conditions(t, s, "bins-full"), []string{"cleared"}) })
	upsert(t, s, reading("urn:ngsi-ld:WasteContainer:1", "WasteContainer", "fillingLevel", 0.95, time.Time{}))
	waitFor(t, "a second alert opens", 5*time.Second, func() bool {
		return equal(conditions(t, s, "bins-full"), []string{"cleared", "active"})
	})

	// Staff acknowledge, assign and resolve; the history keeps who did what.
	id := alerts(t, s, "bins-full")[1].ID
	ctx := context.Background()
	if _, err := s.App.Alarms.Act(ctx, "", id, alarm.Action{Kind: alarm.Acknowledge, By: "marie"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.App.Alarms.Act(ctx, "", id, alarm.Action{Kind: alarm.Acknowledge, By: "marie"}); !ngsild.IsType(err, ngsild.Conflict) {
		t.Errorf("acknowledged twice: %v", err)
	}
	if _, err := s.App.Alarms.Act(ctx, "", id, alarm.Action{Kind: alarm.Assign, By: "marie", To: "team-north"}); err != nil {
		t.Fatal(err)
	}
	e, err := s.App.Alarms.Act(ctx, "", id, alarm.Action{Kind: alarm.Resolve, By: "jan", Comment: "geleegd"})
	if err != nil {
		t.Fatal(err)
	}
	if value(e, alarm.AttrStatus) != "resolved" || value(e, alarm.AttrAssignee) != "team-north" {
		t.Errorf("after the actions: %v", e.Attrs)
	}
	if _, err := s.App.Alarms.Act(ctx, "", id, alarm.Action{Kind: alarm.Assign, By: "x", To: "y"}); !ngsild.IsType(err, ngsild.Conflict) {
		t.Errorf("assigning a resolved alert: %v", err)
	}
	if _, err := s.App.Alarms.Act(ctx, "", "urn:ngsi-ld:WasteContainer:1", alarm.Action{Kind: alarm.Acknowledge, By: "x"}); !ngsild.IsType(err, ngsild.BadRequestData) {
		t.Errorf("acting on an entity that is not an alert: %v", err)
	}
	h, err := s.App.Store.EntityHistory(ctx, "", id, []string{alarm.AttrStatus}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var who []string
	for _, in := range h.Attrs[alarm.AttrStatus] {
		actor := ""
		if a := in.Attr.Sub[ngsild.DefaultContextNS+"actor"]; a != nil {
			actor = a.Value.(string)
		}
		who = append(who, fmt.Sprint(in.Attr.Value, "/", actor))
	}
	if !equal(who, []string{"open/", "acknowledged/marie", "resolved/jan"}) {
		t.Errorf("status history %v", who)
	}
	info, err := s.App.Alarms.Rule(ctx, "", "bins-full")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the status is saved", 3*time.Second, func() bool {
		info, _ = s.App.Alarms.Rule(ctx, "", "bins-full")
		return info.Status.Opened == 2 && info.Status.Cleared == 1 && info.Status.Active == 1
	})
}

func TestRateAndCountFromObservedTimes(t *testing.T) {
	s := apitest.Start(t)
	t1 := time.Now().Add(-2 * time.Hour).Truncate(time.Minute)
	upsert(t, s, reading("urn:ngsi-ld:Station:1", "AirQualityObserved", "no2", 20, t1))
	createRule(t, s, `{"id":"no2-rise","kind":"rate","entities":[{"type":"AirQualityObserved"}],"attribute":"no2","rate":{"above":30,"per":"PT1H"}}`)
	createRule(t, s, `{"id":"no2-out","kind":"count","entities":[{"type":"AirQualityObserved"}],"attribute":"no2","count":{"above":100,"moreThan":2,"within":"PT1H"}}`)
	steps := []struct {
		min       int
		v         float64
		rate, cnt []string
	}{
		{10, 25, nil, nil},                                 // +30/h: not above 30
		{20, 150, []string{"active"}, nil},                 // +750/h; one reading out of range
		{30, 160, []string{"active"}, nil},                 // +60/h; two
		{40, 165, []string{"cleared"}, []string{"active"}}, // +30/h; three within the hour
	}
	for _, st := range steps {
		upsert(t, s, reading("urn:ngsi-ld:Station:1", "AirQualityObserved", "no2", st.v, t1.Add(time.Duration(st.min)*time.Minute)))
		waitFor(t, fmt.Sprintf("minute %d: rate %v, count %v", st.min, st.rate, st.cnt), 5*time.Second, func() bool {
			return equal(conditions(t, s, "no2-rise"), st.rate) && equal(conditions(t, s, "no2-out"), st.cnt)
		})
	}
	// While it lasted, the rate alert was updated with the value of minute
	// 30 (ten minutes after it opened: more than a minute, the reporting
	// interval, of observed time) and cleared with minute 40's.
	measured := alerts(t, s, "no2-rise")[0].Instance("https://smartdatamodels.org/dataModel.Alert/measuredValue", "")
	if measured.Value != 30.0 || !measured.ObservedAt.Equal(t1.Add(40*time.Minute)) {
		t.Errorf("measured %v at %v, want 30 (per hour) at minute 40", measured.Value, measured.ObservedAt)
	}
	h, err := s.App.Store.EntityHistory(context.Background(), "", alerts(t, s, "no2-rise")[0].ID,
		[]string{"https://smartdatamodels.org/dataModel.Alert/measuredValue"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var rates []any
	for _, in := range h.Attrs["https://smartdatamodels.org/dataModel.Alert/measuredValue"] {
		rates = append(rates, in.Attr.Value)
	}
	if fmt.Sprint(rates) != "[750 60 30]" {
		t.Errorf("the alert's measured values over time: %v, want opened at 750, updated to 60, cleared at 30", rates)
	}
	issued := alerts(t, s, "no2-rise")[0].Instance("https://smartdatamodels.org/dataModel.Alert/dateIssued", "").Value.(map[string]any)["@value"]
	if want := ngsild.FormatTime(t1.Add(20 * time.Minute)); issued != want {
		t.Errorf("issued %v, want the reading's observedAt %s", issued, want)
	}
	// A reading that is not a number is reported on the rule, not fatal.
	upsert(t, s, map[string]any{"id": "urn:ngsi-ld:Station:2", "type": "AirQualityObserved", "no2": map[string]any{"type": "Property", "value": "high"}})
	waitFor(t, "the error is reported on the rule", 5*time.Second, func() bool {
		info, err := s.App.Alarms.Rule(context.Background(), "", "no2-out")
		return err == nil && info.Status.Errors >= 1 && info.Status.LastErrorEntity == "urn:ngsi-ld:Station:2"
	})
}

func TestSilence(t *testing.T) {
	s := apitest.Start(t)
	upsert(t, s, reading("urn:ngsi-ld:Counter:1", "PedestrianCounter", "count", 1, time.Time{}))
	createRule(t, s, `{"id":"quiet","kind":"silence","entities":[{"type":"PedestrianCounter"}],"silence":{"factor":3,"atLeast":"PT2S"}}`)
	for i := range 4 {
		time.Sleep(300 * time.Millisecond)
		upsert(t, s, reading("urn:ngsi-ld:Counter:1", "PedestrianCounter", "count", float64(i), time.Time{}))
	}
	// Usual interval 0.3 s; silent past max(2 s, 0.9 s).
	waitFor(t, "a silent counter opens an alert", 6*time.Second, func() bool { return equal(conditions(t, s, "quiet"), []string{"active"}) })
	upsert(t, s, reading("urn:ngsi-ld:Counter:1", "PedestrianCounter", "count", 9, time.Time{}))
	waitFor(t, "its next update clears it", 5*time.Second, func() bool { return equal(conditions(t, s, "quiet"), []string{"cleared"}) })
}

// history posts instances of attr with their own times through the
// temporal API.
func history(t *testing.T, s *apitest.Server, id, attr string, pts map[time.Time]float64) {
	t.Helper()
	var insts []any
	for at, v := range pts {
		insts = append(insts, map[string]any{"type": "Property", "value": v, "observedAt": at.UTC().Format(time.RFC3339)})
	}
	r := s.Do(apitest.Req{Method: "POST", Path: "/ngsi-ld/v1/temporal/entities/" + id + "/attrs", Body: map[string]any{attr: insts}})
	if r.Status != 204 {
		t.Fatalf("history: %d %s", r.Status, r.Body)
	}
}

func TestLeakFromHistory(t *testing.T) {
	s := apitest.Start(t)
	loc, _ := time.LoadLocation(alarm.DefaultTimezone)
	now := time.Now().In(loc)
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, loc)
	if now.Hour() < 5 {
		// Tonight's window (01:00-05:00) is not over: the three nights
		// end last night. From 05:00 tonight counts, so it needs data.
		today = today.AddDate(0, 0, -1)
	}
	for _, m := range []string{"leaking", "fine"} {
		id := "urn:ngsi-ld:WaterMeter:" + m
		upsert(t, s, reading(id, "WaterMeter", "flow", 0, time.Time{}))
		pts := map[time.Time]float64{}
		for night := 1; night <= 3; night++ {
			day := today.AddDate(0, 0, -night+1)
			for q := range 16 {
				v := 0.8 // a leak: never near zero
				if m == "fine" && q%4 == 0 {
					v = 0
				}
				pts[day.Add(time.Hour+time.Duration(q)*15*time.Minute)] = v
			}
			pts[day.Add(12*time.Hour)] = 0 // daytime zero: outside the window
		}
		history(t, s, id, "flow", pts)
	}
	createRule(t, s, `{"id":"leak","kind":"leak","entities":[{"type":"WaterMeter"}],"attribute":"flow","leak":{"from":"01:00","to":"05:00","atMost":0.05,"nights":3}}`)
	waitFor(t, "the leaking meter's alert", 5*time.Second, func() bool { return equal(conditions(t, s, "leak"), []string{"active"}) })
	if src := value(alerts(t, s, "leak")[0], "https://smartdatamodels.org/dataModel.Alert/alertSource"); src != "urn:ngsi-ld:WaterMeter:leaking" {
		t.Errorf("alert on %v", src)
	}

	// The back-test finds the same from history alone.
	rep, err := s.App.Alarms.Backtest(context.Background(), "", rule(t, `{"id":"leak","kind":"leak","entities":[{"type":"WaterMeter"}],
		"attribute":"flow","leak":{"from":"01:00","to":"05:00","atMost":0.05,"nights":3}}`), today.AddDate(0, 0, -5), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Entities != 2 || len(rep.Firings) != 1 || rep.Firings[0].Entity != "urn:ngsi-ld:WaterMeter:leaking" ||
		!rep.Firings[0].Opened.Equal(today.Add(5*time.Hour)) {
		t.Errorf("back-test %+v", rep)
	}
}

func TestAnomalyFromHistory(t *testing.T) {
	s := apitest.Start(t)
	loc, _ := time.LoadLocation(alarm.DefaultTimezone)
	now := time.Now().In(loc)
	midnight := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, loc)
	for _, b := range []string{"usual", "unusual"} {
		id := "urn:ngsi-ld:Building:" + b
		upsert(t, s, reading(id, "EnergyMeter", "consumption", 1, time.Time{}))
		pts := map[time.Time]float64{}
		for w := 0; w <= 4; w++ {
			day := midnight.AddDate(0, 0, -7*w)
			v := 10.0 + float64(w%2)
			if w == 0 && b == "unusual" {
				v = 30
			}
			for q := 0; day.Add(time.Duration(q) * 15 * time.Minute).Before(now.AddDate(0, 0, -7*w).Add(-time.Minute)); q++ {
				pts[day.Add(time.Duration(q)*15*time.Minute)] = v
			}
			pts[day] = v // at least one reading today
		}
		history(t, s, id, "consumption", pts)
	}
	createRule(t, s, `{"id":"unusual-day","kind":"anomaly","entities":[{"type":"EnergyMeter"}],"attribute":"consumption","anomaly":{"method":"sum","weeks":4}}`)
	waitFor(t, "the unusual building's alert", 5*time.Second, func() bool { return equal(conditions(t, s, "unusual-day"), []string{"active"}) })
	if src := value(alerts(t, s, "unusual-day")[0], "https://smartdatamodels.org/dataModel.Alert/alertSource"); src != "urn:ngsi-ld:Building:unusual" {
		t.Errorf("alert on %v", src)
	}
}

// A restart between the reading that crosses a threshold and the end of
// its duration, and another while the alert is open, change nothing: one
// alert, opened when the duration ended counting from the first reading,
// cleared once.
func TestRestartChangesNothing(t *testing.T) {
	dir := t.TempDir()
	s := apitest.StartIn(t, dir)
	upsert(t, s, reading("urn:ngsi-ld:WasteContainer:9", "WasteContainer", "fillingLevel", 0.5, time.Time{}))
	createRule(t, s, `{"id":"full","kind":"threshold","entities":[{"type":"WasteContainer"}],"attribute":"fillingLevel","threshold":{"above":0.8,"for":"PT12S"}}`)
	t1 := time.Now().Truncate(time.Millisecond)
	upsert(t, s, reading("urn:ngsi-ld:WasteContainer:9", "WasteContainer", "fillingLevel", 0.9, t1))
	time.Sleep(1500 * time.Millisecond) // evaluated and saved
	s.Stop()

	s = apitest.StartIn(t, dir)
	upsert(t, s, reading("urn:ngsi-ld:WasteContainer:9", "WasteContainer", "fillingLevel", 0.95, t1.Add(4*time.Second)))
	waitFor(t, "the alert opens after the restart", 20*time.Second, func() bool { return equal(conditions(t, s, "full"), []string{"active"}) })
	opened := alerts(t, s, "full")[0].ID
	if want := alarm.AlertID("full", "urn:ngsi-ld:WasteContainer:9", t1.Add(12*time.Second)); opened != want {
		t.Errorf("alert %s, want %s (12 s after the reading before the restart)", opened, want)
	}
	time.Sleep(1500 * time.Millisecond)
	s.Stop()

	s = apitest.StartIn(t, dir)
	upsert(t, s, reading("urn:ngsi-ld:WasteContainer:9", "WasteContainer", "fillingLevel", 0.2, time.Now()))
	waitFor(t, "the same alert clears", 5*time.Second, func() bool { return equal(conditions(t, s, "full"), []string{"cleared"}) })
	if got := alerts(t, s, "full"); len(got) != 1 || got[0].ID != opened {
		t.Errorf("alerts after two restarts: %v", got)
	}
}

func TestRuleRejections(t *testing.T) {
	s := apitest.Start(t)
	ctx := context.Background()
	for i := range 6 {
		upsert(t, s, reading(fmt.Sprintf("urn:ngsi-ld:WasteContainer:%d", i), "WasteContainer", "fillingLevel", 0.5, time.Time{}))
	}
	cases := []struct{ body, want string }{
		{`{"kind":"threshold","entities":[{"type":"WasteContainer"}],"attribute":"fillLevel","threshold":{"above":0.8}}`, "no entity of this tenant has it"},
		{`{"kind":"threshold","entities":[{"type":"WasteContainer"}],"attribute":"fillingLevel","threshold":{"above":0.1}}`, "would fire on every entity"},
	}
	for _, c := range cases {
		_, err := s.App.Alarms.CreateRule(ctx, "", rule(t, c.body))
		if e := ngsild.AsError(err); e == nil || e.Status() != 400 || !strings.Contains(e.Detail, c.want) {
			t.Errorf("%s: %v, want %q", c.body, err, c.want)
		}
	}
	createRule(t, s, `{"id":"r1","kind":"threshold","entities":[{"type":"WasteContainer"}],"attribute":"fillingLevel","threshold":{"above":0.8}}`)
	if _, err := s.App.Alarms.CreateRule(ctx, "", rule(t, `{"id":"r1","kind":"threshold","entities":[{"type":"WasteContainer"}],"attribute":"fillingLevel","threshold":{"above":0.8}}`)); !ngsild.IsType(err, ngsild.AlreadyExists) {
		t.Errorf("a taken id: %v", err)
	}
	if _, err := s.App.Alarms.PatchRule(ctx, "", "r1", map[string]any{"paused": true}); err != nil {
		t.Fatal(err)
	}
	upsert(t, s, reading("urn:ngsi-ld:WasteContainer:1", "WasteContainer", "fillingLevel", 0.99, time.Time{}))
	time.Sleep(3 * time.Second) // the reload and an evaluation
	if got := conditions(t, s, "r1"); len(got) != 0 {
		t.Errorf("a paused rule fired: %v", got)
	}
	if err := s.App.Alarms.DeleteRule(ctx, "", "r1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.App.Alarms.Rule(ctx, "", "r1"); !ngsild.IsType(err, ngsild.ResourceNotFound) {
		t.Errorf("a deleted rule: %v", err)
	}
}

func typeQuery(t *testing.T, iri string) *qlang.TypeQuery {
	q, err := qlang.ParseTypeQuery(iri, nil)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

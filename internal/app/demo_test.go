package app_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/alarm"
	"github.com/zenne-city/zenne/internal/apitest"
	"github.com/zenne-city/zenne/internal/app"
	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/ngsild/qlang"
	"github.com/zenne-city/zenne/internal/ngsild/temporal"
	"github.com/zenne-city/zenne/internal/store"
)

const (
	alertDetectedBy = "https://smartdatamodels.org/dataModel.Alert/detectedBy"
	alertSource     = "https://smartdatamodels.org/dataModel.Alert/alertSource"
	energy15min     = "https://zenne.city/ns/energyConsumption15min"
	minFlow         = "https://smartdatamodels.org/dataModel.WaterConsumption/minFlow"
	batteryLevel    = "https://uri.etsi.org/ngsi-ld/default-context/batteryLevel"
)

// TestDemoAlarms runs `zenne demo`'s path (the city, its history, the
// rules, the simulated sensors) and checks that within a minute each of the
// demo's rules has an open alert and that the demo's staff acknowledged
// one and assigned another.
func TestDemoAlarms(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs the demo city for up to a minute")
	}
	s := apitest.Start(t) // 127.0.0.1:0, a temporary directory, the embedded store, no MQTT
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := s.App.LoadDemo(ctx, nil); err != nil {
		t.Fatal(err)
	}
	script, err := s.App.BackfillDemo(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("backfill: %d readings (%d instances) of %d sensors in %v", script.Readings, script.Instances, script.Sensors, script.Took.Round(time.Millisecond))
	if len(script.Leaking) == 0 || script.Unusual == "" || len(script.Silent) != 3 || script.Emptied == "" || script.Back == "" {
		t.Fatalf("script %+v: want leaking meters, an unusual building, three silent sensors, a bin emptied, a sensor back", script)
	}
	checkHistory(t, s.App, script)

	rules, err := s.App.StartDemoAlarms(ctx, script)
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 4 {
		t.Fatalf("%d rules", len(rules))
	}
	checkSilentHistory(t, s.App, script)
	started := time.Now()
	if _, err := s.App.StartScriptedSimulator(ctx, script); err != nil {
		t.Fatal(err)
	}

	// Just after midnight the day has no reading yet to be unusual.
	wantRules := []string{app.DemoRuleBins, app.DemoRuleSilent, app.DemoRuleLeak, app.DemoRuleUnusual}
	if l := time.Now().In(brussels(t)); l.Hour() == 0 && l.Minute() < 35 {
		t.Logf("%s in Brussels: the unusual day is not required yet", l.Format("15:04"))
		wantRules = wantRules[:3]
	}
	var got demoAlerts
	deadline := started.Add(60 * time.Second)
	for {
		got = alertsByRule(t, s.App)
		if got.complete(wantRules) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 60 s: %s", got)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("after %v: %s", time.Since(started).Round(100*time.Millisecond), got)

	// The alerts are about what the script staged.
	for _, e := range got.open[app.DemoRuleLeak] {
		if src := stringValue(e, alertSource); !slices.Contains(script.Leaking, src) {
			t.Errorf("leak alert on %s, which does not leak (%v)", src, script.Leaking)
		}
	}
	for _, e := range got.open[app.DemoRuleUnusual] {
		if src := stringValue(e, alertSource); src != script.Unusual {
			t.Errorf("unusual-day alert on %s, not on %s", src, script.Unusual)
		}
	}
	silent := map[string]bool{}
	for _, e := range got.open[app.DemoRuleSilent] {
		silent[stringValue(e, alertSource)] = true
	}
	for _, id := range script.Silent {
		if !silent[id] && !(id == script.Back && time.Now().After(script.BackAt)) {
			t.Errorf("no silence alert on %s", id)
		}
	}
	for _, e := range got.open[app.DemoRuleBins] {
		if d := e.Instance("http://purl.org/dc/terms/description", ""); d == nil || !hasLanguages(d.Value, "nl", "fr", "en") {
			t.Errorf("alert %s: description %v, want nl, fr and en", e.ID, d)
			break
		}
	}
}

// checkHistory checks what the backfill gave the alarm rules to find.
func checkHistory(t *testing.T, a *app.App, script *app.DemoScript) {
	t.Helper()
	loc := brussels(t)
	now := script.At
	midnight := midnightIn(now, loc)
	sum := func(id string, from, to time.Time) (float64, int) {
		ss := samples(t, a, id, energy15min, from, to)
		total := 0.0
		for _, v := range ss {
			total += v
		}
		return total, len(ss)
	}
	// Five weeks of the building's 15-minute consumption; today twice its
	// usual (or no reading yet today, just after midnight).
	if _, n := sum(script.Unusual, now.AddDate(0, 0, -35), now); n < 34*96 {
		t.Errorf("%s: %d quarter hours of history, want five weeks", script.Unusual, n)
	}
	if today, n := sum(script.Unusual, midnight, now); n > 0 {
		before, _ := sum(script.Unusual, midnight.AddDate(0, 0, -7), now.AddDate(0, 0, -7))
		if today < 1.6*before || today > 2.5*before {
			t.Errorf("%s: %.1f kWh today, %.1f the same hours a week ago: want about twice", script.Unusual, today, before)
		}
	}
	// The leaking meters' flow never stops on the last three nights.
	for _, id := range script.Leaking {
		for k := 1; k <= 3; k++ {
			day := midnight.AddDate(0, 0, -k)
			if h := now.In(loc); h.Hour() >= 5 {
				day = midnight.AddDate(0, 0, 1-k)
			}
			ss := samples(t, a, id, minFlow, day.Add(time.Hour), day.Add(5*time.Hour))
			if len(ss) < 12 || slices.Min(ss) <= 2 {
				t.Errorf("%s, night to %s: flow %v", id, day.Format("Mon 02"), ss)
			}
		}
	}
}

// checkSilentHistory checks that the silent sensors' last reading is one
// to three hours old (StartDemoAlarms writes their last readings).
func checkSilentHistory(t *testing.T, a *app.App, script *app.DemoScript) {
	t.Helper()
	ctx := context.Background()
	now := script.At
	for _, id := range script.Silent {
		hs, err := a.Store.EntityHistories(ctx, store.DefaultTenant, []string{id}, []string{batteryLevel}, &temporal.Query{LastN: 1})
		if err != nil || len(hs) != 1 || hs[0] == nil || len(hs[0].Attrs[batteryLevel]) != 1 {
			t.Errorf("%s: no battery level in history (%v)", id, err)
			continue
		}
		if age := now.Sub(hs[0].Attrs[batteryLevel][0].Attr.ObservedAt); age < time.Hour || age > 3*time.Hour {
			t.Errorf("%s: last reading %v ago", id, age.Round(time.Minute))
		}
	}
}

// samples are an entity's numeric instances of attr between from and to.
func samples(t *testing.T, a *app.App, id, attr string, from, to time.Time) []float64 {
	t.Helper()
	hs, err := a.Store.EntityHistories(context.Background(), store.DefaultTenant, []string{id}, []string{attr},
		&temporal.Query{Rel: temporal.RelBetween, At: from, EndAt: to})
	if err != nil {
		t.Fatal(err)
	}
	var out []float64
	if len(hs) == 1 && hs[0] != nil {
		for _, in := range hs[0].Attrs[attr] {
			if v, ok := in.Attr.Value.(float64); ok {
				out = append(out, v)
			}
		}
	}
	return out
}

// demoAlerts are the alerts by rule.
type demoAlerts struct {
	open         map[string][]*ngsild.Entity // condition active
	cleared      int
	acknowledged []string
	assigned     []string
}

func alertsByRule(t *testing.T, a *app.App) demoAlerts {
	t.Helper()
	tq, err := qlang.ParseTypeQuery(alarm.AlertType, func(s string) string { return s })
	if err != nil {
		t.Fatal(err)
	}
	res, err := a.Broker.Query(context.Background(), store.DefaultTenant, &store.Query{Selectors: []store.Selector{{Type: tq}}, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	got := demoAlerts{open: map[string][]*ngsild.Entity{}}
	for _, e := range res.Entities {
		rule := stringValue(e, alertDetectedBy)
		switch stringValue(e, alarm.AttrCondition) {
		case alarm.Active:
			got.open[rule] = append(got.open[rule], e)
		case alarm.Cleared:
			got.cleared++
		}
		if stringValue(e, alarm.AttrStatus) == alarm.StatusAcked {
			got.acknowledged = append(got.acknowledged, e.ID)
		}
		if stringValue(e, alarm.AttrAssignee) != "" {
			got.assigned = append(got.assigned, e.ID)
		}
	}
	return got
}

func (d demoAlerts) complete(rules []string) bool {
	for _, r := range rules {
		if len(d.open[r]) == 0 {
			return false
		}
	}
	return len(d.acknowledged) > 0 && len(d.assigned) > 0
}

func (d demoAlerts) String() string {
	var b strings.Builder
	for _, r := range []string{app.DemoRuleBins, app.DemoRuleSilent, app.DemoRuleLeak, app.DemoRuleUnusual} {
		fmt.Fprintf(&b, "%s: %d open; ", r, len(d.open[r]))
	}
	fmt.Fprintf(&b, "%d cleared, %d acknowledged, %d assigned", d.cleared, len(d.acknowledged), len(d.assigned))
	return b.String()
}

func stringValue(e *ngsild.Entity, name string) string {
	if a := e.Instance(name, ""); a != nil {
		if s, ok := a.Value.(string); ok {
			return s
		}
	}
	return ""
}

func hasLanguages(v any, langs ...string) bool {
	m, ok := v.(map[string]any)
	if !ok {
		return false
	}
	for _, l := range langs {
		if s, _ := m[l].(string); s == "" || strings.Contains(s, "{") {
			return false
		}
	}
	return true
}

func brussels(t *testing.T) *time.Location {
	loc, err := time.LoadLocation("Europe/Brussels")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func midnightIn(t time.Time, loc *time.Location) time.Time {
	l := t.In(loc)
	return time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, loc)
}

package app

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/zenne-city/zenne/internal/alarm"
	"github.com/zenne-city/zenne/internal/demo"
	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/ngsild/qlang"
	"github.com/zenne-city/zenne/internal/store"
)

// The demo's alarm rules, by id.
const (
	DemoRuleBins    = "demo-bins-full"
	DemoRuleSilent  = "demo-silent-sensors"
	DemoRuleLeak    = "demo-night-leak"
	DemoRuleUnusual = "demo-unusual-day"
)

// DemoStaff is who acknowledges and assigns alerts in the demo.
const DemoStaff = "demo staff"

// demoRules are the rules `zenne demo` creates, each with the @context its
// names expand with: the Smart Data Models context of the entities' domain
// (as the demo city's entities use), then the core context.
var demoRules = []struct {
	context []any
	body    string
}{
	{[]any{demo.SDMContext("WasteManagement"), demo.CoreContext}, `{
		"id": "` + DemoRuleBins + `",
		"name": "Bins above 80%",
		"description": "A waste container more than 80% full, until it is below 60% again (emptied).",
		"kind": "threshold",
		"entities": [{"type": "WasteContainer"}],
		"attribute": "fillingLevel",
		"threshold": {"above": 0.8, "clearBelow": 0.6},
		"severity": "medium",
		"category": "environment",
		"subCategory": "wasteContainerFull",
		"message": {
			"nl": "Container {name}: vullingsgraad {value}, boven {threshold} sinds {since}. Plan een lediging in.",
			"fr": "Conteneur {name} : taux de remplissage de {value}, au-dessus de {threshold} depuis le {since}. Prévoir une collecte.",
			"en": "Waste container {name}: filling level {value}, above {threshold} since {since}. Plan a collection."
		}
	}`},
	{[]any{demo.SDMContext("WasteManagement"), demo.SDMContext("Parking"), demo.CoreContext}, `{
		"id": "` + DemoRuleSilent + `",
		"name": "Silent sensors",
		"description": "A battery-powered sensor (bin, parking spot) that has sent nothing for three times its usual interval, at least 10 minutes.",
		"kind": "silence",
		"entities": [{"type": "WasteContainer"}, {"type": "ParkingSpot"}],
		"attribute": "batteryLevel",
		"silence": {"factor": 3, "atLeast": "PT10M"},
		"severity": "low",
		"category": "environment",
		"subCategory": "sensorSilent",
		"message": {
			"nl": "Sensor {name} zwijgt al {value} s, langer dan drie keer zijn gewone interval ({threshold} s). Controleer de batterij en de radioverbinding.",
			"fr": "Le capteur {name} est muet depuis {value} s, au-delà de trois fois son intervalle habituel ({threshold} s). Vérifier sa pile et sa liaison radio.",
			"en": "Sensor {name} has been silent for {value} s, beyond three times its usual interval ({threshold} s). Check its battery and radio link."
		}
	}`},
	{[]any{demo.SDMContext("WaterConsumption"), demo.CoreContext}, `{
		"id": "` + DemoRuleLeak + `",
		"name": "Night-time leak",
		"description": "A water meter whose flow never fell to near zero between 01:00 and 05:00, three nights running.",
		"kind": "leak",
		"entities": [{"type": "WaterConsumptionObserved"}],
		"attribute": "minFlow",
		"leak": {"from": "01:00", "to": "05:00", "nights": 3, "atMost": 2},
		"severity": "high",
		"category": "environment",
		"subCategory": "waterLeak",
		"message": {
			"nl": "Mogelijk lek bij {name}: het debiet bleef drie nachten na elkaar tussen 01:00 en 05:00 op {value} l/u of meer (laatste nacht tot {since}). Controleer de installatie.",
			"fr": "Fuite probable chez {name} : le débit est resté à {value} l/h ou plus entre 01:00 et 05:00 trois nuits de suite (dernière nuit jusqu'au {since}). Vérifier l'installation.",
			"en": "Possible leak at {name}: the flow stayed at {value} l/h or more between 01:00 and 05:00 three nights running (last night up to {since}). Check the installation."
		}
	}`},
	{[]any{demo.SDMContext("Building"), map[string]any{"energyConsumption15min": demo.Namespace + "energyConsumption15min"}, demo.CoreContext}, `{
		"id": "` + DemoRuleUnusual + `",
		"name": "Unusual consumption day",
		"description": "A public building whose electricity use since midnight is well above the same hours of the same weekday in the four weeks before.",
		"kind": "anomaly",
		"entities": [{"type": "Building"}],
		"attribute": "energyConsumption15min",
		"anomaly": {"method": "sum", "weeks": 4, "sigma": 3, "minRatio": 1.5, "every": "PT5M"},
		"severity": "medium",
		"category": "environment",
		"subCategory": "unusualConsumption",
		"message": {
			"nl": "Ongewoon verbruik in {name}: {value} kWh sinds middernacht, boven de gebruikelijke {threshold} kWh voor deze weekdag op dit uur.",
			"fr": "Consommation inhabituelle à {name} : {value} kWh depuis minuit, au-delà des {threshold} kWh habituels pour ce jour de la semaine à cette heure.",
			"en": "Unusual consumption at {name}: {value} kWh since midnight, above the usual {threshold} kWh for this weekday at this hour."
		}
	}`},
}

// StartDemoAlarms creates the demo's alarm rules in the default tenant
// (bins above 80%, silent sensors, a night-time leak, an unusual day) and,
// until ctx ends, plays the city's staff: once alerts open, it assigns the
// alert of the bin the script empties to the collection service and
// acknowledges a leak, so that the console shows every state of an alert.
// Call it after BackfillDemo (the rules read the attributes the history
// gave the entities; the last readings of the sensors silent now are
// written once the rules exist) and before StartScriptedSimulator (the
// first live readings open the bins' alerts).
func (a *App) StartDemoAlarms(ctx context.Context, s *DemoScript) ([]*alarm.RuleInfo, error) {
	var out []*alarm.RuleInfo
	for _, r := range demoRules {
		var body map[string]any
		if err := json.Unmarshal([]byte(r.body), &body); err != nil {
			return nil, fmt.Errorf("demo rule: %w", err)
		}
		body["@context"] = r.context
		info, err := a.Alarms.CreateRule(ctx, store.DefaultTenant, body)
		if ngsild.IsType(err, ngsild.AlreadyExists) {
			info, err = a.Alarms.Rule(ctx, store.DefaultTenant, body["id"].(string))
		}
		if err != nil {
			return nil, fmt.Errorf("demo rule %v: %w", body["id"], err)
		}
		out = append(out, info)
	}
	if s != nil {
		// The sensors silent now send their last readings, for the
		// silence rule to learn their usual interval (tailReadings).
		if err := a.writeReadings(ctx, s.held, true); err != nil {
			return nil, fmt.Errorf("demo history: %w", err)
		}
		s.held = nil
	}
	go a.demoStaff(ctx, s)
	return out, nil
}

// Alert attributes the demo's staff reads (Smart Data Models Alert).
const (
	alertDetectedBy = "https://smartdatamodels.org/dataModel.Alert/detectedBy"
	alertSource     = "https://smartdatamodels.org/dataModel.Alert/alertSource"
)

// staffPatience is how long the staff waits for the alert it prefers (the
// emptied bin's, a leak) before it takes another.
const staffPatience = 20 * time.Second

// demoStaff assigns one open alert and acknowledges another, as soon as
// there are alerts, then returns; it gives up after ten minutes.
func (a *App) demoStaff(ctx context.Context, s *DemoScript) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	alertType, err := qlang.ParseTypeQuery(alarm.AlertType, func(s string) string { return s })
	if err != nil {
		a.cfg.Log.Warn("demo staff", "err", err)
		return
	}
	emptied := ""
	if s != nil {
		emptied = s.Emptied
	}
	started := time.Now()
	assigned, acked := "", ""
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for assigned == "" || acked == "" {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		res, err := a.Broker.Query(ctx, store.DefaultTenant, &store.Query{Selectors: []store.Selector{{Type: alertType}}, Limit: 1000})
		if err != nil {
			continue
		}
		patient := time.Since(started) < staffPatience
		for _, e := range res.Entities {
			if stringValue(e, alarm.AttrCondition) != alarm.Active || stringValue(e, alarm.AttrStatus) != alarm.StatusOpen || e.ID == assigned {
				continue
			}
			rule, source := stringValue(e, alertDetectedBy), stringValue(e, alertSource)
			switch {
			case assigned == "" && rule == DemoRuleBins && (source == emptied || !patient):
				if a.staffAct(ctx, e.ID, alarm.Action{Kind: alarm.Assign, By: DemoStaff, To: "Bruxelles-Propreté",
					Comment: "Collecte supplémentaire demandée. / Extra lediging aangevraagd."}) {
					assigned = e.ID
				}
			case acked == "" && (rule == DemoRuleLeak || !patient && rule != DemoRuleBins):
				if a.staffAct(ctx, e.ID, alarm.Action{Kind: alarm.Acknowledge, By: DemoStaff,
					Comment: "Vu, le service technique est prévenu. / Gezien, de technische dienst is verwittigd."}) {
					acked = e.ID
				}
			}
		}
	}
}

func (a *App) staffAct(ctx context.Context, id string, act alarm.Action) bool {
	if _, err := a.Alarms.Act(ctx, store.DefaultTenant, id, act); err != nil {
		a.cfg.Log.Warn("demo staff: acting on an alert", "alert", id, "action", act.Kind, "err", err)
		return false
	}
	a.cfg.Log.Info("demo staff acted on an alert", "alert", id, "action", act.Kind)
	return true
}

// stringValue is the value of e's attribute (default instance) as a string: a
// Property's value or a Relationship's object.
func stringValue(e *ngsild.Entity, name string) string {
	if at := e.Instance(name, ""); at != nil {
		if v, ok := at.Value.(string); ok {
			return v
		}
	}
	return ""
}

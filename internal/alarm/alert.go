package alarm

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
)

// Alerts are Smart Data Models Alert entities, named with the Alert
// model's @context so clients using it see its terms; the life cycle
// (condition, alertStatus, assignedTo) has no term there and uses the
// default @context's vocabulary.
const (
	sdmAlert = "https://smartdatamodels.org/dataModel.Alert/"
	lifeNS   = ngsild.DefaultContextNS

	AlertType = sdmAlert + "Alert"

	attrSource      = sdmAlert + "alertSource"
	attrCategory    = sdmAlert + "category"
	attrSubCategory = sdmAlert + "subCategory"
	attrSeverity    = sdmAlert + "severity"
	attrDateIssued  = sdmAlert + "dateIssued"
	attrValidFrom   = "https://smartdatamodels.org/validFrom"
	attrValidTo     = sdmAlert + "validTo"
	attrDescription = "http://purl.org/dc/terms/description"
	attrMeasured    = sdmAlert + "measuredValue"
	attrThreshold   = sdmAlert + "thresholdValue"
	attrProperty    = sdmAlert + "anomalousProperty"
	attrDetectedBy  = sdmAlert + "detectedBy"

	// AttrCondition is "active" while the rule's condition holds, then "cleared".
	AttrCondition = lifeNS + "condition"
	// AttrStatus is the staff's side: "open", "acknowledged" or "resolved",
	// with who did it (actor) and their comment as sub-attributes.
	AttrStatus = lifeNS + "alertStatus"
	// AttrAssignee is who the alert is assigned to.
	AttrAssignee = lifeNS + "assignedTo"
	attrActor    = lifeNS + "actor"
	attrComment  = lifeNS + "comment"
)

// Condition and status values.
const (
	Active       = "active"
	Cleared      = "cleared"
	StatusOpen   = "open"
	StatusAcked  = "acknowledged"
	StatusSolved = "resolved"
)

// AlertID is the id of the alert a rule opens on an entity at time opened:
// the same inputs give the same id, so a change evaluated again after a
// crash finds the alert it opened before rather than opening another.
func AlertID(ruleID, entityID string, opened time.Time) string {
	h := sha256.Sum256([]byte(entityID))
	return "urn:ngsi-ld:Alert:" + ruleID + ":" + hex.EncodeToString(h[:6]) + ":" + strconv.FormatInt(opened.UnixMilli(), 10)
}

func dateTime(t time.Time) map[string]any {
	return map[string]any{"@type": "DateTime", "@value": ngsild.FormatTime(t.UTC())}
}

func prop(v any) []*ngsild.Attribute { return []*ngsild.Attribute{{Kind: ngsild.Property, Value: v}} }

// openedAlert is the alert a rule opens on entity e (its current state).
func (r *Rule) openedAlert(id string, e *ngsild.Entity, o Outcome, attrName string) *ngsild.Entity {
	a := &ngsild.Entity{ID: id, Types: []string{AlertType}, Attrs: map[string][]*ngsild.Attribute{
		attrSource:     {{Kind: ngsild.Relationship, Value: e.ID}},
		attrCategory:   prop(r.Category),
		attrSeverity:   prop(r.Severity),
		attrDateIssued: prop(dateTime(o.At)),
		attrValidFrom:  prop(dateTime(o.At)),
		attrDetectedBy: prop(r.ID),
		AttrCondition:  {{Kind: ngsild.Property, Value: Active, ObservedAt: o.At.UTC()}},
		AttrStatus:     {{Kind: ngsild.Property, Value: StatusOpen, ObservedAt: o.At.UTC()}},
	}}
	sub := r.SubCategory
	if sub == "" {
		sub = string(r.Kind)
	}
	a.Attrs[attrSubCategory] = prop(sub)
	if attrName != "" {
		a.Attrs[attrProperty] = prop(attrName)
	}
	r.report(a, e, o, attrName)
	if loc := e.Attrs[ngsild.IRILocation]; len(loc) > 0 {
		a.Attrs[ngsild.IRILocation] = []*ngsild.Attribute{{Kind: ngsild.GeoProperty, Value: loc[0].Value}}
	}
	return a
}

// report sets what an alert says about the condition now: the value, the
// bound and the description.
func (r *Rule) report(a, e *ngsild.Entity, o Outcome, attrName string) {
	a.Attrs[attrMeasured] = []*ngsild.Attribute{{Kind: ngsild.Property, Value: round(o.Value), ObservedAt: o.At.UTC()}}
	a.Attrs[attrThreshold] = prop(round(o.Bound))
	if desc := r.describe(e, o, attrName); len(desc) > 0 {
		a.Attrs[attrDescription] = []*ngsild.Attribute{{Kind: ngsild.LanguageProperty, Value: desc}}
	}
}

// clearedAlert is the fragment that clears an alert.
func (r *Rule) clearedAlert(id string, e *ngsild.Entity, o Outcome, attrName string) *ngsild.Entity {
	a := &ngsild.Entity{ID: id, Types: []string{AlertType}, Attrs: map[string][]*ngsild.Attribute{
		AttrCondition: {{Kind: ngsild.Property, Value: Cleared, ObservedAt: o.At.UTC()}},
		attrValidTo:   prop(dateTime(o.At)),
	}}
	if e != nil {
		r.report(a, e, o, attrName)
	}
	return a
}

// describe renders the rule's message in each language it has, and a
// default one in English when it has none.
func (r *Rule) describe(e *ngsild.Entity, o Outcome, attrName string) map[string]any {
	name := ""
	for _, attr := range nameAttrs {
		if n := e.Instance(attr, ""); n != nil {
			if s, ok := n.Value.(string); ok && s != "" {
				name = s
				break
			}
		}
	}
	if name == "" {
		name = e.ID
	}
	since := o.At
	if r.Kind == Silence && o.Step == Open {
		since = o.At.Add(-time.Duration(o.Bound * float64(time.Second))) // the last update
	}
	vars := map[string]string{"entity": e.ID, "duration": humanDuration(o, r.Kind), "name": name, "value": strconv.FormatFloat(round(o.Value), 'f', -1, 64),
		"attribute": attrName, "rule": r.ruleName(), "since": since.In(r.Location).Format("2006-01-02 15:04"),
		"threshold": strconv.FormatFloat(round(o.Bound), 'f', -1, 64)}
	out := map[string]any{}
	for lang, tmpl := range r.Message {
		out[lang] = Render(tmpl, vars)
	}
	if len(out) == 0 {
		out["en"] = Render(defaultMessage[r.Kind], vars)
	}
	return out
}

func (r *Rule) ruleName() string {
	if r.Name != "" {
		return r.Name
	}
	return r.ID
}

// nameAttrs are where an entity's name is found: the Smart Data Models
// name, then the default @context's.
var nameAttrs = []string{"https://smartdatamodels.org/name", ngsild.DefaultContextNS + "name"}

// humanDuration is how long a silent entity has been silent, in minutes
// (the duration placeholder); other kinds have none.
func humanDuration(o Outcome, k Kind) string {
	if k != Silence {
		return ""
	}
	return (time.Duration(o.Value) * time.Second).Round(time.Minute).String()
}

var defaultMessage = map[Kind]string{
	Threshold: "{rule}: {attribute} of {name} is {value} (threshold {threshold}) since {since}",
	Rate:      "{rule}: {attribute} of {name} changes by {value} per period (bound {threshold}) since {since}",
	Count:     "{rule}: {name} had more than {threshold} readings of {attribute} out of range by {since}",
	Silence:   "{rule}: {name} has sent nothing since {since} ({duration})",
	Leak:      "{rule}: {attribute} of {name} stayed at {value} or more at night (at most {threshold} expected), up to {since}",
	Anomaly:   "{rule}: {attribute} of {name} is {value} today, above its usual {threshold} for this weekday",
}

// round keeps values readable in alerts: six significant digits.
func round(v float64) float64 {
	f, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 6, 64), 64)
	return f
}

// Package alarm runs rules over live data (docs/ALARMS.md): thresholds with
// hysteresis and duration, rates of change, counts of readings out of range,
// silent entities, night-time leaks and days unusual for their weekday. A
// rule that fires opens an Alert entity (Smart Data Models Alert) about the
// entity, updates that alert while the condition lasts and clears it when
// the condition ends; staff acknowledge, assign and resolve alerts, and the
// alert's history keeps who did what.
//
// Rules select entities as a subscription does (entities, q, geoQ) and read
// one numeric attribute. Evaluation follows the event bus as changes arrive;
// silence, leak and anomaly rules also run on a clock. Rules, their state
// and the bus position are kept in the store's records, so a restart
// changes nothing; with several instances, one at a time evaluates (a store
// lease).
package alarm

import (
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/ngsild/geo"
	"github.com/zenne-city/zenne/internal/ngsild/qlang"
	"github.com/zenne-city/zenne/internal/ngsild/subscription"
	"github.com/zenne-city/zenne/internal/ngsild/temporal"
	"github.com/zenne-city/zenne/internal/store"
	"github.com/zenne-city/zenne/internal/store/codec"
)

// Kind is what a rule watches for.
type Kind string

const (
	Threshold Kind = "threshold" // a value beyond a bound, for a while, with hysteresis
	Rate      Kind = "rate"      // a value changing faster than a bound
	Count     Kind = "count"     // more than N readings out of range within a window
	Silence   Kind = "silence"   // no update for longer than usual
	Leak      Kind = "leak"      // a flow that never drops to near zero at night, N nights running
	Anomaly   Kind = "anomaly"   // a day's total above the same weekday's usual range
)

// Kinds lists every kind, in the order the documentation gives them.
var Kinds = []Kind{Threshold, Rate, Count, Silence, Leak, Anomaly}

// Severities are the Smart Data Models Alert severities, lowest first.
var Severities = []string{"informational", "low", "medium", "high", "critical"}

// Languages are the languages of a rule's message.
var Languages = []string{"nl", "fr", "en"}

// DefaultTimezone is the zone of night windows and days when a rule gives none.
const DefaultTimezone = "Europe/Brussels"

// Rule is a parsed rule. Names (attribute, types, q paths) are expanded.
type Rule struct {
	ID          string
	Name        string
	Description string
	Kind        Kind
	Entities    []subscription.Selector
	Q           *qlang.Query
	GeoQ        *geo.Query
	Attribute   string // expanded; "" only for silence (any update)
	DatasetID   string // the instance read ("" the default one)
	Severity    string
	Category    string
	SubCategory string
	Message     map[string]string // language -> template
	Paused      bool
	Location    *time.Location

	Threshold *ThresholdSpec
	Rate      *RateSpec
	Count     *CountSpec
	Silence   *SilenceSpec
	Leak      *LeakSpec
	Anomaly   *AnomalySpec

	// Doc is the rule as given (compact names, its @context), without
	// status: what the API returns and the store keeps.
	Doc map[string]any

	selection *store.Query
	// byIndex: the engine's index alone decides the selection (one
	// selector by id or by plain types, no q or geoQ), so a change it
	// offers needs no Match.
	byIndex bool
}

// ThresholdSpec fires when the value is above Above (or below Below) for at
// least For, and clears once it is below ClearBelow (above ClearAbove):
// between the two the alert stays as it is (hysteresis).
type ThresholdSpec struct {
	Above, Below           *float64
	ClearBelow, ClearAbove *float64
	For                    time.Duration
}

// RateSpec fires when the value changes by more than Above (less than
// Below, a negative bound for drops) per Per between two readings.
type RateSpec struct {
	Above, Below *float64
	Per          time.Duration
}

// CountSpec fires when more than MoreThan readings within Within are out of
// range: above Above or below Below.
type CountSpec struct {
	Above, Below *float64
	MoreThan     int
	Within       time.Duration
}

// SilenceSpec fires when an entity has not been updated for After, or, when
// After is zero, for Factor times its own usual interval (at least AtLeast).
type SilenceSpec struct {
	After   time.Duration
	Factor  float64
	AtLeast time.Duration
}

// LeakSpec fires when, in each of the last Nights nights, the value never
// went below AtMost within the window From..To (local times of day).
type LeakSpec struct {
	From, To time.Duration // since local midnight; To < From spans midnight
	AtMost   float64
	Nights   int
}

// AnomalySpec fires when today's aggregate so far is above the usual range
// of the same weekday, same time of day, over the last Weeks weeks: above
// their mean by Sigma standard deviations and by at least MinRatio times
// the mean. Checked every Every.
type AnomalySpec struct {
	Method   string // sum, avg, max or delta (the rise of a cumulative meter)
	Weeks    int
	Sigma    float64
	MinRatio float64
	Every    time.Duration
}

// validID is what a rule id may look like: it appears in URLs and in the
// ids of its alerts.
var validID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// Parse parses a rule body. ex expands its terms (the request's @context).
// Errors are ngsild.Errors of type BadRequestData or InvalidRequest, with
// a detail naming the member.
func Parse(body map[string]any, ex ngsild.Expander) (*Rule, error) {
	r := &Rule{Severity: "medium", Category: "environment", Message: map[string]string{}, Doc: body}
	p := parser{body: body, ex: ex}
	r.ID = p.str("id")
	if r.ID != "" && !validID.MatchString(r.ID) {
		p.fail("id %q: use letters, digits, '_', '-' and '.', at most 64, starting with a letter or digit", r.ID)
	}
	r.Name = p.str("name")
	r.Description = p.str("description")
	r.Kind = Kind(p.str("kind"))
	r.Paused = p.boolean("paused")
	if p.err != nil {
		return nil, p.err
	}
	if r.Kind == "" {
		return nil, bad("kind is missing: give one of %s", kindList())
	}
	if !validKind(r.Kind) {
		return nil, bad("kind %q is not a rule kind: give one of %s", r.Kind, kindList())
	}
	raw, ok := body["entities"]
	if !ok {
		return nil, bad("entities is missing: select the entities the rule watches as a subscription does, e.g. [{\"type\": \"WasteContainer\"}]")
	}
	sels, err := subscription.ParseSelectors(raw, ex)
	if err != nil {
		return nil, err
	}
	r.Entities = sels
	if s := p.str("q"); s != "" {
		if r.Q, err = qlang.ParseQ(s, ex.ExpandTerm); err != nil {
			return nil, within("q", err)
		}
	}
	if g, ok := body["geoQ"]; ok {
		if r.GeoQ, err = geo.ParseQueryJSON(g, ex.ExpandTerm); err != nil {
			return nil, within("geoQ", err)
		}
	}
	if a := p.str("attribute"); a != "" {
		r.Attribute = ex.ExpandTerm(a)
	} else if r.Kind != Silence && p.err == nil {
		return nil, bad("attribute is missing: name the numeric attribute the %s rule reads", r.Kind)
	}
	r.DatasetID = p.str("datasetId")
	if r.DatasetID != "" && ngsild.ValidURI(r.DatasetID) != nil {
		p.fail("datasetId %q is not a URI", r.DatasetID)
	}
	if s := p.str("severity"); s != "" {
		if !contains(Severities, s) {
			p.fail("severity %q: give one of %s", s, strings.Join(Severities, ", "))
		}
		r.Severity = s
	}
	if c := p.str("category"); c != "" {
		r.Category = c
	}
	r.SubCategory = p.str("subCategory")
	tz := p.str("timezone")
	if tz == "" {
		tz = DefaultTimezone
	}
	if r.Location, err = time.LoadLocation(tz); err != nil {
		p.fail("timezone %q is not a time zone name such as Europe/Brussels", tz)
	}
	if m, ok := p.get("message"); ok {
		obj, ok := m.(map[string]any)
		if !ok {
			p.fail("message must be an object of templates by language (nl, fr, en), not %s", ngsild.JSONKind(m))
		}
		for lang, v := range obj {
			s, ok := v.(string)
			switch {
			case !contains(Languages, lang):
				p.fail("message.%s: give templates in %s", lang, strings.Join(Languages, ", "))
			case !ok:
				p.fail("message.%s must be a string, not %s", lang, ngsild.JSONKind(v))
			default:
				if err := checkTemplate(s); err != nil {
					p.fail("message.%s: %v", lang, err)
				}
				r.Message[lang] = s
			}
		}
	}
	if p.err != nil {
		return nil, p.err
	}
	for _, k := range Kinds {
		if _, ok := body[string(k)]; ok && k != r.Kind {
			return nil, bad("%s is given but the rule's kind is %s: give the parameters of its kind only", k, r.Kind)
		}
	}
	spec, ok := body[string(r.Kind)].(map[string]any)
	if !ok {
		if _, given := body[string(r.Kind)]; given {
			return nil, bad("%s must be an object of the rule's parameters", r.Kind)
		}
		return nil, bad("%s is missing: give the %s rule's parameters (docs/ALARMS.md)", r.Kind, r.Kind)
	}
	sp := parser{body: spec, ex: ex, path: string(r.Kind) + ": "}
	switch r.Kind {
	case Threshold:
		r.Threshold = sp.threshold()
	case Rate:
		r.Rate = sp.rate()
	case Count:
		r.Count = sp.count()
	case Silence:
		r.Silence = sp.silence()
	case Leak:
		r.Leak = sp.leak()
	case Anomaly:
		r.Anomaly = sp.anomaly()
	}
	if err := sp.unknown(); err != nil {
		return nil, err // a misspelt parameter explains the rest
	}
	if sp.err != nil {
		return nil, sp.err
	}
	if err := p.unknownTop(); err != nil {
		return nil, err
	}
	r.selection = r.Selection()
	if len(r.Entities) == 1 && r.Q == nil && r.GeoQ == nil {
		sel := r.Entities[0]
		r.byIndex = sel.IDPattern == nil && ((sel.ID != "" && sel.Type == nil) || (sel.ID == "" && len(sel.Type.AnyOf()) > 0))
	}
	return r, nil
}

// Selection is a new query selecting the rule's entities (no page).
func (r *Rule) Selection() *store.Query {
	q := &store.Query{Q: r.Q, Geo: r.GeoQ}
	for _, s := range r.Entities {
		q.Selectors = append(q.Selectors, store.Selector{ID: s.ID, IDPattern: s.IDPattern, Type: s.Type})
	}
	return q
}

// Selects reports whether the rule watches e.
func (r *Rule) Selects(e *ngsild.Entity) bool {
	return r.selection.Match(e)
}

func (p *parser) threshold() *ThresholdSpec {
	s := &ThresholdSpec{Above: p.num("above"), Below: p.num("below"), ClearBelow: p.num("clearBelow"),
		ClearAbove: p.num("clearAbove"), For: p.duration("for")}
	switch {
	case p.err != nil:
	case (s.Above == nil) == (s.Below == nil):
		p.fail("give either above or below")
	case s.Above != nil && s.ClearAbove != nil, s.Below != nil && s.ClearBelow != nil:
		p.fail("with above give clearBelow, with below give clearAbove")
	case s.Above != nil && s.ClearBelow != nil && *s.ClearBelow > *s.Above:
		p.fail("clearBelow %v is above the threshold %v: the alert would clear while the value is still too high", *s.ClearBelow, *s.Above)
	case s.Below != nil && s.ClearAbove != nil && *s.ClearAbove < *s.Below:
		p.fail("clearAbove %v is below the threshold %v: the alert would clear while the value is still too low", *s.ClearAbove, *s.Below)
	}
	if s.Above != nil && s.ClearBelow == nil {
		s.ClearBelow = s.Above
	}
	if s.Below != nil && s.ClearAbove == nil {
		s.ClearAbove = s.Below
	}
	return s
}

func (p *parser) rate() *RateSpec {
	s := &RateSpec{Above: p.num("above"), Below: p.num("below"), Per: p.duration("per")}
	switch {
	case p.err != nil:
	case s.Above == nil && s.Below == nil:
		p.fail("give above (a rise per period), below (a drop, negative) or both")
	case s.Per == 0:
		p.fail("per is missing: the period the change is measured over, such as PT1H")
	case s.Above != nil && *s.Above < 0:
		p.fail("above %v is negative: any steady value would fire; give a rise, or below for a drop", *s.Above)
	case s.Below != nil && *s.Below > 0:
		p.fail("below %v is positive: any steady value would fire; give a negative drop, or above for a rise", *s.Below)
	}
	return s
}

func (p *parser) count() *CountSpec {
	s := &CountSpec{Above: p.num("above"), Below: p.num("below"), MoreThan: p.integer("moreThan"), Within: p.duration("within")}
	switch {
	case p.err != nil:
	case s.Above == nil && s.Below == nil:
		p.fail("give the range readings must stay in: above, below or both")
	case s.Above != nil && s.Below != nil && *s.Below > *s.Above:
		p.fail("below %v is above %v: every reading would be out of range", *s.Below, *s.Above)
	case s.MoreThan < 1:
		p.fail("moreThan must be at least 1 (with 0 a threshold rule says the same)")
	case s.Within == 0:
		p.fail("within is missing: the window readings are counted in, such as PT1H")
	}
	return s
}

func (p *parser) silence() *SilenceSpec {
	s := &SilenceSpec{After: p.duration("after"), AtLeast: p.duration("atLeast")}
	if f := p.num("factor"); f != nil {
		s.Factor = *f
	}
	switch {
	case p.err != nil:
	case s.After == 0 && s.Factor == 0:
		p.fail("give after (a fixed time, such as PT1H) or factor (times each entity's usual interval)")
	case s.After != 0 && s.Factor != 0:
		p.fail("give after or factor, not both")
	case s.Factor != 0 && s.Factor < 1.5:
		p.fail("factor %v: below 1.5 an entity on time would be called silent; use 3 or more", s.Factor)
	case s.After != 0 && s.After < 10*time.Second:
		p.fail("after %v: shorter than 10 seconds would fire between any two readings", s.After)
	}
	if s.Factor != 0 && s.AtLeast == 0 {
		s.AtLeast = time.Minute
	}
	return s
}

func (p *parser) leak() *LeakSpec {
	s := &LeakSpec{From: p.timeOfDay("from"), To: p.timeOfDay("to"), Nights: p.integer("nights")}
	if v := p.num("atMost"); v != nil {
		s.AtMost = *v
	}
	switch {
	case p.err != nil:
	case s.From == s.To:
		p.fail("from and to are the same time: give a night window such as 01:00 to 05:00")
	case s.Nights < 1:
		p.fail("nights must be at least 1")
	case s.Nights > 60:
		p.fail("nights %d: at most 60", s.Nights)
	case s.AtMost < 0:
		p.fail("atMost %v is negative: a flow never drops below it, so every meter would leak", s.AtMost)
	}
	return s
}

func (p *parser) anomaly() *AnomalySpec {
	s := &AnomalySpec{Method: p.str("method"), Weeks: p.integer("weeks"), Every: p.duration("every")}
	s.Sigma, s.MinRatio = 3, 1.2
	if v := p.num("sigma"); v != nil {
		s.Sigma = *v
	}
	if v := p.num("minRatio"); v != nil {
		s.MinRatio = *v
	}
	if s.Method == "" {
		s.Method = "sum"
	}
	if s.Weeks == 0 {
		s.Weeks = 4
	}
	if s.Every == 0 {
		s.Every = 15 * time.Minute
	}
	switch {
	case p.err != nil:
	case !contains([]string{"sum", "avg", "max", "delta"}, s.Method):
		p.fail("method %q: give sum, avg, max or delta (the rise of a cumulative meter)", s.Method)
	case s.Weeks < 2 || s.Weeks > 52:
		p.fail("weeks %d: compare with 2 to 52 earlier weeks", s.Weeks)
	case s.Sigma < 0:
		p.fail("sigma %v is negative: every day would be unusual", s.Sigma)
	case s.MinRatio < 1:
		p.fail("minRatio %v is below 1: a day below its usual mean would be called unusual", s.MinRatio)
	case s.Every < time.Minute:
		p.fail("every %v: check at most once a minute", s.Every)
	}
	return s
}

// parser reads members of one JSON object, keeping the first error.
type parser struct {
	body map[string]any
	ex   ngsild.Expander
	path string // prefix of member names in errors
	err  error
	seen map[string]bool
}

func (p *parser) fail(format string, args ...any) {
	if p.err == nil {
		p.err = bad("%s%s", p.path, fmt.Sprintf(format, args...))
	}
}

func (p *parser) get(name string) (any, bool) {
	if p.seen == nil {
		p.seen = map[string]bool{}
	}
	p.seen[name] = true
	v, ok := p.body[name]
	return v, ok && v != nil
}

func (p *parser) str(name string) string {
	v, ok := p.get(name)
	if !ok {
		return ""
	}
	s, ok := v.(string)
	if !ok {
		p.fail("%s must be a string, not %s", name, ngsild.JSONKind(v))
	}
	return s
}

func (p *parser) boolean(name string) bool {
	v, ok := p.get(name)
	if !ok {
		return false
	}
	b, ok := v.(bool)
	if !ok {
		p.fail("%s must be true or false, not %s", name, ngsild.JSONKind(v))
	}
	return b
}

func (p *parser) num(name string) *float64 {
	v, ok := p.get(name)
	if !ok {
		return nil
	}
	f, ok := number(v)
	if !ok || math.IsNaN(f) || math.IsInf(f, 0) {
		p.fail("%s must be a number, not %s", name, ngsild.JSONKind(v))
		return nil
	}
	return &f
}

func (p *parser) integer(name string) int {
	f := p.num(name)
	if f == nil {
		return 0
	}
	if *f != math.Trunc(*f) || math.Abs(*f) > 1e9 {
		p.fail("%s must be a whole number, not %v", name, *f)
		return 0
	}
	return int(*f)
}

// duration parses an ISO 8601 duration of fixed length (no months or years).
func (p *parser) duration(name string) time.Duration {
	s := p.str(name)
	if s == "" {
		return 0
	}
	d, err := temporal.ParseDuration(s)
	if err != nil {
		p.fail("%s: %v", name, ngsild.AsError(err).Detail)
		return 0
	}
	fixed, ok := d.Fixed()
	if !ok {
		p.fail("%s %q: give days, hours, minutes or seconds (months and years have no fixed length)", name, s)
		return 0
	}
	if fixed <= 0 {
		p.fail("%s %q must be longer than zero", name, s)
	}
	return fixed
}

// timeOfDay parses "HH:MM" into the time since midnight.
func (p *parser) timeOfDay(name string) time.Duration {
	s := p.str(name)
	if s == "" {
		p.fail("%s is missing: give a local time of day such as 01:00", name)
		return 0
	}
	t, err := time.Parse("15:04", s)
	if err != nil {
		p.fail("%s %q is not a time of day such as 01:00 (24-hour HH:MM)", name, s)
		return 0
	}
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute
}

// unknown rejects members the parser did not read: a misspelt parameter
// must not be silently ignored.
func (p *parser) unknown() error {
	for k := range p.body {
		if !p.seen[k] {
			return bad("%s%s is not a parameter of this rule kind (docs/ALARMS.md)", p.path, k)
		}
	}
	return nil
}

// topMembers are the members of a rule body besides its kind's parameters.
var topMembers = map[string]bool{"@context": true, "entities": true, "geoQ": true, "status": true,
	"createdAt": true, "modifiedAt": true, "type": true}

func (p *parser) unknownTop() error {
	for k := range p.body {
		if !p.seen[k] && !topMembers[k] && !validKind(Kind(k)) {
			return bad("%s is not a member of a rule (docs/ALARMS.md)", k)
		}
	}
	return nil
}

// number is v as a number: decoded JSON, or Go numbers in entities built
// in Go.
func number(v any) (float64, bool) { return codec.ToFloat(v) }

func bad(format string, args ...any) error {
	return ngsild.Errorf(ngsild.BadRequestData, format, args...)
}

func within(path string, err error) error {
	if e := ngsild.AsError(err); e != nil {
		return ngsild.Errorf(e.Type, "%s: %s", path, e.Detail)
	}
	return bad("%s: %v", path, err)
}

func validKind(k Kind) bool { return contains(Kinds, k) }

func kindList() string {
	s := make([]string, len(Kinds))
	for i, k := range Kinds {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

func contains[T comparable](list []T, v T) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// placeholders are what a message template may refer to.
var placeholders = []string{"entity", "name", "value", "attribute", "rule", "since", "threshold", "duration"}

var placeholderRE = regexp.MustCompile(`\{([^{}]*)\}`)

func checkTemplate(s string) error {
	for _, m := range placeholderRE.FindAllStringSubmatch(s, -1) {
		if !contains(placeholders, m[1]) {
			return fmt.Errorf("{%s} is not a placeholder: use {%s}", m[1], strings.Join(placeholders, "}, {"))
		}
	}
	return nil
}

// Render fills a message template: placeholders are replaced by vars,
// unknown ones are left as they are.
func Render(tmpl string, vars map[string]string) string {
	return placeholderRE.ReplaceAllStringFunc(tmpl, func(m string) string {
		if v, ok := vars[m[1:len(m)-1]]; ok {
			return v
		}
		return m
	})
}

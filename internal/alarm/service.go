package alarm

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/zenne-city/zenne/internal/bus"
	"github.com/zenne-city/zenne/internal/core"
	"github.com/zenne-city/zenne/internal/jsonld"
	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store"
)

// Record kinds (store.Records).
const (
	kindRule   = "alarm.rule"   // id: the rule id; doc: storedRule
	kindState  = "alarm.state"  // id: the rule id; doc: savedState
	kindCursor = "alarm.cursor" // tenant "", id "bus": the last change evaluated
)

// Options tune the service.
type Options struct {
	// Lease, when several instances share one store and bus, makes this
	// service evaluate only while it holds the store's alarm lease. Nil:
	// this instance evaluates.
	Lease    store.Leaser
	Instance string        // this instance as the lease's holder (default: random)
	LeaseTTL time.Duration // default 10 s
	// Tick is how often time-based conditions are checked: thresholds held
	// for their duration, count windows, silence (default 1 s).
	Tick time.Duration
	// Reload is how often rules changed on other instances are read
	// (default 2 s).
	Reload time.Duration
	// ReportEvery is how often an open alert is updated with the latest
	// value while its condition lasts (default 1 minute).
	ReportEvery time.Duration
	// SaveEvery is how often changed rule states and the bus position are
	// saved (default 10 s). After a crash the evaluation replays the changes
	// since, so a longer interval costs a longer replay, never a result.
	SaveEvery time.Duration
	Log       *slog.Logger
	Registry  prometheus.Registerer // nil: metrics are not registered
	Now       func() time.Time
}

func (o *Options) defaults() {
	if o.Instance == "" {
		var b [8]byte
		rand.Read(b[:])
		o.Instance = hex.EncodeToString(b[:])
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 10 * time.Second
	}
	if o.Tick <= 0 {
		o.Tick = time.Second
	}
	if o.Reload <= 0 {
		o.Reload = 2 * time.Second
	}
	if o.ReportEvery <= 0 {
		o.ReportEvery = time.Minute
	}
	if o.SaveEvery <= 0 {
		o.SaveEvery = 10 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Status is what a rule has done, kept with its state.
type Status struct {
	Evaluations int64     `json:"evaluations"`
	Opened      int64     `json:"alertsOpened"`
	Cleared     int64     `json:"alertsCleared"`
	Active      int       `json:"alertsActive"` // counted from the states when shown or saved
	LastFired   time.Time `json:"lastFired,omitzero"`
	Errors      int64     `json:"errors"`
	// LastError says what went wrong on which entity, so the rule's owner
	// can fix the rule or the data; other entities and rules go on.
	LastError       string    `json:"lastError,omitempty"`
	LastErrorEntity string    `json:"lastErrorEntity,omitempty"`
	LastErrorAt     time.Time `json:"lastErrorAt,omitzero"`
}

// RuleInfo is a rule as the API shows it: the body as given, with its
// times and status.
type RuleInfo struct {
	Tenant     string
	ID         string
	Doc        map[string]any // as given (compact names, @context), with id
	CreatedAt  time.Time
	ModifiedAt time.Time
	Status     Status
}

// storedRule is a rule record.
type storedRule struct {
	Doc        json.RawMessage `json:"rule"`
	CreatedAt  time.Time       `json:"createdAt"`
	ModifiedAt time.Time       `json:"modifiedAt"`
}

// savedState is a rule's state record.
type savedState struct {
	// Kind and Attribute are what the states were computed for: a rule
	// whose kind or attribute changed starts afresh. Version is the rule's
	// ModifiedAt then.
	Kind      Kind              `json:"kind"`
	Attribute string            `json:"attribute,omitempty"`
	Version   time.Time         `json:"version"`
	States    map[string]*State `json:"states"`
	Status    Status            `json:"status"`
	// Next is when a leak or anomaly rule is checked next.
	Next time.Time `json:"next,omitzero"`
}

// Service keeps the rules of every tenant and evaluates them.
type Service struct {
	st     store.Store
	bus    bus.Bus
	broker *core.Broker
	res    *jsonld.Resolver
	opts   Options
	log    *slog.Logger
	m      *metrics

	mu         sync.Mutex
	rules      map[ruleKey]*running
	index      map[string]*tenantIndex // tenant -> rules by type and id
	indexStale bool                    // rules changed: rebuild index before the next evaluation

	dropped []ruleKey // deleted rules whose saved state is to be deleted (under mu)

	active atomic.Bool // this instance evaluates
	loadMu sync.Mutex  // one loadRules at a time

	base    context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	started bool
}

type ruleKey struct{ tenant, id string }

// running is a rule with its evaluation state (under Service.mu).
type running struct {
	tenant  string
	rule    *Rule
	stored  storedRule
	raw     []byte // the record as stored, to notice changes
	states  map[string]*State
	status  Status
	next    time.Time // leak and anomaly: the next check
	from    uint64    // changes up to this one came before the rule existed
	dirty   bool      // states or status not saved
	removed bool
}

// New loads the rules; Start evaluates them.
func New(ctx context.Context, st store.Store, b bus.Bus, broker *core.Broker, res *jsonld.Resolver, opts Options) (*Service, error) {
	opts.defaults()
	s := &Service{st: st, bus: b, broker: broker, res: res, opts: opts, log: opts.Log,
		rules: map[ruleKey]*running{}, index: map[string]*tenantIndex{}}
	s.m = newMetrics(s, opts.Registry)
	if err := s.loadRules(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Rules lists a tenant's rules, sorted by id.
func (s *Service) Rules(ctx context.Context, tenant string) ([]*RuleInfo, error) {
	recs, err := s.st.ListRecords(ctx, kindRule, tenant, false)
	if err != nil {
		return nil, err
	}
	out := make([]*RuleInfo, 0, len(recs))
	for _, rec := range recs {
		info, err := s.info(ctx, rec)
		if err != nil {
			s.log.Warn("alarms: a stored rule does not decode; skipped", "tenant", tenant, "rule", rec.ID, "err", err)
			continue
		}
		out = append(out, info)
	}
	return out, nil
}

// Rule returns one rule; ResourceNotFound if there is none.
func (s *Service) Rule(ctx context.Context, tenant, id string) (*RuleInfo, error) {
	doc, err := s.st.GetRecord(ctx, kindRule, tenant, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ngsild.Errorf(ngsild.ResourceNotFound, "no rule %q in this tenant", id)
	}
	if err != nil {
		return nil, err
	}
	return s.info(ctx, store.Record{Kind: kindRule, Tenant: tenant, ID: id, Doc: doc})
}

func (s *Service) info(ctx context.Context, rec store.Record) (*RuleInfo, error) {
	var sr storedRule
	if err := json.Unmarshal(rec.Doc, &sr); err != nil {
		return nil, err
	}
	var doc map[string]any
	if err := json.Unmarshal(sr.Doc, &doc); err != nil {
		return nil, err
	}
	info := &RuleInfo{Tenant: rec.Tenant, ID: rec.ID, Doc: doc, CreatedAt: sr.CreatedAt, ModifiedAt: sr.ModifiedAt}
	s.mu.Lock()
	rt := s.rules[ruleKey{rec.Tenant, rec.ID}]
	if rt != nil && s.evaluating() {
		info.Status = rt.currentStatus()
	}
	s.mu.Unlock()
	if rt == nil || !s.evaluating() {
		// Another instance evaluates: its saved status.
		if b, err := s.st.GetRecord(ctx, kindState, rec.Tenant, rec.ID); err == nil {
			var ss savedState
			if json.Unmarshal(b, &ss) == nil {
				info.Status = ss.Status
			}
		}
	}
	return info, nil
}

// CreateRule parses and stores a new rule; body holds its @context (the
// API puts the request's there). A rule without an id gets one. A rule
// whose id is taken is AlreadyExists.
func (s *Service) CreateRule(ctx context.Context, tenant string, body map[string]any) (*RuleInfo, error) {
	if _, ok := body["id"]; !ok {
		var b [6]byte
		rand.Read(b[:])
		body["id"] = "rule-" + hex.EncodeToString(b[:])
	}
	r, err := s.parse(ctx, body)
	if err != nil {
		return nil, err
	}
	if _, err := s.st.GetRecord(ctx, kindRule, tenant, r.ID); err == nil {
		return nil, ngsild.Errorf(ngsild.AlreadyExists, "a rule %q exists in this tenant: choose another id, or PUT to replace it", r.ID)
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if err := s.checkSense(ctx, tenant, r); err != nil {
		return nil, err
	}
	now := s.opts.Now().UTC()
	return s.put(ctx, tenant, r, storedRule{CreatedAt: now, ModifiedAt: now})
}

// ReplaceRule replaces a rule with body (its id is the path's).
func (s *Service) ReplaceRule(ctx context.Context, tenant, id string, body map[string]any) (*RuleInfo, error) {
	old, err := s.Rule(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	if v, ok := body["id"]; ok && v != id {
		return nil, ngsild.Errorf(ngsild.BadRequestData, "the body's id %v is not the rule's (%s)", v, id)
	}
	body["id"] = id
	r, err := s.parse(ctx, body)
	if err != nil {
		return nil, err
	}
	if err := s.checkSense(ctx, tenant, r); err != nil {
		return nil, err
	}
	return s.put(ctx, tenant, r, storedRule{CreatedAt: old.CreatedAt, ModifiedAt: s.opts.Now().UTC()})
}

// PatchRule merges patch into a rule (JSON merge patch: null removes a
// member), e.g. {"paused": true}.
func (s *Service) PatchRule(ctx context.Context, tenant, id string, patch map[string]any) (*RuleInfo, error) {
	old, err := s.Rule(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	if v, ok := patch["id"]; ok && v != id {
		return nil, ngsild.Errorf(ngsild.BadRequestData, "a rule's id cannot change (%s)", id)
	}
	doc := old.Doc
	for k, v := range patch {
		if v == nil {
			delete(doc, k)
		} else {
			doc[k] = v
		}
	}
	r, err := s.parse(ctx, doc)
	if err != nil {
		return nil, err
	}
	if err := s.checkSense(ctx, tenant, r); err != nil {
		return nil, err
	}
	return s.put(ctx, tenant, r, storedRule{CreatedAt: old.CreatedAt, ModifiedAt: s.opts.Now().UTC()})
}

// DeleteRule deletes a rule and its state; the alerts it left open are
// cleared by the evaluating instance.
func (s *Service) DeleteRule(ctx context.Context, tenant, id string) error {
	err := s.st.DeleteRecord(ctx, kindRule, tenant, id)
	if errors.Is(err, store.ErrNotFound) {
		return ngsild.Errorf(ngsild.ResourceNotFound, "no rule %q in this tenant", id)
	}
	if err != nil {
		return err
	}
	s.refresh(ctx, tenant, id)
	return nil
}

func (s *Service) put(ctx context.Context, tenant string, r *Rule, sr storedRule) (*RuleInfo, error) {
	for _, k := range shownOnly {
		delete(r.Doc, k)
	}
	doc, err := json.Marshal(r.Doc)
	if err != nil {
		return nil, ngsild.Errorf(ngsild.BadRequestData, "the rule does not encode as JSON: %v", err)
	}
	sr.Doc = doc
	rec, err := json.Marshal(sr)
	if err != nil {
		return nil, err
	}
	if err := s.st.PutRecord(ctx, kindRule, tenant, r.ID, rec); err != nil {
		return nil, err
	}
	s.refresh(ctx, tenant, r.ID)
	return s.info(ctx, store.Record{Kind: kindRule, Tenant: tenant, ID: r.ID, Doc: rec})
}

// shownOnly are members of a rule the API shows but does not store: a
// client may send a rule back as it got it.
var shownOnly = []string{"status", "createdAt", "modifiedAt"}

// refresh reads one rule after this instance created, changed or deleted
// it, so that a change written after the call returns is evaluated by the
// new rule here (other instances see it at their next reload). It reads
// the rule back rather than installing the one just written: under loadMu
// the last refresh installs what the store holds last, whatever order two
// concurrent changes of one rule finish in.
func (s *Service) refresh(ctx context.Context, tenant, id string) {
	if err := s.loadRule(ctx, tenant, id); err != nil {
		s.log.Warn("alarms: reading a rule", "rule", id, "err", err)
	}
}

// loadRule reads one rule (and, when new here, its saved state) into
// s.rules, or marks it removed when it no longer exists.
func (s *Service) loadRule(ctx context.Context, tenant, id string) error {
	s.loadMu.Lock()
	defer s.loadMu.Unlock()
	k := ruleKey{tenant, id}
	doc, err := s.st.GetRecord(ctx, kindRule, tenant, id)
	if errors.Is(err, store.ErrNotFound) {
		s.mu.Lock()
		if rt := s.rules[k]; rt != nil && !rt.removed {
			rt.removed, s.indexStale = true, true
		}
		s.mu.Unlock()
		return nil
	}
	if err != nil {
		return err
	}
	fresh, err := s.compile(ctx, store.Record{Kind: kindRule, Tenant: tenant, ID: id, Doc: doc})
	if err != nil {
		return err
	}
	s.mu.Lock()
	_, known := s.rules[k]
	s.mu.Unlock()
	var saved map[ruleKey]savedState
	if !known {
		if saved, err = s.readStates(ctx, []ruleKey{k}); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.install(k, fresh, saved)
	s.mu.Unlock()
	return nil
}

// compile decodes and parses a rule record.
func (s *Service) compile(ctx context.Context, rec store.Record) (*running, error) {
	var sr storedRule
	var body map[string]any
	if err := json.Unmarshal(rec.Doc, &sr); err != nil {
		return nil, fmt.Errorf("the stored rule %s does not decode: %w", rec.ID, err)
	}
	if err := json.Unmarshal(sr.Doc, &body); err != nil || body == nil {
		return nil, fmt.Errorf("the stored rule %s does not decode: %v", rec.ID, err)
	}
	r, err := s.parse(ctx, body)
	if err != nil {
		return nil, fmt.Errorf("the stored rule %s does not parse: %w", rec.ID, err)
	}
	return &running{tenant: rec.Tenant, rule: r, stored: sr, raw: rec.Doc, states: map[string]*State{}}, nil
}

// install puts a compiled rule in s.rules (under mu): a changed rule keeps
// its states when it watches the same attribute the same way, a new one
// starts from its saved state, or else from now.
func (s *Service) install(k ruleKey, rt *running, saved map[ruleKey]savedState) {
	if old := s.rules[k]; old != nil && !old.removed {
		rt.status, rt.next, rt.from = old.status, old.next, old.from
		if old.rule.Kind == rt.rule.Kind && old.rule.Attribute == rt.rule.Attribute && old.rule.DatasetID == rt.rule.DatasetID {
			rt.states = old.states
		}
		rt.dirty = true
	} else if ss, ok := saved[k]; ok {
		rt.install(ss)
	} else {
		// A new rule judges what happens from now on, even when the
		// evaluation is behind on the bus.
		rt.from = s.bus.Last()
	}
	s.rules[k] = rt
	s.indexStale = true
}

// parse resolves the body's @context and parses the rule.
func (s *Service) parse(ctx context.Context, body map[string]any) (*Rule, error) {
	jctx, err := s.res.Resolve(ctx, body["@context"])
	if err != nil {
		return nil, jsonld.AsNGSILDError(err)
	}
	return Parse(body, jctx)
}

// checkSense rejects a rule that names an attribute no entity of the
// tenant has, or that would fire on every entity it selects right now.
func (s *Service) checkSense(ctx context.Context, tenant string, r *Rule) error {
	if r.Attribute != "" {
		attrs, err := s.broker.Attributes(ctx, tenant)
		if err != nil && !errors.Is(err, store.ErrNoTenant) && !ngsild.IsType(err, ngsild.NonexistentTenant) {
			return err
		}
		found := false
		for _, a := range attrs {
			if a.Name == r.Attribute {
				found = true
				break
			}
		}
		if !found {
			return ngsild.Errorf(ngsild.BadRequestData, "attribute %s: no entity of this tenant has it; check the name and the @context (the rule reads expanded names)", r.Attribute)
		}
	}
	if r.Kind != Threshold || r.Threshold.For > 0 {
		return nil
	}
	// A threshold every selected entity is beyond now would open an alert
	// on each of them at once and keep them open.
	sel := r.Selection()
	sel.Limit = 1000
	res, err := s.broker.Query(ctx, tenant, sel)
	if err != nil {
		return err
	}
	beyond, with := 0, 0
	for _, e := range res.Entities {
		v, ok := r.reading(e)
		if !ok {
			continue
		}
		with++
		st := &State{}
		if r.observeThreshold(st, v, time.Now()).Step == Open {
			beyond++
		}
	}
	if with >= 5 && beyond == with {
		return ngsild.Errorf(ngsild.BadRequestData, "the rule would fire on every entity it selects (%d of %d are beyond the threshold now): raise the threshold, add a duration (for) or narrow the selection", beyond, with)
	}
	return nil
}

// reading is the rule's attribute value of e, if it is a number.
func (r *Rule) reading(e *ngsild.Entity) (float64, bool) {
	a := e.Instance(r.Attribute, r.DatasetID)
	if a == nil {
		return 0, false
	}
	return number(a.Value)
}

// loadRules reads every rule from the store into s.rules. A new rule
// starts from its saved state (another instance may have evaluated it), a
// changed one keeps its states when it watches the same attribute the same
// way, a deleted one is marked for the evaluation to clear its alerts.
func (s *Service) loadRules(ctx context.Context) error {
	s.loadMu.Lock()
	defer s.loadMu.Unlock()
	recs, err := s.st.ListRecords(ctx, kindRule, "", true)
	if err != nil {
		return fmt.Errorf("alarms: reading rules: %w", err)
	}
	s.mu.Lock()
	known := make(map[ruleKey][]byte, len(s.rules))
	for k, rt := range s.rules {
		known[k] = rt.raw
	}
	s.mu.Unlock()
	fresh := map[ruleKey]*running{}
	var news []ruleKey
	for _, rec := range recs {
		k := ruleKey{rec.Tenant, rec.ID}
		raw, ok := known[k]
		if ok && bytes.Equal(raw, rec.Doc) {
			continue
		}
		rt, err := s.compile(ctx, rec)
		if err != nil {
			s.log.Warn("alarms: a stored rule is skipped", "tenant", rec.Tenant, "rule", rec.ID, "err", err)
			continue
		}
		fresh[k] = rt
		if !ok {
			news = append(news, k)
		}
	}
	saved, err := s.readStates(ctx, news)
	if err != nil {
		return err
	}
	present := make(map[ruleKey]bool, len(recs))
	for _, rec := range recs {
		present[ruleKey{rec.Tenant, rec.ID}] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, rt := range fresh {
		s.install(k, rt, saved)
	}
	for k, rt := range s.rules {
		if !present[k] && !rt.removed {
			rt.removed, s.indexStale = true, true
		}
	}
	return nil
}

// readStates reads the saved states of rules: one by one for a few, all
// at once for many (the first load).
func (s *Service) readStates(ctx context.Context, keys []ruleKey) (map[ruleKey]savedState, error) {
	out := make(map[ruleKey]savedState, len(keys))
	decode := func(k ruleKey, b []byte) {
		var ss savedState
		if err := json.Unmarshal(b, &ss); err != nil {
			s.log.Warn("alarms: a rule's saved state does not decode; starting afresh", "rule", k.id, "err", err)
			return
		}
		out[k] = ss
	}
	if len(keys) > 20 {
		recs, err := s.st.ListRecords(ctx, kindState, "", true)
		if err != nil {
			return nil, fmt.Errorf("alarms: reading rule states: %w", err)
		}
		for _, rec := range recs {
			decode(ruleKey{rec.Tenant, rec.ID}, rec.Doc)
		}
		return out, nil
	}
	for _, k := range keys {
		b, err := s.st.GetRecord(ctx, kindState, k.tenant, k.id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("alarms: reading the state of rule %s: %w", k.id, err)
		}
		decode(k, b)
	}
	return out, nil
}

// install takes a saved state (under mu).
func (rt *running) install(ss savedState) {
	if ss.States != nil && ss.Kind == rt.rule.Kind && ss.Attribute == rt.rule.Attribute {
		rt.states = ss.States
	} else {
		rt.states = map[string]*State{}
	}
	rt.status, rt.next = ss.Status, ss.Next
}

// sortedRules lists running rules in a stable order (under mu).
func (s *Service) sortedRules() []*running {
	out := make([]*running, 0, len(s.rules))
	for _, rt := range s.rules {
		out = append(out, rt)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].tenant != out[j].tenant {
			return out[i].tenant < out[j].tenant
		}
		return out[i].rule.ID < out[j].rule.ID
	})
	return out
}

package alarm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store"
)

// leaseName is the store lease of the instance that evaluates.
const leaseName = "alarms"

// tenantIndex narrows a change to the rules that may select its entity: by
// entity id, by type, and the rest (id patterns, type expressions) that
// see every change of the tenant.
type tenantIndex struct {
	byID   map[string][]*running
	byType map[string][]*running
	rest   []*running
}

// rebuildIndex indexes the running rules (under mu).
func (s *Service) rebuildIndex() {
	idx := map[string]*tenantIndex{}
	for _, rt := range s.sortedRules() {
		if rt.removed || rt.rule.Paused {
			continue
		}
		ix := idx[rt.tenant]
		if ix == nil {
			ix = &tenantIndex{byID: map[string][]*running{}, byType: map[string][]*running{}}
			idx[rt.tenant] = ix
		}
		// A rule goes in one place per selector; the same rule reached
		// twice for one change is skipped by candidates.
		for _, sel := range rt.rule.Entities {
			switch {
			case sel.ID != "":
				ix.byID[sel.ID] = append(ix.byID[sel.ID], rt)
			case sel.IDPattern == nil && len(sel.Type.AnyOf()) > 0:
				for _, t := range sel.Type.AnyOf() {
					ix.byType[t] = append(ix.byType[t], rt)
				}
			default:
				ix.rest = append(ix.rest, rt)
			}
		}
	}
	s.index = idx
}

// candidates calls visit once for each rule that may select e (under mu).
func (ix *tenantIndex) candidates(e *ngsild.Entity, visit func(*running)) {
	var seen map[*running]bool
	one := func(list []*running) {
		for _, rt := range list {
			if len(rt.rule.Entities) > 1 {
				if seen == nil {
					seen = map[*running]bool{}
				}
				if seen[rt] {
					continue
				}
				seen[rt] = true
			}
			visit(rt)
		}
	}
	one(ix.byID[e.ID])
	for _, t := range e.Types {
		one(ix.byType[t])
	}
	one(ix.rest)
}

// evaluating reports whether this instance evaluates the rules now.
func (s *Service) evaluating() bool { return s.active.Load() }

// Start evaluates the rules in the background until Close: at once without
// a lease, else while this instance holds it.
func (s *Service) Start() {
	s.base, s.cancel = context.WithCancel(context.Background())
	s.started = true
	s.wg.Go(s.reloadLoop)
	if s.opts.Lease == nil {
		s.wg.Go(func() { s.run(s.base) })
		return
	}
	s.wg.Go(s.leaseLoop)
}

// Close stops evaluation and saves what it has not saved.
func (s *Service) Close() error {
	if !s.started {
		return nil
	}
	s.cancel()
	s.wg.Wait()
	return nil
}

func (s *Service) reloadLoop() {
	t := time.NewTicker(s.opts.Reload)
	defer t.Stop()
	for {
		select {
		case <-s.base.Done():
			return
		case <-t.C:
		}
		if err := s.loadRules(s.base); err != nil && s.base.Err() == nil {
			s.log.Warn("alarms: reading rules", "err", err)
		}
	}
}

// leaseLoop runs the evaluation while this instance holds the lease.
func (s *Service) leaseLoop() {
	var stop func()
	store.HoldLease(s.base, s.opts.Lease, leaseName, s.opts.Instance, s.opts.LeaseTTL, s.log, "the alarm rules",
		func() bool { stop = s.goRun(); return true }, func(bool) { stop() })
}

// goRun runs the evaluation in the background; the function it returns
// stops it and waits until it has saved.
func (s *Service) goRun() func() {
	ctx, cancel := context.WithCancel(s.base)
	done := make(chan struct{})
	go func() { defer close(done); s.run(ctx) }()
	return func() { cancel(); <-done }
}

// pending is an alert write decided by an evaluation.
type pending struct {
	tenant string
	rt     *running
	entity string
	step   Step
	out    Outcome
	alert  string
	e      *ngsild.Entity // the entity's state when known
}

// run evaluates until ctx ends: changes from the bus as they come, the
// clock every Tick, states saved every SaveEvery.
func (s *Service) run(ctx context.Context) {
	s.active.Store(true)
	defer s.active.Store(false)
	cursor, err := s.loadCursor(ctx)
	if err == nil {
		err = s.reloadStates(ctx)
	}
	for err != nil {
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("alarms: reading the saved position and states; retrying", "err", err)
		time.Sleep(time.Second)
		if cursor, err = s.loadCursor(ctx); err == nil {
			err = s.reloadStates(ctx)
		}
	}
	var retry []pending
	lastTick, lastSave := time.Now(), time.Now()
	// Saving (encoding and writing states) runs beside the evaluation, one
	// snapshot at a time; the final one is saved before run returns.
	// idle holds a token while the saver waits: a snapshot is taken only
	// then, since taking one marks the states it copies as saved.
	saves, idle := make(chan *snapshot), make(chan struct{}, 1)
	idle <- struct{}{}
	var saver sync.WaitGroup
	saver.Go(func() {
		for snap := range saves {
			s.persist(ctx, snap)
			idle <- struct{}{}
		}
	})
	defer func() {
		close(saves)
		saver.Wait()
		sctx, c := context.WithTimeout(context.Background(), 10*time.Second)
		defer c()
		s.persist(sctx, s.snapshot(cursor))
	}()
	var sched sync.WaitGroup
	sched.Go(func() { s.schedule(ctx) })
	defer sched.Wait()
	for ctx.Err() == nil {
		rctx, cancel := context.WithTimeout(ctx, s.opts.Tick)
		cs, err := s.bus.Read(rctx, cursor, 1000)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, store.ErrChangesGone):
			// The log was trimmed past the saved position (a long stop):
			// go on from now; the clock-based rules catch up by themselves.
			s.log.Warn("alarms: changes since the saved position are gone; evaluating from the latest", "from", cursor)
			cursor = s.bus.Last()
		case err != nil && !errors.Is(err, context.DeadlineExceeded):
			s.log.Warn("alarms: reading the bus", "err", err)
			time.Sleep(100 * time.Millisecond)
		}
		var todo []pending
		if len(cs) > 0 {
			todo = s.evaluate(cs)
			cursor = cs[len(cs)-1].Seq
			s.m.changes.Add(float64(len(cs)))
		}
		if now := time.Now(); now.Sub(lastTick) >= s.opts.Tick {
			lastTick = now
			todo = append(todo, s.tick(s.opts.Now())...)
		}
		retry = s.write(ctx, append(retry, todo...))
		if time.Since(lastSave) >= s.opts.SaveEvery && len(retry) == 0 {
			select {
			case <-idle:
				saves <- s.snapshot(cursor)
				lastSave = time.Now()
			default: // the last one is still being written
			}
		}
	}
}

// evaluate applies changes to the rules that select their entities and
// returns the alert writes they decide.
func (s *Service) evaluate(cs []store.Change) []pending {
	var out []pending
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.indexStale {
		s.rebuildIndex()
		s.indexStale = false
	}
	for i := range cs {
		c := &cs[i]
		if c.After == nil {
			continue
		}
		if slices.Contains(c.After.Types, AlertType) {
			continue // alerts do not raise alerts
		}
		ix := s.index[c.Tenant]
		if ix == nil {
			continue
		}
		ix.candidates(c.After, func(rt *running) {
			if rt.removed || rt.rule.Paused {
				return
			}
			if p, ok := s.observe(rt, c); ok {
				out = append(out, p)
			}
		})
	}
	return out
}

// observe evaluates one change for one rule (under mu).
func (s *Service) observe(rt *running, c *store.Change) (pending, bool) {
	r := rt.rule
	if r.Kind == Leak || r.Kind == Anomaly {
		return pending{}, false // on the clock, from history
	}
	touched := r.Attribute == ""
	if !touched {
		for _, a := range c.Attrs {
			if a.Name == r.Attribute && a.Kind != store.AttrDeleted {
				touched = true
				break
			}
		}
	}
	if !touched || c.Seq <= rt.from || (!r.byIndex && !r.Selects(c.After)) {
		return pending{}, false
	}
	st := rt.states[c.ID]
	if st == nil {
		st = &State{}
		rt.states[c.ID] = st
	}
	if c.Seq <= st.Seq {
		return pending{}, false // evaluated before a restart
	}
	st.Seq = c.Seq
	rt.dirty = true
	rt.status.Evaluations++
	s.m.evaluations.Inc()
	at := c.At
	v := 0.0
	if r.Attribute != "" {
		a := c.After.Instance(r.Attribute, r.DatasetID)
		if a == nil {
			return pending{}, false
		}
		var ok bool
		if v, ok = number(a.Value); !ok {
			s.fail(rt, c.ID, fmt.Sprintf("%s is %s, not a number", r.Attribute, ngsild.JSONKind(a.Value)))
			return pending{}, false
		}
		if !a.ObservedAt.IsZero() {
			at = a.ObservedAt
		}
	}
	o := r.Observe(st, v, at)
	if o.Step == None || (o.Step == Stay && time.Duration(at.Sub(st.Reported)) < s.opts.ReportEvery) {
		return pending{}, false
	}
	return s.decided(rt, c.ID, st, o, c.After), true
}

// decided turns an outcome into an alert write and updates the status
// (under mu).
func (s *Service) decided(rt *running, entity string, st *State, o Outcome, e *ngsild.Entity) pending {
	p := pending{tenant: rt.tenant, rt: rt, entity: entity, step: o.Step, out: o, e: e}
	switch o.Step {
	case Open:
		st.Alert, st.Opened = AlertID(rt.rule.ID, entity, o.At), o.At
		rt.status.Opened++
		rt.status.LastFired = o.At
		s.m.opened.Inc()
	case Clear:
		rt.status.Cleared++
		s.m.cleared.Inc()
	}
	p.alert = st.Alert
	st.Reported = o.At
	if o.Step == Clear {
		st.Alert, st.Opened, st.Reported = "", time.Time{}, time.Time{}
	}
	rt.dirty = true
	return p
}

func (s *Service) fail(rt *running, entity, msg string) {
	rt.status.Errors++
	rt.status.LastError, rt.status.LastErrorEntity, rt.status.LastErrorAt = msg, entity, s.opts.Now().UTC()
	rt.dirty = true
	s.m.errors.Inc()
}

// tick evaluates the passing of time for every rule that depends on it, and
// clears the alerts of rules that were deleted (under mu).
func (s *Service) tick(now time.Time) []pending {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []pending
	for k, rt := range s.rules {
		if rt.removed {
			for id, st := range rt.states {
				if st.Firing && st.Alert != "" {
					st.Firing = false
					out = append(out, s.decided(rt, id, st, Outcome{Step: Clear, At: now, Value: st.Value}, nil))
				}
			}
			delete(s.rules, k)
			s.dropped = append(s.dropped, k)
			continue
		}
		r := rt.rule
		if r.Paused {
			continue
		}
		if r.Kind != Silence && r.Kind != Count && (r.Kind != Threshold || r.Threshold.For == 0) {
			continue
		}
		for id, st := range rt.states {
			if o := r.Tick(st, now); o.Step != None {
				out = append(out, s.decided(rt, id, st, o, nil))
			}
		}
	}
	return out
}

// write writes the alerts decided and returns those that failed, to retry.
func (s *Service) write(ctx context.Context, ps []pending) []pending {
	if len(ps) == 0 {
		return nil
	}
	var failed []pending
	byTenant := map[string][]pending{}
	for _, p := range ps {
		byTenant[p.tenant] = append(byTenant[p.tenant], p)
	}
	for tenant, list := range byTenant {
		if err := s.writeTenant(ctx, tenant, list); err != nil {
			if ctx.Err() == nil {
				s.log.Warn("alarms: writing alerts; retrying", "tenant", tenant, "alerts", len(list), "err", err)
				s.m.writeErrors.Inc()
			}
			failed = append(failed, list...)
		}
	}
	if len(failed) > 10000 {
		s.log.Error("alarms: too many alert writes waiting; dropping the oldest", "dropped", len(failed)-10000)
		failed = failed[len(failed)-10000:]
	}
	return failed
}

func (s *Service) writeTenant(ctx context.Context, tenant string, ps []pending) error {
	var creates, updates []*ngsild.Entity
	for _, p := range ps {
		e := p.e
		if e == nil {
			got, err := s.st.Get(ctx, tenant, p.entity)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			if got == nil {
				got = &ngsild.Entity{ID: p.entity}
			}
			e = got
		}
		attr := ""
		if p.rt.rule.Attribute != "" {
			attr = compactName(p.rt.rule)
		}
		switch p.step {
		case Open:
			creates = append(creates, p.rt.rule.openedAlert(p.alert, e, p.out, attr))
		case Stay:
			frag := &ngsild.Entity{ID: p.alert, Types: []string{AlertType}, Attrs: map[string][]*ngsild.Attribute{}}
			p.rt.rule.report(frag, e, p.out, attr)
			updates = append(updates, frag)
		case Clear:
			updates = append(updates, p.rt.rule.clearedAlert(p.alert, e, p.out, attr))
		}
	}
	if len(creates) > 0 {
		res, err := s.broker.BatchCreate(ctx, tenant, creates)
		if err != nil {
			return err
		}
		for _, be := range res.Errors {
			// Opened before a restart already: the same id.
			if !ngsild.IsType(be.Err, ngsild.AlreadyExists) {
				s.log.Warn("alarms: an alert was not created", "alert", be.EntityID, "err", be.Err)
			}
		}
	}
	if len(updates) > 0 {
		res, err := s.broker.BatchUpdate(ctx, tenant, updates, false)
		if err != nil {
			return err
		}
		for _, be := range res.Errors {
			s.log.Info("alarms: an alert was not updated (deleted by someone?)", "alert", be.EntityID, "err", be.Err)
		}
	}
	return nil
}

// compactName is the rule's attribute as its author wrote it.
func compactName(r *Rule) string {
	if a, ok := r.Doc["attribute"].(string); ok {
		return a
	}
	return r.Attribute
}

// loadCursor reads the saved bus position; the very first start begins at
// the latest change (rules judge what happens from now on).
func (s *Service) loadCursor(ctx context.Context) (uint64, error) {
	b, err := s.st.GetRecord(ctx, kindCursor, "", "bus")
	if errors.Is(err, store.ErrNotFound) {
		// Saved at once: an instance taking over before the first periodic
		// save must start from here, not from its own latest.
		last := s.bus.Last()
		return last, s.st.PutRecord(ctx, kindCursor, "", "bus", []byte(strconv.FormatUint(last, 10)))
	}
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(string(b), 10, 64)
}

// reloadStates reads every rule's saved state: an instance that starts
// evaluating takes over from where the store says the last one was.
func (s *Service) reloadStates(ctx context.Context) error {
	s.mu.Lock()
	keys := make([]ruleKey, 0, len(s.rules))
	for k := range s.rules {
		keys = append(keys, k)
	}
	s.mu.Unlock()
	saved, err := s.readStates(ctx, keys)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, rt := range s.rules {
		if ss, ok := saved[k]; ok {
			rt.install(ss)
		}
	}
	return nil
}

// snapshot is what one save writes: copies of the changed rules' states
// as they were when the evaluation had applied every change up to cursor.
type snapshot struct {
	cursor  uint64
	recs    []savedRecord
	dropped []ruleKey
}

type savedRecord struct {
	key ruleKey
	rt  *running
	ss  savedState
}

// snapshot copies the states of the rules that changed since the last one
// (under mu, briefly: encoding and writing happen in persist).
func (s *Service) snapshot(cursor uint64) *snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := &snapshot{cursor: cursor, dropped: s.dropped}
	s.dropped = nil
	for k, rt := range s.rules {
		if !rt.dirty {
			continue
		}
		states := make(map[string]*State, len(rt.states))
		for id, st := range rt.states {
			c := *st
			c.Hits = slices.Clone(st.Hits)
			states[id] = &c
		}
		snap.recs = append(snap.recs, savedRecord{key: k, rt: rt, ss: savedState{Version: rt.stored.ModifiedAt,
			Kind: rt.rule.Kind, Attribute: rt.rule.Attribute, States: states, Status: rt.currentStatus(), Next: rt.next}})
		rt.dirty = false
	}
	return snap
}

// persist writes a snapshot: the states, in transactions of a few hundred
// so that entity writes of the same store pass between them, then the bus
// position. A restart replays the changes after the saved position onto
// the saved states; a state saved after it skips the changes it applied
// before (State.Seq), so a crash between the two loses nothing. What fails
// is marked to be saved again.
func (s *Service) persist(ctx context.Context, snap *snapshot) {
	var failed []ruleKey
	for _, k := range snap.dropped {
		if err := s.st.DeleteRecord(ctx, kindState, k.tenant, k.id); err != nil && !errors.Is(err, store.ErrNotFound) {
			failed = append(failed, k)
		}
	}
	var err error
	var unsaved []savedRecord
	for part := range slices.Chunk(snap.recs, persistChunk) {
		if err != nil {
			unsaved = append(unsaved, part...)
			continue
		}
		recs := make([]store.Record, 0, len(part))
		for _, r := range part {
			doc, merr := json.Marshal(r.ss)
			if merr != nil {
				continue
			}
			recs = append(recs, store.Record{Kind: kindState, Tenant: r.key.tenant, ID: r.key.id, Doc: doc})
		}
		if err = s.st.PutRecords(ctx, recs); err != nil {
			unsaved = append(unsaved, part...)
		}
	}
	if err == nil {
		err = s.st.PutRecord(ctx, kindCursor, "", "bus", []byte(strconv.FormatUint(snap.cursor, 10)))
	}
	if err == nil && len(failed) == 0 {
		return
	}
	if ctx.Err() == nil {
		s.log.Warn("alarms: saving rule states; trying again", "rules", len(unsaved), "err", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropped = append(s.dropped, failed...)
	for _, r := range unsaved {
		r.rt.dirty = true
	}
}

// persistChunk is how many rule states one transaction saves.
const persistChunk = 256

// SavedPosition is the oldest change the alarm evaluation may still need
// after a restart: its saved bus position. The change log must not be
// trimmed past it (notify.Options.TrimFloor); ok is false while there is
// none.
func SavedPosition(ctx context.Context, st store.Records) (uint64, bool) {
	b, err := st.GetRecord(ctx, kindCursor, "", "bus")
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseUint(string(b), 10, 64)
	return n, err == nil
}

// currentStatus is the rule's status with its active alerts counted from
// its states (under mu).
func (rt *running) currentStatus() Status {
	st := rt.status
	st.Active = 0
	for _, e := range rt.states {
		if e.Firing && e.Alert != "" {
			st.Active++
		}
	}
	return st
}

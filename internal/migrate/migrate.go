// Package migrate copies a whole zenne store into another (zenne migrate):
// @contexts, every tenant's entities and history, subscriptions and their
// waiting notifications, records (store.Records) of every kind, then checks
// the copy by counting both sides. It speaks only the store contract, so it
// moves data between any two backends (embedded SQLite to PostgreSQL is the
// usual way up).
package migrate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/ngsild/temporal"
	"github.com/zenne-city/zenne/internal/store"
)

// Source is a store that can be read whole.
type Source interface {
	store.Store
	store.Exporter
}

// Target is a store that takes history in bulk.
type Target interface {
	store.Store
	store.HistoryImporter
}

// Stage names what Copy is doing.
type Stage string

const (
	StageContexts      Stage = "contexts"
	StageEntities      Stage = "entities"
	StageHistory       Stage = "history"
	StageSubscriptions Stage = "subscriptions"
	StageRecords       Stage = "records"
	StageVerify        Stage = "verify"
)

// Progress is where a copy is: Done of Total items of Stage in Tenant
// (Total 0 when not known in advance).
type Progress struct {
	Stage       Stage
	Tenant      string
	Done, Total int
}

// Options tune Copy.
type Options struct {
	// Progress, if set, is called as the copy advances (at least after
	// every batch).
	Progress func(Progress)
	// Batch is the number of entities written per store call, and of
	// history instances per import call (default 1,000 and 50,000).
	Batch, HistoryBatch int
}

// Report counts what was copied, and what the target holds afterwards.
type Report struct {
	Contexts      int
	Tenants       []TenantReport
	Subscriptions int
	Notifications int // queued, waiting for delivery
	Records       []RecordsReport
}

// RecordsReport counts the records of one kind on both sides.
type RecordsReport struct {
	Kind               string
	Records, RecordsTo int // in the source; in the target after the copy
}

// TenantReport counts one tenant's data on both sides.
type TenantReport struct {
	Tenant                 string
	Entities, EntitiesTo   int // in the source; in the target after the copy
	History, HistoryTo     int // recorded attribute instances
	HistoryEntities        int // entities with history, existing or not
	TypesMatch, AttrsMatch bool
}

// ErrTargetNotEmpty: the target already holds data; Copy only fills an
// empty store, so nothing in it is overwritten or mixed.
var ErrTargetNotEmpty = errors.New("the target store is not empty")

// Copy copies everything from one store into an empty other one and
// verifies the counts; an error names the first thing that did not match.
// Nothing may write to either store meanwhile.
func Copy(ctx context.Context, from Source, to Target, opts Options) (*Report, error) {
	if opts.Batch <= 0 {
		opts.Batch = 1000
	}
	if opts.HistoryBatch <= 0 {
		opts.HistoryBatch = 50000
	}
	progress := func(p Progress) {
		if opts.Progress != nil {
			opts.Progress(p)
		}
	}
	kinds, err := from.RecordKinds(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing record kinds: %w", err)
	}
	if err := checkEmpty(ctx, to, kinds); err != nil {
		return nil, err
	}
	rep := &Report{}

	cs, err := from.ListContexts(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading @contexts: %w", err)
	}
	for i, c := range cs {
		if err := to.PutContext(ctx, c); err != nil {
			return nil, fmt.Errorf("writing @context %s: %w", c.ID, err)
		}
		progress(Progress{Stage: StageContexts, Done: i + 1, Total: len(cs)})
	}
	rep.Contexts = len(cs)

	tenants, err := from.Tenants(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing tenants: %w", err)
	}
	for _, t := range tenants {
		tr := TenantReport{Tenant: t}
		if tr.Entities, err = copyEntities(ctx, from, to, t, opts.Batch, progress); err != nil {
			return nil, err
		}
		if tr.HistoryEntities, tr.History, err = copyHistory(ctx, from, to, t, opts.HistoryBatch, progress); err != nil {
			return nil, err
		}
		rep.Tenants = append(rep.Tenants, tr)
	}

	if rep.Subscriptions, rep.Notifications, err = copySubscriptions(ctx, from, to, progress); err != nil {
		return nil, err
	}

	for _, kind := range kinds {
		n, err := copyRecords(ctx, from, to, kind, progress)
		if err != nil {
			return nil, err
		}
		rep.Records = append(rep.Records, RecordsReport{Kind: kind, Records: n})
	}

	for i := range rep.Tenants {
		if err := verifyTenant(ctx, from, to, &rep.Tenants[i], progress); err != nil {
			return rep, err
		}
	}
	for i := range rep.Records {
		if err := verifyRecords(ctx, from, to, &rep.Records[i], progress); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// checkEmpty refuses a target holding entities, history, subscriptions or
// records: records of the kinds given (the source's), and of every kind
// when the target can list them.
func checkEmpty(ctx context.Context, to Target, kinds []string) error {
	tenants, err := to.Tenants(ctx)
	if err != nil {
		return fmt.Errorf("reading the target: %w", err)
	}
	for _, t := range tenants {
		n, err := countEntities(ctx, to, t)
		if err != nil {
			return fmt.Errorf("reading the target: %w", err)
		}
		if n > 0 {
			return fmt.Errorf("%w: tenant %q has %d entities", ErrTargetNotEmpty, t, n)
		}
	}
	subs, err := to.ListSubscriptions(ctx)
	if err != nil {
		return fmt.Errorf("reading the target: %w", err)
	}
	if len(subs) > 0 {
		return fmt.Errorf("%w: it has %d subscriptions", ErrTargetNotEmpty, len(subs))
	}
	if ex, ok := to.(store.Exporter); ok {
		more, err := ex.RecordKinds(ctx)
		if err != nil {
			return fmt.Errorf("reading the target: %w", err)
		}
		kinds = append(slices.Clone(kinds), more...)
	}
	for _, kind := range kinds {
		rs, err := to.ListRecords(ctx, kind, "", true)
		if err != nil {
			return fmt.Errorf("reading the target: %w", err)
		}
		if len(rs) > 0 {
			return fmt.Errorf("%w: it has %d records of kind %q", ErrTargetNotEmpty, len(rs), kind)
		}
	}
	return nil
}

func countEntities(ctx context.Context, s store.Store, tenant string) (int, error) {
	res, err := s.Query(ctx, tenant, &store.Query{Count: true})
	if errors.Is(err, store.ErrNoTenant) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return res.Count, nil
}

// copyEntities writes the tenant's entities as they are (times and all),
// recording nothing in history: their history is copied as recorded.
func copyEntities(ctx context.Context, from Source, to Target, tenant string, batch int, progress func(Progress)) (int, error) {
	total, err := countEntities(ctx, from, tenant)
	if err != nil {
		return 0, fmt.Errorf("counting the entities of tenant %q: %w", tenant, err)
	}
	var ops []store.Op
	done := 0
	flush := func() error {
		if len(ops) == 0 {
			return nil
		}
		res, err := to.Write(ctx, tenant, ops)
		if err != nil {
			return fmt.Errorf("writing entities of tenant %q: %w", tenant, err)
		}
		for _, r := range res {
			if r.Err != nil {
				return fmt.Errorf("writing entity %s of tenant %q: %w", r.ID, tenant, r.Err)
			}
		}
		done += len(ops)
		ops = ops[:0]
		progress(Progress{Stage: StageEntities, Tenant: tenant, Done: done, Total: total})
		return nil
	}
	err = from.ExportEntities(ctx, tenant, func(e *ngsild.Entity) error {
		ops = append(ops, store.Op{
			ID:      e.ID,
			Apply:   func(*ngsild.Entity) (*ngsild.Entity, error) { return e, nil },
			History: &store.HistoryWrite{Types: e.Types}, // nothing: history comes next, as recorded
		})
		if len(ops) < batch {
			return nil
		}
		return flush()
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return done, err
	}
	return done, nil
}

// copyHistory imports every recorded instance of every entity with
// history, one entity at a time (a year of 15-minute readings is 35,040
// instances per attribute).
func copyHistory(ctx context.Context, from Source, to Target, tenant string, batch int, progress func(Progress)) (entities, instances int, err error) {
	ids, err := from.HistoryEntityIDs(ctx, tenant)
	if err != nil {
		return 0, 0, fmt.Errorf("listing the history of tenant %q: %w", tenant, err)
	}
	var recs []store.ImportRecord
	flush := func() error {
		if len(recs) == 0 {
			return nil
		}
		if err := to.ImportHistory(ctx, tenant, recs); err != nil {
			return fmt.Errorf("importing history of tenant %q: %w", tenant, err)
		}
		instances += len(recs)
		recs = recs[:0]
		return nil
	}
	for i, id := range ids {
		h, err := from.EntityHistory(ctx, tenant, id, nil, &temporal.Query{})
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return 0, 0, fmt.Errorf("reading the history of %s in tenant %q: %w", id, tenant, err)
		}
		for _, name := range sortedKeys(h.Attrs) {
			for _, in := range h.Attrs[name] {
				recs = append(recs, store.ImportRecord{EntityID: id, Types: h.Types, Name: name, Attr: in.Attr})
				if len(recs) >= batch {
					if err := flush(); err != nil {
						return 0, 0, err
					}
				}
			}
		}
		if err := flush(); err != nil { // one entity's history per import at least: imports skip what is stored
			return 0, 0, err
		}
		progress(Progress{Stage: StageHistory, Tenant: tenant, Done: i + 1, Total: len(ids)})
	}
	return len(ids), instances, nil
}

// copySubscriptions copies subscriptions (documents and statuses) and the
// notifications waiting for delivery. The target's notifier starts after
// the target's own change log as it is now: the changes the copy wrote are
// not news.
func copySubscriptions(ctx context.Context, from Source, to Target, progress func(Progress)) (subs, queued int, err error) {
	list, err := from.ListSubscriptions(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("reading subscriptions: %w", err)
	}
	for i, s := range list {
		if err := to.SaveSubscription(ctx, s); err != nil {
			return 0, 0, fmt.Errorf("writing subscription %s: %w", s.ID, err)
		}
		progress(Progress{Stage: StageSubscriptions, Done: i + 1, Total: len(list)})
	}
	counts, err := from.QueuedCounts(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("reading queued notifications: %w", err)
	}
	cursor := to.LastChange()
	var batch []*store.QueuedNotification
	for _, s := range list {
		if counts[s.Tenant+"\x00"+s.ID] == 0 {
			continue
		}
		after := int64(0)
		for {
			ns, err := from.Queued(ctx, s.Tenant, s.ID, after, 1000)
			if err != nil {
				return 0, 0, fmt.Errorf("reading notifications of subscription %s: %w", s.ID, err)
			}
			if len(ns) == 0 {
				break
			}
			after = ns[len(ns)-1].ID
			batch = batch[:0]
			for _, n := range ns {
				c := *n
				c.ID = 0
				batch = append(batch, &c)
			}
			if err := to.Enqueue(ctx, cursor, batch); err != nil {
				return 0, 0, fmt.Errorf("writing notifications of subscription %s: %w", s.ID, err)
			}
			queued += len(ns)
		}
	}
	if queued == 0 {
		// Still move the notifier's cursor past the copy's own changes.
		if err := to.Enqueue(ctx, cursor, nil); err != nil {
			return 0, 0, fmt.Errorf("setting the notifier's position: %w", err)
		}
	}
	return len(list), queued, nil
}

// copyRecords copies the records of one kind, of every tenant, as they
// are.
func copyRecords(ctx context.Context, from Source, to Target, kind string, progress func(Progress)) (int, error) {
	rs, err := from.ListRecords(ctx, kind, "", true)
	if err != nil {
		return 0, fmt.Errorf("reading records of kind %q: %w", kind, err)
	}
	for i, r := range rs {
		if err := to.PutRecord(ctx, r.Kind, r.Tenant, r.ID, r.Doc); err != nil {
			return 0, fmt.Errorf("writing %s record %s of tenant %q: %w", r.Kind, r.ID, r.Tenant, err)
		}
		progress(Progress{Stage: StageRecords, Tenant: r.Tenant, Done: i + 1, Total: len(rs)})
	}
	return len(rs), nil
}

// verifyRecords counts the target's records of one kind and compares them,
// document and all, with the source's.
func verifyRecords(ctx context.Context, from Source, to Target, rr *RecordsReport, progress func(Progress)) error {
	progress(Progress{Stage: StageVerify})
	a, err := from.ListRecords(ctx, rr.Kind, "", true)
	if err != nil {
		return fmt.Errorf("verifying records of kind %q: %w", rr.Kind, err)
	}
	b, err := to.ListRecords(ctx, rr.Kind, "", true)
	if err != nil {
		return fmt.Errorf("verifying records of kind %q: %w", rr.Kind, err)
	}
	rr.RecordsTo = len(b)
	if rr.RecordsTo != rr.Records || len(a) != rr.Records {
		return fmt.Errorf("records of kind %q: %d copied, the source holds %d and the target %d", rr.Kind, rr.Records, len(a), rr.RecordsTo)
	}
	for i := range a {
		if a[i].Tenant != b[i].Tenant || a[i].ID != b[i].ID || !bytes.Equal(a[i].Doc, b[i].Doc) {
			return fmt.Errorf("records of kind %q: %s of tenant %q differs in the target", rr.Kind, a[i].ID, a[i].Tenant)
		}
	}
	return nil
}

// verifyTenant counts the target's entities and history instances and
// compares the tenant's types and attributes on both sides.
func verifyTenant(ctx context.Context, from Source, to Target, tr *TenantReport, progress func(Progress)) error {
	progress(Progress{Stage: StageVerify, Tenant: tr.Tenant})
	var err error
	if tr.EntitiesTo, err = countEntities(ctx, to, tr.Tenant); err != nil {
		return fmt.Errorf("verifying tenant %q: %w", tr.Tenant, err)
	}
	ids, err := from.HistoryEntityIDs(ctx, tr.Tenant)
	if err != nil {
		return fmt.Errorf("verifying tenant %q: %w", tr.Tenant, err)
	}
	for _, id := range ids {
		h, err := to.EntityHistory(ctx, tr.Tenant, id, nil, &temporal.Query{})
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("verifying the history of %s in tenant %q: %w", id, tr.Tenant, err)
		}
		for _, insts := range h.Attrs {
			tr.HistoryTo += len(insts)
		}
	}
	tf, err1 := from.Types(ctx, tr.Tenant)
	tt, err2 := to.Types(ctx, tr.Tenant)
	af, err3 := from.Attributes(ctx, tr.Tenant)
	at, err4 := to.Attributes(ctx, tr.Tenant)
	if err := errors.Join(err1, err2, err3, err4); err != nil && !errors.Is(err, store.ErrNoTenant) {
		return fmt.Errorf("verifying tenant %q: %w", tr.Tenant, err)
	}
	tr.TypesMatch = sameTypes(tf, tt)
	tr.AttrsMatch = sameAttrs(af, at)
	switch {
	case tr.EntitiesTo != tr.Entities:
		return fmt.Errorf("tenant %q: %d entities copied, the target holds %d", tr.Tenant, tr.Entities, tr.EntitiesTo)
	case tr.HistoryTo != tr.History:
		return fmt.Errorf("tenant %q: %d history instances copied, the target holds %d", tr.Tenant, tr.History, tr.HistoryTo)
	case !tr.TypesMatch:
		return fmt.Errorf("tenant %q: the entity types differ between the stores after the copy", tr.Tenant)
	case !tr.AttrsMatch:
		return fmt.Errorf("tenant %q: the attributes differ between the stores after the copy", tr.Tenant)
	}
	return nil
}

func sameTypes(a, b []store.TypeInfo) bool {
	key := func(ts []store.TypeInfo) []string {
		out := make([]string, len(ts))
		for i, t := range ts {
			out[i] = fmt.Sprintf("%s %d", t.Type, t.Count)
		}
		slices.Sort(out)
		return out
	}
	return slices.Equal(key(a), key(b))
}

func sameAttrs(a, b []store.AttributeInfo) bool {
	key := func(as []store.AttributeInfo) []string {
		out := make([]string, len(as))
		for i, x := range as {
			out[i] = fmt.Sprintf("%s %d", x.Name, x.Count)
		}
		slices.Sort(out)
		return out
	}
	return slices.Equal(key(a), key(b))
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

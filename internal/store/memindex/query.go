package memindex

import (
	"context"
	"slices"

	"github.com/zenne-city/zenne/internal/store/codec"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store"
)

// verdict is what the index decides about a candidate.
type verdict uint8

const (
	no verdict = iota
	yes
	maybe // load the entity and call Query.Match
)

// memPlan is a query prepared against the index.
type memPlan struct {
	q      *store.Query
	tid    int64
	attrs  []uint32 // q.Attrs that the index knows
	reads  []uint32 // attributes q and the geo-query read, when the index can decide them
	qReads []uint32 // those q reads
	decide bool     // q and geo can be decided from the index's values
	none   bool     // nothing can match

	// scratch, reused for each candidate
	ent   ngsild.Entity
	insts []ngsild.Attribute
	types []string
}

// plan prepares q. Callers hold ix.mu (read).
func (ix *Index) plan(tid int64, q *store.Query) *memPlan {
	p := &memPlan{q: q, tid: tid, decide: true, ent: ngsild.Entity{Attrs: map[string][]*ngsild.Attribute{}}}
	for _, a := range q.Attrs {
		if n, ok := ix.lookup(a); ok {
			p.attrs = append(p.attrs, n)
		}
	}
	if len(q.Attrs) > 0 && len(p.attrs) == 0 {
		p.none = true
	}
	var names []string
	if q.Q != nil {
		attrs, ok := q.Q.ValueAttrs()
		p.decide = ok
		names = append(names, attrs...)
		for _, name := range attrs {
			if n, ok := ix.lookup(name); ok {
				p.qReads = append(p.qReads, n)
			}
		}
	}
	if q.Geo != nil {
		prop := q.Geo.Property
		if prop == "" {
			prop = ngsild.IRILocation
		}
		names = append(names, prop)
	}
	for _, name := range names {
		if n, ok := ix.lookup(name); ok && !slices.Contains(p.reads, n) {
			p.reads = append(p.reads, n)
		}
	}
	return p
}

// candidates returns the eids that may match, from the bitmaps and R-trees.
// Callers hold ix.mu (read); the result is the caller's own.
// eids maps the ids of q.IDs and q.Selectors to eids (lookupEIDs).
func (ix *Index) candidates(p *memPlan, eids map[string]int64) *roaring.Bitmap {
	q := p.q
	t := ix.tenants[p.tid]
	if t == nil || p.none {
		return roaring.New()
	}
	var sets []*roaring.Bitmap
	if len(q.IDs) > 0 {
		b := roaring.New()
		for _, id := range q.IDs {
			if eid, ok := eids[id]; ok {
				b.Add(uint32(eid))
			}
		}
		sets = append(sets, b)
	}
	var types []uint32 // nil: any type (q.Type, if any, is decided per entity)
	if q.Type != nil && q.Type.AnyOf() != nil {
		types = []uint32{}
		for _, name := range q.Type.AnyOf() {
			if n, ok := ix.lookup(name); ok {
				types = append(types, n)
			}
		}
		if len(types) == 0 {
			return roaring.New()
		}
	}
	if len(q.Selectors) > 0 {
		sets = append(sets, ix.selectorSet(t, q.Selectors, eids))
	}
	if q.Geo != nil {
		if bound, ok := q.Geo.Bound(); ok {
			prop := q.Geo.Property
			if prop == "" {
				prop = ngsild.IRILocation
			}
			b := roaring.New()
			if pn, ok := ix.lookup(prop); ok {
				add := func(_, _ [2]float64, eid uint32) bool {
					b.Add(eid)
					return true
				}
				for k, tr := range t.geo {
					if k[1] == pn && (types == nil || slices.Contains(types, k[0])) {
						tr.Search(bound.Min, bound.Max, add)
					}
				}
			}
			sets = append(sets, b)
		}
	}
	var base []*roaring.Bitmap
	switch {
	case types != nil:
		for _, n := range types {
			if b := t.types[n]; b != nil {
				base = append(base, b)
			}
		}
	case len(p.attrs) > 0:
		for _, n := range p.attrs {
			if b := t.attrs[n]; b != nil {
				base = append(base, b)
			}
		}
	default:
		base = append(base, t.all)
	}
	if len(base) == 0 {
		return roaring.New()
	}
	var out *roaring.Bitmap
	if len(sets) > 0 {
		slices.SortFunc(sets, func(a, b *roaring.Bitmap) int { return int(a.GetCardinality()) - int(b.GetCardinality()) })
		out = sets[0]
		for _, s := range sets[1:] {
			out.And(s)
		}
		if len(base) == 1 {
			out.And(base[0])
		} else {
			out.And(roaring.FastOr(base...))
		}
		return out
	}
	if len(base) == 1 {
		return base[0].Clone()
	}
	return roaring.FastOr(base...)
}

// selectorSet is the union of the candidates of each selector: the entity
// with its id, or the entities of its types, or all. eids maps selector ids
// to eids (absent: no such entity).
func (ix *Index) selectorSet(t *memTenant, sels []store.Selector, eids map[string]int64) *roaring.Bitmap {
	var parts []*roaring.Bitmap
	for _, sel := range sels {
		switch {
		case sel.ID != "":
			if eid, ok := eids[sel.ID]; ok {
				parts = append(parts, roaring.BitmapOf(uint32(eid)))
			}
		case sel.Type != nil && sel.Type.AnyOf() != nil:
			for _, name := range sel.Type.AnyOf() {
				if n, ok := ix.lookup(name); ok && t.types[n] != nil {
					parts = append(parts, t.types[n])
				}
			}
		default:
			return t.all.Clone()
		}
	}
	return roaring.FastOr(parts...)
}

// judge decides the entity r of a candidate. Callers hold ix.mu (read).
func (ix *Index) judge(p *memPlan, r *Rec) verdict {
	if r == nil || int64(r.tid) != p.tid {
		return no
	}
	q := p.q
	if len(q.IDs) > 0 && !slices.Contains(q.IDs, r.id()) {
		return no
	}
	if q.IDPattern != nil && !q.IDPattern.MatchString(r.id()) {
		return no
	}
	if q.Type != nil || len(q.Selectors) > 0 {
		p.types = p.types[:0]
		for _, n := range r.types() {
			p.types = append(p.types, ix.names[n])
		}
		if q.Type != nil && !q.Type.Match(p.types) || !q.MatchSelectors(r.id(), p.types) {
			return no
		}
	}
	if len(q.Attrs) > 0 && !slices.ContainsFunc(r.attrs, func(a memAttr) bool { return slices.Contains(p.attrs, a.name) }) {
		return no
	}
	if q.ScopeQ != nil && !q.ScopeQ.Match(r.scopeList()) {
		return no
	}
	if q.Q == nil && q.Geo == nil {
		return yes
	}
	if !p.decide {
		return maybe
	}
	// An entity holding just the attributes q and geo read, with their values.
	clear(p.ent.Attrs)
	p.insts = p.insts[:0]
	for _, a := range r.attrs {
		if !slices.Contains(p.reads, a.name) {
			continue
		}
		// The index holds a Point as coordinates, which geo-queries read; q
		// reads the GeoJSON value (location[type]).
		if a.val == valComplex || a.val == valPoint && slices.Contains(p.qReads, a.name) {
			return maybe
		}
		p.insts = append(p.insts, ngsild.Attribute{Kind: codec.KindCodes[a.kind], Value: r.value(&a)})
	}
	i := 0
	for _, a := range r.attrs {
		if a.val == valComplex || !slices.Contains(p.reads, a.name) {
			continue
		}
		name := ix.names[a.name]
		p.ent.Attrs[name] = append(p.ent.Attrs[name], &p.insts[i])
		i++
	}
	if q.Q != nil && !q.Q.Match(&p.ent) {
		return no
	}
	if q.Geo != nil && !q.Geo.Match(&p.ent) {
		return no
	}
	return yes
}

// Source is the store behind an index: what a query of tenant tid reads
// from the database.
type Source interface {
	// EIDs maps those of ids that are entities of the tenant to their eids.
	EIDs(ctx context.Context, tid int64, ids []string) (map[string]int64, error)
	// Load calls found with each of the hits' entities that still exists
	// (Hit.Ver is the version the index judged, for a cache).
	Load(ctx context.Context, tid int64, hits []Hit, found func(eid int64, e *ngsild.Entity)) error
}

// Query answers q (of tenant tid, with limit > 0 or q.Count) from the index,
// loading through src only the entities it returns and those it cannot
// decide; a loaded entity is checked against q again, as it may have changed
// since the index judged it.
func (ix *Index) Query(ctx context.Context, tid int64, q *store.Query, limit, offset int, src Source) (*store.QueryResult, error) {
	res := &store.QueryResult{Count: -1, Entities: []*ngsild.Entity{}}
	ids := slices.Clone(q.IDs)
	for _, sel := range q.Selectors {
		if sel.ID != "" {
			ids = append(ids, sel.ID)
		}
	}
	eids, err := src.EIDs(ctx, tid, ids)
	if err != nil {
		return nil, err
	}
	ix.mu.RLock()
	p := ix.plan(tid, q)
	cand := ix.candidates(p, eids)
	ix.mu.RUnlock()

	need := offset + limit
	needAll := q.Count
	if q.Count && plain(q) {
		// Every candidate matches: count them without judging each.
		res.Count = int(cand.GetCardinality())
		needAll = false
	}
	matched := 0
	var page []Hit
	loaded := map[int64]*ngsild.Entity{}
	take := func(h Hit) {
		matched++
		if matched > offset && len(page) < limit {
			page = append(page, h)
		}
	}
	it := cand.Iterator()
	for !(!needAll && matched >= need) && it.HasNext() {
		if err := ctx.Err(); err != nil {
			return nil, err // the client is gone: stop a long count
		}
		// Judge candidates under the lock until enough may match; those the
		// index cannot decide wait, in order, for their entity.
		var seq []Hit // from the first maybe on
		var maybes []Hit
		// A round judges a bounded number of candidates, so that a long
		// count does not hold the writer (which takes the lock to apply each
		// commit) for long.
		ix.mu.RLock()
		for judged := 0; it.HasNext() && len(maybes) < 1024 && judged < judgeRound; judged++ {
			eid := it.Next()
			r := ix.rec(int64(eid))
			v := ix.judge(p, r)
			if v == no {
				continue
			}
			h := Hit{int64(eid), r.ver, v == yes}
			switch {
			case v == yes && len(seq) == 0:
				take(h)
			case v == yes:
				seq = append(seq, h)
			case v == maybe:
				seq = append(seq, h)
				maybes = append(maybes, h)
			}
			if !needAll && matched+len(seq) >= need {
				break
			}
		}
		ix.mu.RUnlock()
		if err := loadMatches(ctx, src, tid, q, maybes, loaded); err != nil {
			return nil, err
		}
		for _, h := range seq {
			if h.sure || loaded[h.EID] != nil {
				take(h)
			}
		}
	}
	if needAll {
		res.Count = matched
	}
	// Load the page; an entity changed since it was judged is checked again.
	var missing []Hit
	for _, h := range page {
		if loaded[h.EID] == nil {
			missing = append(missing, h)
		}
	}
	if err := loadMatches(ctx, src, tid, q, missing, loaded); err != nil {
		return nil, err
	}
	for _, h := range page {
		if e := loaded[h.EID]; e != nil {
			res.Entities = append(res.Entities, e)
		}
	}
	return res, nil
}

// plain reports whether q selects by nothing but a union of types (or
// nothing), so that its candidates are exactly its matches.
func plain(q *store.Query) bool {
	return len(q.IDs) == 0 && q.IDPattern == nil && len(q.Selectors) == 0 && len(q.Attrs) == 0 && q.Q == nil && q.ScopeQ == nil &&
		q.Geo == nil && (q.Type == nil || q.Type.AnyOf() != nil)
}

// judgeRound is the most candidates judged under one hold of the index lock
// (about 0.5 ms of work).
const judgeRound = 8192

// Hit is a candidate the index judged: its eid, the version judged and
// whether the index was sure it matches.
type Hit struct {
	EID, Ver int64
	sure     bool
}

// loadMatches loads the entities of hits and adds those that still exist and
// match q to loaded, by eid.
func loadMatches(ctx context.Context, src Source, tid int64, q *store.Query, hits []Hit, loaded map[int64]*ngsild.Entity) error {
	if len(hits) == 0 {
		return nil
	}
	return src.Load(ctx, tid, hits, func(eid int64, e *ngsild.Entity) {
		if q.Match(e) {
			loaded[eid] = e
		}
	})
}

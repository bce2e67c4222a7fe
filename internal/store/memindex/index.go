// Package memindex is the query index both stores keep in memory: per
// tenant, the entities of each type and of each attribute name (bitmaps of
// eids), an R-tree per (type, GeoProperty), and per entity its id, types,
// scopes and the plain values of its attributes. A query finds its exact
// matches here and reads the database only for the page it returns; only
// entities whose attributes the index cannot hold (compound values, long
// texts, non-point geometries) or q terms it cannot decide (sub-attributes,
// metadata) are loaded to be decided. Reading candidate rows from the
// database cost most of a query's time (see docs/PERFORMANCE.md).
//
// A store builds it from its entities when it opens (Names.Project, Load,
// Finish) and keeps it current with Apply: the embedded store's writer after
// each commit, before answering; the PostgreSQL store from its change log,
// which holds every instance's commits (postgres/memindex.go).
package memindex

import (
	"encoding/binary"
	"math"
	"runtime"
	"slices"
	"sync"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/paulmach/orb"
	"github.com/tidwall/rtree"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/ngsild/geo"
	"github.com/zenne-city/zenne/internal/store/codec"
)

// Index is the query index of one store: eids are the store's, numbered from
// 1 upwards in creation order, which is the order of query results.
type Index struct {
	mu       sync.RWMutex
	recs     []*Rec // by eid; nil: no entity
	tenants  map[int64]*memTenant
	names    []string // interned type and attribute names, by number
	nameNum  map[string]uint32
	building map[int64]bool // eids the writer set during the build; nil once built
	unplaced []int64        // eids loaded by the build, not yet in the R-trees
}

type memTenant struct {
	all   *roaring.Bitmap
	types map[uint32]*roaring.Bitmap // by type name number
	attrs map[uint32]*roaring.Bitmap // by attribute name number
	geo   map[[2]uint32]*rtree.RTreeG[uint32]
}

// Rec is what the index knows of one entity, in about 300 bytes. It is
// laid out for the garbage collector and the heap: the attributes and boxes
// hold no pointers (strings are ranges of one text, which starts with the
// id), and the common single type is held inline.
type Rec struct {
	text   string    // the id, then the string values of attrs
	ver    int64     // entities.ver, to use the entity cache
	attrs  []memAttr // one per instance, by name number
	boxes  []memBox  // per GeoProperty name: the union box of its instances
	more   *memMore  // nil for most entities
	tid    uint32
	idLen  uint32
	typ    [1]uint32 // the type, unless more.types is set
	placed bool      // its boxes are in the R-trees (the build defers that)
}

// memMore is what few entities have: other than exactly one type, scopes.
type memMore struct {
	types  []uint32 // nil: Rec.typ is the type
	scopes []string
}

// memAttr is one attribute instance: its kind and, when plain, its value.
type memAttr struct {
	x    float64 // a number, a boolean (0 or 1), a point's longitude
	aux  uint64  // a string's range in text (offset<<32 | length), a point's latitude (bits)
	name uint32
	kind uint8 // its code in kindCodes (codec.go)
	val  memVal
}

type memVal uint8

const (
	valComplex memVal = iota // not held: decide on the loaded entity
	valNum
	valStr
	valBool
	valPoint
)

type memBox struct {
	name     uint32
	min, max [2]float64
}

// maxMemText is the longest string value the index holds; longer ones are
// decided on the loaded entity.
const maxMemText = 128

func New() *Index {
	return &Index{tenants: map[int64]*memTenant{}, nameNum: map[string]uint32{}, building: map[int64]bool{}}
}

// intern returns the number of a name, adding it. Callers hold mu.
func (ix *Index) intern(name string) uint32 {
	if n, ok := ix.nameNum[name]; ok {
		return n
	}
	n := uint32(len(ix.names))
	ix.names = append(ix.names, name)
	ix.nameNum[name] = n
	return n
}

// lookup returns the number of a name the index has seen. Callers hold mu.
func (ix *Index) lookup(name string) (uint32, bool) {
	n, ok := ix.nameNum[name]
	return n, ok
}

// newRec projects an entity; intern numbers names (ix.intern, with mu held,
// or a Names).
func newRec(tid, ver int64, e *ngsild.Entity, intern func(string) uint32) *Rec {
	b := recBuilder{r: &Rec{tid: uint32(tid), ver: ver}}
	b.setID(e.ID)
	for _, t := range e.Types {
		b.types = append(b.types, intern(t))
	}
	b.scopes = slices.Clone(e.Scopes)
	n := 0
	for _, insts := range e.Attrs {
		n += len(insts)
	}
	b.r.attrs = make([]memAttr, 0, n)
	for name, insts := range e.Attrs {
		b.startAttr(intern(name))
		for _, a := range insts {
			b.add(a)
		}
	}
	return b.finish()
}

// recBuilder assembles a record attribute by attribute, from an entity
// (newRec) or a stored document (projectDoc).
type recBuilder struct {
	r      *Rec
	name   uint32
	box    memBox
	hasBox bool
	text   []byte
	types  []uint32
	scopes []string
}

func (b *recBuilder) setID(id string) {
	b.text = append(b.text[:0], id...)
	b.r.idLen = uint32(len(id))
}

func (b *recBuilder) startAttr(name uint32) {
	b.endAttr()
	b.name = name
}

func (b *recBuilder) endAttr() {
	if b.hasBox {
		b.r.boxes = append(b.r.boxes, b.box)
		b.hasBox = false
	}
}

// add adds one instance of the current attribute (nil: an instance without
// content, decided on the entity).
func (b *recBuilder) add(a *ngsild.Attribute) {
	if a == nil {
		b.r.attrs = append(b.r.attrs, memAttr{name: b.name})
		return
	}
	ma, str, bound, ok := project(a)
	ma.name = b.name
	if ma.val == valStr {
		ma.aux = uint64(len(b.text))<<32 | uint64(len(str))
		b.text = append(b.text, str...)
	}
	b.r.attrs = append(b.r.attrs, ma)
	switch {
	case !ok:
	case !b.hasBox:
		b.box, b.hasBox = memBox{name: b.name, min: bound.Min, max: bound.Max}, true
	default:
		b.box.min = [2]float64{math.Min(b.box.min[0], bound.Min[0]), math.Min(b.box.min[1], bound.Min[1])}
		b.box.max = [2]float64{math.Max(b.box.max[0], bound.Max[0]), math.Max(b.box.max[1], bound.Max[1])}
	}
}

func (b *recBuilder) finish() *Rec {
	b.endAttr()
	b.r.text = string(b.text)
	if len(b.types) == 1 {
		b.r.typ[0] = b.types[0]
	} else {
		b.r.more = &memMore{types: slices.Clone(b.types)}
		if b.r.more.types == nil {
			b.r.more.types = []uint32{}
		}
	}
	if len(b.scopes) > 0 {
		if b.r.more == nil {
			b.r.more = &memMore{}
		}
		b.r.more.scopes = b.scopes
	}
	slices.SortFunc(b.r.attrs, func(x, y memAttr) int { return int(x.name) - int(y.name) })
	return b.r
}

// projectDoc builds the record of a stored document without decoding the
// whole entity: only what project reads is decoded, and strings it would
// not hold are skipped.
func projectDoc(doc []byte, tid, ver int64, names *Names) (*Rec, error) {
	if len(doc) == 0 || doc[0] != codec.DocV1 {
		e, err := codec.DecodeEntity(doc)
		if err != nil {
			return nil, err
		}
		return newRec(tid, ver, e, names.intern), nil
	}
	d := &codec.Decoder{B: doc[1:]}
	b := recBuilder{r: &Rec{tid: uint32(tid), ver: ver}}
	id := d.Raw()
	b.text = append(b.text, id...)
	b.r.idLen = uint32(len(id))
	for n := d.Count(); n > 0; n-- {
		b.types = append(b.types, names.internBytes(d.Raw()))
	}
	b.scopes = d.Strs()
	d.SkipTime()
	d.SkipTime()
	n := d.Count()
	b.r.attrs = make([]memAttr, 0, n)
	for range n {
		b.startAttr(names.internBytes(d.Raw()))
		for m := d.Count(); m > 0 && d.Err == nil; m-- {
			if d.Byte() == 0 {
				b.add(nil)
				continue
			}
			a := ngsild.Attribute{Kind: d.Kind()}
			a.Value = indexValue(d, a.Kind)
			d.SkipAttrRest(0)
			b.add(&a)
		}
	}
	if d.Err != nil {
		return nil, d.Err
	}
	return b.finish(), nil
}

// project keeps an instance's kind and, when it is a plain value that q and
// geo-queries read the same way as the original, that value (a string
// apart). It also returns the box of a GeoProperty.
func project(a *ngsild.Attribute) (m memAttr, str string, box orb.Bound, hasBox bool) {
	m.kind = codec.KindCode(a.Kind)
	switch a.Kind {
	case ngsild.Property, ngsild.VocabProperty, ngsild.Relationship:
		switch v := a.Value.(type) {
		case float64:
			m.val, m.x = valNum, v
		case bool:
			m.val = valBool
			if v {
				m.x = 1
			}
		case string:
			if len(v) <= maxMemText {
				m.val, str = valStr, v
			}
		}
	case ngsild.GeoProperty:
		g, err := geo.ValueGeometry(a.Value)
		if err != nil || g == nil {
			return m, "", orb.Bound{}, false
		}
		if p, ok := g.(orb.Point); ok {
			m.val, m.x, m.aux = valPoint, p[0], math.Float64bits(p[1])
		}
		return m, "", g.Bound(), true
	}
	return m, str, orb.Bound{}, false
}

func (r *Rec) id() string { return r.text[:r.idLen] }

// types returns the numbers of r's types.
func (r *Rec) types() []uint32 {
	if r.more != nil && r.more.types != nil {
		return r.more.types
	}
	return r.typ[:]
}

func (r *Rec) scopeList() []string {
	if r.more == nil {
		return nil
	}
	return r.more.scopes
}

// value returns the value of r's instance m as the decoded entity holds it.
func (r *Rec) value(m *memAttr) any {
	switch m.val {
	case valNum:
		return m.x
	case valStr:
		off := m.aux >> 32
		return r.text[off : off+m.aux&math.MaxUint32]
	case valBool:
		return m.x == 1
	case valPoint:
		return orb.Point{m.x, math.Float64frombits(m.aux)}
	}
	return nil
}

func (ix *Index) tenant(tid int64) *memTenant {
	t := ix.tenants[tid]
	if t == nil {
		t = &memTenant{all: roaring.New(), types: map[uint32]*roaring.Bitmap{}, attrs: map[uint32]*roaring.Bitmap{},
			geo: map[[2]uint32]*rtree.RTreeG[uint32]{}}
		ix.tenants[tid] = t
	}
	return t
}

func bitmapOf(m map[uint32]*roaring.Bitmap, k uint32) *roaring.Bitmap {
	b := m[k]
	if b == nil {
		b = roaring.New()
		m[k] = b
	}
	return b
}

// set records what entity eid now is (c.Rec nil: deleted). Callers hold mu.
func (ix *Index) set(c Change) {
	if ix.building != nil {
		ix.building[c.EID] = true
	}
	old, ok := ix.swap(c.EID, c.Rec)
	if !ok {
		return
	}
	r := c.Rec
	if r == nil {
		if old != nil {
			ix.unlink(uint32(c.EID), old)
		}
		return
	}
	eid := uint32(c.EID)
	if old != nil && sameLinks(old, r) {
		r.placed = old.placed
		return // an update of values only: the bitmaps and R-trees stay
	}
	if old != nil {
		ix.unlink(eid, old)
	}
	ix.link(eid, r)
	ix.place(eid, r)
}

// swap stores r (nil: none) as eid's record and returns the one it
// replaces; ok is false for an eid out of range, which is ignored (eids are
// allocated from 1 upwards, never this far). Callers hold mu.
func (ix *Index) swap(eid int64, r *Rec) (old *Rec, ok bool) {
	if eid < 0 || eid > math.MaxUint32 {
		return nil, false
	}
	old = ix.rec(eid)
	if int(eid) >= len(ix.recs) {
		if r == nil {
			return nil, true
		}
		ix.recs = slices.Grow(ix.recs, int(eid)+1-len(ix.recs))[:eid+1]
	}
	ix.recs[eid] = r
	return old, true
}

// sameLinks reports whether two records are in the same bitmaps and R-tree
// entries.
func sameLinks(a, b *Rec) bool {
	if a.tid != b.tid || !slices.Equal(a.types(), b.types()) || !slices.Equal(a.boxes, b.boxes) || len(a.attrs) != len(b.attrs) {
		return false
	}
	for i := range a.attrs {
		if a.attrs[i].name != b.attrs[i].name {
			return false
		}
	}
	return true
}

func (ix *Index) rec(eid int64) *Rec {
	if eid < 0 || eid >= int64(len(ix.recs)) {
		return nil
	}
	return ix.recs[eid]
}

func (ix *Index) link(eid uint32, r *Rec) {
	t := ix.tenant(int64(r.tid))
	t.all.Add(eid)
	for _, ty := range r.types() {
		bitmapOf(t.types, ty).Add(eid)
	}
	for i, a := range r.attrs {
		if i == 0 || r.attrs[i-1].name != a.name {
			bitmapOf(t.attrs, a.name).Add(eid)
		}
	}
}

// place puts r's boxes in the R-trees. Callers hold mu.
func (ix *Index) place(eid uint32, r *Rec) {
	t := ix.tenant(int64(r.tid))
	for _, b := range r.boxes {
		for _, ty := range r.types() {
			ix.tree(t, ty, b.name).Insert(b.min, b.max, eid)
		}
	}
	r.placed = true
}

func (ix *Index) tree(t *memTenant, typ, attr uint32) *rtree.RTreeG[uint32] {
	k := [2]uint32{typ, attr}
	tr := t.geo[k]
	if tr == nil {
		tr = &rtree.RTreeG[uint32]{}
		t.geo[k] = tr
	}
	return tr
}

func (ix *Index) unlink(eid uint32, r *Rec) {
	t := ix.tenants[int64(r.tid)]
	if t == nil {
		return
	}
	t.all.Remove(eid)
	for _, ty := range r.types() {
		if b := t.types[ty]; b != nil {
			b.Remove(eid)
		}
	}
	for _, a := range r.attrs {
		if b := t.attrs[a.name]; b != nil {
			b.Remove(eid)
		}
	}
	if !r.placed {
		return
	}
	for _, b := range r.boxes {
		for _, ty := range r.types() {
			if tr := t.geo[[2]uint32{ty, b.name}]; tr != nil {
				tr.Delete(b.min, b.max, eid)
			}
		}
	}
}

// Change is one committed entity state for the index.
type Change struct {
	EID int64
	Rec *Rec // nil: deleted
}

// Apply records a committed group of changes.
func (ix *Index) Apply(changes []Change) {
	if len(changes) == 0 {
		return
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for _, c := range changes {
		ix.set(c)
	}
}

// Load adds records read by the initial build, unless Apply has set their
// entities since the build began (that state is newer).
func (ix *Index) Load(eids []int64, recs []*Rec) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for i, eid := range eids {
		r := recs[i]
		if ix.building[eid] {
			continue
		}
		if _, ok := ix.swap(eid, r); !ok {
			continue
		}
		ix.link(uint32(eid), r)
		if len(r.boxes) > 0 {
			ix.unplaced = append(ix.unplaced, eid) // see finish
		}
	}
}

// Names numbers names for one goroutine (a build worker, a writer's encode
// step), taking the index's lock only for names it has not seen.
type Names struct {
	ix *Index
	m  map[string]uint32
}

// Names returns a Names for one goroutine.
func (ix *Index) Names() *Names { return &Names{ix: ix, m: map[string]uint32{}} }

// Rec projects an entity at version ver of tenant tid.
func (c *Names) Rec(tid, ver int64, e *ngsild.Entity) *Rec { return newRec(tid, ver, e, c.intern) }

// Project builds the record of a stored document (codec.EncodeEntity's)
// without decoding the whole entity.
func (c *Names) Project(doc []byte, tid, ver int64) (*Rec, error) {
	return projectDoc(doc, tid, ver, c)
}

func (c *Names) internBytes(name []byte) uint32 {
	if n, ok := c.m[string(name)]; ok {
		return n
	}
	return c.intern(string(name))
}

func (c *Names) intern(name string) uint32 {
	if n, ok := c.m[name]; ok {
		return n
	}
	c.ix.mu.Lock()
	n := c.ix.intern(name)
	c.ix.mu.Unlock()
	c.m[name] = n
	return n
}

// Size is the number of entities indexed.
func (ix *Index) Size() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	n := 0
	for _, t := range ix.tenants {
		n += int(t.all.GetCardinality())
	}
	return n
}

// Built reports whether Finish was called.
func (ix *Index) Built() bool {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.building == nil
}

// Finish marks the build complete, first putting what it loaded in the
// R-trees, one goroutine per tree (inserting into one tree is most of a
// build's serial work).
func (ix *Index) Finish() {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	type key struct {
		t         *memTenant
		typ, attr uint32
	}
	work := map[key][]uint32{} // eids per tree
	for _, eid := range ix.unplaced {
		r := ix.recs[eid]
		if r == nil || r.placed {
			continue // deleted, or set by the writer, which placed it
		}
		t := ix.tenant(int64(r.tid))
		for _, b := range r.boxes {
			for _, ty := range r.types() {
				k := key{t, ty, b.name}
				work[k] = append(work[k], uint32(eid))
			}
		}
		r.placed = true
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for k, eids := range work {
		tr := ix.tree(k.t, k.typ, k.attr)
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			for _, eid := range eids {
				for _, b := range ix.recs[eid].boxes {
					if b.name == k.attr {
						tr.Insert(b.min, b.max, eid)
					}
				}
			}
		})
	}
	wg.Wait()
	ix.unplaced = nil
	ix.building = nil
}

// opaque stands for a value indexValue skipped.
type opaque struct{}

// indexValue decodes a value the query index may hold (memindex.go,
// project): scalars, short strings and a GeoProperty's geometry. Others are
// skipped and returned as opaque{}, which project does not hold either.
func indexValue(d *codec.Decoder, kind ngsild.Kind) any {
	if len(d.B) > 0 {
		switch tag := d.B[0]; {
		case (tag == 5 || tag == 6) && kind != ngsild.GeoProperty:
			d.SkipValue(0)
			return opaque{}
		case tag == 4:
			if n, w := binary.Uvarint(d.B[1:]); w > 0 && n > maxMemText {
				d.SkipValue(0)
				return opaque{}
			}
		}
	}
	return d.Value(0)
}

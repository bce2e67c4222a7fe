package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/paulmach/orb"
	"github.com/tidwall/rtree"
	"golang.org/x/sync/errgroup"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/ngsild/geo"
)

// memIndex keeps in memory what queries select and filter on: per tenant,
// the entities of each type and of each attribute name (bitmaps of eids), an
// R-tree per (type, GeoProperty), and per entity its id, types, scopes and
// the plain values of its attributes. A query finds its exact matches here
// and reads SQLite only for the page it returns; only entities whose
// attributes the index cannot hold (compound values, long texts, non-point
// geometries) or q terms it cannot decide (sub-attributes, metadata) are
// loaded to be decided. Reading candidate rows through SQLite cost most of a
// query's time (see docs/PERFORMANCE.md).
//
// The writer updates it after each commit, before answering, so a query
// started after a write was acknowledged sees it. It is built from the
// entities table when the store opens, in the background; queries wait for
// it. SQLite keeps no secondary index of its own, so a write costs one row.
type memIndex struct {
	mu       sync.RWMutex
	recs     []*memRec // by eid; nil: no entity
	tenants  map[int64]*memTenant
	names    []string // interned type, attribute and scope names by number
	nameNum  map[string]uint32
	building map[int64]bool // eids the writer set during the build; nil once built
}

type memTenant struct {
	all   *roaring.Bitmap
	types map[uint32]*roaring.Bitmap // by type name number
	attrs map[uint32]*roaring.Bitmap // by attribute name number
	geo   map[[2]uint32]*rtree.RTreeG[uint32]
}

// memRec is what the index knows of one entity.
type memRec struct {
	tid    int64
	ver    int64 // entities.ver, to use the entity cache
	id     string
	types  []uint32
	scopes []string
	attrs  []memAttr // one per instance, by name number
	boxes  []memBox  // per GeoProperty name: the union box of its instances
}

// memAttr is one attribute instance: its kind and, when plain, its value.
type memAttr struct {
	name uint32
	kind uint8 // index in memKinds
	val  memVal
	str  string
	x, y float64 // a number (x), a boolean (x: 0 or 1), a point (x, y)
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

var memKinds = []ngsild.Kind{ngsild.Property, ngsild.Relationship, ngsild.GeoProperty,
	ngsild.LanguageProperty, ngsild.JsonProperty, ngsild.VocabProperty, ngsild.ListProperty, ngsild.ListRelationship}

func kindNum(k ngsild.Kind) uint8 {
	if i := slices.Index(memKinds, k); i >= 0 {
		return uint8(i)
	}
	return math.MaxUint8
}

func newMemIndex() *memIndex {
	return &memIndex{tenants: map[int64]*memTenant{}, nameNum: map[string]uint32{}, building: map[int64]bool{}}
}

// intern returns the number of a name, adding it. Callers hold mu.
func (ix *memIndex) intern(name string) uint32 {
	if n, ok := ix.nameNum[name]; ok {
		return n
	}
	n := uint32(len(ix.names))
	ix.names = append(ix.names, name)
	ix.nameNum[name] = n
	return n
}

// lookup returns the number of a name the index has seen. Callers hold mu.
func (ix *memIndex) lookup(name string) (uint32, bool) {
	n, ok := ix.nameNum[name]
	return n, ok
}

// newRec projects an entity. Callers hold mu (for intern).
func (ix *memIndex) newRec(tid, ver int64, e *ngsild.Entity) *memRec {
	r := &memRec{tid: tid, ver: ver, id: e.ID, types: make([]uint32, 0, len(e.Types))}
	for _, t := range e.Types {
		r.types = append(r.types, ix.intern(t))
	}
	if len(e.Scopes) > 0 {
		r.scopes = slices.Clone(e.Scopes)
	}
	n := 0
	for _, insts := range e.Attrs {
		n += len(insts)
	}
	r.attrs = make([]memAttr, 0, n)
	for name, insts := range e.Attrs {
		num := ix.intern(name)
		var box memBox
		hasBox := false
		for _, a := range insts {
			if a == nil {
				// Present, with nothing to hold: decided on the entity.
				r.attrs = append(r.attrs, memAttr{name: num, kind: math.MaxUint8})
				continue
			}
			ma, b, ok := project(a)
			ma.name = num
			r.attrs = append(r.attrs, ma)
			if ok {
				if !hasBox {
					box, hasBox = memBox{name: num, min: b.Min, max: b.Max}, true
				} else {
					box.min = [2]float64{math.Min(box.min[0], b.Min[0]), math.Min(box.min[1], b.Min[1])}
					box.max = [2]float64{math.Max(box.max[0], b.Max[0]), math.Max(box.max[1], b.Max[1])}
				}
			}
		}
		if hasBox {
			r.boxes = append(r.boxes, box)
		}
	}
	slices.SortFunc(r.attrs, func(a, b memAttr) int { return int(a.name) - int(b.name) })
	return r
}

// project keeps an instance's kind and, when it is a plain value that q and
// geo-queries read the same way as the original, that value. It also returns
// the box of a GeoProperty.
func project(a *ngsild.Attribute) (m memAttr, box orb.Bound, hasBox bool) {
	m.kind = kindNum(a.Kind)
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
				m.val, m.str = valStr, v
			}
		}
	case ngsild.GeoProperty:
		if v, ok := a.Value.(map[string]any); ok && v["type"] == "Point" {
			if g, err := geo.ParseGeometry(v); err == nil {
				if p, ok := g.(orb.Point); ok {
					m.val, m.x, m.y = valPoint, p[0], p[1]
					return m, p.Bound(), true
				}
			}
		}
		box, hasBox = geometryBound(a.Value)
	}
	return m, box, hasBox
}

// value returns the instance's value as the decoded entity holds it.
func (m *memAttr) value() any {
	switch m.val {
	case valNum:
		return m.x
	case valStr:
		return m.str
	case valBool:
		return m.x == 1
	case valPoint:
		return orb.Point{m.x, m.y}
	}
	return nil
}

func (ix *memIndex) tenant(tid int64) *memTenant {
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

// set records the entity eid now is (nil: deleted). Callers hold mu.
func (ix *memIndex) set(c memChange) {
	if ix.building != nil {
		ix.building[c.eid] = true
	}
	ix.put(c)
}

func (ix *memIndex) put(c memChange) {
	eid := c.eid
	if eid < 0 || eid > math.MaxUint32 {
		return // eids are allocated from 1 upwards; never this far
	}
	old := ix.rec(eid)
	if c.ent == nil {
		if old != nil {
			ix.unlink(uint32(eid), old)
			ix.recs[eid] = nil
		}
		return
	}
	r := ix.newRec(c.tid, c.ver, c.ent)
	if int(eid) >= len(ix.recs) {
		ix.recs = slices.Grow(ix.recs, int(eid)+1-len(ix.recs))[:eid+1]
	}
	ix.recs[eid] = r
	if old != nil && sameLinks(old, r) {
		return // an update of values only: the bitmaps and R-trees stay
	}
	if old != nil {
		ix.unlink(uint32(eid), old)
	}
	ix.link(uint32(eid), r)
}

// sameLinks reports whether two records are in the same bitmaps and R-tree
// entries.
func sameLinks(a, b *memRec) bool {
	if a.tid != b.tid || !slices.Equal(a.types, b.types) || !slices.Equal(a.boxes, b.boxes) || len(a.attrs) != len(b.attrs) {
		return false
	}
	for i := range a.attrs {
		if a.attrs[i].name != b.attrs[i].name {
			return false
		}
	}
	return true
}

func (ix *memIndex) rec(eid int64) *memRec {
	if eid < 0 || eid >= int64(len(ix.recs)) {
		return nil
	}
	return ix.recs[eid]
}

func (ix *memIndex) link(eid uint32, r *memRec) {
	t := ix.tenant(r.tid)
	t.all.Add(eid)
	for _, ty := range r.types {
		bitmapOf(t.types, ty).Add(eid)
	}
	for i, a := range r.attrs {
		if i == 0 || r.attrs[i-1].name != a.name {
			bitmapOf(t.attrs, a.name).Add(eid)
		}
	}
	for _, b := range r.boxes {
		for _, ty := range r.types {
			k := [2]uint32{ty, b.name}
			tr := t.geo[k]
			if tr == nil {
				tr = &rtree.RTreeG[uint32]{}
				t.geo[k] = tr
			}
			tr.Insert(b.min, b.max, eid)
		}
	}
}

func (ix *memIndex) unlink(eid uint32, r *memRec) {
	t := ix.tenants[r.tid]
	if t == nil {
		return
	}
	t.all.Remove(eid)
	for _, ty := range r.types {
		if b := t.types[ty]; b != nil {
			b.Remove(eid)
		}
	}
	for _, a := range r.attrs {
		if b := t.attrs[a.name]; b != nil {
			b.Remove(eid)
		}
	}
	for _, b := range r.boxes {
		for _, ty := range r.types {
			if tr := t.geo[[2]uint32{ty, b.name}]; tr != nil {
				tr.Delete(b.min, b.max, eid)
			}
		}
	}
}

// memChange is one committed entity state for the index.
type memChange struct {
	eid, tid, ver int64
	ent           *ngsild.Entity // nil: deleted
}

// apply records a committed group of changes.
func (ix *memIndex) apply(changes []memChange) {
	if len(changes) == 0 {
		return
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for _, c := range changes {
		ix.set(c)
	}
}

// load adds entities read by the initial build, unless the writer has set
// them since the build began (the writer's state is newer).
func (ix *memIndex) load(batch []memChange) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for _, c := range batch {
		if !ix.building[c.eid] {
			ix.put(c)
		}
	}
}

// size is the number of entities indexed.
func (ix *memIndex) size() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	n := 0
	for _, t := range ix.tenants {
		n += int(t.all.GetCardinality())
	}
	return n
}

// built reports whether the build is complete.
func (ix *memIndex) built() bool {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.building == nil
}

// finish marks the build complete.
func (ix *memIndex) finish() {
	ix.mu.Lock()
	ix.building = nil
	ix.mu.Unlock()
}

// buildMemIndex reads every stored entity into the index, decoding on every
// core, then lets queries use it.
func (s *Store) buildMemIndex(ctx context.Context) error {
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("build index: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT eid, tid, ver, doc FROM entities`)
	if err != nil {
		return fmt.Errorf("build index: %w", err)
	}
	defer rows.Close()

	type row struct {
		eid, tid, ver int64
		doc           []byte
	}
	const batchSize = 512
	batches := make(chan []row, 4)
	g, gctx := errgroup.WithContext(ctx)
	for range runtime.GOMAXPROCS(0) {
		g.Go(func() error {
			out := make([]memChange, 0, batchSize)
			for b := range batches {
				out = out[:0]
				for _, r := range b {
					e, err := decodeEntity(r.doc)
					if err != nil {
						return fmt.Errorf("build index: decode entity %d: %w", r.eid, err)
					}
					out = append(out, memChange{eid: r.eid, tid: r.tid, ver: r.ver, ent: e})
				}
				s.mem.load(out)
			}
			return nil
		})
	}
	g.Go(func() error {
		defer close(batches)
		b := make([]row, 0, batchSize)
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.eid, &r.tid, &r.ver, &r.doc); err != nil {
				return fmt.Errorf("build index: %w", err)
			}
			if b = append(b, r); len(b) == batchSize {
				select {
				case batches <- b:
				case <-gctx.Done():
					return gctx.Err()
				}
				b = make([]row, 0, batchSize)
			}
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("build index: %w", err)
		}
		if len(b) > 0 {
			select {
			case batches <- b:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return err
	}
	s.mem.finish()
	return nil
}

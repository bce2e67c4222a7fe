package sqlite

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/ngsild/geo"
	"github.com/zenne-city/zenne/internal/ngsild/qlang"
	"github.com/zenne-city/zenne/internal/store"
	"github.com/zenne-city/zenne/internal/store/memindex"
)

// The in-memory index (package memindex) must answer every query
// exactly as store.Query.Match applied to every entity in creation order,
// and as the SQL-index path does. These tests generate random entities,
// updates and queries (from strings, through the real parsers) and compare
// the three answers.

const mtNS = "https://example.org/"

// mtExpand expands short names: "location" to the core GeoProperty, names
// with a colon are kept, the others go to mtNS.
func mtExpand(s string) string {
	switch {
	case s == "location":
		return ngsild.IRILocation
	case strings.Contains(s, ":"):
		return s
	}
	return mtNS + s
}

var (
	mtTypes   = []string{"T1", "T2", "T3", "T4", "T5"}
	mtWords   = []string{"alpha", "beta", "gamma", "delta", "epsilon", "Gamma", "5", ""}
	mtScopes  = []string{"/Brussels/Centre", "/Brussels/Ixelles", "/Gent", "/Gent/Zuid/A", "/Antwerp"}
	mtTenants = []string{"", "t2"}
)

// mtWorld generates entities and keeps the model: per tenant, the current
// entities and their creation order.
type mtWorld struct {
	rng     *rand.Rand
	points  [][2]float64 // shared by entities, so exact-point queries hit
	tenants map[string]*mtTenant
	maxID   int
}

type mtTenant struct {
	ents map[string]*ngsild.Entity
	seq  map[string]int // creation position of the current incarnation
	n    int
}

func newMTWorld(seed uint64) *mtWorld {
	w := &mtWorld{rng: rand.New(rand.NewPCG(seed, 0x5eed)), tenants: map[string]*mtTenant{}}
	for range 40 {
		w.points = append(w.points, w.randPoint())
	}
	for _, t := range mtTenants {
		w.tenants[t] = &mtTenant{ents: map[string]*ngsild.Entity{}, seq: map[string]int{}}
	}
	return w
}

func round5(x float64) float64 { return math.Round(x*1e5) / 1e5 }

// randPoint is a point in the box around Brussels (4.30-4.40 E, 50.82-50.88 N).
func (w *mtWorld) randPoint() [2]float64 {
	return [2]float64{round5(4.30 + w.rng.Float64()*0.10), round5(50.82 + w.rng.Float64()*0.06)}
}

func (w *mtWorld) point() [2]float64 {
	if w.rng.IntN(2) == 0 {
		return w.points[w.rng.IntN(len(w.points))]
	}
	return w.randPoint()
}

func pos(p [2]float64) []any { return []any{p[0], p[1]} }

func pointVal(p [2]float64) map[string]any {
	return map[string]any{"type": "Point", "coordinates": pos(p)}
}

// square is a closed ring of half-size d around p.
func square(p [2]float64, d float64) []any {
	a, b := round5(p[0]-d), round5(p[0]+d)
	c, e := round5(p[1]-d), round5(p[1]+d)
	return []any{[]any{a, c}, []any{b, c}, []any{b, e}, []any{a, e}, []any{a, c}}
}

func (w *mtWorld) pick(s []string) string { return s[w.rng.IntN(len(s))] }

func (w *mtWorld) num() float64 {
	v := float64(w.rng.IntN(21))
	if w.rng.IntN(4) == 0 {
		v += 0.5
	}
	return v
}

func (w *mtWorld) longText() string {
	n := 129 + w.rng.IntN(500) // beyond both the memory index (128) and, sometimes, attr_txt (512)
	if w.rng.IntN(8) == 0 {
		n = 128 // the longest the memory index holds
	}
	s := w.pick(mtWords[:5])
	return s + strings.Repeat("x", max(0, n-len(s)))
}

func (w *mtWorld) obsTime() time.Time {
	return time.Date(2024, 1, 1+w.rng.IntN(40), w.rng.IntN(24), 0, 0, 0, time.UTC)
}

// numInst is an instance of "num": mostly numbers, with metadata and
// sub-attributes on some.
func (w *mtWorld) numInst(ds string) *ngsild.Attribute {
	a := &ngsild.Attribute{Kind: ngsild.Property, Value: w.num(), DatasetID: ds}
	switch w.rng.IntN(20) {
	case 0:
		a.Value = strconv.Itoa(w.rng.IntN(10)) // a string where numbers are expected
	case 1:
		a.Value = w.rng.IntN(2) == 0
	case 2:
		a.Value = map[string]any{"@value": w.num()} // a JSON-LD value object
	}
	if w.rng.IntN(3) == 0 {
		a.ObservedAt = w.obsTime()
	}
	if w.rng.IntN(3) == 0 {
		a.UnitCode = w.pick([]string{"CEL", "FAH"})
	}
	if w.rng.IntN(4) == 0 {
		a.Sub = map[string]*ngsild.Attribute{mtExpand("accuracy"): {Kind: ngsild.Property, Value: w.rng.Float64()}}
	}
	return a
}

// insts returns 1 instance, or (1 in 5) 2-3 instances with datasetIds.
func (w *mtWorld) insts(f func(ds string) *ngsild.Attribute) []*ngsild.Attribute {
	out := []*ngsild.Attribute{f("")}
	if w.rng.IntN(5) == 0 {
		for i := range 1 + w.rng.IntN(2) {
			out = append(out, f(fmt.Sprintf("urn:ds:%d", i+1)))
		}
		if w.rng.IntN(3) == 0 {
			out = out[1:] // no default instance
		}
	}
	return out
}

func (w *mtWorld) geoVal() any {
	p := w.point()
	switch r := w.rng.IntN(40); {
	case r < 28:
		return pointVal(p)
	case r < 33:
		return map[string]any{"type": "Polygon", "coordinates": []any{square(p, 0.002+0.01*w.rng.Float64())}}
	case r < 37:
		q := w.point()
		return map[string]any{"type": "LineString", "coordinates": []any{pos(p), pos(q)}}
	case r < 38:
		return map[string]any{"type": "MultiPoint", "coordinates": []any{pos(p), pos(w.point())}}
	case r < 39:
		return fmt.Sprintf(`{"type":"Point","coordinates":[%v,%v]}`, p[0], p[1]) // JSON text
	default:
		return map[string]any{"type": "Point", "coordinates": []any{p[0], 95.0}} // invalid
	}
}

// attr returns a random value for one attribute name (nil: leave it out).
func (w *mtWorld) attr(name string) []*ngsild.Attribute {
	r := w.rng
	prop := func(v any) *ngsild.Attribute { return &ngsild.Attribute{Kind: ngsild.Property, Value: v} }
	switch name {
	case "num":
		return w.insts(w.numInst)
	case "flag":
		return []*ngsild.Attribute{prop(r.IntN(2) == 0)}
	case "str":
		return w.insts(func(ds string) *ngsild.Attribute {
			a := prop(w.pick(mtWords))
			if r.IntN(4) == 0 {
				a.Value = w.longText()
			}
			a.DatasetID = ds
			return a
		})
	case "obj":
		switch r.IntN(6) {
		case 0:
			return []*ngsild.Attribute{prop(w.num())}
		case 1:
			return []*ngsild.Attribute{prop(map[string]any{"k": map[string]any{"k": w.num()}, "s": w.pick(mtWords)})}
		}
		return []*ngsild.Attribute{prop(map[string]any{"k": w.num(), "s": w.pick(mtWords)})}
	case "arr":
		v := []any{w.num(), w.num()}
		if r.IntN(2) == 0 {
			v = append(v, w.pick(mtWords))
		}
		return []*ngsild.Attribute{prop(v)}
	case "rel":
		return w.insts(func(ds string) *ngsild.Attribute {
			a := &ngsild.Attribute{Kind: ngsild.Relationship, Value: fmt.Sprintf("urn:ngsi-ld:Thing:%d", r.IntN(8)), DatasetID: ds}
			if r.IntN(4) == 0 {
				a.ObjectType = []string{mtExpand("Thing")}
			}
			if r.IntN(5) == 0 {
				a.ObservedAt = w.obsTime()
			}
			return a
		})
	case "label":
		v := map[string]any{"en": w.pick(mtWords), "fr": w.pick(mtWords)}
		if r.IntN(4) == 0 {
			v["nl"] = []any{w.pick(mtWords), w.pick(mtWords)}
		}
		return []*ngsild.Attribute{{Kind: ngsild.LanguageProperty, Value: v}}
	case "cat":
		a := &ngsild.Attribute{Kind: ngsild.VocabProperty, Value: mtExpand(fmt.Sprintf("cat%d", r.IntN(4)))}
		if r.IntN(5) == 0 {
			a.Value = []any{mtExpand("cat1"), mtExpand(fmt.Sprintf("cat%d", r.IntN(4)))}
		}
		return []*ngsild.Attribute{a}
	case "doc":
		a := &ngsild.Attribute{Kind: ngsild.JsonProperty, Value: map[string]any{"a": w.num(), "b": map[string]any{"c": w.pick(mtWords)}}}
		if r.IntN(4) == 0 {
			a.Value = w.num()
		}
		return []*ngsild.Attribute{a}
	case "list":
		return []*ngsild.Attribute{{Kind: ngsild.ListProperty, Value: []any{w.num(), w.num()}}}
	case "ts":
		v := fmt.Sprintf("2024-05-%02dT%02d:00:00Z", 1+r.IntN(28), r.IntN(24))
		if r.IntN(5) == 0 {
			v = v[:10] // a date
		}
		return []*ngsild.Attribute{prop(v)}
	case "mixed":
		switch r.IntN(9) {
		case 0:
			return []*ngsild.Attribute{prop(w.num())}
		case 1:
			return []*ngsild.Attribute{prop(strconv.Itoa(r.IntN(10)))}
		case 2:
			return []*ngsild.Attribute{prop(r.IntN(2) == 0)}
		case 3:
			return []*ngsild.Attribute{prop([]any{w.num(), w.pick(mtWords)})}
		case 4:
			return []*ngsild.Attribute{{Kind: ngsild.Relationship, Value: fmt.Sprintf("urn:ngsi-ld:Thing:%d", r.IntN(8))}}
		case 5:
			return []*ngsild.Attribute{{Kind: ngsild.VocabProperty, Value: mtExpand(fmt.Sprintf("cat%d", r.IntN(4)))}}
		case 6:
			return []*ngsild.Attribute{{Kind: ngsild.JsonProperty, Value: w.pick(mtWords)}}
		case 7:
			return []*ngsild.Attribute{{Kind: ngsild.ListRelationship, Value: []any{"urn:ngsi-ld:Thing:1"}}}
		}
		return []*ngsild.Attribute{prop(w.longText())}
	case "location":
		if r.IntN(50) == 0 { // a Property, not a GeoProperty: geo-queries ignore it
			return []*ngsild.Attribute{prop(pointVal(w.point()))}
		}
		return w.insts(func(ds string) *ngsild.Attribute {
			return &ngsild.Attribute{Kind: ngsild.GeoProperty, Value: w.geoVal(), DatasetID: ds}
		})
	case "area":
		v := any(map[string]any{"type": "Polygon", "coordinates": []any{square(w.point(), 0.005)}})
		if r.IntN(3) == 0 {
			v = pointVal(w.point())
		}
		return []*ngsild.Attribute{{Kind: ngsild.GeoProperty, Value: v}}
	}
	panic("unknown attribute " + name)
}

// mtAttrs are the attribute names with the chance (in 10) an entity has each.
var mtAttrs = []struct {
	name string
	p    int
}{
	{"num", 8}, {"flag", 5}, {"str", 6}, {"obj", 3}, {"arr", 3}, {"rel", 5}, {"label", 2}, {"cat", 3},
	{"doc", 2}, {"list", 2}, {"ts", 3}, {"mixed", 4}, {"location", 8}, {"area", 3},
}

func (w *mtWorld) types() []string {
	a := w.rng.IntN(len(mtTypes))
	out := []string{mtExpand(mtTypes[a])}
	if w.rng.IntN(4) == 0 {
		if b := w.rng.IntN(len(mtTypes)); b != a {
			out = append(out, mtExpand(mtTypes[b]))
		}
	}
	return out
}

func (w *mtWorld) scopes() []string {
	if w.rng.IntN(3) > 0 {
		return nil
	}
	out := []string{w.pick(mtScopes)}
	if w.rng.IntN(3) == 0 {
		if s := w.pick(mtScopes); s != out[0] {
			out = append(out, s)
		}
	}
	return out
}

func (w *mtWorld) entity(id string) *ngsild.Entity {
	e := &ngsild.Entity{ID: id, Types: w.types(), Scopes: w.scopes(), Attrs: map[string][]*ngsild.Attribute{}}
	for _, a := range mtAttrs {
		if w.rng.IntN(10) < a.p {
			e.Attrs[mtExpand(a.name)] = w.attr(a.name)
		}
	}
	return e
}

func mtID(i int) string { return fmt.Sprintf("urn:ngsi-ld:E:%d", i) }

// mtOp is one write: the entity's next state (nil deletes).
type mtOp struct {
	id  string
	ent *ngsild.Entity
}

// set records an op in the model.
func (w *mtWorld) set(tenant string, op mtOp) {
	t := w.tenants[tenant]
	_, existed := t.ents[op.id]
	if op.ent == nil {
		delete(t.ents, op.id)
		delete(t.seq, op.id)
		return
	}
	t.ents[op.id] = op.ent
	if !existed {
		t.seq[op.id] = t.n
		t.n++
	}
}

func (w *mtWorld) create(tenant string) mtOp {
	id := mtID(w.maxID)
	w.maxID++
	op := mtOp{id, w.entity(id)}
	w.set(tenant, op)
	return op
}

// randomOp changes, deletes or (re)creates an entity of tenant.
func (w *mtWorld) randomOp(tenant string) mtOp {
	t := w.tenants[tenant]
	r := w.rng
	id := mtID(r.IntN(w.maxID + 3))
	if id == mtID(w.maxID) {
		w.maxID++
	}
	cur := t.ents[id]
	var next *ngsild.Entity
	switch {
	case cur == nil:
		next = w.entity(id) // create, or recreate a deleted one
	case r.IntN(8) == 0:
		next = nil // delete
	default:
		next = cur.Derive()
		switch r.IntN(8) {
		case 0:
			next = w.entity(id) // replace
		case 1:
			next.Types = w.types()
		case 2:
			next.Scopes = w.scopes()
		case 3: // remove an attribute
			for name := range next.Attrs {
				delete(next.Attrs, name)
				break
			}
		default: // set or add an attribute
			a := mtAttrs[r.IntN(len(mtAttrs))].name
			next.Attrs[mtExpand(a)] = w.attr(a)
		}
	}
	op := mtOp{id, next}
	w.set(tenant, op)
	return op
}

func mtWrite(s *Store, tenant string, ops []mtOp) error {
	sops := make([]store.Op, len(ops))
	for i, op := range ops {
		ent := op.ent
		sops[i] = store.Op{ID: op.id, Apply: func(*ngsild.Entity) (*ngsild.Entity, error) { return ent, nil }}
	}
	res, err := s.Write(context.Background(), tenant, sops)
	if err != nil {
		return fmt.Errorf("Write: %w", err)
	}
	for _, r := range res {
		if r.Err != nil {
			return fmt.Errorf("Write %s: %w", r.ID, r.Err)
		}
	}
	return nil
}

// mtWriteAll writes ops per tenant to every store, the tenants concurrently
// (their writes may share a group transaction).
func mtWriteAll(t *testing.T, stores []*Store, ops map[string][]mtOp) {
	t.Helper()
	for _, s := range stores {
		var wg sync.WaitGroup
		errs := make([]error, len(mtTenants))
		for i, tenant := range mtTenants {
			if tops := ops[tenant]; len(tops) > 0 {
				wg.Go(func() { errs[i] = mtWrite(s, tenant, tops) })
			}
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
	}
}

// --- queries ---

// mtSpec is a query as its request parameters.
type mtSpec struct {
	tenant                                string
	ids                                   []string
	idPattern, typ, attrs, q, scopeQ      string
	georel, geometry, coords, geoproperty string
	limit, offset                         int
	count                                 bool
}

func (s mtSpec) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "tenant=%q", s.tenant)
	if len(s.ids) > 0 {
		fmt.Fprintf(&b, " id=%s", strings.Join(s.ids, ","))
	}
	for _, kv := range [][2]string{{"idPattern", s.idPattern}, {"type", s.typ}, {"attrs", s.attrs}, {"q", s.q},
		{"scopeQ", s.scopeQ}, {"georel", s.georel}, {"geometry", s.geometry}, {"coordinates", s.coords}, {"geoproperty", s.geoproperty}} {
		if kv[1] != "" {
			fmt.Fprintf(&b, " %s=%s", kv[0], kv[1])
		}
	}
	fmt.Fprintf(&b, " limit=%d offset=%d count=%v", s.limit, s.offset, s.count)
	return b.String()
}

func (s mtSpec) query(t testing.TB) *store.Query {
	t.Helper()
	q := &store.Query{IDs: s.ids, Limit: s.limit, Offset: s.offset, Count: s.count}
	var err error
	if s.idPattern != "" {
		q.IDPattern = regexp.MustCompile(s.idPattern)
	}
	if s.typ != "" {
		if q.Type, err = qlang.ParseTypeQuery(s.typ, mtExpand); err != nil {
			t.Fatalf("type %q: %v", s.typ, err)
		}
	}
	if s.attrs != "" {
		for _, a := range strings.Split(s.attrs, ",") {
			q.Attrs = append(q.Attrs, mtExpand(a))
		}
	}
	if s.q != "" {
		if q.Q, err = qlang.ParseQ(s.q, mtExpand); err != nil {
			t.Fatalf("q %q: %v", s.q, err)
		}
	}
	if s.scopeQ != "" {
		if q.ScopeQ, err = qlang.ParseScopeQ(s.scopeQ); err != nil {
			t.Fatalf("scopeQ %q: %v", s.scopeQ, err)
		}
	}
	if s.georel != "" {
		if q.Geo, err = geo.ParseQuery(s.georel, s.geometry, s.coords, s.geoproperty, mtExpand); err != nil {
			t.Fatalf("geo %q %q %q: %v", s.georel, s.geometry, s.coords, err)
		}
	}
	return q
}

func fnum(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }

func jsonPos(p [2]float64) string { return "[" + fnum(p[0]) + "," + fnum(p[1]) + "]" }

func jsonRing(ring []any) string {
	var parts []string
	for _, p := range ring {
		xy := p.([]any)
		parts = append(parts, jsonPos([2]float64{xy[0].(float64), xy[1].(float64)}))
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// qTerm is one random q term.
func (w *mtWorld) qTerm() string {
	r := w.rng
	n := func() string { return fnum(w.num()) }
	word := func() string { return strconv.Quote(w.pick(mtWords)) }
	cmp := func() string { return w.pick([]string{">", ">=", "<", "<=", "==", "!="}) }
	thing := func() string { return fmt.Sprintf("urn:ngsi-ld:Thing:%d", r.IntN(8)) }
	switch r.IntN(21) {
	case 0, 1:
		return "num" + cmp() + n()
	case 2:
		a, b := w.num(), w.num()
		if r.IntN(5) > 0 && a > b {
			a, b = b, a
		}
		return w.pick([]string{"num==", "num!="}) + fnum(a) + ".." + fnum(b)
	case 3:
		return w.pick([]string{"num==", "num!="}) + n() + "," + n() + "," + n()
	case 4:
		return w.pick([]string{"flag==true", "flag==false", "flag!=true", "flag", "!flag", "num==true", `num=="5"`, "!num", "num"})
	case 5:
		return "str" + cmp() + word()
	case 6:
		return "str" + w.pick([]string{"~=", "!~="}) + w.pick([]string{"^al", "a$", "x{3}", `"^(alpha|beta)"`, "(?i)^GAMMA", "^delta.*x$", "^$", "x{200}"})
	case 7:
		return w.pick([]string{`str=="alpha".."delta"`, `str!="beta".."gamma"`, `str=="alpha","beta"`, "str", "!str"})
	case 8:
		return w.pick([]string{"obj[k]" + cmp() + n(), `obj[s]==` + word(), "obj[k]", "!obj[k]", "obj[k]==3..9", "obj==" + n(), "obj[k][k]>" + n(), "obj"})
	case 9:
		return w.pick([]string{"arr==" + n(), "arr" + cmp() + n(), "arr==" + word(), "arr!=" + n(), "arr~=^a"})
	case 10:
		return w.pick([]string{`rel=="` + thing() + `"`, "rel==" + thing(), "rel!=" + thing(), "rel~=Thing:[0-3]", "rel", "!rel",
			"rel==" + thing() + "," + thing(), `rel>"urn:ngsi-ld:Thing:3"`})
	case 11:
		return w.pick([]string{"label==" + word(), "label~=^b", "label!=" + word(), "label", `label>"c"`})
	case 12:
		c := fmt.Sprintf("cat%d", r.IntN(4))
		return w.pick([]string{`cat=="` + c + `"`, `cat=="` + mtExpand(c) + `"`, `cat!="` + c + `"`, "cat~=cat[12]$", `cat>"https://example.org/cat1"`,
			`cat=="cat0".."cat2"`, "cat==" + mtExpand(c)})
	case 13:
		return w.pick([]string{"num.observedAt>2024-01-20T00:00:00Z", `num.unitCode=="CEL"`, "num.accuracy>0.5", `num.datasetId=="urn:ds:1"`,
			"num.observedAt", "!num.unitCode", "rel.observedAt<2024-01-15", "num.accuracy", "!num.accuracy", "str.observedAt"})
	case 14:
		return w.pick([]string{"location", "!location", "area", "!area", "location~=Point", "location!=" + n(), "area==" + word()})
	case 15:
		return w.pick([]string{"ts>2024-05-10T00:00:00Z", "ts==2024-05-01..2024-05-15", "ts<2024-05-20", `ts>"2024-05-10"`, "ts~=-0[1-5]T",
			"ts>=12:00", "ts!=2024-05-03"})
	case 16:
		return w.pick([]string{"doc[a]" + cmp() + n(), "doc==" + n(), "list==" + n(), "list" + cmp() + n(), "doc[a]", `doc[b][c]==` + word(), "doc", "!list"})
	case 17:
		return w.pick([]string{"mixed==" + n(), `mixed=="5"`, "mixed==true", "mixed" + cmp() + n(), "mixed==" + thing(), `mixed=="cat1"`,
			"mixed", "!mixed", "mixed~=^a", "mixed!=" + word()})
	case 18:
		return w.pick([]string{"nope==1", "!nope", "nope", "nope.observedAt", "nope[k]"})
	case 19:
		// Keys of a GeoProperty value: the projection of a Point must not change them.
		return w.pick([]string{`location[type]=="Point"`, `location[type]!="Polygon"`, "location[coordinates]", "!location[type]", `area[type]=="Point"`})
	default:
		return "num" + cmp() + n()
	}
}

func (w *mtWorld) qExpr() string {
	r := w.rng
	n := 1 + r.IntN(3)
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(w.pick([]string{";", ";", "|"}))
		}
		if r.IntN(4) == 0 {
			fmt.Fprintf(&b, "(%s%s%s)", w.qTerm(), w.pick([]string{";", "|"}), w.qTerm())
		} else {
			b.WriteString(w.qTerm())
		}
	}
	return b.String()
}

func (w *mtWorld) typeExpr() string {
	r := w.rng
	t := func() string {
		if r.IntN(15) == 0 {
			return "T9" // unknown
		}
		return w.pick(mtTypes)
	}
	switch r.IntN(7) {
	case 0, 1:
		return t()
	case 2:
		return t() + "," + t()
	case 3:
		return t() + "|" + t() + "|" + t()
	case 4:
		return t() + ";" + t()
	case 5:
		return "(" + t() + "|" + t() + ");" + t()
	default:
		return t() + ";(" + t() + "," + t() + ")"
	}
}

func (w *mtWorld) geoQuery(s *mtSpec) {
	r := w.rng
	p := w.point()
	box := func() string {
		c := w.point()
		return "[" + jsonRing(square(c, 0.003+0.03*r.Float64())) + "]"
	}
	switch r.IntN(10) {
	case 0, 1:
		s.georel = "near;maxDistance==" + w.pick([]string{"0", "50", "300", "1000", "3000"})
		s.geometry, s.coords = "Point", jsonPos(p)
	case 2:
		s.georel = "near;minDistance==" + w.pick([]string{"500", "2000", "5000"})
		s.geometry, s.coords = "Point", jsonPos(p)
	case 3:
		s.georel = "near;minDistance==500;maxDistance==2500"
		s.geometry, s.coords = "Point", jsonPos(p)
	case 4, 5:
		s.georel, s.geometry, s.coords = "within", "Polygon", box()
	case 6:
		s.georel = "intersects"
		switch r.IntN(3) {
		case 0:
			s.geometry, s.coords = "Polygon", box()
		case 1:
			s.geometry, s.coords = "LineString", "["+jsonPos(p)+","+jsonPos(w.point())+"]"
		default:
			s.geometry, s.coords = "Point", jsonPos(p)
		}
	case 7:
		s.georel, s.geometry, s.coords = "disjoint", "Polygon", box()
	case 8:
		s.georel, s.geometry, s.coords = w.pick([]string{"contains", "equals"}), "Point", jsonPos(p)
	default:
		s.georel, s.geometry, s.coords = "overlaps", "Polygon", box()
	}
	switch r.IntN(20) {
	case 0, 1, 2:
		s.geoproperty = "area"
	case 3:
		s.geoproperty = w.pick([]string{"nope", "num"}) // unknown; not a GeoProperty
	}
}

func (w *mtWorld) spec() mtSpec {
	r := w.rng
	s := mtSpec{tenant: w.pick(mtTenants), limit: r.IntN(31), offset: r.IntN(21), count: r.IntN(2) == 0}
	if r.IntN(4) == 0 {
		s.offset = 0
	}
	if r.IntN(50) == 0 {
		s.tenant = "nope"
	}
	if r.IntN(10) == 0 {
		for range 1 + r.IntN(5) {
			s.ids = append(s.ids, mtID(r.IntN(w.maxID+2)))
		}
	}
	if r.IntN(10) == 0 {
		s.idPattern = w.pick([]string{`^urn:ngsi-ld:E:1`, `[02468]$`, `E:(1|2)\d$`, `.*`, `^nope`})
	}
	if r.IntN(20) < 9 {
		s.typ = w.typeExpr()
	}
	if r.IntN(7) == 0 {
		names := []string{"num", "str", "obj", "label", "location", "area", "mixed", "nope"}
		s.attrs = w.pick(names)
		if r.IntN(2) == 0 {
			s.attrs += "," + w.pick(names)
		}
	}
	if r.IntN(10) < 6 {
		s.q = w.qExpr()
	}
	if r.IntN(7) == 0 {
		s.scopeQ = w.pick([]string{"/Brussels/#", "/Gent", "/+/Centre", "/Brussels/Centre,/Gent", "/Brussels/#;/+/Ixelles", "/#",
			"/Gent/#", "(/Brussels/Centre|/Gent);/Brussels/#", "/Gent/+/A"})
	}
	if r.IntN(20) < 7 {
		w.geoQuery(&s)
	}
	return s
}

// --- answers ---

// mtSnapshot reads every entity of the model from s, per tenant in creation
// order, and checks that deleted ids are gone.
func (w *mtWorld) snapshot(t *testing.T, s *Store) map[string][]*ngsild.Entity {
	t.Helper()
	ctx := context.Background()
	out := map[string][]*ngsild.Entity{}
	for name, tn := range w.tenants {
		out[name] = []*ngsild.Entity{}
		ids := make([]string, 0, len(tn.ents))
		for id := range tn.ents {
			ids = append(ids, id)
		}
		slices.SortFunc(ids, func(a, b string) int { return tn.seq[a] - tn.seq[b] })
		for _, id := range ids {
			e, err := s.Get(ctx, name, id)
			if err != nil {
				t.Fatalf("Get %q %s: %v", name, id, err)
			}
			out[name] = append(out[name], e)
		}
		for i := range w.maxID {
			if id := mtID(i); tn.ents[id] == nil {
				if _, err := s.Get(ctx, name, id); !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrNoTenant) {
					t.Fatalf("Get deleted %q %s: %v, want ErrNotFound", name, id, err)
				}
			}
		}
	}
	return out
}

// bruteForce pages the entities matching q.
func bruteForce(ents []*ngsild.Entity, q *store.Query) (ids []string, count int) {
	count = -1
	if q.Limit <= 0 && !q.Count {
		return []string{}, count
	}
	matched := 0
	ids = []string{}
	for _, e := range ents {
		if !q.Match(e) {
			continue
		}
		matched++
		if matched > max(q.Offset, 0) && len(ids) < q.Limit {
			ids = append(ids, e.ID)
		}
	}
	if q.Count {
		count = matched
	}
	return ids, count
}

func entIDs(es []*ngsild.Entity) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

type mtChecker struct {
	t      *testing.T
	fails  int
	checks int
}

// check runs spec on every store and compares with the brute-force answer.
func (c *mtChecker) check(what string, spec mtSpec, snap map[string][]*ngsild.Entity, stores map[string]*Store) {
	t := c.t
	t.Helper()
	if c.fails >= 15 {
		return
	}
	c.checks++
	q := spec.query(t)
	ents, tenantOK := snap[spec.tenant]
	wantIDs, wantCount := bruteForce(ents, q)
	for _, name := range []string{"mem"} {
		s := stores[name]
		if s == nil {
			continue
		}
		res, err := s.Query(context.Background(), spec.tenant, q)
		if !tenantOK {
			if !errors.Is(err, store.ErrNoTenant) {
				c.fails++
				t.Errorf("%s %s: %s: err %v, want ErrNoTenant", what, name, spec, err)
			}
			continue
		}
		if err != nil {
			c.fails++
			t.Errorf("%s %s: %s: %v", what, name, spec, err)
			continue
		}
		got := entIDs(res.Entities)
		if !slices.Equal(got, wantIDs) || res.Count != wantCount {
			c.fails++
			t.Errorf("%s: %s store differs from Match\n query: %s\n got  %d %v\n want %d %v", what, name, spec, res.Count, got, wantCount, wantIDs)
		}
	}
}

func mtSizes() (entities, updates, queries, reopenQueries int) {
	if raceEnabled {
		return 240, 120, 150, 60
	}
	return 600, 300, 400, 150
}

func TestMemIndexDifferential(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	memPath := filepath.Join(dir, "mem.db")
	sm, err := Open(ctx, memPath, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { sm.Close() }()
	waitMemIndex(t, sm) // the writes below update the built index
	stores := []*Store{sm}

	nEnt, nUpd, nQ, nReopen := mtSizes()
	w := newMTWorld(20240501)
	for done := 0; done < nEnt; {
		ops := map[string][]mtOp{}
		for range 1 + w.rng.IntN(40) {
			tenant := w.pick(mtTenants)
			ops[tenant] = append(ops[tenant], w.create(tenant))
			done++
		}
		mtWriteAll(t, stores, ops)
	}
	for done := 0; done < nUpd; {
		ops := map[string][]mtOp{}
		for range 1 + w.rng.IntN(12) {
			tenant := w.pick(mtTenants)
			ops[tenant] = append(ops[tenant], w.randomOp(tenant))
			done++
		}
		mtWriteAll(t, stores, ops)
	}

	snap := w.snapshot(t, sm)
	c := &mtChecker{t: t}
	both := map[string]*Store{"mem": sm}
	specs := make([]mtSpec, nQ)
	for i := range specs {
		specs[i] = w.spec()
		c.check(fmt.Sprintf("query %d", i), specs[i], snap, both)
	}
	t.Logf("%d queries; entities per tenant: %d, %d", c.checks, len(snap[""]), len(snap["t2"]))

	// The index built from the file must answer the same, also while the
	// writer changes entities during the build.
	if err := sm.Close(); err != nil {
		t.Fatal(err)
	}
	if sm, err = Open(ctx, memPath, Options{}); err != nil {
		t.Fatal(err)
	}
	// A query before the build is done waits for it.
	c.check("before build", specs[0], snap, map[string]*Store{"mem": sm})
	waitMemIndex(t, sm)
	for i := range nReopen {
		c.check(fmt.Sprintf("reopened, query %d", i), specs[i], snap, map[string]*Store{"mem": sm})
	}

	// Writes during the build, and after it, on the reopened store.
	if err := sm.Close(); err != nil {
		t.Fatal(err)
	}
	if sm, err = Open(ctx, memPath, Options{}); err != nil {
		t.Fatal(err)
	}
	stores = []*Store{sm}
	for round := range 6 {
		if round == 3 {
			waitMemIndex(t, sm)
		}
		ops := map[string][]mtOp{}
		for range 1 + w.rng.IntN(20) {
			tenant := w.pick(mtTenants)
			ops[tenant] = append(ops[tenant], w.randomOp(tenant))
		}
		mtWriteAll(t, stores, ops)
	}
	snap = w.snapshot(t, sm)
	both = map[string]*Store{"mem": sm}
	for i := range nReopen {
		c.check(fmt.Sprintf("written after reopen, query %d", i), w.spec(), snap, both)
	}
}

// Queries running while the writer changes entities (and while the index is
// being built) must not fail and must return only entities that match.
func TestMemIndexConcurrent(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "c.db")
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	nEnt, nWrites, readers := 400, 600, 4
	if raceEnabled {
		nEnt, nWrites = 200, 150
	}
	w := newMTWorld(7)
	for done := 0; done < nEnt; done += 50 {
		ops := map[string][]mtOp{}
		for range 50 {
			tenant := w.pick(mtTenants)
			ops[tenant] = append(ops[tenant], w.create(tenant))
		}
		mtWriteAll(t, []*Store{s}, ops)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopen: the index is built while the queries and writes below run.
	if s, err = Open(ctx, path, Options{}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	// Query specs are drawn up front from a world that knows the ids.
	var specs []mtSpec
	var queries []*store.Query
	for range 300 {
		specs = append(specs, w.spec())
		queries = append(queries, specs[len(specs)-1].query(t))
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	var nq atomic.Int64
	errs := make(chan error, readers)
	for i := range readers {
		wg.Go(func() {
			for n := i; !stop.Load(); n += readers {
				spec, q := specs[n%len(specs)], queries[n%len(specs)]
				if n%(8*readers) < readers {
					time.Sleep(time.Millisecond) // leave the writer some CPU
				}
				res, err := s.Query(ctx, spec.tenant, q)
				nq.Add(1)
				if spec.tenant == "nope" {
					if !errors.Is(err, store.ErrNoTenant) {
						errs <- fmt.Errorf("%s: %v, want ErrNoTenant", spec, err)
						return
					}
					continue
				}
				if err != nil {
					errs <- fmt.Errorf("%s: %v", spec, err)
					return
				}
				seen := map[string]bool{}
				for _, e := range res.Entities {
					if !q.Match(e) {
						errs <- fmt.Errorf("%s: returned %s, which does not match", spec, e.ID)
						return
					}
					if seen[e.ID] {
						errs <- fmt.Errorf("%s: returned %s twice", spec, e.ID)
						return
					}
					seen[e.ID] = true
				}
				if len(res.Entities) > max(q.Limit, 0) {
					errs <- fmt.Errorf("%s: %d entities, limit %d", spec, len(res.Entities), q.Limit)
					return
				}
				if q.Count && res.Count < len(res.Entities) || !q.Count && res.Count != -1 {
					errs <- fmt.Errorf("%s: count %d with %d entities", spec, res.Count, len(res.Entities))
					return
				}
			}
		})
	}
	defer func() { stop.Store(true); wg.Wait() }() // before Close, also on Fatal
	for range nWrites {
		ops := map[string][]mtOp{}
		for range 1 + w.rng.IntN(10) {
			tenant := w.pick(mtTenants)
			ops[tenant] = append(ops[tenant], w.randomOp(tenant))
		}
		mtWriteAll(t, []*Store{s}, ops)
		if len(errs) > 0 {
			break
		}
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d queries during %d writes", nq.Load(), nWrites)

	// Quiet again: the index the build and the writer left must be exact.
	waitMemIndex(t, s)
	snap := w.snapshot(t, s)
	c := &mtChecker{t: t}
	for i := range 100 {
		c.check(fmt.Sprintf("after concurrent writes, query %d", i), w.spec(), snap, map[string]*Store{"mem": s})
	}
}

// Members of a GeoProperty's GeoJSON value (location[type]) are terms like
// any other: the index, which holds a Point as its coordinates, must answer
// them as Match does on the stored value.
func TestMemIndexGeoPropertyKeys(t *testing.T) {
	ctx := context.Background()
	e := &ngsild.Entity{ID: "urn:ngsi-ld:E:1", Types: []string{mtExpand("T1")}, Attrs: map[string][]*ngsild.Attribute{
		ngsild.IRILocation: {{Kind: ngsild.GeoProperty, Value: pointVal([2]float64{4.35, 50.85})}},
	}}
	stores := map[string]*Store{}
	for name, opts := range map[string]Options{"mem": {}} {
		s, err := Open(ctx, filepath.Join(t.TempDir(), name+".db"), opts)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		waitMemIndex(t, s)
		if err := mtWrite(s, "", []mtOp{{e.ID, e}}); err != nil {
			t.Fatal(err)
		}
		stores[name] = s
	}
	snap := map[string][]*ngsild.Entity{"": {e}}
	c := &mtChecker{t: t}
	for _, q := range []string{`location[type]=="Point"`, `location[coordinates]`, `!location[type]`, `location[type]!="Polygon"`} {
		c.check("point keys", mtSpec{q: q, limit: 10, count: true}, snap, stores)
	}
}

// An index built while the writer changes entities must end up exact: what
// the writer sets during the build wins over the build's older snapshot.
func TestMemIndexBuildDuringWrites(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "b.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	waitMemIndex(t, s)
	nEnt, rounds := 1500, 4
	if raceEnabled {
		nEnt, rounds = 400, 2
	}
	w := newMTWorld(99)
	for done := 0; done < nEnt; done += 100 {
		ops := map[string][]mtOp{}
		for range 100 {
			tenant := w.pick(mtTenants)
			ops[tenant] = append(ops[tenant], w.create(tenant))
		}
		mtWriteAll(t, []*Store{s}, ops)
	}
	c := &mtChecker{t: t}
	for round := range rounds {
		// A fresh index, built the way Open builds it, while writes go on.
		// (No write or query is running: the writer and the build goroutine
		// see the new index through the channels that start them.)
		s.mem = memindex.New()
		built := make(chan error, 1)
		go func() { built <- s.buildMemIndex(ctx) }()
		writes := 0 // started before the build was done
		for n := 0; n < 3 || !s.mem.Built(); n++ {
			if !s.mem.Built() {
				writes++
			}
			ops := map[string][]mtOp{}
			for range 1 + w.rng.IntN(20) {
				tenant := w.pick(mtTenants)
				ops[tenant] = append(ops[tenant], w.randomOp(tenant))
			}
			mtWriteAll(t, []*Store{s}, ops)
		}
		if err := <-built; err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: %d writes started during the build", round, writes)
		snap := w.snapshot(t, s)
		for i := range 60 {
			c.check(fmt.Sprintf("round %d (%d writes during the build), query %d", round, writes, i), w.spec(), snap, map[string]*Store{"mem": s})
		}
	}
}

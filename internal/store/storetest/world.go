package storetest

// A random world of entities for differential tests of query answers: it
// generates entities, updates and queries (from strings, through the real
// parsers) and keeps the model, so that a store's answers can be compared
// with store.Query.Match applied to every entity in creation order
// (BruteForce). Both stores' query index tests use it.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/ngsild/geo"
	"github.com/zenne-city/zenne/internal/ngsild/qlang"
	"github.com/zenne-city/zenne/internal/store"
)

const worldNS = "https://example.org/"

// WorldExpand expands short names: "location" to the core GeoProperty, names
// with a colon are kept, the others go to worldNS.
func WorldExpand(s string) string {
	switch {
	case s == "location":
		return ngsild.IRILocation
	case strings.Contains(s, ":"):
		return s
	}
	return worldNS + s
}

var (
	worldTypes  = []string{"T1", "T2", "T3", "T4", "T5"}
	worldWords  = []string{"alpha", "beta", "gamma", "delta", "epsilon", "Gamma", "5", ""}
	worldScopes = []string{"/Brussels/Centre", "/Brussels/Ixelles", "/Gent", "/Gent/Zuid/A", "/Antwerp"}
	// WorldTenants are the tenants a World writes to.
	WorldTenants = []string{"", "t2"}
)

// World generates entities and keeps the model: per tenant, the current
// entities and their creation order.
type World struct {
	Rng     *rand.Rand
	points  [][2]float64 // shared by entities, so exact-point queries hit
	tenants map[string]*worldTenant
	maxID   int
}

type worldTenant struct {
	ents map[string]*ngsild.Entity
	seq  map[string]int // creation position of the current incarnation
	n    int
}

// NewWorld returns an empty world whose choices follow seed.
func NewWorld(seed uint64) *World {
	w := &World{Rng: rand.New(rand.NewPCG(seed, 0x5eed)), tenants: map[string]*worldTenant{}}
	for range 40 {
		w.points = append(w.points, w.randPoint())
	}
	for _, t := range WorldTenants {
		w.tenants[t] = &worldTenant{ents: map[string]*ngsild.Entity{}, seq: map[string]int{}}
	}
	return w
}

func round5(x float64) float64 { return math.Round(x*1e5) / 1e5 }

// randPoint is a point in the box around Brussels (4.30-4.40 E, 50.82-50.88 N).
func (w *World) randPoint() [2]float64 {
	return [2]float64{round5(4.30 + w.Rng.Float64()*0.10), round5(50.82 + w.Rng.Float64()*0.06)}
}

func (w *World) point() [2]float64 {
	if w.Rng.IntN(2) == 0 {
		return w.points[w.Rng.IntN(len(w.points))]
	}
	return w.randPoint()
}

func pos(p [2]float64) []any { return []any{p[0], p[1]} }

// PointValue is the GeoJSON Point at p (longitude, latitude).
func PointValue(p [2]float64) map[string]any {
	return map[string]any{"type": "Point", "coordinates": pos(p)}
}

// square is a closed ring of half-size d around p.
func square(p [2]float64, d float64) []any {
	a, b := round5(p[0]-d), round5(p[0]+d)
	c, e := round5(p[1]-d), round5(p[1]+d)
	return []any{[]any{a, c}, []any{b, c}, []any{b, e}, []any{a, e}, []any{a, c}}
}

// Pick returns one of s at random.
func (w *World) Pick(s []string) string { return s[w.Rng.IntN(len(s))] }

func (w *World) num() float64 {
	v := float64(w.Rng.IntN(21))
	if w.Rng.IntN(4) == 0 {
		v += 0.5
	}
	return v
}

func (w *World) longText() string {
	n := 129 + w.Rng.IntN(500) // beyond both the memory index (128) and, sometimes, attr_txt (512)
	if w.Rng.IntN(8) == 0 {
		n = 128 // the longest the memory index holds
	}
	s := w.Pick(worldWords[:5])
	return s + strings.Repeat("x", max(0, n-len(s)))
}

func (w *World) obsTime() time.Time {
	return time.Date(2024, 1, 1+w.Rng.IntN(40), w.Rng.IntN(24), 0, 0, 0, time.UTC)
}

// numInst is an instance of "num": mostly numbers, with metadata and
// sub-attributes on some.
func (w *World) numInst(ds string) *ngsild.Attribute {
	a := &ngsild.Attribute{Kind: ngsild.Property, Value: w.num(), DatasetID: ds}
	switch w.Rng.IntN(20) {
	case 0:
		a.Value = strconv.Itoa(w.Rng.IntN(10)) // a string where numbers are expected
	case 1:
		a.Value = w.Rng.IntN(2) == 0
	case 2:
		a.Value = map[string]any{"@value": w.num()} // a JSON-LD value object
	}
	if w.Rng.IntN(3) == 0 {
		a.ObservedAt = w.obsTime()
	}
	if w.Rng.IntN(3) == 0 {
		a.UnitCode = w.Pick([]string{"CEL", "FAH"})
	}
	if w.Rng.IntN(4) == 0 {
		a.Sub = map[string]*ngsild.Attribute{WorldExpand("accuracy"): {Kind: ngsild.Property, Value: w.Rng.Float64()}}
	}
	return a
}

// insts returns 1 instance, or (1 in 5) 2-3 instances with datasetIds.
func (w *World) insts(f func(ds string) *ngsild.Attribute) []*ngsild.Attribute {
	out := []*ngsild.Attribute{f("")}
	if w.Rng.IntN(5) == 0 {
		for i := range 1 + w.Rng.IntN(2) {
			out = append(out, f(fmt.Sprintf("urn:ds:%d", i+1)))
		}
		if w.Rng.IntN(3) == 0 {
			out = out[1:] // no default instance
		}
	}
	return out
}

func (w *World) geoVal() any {
	p := w.point()
	switch r := w.Rng.IntN(40); {
	case r < 28:
		return PointValue(p)
	case r < 33:
		return map[string]any{"type": "Polygon", "coordinates": []any{square(p, 0.002+0.01*w.Rng.Float64())}}
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
func (w *World) attr(name string) []*ngsild.Attribute {
	r := w.Rng
	prop := func(v any) *ngsild.Attribute { return &ngsild.Attribute{Kind: ngsild.Property, Value: v} }
	switch name {
	case "num":
		return w.insts(w.numInst)
	case "flag":
		return []*ngsild.Attribute{prop(r.IntN(2) == 0)}
	case "str":
		return w.insts(func(ds string) *ngsild.Attribute {
			a := prop(w.Pick(worldWords))
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
			return []*ngsild.Attribute{prop(map[string]any{"k": map[string]any{"k": w.num()}, "s": w.Pick(worldWords)})}
		}
		return []*ngsild.Attribute{prop(map[string]any{"k": w.num(), "s": w.Pick(worldWords)})}
	case "arr":
		v := []any{w.num(), w.num()}
		if r.IntN(2) == 0 {
			v = append(v, w.Pick(worldWords))
		}
		return []*ngsild.Attribute{prop(v)}
	case "rel":
		return w.insts(func(ds string) *ngsild.Attribute {
			a := &ngsild.Attribute{Kind: ngsild.Relationship, Value: fmt.Sprintf("urn:ngsi-ld:Thing:%d", r.IntN(8)), DatasetID: ds}
			if r.IntN(4) == 0 {
				a.ObjectType = []string{WorldExpand("Thing")}
			}
			if r.IntN(5) == 0 {
				a.ObservedAt = w.obsTime()
			}
			return a
		})
	case "label":
		v := map[string]any{"en": w.Pick(worldWords), "fr": w.Pick(worldWords)}
		if r.IntN(4) == 0 {
			v["nl"] = []any{w.Pick(worldWords), w.Pick(worldWords)}
		}
		return []*ngsild.Attribute{{Kind: ngsild.LanguageProperty, Value: v}}
	case "cat":
		a := &ngsild.Attribute{Kind: ngsild.VocabProperty, Value: WorldExpand(fmt.Sprintf("cat%d", r.IntN(4)))}
		if r.IntN(5) == 0 {
			a.Value = []any{WorldExpand("cat1"), WorldExpand(fmt.Sprintf("cat%d", r.IntN(4)))}
		}
		return []*ngsild.Attribute{a}
	case "doc":
		a := &ngsild.Attribute{Kind: ngsild.JsonProperty, Value: map[string]any{"a": w.num(), "b": map[string]any{"c": w.Pick(worldWords)}}}
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
			return []*ngsild.Attribute{prop([]any{w.num(), w.Pick(worldWords)})}
		case 4:
			return []*ngsild.Attribute{{Kind: ngsild.Relationship, Value: fmt.Sprintf("urn:ngsi-ld:Thing:%d", r.IntN(8))}}
		case 5:
			return []*ngsild.Attribute{{Kind: ngsild.VocabProperty, Value: WorldExpand(fmt.Sprintf("cat%d", r.IntN(4)))}}
		case 6:
			return []*ngsild.Attribute{{Kind: ngsild.JsonProperty, Value: w.Pick(worldWords)}}
		case 7:
			return []*ngsild.Attribute{{Kind: ngsild.ListRelationship, Value: []any{"urn:ngsi-ld:Thing:1"}}}
		}
		return []*ngsild.Attribute{prop(w.longText())}
	case "location":
		if r.IntN(50) == 0 { // a Property, not a GeoProperty: geo-queries ignore it
			return []*ngsild.Attribute{prop(PointValue(w.point()))}
		}
		return w.insts(func(ds string) *ngsild.Attribute {
			return &ngsild.Attribute{Kind: ngsild.GeoProperty, Value: w.geoVal(), DatasetID: ds}
		})
	case "area":
		v := any(map[string]any{"type": "Polygon", "coordinates": []any{square(w.point(), 0.005)}})
		if r.IntN(3) == 0 {
			v = PointValue(w.point())
		}
		return []*ngsild.Attribute{{Kind: ngsild.GeoProperty, Value: v}}
	}
	panic("unknown attribute " + name)
}

// worldAttrs are the attribute names with the chance (in 10) an entity has each.
var worldAttrs = []struct {
	name string
	p    int
}{
	{"num", 8}, {"flag", 5}, {"str", 6}, {"obj", 3}, {"arr", 3}, {"rel", 5}, {"label", 2}, {"cat", 3},
	{"doc", 2}, {"list", 2}, {"ts", 3}, {"mixed", 4}, {"location", 8}, {"area", 3},
}

func (w *World) types() []string {
	a := w.Rng.IntN(len(worldTypes))
	out := []string{WorldExpand(worldTypes[a])}
	if w.Rng.IntN(4) == 0 {
		if b := w.Rng.IntN(len(worldTypes)); b != a {
			out = append(out, WorldExpand(worldTypes[b]))
		}
	}
	return out
}

func (w *World) scopes() []string {
	if w.Rng.IntN(3) > 0 {
		return nil
	}
	out := []string{w.Pick(worldScopes)}
	if w.Rng.IntN(3) == 0 {
		if s := w.Pick(worldScopes); s != out[0] {
			out = append(out, s)
		}
	}
	return out
}

func (w *World) entity(id string) *ngsild.Entity {
	e := &ngsild.Entity{ID: id, Types: w.types(), Scopes: w.scopes(), Attrs: map[string][]*ngsild.Attribute{}}
	for _, a := range worldAttrs {
		if w.Rng.IntN(10) < a.p {
			e.Attrs[WorldExpand(a.name)] = w.attr(a.name)
		}
	}
	return e
}

// WorldID is the id of the world's entity i.
func WorldID(i int) string { return fmt.Sprintf("urn:ngsi-ld:E:%d", i) }

// Op is one write: the entity's next state (nil deletes).
type Op struct {
	ID     string
	Entity *ngsild.Entity
}

// set records an op in the model.
func (w *World) set(tenant string, op Op) {
	t := w.tenants[tenant]
	_, existed := t.ents[op.ID]
	if op.Entity == nil {
		delete(t.ents, op.ID)
		delete(t.seq, op.ID)
		return
	}
	t.ents[op.ID] = op.Entity
	if !existed {
		t.seq[op.ID] = t.n
		t.n++
	}
}

// Create makes a new entity of tenant.
func (w *World) Create(tenant string) Op {
	id := WorldID(w.maxID)
	w.maxID++
	op := Op{id, w.entity(id)}
	w.set(tenant, op)
	return op
}

// Creates draws n new entities, each of a tenant drawn at random.
func (w *World) Creates(n int) map[string][]Op { return w.ops(n, w.Create) }

// Updates draws n random ops (RandomOp), each of a tenant drawn at random.
func (w *World) Updates(n int) map[string][]Op { return w.ops(n, w.RandomOp) }

func (w *World) ops(n int, next func(tenant string) Op) map[string][]Op {
	ops := map[string][]Op{}
	for range n {
		tenant := w.Pick(WorldTenants)
		ops[tenant] = append(ops[tenant], next(tenant))
	}
	return ops
}

// RandomOp changes, deletes or (re)creates an entity of tenant.
func (w *World) RandomOp(tenant string) Op {
	t := w.tenants[tenant]
	r := w.Rng
	id := WorldID(r.IntN(w.maxID + 3))
	if id == WorldID(w.maxID) {
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
			a := worldAttrs[r.IntN(len(worldAttrs))].name
			next.Attrs[WorldExpand(a)] = w.attr(a)
		}
	}
	op := Op{id, next}
	w.set(tenant, op)
	return op
}

// WriteOps writes ops in one Write call.
func WriteOps(s store.Store, tenant string, ops []Op) error {
	sops := make([]store.Op, len(ops))
	for i, op := range ops {
		ent := op.Entity
		sops[i] = store.Op{ID: op.ID, Apply: func(*ngsild.Entity) (*ngsild.Entity, error) { return ent, nil }}
	}
	res, err := s.Write(context.Background(), tenant, sops)
	if err != nil {
		return fmt.Errorf("write: %w", err)
	}
	for _, r := range res {
		if r.Err != nil {
			return fmt.Errorf("write %s: %w", r.ID, r.Err)
		}
	}
	return nil
}

// WriteAll writes ops per tenant to every store, the tenants concurrently
// (their writes may share a group transaction).
func WriteAll(t *testing.T, stores []store.Store, ops map[string][]Op) {
	t.Helper()
	for _, s := range stores {
		var wg sync.WaitGroup
		errs := make([]error, len(WorldTenants))
		for i, tenant := range WorldTenants {
			if tops := ops[tenant]; len(tops) > 0 {
				wg.Go(func() { errs[i] = WriteOps(s, tenant, tops) })
			}
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
	}
}

// --- queries ---

// Spec is a query as its request parameters.
type Spec struct {
	Tenant                                string
	IDs                                   []string
	IDPattern, Type, Attrs, Q, ScopeQ     string
	Georel, Geometry, Coords, GeoProperty string
	Limit, Offset                         int
	Count                                 bool
}

// String renders the query as request parameters.
func (s Spec) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "tenant=%q", s.Tenant)
	if len(s.IDs) > 0 {
		fmt.Fprintf(&b, " id=%s", strings.Join(s.IDs, ","))
	}
	for _, kv := range [][2]string{{"idPattern", s.IDPattern}, {"type", s.Type}, {"attrs", s.Attrs}, {"q", s.Q},
		{"scopeQ", s.ScopeQ}, {"georel", s.Georel}, {"geometry", s.Geometry}, {"coordinates", s.Coords}, {"geoproperty", s.GeoProperty}} {
		if kv[1] != "" {
			fmt.Fprintf(&b, " %s=%s", kv[0], kv[1])
		}
	}
	fmt.Fprintf(&b, " limit=%d offset=%d count=%v", s.Limit, s.Offset, s.Count)
	return b.String()
}

// Query parses the spec as the API would.
func (s Spec) Query(t testing.TB) *store.Query {
	t.Helper()
	q := &store.Query{IDs: s.IDs, Limit: s.Limit, Offset: s.Offset, Count: s.Count}
	var err error
	if s.IDPattern != "" {
		q.IDPattern = regexp.MustCompile(s.IDPattern)
	}
	if s.Type != "" {
		if q.Type, err = qlang.ParseTypeQuery(s.Type, WorldExpand); err != nil {
			t.Fatalf("type %q: %v", s.Type, err)
		}
	}
	if s.Attrs != "" {
		for _, a := range strings.Split(s.Attrs, ",") {
			q.Attrs = append(q.Attrs, WorldExpand(a))
		}
	}
	if s.Q != "" {
		if q.Q, err = qlang.ParseQ(s.Q, WorldExpand); err != nil {
			t.Fatalf("q %q: %v", s.Q, err)
		}
	}
	if s.ScopeQ != "" {
		if q.ScopeQ, err = qlang.ParseScopeQ(s.ScopeQ); err != nil {
			t.Fatalf("scopeQ %q: %v", s.ScopeQ, err)
		}
	}
	if s.Georel != "" {
		if q.Geo, err = geo.ParseQuery(s.Georel, s.Geometry, s.Coords, s.GeoProperty, WorldExpand); err != nil {
			t.Fatalf("geo %q %q %q: %v", s.Georel, s.Geometry, s.Coords, err)
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
func (w *World) qTerm() string {
	r := w.Rng
	n := func() string { return fnum(w.num()) }
	word := func() string { return strconv.Quote(w.Pick(worldWords)) }
	cmp := func() string { return w.Pick([]string{">", ">=", "<", "<=", "==", "!="}) }
	thing := func() string { return fmt.Sprintf("urn:ngsi-ld:Thing:%d", r.IntN(8)) }
	switch r.IntN(21) {
	case 0, 1:
		return "num" + cmp() + n()
	case 2:
		a, b := w.num(), w.num()
		if r.IntN(5) > 0 && a > b {
			a, b = b, a
		}
		return w.Pick([]string{"num==", "num!="}) + fnum(a) + ".." + fnum(b)
	case 3:
		return w.Pick([]string{"num==", "num!="}) + n() + "," + n() + "," + n()
	case 4:
		return w.Pick([]string{"flag==true", "flag==false", "flag!=true", "flag", "!flag", "num==true", `num=="5"`, "!num", "num"})
	case 5:
		return "str" + cmp() + word()
	case 6:
		return "str" + w.Pick([]string{"~=", "!~="}) + w.Pick([]string{"^al", "a$", "x{3}", `"^(alpha|beta)"`, "(?i)^GAMMA", "^delta.*x$", "^$", "x{200}"})
	case 7:
		return w.Pick([]string{`str=="alpha".."delta"`, `str!="beta".."gamma"`, `str=="alpha","beta"`, "str", "!str"})
	case 8:
		return w.Pick([]string{"obj[k]" + cmp() + n(), `obj[s]==` + word(), "obj[k]", "!obj[k]", "obj[k]==3..9", "obj==" + n(), "obj[k][k]>" + n(), "obj"})
	case 9:
		return w.Pick([]string{"arr==" + n(), "arr" + cmp() + n(), "arr==" + word(), "arr!=" + n(), "arr~=^a"})
	case 10:
		return w.Pick([]string{`rel=="` + thing() + `"`, "rel==" + thing(), "rel!=" + thing(), "rel~=Thing:[0-3]", "rel", "!rel",
			"rel==" + thing() + "," + thing(), `rel>"urn:ngsi-ld:Thing:3"`})
	case 11:
		return w.Pick([]string{"label==" + word(), "label~=^b", "label!=" + word(), "label", `label>"c"`})
	case 12:
		c := fmt.Sprintf("cat%d", r.IntN(4))
		return w.Pick([]string{`cat=="` + c + `"`, `cat=="` + WorldExpand(c) + `"`, `cat!="` + c + `"`, "cat~=cat[12]$", `cat>"https://example.org/cat1"`,
			`cat=="cat0".."cat2"`, "cat==" + WorldExpand(c)})
	case 13:
		return w.Pick([]string{"num.observedAt>2024-01-20T00:00:00Z", `num.unitCode=="CEL"`, "num.accuracy>0.5", `num.datasetId=="urn:ds:1"`,
			"num.observedAt", "!num.unitCode", "rel.observedAt<2024-01-15", "num.accuracy", "!num.accuracy", "str.observedAt"})
	case 14:
		return w.Pick([]string{"location", "!location", "area", "!area", "location~=Point", "location!=" + n(), "area==" + word()})
	case 15:
		return w.Pick([]string{"ts>2024-05-10T00:00:00Z", "ts==2024-05-01..2024-05-15", "ts<2024-05-20", `ts>"2024-05-10"`, "ts~=-0[1-5]T",
			"ts>=12:00", "ts!=2024-05-03"})
	case 16:
		return w.Pick([]string{"doc[a]" + cmp() + n(), "doc==" + n(), "list==" + n(), "list" + cmp() + n(), "doc[a]", `doc[b][c]==` + word(), "doc", "!list"})
	case 17:
		return w.Pick([]string{"mixed==" + n(), `mixed=="5"`, "mixed==true", "mixed" + cmp() + n(), "mixed==" + thing(), `mixed=="cat1"`,
			"mixed", "!mixed", "mixed~=^a", "mixed!=" + word()})
	case 18:
		return w.Pick([]string{"nope==1", "!nope", "nope", "nope.observedAt", "nope[k]"})
	case 19:
		// Keys of a GeoProperty value: the projection of a Point must not change them.
		return w.Pick([]string{`location[type]=="Point"`, `location[type]!="Polygon"`, "location[coordinates]", "!location[type]", `area[type]=="Point"`})
	default:
		return "num" + cmp() + n()
	}
}

func (w *World) qExpr() string {
	r := w.Rng
	n := 1 + r.IntN(3)
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(w.Pick([]string{";", ";", "|"}))
		}
		if r.IntN(4) == 0 {
			fmt.Fprintf(&b, "(%s%s%s)", w.qTerm(), w.Pick([]string{";", "|"}), w.qTerm())
		} else {
			b.WriteString(w.qTerm())
		}
	}
	return b.String()
}

func (w *World) typeExpr() string {
	r := w.Rng
	t := func() string {
		if r.IntN(15) == 0 {
			return "T9" // unknown
		}
		return w.Pick(worldTypes)
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

func (w *World) geoQuery(s *Spec) {
	r := w.Rng
	p := w.point()
	box := func() string {
		c := w.point()
		return "[" + jsonRing(square(c, 0.003+0.03*r.Float64())) + "]"
	}
	switch r.IntN(10) {
	case 0, 1:
		s.Georel = "near;maxDistance==" + w.Pick([]string{"0", "50", "300", "1000", "3000"})
		s.Geometry, s.Coords = "Point", jsonPos(p)
	case 2:
		s.Georel = "near;minDistance==" + w.Pick([]string{"500", "2000", "5000"})
		s.Geometry, s.Coords = "Point", jsonPos(p)
	case 3:
		s.Georel = "near;minDistance==500;maxDistance==2500"
		s.Geometry, s.Coords = "Point", jsonPos(p)
	case 4, 5:
		s.Georel, s.Geometry, s.Coords = "within", "Polygon", box()
	case 6:
		s.Georel = "intersects"
		switch r.IntN(3) {
		case 0:
			s.Geometry, s.Coords = "Polygon", box()
		case 1:
			s.Geometry, s.Coords = "LineString", "["+jsonPos(p)+","+jsonPos(w.point())+"]"
		default:
			s.Geometry, s.Coords = "Point", jsonPos(p)
		}
	case 7:
		s.Georel, s.Geometry, s.Coords = "disjoint", "Polygon", box()
	case 8:
		s.Georel, s.Geometry, s.Coords = w.Pick([]string{"contains", "equals"}), "Point", jsonPos(p)
	default:
		s.Georel, s.Geometry, s.Coords = "overlaps", "Polygon", box()
	}
	switch r.IntN(20) {
	case 0, 1, 2:
		s.GeoProperty = "area"
	case 3:
		s.GeoProperty = w.Pick([]string{"nope", "num"}) // unknown; not a GeoProperty
	}
}

// Spec draws a random query.
func (w *World) Spec() Spec {
	r := w.Rng
	s := Spec{Tenant: w.Pick(WorldTenants), Limit: r.IntN(31), Offset: r.IntN(21), Count: r.IntN(2) == 0}
	if r.IntN(4) == 0 {
		s.Offset = 0
	}
	if r.IntN(50) == 0 {
		s.Tenant = "nope"
	}
	if r.IntN(10) == 0 {
		for range 1 + r.IntN(5) {
			s.IDs = append(s.IDs, WorldID(r.IntN(w.maxID+2)))
		}
	}
	if r.IntN(10) == 0 {
		s.IDPattern = w.Pick([]string{`^urn:ngsi-ld:E:1`, `[02468]$`, `E:(1|2)\d$`, `.*`, `^nope`})
	}
	if r.IntN(20) < 9 {
		s.Type = w.typeExpr()
	}
	if r.IntN(7) == 0 {
		names := []string{"num", "str", "obj", "label", "location", "area", "mixed", "nope"}
		s.Attrs = w.Pick(names)
		if r.IntN(2) == 0 {
			s.Attrs += "," + w.Pick(names)
		}
	}
	if r.IntN(10) < 6 {
		s.Q = w.qExpr()
	}
	if r.IntN(7) == 0 {
		s.ScopeQ = w.Pick([]string{"/Brussels/#", "/Gent", "/+/Centre", "/Brussels/Centre,/Gent", "/Brussels/#;/+/Ixelles", "/#",
			"/Gent/#", "(/Brussels/Centre|/Gent);/Brussels/#", "/Gent/+/A"})
	}
	if r.IntN(20) < 7 {
		w.geoQuery(&s)
	}
	return s
}

// --- answers ---

// Snapshot reads every entity of the model from s, per tenant in creation
// order, and checks that deleted ids are gone.
func (w *World) Snapshot(t *testing.T, s store.Store) map[string][]*ngsild.Entity {
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
			if id := WorldID(i); tn.ents[id] == nil {
				if _, err := s.Get(ctx, name, id); !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrNoTenant) {
					t.Fatalf("Get deleted %q %s: %v, want ErrNotFound", name, id, err)
				}
			}
		}
	}
	return out
}

// BruteForce pages the entities matching q.
func BruteForce(ents []*ngsild.Entity, q *store.Query) (ids []string, count int) {
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

// Checker compares stores' answers with BruteForce, reporting at most 15
// differences.
type Checker struct {
	T      *testing.T
	fails  int
	checks int
}

// Checks is the number of queries checked.
func (c *Checker) Checks() int { return c.checks }

// Check runs spec on every store and compares with the brute-force answer.
func (c *Checker) Check(what string, spec Spec, snap map[string][]*ngsild.Entity, stores map[string]store.Store) {
	t := c.T
	t.Helper()
	if c.fails >= 15 {
		return
	}
	c.checks++
	q := spec.Query(t)
	ents, tenantOK := snap[spec.Tenant]
	wantIDs, wantCount := BruteForce(ents, q)
	for _, name := range slices.Sorted(maps.Keys(stores)) {
		s := stores[name]
		res, err := s.Query(context.Background(), spec.Tenant, q)
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

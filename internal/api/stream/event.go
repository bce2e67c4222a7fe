package stream

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/paulmach/orb"

	"github.com/zenne-city/zenne/internal/jsonld"
	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/ngsild/geo"
	"github.com/zenne-city/zenne/internal/store"
)

// view is one representation of events: a format and the attributes kept.
// Views are interned by the Handler, so clients asking for the same one share
// the pointer, and with it each event's rendered bytes.
type view struct {
	key    string
	format ngsild.Format
	attrs  map[string]bool // nil: every attribute
	refs   int             // clients using it, guarded by Handler.mu
}

func viewKey(p *params) string {
	return strconv.Itoa(int(p.format)) + "|" + strings.Join(p.attrs, "\x00")
}

// event is one change as the stream sends it. The hub makes one per change
// and every client shares it: it is rendered at most once per view, on first
// use, and its location boxes are computed at most once.
type event struct {
	c store.Change

	reps atomic.Pointer[[]*rep] // copy-on-write, written under mu
	mu   sync.Mutex

	geoOnce sync.Once
	boxes   []orb.Bound // location bounds of After and of Before
}

// rep is an event rendered in one view: the whole SSE frame.
type rep struct {
	v     *view
	once  sync.Once
	frame []byte
}

// frame returns the event's SSE frame in view v (nil if it cannot be
// rendered, which a stored entity never causes).
func (e *event) frame(v *view, core *jsonld.Context) []byte {
	r := e.rep(v)
	r.once.Do(func() { r.frame = render(&e.c, v, core) })
	return r.frame
}

func (e *event) rep(v *view) *rep {
	if p := e.reps.Load(); p != nil {
		for _, r := range *p {
			if r.v == v {
				return r
			}
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var cur []*rep
	if p := e.reps.Load(); p != nil {
		cur = *p
		for _, r := range cur {
			if r.v == v {
				return r
			}
		}
	}
	r := &rep{v: v}
	next := make([]*rep, len(cur), len(cur)+1)
	copy(next, cur)
	next = append(next, r)
	e.reps.Store(&next)
	return r
}

// render writes a change as an SSE frame:
//
//	id: <seq>
//	event: entityCreated|entityUpdated|entityDeleted
//	data: {"id":..,"type":..,"seq":..,"at":..,"attrs":[..],"entity":{..}}
//
// attrs lists the changed attributes (those of v only); entity is the entity
// after the change in v's format, absent when it was deleted.
func render(c *store.Change, v *view, core *jsonld.Context) []byte {
	ent := c.Entity()
	obj := make(ngsild.Object, 0, 6)
	obj.Set("id", c.ID)
	if ent != nil && len(ent.Types) > 0 {
		if len(ent.Types) == 1 {
			obj.Set("type", core.CompactIRI(ent.Types[0]))
		} else {
			ts := make([]string, len(ent.Types))
			for i, t := range ent.Types {
				ts[i] = core.CompactIRI(t)
			}
			obj.Set("type", ts)
		}
	}
	obj.Set("seq", int64(c.Seq))
	obj.Set("at", ngsild.FormatTime(c.At))
	names := make([]string, 0, len(c.Attrs))
	for _, a := range c.Attrs {
		if v.attrs == nil || v.attrs[a.Name] {
			names = append(names, core.CompactIRI(a.Name))
		}
	}
	obj.Set("attrs", names)
	if c.After != nil {
		obj.Set("entity", ngsild.Render(c.After, ngsild.RenderOptions{Format: v.format, Compact: core, Attrs: v.attrs}))
	}
	b := make([]byte, 0, 512)
	b = append(b, "id: "...)
	b = strconv.AppendUint(b, c.Seq, 10)
	b = append(b, "\nevent: "...)
	b = append(b, c.Kind.String()...)
	b = append(b, "\ndata: "...)
	b, err := ngsild.AppendJSON(b, obj)
	if err != nil {
		return nil
	}
	return append(b, "\n\n"...)
}

// locationBoxes returns the bounds of the entity's location before and after
// the change (Before holds a location when the change touched it, or when
// the entity was deleted).
func (e *event) locationBoxes() []orb.Bound {
	e.geoOnce.Do(func() {
		e.boxes = appendBoxes(e.boxes, e.c.After)
		e.boxes = appendBoxes(e.boxes, e.c.Before)
	})
	return e.boxes
}

func appendBoxes(out []orb.Bound, ent *ngsild.Entity) []orb.Bound {
	if ent == nil {
		return out
	}
	for _, a := range ent.Attrs[ngsild.IRILocation] {
		if a.Kind != ngsild.GeoProperty {
			continue
		}
		g, err := geo.ValueGeometry(a.Value)
		if err != nil || g == nil {
			continue
		}
		out = append(out, geo.Bound(g))
	}
	return out
}

// match reports whether the client's filter lets the event through.
func (p *params) match(e *event) bool {
	c := &e.c
	if c.Tenant != p.tenant {
		return false
	}
	if p.ids != nil && !p.ids[c.ID] {
		return false
	}
	if p.idPattern != nil && !p.idPattern.MatchString(c.ID) {
		return false
	}
	if p.types != nil {
		ent := c.Entity()
		if ent == nil || !slicesAny(ent.Types, p.types) {
			return false
		}
	}
	if p.attrSet != nil {
		hit := false
		for _, a := range c.Attrs {
			if p.attrSet[a.Name] {
				hit = true
				break
			}
		}
		if !hit {
			return false
		}
	}
	if p.bbox != nil {
		hit := false
		for _, b := range e.locationBoxes() {
			if p.bbox.intersects(b) {
				hit = true
				break
			}
		}
		if !hit {
			return false
		}
	}
	return true
}

func slicesAny(xs []string, set map[string]bool) bool {
	for _, x := range xs {
		if set[x] {
			return true
		}
	}
	return false
}

// resetFrame tells a client that changes it should have had are gone: it
// reloads its state and goes on from seq.
func resetFrame(b []byte, seq uint64) []byte {
	b = append(b, "id: "...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, "\nevent: reset\ndata: {\"seq\":"...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, `,"detail":"some changes since the last event are no longer kept: reload the current state (query the entities) and apply the events that follow"}`...)
	return append(b, "\n\n"...)
}

package stream

import (
	"math"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/paulmach/orb"

	"github.com/zenne-city/zenne/internal/jsonld"
	"github.com/zenne-city/zenne/internal/ngsild"
)

// params is what a client asked for: which changes (its filter), in which
// representation, from where.
type params struct {
	tenant    string
	types     map[string]bool // expanded; nil: any type
	ids       map[string]bool // nil: any id
	idPattern *regexp.Regexp  // nil: any id
	bbox      *bbox           // nil: anywhere (and entities without location)
	attrs     []string        // expanded, sorted, unique; nil: every attribute
	attrSet   map[string]bool // the same as a set
	format    ngsild.Format
	resume    bool   // Last-Event-ID or lastEventId was given
	after     uint64 // the last event the client has
}

// The query parameters GET /api/stream understands.
var knownParams = []string{"type", "id", "idPattern", "bbox", "attrs", "format", "tenant", "lastEventId"}

const (
	maxListItems = 1000
	maxPattern   = 1024
)

func badRequest(format string, args ...any) *ngsild.Error {
	return ngsild.Errorf(ngsild.BadRequestData, format, args...)
}

// parseParams reads a stream request's query and headers. Errors are
// BadRequestData with a detail naming the parameter.
func parseParams(q url.Values, h http.Header, core *jsonld.Context) (*params, error) {
	p := &params{format: ngsild.KeyValues}
	for name, vs := range q {
		if !slices.Contains(knownParams, name) {
			return nil, badRequest("unknown query parameter %q: the stream understands %s", clip(name), strings.Join(knownParams, ", "))
		}
		if len(vs) > 1 {
			return nil, badRequest("query parameter %s is given %d times: give it once (lists are comma-separated)", name, len(vs))
		}
	}
	if err := p.parseTenant(q, h); err != nil {
		return nil, err
	}
	if v, ok := q["type"]; ok {
		items, err := splitList("type", v[0])
		if err != nil {
			return nil, err
		}
		p.types = make(map[string]bool, len(items))
		for _, t := range items {
			if err := ngsild.ValidTypeName(t); err != nil {
				return nil, badRequest("type: invalid entity type %q", clip(t))
			}
			iri := core.ExpandTerm(t)
			if iri == "" {
				return nil, badRequest("type: %q expands to nothing with the core @context", clip(t))
			}
			p.types[iri] = true
		}
	}
	if v, ok := q["id"]; ok {
		items, err := splitList("id", v[0])
		if err != nil {
			return nil, err
		}
		p.ids = make(map[string]bool, len(items))
		for _, id := range items {
			if ngsild.ValidURI(id) != nil {
				return nil, badRequest("id: %q is not a URI", clip(id))
			}
			p.ids[id] = true
		}
	}
	if v, ok := q["idPattern"]; ok {
		if v[0] == "" {
			return nil, badRequest("idPattern is empty: give a regular expression or leave the parameter out")
		}
		if len(v[0]) > maxPattern {
			return nil, badRequest("idPattern is longer than %d bytes", maxPattern)
		}
		re, err := regexp.Compile(v[0])
		if err != nil {
			return nil, badRequest("idPattern %q is not a valid regular expression: %v", clip(v[0]), err)
		}
		p.idPattern = re
	}
	if v, ok := q["bbox"]; ok {
		b, err := parseBBox(v[0])
		if err != nil {
			return nil, err
		}
		p.bbox = b
	}
	if v, ok := q["attrs"]; ok {
		items, err := splitList("attrs", v[0])
		if err != nil {
			return nil, err
		}
		p.attrSet = make(map[string]bool, len(items))
		for _, a := range items {
			if err := ngsild.ValidAttrName(a); err != nil {
				return nil, badRequest("attrs: invalid attribute name %q", clip(a))
			}
			iri := core.ExpandTerm(a)
			if iri == "" {
				return nil, badRequest("attrs: %q expands to nothing with the core @context", clip(a))
			}
			if !p.attrSet[iri] {
				p.attrSet[iri] = true
				p.attrs = append(p.attrs, iri)
			}
		}
		slices.Sort(p.attrs)
	}
	if v, ok := q["format"]; ok {
		switch v[0] {
		case "keyValues", "simplified":
			p.format = ngsild.KeyValues
		case "normalized":
			p.format = ngsild.Normalized
		case "concise":
			p.format = ngsild.Concise
		default:
			return nil, badRequest("format %q is not one of keyValues, normalized, concise", clip(v[0]))
		}
	}
	return p, p.parseResume(q, h)
}

func (p *params) parseTenant(q url.Values, h http.Header) error {
	ht, qt := h.Get("NGSILD-Tenant"), q.Get("tenant")
	if _, given := q["tenant"]; given && qt == "" {
		return badRequest("tenant is empty: leave the parameter out for the default tenant")
	}
	if ht != "" && qt != "" && ht != qt {
		return badRequest("the NGSILD-Tenant header (%q) and the tenant parameter (%q) differ", clip(ht), clip(qt))
	}
	t := ht
	if t == "" {
		t = qt
	}
	if t != "" && !ngsild.ValidTenant(t) {
		return badRequest("invalid tenant name %q: use letters, digits, '_', '-' and '.' (at most 64)", clip(t))
	}
	p.tenant = t
	return nil
}

func (p *params) parseResume(q url.Values, h http.Header) error {
	// The browser's own reconnection wins over the id the page was opened with.
	name, v := "Last-Event-ID", strings.TrimSpace(h.Get("Last-Event-ID"))
	if v == "" {
		if !q.Has("lastEventId") {
			return nil
		}
		name, v = "lastEventId", q.Get("lastEventId")
		if v == "" {
			return badRequest("lastEventId is empty: give the id of the last event received or leave it out")
		}
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return badRequest("%s %q is not an event id (a non-negative integer)", name, clip(v))
	}
	p.resume, p.after = true, n
	return nil
}

// splitList splits a comma-separated parameter value; empty items are errors.
func splitList(name, v string) ([]string, error) {
	if v == "" {
		return nil, badRequest("%s is empty: give a comma-separated list or leave the parameter out", name)
	}
	items := strings.Split(v, ",")
	if len(items) > maxListItems {
		return nil, badRequest("%s lists %d items, more than %d", name, len(items), maxListItems)
	}
	for i, s := range items {
		s = strings.TrimSpace(s)
		if s == "" {
			return nil, badRequest("%s: item %d of %q is empty", name, i+1, clip(v))
		}
		items[i] = s
	}
	return items, nil
}

// bbox is a lon/lat box. West > east is a box across the antimeridian (as
// in GeoJSON, RFC 7946 5.2).
type bbox struct{ west, south, east, north float64 }

func parseBBox(v string) (*bbox, error) {
	parts := strings.Split(v, ",")
	if len(parts) != 4 {
		return nil, badRequest("bbox %q must be four numbers: minLon,minLat,maxLon,maxLat", clip(v))
	}
	var f [4]float64
	names := [4]string{"minLon", "minLat", "maxLon", "maxLat"}
	for i, s := range parts {
		x, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, badRequest("bbox %s %q is not a number", names[i], clip(s))
		}
		limit := 180.0
		if i%2 == 1 {
			limit = 90
		}
		if x < -limit || x > limit {
			return nil, badRequest("bbox %s %v is outside [-%v, %v]", names[i], x, limit, limit)
		}
		f[i] = x
	}
	if f[1] > f[3] {
		return nil, badRequest("bbox minLat %v is greater than maxLat %v", f[1], f[3])
	}
	return &bbox{west: f[0], south: f[1], east: f[2], north: f[3]}, nil
}

// intersects reports whether the box and b share at least a point.
func (x *bbox) intersects(b orb.Bound) bool {
	if b.Min[1] > x.north || b.Max[1] < x.south {
		return false
	}
	if x.west <= x.east {
		return b.Min[0] <= x.east && b.Max[0] >= x.west
	}
	// Across the antimeridian: [west, 180] or [-180, east].
	return b.Max[0] >= x.west || b.Min[0] <= x.east
}

// clip shortens a user's value quoted in an error detail.
func clip(s string) string {
	if len(s) <= 100 {
		return s
	}
	return s[:100] + "..."
}

package histimport

import (
	"errors"
	"strings"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
)

// names expands and interns what rows repeat: entity ids, attribute names,
// types, units and datasetIds. A file of a year of readings names the same
// thousand sensors millions of times; each is checked, expanded and
// allocated once. Lookups by []byte key do not allocate.
type names struct {
	ctx      expander
	entities map[string]*entity
	attrs    map[string]nameResult // short or full name -> expanded
	types    map[string]typesResult
	strs     map[string]string // units and short string values
	datasets map[string]nameResult
}

type expander interface{ ExpandTerm(term string) string }

type nameResult struct {
	iri string
	err string // why the name cannot be used
}

type typesResult struct {
	types []string // expanded, shared by every record of the type: read-only
	err   string
}

// entity is what the import knows of one entity: its types and the latest
// instance of each of its attributes seen in the file (for its current
// state, see current.go).
type entity struct {
	id      string
	err     string   // why the id cannot be used
	idTypes []string // the type its id names (urn:ngsi-ld:<Type>:...), if any
	types   []string // expanded; the first given in the file
	latest  []latest
	hint    int // index into latest of the last instance updated
}

type latest struct {
	name string // expanded
	attr ngsild.Attribute
}

func newNames(ctx expander) *names {
	return &names{
		ctx:      ctx,
		entities: map[string]*entity{},
		attrs:    map[string]nameResult{},
		types:    map[string]typesResult{},
		strs:     map[string]string{},
		datasets: map[string]nameResult{},
	}
}

// entity returns the entity with this id, adding it if new.
func (n *names) entity(id []byte) *entity {
	if e, ok := n.entities[string(id)]; ok {
		return e
	}
	s := string(id)
	e := &entity{id: s}
	if err := ngsild.ValidURI(s); err != nil {
		e.err = "the entity id " + quote(s) + " is not a URI"
	} else if t, ok := typeFromID(s); ok {
		if r := n.typesOf(t); r.err == "" {
			e.idTypes = r.types
		}
	}
	n.entities[s] = e
	return e
}

// typeFromID returns Type of an id urn:ngsi-ld:Type:rest.
func typeFromID(id string) (string, bool) {
	const prefix = "urn:ngsi-ld:"
	if len(id) <= len(prefix) || !strings.EqualFold(id[:len(prefix)], prefix) {
		return "", false
	}
	t, rest, ok := strings.Cut(id[len(prefix):], ":")
	if !ok || t == "" || rest == "" {
		return "", false
	}
	return t, true
}

// attr expands an attribute name.
func (n *names) attr(name []byte) nameResult {
	if r, ok := n.attrs[string(name)]; ok {
		return r
	}
	s := string(name)
	var r nameResult
	switch {
	case ngsild.ValidAttrName(s) != nil:
		r.err = "invalid attribute name " + quote(s)
	case isReserved(s):
		r.err = quote(s) + " is not an attribute name (it is an entity member)"
	default:
		r.iri = n.ctx.ExpandTerm(s)
		if r.iri == "" {
			r.err = "the @context maps the attribute " + quote(s) + " to null"
		}
	}
	n.attrs[s] = r
	return r
}

func isReserved(s string) bool {
	switch s {
	case "id", "@id", "type", "@type", "@context", "scope", "createdAt", "modifiedAt", "deletedAt",
		"observedAt", "unitCode", "datasetId", "instanceId", "value", "object":
		return true
	}
	return false
}

// typesOf expands one entity type (a CSV type column holds one).
func (n *names) typesOf(t string) typesResult {
	if r, ok := n.types[t]; ok {
		return r
	}
	var r typesResult
	if iri, problem := expandType(n.ctx, t); problem != "" {
		r.err = problem
	} else {
		r.types = []string{iri}
	}
	n.types[t] = r
	return r
}

// str interns a short string (units, datasetIds, repeated string values).
func (n *names) str(b []byte) string {
	if s, ok := n.strs[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(s) <= 64 && len(n.strs) < 100_000 {
		n.strs[s] = s
	}
	return s
}

// dataset checks a datasetId.
func (n *names) dataset(b []byte) (string, error) {
	r, ok := n.datasets[string(b)]
	if !ok {
		r.iri = string(b)
		if ngsild.ValidURI(r.iri) != nil {
			r.err = "the datasetId " + quote(r.iri) + " is not a URI"
		}
		n.datasets[r.iri] = r
	}
	if r.err != "" {
		return "", rowError(r.err)
	}
	return r.iri, nil
}

// observe keeps a copy of a if it is the latest instance of its attribute
// and datasetId seen for e.
func (e *entity) observe(name string, a *ngsild.Attribute) {
	if h := e.hint; h < len(e.latest) && e.latest[h].name == name && e.latest[h].attr.DatasetID == a.DatasetID {
		e.keep(h, a)
		return
	}
	for i := range e.latest {
		if e.latest[i].name == name && e.latest[i].attr.DatasetID == a.DatasetID {
			e.hint = i
			e.keep(i, a)
			return
		}
	}
	e.hint = len(e.latest)
	e.latest = append(e.latest, latest{name: name, attr: *a})
}

func (e *entity) keep(i int, a *ngsild.Attribute) {
	if !a.ObservedAt.Before(e.latest[i].attr.ObservedAt) {
		e.latest[i].attr = *a
	}
}

func quote(s string) string {
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return `"` + s + `"`
}

// rowError is why one row (or JSON instance) was rejected.
type rowError string

func (e rowError) Error() string { return string(e) }

// detail is the message of err without the NGSI-LD error title.
func detail(err error) string {
	var ne *ngsild.Error
	if errors.As(err, &ne) && ne.Detail != "" {
		return ne.Detail
	}
	return err.Error()
}

// errZeroTime rejects 0001-01-01T00:00:00Z, which stores take for "no
// time" (the instance would be placed at its modification time).
var errZeroTime = rowError("the time 0001-01-01T00:00:00Z cannot be stored")

// timeOf parses a row's time.
func timeOf(b []byte) (time.Time, error) {
	t, ok := parseTime(b)
	if !ok {
		var err error
		t, err = ngsild.ParseTime(string(b))
		ok = err == nil
	}
	if ok && t.IsZero() {
		return time.Time{}, errZeroTime
	}
	if ok {
		return t, nil
	}
	return time.Time{}, rowError("time " + quote(string(b)) + " is not an RFC 3339 date-time such as 2024-03-01T12:00:00Z")
}

// expandType checks and expands an entity type with c; problem says why it
// cannot be used.
func expandType(c expander, t string) (iri, problem string) {
	if err := ngsild.ValidTypeName(t); err != nil {
		return "", "invalid entity type " + quote(t)
	}
	if iri = c.ExpandTerm(t); iri == "" {
		return "", "the @context maps the type " + quote(t) + " to null"
	}
	return iri, ""
}

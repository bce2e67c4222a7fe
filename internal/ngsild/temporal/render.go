package temporal

import (
	"cmp"
	"slices"
	"sort"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
)

// Rendering the temporal representation of an entity (4.5.6 to 4.5.9,
// 4.5.19). Readings taken:
//
//   - Normalized: an attribute is always an array of instances, also when
//     it has one. 4.5.7 allows "a single JSON-LD object in case only one is
//     present", but an array either way is what clients iterate, and it
//     never changes shape with the amount of data.
//   - Each instance carries the time it is placed at, even without
//     sysAttrs: with timeproperty createdAt or modifiedAt that member is
//     shown, and an instance without observedAt (placed at its modifiedAt,
//     see Query.TimeOf) shows modifiedAt. Otherwise a client could not tell
//     when an instance was.
//   - temporalValues (4.5.9): one object per datasetId, a single object
//     when the attribute has one series and an array otherwise; the
//     specification says nothing of datasetIds there, so a non-default
//     series carries its datasetId as in the normalized form. Each pair's
//     time is the instance's time for the query's time property.
//   - aggregatedValues (4.5.19): the same shape per datasetId, one member
//     per requested method in the order requested, each an array of
//     [value, start, end] for the non-empty periods (see Aggregate).
//   - Scope is rendered as the entity's current scope (a string or a list),
//     not as a temporal Property (4.5.6): zenne does not record the history
//     of scopes.

// Format is a temporal representation.
type Format int

const (
	Normalized     Format = iota // arrays of attribute instances (4.5.7, 4.5.8)
	TemporalValues               // the simplified representation (4.5.9)
	Aggregated                   // the aggregated representation (4.5.19)
)

// RenderOptions say how the temporal evolution of an entity is written.
type RenderOptions struct {
	Format   Format
	Compact  ngsild.Compactor // the response's @context; nil keeps expanded names
	SysAttrs bool             // createdAt/modifiedAt of the entity and of each instance (Normalized)
	// Query gives the time property instances are placed by (temporalValues
	// times, aggregation periods) and the window aggregation covers; nil is
	// all instances by observedAt.
	Query *Query
	// Methods and Period are the aggregation (Aggregated): the methods shown,
	// in this order, and the period duration (zero: one period).
	Methods []Method
	Period  Duration
	// Attrs, when not nil, keeps only these attributes (expanded names).
	Attrs map[string]bool
	// Lang selects one language of LanguageProperties (Normalized,
	// TemporalValues): they become Properties holding that language's string.
	Lang string
}

type identity struct{}

func (identity) CompactIRI(iri string) string { return iri }

func (o *RenderOptions) compactor() ngsild.Compactor {
	if o.Compact == nil {
		return identity{}
	}
	return o.Compact
}

// Render writes the temporal evolution of e: id, type (compacted, a string
// or a list), scope, then each attribute under its compacted name in the
// representation opts.Format asks for, then the entity's createdAt and
// modifiedAt with SysAttrs. The instances of e are rendered as given (a
// store returns them selected and ordered, see Query.Select). Aggregated
// aggregates e's instances with AggregateEntity; a store with rollups calls
// RenderAggregated with its own Series instead.
func Render(e *Entity, opts RenderOptions) ngsild.Object {
	if opts.Format == Aggregated {
		view := e
		if opts.Attrs != nil {
			view = &Entity{Attrs: map[string][]Instance{}}
			for n, insts := range e.Attrs {
				if opts.Attrs[n] {
					view.Attrs[n] = insts
				}
			}
		}
		return RenderAggregated(e, AggregateEntity(view, opts.Query, opts.Methods, opts.Period), opts)
	}
	c := opts.compactor()
	obj := head(e, c, len(e.Attrs))
	for _, name := range sortedNames(c, e.Attrs) {
		insts := e.Attrs[name]
		if len(insts) == 0 || (opts.Attrs != nil && !opts.Attrs[name]) {
			continue
		}
		var v any
		if opts.Format == TemporalValues {
			v = simplified(insts, c, &opts)
		} else {
			v = normalized(insts, c, &opts)
		}
		obj.Set(c.CompactIRI(name), v)
	}
	return tail(obj, e, &opts)
}

// RenderAggregated writes the aggregated representation of e from series
// computed elsewhere (AggregateEntity, or a store's rollups): id, type and
// scope of e (its instances are not read), then for each attribute the
// methods of opts.Methods over the series' buckets, then the entity's
// createdAt and modifiedAt with SysAttrs. opts.Attrs filters the series.
func RenderAggregated(e *Entity, series []Series, opts RenderOptions) ngsild.Object {
	c := opts.compactor()
	byName := map[string][]Series{}
	for _, s := range series {
		if opts.Attrs != nil && !opts.Attrs[s.Name] {
			continue
		}
		byName[s.Name] = append(byName[s.Name], s)
	}
	obj := head(e, c, len(byName))
	for _, name := range sortedNames(c, byName) {
		ss := byName[name]
		// The default instance ("") first, then by datasetId.
		slices.SortStableFunc(ss, func(a, b Series) int { return cmp.Compare(a.DatasetID, b.DatasetID) })
		out := make([]any, len(ss))
		for i := range ss {
			out[i] = aggregatedSeries(&ss[i], opts.Methods)
		}
		obj.Set(c.CompactIRI(name), oneOrMany(out))
	}
	return tail(obj, e, &opts)
}

func aggregatedSeries(s *Series, methods []Method) ngsild.Object {
	kind := s.Kind
	if kind == "" {
		kind = ngsild.Property
	}
	o := ngsild.Object{{Key: "type", Value: string(kind)}}
	if s.DatasetID != "" {
		o.Set("datasetId", s.DatasetID)
	}
	for _, m := range methods {
		o.Set(string(m), aggregatedRows{s.Buckets, m})
	}
	return o
}

// aggregatedRows are the [value, start, end] rows of one method, written
// straight to JSON: a year of hourly periods is 8,760 rows, and building
// them as generic values first cost more than the aggregation itself.
type aggregatedRows struct {
	buckets []Bucket
	m       Method
}

func (r aggregatedRows) AppendJSON(b []byte) ([]byte, error) {
	b = append(b, '[')
	var err error
	for i := range r.buckets {
		bk := &r.buckets[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		if b, err = ngsild.AppendJSON(b, bk.Value(r.m)); err != nil {
			return nil, err
		}
		b = append(b, ',', '"')
		b = ngsild.AppendTime(b, bk.Start)
		b = append(b, '"', ',', '"')
		b = ngsild.AppendTime(b, bk.End)
		b = append(b, '"', ']')
	}
	return append(b, ']'), nil
}

// MarshalJSON makes the rows encode the same through encoding/json.
func (r aggregatedRows) MarshalJSON() ([]byte, error) { return r.AppendJSON(nil) }

// head starts the entity object: id, type, scope.
func head(e *Entity, c ngsild.Compactor, attrs int) ngsild.Object {
	obj := make(ngsild.Object, 0, attrs+5)
	obj.Set("id", e.ID)
	switch len(e.Types) {
	case 0:
	case 1:
		obj.Set("type", c.CompactIRI(e.Types[0]))
	default:
		types := make([]string, len(e.Types))
		for i, t := range e.Types {
			types[i] = c.CompactIRI(t)
		}
		obj.Set("type", types)
	}
	switch len(e.Scopes) {
	case 0:
	case 1:
		obj.Set("scope", e.Scopes[0])
	default:
		obj.Set("scope", e.Scopes)
	}
	return obj
}

// tail ends the entity object with its system times.
func tail(obj ngsild.Object, e *Entity, opts *RenderOptions) ngsild.Object {
	if opts.SysAttrs {
		if !e.CreatedAt.IsZero() {
			obj.Set("createdAt", ngsild.FormatTime(e.CreatedAt))
		}
		if !e.ModifiedAt.IsZero() {
			obj.Set("modifiedAt", ngsild.FormatTime(e.ModifiedAt))
		}
	}
	return obj
}

// sortedNames orders attribute names by their compacted form, as the
// current-state rendering does.
func sortedNames[V any](c ngsild.Compactor, m map[string]V) []string {
	names := make([]string, 0, len(m))
	short := make(map[string]string, len(m))
	for n := range m {
		names = append(names, n)
		short[n] = c.CompactIRI(n)
	}
	sort.Slice(names, func(i, j int) bool {
		if short[names[i]] != short[names[j]] {
			return short[names[i]] < short[names[j]]
		}
		return names[i] < names[j]
	})
	return names
}

func oneOrMany(out []any) any {
	if len(out) == 1 {
		return out[0]
	}
	return out
}

// instanceObject renders one instance as the normalized representation
// does.
func instanceObject(a *ngsild.Attribute, c ngsild.Compactor, opts *RenderOptions, sysAttrs bool) ngsild.Object {
	v := ngsild.RenderAttribute([]*ngsild.Attribute{a}, ngsild.RenderOptions{
		Format: ngsild.Normalized, Compact: c, SysAttrs: sysAttrs, Lang: opts.Lang,
	})
	if obj, ok := v.(ngsild.Object); ok {
		return obj
	}
	// RenderAttribute writes an object for one normalized instance; keep a
	// bare value renderable all the same.
	return ngsild.Object{{Key: "type", Value: string(a.Kind)}, {Key: a.Kind.ValueKey(), Value: v}}
}

// normalized is an attribute's instances as an array of attribute
// objects with their instanceId.
func normalized(insts []Instance, c ngsild.Compactor, opts *RenderOptions) []any {
	out := make([]any, len(insts))
	for i, in := range insts {
		obj := instanceObject(in.Attr, c, opts, opts.SysAttrs)
		if !opts.SysAttrs {
			if k, t := placedBy(opts.Query, in.Attr); k != "" && !t.IsZero() {
				obj.Set(k, ngsild.FormatTime(t))
			}
		}
		if in.ID != "" {
			obj.Set("instanceId", in.ID)
		}
		out[i] = obj
	}
	return out
}

// placedBy names the system time an instance is placed at under q, when
// that is not its observedAt: the member a client needs to see to know when
// the instance was.
func placedBy(q *Query, a *ngsild.Attribute) (string, time.Time) {
	switch q.property() {
	case CreatedAt:
		return "createdAt", a.CreatedAt
	case ModifiedAt:
		return "modifiedAt", a.ModifiedAt
	}
	if a.ObservedAt.IsZero() {
		return "modifiedAt", a.ModifiedAt
	}
	return "", time.Time{}
}

// simplifiedMember is the member of the simplified representation holding
// the [value, time] pairs of an attribute of kind k (4.5.9).
func simplifiedMember(k ngsild.Kind) string {
	switch k {
	case ngsild.Relationship:
		return "objects"
	case ngsild.LanguageProperty:
		return "languageMaps"
	case ngsild.JsonProperty:
		return "jsons"
	case ngsild.VocabProperty:
		return "vocabs"
	case ngsild.ListProperty:
		return "valueLists"
	case ngsild.ListRelationship:
		return "objectLists"
	default: // Property, GeoProperty
		return "values"
	}
}

// simplifiedValue is the first element of a pair: the value itself, or,
// for LanguageProperty, JsonProperty and VocabProperty, an object holding it
// under its normalized member, as 4.5.9's examples show.
func simplifiedValue(k ngsild.Kind, v any) any {
	switch k {
	case ngsild.LanguageProperty, ngsild.JsonProperty, ngsild.VocabProperty:
		return ngsild.Object{{Key: k.ValueKey(), Value: v}}
	}
	return v
}

// simplified is an attribute's instances in the simplified representation:
// per datasetId {"type": kind, "<member>": [[value, time], ...]}.
func simplified(insts []Instance, c ngsild.Compactor, opts *RenderOptions) any {
	groups := byDataset(insts)
	out := make([]any, 0, len(groups))
	for _, g := range groups {
		var kind ngsild.Kind
		pairs := make([]any, len(g))
		for i, in := range g {
			// The normalized rendering compacts vocabularies and applies
			// lang; take the value from it.
			obj := instanceObject(in.Attr, c, opts, false)
			t, _ := obj.Get("type")
			k, _ := t.(string)
			kind = ngsild.Kind(k)
			v, _ := obj.Get(kind.ValueKey())
			pairs[i] = []any{simplifiedValue(kind, v), ngsild.FormatTime(opts.Query.TimeOf(in.Attr))}
		}
		o := ngsild.Object{{Key: "type", Value: string(kind)}}
		if ds := g[0].Attr.DatasetID; ds != "" {
			o.Set("datasetId", ds)
		}
		o.Set(simplifiedMember(kind), pairs)
		out = append(out, o)
	}
	return oneOrMany(out)
}

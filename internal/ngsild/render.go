package ngsild

import (
	"sort"
)

// Format is an entity representation.
type Format int

const (
	Normalized Format = iota
	Concise
	KeyValues
)

// RenderOptions say how an entity is written in a response.
type RenderOptions struct {
	Format   Format
	SysAttrs bool      // include createdAt/modifiedAt
	Compact  Compactor // the response's @context
	// Attrs, when not nil, keeps only these attributes (expanded names).
	Attrs map[string]bool
	// Omit drops these members (expanded attribute names, or "id"/"type").
	Omit map[string]bool
	// Pick, when not nil, keeps only these members (expanded names, "id", "type").
	Pick map[string]bool
	// Lang selects one language of LanguageProperties (v1.8 lang option):
	// they become Properties holding that language's string.
	Lang string
	// DatasetIDs, when not nil, keeps only the attribute instances with these
	// datasetIds, "@none" naming the default instance (v1.9 datasetId).
	DatasetIDs map[string]bool
}

// instances returns the instances of an attribute opts keeps.
func (o *RenderOptions) instances(insts []*Attribute) []*Attribute {
	if o.DatasetIDs == nil {
		return insts
	}
	var out []*Attribute
	for _, a := range insts {
		id := a.DatasetID
		if id == "" {
			id = "@none"
		}
		if o.DatasetIDs[id] {
			out = append(out, a)
		}
	}
	return out
}

func (o *RenderOptions) keep(member string) bool {
	if o.Omit[member] {
		return false
	}
	return o.Pick == nil || o.Pick[member]
}

func (o *RenderOptions) keepAttr(name string) bool {
	if o.Attrs != nil && !o.Attrs[name] {
		return false
	}
	return o.keep(name)
}

// Render writes e in the representation opts asks for.
func Render(e *Entity, opts RenderOptions) Object {
	obj := make(Object, 0, len(e.Attrs)+4)
	if opts.keep("id") {
		obj.Set("id", e.ID)
	}
	if opts.keep("type") && len(e.Types) > 0 {
		obj.Set("type", compactList(e.Types, opts.Compact))
	}
	if len(e.Scopes) > 0 && opts.keep(IRIScope) {
		obj.Set("scope", stringOrList(e.Scopes))
	}
	for _, name := range sortedAttrNames(e, opts.Compact) {
		if !opts.keepAttr(name) {
			continue
		}
		if insts := opts.instances(e.Attrs[name]); len(insts) > 0 {
			obj.Set(opts.Compact.CompactIRI(name), RenderAttribute(insts, opts))
		}
	}
	if opts.SysAttrs && opts.Format != KeyValues {
		if !e.CreatedAt.IsZero() {
			obj.Set("createdAt", FormatTime(e.CreatedAt))
		}
		if !e.ModifiedAt.IsZero() {
			obj.Set("modifiedAt", FormatTime(e.ModifiedAt))
		}
	}
	return obj
}

// sortedAttrNames orders attributes by their compacted names.
func sortedAttrNames(e *Entity, c Compactor) []string {
	names := make([]string, 0, len(e.Attrs))
	short := make(map[string]string, len(e.Attrs))
	for n, insts := range e.Attrs {
		if len(insts) == 0 {
			continue
		}
		names = append(names, n)
		short[n] = c.CompactIRI(n)
	}
	sort.Slice(names, func(i, j int) bool { return short[names[i]] < short[names[j]] })
	return names
}

// RenderAttribute writes the instances of one attribute: one value, or an array
// of them for a multi-attribute.
func RenderAttribute(insts []*Attribute, opts RenderOptions) any {
	if len(insts) == 1 {
		return renderInstance(insts[0], opts)
	}
	out := make([]any, len(insts))
	for i, a := range orderedInstances(insts) {
		out[i] = renderInstance(a, opts)
	}
	return out
}

// orderedInstances puts the default instance first, then by datasetId.
func orderedInstances(insts []*Attribute) []*Attribute {
	s := append([]*Attribute(nil), insts...)
	sort.SliceStable(s, func(i, j int) bool {
		if s[i].DatasetID == "" || s[j].DatasetID == "" {
			return s[i].DatasetID == ""
		}
		return s[i].DatasetID < s[j].DatasetID
	})
	return s
}

func renderInstance(a *Attribute, opts RenderOptions) any {
	kind, value := a.Kind, renderValue(a, opts.Compact)
	if opts.Lang != "" && kind == LanguageProperty {
		kind, value = Property, pickLanguage(a.Value, opts.Lang)
	}
	if opts.Format == KeyValues {
		// The simplified representation keeps the value member of the kinds
		// whose bare value would read back as a plain Property.
		switch kind {
		case Property, Relationship, GeoProperty:
			return value
		}
		return Object{{Key: kind.ValueKey(), Value: value}}
	}
	concise := opts.Format == Concise
	obj := Object{}
	if !concise {
		obj.Set("type", string(kind))
	}
	obj.Set(kind.ValueKey(), value)
	if opts.Lang != "" && a.Kind == LanguageProperty {
		obj.Set("lang", chosenLanguage(a.Value, opts.Lang))
	}
	if len(a.ObjectType) > 0 {
		obj.Set("objectType", compactList(a.ObjectType, opts.Compact))
	}
	if a.DatasetID != "" {
		obj.Set("datasetId", a.DatasetID)
	}
	if !a.ObservedAt.IsZero() {
		obj.Set("observedAt", FormatTime(a.ObservedAt))
	}
	if a.UnitCode != "" {
		obj.Set("unitCode", a.UnitCode)
	}
	if len(a.Sub) > 0 {
		names := make([]string, 0, len(a.Sub))
		for n := range a.Sub {
			names = append(names, n)
		}
		sort.Slice(names, func(i, j int) bool {
			return opts.Compact.CompactIRI(names[i]) < opts.Compact.CompactIRI(names[j])
		})
		for _, n := range names {
			obj.Set(opts.Compact.CompactIRI(n), renderInstance(a.Sub[n], opts))
		}
	}
	if opts.SysAttrs {
		if !a.CreatedAt.IsZero() {
			obj.Set("createdAt", FormatTime(a.CreatedAt))
		}
		if !a.ModifiedAt.IsZero() {
			obj.Set("modifiedAt", FormatTime(a.ModifiedAt))
		}
	}
	// Concise: a Property or GeoProperty with nothing but its value is the value
	// itself (a JSON object value keeps its wrapper, so it cannot be mistaken
	// for an attribute object).
	if concise && len(obj) == 1 && (kind == Property || kind == GeoProperty) {
		if _, isObj := value.(map[string]any); !isObj || kind == GeoProperty {
			return value
		}
	}
	return obj
}

func renderValue(a *Attribute, c Compactor) any {
	switch a.Kind {
	case VocabProperty:
		switch v := a.Value.(type) {
		case string:
			return c.CompactIRI(v)
		case []any:
			out := make([]any, len(v))
			for i, x := range v {
				if s, ok := x.(string); ok {
					out[i] = c.CompactIRI(s)
				} else {
					out[i] = x
				}
			}
			return out
		}
	}
	return a.Value
}

// pickLanguage returns the text in lang, falling back to English, "@none",
// then any language, as the spec's lang option asks.
func pickLanguage(v any, lang string) any {
	m, _ := v.(map[string]any)
	if t := chosenLanguage(v, lang); t != "" {
		return m[t]
	}
	return ""
}

func chosenLanguage(v any, lang string) string {
	m, _ := v.(map[string]any)
	for _, l := range []string{lang, "en", "@none"} {
		if _, ok := m[l]; ok {
			return l
		}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) > 0 {
		return keys[0]
	}
	return ""
}

func compactList(iris []string, c Compactor) any {
	if len(iris) == 1 {
		return c.CompactIRI(iris[0])
	}
	out := make([]string, len(iris))
	for i, s := range iris {
		out[i] = c.CompactIRI(s)
	}
	return out
}

func stringOrList(s []string) any {
	if len(s) == 1 {
		return s[0]
	}
	return s
}

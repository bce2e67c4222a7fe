// Package ngsild is the NGSI-LD information model as zenne holds it: entities and
// attributes in expanded form (attribute names and types are full IRIs), the
// parsing of request bodies into that form, its rendering back into the
// normalized, concise and keyValues representations, and the API's error types.
//
// Everything below the HTTP layer works on expanded names only; compaction with a
// user's @context happens once, at the edge, when a response is written.
package ngsild

import (
	"maps"
	"time"
)

// Kind is the NGSI-LD type of an attribute.
type Kind string

const (
	Property         Kind = "Property"
	Relationship     Kind = "Relationship"
	GeoProperty      Kind = "GeoProperty"
	LanguageProperty Kind = "LanguageProperty"
	JsonProperty     Kind = "JsonProperty"
	VocabProperty    Kind = "VocabProperty"
	ListProperty     Kind = "ListProperty"
	ListRelationship Kind = "ListRelationship"
)

// ValueKey is the member that carries the value of an attribute of this kind in
// the normalized representation ("value", "object", "languageMap", ...).
func (k Kind) ValueKey() string {
	switch k {
	case Relationship:
		return "object"
	case LanguageProperty:
		return "languageMap"
	case JsonProperty:
		return "json"
	case VocabProperty:
		return "vocab"
	case ListProperty:
		return "valueList"
	case ListRelationship:
		return "objectList"
	default:
		return "value"
	}
}

// Valid reports whether k is one of the NGSI-LD attribute types.
func (k Kind) Valid() bool {
	switch k {
	case Property, Relationship, GeoProperty, LanguageProperty, JsonProperty,
		VocabProperty, ListProperty, ListRelationship:
		return true
	}
	return false
}

// Well-known expanded IRIs.
const (
	CoreNS           = "https://uri.etsi.org/ngsi-ld/"
	DefaultContextNS = "https://uri.etsi.org/ngsi-ld/default-context/"

	IRILocation         = CoreNS + "location"
	IRIObservationSpace = CoreNS + "observationSpace"
	IRIOperationSpace   = CoreNS + "operationSpace"
	IRICreatedAt        = CoreNS + "createdAt"
	IRIModifiedAt       = CoreNS + "modifiedAt"
	IRIObservedAt       = CoreNS + "observedAt"
	IRIUnitCode         = CoreNS + "unitCode"
	IRIDatasetID        = CoreNS + "datasetId"
	IRIScope            = CoreNS + "scope"
)

// IsGeoName reports whether an expanded attribute name is one of the core
// GeoProperties, whose values are geometries even in the concise representation.
func IsGeoName(iri string) bool {
	return iri == IRILocation || iri == IRIObservationSpace || iri == IRIOperationSpace
}

// Entity is an NGSI-LD entity in expanded form.
type Entity struct {
	ID         string                  `json:"id"`
	Types      []string                `json:"types"`
	Scopes     []string                `json:"scopes,omitempty"`
	CreatedAt  time.Time               `json:"createdAt,omitzero"`
	ModifiedAt time.Time               `json:"modifiedAt,omitzero"`
	Attrs      map[string][]*Attribute `json:"attrs,omitempty"` // expanded name -> instances, at most one per datasetId
}

// Attribute is one instance of an attribute (one datasetId).
type Attribute struct {
	Kind Kind `json:"kind"`
	// Value holds what the kind's value member holds, decoded from JSON: any JSON
	// value for Property and JsonProperty, the object URI (string) for
	// Relationship, a GeoJSON geometry (map) for GeoProperty, a language map
	// (map[string]any) for LanguageProperty, an expanded IRI (string or []any) for
	// VocabProperty, a []any for ListProperty and a []any of URIs for ListRelationship.
	Value      any                   `json:"value,omitempty"`
	DatasetID  string                `json:"datasetId,omitempty"`
	ObservedAt time.Time             `json:"observedAt,omitzero"`
	UnitCode   string                `json:"unitCode,omitempty"`
	ObjectType []string              `json:"objectType,omitempty"` // expanded; Relationship and ListRelationship
	CreatedAt  time.Time             `json:"createdAt,omitzero"`
	ModifiedAt time.Time             `json:"modifiedAt,omitzero"`
	Sub        map[string]*Attribute `json:"sub,omitempty"` // sub-attributes by expanded name
}

// Instance returns the instance of attribute name with the given datasetId ("" is
// the default instance), or nil.
func (e *Entity) Instance(name, datasetID string) *Attribute {
	for _, a := range e.Attrs[name] {
		if a.DatasetID == datasetID {
			return a
		}
	}
	return nil
}

// HasType reports whether the entity has the expanded type t.
func (e *Entity) HasType(t string) bool {
	for _, x := range e.Types {
		if x == t {
			return true
		}
	}
	return false
}

// Clone returns a deep copy of e, so a stored entity can be changed without
// touching copies held elsewhere.
func (e *Entity) Clone() *Entity {
	if e == nil {
		return nil
	}
	c := *e
	c.Types = append([]string(nil), e.Types...)
	c.Scopes = append([]string(nil), e.Scopes...)
	if e.Attrs != nil {
		c.Attrs = make(map[string][]*Attribute, len(e.Attrs))
		for k, insts := range e.Attrs {
			cp := make([]*Attribute, len(insts))
			for i, a := range insts {
				cp[i] = a.Clone()
			}
			c.Attrs[k] = cp
		}
	}
	return &c
}

// Derive returns a copy of e to change by replacing whole attribute
// instances: it has its own types, scopes and attribute map, but shares the
// instance slices and instances with e. Copying only what changes keeps
// updates of large entities cheap; callers must copy an instance slice
// before changing it and never modify a shared instance.
func (e *Entity) Derive() *Entity {
	c := *e
	c.Types = append([]string(nil), e.Types...)
	c.Scopes = append([]string(nil), e.Scopes...)
	c.Attrs = make(map[string][]*Attribute, len(e.Attrs)+1)
	maps.Copy(c.Attrs, e.Attrs)
	return &c
}

// Clone returns a deep copy of a.
func (a *Attribute) Clone() *Attribute {
	if a == nil {
		return nil
	}
	c := *a
	c.Value = cloneJSON(a.Value)
	c.ObjectType = append([]string(nil), a.ObjectType...)
	if a.Sub != nil {
		c.Sub = make(map[string]*Attribute, len(a.Sub))
		for k, s := range a.Sub {
			c.Sub[k] = s.Clone()
		}
	}
	return &c
}

func cloneJSON(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = cloneJSON(e)
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = cloneJSON(e)
		}
		return s
	default:
		return v
	}
}

package ngsild

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Expander expands a term (attribute name, entity type, vocab value) to an IRI
// with the request's @context.
type Expander interface{ ExpandTerm(term string) string }

// Compactor compacts an IRI to a term with the response's @context.
type Compactor interface{ CompactIRI(iri string) string }

// Null stands for JSON null (or "urn:ngsi-ld:null") in a merge-patch: the
// attribute or sub-attribute is to be deleted.
type Null struct{}

// NullURI is the NGSI-LD null value for places where JSON null is not allowed.
const NullURI = "urn:ngsi-ld:null"

// ParseOptions says what a body may contain.
type ParseOptions struct {
	// Fragment parses an entity fragment (attributes only): id and type are
	// optional and, when present, returned but not required.
	Fragment bool
	// Merge accepts null values, which become Null{} attribute values (delete).
	Merge bool
	// PartialAttrs lets attributes leave out their value member: merges and
	// partial attribute updates may change metadata or sub-attributes only.
	// Appends and updates replace whole attributes, which need their value.
	PartialAttrs bool
	// ValidateGeometry checks a GeoProperty value (a decoded GeoJSON geometry).
	ValidateGeometry func(v any) error
}

// Keys of an entity body that are not attributes.
var entityKeywords = map[string]bool{
	"id": true, "@id": true, "type": true, "@type": true, "@context": true,
	"scope": true, "createdAt": true, "modifiedAt": true, "deletedAt": true,
}

// Members of an attribute object that are not sub-attributes.
var attrKeywords = map[string]bool{
	"type": true, "value": true, "object": true, "languageMap": true, "json": true,
	"vocab": true, "valueList": true, "objectList": true, "datasetId": true,
	"observedAt": true, "unitCode": true, "objectType": true, "createdAt": true,
	"modifiedAt": true, "instanceId": true, "previousValue": true, "lang": true,
	"deletedAt": true, "@context": true,
}

// ParseEntity turns a decoded JSON entity body into an Entity in expanded form.
// The returned entity has no system timestamps; the broker sets them.
func ParseEntity(body map[string]any, ex Expander, opts ParseOptions) (*Entity, error) {
	e := &Entity{Attrs: map[string][]*Attribute{}}
	id, err := entityID(body)
	if err != nil {
		return nil, err
	}
	e.ID = id
	if e.ID == "" && !opts.Fragment {
		return nil, Errorf(BadRequestData, "the entity has no id")
	}
	types, err := entityTypes(body, ex)
	if err != nil {
		return nil, err
	}
	e.Types = types
	if len(e.Types) == 0 && !opts.Fragment {
		return nil, Errorf(BadRequestData, "the entity has no type")
	}
	if s, ok := body["scope"]; ok {
		scopes, err := ParseScopes(s)
		if err != nil {
			return nil, err
		}
		e.Scopes = scopes
	}
	for key, raw := range body {
		if entityKeywords[key] {
			continue
		}
		if err := ValidAttrName(key); err != nil {
			return nil, err
		}
		name, err := expandName(ex, "attribute", key)
		if err != nil {
			return nil, err
		}
		insts, err := ParseAttribute(name, raw, ex, opts)
		if err != nil {
			return nil, err
		}
		e.Attrs[name] = insts
	}
	return e, nil
}

func entityID(body map[string]any) (string, error) {
	raw, ok := body["id"]
	if !ok {
		raw, ok = body["@id"]
	}
	if !ok {
		return "", nil
	}
	s, ok := raw.(string)
	if !ok {
		return "", Errorf(BadRequestData, "the entity id must be a string, not %s", JSONKind(raw))
	}
	if err := ValidURI(s); err != nil {
		return "", Errorf(BadRequestData, "the entity id %q is not a URI", s)
	}
	return s, nil
}

func entityTypes(body map[string]any, ex Expander) ([]string, error) {
	raw, ok := body["type"]
	if !ok {
		raw, ok = body["@type"]
	}
	if !ok {
		return nil, nil
	}
	var terms []string
	switch t := raw.(type) {
	case string:
		terms = []string{t}
	case []any:
		for _, x := range t {
			s, ok := x.(string)
			if !ok {
				return nil, Errorf(BadRequestData, "entity types must be strings")
			}
			terms = append(terms, s)
		}
	default:
		return nil, Errorf(BadRequestData, "the entity type must be a string or an array of strings, not %s", JSONKind(raw))
	}
	if len(terms) == 0 {
		return nil, Errorf(BadRequestData, "the entity type list is empty")
	}
	out := make([]string, 0, len(terms))
	for _, t := range terms {
		if err := ValidTypeName(t); err != nil {
			return nil, err
		}
		iri, err := expandName(ex, "entity type", t)
		if err != nil {
			return nil, err
		}
		out = appendUnique(out, iri)
	}
	return out, nil
}

// ParseScopes parses the scope member: a scope string or an array of them.
func ParseScopes(raw any) ([]string, error) {
	var list []any
	switch s := raw.(type) {
	case string:
		list = []any{s}
	case []any:
		list = s
	default:
		return nil, Errorf(BadRequestData, "scope must be a string or an array of strings")
	}
	out := make([]string, 0, len(list))
	for _, x := range list {
		s, ok := x.(string)
		if !ok || !validScope(s) {
			return nil, Errorf(BadRequestData, "invalid scope %v: scopes look like /Brussels/Energy", x)
		}
		out = appendUnique(out, s)
	}
	return out, nil
}

func validScope(s string) bool {
	if len(s) < 2 || s[0] != '/' || strings.HasSuffix(s, "/") {
		return false
	}
	for _, part := range strings.Split(s[1:], "/") {
		if part == "" || strings.ContainsAny(part, "#+;,|() ") {
			return false
		}
	}
	return true
}

// ParseAttribute parses the value of attribute name (already expanded) as found
// in an entity body: an attribute object, an array of instances, or a concise
// shorthand.
func ParseAttribute(name string, raw any, ex Expander, opts ParseOptions) ([]*Attribute, error) {
	if arr, ok := raw.([]any); ok && len(arr) > 0 && allObjects(arr) && isAttrObjectArray(arr) {
		insts := make([]*Attribute, 0, len(arr))
		seen := map[string]bool{}
		for _, x := range arr {
			a, err := parseInstance(name, x, ex, opts, true)
			if err != nil {
				return nil, err
			}
			if seen[a.DatasetID] {
				if a.DatasetID == "" {
					return nil, Errorf(BadRequestData, "attribute %s has more than one default instance (without datasetId)", short(name))
				}
				return nil, Errorf(BadRequestData, "attribute %s has two instances with datasetId %s", short(name), a.DatasetID)
			}
			seen[a.DatasetID] = true
			insts = append(insts, a)
		}
		return insts, nil
	}
	a, err := parseInstance(name, raw, ex, opts, true)
	if err != nil {
		return nil, err
	}
	return []*Attribute{a}, nil
}

func allObjects(arr []any) bool {
	for _, x := range arr {
		if _, ok := x.(map[string]any); !ok {
			return false
		}
	}
	return true
}

// isAttrObjectArray tells a multi-attribute array from a concise Property whose
// value is an array of JSON objects: instances carry a type or a value member.
func isAttrObjectArray(arr []any) bool {
	for _, x := range arr {
		m := x.(map[string]any)
		if t, ok := m["type"].(string); ok && Kind(t).Valid() {
			continue
		}
		if _, ok := valueMember(m); ok {
			continue
		}
		return false
	}
	return true
}

var valueKeys = []struct {
	key  string
	kind Kind
}{
	{"value", Property}, {"object", Relationship}, {"languageMap", LanguageProperty},
	{"json", JsonProperty}, {"vocab", VocabProperty}, {"valueList", ListProperty},
	{"objectList", ListRelationship},
}

func valueMember(m map[string]any) (Kind, bool) {
	for _, vk := range valueKeys {
		if _, ok := m[vk.key]; ok {
			return vk.kind, true
		}
	}
	return "", false
}

var geometryTypes = map[string]bool{
	"Point": true, "MultiPoint": true, "LineString": true, "MultiLineString": true,
	"Polygon": true, "MultiPolygon": true, "GeometryCollection": true,
}

// IsGeometry reports whether v looks like a GeoJSON geometry object.
func IsGeometry(v any) bool {
	m, ok := v.(map[string]any)
	if !ok {
		return false
	}
	t, _ := m["type"].(string)
	if !geometryTypes[t] {
		return false
	}
	_, c := m["coordinates"]
	_, g := m["geometries"]
	return c || g
}

// expandName expands a term the request names (what: "attribute", ...); a
// term the @context maps to null is an error.
func expandName(ex Expander, what, term string) (string, error) {
	iri := ex.ExpandTerm(term)
	if iri == "" {
		return "", Errorf(BadRequestData, "%s %s is mapped to null by the @context", what, term)
	}
	return iri, nil
}

func parseInstance(name string, raw any, ex Expander, opts ParseOptions, topLevel bool) (*Attribute, error) {
	if raw == nil || raw == NullURI {
		if opts.Merge {
			return &Attribute{Value: Null{}}, nil
		}
		return nil, Errorf(BadRequestData, "attribute %s is null", short(name))
	}
	m, isObj := raw.(map[string]any)
	if !isObj || IsGeometry(raw) {
		// Concise shorthand: the value itself.
		if IsGeometry(raw) || (IsGeoName(name) && isObj) {
			a := &Attribute{Kind: GeoProperty, Value: raw}
			return a, validateGeo(name, a.Value, opts)
		}
		return &Attribute{Kind: Property, Value: raw}, nil
	}
	a := &Attribute{}
	if t, ok := m["type"]; ok {
		s, ok := t.(string)
		_, hasValue := valueMember(m)
		if ok && !Kind(s).Valid() && !hasValue {
			// Concise: a JSON object value that happens to have a type member
			// (a PostalAddress, say) is the value of a Property.
			return &Attribute{Kind: Property, Value: raw}, nil
		}
		if !ok || !Kind(s).Valid() {
			return nil, Errorf(BadRequestData, "attribute %s has an invalid type %v: expected Property, Relationship, GeoProperty, LanguageProperty, JsonProperty, VocabProperty, ListProperty or ListRelationship", short(name), t)
		}
		a.Kind = Kind(s)
	} else if k, ok := valueMember(m); ok {
		a.Kind = k
	} else {
		// A concise Property whose value is a JSON object.
		return &Attribute{Kind: Property, Value: raw}, nil
	}
	key := a.Kind.ValueKey()
	v, ok := m[key]
	if !ok {
		// Merge and partial updates may change metadata only.
		if !opts.PartialAttrs {
			return nil, Errorf(BadRequestData, "attribute %s of type %s has no %s member", short(name), a.Kind, key)
		}
	} else if err := setValue(a, name, v, ex, opts); err != nil {
		return nil, err
	}
	if err := parseMeta(a, name, m, ex, topLevel); err != nil {
		return nil, err
	}
	for k, sub := range m {
		if attrKeywords[k] {
			continue
		}
		if err := ValidAttrName(k); err != nil {
			return nil, err
		}
		subName, err := expandName(ex, "sub-attribute", k)
		if err != nil {
			return nil, err
		}
		s, err := parseInstance(subName, sub, ex, opts, false)
		if err != nil {
			return nil, err
		}
		if a.Sub == nil {
			a.Sub = map[string]*Attribute{}
		}
		a.Sub[subName] = s
	}
	return a, nil
}

func setValue(a *Attribute, name string, v any, ex Expander, opts ParseOptions) error {
	if v == nil || v == NullURI {
		if opts.Merge {
			a.Value = Null{}
			return nil
		}
		return Errorf(BadRequestData, "attribute %s has a null %s", short(name), a.Kind.ValueKey())
	}
	switch a.Kind {
	case Property, JsonProperty:
		a.Value = v
	case GeoProperty:
		a.Value = v
		return validateGeo(name, v, opts)
	case Relationship:
		s, ok := v.(string)
		if !ok {
			// v1.8 allows an array of URIs for a multi-object relationship.
			if arr, ok := v.([]any); ok && len(arr) > 0 {
				for _, x := range arr {
					if s, ok := x.(string); !ok || ValidURI(s) != nil {
						return Errorf(BadRequestData, "relationship %s: object %v is not a URI", short(name), x)
					}
				}
				a.Value = v
				return nil
			}
			return Errorf(BadRequestData, "relationship %s: object must be a URI string", short(name))
		}
		if ValidURI(s) != nil {
			return Errorf(BadRequestData, "relationship %s: object %q is not a URI", short(name), s)
		}
		a.Value = s
	case LanguageProperty:
		lm, ok := v.(map[string]any)
		if !ok {
			return Errorf(BadRequestData, "language property %s: languageMap must be an object of language tags to strings", short(name))
		}
		for tag, s := range lm {
			if !validLangTag(tag) {
				return Errorf(BadRequestData, "language property %s: %q is not a language tag", short(name), tag)
			}
			if !isStringOrStrings(s) {
				return Errorf(BadRequestData, "language property %s: the %s text must be a string", short(name), tag)
			}
		}
		a.Value = lm
	case VocabProperty:
		switch x := v.(type) {
		case string:
			a.Value = ex.ExpandTerm(x)
		case []any:
			out := make([]any, len(x))
			for i, e := range x {
				s, ok := e.(string)
				if !ok {
					return Errorf(BadRequestData, "vocab property %s: vocab values must be strings", short(name))
				}
				out[i] = ex.ExpandTerm(s)
			}
			a.Value = out
		default:
			return Errorf(BadRequestData, "vocab property %s: vocab must be a string or an array of strings", short(name))
		}
	case ListProperty:
		l, ok := listOf(v, "value")
		if !ok {
			return Errorf(BadRequestData, "list property %s: valueList must be an array", short(name))
		}
		a.Value = l
	case ListRelationship:
		l, ok := listOf(v, "object")
		if !ok {
			return Errorf(BadRequestData, "list relationship %s: objectList must be an array of URIs", short(name))
		}
		for _, x := range l {
			if s, ok := x.(string); !ok || ValidURI(s) != nil {
				return Errorf(BadRequestData, "list relationship %s: %v is not a URI", short(name), x)
			}
		}
		a.Value = l
	}
	return nil
}

// listOf accepts [v1, v2] and the expanded form [{"value": v1}, ...] / {"@list": [...]}.
func listOf(v any, member string) ([]any, bool) {
	if m, ok := v.(map[string]any); ok {
		v = m["@list"]
	}
	arr, ok := v.([]any)
	if !ok {
		return nil, false
	}
	out := make([]any, len(arr))
	for i, x := range arr {
		if m, ok := x.(map[string]any); ok {
			if inner, ok := m[member]; ok {
				x = inner
			}
		}
		out[i] = x
	}
	return out, true
}

func parseMeta(a *Attribute, name string, m map[string]any, ex Expander, topLevel bool) error {
	if v, ok := m["datasetId"]; ok {
		s, ok := v.(string)
		if !ok || ValidURI(s) != nil {
			return Errorf(BadRequestData, "attribute %s: datasetId %v is not a URI", short(name), v)
		}
		if !topLevel {
			return Errorf(BadRequestData, "sub-attribute %s cannot have a datasetId", short(name))
		}
		a.DatasetID = s
	}
	if v, ok := m["observedAt"]; ok {
		s, _ := v.(string)
		t, err := ParseTime(s)
		if err != nil {
			return Errorf(BadRequestData, "attribute %s: observedAt %v is not an ISO 8601 date-time (2024-01-31T12:00:00Z)", short(name), v)
		}
		a.ObservedAt = t
	}
	if v, ok := m["unitCode"]; ok {
		s, ok := v.(string)
		if !ok || s == "" {
			return Errorf(BadRequestData, "attribute %s: unitCode must be a non-empty string (a UN/CEFACT code such as CEL)", short(name))
		}
		a.UnitCode = s
	}
	if v, ok := m["objectType"]; ok {
		if a.Kind != Relationship && a.Kind != ListRelationship {
			return Errorf(BadRequestData, "attribute %s: objectType is only allowed on relationships", short(name))
		}
		switch x := v.(type) {
		case string:
			a.ObjectType = []string{ex.ExpandTerm(x)}
		case []any:
			for _, e := range x {
				s, ok := e.(string)
				if !ok {
					return Errorf(BadRequestData, "attribute %s: objectType must be a type name or a list of them", short(name))
				}
				a.ObjectType = append(a.ObjectType, ex.ExpandTerm(s))
			}
		default:
			return Errorf(BadRequestData, "attribute %s: objectType must be a type name or a list of them", short(name))
		}
	}
	return nil
}

func validateGeo(name string, v any, opts ParseOptions) error {
	if opts.ValidateGeometry == nil {
		return nil
	}
	if err := opts.ValidateGeometry(v); err != nil {
		if e, ok := err.(*Error); ok {
			return Errorf(e.Type, "geo-property %s: %s", short(name), e.Detail)
		}
		return Errorf(BadRequestData, "geo-property %s: %v", short(name), err)
	}
	return nil
}

// ParseTime parses an NGSI-LD DateTime (ISO 8601 / RFC 3339, UTC 'Z' or an
// offset; fractional seconds allowed).
func ParseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}

// FormatTime renders a time the way NGSI-LD responses do (UTC, milliseconds).
func FormatTime(t time.Time) string {
	return string(AppendTime(make([]byte, 0, 24), t))
}

// AppendTime appends t as FormatTime writes it. Long temporal responses
// format two times per period (8,760 periods for a year of hours), so the
// fixed layout is written digit by digit instead of through time.Format.
func AppendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	y, mo, d := t.Date()
	if y < 0 || y > 9999 {
		return t.AppendFormat(b, "2006-01-02T15:04:05.000Z")
	}
	h, mi, s := t.Clock()
	ms := t.Nanosecond() / 1e6
	return append(b,
		byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-',
		byte('0'+int(mo)/10), byte('0'+int(mo)%10), '-', byte('0'+d/10), byte('0'+d%10), 'T',
		byte('0'+h/10), byte('0'+h%10), ':', byte('0'+mi/10), byte('0'+mi%10), ':',
		byte('0'+s/10), byte('0'+s%10), '.', byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10), 'Z')
}

var tenantRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_\-.]{0,63}$`)

// ValidTenant reports whether s can name a tenant (NGSILD-Tenant): letters,
// digits, '_', '-' and '.', at most 64, not starting with '-' or '.'.
func ValidTenant(s string) bool { return tenantRE.MatchString(s) }

// ValidURI reports whether s is an absolute URI, as entity ids, datasetIds and
// relationship objects must be.
func ValidURI(s string) error {
	if s == "" || len(s) > 2048 || strings.ContainsAny(s, " <>\"{}|\\^`\t\r\n") {
		return fmt.Errorf("invalid URI")
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || (u.Opaque == "" && u.Host == "" && u.Path == "") {
		return fmt.Errorf("invalid URI")
	}
	return nil
}

// ValidAttrName rejects attribute names that cannot be used in queries and URLs.
func ValidAttrName(s string) error {
	if s == "" || len(s) > 512 || strings.ContainsAny(s, "<>\"'=;()[]{}|&?\\ \t\r\n") {
		return Errorf(BadRequestData, "invalid attribute name %q", s)
	}
	return nil
}

// ValidTypeName rejects entity type names that cannot be used in queries.
func ValidTypeName(s string) error {
	if s == "" || len(s) > 512 || strings.ContainsAny(s, "<>\"'=;()[]{}|&?\\ ,\t\r\n") {
		return Errorf(BadRequestData, "invalid entity type %q", s)
	}
	return nil
}

func validLangTag(s string) bool {
	if s == "@none" {
		return true
	}
	if s == "" || len(s) > 35 {
		return false
	}
	for _, part := range strings.Split(s, "-") {
		if part == "" || len(part) > 8 {
			return false
		}
		for _, r := range part {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
				return false
			}
		}
	}
	return true
}

func isStringOrStrings(v any) bool {
	switch x := v.(type) {
	case string:
		return true
	case []any:
		for _, e := range x {
			if _, ok := e.(string); !ok {
				return false
			}
		}
		return true
	}
	return false
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// short shortens an expanded name for error messages.
func short(iri string) string {
	if i := strings.LastIndexAny(iri, "/#"); i >= 0 && i < len(iri)-1 {
		return iri[i+1:]
	}
	return iri
}

// JSONKind names the JSON type of a decoded value for error messages
// ("a string", "an array"...).
func JSONKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case float64, float32, int, int64, json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

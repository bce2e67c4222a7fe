package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/zenne-city/zenne/internal/jsonld"
	"github.com/zenne-city/zenne/internal/ngsild"
)

// The registration documents of docs/DEVICES.md, as the provisioning API
// takes them and the store's records keep them (JSON).

// AttrMap maps one payload field to an attribute.
type AttrMap struct {
	ObjectID string   `json:"object_id,omitempty"` // the payload field; default Name
	Name     string   `json:"name"`
	Type     string   `json:"type,omitempty"` // Property (default), GeoProperty, Relationship
	UnitCode string   `json:"unitCode,omitempty"`
	Scale    *float64 `json:"scale,omitempty"` // numbers become v*Scale+Offset
	Offset   float64  `json:"offset,omitempty"`
}

// StaticAttr is an attribute every update of the entity carries.
type StaticAttr struct {
	Name     string `json:"name"`
	Type     string `json:"type,omitempty"`
	Value    any    `json:"value"`
	UnitCode string `json:"unitCode,omitempty"`
}

// Group is a service group: devices sharing an API key, an entity type and a
// default mapping.
type Group struct {
	APIKey         string       `json:"apikey"`
	EntityType     string       `json:"entity_type"`
	Resource       string       `json:"resource,omitempty"`
	Context        any          `json:"@context,omitempty"` // expands names and types; default the core @context
	Attributes     []AttrMap    `json:"attributes,omitempty"`
	Static         []StaticAttr `json:"static_attributes,omitempty"`
	TimestampField string       `json:"timestamp_field,omitempty"`
	Explicit       bool         `json:"explicit,omitempty"` // store only mapped fields
}

// Device is one registered device.
type Device struct {
	DeviceID   string       `json:"device_id"`
	APIKey     string       `json:"apikey"`
	EntityName string       `json:"entity_name,omitempty"`
	EntityType string       `json:"entity_type,omitempty"`
	Transport  string       `json:"transport,omitempty"`
	Attributes []AttrMap    `json:"attributes,omitempty"`
	Static     []StaticAttr `json:"static_attributes,omitempty"`
	// Key is the device's own secret as registered; it is stored as
	// KeyHash and never returned.
	Key     string `json:"key,omitempty"`
	KeyHash string `json:"key_hash,omitempty"`
}

// Public returns d as the API shows it: without its key or key hash, and
// whether it has a key.
func (d Device) Public() (Device, bool) {
	has := d.KeyHash != ""
	d.Key, d.KeyHash = "", ""
	return d, has
}

// hashKey is how device keys are stored: they are long random secrets, so a
// plain SHA-256 is enough (no password stretching).
func hashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

var idRE = regexp.MustCompile(`^[A-Za-z0-9_.:@-]{1,128}$`)

// validID checks an API key or device id: they appear in MQTT topics and
// URLs, so they hold no '/', '+', '#' or spaces.
func validID(what, s string) error {
	if !idRE.MatchString(s) {
		return Reject(http.StatusBadRequest, "%s %q: use 1 to 128 letters, digits and _ . : @ - (no spaces or slashes)", what, s)
	}
	return nil
}

// field is one compiled mapping.
type field struct {
	name     string // expanded attribute name
	kind     ngsild.Kind
	unitCode string
	scale    float64
	offset   float64
}

// compiled is a device with its group's settings merged and its names
// expanded: what the hot path uses.
type compiled struct {
	tenant, id, apiKey string
	entityID           string
	entityType         string // expanded
	keyHash            string
	fields             map[string]*field // by payload field
	static             map[string][]*ngsild.Attribute
	tsField            string
	explicit           bool
	expand             func(string) string
}

// compile merges d with its group g and expands names with the group's
// @context.
func compile(ctx context.Context, r *jsonld.Resolver, tenant string, g *Group, d *Device) (*compiled, error) {
	jc := r.Core()
	if g.Context != nil {
		var err error
		if jc, err = r.Resolve(ctx, g.Context); err != nil {
			return nil, Reject(http.StatusBadRequest, "service group %s: @context: %v", g.APIKey, err)
		}
	}
	typ := d.EntityType
	if typ == "" {
		typ = g.EntityType
	}
	if typ == "" {
		return nil, Reject(http.StatusBadRequest, "device %s: no entity_type, and its service group has none", d.DeviceID)
	}
	c := &compiled{tenant: tenant, id: d.DeviceID, apiKey: d.APIKey, entityID: d.EntityName,
		entityType: jc.ExpandTerm(typ), keyHash: d.KeyHash, tsField: g.TimestampField, explicit: g.Explicit,
		fields: map[string]*field{}, static: map[string][]*ngsild.Attribute{}, expand: jc.ExpandTerm}
	if c.entityID == "" {
		c.entityID = "urn:ngsi-ld:" + typ + ":" + d.DeviceID
	}
	if err := ngsild.ValidURI(c.entityID); err != nil {
		return nil, Reject(http.StatusBadRequest, "device %s: entity_name %q is not a URI (urn:ngsi-ld:Type:id): %v", d.DeviceID, c.entityID, err)
	}
	for _, am := range slices.Concat(g.Attributes, d.Attributes) { // the device's override the group's
		f, err := compileField(am, jc)
		if err != nil {
			return nil, Reject(http.StatusBadRequest, "device %s: attribute %q: %v", d.DeviceID, am.Name, err)
		}
		obj := am.ObjectID
		if obj == "" {
			obj = am.Name
		}
		c.fields[obj] = f
	}
	for _, sa := range slices.Concat(g.Static, d.Static) {
		name, insts, err := staticAttr(sa, jc)
		if err != nil {
			return nil, Reject(http.StatusBadRequest, "device %s: static attribute %q: %v", d.DeviceID, sa.Name, err)
		}
		c.static[name] = insts
	}
	return c, nil
}

func compileField(am AttrMap, jc *jsonld.Context) (*field, error) {
	if strings.TrimSpace(am.Name) == "" {
		return nil, fmt.Errorf("no name")
	}
	f := &field{name: jc.ExpandTerm(am.Name), unitCode: am.UnitCode, scale: 1, offset: am.Offset}
	if am.Scale != nil {
		f.scale = *am.Scale
	}
	switch am.Type {
	case "", "Property":
		f.kind = ngsild.Property
	case "GeoProperty":
		f.kind = ngsild.GeoProperty
	case "Relationship":
		f.kind = ngsild.Relationship
	default:
		return nil, fmt.Errorf("type %q: use Property, GeoProperty or Relationship", am.Type)
	}
	if f.kind != ngsild.Property && (am.Scale != nil || am.Offset != 0 || am.UnitCode != "") {
		return nil, fmt.Errorf("scale, offset and unitCode apply to a Property only")
	}
	return f, nil
}

// staticAttr parses a static attribute as the NGSI-LD API would.
func staticAttr(sa StaticAttr, jc *jsonld.Context) (string, []*ngsild.Attribute, error) {
	typ := sa.Type
	if typ == "" {
		typ = "Property"
	}
	raw := map[string]any{"type": typ}
	key := "value"
	if typ == "Relationship" {
		key = "object"
	}
	raw[key] = sa.Value
	if sa.UnitCode != "" {
		raw["unitCode"] = sa.UnitCode
	}
	insts, err := ngsild.ParseAttribute(sa.Name, raw, jc, ngsild.ParseOptions{})
	if err != nil {
		return "", nil, err
	}
	return jc.ExpandTerm(sa.Name), insts, nil
}

// Mapping turns a reading's payload fields into attributes as a device with
// these attribute mappings would have them stored, for readings that do not
// come through the device service (the demo city's imported history).
type Mapping struct {
	fields map[string]*field // by payload field
}

// NewMapping compiles maps, expanding names with jc.
func NewMapping(maps []AttrMap, jc *jsonld.Context) (*Mapping, error) {
	m := &Mapping{fields: make(map[string]*field, len(maps))}
	for _, am := range maps {
		f, err := compileField(am, jc)
		if err != nil {
			return nil, fmt.Errorf("attribute %q: %w", am.Name, err)
		}
		obj := am.ObjectID
		if obj == "" {
			obj = am.Name
		}
		m.fields[obj] = f
	}
	return m, nil
}

// Attributes are the attributes of the mapped fields of one reading
// observed at at; integers count as the numbers JSON would decode. Fields
// without a mapping are left out.
func (m *Mapping) Attributes(fields map[string]any, at time.Time) (map[string][]*ngsild.Attribute, error) {
	attrs := make(map[string][]*ngsild.Attribute, len(m.fields))
	for obj, f := range m.fields {
		v, ok := fields[obj]
		if !ok {
			continue
		}
		switch x := v.(type) {
		case int:
			v = float64(x)
		case int64:
			v = float64(x)
		}
		a, err := f.attribute(v, at)
		if err != nil {
			return nil, fmt.Errorf("field %q: %w", obj, err)
		}
		if a != nil {
			attrs[f.name] = []*ngsild.Attribute{a}
		}
	}
	return attrs, nil
}

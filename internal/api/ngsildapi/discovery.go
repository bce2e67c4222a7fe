package ngsildapi

import (
	"net/http"
	"sort"

	"github.com/zenne-city/zenne/internal/jsonld"
	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store"
)

// listTypes serves GET /types: an EntityTypeList, or with details=true an
// array of EntityType.
func (a *API) listTypes(req *request) error {
	c, details, mt, err := req.listParams()
	if err != nil {
		return err
	}
	types, err := a.broker.Types(req.r.Context(), req.storeTenant())
	if err != nil {
		return err
	}
	sort.Slice(types, func(i, j int) bool { return c.CompactIRI(types[i].Type) < c.CompactIRI(types[j].Type) })
	if !details {
		names := make([]string, len(types))
		for i, t := range types {
			names[i] = c.CompactIRI(t.Type)
		}
		req.writeNameList(mt, "EntityTypeList", "typeList", names)
		return nil
	}
	list := make([]any, len(types))
	for i, t := range types {
		list[i] = ngsild.Object{
			{Key: "id", Value: t.Type},
			{Key: "type", Value: "EntityType"},
			{Key: "typeName", Value: c.CompactIRI(t.Type)},
			{Key: "attributeNames", Value: compactKeys(t.Attrs, c)},
		}
	}
	req.writeJSON(http.StatusOK, mt, list, true)
	return nil
}

// typeInfo serves GET /types/{type}: an EntityTypeInfo.
func (a *API) typeInfo(req *request) error {
	c, err := req.context()
	if err != nil {
		return err
	}
	name := req.r.PathValue("type")
	if err := ngsild.ValidTypeName(name); err != nil {
		return err
	}
	mt, err := req.accepted(mimeJSON, mimeLD)
	if err != nil {
		return err
	}
	iri := c.ExpandTerm(name)
	types, err := a.broker.Types(req.r.Context(), req.storeTenant())
	if err != nil {
		return err
	}
	for _, t := range types {
		if t.Type != iri {
			continue
		}
		var details []any
		for _, n := range sortedKeys(t.Attrs, c) {
			details = append(details, ngsild.Object{
				{Key: "id", Value: n},
				{Key: "type", Value: "Attribute"},
				{Key: "attributeName", Value: c.CompactIRI(n)},
				{Key: "attributeTypes", Value: t.Attrs[n]},
			})
		}
		if details == nil {
			details = []any{}
		}
		body := ngsild.Object{
			{Key: "id", Value: t.Type},
			{Key: "type", Value: "EntityTypeInfo"},
			{Key: "typeName", Value: c.CompactIRI(t.Type)},
			{Key: "entityCount", Value: t.Count},
			{Key: "attributeDetails", Value: details},
		}
		req.writeJSON(http.StatusOK, mt, body, true)
		return nil
	}
	return ngsild.Errorf(ngsild.ResourceNotFound, "no entity has type %s", name)
}

// listAttributes serves GET /attributes: an AttributeList, or with
// details=true an array of Attribute.
func (a *API) listAttributes(req *request) error {
	c, details, mt, err := req.listParams()
	if err != nil {
		return err
	}
	attrs, err := a.broker.Attributes(req.r.Context(), req.storeTenant())
	if err != nil {
		return err
	}
	sort.Slice(attrs, func(i, j int) bool { return c.CompactIRI(attrs[i].Name) < c.CompactIRI(attrs[j].Name) })
	if !details {
		names := make([]string, len(attrs))
		for i, at := range attrs {
			names[i] = c.CompactIRI(at.Name)
		}
		req.writeNameList(mt, "AttributeList", "attributeList", names)
		return nil
	}
	list := make([]any, len(attrs))
	for i, at := range attrs {
		list[i] = attributeObject(at, c)
	}
	req.writeJSON(http.StatusOK, mt, list, true)
	return nil
}

// attributeInfo serves GET /attributes/{attr}.
func (a *API) attributeInfo(req *request) error {
	c, err := req.context()
	if err != nil {
		return err
	}
	name, err := req.pathAttr()
	if err != nil {
		return err
	}
	mt, err := req.accepted(mimeJSON, mimeLD)
	if err != nil {
		return err
	}
	attrs, err := a.broker.Attributes(req.r.Context(), req.storeTenant())
	if err != nil {
		return err
	}
	for _, at := range attrs {
		if at.Name == name {
			req.writeJSON(http.StatusOK, mt, attributeObject(at, c), true)
			return nil
		}
	}
	return ngsild.Errorf(ngsild.ResourceNotFound, "no entity has attribute %s", req.r.PathValue("attr"))
}

func attributeObject(at store.AttributeInfo, c ngsild.Compactor) ngsild.Object {
	typeNames := make([]string, len(at.Types))
	for i, t := range at.Types {
		typeNames[i] = c.CompactIRI(t)
	}
	sort.Strings(typeNames)
	return ngsild.Object{
		{Key: "id", Value: at.Name},
		{Key: "type", Value: "Attribute"},
		{Key: "attributeName", Value: c.CompactIRI(at.Name)},
		{Key: "attributeCount", Value: at.Count},
		{Key: "attributeTypes", Value: at.Kinds},
		{Key: "typeNames", Value: typeNames},
	}
}

func sortedKeys(m map[string][]ngsild.Kind, c ngsild.Compactor) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return c.CompactIRI(keys[i]) < c.CompactIRI(keys[j]) })
	return keys
}

func compactKeys(m map[string][]ngsild.Kind, c ngsild.Compactor) []string {
	keys := sortedKeys(m, c)
	for i, k := range keys {
		keys[i] = c.CompactIRI(k)
	}
	return keys
}

// listParams reads what GET /types and GET /attributes share: the @context,
// the details flag and the response media type.
func (req *request) listParams() (c *jsonld.Context, details bool, mt string, err error) {
	if c, err = req.context(); err != nil {
		return nil, false, "", err
	}
	if details, err = boolParam(req.r, "details"); err != nil {
		return nil, false, "", err
	}
	if mt, err = req.accepted(mimeJSON, mimeLD); err != nil {
		return nil, false, "", err
	}
	return c, details, mt, nil
}

// writeNameList writes an EntityTypeList or AttributeList: the compacted
// names under member, with an id naming the list type and the tenant.
func (req *request) writeNameList(mt, listType, member string, names []string) {
	body := ngsild.Object{
		{Key: "id", Value: "urn:ngsi-ld:" + listType + ":" + req.tenantKey()},
		{Key: "type", Value: listType},
		{Key: member, Value: names},
	}
	req.writeJSON(http.StatusOK, mt, body, true)
}

// tenantKey names the tenant in generated list ids.
func (req *request) tenantKey() string {
	if req.tenant == "" {
		return "default"
	}
	return req.tenant
}

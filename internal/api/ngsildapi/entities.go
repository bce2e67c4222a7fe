package ngsildapi

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/zenne-city/zenne/internal/core"
	"github.com/zenne-city/zenne/internal/jsonld"
	"github.com/zenne-city/zenne/internal/ngsild"
)

// view is how entities are to be written in a response.
type view struct {
	render  ngsild.RenderOptions
	mt      string
	geoProp string // GeoJSON geometry property (expanded)
	attrs   []string
}

// parseView reads options/format, attrs, pick, omit, lang and the Accept header.
func (req *request) parseView(allowGeo bool) (*view, error) {
	c, err := req.context()
	if err != nil {
		return nil, err
	}
	q := req.r.URL.Query()
	v := &view{render: ngsild.RenderOptions{Compact: c}}
	formats := 0
	setFormat := func(f ngsild.Format) {
		v.render.Format = f
		formats++
	}
	for _, o := range splitList(q.Get("options")) {
		switch o {
		case "keyValues":
			setFormat(ngsild.KeyValues)
		case "concise":
			setFormat(ngsild.Concise)
		case "normalized":
			setFormat(ngsild.Normalized)
		case "sysAttrs":
			v.render.SysAttrs = true
		case "noOverwrite", "replace", "update":
		default:
			return nil, ngsild.Errorf(ngsild.BadRequestData, "unknown option %q: use keyValues, concise, normalized or sysAttrs", o)
		}
	}
	switch f := q.Get("format"); f {
	case "":
	case "keyValues", "simplified":
		setFormat(ngsild.KeyValues)
	case "concise":
		setFormat(ngsild.Concise)
	case "normalized":
		setFormat(ngsild.Normalized)
	default:
		return nil, ngsild.Errorf(ngsild.BadRequestData, "unknown format %q: use normalized, concise or keyValues", f)
	}
	if formats > 1 {
		return nil, ngsild.Errorf(ngsild.BadRequestData, "more than one representation was asked for (options/format)")
	}
	if v.render.Attrs, v.attrs, err = attrsParam(c, q.Get("attrs")); err != nil {
		return nil, err
	}
	member := func(s string) string {
		if s == "id" || s == "type" {
			return s
		}
		if s == "scope" {
			return ngsild.IRIScope
		}
		return c.ExpandTerm(s)
	}
	if s := q.Get("pick"); s != "" {
		v.render.Pick = map[string]bool{}
		for _, a := range splitList(s) {
			if err := ngsild.ValidAttrName(a); err != nil {
				return nil, err
			}
			v.render.Pick[member(a)] = true
		}
	}
	if s := q.Get("omit"); s != "" {
		v.render.Omit = map[string]bool{}
		for _, a := range splitList(s) {
			if err := ngsild.ValidAttrName(a); err != nil {
				return nil, err
			}
			v.render.Omit[member(a)] = true
		}
	}
	v.render.Lang = q.Get("lang")
	if s := q.Get("datasetId"); s != "" {
		v.render.DatasetIDs = map[string]bool{}
		for _, id := range splitList(s) {
			if id != "@none" && ngsild.ValidURI(id) != nil {
				return nil, ngsild.Errorf(ngsild.BadRequestData, "datasetId %q is not a URI (or @none for the default instance)", id)
			}
			v.render.DatasetIDs[id] = true
		}
	}
	offers := []string{mimeJSON, mimeLD}
	if allowGeo {
		offers = append(offers, mimeGeoJSON)
	}
	if v.mt, err = req.accepted(offers...); err != nil {
		return nil, err
	}
	v.geoProp = ngsild.IRILocation
	if g := q.Get("geometryProperty"); g != "" {
		v.geoProp = c.ExpandTerm(g)
	}
	return v, nil
}

// attrsParam reads the attrs URL parameter s: the expanded names as a set
// and in the order given (both nil when s is empty).
func attrsParam(c *jsonld.Context, s string) (set map[string]bool, names []string, err error) {
	if s == "" {
		return nil, nil, nil
	}
	set = map[string]bool{}
	for _, a := range splitList(s) {
		if err := ngsild.ValidAttrName(a); err != nil {
			return nil, nil, err
		}
		name := c.ExpandTerm(a)
		set[name] = true
		names = append(names, name)
	}
	return set, names, nil
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	parts := strings.Split(s, ",")
	out := parts[:0]
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// renderOne writes one entity in the view.
func (req *request) renderOne(v *view, e *ngsild.Entity) {
	obj := ngsild.Render(e, v.render)
	if v.mt == mimeGeoJSON {
		f := geoFeature(e, obj, v.geoProp)
		req.writeGeo(http.StatusOK, f)
		return
	}
	req.writeJSON(http.StatusOK, v.mt, obj, true)
}

// writeGeo writes GeoJSON with the @context as a member (GeoJSON has no
// Link-header convention of its own; NGSI-LD puts it in the body).
func (req *request) writeGeo(status int, body ngsild.Object) {
	body.Set("@context", req.contextSource())
	req.writeJSON(status, mimeGeoJSON, body, false)
}

func (a *API) createEntity(req *request) error {
	body, c, err := req.bodyObjectContext(false)
	if err != nil {
		return err
	}
	e, err := ngsild.ParseEntity(body, c, parseOptions(false, false))
	if err != nil {
		return err
	}
	if err := a.broker.CreateEntity(req.r.Context(), req.storeTenant(), e); err != nil {
		return err
	}
	req.w.Header().Set("Location", Prefix+"/entities/"+url.PathEscape(e.ID))
	req.w.WriteHeader(http.StatusCreated)
	return nil
}

func (a *API) retrieveEntity(req *request) error {
	id, err := req.pathID()
	if err != nil {
		return err
	}
	v, err := req.parseView(true)
	if err != nil {
		return err
	}
	e, err := a.broker.Entity(req.r.Context(), req.storeTenant(), id)
	if err != nil {
		return err
	}
	if v.render.Attrs != nil && !hasAny(e, v.attrs) {
		return ngsild.Errorf(ngsild.ResourceNotFound, "entity %s has none of the attributes asked for", id)
	}
	req.renderOne(v, e)
	return nil
}

func hasAny(e *ngsild.Entity, names []string) bool {
	for _, n := range names {
		if len(e.Attrs[n]) > 0 {
			return true
		}
	}
	return false
}

func (a *API) deleteEntity(req *request) error {
	id, err := req.pathID()
	if err != nil {
		return err
	}
	if err := a.broker.DeleteEntity(req.r.Context(), req.storeTenant(), id); err != nil {
		return err
	}
	req.noContent()
	return nil
}

// fragment reads an entity fragment body for operations on entity id.
func (req *request) fragment(id string, merge bool) (*ngsild.Entity, error) {
	body, c, err := req.bodyObjectContext(merge)
	if err != nil {
		return nil, err
	}
	e, err := ngsild.ParseEntity(body, c, parseOptions(merge, true))
	if err != nil {
		return nil, err
	}
	if e.ID != "" && e.ID != id {
		return nil, ngsild.Errorf(ngsild.BadRequestData, "the body's id %s differs from the id in the URL %s", e.ID, id)
	}
	return e, nil
}

func (a *API) mergeEntity(req *request) error {
	id, err := req.pathID()
	if err != nil {
		return err
	}
	frag, err := req.fragment(id, true)
	if err != nil {
		return err
	}
	if err := a.broker.MergeEntity(req.r.Context(), req.storeTenant(), id, frag); err != nil {
		return err
	}
	req.noContent()
	return nil
}

func (a *API) replaceEntity(req *request) error {
	id, err := req.pathID()
	if err != nil {
		return err
	}
	body, c, err := req.bodyObjectContext(false)
	if err != nil {
		return err
	}
	if _, ok := body["id"]; !ok {
		body["id"] = id
	}
	e, err := ngsild.ParseEntity(body, c, parseOptions(false, false))
	if err != nil {
		return err
	}
	if e.ID != id {
		return ngsild.Errorf(ngsild.BadRequestData, "the body's id %s differs from the id in the URL %s", e.ID, id)
	}
	if err := a.broker.ReplaceEntity(req.r.Context(), req.storeTenant(), id, e); err != nil {
		return err
	}
	req.noContent()
	return nil
}

func (a *API) appendAttrs(req *request) error {
	id, err := req.pathID()
	if err != nil {
		return err
	}
	noOverwrite := false
	for _, o := range splitList(req.r.URL.Query().Get("options")) {
		if o != "noOverwrite" {
			return ngsild.Errorf(ngsild.BadRequestData, "unknown option %q: only noOverwrite applies here", o)
		}
		noOverwrite = true
	}
	frag, err := req.fragment(id, false)
	if err != nil {
		return err
	}
	res, err := a.broker.AppendAttrs(req.r.Context(), req.storeTenant(), id, frag, noOverwrite)
	if err != nil {
		return err
	}
	return req.updateResult(res)
}

func (a *API) updateAttrs(req *request) error {
	id, err := req.pathID()
	if err != nil {
		return err
	}
	frag, err := req.fragment(id, false)
	if err != nil {
		return err
	}
	if len(frag.Attrs) == 0 {
		return ngsild.Errorf(ngsild.BadRequestData, "the body has no attributes to update")
	}
	res, err := a.broker.UpdateAttrs(req.r.Context(), req.storeTenant(), id, frag)
	if err != nil {
		return err
	}
	return req.updateResult(res)
}

// updateResult answers 204, or 207 with an UpdateResult when some attributes
// were not updated.
func (req *request) updateResult(res *core.UpdateResult) error {
	if len(res.NotUpdated) == 0 {
		req.noContent()
		return nil
	}
	c, err := req.context()
	if err != nil {
		return err
	}
	updated := make([]string, len(res.Updated))
	for i, n := range res.Updated {
		updated[i] = c.CompactIRI(n)
	}
	notUpdated := make([]any, len(res.NotUpdated))
	for i, n := range res.NotUpdated {
		notUpdated[i] = ngsild.Object{{Key: "attributeName", Value: c.CompactIRI(n.Name)}, {Key: "reason", Value: n.Reason}}
	}
	body := ngsild.Object{{Key: "updated", Value: updated}, {Key: "notUpdated", Value: notUpdated}}
	req.writeJSON(http.StatusMultiStatus, mimeJSON, body, false)
	return nil
}

// attrBody reads the body of an attribute operation: an attribute object (or
// array of instances) for attribute name.
func (req *request) attrBody(name string, fragment bool) ([]*ngsild.Attribute, error) {
	v, err := req.readBody(false)
	if err != nil {
		return nil, err
	}
	if m, ok := v.(map[string]any); ok {
		delete(m, "@context")
	}
	c, err := req.context()
	if err != nil {
		return nil, err
	}
	opts := parseOptions(false, fragment)
	opts.PartialAttrs = fragment // a partial attribute update may leave out the value
	return ngsild.ParseAttribute(name, v, c, opts)
}

// pathIDAttr reads the {id} and {attr} path segments of an attribute operation.
func (req *request) pathIDAttr() (id, name string, err error) {
	if id, err = req.pathID(); err != nil {
		return "", "", err
	}
	if name, err = req.pathAttr(); err != nil {
		return "", "", err
	}
	return id, name, nil
}

func (a *API) partialAttrUpdate(req *request) error {
	id, name, err := req.pathIDAttr()
	if err != nil {
		return err
	}
	insts, err := req.attrBody(name, true)
	if err != nil {
		return err
	}
	for _, patch := range insts {
		if err := a.broker.PartialAttrUpdate(req.r.Context(), req.storeTenant(), id, name, patch); err != nil {
			return err
		}
	}
	req.noContent()
	return nil
}

func (a *API) replaceAttr(req *request) error {
	id, name, err := req.pathIDAttr()
	if err != nil {
		return err
	}
	insts, err := req.attrBody(name, false)
	if err != nil {
		return err
	}
	if err := a.broker.ReplaceAttr(req.r.Context(), req.storeTenant(), id, name, insts); err != nil {
		return err
	}
	req.noContent()
	return nil
}

// datasetIDParam reads the datasetId URL parameter of an attribute
// deletion ("" for the default instance).
func (req *request) datasetIDParam() (string, error) {
	ds := req.r.URL.Query().Get("datasetId")
	if ds != "" && ngsild.ValidURI(ds) != nil {
		return "", ngsild.Errorf(ngsild.BadRequestData, "datasetId %q is not a URI", ds)
	}
	return ds, nil
}

func (a *API) deleteAttr(req *request) error {
	id, name, err := req.pathIDAttr()
	if err != nil {
		return err
	}
	ds, err := req.datasetIDParam()
	if err != nil {
		return err
	}
	all, err := boolParam(req.r, "deleteAll")
	if err != nil {
		return err
	}
	if err := a.broker.DeleteAttr(req.r.Context(), req.storeTenant(), id, name, ds, all); err != nil {
		return err
	}
	req.noContent()
	return nil
}

package ngsildapi

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/zenne-city/zenne/internal/jsonld"
	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/ngsild/geo"
	"github.com/zenne-city/zenne/internal/ngsild/qlang"
	"github.com/zenne-city/zenne/internal/store"
)

// queryEntities serves GET /entities.
func (a *API) queryEntities(req *request) error {
	q, err := req.queryParams()
	if err != nil {
		return err
	}
	return a.runQuery(req, q)
}

// queryParams reads the entity selection of a GET query: id, idPattern,
// type, q, scopeQ and the geo-query.
func (req *request) queryParams() (*store.Query, error) {
	c, err := req.context()
	if err != nil {
		return nil, err
	}
	p := req.r.URL.Query()
	q := &store.Query{}
	if s := p.Get("id"); s != "" {
		for _, id := range splitList(s) {
			if ngsild.ValidURI(id) != nil {
				return nil, ngsild.Errorf(ngsild.BadRequestData, "id %q is not a URI", id)
			}
			q.IDs = append(q.IDs, id)
		}
	}
	if q.IDPattern, err = compileIDPattern(p.Get("idPattern")); err != nil {
		return nil, err
	}
	if s := p.Get("type"); s != "" {
		if q.Type, err = qlang.ParseTypeQuery(s, c.ExpandTerm); err != nil {
			return nil, err
		}
	}
	if s := p.Get("q"); s != "" {
		if q.Q, err = qlang.ParseQ(s, c.ExpandTerm); err != nil {
			return nil, err
		}
	}
	if s := p.Get("scopeQ"); s != "" {
		if q.ScopeQ, err = qlang.ParseScopeQ(s); err != nil {
			return nil, err
		}
	}
	if p.Has("georel") || p.Has("geometry") || p.Has("coordinates") {
		if q.Geo, err = geo.ParseQuery(p.Get("georel"), p.Get("geometry"), p.Get("coordinates"), p.Get("geoproperty"), c.ExpandTerm); err != nil {
			return nil, err
		}
	}
	return q, nil
}

// compileIDPattern compiles an idPattern ("" gives nil).
func compileIDPattern(s string) (*regexp.Regexp, error) {
	if s == "" {
		return nil, nil
	}
	re, err := regexp.Compile(s)
	if err != nil {
		return nil, ngsild.Errorf(ngsild.BadRequestData, "idPattern %q is not a regular expression: %v", s, err)
	}
	return re, nil
}

// queryPost serves POST /entityOperations/query: the Query data type in the
// body, pagination and representation in the URL.
func (a *API) queryPost(req *request) error {
	body, c, err := req.bodyObjectContext(false)
	if err != nil {
		return err
	}
	q, err := req.queryBody(body, c)
	if err != nil {
		return err
	}
	return a.runQuery(req, q)
}

// queryBody reads a Query body's entity selection (entities, q, scopeQ,
// geoQ); its attrs and lang act like the URL parameters.
func (req *request) queryBody(body map[string]any, c *jsonld.Context) (*store.Query, error) {
	if t, ok := body["type"]; ok && t != "Query" {
		return nil, ngsild.Errorf(ngsild.BadRequestData, "the body's type must be Query, not %v", t)
	}
	var err error
	q := &store.Query{}
	if raw, ok := body["entities"]; ok {
		if err := setSelectors(q, raw, c.ExpandTerm); err != nil {
			return nil, err
		}
	}
	if raw, ok := body["attrs"]; ok {
		list, ok := raw.([]any)
		if !ok {
			return nil, ngsild.Errorf(ngsild.BadRequestData, "attrs must be an array of attribute names")
		}
		var names []string
		for _, x := range list {
			s, ok := x.(string)
			if !ok || ngsild.ValidAttrName(s) != nil {
				return nil, ngsild.Errorf(ngsild.BadRequestData, "invalid attribute name %v in attrs", x)
			}
			names = append(names, s)
		}
		// The body's attrs act like the attrs URL parameter.
		v := req.r.URL.Query()
		v.Set("attrs", strings.Join(names, ","))
		req.r.URL.RawQuery = v.Encode()
	}
	if raw, ok := body["q"]; ok {
		s, ok := raw.(string)
		if !ok {
			return nil, ngsild.Errorf(ngsild.BadRequestData, "q must be a string")
		}
		if q.Q, err = qlang.ParseQ(s, c.ExpandTerm); err != nil {
			return nil, err
		}
	}
	if raw, ok := body["scopeQ"]; ok {
		s, ok := raw.(string)
		if !ok {
			return nil, ngsild.Errorf(ngsild.BadRequestData, "scopeQ must be a string")
		}
		if q.ScopeQ, err = qlang.ParseScopeQ(s); err != nil {
			return nil, err
		}
	}
	if raw, ok := body["geoQ"]; ok {
		if q.Geo, err = geo.ParseQueryJSON(raw, c.ExpandTerm); err != nil {
			return nil, err
		}
	}
	if raw, ok := body["lang"]; ok {
		s, _ := raw.(string)
		v := req.r.URL.Query()
		v.Set("lang", s)
		req.r.URL.RawQuery = v.Encode()
	}
	return q, nil
}

// setSelectors maps the EntitySelector list of a Query body: one selector
// to q's id, idPattern and type filters, several to q.Selectors (an entity
// matches if it matches one of them).
func setSelectors(q *store.Query, raw any, expand func(string) string) error {
	list, ok := raw.([]any)
	if !ok || len(list) == 0 {
		return ngsild.Errorf(ngsild.BadRequestData, "entities must be a non-empty array of EntitySelectors")
	}
	sels := make([]store.Selector, len(list))
	for i, x := range list {
		if err := parseSelector(&sels[i], x, expand); err != nil {
			return err
		}
	}
	if len(sels) > 1 {
		q.Selectors = sels
		return nil
	}
	if sels[0].ID != "" {
		q.IDs = []string{sels[0].ID}
	}
	q.IDPattern, q.Type = sels[0].IDPattern, sels[0].Type
	return nil
}

// parseSelector reads one EntitySelector: id, idPattern and type, at least
// one of them.
func parseSelector(sel *store.Selector, x any, expand func(string) string) error {
	m, ok := x.(map[string]any)
	if !ok {
		return ngsild.Errorf(ngsild.BadRequestData, "an EntitySelector must be an object")
	}
	if id, ok := m["id"]; ok {
		s, ok := id.(string)
		if !ok || ngsild.ValidURI(s) != nil {
			return ngsild.Errorf(ngsild.BadRequestData, "EntitySelector id %v is not a URI", id)
		}
		sel.ID = s
	}
	if p, ok := m["idPattern"]; ok {
		s, ok := p.(string)
		if !ok {
			return ngsild.Errorf(ngsild.BadRequestData, "EntitySelector idPattern must be a string")
		}
		var err error
		if sel.IDPattern, err = compileIDPattern(s); err != nil {
			return err
		}
	}
	if t, has := m["type"]; has {
		s, ok := t.(string)
		if !ok || s == "" {
			return ngsild.Errorf(ngsild.BadRequestData, "EntitySelector type must be a type name or expression")
		}
		tq, err := qlang.ParseTypeQuery(s, expand)
		if err != nil {
			return err
		}
		sel.Type = tq
	}
	if sel.ID == "" && sel.IDPattern == nil && sel.Type == nil {
		return ngsild.Errorf(ngsild.BadRequestData, "an EntitySelector needs an id, an idPattern or a type")
	}
	return nil
}

// runQuery applies attrs, pagination and representation, runs q and writes
// the page.
func (a *API) runQuery(req *request, q *store.Query) error {
	v, err := req.parseView(true)
	if err != nil {
		return err
	}
	p := req.r.URL.Query()
	q.Attrs = v.attrs
	if q.IDs == nil && q.IDPattern == nil && q.Type == nil && q.Selectors == nil && q.Attrs == nil && q.Q == nil && q.Geo == nil && q.ScopeQ == nil && p.Get("local") != "true" {
		return ngsild.Errorf(ngsild.BadRequestData, "a query needs at least one of type, id, idPattern, attrs, q, scopeQ or a geo-query (or local=true to list everything)")
	}
	if err := a.page(req, q); err != nil {
		return err
	}
	res, err := a.broker.Query(req.r.Context(), req.storeTenant(), q)
	if err != nil {
		return err
	}
	if q.Count {
		req.w.Header().Set("NGSILD-Results-Count", strconv.Itoa(res.Count))
	}
	if v.mt == mimeGeoJSON {
		features := make([]any, len(res.Entities))
		for i, e := range res.Entities {
			features[i] = geoFeature(e, ngsild.Render(e, v.render), v.geoProp)
		}
		req.writeGeo(http.StatusOK, ngsild.Object{{Key: "type", Value: "FeatureCollection"}, {Key: "features", Value: features}})
		return nil
	}
	list := make([]any, len(res.Entities))
	for i, e := range res.Entities {
		list[i] = ngsild.Render(e, v.render)
	}
	req.writeJSON(http.StatusOK, v.mt, list, true)
	return nil
}

// page reads limit, offset and count into q.
func (a *API) page(req *request, q *store.Query) error {
	p := req.r.URL.Query()
	var err error
	if q.Limit, err = intParam(p.Get("limit"), a.opts.DefaultLimit, "limit"); err != nil {
		return err
	}
	if q.Limit > a.opts.MaxLimit {
		return ngsild.Errorf(ngsild.TooManyResults, "limit %d is over the maximum of %d: page with offset", q.Limit, a.opts.MaxLimit)
	}
	if q.Offset, err = intParam(p.Get("offset"), 0, "offset"); err != nil {
		return err
	}
	if q.Count, err = boolParam(req.r, "count"); err != nil {
		return err
	}
	if q.Limit == 0 && !q.Count {
		return ngsild.Errorf(ngsild.BadRequestData, "limit=0 is only allowed with count=true")
	}
	return nil
}

func intParam(s string, def int, name string) (int, error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, ngsild.Errorf(ngsild.BadRequestData, "%s must be a non-negative integer, not %q", name, s)
	}
	return n, nil
}

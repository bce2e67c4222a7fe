package ngsildapi

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/ngsild/geo"
	"github.com/zenne-city/zenne/internal/ngsild/qlang"
	"github.com/zenne-city/zenne/internal/store"
)

// queryEntities serves GET /entities.
func (a *API) queryEntities(req *request) error {
	c, err := req.context()
	if err != nil {
		return err
	}
	p := req.r.URL.Query()
	q := &store.Query{}
	if s := p.Get("id"); s != "" {
		for _, id := range splitList(s) {
			if ngsild.ValidURI(id) != nil {
				return ngsild.Errorf(ngsild.BadRequestData, "id %q is not a URI", id)
			}
			q.IDs = append(q.IDs, id)
		}
	}
	if err := setIDPattern(q, p.Get("idPattern")); err != nil {
		return err
	}
	if s := p.Get("type"); s != "" {
		if q.Type, err = qlang.ParseTypeQuery(s, c.ExpandTerm); err != nil {
			return err
		}
	}
	if s := p.Get("q"); s != "" {
		if q.Q, err = qlang.ParseQ(s, c.ExpandTerm); err != nil {
			return err
		}
	}
	if s := p.Get("scopeQ"); s != "" {
		if q.ScopeQ, err = qlang.ParseScopeQ(s); err != nil {
			return err
		}
	}
	if p.Has("georel") || p.Has("geometry") || p.Has("coordinates") {
		if q.Geo, err = geo.ParseQuery(p.Get("georel"), p.Get("geometry"), p.Get("coordinates"), p.Get("geoproperty"), c.ExpandTerm); err != nil {
			return err
		}
	}
	return a.runQuery(req, q)
}

func setIDPattern(q *store.Query, s string) error {
	if s == "" {
		return nil
	}
	re, err := regexp.Compile(s)
	if err != nil {
		return ngsild.Errorf(ngsild.BadRequestData, "idPattern %q is not a regular expression: %v", s, err)
	}
	q.IDPattern = re
	return nil
}

// queryPost serves POST /entityOperations/query: the Query data type in the
// body, pagination and representation in the URL.
func (a *API) queryPost(req *request) error {
	body, c, err := req.bodyObjectContext(false)
	if err != nil {
		return err
	}
	if t, ok := body["type"]; ok && t != "Query" {
		return ngsild.Errorf(ngsild.BadRequestData, "the body's type must be Query, not %v", t)
	}
	q := &store.Query{}
	if raw, ok := body["entities"]; ok {
		if err := setSelectors(q, raw, c.ExpandTerm); err != nil {
			return err
		}
	}
	if raw, ok := body["attrs"]; ok {
		list, ok := raw.([]any)
		if !ok {
			return ngsild.Errorf(ngsild.BadRequestData, "attrs must be an array of attribute names")
		}
		var names []string
		for _, x := range list {
			s, ok := x.(string)
			if !ok || ngsild.ValidAttrName(s) != nil {
				return ngsild.Errorf(ngsild.BadRequestData, "invalid attribute name %v in attrs", x)
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
			return ngsild.Errorf(ngsild.BadRequestData, "q must be a string")
		}
		if q.Q, err = qlang.ParseQ(s, c.ExpandTerm); err != nil {
			return err
		}
	}
	if raw, ok := body["scopeQ"]; ok {
		s, ok := raw.(string)
		if !ok {
			return ngsild.Errorf(ngsild.BadRequestData, "scopeQ must be a string")
		}
		if q.ScopeQ, err = qlang.ParseScopeQ(s); err != nil {
			return err
		}
	}
	if raw, ok := body["geoQ"]; ok {
		if q.Geo, err = geo.ParseQueryJSON(raw, c.ExpandTerm); err != nil {
			return err
		}
	}
	if raw, ok := body["lang"]; ok {
		s, _ := raw.(string)
		v := req.r.URL.Query()
		v.Set("lang", s)
		req.r.URL.RawQuery = v.Encode()
	}
	return a.runQuery(req, q)
}

// setSelectors maps the EntitySelector list of a Query body. One selector
// maps directly; several are supported when they all select by the same
// member (all by type only, or all by id with the same type), which is how
// clients use them. Other combinations would need an OR of selectors that
// store.Query cannot express: they get OperationNotSupported rather than a
// wrong answer.
func setSelectors(q *store.Query, raw any, expand func(string) string) error {
	list, ok := raw.([]any)
	if !ok || len(list) == 0 {
		return ngsild.Errorf(ngsild.BadRequestData, "entities must be a non-empty array of EntitySelectors")
	}
	var types []string
	byID, byType := 0, 0
	for _, x := range list {
		sel, ok := x.(map[string]any)
		if !ok {
			return ngsild.Errorf(ngsild.BadRequestData, "an EntitySelector must be an object")
		}
		if len(list) > 1 && (sel["idPattern"] != nil) {
			return ngsild.Errorf(ngsild.OperationNotSupported, "idPattern is supported in a single EntitySelector only")
		}
		if sel["id"] != nil {
			byID++
			if len(list) > 1 && !equalJSON(sel["type"], list[0].(map[string]any)["type"]) {
				return ngsild.Errorf(ngsild.OperationNotSupported, "several EntitySelectors with ids must have the same type")
			}
		} else {
			byType++
		}
		if byID > 0 && byType > 0 {
			return ngsild.Errorf(ngsild.OperationNotSupported, "EntitySelectors by id and by type only cannot be combined in one query")
		}
		if id, ok := sel["id"]; ok {
			s, ok := id.(string)
			if !ok || ngsild.ValidURI(s) != nil {
				return ngsild.Errorf(ngsild.BadRequestData, "EntitySelector id %v is not a URI", id)
			}
			q.IDs = append(q.IDs, s)
		}
		if p, ok := sel["idPattern"]; ok {
			s, _ := p.(string)
			if err := setIDPattern(q, s); err != nil {
				return err
			}
		}
		t, ok := sel["type"].(string)
		if !ok || t == "" {
			if _, has := sel["type"]; has || len(list) == 1 && sel["id"] == nil && sel["idPattern"] == nil {
				return ngsild.Errorf(ngsild.BadRequestData, "EntitySelector type must be a type name or expression")
			}
			continue
		}
		types = append(types, "("+t+")")
	}
	if byID > 1 && len(types) > 0 {
		types = types[:1] // all the same
	}
	if len(types) > 0 {
		tq, err := qlang.ParseTypeQuery(strings.Join(types, "|"), expand)
		if err != nil {
			return err
		}
		q.Type = tq
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
	if q.IDs == nil && q.IDPattern == nil && q.Type == nil && q.Attrs == nil && q.Q == nil && q.Geo == nil && q.ScopeQ == nil && p.Get("local") != "true" {
		return ngsild.Errorf(ngsild.BadRequestData, "a query needs at least one of type, id, idPattern, attrs, q, scopeQ or a geo-query (or local=true to list everything)")
	}
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

// equalJSON reports whether two decoded JSON scalars (or absent members) are equal.
func equalJSON(a, b any) bool {
	as, aok := a.(string)
	bs, bok := b.(string)
	if aok || bok {
		return aok && bok && as == bs
	}
	return a == nil && b == nil
}

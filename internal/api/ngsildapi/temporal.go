package ngsildapi

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/zenne-city/zenne/internal/core"
	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/ngsild/temporal"
	"github.com/zenne-city/zenne/internal/store"
)

// The temporal API (/temporal/...): the recorded history of entities.

// temporalView is how a temporal response is written.
type temporalView struct {
	render temporal.RenderOptions
	agg    *temporal.Aggregation // aggregatedValues
	mt     string
	attrs  []string // expanded
}

// write renders t in the view.
func (v *temporalView) write(t *core.Temporal) ngsild.Object {
	if v.agg != nil {
		return temporal.RenderAggregated(t.Entity, t.Series, v.render)
	}
	return temporal.Render(t.Entity, v.render)
}

// temporalView reads options (temporalValues, aggregatedValues, sysAttrs),
// format, attrs, the aggregation (agg, from aggrMethods and
// aggrPeriodDuration in the URL unless given) and the time query (tq, from
// the URL unless given).
func (req *request) temporalView(tq *temporal.Query, agg *temporal.Aggregation) (*temporalView, error) {
	c, err := req.context()
	if err != nil {
		return nil, err
	}
	p := req.r.URL.Query()
	if tq == nil {
		if tq, err = temporal.ParseQuery(p.Get); err != nil {
			return nil, err
		}
	}
	v := &temporalView{render: temporal.RenderOptions{Compact: c, Query: tq}}
	formats := 0
	setFormat := func(f temporal.Format) {
		v.render.Format = f
		formats++
	}
	for _, o := range splitList(p.Get("options")) {
		switch o {
		case "temporalValues", "simplified", "keyValues":
			setFormat(temporal.TemporalValues)
		case "aggregatedValues":
			setFormat(temporal.Aggregated)
		case "normalized":
			setFormat(temporal.Normalized)
		case "sysAttrs":
			v.render.SysAttrs = true
		default:
			return nil, ngsild.Errorf(ngsild.BadRequestData, "unknown option %q: use normalized, temporalValues, aggregatedValues or sysAttrs", o)
		}
	}
	switch f := p.Get("format"); f {
	case "":
	case "temporalValues", "simplified", "keyValues":
		setFormat(temporal.TemporalValues)
	case "aggregatedValues":
		setFormat(temporal.Aggregated)
	case "normalized":
		setFormat(temporal.Normalized)
	default:
		return nil, ngsild.Errorf(ngsild.BadRequestData, "unknown format %q: use normalized, temporalValues or aggregatedValues", f)
	}
	if formats > 1 {
		return nil, ngsild.Errorf(ngsild.BadRequestData, "more than one representation was asked for (options/format)")
	}
	if v.render.Format == temporal.Aggregated {
		if agg == nil {
			// ParseAggregation's errors name the parameter.
			a, err := temporal.ParseAggregation(p.Get)
			if err != nil {
				return nil, err
			}
			agg = &a
		}
		v.agg = agg
		v.render.Methods, v.render.Period = agg.Methods, agg.Period
	} else if agg != nil || p.Has("aggrMethods") || p.Has("aggrPeriodDuration") {
		return nil, ngsild.Errorf(ngsild.BadRequestData, "aggrMethods and aggrPeriodDuration need options=aggregatedValues")
	}
	if v.render.Attrs, v.attrs, err = attrsParam(c, p.Get("attrs")); err != nil {
		return nil, err
	}
	if v.mt, err = req.accepted(mimeJSON, mimeLD); err != nil {
		return nil, err
	}
	return v, nil
}

// paginate cuts instance lists longer than the page size (6.3.10) and
// returns the status to answer: 206 with Content-Range when it did.
// Aggregated responses are not paginated: their size is the number of
// periods, which the client chose.
func (a *API) paginate(req *request, v *temporalView, ts ...*core.Temporal) int {
	if v.agg != nil {
		return http.StatusOK
	}
	ents := make([]*temporal.Entity, len(ts))
	for i, t := range ts {
		ents[i] = t.Entity
	}
	p, ok := temporal.Paginate(ents, v.render.Query, a.opts.TemporalPageSize)
	if !ok {
		return http.StatusOK
	}
	req.w.Header().Set("Content-Range", p.ContentRange())
	return http.StatusPartialContent
}

// retrieveTemporal serves GET /temporal/entities/{id}.
func (a *API) retrieveTemporal(req *request) error {
	id, err := req.pathID()
	if err != nil {
		return err
	}
	v, err := req.temporalView(nil, nil)
	if err != nil {
		return err
	}
	t, err := a.broker.TemporalEntity(req.r.Context(), req.storeTenant(), id, v.attrs, v.render.Query, v.agg)
	if err != nil {
		return err
	}
	status := a.paginate(req, v, t)
	req.writeJSON(status, v.mt, v.write(t), true)
	return nil
}

// queryTemporal serves GET /temporal/entities.
func (a *API) queryTemporal(req *request) error {
	q, err := req.queryParams()
	if err != nil {
		return err
	}
	return a.runTemporalQuery(req, q, nil, nil)
}

// queryTemporalPost serves POST /temporal/entityOperations/query: a Query
// body whose temporalQ member is the time query.
func (a *API) queryTemporalPost(req *request) error {
	body, c, err := req.bodyObjectContext(false)
	if err != nil {
		return err
	}
	tqRaw, hasTQ := body["temporalQ"]
	delete(body, "temporalQ")
	q, err := req.queryBody(body, c)
	if err != nil {
		return err
	}
	tq := &temporal.Query{}
	var agg *temporal.Aggregation
	if hasTQ {
		m, ok := tqRaw.(map[string]any)
		if !ok {
			return ngsild.Errorf(ngsild.BadRequestData, "temporalQ must be an object with timerel, timeAt, endTimeAt and timeproperty")
		}
		if tq, err = temporal.ParseTemporalQ(m); err != nil {
			return err
		}
		if _, has := m["aggrMethods"]; has {
			a, err := temporal.ParseTemporalQAggregation(m)
			if err != nil {
				return err
			}
			agg = &a
		}
	}
	// lastN is a URL parameter even for POST.
	if s := req.r.URL.Query().Get("lastN"); s != "" && tq.LastN == 0 {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			return ngsild.Errorf(ngsild.BadRequestData, "lastN must be a positive integer, not %q", s)
		}
		tq.LastN = n
	}
	return a.runTemporalQuery(req, q, tq, agg)
}

// runTemporalQuery answers a temporal query (5.7.4), which needs a
// temporal relation, unlike the retrieval of one entity's history.
func (a *API) runTemporalQuery(req *request, q *store.Query, tq *temporal.Query, agg *temporal.Aggregation) error {
	v, err := req.temporalView(tq, agg)
	if err != nil {
		return err
	}
	if err := v.render.Query.RequireTimerel(); err != nil {
		return err
	}
	q.Attrs = v.attrs
	if q.IDs == nil && q.IDPattern == nil && q.Type == nil && q.Selectors == nil && q.Attrs == nil && q.Q == nil && q.Geo == nil && q.ScopeQ == nil && req.r.URL.Query().Get("local") != "true" {
		return ngsild.Errorf(ngsild.BadRequestData, "a temporal query needs at least one of type, id, idPattern, attrs, q, scopeQ or a geo-query")
	}
	if err := a.page(req, q); err != nil {
		return err
	}
	ts, count, err := a.broker.TemporalQuery(req.r.Context(), req.storeTenant(), q, v.attrs, v.render.Query, v.agg)
	if err != nil {
		return err
	}
	if q.Count {
		req.w.Header().Set("NGSILD-Results-Count", strconv.Itoa(count))
	}
	status := a.paginate(req, v, ts...)
	list := make([]any, len(ts))
	for i, t := range ts {
		list[i] = v.write(t)
	}
	req.writeJSON(status, v.mt, list, true)
	return nil
}

// temporalBody parses a temporal entity (fragment): each attribute an
// instance or an array of instances, each with its own observedAt.
func (req *request) temporalBody(fragment bool) (id string, types []string, attrs map[string][]*ngsild.Attribute, err error) {
	body, c, err := req.bodyObjectContext(false)
	if err != nil {
		return "", nil, nil, err
	}
	shell := map[string]any{}
	attrs = map[string][]*ngsild.Attribute{}
	opts := parseOptions(false, fragment)
	for k, raw := range body {
		switch k {
		case "id", "type", "@context", "scope", "createdAt", "modifiedAt":
			shell[k] = raw
			continue
		}
		list, ok := raw.([]any)
		if !ok {
			list = []any{raw}
		}
		name := c.ExpandTerm(k)
		for _, x := range list {
			if _, ok := x.(map[string]any); !ok {
				return "", nil, nil, ngsild.Errorf(ngsild.BadRequestData, "the instances of %s must be attribute objects with observedAt", k)
			}
			insts, err := ngsild.ParseAttribute(k, x, c, opts)
			if err != nil {
				return "", nil, nil, err
			}
			for _, a := range insts {
				if a.ObservedAt.IsZero() {
					return "", nil, nil, ngsild.Errorf(ngsild.BadRequestData, "an instance of %s has no observedAt: every instance added to history needs its time", k)
				}
			}
			attrs[name] = append(attrs[name], insts...)
		}
	}
	e, err := ngsild.ParseEntity(shell, c, opts)
	if err != nil {
		return "", nil, nil, err
	}
	return e.ID, e.Types, attrs, nil
}

// createTemporal serves POST /temporal/entities: 201 when the entity was
// created, 204 when instances were added to an existing one.
func (a *API) createTemporal(req *request) error {
	id, types, attrs, err := req.temporalBody(false)
	if err != nil {
		return err
	}
	created, err := a.broker.RecordHistory(req.r.Context(), req.storeTenant(), id, types, attrs)
	if err != nil {
		return err
	}
	if created {
		req.w.Header().Set("Location", Prefix+"/temporal/entities/"+url.PathEscape(id))
		req.w.WriteHeader(http.StatusCreated)
		return nil
	}
	req.noContent()
	return nil
}

// addTemporalAttrs serves POST /temporal/entities/{id}/attrs.
func (a *API) addTemporalAttrs(req *request) error {
	id, err := req.pathID()
	if err != nil {
		return err
	}
	bodyID, types, attrs, err := req.temporalBody(true)
	if err != nil {
		return err
	}
	if bodyID != "" && bodyID != id {
		return ngsild.Errorf(ngsild.BadRequestData, "the body's id %s is not the entity's id %s", bodyID, id)
	}
	if _, err := a.broker.RecordHistory(req.r.Context(), req.storeTenant(), id, types, attrs); err != nil {
		return err
	}
	req.noContent()
	return nil
}

// deleteTemporal serves DELETE /temporal/entities/{id}.
func (a *API) deleteTemporal(req *request) error {
	id, err := req.pathID()
	if err != nil {
		return err
	}
	if err := a.broker.DeleteHistory(req.r.Context(), req.storeTenant(), id, store.HistorySelector{}); err != nil {
		return err
	}
	req.noContent()
	return nil
}

// deleteTemporalAttr serves DELETE /temporal/entities/{id}/attrs/{attr}
// (datasetId, deleteAll).
func (a *API) deleteTemporalAttr(req *request) error {
	id, name, err := req.pathIDAttr()
	if err != nil {
		return err
	}
	sel := store.HistorySelector{Attr: name}
	deleteAll, err := boolParam(req.r, "deleteAll")
	if err != nil {
		return err
	}
	if !deleteAll {
		ds, err := req.datasetIDParam()
		if err != nil {
			return err
		}
		sel.DatasetID = &ds
	}
	if err := a.broker.DeleteHistory(req.r.Context(), req.storeTenant(), id, sel); err != nil {
		return err
	}
	req.noContent()
	return nil
}

// pathInstance reads the {id}, {attr} and {instanceId} path segments.
func (req *request) pathInstance() (id, name, inst string, err error) {
	if id, name, err = req.pathIDAttr(); err != nil {
		return "", "", "", err
	}
	inst = req.r.PathValue("instanceId")
	if ngsild.ValidURI(inst) != nil {
		return "", "", "", ngsild.Errorf(ngsild.BadRequestData, "instanceId %q is not a URI", inst)
	}
	return id, name, inst, nil
}

// deleteTemporalInstance serves DELETE
// /temporal/entities/{id}/attrs/{attr}/{instanceId}.
func (a *API) deleteTemporalInstance(req *request) error {
	id, name, inst, err := req.pathInstance()
	if err != nil {
		return err
	}
	if err := a.broker.DeleteHistory(req.r.Context(), req.storeTenant(), id, store.HistorySelector{Attr: name, InstanceID: inst}); err != nil {
		return err
	}
	req.noContent()
	return nil
}

// replaceTemporalInstance serves PATCH
// /temporal/entities/{id}/attrs/{attr}/{instanceId}: the instance gets the
// body's value and metadata and keeps its time.
func (a *API) replaceTemporalInstance(req *request) error {
	id, name, inst, err := req.pathInstance()
	if err != nil {
		return err
	}
	insts, err := req.attrBody(name, false)
	if err != nil {
		return err
	}
	if len(insts) != 1 {
		return ngsild.Errorf(ngsild.BadRequestData, "the body must be one attribute instance")
	}
	if err := a.broker.ReplaceInstance(req.r.Context(), req.storeTenant(), id, name, inst, insts[0]); err != nil {
		return err
	}
	req.noContent()
	return nil
}

package ngsildapi

import (
	"net/http"

	"github.com/zenne-city/zenne/internal/core"
	"github.com/zenne-city/zenne/internal/ngsild"
)

// maxBatch is the most entities one batch request may carry.
const maxBatch = 10000

// batchEntities parses a batch body: a JSON array of entities. Items that do
// not parse are reported as errors; the others are returned for the broker.
func (req *request) batchEntities(fragment, merge bool) ([]*ngsild.Entity, []core.BatchError, error) {
	v, err := req.readBody(false)
	if err != nil {
		return nil, nil, err
	}
	items, ok := v.([]any)
	if !ok {
		return nil, nil, ngsild.Errorf(ngsild.BadRequestData, "a batch body must be a JSON array of entities")
	}
	if len(items) == 0 {
		return nil, nil, ngsild.Errorf(ngsild.BadRequestData, "the batch is empty")
	}
	if len(items) > maxBatch {
		return nil, nil, ngsild.Errorf(ngsild.PayloadTooLarge, "a batch holds at most %d entities, this one has %d", maxBatch, len(items))
	}
	var ents []*ngsild.Entity
	var bad []core.BatchError
	for _, it := range items {
		m, ok := it.(map[string]any)
		if !ok {
			bad = append(bad, core.BatchError{Err: ngsild.Errorf(ngsild.BadRequestData, "a batch item must be a JSON object")})
			continue
		}
		id, _ := m["id"].(string)
		c, err := req.itemContext(m)
		if err != nil {
			bad = append(bad, core.BatchError{EntityID: id, Err: ngsild.AsError(err)})
			continue
		}
		if req.ldBody && req.ctx == nil {
			req.ctx = c // responses are compacted with the first item's context
		}
		e, err := ngsild.ParseEntity(m, c, parseOptions(merge, fragment))
		if err == nil && e.ID == "" {
			err = ngsild.Errorf(ngsild.BadRequestData, "the entity has no id")
		}
		if err != nil {
			bad = append(bad, core.BatchError{EntityID: id, Err: ngsild.AsError(err)})
			continue
		}
		ents = append(ents, e)
	}
	return ents, bad, nil
}

// batchResponse writes a batch outcome: okStatus with okBody when every item
// succeeded, otherwise 207 with a BatchOperationResult.
func (req *request) batchResponse(res *core.BatchResult, bad []core.BatchError, okStatus int, okBody any) {
	errs := append(bad, res.Errors...)
	if len(errs) == 0 {
		if okStatus == http.StatusNoContent {
			req.noContent()
			return
		}
		req.writeJSON(okStatus, mimeJSON, okBody, false)
		return
	}
	success := res.Success
	if success == nil {
		success = []string{}
	}
	list := make([]any, len(errs))
	for i, e := range errs {
		item := ngsild.Object{}
		if e.EntityID != "" {
			item.Set("entityId", e.EntityID)
		}
		item.Set("error", problemObject(e.Err))
		list[i] = item
	}
	req.writeJSON(http.StatusMultiStatus, mimeJSON, ngsild.Object{{Key: "success", Value: success}, {Key: "errors", Value: list}}, false)
}

func problemObject(e *ngsild.Error) ngsild.Object {
	o := ngsild.Object{{Key: "type", Value: string(e.Type)}, {Key: "title", Value: e.Title}, {Key: "status", Value: e.Status()}}
	if e.Detail != "" {
		o.Set("detail", e.Detail)
	}
	return o
}

func emptyIfNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (a *API) batchCreate(req *request) error {
	ents, bad, err := req.batchEntities(false, false)
	if err != nil {
		return err
	}
	res, err := a.broker.BatchCreate(req.r.Context(), req.storeTenant(), ents)
	if err != nil {
		return err
	}
	req.batchResponse(res, bad, http.StatusCreated, emptyIfNil(res.Created))
	return nil
}

func (a *API) batchUpsert(req *request) error {
	update := false
	for _, o := range splitList(req.r.URL.Query().Get("options")) {
		switch o {
		case "update":
			update = true
		case "replace":
			update = false
		default:
			return ngsild.Errorf(ngsild.BadRequestData, "unknown option %q: use update or replace", o)
		}
	}
	ents, bad, err := req.batchEntities(false, false)
	if err != nil {
		return err
	}
	res, err := a.broker.BatchUpsert(req.r.Context(), req.storeTenant(), ents, update)
	if err != nil {
		return err
	}
	if len(res.Created) == 0 {
		req.batchResponse(res, bad, http.StatusNoContent, nil)
		return nil
	}
	req.batchResponse(res, bad, http.StatusCreated, res.Created)
	return nil
}

func (a *API) batchUpdate(req *request) error {
	noOverwrite := false
	for _, o := range splitList(req.r.URL.Query().Get("options")) {
		if o != "noOverwrite" {
			return ngsild.Errorf(ngsild.BadRequestData, "unknown option %q: only noOverwrite applies here", o)
		}
		noOverwrite = true
	}
	ents, bad, err := req.batchEntities(true, false)
	if err != nil {
		return err
	}
	res, err := a.broker.BatchUpdate(req.r.Context(), req.storeTenant(), ents, noOverwrite)
	if err != nil {
		return err
	}
	req.batchResponse(res, bad, http.StatusNoContent, nil)
	return nil
}

func (a *API) batchMerge(req *request) error {
	ents, bad, err := req.batchEntities(true, true)
	if err != nil {
		return err
	}
	res, err := a.broker.BatchMerge(req.r.Context(), req.storeTenant(), ents)
	if err != nil {
		return err
	}
	req.batchResponse(res, bad, http.StatusNoContent, nil)
	return nil
}

func (a *API) batchDelete(req *request) error {
	v, err := req.readBody(false)
	if err != nil {
		return err
	}
	items, ok := v.([]any)
	if !ok || len(items) == 0 {
		return ngsild.Errorf(ngsild.BadRequestData, "the body must be a non-empty JSON array of entity ids")
	}
	if len(items) > maxBatch {
		return ngsild.Errorf(ngsild.PayloadTooLarge, "a batch holds at most %d entities, this one has %d", maxBatch, len(items))
	}
	var ids []string
	var bad []core.BatchError
	for _, it := range items {
		s, ok := it.(string)
		if !ok || ngsild.ValidURI(s) != nil {
			bad = append(bad, core.BatchError{EntityID: s, Err: ngsild.Errorf(ngsild.BadRequestData, "%v is not an entity id (a URI)", it)})
			continue
		}
		ids = append(ids, s)
	}
	res, err := a.broker.BatchDelete(req.r.Context(), req.storeTenant(), ids)
	if err != nil {
		return err
	}
	req.batchResponse(res, bad, http.StatusNoContent, nil)
	return nil
}

package ngsildapi

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/http"

	"github.com/zenne-city/zenne/internal/api/problem"
	"github.com/zenne-city/zenne/internal/jsonld"
	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/ngsild/geo"
	"github.com/zenne-city/zenne/internal/store"
)

// request is one API call being served.
type request struct {
	w      http.ResponseWriter
	r      *http.Request
	api    *API
	tenant string
	// ctx is the request's active @context (Link header or body), resolved
	// lazily because a body's @context is only known once it is read.
	ctx *jsonld.Context
	// linkURL is the context URL of the request's Link header, echoed in the
	// response's Link header.
	linkURL string
	// ldBody: the body was application/ld+json (its @context is in the body).
	ldBody bool
}

const (
	mimeJSON      = "application/json"
	mimeLD        = "application/ld+json"
	mimeGeoJSON   = "application/geo+json"
	mimeMerge     = "application/merge-patch+json"
	coreContextV8 = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
)

func (a *API) handle(f func(*request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := &request{w: w, r: r, api: a}
		if err := req.prepare(); err != nil {
			req.fail(err)
			return
		}
		if err := f(req); err != nil {
			req.fail(err)
		}
	})
}

// prepare reads what every request has: tenant and Link header context.
func (req *request) prepare() error {
	t := req.r.Header.Get("NGSILD-Tenant")
	if t != "" && !ngsild.ValidTenant(t) {
		return ngsild.Errorf(ngsild.BadRequestData, "invalid tenant name %q: use letters, digits, '_', '-' and '.' (at most 64)", t)
	}
	req.tenant = t
	if t != "" {
		req.w.Header().Set("NGSILD-Tenant", t)
	}
	links := req.r.Header.Values("Link")
	var url string
	for _, l := range links {
		u, ok, err := jsonld.ParseContextLink(l)
		if err != nil {
			return err
		}
		if ok {
			if url != "" {
				return ngsild.Errorf(ngsild.BadRequestData, "more than one JSON-LD @context Link header")
			}
			url = u
		}
	}
	req.linkURL = url
	return nil
}

// context returns the active @context, resolving the Link header one.
func (req *request) context() (*jsonld.Context, error) {
	if req.ctx != nil {
		return req.ctx, nil
	}
	if req.linkURL == "" {
		req.ctx = req.api.resolver.Core()
		return req.ctx, nil
	}
	c, err := req.api.resolver.Resolve(req.r.Context(), req.linkURL)
	if err != nil {
		return nil, jsonld.AsNGSILDError(err)
	}
	req.ctx = c
	return c, nil
}

// expand expands a user term with the request's context.
func (req *request) expand(term string) string {
	c, err := req.context()
	if err != nil {
		return term
	}
	return c.ExpandTerm(term)
}

// readBody checks the content type and size and decodes the JSON body. With
// application/ld+json the body's @context becomes the request's context.
// allowMerge admits application/merge-patch+json.
func (req *request) readBody(allowMerge bool) (any, error) {
	v, err := req.decodeBody(allowMerge)
	if err != nil {
		return nil, err
	}
	if err := req.bodyContext(v); err != nil {
		return nil, err
	}
	return v, nil
}

// decodeBody checks the content type and size and decodes the JSON body,
// without the @context rules of entity payloads (for /jsonldContexts, whose
// body is a context document).
func (req *request) decodeBody(allowMerge bool) (any, error) {
	ct := req.r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil {
		return nil, ngsild.Errorf(ngsild.UnsupportedMediaType, "missing or malformed Content-Type: send application/json or application/ld+json")
	}
	switch {
	case mt == mimeJSON, allowMerge && mt == mimeMerge:
	case mt == mimeLD:
		req.ldBody = true
	default:
		return nil, ngsild.Errorf(ngsild.UnsupportedMediaType, "Content-Type %s is not supported: send application/json or application/ld+json", mt)
	}
	limit := req.api.opts.MaxBody
	data, err := io.ReadAll(io.LimitReader(req.r.Body, limit+1))
	if err != nil {
		return nil, ngsild.Errorf(ngsild.InvalidRequest, "reading the body: %v", err)
	}
	if int64(len(data)) > limit {
		return nil, ngsild.Errorf(ngsild.PayloadTooLarge, "the body is larger than %d bytes", limit)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, ngsild.Errorf(ngsild.InvalidRequest, "the request body is empty")
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&v); err != nil {
		return nil, ngsild.Errorf(ngsild.InvalidRequest, "the body is not valid JSON: %v", err)
	}
	if dec.More() {
		return nil, ngsild.Errorf(ngsild.InvalidRequest, "the body has data after its JSON value")
	}
	return v, nil
}

// bodyContext applies the @context rules of 6.3.5: with application/json the
// context comes from the Link header and the body must not have one; with
// application/ld+json it comes from the body and there must be no Link header.
func (req *request) bodyContext(v any) error {
	var raw any
	var has bool
	switch b := v.(type) {
	case map[string]any:
		raw, has = b["@context"]
	case []any:
		// Batch bodies: every entity carries its own @context with ld+json;
		// they are resolved per item (itemContext).
		return nil
	}
	if !req.ldBody {
		if has {
			return ngsild.Errorf(ngsild.BadRequestData, "a body with @context must be sent as application/ld+json")
		}
		return nil
	}
	if req.linkURL != "" {
		return ngsild.Errorf(ngsild.BadRequestData, "with application/ld+json the @context goes in the body, not in a Link header")
	}
	if !has {
		return ngsild.Errorf(ngsild.BadRequestData, "an application/ld+json body must have an @context member")
	}
	c, err := req.api.resolver.Resolve(req.r.Context(), raw)
	if err != nil {
		return jsonld.AsNGSILDError(err)
	}
	req.ctx = c
	return nil
}

// itemContext returns the context for one entity of a batch body.
func (req *request) itemContext(item map[string]any) (*jsonld.Context, error) {
	raw, has := item["@context"]
	if !req.ldBody {
		if has {
			return nil, ngsild.Errorf(ngsild.BadRequestData, "a body with @context must be sent as application/ld+json")
		}
		return req.context()
	}
	if !has {
		return nil, ngsild.Errorf(ngsild.BadRequestData, "with application/ld+json every entity needs an @context member")
	}
	c, err := req.api.resolver.Resolve(req.r.Context(), raw)
	if err != nil {
		return nil, jsonld.AsNGSILDError(err)
	}
	return c, nil
}

// bodyObject reads a body that must be a JSON object.
func (req *request) bodyObject(allowMerge bool) (map[string]any, error) {
	v, err := req.readBody(allowMerge)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, ngsild.Errorf(ngsild.BadRequestData, "the body must be a JSON object")
	}
	return m, nil
}

// bodyObjectContext reads a JSON object body and then the request's @context,
// which an application/ld+json body sets.
func (req *request) bodyObjectContext(allowMerge bool) (map[string]any, *jsonld.Context, error) {
	body, err := req.bodyObject(allowMerge)
	if err != nil {
		return nil, nil, err
	}
	c, err := req.context()
	if err != nil {
		return nil, nil, err
	}
	return body, c, nil
}

func parseOptions(merge bool, fragment bool) ngsild.ParseOptions {
	return ngsild.ParseOptions{
		Merge:        merge,
		Fragment:     fragment,
		PartialAttrs: merge,
		ValidateGeometry: func(v any) error {
			_, err := geo.ParseGeometry(v)
			return err
		},
	}
}

// pathID reads and checks the {id} path segment.
func (req *request) pathID() (string, error) {
	id := req.r.PathValue("id")
	if ngsild.ValidURI(id) != nil {
		return "", ngsild.Errorf(ngsild.BadRequestData, "the entity id %q is not a URI", id)
	}
	return id, nil
}

// pathAttr reads and expands the {attr} path segment.
func (req *request) pathAttr() (string, error) {
	a := req.r.PathValue("attr")
	if err := ngsild.ValidAttrName(a); err != nil {
		return "", err
	}
	if _, err := req.context(); err != nil {
		return "", err
	}
	return req.expand(a), nil
}

// fail writes err as ProblemDetails.
func (req *request) fail(err error) { problem.Write(req.w, req.r, req.api.log, err) }

func notFoundRoute(req *request) error {
	return ngsild.Errorf(ngsild.ResourceNotFound, "no NGSI-LD operation %s %s", req.r.Method, req.r.URL.Path)
}

// boolParam reads a true/false query parameter.
func boolParam(r *http.Request, name string) (bool, error) {
	v := r.URL.Query().Get(name)
	switch v {
	case "":
		return false, nil
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, ngsild.Errorf(ngsild.BadRequestData, "%s must be true or false, not %q", name, v)
}

// storeTenant maps the header to the store's tenant name.
func (req *request) storeTenant() string {
	if req.tenant == "" {
		return store.DefaultTenant
	}
	return req.tenant
}

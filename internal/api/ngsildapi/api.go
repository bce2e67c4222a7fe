// Package ngsildapi is the HTTP transport of the NGSI-LD API (ETSI GS CIM 009)
// under /ngsi-ld/v1: it decodes requests, resolves their JSON-LD @context,
// calls the broker (internal/core) and writes responses compacted with the
// request's context. It holds no business rules.
package ngsildapi

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"github.com/zenne-city/zenne/internal/core"
	"github.com/zenne-city/zenne/internal/jsonld"
	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store"
)

// Prefix is the base path of the API.
const Prefix = "/ngsi-ld/v1"

// Resolver resolves @contexts (implemented by *jsonld.Resolver).
type Resolver interface {
	Resolve(ctx context.Context, raw any) (*jsonld.Context, error)
	Core() *jsonld.Context
}

// Options tune the API.
type Options struct {
	MaxBody      int64 // bytes; larger bodies get 413
	DefaultLimit int   // page size when limit is not given
	MaxLimit     int   // larger limits get 403 TooManyResults
	// TemporalPageSize is the most instances per attribute a temporal
	// response holds; longer histories are paginated with 206 and
	// Content-Range (default 1,000).
	TemporalPageSize int
	// Subscriptions serves /subscriptions (nil: answered as not supported).
	Subscriptions Subscriptions
}

// API serves the NGSI-LD HTTP API.
type API struct {
	broker   *core.Broker
	contexts store.Contexts
	resolver Resolver
	log      *slog.Logger
	opts     Options
	implicit sync.Map // ids of implicit contexts already stored
}

// New returns the API over broker b.
func New(b *core.Broker, contexts store.Contexts, r Resolver, log *slog.Logger, opts Options) *API {
	if opts.MaxBody == 0 {
		opts.MaxBody = 8 << 20
	}
	if opts.DefaultLimit == 0 {
		opts.DefaultLimit = 20
	}
	if opts.MaxLimit == 0 {
		opts.MaxLimit = 1000
	}
	if opts.TemporalPageSize == 0 {
		opts.TemporalPageSize = 1000
	}
	return &API{broker: b, contexts: contexts, resolver: r, log: log, opts: opts}
}

// Register adds the API's routes to mux.
func (a *API) Register(mux *http.ServeMux) {
	methods := map[string][]string{} // path -> methods served, for 405 answers
	h := func(pattern string, f func(*request) error) {
		mux.Handle(pattern, a.handle(f))
		if method, path, ok := strings.Cut(pattern, " "); ok {
			methods[path] = append(methods[path], method)
		}
	}
	p := Prefix
	h("POST "+p+"/entities", a.createEntity)
	h("GET "+p+"/entities", a.queryEntities)
	h("GET "+p+"/entities/{id}", a.retrieveEntity)
	h("DELETE "+p+"/entities/{id}", a.deleteEntity)
	h("PATCH "+p+"/entities/{id}", a.mergeEntity)
	h("PUT "+p+"/entities/{id}", a.replaceEntity)
	h("POST "+p+"/entities/{id}/attrs", a.appendAttrs)
	h("PATCH "+p+"/entities/{id}/attrs", a.updateAttrs)
	h("PATCH "+p+"/entities/{id}/attrs/{attr}", a.partialAttrUpdate)
	h("PUT "+p+"/entities/{id}/attrs/{attr}", a.replaceAttr)
	h("DELETE "+p+"/entities/{id}/attrs/{attr}", a.deleteAttr)

	h("POST "+p+"/entityOperations/create", a.batchCreate)
	h("POST "+p+"/entityOperations/upsert", a.batchUpsert)
	h("POST "+p+"/entityOperations/update", a.batchUpdate)
	h("POST "+p+"/entityOperations/delete", a.batchDelete)
	h("POST "+p+"/entityOperations/merge", a.batchMerge)
	h("POST "+p+"/entityOperations/query", a.queryPost)

	h("GET "+p+"/temporal/entities", a.queryTemporal)
	h("POST "+p+"/temporal/entities", a.createTemporal)
	h("GET "+p+"/temporal/entities/{id}", a.retrieveTemporal)
	h("DELETE "+p+"/temporal/entities/{id}", a.deleteTemporal)
	h("POST "+p+"/temporal/entities/{id}/attrs", a.addTemporalAttrs)
	h("DELETE "+p+"/temporal/entities/{id}/attrs/{attr}", a.deleteTemporalAttr)
	h("PATCH "+p+"/temporal/entities/{id}/attrs/{attr}/{instanceId}", a.replaceTemporalInstance)
	h("DELETE "+p+"/temporal/entities/{id}/attrs/{attr}/{instanceId}", a.deleteTemporalInstance)
	h("POST "+p+"/temporal/entityOperations/query", a.queryTemporalPost)

	a.registerSubscriptions(h)

	h("GET "+p+"/types", a.listTypes)
	h("GET "+p+"/types/{type}", a.typeInfo)
	h("GET "+p+"/attributes", a.listAttributes)
	h("GET "+p+"/attributes/{attr}", a.attributeInfo)

	h("POST "+p+"/jsonldContexts", a.addContext)
	h("GET "+p+"/jsonldContexts", a.listContexts)
	h("GET "+p+"/jsonldContexts/{id}", a.serveContext)
	h("DELETE "+p+"/jsonldContexts/{id}", a.deleteContext)

	// A known path with another method is a 405 with Allow; anything else
	// under the prefix is an NGSI-LD 404, not Go's plain ones.
	for path, ms := range methods {
		allow := strings.Join(ms, ", ")
		mux.Handle(path, a.handle(func(r *request) error {
			r.w.Header().Set("Allow", allow)
			return ngsild.Errorf(ngsild.MethodNotAllowed, "%s is not allowed on %s: use %s", r.r.Method, r.r.URL.Path, allow)
		}))
	}
	mux.Handle(p+"/", a.handle(notFoundRoute))
}

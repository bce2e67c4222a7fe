// Package ngsildapi is the HTTP transport of the NGSI-LD API (ETSI GS CIM 009)
// under /ngsi-ld/v1: it decodes requests, resolves their JSON-LD @context,
// calls the broker (internal/core) and writes responses compacted with the
// request's context. It holds no business rules.
package ngsildapi

import (
	"context"
	"log/slog"
	"strings"
	"sync"

	"github.com/zenne-city/zenne/internal/api/access"
	"github.com/zenne-city/zenne/internal/auth"
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

// Register adds the API's routes to mux, each with the permission it needs
// on the request's tenant (NGSILD-Tenant).
func (a *API) Register(mux *access.Mux) {
	h := func(pattern string, perm auth.Permission, f func(*request) error) {
		mux.Handle(pattern, perm, a.handle(f))
	}
	const read, write = auth.PermRead, auth.PermWrite
	p := Prefix
	h("POST "+p+"/entities", write, a.createEntity)
	h("GET "+p+"/entities", read, a.queryEntities)
	h("GET "+p+"/entities/{id}", read, a.retrieveEntity)
	h("DELETE "+p+"/entities/{id}", write, a.deleteEntity)
	h("PATCH "+p+"/entities/{id}", write, a.mergeEntity)
	h("PUT "+p+"/entities/{id}", write, a.replaceEntity)
	h("POST "+p+"/entities/{id}/attrs", write, a.appendAttrs)
	h("PATCH "+p+"/entities/{id}/attrs", write, a.updateAttrs)
	h("PATCH "+p+"/entities/{id}/attrs/{attr}", write, a.partialAttrUpdate)
	h("PUT "+p+"/entities/{id}/attrs/{attr}", write, a.replaceAttr)
	h("DELETE "+p+"/entities/{id}/attrs/{attr}", write, a.deleteAttr)

	h("POST "+p+"/entityOperations/create", write, a.batchCreate)
	h("POST "+p+"/entityOperations/upsert", write, a.batchUpsert)
	h("POST "+p+"/entityOperations/update", write, a.batchUpdate)
	h("POST "+p+"/entityOperations/delete", write, a.batchDelete)
	h("POST "+p+"/entityOperations/merge", write, a.batchMerge)
	h("POST "+p+"/entityOperations/query", read, a.queryPost)

	h("GET "+p+"/temporal/entities", read, a.queryTemporal)
	h("POST "+p+"/temporal/entities", write, a.createTemporal)
	h("GET "+p+"/temporal/entities/{id}", read, a.retrieveTemporal)
	h("DELETE "+p+"/temporal/entities/{id}", write, a.deleteTemporal)
	h("POST "+p+"/temporal/entities/{id}/attrs", write, a.addTemporalAttrs)
	h("DELETE "+p+"/temporal/entities/{id}/attrs/{attr}", write, a.deleteTemporalAttr)
	h("PATCH "+p+"/temporal/entities/{id}/attrs/{attr}/{instanceId}", write, a.replaceTemporalInstance)
	h("DELETE "+p+"/temporal/entities/{id}/attrs/{attr}/{instanceId}", write, a.deleteTemporalInstance)
	h("POST "+p+"/temporal/entityOperations/query", read, a.queryTemporalPost)

	a.registerSubscriptions(h)

	h("GET "+p+"/types", read, a.listTypes)
	h("GET "+p+"/types/{type}", read, a.typeInfo)
	h("GET "+p+"/attributes", read, a.listAttributes)
	h("GET "+p+"/attributes/{attr}", read, a.attributeInfo)

	// The @context registry is platform-wide: registering and deleting
	// need the platform right; the documents are public, since JSON-LD
	// processors dereference the URLs in Link headers without credentials.
	const fetched = "@context documents are fetched by JSON-LD processors without credentials"
	mux.Platform("POST "+p+"/jsonldContexts", auth.PermContexts, a.handle(a.addContext))
	mux.Open("GET "+p+"/jsonldContexts", fetched, a.handle(a.listContexts))
	mux.Open("GET "+p+"/jsonldContexts/{id}", fetched, a.handle(a.serveContext))
	mux.Platform("DELETE "+p+"/jsonldContexts/{id}", auth.PermContexts, a.handle(a.deleteContext))

	// A known path with another method is a 405 with Allow; anything else
	// under the prefix is an NGSI-LD 404, not Go's plain ones.
	const noData = "answers only 404 or 405, with no data"
	methods := map[string][]string{} // path -> methods served
	for _, pattern := range mux.Patterns() {
		if method, path, ok := strings.Cut(pattern, " "); ok && strings.HasPrefix(path, p+"/") {
			methods[path] = append(methods[path], method)
		}
	}
	for path, ms := range methods {
		allow := strings.Join(ms, ", ")
		mux.Open(path, noData, a.handle(func(r *request) error {
			r.w.Header().Set("Allow", allow)
			return ngsild.Errorf(ngsild.MethodNotAllowed, "%s is not allowed on %s: use %s", r.r.Method, r.r.URL.Path, allow)
		}))
	}
	mux.Open(p+"/", noData, a.handle(notFoundRoute))
}

package ngsildapi

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/zenne-city/zenne/internal/jsonld"
	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store"
)

// HostedPath is where hosted @contexts are served; the resolver maps URLs
// with this path to the store, whatever host they name, so a broker never
// fetches its own contexts over the network.
const HostedPath = Prefix + "/jsonldContexts/"

// addContext serves POST /jsonldContexts: registers a hosted @context.
func (a *API) addContext(req *request) error {
	v, err := req.decodeBody(false)
	if err != nil {
		return err
	}
	body, ok := v.(map[string]any)
	if !ok {
		return ngsild.Errorf(ngsild.BadRequestData, "the body must be a JSON object with an @context member")
	}
	raw, ok := body["@context"]
	if !ok {
		return ngsild.Errorf(ngsild.BadRequestData, "the body must be a JSON-LD document with an @context member")
	}
	switch raw.(type) {
	case map[string]any, []any, string:
	default:
		return ngsild.Errorf(ngsild.BadRequestData, "@context must be an object, an array or a URL")
	}
	// Check it is a usable context before storing it.
	if _, err := a.resolver.Resolve(req.r.Context(), raw); err != nil {
		return jsonld.AsNGSILDError(err)
	}
	id := newID()
	doc, _ := json.Marshal(map[string]any{"@context": raw})
	rec := store.ContextRecord{ID: id, Kind: "Hosted", Body: doc, CreatedAt: time.Now().UTC()}
	if err := a.contexts.PutContext(req.r.Context(), rec); err != nil {
		return err
	}
	req.w.Header().Set("Location", HostedPath+id)
	req.w.WriteHeader(http.StatusCreated)
	return nil
}

// listContexts serves GET /jsonldContexts: URLs, or details with details=true.
func (a *API) listContexts(req *request) error {
	details, err := boolParam(req.r, "details")
	if err != nil {
		return err
	}
	kind := req.r.URL.Query().Get("kind")
	switch kind {
	case "", "Hosted", "Cached", "ImplicitlyCreated":
	default:
		return ngsild.Errorf(ngsild.BadRequestData, "kind must be Hosted, Cached or ImplicitlyCreated")
	}
	recs, err := a.contexts.ListContexts(req.r.Context())
	if err != nil {
		return err
	}
	base := baseURL(req.r)
	list := []any{}
	for _, rec := range recs {
		if kind != "" && rec.Kind != kind {
			continue
		}
		url := base + HostedPath + rec.ID
		if !details {
			list = append(list, url)
			continue
		}
		list = append(list, ngsild.Object{
			{Key: "URL", Value: url},
			{Key: "localId", Value: rec.ID},
			{Key: "kind", Value: rec.Kind},
			{Key: "createdAt", Value: ngsild.FormatTime(rec.CreatedAt)},
		})
	}
	req.writeJSON(http.StatusOK, mimeJSON, list, false)
	return nil
}

// serveContext serves GET /jsonldContexts/{id}: the stored document.
func (a *API) serveContext(req *request) error {
	rec, err := a.contexts.GetContext(req.r.Context(), req.r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		return ngsild.Errorf(ngsild.ResourceNotFound, "no @context %s", req.r.PathValue("id"))
	}
	if err != nil {
		return err
	}
	req.w.Header().Set("Content-Type", mimeLD)
	req.w.Write(rec.Body)
	return nil
}

// deleteContext serves DELETE /jsonldContexts/{id}.
func (a *API) deleteContext(req *request) error {
	err := a.contexts.DeleteContext(req.r.Context(), req.r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		return ngsild.Errorf(ngsild.ResourceNotFound, "no @context %s", req.r.PathValue("id"))
	}
	if err != nil {
		return err
	}
	// Contexts built from the deleted document must not outlive it, nor
	// the memory that an implicit one is hosted (the next response hosts
	// it again rather than link to a deleted document).
	a.implicit.Delete(req.r.PathValue("id"))
	if f, ok := a.resolver.(interface{ Flush() }); ok {
		f.Flush()
	}
	req.noContent()
	return nil
}

// implicitContext hosts an inline @context a request came with, so a JSON
// response compacted with it can point to it in its Link header (the
// ImplicitlyCreated contexts of 5.13). The id is the hash of the context, so
// the same inline context is stored once. If it cannot be stored, the core
// context is linked and the failure logged.
func (a *API) implicitContext(r *http.Request, src any) string {
	body, err := ngsild.Marshal(map[string]any{"@context": src})
	if err != nil {
		return coreContextV8
	}
	sum := sha256.Sum256(body)
	id := "implicit-" + hex.EncodeToString(sum[:12])
	if _, known := a.implicit.Load(id); !known {
		rec := store.ContextRecord{ID: id, Kind: "ImplicitlyCreated", Body: body, CreatedAt: time.Now().UTC()}
		if err := a.contexts.PutContext(r.Context(), rec); err != nil {
			a.log.Warn("cannot host an implicit @context", "err", err)
			return coreContextV8
		}
		a.implicit.Store(id, true)
	}
	return baseURL(r) + HostedPath + id
}

func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// baseURL is the scheme and host the client used.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

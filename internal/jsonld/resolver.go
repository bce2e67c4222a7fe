package jsonld

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
)

// Errors of context resolution. Callers map ErrNotAvailable to the NGSI-LD
// LdContextNotAvailable error (503) and ErrInvalid to BadRequestData (400).
var (
	// ErrNotAvailable: a referenced context could not be obtained (network
	// error, timeout, non-2xx status, document too large, registry failure).
	ErrNotAvailable = errors.New("JSON-LD context not available")
	// ErrInvalid: the context is not valid (not JSON, no @context member, a bad
	// term definition, a reference cycle, references nested too deep).
	ErrInvalid = errors.New("invalid JSON-LD context")
)

// Registry gives access to the contexts hosted by the broker itself. ok is
// false if url is not one of them. body is the whole document ({"@context": ...}).
type Registry interface {
	GetContext(ctx context.Context, url string) (body []byte, ok bool, err error)
}

// Options configures a Resolver. The zero value is usable.
type Options struct {
	// HTTPClient fetches remote contexts; nil means a client with a 5 s timeout.
	// At most 5 redirects are followed unless the client sets CheckRedirect.
	HTTPClient *http.Client
	// Registry holds the broker's hosted contexts; may be nil.
	Registry Registry
	// MaxSize is the largest remote document accepted, in bytes (default 1 MiB).
	MaxSize int64
	// CacheTTL is how long a fetched document, and a context built from fetched
	// or registry documents, stays cached (default 1 h). Contexts built only from
	// embedded and inline definitions never expire (they are evicted LRU).
	CacheTTL time.Duration
	// CacheSize bounds the number of cached contexts and of cached fetched
	// documents (default 1000 each).
	CacheSize int
}

// Resolver turns @context values into active contexts, caching the results.
// It is safe for concurrent use.
type Resolver struct {
	client   *http.Client
	registry Registry
	maxSize  int64
	ttl      time.Duration

	docs     map[string][]byte   // embedded documents by URL
	values   map[string]any      // their decoded @context values
	cores    map[string]*Context // core-only contexts by core URL
	core     *Context            // the default core context
	coreDefs map[string]coreDefs // core term definitions by core URL, applied last

	contexts *lru[*Context] // built contexts by canonical @context
	fetched  *lru[any]      // decoded @context values of fetched documents by URL

	mu      sync.Mutex
	pending map[string]*flight // builds in progress by cache key
}

type coreDefs struct {
	terms map[string]termDef
	vocab string
}

type flight struct {
	done chan struct{}
	c    *Context
	err  error
}

// buildTimeout bounds a shared context build (which outlives the request that
// started it, so that concurrent requests for the same context wait for it).
const buildTimeout = 30 * time.Second

// NewResolver returns a Resolver. It panics if an embedded context is broken,
// which a test catches.
func NewResolver(opts Options) *Resolver {
	r := &Resolver{
		registry: opts.Registry,
		maxSize:  opts.MaxSize,
		ttl:      opts.CacheTTL,
		docs:     make(map[string][]byte),
		values:   make(map[string]any),
		cores:    make(map[string]*Context),
		coreDefs: make(map[string]coreDefs),
		pending:  make(map[string]*flight),
	}
	if r.maxSize <= 0 {
		r.maxSize = 1 << 20
	}
	if r.ttl <= 0 {
		r.ttl = time.Hour
	}
	size := opts.CacheSize
	if size <= 0 {
		size = 1000
	}
	r.contexts, r.fetched = newLRU[*Context](size), newLRU[any](size)
	if opts.HTTPClient != nil {
		c := *opts.HTTPClient
		r.client = &c
	} else {
		r.client = &http.Client{Timeout: 5 * time.Second}
	}
	if r.client.CheckRedirect == nil {
		r.client.CheckRedirect = func(_ *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("stopped after 5 redirects")
			}
			return nil
		}
	}

	for u, name := range embeddedFiles() {
		b, err := embedded.ReadFile(name)
		if err != nil {
			panic(fmt.Sprintf("jsonld: embedded %s: %v", name, err))
		}
		v, err := decodeDocument(b)
		if err != nil {
			panic(fmt.Sprintf("jsonld: embedded %s: %v", name, err))
		}
		r.docs[u], r.values[u] = b, v
	}
	for u := range r.docs {
		if !isCoreURL(u) {
			continue
		}
		b := newBuilder(r)
		if err := b.process(context.Background(), r.values[u], u, []string{u}); err != nil {
			panic(fmt.Sprintf("jsonld: core context %s: %v", u, err))
		}
		r.coreDefs[u] = coreDefs{terms: b.terms, vocab: b.vocab}
		r.cores[u] = newContext(maps.Clone(b.terms), b.vocab, u)
	}
	r.core = r.cores[CoreContext]
	return r
}

// Core returns the context holding only the default core context (v1.8).
func (r *Resolver) Core() *Context { return r.core }

// Flush drops every cached context and fetched document, e.g. after a hosted
// context of the registry changed.
func (r *Resolver) Flush() {
	r.contexts.purge()
	r.fetched.purge()
}

// Resolve builds the active context for raw, the value of a request's @context:
// nil (core only), a URL string, an object (inline context) or an array of
// those ([]any or []string). The core context is always applied last, so its
// terms cannot be overridden; if raw names a core context URL at its top level,
// that version is the one applied last, otherwise CoreContext. Results are
// cached by the canonical JSON of raw. Errors wrap ErrNotAvailable or ErrInvalid.
func (r *Resolver) Resolve(ctx context.Context, raw any) (*Context, error) {
	var key string
	switch x := raw.(type) {
	case nil:
		return r.core, nil
	case string:
		if c, ok := r.cores[x]; ok {
			return c, nil
		}
		key = x
	default:
		b, err := json.Marshal(raw) // maps are marshalled with sorted keys
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		key = string(b)
	}
	if c, ok := r.contexts.get(key, time.Now()); ok {
		return c, nil
	}

	r.mu.Lock()
	f, ok := r.pending[key]
	if !ok {
		f = &flight{done: make(chan struct{})}
		r.pending[key] = f
		// The build is shared by every caller asking for key meanwhile, so it
		// does not stop when this caller goes away; buildTimeout bounds it.
		go r.runFlight(context.WithoutCancel(ctx), key, raw, f)
	}
	r.mu.Unlock()
	select {
	case <-f.done:
		return f.c, f.err
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w", ErrNotAvailable, ctx.Err())
	}
}

// runFlight builds the context for key, caches it and wakes the waiters.
func (r *Resolver) runFlight(ctx context.Context, key string, raw any, f *flight) {
	ctx, cancel := context.WithTimeout(ctx, buildTimeout)
	defer cancel()
	c, remote, err := r.build(ctx, raw)
	if err == nil {
		var exp time.Time
		if remote {
			exp = time.Now().Add(r.ttl)
		}
		r.contexts.put(key, c, exp)
	}
	f.c, f.err = c, err
	r.mu.Lock()
	delete(r.pending, key)
	r.mu.Unlock()
	close(f.done)
}

// build processes raw and then the core context.
func (r *Resolver) build(ctx context.Context, raw any) (*Context, bool, error) {
	b := newBuilder(r)
	if err := b.process(ctx, raw, "", nil); err != nil {
		return nil, false, err
	}
	core := r.coreDefs[lastCoreURL(raw)]
	maps.Copy(b.terms, core.terms)
	b.vocab = core.vocab
	return newContext(b.terms, b.vocab, cloneJSON(raw)), b.remote, nil
}

// lastCoreURL returns the last core context URL at the top level of raw, or CoreContext.
func lastCoreURL(raw any) string {
	last := CoreContext
	switch x := raw.(type) {
	case string:
		if isCoreURL(x) {
			last = x
		}
	case []any:
		for _, e := range x {
			if s, ok := e.(string); ok && isCoreURL(s) {
				last = s
			}
		}
	case []string:
		for _, s := range x {
			if isCoreURL(s) {
				last = s
			}
		}
	}
	return last
}

// load implements loader: embedded documents, then the registry, then the
// cache of fetched documents, then the network.
func (r *Resolver) load(ctx context.Context, url string) (any, bool, error) {
	if v, ok := r.values[url]; ok {
		return v, false, nil
	}
	if r.registry != nil {
		body, ok, err := r.registry.GetContext(ctx, url)
		if err != nil {
			return nil, false, fmt.Errorf("%w: context %s: registry: %w", ErrNotAvailable, url, err)
		}
		if ok {
			v, err := decodeDocument(body)
			if err != nil {
				return nil, false, fmt.Errorf("context %s: %w", url, err)
			}
			return v, true, nil
		}
	}
	if v, ok := r.fetched.get(url, time.Now()); ok {
		return v, true, nil
	}
	body, err := r.fetch(ctx, url)
	if err != nil {
		return nil, false, err
	}
	v, err := decodeDocument(body)
	if err != nil {
		return nil, false, fmt.Errorf("context %s: %w", url, err)
	}
	r.fetched.put(url, v, time.Now().Add(r.ttl))
	return v, true, nil
}

// fetch GETs a remote context document.
func (r *Resolver) fetch(ctx context.Context, url string) ([]byte, error) {
	if !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") {
		return nil, fmt.Errorf("%w: context %s: not an http(s) URL", ErrNotAvailable, url)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: context %s: %v", ErrInvalid, url, err)
	}
	req.Header.Set("Accept", "application/ld+json, application/json;q=0.9, */*;q=0.1")
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: fetch context %s: %w", ErrNotAvailable, url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, fmt.Errorf("%w: fetch context %s: status %s", ErrNotAvailable, url, resp.Status)
	}
	if resp.ContentLength > r.maxSize {
		return nil, fmt.Errorf("%w: context %s: larger than %d bytes", ErrNotAvailable, url, r.maxSize)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, r.maxSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: fetch context %s: %w", ErrNotAvailable, url, err)
	}
	if int64(len(body)) > r.maxSize {
		return nil, fmt.Errorf("%w: context %s: larger than %d bytes", ErrNotAvailable, url, r.maxSize)
	}
	return body, nil
}

// decodeDocument returns the @context member of a JSON-LD document.
func decodeDocument(body []byte) (any, error) {
	var doc any
	d := json.NewDecoder(bytes.NewReader(body))
	if err := d.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%w: not JSON: %v", ErrInvalid, err)
	}
	if d.More() {
		return nil, fmt.Errorf("%w: not JSON: data after the document", ErrInvalid)
	}
	m, ok := doc.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: the document is %s, not an object", ErrInvalid, jsonKind(doc))
	}
	v, ok := m["@context"]
	if !ok {
		return nil, fmt.Errorf("%w: the document has no @context member", ErrInvalid)
	}
	return v, nil
}

// cloneJSON deep-copies a decoded JSON value, so a cached context does not
// share maps or slices with the caller.
func cloneJSON(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = cloneJSON(e)
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = cloneJSON(e)
		}
		return s
	case []string:
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = e
		}
		return s
	default:
		return v
	}
}

// AsNGSILDError turns a resolution error into the NGSI-LD error a client
// gets: LdContextNotAvailable (503) for a context that cannot be fetched,
// BadRequestData for an invalid one; other errors are returned as they are.
func AsNGSILDError(err error) error {
	switch {
	case errors.Is(err, ErrNotAvailable):
		return ngsild.Errorf(ngsild.LdContextNotAvailable, "%v", err)
	case errors.Is(err, ErrInvalid):
		return ngsild.Errorf(ngsild.BadRequestData, "invalid @context: %v", err)
	}
	return err
}

// ContextRel is the rel of a Link header that gives a JSON-LD @context.
const ContextRel = "http://www.w3.org/ns/json-ld#context"

// ParseContextLink reads a Link header value: the @context URL it gives;
// ok is false when its rel is not ContextRel. A malformed value or a URL
// that is not one is BadRequestData.
func ParseContextLink(v string) (url string, ok bool, err error) {
	parts := strings.Split(v, ";")
	first := strings.TrimSpace(parts[0])
	if !strings.HasPrefix(first, "<") || !strings.HasSuffix(first, ">") {
		return "", false, ngsild.Errorf(ngsild.BadRequestData, "malformed Link header %q: expected <url>; rel=\"%s\"", v, ContextRel)
	}
	for _, p := range parts[1:] {
		k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(strings.TrimSpace(k), "rel") && strings.Trim(strings.TrimSpace(val), `"`) == ContextRel {
			ok = true
		}
	}
	if !ok {
		return "", false, nil
	}
	url = strings.TrimSpace(first[1 : len(first)-1])
	if ngsild.ValidURI(url) != nil {
		return "", false, ngsild.Errorf(ngsild.BadRequestData, "the Link header's context %q is not a URL", url)
	}
	return url, true, nil
}

// LinkHeader is the Link header value that gives url as the @context.
func LinkHeader(url string) string {
	return "<" + url + `>; rel="` + ContextRel + `"; type="application/ld+json"`
}

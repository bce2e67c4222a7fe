// Package access guards zenne's HTTP routes: every route is registered
// with what it needs (a permission on the request's tenant, a permission on
// the whole platform, or nothing, with the reason written down), and the
// guard authenticates the request, checks that need, applies the rate
// limits and appends writes and refusals to the audit log before the
// handler runs. A route cannot be registered without saying what it needs,
// and Routes lists them all, so a test can prove that none is left open by
// mistake.
package access

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zenne-city/zenne/internal/api/problem"
	"github.com/zenne-city/zenne/internal/auth"
	"github.com/zenne-city/zenne/internal/core"
	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/server"
)

// Authenticator tells who makes a request (implemented by *auth.Service).
type Authenticator interface {
	Authenticate(r *http.Request) (*auth.Principal, error)
}

// A ContextAuthenticator also hands what it learnt of the request (a
// console session) to the handler, in the context it returns, so that the
// handler need not look it up again.
type ContextAuthenticator interface {
	AuthenticateContext(r *http.Request) (*auth.Principal, context.Context, error)
}

// Recorder appends to the audit log (implemented by *auth.AuditLog).
type Recorder interface {
	Record(auth.Entry)
}

// Refusal is why the guard turned a request away.
type Refusal struct {
	Status     int // 400 (a malformed tenant), 401, 403 or 429
	Detail     string
	RetryAfter time.Duration // for 429
}

// Deny writes a refusal in an API's own error format.
type Deny func(w http.ResponseWriter, r *http.Request, ref Refusal)

// TenantOf reads the tenant a request acts on ("" the default tenant).
type TenantOf func(r *http.Request) string

// Route is a registered route and what it needs.
type Route struct {
	Pattern string
	// Perm is the permission the route needs (0: an open route).
	Perm auth.Permission
	// Platform routes check Perm on auth.AllTenants (accounts, @contexts),
	// the others on the request's tenant.
	Platform bool
	// Open is why an open route needs no right.
	Open string
	// SignedIn routes need a user or key, with no particular right (a
	// user's own account and keys).
	SignedIn bool
	// Audited open routes have their writes in the audit log (the other
	// open routes' handlers record what matters themselves, or are device
	// uplinks, which the devices' status records).
	Audited bool
}

// Options configure a Guard.
type Options struct {
	Log *slog.Logger
	// Audit receives every write and every refusal (nil: none).
	Audit Recorder
	// Limits are the rate limits (zero: none).
	Limits Limits
	// Now is the clock of the rate limits (default time.Now).
	Now func() time.Time
}

// Guard checks the routes of every API. It is the http.Handler that serves
// them: its mux is its own, so that no route can be added unchecked.
type Guard struct {
	authn  Authenticator
	opts   Options
	limits *limiter
	mux    *http.ServeMux

	mu     sync.Mutex
	routes []Route
}

// New returns a guard that authenticates with authn.
func New(authn Authenticator, opts Options) *Guard {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Guard{authn: authn, opts: opts, limits: newLimiter(opts.Limits, opts.Now), mux: http.NewServeMux()}
}

// ServeHTTP serves the registered routes.
func (g *Guard) ServeHTTP(w http.ResponseWriter, r *http.Request) { g.mux.ServeHTTP(w, r) }

// Routes lists every registered route, sorted by pattern.
func (g *Guard) Routes() []Route {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := slices.Clone(g.routes)
	slices.SortFunc(out, func(a, b Route) int { return strings.Compare(a.Pattern, b.Pattern) })
	return out
}

// Mux is where one API registers its routes: a ServeMux that takes no
// route without its need.
type Mux struct {
	g        *Guard
	patterns []string // registered through this Mux, in order
	tenant   TenantOf
	deny     Deny
}

// API returns the registrar of an API whose requests name their tenant
// with tenant (nil for APIs of platform and open routes only) and whose
// error format deny writes.
func (g *Guard) API(tenant TenantOf, deny Deny) *Mux {
	if tenant == nil {
		tenant = func(*http.Request) string { return "" }
	}
	return &Mux{g: g, tenant: tenant, deny: deny}
}

// Handle registers a route that needs perm on the request's tenant.
func (m *Mux) Handle(pattern string, perm auth.Permission, h http.Handler) {
	m.register(Route{Pattern: pattern, Perm: perm}, h)
}

// HandleFunc is Handle with a function.
func (m *Mux) HandleFunc(pattern string, perm auth.Permission, h http.HandlerFunc) {
	m.Handle(pattern, perm, h)
}

// Platform registers a route that needs perm on every tenant
// (auth.AllTenants): platform administration.
func (m *Mux) Platform(pattern string, perm auth.Permission, h http.Handler) {
	m.register(Route{Pattern: pattern, Perm: perm, Platform: true}, h)
}

// Patterns are the patterns registered through m, in order.
func (m *Mux) Patterns() []string { return m.patterns }

// SignedIn registers a route any user or key may call, but not an
// anonymous caller: what concerns the caller's own account.
func (m *Mux) SignedIn(pattern string, h http.Handler) {
	m.register(Route{Pattern: pattern, SignedIn: true}, h)
}

// Open registers a route anyone may call, with the reason (health checks,
// device uplinks that carry their own keys, @context documents that JSON-LD
// processors fetch). The principal is still known to the handler.
func (m *Mux) Open(pattern, why string, h http.Handler) {
	m.open(Route{Pattern: pattern, Open: why}, h)
}

// OpenAudited is Open for a route whose writes go to the audit log, as
// those of guarded routes do.
func (m *Mux) OpenAudited(pattern, why string, h http.Handler) {
	m.open(Route{Pattern: pattern, Open: why, Audited: true}, h)
}

func (m *Mux) open(rt Route, h http.Handler) {
	if rt.Open == "" {
		panic("access: an open route needs its reason: " + rt.Pattern)
	}
	m.register(rt, h)
}

func (m *Mux) register(rt Route, h http.Handler) {
	if rt.Open == "" && !rt.SignedIn && (rt.Perm == 0 || rt.Perm&^auth.PermAll != 0) {
		panic("access: route " + rt.Pattern + " needs a permission")
	}
	m.g.mu.Lock()
	m.g.routes = append(m.g.routes, rt)
	m.g.mu.Unlock()
	m.patterns = append(m.patterns, rt.Pattern)
	m.g.mux.Handle(rt.Pattern, m.g.guard(rt, m.tenant, m.deny, h))
}

type principalKey struct{}

// PrincipalFrom is who makes the request whose context is ctx (nil outside
// a guarded route).
func PrincipalFrom(ctx context.Context) *auth.Principal {
	p, _ := ctx.Value(principalKey{}).(*auth.Principal)
	return p
}

type auditTenantKey struct{}

// AuditAs makes the audit log record the request whose context is ctx as
// acting on tenant: a handler whose scope is wider than the tenant the
// guard checked (a platform administrator acting on every tenant) says so.
func AuditAs(ctx context.Context, tenant string) {
	if t, ok := ctx.Value(auditTenantKey{}).(*string); ok {
		*t = tenant
	}
}

// WithPrincipal returns ctx for requests made by p (tests of handlers).
func WithPrincipal(ctx context.Context, p *auth.Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// guard wraps h with the route's checks.
func (g *Guard) guard(rt Route, tenantOf TenantOf, deny Deny, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tenant := auth.AllTenants
		if !rt.Platform {
			tenant = tenantOf(r)
		}
		p, ctx, err := g.authenticate(r)
		if err != nil {
			// Even on an open route: a client with a revoked key learns of
			// it, rather than getting an anonymous answer.
			g.refuse(w, r, rt, nil, tenant, deny, authRefusal(err))
			return
		}
		// Open routes have limits of their own (devices, per device) or
		// none (health checks), and take no token.
		if rt.Open == "" {
			if wait, ok := g.limits.allow(p, r); !ok {
				g.refuse(w, r, rt, p, tenant, deny, Refusal{Status: http.StatusTooManyRequests, RetryAfter: wait,
					Detail: "too many requests: slow down and retry after the time in Retry-After"})
				return
			}
		}
		ctx = context.WithValue(ctx, principalKey{}, p)
		if rt.SignedIn && p.Kind() == auth.Anonymous {
			g.refuse(w, r, rt, p, tenant, deny, Refusal{Status: http.StatusUnauthorized,
				Detail: "authentication required: send Authorization: Bearer <API key>, or sign in"})
			return
		}
		if rt.Open == "" && !rt.Platform && tenant != "" && !ngsild.ValidTenant(tenant) {
			deny(w, r, Refusal{Status: http.StatusBadRequest,
				Detail: "invalid tenant name " + strconv.Quote(clip(tenant, 64)) + ": use letters, digits, '_', '-' and '.' (at most 64)"})
			return
		}
		if rt.Open == "" && !rt.SignedIn {
			allowed := p.Can(tenant, rt.Perm, nil)
			if !allowed && rt.Perm == auth.PermWrite && p.MayWrite(tenant) {
				// An editor limited to some types: the core checks each
				// entity the request touches.
				allowed = true
				ctx = core.WithTypeCheck(ctx, func(types []string) bool { return p.Can(tenant, auth.PermWrite, types) })
			}
			if !allowed {
				g.refuse(w, r, rt, p, tenant, deny, forbidden(p, tenant, rt))
				return
			}
		}
		r = r.WithContext(ctx)
		if g.opts.Audit == nil || !isWrite(r.Method) || (rt.Open != "" && !rt.Audited) {
			h.ServeHTTP(w, r)
			return
		}
		audited := tenant
		r = r.WithContext(context.WithValue(r.Context(), auditTenantKey{}, &audited))
		sw := &server.StatusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		g.opts.Audit.Record(auth.NewEntry(r, p, audited, sw.Status(), rt.Pattern))
	})
}

// authenticate tells who makes r, and the context the handler gets.
func (g *Guard) authenticate(r *http.Request) (*auth.Principal, context.Context, error) {
	if ca, ok := g.authn.(ContextAuthenticator); ok {
		return ca.AuthenticateContext(r)
	}
	p, err := g.authn.Authenticate(r)
	return p, r.Context(), err
}

// refuse answers a refused request and records it in the audit log.
func (g *Guard) refuse(w http.ResponseWriter, r *http.Request, rt Route, p *auth.Principal, tenant string, deny Deny, ref Refusal) {
	if ref.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((ref.RetryAfter+time.Second-1)/time.Second)))
	}
	if ref.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="zenne", Basic realm="zenne", charset="UTF-8"`)
	}
	deny(w, r, ref)
	if g.opts.Audit != nil {
		g.opts.Audit.Record(auth.NewEntry(r, p, tenant, ref.Status, rt.Pattern))
	}
}

// authRefusal turns an authentication error into what the client is told.
func authRefusal(err error) Refusal {
	var re *auth.RetryError
	if errors.As(err, &re) {
		return Refusal{Status: http.StatusTooManyRequests, RetryAfter: re.RetryAfter, Detail: re.Error()}
	}
	if errors.Is(err, auth.ErrCSRF) {
		// A session cookie, which a browser sends by itself, without the
		// token only the console's own pages can read.
		return Refusal{Status: http.StatusForbidden,
			Detail: "missing or wrong CSRF token: a request that changes something with the session cookie must carry " +
				"the session's token (GET /api/session) in the X-CSRF-Token header or the csrf_token form field"}
	}
	detail := "the credentials were not accepted"
	switch {
	case errors.Is(err, auth.ErrKeyExpired):
		detail = "the API key has expired: ask an administrator for a new one"
	case errors.Is(err, auth.ErrKeyRevoked):
		detail = "the API key was revoked: ask an administrator for a new one"
	case errors.Is(err, auth.ErrBadKey):
		detail = "unknown or invalid API key: send Authorization: Bearer zk_..."
	case errors.Is(err, auth.ErrMalformed):
		detail = err.Error()
	case errors.Is(err, auth.ErrDisabled):
		detail = "the account is disabled"
	case errors.Is(err, auth.ErrBadCredentials):
		detail = "wrong user name or password"
	}
	return Refusal{Status: http.StatusUnauthorized, Detail: detail}
}

// forbidden is the refusal of a principal without the route's right: 401
// for anonymous callers (credentials may help), 403 otherwise.
func forbidden(p *auth.Principal, tenant string, rt Route) Refusal {
	where := "tenant " + strconv.Quote(tenant)
	switch {
	case tenant == "":
		where = "the default tenant"
	case tenant == auth.AllTenants:
		where = "the platform"
	}
	if p.Kind() == auth.Anonymous {
		return Refusal{Status: http.StatusUnauthorized,
			Detail: "authentication required: send Authorization: Bearer <API key> (" + rt.Perm.String() + " on " + where + ")"}
	}
	return Refusal{Status: http.StatusForbidden,
		Detail: p.Who() + " may not " + rt.Perm.String() + " on " + where}
}

func isWrite(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// Problem is the Deny of the APIs that answer NGSI-LD ProblemDetails.
func Problem(w http.ResponseWriter, _ *http.Request, ref Refusal) {
	t := ngsild.Forbidden
	switch ref.Status {
	case http.StatusBadRequest:
		t = ngsild.BadRequestData
	case http.StatusUnauthorized:
		t = ngsild.Unauthorized
	case http.StatusTooManyRequests:
		t = ngsild.TooManyRequests
	}
	problem.WriteError(w, ngsild.Errorf(t, "%s", ref.Detail))
}

// HeaderTenant is the TenantOf of the NGSI-LD API: the NGSILD-Tenant
// header.
func HeaderTenant(r *http.Request) string { return r.Header.Get("NGSILD-Tenant") }

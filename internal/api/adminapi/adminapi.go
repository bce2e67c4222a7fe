// Package adminapi is the HTTP transport of accounts, API keys, tenant
// settings and the audit log (docs/ADMIN.md), under /admin. Errors are
// NGSI-LD ProblemDetails.
//
// # Who may do what
//
// Every request acts in a scope. A request with an NGSILD-Tenant header
// acts on that tenant: the guard lets it through with the admin right on
// the tenant (the audit right for the audit log), and it sees and changes
// only the tenant's accounts — those whose grants are all on the tenant —
// and gives grants on the tenant only. A platform administrator's request
// without the header acts on the whole platform: every account, any
// grant. Grants beyond the caller's rights (Principal.CanGrant) are
// refused (403) in either scope; grants the caller could give but the
// scope does not cover are bad input (400). An account out of the scope is
// answered as if it did not exist (404), so that a tenant's administrators
// cannot list the platform's accounts by guessing names.
//
// /admin/me/... lets anyone authenticated read their account and manage
// their own API keys. No permission fits it (a user's rights may be on any
// tenant, or none), so those routes are SignedIn: the guard refuses
// anonymous callers (401); a new key's grants must be within the caller's own
// rights, which for a key are the key's (Principal.Covers), and a key may
// revoke only keys that do no more than itself. POST /admin/setup is open:
// it creates the first administrator with the one-time setup token.
package adminapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/zenne-city/zenne/internal/api/access"
	"github.com/zenne-city/zenne/internal/api/problem"
	"github.com/zenne-city/zenne/internal/auth"
	"github.com/zenne-city/zenne/internal/ngsild"
)

// MaxBody bounds a request body.
const MaxBody = 64 << 10

// DefaultTenant names the default tenant in /admin/tenants/{tenant}, where
// the empty name cannot be written. It is no valid tenant name.
const DefaultTenant = "@default"

// AuditLog is what the API reads of the audit log (*auth.AuditLog).
type AuditLog interface {
	Entries(ctx context.Context, f auth.Filter) ([]auth.Entry, error)
	Export(ctx context.Context, w io.Writer, f auth.Filter) (int, error)
}

// API serves /admin/....
type API struct {
	svc   *auth.Service
	audit AuditLog
	log   *slog.Logger
}

// New returns the API over the accounts of svc and the audit log audit.
func New(svc *auth.Service, audit AuditLog, log *slog.Logger) *API {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &API{svc: svc, audit: audit, log: log}
}

// Tenant is the access.TenantOf of the API: the tenant that
// /admin/tenants/{tenant} names (DefaultTenant for ""), else the
// NGSILD-Tenant header.
func Tenant(r *http.Request) string {
	if t := r.PathValue("tenant"); t != "" {
		if t == DefaultTenant {
			return ""
		}
		return t
	}
	return access.HeaderTenant(r)
}

// Register adds the routes to mux, whose TenantOf must be Tenant.
func (a *API) Register(mux *access.Mux) {
	const admin, audit = auth.PermAdmin, auth.PermAudit
	mux.Handle("GET /admin/users", admin, a.handle(admin, a.listUsers))
	mux.Handle("POST /admin/users", admin, a.handle(admin, a.createUser))
	mux.Handle("GET /admin/users/{name}", admin, a.handle(admin, a.getUser))
	mux.Handle("PATCH /admin/users/{name}", admin, a.handle(admin, a.patchUser))
	mux.Handle("DELETE /admin/users/{name}", admin, a.handle(admin, a.deleteUser))
	mux.Handle("GET /admin/users/{name}/keys", admin, a.handle(admin, a.listUserKeys))
	mux.Handle("POST /admin/users/{name}/keys", admin, a.handle(admin, a.createUserKey))
	mux.Handle("GET /admin/keys", admin, a.handle(admin, a.listKeys))
	mux.Handle("GET /admin/keys/{id}", admin, a.handle(admin, a.getKey))
	mux.Handle("DELETE /admin/keys/{id}", admin, a.handle(admin, a.revokeKey))
	mux.Handle("GET /admin/audit", audit, a.handle(audit, a.listAudit))
	mux.Handle("GET /admin/audit/export", audit, a.handle(audit, a.exportAudit))
	mux.Handle("GET /admin/tenants/{tenant}", admin, a.handle(admin, a.getTenant))
	mux.Handle("PUT /admin/tenants/{tenant}/public", admin, a.handle(admin, a.putPublic))

	// Any user or key reads its own account and manages its own keys,
	// within its own rights (the handlers check them).
	mux.SignedIn("GET /admin/me", a.handle(0, a.me))
	mux.SignedIn("GET /admin/me/keys", a.handle(0, a.listMyKeys))
	mux.SignedIn("POST /admin/me/keys", a.handle(0, a.createMyKey))
	mux.SignedIn("DELETE /admin/me/keys/{id}", a.handle(0, a.revokeMyKey))
	mux.OpenAudited("POST /admin/setup", "a new installation's first administrator is created with the one-time setup token the server logged, before any account exists",
		a.handle(0, a.setup))
}

// request is one API call being served.
type request struct {
	w http.ResponseWriter
	r *http.Request
	p *auth.Principal
	// scope is what the request may see and change (none on open routes).
	scope scope
}

func (req *request) ctx() context.Context { return req.r.Context() }

// handle runs f with the request's principal and scope; perm is the
// route's permission (0 for an open route).
func (a *API) handle(perm auth.Permission, f func(*request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		req := &request{w: w, r: r, p: access.PrincipalFrom(r.Context())}
		if perm != 0 {
			req.scope = scopeOf(r, req.p, perm)
			if req.scope.platform {
				access.AuditAs(r.Context(), auth.AllTenants)
			}
		}
		if err := f(req); err != nil {
			problem.Write(w, r, a.log, asProblem(err))
		}
	})
}

// asProblem turns auth's errors into NGSI-LD errors: bad input 400,
// unknown 404, existing 409, a disabled owner 409, a refused setup 403.
// Anything else stays as it is (a 500, logged).
func asProblem(err error) error {
	var ne *ngsild.Error
	if errors.As(err, &ne) {
		return err
	}
	msg := strings.TrimPrefix(err.Error(), "auth: ")
	switch {
	case errors.Is(err, auth.ErrInvalid), errors.Is(err, auth.ErrNotSubset):
		return ngsild.Errorf(ngsild.BadRequestData, "%s", msg)
	case errors.Is(err, auth.ErrNotFound):
		return ngsild.Errorf(ngsild.ResourceNotFound, "%s", msg)
	case errors.Is(err, auth.ErrExists):
		return ngsild.Errorf(ngsild.AlreadyExists, "%s", msg)
	case errors.Is(err, auth.ErrDisabled):
		return ngsild.Errorf(ngsild.Conflict, "%s: enable the account first", msg)
	case errors.Is(err, auth.ErrSetup):
		return ngsild.Errorf(ngsild.Forbidden, "%s: the token is printed in the server's log at its start while no account exists", msg)
	}
	return err
}

// writeJSON writes a JSON response.
func (req *request) writeJSON(status int, body any) error {
	data, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req.w.Header().Set("Content-Type", "application/json")
	req.w.WriteHeader(status)
	req.w.Write(data)
	return nil
}

// query checks the query parameters: each at most once, none but allowed.
func (req *request) query(allowed ...string) (map[string]string, error) {
	out := map[string]string{}
	for name, vs := range req.r.URL.Query() {
		if !slices.Contains(allowed, name) {
			if len(allowed) == 0 {
				return nil, ngsild.Errorf(ngsild.BadRequestData, "unknown query parameter %s: this route takes none", strconv.Quote(clip(name, 40)))
			}
			return nil, ngsild.Errorf(ngsild.BadRequestData, "unknown query parameter %s: this route takes %s", strconv.Quote(clip(name, 40)), strings.Join(allowed, ", "))
		}
		if len(vs) > 1 {
			return nil, ngsild.Errorf(ngsild.BadRequestData, "query parameter %s given %d times: give it once", name, len(vs))
		}
		out[name] = vs[0]
	}
	return out, nil
}

func clip(s string, n int) string {
	if len(s) > n {
		return strings.ToValidUTF8(s[:n], "") + "…"
	}
	return s
}

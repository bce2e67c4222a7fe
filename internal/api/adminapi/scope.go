package adminapi

import (
	"net/http"
	"strconv"

	"github.com/zenne-city/zenne/internal/auth"
	"github.com/zenne-city/zenne/internal/ngsild"
)

// scope is what a request may see and change: the whole platform, or one
// tenant's accounts (those whose grants are all on it).
type scope struct {
	platform bool
	tenant   string // when not platform; "" the default tenant
}

// scopeOf is the scope of a request the guard let through with perm on its
// tenant: the platform for a caller with perm on every tenant and no
// NGSILD-Tenant header, else the header's tenant.
func scopeOf(r *http.Request, p *auth.Principal, perm auth.Permission) scope {
	if r.Header.Get("NGSILD-Tenant") == "" && r.PathValue("tenant") == "" && p.Can(auth.AllTenants, perm, nil) {
		return scope{platform: true}
	}
	return scope{tenant: Tenant(r)}
}

// String names the scope in messages.
func (s scope) String() string {
	switch {
	case s.platform:
		return "the platform"
	case s.tenant == "":
		return "the default tenant"
	}
	return "tenant " + strconv.Quote(s.tenant)
}

// holds reports whether an account or key with grants gs is within the
// scope: on a tenant, it has grants and all of them are on the tenant.
func (s scope) holds(gs []auth.Grant) bool {
	if s.platform {
		return true
	}
	if len(gs) == 0 {
		return false
	}
	for _, g := range gs {
		if g.Tenant != s.tenant {
			return false
		}
	}
	return true
}

// mayGive checks that p may give grants gs in this scope: 403 beyond p's
// rights, 400 outside the scope (on a tenant, an account keeps at least
// one grant on it, so that it stays in the tenant's hands).
func (s scope) mayGive(p *auth.Principal, gs []auth.Grant) error {
	if err := auth.ValidateGrants(gs); err != nil {
		return asProblem(err)
	}
	for _, g := range gs {
		if !p.CanGrant([]auth.Grant{g}) {
			return ngsild.Errorf(ngsild.Forbidden, "%s may not give %s: that needs the admin right on its tenant", p.Who(), g)
		}
	}
	if s.platform {
		return nil
	}
	if len(gs) == 0 {
		return ngsild.Errorf(ngsild.BadRequestData, "an account of %s needs at least one grant on it: delete the account instead, or manage it as a platform administrator (no NGSILD-Tenant header)", s)
	}
	for _, g := range gs {
		if g.Tenant != s.tenant {
			return ngsild.Errorf(ngsild.BadRequestData, "this request acts on %s (NGSILD-Tenant), so its grants are on it only, not %s: send the request with that tenant's header, or as a platform administrator without one", s, g)
		}
	}
	return nil
}

// notHere is the answer about an account out of the scope: the same as
// for an account that does not exist.
func notHere(what, name string) error {
	return ngsild.Errorf(ngsild.ResourceNotFound, "%s %s not found", what, strconv.Quote(clip(name, 80)))
}

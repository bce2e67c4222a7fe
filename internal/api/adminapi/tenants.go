package adminapi

import (
	"net/http"
	"net/url"

	"github.com/zenne-city/zenne/internal/ngsild"
)

// tenantJSON is a tenant's access settings.
type tenantJSON struct {
	// Tenant is "" for the default tenant.
	Tenant string `json:"tenant"`
	// PublicRead lets anyone, anonymous included, read and stream it.
	PublicRead bool `json:"publicRead"`
}

func (a *API) getTenant(req *request) error {
	if _, err := req.query(); err != nil {
		return err
	}
	t := Tenant(req.r)
	return req.writeJSON(http.StatusOK, tenantJSON{Tenant: t, PublicRead: a.svc.PublicRead(t)})
}

// putPublic: {"publicRead": true|false}.
func (a *API) putPublic(req *request) error {
	if _, err := req.query(); err != nil {
		return err
	}
	m, err := req.body("publicRead")
	if err != nil {
		return err
	}
	public, ok, err := m.boolean("publicRead")
	if err != nil {
		return err
	}
	if !ok {
		return ngsild.Errorf(ngsild.BadRequestData, "member publicRead is required: true lets anyone read the tenant, false only its accounts")
	}
	t := Tenant(req.r)
	if err := a.svc.SetPublicRead(req.ctx(), t, public); err != nil {
		return err
	}
	return req.writeJSON(http.StatusOK, tenantJSON{Tenant: t, PublicRead: a.svc.PublicRead(t)})
}

// setup: {"token", "name", "password"} creates the first administrator
// with the one-time setup token (auth.Service.Setup).
func (a *API) setup(req *request) error {
	if _, err := req.query(); err != nil {
		return err
	}
	m, err := req.body("token", "name", "password")
	if err != nil {
		return err
	}
	var vals [3]string
	for i, name := range []string{"token", "name", "password"} {
		if vals[i], err = m.required(name); err != nil {
			return err
		}
	}
	u, err := a.svc.Setup(req.ctx(), vals[0], vals[1], vals[2])
	if err != nil {
		return err
	}
	a.log.Info("first administrator created with the setup token", "user", u.Name)
	req.w.Header().Set("Location", "/admin/users/"+url.PathEscape(u.Name))
	return req.writeJSON(http.StatusCreated, userOut(u))
}

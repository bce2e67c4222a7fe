package adminapi

import (
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/zenne-city/zenne/internal/auth"
	"github.com/zenne-city/zenne/internal/ngsild"
)

// userJSON is an account as the API shows it: never its password.
type userJSON struct {
	Name   string       `json:"name"`
	Grants []auth.Grant `json:"grants"`
	// Disabled accounts cannot log in and their keys do nothing.
	Disabled bool `json:"disabled"`
	// HasPassword is false for a service account, which acts through its
	// API keys only.
	HasPassword bool `json:"hasPassword"`
	// LockedUntil is when a lock-out after failed logins ends (shown by
	// GET /admin/users/{name} and PATCH, when locked).
	LockedUntil time.Time `json:"lockedUntil,omitzero"`
	Created     time.Time `json:"created"`
	Modified    time.Time `json:"modified"`
}

func userOut(u auth.User) userJSON {
	gs := u.Grants
	if gs == nil {
		gs = []auth.Grant{}
	}
	return userJSON{Name: u.Name, Grants: gs, Disabled: u.Disabled, HasPassword: u.HasPassword, Created: u.Created, Modified: u.Modified}
}

// userInScope returns the account the path names if it is in the
// request's scope; an account out of it is not found.
func (a *API) userInScope(req *request) (auth.User, error) {
	name := req.r.PathValue("name")
	if !auth.ValidUserName(name) {
		return auth.User{}, ngsild.Errorf(ngsild.BadRequestData, "%q is not a user name: 1 to 64 lower-case letters, digits, '.', '_', '@' and '-'", clip(name, 80))
	}
	u, err := a.svc.User(req.ctx(), name)
	if errors.Is(err, auth.ErrNotFound) || (err == nil && !req.scope.holds(u.Grants)) {
		return auth.User{}, notHere("user", name)
	}
	return u, err
}

// withLock adds the end of a lock-out to an account.
func (a *API) withLock(req *request, u auth.User) (userJSON, error) {
	out := userOut(u)
	until, err := a.svc.LockedUntil(req.ctx(), u.Name)
	out.LockedUntil = until
	return out, err
}

func (a *API) listUsers(req *request) error {
	if _, err := req.query(); err != nil {
		return err
	}
	us, err := a.svc.Users(req.ctx())
	if err != nil {
		return err
	}
	out := []userJSON{}
	for _, u := range us {
		if req.scope.holds(u.Grants) {
			out = append(out, userOut(u))
		}
	}
	return req.writeJSON(http.StatusOK, out)
}

// createUser: {"name", "password" (none: a service account), "grants"}.
func (a *API) createUser(req *request) error {
	if _, err := req.query(); err != nil {
		return err
	}
	m, err := req.body("name", "password", "grants")
	if err != nil {
		return err
	}
	name, err := m.required("name")
	if err != nil {
		return err
	}
	password, err := optionalPassword(m)
	if err != nil {
		return err
	}
	grants, ok, err := m.grants("grants")
	if err != nil {
		return err
	}
	if !ok {
		return ngsild.Errorf(ngsild.BadRequestData, "member grants is required: the account's rights, e.g. [{\"tenant\": \"\", \"role\": \"viewer\"}]")
	}
	if err := req.scope.mayGive(req.p, grants); err != nil {
		return err
	}
	u, err := a.svc.CreateUser(req.ctx(), name, password, grants)
	if err != nil {
		return err
	}
	req.w.Header().Set("Location", "/admin/users/"+url.PathEscape(u.Name))
	return req.writeJSON(http.StatusCreated, userOut(u))
}

// optionalPassword reads the password member: absent or null for none.
func optionalPassword(m members) (string, error) {
	if raw, ok := m["password"]; ok && isNull(raw) {
		return "", nil
	}
	pw, ok, err := m.str("password")
	if err != nil {
		return "", err
	}
	if ok && pw == "" {
		return "", ngsild.Errorf(ngsild.BadRequestData, "member password is empty: give one, or leave the member out (or null) for a service account, which acts through its API keys only")
	}
	return pw, nil
}

func (a *API) getUser(req *request) error {
	if _, err := req.query(); err != nil {
		return err
	}
	u, err := a.userInScope(req)
	if err != nil {
		return err
	}
	out, err := a.withLock(req, u)
	if err != nil {
		return err
	}
	return req.writeJSON(http.StatusOK, out)
}

// patchUser: any of {"password" (null removes it), "grants", "disabled",
// "unlock"}; all of it is checked before anything changes.
func (a *API) patchUser(req *request) error {
	if _, err := req.query(); err != nil {
		return err
	}
	if _, err := a.userInScope(req); err != nil {
		return err
	}
	name := req.r.PathValue("name")
	m, err := req.body("password", "grants", "disabled", "unlock")
	if err != nil {
		return err
	}
	if len(m) == 0 {
		return ngsild.Errorf(ngsild.BadRequestData, "nothing to change: give password, grants, disabled or unlock")
	}
	var c auth.UserChange
	if _, ok := m["password"]; ok {
		pw, err := optionalPassword(m)
		if err != nil {
			return err
		}
		if pw != "" {
			if err := auth.ValidatePassword(pw); err != nil {
				return err
			}
		}
		c.Password = &pw
	}
	if gs, ok, err := m.grants("grants"); err != nil {
		return err
	} else if ok {
		if err := req.scope.mayGive(req.p, gs); err != nil {
			return err
		}
		c.Grants = &gs
	}
	if d, ok, err := m.boolean("disabled"); err != nil {
		return err
	} else if ok {
		c.Disabled = &d
	}
	if c.Unlock, _, err = m.boolean("unlock"); err != nil {
		return err
	}
	u, err := a.svc.UpdateUser(req.ctx(), name, c, func(u auth.User) error {
		if !req.scope.holds(u.Grants) { // changed meanwhile
			return notHere("user", name)
		}
		return nil
	})
	if errors.Is(err, auth.ErrNotFound) {
		return notHere("user", name) // deleted meanwhile
	}
	if err != nil {
		return err
	}
	out, err := a.withLock(req, u)
	if err != nil {
		return err
	}
	return req.writeJSON(http.StatusOK, out)
}

func (a *API) deleteUser(req *request) error {
	if _, err := req.query(); err != nil {
		return err
	}
	u, err := a.userInScope(req)
	if err != nil {
		return err
	}
	if err := a.svc.DeleteUser(req.ctx(), u.Name); errors.Is(err, auth.ErrNotFound) {
		return notHere("user", u.Name)
	} else if err != nil {
		return err
	}
	req.w.WriteHeader(http.StatusNoContent)
	return nil
}

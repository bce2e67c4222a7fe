package adminapi

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/zenne-city/zenne/internal/auth"
	"github.com/zenne-city/zenne/internal/ngsild"
)

// keyJSON is an API key as the API shows it: never its secret. Times that
// have not happened are left out.
type keyJSON struct {
	ID       string       `json:"id"`
	Name     string       `json:"name"`
	Owner    string       `json:"owner"`
	Grants   []auth.Grant `json:"grants"`
	Created  time.Time    `json:"created"`
	Expires  time.Time    `json:"expires,omitzero"`
	LastUsed time.Time    `json:"lastUsed,omitzero"`
	Revoked  time.Time    `json:"revoked,omitzero"`
}

// newKeyJSON is the answer to a key's creation, the one time its secret
// is shown.
type newKeyJSON struct {
	Key string `json:"key"`
	keyJSON
}

func keyOut(k auth.Key) keyJSON {
	gs := k.Grants
	if gs == nil {
		gs = []auth.Grant{}
	}
	return keyJSON{ID: k.ID, Name: k.Name, Owner: k.Owner, Grants: gs, Created: k.Created, Expires: k.Expires,
		LastUsed: k.LastUsed, Revoked: k.Revoked}
}

// keysOut lists keys, oldest first, those keep selects (nil: all).
func keysOut(ks []auth.Key, keep func(auth.Key) bool) []keyJSON {
	ks = slices.Clone(ks)
	slices.SortFunc(ks, func(a, b auth.Key) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	out := []keyJSON{}
	for _, k := range ks {
		if keep == nil || keep(k) {
			out = append(out, keyOut(k))
		}
	}
	return out
}

// keyID reads the key id of the path. The message never repeats what was
// given: it may be a key's secret.
func keyID(req *request) (string, error) {
	id := req.r.PathValue("id")
	if !auth.ValidKeyID(id) {
		return "", ngsild.Errorf(ngsild.BadRequestData, "not an API key id: give the key's 12-character id (the part after zk_), never its secret")
	}
	return id, nil
}

// keyInScope returns the key the path names if it and its owner are in the
// request's scope; a key out of it is not found.
func (a *API) keyInScope(req *request) (auth.Key, error) {
	id, err := keyID(req)
	if err != nil {
		return auth.Key{}, err
	}
	k, err := a.svc.Key(req.ctx(), id)
	if errors.Is(err, auth.ErrNotFound) {
		return auth.Key{}, notHere("key", id)
	}
	if err != nil {
		return auth.Key{}, err
	}
	if !req.scope.platform {
		owner, err := a.svc.User(req.ctx(), k.Owner)
		if err != nil || !req.scope.holds(owner.Grants) || !req.scope.holds(k.Grants) {
			return auth.Key{}, notHere("key", id)
		}
	}
	return k, nil
}

// revokeOrDelete revokes a key, or with ?delete=true deletes it.
func (a *API) revokeOrDelete(req *request, id string, del bool) error {
	var err error
	if del {
		err = a.svc.DeleteKey(req.ctx(), id)
	} else {
		err = a.svc.RevokeKey(req.ctx(), id)
	}
	if errors.Is(err, auth.ErrNotFound) {
		return notHere("key", id)
	}
	if err != nil {
		return err
	}
	req.w.WriteHeader(http.StatusNoContent)
	return nil
}

// deleteParam reads ?delete=true|false.
func (req *request) deleteParam() (bool, error) {
	q, err := req.query("delete")
	if err != nil {
		return false, err
	}
	switch q["delete"] {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	}
	return false, ngsild.Errorf(ngsild.BadRequestData, "query parameter delete: give true (delete the key for good) or false (revoke it, the default)")
}

// keyRequest is a key's creation: {"name", "grants" (default: def),
// "expires" (RFC 3339; none: never)}.
func keyRequest(req *request, def []auth.Grant) (name string, grants []auth.Grant, expires time.Time, err error) {
	if _, err = req.query(); err != nil {
		return
	}
	m, err := req.body("name", "grants", "expires")
	if err != nil {
		return
	}
	if name, err = m.required("name"); err != nil {
		return
	}
	var ok bool
	if grants, ok, err = m.grants("grants"); err != nil {
		return
	}
	if !ok {
		grants = def
	}
	if len(grants) == 0 {
		err = ngsild.Errorf(ngsild.BadRequestData, "a key without grants could do nothing: give its grants")
		return
	}
	if err = auth.ValidateGrants(grants); err != nil {
		return
	}
	expires, _, err = m.time("expires")
	return
}

// created answers a key's creation: its secret, this once.
func (req *request) created(secret string, k auth.Key) error {
	req.w.Header().Set("Location", "/admin/keys/"+k.ID)
	return req.writeJSON(http.StatusCreated, newKeyJSON{Key: secret, keyJSON: keyOut(k)})
}

func (a *API) listUserKeys(req *request) error {
	if _, err := req.query(); err != nil {
		return err
	}
	u, err := a.userInScope(req)
	if err != nil {
		return err
	}
	ks, err := a.svc.Keys(req.ctx(), u.Name)
	if err != nil {
		return err
	}
	return req.writeJSON(http.StatusOK, keysOut(ks, func(k auth.Key) bool { return req.scope.holds(k.Grants) }))
}

// createUserKey makes a key for an account in the scope, with grants
// within the account's (400 otherwise) that the caller may give (403).
func (a *API) createUserKey(req *request) error {
	u, err := a.userInScope(req)
	if err != nil {
		return err
	}
	name, grants, expires, err := keyRequest(req, u.Grants)
	if err != nil {
		return err
	}
	if err := req.scope.mayGive(req.p, grants); err != nil {
		return err
	}
	secret, k, err := a.svc.CreateKey(req.ctx(), u.Name, name, grants, expires)
	if err != nil {
		return err
	}
	return req.created(secret, k)
}

// listKeys lists the keys of the scope, of one owner with ?owner=NAME.
func (a *API) listKeys(req *request) error {
	q, err := req.query("owner")
	if err != nil {
		return err
	}
	if owner := q["owner"]; owner != "" {
		u, err := a.svc.User(req.ctx(), owner)
		if errors.Is(err, auth.ErrNotFound) || (err == nil && !req.scope.holds(u.Grants)) {
			return notHere("user", owner)
		}
		if err != nil {
			return err
		}
	}
	ks, err := a.svc.Keys(req.ctx(), q["owner"])
	if err != nil {
		return err
	}
	if req.scope.platform {
		return req.writeJSON(http.StatusOK, keysOut(ks, nil))
	}
	us, err := a.svc.Users(req.ctx())
	if err != nil {
		return err
	}
	mine := map[string]bool{}
	for _, u := range us {
		mine[u.Name] = req.scope.holds(u.Grants)
	}
	return req.writeJSON(http.StatusOK, keysOut(ks, func(k auth.Key) bool { return mine[k.Owner] && req.scope.holds(k.Grants) }))
}

func (a *API) getKey(req *request) error {
	if _, err := req.query(); err != nil {
		return err
	}
	k, err := a.keyInScope(req)
	if err != nil {
		return err
	}
	return req.writeJSON(http.StatusOK, keyOut(k))
}

// revokeKey revokes a key of the scope (?delete=true deletes it).
func (a *API) revokeKey(req *request) error {
	del, err := req.deleteParam()
	if err != nil {
		return err
	}
	k, err := a.keyInScope(req)
	if err != nil {
		return err
	}
	return a.revokeOrDelete(req, k.ID, del)
}

// meJSON is who the caller is: their account and, when they came with an
// API key, the key.
type meJSON struct {
	User userJSON `json:"user"`
	Key  *keyJSON `json:"key,omitempty"`
}

func (a *API) me(req *request) error {
	if _, err := req.query(); err != nil {
		return err
	}
	u, err := a.svc.User(req.ctx(), req.p.User())
	if err != nil {
		return err
	}
	out := meJSON{User: userOut(u)}
	if id := req.p.KeyID(); id != "" {
		k, err := a.svc.Key(req.ctx(), id)
		if err != nil {
			return err
		}
		ko := keyOut(k)
		out.Key = &ko
	}
	return req.writeJSON(http.StatusOK, out)
}

func (a *API) listMyKeys(req *request) error {
	if _, err := req.query(); err != nil {
		return err
	}
	ks, err := a.svc.Keys(req.ctx(), req.p.User())
	if err != nil {
		return err
	}
	return req.writeJSON(http.StatusOK, keysOut(ks, nil))
}

// createMyKey makes a key of the caller's, within the caller's own rights
// (for a key: within the key's): 403 beyond them. Without grants, the key
// has the caller's.
func (a *API) createMyKey(req *request) error {
	name, grants, expires, err := keyRequest(req, req.p.Grants())
	if err != nil {
		return err
	}
	for _, g := range grants {
		if req.p.Covers([]auth.Grant{g}) != nil {
			return ngsild.Errorf(ngsild.Forbidden, "%s goes beyond your own rights: a new key's grants must be within them%s", g, keyNote(req.p))
		}
	}
	secret, k, err := a.svc.CreateKey(req.ctx(), req.p.User(), name, grants, expires)
	if err != nil {
		return err
	}
	return req.created(secret, k)
}

func keyNote(p *auth.Principal) string {
	if p.Kind() == auth.KeyPrincipal {
		return " (those of the key you sent)"
	}
	return ""
}

// revokeMyKey revokes a key of the caller's (?delete=true deletes it). A
// key may revoke itself and the keys that do no more than itself, so that
// a leaked lesser key cannot revoke its owner's others.
func (a *API) revokeMyKey(req *request) error {
	del, err := req.deleteParam()
	if err != nil {
		return err
	}
	id, err := keyID(req)
	if err != nil {
		return err
	}
	k, err := a.svc.Key(req.ctx(), id)
	if errors.Is(err, auth.ErrNotFound) || (err == nil && k.Owner != req.p.User()) {
		return notHere("key", id)
	}
	if err != nil {
		return err
	}
	if req.p.Kind() == auth.KeyPrincipal && id != req.p.KeyID() && req.p.Covers(k.Grants) != nil {
		return ngsild.Errorf(ngsild.Forbidden, "key %s does more than the key you sent: revoke it with a key or login that has its rights", id)
	}
	return a.revokeOrDelete(req, id, del)
}

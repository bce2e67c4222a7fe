package adminapi_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/api/adminapi"
	"github.com/zenne-city/zenne/internal/apitest"
	"github.com/zenne-city/zenne/internal/app"
	"github.com/zenne-city/zenne/internal/auth"
	"github.com/zenne-city/zenne/internal/ngsild"
)

const (
	password  = "correct horse battery staple"
	password2 = "another long pass phrase"
)

// userKey creates the account name with grants and returns an API key with
// the same grants.
func userKey(t *testing.T, s *apitest.Server, name string, grants ...auth.Grant) string {
	t.Helper()
	ctx := context.Background()
	if _, err := s.App.Auth.CreateUser(ctx, name, "", grants); err != nil {
		t.Fatal(err)
	}
	key, _, err := s.App.Auth.CreateKey(ctx, name, "test", grants, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// call is one request: body "" for none, tenant "" for no NGSILD-Tenant.
type call struct {
	method, path, body string
	key, tenant        string
	header             map[string]string
}

func do(s *apitest.Server, c call) *apitest.Response {
	h := map[string]string{}
	for k, v := range c.header {
		h[k] = v
	}
	if c.tenant != "" {
		h["NGSILD-Tenant"] = c.tenant
	}
	var body any
	if c.body != "" {
		body = c.body
	}
	return s.Do(apitest.Req{Method: c.method, Path: c.path, Body: body, Key: c.key, Header: h})
}

// basic is the Authorization header of a user's password.
func basic(name, pw string) map[string]string {
	return map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(name+":"+pw))}
}

// problem checks a ProblemDetails answer: status, type and a piece of the
// detail.
func problem(t *testing.T, r *apitest.Response, status int, typ ngsild.ErrorType, detail string) {
	t.Helper()
	var p struct{ Type, Title, Detail string }
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatalf("status %d, body is not ProblemDetails: %s", r.Status, r.Body)
	}
	if r.Status != status || p.Type != string(typ) || p.Title == "" || !strings.Contains(p.Detail, detail) {
		t.Fatalf("got %d %s, want %d %s with detail containing %q", r.Status, r.Body, status, typ, detail)
	}
}

func decode[T any](t *testing.T, r *apitest.Response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.Body, &v); err != nil {
		t.Fatalf("%v: %s", err, r.Body)
	}
	return v
}

type user struct {
	Name        string       `json:"name"`
	Grants      []auth.Grant `json:"grants"`
	Disabled    bool         `json:"disabled"`
	HasPassword bool         `json:"hasPassword"`
	LockedUntil time.Time    `json:"lockedUntil"`
}

type key struct {
	Key     string       `json:"key"`
	ID      string       `json:"id"`
	Name    string       `json:"name"`
	Owner   string       `json:"owner"`
	Grants  []auth.Grant `json:"grants"`
	Revoked time.Time    `json:"revoked"`
	Expires time.Time    `json:"expires"`
}

func names(us []user) string {
	var out []string
	for _, u := range us {
		out = append(out, u.Name)
	}
	return strings.Join(out, ",")
}

// volatile are the values that change from run to run.
var volatile = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`"(created|modified|lastUsed|revoked|expires|lockedUntil|time)":"[^"]*"`), `"$1":"<time>"`},
	{regexp.MustCompile(`"(id|key)":"[a-z2-7]{12}"`), `"$1":"<id>"`},
	{regexp.MustCompile(`"key":"zk_[^"]*"`), `"key":"<secret>"`},
	{regexp.MustCompile(`"remote":"[^"]*"`), `"remote":"<remote>"`},
	{regexp.MustCompile(`/admin/keys/[a-z2-7]{12}`), `/admin/keys/<id>`},
}

func golden(t *testing.T, name string, body []byte) {
	t.Helper()
	for _, v := range volatile {
		body = v.re.ReplaceAll(body, []byte(v.with))
	}
	apitest.Golden(t, name, body)
}

// TestUsers walks an account through its life as a platform administrator
// sees it, with golden answers.
func TestUsers(t *testing.T) {
	s := apitest.Start(t)
	r := do(s, call{method: "POST", path: "/admin/users", body: `{"name": "alice", "password": "` + password + `",
		"grants": [{"tenant": "mobility", "role": "editor", "types": ["https://smartdatamodels.org/dataModel.Parking/ParkingSpot"]},
		{"tenant": "", "role": "viewer"}]}`})
	r.Expect(t, http.StatusCreated)
	if loc := r.Header.Get("Location"); loc != "/admin/users/alice" {
		t.Errorf("Location %q", loc)
	}
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q", r.Header.Get("Cache-Control"))
	}
	golden(t, "user-created", r.Body)
	do(s, call{method: "POST", path: "/admin/users", body: `{"name": "sensors", "grants": [{"tenant": "mobility", "role": "operator"}]}`}).
		Expect(t, http.StatusCreated)
	r = do(s, call{method: "GET", path: "/admin/users"}).Expect(t, http.StatusOK)
	golden(t, "users", r.Body)
	if got := names(decode[[]user](t, r)); got != "admin,alice,sensors" {
		t.Errorf("users %s", got)
	}
	golden(t, "user", do(s, call{method: "GET", path: "/admin/users/alice"}).Expect(t, http.StatusOK).Body)

	// The password works, then is changed; a service account gets one.
	do(s, call{method: "GET", path: "/admin/me", header: basic("alice", password)}).Expect(t, http.StatusOK)
	r = do(s, call{method: "PATCH", path: "/admin/users/alice", body: `{"password": "` + password2 + `", "grants": [{"tenant": "mobility", "role": "viewer"}], "disabled": false}`})
	u := decode[user](t, r.Expect(t, http.StatusOK))
	if len(u.Grants) != 1 || u.Grants[0].Role != auth.RoleViewer || !u.HasPassword {
		t.Errorf("after PATCH: %s", r.Body)
	}
	do(s, call{method: "GET", path: "/admin/me", header: basic("alice", password)}).Expect(t, http.StatusUnauthorized)
	do(s, call{method: "GET", path: "/admin/me", header: basic("alice", password2)}).Expect(t, http.StatusOK)
	r = do(s, call{method: "PATCH", path: "/admin/users/sensors", body: `{"password": "` + password + `"}`}).Expect(t, http.StatusOK)
	if !decode[user](t, r).HasPassword {
		t.Errorf("sensors has no password after PATCH: %s", r.Body)
	}
	r = do(s, call{method: "PATCH", path: "/admin/users/sensors", body: `{"password": null}`}).Expect(t, http.StatusOK)
	if decode[user](t, r).HasPassword {
		t.Errorf("sensors kept its password: %s", r.Body)
	}

	// Disabled, alice cannot log in nor use her keys; enabled, she can.
	k := decode[key](t, do(s, call{method: "POST", path: "/admin/users/alice/keys", body: `{"name": "laptop"}`}).Expect(t, http.StatusCreated))
	do(s, call{method: "PATCH", path: "/admin/users/alice", body: `{"disabled": true}`}).Expect(t, http.StatusOK)
	do(s, call{method: "GET", path: "/admin/me", key: k.Key}).Expect(t, http.StatusUnauthorized)
	do(s, call{method: "GET", path: "/admin/me", header: basic("alice", password2)}).Expect(t, http.StatusUnauthorized)
	do(s, call{method: "PATCH", path: "/admin/users/alice", body: `{"disabled": false}`}).Expect(t, http.StatusOK)
	do(s, call{method: "GET", path: "/admin/me", key: k.Key}).Expect(t, http.StatusOK)

	// Deleted, the account and its keys are gone.
	do(s, call{method: "DELETE", path: "/admin/users/alice"}).Expect(t, http.StatusNoContent)
	problem(t, do(s, call{method: "GET", path: "/admin/users/alice"}), http.StatusNotFound, ngsild.ResourceNotFound, `user "alice" not found`)
	do(s, call{method: "GET", path: "/admin/me", key: k.Key}).Expect(t, http.StatusUnauthorized)
	problem(t, do(s, call{method: "GET", path: "/admin/keys/" + k.ID}), http.StatusNotFound, ngsild.ResourceNotFound, "not found")

	// The last platform administrator stays one.
	problem(t, do(s, call{method: "PATCH", path: "/admin/users/admin", body: `{"grants": [{"tenant": "", "role": "admin"}]}`}),
		http.StatusBadRequest, ngsild.BadRequestData, "last enabled administrator")
	problem(t, do(s, call{method: "DELETE", path: "/admin/users/admin"}), http.StatusBadRequest, ngsild.BadRequestData, "last enabled administrator")
}

// TestUnlock: an account locked after failed logins is shown locked and
// unlocked by PATCH {"unlock": true}.
func TestUnlock(t *testing.T) {
	s := apitest.StartWith(t, t.TempDir(), func(c *app.Config) {
		c.Auth.MaxFailures = 2
		c.Auth.LoginBurst = 100
	})
	do(s, call{method: "POST", path: "/admin/users", body: `{"name": "bob", "password": "` + password + `", "grants": [{"tenant": "", "role": "viewer"}]}`}).
		Expect(t, http.StatusCreated)
	for range 2 {
		do(s, call{method: "GET", path: "/admin/me", header: basic("bob", "wrong password, twice")}).Expect(t, http.StatusUnauthorized)
	}
	do(s, call{method: "GET", path: "/admin/me", header: basic("bob", password)}).Expect(t, http.StatusTooManyRequests)
	if u := decode[user](t, do(s, call{method: "GET", path: "/admin/users/bob"}).Expect(t, http.StatusOK)); u.LockedUntil.IsZero() {
		t.Fatal("bob is not shown locked")
	}
	r := do(s, call{method: "PATCH", path: "/admin/users/bob", body: `{"unlock": true}`}).Expect(t, http.StatusOK)
	if u := decode[user](t, r); !u.LockedUntil.IsZero() {
		t.Fatalf("bob still locked: %s", r.Body)
	}
	do(s, call{method: "GET", path: "/admin/me", header: basic("bob", password)}).Expect(t, http.StatusOK)
}

// TestBadInput: every kind of bad input is a precise 400 (or 415, 413)
// and changes nothing.
func TestBadInput(t *testing.T) {
	s := apitest.Start(t)
	do(s, call{method: "POST", path: "/admin/users", body: `{"name": "bob", "password": "` + password + `", "grants": [{"tenant": "a", "role": "viewer"}]}`}).
		Expect(t, http.StatusCreated)
	bobKey := decode[key](t, do(s, call{method: "POST", path: "/admin/users/bob/keys", body: `{"name": "k"}`}).Expect(t, http.StatusCreated))
	state := func() string {
		return string(do(s, call{method: "GET", path: "/admin/users"}).Body) + string(do(s, call{method: "GET", path: "/admin/keys"}).Body) +
			string(do(s, call{method: "GET", path: "/admin/tenants/a"}).Body)
	}
	before := state()
	long := strings.Repeat("x", 65)
	const bad, invalid = ngsild.BadRequestData, ngsild.InvalidRequest
	for _, c := range []struct {
		name   string
		call   call
		status int
		typ    ngsild.ErrorType
		detail string
	}{
		{"unknown member", call{method: "POST", path: "/admin/users", body: `{"name": "x", "grants": [], "admin": true}`}, 400, bad, `unknown member "admin"`},
		{"repeated member", call{method: "POST", path: "/admin/users", body: `{"name": "x", "grants": [], "name": "y"}`}, 400, bad, "given twice"},
		{"name of the wrong type", call{method: "POST", path: "/admin/users", body: `{"name": 7, "grants": []}`}, 400, bad, "member name: expected a string, not a number"},
		{"no name", call{method: "POST", path: "/admin/users", body: `{"grants": []}`}, 400, bad, "member name is required"},
		{"no grants", call{method: "POST", path: "/admin/users", body: `{"name": "x"}`}, 400, bad, "member grants is required"},
		{"grants not an array", call{method: "POST", path: "/admin/users", body: `{"name": "x", "grants": {"tenant": "a"}}`}, 400, bad, "member grants: expected an array of grants"},
		{"grant not an object", call{method: "POST", path: "/admin/users", body: `{"name": "x", "grants": ["admin"]}`}, 400, bad, "grants[0]: expected a grant"},
		{"grant without tenant", call{method: "POST", path: "/admin/users", body: `{"name": "x", "grants": [{"role": "viewer"}]}`}, 400, bad, "grants[0]: member tenant is required"},
		{"grant with unknown member", call{method: "POST", path: "/admin/users", body: `{"name": "x", "grants": [{"tenant": "", "role": "viewer", "perms": 1}]}`}, 400, bad, `grants[0]: unknown member "perms"`},
		{"bad role", call{method: "POST", path: "/admin/users", body: `{"name": "x", "grants": [{"tenant": "", "role": "root"}]}`}, 400, bad, `unknown role "root"`},
		{"bad tenant", call{method: "POST", path: "/admin/users", body: `{"name": "x", "grants": [{"tenant": "a b", "role": "viewer"}]}`}, 400, bad, `invalid tenant name "a b"`},
		{"types of a viewer", call{method: "POST", path: "/admin/users", body: `{"name": "x", "grants": [{"tenant": "", "role": "viewer", "types": ["https://x.org/T"]}]}`}, 400, bad, "only an editor's grant lists types"},
		{"short type", call{method: "POST", path: "/admin/users", body: `{"name": "x", "grants": [{"tenant": "", "role": "editor", "types": ["Parking"]}]}`}, 400, bad, "not an expanded IRI"},
		{"types not strings", call{method: "POST", path: "/admin/users", body: `{"name": "x", "grants": [{"tenant": "", "role": "editor", "types": [1]}]}`}, 400, bad, "grants[0].types: expected an array of entity types"},
		{"over-long name", call{method: "POST", path: "/admin/users", body: `{"name": "` + long + `", "grants": []}`}, 400, bad, "user name"},
		{"upper-case name", call{method: "POST", path: "/admin/users", body: `{"name": "Bob", "grants": []}`}, 400, bad, "lower-case"},
		{"short password", call{method: "POST", path: "/admin/users", body: `{"name": "x", "password": "short", "grants": []}`}, 400, bad, "at least 12 characters"},
		{"empty password", call{method: "POST", path: "/admin/users", body: `{"name": "x", "password": "", "grants": []}`}, 400, bad, "member password is empty"},
		{"existing user", call{method: "POST", path: "/admin/users", body: `{"name": "bob", "grants": []}`}, 409, ngsild.AlreadyExists, `user "bob"`},
		{"malformed JSON", call{method: "POST", path: "/admin/users", body: "{\"name\": \"x\",\n \"grants\": [}"}, 400, invalid, "line 2"},
		{"truncated JSON", call{method: "POST", path: "/admin/users", body: `{"name": "x"`}, 400, invalid, "not valid JSON"},
		{"not an object", call{method: "POST", path: "/admin/users", body: `["x"]`}, 400, bad, "must be a JSON object, not an array"},
		{"data after the object", call{method: "POST", path: "/admin/users", body: `{"name": "x", "grants": []} {}`}, 400, invalid, "data after"},
		{"empty body", call{method: "POST", path: "/admin/users", body: ` `}, 400, invalid, "empty"},
		{"not JSON", call{method: "POST", path: "/admin/users", body: `name=x`, header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}, 415, ngsild.UnsupportedMediaType, "application/json"},
		{"too large", call{method: "POST", path: "/admin/users", body: `{"name": "` + strings.Repeat("x", adminapi.MaxBody) + `"}`}, 413, ngsild.PayloadTooLarge, "larger"},
		{"unknown query parameter", call{method: "GET", path: "/admin/users?tenant=a"}, 400, bad, `unknown query parameter "tenant"`},
		{"bad user name in path", call{method: "GET", path: "/admin/users/" + long}, 400, bad, "is not a user name"},
		{"patch nothing", call{method: "PATCH", path: "/admin/users/bob", body: `{}`}, 400, bad, "nothing to change"},
		{"patch disabled of the wrong type", call{method: "PATCH", path: "/admin/users/bob", body: `{"disabled": "yes"}`}, 400, bad, "member disabled: expected true or false, not a string"},
		{"patch short password", call{method: "PATCH", path: "/admin/users/bob", body: `{"password": "short", "disabled": true}`}, 400, bad, "at least 12"},
		{"patch bad grants with a password", call{method: "PATCH", path: "/admin/users/bob", body: `{"password": "` + password2 + `", "grants": [{"tenant": "a", "role": "boss"}]}`}, 400, bad, "unknown role"},
		{"patch unknown member", call{method: "PATCH", path: "/admin/users/bob", body: `{"name": "robert"}`}, 400, bad, `unknown member "name"`},
		{"patch unknown user", call{method: "PATCH", path: "/admin/users/nobody", body: `{"disabled": true}`}, 404, ngsild.ResourceNotFound, `user "nobody" not found`},
		{"key without name", call{method: "POST", path: "/admin/users/bob/keys", body: `{}`}, 400, bad, "member name is required"},
		{"key beyond its owner", call{method: "POST", path: "/admin/users/bob/keys", body: `{"name": "k", "grants": [{"tenant": "a", "role": "editor"}]}`}, 400, bad, "within its owner's"},
		{"key with empty grants", call{method: "POST", path: "/admin/users/bob/keys", body: `{"name": "k", "grants": []}`}, 400, bad, "without grants"},
		{"key expired already", call{method: "POST", path: "/admin/users/bob/keys", body: `{"name": "k", "expires": "2001-01-01T00:00:00Z"}`}, 400, bad, "expired already"},
		{"key expires not a time", call{method: "POST", path: "/admin/users/bob/keys", body: `{"name": "k", "expires": "tomorrow"}`}, 400, bad, "member expires: expected a time in RFC 3339"},
		{"key of an unknown user", call{method: "POST", path: "/admin/users/nobody/keys", body: `{"name": "k"}`}, 404, ngsild.ResourceNotFound, "not found"},
		{"key id malformed", call{method: "GET", path: "/admin/keys/nope"}, 400, bad, "not an API key id"},
		{"key secret as id", call{method: "DELETE", path: "/admin/keys/" + bobKey.Key}, 400, bad, "never its secret"},
		{"revoke with a bad delete", call{method: "DELETE", path: "/admin/keys/" + bobKey.ID + "?delete=yes"}, 400, bad, "query parameter delete"},
		{"unknown key", call{method: "DELETE", path: "/admin/keys/aaaaaaaaaaaa"}, 404, ngsild.ResourceNotFound, `key "aaaaaaaaaaaa" not found`},
		{"public read missing", call{method: "PUT", path: "/admin/tenants/a/public", body: `{}`}, 400, bad, "member publicRead is required"},
		{"public read a string", call{method: "PUT", path: "/admin/tenants/a/public", body: `{"publicRead": "true"}`}, 400, bad, "expected true or false"},
		{"public read of a bad tenant", call{method: "PUT", path: "/admin/tenants/a%20b/public", body: `{"publicRead": true}`}, 400, bad, "invalid tenant name"},
		{"audit from not a time", call{method: "GET", path: "/admin/audit?from=yesterday"}, 400, bad, "query parameter from"},
		{"audit from after to", call{method: "GET", path: "/admin/audit?from=2025-02-01T00:00:00Z&to=2025-01-01T00:00:00Z"}, 400, bad, "from must be before to"},
		{"audit limit too large", call{method: "GET", path: "/admin/audit?limit=5000"}, 400, bad, "from 1 to 1000"},
		{"audit limit not a number", call{method: "GET", path: "/admin/audit?limit=ten"}, 400, bad, "query parameter limit"},
		{"audit bad tenant", call{method: "GET", path: "/admin/audit?tenant=a,b%20c"}, 400, bad, "is no tenant name"},
		{"audit repeated parameter", call{method: "GET", path: "/admin/audit?who=a&who=b"}, 400, bad, "given 2 times"},
		{"bad tenant on an open route", call{method: "GET", path: "/admin/me", tenant: "a b"}, 400, bad, `invalid tenant name "a b"`},
		{"bad tenant on a guarded route", call{method: "GET", path: "/admin/users", tenant: "a/b"}, 400, bad, `invalid tenant name "a/b"`},
		{"setup without token", call{method: "POST", path: "/admin/setup", body: `{"name": "x", "password": "` + password + `"}`, key: apitest.NoKey}, 400, bad, "member token is required"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := do(s, c.call)
			problem(t, r, c.status, c.typ, c.detail)
			if c.call.method != "GET" && bytes.Contains(r.Body, []byte(password2)) {
				t.Errorf("the answer repeats the password: %s", r.Body)
			}
			if strings.Contains(string(r.Body), bobKey.Key) {
				t.Errorf("the answer repeats a key's secret: %s", r.Body)
			}
		})
	}
	if after := state(); after != before {
		t.Errorf("bad input changed something:\n%s\n%s", before, after)
	}
}

// TestTenantAdmin: an administrator of tenant a manages a's accounts and
// keys and reads a's audit log, and nothing of any other tenant's, nor the
// platform's.
func TestTenantAdmin(t *testing.T) {
	s := apitest.Start(t)
	adminA := userKey(t, s, "admin-a", auth.Grant{Tenant: "a", Role: auth.RoleAdmin})
	userKey(t, s, "viewer-a", auth.Grant{Tenant: "a", Role: auth.RoleViewer})
	userKey(t, s, "viewer-b", auth.Grant{Tenant: "b", Role: auth.RoleViewer})
	userKey(t, s, "both", auth.Grant{Tenant: "a", Role: auth.RoleViewer}, auth.Grant{Tenant: "b", Role: auth.RoleViewer})
	keyB := decode[key](t, do(s, call{method: "POST", path: "/admin/users/viewer-b/keys", body: `{"name": "b"}`}).Expect(t, http.StatusCreated))
	as := func(c call) *apitest.Response {
		c.key, c.tenant = adminA, "a"
		return do(s, c)
	}

	if got := names(decode[[]user](t, as(call{method: "GET", path: "/admin/users"}).Expect(t, http.StatusOK))); got != "admin-a,viewer-a" {
		t.Errorf("tenant a's accounts: %s", got)
	}
	for _, c := range []struct {
		name   string
		call   call
		status int
		typ    ngsild.ErrorType
		detail string
	}{
		{"another tenant's account", call{method: "GET", path: "/admin/users/viewer-b"}, 404, ngsild.ResourceNotFound, `user "viewer-b" not found`},
		{"an account of two tenants", call{method: "PATCH", path: "/admin/users/both", body: `{"disabled": true}`}, 404, ngsild.ResourceNotFound, "not found"},
		{"the platform administrator", call{method: "DELETE", path: "/admin/users/admin"}, 404, ngsild.ResourceNotFound, "not found"},
		{"another tenant's keys", call{method: "GET", path: "/admin/users/viewer-b/keys"}, 404, ngsild.ResourceNotFound, "not found"},
		{"another tenant's key", call{method: "DELETE", path: "/admin/keys/" + keyB.ID}, 404, ngsild.ResourceNotFound, "not found"},
		{"another tenant's keys by owner", call{method: "GET", path: "/admin/keys?owner=viewer-b"}, 404, ngsild.ResourceNotFound, `user "viewer-b" not found`},
		{"a grant on another tenant", call{method: "POST", path: "/admin/users", body: `{"name": "x", "grants": [{"tenant": "b", "role": "viewer"}]}`}, 403, ngsild.Forbidden, "may not give viewer on b"},
		{"platform administrator", call{method: "POST", path: "/admin/users", body: `{"name": "x", "grants": [{"tenant": "*", "role": "admin"}]}`}, 403, ngsild.Forbidden, "may not give admin on *"},
		{"promotion to another tenant", call{method: "PATCH", path: "/admin/users/viewer-a", body: `{"grants": [{"tenant": "a", "role": "viewer"}, {"tenant": "b", "role": "admin"}]}`}, 403, ngsild.Forbidden, "may not give admin on b"},
		{"no grant left", call{method: "PATCH", path: "/admin/users/viewer-a", body: `{"grants": []}`}, 400, ngsild.BadRequestData, "needs at least one grant"},
		{"a key on another tenant", call{method: "POST", path: "/admin/users/viewer-a/keys", body: `{"name": "k", "grants": [{"tenant": "b", "role": "viewer"}]}`}, 403, ngsild.Forbidden, "may not give"},
		{"another tenant's audit", call{method: "GET", path: "/admin/audit?tenant=b"}, 403, ngsild.Forbidden, `audit log of tenant "a"`},
		{"another tenant's settings", call{method: "PUT", path: "/admin/tenants/b/public", body: `{"publicRead": true}`}, 403, ngsild.Forbidden, `admin-a may not admin on tenant "b"`},
	} {
		t.Run(c.name, func(t *testing.T) { problem(t, as(c.call), c.status, c.typ, c.detail) })
	}
	// Without the header, the request is on the default tenant, where
	// admin-a has no right.
	problem(t, do(s, call{method: "GET", path: "/admin/users", key: adminA}), http.StatusForbidden, ngsild.Forbidden, "the default tenant")

	// What a's administrator may do.
	r := as(call{method: "POST", path: "/admin/users", body: `{"name": "editor-a", "password": "` + password + `", "grants": [{"tenant": "a", "role": "editor"}]}`})
	r.Expect(t, http.StatusCreated)
	as(call{method: "PATCH", path: "/admin/users/viewer-a", body: `{"grants": [{"tenant": "a", "role": "operator"}], "password": "` + password + `"}`}).Expect(t, http.StatusOK)
	k := decode[key](t, as(call{method: "POST", path: "/admin/users/editor-a/keys", body: `{"name": "etl"}`}).Expect(t, http.StatusCreated))
	if len(k.Grants) != 1 || k.Grants[0].String() != "editor on a" || !strings.HasPrefix(k.Key, "zk_") {
		t.Errorf("key %+v", k)
	}
	var ids []string
	for _, k := range decode[[]key](t, as(call{method: "GET", path: "/admin/keys"}).Expect(t, http.StatusOK)) {
		ids = append(ids, k.Owner+"/"+k.Name)
	}
	if got := strings.Join(ids, ","); !strings.Contains(got, "editor-a/etl") || strings.Contains(got, "viewer-b") || strings.Contains(got, "both") {
		t.Errorf("tenant a's keys: %s", got)
	}
	as(call{method: "DELETE", path: "/admin/keys/" + k.ID}).Expect(t, http.StatusNoContent)
	as(call{method: "PUT", path: "/admin/tenants/a/public", body: `{"publicRead": true}`}).Expect(t, http.StatusOK)
	as(call{method: "DELETE", path: "/admin/users/editor-a"}).Expect(t, http.StatusNoContent)

	// a's audit log holds a's entries only.
	es := decode[[]auth.Entry](t, as(call{method: "GET", path: "/admin/audit"}).Expect(t, http.StatusOK))
	actions := map[string]bool{}
	for _, e := range es {
		if e.Tenant != "a" {
			t.Errorf("tenant a's audit log shows %+v", e)
		}
		actions[e.Action] = true
	}
	for _, want := range []string{"POST /admin/users", "PATCH /admin/users/{name}", "POST /admin/users/{name}/keys",
		"DELETE /admin/keys/{id}", "PUT /admin/tenants/{tenant}/public", "DELETE /admin/users/{name}"} {
		if !actions[want] {
			t.Errorf("no %s in a's audit log: %v", want, actions)
		}
	}
	// The platform administrator sees the default tenant's entries (a's
	// admin trying without a tenant) apart from the platform-wide ones.
	es = decode[[]auth.Entry](t, do(s, call{method: "GET", path: "/admin/audit?tenant=@default"}).Expect(t, http.StatusOK))
	if len(es) != 1 || es[0].Who != "admin-a" || es[0].Outcome != auth.OutcomeDenied {
		t.Errorf("default tenant's entries: %+v", es)
	}
	es = decode[[]auth.Entry](t, do(s, call{method: "GET", path: "/admin/audit?tenant=*"}).Expect(t, http.StatusOK))
	if len(es) == 0 || es[len(es)-1].Action != "POST /admin/users/{name}/keys" || es[len(es)-1].Who != auth.AdminUser {
		t.Errorf("platform-wide entries: %+v", es)
	}
	// A platform administrator acting on tenant a gives grants on a only.
	problem(t, do(s, call{method: "POST", path: "/admin/users", tenant: "a", body: `{"name": "x", "grants": [{"tenant": "b", "role": "viewer"}]}`}),
		http.StatusBadRequest, ngsild.BadRequestData, "grants are on it only")
}

// TestRefusals: anonymous callers get 401, callers without the admin
// right 403, on every route but the open ones.
func TestRefusals(t *testing.T) {
	s := apitest.Start(t)
	viewer := userKey(t, s, "viewer", auth.Grant{Tenant: "", Role: auth.RoleViewer})
	operator := userKey(t, s, "operator", auth.Grant{Tenant: "a", Role: auth.RoleOperator})
	for _, c := range []call{
		{method: "GET", path: "/admin/users"},
		{method: "POST", path: "/admin/users", body: `{"name": "x", "grants": []}`},
		{method: "GET", path: "/admin/users/viewer"},
		{method: "PATCH", path: "/admin/users/viewer", body: `{"disabled": true}`},
		{method: "DELETE", path: "/admin/users/viewer"},
		{method: "GET", path: "/admin/users/viewer/keys"},
		{method: "POST", path: "/admin/users/viewer/keys", body: `{"name": "x"}`},
		{method: "GET", path: "/admin/keys"},
		{method: "GET", path: "/admin/keys/aaaaaaaaaaaa"},
		{method: "DELETE", path: "/admin/keys/aaaaaaaaaaaa"},
		{method: "GET", path: "/admin/audit"},
		{method: "GET", path: "/admin/audit/export"},
		{method: "GET", path: "/admin/tenants/a"},
		{method: "PUT", path: "/admin/tenants/a/public", body: `{"publicRead": true}`},
		{method: "GET", path: "/admin/tenants/@default"},
	} {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			c.key = apitest.NoKey
			r := do(s, c)
			problem(t, r, http.StatusUnauthorized, ngsild.Unauthorized, "authentication required")
			c.key = viewer
			problem(t, do(s, c), http.StatusForbidden, ngsild.Forbidden, "may not")
			c.key, c.tenant = operator, "a"
			problem(t, do(s, c), http.StatusForbidden, ngsild.Forbidden, "may not")
		})
	}
	for _, p := range []string{"/admin/me", "/admin/me/keys"} {
		r := do(s, call{method: "GET", path: p, key: apitest.NoKey})
		problem(t, r, http.StatusUnauthorized, ngsild.Unauthorized, "authentication required")
		if !strings.Contains(r.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: 401 without WWW-Authenticate", p)
		}
	}
	problem(t, do(s, call{method: "POST", path: "/admin/me/keys", body: `{"name": "x"}`, key: apitest.NoKey}), http.StatusUnauthorized, ngsild.Unauthorized, "")
	problem(t, do(s, call{method: "DELETE", path: "/admin/me/keys/aaaaaaaaaaaa", key: apitest.NoKey}), http.StatusUnauthorized, ngsild.Unauthorized, "")
	// A revoked key is told so, even on the open routes.
	problem(t, do(s, call{method: "GET", path: "/admin/me", key: "zk_aaaaaaaaaaaa_" + strings.Repeat("A", 43)}), http.StatusUnauthorized, ngsild.Unauthorized, "API key")
}

// TestMyKeys: anyone authenticated manages their own keys, within their
// own rights; a key cannot make a key beyond itself.
func TestMyKeys(t *testing.T) {
	s := apitest.Start(t)
	grants := `[{"tenant": "a", "role": "editor"}, {"tenant": "b", "role": "viewer"}]`
	do(s, call{method: "POST", path: "/admin/users", body: `{"name": "carol", "password": "` + password + `", "grants": ` + grants + `}`}).Expect(t, http.StatusCreated)
	carol := basic("carol", password)
	me := func(c call) *apitest.Response {
		if c.key == "" {
			c.header = carol
		}
		return do(s, c)
	}
	// With her password, carol makes a key with all her rights, and one
	// that only reads a.
	full := decode[key](t, me(call{method: "POST", path: "/admin/me/keys", body: `{"name": "full"}`}).Expect(t, http.StatusCreated))
	r := me(call{method: "POST", path: "/admin/me/keys", body: `{"name": "reader", "grants": [{"tenant": "a", "role": "viewer"}], "expires": "2099-01-01T00:00:00Z"}`})
	golden(t, "key-created", r.Expect(t, http.StatusCreated).Body)
	reader := decode[key](t, r)
	problem(t, me(call{method: "POST", path: "/admin/me/keys", body: `{"name": "x", "grants": [{"tenant": "b", "role": "editor"}]}`}),
		http.StatusForbidden, ngsild.Forbidden, "editor on b goes beyond your own rights")

	// The reader key cannot make a writer, nor revoke the full key; it
	// may make a reader and revoke that, and itself.
	problem(t, me(call{method: "POST", path: "/admin/me/keys", key: reader.Key, body: `{"name": "x", "grants": [{"tenant": "a", "role": "editor"}]}`}),
		http.StatusForbidden, ngsild.Forbidden, "those of the key you sent")
	sub := decode[key](t, me(call{method: "POST", path: "/admin/me/keys", key: reader.Key, body: `{"name": "sub"}`}).Expect(t, http.StatusCreated))
	if len(sub.Grants) != 1 || sub.Grants[0].String() != "viewer on a" || sub.Owner != "carol" {
		t.Errorf("a key's key: %+v", sub)
	}
	problem(t, me(call{method: "DELETE", path: "/admin/me/keys/" + full.ID, key: reader.Key}), http.StatusForbidden, ngsild.Forbidden, "does more than the key you sent")
	me(call{method: "DELETE", path: "/admin/me/keys/" + sub.ID, key: reader.Key}).Expect(t, http.StatusNoContent)
	golden(t, "me", me(call{method: "GET", path: "/admin/me", key: reader.Key}).Expect(t, http.StatusOK).Body)

	// The list shows the keys, never their secrets.
	r = me(call{method: "GET", path: "/admin/me/keys"}).Expect(t, http.StatusOK)
	golden(t, "my-keys", r.Body)
	for _, k := range []key{full, reader, sub} {
		if bytes.Contains(r.Body, []byte(k.Key)) || bytes.Contains(r.Body, []byte(`"key"`)) {
			t.Fatalf("a listing shows a secret: %s", r.Body)
		}
	}
	if ks := decode[[]key](t, r); len(ks) != 3 || ks[2].ID != sub.ID || ks[2].Revoked.IsZero() || !ks[0].Revoked.IsZero() {
		t.Errorf("carol's keys: %s", r.Body)
	}

	// Another user's keys are not found; carol's key revokes itself; the
	// full key is deleted for good.
	dave := userKey(t, s, "dave", auth.Grant{Tenant: "a", Role: auth.RoleAdmin})
	problem(t, do(s, call{method: "DELETE", path: "/admin/me/keys/" + full.ID, key: dave}), http.StatusNotFound, ngsild.ResourceNotFound, "not found")
	me(call{method: "DELETE", path: "/admin/me/keys/" + reader.ID, key: reader.Key}).Expect(t, http.StatusNoContent)
	problem(t, me(call{method: "GET", path: "/admin/me", key: reader.Key}), http.StatusUnauthorized, ngsild.Unauthorized, "revoked")
	me(call{method: "DELETE", path: "/admin/me/keys/" + full.ID + "?delete=true"}).Expect(t, http.StatusNoContent)
	problem(t, do(s, call{method: "GET", path: "/admin/keys/" + full.ID}), http.StatusNotFound, ngsild.ResourceNotFound, "not found")
	do(s, call{method: "GET", path: "/admin/me", key: full.Key}).Expect(t, http.StatusUnauthorized)
}

// TestKeys: an administrator makes a key for an account; its secret is
// shown once and works; revoked, it is refused at once and stays listed.
func TestKeys(t *testing.T) {
	s := apitest.Start(t)
	do(s, call{method: "POST", path: "/admin/users", body: `{"name": "etl", "grants": [{"tenant": "a", "role": "editor", "types": ["https://x.org/T"]}]}`}).
		Expect(t, http.StatusCreated)
	r := do(s, call{method: "POST", path: "/admin/users/etl/keys", body: `{"name": "nightly import"}`}).Expect(t, http.StatusCreated)
	k := decode[key](t, r)
	if r.Header.Get("Location") != "/admin/keys/"+k.ID || r.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("headers %v", r.Header)
	}
	if id, err := auth.KeyID(k.Key); err != nil || id != k.ID || k.Owner != "etl" || len(k.Grants) != 1 || len(k.Grants[0].Types) != 1 {
		t.Fatalf("key %+v", k)
	}
	me := decode[struct{ Key key }](t, do(s, call{method: "GET", path: "/admin/me", key: k.Key}).Expect(t, http.StatusOK))
	if me.Key.ID != k.ID {
		t.Errorf("/admin/me with the key: %+v", me)
	}
	for _, p := range []string{"/admin/keys/" + k.ID, "/admin/keys", "/admin/users/etl/keys", "/admin/keys?owner=etl"} {
		r := do(s, call{method: "GET", path: p}).Expect(t, http.StatusOK)
		if bytes.Contains(r.Body, []byte(k.Key)) || bytes.Contains(r.Body, []byte(`"key"`)) || !bytes.Contains(r.Body, []byte(k.ID)) {
			t.Errorf("GET %s: %s", p, r.Body)
		}
	}
	golden(t, "key", do(s, call{method: "GET", path: "/admin/keys/" + k.ID}).Body)
	problem(t, do(s, call{method: "GET", path: "/admin/keys?owner=nobody"}), http.StatusNotFound, ngsild.ResourceNotFound, `user "nobody" not found`)

	do(s, call{method: "DELETE", path: "/admin/keys/" + k.ID}).Expect(t, http.StatusNoContent)
	problem(t, do(s, call{method: "GET", path: "/admin/me", key: k.Key}), http.StatusUnauthorized, ngsild.Unauthorized, "revoked")
	if got := decode[key](t, do(s, call{method: "GET", path: "/admin/keys/" + k.ID}).Expect(t, http.StatusOK)); got.Revoked.IsZero() {
		t.Errorf("revoked key %+v", got)
	}
	do(s, call{method: "DELETE", path: "/admin/keys/" + k.ID}).Expect(t, http.StatusNoContent) // again: nothing to do
	do(s, call{method: "DELETE", path: "/admin/keys/" + k.ID + "?delete=true"}).Expect(t, http.StatusNoContent)
	problem(t, do(s, call{method: "GET", path: "/admin/keys/" + k.ID}), http.StatusNotFound, ngsild.ResourceNotFound, "not found")

	// A disabled account gets no new key.
	do(s, call{method: "PATCH", path: "/admin/users/etl", body: `{"disabled": true}`}).Expect(t, http.StatusOK)
	problem(t, do(s, call{method: "POST", path: "/admin/users/etl/keys", body: `{"name": "k"}`}), http.StatusConflict, ngsild.Conflict, "enable the account first")
}

// TestAudit: administration is in the audit log, newest first, filtered,
// and exported as JSON lines, with no password and no key secret in it.
func TestAudit(t *testing.T) {
	s := apitest.Start(t)
	start := time.Now().UTC()
	do(s, call{method: "POST", path: "/admin/users", body: `{"name": "erin", "password": "` + password + `", "grants": [{"tenant": "a", "role": "viewer"}]}`}).
		Expect(t, http.StatusCreated)
	k := decode[key](t, do(s, call{method: "POST", path: "/admin/users/erin/keys", body: `{"name": "k"}`}).Expect(t, http.StatusCreated))
	do(s, call{method: "PATCH", path: "/admin/users/erin", body: `{"password": "` + password2 + `"}`}).Expect(t, http.StatusOK)
	do(s, call{method: "GET", path: "/admin/me", header: basic("erin", password2)}).Expect(t, http.StatusOK)
	do(s, call{method: "POST", path: "/admin/me/keys", header: basic("erin", password2), body: `{"name": "mine"}`}).Expect(t, http.StatusCreated)
	do(s, call{method: "DELETE", path: "/admin/keys/" + k.ID}).Expect(t, http.StatusNoContent)
	do(s, call{method: "DELETE", path: "/admin/users/erin", key: k.Key}).Expect(t, http.StatusUnauthorized)

	r := do(s, call{method: "GET", path: "/admin/audit?who=admin&limit=2"}).Expect(t, http.StatusOK)
	es := decode[[]auth.Entry](t, r)
	if len(es) != 2 || es[0].Action != "DELETE /admin/keys/{id}" || es[1].Action != "PATCH /admin/users/{name}" || es[0].Time.Before(es[1].Time) {
		t.Fatalf("newest entries of admin: %s", r.Body)
	}
	golden(t, "audit", r.Body)
	if es := decode[[]auth.Entry](t, do(s, call{method: "GET", path: "/admin/audit?who=erin"})); len(es) != 1 || es[0].Action != "POST /admin/me/keys" {
		t.Errorf("erin's entries: %+v", es)
	}
	// The revoked key is refused before it is known whose it is.
	if es := decode[[]auth.Entry](t, do(s, call{method: "GET", path: "/admin/audit?who=anonymous"})); len(es) != 1 || es[0].Status != http.StatusUnauthorized || es[0].Outcome != auth.OutcomeDenied {
		t.Errorf("anonymous entries: %+v", es)
	}
	before := start.Add(-time.Hour).Format(time.RFC3339)
	if es := decode[[]auth.Entry](t, do(s, call{method: "GET", path: "/admin/audit?to=" + before})); len(es) != 0 {
		t.Errorf("entries before the test: %+v", es)
	}
	if es := decode[[]auth.Entry](t, do(s, call{method: "GET", path: "/admin/audit?from=" + before + "&tenant=*,@default,a"})); len(es) != 6 {
		t.Errorf("%d entries since the test started", len(es))
	}

	r = do(s, call{method: "GET", path: "/admin/audit/export"}).Expect(t, http.StatusOK)
	if cd := r.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment; filename=") || r.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Errorf("export headers %v", r.Header)
	}
	lines := strings.Split(strings.TrimSpace(string(r.Body)), "\n")
	var actions []string
	for _, l := range lines {
		var e auth.Entry
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("export line %q: %v", l, err)
		}
		actions = append(actions, e.Action)
	}
	if want := "POST /admin/users,POST /admin/users/{name}/keys,PATCH /admin/users/{name},POST /admin/me/keys,DELETE /admin/keys/{id},DELETE /admin/users/{name}"; strings.Join(actions, ",") != want {
		t.Errorf("exported actions, oldest first:\n%s\nwant\n%s", strings.Join(actions, ","), want)
	}
	for _, secret := range []string{password, password2, k.Key, s.AdminKey, k.Key[len("zk_")+13:]} {
		if strings.Contains(string(r.Body), secret) {
			t.Errorf("the audit log holds a secret: %s", r.Body)
		}
	}
	if r := do(s, call{method: "GET", path: "/admin/audit/export?who=nobody"}).Expect(t, http.StatusOK); len(r.Body) != 0 {
		t.Errorf("export of nobody: %s", r.Body)
	}
}

// logBuffer collects a server's log.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestSetup: a new installation's first administrator is created once,
// with the setup token the server logged.
func TestSetup(t *testing.T) {
	var logs logBuffer
	s := apitest.StartWith(t, t.TempDir(), func(c *app.Config) {
		c.Env = func(string) string { return "" }
		c.Log = slog.New(slog.NewTextHandler(&logs, nil))
	})
	m := regexp.MustCompile(`setupToken=(zs_[A-Za-z0-9_-]{43})`).FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("no setup token in the log:\n%s", logs.String())
	}
	token := m[1]
	setup := func(tok, pw string) *apitest.Response {
		body := fmt.Sprintf(`{"token": %q, "name": "root", "password": %q}`, tok, pw)
		return do(s, call{method: "POST", path: "/admin/setup", body: body, key: apitest.NoKey})
	}
	problem(t, setup("zs_wrong", password), http.StatusForbidden, ngsild.Forbidden, "setup token")
	problem(t, setup(token, "short"), http.StatusBadRequest, ngsild.BadRequestData, "at least 12")
	r := setup(token, password).Expect(t, http.StatusCreated)
	golden(t, "setup", r.Body)
	problem(t, setup(token, password), http.StatusForbidden, ngsild.Forbidden, "no setup pending")
	u := decode[struct{ User user }](t, do(s, call{method: "GET", path: "/admin/me", header: basic("root", password)}).Expect(t, http.StatusOK))
	if len(u.User.Grants) != 1 || u.User.Grants[0].String() != "admin on *" {
		t.Errorf("first administrator %+v", u)
	}
	if strings.Contains(logs.String(), password) {
		t.Errorf("the log holds the password")
	}
}

// TestTenants: a tenant made public is read by anyone.
func TestTenants(t *testing.T) {
	s := apitest.Start(t)
	golden(t, "tenant", do(s, call{method: "GET", path: "/admin/tenants/a"}).Expect(t, http.StatusOK).Body)
	thing := `{"id": "urn:ngsi-ld:Thing:1", "type": "Thing"}`
	for _, tenant := range []string{"", "a"} {
		do(s, call{method: "POST", path: "/ngsi-ld/v1/entities", body: thing, tenant: tenant}).Expect(t, http.StatusCreated)
	}
	anon := call{method: "GET", path: "/ngsi-ld/v1/entities?type=Thing", key: apitest.NoKey, tenant: "a"}
	do(s, anon).Expect(t, http.StatusUnauthorized)
	r := do(s, call{method: "PUT", path: "/admin/tenants/a/public", body: `{"publicRead": true}`}).Expect(t, http.StatusOK)
	if got := decode[map[string]any](t, r); got["publicRead"] != true || got["tenant"] != "a" {
		t.Errorf("PUT public: %s", r.Body)
	}
	do(s, anon).Expect(t, http.StatusOK)
	do(s, call{method: "PUT", path: "/admin/tenants/a/public", body: `{"publicRead": false}`}).Expect(t, http.StatusOK)
	do(s, anon).Expect(t, http.StatusUnauthorized)

	do(s, call{method: "PUT", path: "/admin/tenants/" + adminapi.DefaultTenant + "/public", body: `{"publicRead": true}`}).Expect(t, http.StatusOK)
	r = do(s, call{method: "GET", path: "/admin/tenants/" + adminapi.DefaultTenant}).Expect(t, http.StatusOK)
	if got := decode[map[string]any](t, r); got["publicRead"] != true || got["tenant"] != "" {
		t.Errorf("default tenant: %s", r.Body)
	}
	do(s, call{method: "GET", path: "/ngsi-ld/v1/entities?type=Thing", key: apitest.NoKey}).Expect(t, http.StatusOK)
}

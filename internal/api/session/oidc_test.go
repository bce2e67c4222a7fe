package session_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/api/access"
	"github.com/zenne-city/zenne/internal/api/session"
	"github.com/zenne-city/zenne/internal/api/session/oidctest"
	"github.com/zenne-city/zenne/internal/apitest"
	"github.com/zenne-city/zenne/internal/app"
	"github.com/zenne-city/zenne/internal/auth"
	"github.com/zenne-city/zenne/internal/server"
	"github.com/zenne-city/zenne/internal/store/sqlite"
)

const (
	clientID     = "zenne-console"
	clientSecret = "s3cret-of-the-client"
)

// startOIDC runs zenne with single sign-on at a test provider. zenne's
// callback URL names zenne's address, so zenne listens on a port found
// free just before.
func startOIDC(t *testing.T, configure func(*session.OIDCConfig)) (*apitest.Server, *oidctest.Provider) {
	t.Helper()
	idp := oidctest.New(t, clientID, clientSecret)
	addr := freeAddr(t)
	s := start(t, func(c *app.Config) {
		c.Listen = addr
		c.OIDC = session.OIDCConfig{Issuer: idp.URL, ClientID: clientID, ClientSecret: clientSecret,
			RedirectURL: "http://" + addr + "/login/oidc/callback"}
		if configure != nil {
			configure(&c.OIDC)
		}
	})
	return s, idp
}

// freeAddr is a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func TestOIDCLogin(t *testing.T) {
	s, idp := startOIDC(t, nil)
	user(t, s, "jan", "", auth.Grant{Role: auth.RoleEditor}) // provisioned for single sign-on: no password
	s.Post("/ngsi-ld/v1/entities", entity, nil).Expect(t, http.StatusCreated)
	b := newBrowser(t, s.URL)

	// The login page offers single sign-on.
	b.get("/login?lang=en&next=/ngsi-ld/v1/entities?type=Thing").expect(t, http.StatusOK).
		contains(t, `href="/login/oidc?lang=en&amp;next=%2Fngsi-ld%2Fv1%2Fentities%3Ftype%3DThing"`, "Log in with single sign-on")

	// zenne → provider → zenne → the next page, logged in.
	p := b.get("/login/oidc?next=/ngsi-ld/v1/entities?type=Thing").expect(t, http.StatusOK)
	if p.URL.Path != "/ngsi-ld/v1/entities" || !strings.Contains(p.Body, "urn:ngsi-ld:Thing:1") {
		t.Fatalf("after single sign-on: %s %s", p.URL, p.Body)
	}
	if got := idp.Requests(); !contains(got, "GET /authorize") || !contains(got, "POST /token") {
		t.Errorf("the provider saw %v", got)
	}
	p, in := b.info()
	p.expect(t, http.StatusOK)
	if in.User != "jan" || in.Method != "oidc" || len(in.Grants) != 1 {
		t.Errorf("GET /api/session: %+v", in)
	}
	b.do("DELETE", thing, nil, map[string]string{"X-CSRF-Token": in.CSRFToken}).expect(t, http.StatusNoContent)
	if b.cookie("/login/oidc", session.StateCookie) != "" {
		t.Error("the state cookie outlives the login")
	}
	es := audited(t, s, "login")
	if len(es) != 1 || es[0].Who != "jan" || es[0].Outcome != auth.OutcomeOK {
		t.Errorf("audited: %+v", es)
	}

	// The e-mail address when the provider gives no user name, unless it
	// says the address is not verified.
	user(t, s, "an.peeters@brussels.example", "", auth.Grant{Role: auth.RoleViewer})
	idp.SetUser(map[string]any{"sub": "u-2", "email": "An.Peeters@Brussels.example", "email_verified": true})
	b = newBrowser(t, s.URL)
	b.get("/login/oidc").expect(t, http.StatusOK)
	if _, in := b.info(); in.User != "an.peeters@brussels.example" {
		t.Errorf("by e-mail: %+v", in)
	}
	idp.SetUser(map[string]any{"sub": "u-2", "email": "an.peeters@brussels.example", "email_verified": false})
	b = newBrowser(t, s.URL)
	b.get("/login/oidc").expect(t, http.StatusForbidden).contains(t, "did not give your user name (claim preferred_username)")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestOIDCRefusals(t *testing.T) {
	s, idp := startOIDC(t, nil)
	user(t, s, "jan", "", auth.Grant{Role: auth.RoleEditor})
	user(t, s, "off", "", auth.Grant{Role: auth.RoleEditor})
	if err := s.App.Auth.SetDisabled(context.Background(), "off", true); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		setup  func()
		status int
		says   string
	}{
		{"wrong nonce", func() { idp.Tamper(func(c map[string]any) { c["nonce"] = "not-the-nonce" }) }, 401, "did not confirm your login"},
		{"no nonce", func() { idp.Tamper(func(c map[string]any) { delete(c, "nonce") }) }, 401, "did not confirm your login"},
		{"another audience", func() { idp.Tamper(func(c map[string]any) { c["aud"] = "another-client" }) }, 401, "did not confirm your login"},
		{"expired", func() {
			idp.Tamper(func(c map[string]any) {
				c["iat"] = time.Now().Add(-2 * time.Hour).Unix()
				c["exp"] = time.Now().Add(-time.Hour).Unix()
			})
		}, 401, "did not confirm your login"},
		{"another issuer", func() { idp.Tamper(func(c map[string]any) { c["iss"] = "https://evil.example" }) }, 401, "did not confirm your login"},
		{"foreign key", func() { idp.SignWithForeignKey(true) }, 401, "did not confirm your login"},
		{"refused at the provider", func() { idp.Deny("access_denied") }, 401, "refused the login (access_denied)"},
		{"unknown account", func() { idp.SetUser(map[string]any{"sub": "u-9", "preferred_username": "mallory"}) }, 403,
			"Ask an administrator to create the account mallory"},
		{"disabled account", func() { idp.SetUser(map[string]any{"sub": "u-8", "preferred_username": "off"}) }, 403, "disabled"},
		{"no user name", func() { idp.SetUser(map[string]any{"sub": "u-7"}) }, 403, "did not give your user name"},
		{"not an account name", func() { idp.SetUser(map[string]any{"sub": "u-6", "preferred_username": "a b"}) }, 403,
			"create the account a b"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Cleanup(func() {
				idp.Tamper(nil)
				idp.SignWithForeignKey(false)
				idp.Deny("")
				idp.SetUser(map[string]any{"sub": "u-1", "preferred_username": "jan"})
			})
			tc.setup()
			b := newBrowser(t, s.URL)
			p := b.get("/login/oidc?next=/somewhere").expect(t, tc.status).contains(t, tc.says)
			if p.URL.Path != "/login/oidc/callback" {
				t.Errorf("ended at %s", p.URL)
			}
			// The refusal page is the login page, in English, keeping next.
			p.contains(t, `<html lang="en">`, `name="next" value="/somewhere"`, `id="login-error"`)
			if p, _ := b.info(); p.Status != http.StatusUnauthorized {
				t.Errorf("a session after the refusal: %d", p.Status)
			}
		})
	}
	// None of them made an account.
	if _, err := s.App.Auth.User(context.Background(), "mallory"); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("mallory: %v", err)
	}
	var denied int
	for _, e := range audited(t, s, "login") {
		if e.Outcome == auth.OutcomeDenied {
			denied++
		}
	}
	if denied != len(cases) {
		t.Errorf("%d refusals audited, want %d", denied, len(cases))
	}
}

// TestOIDCCallbackForgery: a callback that does not come from the flow
// this browser started is refused before the code is traded.
func TestOIDCCallbackForgery(t *testing.T) {
	s, idp := startOIDC(t, nil)
	user(t, s, "jan", "", auth.Grant{Role: auth.RoleEditor})

	// Stop at zenne's callback, as given by the provider.
	callback := func(b *browser) *url.URL {
		b.follow = false
		defer func() { b.follow = true }()
		p := b.get("/login/oidc").expect(t, http.StatusSeeOther)
		authz, err := url.Parse(p.Header.Get("Location"))
		if err != nil || !strings.HasPrefix(authz.String(), idp.URL+"/authorize?") {
			t.Fatalf("to the provider: %v %v", authz, err)
		}
		q := authz.Query()
		if q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43 || q.Get("nonce") == "" ||
			len(q.Get("state")) < 32 || q.Get("client_id") != clientID || !strings.Contains(q.Get("scope"), "openid") {
			t.Fatalf("authorization request %v", q)
		}
		if q.Has("code_verifier") || q.Has("client_secret") {
			t.Fatalf("secrets in the authorization request %v", q)
		}
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Get(authz.String())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		u, err := url.Parse(resp.Header.Get("Location"))
		if err != nil || u.Query().Get("code") == "" {
			t.Fatalf("back from the provider: %v %v", u, err)
		}
		return u
	}
	tokens := idp.Tokens()

	// Another state.
	b := newBrowser(t, s.URL)
	u := callback(b)
	q := u.Query()
	q.Set("state", strings.Repeat("x", 43))
	b.get(u.Path+"?"+q.Encode()).expect(t, http.StatusBadRequest).contains(t, "took too long or was started in another window")

	// Another browser (no state cookie): a code stolen, or a login forced
	// on someone.
	u = callback(newBrowser(t, s.URL))
	other := newBrowser(t, s.URL)
	other.get(u.Path+"?"+u.RawQuery).expect(t, http.StatusBadRequest)
	if p, _ := other.info(); p.Status != http.StatusUnauthorized {
		t.Errorf("a session from someone else's callback: %d", p.Status)
	}
	// A state cookie made up.
	b = newBrowser(t, s.URL)
	u = callback(b)
	b.jar.SetCookies(b.base, []*http.Cookie{{Name: session.StateCookie, Value: "eyJzIjoieCJ9.AAAA", Path: "/login/oidc"}})
	b.get(u.Path+"?"+u.RawQuery).expect(t, http.StatusBadRequest)
	if idp.Tokens() != tokens {
		t.Errorf("codes were traded for forged callbacks: %d", idp.Tokens()-tokens)
	}

	// The callback once, then replayed: the state cookie is gone.
	b = newBrowser(t, s.URL)
	u = callback(b)
	b.get(u.Path+"?"+u.RawQuery).expect(t, http.StatusOK)
	b2 := newBrowser(t, s.URL)
	b2.get(u.Path+"?"+u.RawQuery).expect(t, http.StatusBadRequest)
	b.get(u.Path+"?"+u.RawQuery).expect(t, http.StatusBadRequest)
}

func TestOIDCAutoCreate(t *testing.T) {
	s, idp := startOIDC(t, func(c *session.OIDCConfig) { c.AutoCreate = true; c.UsernameClaim = "upn" })
	idp.SetUser(map[string]any{"sub": "u-3", "upn": "Nieuw.Lid@brussels.example", "preferred_username": "ignored"})
	b := newBrowser(t, s.URL)
	b.get("/login/oidc").expect(t, http.StatusOK)
	p, in := b.info()
	p.expect(t, http.StatusOK)
	if in.User != "nieuw.lid@brussels.example" || len(in.Grants) != 0 {
		t.Errorf("GET /api/session: %+v", in)
	}
	u, err := s.App.Auth.User(context.Background(), "nieuw.lid@brussels.example")
	if err != nil || len(u.Grants) != 0 || u.HasPassword {
		t.Errorf("the account created: %+v, %v", u, err)
	}
	// No grants: the session reads nothing that is not public.
	b.get("/ngsi-ld/v1/entities?type=Thing").expect(t, http.StatusForbidden)
	// A second login uses the account.
	b = newBrowser(t, s.URL)
	b.get("/login/oidc").expect(t, http.StatusOK)
}

func TestOIDCOff(t *testing.T) {
	s := start(t, nil)
	b := newBrowser(t, s.URL)
	if p := b.get("/login").expect(t, http.StatusOK); strings.Contains(p.Body, "/login/oidc") {
		t.Error("the login page offers single sign-on without a provider")
	}
	b.get("/login/oidc").expect(t, http.StatusNotFound)
	b.get("/login/oidc/callback?code=x&state=y").expect(t, http.StatusNotFound)
}

func TestOIDCConfigErrors(t *testing.T) {
	for _, c := range []session.OIDCConfig{
		{Issuer: "https://sso.example", RedirectURL: "https://zenne.example/login/oidc/callback"},
		{Issuer: "https://sso.example", ClientID: "x"},
		{Issuer: "sso.example", ClientID: "x", RedirectURL: "https://zenne.example/login/oidc/callback"},
	} {
		if _, err := session.New(context.Background(), session.Config{Auth: newAuth(t), OIDC: c}); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

func newAuth(t *testing.T) *auth.Service {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "zenne.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc, err := auth.New(ctx, st, auth.Options{Password: apitest.TestPasswords})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	return svc
}

// TestOIDCProviderDown: zenne starts while the provider cannot be reached;
// single sign-on answers 503 with a message, and works once the provider
// is back.
func TestOIDCProviderDown(t *testing.T) {
	idp := oidctest.New(t, clientID, clientSecret)
	idp.SetDown(true)
	svc := newAuth(t)
	if _, err := svc.CreateUser(context.Background(), "jan", "", []auth.Grant{{Role: auth.RoleViewer}}); err != nil {
		t.Fatal(err)
	}
	front := httptest.NewUnstartedServer(nil)
	redirectURL := "http://" + front.Listener.Addr().String() + "/login/oidc/callback"
	started := time.Now()
	h, err := session.New(context.Background(), session.Config{Auth: svc, DiscoveryRetry: 100 * time.Millisecond,
		Log:  slog.New(slog.DiscardHandler),
		OIDC: session.OIDCConfig{Issuer: idp.URL, ClientID: clientID, ClientSecret: clientSecret, RedirectURL: redirectURL}})
	if err != nil {
		t.Fatalf("zenne does not start without its identity provider: %v", err)
	}
	if d := time.Since(started); d > 5*time.Second {
		t.Errorf("the start waited %v", d)
	}
	g := access.New(h, access.Options{})
	mux := g.API(nil, access.Problem)
	h.Register(mux)
	mux.Open("GET /{$}", "the test's home", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	front.Config.Handler = server.New(slog.New(slog.DiscardHandler), "test", nil).Handler(g)
	front.Start()
	t.Cleanup(front.Close)

	b := newBrowser(t, front.URL)
	b.get("/login").expect(t, http.StatusOK).contains(t, "/login/oidc")
	p := b.get("/login/oidc?lang=fr").expect(t, http.StatusServiceUnavailable)
	p.contains(t, `<html lang="fr">`, "L&#39;authentification unique est indisponible", "mot de passe")
	if p.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	idp.SetDown(false)
	time.Sleep(150 * time.Millisecond)
	b.get("/login/oidc").expect(t, http.StatusOK)
	if p, in := b.info(); p.Status != http.StatusOK || in.User != "jan" {
		t.Errorf("after the provider came back: %d %+v", p.Status, in)
	}
}

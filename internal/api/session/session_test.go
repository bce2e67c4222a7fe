package session_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/api/session"
	"github.com/zenne-city/zenne/internal/apitest"
	"github.com/zenne-city/zenne/internal/app"
	"github.com/zenne-city/zenne/internal/auth"
)

const (
	password = "correct horse battery"
	entity   = `{"id": "urn:ngsi-ld:Thing:1", "type": "Thing", "n": {"type": "Property", "value": 1}}`
	thing    = "/ngsi-ld/v1/entities/urn:ngsi-ld:Thing:1"
)

// clock is a clock tests move, for the sessions' timeouts.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// start runs zenne with logins many enough for the tests (the address
// limit is tested apart) and configure's changes.
func start(t *testing.T, configure func(*app.Config)) *apitest.Server {
	t.Helper()
	return apitest.StartWith(t, t.TempDir(), func(c *app.Config) {
		c.Auth.LoginBurst = 1000
		if configure != nil {
			configure(c)
		}
	})
}

// user creates an account.
func user(t *testing.T, s *apitest.Server, name, pw string, grants ...auth.Grant) {
	t.Helper()
	if _, err := s.App.Auth.CreateUser(context.Background(), name, pw, grants); err != nil {
		t.Fatal(err)
	}
}

// browser is an HTTP client with cookies, as a browser: it follows
// redirections unless told not to, and sends no Authorization header.
type browser struct {
	t      *testing.T
	base   *url.URL
	jar    *cookiejar.Jar
	c      *http.Client
	follow bool
}

func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(base)
	b := &browser{t: t, base: u, jar: jar, follow: true}
	b.c = &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		if !b.follow {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	return b
}

// page is an answer, after the redirections followed.
type page struct {
	Status int
	Header http.Header
	Body   string
	URL    *url.URL // where the browser ended
}

func (b *browser) do(method, path string, body io.Reader, header map[string]string) *page {
	b.t.Helper()
	req, err := http.NewRequest(method, b.base.String()+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return &page{Status: resp.StatusCode, Header: resp.Header, Body: string(data), URL: resp.Request.URL}
}

func (b *browser) get(path string) *page { return b.do("GET", path, nil, nil) }

func (b *browser) post(path string, form url.Values) *page {
	return b.do("POST", path, strings.NewReader(form.Encode()), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
}

// cookie is the value of a cookie the browser would send to path.
func (b *browser) cookie(path, name string) string {
	for _, c := range b.jar.Cookies(b.base.ResolveReference(&url.URL{Path: path})) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// setCookie puts a cookie in the browser, as an earlier answer would have.
func (b *browser) setCookie(name, value string) {
	b.jar.SetCookies(b.base, []*http.Cookie{{Name: name, Value: value, Path: "/"}})
}

var csrfField = regexp.MustCompile(`<form class="login"[^>]*>\s*<input type="hidden" name="csrf_token" value="([^"]+)">`)

// formToken opens the login page and reads its form's CSRF token.
func (b *browser) formToken() string {
	b.t.Helper()
	p := b.get("/login")
	p.expect(b.t, http.StatusOK)
	m := csrfField.FindStringSubmatch(p.Body)
	if m == nil {
		b.t.Fatalf("no CSRF token in the login form: %s", p.Body)
	}
	return m[1]
}

// login fills in the login form and sends it.
func (b *browser) login(name, pw, next string) *page {
	b.t.Helper()
	form := url.Values{"user": {name}, "password": {pw}, "csrf_token": {b.formToken()}}
	if next != "" {
		form.Set("next", next)
	}
	return b.post("/login", form)
}

// info is GET /api/session.
type info struct {
	User      string       `json:"user"`
	Grants    []auth.Grant `json:"grants"`
	CSRFToken string       `json:"csrfToken"`
	Expires   time.Time    `json:"expires"`
	Method    string       `json:"method"`
}

func (b *browser) info() (*page, info) {
	b.t.Helper()
	p := b.get("/api/session")
	var in info
	if p.Status == http.StatusOK {
		if err := json.Unmarshal([]byte(p.Body), &in); err != nil {
			b.t.Fatalf("GET /api/session: %v: %s", err, p.Body)
		}
	}
	return p, in
}

func (p *page) expect(t *testing.T, status int) *page {
	t.Helper()
	if p.Status != status {
		t.Fatalf("status %d, want %d; at %s; body: %s", p.Status, status, p.URL, clip(p.Body))
	}
	return p
}

func (p *page) contains(t *testing.T, parts ...string) *page {
	t.Helper()
	for _, s := range parts {
		if !strings.Contains(p.Body, s) {
			t.Errorf("the page lacks %q: %s", s, clip(p.Body))
		}
	}
	return p
}

func clip(s string) string {
	if len(s) > 3000 {
		return s[:3000] + "…"
	}
	return s
}

// audited waits for the audit log and returns its entries of action.
func audited(t *testing.T, s *apitest.Server, action string) []auth.Entry {
	t.Helper()
	ctx := context.Background()
	if err := s.App.Audit.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	es, err := s.App.Audit.Entries(ctx, auth.Filter{Tenants: []string{auth.AllTenants}})
	if err != nil {
		t.Fatal(err)
	}
	var out []auth.Entry
	for _, e := range es {
		if e.Action == action {
			out = append(out, e)
		}
	}
	return out
}

func TestPasswordLogin(t *testing.T) {
	s := start(t, nil)
	user(t, s, "ed", password, auth.Grant{Role: auth.RoleEditor})
	s.Post("/ngsi-ld/v1/entities", `{"id": "urn:ngsi-ld:Thing:0", "type": "Thing"}`, nil).Expect(t, http.StatusCreated)
	b := newBrowser(t, s.URL)

	// Not logged in: the API says who to ask.
	p, _ := b.info()
	p.expect(t, http.StatusUnauthorized).contains(t, "Unauthorized", "log in at /login")
	b.get("/ngsi-ld/v1/entities?type=Thing").expect(t, http.StatusUnauthorized)

	// The login leads to the next page, which the session cookie opens.
	p = b.login("ed", password, "/ngsi-ld/v1/entities?type=Thing").expect(t, http.StatusOK)
	if p.URL.Path != "/ngsi-ld/v1/entities" || !strings.Contains(p.Body, "urn:ngsi-ld:Thing:0") {
		t.Fatalf("after the login: %s %s", p.URL, p.Body)
	}
	p, in := b.info()
	p.expect(t, http.StatusOK)
	if in.User != "ed" || len(in.Grants) != 1 || in.Grants[0].Role != auth.RoleEditor || in.Method != "password" ||
		len(in.CSRFToken) != 43 || time.Until(in.Expires) < 29*time.Minute || time.Until(in.Expires) > 31*time.Minute {
		t.Errorf("GET /api/session: %+v", in)
	}
	if cc := p.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("GET /api/session Cache-Control %q", cc)
	}

	// A write with the cookie needs the session's CSRF token.
	write := func(header map[string]string) *page {
		h := map[string]string{"Content-Type": "application/json"}
		for k, v := range header {
			h[k] = v
		}
		return b.do("POST", "/ngsi-ld/v1/entities", strings.NewReader(entity), h)
	}
	write(nil).expect(t, http.StatusForbidden).contains(t, "CSRF", "X-CSRF-Token")
	write(map[string]string{"X-CSRF-Token": "forged" + in.CSRFToken[6:]}).expect(t, http.StatusForbidden)
	s.Get(thing, nil).Expect(t, http.StatusNotFound) // nothing was created
	write(map[string]string{"X-CSRF-Token": in.CSRFToken}).expect(t, http.StatusCreated)
	s.Get(thing, nil).Expect(t, http.StatusOK)
	// Reading needs no token.
	b.get(thing).expect(t, http.StatusOK)

	// An Authorization header comes first: the cookie is not looked at.
	viewerKey := func() string {
		user(t, s, "vi", "", auth.Grant{Role: auth.RoleViewer})
		k, _, err := s.App.Auth.CreateKey(context.Background(), "vi", "k", []auth.Grant{{Role: auth.RoleViewer}}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		return k
	}()
	b.do("DELETE", thing, nil, map[string]string{"Authorization": "Bearer " + viewerKey}).expect(t, http.StatusForbidden).contains(t, "vi may not")

	// The login page knows who is logged in and offers to log out.
	b.get("/login").expect(t, http.StatusOK).contains(t, `action="/logout"`, "ed")

	// The logins are in the audit log, with who and from where, and no
	// password anywhere.
	es := audited(t, s, "login")
	if len(es) != 1 || es[0].Who != "ed" || es[0].Status != http.StatusSeeOther || es[0].Outcome != auth.OutcomeOK || es[0].Remote != "127.0.0.1" {
		t.Errorf("login audited as %+v", es)
	}
	all, _ := json.Marshal(audited(t, s, "POST /login"))
	if strings.Contains(string(all), password) {
		t.Errorf("a password in the audit log: %s", all)
	}
}

func TestCookieAttributes(t *testing.T) {
	s := start(t, func(c *app.Config) { c.TrustProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")} })
	user(t, s, "ed", password, auth.Grant{Role: auth.RoleEditor})
	for _, tc := range []struct {
		name   string
		header map[string]string
		secure bool
	}{
		{"plain http", nil, false},
		{"TLS at a trusted proxy", map[string]string{"X-Forwarded-Proto": "https"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBrowser(t, s.URL)
			b.follow = false
			p := b.do("GET", "/login", nil, tc.header).expect(t, http.StatusOK)
			csrf := cookieHeader(p, session.CSRFCookie)
			m := csrfField.FindStringSubmatch(p.Body)
			if csrf == nil || m == nil || csrf.Value != m[1] {
				t.Fatalf("form token %v, cookie %v", m, csrf)
			}
			if !csrf.HttpOnly || csrf.SameSite != http.SameSiteStrictMode || csrf.Path != "/login" || csrf.Secure != tc.secure {
				t.Errorf("CSRF cookie %s", csrf)
			}
			h := map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Cookie": session.CSRFCookie + "=" + csrf.Value}
			for k, v := range tc.header {
				h[k] = v
			}
			form := url.Values{"user": {"ed"}, "password": {password}, "csrf_token": {csrf.Value}}
			p = b.do("POST", "/login", strings.NewReader(form.Encode()), h).expect(t, http.StatusSeeOther)
			c := cookieHeader(p, session.CookieName)
			if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Secure != tc.secure || c.MaxAge != 0 || len(c.Value) != 43 {
				t.Errorf("session cookie %s", c)
			}
			if p.Header.Get("Location") != "/" {
				t.Errorf("Location %q, want /", p.Header.Get("Location"))
			}
		})
	}
}

// cookieHeader is the cookie name an answer sets.
func cookieHeader(p *page, name string) *http.Cookie {
	for _, c := range (&http.Response{Header: p.Header}).Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func TestLoginFailures(t *testing.T) {
	s := start(t, nil)
	user(t, s, "ed", password, auth.Grant{Role: auth.RoleEditor})
	user(t, s, "off", password, auth.Grant{Role: auth.RoleEditor})
	if err := s.App.Auth.SetDisabled(context.Background(), "off", true); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, s.URL)

	// A wrong password: the form again, saying what to do, pointed to by
	// both fields; the name stays, the password does not.
	p := b.login("ed", "wrong password!", "/somewhere").expect(t, http.StatusUnauthorized)
	p.contains(t, `id="login-error"`, `role="alert"`, "Check both and try again",
		`aria-describedby="login-error"`, `value="ed"`, `name="next" value="/somewhere"`)
	if strings.Contains(p.Body, "wrong password!") {
		t.Error("the page shows the password typed")
	}
	if p, _ := b.info(); p.Status != http.StatusUnauthorized {
		t.Errorf("a session after a wrong password: %d", p.Status)
	}
	// Empty fields: each says what is missing.
	b.post("/login", url.Values{"csrf_token": {b.formToken()}}).expect(t, http.StatusBadRequest).contains(t,
		`aria-describedby="user-error"`, `id="user-error"`, "Enter your user name.",
		`aria-describedby="password-error"`, `id="password-error"`, "Enter your password.")
	// A disabled account.
	b.login("off", password, "").expect(t, http.StatusForbidden).contains(t, "disabled", "administrator")

	// Five failures lock the account: 429 with Retry-After, even with the
	// right password.
	for range 4 {
		b.login("ed", "wrong password!", "").expect(t, http.StatusUnauthorized)
	}
	p = b.login("ed", password, "").expect(t, http.StatusTooManyRequests)
	p.contains(t, "locked", "Try again in 15 minutes", "ask an administrator to unlock it")
	if ra := p.Header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("Retry-After %q", ra)
	}

	es := audited(t, s, "login")
	var denied int
	for _, e := range es {
		if e.Outcome == auth.OutcomeDenied && e.Who == "anonymous" {
			denied++
		}
	}
	if denied != 7 { // 5 wrong passwords, the disabled account, the locked one
		t.Errorf("%d denied logins audited, want 7: %+v", denied, es)
	}
}

func TestLoginThrottle(t *testing.T) {
	s := apitest.StartWith(t, t.TempDir(), func(c *app.Config) { c.Auth.LoginBurst = 3; c.Auth.MaxFailures = 100 })
	user(t, s, "ed", password, auth.Grant{Role: auth.RoleEditor})
	b := newBrowser(t, s.URL)
	for range 3 {
		b.login("ed", "wrong password!", "").expect(t, http.StatusUnauthorized)
	}
	p := b.login("ed", password, "").expect(t, http.StatusTooManyRequests)
	p.contains(t, "Too many login attempts from your address", "seconds")
	if p.Header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
}

func TestLoginCSRF(t *testing.T) {
	s := start(t, nil)
	user(t, s, "ed", password, auth.Grant{Role: auth.RoleEditor})
	form := func(tok string) url.Values {
		return url.Values{"user": {"ed"}, "password": {password}, "csrf_token": {tok}}
	}
	for _, tc := range []struct {
		name string
		send func(b *browser) *page
	}{
		{"no cookie, no token", func(b *browser) *page { return b.post("/login", form("")) }},
		{"no cookie, a token", func(b *browser) *page { return b.post("/login", form(strings.Repeat("A", 43))) }},
		{"cookie, no token", func(b *browser) *page { b.formToken(); return b.post("/login", form("")) }},
		{"cookie, another token", func(b *browser) *page {
			tok := b.formToken()
			return b.post("/login", form(tok[:40]+"AAA"))
		}},
		{"a cookie made up", func(b *browser) *page {
			tok := strings.Repeat("B", 43)
			b.jar.SetCookies(b.base, []*http.Cookie{{Name: session.CSRFCookie, Value: tok, Path: "/login"}})
			return b.post("/login", form(strings.Repeat("C", 43)))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBrowser(t, s.URL)
			p := tc.send(b).expect(t, http.StatusForbidden)
			p.contains(t, "The form had expired")
			if p, _ := b.info(); p.Status != http.StatusUnauthorized {
				t.Errorf("a session without the form's token: %d", p.Status)
			}
			// The page that comes back has a token that works.
			m := csrfField.FindStringSubmatch(p.Body)
			if m == nil {
				t.Fatal("no token in the page")
			}
			b.post("/login", form(m[1])).expect(t, http.StatusOK)
			if p, in := b.info(); p.Status != http.StatusOK || in.User != "ed" {
				t.Errorf("after the renewed form: %d %+v", p.Status, in)
			}
		})
	}
}

func TestLogout(t *testing.T) {
	s := start(t, nil)
	user(t, s, "ed", password, auth.Grant{Role: auth.RoleEditor})
	if err := s.App.Auth.SetPublicRead(context.Background(), "", true); err != nil {
		t.Fatal(err)
	}
	s.Post("/ngsi-ld/v1/entities", entity, nil).Expect(t, http.StatusCreated)
	b := newBrowser(t, s.URL)
	b.login("ed", password, "").expect(t, http.StatusOK)
	_, in := b.info()
	old := b.cookie("/", session.CookieName)

	// Logout needs the session's token.
	b.post("/logout", url.Values{}).expect(t, http.StatusForbidden).contains(t, "CSRF")
	b.post("/logout", url.Values{"csrf_token": {strings.Repeat("x", 43)}}).expect(t, http.StatusForbidden)
	if p, _ := b.info(); p.Status != http.StatusOK {
		t.Fatalf("the session ended without its token: %d", p.Status)
	}
	b.follow = false
	p := b.post("/logout", url.Values{"csrf_token": {in.CSRFToken}}).expect(t, http.StatusSeeOther)
	if p.Header.Get("Location") != "/login" {
		t.Errorf("after logout: Location %q", p.Header.Get("Location"))
	}
	if c := cookieHeader(p, session.CookieName); c == nil || c.MaxAge >= 0 {
		t.Errorf("the cookie is not cleared: %v", c)
	}
	b.follow = true
	if b.cookie("/", session.CookieName) != "" {
		t.Error("the browser keeps the cookie")
	}

	// The old cookie opens nothing: its holder is anonymous (not refused),
	// may read a public tenant, and is told to drop it.
	b.setCookie(session.CookieName, old)
	p, _ = b.info()
	p.expect(t, http.StatusUnauthorized)
	if c := cookieHeader(p, session.CookieName); c == nil || c.MaxAge >= 0 {
		t.Errorf("the stale cookie is not cleared: %v", c)
	}
	b.setCookie(session.CookieName, old)
	b.get(thing).expect(t, http.StatusOK)
	b.get("/health").expect(t, http.StatusOK)
	b.do("POST", "/ngsi-ld/v1/entities", strings.NewReader(entity), map[string]string{"Content-Type": "application/json",
		"X-CSRF-Token": in.CSRFToken}).expect(t, http.StatusUnauthorized).contains(t, "authentication required")
	b.get("/login").expect(t, http.StatusOK)
	if b.cookie("/", session.CookieName) != "" {
		t.Error("the login page keeps the stale cookie")
	}

	es := audited(t, s, "logout")
	if len(es) != 1 || es[0].Who != "ed" || es[0].Status != http.StatusSeeOther {
		t.Errorf("logouts audited: %+v", es)
	}
}

func TestSessionTimeouts(t *testing.T) {
	c := &clock{t: time.Now()}
	s := start(t, func(cfg *app.Config) { cfg.Auth.Now = c.Now })
	user(t, s, "ed", password, auth.Grant{Role: auth.RoleEditor})
	b := newBrowser(t, s.URL)

	// 30 minutes without a request end the session.
	b.login("ed", password, "").expect(t, http.StatusOK)
	c.Add(29 * time.Minute)
	if p, _ := b.info(); p.Status != http.StatusOK {
		t.Fatalf("after 29 minutes: %d", p.Status)
	}
	c.Add(29 * time.Minute)
	if p, _ := b.info(); p.Status != http.StatusOK {
		t.Fatalf("29 minutes after the last request: %d", p.Status)
	}
	c.Add(31 * time.Minute)
	if p, _ := b.info(); p.Status != http.StatusUnauthorized {
		t.Fatalf("31 minutes after the last request: %d", p.Status)
	}

	// 12 hours end it, however busy.
	b.login("ed", password, "").expect(t, http.StatusOK)
	for range 12*60/20 - 1 {
		c.Add(20 * time.Minute)
		if p, _ := b.info(); p.Status != http.StatusOK {
			t.Fatalf("a busy session ended early: %d", p.Status)
		}
	}
	c.Add(20 * time.Minute)
	if p, _ := b.info(); p.Status != http.StatusUnauthorized {
		t.Fatalf("after 12 hours: %d", p.Status)
	}
}

func TestSessionFollowsAccount(t *testing.T) {
	s := start(t, nil)
	ctx := context.Background()
	user(t, s, "ed", password, auth.Grant{Role: auth.RoleViewer})
	s.Post("/ngsi-ld/v1/entities", entity, nil).Expect(t, http.StatusCreated)
	b := newBrowser(t, s.URL)
	b.login("ed", password, "").expect(t, http.StatusOK)
	_, in := b.info()
	del := func() *page { return b.do("DELETE", thing, nil, map[string]string{"X-CSRF-Token": in.CSRFToken}) }

	// Rights follow the account's grants.
	del().expect(t, http.StatusForbidden).contains(t, "ed may not")
	if err := s.App.Auth.SetGrants(ctx, "ed", []auth.Grant{{Role: auth.RoleEditor}}); err != nil {
		t.Fatal(err)
	}
	del().expect(t, http.StatusNoContent)

	// A disabled account's session stops working, and does not come back.
	if err := s.App.Auth.SetDisabled(ctx, "ed", true); err != nil {
		t.Fatal(err)
	}
	b.get(thing).expect(t, http.StatusUnauthorized)
	if p, _ := b.info(); p.Status != http.StatusUnauthorized {
		t.Errorf("disabled: %d", p.Status)
	}
	if err := s.App.Auth.SetDisabled(ctx, "ed", false); err != nil {
		t.Fatal(err)
	}
	if p, _ := b.info(); p.Status != http.StatusUnauthorized {
		t.Errorf("enabled again: %d", p.Status)
	}

	// A new password ends the session.
	b.login("ed", password, "").expect(t, http.StatusOK)
	if err := s.App.Auth.SetPassword(ctx, "ed", "another long password"); err != nil {
		t.Fatal(err)
	}
	if p, _ := b.info(); p.Status != http.StatusUnauthorized {
		t.Errorf("after a new password: %d", p.Status)
	}
}

func TestOpenRedirect(t *testing.T) {
	s := start(t, nil)
	user(t, s, "ed", password, auth.Grant{Role: auth.RoleEditor})
	for _, tc := range []struct{ next, want string }{
		{"/ngsi-ld/v1/entities?type=Thing", "/ngsi-ld/v1/entities?type=Thing"},
		{"/console/#/map", "/console/#/map"},
		{"", "/"},
		{"https://evil.example/", "/"},
		{"//evil.example/x", "/"},
		{"///evil.example", "/"},
		{`/\evil.example`, "/"},
		{`\\evil.example`, "/"},
		{"/\t/evil.example", "/"},
		{"/\n/evil.example", "/"},
		{" /x", "/"},
		{"javascript:alert(1)", "/"},
		{"evil.example", "/"},
		{"/login", "/"},
		{"/logout", "/"},
		{"/login/oidc/callback?code=x", "/"},
		{"/%2F%2Fevil.example", "/%2F%2Fevil.example"}, // a path here, not a host
	} {
		t.Run(tc.next, func(t *testing.T) {
			b := newBrowser(t, s.URL)
			tok := b.formToken()
			b.follow = false
			p := b.post("/login", url.Values{"user": {"ed"}, "password": {password}, "csrf_token": {tok}, "next": {tc.next}})
			p.expect(t, http.StatusSeeOther)
			if got := p.Header.Get("Location"); got != tc.want {
				t.Errorf("Location %q, want %q", got, tc.want)
			}
		})
	}
}

func TestStaticFile(t *testing.T) {
	s := start(t, nil)
	b := newBrowser(t, s.URL)
	p := b.get("/static/session/login.css").expect(t, http.StatusOK)
	if !strings.HasPrefix(p.Header.Get("Content-Type"), "text/css") || !strings.Contains(p.Body, "font") {
		t.Errorf("style sheet: %s %q", p.Header.Get("Content-Type"), clip(p.Body))
	}
	b.get("/static/session/nothing.css").expect(t, http.StatusNotFound)
	b.get("/static/session/").expect(t, http.StatusNotFound)
}

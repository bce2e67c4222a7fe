// Package session is how people log in to the web console: the login page
// (Dutch, French, English), password and OpenID Connect logins, the
// session cookie, logout, and the Authenticator the access guard uses, which
// reads the Authorization header as before and otherwise the session
// cookie.
//
// # Cookies
//
//   - zenne_session: the session id (auth.Sessions), HttpOnly,
//     SameSite=Lax, Path=/, Secure when the request came over TLS (to zenne
//     or to a trusted proxy). It has no Max-Age: it goes when the browser
//     closes, and the server ends the session after its idle or absolute
//     timeout anyway.
//   - zenne_csrf: the login form's token (double submit: the form must
//     carry the cookie's value), HttpOnly, SameSite=Strict, Path=/login.
//   - zenne_oidc: the state, nonce and PKCE verifier of a single sign-on
//     under way, signed (HMAC-SHA256), HttpOnly, SameSite=Lax (it must come
//     back with the identity provider's redirect), Path=/login/oidc, ten
//     minutes.
//
// # CSRF
//
// A request authenticated by the session cookie that may change something
// (any method but GET, HEAD, OPTIONS and TRACE) must carry the session's
// CSRF token (GET /api/session tells it) in the X-CSRF-Token header or in
// the csrf_token field of a form: otherwise the guard refuses it with 403
// (auth.ErrCSRF). Requests with an Authorization header are not concerned:
// a browser does not add one by itself.
package session

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/zenne-city/zenne/internal/api/access"
	"github.com/zenne-city/zenne/internal/api/problem"
	"github.com/zenne-city/zenne/internal/auth"
	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/server"
)

// Paths, cookies and fields.
const (
	LoginPath  = "/login"
	LogoutPath = "/logout"
	// InfoPath answers who is logged in, for the console's scripts.
	InfoPath     = "/api/session"
	oidcPath     = "/login/oidc"
	callbackPath = "/login/oidc/callback"
	staticPath   = "/static/session/"

	CookieName  = "zenne_session"
	CSRFCookie  = "zenne_csrf"
	StateCookie = "zenne_oidc"
	CSRFHeader  = "X-CSRF-Token"
	CSRFField   = "csrf_token"

	// home is where a login leads without a (safe) next path.
	home = "/"
	// maxForm bounds the body of the login form.
	maxForm = 64 << 10
)

//go:embed templates/login.html
var templates embed.FS

//go:embed static
var static embed.FS

// Config configures the login layer.
type Config struct {
	// Auth holds the accounts; required.
	Auth *auth.Service
	// Session are the sessions' timeouts (zero: 30 min idle, 12 h at most).
	Session auth.SessionOptions
	// Audit receives every login, failed or not, and every logout (nil:
	// none).
	Audit access.Recorder
	// OIDC configures single sign-on; off when its Issuer is empty.
	OIDC OIDCConfig
	Log  *slog.Logger
	// HTTPClient talks to the identity provider (default: a client with
	// a 10 s timeout).
	HTTPClient *http.Client
	// DiscoveryTimeout bounds the identity provider's discovery at start
	// (default 5 s); when it fails, the discovery is tried again at a
	// single sign-on, at most every DiscoveryRetry (default 30 s).
	DiscoveryTimeout, DiscoveryRetry time.Duration
	// Now is the clock of ID tokens and single sign-ons under way (default
	// time.Now). Sessions follow the clock of Auth.
	Now func() time.Time
}

// Handler serves the login pages and authenticates requests by their
// Authorization header or session cookie.
type Handler struct {
	auth     *auth.Service
	sessions *auth.Sessions
	audit    access.Recorder
	log      *slog.Logger
	now      func() time.Time
	oidc     *oidcLogin // nil: no single sign-on
	page     *template.Template
	static   fs.FS
}

// New returns the login layer. With single sign-on configured it discovers
// the identity provider, waiting at most Config.DiscoveryTimeout: a
// provider that cannot be reached does not stop zenne (single sign-on
// answers 503 until it can be).
func New(ctx context.Context, cfg Config) (*Handler, error) {
	if cfg.Auth == nil {
		return nil, errors.New("session: no accounts (Config.Auth)")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	page, err := template.ParseFS(templates, "templates/login.html")
	if err != nil {
		return nil, fmt.Errorf("session: login page: %w", err)
	}
	st, err := fs.Sub(static, "static")
	if err != nil {
		return nil, err
	}
	h := &Handler{auth: cfg.Auth, sessions: auth.NewSessions(cfg.Auth, cfg.Session), audit: cfg.Audit, log: cfg.Log,
		now: cfg.Now, page: page.Lookup("login.html"), static: st}
	if cfg.OIDC.Issuer != "" {
		if h.oidc, err = newOIDC(ctx, cfg); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// Register registers the login routes, all open: they are how one gets
// rights in the first place.
func (h *Handler) Register(mux *access.Mux) {
	mux.Open("GET "+LoginPath, "the login page: shown to whoever is not logged in yet",
		http.HandlerFunc(h.loginPage))
	mux.Open("POST "+LoginPath, "the login form carries the credentials it checks (per-address throttling, per-account lock-out, "+
		"pre-session CSRF token)", http.HandlerFunc(h.login))
	mux.Open("POST "+LogoutPath, "ends the caller's own session, if any (the guard checks the session's CSRF token)",
		http.HandlerFunc(h.logout))
	mux.Open("GET "+oidcPath, "starts single sign-on for whoever is not logged in yet",
		http.HandlerFunc(h.oidcStart))
	mux.Open("GET "+callbackPath, "the identity provider sends the browser back here; code, state, nonce and ID token are checked",
		http.HandlerFunc(h.oidcCallback))
	mux.Open("GET "+InfoPath, "tells the console who is logged in and the CSRF token of the caller's own session (401 without one)",
		http.HandlerFunc(h.info))
	mux.Open("GET "+staticPath+"{file}", "the login page's style sheet, needed before any login",
		http.HandlerFunc(h.staticFile))
}

// Authenticate tells who makes a request: by its Authorization header when
// it has one (auth.Service.Authenticate), else by its session cookie, else
// anonymous. A cookie of no session (ended, expired, forged) makes the
// request anonymous, so that public pages still answer. A request that
// may change something with a session cookie must carry the session's
// CSRF token: auth.ErrCSRF otherwise. POST /login ignores the cookie: the
// form checks its own token and the password.
func (h *Handler) Authenticate(r *http.Request) (*auth.Principal, error) {
	p, _, err := h.AuthenticateContext(r)
	return p, err
}

type sessionKey struct{}

// AuthenticateContext is Authenticate, and gives the console session it
// found to the handler in the context it returns (sessionFrom).
func (h *Handler) AuthenticateContext(r *http.Request) (*auth.Principal, context.Context, error) {
	ctx := r.Context()
	if _, ok := r.Header["Authorization"]; ok {
		p, err := h.auth.Authenticate(r)
		return p, ctx, err
	}
	id := cookieValue(r, CookieName)
	if id == "" || (r.Method == http.MethodPost && r.URL.Path == LoginPath) {
		return h.auth.Anonymous(), ctx, nil
	}
	p, sess, err := h.sessions.Lookup(ctx, id)
	if errors.Is(err, auth.ErrNoSession) {
		return h.auth.Anonymous(), ctx, nil
	}
	if err != nil {
		h.log.Error("reading a console session", "err", err)
		return nil, ctx, err
	}
	if !safeMethod(r.Method) && !sess.CheckCSRF(csrfToken(r)) {
		return nil, ctx, auth.ErrCSRF
	}
	return p, context.WithValue(ctx, sessionKey{}, &sess), nil
}

// sessionFrom is the console session the request came with (nil: none,
// or credentials in the Authorization header).
func sessionFrom(ctx context.Context) *auth.Session {
	s, _ := ctx.Value(sessionKey{}).(*auth.Session)
	return s
}

// safeMethod reports whether a method changes nothing (RFC 9110).
func safeMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// csrfToken is the CSRF token a request carries: header X-CSRF-Token, or
// field csrf_token of a URL-encoded form body (never the URL, which ends
// up in logs).
func csrfToken(r *http.Request) string {
	if v := r.Header.Get(CSRFHeader); v != "" {
		return v
	}
	ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
	if !strings.EqualFold(strings.TrimSpace(ct), "application/x-www-form-urlencoded") {
		return ""
	}
	if err := r.ParseForm(); err != nil {
		return ""
	}
	return r.PostForm.Get(CSRFField)
}

// cookieValue is the value of the first cookie name, "" if none.
func cookieValue(r *http.Request, name string) string {
	c, err := r.Cookie(name)
	if err != nil {
		return ""
	}
	return c.Value
}

// setCookie sets an HttpOnly cookie; maxAge < 0 deletes it, 0 makes it
// last until the browser closes.
func (h *Handler) setCookie(w http.ResponseWriter, r *http.Request, name, value, path string, maxAge int, same http.SameSite) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: path, MaxAge: maxAge, HttpOnly: true,
		Secure: server.OverTLS(r), SameSite: same})
}

func (h *Handler) setSession(w http.ResponseWriter, r *http.Request, id string) {
	h.setCookie(w, r, CookieName, id, "/", 0, http.SameSiteLaxMode)
}

func (h *Handler) clearSession(w http.ResponseWriter, r *http.Request) {
	h.setCookie(w, r, CookieName, "", "/", -1, http.SameSiteLaxMode)
}

// record appends a login or logout to the audit log.
func (h *Handler) record(r *http.Request, p *auth.Principal, status int, action string) {
	if h.audit != nil {
		h.audit.Record(auth.NewEntry(r, p, auth.AllTenants, status, action))
	}
}

// newToken is 32 random bytes in base64url.
func newToken() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// validToken reports whether s looks like a newToken.
func validToken(s string) bool {
	b, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil && len(b) == 32
}

// loginCSRF returns the login form's token: the zenne_csrf cookie's, or a
// new one set in a new cookie.
func (h *Handler) loginCSRF(w http.ResponseWriter, r *http.Request) string {
	if v := cookieValue(r, CSRFCookie); validToken(v) {
		return v
	}
	tok := newToken()
	h.setCookie(w, r, CSRFCookie, tok, LoginPath, 0, http.SameSiteStrictMode)
	return tok
}

// checkLoginCSRF reports whether the login form carries the token of its
// zenne_csrf cookie (double submit: a site that makes a browser post the
// form cannot read the cookie).
func checkLoginCSRF(r *http.Request) bool {
	c := cookieValue(r, CSRFCookie)
	f := r.PostForm.Get(CSRFField)
	return validToken(c) && subtle.ConstantTimeCompare([]byte(c), []byte(f)) == 1
}

// info answers GET /api/session: the user of the caller's session, their
// grants, the session's CSRF token and when it ends.
func (h *Handler) info(w http.ResponseWriter, r *http.Request) {
	sess := sessionFrom(r.Context())
	if sess == nil {
		if _, ok := r.Header["Authorization"]; !ok && cookieValue(r, CookieName) != "" {
			h.clearSession(w, r) // stale
		}
		unauthorized(w, r)
		return
	}
	p := access.PrincipalFrom(r.Context())
	grants := p.Grants()
	if grants == nil {
		grants = []auth.Grant{}
	}
	body, err := json.Marshal(struct {
		User      string       `json:"user"`
		Grants    []auth.Grant `json:"grants"`
		CSRFToken string       `json:"csrfToken"`
		Expires   time.Time    `json:"expires"`
		Method    string       `json:"method"`
	}{p.User(), grants, sess.CSRFToken(), sess.Ends().UTC(), sess.Method})
	if err != nil {
		problem.WriteError(w, ngsild.Errorf(ngsild.InternalError, "%v", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(body)
}

func unauthorized(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	access.Problem(w, r, access.Refusal{Status: http.StatusUnauthorized,
		Detail: "no console session: log in at " + LoginPath})
}

// logout answers POST /logout: it ends the session of the cookie (the
// guard has checked the CSRF token of a live one), clears the cookie and
// leads to the login page.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	p := access.PrincipalFrom(r.Context())
	if id := cookieValue(r, CookieName); id != "" {
		// With an Authorization header the guard did not look at the
		// cookie, nor at its CSRF token: leave its session alone.
		if _, ok := r.Header["Authorization"]; !ok {
			if err := h.sessions.End(r.Context(), id); err != nil {
				h.log.Error("ending a console session", "err", err, "request_id", w.Header().Get("X-Request-Id"))
				h.record(r, p, http.StatusInternalServerError, "logout")
				http.Error(w, "the session could not be ended: try again", http.StatusInternalServerError)
				return
			}
		}
	}
	h.clearSession(w, r)
	h.record(r, p, http.StatusSeeOther, "logout")
	// Back to the login page in the language the form was in.
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	to := LoginPath
	if r.ParseForm() == nil && languages[r.PostForm.Get("lang")] != nil {
		to += "?lang=" + r.PostForm.Get("lang")
	}
	redirect(w, to)
}

// redirect answers 303 See Other to a local path (SafeNext) or an
// identity provider.
func redirect(w http.ResponseWriter, to string) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Location", to)
	w.WriteHeader(http.StatusSeeOther)
}

// staticFile serves the login page's style sheet.
func (h *Handler) staticFile(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	data, err := fs.ReadFile(h.static, name)
	if err != nil || name == "" || strings.HasPrefix(name, ".") {
		http.NotFound(w, r)
		return
	}
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	if r.Method != http.MethodHead {
		w.Write(data)
	}
}

// pageURL is the address of a login page (in another language, or single
// sign-on) that keeps the next path.
func pageURL(p, lang, next string) string {
	q := url.Values{}
	if lang != "" {
		q.Set("lang", lang)
	}
	if next != "" {
		q.Set("next", next)
	}
	if len(q) == 0 {
		return p
	}
	return p + "?" + q.Encode()
}

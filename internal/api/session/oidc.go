package session

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/zenne-city/zenne/internal/auth"
)

// OIDCConfig configures single sign-on with an OpenID Connect provider
// (Keycloak, Microsoft Entra ID, …): the authorization code flow with PKCE.
// Single sign-on is off when Issuer is empty.
type OIDCConfig struct {
	// Issuer is the provider's issuer URL, whose
	// /.well-known/openid-configuration describes it
	// (e.g. https://sso.example.brussels/realms/zenne).
	Issuer string
	// ClientID and ClientSecret are zenne's client at the provider
	// (ClientSecret may be empty for a public client).
	ClientID, ClientSecret string
	// RedirectURL is zenne's callback as the browser reaches it, registered
	// at the provider: https://<zenne's host>/login/oidc/callback.
	RedirectURL string
	// UsernameClaim is the ID token's claim that names the zenne account
	// (default "preferred_username"; "email" when it is missing, if the
	// address is not marked unverified). Names are taken in lower case.
	UsernameClaim string
	// AutoCreate creates an account, without grants, for a user the
	// provider vouches for and zenne does not know; otherwise an
	// administrator must create the account first.
	AutoCreate bool
}

// stateTTL is how long a single sign-on may take.
const stateTTL = 10 * time.Minute

// oidcLogin is single sign-on with one provider.
type oidcLogin struct {
	cfg      OIDCConfig
	claim    string
	client   *http.Client
	key      []byte // signs the state cookie
	now      func() time.Time
	timeout  time.Duration
	retry    time.Duration
	log      *slog.Logger
	mu       sync.Mutex
	oauth    *oauth2.Config // nil until the provider is discovered
	verifier *oidc.IDTokenVerifier
	lastTry  time.Time
	lastErr  error
	busy     bool
}

func newOIDC(ctx context.Context, cfg Config) (*oidcLogin, error) {
	c := cfg.OIDC
	if c.ClientID == "" || c.RedirectURL == "" {
		return nil, errors.New("single sign-on: give the client id and the redirect URL (https://<host>/login/oidc/callback) with the issuer")
	}
	for _, u := range []string{c.Issuer, c.RedirectURL} {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
			return nil, fmt.Errorf("single sign-on: %q is not an http(s) URL", u)
		}
	}
	o := &oidcLogin{cfg: c, claim: c.UsernameClaim, client: cfg.HTTPClient, now: cfg.Now, log: cfg.Log,
		timeout: cfg.DiscoveryTimeout, retry: cfg.DiscoveryRetry}
	if o.claim == "" {
		o.claim = "preferred_username"
	}
	if o.client == nil {
		o.client = &http.Client{Timeout: 10 * time.Second}
	}
	if o.timeout <= 0 {
		o.timeout = 5 * time.Second
	}
	if o.retry <= 0 {
		o.retry = 30 * time.Second
	}
	// The state cookie's key: from the client secret, which every instance
	// shares, so that a login started on one instance may end on another.
	if c.ClientSecret != "" {
		m := hmac.New(sha256.New, []byte(c.ClientSecret))
		m.Write([]byte("zenne single sign-on state cookie"))
		o.key = m.Sum(nil)
	} else {
		o.key = make([]byte, 32)
		rand.Read(o.key)
	}
	if _, _, err := o.endpoints(ctx); err != nil {
		cfg.Log.Warn("single sign-on: the identity provider cannot be reached; zenne starts without it and tries again at the next single sign-on",
			"issuer", c.Issuer, "err", err)
	}
	return o, nil
}

// endpoints returns the provider's OAuth 2 endpoints and ID token
// verifier, discovering them the first time, and after a failure again
// at most every retry.
func (o *oidcLogin) endpoints(ctx context.Context) (*oauth2.Config, *oidc.IDTokenVerifier, error) {
	o.mu.Lock()
	if o.oauth != nil {
		defer o.mu.Unlock()
		return o.oauth, o.verifier, nil
	}
	if o.busy || (!o.lastTry.IsZero() && o.now().Sub(o.lastTry) < o.retry) {
		err := o.lastErr
		if err == nil {
			err = errors.New("discovery under way")
		}
		o.mu.Unlock()
		return nil, nil, err
	}
	o.busy, o.lastTry = true, o.now()
	o.mu.Unlock()

	ctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, o.client), o.timeout)
	defer cancel()
	p, err := oidc.NewProvider(ctx, o.cfg.Issuer)
	o.mu.Lock()
	defer o.mu.Unlock()
	o.busy = false
	if err != nil {
		o.lastErr = fmt.Errorf("discovering %s: %w", o.cfg.Issuer, err)
		return nil, nil, o.lastErr
	}
	o.oauth = &oauth2.Config{ClientID: o.cfg.ClientID, ClientSecret: o.cfg.ClientSecret, Endpoint: p.Endpoint(),
		RedirectURL: o.cfg.RedirectURL, Scopes: []string{oidc.ScopeOpenID, "profile", "email"}}
	o.verifier = p.Verifier(&oidc.Config{ClientID: o.cfg.ClientID, Now: o.now})
	return o.oauth, o.verifier, nil
}

// oidcState is a single sign-on under way, kept in the browser's
// zenne_oidc cookie.
type oidcState struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"` // PKCE
	Next     string `json:"r,omitempty"`
	Lang     string `json:"l,omitempty"`
	Expires  int64  `json:"e"` // unix seconds
}

// seal encodes and signs a state for its cookie.
func (o *oidcLogin) seal(st oidcState) string {
	data, _ := json.Marshal(st)
	body := base64.RawURLEncoding.EncodeToString(data)
	m := hmac.New(sha256.New, o.key)
	m.Write([]byte(body))
	return body + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// open checks a state cookie's signature and age.
func (o *oidcLogin) open(v string) (oidcState, bool) {
	var st oidcState
	body, sig, ok := strings.Cut(v, ".")
	if !ok || len(v) > 4096 {
		return st, false
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return st, false
	}
	m := hmac.New(sha256.New, o.key)
	m.Write([]byte(body))
	if !hmac.Equal(got, m.Sum(nil)) {
		return st, false
	}
	data, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil || json.Unmarshal(data, &st) != nil || st.State == "" || st.Nonce == "" || st.Verifier == "" {
		return oidcState{}, false
	}
	if o.now().Unix() >= st.Expires {
		return oidcState{}, false
	}
	return st, true
}

// oidcStart answers GET /login/oidc: it sends the browser to the identity
// provider, with a new state, nonce and PKCE challenge.
func (h *Handler) oidcStart(w http.ResponseWriter, r *http.Request) {
	if h.oidc == nil {
		http.NotFound(w, r)
		return
	}
	lang := pickLang(r, "")
	next := SafeNext(r.URL.Query().Get("next"))
	oc, _, err := h.oidc.endpoints(r.Context())
	if err != nil {
		h.log.Warn("single sign-on: the identity provider cannot be reached", "issuer", h.oidc.cfg.Issuer, "err", err)
		pg := h.newPage(w, r, lang, next)
		pg.Error = pg.T.OIDCUnavailable
		w.Header().Set("Retry-After", "30")
		h.render(w, pg, http.StatusServiceUnavailable)
		return
	}
	if len(next) > 1024 {
		next = "" // keep the cookie small
	}
	st := oidcState{State: newToken(), Nonce: newToken(), Verifier: oauth2.GenerateVerifier(), Next: next, Lang: lang,
		Expires: h.now().Add(stateTTL).Unix()}
	h.setCookie(w, r, StateCookie, h.oidc.seal(st), oidcPath, int(stateTTL/time.Second), http.SameSiteLaxMode)
	redirect(w, oc.AuthCodeURL(st.State, oidc.Nonce(st.Nonce), oauth2.S256ChallengeOption(st.Verifier)))
}

// oidcCallback answers GET /login/oidc/callback, where the provider sends
// the browser back: it checks the state, trades the code (with the PKCE
// verifier) for an ID token, verifies the token (signature, issuer,
// audience, expiry, nonce) and starts a session for the account the token
// names.
func (h *Handler) oidcCallback(w http.ResponseWriter, r *http.Request) {
	if h.oidc == nil {
		http.NotFound(w, r)
		return
	}
	st, ok := h.oidc.open(cookieValue(r, StateCookie))
	h.setCookie(w, r, StateCookie, "", oidcPath, -1, http.SameSiteLaxMode) // used once
	lang := pickLang(r, st.Lang)
	t := languages[lang]
	fail := func(status int, msg, why string, err error) {
		if err != nil || why != "" {
			h.log.Warn("single sign-on refused", "why", why, "err", err, "remote", auth.RemoteHost(r))
		}
		h.record(r, nil, status, "login")
		pg := h.newPage(w, r, lang, st.Next)
		pg.Error = msg
		h.render(w, pg, status)
	}
	q := r.URL.Query()
	if !ok {
		fail(http.StatusBadRequest, t.OIDCExpired, "no valid state cookie", nil)
		return
	}
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(st.State)) != 1 {
		fail(http.StatusBadRequest, t.OIDCExpired, "state mismatch", nil)
		return
	}
	if e := q.Get("error"); e != "" {
		fail(http.StatusUnauthorized, fmt.Sprintf(t.OIDCDenied, errorCode(e)), "the provider answered "+errorCode(e), nil)
		return
	}
	oc, verifier, err := h.oidc.endpoints(r.Context())
	if err != nil {
		w.Header().Set("Retry-After", "30")
		fail(http.StatusServiceUnavailable, t.OIDCUnavailable, "", err)
		return
	}
	ctx, cancel := context.WithTimeout(oidc.ClientContext(r.Context(), h.oidc.client), 30*time.Second)
	defer cancel()
	code := q.Get("code")
	if code == "" {
		fail(http.StatusBadRequest, t.OIDCFailed, "no code", nil)
		return
	}
	tok, err := oc.Exchange(ctx, code, oauth2.VerifierOption(st.Verifier))
	if err != nil {
		fail(http.StatusUnauthorized, t.OIDCFailed, "code exchange", err)
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		fail(http.StatusUnauthorized, t.OIDCFailed, "no ID token", nil)
		return
	}
	idt, err := verifier.Verify(ctx, raw)
	if err != nil {
		fail(http.StatusUnauthorized, t.OIDCFailed, "ID token", err)
		return
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(st.Nonce)) != 1 {
		fail(http.StatusUnauthorized, t.OIDCFailed, "nonce mismatch", nil)
		return
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		fail(http.StatusUnauthorized, t.OIDCFailed, "ID token claims", err)
		return
	}
	name := username(claims, h.oidc.claim)
	if name == "" {
		fail(http.StatusForbidden, fmt.Sprintf(t.OIDCNoName, h.oidc.claim), "no user name claim", nil)
		return
	}
	unknown := fmt.Sprintf(t.OIDCUnknown, strings.ToValidUTF8(clip(name, 80), ""))
	if !auth.ValidUserName(name) {
		fail(http.StatusForbidden, unknown, "not a valid account name", nil)
		return
	}
	id, _, p, err := h.sessions.StartExternal(ctx, name, auth.MethodOIDC)
	if errors.Is(err, auth.ErrNotFound) && h.oidc.cfg.AutoCreate {
		if _, err := h.auth.CreateUser(ctx, name, "", nil); err != nil && !errors.Is(err, auth.ErrExists) {
			h.log.Error("single sign-on: creating an account", "user", name, "err", err)
			fail(http.StatusInternalServerError, t.ServerError, "", nil)
			return
		}
		h.log.Info("single sign-on: created an account without grants", "user", name, "issuer", h.oidc.cfg.Issuer)
		id, _, p, err = h.sessions.StartExternal(ctx, name, auth.MethodOIDC)
	}
	switch {
	case errors.Is(err, auth.ErrNotFound):
		fail(http.StatusForbidden, unknown, "unknown account", nil)
		return
	case errors.Is(err, auth.ErrDisabled):
		fail(http.StatusForbidden, t.Disabled, "disabled account", nil)
		return
	case err != nil:
		h.log.Error("single sign-on: starting a session", "user", name, "err", err, "request_id", w.Header().Get("X-Request-Id"))
		fail(http.StatusInternalServerError, t.ServerError, "", nil)
		return
	}
	h.loggedIn(w, r, p, id, st.Next)
}

// username is the account an ID token names: its claim, or its e-mail
// address unless the token says the address is not verified, in lower
// case.
func username(claims map[string]any, claim string) string {
	for _, c := range []string{claim, "email"} {
		v, _ := claims[c].(string)
		v = strings.ToLower(strings.TrimSpace(v))
		if v == "" {
			continue
		}
		if c == "email" {
			switch ev := claims["email_verified"].(type) {
			case bool:
				if !ev {
					continue
				}
			case string:
				if !strings.EqualFold(ev, "true") {
					continue
				}
			}
		}
		return v
	}
	return ""
}

// errorCode is an OAuth error code as the page may show it: the provider's
// answer comes through the browser, so anyone may have written it.
func errorCode(e string) string {
	var b strings.Builder
	for _, c := range clip(e, 64) {
		if c == '_' || c == '-' || c == '.' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') {
			b.WriteRune(c)
		}
	}
	if b.Len() == 0 {
		return "error"
	}
	return b.String()
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

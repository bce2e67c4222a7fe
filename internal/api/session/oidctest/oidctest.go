// Package oidctest is an OpenID Connect provider for tests: discovery,
// JWKS, an authorization endpoint that approves at once, and a token
// endpoint that checks the code, the PKCE verifier and the client secret
// and returns an RS256-signed ID token. It speaks the real protocol, so
// that github.com/coreos/go-oidc accepts it, and lets tests spoil the ID
// token (nonce, audience, expiry, issuer, signature) to see it refused.
package oidctest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Provider is a running test provider.
type Provider struct {
	// URL is the issuer.
	URL                    string
	ClientID, ClientSecret string

	key, foreign *rsa.PrivateKey
	srv          *httptest.Server

	mu       sync.Mutex
	claims   map[string]any
	tamper   func(map[string]any)
	sign     *rsa.PrivateKey
	deny     string
	down     bool
	codes    map[string]*grant
	tokens   int
	requests []string
}

// grant is an authorization code waiting for the token endpoint.
type grant struct {
	challenge, redirect, nonce string
	claims                     map[string]any
	expires                    time.Time
}

// New starts a provider for client id and secret until the test ends. Its
// user is sub "u-1", preferred_username "jan" until SetUser.
func New(t testing.TB, clientID, clientSecret string) *Provider {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p := &Provider{ClientID: clientID, ClientSecret: clientSecret, key: key, foreign: foreign, sign: key,
		claims: map[string]any{"sub": "u-1", "preferred_username": "jan"}, codes: map[string]*grant{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", p.discovery)
	mux.HandleFunc("GET /jwks", p.jwks)
	mux.HandleFunc("GET /authorize", p.authorize)
	mux.HandleFunc("POST /token", p.token)
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.requests = append(p.requests, r.Method+" "+r.URL.Path)
		p.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	p.URL = p.srv.URL
	return p
}

// SetUser sets the claims of the user the provider logs in next (the
// standard claims iss, aud, exp, iat and nonce are added).
func (p *Provider) SetUser(claims map[string]any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.claims = maps.Clone(claims)
}

// Tamper changes the claims of the next ID tokens, after the standard
// ones are set (nil: no more changes).
func (p *Provider) Tamper(f func(claims map[string]any)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tamper = f
}

// SignWithForeignKey signs the next ID tokens with a key the JWKS does
// not hold (or again with the right one).
func (p *Provider) SignWithForeignKey(foreign bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sign = p.key
	if foreign {
		p.sign = p.foreign
	}
}

// Deny makes the authorization endpoint answer with OAuth error code
// ("": approve).
func (p *Provider) Deny(code string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.deny = code
}

// SetDown makes every endpoint answer 503, as an unreachable provider.
func (p *Provider) SetDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
}

// Tokens is how many ID tokens the token endpoint gave.
func (p *Provider) Tokens() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tokens
}

// Requests lists the requests the provider answered ("GET /authorize").
func (p *Provider) Requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.requests...)
}

func (p *Provider) isDown(w http.ResponseWriter) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		http.Error(w, "down for the test", http.StatusServiceUnavailable)
	}
	return p.down
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (p *Provider) discovery(w http.ResponseWriter, r *http.Request) {
	if p.isDown(w) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                p.URL,
		"authorization_endpoint":                p.URL + "/authorize",
		"token_endpoint":                        p.URL + "/token",
		"jwks_uri":                              p.URL + "/jwks",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"code_challenge_methods_supported":      []string{"S256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"scopes_supported":                      []string{"openid", "profile", "email"},
	})
}

func (p *Provider) jwks(w http.ResponseWriter, r *http.Request) {
	if p.isDown(w) {
		return
	}
	writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: &p.key.PublicKey, KeyID: "test-1", Algorithm: string(jose.RS256), Use: "sig"},
	}})
}

// authorize approves at once: back to the client with a code and the
// state, or with the error of Deny.
func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	if p.isDown(w) {
		return
	}
	q := r.URL.Query()
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || redirect.Scheme == "" || redirect.Host == "" {
		http.Error(w, "bad redirect_uri", http.StatusBadRequest)
		return
	}
	if q.Get("client_id") != p.ClientID || q.Get("response_type") != "code" ||
		!strings.Contains(" "+q.Get("scope")+" ", " openid ") {
		http.Error(w, "bad authorization request: "+r.URL.RawQuery, http.StatusBadRequest)
		return
	}
	back := redirect.Query()
	back.Set("state", q.Get("state"))
	p.mu.Lock()
	deny := p.deny
	p.mu.Unlock()
	switch {
	case deny != "":
		back.Set("error", deny)
	case q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("nonce") == "" || q.Get("state") == "":
		back.Set("error", "invalid_request")
	default:
		code := token()
		p.mu.Lock()
		p.codes[code] = &grant{challenge: q.Get("code_challenge"), redirect: q.Get("redirect_uri"), nonce: q.Get("nonce"),
			claims: maps.Clone(p.claims), expires: time.Now().Add(time.Minute)}
		p.mu.Unlock()
		back.Set("code", code)
	}
	redirect.RawQuery = back.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

// token trades a code for an ID token, once, checking the client's
// credentials (HTTP Basic or form), the redirect URI and the PKCE
// verifier.
func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	if p.isDown(w) {
		return
	}
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	id, secret, ok := r.BasicAuth()
	if ok {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != p.ClientID || subtle.ConstantTimeCompare([]byte(secret), []byte(p.ClientSecret)) != 1 {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	}
	if r.PostForm.Get("grant_type") != "authorization_code" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type"})
		return
	}
	p.mu.Lock()
	g := p.codes[r.PostForm.Get("code")]
	delete(p.codes, r.PostForm.Get("code")) // once
	p.mu.Unlock()
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	if g == nil || time.Now().After(g.expires) || g.redirect != r.PostForm.Get("redirect_uri") ||
		base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant"})
		return
	}
	now := time.Now()
	claims := maps.Clone(g.claims)
	claims["iss"] = p.URL
	claims["aud"] = p.ClientID
	claims["iat"] = now.Unix()
	claims["exp"] = now.Add(5 * time.Minute).Unix()
	claims["nonce"] = g.nonce
	p.mu.Lock()
	if p.tamper != nil {
		p.tamper(claims)
	}
	key := p.sign
	p.tokens++
	p.mu.Unlock()
	idToken, err := signJWT(key, claims)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"access_token": token(), "token_type": "Bearer", "expires_in": 300, "id_token": idToken})
}

// signJWT signs claims with RS256.
func signJWT(key *rsa.PrivateKey, claims map[string]any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "test-1"}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

func token() string {
	var b [24]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

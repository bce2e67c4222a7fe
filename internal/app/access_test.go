package app_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/apitest"
	"github.com/zenne-city/zenne/internal/app"
	"github.com/zenne-city/zenne/internal/auth"
)

// keyFor creates the user name with grants and returns an API key with the
// same grants.
func keyFor(t *testing.T, s *apitest.Server, name string, grants ...auth.Grant) string {
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

// openRoutes are the routes anyone may call. A route added as open fails
// TestEveryRouteIsGuarded until it is reviewed and listed here.
var openRoutes = []string{
	"/ngsi-ld/v1/",
	"GET /{$}",
	"GET /api/session",
	"GET /health",
	"GET /health/live",
	"GET /health/ready",
	"GET /metrics",
	"GET /login",
	"GET /login/oidc",
	"GET /login/oidc/callback",
	"GET /ngsi-ld/v1/jsonldContexts",
	"GET /ngsi-ld/v1/jsonldContexts/{id}",
	"GET /static/session/{file}",
	"POST /admin/setup",
	"POST /iot/json",
	"POST /iot/ttn",
	"POST /login",
	"POST /logout",
}

// methodless are the NGSI-LD paths whose other methods answer 405: open,
// since they answer nothing else.
var methodless = regexp.MustCompile(`^/ngsi-ld/v1/[^ ]*$`)

// concrete turns a route pattern into a request path.
func concrete(pattern string) (method, path string) {
	method, path, ok := strings.Cut(pattern, " ")
	if !ok {
		method, path = "GET", pattern
	}
	path = strings.ReplaceAll(path, "{$}", "")
	for _, r := range []struct{ wild, value string }{
		{"{id}", "urn:ngsi-ld:Thing:1"}, {"{attr}", "temperature"}, {"{instanceId}", "urn:ngsi-ld:Instance:1"},
		{"{type}", "Thing"}, {"{name}", "someone"}, {"{tenant}", "t1"},
	} {
		path = strings.ReplaceAll(path, r.wild, r.value)
	}
	return method, path
}

// TestEveryRouteIsGuarded walks every route the server registered and
// proves that each is either on the reviewed list of open routes or
// refuses a caller without credentials (401) and a caller without the
// route's right (403), in ProblemDetails, while a caller with the right
// gets past the guard. Refusals land in the audit log.
func TestEveryRouteIsGuarded(t *testing.T) {
	s := apitest.Start(t)
	routes := s.App.Guard.Routes()
	if len(routes) < 60 {
		t.Fatalf("only %d routes registered", len(routes))
	}
	// Rights on another tenant only: every permission there, none here.
	elsewhere := keyFor(t, s, "elsewhere", auth.Grant{Tenant: "other", Role: auth.RoleAdmin})
	viewer := keyFor(t, s, "viewer", auth.Grant{Role: auth.RoleViewer})
	var open []string
	signedIn := 0
	for _, rt := range routes {
		if rt.Open != "" {
			open = append(open, rt.Pattern)
			continue
		}
		if rt.SignedIn {
			signedIn++
		}
		t.Run(rt.Pattern, func(t *testing.T) {
			method, path := concrete(rt.Pattern)
			body := ""
			if method != "GET" && method != "DELETE" {
				body = "{}"
			}
			req := func(key string) *apitest.Response {
				return s.Do(apitest.Req{Method: method, Path: path, Body: body, Key: key})
			}
			r := req(apitest.NoKey)
			r.ExpectProblem(t, http.StatusUnauthorized, "https://zenne.city/errors/Unauthorized")
			if !strings.Contains(r.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without WWW-Authenticate: %v", r.Header)
			}
			if rt.SignedIn {
				// The caller's own account: any user or key, no right.
				if status := statusOf(t, s, method, path, body); status == http.StatusUnauthorized || status == http.StatusForbidden {
					t.Errorf("a signed-in caller is refused: %d", status)
				}
				return
			}
			req(elsewhere).ExpectProblem(t, http.StatusForbidden, "https://zenne.city/errors/Forbidden")
			if viewerMay := auth.RoleViewer.Permissions()&rt.Perm == rt.Perm && !rt.Platform; !viewerMay {
				req(viewer).ExpectProblem(t, http.StatusForbidden, "https://zenne.city/errors/Forbidden")
			}
			if status := statusOf(t, s, method, path, body); status == http.StatusUnauthorized || status == http.StatusForbidden {
				t.Errorf("the platform administrator is refused: %d", status)
			}
		})
	}
	var unreviewed []string
	for _, p := range open {
		if !slices.Contains(openRoutes, p) && !methodless.MatchString(p) {
			unreviewed = append(unreviewed, p)
		}
	}
	if len(unreviewed) > 0 {
		t.Errorf("open routes not reviewed (list them in openRoutes if they must be open): %v", unreviewed)
	}
	// The refusals are in the audit log, with who tried.
	if err := s.App.Audit.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	es, err := s.App.Audit.Entries(context.Background(), auth.Filter{Who: "elsewhere", Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	if want := len(routes) - len(open) - signedIn; len(es) < want {
		t.Errorf("%d refusals of elsewhere audited, want %d", len(es), want)
	}
	for _, e := range es {
		if e.Outcome != auth.OutcomeDenied || e.Status != http.StatusForbidden {
			t.Errorf("audit entry %+v", e)
			break
		}
	}
}

// statusOf is the status of a request with the admin key, read from the
// headers alone (the live stream never ends).
func statusOf(t *testing.T, s *apitest.Server, method, path, body string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, s.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := s.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// TestTenantIsolation: a key with every right on tenant A can neither read
// nor change tenant B, through entities, queries, history, subscriptions,
// alarm rules, devices or the live stream; with its own tenant it works.
func TestTenantIsolation(t *testing.T) {
	s := apitest.Start(t)
	a := keyFor(t, s, "admin-a", auth.Grant{Tenant: "a", Role: auth.RoleAdmin})
	entity := `{"id": "urn:ngsi-ld:Thing:1", "type": "Thing", "n": {"type": "Property", "value": 1}}`
	for _, tenant := range []string{"a", "b"} {
		s.Do(apitest.Req{Method: "POST", Path: "/ngsi-ld/v1/entities", Body: entity,
			Header: map[string]string{"NGSILD-Tenant": tenant}}).Expect(t, http.StatusCreated)
	}
	sub := `{"type": "Subscription", "entities": [{"type": "Thing"}], "notification": {"endpoint": {"uri": "http://127.0.0.1:1/n"}}}`
	cases := []struct{ method, path, body string }{
		{"GET", "/ngsi-ld/v1/entities?type=Thing", ""},
		{"GET", "/ngsi-ld/v1/entities/urn:ngsi-ld:Thing:1", ""},
		{"POST", "/ngsi-ld/v1/entityOperations/query", `{"type": "Query", "entities": [{"type": "Thing"}]}`},
		{"PATCH", "/ngsi-ld/v1/entities/urn:ngsi-ld:Thing:1/attrs", `{"n": {"type": "Property", "value": 2}}`},
		{"DELETE", "/ngsi-ld/v1/entities/urn:ngsi-ld:Thing:1", ""},
		{"POST", "/ngsi-ld/v1/entityOperations/upsert", "[" + entity + "]"},
		{"GET", "/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:Thing:1", ""},
		{"GET", "/ngsi-ld/v1/types", ""},
		{"POST", "/ngsi-ld/v1/subscriptions", sub},
		{"GET", "/ngsi-ld/v1/subscriptions", ""},
		{"GET", "/alarms/rules", ""},
		{"GET", "/iot/devices", ""},
		{"GET", "/api/stream?tenant=%s", ""},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			for _, tenant := range []string{"b", "a"} {
				path := c.path
				if strings.Contains(path, "%s") {
					path = fmt.Sprintf(path, tenant)
				}
				req, err := http.NewRequest(c.method, s.URL+path, strings.NewReader(c.body))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Authorization", "Bearer "+a)
				req.Header.Set("NGSILD-Tenant", tenant)
				if c.body != "" {
					req.Header.Set("Content-Type", "application/json")
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				res, err := http.DefaultClient.Do(req.WithContext(ctx))
				if err != nil {
					cancel()
					t.Fatal(err)
				}
				res.Body.Close()
				cancel()
				if tenant == "b" && res.StatusCode != http.StatusForbidden {
					t.Errorf("tenant b answered %d to a's key", res.StatusCode)
				}
				if tenant == "a" && (res.StatusCode == http.StatusForbidden || res.StatusCode == http.StatusUnauthorized) {
					t.Errorf("tenant a refused its own key: %d", res.StatusCode)
				}
			}
		})
	}
	// b's entity is as it was.
	r := s.Get("/ngsi-ld/v1/entities/urn:ngsi-ld:Thing:1?options=keyValues", map[string]string{"NGSILD-Tenant": "b"}).Expect(t, http.StatusOK)
	if !strings.Contains(string(r.Body), `"n":1`) {
		t.Errorf("tenant b's entity changed: %s", r.Body)
	}
}

// TestAttacks tries what an attacker would: each is refused with the
// right status, audited, and changes nothing.
func TestAttacks(t *testing.T) {
	s := apitest.StartWith(t, t.TempDir(), func(c *app.Config) { c.AnonymousRateLimit = 5 })
	ctx := context.Background()
	entity := `{"id": "urn:ngsi-ld:Thing:1", "type": "Thing", "n": {"type": "Property", "value": 1}}`
	s.Post("/ngsi-ld/v1/entities", entity, nil).Expect(t, http.StatusCreated)
	if _, err := s.App.Auth.CreateUser(ctx, "an.peeters", "correct horse battery", []auth.Grant{{Role: auth.RoleEditor}}); err != nil {
		t.Fatal(err)
	}
	viewer := keyFor(t, s, "viewer", auth.Grant{Role: auth.RoleViewer})
	revoked := keyFor(t, s, "gone", auth.Grant{Role: auth.RoleEditor})
	id, _ := auth.KeyID(revoked)
	if err := s.App.Auth.RevokeKey(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := s.App.Auth.CreateUser(ctx, "temp", "", []auth.Grant{{Role: auth.RoleEditor}}); err != nil {
		t.Fatal(err)
	}
	expired, _, err := s.App.Auth.CreateKey(ctx, "temp", "short", []auth.Grant{{Role: auth.RoleEditor}}, time.Now().Add(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	otherTenant := keyFor(t, s, "other", auth.Grant{Tenant: "other", Role: auth.RoleEditor})
	time.Sleep(60 * time.Millisecond)

	basic := func(user, pw string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pw))
	}
	patch := `{"n": {"type": "Property", "value": 666}}`
	const path = "/ngsi-ld/v1/entities/urn:ngsi-ld:Thing:1/attrs"
	cases := []struct {
		name, authz string
		status      int
		detail      string
	}{
		{"wrong password", basic("an.peeters", "wrong password!"), 401, "wrong user name or password"},
		{"unknown user", basic("mallory", "whatever it is"), 401, "wrong user name or password"},
		{"revoked key", "Bearer " + revoked, 401, "revoked"},
		{"expired key", "Bearer " + expired, 401, "expired"},
		{"forged key", "Bearer " + revoked[:len(revoked)-4] + "AAAA", 401, "API key"},
		{"not a key", "Bearer eyJhbGciOiJub25lIn0.e30.", 401, "API key"},
		{"unknown scheme", "Digest username=x", 401, "unknown scheme"},
		{"over-long header", "Bearer " + strings.Repeat("a", 5000), 401, "longer than"},
		{"key of another tenant", "Bearer " + otherTenant, 403, "may not write"},
		{"viewer writes", "Bearer " + viewer, 403, "may not write"},
		{"SQL injection in the credentials", basic("admin' OR '1'='1", "x' OR '1'='1"), 401, "wrong user name or password"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := s.Do(apitest.Req{Method: "PATCH", Path: path, Body: patch, Header: map[string]string{"Authorization": c.authz}})
			if r.Status != c.status || !strings.Contains(string(r.Body), c.detail) {
				t.Errorf("answered %d %s, want %d with %q", r.Status, r.Body, c.status, c.detail)
			}
		})
	}
	// Injection in parameters of a reader: precise 400s, never a 500.
	for _, q := range []string{
		"/ngsi-ld/v1/entities?type=Thing&q=n==1;DROP%20TABLE%20entities",
		"/ngsi-ld/v1/entities?type=Thing'%20OR%20'1'='1",
		"/ngsi-ld/v1/entities?id=urn:ngsi-ld:Thing:1'--",
		"/ngsi-ld/v1/entities?type=Thing&attrs=n%22%7D%2C%7B%22x",
	} {
		r := s.Do(apitest.Req{Method: "GET", Path: q, Key: viewer})
		if r.Status >= 500 {
			t.Errorf("%s: %d %s", q, r.Status, r.Body)
		}
	}
	// A huge header block is cut off by the server itself.
	r := s.Do(apitest.Req{Method: "GET", Path: "/ngsi-ld/v1/types", Header: map[string]string{"X-Junk": strings.Repeat("j", 100<<10)}})
	if r.Status != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("100 KiB header: %d", r.Status)
	}
	// Anonymous requests from one address are rate-limited.
	var limited *apitest.Response
	for range 50 {
		if r := s.Do(apitest.Req{Method: "GET", Path: "/ngsi-ld/v1/types", Key: apitest.NoKey}); r.Status == http.StatusTooManyRequests {
			limited = r
			break
		}
	}
	if limited == nil || limited.Header.Get("Retry-After") == "" {
		t.Errorf("50 anonymous requests at once were not limited with Retry-After")
	}
	// Nothing changed.
	r = s.Get("/ngsi-ld/v1/entities/urn:ngsi-ld:Thing:1?options=keyValues", nil).Expect(t, http.StatusOK)
	if !strings.Contains(string(r.Body), `"n":1`) {
		t.Errorf("the entity changed: %s", r.Body)
	}
	// Every refusal is audited; no secret is.
	if err := s.App.Audit.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var export strings.Builder
	if _, err := s.App.Audit.Export(ctx, &export, auth.Filter{}); err != nil {
		t.Fatal(err)
	}
	log := export.String()
	for _, who := range []string{`"who":"viewer"`, `"who":"other"`, `"outcome":"denied"`} {
		if !strings.Contains(log, who) {
			t.Errorf("audit log lacks %s", who)
		}
	}
	for _, secret := range []string{"wrong password!", "correct horse", viewer, revoked, s.AdminKey} {
		if strings.Contains(log, secret) {
			t.Errorf("audit log holds a secret: %q", secret)
		}
	}
}

// TestTypeLimitedEditor: an editor whose grant lists types writes those
// and nothing else, one entity at a time in a batch.
func TestTypeLimitedEditor(t *testing.T) {
	s := apitest.Start(t)
	bin := "https://smartdatamodels.org/dataModel.WasteManagement/WasteContainer"
	key := keyFor(t, s, "waste", auth.Grant{Role: auth.RoleEditor, Types: []string{bin}})
	s.Post("/ngsi-ld/v1/entities", `{"id": "urn:ngsi-ld:Streetlight:1", "type": "Streetlight"}`, nil).Expect(t, http.StatusCreated)
	do := func(method, path, body string) *apitest.Response {
		body = strings.ReplaceAll(body, `"WasteContainer"`, `"`+bin+`"`)
		return s.Do(apitest.Req{Method: method, Path: path, Body: body, Key: key})
	}
	do("POST", "/ngsi-ld/v1/entities", `{"id": "urn:ngsi-ld:WasteContainer:1", "type": "WasteContainer"}`).Expect(t, http.StatusCreated)
	do("POST", "/ngsi-ld/v1/entities", `{"id": "urn:ngsi-ld:Streetlight:2", "type": "Streetlight"}`).
		ExpectProblem(t, http.StatusForbidden, "https://zenne.city/errors/Forbidden")
	do("DELETE", "/ngsi-ld/v1/entities/urn:ngsi-ld:Streetlight:1", "").
		ExpectProblem(t, http.StatusForbidden, "https://zenne.city/errors/Forbidden")
	// Giving a bin a second type it may not write is refused too.
	do("PATCH", "/ngsi-ld/v1/entities/urn:ngsi-ld:WasteContainer:1", `{"type": ["WasteContainer", "Streetlight"]}`).
		ExpectProblem(t, http.StatusForbidden, "https://zenne.city/errors/Forbidden")
	r := do("POST", "/ngsi-ld/v1/entityOperations/upsert", `[{"id": "urn:ngsi-ld:WasteContainer:2", "type": "WasteContainer"},
		{"id": "urn:ngsi-ld:Streetlight:1", "type": "Streetlight", "x": {"type": "Property", "value": 1}}]`)
	if r.Status != http.StatusMultiStatus || !strings.Contains(string(r.Body), "WasteContainer:2") || !strings.Contains(string(r.Body), "Forbidden") {
		t.Errorf("mixed batch: %d %s", r.Status, r.Body)
	}
	s.Get("/ngsi-ld/v1/entities/urn:ngsi-ld:Streetlight:2", nil).Expect(t, http.StatusNotFound)
	if r := s.Get("/ngsi-ld/v1/entities/urn:ngsi-ld:Streetlight:1", nil).Expect(t, http.StatusOK); strings.Contains(string(r.Body), `"x"`) {
		t.Errorf("the streetlight was changed: %s", r.Body)
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key as PEM files.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "zenne test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestTLS: with a certificate zenne serves HTTPS only, with HSTS and the
// other security headers; plain HTTP gets nowhere.
func TestTLS(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	s := apitest.StartWith(t, t.TempDir(), func(c *app.Config) { c.TLSCert, c.TLSKey = certFile, keyFile })
	if !strings.HasPrefix(s.URL, "https://") {
		t.Fatalf("URL %s", s.URL)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	res, err := client.Get(s.URL + "/health")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	for h, want := range map[string]string{
		"Strict-Transport-Security": "max-age=63072000; includeSubDomains",
		"X-Frame-Options":           "DENY",
		"X-Content-Type-Options":    "nosniff",
	} {
		if got := res.Header.Get(h); got != want {
			t.Errorf("%s: %q, want %q", h, got, want)
		}
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP %q", csp)
	}
	plain := "http://" + strings.TrimPrefix(s.URL, "https://")
	if res, err := http.Get(plain + "/health"); err == nil {
		res.Body.Close()
		if res.StatusCode == http.StatusOK {
			t.Errorf("plain HTTP served: %d", res.StatusCode)
		}
	}
}

// TestTrustedProxy: behind a trusted proxy the client's address comes from
// X-Forwarded-For (rate limits, the audit log) and the scheme from
// X-Forwarded-Proto (HSTS); the same headers from anyone else are ignored.
func TestTrustedProxy(t *testing.T) {
	for _, trusted := range []bool{true, false} {
		t.Run(fmt.Sprint("trusted=", trusted), func(t *testing.T) {
			s := apitest.StartWith(t, t.TempDir(), func(c *app.Config) {
				if trusted {
					c.TrustProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
				}
			})
			r := s.Do(apitest.Req{Method: "POST", Path: "/ngsi-ld/v1/entities", Body: `{"id": "urn:ngsi-ld:Thing:1", "type": "Thing"}`,
				Header: map[string]string{"X-Forwarded-For": "198.51.100.1, 203.0.113.9", "X-Forwarded-Proto": "https"}}).Expect(t, http.StatusCreated)
			if hsts := r.Header.Get("Strict-Transport-Security") != ""; hsts != trusted {
				t.Errorf("HSTS %v", hsts)
			}
			if err := s.App.Audit.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			es, err := s.App.Audit.Entries(context.Background(), auth.Filter{})
			if err != nil || len(es) != 1 {
				t.Fatalf("audit %v %v", es, err)
			}
			want := "127.0.0.1"
			if trusted {
				want = "203.0.113.9" // the last hop the proxy saw; the one before could be forged
			}
			if es[0].Remote != want {
				t.Errorf("audited from %s, want %s", es[0].Remote, want)
			}
		})
	}
}

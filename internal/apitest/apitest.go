// Package apitest starts a real zenne server on loopback with a temporary
// data directory and talks HTTP to it, for black-box tests of the APIs. It
// compares responses with golden files (testdata/golden/*.json, rewritten
// with -update) after normalising volatile fields.
package apitest

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/app"
	"github.com/zenne-city/zenne/internal/auth"
	"github.com/zenne-city/zenne/internal/store/postgres/pgtest"
)

var update = flag.Bool("update", false, "rewrite golden files with the responses seen")

// Server is a zenne serving on 127.0.0.1 for one test.
type Server struct {
	URL     string
	App     *app.App
	DataDir string
	// Client sends AdminKey with every request that has no Authorization
	// header of its own.
	Client *http.Client
	// AdminKey is the API key of the platform administrator the server was
	// started with (ZENNE_ADMIN_KEY).
	AdminKey string
	t        testing.TB
}

// NoKey as Req.Key sends a request without credentials.
const NoKey = "-"

// TestPasswords are argon2id costs that keep tests quick (logins of the
// default costs take tens of milliseconds).
var TestPasswords = auth.PasswordParams{Memory: 64, Time: 1, Threads: 1}

// adminKeys keeps one admin key per data directory, so that a restarted
// server keeps its administrator.
var adminKeys sync.Map

func adminKey(dir string) string {
	k, _ := adminKeys.LoadOrStore(dir, auth.NewKeySecret())
	return k.(string)
}

// noKey sends requests whose Authorization header is NoKey without one.
type noKey struct{ next http.RoundTripper }

func (t noKey) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Header.Get("Authorization") == NoKey {
		r = r.Clone(r.Context())
		r.Header.Del("Authorization")
	}
	return t.next.RoundTrip(r)
}

// AuthClient returns an HTTP client that sends key with every request
// (NoKey: none), for tests of other principals.
func AuthClient(key string) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: auth.NewBearer(key, noKey{http.DefaultTransport})}
}

// Start runs a server until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	dir := t.TempDir()
	return StartIn(t, dir)
}

// StartIn runs a server on the data directory dir (to test restarts).
func StartIn(t testing.TB, dir string) *Server {
	t.Helper()
	return StartWith(t, dir, nil)
}

// StartWith runs a server on the data directory dir with the
// configuration changed by configure (e.g. an MQTT broker).
func StartWith(t testing.TB, dir string, configure func(*app.Config)) *Server {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	key := adminKey(dir)
	cfg := app.Config{Listen: "127.0.0.1:0", DataDir: dir, StoreURL: storeURL(t, dir), Version: "test", Log: log,
		Env:  func(name string) string { return map[string]string{auth.EnvAdminKey: key}[name] },
		Auth: auth.Options{Password: TestPasswords}}
	if configure != nil {
		configure(&cfg)
	}
	a, err := app.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start zenne: %v", err)
	}
	if err := a.Start(); err != nil {
		t.Fatalf("start zenne: %v", err)
	}
	// Ready as a load balancer would see it: the embedded store's query
	// index is built (until then /health/ready says 503).
	if err := a.WaitIndexed(context.Background()); err != nil {
		t.Fatalf("start zenne: %v", err)
	}
	s := &Server{URL: a.URL(), App: a, DataDir: dir, Client: AuthClient(key), AdminKey: key, t: t}
	t.Cleanup(func() { s.Stop() })
	return s
}

// With ZENNE_TEST_STORE=postgres the servers use the PostgreSQL backend
// (a fresh database per data directory, from ZENNE_TEST_POSTGRES) instead
// of the embedded store, so the same black-box suites prove both.
var (
	dbMu sync.Mutex
	dbs  = map[string]string{} // data directory -> database URL
)

func storeURL(t testing.TB, dir string) string {
	switch backend := os.Getenv("ZENNE_TEST_STORE"); backend {
	case "", "sqlite":
		return ""
	case "postgres":
		dbMu.Lock()
		defer dbMu.Unlock()
		if u, ok := dbs[dir]; ok {
			return u
		}
		u := pgtest.Database(t)
		dbs[dir] = u
		return u
	default:
		t.Fatalf("ZENNE_TEST_STORE=%s: use sqlite or postgres", backend)
		return ""
	}
}

// Backend is the store backend the servers use: "sqlite" or "postgres".
func Backend() string {
	if os.Getenv("ZENNE_TEST_STORE") == "postgres" {
		return "postgres"
	}
	return "sqlite"
}

// Stop shuts the server down (idempotent).
func (s *Server) Stop() {
	if s.App == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s.App.Close(ctx)
	s.App = nil
}

// Response is what the server answered.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body.
func (r *Response) JSON(t testing.TB) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(r.Body, &v); err != nil {
		t.Fatalf("response is not JSON (%v): %s", err, r.Body)
	}
	return v
}

// Req is a request to send. Body may be a string (sent as is), []byte, or
// any other value (JSON-encoded). ContentType defaults to application/json
// when there is a body.
type Req struct {
	Method      string
	Path        string // relative to the server, e.g. /ngsi-ld/v1/entities
	Body        any
	ContentType string
	Header      map[string]string
	// Key is the API key sent ("" the admin key, NoKey none).
	Key string
}

// Do sends the request.
func (s *Server) Do(r Req) *Response {
	s.t.Helper()
	var body io.Reader
	ct := r.ContentType
	switch b := r.Body.(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
	case []byte:
		body = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			s.t.Fatal(err)
		}
		body = bytes.NewReader(data)
	}
	if body != nil && ct == "" {
		ct = "application/json"
	}
	req, err := http.NewRequest(r.Method, s.URL+r.Path, body)
	if err != nil {
		s.t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	for k, v := range r.Header {
		req.Header.Set(k, v)
	}
	if r.Key != "" {
		req.Header.Set("Authorization", "Bearer "+r.Key)
		if r.Key == NoKey {
			req.Header.Set("Authorization", NoKey)
		}
	}
	resp, err := s.Client.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", r.Method, r.Path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: data}
}

// Get, Post, Patch, Put and Delete are shorthands for Do.
func (s *Server) Get(path string, header map[string]string) *Response {
	return s.Do(Req{Method: "GET", Path: path, Header: header})
}
func (s *Server) Post(path string, body any, header map[string]string) *Response {
	return s.Do(Req{Method: "POST", Path: path, Body: body, Header: header})
}
func (s *Server) Patch(path string, body any, header map[string]string) *Response {
	return s.Do(Req{Method: "PATCH", Path: path, Body: body, Header: header})
}
func (s *Server) Put(path string, body any, header map[string]string) *Response {
	return s.Do(Req{Method: "PUT", Path: path, Body: body, Header: header})
}
func (s *Server) Delete(path string, header map[string]string) *Response {
	return s.Do(Req{Method: "DELETE", Path: path, Header: header})
}

// Expect fails the test unless the status is want; it prints the body.
func (r *Response) Expect(t testing.TB, want int) *Response {
	t.Helper()
	if r.Status != want {
		t.Fatalf("status %d, want %d; body: %s", r.Status, want, r.Body)
	}
	return r
}

// ExpectProblem checks an NGSI-LD ProblemDetails of the given status and
// error type: the last segment of an NGSI-LD type (e.g. "BadRequestData"),
// or a whole URI (zenne's own types).
func (r *Response) ExpectProblem(t testing.TB, status int, errType string) {
	t.Helper()
	r.Expect(t, status)
	var p struct {
		Type  string `json:"type"`
		Title string `json:"title"`
	}
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatalf("error body is not ProblemDetails JSON: %s", r.Body)
	}
	if !strings.Contains(errType, "://") {
		errType = "https://uri.etsi.org/ngsi-ld/errors/" + errType
	}
	if p.Type != errType {
		t.Fatalf("error type %q, want %s; body: %s", p.Type, errType, r.Body)
	}
	if p.Title == "" {
		t.Fatalf("ProblemDetails without title: %s", r.Body)
	}
}

// LinkHeader is the Link header value for a context URL.
func LinkHeader(url string) string {
	return "<" + url + `>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"`
}

var volatile = regexp.MustCompile(`"(createdAt|modifiedAt)"\s*:\s*"[^"]*"`)

// Normalize replaces volatile values (system timestamps) so a body can be
// compared with a golden file, and indents it.
func Normalize(body []byte) []byte {
	b := volatile.ReplaceAll(body, []byte(`"$1":"<time>"`))
	var v any
	if json.Unmarshal(b, &v) != nil {
		return b
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	enc.Encode(v)
	return out.Bytes()
}

// Golden compares the normalised body with testdata/golden/<name>.json.
func Golden(t testing.TB, name string, body []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name+".json")
	got := Normalize(body)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("golden file %s: %v (run the test with -update to create it)", path, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("response differs from %s (run with -update and review the diff)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

package jsonld

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// noNetwork is an HTTP client whose every request fails at once.
func noNetwork() *http.Client {
	return &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
		return nil, errors.New("network disabled in tests")
	})}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// contextServer serves documents by path and counts requests per path.
type contextServer struct {
	*httptest.Server
	mu    sync.Mutex
	hits  map[string]int
	stall chan struct{} // closed when the test ends; unblocks stalled handlers
}

func newContextServer(t *testing.T, docs map[string]string) *contextServer {
	t.Helper()
	s := &contextServer{hits: map[string]int{}, stall: make(chan struct{})}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.hits[r.URL.Path]++
		s.mu.Unlock()
		if !strings.Contains(r.Header.Get("Accept"), "application/ld+json") {
			http.Error(w, "bad Accept", http.StatusNotAcceptable)
			return
		}
		switch {
		case r.URL.Path == "/slow":
			select {
			case <-s.stall:
			case <-r.Context().Done():
			}
			return
		case strings.HasPrefix(r.URL.Path, "/redirect/"):
			var n int
			fmt.Sscanf(strings.TrimPrefix(r.URL.Path, "/redirect/"), "%d", &n)
			target := "/ok"
			if n > 0 {
				target = fmt.Sprintf("/redirect/%d", n-1)
			}
			http.Redirect(w, r, target, http.StatusFound)
			return
		case r.URL.Path == "/chunked-large":
			w.Header().Set("Content-Type", "application/ld+json")
			fmt.Fprint(w, `{"@context": {"a": "`+strings.Repeat("x", 4096)+`"}}`)
			w.(http.Flusher).Flush()
			return
		}
		doc, ok := docs[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/ld+json")
		fmt.Fprint(w, strings.ReplaceAll(doc, "$BASE", s.URL))
	}))
	t.Cleanup(func() { close(s.stall); s.Close() })
	return s
}

func (s *contextServer) count(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[path]
}

func remoteDocs() map[string]string {
	docs := map[string]string{
		"/ok":              `{"@context": {"myTerm": "https://example.org/myTerm"}}`,
		"/nested/a":        `{"@context": ["b.jsonld", {"fromA": "https://example.org/a"}]}`,
		"/nested/b.jsonld": `{"@context": ["$BASE/ok", {"fromB": "https://example.org/b", "myTerm": "https://example.org/overridden"}]}`,
		"/cycle/a":         `{"@context": "$BASE/cycle/b"}`,
		"/cycle/b":         `{"@context": ["$BASE/cycle/a"]}`,
		"/self":            `{"@context": "/self"}`,
		"/notjson":         `{"@context": {`,
		"/trailing":        `{"@context": {}} {}`,
		"/nocontext":       `{"myTerm": "https://example.org/myTerm"}`,
		"/array":           `[{"@context": {}}]`,
		"/badterm":         `{"@context": {"myTerm": 42}}`,
		"/large":           `{"@context": {"a": "` + strings.Repeat("x", 4096) + `"}}`,
		"/import":          `{"@context": {"@import": "$BASE/ok", "extra": "https://example.org/extra"}}`,
		"/diamond":         `{"@context": ["$BASE/ok", "$BASE/ok", {"d": "https://example.org/d"}]}`,
	}
	for i := 0; i < 12; i++ {
		docs[fmt.Sprintf("/deep/%d", i)] = fmt.Sprintf(`{"@context": ["$BASE/deep/%d", {"t%d": "https://example.org/t%d"}]}`, i+1, i, i)
	}
	docs["/deep/12"] = `{"@context": {}}`
	return docs
}

func TestRemoteContexts(t *testing.T) {
	s := newContextServer(t, remoteDocs())
	r := NewResolver(Options{
		HTTPClient: &http.Client{Timeout: 300 * time.Millisecond},
		MaxSize:    1024,
	})
	tests := []struct {
		name string
		raw  any
		err  error
		term string
		iri  string
	}{
		{"success", s.URL + "/ok", nil, "myTerm", "https://example.org/myTerm"},
		{"in an array with inline", []any{s.URL + "/ok", map[string]any{"x": "https://example.org/x"}}, nil, "x", "https://example.org/x"},
		{"nested relative reference", s.URL + "/nested/a", nil, "fromB", "https://example.org/b"},
		{"nested later wins", s.URL + "/nested/a", nil, "myTerm", "https://example.org/overridden"},
		{"core still wins", []any{s.URL + "/ok", map[string]any{"createdAt": "https://example.org/c"}}, nil, "createdAt", ngsiNS + "createdAt"},
		{"@import", s.URL + "/import", nil, "myTerm", "https://example.org/myTerm"},
		{"same document twice", s.URL + "/diamond", nil, "d", "https://example.org/d"},
		{"depth within limit", s.URL + "/deep/5", nil, "t5", "https://example.org/t5"},
		{"404", s.URL + "/missing", ErrNotAvailable, "", ""},
		{"timeout", s.URL + "/slow", ErrNotAvailable, "", ""},
		{"too large", s.URL + "/large", ErrNotAvailable, "", ""},
		{"too large without Content-Length", s.URL + "/chunked-large", ErrNotAvailable, "", ""},
		{"redirects followed", s.URL + "/redirect/3", nil, "myTerm", "https://example.org/myTerm"},
		{"too many redirects", s.URL + "/redirect/9", ErrNotAvailable, "", ""},
		{"unreachable host", "http://127.0.0.1:1/ctx", ErrNotAvailable, "", ""},
		{"not http", "urn:example:ctx", ErrNotAvailable, "", ""},
		{"invalid JSON", s.URL + "/notjson", ErrInvalid, "", ""},
		{"data after JSON", s.URL + "/trailing", ErrInvalid, "", ""},
		{"no @context", s.URL + "/nocontext", ErrInvalid, "", ""},
		{"document is an array", s.URL + "/array", ErrInvalid, "", ""},
		{"term is a number", s.URL + "/badterm", ErrInvalid, "", ""},
		{"cycle", s.URL + "/cycle/a", ErrInvalid, "", ""},
		{"self reference", s.URL + "/self", ErrInvalid, "", ""},
		{"too deep", s.URL + "/deep/0", ErrInvalid, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := r.Resolve(context.Background(), tc.raw)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.ExpandTerm(tc.term); got != tc.iri {
				t.Errorf("ExpandTerm(%q) = %q, want %q", tc.term, got, tc.iri)
			}
			if got := c.CompactIRI(tc.iri); got != tc.term {
				t.Errorf("CompactIRI(%q) = %q, want %q", tc.iri, got, tc.term)
			}
		})
	}
}

func TestRemoteCaching(t *testing.T) {
	s := newContextServer(t, remoteDocs())
	r := NewResolver(Options{})
	ctx := context.Background()

	var wg sync.WaitGroup
	results := make([]*Context, 50)
	for i := range results {
		wg.Go(func() {
			c, err := r.Resolve(ctx, s.URL+"/ok")
			if err != nil {
				t.Error(err)
			}
			results[i] = c
		})
	}
	wg.Wait()
	for _, c := range results {
		if c != results[0] {
			t.Fatal("concurrent resolutions of one URL built different contexts")
		}
	}
	if n := s.count("/ok"); n != 1 {
		t.Errorf("/ok fetched %d times, want 1", n)
	}
	// Another context referencing the same document uses the document cache.
	if _, err := r.Resolve(ctx, []any{s.URL + "/ok", map[string]any{"x": "https://example.org/x"}}); err != nil {
		t.Fatal(err)
	}
	if n := s.count("/ok"); n != 1 {
		t.Errorf("/ok fetched %d times, want 1", n)
	}
	// A failure is not cached.
	for range 2 {
		if _, err := r.Resolve(ctx, s.URL+"/missing"); !errors.Is(err, ErrNotAvailable) {
			t.Fatalf("err = %v", err)
		}
	}
	if n := s.count("/missing"); n != 2 {
		t.Errorf("/missing fetched %d times, want 2", n)
	}
	r.Flush()
	if _, err := r.Resolve(ctx, s.URL+"/ok"); err != nil {
		t.Fatal(err)
	}
	if n := s.count("/ok"); n != 2 {
		t.Errorf("after Flush /ok fetched %d times, want 2", n)
	}
}

func TestRemoteCacheTTL(t *testing.T) {
	s := newContextServer(t, remoteDocs())
	r := NewResolver(Options{CacheTTL: 20 * time.Millisecond})
	for range 2 {
		if _, err := r.Resolve(context.Background(), s.URL+"/ok"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(40 * time.Millisecond)
	}
	if n := s.count("/ok"); n != 2 {
		t.Errorf("/ok fetched %d times, want 2 (one per TTL)", n)
	}
}

func TestResolveCancelled(t *testing.T) {
	s := newContextServer(t, remoteDocs())
	r := NewResolver(Options{HTTPClient: &http.Client{Timeout: 2 * time.Second}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// The build is shared and outlives a cancelled caller; the caller still gets an answer.
	go func() { _, _ = r.Resolve(context.Background(), s.URL+"/slow") }()
	time.Sleep(20 * time.Millisecond)
	start := time.Now()
	if _, err := r.Resolve(ctx, s.URL+"/slow"); !errors.Is(err, ErrNotAvailable) || !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v", err)
	}
	if time.Since(start) > time.Second {
		t.Error("a cancelled caller waited for the shared build")
	}
	// The caller that started the build stops waiting at its deadline too.
	dctx, dcancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer dcancel()
	start = time.Now()
	if _, err := r.Resolve(dctx, s.URL+"/slow"); !errors.Is(err, ErrNotAvailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v", err)
	}
	if time.Since(start) > time.Second {
		t.Error("the caller waited past its deadline")
	}
}

type fakeRegistry struct {
	docs map[string]string
	err  error
	hits atomic.Int32
}

func (f *fakeRegistry) GetContext(_ context.Context, url string) ([]byte, bool, error) {
	f.hits.Add(1)
	if f.err != nil {
		return nil, false, f.err
	}
	d, ok := f.docs[url]
	return []byte(d), ok, nil
}

func TestRegistry(t *testing.T) {
	s := newContextServer(t, remoteDocs())
	reg := &fakeRegistry{docs: map[string]string{
		s.URL + "/ok": `{"@context": {"myTerm": "https://example.org/fromRegistry"}}`,
		"http://localhost:1026/ngsi-ld/v1/jsonldContexts/x": `{"@context": {"hosted": "https://example.org/hosted"}}`,
		"http://localhost:1026/bad":                         `{"nope": 1}`,
		CoreContext:                                         `{"@context": {}}`,
	}}
	r := NewResolver(Options{Registry: reg})
	ctx := context.Background()

	c, err := r.Resolve(ctx, s.URL+"/ok")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.ExpandTerm("myTerm"); got != "https://example.org/fromRegistry" || s.count("/ok") != 0 {
		t.Errorf("registry not consulted before the network: %q, %d fetches", got, s.count("/ok"))
	}
	c, err = r.Resolve(ctx, "http://localhost:1026/ngsi-ld/v1/jsonldContexts/x")
	if err != nil || c.ExpandTerm("hosted") != "https://example.org/hosted" {
		t.Errorf("hosted context: %v", err)
	}
	if _, err := r.Resolve(ctx, "http://localhost:1026/bad"); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad hosted context: err = %v", err)
	}
	before := reg.hits.Load()
	if _, err := r.Resolve(ctx, []any{CoreContext, SDMContextURL("Alert")}); err != nil {
		t.Fatal(err)
	}
	if reg.hits.Load() != before {
		t.Error("registry consulted for an embedded context")
	}

	broken := NewResolver(Options{Registry: &fakeRegistry{err: errors.New("disk on fire")}})
	if _, err := broken.Resolve(ctx, s.URL+"/ok"); !errors.Is(err, ErrNotAvailable) {
		t.Errorf("registry failure: err = %v", err)
	}
}

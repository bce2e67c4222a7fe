package app_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/app"
	"github.com/zenne-city/zenne/internal/auth"
	"github.com/zenne-city/zenne/internal/store/postgres/pgtest"
)

// TestPostgresAway: while zenne cannot reach PostgreSQL, writes and reads
// get 503 ProblemDetails with Retry-After, and readiness says unavailable;
// when it is back, zenne serves again by itself, and what was stored before
// is still there.
func TestPostgresAway(t *testing.T) {
	db := pgtest.Database(t)
	u, err := url.Parse(db)
	if err != nil {
		t.Fatal(err)
	}
	px := newProxy(t, u.Host)
	u.Host = px.addr()
	key := auth.NewKeySecret() // the administrator's, registered on the first start
	a, err := app.New(context.Background(), app.Config{Listen: "127.0.0.1:0", StoreURL: u.String(), Version: "test", Log: slog.New(slog.DiscardHandler),
		Env: func(name string) string { return map[string]string{auth.EnvAdminKey: key}[name] }})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	defer a.Close(context.Background())
	base := a.URL()
	entity := `{"id":"urn:ngsi-ld:Bin:1","type":"Bin","fillingLevel":{"type":"Property","value":0.4}}`
	if code, body := do(t, key, http.MethodPost, base+"/ngsi-ld/v1/entities", entity); code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, body)
	}

	px.cut()
	patch := `{"fillingLevel":{"type":"Property","value":0.9}}`
	for _, r := range []struct{ method, path, body string }{
		{http.MethodPatch, "/ngsi-ld/v1/entities/urn:ngsi-ld:Bin:1/attrs", patch},
		{http.MethodGet, "/ngsi-ld/v1/entities/urn:ngsi-ld:Bin:1", ""},
		{http.MethodGet, "/ngsi-ld/v1/entities?type=Bin", ""},
	} {
		req, _ := http.NewRequest(r.method, base+r.path, strings.NewReader(r.body))
		if r.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		req.Header.Set("Authorization", "Bearer "+key)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		var pd struct{ Type, Detail string }
		json.Unmarshal(b, &pd)
		if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" || !strings.HasSuffix(pd.Type, "/ServiceUnavailable") {
			t.Errorf("%s %s with PostgreSQL away: %d (Retry-After %q) %s", r.method, r.path, res.StatusCode, res.Header.Get("Retry-After"), b)
		}
	}
	if code, body := do(t, "", http.MethodGet, base+"/health/ready", ""); code != http.StatusServiceUnavailable {
		t.Errorf("readiness with PostgreSQL away: %d %s", code, body)
	}

	px.restore()
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, body := do(t, key, http.MethodPatch, base+"/ngsi-ld/v1/entities/urn:ngsi-ld:Bin:1/attrs", patch)
		if code == http.StatusNoContent {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("PostgreSQL is back but the update still fails: %d %s", code, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	code, body := do(t, key, http.MethodGet, base+"/ngsi-ld/v1/entities/urn:ngsi-ld:Bin:1?options=keyValues", "")
	if code != http.StatusOK || !strings.Contains(body, `"fillingLevel":0.9`) {
		t.Errorf("after recovery: %d %s", code, body)
	}
}

// do sends a request with the API key ("": none) and returns the status
// and body of the answer.
func do(t *testing.T, key, method, u, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// proxy forwards TCP connections to a server and can cut them all and
// refuse new ones, as a database that went away.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go p.serve()
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			c.Close()
			continue
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		go func() { io.Copy(s, c); s.Close() }()
		go func() { io.Copy(c, s); c.Close() }()
	}
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *proxy) restore() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

package access

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/auth"
	"github.com/zenne-city/zenne/internal/store/sqlite"
)

// fixture is a guard over a real auth service on a SQLite file, with a
// platform admin key and a viewer key of tenant "t".
type fixture struct {
	g             *Guard
	audit         *recorder
	admin, viewer string
}

type recorder struct{ entries []auth.Entry }

func (r *recorder) Record(e auth.Entry) { r.entries = append(r.entries, e) }

func newFixture(t testing.TB, lim Limits, now func() time.Time) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "zenne.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc, err := auth.New(ctx, st, auth.Options{Password: auth.PasswordParams{Memory: 64, Time: 1, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	admin := auth.NewKeySecret()
	if err := svc.Bootstrap(ctx, func(n string) string { return map[string]string{auth.EnvAdminKey: admin}[n] }, nil); err != nil {
		t.Fatal(err)
	}
	grants := []auth.Grant{{Tenant: "t", Role: auth.RoleViewer}}
	if _, err := svc.CreateUser(ctx, "vera", "", grants); err != nil {
		t.Fatal(err)
	}
	viewer, _, err := svc.CreateKey(ctx, "vera", "k", grants, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	g := New(svc, Options{Audit: rec, Limits: lim, Now: now})
	m := g.API(HeaderTenant, Problem)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Who", PrincipalFrom(r.Context()).Who())
		w.WriteHeader(http.StatusNoContent)
	})
	m.Handle("GET /things", auth.PermRead, ok)
	m.Handle("POST /things", auth.PermWrite, ok)
	m.Open("GET /open", "a test", ok)
	m.Open("POST /uplink", "a test: devices", ok)
	m.OpenAudited("POST /setup", "a test: audited", ok)
	g.API(nil, Problem).Platform("POST /platform", auth.PermAdmin, ok)
	return &fixture{g: g, audit: rec, admin: admin, viewer: viewer}
}

func (f *fixture) do(method, path, key, tenant string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, nil)
	r.RemoteAddr = "192.0.2.7:5555"
	if key != "" {
		r.Header.Set("Authorization", "Bearer "+key)
	}
	if tenant != "" {
		r.Header.Set("NGSILD-Tenant", tenant)
	}
	w := httptest.NewRecorder()
	f.g.ServeHTTP(w, r)
	return w
}

// TestGuard pins who gets through each kind of route, with the status
// and ProblemDetails type of each refusal and what the audit log records.
func TestGuard(t *testing.T) {
	f := newFixture(t, Limits{}, nil)
	cases := []struct {
		name, method, path, key, tenant string
		status                          int
		problem                         string
		audited                         bool
	}{
		{"viewer reads its tenant", "GET", "/things", "viewer", "t", 204, "", false},
		{"viewer reads another tenant", "GET", "/things", "viewer", "u", 403, "Forbidden", true},
		{"viewer writes", "POST", "/things", "viewer", "t", 403, "Forbidden", true},
		{"anonymous reads", "GET", "/things", "", "t", 401, "Unauthorized", true},
		{"anonymous opens", "GET", "/open", "", "", 204, "", false},
		{"an open write", "POST", "/uplink", "", "", 204, "", false},
		{"an audited open write", "POST", "/setup", "", "", 204, "", true},
		{"bad key on an open route", "GET", "/open", "zk_aaaaaaaaaaaa_" + strings.Repeat("A", 43), "", 401, "Unauthorized", true},
		{"admin writes anywhere", "POST", "/things", "admin", "x", 204, "", true},
		{"malformed tenant", "GET", "/things", "admin", "no spaces", 400, "BadRequestData", false},
		{"viewer on the platform", "POST", "/platform", "viewer", "", 403, "Forbidden", true},
		{"admin on the platform", "POST", "/platform", "admin", "", 204, "", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			key := map[string]string{"viewer": f.viewer, "admin": f.admin}[c.key]
			if key == "" {
				key = c.key
			}
			before := len(f.audit.entries)
			w := f.do(c.method, c.path, key, c.tenant)
			if w.Code != c.status {
				t.Fatalf("status %d, want %d: %s", w.Code, c.status, w.Body)
			}
			if c.problem != "" {
				var p struct{ Type, Detail string }
				if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || !strings.HasSuffix(p.Type, "/"+c.problem) || p.Detail == "" {
					t.Errorf("problem %s, want type %s", w.Body, c.problem)
				}
			}
			if got := len(f.audit.entries) > before; got != c.audited {
				t.Errorf("audited %v, want %v", got, c.audited)
			}
		})
	}
	e := f.audit.entries[len(f.audit.entries)-1]
	if e.Tenant != auth.AllTenants || e.Action != "POST /platform" || e.Who != auth.AdminUser || e.Outcome != auth.OutcomeOK {
		t.Errorf("last entry %+v", e)
	}
}

// TestRateLimits: a key and an anonymous address each have their bucket;
// the refusal says when to come back; open routes are not counted.
func TestRateLimits(t *testing.T) {
	now := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	f := newFixture(t, Limits{PerKey: 2, KeyBurst: 3, PerAddress: 1, AddressBurst: 1}, func() time.Time { return now })
	for i := range 3 {
		if w := f.do("GET", "/things", f.viewer, "t"); w.Code != 204 {
			t.Fatalf("request %d within the burst: %d", i, w.Code)
		}
	}
	w := f.do("GET", "/things", f.viewer, "t")
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "1" {
		t.Fatalf("past the burst: %d Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	// Another key is not slowed down by the first.
	if w := f.do("GET", "/things", f.admin, "t"); w.Code != 204 {
		t.Errorf("admin limited by the viewer's bucket: %d", w.Code)
	}
	now = now.Add(500 * time.Millisecond) // one token back
	if w := f.do("GET", "/things", f.viewer, "t"); w.Code != 204 {
		t.Errorf("after refill: %d", w.Code)
	}
	f.do("GET", "/things", "", "t") // the address's one token
	if w := f.do("GET", "/things", "", "t"); w.Code != http.StatusTooManyRequests {
		t.Errorf("anonymous past its burst: %d", w.Code)
	}
	if w := f.do("GET", "/open", "", ""); w.Code != 204 {
		t.Errorf("open route limited: %d", w.Code)
	}
}

// TestRegisterNeedsAPermission: a route without a right, or an open route
// without its reason, cannot be registered.
func TestRegisterNeedsAPermission(t *testing.T) {
	g := New(nil, Options{})
	m := g.API(nil, Problem)
	for name, reg := range map[string]func(){
		"no permission": func() { m.Handle("GET /x", 0, http.NotFoundHandler()) },
		"unknown bit":   func() { m.Handle("GET /y", auth.PermAll+1, http.NotFoundHandler()) },
		"no reason":     func() { m.Open("GET /z", "", http.NotFoundHandler()) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: registered", name)
				}
			}()
			reg()
		}()
	}
	if len(g.Routes()) != 0 {
		t.Errorf("routes %v", g.Routes())
	}
}

// BenchmarkGuard is what the guard adds to a request with an API key:
// authentication, the rights check and the context (no audit: reads).
func BenchmarkGuard(b *testing.B) {
	f := newFixture(b, Limits{}, nil)
	r := httptest.NewRequest("GET", "/things", nil)
	r.Header.Set("Authorization", "Bearer "+f.viewer)
	r.Header.Set("NGSILD-Tenant", "t")
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		f.g.ServeHTTP(w, r)
	}
}

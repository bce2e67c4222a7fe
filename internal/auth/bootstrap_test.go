package auth

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/zenne-city/zenne/internal/store"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// newKeySecret makes a key secret as an operator would for ZENNE_ADMIN_KEY.
func newKeySecret() string { return NewKeySecret() }

// TestBootstrapTogether: instances started at once on one new store, with
// the same administrator key, all start, and the key works on each.
func TestBootstrapTogether(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Records) {
		ctx := context.Background()
		sec := newKeySecret()
		svcs := make([]*Service, 3)
		errs := make([]error, len(svcs))
		var wg sync.WaitGroup
		for i := range svcs {
			svcs[i] = newService(t, st, newClock(), Options{})
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = svcs[i].Bootstrap(ctx, envOf(map[string]string{EnvAdminKey: sec, EnvAdminPassword: goodPW}), nil)
			}()
		}
		wg.Wait()
		for i, s := range svcs {
			if errs[i] != nil {
				t.Fatalf("instance %d: %v", i, errs[i])
			}
			if err := s.Reload(ctx); err != nil {
				t.Fatal(err)
			}
			if p, err := s.AuthenticateKey(ctx, sec); err != nil || p.User() != AdminUser {
				t.Errorf("instance %d: the key: %v", i, err)
			}
		}
	})
}

func TestBootstrapPassword(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Records) {
		ctx := context.Background()
		s := newService(t, st, newClock(), Options{})
		log, buf := logBuffer()
		env := envOf(map[string]string{EnvAdminPassword: goodPW})
		if err := s.Bootstrap(ctx, env, log); err != nil {
			t.Fatal(err)
		}
		p, err := s.Login(ctx, AdminUser, goodPW, "")
		if err != nil || !p.Can(AllTenants, PermAll, nil) || !p.Can(tenantB, PermAdmin, nil) {
			t.Fatalf("admin: %v, %v", p, err)
		}
		if strings.Contains(buf.String(), goodPW) {
			t.Error("the password is in the log")
		}
		// A second start changes nothing, whatever the environment says.
		if err := s.Bootstrap(ctx, envOf(map[string]string{EnvAdminPassword: goodPW2}), log); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Login(ctx, AdminUser, goodPW, ""); err != nil {
			t.Errorf("after a second start: %v", err)
		}
		if pending, _ := s.SetupPending(ctx); pending {
			t.Error("a setup token waits")
		}
	})
	t.Run("weak password", func(t *testing.T) {
		s := newService(t, openSQLite(t), newClock(), Options{})
		if err := s.Bootstrap(context.Background(), envOf(map[string]string{EnvAdminPassword: "admin"}), nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("Bootstrap = %v", err)
		}
		if us, _ := s.Users(context.Background()); len(us) != 0 {
			t.Errorf("users %v", us)
		}
	})
}

var setupTokenRE = regexp.MustCompile(`setupToken=(zs_[A-Za-z0-9_-]{43})`)

func TestBootstrapSetupToken(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Records) {
		ctx := context.Background()
		s := newService(t, st, newClock(), Options{})
		log, buf := logBuffer()
		if err := s.Bootstrap(ctx, envOf(nil), log); err != nil {
			t.Fatal(err)
		}
		out := buf.String()
		m := setupTokenRE.FindAllStringSubmatch(out, -1)
		if len(m) != 1 || strings.Count(out, "zs_") != 1 {
			t.Fatalf("want the token logged once:\n%s", out)
		}
		if !strings.Contains(out, "level=WARN") || !strings.Contains(out, "one-time setup token") {
			t.Errorf("want a warning that explains the token:\n%s", out)
		}
		tok := m[0][1]
		if pending, err := s.SetupPending(ctx); !pending || err != nil {
			t.Fatalf("SetupPending = %v, %v", pending, err)
		}
		// The store holds only its hash.
		recs, _ := st.ListRecords(ctx, kindSetup, "", false)
		if len(recs) != 1 || strings.Contains(string(recs[0].Doc), tok[3:]) {
			t.Errorf("stored %v", recs)
		}
		if _, err := s.Setup(ctx, "zs_wrong", "root", goodPW); !errors.Is(err, ErrSetup) {
			t.Errorf("wrong token: %v", err)
		}
		if _, err := s.Setup(ctx, tok, "root", "short"); !errors.Is(err, ErrInvalid) {
			t.Errorf("weak password: %v", err)
		}
		if _, err := s.Setup(ctx, tok, "root", ""); !errors.Is(err, ErrInvalid) {
			t.Errorf("no password: %v", err)
		}
		u, err := s.Setup(ctx, tok, "root", goodPW) // the refusals left it usable
		if err != nil {
			t.Fatal(err)
		}
		if u.Name != "root" || len(u.Grants) != 1 || u.Grants[0].Tenant != AllTenants || u.Grants[0].Role != RoleAdmin {
			t.Errorf("created %+v", u)
		}
		if _, err := s.Setup(ctx, tok, "again", goodPW); !errors.Is(err, ErrSetup) {
			t.Errorf("second use: %v", err)
		}
		if p, err := s.Login(ctx, "root", goodPW, ""); err != nil || !p.Can(AllTenants, PermAdmin, nil) {
			t.Errorf("login: %v", err)
		}
		// Later starts log no token.
		log2, buf2 := logBuffer()
		if err := s.Bootstrap(ctx, envOf(nil), log2); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(buf2.String(), "zs_") {
			t.Errorf("a token after setup:\n%s", buf2)
		}
	})
	t.Run("restart before setup", func(t *testing.T) {
		ctx := context.Background()
		st := openSQLite(t)
		s := newService(t, st, newClock(), Options{})
		log, buf := logBuffer()
		s.Bootstrap(ctx, envOf(nil), log)
		first := setupTokenRE.FindStringSubmatch(buf.String())[1]
		s.Bootstrap(ctx, envOf(nil), log)
		ms := setupTokenRE.FindAllStringSubmatch(buf.String(), -1)
		second := ms[len(ms)-1][1]
		if first == second {
			t.Fatal("the same token twice")
		}
		if _, err := s.Setup(ctx, first, "root", goodPW); !errors.Is(err, ErrSetup) {
			t.Errorf("the older token: %v", err)
		}
		if _, err := s.Setup(ctx, second, "root", goodPW); err != nil {
			t.Errorf("the newer token: %v", err)
		}
	})
}

func TestBootstrapAdminKey(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Records) {
		ctx := context.Background()
		s := newService(t, st, newClock(), Options{})
		log, buf := logBuffer()
		sec := newKeySecret()
		if err := s.Bootstrap(ctx, envOf(map[string]string{EnvAdminKey: sec}), log); err != nil {
			t.Fatal(err)
		}
		p, err := s.Authenticate(request("Bearer "+sec, ""))
		if err != nil || !p.Can(AllTenants, PermAll, nil) || p.User() != AdminUser {
			t.Fatalf("the admin key: %v, %v", p, err)
		}
		if strings.Contains(buf.String(), sec[16:]) || strings.Contains(buf.String(), "zs_") {
			t.Errorf("a secret in the log:\n%s", buf)
		}
		u, _ := s.User(ctx, AdminUser)
		if u.HasPassword {
			t.Error("admin has a password")
		}
		// A second start with the same key is quiet; with another key it
		// warns and registers nothing.
		log2, buf2 := logBuffer()
		if err := s.Bootstrap(ctx, envOf(map[string]string{EnvAdminKey: sec}), log2); err != nil || buf2.String() != "" {
			t.Errorf("second start: %v\n%s", err, buf2)
		}
		other := newKeySecret()
		if err := s.Bootstrap(ctx, envOf(map[string]string{EnvAdminKey: other}), log2); err != nil || !strings.Contains(buf2.String(), "ignored") {
			t.Errorf("another key: %v\n%s", err, buf2)
		}
		if _, err := s.AuthenticateKey(ctx, other); !errors.Is(err, ErrBadKey) {
			t.Errorf("the other key: %v", err)
		}
	})
	t.Run("with a password", func(t *testing.T) {
		ctx := context.Background()
		s := newService(t, openSQLite(t), newClock(), Options{})
		sec := newKeySecret()
		if err := s.Bootstrap(ctx, envOf(map[string]string{EnvAdminKey: sec, EnvAdminPassword: goodPW}), nil); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AuthenticateKey(ctx, sec); err != nil {
			t.Error(err)
		}
		if _, err := s.Login(ctx, AdminUser, goodPW, ""); err != nil {
			t.Error(err)
		}
	})
	t.Run("malformed", func(t *testing.T) {
		for _, bad := range []string{"hunter2hunter2", "zk_short_x", newKeySecret() + "x", strings.ToUpper(newKeySecret())} {
			s := newService(t, openSQLite(t), newClock(), Options{})
			err := s.Bootstrap(context.Background(), envOf(map[string]string{EnvAdminKey: bad, EnvAdminPassword: goodPW}), nil)
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%q: %v", bad, err)
			}
			if strings.Contains(err.Error(), bad) {
				t.Errorf("the error repeats the secret: %v", err)
			}
			if us, _ := s.Users(context.Background()); len(us) != 0 {
				t.Errorf("%q: users %v", bad, us)
			}
		}
	})
}

package auth

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/zenne-city/zenne/internal/store"
)

func TestUserNames(t *testing.T) {
	for _, n := range []string{"admin", "a", "jan.peeters", "j_p-2", "marie@brussels.example", strings.Repeat("a", 64)} {
		if !ValidUserName(n) {
			t.Errorf("%q refused", n)
		}
	}
	for _, n := range []string{"", "Admin", "anonymous", "-x", ".x", "a b", "a:b", "a/b", "é", strings.Repeat("a", 65), "key x"} {
		if ValidUserName(n) {
			t.Errorf("%q accepted", n)
		}
	}
}

func TestUsers(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Records) {
		ctx := context.Background()
		c := newClock()
		s := newService(t, st, c, Options{})
		if _, err := s.CreateUser(ctx, "Bad Name", goodPW, nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("bad name: %v", err)
		}
		if _, err := s.CreateUser(ctx, "alice", "short", nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("short password: %v", err)
		}
		if _, err := s.CreateUser(ctx, "alice", goodPW, []Grant{{Tenant: tenantA, Role: "root"}}); !errors.Is(err, ErrInvalid) {
			t.Errorf("bad grant: %v", err)
		}
		mustUser(t, s, "root", goodPW, Grant{Tenant: AllTenants, Role: RoleAdmin})
		u, err := s.CreateUser(ctx, "alice", goodPW, []Grant{{Tenant: tenantA, Role: RoleViewer}})
		if err != nil {
			t.Fatal(err)
		}
		if !u.HasPassword || u.Disabled || !u.Created.Equal(c.Now()) || len(u.Grants) != 1 {
			t.Errorf("created %+v", u)
		}
		if _, err := s.CreateUser(ctx, "alice", goodPW, nil); !errors.Is(err, ErrExists) {
			t.Errorf("again: %v", err)
		}
		if _, err := s.User(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
			t.Errorf("nobody: %v", err)
		}
		// The password hash never leaves the package.
		doc, _ := st.GetRecord(ctx, kindUser, "", "alice")
		if !strings.Contains(string(doc), "$argon2id$v=19$") || strings.Contains(string(doc), goodPW) {
			t.Errorf("stored %s", doc)
		}
		us, err := s.Users(ctx)
		if err != nil || len(us) != 2 || us[0].Name != "alice" || us[1].Name != "root" {
			t.Errorf("Users = %+v, %v", us, err)
		}
		// The last platform administrator stays.
		if err := s.SetGrants(ctx, "root", []Grant{{Tenant: tenantA, Role: RoleAdmin}}); !errors.Is(err, ErrInvalid) {
			t.Errorf("demoting the last admin: %v", err)
		}
		if err := s.SetDisabled(ctx, "root", true); !errors.Is(err, ErrInvalid) {
			t.Errorf("disabling the last admin: %v", err)
		}
		if err := s.DeleteUser(ctx, "root"); !errors.Is(err, ErrInvalid) {
			t.Errorf("deleting the last admin: %v", err)
		}
		if err := s.SetGrants(ctx, "alice", []Grant{{Tenant: AllTenants, Role: RoleAdmin}}); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteUser(ctx, "root"); err != nil {
			t.Errorf("deleting one of two admins: %v", err)
		}
		// A service account, given a password later.
		mustUser(t, s, "svc", "", Grant{Tenant: tenantA, Role: RoleEditor})
		if _, err := s.Login(ctx, "svc", goodPW, ""); !errors.Is(err, ErrBadCredentials) {
			t.Errorf("login of a service account: %v", err)
		}
		if err := s.SetPassword(ctx, "svc", goodPW2); err != nil {
			t.Fatal(err)
		}
		if p, err := s.Login(ctx, "svc", goodPW2, ""); err != nil || !p.Can(tenantA, PermWrite, []string{typeT1}) {
			t.Errorf("login with the new password: %v", err)
		}
	})
}

func TestPublicRead(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Records) {
		ctx := context.Background()
		s := newService(t, st, newClock(), Options{})
		anon, err := s.Authenticate(request("", ""))
		if err != nil || anon.Kind() != Anonymous || anon.Who() != "anonymous" {
			t.Fatalf("anonymous: %v, %v", anon, err)
		}
		if anon.Can(tenantA, PermRead, nil) {
			t.Fatal("anonymous reads a private tenant")
		}
		if err := s.SetPublicRead(ctx, tenantA, true); err != nil {
			t.Fatal(err)
		}
		if err := s.SetPublicRead(ctx, "", true); err != nil {
			t.Fatal(err)
		}
		if err := s.SetPublicRead(ctx, AllTenants, true); !errors.Is(err, ErrInvalid) {
			t.Errorf("every tenant public: %v", err)
		}
		anon, _ = s.Authenticate(request("", ""))
		if !anon.Can(tenantA, PermRead, nil) || !anon.Can("", PermStream, nil) || anon.Can(tenantB, PermRead, nil) || anon.Can(tenantA, PermWrite, []string{typeT1}) {
			t.Error("public read on A and the default tenant")
		}
		// Another instance reads the setting.
		other := newService(t, st, newClock(), Options{})
		if !other.PublicRead(tenantA) || other.PublicRead(tenantB) {
			t.Error("another instance")
		}
		if err := s.SetPublicRead(ctx, tenantA, false); err != nil {
			t.Fatal(err)
		}
		if s.Anonymous().Can(tenantA, PermRead, nil) {
			t.Error("still public")
		}
	})
}

package auth

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/zenne-city/zenne/internal/store"
)

func basic(user, pw string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pw))
}

func retryAfter(t *testing.T, err error, want error) time.Duration {
	t.Helper()
	var re *RetryError
	if !errors.Is(err, want) || !errors.As(err, &re) {
		t.Fatalf("error %v, want %v as a *RetryError", err, want)
	}
	return re.RetryAfter
}

func TestLockOut(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Records) {
		ctx := context.Background()
		c := newClock()
		s := newService(t, st, c, Options{})
		mustUser(t, s, "alice", goodPW, Grant{Tenant: tenantA, Role: RoleViewer})
		mustUser(t, s, "bob", goodPW, Grant{Tenant: tenantA, Role: RoleViewer})

		// Four failures, then a success: the count starts again.
		for range 4 {
			if _, err := s.Login(ctx, "alice", "wrong password!", "10.0.0.1"); !errors.Is(err, ErrBadCredentials) {
				t.Fatalf("wrong password: %v", err)
			}
		}
		if p, err := s.Login(ctx, "alice", goodPW, "10.0.0.1"); err != nil || p.User() != "alice" || p.Kind() != UserPrincipal {
			t.Fatalf("right password: %v, %v", p, err)
		}
		// Failures spread over more than the window do not lock.
		for range 4 {
			s.Login(ctx, "alice", "wrong password!", "10.0.0.1")
			c.Add(5 * time.Minute)
		}
		if _, err := s.Login(ctx, "alice", "wrong password!", "10.0.0.1"); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("a fifth failure over 20 minutes: %v", err)
		}
		c.Add(6 * time.Minute)
		// Five within 15 minutes lock the account.
		for i := range 5 {
			if _, err := s.Login(ctx, "bob", "wrong password!", "10.0.0.2"); !errors.Is(err, ErrBadCredentials) {
				t.Fatalf("failure %d: %v", i+1, err)
			}
			c.Add(time.Minute)
		}
		// Locked: even the right password is refused, without being
		// checked, with the time left.
		if d := retryAfter(t, func() error { _, err := s.Login(ctx, "bob", goodPW, "10.0.0.3"); return err }(), ErrLocked); d != 14*time.Minute {
			t.Errorf("retry after %v, want 14m", d)
		}
		// Through HTTP Basic too, and on another instance (the count is in
		// the store).
		if _, err := s.Authenticate(request(basic("bob", goodPW), "10.0.0.4")); !errors.Is(err, ErrLocked) {
			t.Errorf("Basic while locked: %v", err)
		}
		other := newService(t, st, c, Options{})
		if _, err := other.Login(ctx, "bob", goodPW, "10.0.0.5"); !errors.Is(err, ErrLocked) {
			t.Errorf("another instance while locked: %v", err)
		}
		// alice is not locked by bob's failures.
		if _, err := s.Login(ctx, "alice", goodPW, "10.0.0.1"); err != nil {
			t.Errorf("alice: %v", err)
		}
		c.Add(14 * time.Minute)
		if _, err := s.Login(ctx, "bob", goodPW, "10.0.0.3"); err != nil {
			t.Errorf("after the lock-out: %v", err)
		}
		// An administrator unlocks.
		for range 5 {
			s.Login(ctx, "bob", "wrong password!", "10.0.0.2")
		}
		if _, err := s.Login(ctx, "bob", goodPW, "10.0.0.3"); !errors.Is(err, ErrLocked) {
			t.Fatalf("locked again: %v", err)
		}
		if err := s.Unlock(ctx, "bob"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Login(ctx, "bob", goodPW, "10.0.0.3"); err != nil {
			t.Errorf("after Unlock: %v", err)
		}
	})
}

func TestLoginErrors(t *testing.T) {
	ctx := context.Background()
	s := newService(t, openSQLite(t), newClock(), Options{MaxFailures: 100})
	mustUser(t, s, "admin", goodPW, Grant{Tenant: AllTenants, Role: RoleAdmin})
	mustUser(t, s, "alice", goodPW, Grant{Tenant: tenantA, Role: RoleViewer})
	if err := s.SetDisabled(ctx, "alice", true); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, user, pw string
		want           error
	}{
		{"unknown user", "nobody", goodPW, ErrBadCredentials},
		{"wrong password", "admin", "wrong password!", ErrBadCredentials},
		{"empty password", "admin", "", ErrBadCredentials},
		{"upper-case name", "ADMIN", goodPW, ErrBadCredentials},
		{"disabled, right password", "alice", goodPW, ErrDisabled},
		{"disabled, wrong password", "alice", "wrong password!", ErrBadCredentials},
		{"very long password", "admin", strings.Repeat("x", 5000), ErrBadCredentials},
		{"very long name", strings.Repeat("a", 5000), goodPW, ErrBadCredentials},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.Login(ctx, tc.user, tc.pw, "10.0.0.1"); !errors.Is(err, tc.want) {
				t.Errorf("Login = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestThrottle(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	s := newService(t, openSQLite(t), c, Options{LoginRate: rate.Every(time.Minute), LoginBurst: 3, MaxFailures: 100})
	mustUser(t, s, "alice", goodPW, Grant{Tenant: tenantA, Role: RoleViewer})
	for i := range 3 {
		if _, err := s.Login(ctx, "alice", "wrong password!", "192.0.2.7"); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("attempt %d: %v", i+1, err)
		}
	}
	// The address has used its attempts: refused before the password is
	// looked at, the right one included.
	if d := retryAfter(t, func() error { _, err := s.Login(ctx, "alice", goodPW, "192.0.2.7"); return err }(), ErrThrottled); d <= 0 || d > time.Minute {
		t.Errorf("retry after %v", d)
	}
	if _, err := s.Authenticate(request(basic("alice", goodPW), "192.0.2.7")); !errors.Is(err, ErrThrottled) {
		t.Errorf("Basic from the throttled address: %v", err)
	}
	// Another address is not throttled; IPv6 addresses of one /64 share.
	if _, err := s.Login(ctx, "alice", goodPW, "192.0.2.8"); err != nil {
		t.Errorf("another address: %v", err)
	}
	for range 3 {
		s.Login(ctx, "alice", "wrong password!", "2001:db8:1:2::1")
	}
	if _, err := s.Login(ctx, "alice", goodPW, "2001:db8:1:2:ffff::9"); !errors.Is(err, ErrThrottled) {
		t.Errorf("the same /64: %v", err)
	}
	if _, err := s.Login(ctx, "alice", goodPW, "2001:db8:1:3::1"); err != nil {
		t.Errorf("another /64: %v", err)
	}
	c.Add(time.Minute)
	if _, err := s.Login(ctx, "alice", goodPW, "192.0.2.7"); err != nil {
		t.Errorf("a minute later: %v", err)
	}
}

// HTTP Basic: a script sends its password with every request; after the
// first check, requests cost no hash and no attempt.
func TestBasicAuthentication(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	s := newService(t, openSQLite(t), c, Options{LoginRate: rate.Every(time.Hour), LoginBurst: 2, MaxFailures: 100})
	mustUser(t, s, "script", goodPW, Grant{Tenant: tenantA, Role: RoleEditor})
	for i := range 20 {
		p, err := s.Authenticate(request(basic("script", goodPW), "198.51.100.1"))
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if p.User() != "script" || !p.Can(tenantA, PermWrite, []string{typeT1}) {
			t.Fatalf("request %d: %q", i, p.User())
		}
	}
	// A wrong password is not remembered as right.
	if _, err := s.Authenticate(request(basic("script", "wrong password!"), "198.51.100.1")); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("wrong password: %v", err)
	}
	// A new password ends the old one at once; the old one is now
	// checked (and the address has used its two attempts).
	if err := s.SetPassword(ctx, "script", goodPW2); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(request(basic("script", goodPW), "198.51.100.1")); !errors.Is(err, ErrThrottled) {
		t.Errorf("the old password: %v", err)
	}
	if _, err := s.Authenticate(request(basic("script", goodPW2), "198.51.100.2")); err != nil {
		t.Errorf("the new password: %v", err)
	}
	// Disabling ends it at once too.
	if err := s.SetDisabled(ctx, "script", true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(request(basic("script", goodPW2), "198.51.100.3")); !errors.Is(err, ErrDisabled) {
		t.Errorf("disabled: %v", err)
	}
	// Cached credentials expire: then the password is checked again,
	// which takes an attempt.
	s.SetDisabled(ctx, "script", false)
	c.Add(basicTTL + time.Second)
	for i, want := range []error{nil, nil, nil, ErrThrottled} {
		if i == 2 || i == 3 {
			c.Add(basicTTL + time.Second)
		}
		if _, err := s.Authenticate(request(basic("script", goodPW2), "198.51.100.4")); !errors.Is(err, want) {
			t.Errorf("request %d: %v, want %v", i, err, want)
		}
	}
}

func TestRehashOnLogin(t *testing.T) {
	ctx := context.Background()
	st := openSQLite(t)
	c := newClock()
	old := newService(t, st, c, Options{Password: PasswordParams{Memory: 32, Time: 1, Threads: 1}})
	mustUser(t, old, "alice", goodPW, Grant{Tenant: tenantA, Role: RoleViewer})
	s := newService(t, st, c, Options{})
	stored := func() string {
		var u storedUser
		if err := s.getJSON(ctx, kindUser, "", "alice", &u); err != nil {
			t.Fatal(err)
		}
		return u.Password
	}
	if h := stored(); !strings.HasPrefix(h, "$argon2id$v=19$m=32,t=1,p=1$") {
		t.Fatalf("stored %q", h)
	}
	if _, err := s.Login(ctx, "alice", "wrong password!", ""); !errors.Is(err, ErrBadCredentials) {
		t.Fatal(err)
	}
	if h := stored(); !strings.HasPrefix(h, "$argon2id$v=19$m=32,") {
		t.Errorf("a failed login rehashed: %q", h)
	}
	if _, err := s.Login(ctx, "alice", goodPW, ""); err != nil {
		t.Fatal(err)
	}
	if h := stored(); !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Errorf("after login, stored %q, want the new parameters", h)
	}
	if _, err := s.Login(ctx, "alice", goodPW, ""); err != nil {
		t.Errorf("after the rehash: %v", err)
	}
}

func TestAuthenticateHeaders(t *testing.T) {
	s := newService(t, openSQLite(t), newClock(), Options{MaxFailures: 1000})
	mustUser(t, s, "alice", goodPW, Grant{Tenant: tenantA, Role: RoleViewer})
	sec, _ := mustKey(t, s, "alice", Grant{Tenant: tenantA, Role: RoleViewer})
	cases := []struct {
		name    string
		headers []string
		kind    PrincipalKind
		err     error
	}{
		{"none", nil, Anonymous, nil},
		{"key", []string{"Bearer " + sec}, KeyPrincipal, nil},
		{"key, scheme in lower case", []string{"bearer " + sec}, KeyPrincipal, nil},
		{"key, two spaces", []string{"Bearer  " + sec}, KeyPrincipal, nil},
		{"basic", []string{basic("alice", goodPW)}, UserPrincipal, nil},
		{"basic, upper case", []string{"BASIC " + base64.StdEncoding.EncodeToString([]byte("alice:"+goodPW))}, UserPrincipal, nil},
		{"basic, wrong password", []string{basic("alice", "nope nope nope")}, 0, ErrBadCredentials},
		{"basic, not base64", []string{"Basic !!!"}, 0, ErrMalformed},
		{"basic, no colon", []string{"Basic " + base64.StdEncoding.EncodeToString([]byte("alice"))}, 0, ErrMalformed},
		{"empty", []string{""}, 0, ErrMalformed},
		{"scheme alone", []string{"Bearer"}, 0, ErrMalformed},
		{"unknown scheme", []string{"Digest username=alice"}, 0, ErrMalformed},
		{"a JWT", []string{"Bearer eyJhbGciOiJIUzI1NiJ9.e30.x"}, 0, ErrBadKey},
		{"a damaged key", []string{"Bearer " + sec[:40]}, 0, ErrBadKey},
		{"two headers", []string{"Bearer " + sec, "Bearer " + sec}, 0, ErrMalformed},
		{"over-long", []string{"Bearer " + strings.Repeat("x", 5000)}, 0, ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := request("", "10.9.8.7")
			for _, h := range tc.headers {
				r.Header.Add("Authorization", h)
			}
			p, err := s.Authenticate(r)
			if tc.err != nil {
				if !errors.Is(err, tc.err) || p != nil {
					t.Errorf("Authenticate = %v, %v; want %v", p, err, tc.err)
				}
				return
			}
			if err != nil || p.Kind() != tc.kind {
				t.Errorf("Authenticate = %v, %v; want a principal of kind %v", p, err, tc.kind)
			}
		})
	}
}

func FuzzParseAuthorization(f *testing.F) {
	f.Add("Bearer zk_abcdefghijk2_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("Bearer zk_abcdefghijk2_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_")
	f.Add(basic("alice", goodPW))
	f.Add("Basic Og==")
	f.Add("Basic")
	f.Add("bearer  zk_")
	f.Add("Digest x")
	f.Fuzz(func(t *testing.T, h string) {
		c, err := parseAuthorization(h)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrBadKey) {
				t.Fatalf("parse(%q): unexpected error %v", h, err)
			}
			return
		}
		if len(h) > maxAuthorization {
			t.Fatalf("parse accepted %d bytes", len(h))
		}
		if c.basic {
			if strings.Contains(c.user, ":") {
				t.Fatalf("user %q has a colon", c.user)
			}
			return
		}
		// A key parses to an id and secret that format back to the token.
		tok := formatKey(c.keyID, c.secret)
		if !strings.HasSuffix(h, tok) {
			t.Fatalf("parse(%q) = key %q", h, tok)
		}
		if id, err := KeyID(tok); err != nil || id != c.keyID {
			t.Fatalf("KeyID(%q) = %q, %v", tok, id, err)
		}
	})
}

package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/store"
)

// login logs name in with goodPW and starts a session.
func login(t *testing.T, s *Service, m *Sessions, name string) (string, Session) {
	t.Helper()
	p, err := s.Login(context.Background(), name, goodPW, "10.0.0.1")
	if err != nil {
		t.Fatalf("Login(%s): %v", name, err)
	}
	id, sess, err := m.Start(context.Background(), p, MethodPassword)
	if err != nil {
		t.Fatalf("Start(%s): %v", name, err)
	}
	return id, sess
}

func mustLookup(t *testing.T, m *Sessions, id string) (*Principal, Session) {
	t.Helper()
	p, sess, err := m.Lookup(context.Background(), id)
	if err != nil {
		t.Fatalf("Lookup: %v", err)
	}
	return p, sess
}

func mustEnded(t *testing.T, m *Sessions, id, why string) {
	t.Helper()
	if p, _, err := m.Lookup(context.Background(), id); !errors.Is(err, ErrNoSession) {
		t.Fatalf("%s: Lookup = %v, %v; want ErrNoSession", why, p.Who(), err)
	}
}

func TestSessionLifecycle(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Records) {
		ctx := context.Background()
		c := newClock()
		s := newService(t, st, c, Options{})
		m := NewSessions(s, SessionOptions{})
		mustUser(t, s, "alice", goodPW, Grant{Tenant: tenantA, Role: RoleViewer})

		id, sess := login(t, s, m, "alice")
		if len(id) != 43 || strings.ContainsAny(id, "+/=") {
			t.Errorf("session id %q: want 32 bytes in unpadded base64url", id)
		}
		if sess.User != "alice" || sess.Method != MethodPassword || !sess.Expires.Equal(c.Now().Add(12*time.Hour)) ||
			!sess.IdleExpires.Equal(c.Now().Add(30*time.Minute)) || !sess.Ends().Equal(sess.IdleExpires) {
			t.Errorf("session %+v", sess)
		}
		// The store has a digest of the id, never the id.
		recs, err := st.ListRecords(ctx, kindSession, "", false)
		if err != nil || len(recs) != 1 {
			t.Fatalf("session records: %v, %v", recs, err)
		}
		if recs[0].ID == id || bytes.Contains(recs[0].Doc, []byte(id)) || strings.Contains(recs[0].ID, id) {
			t.Errorf("the session id is stored: %s %s", recs[0].ID, recs[0].Doc)
		}
		var d sessionDoc
		if err := json.Unmarshal(recs[0].Doc, &d); err != nil || d.User != "alice" || len(d.CSRF) != 32 || d.Created.IsZero() {
			t.Errorf("session record %s: %v", recs[0].Doc, err)
		}

		p, got := mustLookup(t, m, id)
		if p.User() != "alice" || p.Kind() != UserPrincipal || !p.Can(tenantA, PermRead, nil) || p.Can(tenantA, PermWrite, nil) {
			t.Errorf("principal %s, may write: %v", p.Who(), p.Can(tenantA, PermWrite, nil))
		}
		if got.CSRFToken() != sess.CSRFToken() || !got.CheckCSRF(sess.CSRFToken()) || got.CheckCSRF("") || got.CheckCSRF(sess.CSRFToken()[1:]) {
			t.Errorf("CSRF token: %q vs %q", got.CSRFToken(), sess.CSRFToken())
		}
		// Rights follow the account's current grants.
		if err := s.SetGrants(ctx, "alice", []Grant{{Tenant: tenantA, Role: RoleEditor}}); err != nil {
			t.Fatal(err)
		}
		if p, _ := mustLookup(t, m, id); !p.Can(tenantA, PermWrite, nil) {
			t.Error("new grants do not apply to the session")
		}
		// Logout.
		if err := m.End(ctx, id); err != nil {
			t.Fatal(err)
		}
		mustEnded(t, m, id, "after End")
		if err := m.End(ctx, id); err != nil {
			t.Errorf("End again: %v", err)
		}
		for _, bad := range []string{"", "x", strings.Repeat("A", 43), id + "A", strings.Repeat("!", 43)} {
			mustEnded(t, m, bad, "id "+bad)
		}
	})
}

func TestSessionExpiry(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Records) {
		ctx := context.Background()
		c := newClock()
		s := newService(t, st, c, Options{})
		m := NewSessions(s, SessionOptions{})
		mustUser(t, s, "alice", goodPW, Grant{Tenant: tenantA, Role: RoleViewer})

		// Idle: 30 minutes without a request end it.
		id, _ := login(t, s, m, "alice")
		c.Add(30 * time.Minute)
		mustEnded(t, m, id, "after 30 idle minutes")

		// Sliding: a request every 29 minutes keeps it, until 12 hours.
		id, sess := login(t, s, m, "alice")
		start := c.Now()
		for c.Now().Sub(start) < 12*time.Hour-29*time.Minute {
			c.Add(29 * time.Minute)
			_, got := mustLookup(t, m, id)
			if want := c.Now().Add(30 * time.Minute); !got.IdleExpires.Equal(want) || !got.Expires.Equal(sess.Expires) {
				t.Fatalf("at %v: idle until %v (want %v), expires %v", c.Now().Sub(start), got.IdleExpires, want, got.Expires)
			}
		}
		c.Add(29 * time.Minute)
		mustEnded(t, m, id, "after 12 hours")

		// The last request is written at most once a minute.
		id, _ = login(t, s, m, "alice")
		key := func() string { raw, _ := parseSessionID(id); return sessionKey(raw) }()
		seenAt := func() time.Time {
			var d seenDoc
			if err := s.getJSON(ctx, kindSessionSeen, "", key, &d); err != nil && !errors.Is(err, ErrNotFound) {
				t.Fatal(err)
			}
			return d.LastSeen
		}
		c.Add(30 * time.Second)
		mustLookup(t, m, id)
		if !seenAt().IsZero() {
			t.Error("last request written within a minute of the login")
		}
		c.Add(40 * time.Second)
		mustLookup(t, m, id)
		if want := c.Now(); !seenAt().Equal(want) {
			t.Errorf("last request %v, want %v", seenAt(), want)
		}
		c.Add(50 * time.Second)
		mustLookup(t, m, id)
		if want := c.Now().Add(-50 * time.Second); !seenAt().Equal(want) {
			t.Errorf("last request %v, want %v (not rewritten within a minute)", seenAt(), want)
		}
		// A last-request write after a logout does not bring the session
		// back.
		if err := m.End(ctx, id); err != nil {
			t.Fatal(err)
		}
		doc, _ := json.Marshal(seenDoc{LastSeen: c.Now()})
		if err := st.PutRecord(ctx, kindSessionSeen, "", key, doc); err != nil {
			t.Fatal(err)
		}
		mustEnded(t, m, id, "last request written after the logout")
	})
}

func TestSessionEndsWithAccount(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Records) {
		ctx := context.Background()
		c := newClock()
		s := newService(t, st, c, Options{})
		m := NewSessions(s, SessionOptions{})
		mustUser(t, s, "root", goodPW, Grant{Tenant: AllTenants, Role: RoleAdmin})
		mustUser(t, s, "alice", goodPW, Grant{Tenant: tenantA, Role: RoleViewer})

		// Disabled: ended, and for good.
		id, _ := login(t, s, m, "alice")
		if err := s.SetDisabled(ctx, "alice", true); err != nil {
			t.Fatal(err)
		}
		mustEnded(t, m, id, "disabled")
		if err := s.SetDisabled(ctx, "alice", false); err != nil {
			t.Fatal(err)
		}
		mustEnded(t, m, id, "disabled, then enabled again")
		// Enabled again before the session is next used: still ended.
		id, _ = login(t, s, m, "alice")
		if err := s.SetDisabled(ctx, "alice", true); err != nil {
			t.Fatal(err)
		}
		if err := s.SetDisabled(ctx, "alice", false); err != nil {
			t.Fatal(err)
		}
		mustEnded(t, m, id, "disabled and enabled again before its next use")

		// Another password ends it; other changes do not.
		id, _ = login(t, s, m, "alice")
		if err := s.SetGrants(ctx, "alice", []Grant{{Tenant: tenantB, Role: RoleViewer}}); err != nil {
			t.Fatal(err)
		}
		mustLookup(t, m, id)
		if err := s.SetPassword(ctx, "alice", goodPW2); err != nil {
			t.Fatal(err)
		}
		mustEnded(t, m, id, "another password")
		if err := s.SetPassword(ctx, "alice", goodPW); err != nil {
			t.Fatal(err)
		}
		mustEnded(t, m, id, "the old password again")

		// Deleted: ended, and an account made again under the name does not
		// inherit it.
		id, _ = login(t, s, m, "alice")
		if err := s.DeleteUser(ctx, "alice"); err != nil {
			t.Fatal(err)
		}
		c.Add(time.Second)
		mustUser(t, s, "alice", goodPW, Grant{Tenant: tenantA, Role: RoleAdmin})
		mustEnded(t, m, id, "deleted and made again")

		// EndUser ends all of a user's sessions, not others'.
		a1, _ := login(t, s, m, "alice")
		a2, _ := login(t, s, m, "alice")
		r1, _ := login(t, s, m, "root")
		if n, err := m.EndUser(ctx, "alice"); err != nil || n != 2 {
			t.Errorf("EndUser = %d, %v; want 2", n, err)
		}
		mustEnded(t, m, a1, "EndUser")
		mustEnded(t, m, a2, "EndUser")
		mustLookup(t, m, r1)

		// Only a user who logged in gets a session.
		key, _ := mustKey(t, s, "root", Grant{Tenant: tenantA, Role: RoleViewer})
		kp, err := s.Authenticate(request("Bearer "+key, ""))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []*Principal{kp, s.Anonymous(), nil} {
			if _, _, err := m.Start(ctx, p, MethodPassword); !errors.Is(err, ErrInvalid) {
				t.Errorf("Start(%s) = %v, want ErrInvalid", p.Who(), err)
			}
		}
	})
}

func TestSessionExternal(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	s := newService(t, openSQLite(t), c, Options{})
	m := NewSessions(s, SessionOptions{})
	mustUser(t, s, "jan", "", Grant{Tenant: tenantA, Role: RoleEditor}) // no password: provisioned for single sign-on
	mustUser(t, s, "piet", goodPW, Grant{Tenant: tenantA, Role: RoleViewer})
	mustUser(t, s, "off", goodPW)
	if err := s.SetDisabled(ctx, "off", true); err != nil {
		t.Fatal(err)
	}

	id, sess, p, err := m.StartExternal(ctx, "jan", MethodOIDC)
	if err != nil || p.User() != "jan" || !p.Can(tenantA, PermWrite, nil) || sess.Method != MethodOIDC {
		t.Fatalf("StartExternal(jan) = %v, %+v, %v", p.Who(), sess, err)
	}
	if p2, _ := mustLookup(t, m, id); p2.User() != "jan" {
		t.Errorf("looked up %s", p2.Who())
	}
	// Setting a password (or removing it) ends the session, as for anyone.
	if err := s.SetPassword(ctx, "jan", goodPW); err != nil {
		t.Fatal(err)
	}
	mustEnded(t, m, id, "jan got a password")

	if _, _, _, err := m.StartExternal(ctx, "nobody", MethodOIDC); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown account: %v", err)
	}
	if _, _, _, err := m.StartExternal(ctx, "off", MethodOIDC); !errors.Is(err, ErrDisabled) {
		t.Errorf("disabled account: %v", err)
	}
	// A lock-out after wrong passwords does not stop the identity
	// provider's login.
	for range 5 {
		s.Login(ctx, "piet", "wrong password!", "10.0.0.9")
	}
	if _, err := s.Login(ctx, "piet", goodPW, "10.0.0.9"); !errors.Is(err, ErrLocked) {
		t.Fatalf("piet not locked: %v", err)
	}
	if _, _, _, err := m.StartExternal(ctx, "piet", MethodOIDC); err != nil {
		t.Errorf("locked account through the identity provider: %v", err)
	}
}

// TestSessionOtherInstance: a session started on one instance works on
// another whose cache of accounts is behind, and is not ended there on
// stale information.
func TestSessionOtherInstance(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	st := openSQLite(t)
	a := newService(t, st, c, Options{})
	mustUser(t, a, "alice", goodPW, Grant{Tenant: tenantA, Role: RoleViewer})
	b := newService(t, st, c, Options{}) // reloads every hour: its cache stays as it is now
	ma, mb := NewSessions(a, SessionOptions{}), NewSessions(b, SessionOptions{})

	if err := a.SetPassword(ctx, "alice", goodPW2); err != nil {
		t.Fatal(err)
	}
	p, err := a.Login(ctx, "alice", goodPW2, "10.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	id, _, err := ma.Start(ctx, p, MethodPassword)
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := mustLookup(t, mb, id); p.User() != "alice" {
		t.Errorf("on the other instance: %s", p.Who())
	}
	mustLookup(t, ma, id)
	// A user created on another instance since the last reload.
	mustUser(t, a, "bob", goodPW, Grant{Tenant: tenantA, Role: RoleViewer})
	id, _ = login(t, a, ma, "bob")
	if p, _ := mustLookup(t, mb, id); p.User() != "bob" || !p.Can(tenantA, PermRead, nil) {
		t.Errorf("new user on the other instance: %s", p.Who())
	}
	// Logout on one instance ends the session on the other.
	if err := ma.End(ctx, id); err != nil {
		t.Fatal(err)
	}
	mustEnded(t, mb, id, "logged out on the other instance")
}

func TestSessionPrune(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	st := openSQLite(t)
	s := newService(t, st, c, Options{})
	m := NewSessions(s, SessionOptions{PruneEvery: time.Hour})
	mustUser(t, s, "alice", goodPW, Grant{Tenant: tenantA, Role: RoleViewer})
	mustUser(t, s, "bob", goodPW, Grant{Tenant: tenantA, Role: RoleViewer})

	old, _ := login(t, s, m, "alice")
	c.Add(2 * time.Minute)
	mustLookup(t, m, old) // writes its last request
	gone, _ := login(t, s, m, "bob")
	c.Add(40 * time.Minute)
	live, _ := login(t, s, m, "alice")
	if err := s.SetDisabled(ctx, "bob", true); err != nil {
		t.Fatal(err)
	}
	count := func(kind string) int {
		recs, err := st.ListRecords(ctx, kind, "", false)
		if err != nil {
			t.Fatal(err)
		}
		return len(recs)
	}
	// Disabling bob ended his session at once.
	if n := count(kindSession); n != 2 {
		t.Fatalf("%d sessions stored, want 2", n)
	}
	n, err := m.Prune(ctx)
	if err != nil || n != 1 {
		t.Errorf("Prune = %d, %v; want 1 (the idle one)", n, err)
	}
	if n := count(kindSession); n != 1 {
		t.Errorf("%d sessions left, want 1", n)
	}
	if n := count(kindSessionSeen); n != 0 {
		t.Errorf("%d last requests left, want 0", n)
	}
	mustLookup(t, m, live)
	mustEnded(t, m, old, "pruned")
	mustEnded(t, m, gone, "pruned")

	// Starting a session prunes, at most every PruneEvery.
	c.Add(31 * time.Minute) // live has expired
	if err := s.SetDisabled(ctx, "bob", false); err != nil {
		t.Fatal(err)
	}
	login(t, s, m, "bob")
	if n := count(kindSession); n != 1 {
		t.Errorf("%d sessions after a start that pruned, want 1", n)
	}
	c.Add(31 * time.Minute)
	login(t, s, m, "bob")
	if n := count(kindSession); n != 2 {
		t.Errorf("%d sessions after a start within PruneEvery, want 2 (no prune)", n)
	}
}

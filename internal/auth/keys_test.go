package auth

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/store"
)

func TestKeyFormat(t *testing.T) {
	st := openSQLite(t)
	s := newService(t, st, newClock(), Options{})
	mustUser(t, s, "svc", "", Grant{Tenant: tenantA, Role: RoleViewer})
	sec, k := mustKey(t, s, "svc", Grant{Tenant: tenantA, Role: RoleViewer})
	if !regexp.MustCompile(`^zk_[a-z2-7]{12}_[A-Za-z0-9_-]{43}$`).MatchString(sec) {
		t.Fatalf("secret %q", sec)
	}
	if id, err := KeyID(sec); err != nil || id != k.ID || !strings.HasPrefix(sec, "zk_"+k.ID+"_") {
		t.Errorf("KeyID = %q, %v; key %q", id, err, k.ID)
	}
	// Only a hash is stored.
	doc, err := st.GetRecord(context.Background(), kindKey, "", k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(doc), sec[16:]) || strings.Contains(string(doc), sec[16:30]) {
		t.Errorf("the stored key holds its secret: %s", doc)
	}
	// A service account cannot log in.
	if _, err := s.Login(context.Background(), "svc", "", "10.0.0.1"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("login of a service account: %v", err)
	}
}

func TestKeySubsetAndDemotion(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Records) {
		ctx := context.Background()
		s := newService(t, st, newClock(), Options{})
		mustUser(t, s, "admin", goodPW, Grant{Tenant: AllTenants, Role: RoleAdmin})
		mustUser(t, s, "ed", goodPW,
			Grant{Tenant: tenantA, Role: RoleEditor, Types: []string{typeT1, typeT2}},
			Grant{Tenant: tenantB, Role: RoleViewer})

		for _, gs := range [][]Grant{
			{{Tenant: tenantA, Role: RoleEditor}},
			{{Tenant: tenantA, Role: RoleEditor, Types: []string{typeT3}}},
			{{Tenant: tenantA, Role: RoleAdmin}},
			{{Tenant: tenantB, Role: RoleEditor}},
			{{Tenant: "cityC", Role: RoleViewer}},
			{{Tenant: AllTenants, Role: RoleViewer}},
			{{Tenant: tenantA, Role: RoleViewer}, {Tenant: tenantB, Role: RoleOperator}},
		} {
			if _, _, err := s.CreateKey(ctx, "ed", "too much", gs, time.Time{}); !errors.Is(err, ErrNotSubset) {
				t.Errorf("CreateKey(%v) = %v, want ErrNotSubset", gs, err)
			}
		}
		if _, _, err := s.CreateKey(ctx, "ed", "nothing", nil, time.Time{}); !errors.Is(err, ErrInvalid) {
			t.Errorf("a key without grants: %v", err)
		}
		if _, _, err := s.CreateKey(ctx, "nobody", "k", []Grant{{Tenant: tenantA, Role: RoleViewer}}, time.Time{}); !errors.Is(err, ErrNotFound) {
			t.Errorf("a key of nobody: %v", err)
		}

		sec, _ := mustKey(t, s, "ed", Grant{Tenant: tenantA, Role: RoleEditor, Types: []string{typeT1}}, Grant{Tenant: tenantB, Role: RoleViewer})
		p, err := s.Authenticate(request("Bearer "+sec, ""))
		if err != nil {
			t.Fatal(err)
		}
		if p.Kind() != KeyPrincipal || p.User() != "ed" || p.Who() != "key "+p.KeyID()+" of ed" {
			t.Errorf("principal %v %q %q", p.Kind(), p.User(), p.Who())
		}
		check := func(when string, want map[string]bool) {
			t.Helper()
			p, err := s.Authenticate(request("Bearer "+sec, ""))
			if err != nil {
				t.Fatalf("%s: %v", when, err)
			}
			got := map[string]bool{
				"write T1 on A": p.Can(tenantA, PermWrite, []string{typeT1}),
				"write T2 on A": p.Can(tenantA, PermWrite, []string{typeT2}),
				"read A":        p.Can(tenantA, PermRead, nil),
				"read B":        p.Can(tenantB, PermRead, nil),
				"write T1 on B": p.Can(tenantB, PermWrite, []string{typeT1}),
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s: %s = %v, want %v", when, k, got[k], v)
				}
			}
		}
		check("created", map[string]bool{"write T1 on A": true, "write T2 on A": false, "read A": true, "read B": true, "write T1 on B": false})

		// Demoting the owner demotes the key at once.
		if err := s.SetGrants(ctx, "ed", []Grant{{Tenant: tenantA, Role: RoleViewer}}); err != nil {
			t.Fatal(err)
		}
		check("owner demoted", map[string]bool{"write T1 on A": false, "read A": true, "read B": false})
		// Promoting the owner beyond the key's grants gives the key no
		// more than its own.
		if err := s.SetGrants(ctx, "ed", []Grant{{Tenant: AllTenants, Role: RoleAdmin}}); err != nil {
			t.Fatal(err)
		}
		check("owner promoted", map[string]bool{"write T1 on A": true, "write T2 on A": false, "read A": true, "read B": true, "write T1 on B": false})
		// A disabled owner's keys do nothing.
		if err := s.SetDisabled(ctx, "ed", true); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Authenticate(request("Bearer "+sec, "")); !errors.Is(err, ErrBadKey) {
			t.Errorf("key of a disabled owner: %v", err)
		}
		if _, _, err := s.CreateKey(ctx, "ed", "k", []Grant{{Tenant: tenantA, Role: RoleViewer}}, time.Time{}); !errors.Is(err, ErrDisabled) {
			t.Errorf("a new key of a disabled owner: %v", err)
		}
		if err := s.SetDisabled(ctx, "ed", false); err != nil {
			t.Fatal(err)
		}
		check("owner enabled", map[string]bool{"write T1 on A": true})
		// Deleting the owner deletes the key.
		if err := s.DeleteUser(ctx, "ed"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Authenticate(request("Bearer "+sec, "")); !errors.Is(err, ErrBadKey) {
			t.Errorf("key of a deleted owner: %v", err)
		}
		if ks, err := s.Keys(ctx, "ed"); err != nil || len(ks) != 0 {
			t.Errorf("keys of a deleted owner: %v, %v", ks, err)
		}
	})
}

func TestKeyRevocationAndExpiry(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Records) {
		ctx := context.Background()
		c := newClock()
		s := newService(t, st, c, Options{})
		mustUser(t, s, "ops", goodPW, Grant{Tenant: tenantA, Role: RoleOperator})
		viewer := []Grant{{Tenant: tenantA, Role: RoleViewer}}
		sec, k := mustKey(t, s, "ops", viewer...)
		expiring, _, err := s.CreateKey(ctx, "ops", "for an hour", viewer, c.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.CreateKey(ctx, "ops", "expired", viewer, c.Now().Add(-time.Second)); !errors.Is(err, ErrInvalid) {
			t.Errorf("a key that expired already: %v", err)
		}
		for _, tok := range []string{sec, expiring} {
			if _, err := s.AuthenticateKey(ctx, tok); err != nil {
				t.Fatalf("a fresh key: %v", err)
			}
		}
		// A wrong secret for a known id, an unknown id, a damaged secret.
		wrong := sec[:len(sec)-2] + "AA"
		if wrong == sec {
			wrong = sec[:len(sec)-2] + "AQ"
		}
		c.Add(2 * time.Second) // so the unknown id may reload
		for _, tok := range []string{wrong, "zk_aaaaaaaaaaaa_" + sec[16:], sec[:len(sec)-1], sec + "A", strings.ToUpper(sec)} {
			if _, err := s.AuthenticateKey(ctx, tok); !errors.Is(err, ErrBadKey) {
				t.Errorf("AuthenticateKey(%q) = %v, want ErrBadKey", tok, err)
			}
		}
		// Expiry, by the clock.
		c.Add(time.Hour)
		if _, err := s.AuthenticateKey(ctx, expiring); !errors.Is(err, ErrKeyExpired) || !errors.Is(err, ErrBadKey) {
			t.Errorf("an expired key: %v", err)
		}
		// Revocation, at once.
		if err := s.RevokeKey(ctx, k.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AuthenticateKey(ctx, sec); !errors.Is(err, ErrKeyRevoked) {
			t.Errorf("a revoked key: %v", err)
		}
		got, err := s.Key(ctx, k.ID)
		if err != nil || got.Revoked.IsZero() {
			t.Errorf("the revoked key reads %+v, %v", got, err)
		}
		if err := s.RevokeKey(ctx, "nosuchkeyid0"); !errors.Is(err, ErrNotFound) {
			t.Errorf("revoking no key: %v", err)
		}
		if err := s.DeleteKey(ctx, k.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Key(ctx, k.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("a deleted key: %v", err)
		}
	})
}

// Two instances share a store: what one changes, the other sees at its
// next reload, and a key it does not know yet makes it look.
func TestKeysAcrossInstances(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Records) {
		ctx := context.Background()
		c := newClock()
		a := newService(t, st, c, Options{})
		b := newService(t, st, c, Options{Reload: 20 * time.Millisecond})
		mustUser(t, a, "ops", goodPW, Grant{Tenant: tenantA, Role: RoleOperator})
		sec, k := mustKey(t, a, "ops", Grant{Tenant: tenantA, Role: RoleViewer})
		// b has not reloaded: the unknown key makes it look (its cache is
		// older than a second).
		c.Add(2 * time.Second)
		if p, err := b.AuthenticateKey(ctx, sec); err != nil || !p.Can(tenantA, PermRead, nil) {
			t.Fatalf("b: %v, %v", p, err)
		}
		if err := a.RevokeKey(ctx, k.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := a.AuthenticateKey(ctx, sec); !errors.Is(err, ErrKeyRevoked) {
			t.Errorf("a, at once: %v", err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			_, err := b.AuthenticateKey(ctx, sec)
			if errors.Is(err, ErrKeyRevoked) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("b still takes the revoked key: %v", err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

func TestKeyLastUse(t *testing.T) {
	ctx := context.Background()
	st := openSQLite(t)
	c := newClock()
	s := newService(t, st, c, Options{})
	mustUser(t, s, "ops", goodPW, Grant{Tenant: tenantA, Role: RoleOperator})
	sec, k := mustKey(t, s, "ops", Grant{Tenant: tenantA, Role: RoleViewer})
	first := c.Now()
	if _, err := s.AuthenticateKey(ctx, sec); err != nil {
		t.Fatal(err)
	}
	if err := s.flushUses(ctx); err != nil {
		t.Fatal(err)
	}
	stored := func() time.Time {
		t.Helper()
		var d keyUseDoc
		if err := s.getJSON(ctx, kindKeyUse, "", k.ID, &d); err != nil && !errors.Is(err, ErrNotFound) {
			t.Fatal(err)
		}
		return d.LastUsed
	}
	if got := stored(); !got.Equal(first) {
		t.Fatalf("last use %v, want %v", got, first)
	}
	// Within the minute: not written again.
	c.Add(30 * time.Second)
	for range 100 {
		s.AuthenticateKey(ctx, sec)
	}
	s.flushUses(ctx)
	if got := stored(); !got.Equal(first) {
		t.Errorf("last use %v after 30 s, want still %v", got, first)
	}
	// After a minute: once more. Keys shows it.
	c.Add(31 * time.Second)
	s.AuthenticateKey(ctx, sec)
	if ks, _ := s.Keys(ctx, "ops"); len(ks) != 1 || !ks[0].LastUsed.Equal(c.Now()) {
		t.Errorf("Keys before the flush: %+v, want last use %v", ks, c.Now())
	}
	s.flushUses(ctx)
	if got := stored(); !got.Equal(c.Now()) {
		t.Errorf("last use %v, want %v", got, c.Now())
	}
	// A restarted instance remembers the last use: no write for a use
	// within the minute.
	s2 := newService(t, st, c, Options{})
	c.Add(10 * time.Second)
	s2.AuthenticateKey(ctx, sec)
	if e := s2.snap.Load().keys[k.ID]; e.use.pending.Load() != 0 {
		t.Error("a restarted instance saves a use 10 s after the last one")
	}
}

// Authentication runs while keys are created, revoked and reloaded.
func TestConcurrentAuthentication(t *testing.T) {
	ctx := context.Background()
	s := newService(t, openSQLite(t), newClock(), Options{})
	mustUser(t, s, "ops", goodPW, Grant{Tenant: tenantA, Role: RoleOperator})
	secs := make([]string, 8)
	ids := make([]string, 8)
	for i := range secs {
		secs[i], _ = mustKey(t, s, "ops", Grant{Tenant: tenantA, Role: RoleViewer})
		ids[i], _ = KeyID(secs[i])
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				p, err := s.Authenticate(request("Bearer "+secs[(g+i)%len(secs)], ""))
				if err == nil && !p.Can(tenantA, PermRead, nil) {
					panic("a key lost its rights")
				}
			}
		}()
	}
	for i := range 4 {
		if err := s.RevokeKey(ctx, ids[i]); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.CreateKey(ctx, "ops", fmt.Sprint("k", i), []Grant{{Tenant: tenantA, Role: RoleViewer}}, time.Time{}); err != nil {
			t.Fatal(err)
		}
		s.Reload(ctx)
		s.flushUses(ctx)
	}
	close(stop)
	wg.Wait()
}

func BenchmarkAuthenticateKey(b *testing.B) {
	s := newService(b, openSQLite(b), newClock(), Options{Now: time.Now})
	mustUser(b, s, "ops", goodPW, Grant{Tenant: tenantA, Role: RoleOperator})
	for i := range 1000 { // a cache of some size
		mustKeyQuiet(b, s, i)
	}
	sec, _ := mustKey(b, s, "ops", Grant{Tenant: tenantA, Role: RoleViewer})
	r := request("Bearer "+sec, "10.1.2.3")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		p, err := s.Authenticate(r)
		if err != nil || !p.Can(tenantA, PermRead, nil) {
			b.Fatal(err)
		}
	}
}

func mustKeyQuiet(b *testing.B, s *Service, i int) {
	// Keys straight into the store, one reload at the end would do; the
	// Service's own CreateKey reloads each time, which is fine for 1,000.
	if _, _, err := s.CreateKey(context.Background(), "ops", fmt.Sprint("bulk ", i), []Grant{{Tenant: tenantA, Role: RoleViewer}}, time.Time{}); err != nil {
		b.Fatal(err)
	}
}

package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/zenne-city/zenne/internal/store"
)

// Login checks a user's password, for a login form or HTTP Basic
// authentication, from the remote address remote (an IP address; "" when
// unknown). The attempt is refused with ErrThrottled when remote has tried
// too many passwords lately and with ErrLocked while the account is locked
// after too many failures (both as a *RetryError); a wrong name or password
// is ErrBadCredentials, whichever of the two is wrong, and takes as long.
func (s *Service) Login(ctx context.Context, name, password, remote string) (*Principal, error) {
	return s.login(ctx, name, password, remote, false)
}

// login is Login; cached lets a recent success of the same credentials
// answer without hashing (HTTP Basic, where every request of a script
// carries the password).
func (s *Service) login(ctx context.Context, name, password, remote string, cached bool) (*Principal, error) {
	now := s.now()
	var ck [32]byte
	if cached {
		ck = s.basic.id(name, password)
		if p := s.basicHit(ck, name, now); p != nil {
			return p, nil
		}
	}
	if d, ok := s.addrs.Take(addrKey(remote), now); !ok {
		return nil, &RetryError{Err: ErrThrottled, RetryAfter: d}
	}
	if len(name) > 256 || len(password) > MaxPasswordLen {
		s.dummyVerify(password)
		return nil, ErrBadCredentials
	}
	u, err := s.getUser(ctx, name)
	if errors.Is(err, ErrNotFound) || (err == nil && u.Password == "") {
		s.dummyVerify(password) // as long as a wrong password
		return nil, ErrBadCredentials
	}
	if err != nil {
		return nil, err
	}
	ls, err := s.lockState(ctx, name)
	if err != nil {
		return nil, err
	}
	if ls.LockedUntil.After(now) {
		return nil, &RetryError{Err: ErrLocked, RetryAfter: ls.LockedUntil.Sub(now)}
	}
	ok, rehash, err := verifyPassword(u.Password, password, s.opts.Password)
	if err != nil {
		return nil, fmt.Errorf("auth: user %q: %w", name, err)
	}
	if !ok {
		if err := s.failed(ctx, name, now); err != nil {
			return nil, err
		}
		return nil, ErrBadCredentials
	}
	if u.Disabled {
		return nil, ErrDisabled
	}
	if len(ls.Failures) > 0 || !ls.LockedUntil.IsZero() {
		if err := s.Unlock(ctx, name); err != nil {
			return nil, err
		}
	}
	if rehash {
		if h, err := hashPassword(password, s.opts.Password); err == nil {
			err := s.updateUser(ctx, name, func(cur *storedUser) error {
				if cur.Password != u.Password {
					return errSkip // changed meanwhile
				}
				cur.Password = h
				return nil
			})
			if err == nil {
				u.Password = h
			} else if !errors.Is(err, errSkip) {
				s.opts.Log.Warn("auth: saving a rehashed password", "user", name, "err", err)
			}
		}
	}
	if cached {
		s.basic.put(ck, name, u.Password, now)
	}
	return s.principalOf(&u), nil
}

// principalOf is the principal of account u as just read from the store:
// the cached one when the cache holds the same version of the account.
func (s *Service) principalOf(u *storedUser) *Principal {
	snap := s.snap.Load()
	if e := snap.users[u.Name]; e != nil && e.p != nil && e.u.Password == u.Password && e.u.Modified.Equal(u.Modified) {
		return e.p
	}
	return newUserPrincipal(u, snap.public)
}

// newUserPrincipal is the principal of account u, with the public-read
// tenants public.
func newUserPrincipal(u *storedUser, public map[string]bool) *Principal {
	return &Principal{kind: UserPrincipal, user: u.Name, rules: compile(u.Grants), public: public, grants: u.Grants}
}

var errSkip = errors.New("skip")

// dummyVerify spends the time of checking a password.
func (s *Service) dummyVerify(password string) {
	s.dummyOnce.Do(func() {
		s.dummy, _ = hashPassword("not the password of anyone", s.opts.Password)
	})
	verifyPassword(s.dummy, password, s.opts.Password)
}

// lockState is a user's recent failed logins, kept in the store so that
// every instance counts them.
type lockState struct {
	Failures    []time.Time `json:"failures,omitempty"`
	LockedUntil time.Time   `json:"lockedUntil,omitzero"`
}

func (s *Service) lockState(ctx context.Context, name string) (lockState, error) {
	var ls lockState
	if err := s.getJSON(ctx, kindLockout, "", name, &ls); err != nil && !errors.Is(err, ErrNotFound) {
		return ls, fmt.Errorf("auth: reading failed logins of %q: %w", name, err)
	}
	s.lockMu.Lock()
	if ls.LockedUntil.After(s.now()) {
		s.locked[name] = ls.LockedUntil
	} else {
		delete(s.locked, name)
	}
	s.lockMu.Unlock()
	return ls, nil
}

// failed counts a failed login; the MaxFailures-th within FailureWindow
// locks the account for LockFor. At most MaxFailures writes per user per
// lock-out, however many attempts are made.
func (s *Service) failed(ctx context.Context, name string, now time.Time) error {
	s.failMu.Lock()
	defer s.failMu.Unlock()
	ls, err := s.lockState(ctx, name) // again: other attempts may have failed meanwhile
	if err != nil {
		return err
	}
	if ls.LockedUntil.After(now) {
		return nil
	}
	var fs []time.Time
	for _, t := range ls.Failures {
		if now.Sub(t) < s.opts.FailureWindow {
			fs = append(fs, t)
		}
	}
	fs = append(fs, now.UTC())
	ls = lockState{Failures: fs}
	if len(fs) >= s.opts.MaxFailures {
		ls = lockState{LockedUntil: now.Add(s.opts.LockFor).UTC()}
		s.lockMu.Lock()
		s.locked[name] = ls.LockedUntil
		s.lockMu.Unlock()
		s.opts.Log.Warn("auth: account locked after repeated failed logins", "user", name, "until", ls.LockedUntil)
	}
	doc, _ := json.Marshal(ls)
	if err := s.st.PutRecord(ctx, kindLockout, "", name, doc); err != nil {
		return fmt.Errorf("auth: counting a failed login of %q: %w", name, err)
	}
	return nil
}

// Unlock ends a user's lock-out and forgets its failed logins.
func (s *Service) Unlock(ctx context.Context, name string) error {
	s.lockMu.Lock()
	delete(s.locked, name)
	s.lockMu.Unlock()
	if err := s.st.DeleteRecord(ctx, kindLockout, "", name); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("auth: unlocking %q: %w", name, err)
	}
	return nil
}

// lockedHere reports whether this instance saw the user locked.
func (s *Service) lockedHere(name string, now time.Time) bool {
	s.lockMu.Lock()
	defer s.lockMu.Unlock()
	until, ok := s.locked[name]
	return ok && until.After(now)
}

// basicCache remembers credentials checked lately, so that a script
// sending its password with every request (HTTP Basic) does not pay for
// argon2id each time nor exhaust its address's attempts. Entries are keyed
// by an HMAC of name and password under a key of this process; they hold
// no password.
type basicCache struct {
	key [32]byte
	mu  sync.Mutex
	m   map[[32]byte]basicEntry
}

type basicEntry struct {
	name, phc string // the hash the password was checked against
	until     time.Time
}

const (
	basicTTL = 5 * time.Minute
	basicMax = 10000
)

func (c *basicCache) id(name, password string) [32]byte {
	m := hmac.New(sha256.New, c.key[:])
	m.Write([]byte(name))
	m.Write([]byte{0})
	m.Write([]byte(password))
	var out [32]byte
	m.Sum(out[:0])
	return out
}

func (c *basicCache) put(id [32]byte, name, phc string, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= basicMax {
		c.m = map[[32]byte]basicEntry{}
	}
	c.m[id] = basicEntry{name: name, phc: phc, until: now.Add(basicTTL)}
}

// basicHit returns the principal for credentials checked lately, if the
// account still has the same password hash, is enabled and not locked.
func (s *Service) basicHit(id [32]byte, name string, now time.Time) *Principal {
	s.basic.mu.Lock()
	e, ok := s.basic.m[id]
	s.basic.mu.Unlock()
	if !ok || e.name != name || !now.Before(e.until) {
		return nil
	}
	u := s.snap.Load().users[name]
	if u == nil || u.p == nil || u.u.Password != e.phc || s.lockedHere(name, now) {
		return nil
	}
	return u.p
}

// addrKey is the address a limit of password checks applies to: IPv4
// addresses each, IPv6 by /64, which one machine usually holds whole.
func addrKey(addr string) string {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		if ap, err2 := netip.ParseAddrPort(addr); err2 == nil {
			ip, err = ap.Addr(), nil
		}
	}
	if err != nil {
		return clip(addr, 64)
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/zenne-city/zenne/internal/store"
)

// An API key's secret is "zk_<id>_<secret>": the prefix, twelve characters
// of id (lower-case base32: a-z, 2-7) and 32 random bytes in unpadded
// base64url (43 characters, which may contain '_' and '-'). The id is
// public (logs, the audit log, listings); only SHA-256 of the 32 bytes is
// stored. The secret's entropy makes a slow hash useless.
const (
	keyPrefix   = "zk_"
	keyIDLen    = 12
	keySecretN  = 32
	keySecretB  = 43 // base64url of 32 bytes, unpadded
	keyTokenLen = len(keyPrefix) + keyIDLen + 1 + keySecretB
	keyIDChars  = "abcdefghijklmnopqrstuvwxyz234567"
)

// Key is an API key as the API shows it (never its secret nor hash).
type Key struct {
	ID    string
	Owner string
	Name  string
	// Grants are the key's own; its rights are within its owner's current
	// grants.
	Grants  []Grant
	Created time.Time
	// Expires is zero for a key that does not expire.
	Expires time.Time
	// Revoked is when the key was revoked, zero if it was not.
	Revoked time.Time
	// LastUsed is recorded at most once a minute per key and instance.
	LastUsed time.Time
}

// storedKey is the record of a key.
type storedKey struct {
	ID      string    `json:"id"`
	Owner   string    `json:"owner"`
	Name    string    `json:"name"`
	Hash    []byte    `json:"sha256"`
	Grants  []Grant   `json:"grants"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires,omitzero"`
	Revoked time.Time `json:"revoked,omitzero"`
}

type keyUseDoc struct {
	LastUsed time.Time `json:"lastUsed"`
}

func (k *storedKey) public(lastUsed time.Time) Key {
	return Key{ID: k.ID, Owner: k.Owner, Name: k.Name, Grants: slices.Clone(k.Grants), Created: k.Created,
		Expires: k.Expires, Revoked: k.Revoked, LastUsed: lastUsed}
}

// CreateKey creates an API key of owner (a user or service account), with
// grants within the owner's (ErrNotSubset otherwise), expiring at expires
// (zero: never). It returns the key's secret, which is shown this once and
// cannot be found again.
func (s *Service) CreateKey(ctx context.Context, owner, name string, grants []Grant, expires time.Time) (string, Key, error) {
	var id [keyIDLen]byte
	var secret [keySecretN]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return "", Key{}, err
	}
	for {
		newKeyID(&id)
		_, err := s.st.GetRecord(ctx, kindKey, "", string(id[:]))
		if errors.Is(err, store.ErrNotFound) {
			break
		}
		if err != nil {
			return "", Key{}, fmt.Errorf("auth: creating a key: %w", err)
		}
	}
	k, err := s.registerKey(ctx, owner, name, grants, expires, string(id[:]), secret)
	if err != nil {
		return "", Key{}, err
	}
	return formatKey(string(id[:]), secret), k, nil
}

// registerKey stores a key with a given id and secret.
func (s *Service) registerKey(ctx context.Context, owner, name string, grants []Grant, expires time.Time, id string, secret [keySecretN]byte) (Key, error) {
	if name == "" || len(name) > 100 || hasControl(name) {
		return Key{}, fmt.Errorf("%w: a key's name has 1 to 100 printable characters", ErrInvalid)
	}
	if err := ValidateGrants(grants); err != nil {
		return Key{}, err
	}
	if len(grants) == 0 {
		return Key{}, fmt.Errorf("%w: a key without grants could do nothing", ErrInvalid)
	}
	now := s.now().UTC()
	if !expires.IsZero() && !expires.After(now) {
		return Key{}, fmt.Errorf("%w: the key would have expired already", ErrInvalid)
	}
	u, err := s.getUser(ctx, owner)
	if err != nil {
		return Key{}, err
	}
	if u.Disabled {
		return Key{}, fmt.Errorf("%w: %q cannot own new keys", ErrDisabled, owner)
	}
	if err := covered(grants, compile(u.Grants)); err != nil {
		return Key{}, err
	}
	h := sha256.Sum256(secret[:])
	k := storedKey{ID: id, Owner: owner, Name: name, Hash: h[:], Grants: slices.Clone(grants), Created: now}
	if !expires.IsZero() {
		k.Expires = expires.UTC()
	}
	doc, err := json.Marshal(&k)
	if err != nil {
		return Key{}, err
	}
	if err := s.st.PutRecord(ctx, kindKey, "", id, doc); err != nil {
		return Key{}, fmt.Errorf("auth: saving key %s: %w", id, err)
	}
	s.changed(ctx)
	return k.public(time.Time{}), nil
}

func newKeyID(id *[keyIDLen]byte) {
	var b [keyIDLen]byte
	rand.Read(b[:])
	for i, c := range b {
		id[i] = keyIDChars[c&31]
	}
}

func formatKey(id string, secret [keySecretN]byte) string {
	return keyPrefix + id + "_" + base64.RawURLEncoding.EncodeToString(secret[:])
}

// parseKey splits a key's secret into its id and secret bytes, without
// allocating (the hot path).
func parseKey(tok string) (id string, secret [keySecretN]byte, err error) {
	if len(tok) != keyTokenLen || tok[:len(keyPrefix)] != keyPrefix || tok[len(keyPrefix)+keyIDLen] != '_' {
		return "", secret, ErrBadKey
	}
	id = tok[len(keyPrefix) : len(keyPrefix)+keyIDLen]
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < 'a' || c > 'z') && (c < '2' || c > '7') {
			return "", secret, ErrBadKey
		}
	}
	var src [keySecretB]byte
	copy(src[:], tok[len(tok)-keySecretB:])
	var dst [keySecretN + 2]byte
	n, err := base64.RawURLEncoding.Strict().Decode(dst[:], src[:])
	if err != nil || n != keySecretN {
		return "", secret, ErrBadKey
	}
	copy(secret[:], dst[:n])
	return id, secret, nil
}

// KeyID returns the id of an API key's secret, or ErrBadKey when it is not
// one: for listings and the CLI, which show ids, never secrets.
func KeyID(secret string) (string, error) {
	id, _, err := parseKey(secret)
	return id, err
}

// AuthenticateKey returns the principal of an API key's secret: the
// request's hot path, served from memory in about 250 ns.
func (s *Service) AuthenticateKey(ctx context.Context, token string) (*Principal, error) {
	id, secret, err := parseKey(token)
	if err != nil {
		return nil, err
	}
	return s.authKey(ctx, id, &secret)
}

func (s *Service) authKey(ctx context.Context, id string, secret *[keySecretN]byte) (*Principal, error) {
	e := s.snap.Load().keys[id]
	if e == nil {
		// Created on another instance since the last reload?
		if !s.reloadIfStale(ctx, time.Second) {
			return nil, ErrBadKey
		}
		if e = s.snap.Load().keys[id]; e == nil {
			return nil, ErrBadKey
		}
	}
	h := sha256.Sum256(secret[:])
	if subtle.ConstantTimeCompare(h[:], e.hash[:]) != 1 {
		return nil, ErrBadKey
	}
	if e.revoked {
		return nil, ErrKeyRevoked
	}
	now := s.now()
	if e.expires != 0 && now.UnixNano() >= e.expires {
		return nil, ErrKeyExpired
	}
	if e.p == nil {
		return nil, fmt.Errorf("%w: its owner is disabled or gone", ErrBadKey)
	}
	e.use.touch(now)
	return e.p, nil
}

// keyUse is a key's last use on this instance, saved at most once a minute.
type keyUse struct {
	marked  atomic.Int64 // unix seconds of the last use saved (or to save)
	pending atomic.Int64 // unix nanoseconds of a use to save; 0: none
}

const useEvery = 60 // seconds between two saved uses of a key

func (u *keyUse) touch(now time.Time) {
	sec := now.Unix()
	m := u.marked.Load()
	if sec-m < useEvery || !u.marked.CompareAndSwap(m, sec) {
		return
	}
	u.pending.Store(now.UnixNano())
}

// flushUses saves the pending last uses of keys, in one transaction.
func (s *Service) flushUses(ctx context.Context) error {
	snap := s.snap.Load()
	var recs []store.Record
	var taken []*keyUse
	var vals []int64
	for id, e := range snap.keys {
		v := e.use.pending.Swap(0)
		if v == 0 {
			continue
		}
		doc, _ := json.Marshal(keyUseDoc{LastUsed: time.Unix(0, v).UTC()})
		recs = append(recs, store.Record{Kind: kindKeyUse, ID: id, Doc: doc})
		taken, vals = append(taken, e.use), append(vals, v)
	}
	if len(recs) == 0 {
		return nil
	}
	if err := s.st.PutRecords(ctx, recs); err != nil {
		for i, u := range taken {
			u.pending.CompareAndSwap(0, vals[i]) // try again next time
		}
		return fmt.Errorf("auth: saving keys' last use: %w", err)
	}
	return nil
}

// Key returns an API key; ErrNotFound if there is none.
func (s *Service) Key(ctx context.Context, id string) (Key, error) {
	var k storedKey
	if err := s.getJSON(ctx, kindKey, "", id, &k); err != nil {
		if errors.Is(err, ErrNotFound) {
			return Key{}, fmt.Errorf("%w: key %q", ErrNotFound, clip(id, 40))
		}
		return Key{}, fmt.Errorf("auth: reading key %q: %w", clip(id, 40), err)
	}
	var u keyUseDoc
	s.getJSON(ctx, kindKeyUse, "", id, &u)
	return k.public(s.lastUsed(id, u.LastUsed)), nil
}

// lastUsed is the later of a stored last use and one not saved yet.
func (s *Service) lastUsed(id string, stored time.Time) time.Time {
	if e := s.snap.Load().keys[id]; e != nil {
		if v := e.use.pending.Load(); v != 0 && time.Unix(0, v).After(stored) {
			return time.Unix(0, v).UTC()
		}
	}
	return stored
}

// Keys returns the API keys of owner ("": of every user), by id.
func (s *Service) Keys(ctx context.Context, owner string) ([]Key, error) {
	recs, err := s.st.ListRecords(ctx, kindKey, "", false)
	if err != nil {
		return nil, fmt.Errorf("auth: listing keys: %w", err)
	}
	uses, err := s.st.ListRecords(ctx, kindKeyUse, "", false)
	if err != nil {
		return nil, fmt.Errorf("auth: listing keys: %w", err)
	}
	last := make(map[string]time.Time, len(uses))
	for _, r := range uses {
		var d keyUseDoc
		if json.Unmarshal(r.Doc, &d) == nil {
			last[r.ID] = d.LastUsed
		}
	}
	out := []Key{}
	for _, r := range recs {
		var k storedKey
		if err := json.Unmarshal(r.Doc, &k); err != nil {
			return nil, fmt.Errorf("auth: key %q does not decode: %w", r.ID, err)
		}
		if owner == "" || k.Owner == owner {
			out = append(out, k.public(s.lastUsed(k.ID, last[k.ID])))
		}
	}
	return out, nil
}

// RevokeKey revokes an API key: refused at once on this instance, within
// Options.Reload on the others. The key stays listed, revoked.
func (s *Service) RevokeKey(ctx context.Context, id string) error {
	var k storedKey
	if err := s.getJSON(ctx, kindKey, "", id, &k); err != nil {
		if errors.Is(err, ErrNotFound) {
			return fmt.Errorf("%w: key %q", ErrNotFound, clip(id, 40))
		}
		return fmt.Errorf("auth: reading key %q: %w", clip(id, 40), err)
	}
	if !k.Revoked.IsZero() {
		return nil
	}
	k.Revoked = s.now().UTC()
	doc, err := json.Marshal(&k)
	if err != nil {
		return err
	}
	if err := s.st.PutRecord(ctx, kindKey, "", id, doc); err != nil {
		return fmt.Errorf("auth: revoking key %s: %w", id, err)
	}
	s.changed(ctx)
	return nil
}

// DeleteKey deletes an API key (revoking it) and forgets it.
func (s *Service) DeleteKey(ctx context.Context, id string) error {
	if err := s.deleteKey(ctx, id); err != nil {
		return err
	}
	s.changed(ctx)
	return nil
}

func (s *Service) deleteKey(ctx context.Context, id string) error {
	if err := s.st.DeleteRecord(ctx, kindKey, "", id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%w: key %q", ErrNotFound, clip(id, 40))
		}
		return fmt.Errorf("auth: deleting key %s: %w", id, err)
	}
	if err := s.st.DeleteRecord(ctx, kindKeyUse, "", id); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("auth: deleting key %s: %w", id, err)
	}
	return nil
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}

// NewKeySecret makes a fresh API key secret, registered nowhere: to give
// a new installation its first administrator key (ZENNE_ADMIN_KEY), or a
// test server.
func NewKeySecret() string {
	var id [keyIDLen]byte
	newKeyID(&id)
	var secret [keySecretN]byte
	rand.Read(secret[:])
	return formatKey(string(id[:]), secret)
}

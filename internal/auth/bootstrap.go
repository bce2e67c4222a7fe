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
	"log/slog"
	"time"

	"github.com/zenne-city/zenne/internal/store"
)

// Environment variables read by Bootstrap.
const (
	// EnvAdminPassword is the password of the first administrator.
	EnvAdminPassword = "ZENNE_ADMIN_PASSWORD"
	// EnvAdminKey is an API key secret (zk_…) registered as the first
	// administrator's key, for automated deployments and tests.
	EnvAdminKey = "ZENNE_ADMIN_KEY"
	// AdminUser is the name of the first administrator Bootstrap creates.
	AdminUser = "admin"
	// setupPrefix starts a setup token.
	setupPrefix = "zs_"
)

// adminGrants are the grants of a platform administrator.
func adminGrants() []Grant { return []Grant{{Tenant: AllTenants, Role: RoleAdmin}} }

type setupDoc struct {
	Hash    []byte    `json:"sha256"`
	Created time.Time `json:"created"`
}

// Bootstrap gives a new installation its first administrator. When the
// store has no account yet:
//
//   - with ZENNE_ADMIN_PASSWORD, it creates the user "admin", admin of every
//     tenant, with that password;
//   - with ZENNE_ADMIN_KEY (an API key secret, zk_…, made for example by
//     CreateKey on another installation), it registers that key for
//     "admin" (created without a password if ZENNE_ADMIN_PASSWORD is unset:
//     the key is then the way in);
//   - with neither, it makes a one-time setup token, logs it at Warn level
//     with how to use it (the only secret zenne ever logs) and accepts it
//     once in Setup. Each start prints a new one until it is used.
//
// When accounts exist it changes nothing (it forgets a pending setup token).
// A ZENNE_ADMIN_KEY that is not a well-formed key secret is an error,
// whether or not it would be used.
func (s *Service) Bootstrap(ctx context.Context, env func(string) string, log *slog.Logger) error {
	if log == nil {
		log = s.opts.Log
	}
	keyTok := env(EnvAdminKey)
	var keyID string
	var secret [keySecretN]byte
	if keyTok != "" {
		var err error
		if keyID, secret, err = parseKey(keyTok); err != nil {
			return fmt.Errorf("%w: %s is not an API key secret (zk_, 12 characters a-z2-7, _, 32 bytes in unpadded base64url)", ErrInvalid, EnvAdminKey)
		}
	}
	users, err := s.listUsers(ctx)
	if err != nil {
		return err
	}
	if len(users) > 0 {
		if err := s.st.DeleteRecord(ctx, kindSetup, "", "token"); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("auth: forgetting the setup token: %w", err)
		}
		if keyTok != "" {
			if k, ok := s.snap.Load().keys[keyID]; !ok || k.hash != sha256.Sum256(secret[:]) {
				log.Warn("auth: "+EnvAdminKey+" ignored: accounts exist already (it is registered on the first start only)", "key", keyID)
			}
		}
		return nil
	}
	pw := env(EnvAdminPassword)
	if pw == "" && keyTok == "" {
		tok, err := s.newSetupToken(ctx)
		if err != nil {
			return err
		}
		log.Warn("auth: no account exists yet. Create the first administrator (admin of every tenant) with this one-time setup token: "+
			"give it with a user name and password to the setup of the console or the admin API. It works once; until then each start prints a new one. "+
			"Set "+EnvAdminPassword+" instead to create the user \"admin\" without a token.",
			"setupToken", tok)
		return nil
	}
	if pw != "" {
		if err := checkPassword(pw); err != nil {
			return fmt.Errorf("%s: %w", EnvAdminPassword, err)
		}
	}
	// Instances started together on one new database: another one may
	// have created the administrator (and registered the same key) since
	// the users were listed.
	byAnother := func() error {
		log.Info("auth: the first administrator was created by another instance")
		return s.Reload(ctx)
	}
	if keyTok != "" {
		if _, err := s.st.GetRecord(ctx, kindKey, "", keyID); err == nil {
			if err := s.Reload(ctx); err != nil {
				return err
			}
			if k, ok := s.snap.Load().keys[keyID]; ok && k.hash == sha256.Sum256(secret[:]) {
				return byAnother()
			}
			return fmt.Errorf("%w: %s: a key with id %s exists", ErrExists, EnvAdminKey, keyID)
		}
	}
	if _, err := s.CreateUser(ctx, AdminUser, pw, adminGrants()); err != nil {
		if errors.Is(err, ErrExists) {
			return byAnother()
		}
		return err
	}
	if keyTok != "" {
		if _, err := s.registerKey(ctx, AdminUser, EnvAdminKey, adminGrants(), time.Time{}, keyID, secret); err != nil {
			return err
		}
	}
	log.Info("auth: created the first administrator", "user", AdminUser, "password", pw != "", "key", keyID)
	return nil
}

// newSetupToken makes and stores (hashed) a setup token.
func (s *Service) newSetupToken(ctx context.Context) (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	tok := setupPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	h := sha256.Sum256([]byte(tok))
	doc, _ := json.Marshal(setupDoc{Hash: h[:], Created: s.now().UTC()})
	if err := s.st.PutRecord(ctx, kindSetup, "", "token", doc); err != nil {
		return "", fmt.Errorf("auth: saving the setup token: %w", err)
	}
	return tok, nil
}

// SetupPending reports whether a setup token waits to be used.
func (s *Service) SetupPending(ctx context.Context) (bool, error) {
	_, err := s.st.GetRecord(ctx, kindSetup, "", "token")
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Setup creates the first administrator (admin of every tenant) with the
// setup token Bootstrap logged, once: ErrSetup for a wrong token or when
// setup is done. A name or password that is refused (ErrInvalid) leaves the
// token usable.
func (s *Service) Setup(ctx context.Context, token, name, password string) (User, error) {
	s.setupMu.Lock()
	defer s.setupMu.Unlock()
	var d setupDoc
	if err := s.getJSON(ctx, kindSetup, "", "token", &d); err != nil {
		if errors.Is(err, ErrNotFound) {
			return User{}, ErrSetup
		}
		return User{}, fmt.Errorf("auth: reading the setup token: %w", err)
	}
	h := sha256.Sum256([]byte(token))
	if subtle.ConstantTimeCompare(h[:], d.Hash) != 1 {
		return User{}, ErrSetup
	}
	if password == "" {
		return User{}, fmt.Errorf("%w: the first administrator needs a password", ErrInvalid)
	}
	users, err := s.listUsers(ctx)
	if err != nil {
		return User{}, err
	}
	if len(users) > 0 {
		s.st.DeleteRecord(ctx, kindSetup, "", "token")
		return User{}, ErrSetup
	}
	u, err := s.CreateUser(ctx, name, password, adminGrants())
	if err != nil {
		return User{}, err
	}
	if err := s.st.DeleteRecord(ctx, kindSetup, "", "token"); err != nil && !errors.Is(err, store.ErrNotFound) {
		return u, fmt.Errorf("auth: forgetting the used setup token: %w", err)
	}
	return u, nil
}

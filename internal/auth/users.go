package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/zenne-city/zenne/internal/store"
)

// User is a local account, as the API shows it (never its password hash).
type User struct {
	Name   string
	Grants []Grant
	// Disabled accounts cannot log in and their API keys do nothing.
	Disabled bool
	// HasPassword is false for a service account, which authenticates only
	// with its API keys.
	HasPassword       bool
	Created, Modified time.Time
}

// storedUser is the record of an account.
type storedUser struct {
	Name     string    `json:"name"`
	Password string    `json:"password,omitempty"` // PHC string (argon2id)
	Grants   []Grant   `json:"grants"`
	Disabled bool      `json:"disabled,omitempty"`
	Created  time.Time `json:"created"`
	Modified time.Time `json:"modified"`
}

func (u *storedUser) public() User {
	return User{Name: u.Name, Grants: slices.Clone(u.Grants), Disabled: u.Disabled, HasPassword: u.Password != "",
		Created: u.Created, Modified: u.Modified}
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._@-]{0,63}$`)

// ValidUserName reports whether s can name an account: 1 to 64 lower-case
// letters, digits, '.', '_', '@' and '-', starting with a letter or digit
// (so e-mail addresses fit), and not "anonymous".
func ValidUserName(s string) bool { return nameRE.MatchString(s) && s != "anonymous" }

func checkName(name string) error {
	if !ValidUserName(name) {
		return fmt.Errorf("%w: user name %q: use 1 to 64 lower-case letters, digits, '.', '_', '@' and '-'", ErrInvalid, clip(name, 80))
	}
	return nil
}

// CreateUser creates an account with grants. An empty password makes a
// service account, which cannot log in and acts through its API keys.
func (s *Service) CreateUser(ctx context.Context, name, password string, grants []Grant) (User, error) {
	if err := checkName(name); err != nil {
		return User{}, err
	}
	if err := ValidateGrants(grants); err != nil {
		return User{}, err
	}
	now := s.now().UTC()
	u := storedUser{Name: name, Grants: slices.Clone(grants), Created: now, Modified: now}
	if u.Grants == nil {
		u.Grants = []Grant{}
	}
	if password != "" {
		if err := checkPassword(password); err != nil {
			return User{}, err
		}
		h, err := hashPassword(password, s.opts.Password)
		if err != nil {
			return User{}, err
		}
		u.Password = h
	}
	if _, err := s.st.GetRecord(ctx, kindUser, "", name); err == nil {
		return User{}, fmt.Errorf("%w: user %q", ErrExists, name)
	} else if !errors.Is(err, store.ErrNotFound) {
		return User{}, fmt.Errorf("auth: creating user %q: %w", name, err)
	}
	if err := s.putUser(ctx, &u); err != nil {
		return User{}, err
	}
	s.changed(ctx)
	return u.public(), nil
}

func (s *Service) putUser(ctx context.Context, u *storedUser) error {
	doc, err := json.Marshal(u)
	if err != nil {
		return err
	}
	if err := s.st.PutRecord(ctx, kindUser, "", u.Name, doc); err != nil {
		return fmt.Errorf("auth: saving user %q: %w", u.Name, err)
	}
	return nil
}

func (s *Service) getUser(ctx context.Context, name string) (storedUser, error) {
	var u storedUser
	if err := s.getJSON(ctx, kindUser, "", name, &u); err != nil {
		if errors.Is(err, ErrNotFound) {
			return u, fmt.Errorf("%w: user %q", ErrNotFound, clip(name, 80))
		}
		return u, fmt.Errorf("auth: reading user %q: %w", clip(name, 80), err)
	}
	return u, nil
}

// User returns an account; ErrNotFound if there is none.
func (s *Service) User(ctx context.Context, name string) (User, error) {
	u, err := s.getUser(ctx, name)
	if err != nil {
		return User{}, err
	}
	return u.public(), nil
}

// Users returns every account, by name.
func (s *Service) Users(ctx context.Context) ([]User, error) {
	us, err := s.listUsers(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]User, len(us))
	for i := range us {
		out[i] = us[i].public()
	}
	return out, nil
}

func (s *Service) listUsers(ctx context.Context) ([]storedUser, error) {
	recs, err := s.st.ListRecords(ctx, kindUser, "", false)
	if err != nil {
		return nil, fmt.Errorf("auth: listing users: %w", err)
	}
	out := make([]storedUser, 0, len(recs))
	for _, r := range recs {
		var u storedUser
		if err := json.Unmarshal(r.Doc, &u); err != nil {
			return nil, fmt.Errorf("auth: user %q does not decode: %w", r.ID, err)
		}
		out = append(out, u)
	}
	return out, nil
}

// updateUser changes an account with f. Changes that would leave no
// enabled administrator of every tenant are refused.
func (s *Service) updateUser(ctx context.Context, name string, f func(u *storedUser) error) error {
	u, err := s.getUser(ctx, name)
	if err != nil {
		return err
	}
	wasAdmin := platformAdmin(&u)
	if err := f(&u); err != nil {
		return err
	}
	if wasAdmin && !platformAdmin(&u) {
		if err := s.keepAnAdmin(ctx, name); err != nil {
			return err
		}
	}
	u.Modified = s.now().UTC()
	if err := s.putUser(ctx, &u); err != nil {
		return err
	}
	s.changed(ctx)
	if u.Disabled {
		// For good: enabling the account again must not revive them.
		if _, err := s.endSessions(ctx, name); err != nil {
			return err
		}
	}
	return nil
}

// platformAdmin reports whether u is an enabled admin of every tenant.
func platformAdmin(u *storedUser) bool {
	return !u.Disabled && allows(compile(u.Grants), AllTenants, PermAll, nil)
}

// keepAnAdmin refuses to take away the last platform administrator
// (other than except).
func (s *Service) keepAnAdmin(ctx context.Context, except string) error {
	us, err := s.listUsers(ctx)
	if err != nil {
		return err
	}
	for i := range us {
		if us[i].Name != except && platformAdmin(&us[i]) {
			return nil
		}
	}
	return fmt.Errorf("%w: %q is the last enabled administrator of every tenant", ErrInvalid, except)
}

// SetPassword sets a user's password; an empty one removes it (a service
// account). A lock-out ends.
func (s *Service) SetPassword(ctx context.Context, name, password string) error {
	h := ""
	if password != "" {
		if err := checkPassword(password); err != nil {
			return err
		}
		var err error
		if h, err = hashPassword(password, s.opts.Password); err != nil {
			return err
		}
	}
	if err := s.updateUser(ctx, name, func(u *storedUser) error { u.Password = h; return nil }); err != nil {
		return err
	}
	return s.Unlock(ctx, name)
}

// SetGrants replaces a user's grants. The rights of the user's API keys
// shrink with them at once (on other instances within Options.Reload); a
// key keeps its own grants, so giving rights back restores its rights.
func (s *Service) SetGrants(ctx context.Context, name string, grants []Grant) error {
	if err := ValidateGrants(grants); err != nil {
		return err
	}
	return s.updateUser(ctx, name, func(u *storedUser) error {
		u.Grants = slices.Clone(grants)
		if u.Grants == nil {
			u.Grants = []Grant{}
		}
		return nil
	})
}

// SetDisabled disables an account (it cannot log in, its keys do nothing)
// or enables it again.
func (s *Service) SetDisabled(ctx context.Context, name string, disabled bool) error {
	return s.updateUser(ctx, name, func(u *storedUser) error { u.Disabled = disabled; return nil })
}

// DeleteUser deletes an account and its API keys.
func (s *Service) DeleteUser(ctx context.Context, name string) error {
	u, err := s.getUser(ctx, name)
	if err != nil {
		return err
	}
	if platformAdmin(&u) {
		if err := s.keepAnAdmin(ctx, name); err != nil {
			return err
		}
	}
	keys, err := s.Keys(ctx, name)
	if err != nil {
		return err
	}
	if err := s.st.DeleteRecord(ctx, kindUser, "", name); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("auth: deleting user %q: %w", name, err)
	}
	for _, k := range keys {
		if err := s.deleteKey(ctx, k.ID); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	if err := s.st.DeleteRecord(ctx, kindLockout, "", name); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("auth: deleting user %q: %w", name, err)
	}
	s.changed(ctx)
	if _, err := s.endSessions(ctx, name); err != nil {
		return err
	}
	return nil
}

// clip shortens s for error messages.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

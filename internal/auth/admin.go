package auth

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// This file holds what the administration API (internal/api/adminapi)
// needs beyond the rest of the package: checking input before changing
// anything, changing an account in one write, and bounding what a key may
// do by the key itself.

// ValidatePassword reports why a password would be refused (ErrInvalid),
// so that a change can be checked whole before any part of it is made.
func ValidatePassword(pw string) error { return checkPassword(pw) }

// ValidKeyID reports whether id has the form of an API key's id (the
// public part of "zk_<id>_<secret>").
func ValidKeyID(id string) bool {
	if len(id) != keyIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; (c < 'a' || c > 'z') && (c < '2' || c > '7') {
			return false
		}
	}
	return true
}

// Covers reports whether p's rights include every right of grants gs: nil,
// or ErrNotSubset naming the first grant that goes beyond. For a key, its
// rights are those within its owner's current grants, so a key cannot make
// a key that does more than itself.
func (p *Principal) Covers(gs []Grant) error {
	if p == nil {
		return fmt.Errorf("%w: anonymous callers have no rights to give", ErrNotSubset)
	}
	return covered(gs, p.rules)
}

// UserChange is a change of an account; nil members stay as they are.
type UserChange struct {
	// Password sets the password; "" removes it (a service account, which
	// acts only through its API keys).
	Password *string
	// Grants replace the account's grants.
	Grants *[]Grant
	// Disabled disables or enables the account.
	Disabled *bool
	// Unlock ends a lock-out after failed logins (a new password does too).
	Unlock bool
}

// UpdateUser makes change c to the account name in one write, after
// checking all of it: a refused change (ErrInvalid, ErrNotFound, or the
// error of allow) changes nothing. allow, when not nil, sees the account
// as it is just before the change and may refuse it (e.g. an account the
// caller may not manage). It returns the account as changed.
func (s *Service) UpdateUser(ctx context.Context, name string, c UserChange, allow func(User) error) (User, error) {
	if c.Grants != nil {
		if err := ValidateGrants(*c.Grants); err != nil {
			return User{}, err
		}
	}
	var hash *string
	if c.Password != nil {
		h := ""
		if *c.Password != "" {
			if err := checkPassword(*c.Password); err != nil {
				return User{}, err
			}
			var err error
			if h, err = hashPassword(*c.Password, s.opts.Password); err != nil {
				return User{}, err
			}
		}
		hash = &h
	}
	err := s.updateUser(ctx, name, func(u *storedUser) error {
		if allow != nil {
			if err := allow(u.public()); err != nil {
				return err
			}
		}
		if c.Grants != nil {
			u.Grants = slices.Clone(*c.Grants)
			if u.Grants == nil {
				u.Grants = []Grant{}
			}
		}
		if c.Disabled != nil {
			u.Disabled = *c.Disabled
		}
		if hash != nil {
			u.Password = *hash
		}
		return nil
	})
	if err != nil {
		return User{}, err
	}
	if c.Unlock || hash != nil {
		if err := s.Unlock(ctx, name); err != nil {
			return User{}, err
		}
	}
	return s.User(ctx, name)
}

// LockedUntil is when the lock-out of a user after failed logins ends;
// zero when the account is not locked.
func (s *Service) LockedUntil(ctx context.Context, name string) (time.Time, error) {
	ls, err := s.lockState(ctx, name)
	if err != nil {
		return time.Time{}, err
	}
	if ls.LockedUntil.After(s.now()) {
		return ls.LockedUntil, nil
	}
	return time.Time{}, nil
}

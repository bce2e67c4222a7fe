package auth

import (
	"errors"
	"fmt"
	"time"
)

// Errors. Authentication failures (ErrBadCredentials, ErrDisabled, ErrBadKey
// and the errors that wrap it, ErrMalformed) are 401s; ErrLocked and
// ErrThrottled come as a *RetryError (429, or 401 with Retry-After on a
// login form); ErrInvalid, ErrNotSubset are the caller's bad input (400);
// ErrNotFound 404; ErrExists 409.
var (
	ErrInvalid   = errors.New("auth: invalid")
	ErrNotFound  = errors.New("auth: not found")
	ErrExists    = errors.New("auth: already exists")
	ErrNotSubset = errors.New("auth: an API key's grants must be within its owner's")

	ErrBadCredentials = errors.New("auth: wrong user name or password")
	ErrDisabled       = errors.New("auth: account disabled")
	ErrLocked         = errors.New("auth: account locked after repeated failed logins")
	ErrThrottled      = errors.New("auth: too many login attempts from this address")

	ErrBadKey     = errors.New("auth: invalid API key")
	ErrKeyExpired = fmt.Errorf("%w: expired", ErrBadKey)
	ErrKeyRevoked = fmt.Errorf("%w: revoked", ErrBadKey)

	ErrMalformed = errors.New("auth: malformed Authorization header")
	ErrSetup     = errors.New("auth: no setup pending, or a wrong setup token")
)

// RetryError is a refusal that ends: ErrLocked or ErrThrottled, with the
// time after which the same attempt may succeed.
type RetryError struct {
	Err        error
	RetryAfter time.Duration
}

func (e *RetryError) Error() string {
	return fmt.Sprintf("%v (retry in %s)", e.Err, e.RetryAfter.Round(time.Second))
}

func (e *RetryError) Unwrap() error { return e.Err }

package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// PasswordParams are argon2id's costs.
type PasswordParams struct {
	// Memory in KiB, Time (passes over it), Threads (lanes).
	Memory  uint32
	Time    uint32
	Threads uint8
}

// DefaultPasswordParams returns OWASP's recommended minimum for argon2id
// (Password Storage Cheat Sheet): 19 MiB, 2 passes, 1 lane; tens of
// milliseconds of one processor per password checked.
func DefaultPasswordParams() PasswordParams {
	return PasswordParams{Memory: 19 * 1024, Time: 2, Threads: 1}
}

const (
	saltLen = 16
	hashLen = 32

	// Bounds of stored hashes, so that a damaged or forged record cannot
	// make a login cost gigabytes.
	maxMemory  = 1 << 20 // KiB: 1 GiB
	maxTime    = 64
	minSaltLen = 8
	maxSaltLen = 64
	minHashLen = 16
	maxHashLen = 128

	// MinPasswordLen and MaxPasswordLen bound passwords (bytes).
	MinPasswordLen = 12
	MaxPasswordLen = 1024
)

// validParams reports whether the parameters are within the bounds of a
// stored hash.
func (p PasswordParams) valid() bool {
	return p.Memory >= 8*uint32(p.Threads) && p.Memory <= maxMemory && p.Time >= 1 && p.Time <= maxTime && p.Threads >= 1
}

// phc is a parsed argon2id hash in the PHC string format.
type phc struct {
	params PasswordParams
	salt   []byte
	hash   []byte
}

var b64 = base64.RawStdEncoding

// hashPassword hashes password with a new random salt and returns the PHC
// string: $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>, salt
// and hash in unpadded standard base64.
func hashPassword(password string, p PasswordParams) (string, error) {
	if !p.valid() {
		return "", fmt.Errorf("%w: argon2id parameters m=%d,t=%d,p=%d", ErrInvalid, p.Memory, p.Time, p.Threads)
	}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	h := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, hashLen)
	return formatPHC(phc{params: p, salt: salt, hash: h}), nil
}

func formatPHC(x phc) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version,
		x.params.Memory, x.params.Time, x.params.Threads, b64.EncodeToString(x.salt), b64.EncodeToString(x.hash))
}

// parsePHC parses an argon2id PHC string, strictly: version 19, the three
// parameters in order, bounded sizes, canonical base64.
func parsePHC(s string) (phc, error) {
	var x phc
	bad := func(what string) (phc, error) {
		return phc{}, fmt.Errorf("%w: password hash: %s", ErrInvalid, what)
	}
	if len(s) > 512 {
		return bad("too long")
	}
	f := strings.Split(s, "$")
	if len(f) != 6 || f[0] != "" {
		return bad("not a PHC string")
	}
	if f[1] != "argon2id" {
		return bad("algorithm " + strconv.Quote(f[1]) + ", want argon2id")
	}
	if f[2] != "v="+strconv.Itoa(argon2.Version) {
		return bad("version " + strconv.Quote(f[2]))
	}
	ps := strings.Split(f[3], ",")
	if len(ps) != 3 {
		return bad("parameters")
	}
	for i, name := range []string{"m", "t", "p"} {
		v, ok := strings.CutPrefix(ps[i], name+"=")
		if !ok || v == "" || (len(v) > 1 && v[0] == '0') {
			return bad("parameter " + name)
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return bad("parameter " + name)
		}
		switch name {
		case "m":
			x.params.Memory = uint32(n)
		case "t":
			x.params.Time = uint32(n)
		case "p":
			if n > 255 {
				return bad("parameter p")
			}
			x.params.Threads = uint8(n)
		}
	}
	if !x.params.valid() {
		return bad("parameters out of bounds")
	}
	var err error
	if x.salt, err = b64.Strict().DecodeString(f[4]); err != nil || len(x.salt) < minSaltLen || len(x.salt) > maxSaltLen {
		return bad("salt")
	}
	if x.hash, err = b64.Strict().DecodeString(f[5]); err != nil || len(x.hash) < minHashLen || len(x.hash) > maxHashLen {
		return bad("hash")
	}
	return x, nil
}

// verifyPassword reports whether password matches the PHC string stored,
// comparing in constant time, and whether the hash should be remade with
// params (its parameters or sizes differ).
func verifyPassword(stored, password string, params PasswordParams) (ok, rehash bool, err error) {
	x, err := parsePHC(stored)
	if err != nil {
		return false, false, err
	}
	h := argon2.IDKey([]byte(password), x.salt, x.params.Time, x.params.Memory, x.params.Threads, uint32(len(x.hash)))
	ok = subtle.ConstantTimeCompare(h, x.hash) == 1
	return ok, x.params != params || len(x.salt) != saltLen || len(x.hash) != hashLen, nil
}

// checkPassword enforces the password policy: long enough, not absurdly
// long, no control characters (which no keyboard types and which would
// break Basic authentication).
func checkPassword(pw string) error {
	if len(pw) < MinPasswordLen {
		return fmt.Errorf("%w: a password needs at least %d characters", ErrInvalid, MinPasswordLen)
	}
	if len(pw) > MaxPasswordLen {
		return fmt.Errorf("%w: a password has at most %d bytes", ErrInvalid, MaxPasswordLen)
	}
	for _, r := range pw {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: a password has no control characters", ErrInvalid)
		}
	}
	return nil
}

package auth

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"strings"
)

// maxAuthorization bounds the Authorization header read.
const maxAuthorization = 4096

// Authenticate tells who makes a request, from its Authorization header:
//
//   - none: the anonymous principal (it may read public tenants);
//   - "Bearer zk_…": an API key (AuthenticateKey);
//   - "Basic …": a user name and password (Login, with its throttling and
//     lock-out; a success is remembered for a few minutes, so that scripts
//     may send their password with every request);
//   - anything else: ErrMalformed.
//
// A request that presents credentials that do not hold gets an error,
// never the anonymous principal. The remote address of the throttling is
// RemoteHost(r): a proxy in front must set r.RemoteAddr to the client's.
func (s *Service) Authenticate(r *http.Request) (*Principal, error) {
	hs := r.Header["Authorization"]
	if len(hs) == 0 {
		return s.Anonymous(), nil
	}
	if len(hs) > 1 {
		return nil, fmt.Errorf("%w: more than one", ErrMalformed)
	}
	c, err := parseAuthorization(hs[0])
	if err != nil {
		return nil, err
	}
	if c.basic {
		return s.login(r.Context(), c.user, c.password, RemoteHost(r), true)
	}
	return s.authKey(r.Context(), c.keyID, &c.secret)
}

// credentials are the parts of an Authorization header.
type credentials struct {
	basic          bool
	user, password string // Basic
	keyID          string // Bearer
	secret         [keySecretN]byte
}

// parseAuthorization parses an Authorization header (RFC 9110: the scheme
// is case-insensitive). A Bearer token must look like an API key.
func parseAuthorization(h string) (credentials, error) {
	if len(h) > maxAuthorization {
		return credentials{}, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, maxAuthorization)
	}
	scheme, rest, ok := strings.Cut(h, " ")
	rest = strings.TrimLeft(rest, " ")
	if !ok || rest == "" {
		return credentials{}, fmt.Errorf("%w: want \"Bearer <API key>\" or \"Basic <credentials>\"", ErrMalformed)
	}
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		if strings.HasPrefix(rest, keyPrefix) {
			id, secret, err := parseKey(rest)
			if err != nil {
				return credentials{}, fmt.Errorf("%w: not an API key of this server", ErrBadKey)
			}
			return credentials{keyID: id, secret: secret}, nil
		}
		return credentials{}, fmt.Errorf("%w: not an API key of this server (zk_…)", ErrBadKey)
	case strings.EqualFold(scheme, "Basic"):
		b, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			return credentials{}, fmt.Errorf("%w: Basic credentials are not base64", ErrMalformed)
		}
		user, pw, ok := strings.Cut(string(b), ":")
		if !ok {
			return credentials{}, fmt.Errorf("%w: Basic credentials without ':'", ErrMalformed)
		}
		return credentials{basic: true, user: user, password: pw}, nil
	}
	return credentials{}, fmt.Errorf("%w: unknown scheme (want Bearer or Basic)", ErrMalformed)
}

// RemoteHost is the IP address of the request's client, from r.RemoteAddr.
func RemoteHost(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}

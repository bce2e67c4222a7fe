package simulate

import (
	"fmt"
	"net/http"
	"time"
)

// zenne's HTTP API (provisioning, LocateFrom, the probe's reads) wants an
// API key; device uplinks carry their devices' keys instead and need none.

// APIClient returns an HTTP client for zenne's API (Provision, LocateFrom,
// ProbeConfig.Client) that sends key as "Authorization: Bearer <key>" with
// every request that has no Authorization header of its own; with key ""
// it sends none. timeout is per request (0: none).
func APIClient(key string, timeout time.Duration) *http.Client {
	var rt http.RoundTripper = http.DefaultTransport
	if key != "" {
		rt = bearer{auth: []string{"Bearer " + key}, next: rt}
	}
	return &http.Client{Timeout: timeout, Transport: rt}
}

// bearer adds an Authorization header to requests that have none.
type bearer struct {
	auth []string
	next http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	if _, ok := r.Header["Authorization"]; ok {
		return b.next.RoundTrip(r)
	}
	r = r.Clone(r.Context()) // a RoundTripper leaves the caller's request alone
	r.Header["Authorization"] = b.auth
	return b.next.RoundTrip(r)
}

// StatusError is an answer of zenne's API other than the one expected.
// Status 401 says the request needs an API key (or its key was refused),
// 403 that the key lacks the right (devices to provision, read to locate
// and probe) on the tenant.
type StatusError struct {
	Method, URL string
	Status      int    // e.g. 401
	StatusText  string // e.g. "401 Unauthorized"
	Detail      string // what the server said, in one line
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s: %s: %s", e.Method, e.URL, e.StatusText, e.Detail)
}

// Unauthorized tells whether the server refused the credentials (401) or
// their rights (403).
func (e *StatusError) Unauthorized() bool {
	return e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden
}

func statusError(method, url string, resp *http.Response, body []byte) *StatusError {
	return &StatusError{Method: method, URL: url, Status: resp.StatusCode, StatusText: resp.Status, Detail: problem(body)}
}

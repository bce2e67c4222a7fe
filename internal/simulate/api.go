package simulate

import (
	"fmt"
	"net/http"
	"time"

	"github.com/zenne-city/zenne/internal/auth"
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
		rt = auth.NewBearer(key, rt)
	}
	return &http.Client{Timeout: timeout, Transport: rt}
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

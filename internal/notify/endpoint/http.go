package endpoint

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// Connection reuse: one receiver may take thousands of notifications a second
// from many workers, so many idle connections per host are kept.
const (
	maxIdleConnsPerHost = 64
	maxIdleConns        = 1024
	idleConnTimeout     = 90 * time.Second
	maxDrain            = 4 << 10 // bytes of an answer's body read so the connection can be reused
)

func newTransport(tlsConf *tls.Config, timeout time.Duration) *http.Transport {
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         dialer.DialContext,
		TLSClientConfig:     tlsConf,
		ForceAttemptHTTP2:   true,
		TLSHandshakeTimeout: timeout,
		MaxIdleConns:        maxIdleConns,
		MaxIdleConnsPerHost: maxIdleConnsPerHost,
		IdleConnTimeout:     idleConnTimeout,
		DisableCompression:  true,
	}
}

// Headers of the request that receiverInfo does not set: the content type and
// the ones that frame the message. (Nor Link, when the broker sends one.)
var reservedHeaders = [...]string{
	"Content-Type", "Content-Length", "Host", "Transfer-Encoding",
	"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Upgrade",
}

func reservedHeader(name string) bool {
	for _, r := range reservedHeaders {
		if strings.EqualFold(name, r) {
			return true
		}
	}
	return false
}

func (s *Sender) sendHTTP(ctx context.Context, u *url.URL, ctype string, timeout time.Duration, m *Message) error {
	if u.Host == "" || u.Opaque != "" {
		return &Error{Cause: "invalid endpoint URI: no host"}
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var connected atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { connected.Store(true) },
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.URI, bytes.NewReader(m.Body))
	if err != nil {
		return &Error{Cause: "invalid endpoint URI: " + sanitizeURLError(err)}
	}
	h := req.Header
	h["Content-Type"] = []string{ctype}
	link := linkFor(ctype, m.Link)
	if link != "" {
		if !validHeaderValue(link) {
			return &Error{Cause: "invalid Link header value"}
		}
		h["Link"] = []string{link}
	}
	h["User-Agent"] = []string{s.userAgent}
	uaSet := false
	for _, kv := range m.Headers {
		if !validHeaderName(kv.Key) {
			return &Error{Cause: fmt.Sprintf("receiverInfo: invalid header name %q", kv.Key)}
		}
		if !validHeaderValue(kv.Value) {
			return &Error{Cause: fmt.Sprintf("receiverInfo: invalid value for header %q", kv.Key)}
		}
		if reservedHeader(kv.Key) || (link != "" && strings.EqualFold(kv.Key, "Link")) {
			continue
		}
		if strings.EqualFold(kv.Key, "User-Agent") && !uaSet {
			h.Del("User-Agent")
			uaSet = true
		}
		h.Add(kv.Key, kv.Value)
	}

	resp, err := s.client.Do(req)
	if err != nil {
		return httpFailure(u, err, start, connected.Load())
	}
	// A broken body does not change the answer: the status is what counts.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := &Error{
			Status:    resp.StatusCode,
			Cause:     "receiver answered " + resp.Status,
			Temporary: temporaryStatus(resp.StatusCode),
		}
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			e.Cause += " (redirects are not followed)"
		}
		return e
	}
	return nil
}

// httpFailure describes an exchange with u that ended without an answer.
func httpFailure(u *url.URL, err error, start time.Time, connected bool) *Error {
	host := u.Host
	var secrets []string
	if u.User != nil {
		secrets = append(secrets, u.User.Username())
		if p, ok := u.User.Password(); ok {
			secrets = append(secrets, p)
		}
	}
	what := "connect to " + host
	if connected {
		what = "no answer from " + host
	}
	e := failure(what, err, start, secrets...)
	if connected && e.Cause == what+": connection closed by the peer" {
		e.Cause = "connection closed by " + host + " before its answer"
	}
	return e
}

// temporaryStatus tells whether a receiver answering status may take the
// notification later.
func temporaryStatus(status int) bool {
	switch {
	case status == http.StatusRequestTimeout, status == http.StatusTooEarly, status == http.StatusTooManyRequests:
		return true
	case status == http.StatusNotImplemented, status == http.StatusHTTPVersionNotSupported:
		return false
	}
	return status >= 500
}

// validHeaderName: an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validHeaderValue: no control characters but tab (so no CR or LF).
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

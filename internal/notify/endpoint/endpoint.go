// Package endpoint delivers one NGSI-LD notification to a subscription's
// endpoint: an HTTP POST (ETSI GS CIM 009, the HTTP binding of notifications)
// or an MQTT PUBLISH (the MQTT notification binding, clause 7).
//
// A Sender keeps connections: an HTTP transport that reuses keep-alive
// connections, and a pool of MQTT connections keyed by broker, credentials and
// protocol version, reconnected when they fail. It never retries a delivery
// itself; the caller decides from the returned *Error (Temporary) whether to
// try again later.
//
// Credentials in an endpoint URI (user:password@host) are used to
// authenticate (HTTP basic authentication, MQTT user name and password) and
// never appear in an error or a log line.
package endpoint

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// Message is one notification to deliver.
type Message struct {
	URI          string        // http, https, mqtt or mqtts
	Accept       string        // "application/json" or "application/ld+json" ("application/geo+json" too): the Content-Type sent; "" means application/json
	Link         string        // for application/json: the Link header value pointing to the @context ("" = none); not sent with application/ld+json
	Headers      []KV          // receiverInfo: extra HTTP headers / MQTT metadata (MQTT 5 user properties too)
	NotifierInfo []KV          // MQTT-Version (mqtt3.1.1, the default, or mqtt5.0), MQTT-QoS (0, the default, 1 or 2)
	Body         []byte        // the notification JSON
	Timeout      time.Duration // 0: the Sender's default
}

// KV is one key-value pair of an endpoint's receiverInfo or notifierInfo.
type KV struct{ Key, Value string }

// Options configure a Sender. The zero value is usable.
type Options struct {
	Timeout   time.Duration // per message, connecting included; default 10s
	UserAgent string        // HTTP User-Agent; default "zenne"
	TLS       *tls.Config   // for https and mqtts; nil: the system's roots
	Log       *slog.Logger  // MQTT connection events; nil: no logging
}

// Sender delivers messages. It is safe for concurrent use.
type Sender struct {
	timeout   time.Duration
	userAgent string
	tls       *tls.Config
	log       *slog.Logger
	transport *http.Transport
	client    *http.Client
	mqtt      *mqttPool
	closed    atomic.Bool
}

// DefaultTimeout is the per-message timeout when Options.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// New returns a Sender. Close it to release its connections.
func New(opts Options) *Sender {
	s := &Sender{
		timeout:   opts.Timeout,
		userAgent: opts.UserAgent,
		log:       opts.Log,
	}
	if s.timeout <= 0 {
		s.timeout = DefaultTimeout
	}
	if s.userAgent == "" {
		s.userAgent = "zenne"
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if opts.TLS != nil {
		s.tls = opts.TLS.Clone()
	}
	s.transport = newTransport(s.tls, s.timeout)
	s.client = &http.Client{
		Transport: s.transport,
		// A notification is not resent elsewhere: a 3xx is the receiver's answer.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	s.mqtt = newMQTTPool(s)
	return s
}

// Send delivers m and returns nil when the endpoint took it: an HTTP 2xx
// answer, or an MQTT PUBLISH sent with QoS 0 or acknowledged with QoS 1 and 2.
// Any other outcome is an *Error.
func (s *Sender) Send(ctx context.Context, m *Message) error {
	if m == nil {
		return &Error{Cause: "no message"}
	}
	if s.closed.Load() {
		return &Error{Cause: causeSenderClosed}
	}
	timeout := m.Timeout
	if timeout <= 0 {
		timeout = s.timeout
	}
	ctype, err := contentType(m.Accept)
	if err != nil {
		return err
	}
	u, err := url.Parse(m.URI)
	if err != nil {
		return &Error{Cause: "invalid endpoint URI: " + sanitizeURLError(err)}
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		return s.sendHTTP(ctx, u, ctype, timeout, m)
	case "mqtt", "mqtts":
		return s.sendMQTT(ctx, u, ctype, timeout, m)
	case "":
		return &Error{Cause: "invalid endpoint URI: no scheme"}
	default:
		return &Error{Cause: fmt.Sprintf("unsupported endpoint URI scheme %q", u.Scheme)}
	}
}

// Close closes the pooled MQTT connections and the idle HTTP connections.
// Sends after Close fail.
func (s *Sender) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.mqtt.close()
	s.transport.CloseIdleConnections()
	return nil
}

// causeSenderClosed is the Cause of a Send after Close.
const causeSenderClosed = "sender closed"

// Error says why a message was not delivered.
type Error struct {
	Status    int    // HTTP status of the receiver's answer; 0 if there was none
	Cause     string // what happened, short and human; never contains credentials
	Temporary bool   // a later attempt may succeed (timeout, refused connection, 5xx, 429, broker unavailable)

	err error // for errors.Is: context.Canceled, context.DeadlineExceeded or a syscall.Errno; never carries the URI
}

func (e *Error) Error() string { return e.Cause }

// Unwrap gives context.Canceled when the caller's context was canceled,
// context.DeadlineExceeded on a timeout and the system error (for example
// syscall.ECONNREFUSED) when there is one.
func (e *Error) Unwrap() error { return e.err }

// Content types a notification may be sent as.
const (
	ctJSON    = "application/json"
	ctJSONLD  = "application/ld+json"
	ctGeoJSON = "application/geo+json"
)

func contentType(accept string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(accept)) {
	case "", ctJSON:
		return ctJSON, nil
	case ctJSONLD:
		return ctJSONLD, nil
	case ctGeoJSON:
		return ctGeoJSON, nil
	}
	return "", &Error{Cause: fmt.Sprintf("unsupported accept %q: want application/json, application/ld+json or application/geo+json", accept)}
}

// linkFor is the Link to send with content type ct: none with JSON-LD, whose
// body carries its @context.
func linkFor(ct, link string) string {
	if ct == ctJSONLD {
		return ""
	}
	return link
}

// sanitizeURLError describes a url.Parse error without the URI, which may
// hold a password.
func sanitizeURLError(err error) string {
	var ee url.EscapeError
	if errors.As(err, &ee) {
		return "invalid percent-encoding" // the escape may be part of a password
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return "malformed"
}

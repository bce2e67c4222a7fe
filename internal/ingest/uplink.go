// Package ingest turns device messages into NGSI-LD attribute updates:
// registered devices and service groups (docs/DEVICES.md), payload mapping,
// dead letters and device status. Transports (the MQTT broker or client in
// internal/ingest/mqtt, the HTTP handlers in internal/api/iotapi) hand it
// Uplinks; it writes through the core's batch path.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Format is the shape of an uplink's payload.
type Format uint8

const (
	// JSON is the IoT Agent JSON payload: an object of field -> value, or an
	// array of such objects (readings with their own times).
	JSON Format = iota
	// TTS is a The Things Stack v3 uplink message (webhook): the device id,
	// decoded payload and time are inside it.
	TTS
)

// Uplink is one message from a device as a transport received it.
type Uplink struct {
	Tenant   string // the NGSI-LD tenant ("" the default); MQTT: ""
	APIKey   string // the service group's key (from the topic, ?k= or X-Api-Key)
	DeviceID string // from the topic or ?i=; "" when the payload names it (TTS)
	// DeviceKey is the device's own secret when the transport carries one
	// (HTTP X-Device-Key); MQTT checks it when the client connects.
	DeviceKey string
	Format    Format
	Payload   []byte
	Received  time.Time
	// Transport names where it came from, for status and dead letters:
	// "mqtt", "http", "lorawan".
	Transport string
	// Async: the sender does not wait for the outcome (MQTT QoS 0).
	// Receive returns once the message is checked and queued for writing;
	// a write that fails later is counted and logged. Otherwise Receive
	// returns when the update is durable (HTTP 200, MQTT QoS 1 PUBACK).
	Async bool
}

// Receiver takes uplinks. Transports call it concurrently. It returns nil
// when the message was accepted (written, or queued for a write that will be
// retried), or a *Rejection.
type Receiver interface {
	Receive(ctx context.Context, u *Uplink) error
}

// Rejection is why an uplink was refused; HTTP transports answer with Status.
type Rejection struct {
	Status int    // 400, 401, 403, 404, 413, 422 or 429
	Reason string // for the device's operator: what was wrong and what to do
	// RetryAfter is set with 429.
	RetryAfter time.Duration
}

func (r *Rejection) Error() string { return r.Reason }

// Reject builds a *Rejection.
func Reject(status int, format string, args ...any) *Rejection {
	return &Rejection{Status: status, Reason: fmt.Sprintf(format, args...)}
}

// AsRejection returns err's *Rejection, or a 500-free default for other
// errors: 503 (the store is unavailable or the server is stopping).
func AsRejection(err error) *Rejection {
	var r *Rejection
	if errors.As(err, &r) {
		return r
	}
	return &Rejection{Status: http.StatusServiceUnavailable, Reason: "the message could not be stored now: " + err.Error() + "; send it again later"}
}

// Authenticator decides MQTT connections and publications on the embedded
// broker.
type Authenticator interface {
	// AllowConnect reports whether a client may connect with these
	// credentials: a registered device id with its key, or (when the
	// device has no key) its id alone; the empty username is allowed only
	// when anonymous publishing is enabled.
	AllowConnect(username, password string) bool
	// AllowPublish reports whether the client that connected as username
	// may publish for deviceID with apiKey.
	AllowPublish(username, apiKey, deviceID string) bool
}

package simulate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/zenne-city/zenne/internal/ingest"
)

// ReceiverSender hands uplinks straight to zenne's ingest in the same
// process: what `zenne demo` uses, with no network in between.
type ReceiverSender struct {
	Receiver ingest.Receiver
	Tenant   string // "" the default tenant
	// Transport names the source in device status and dead letters
	// (default "simulator").
	Transport string
	// Concurrency is the suggested number of concurrent sends (default 8).
	Concurrency int
	// Async does not wait for the write (as MQTT QoS 0): Receive returns
	// once the message is checked and queued.
	Async bool
}

// Workers is the suggested number of concurrent sends.
func (s *ReceiverSender) Workers() int {
	if s.Concurrency > 0 {
		return s.Concurrency
	}
	return 8
}

// Send passes the payload to the Receiver as an IoT Agent JSON uplink.
func (s *ReceiverSender) Send(ctx context.Context, d *Device, payload []byte) error {
	tr := s.Transport
	if tr == "" {
		tr = "simulator"
	}
	err := s.Receiver.Receive(ctx, &ingest.Uplink{
		Tenant:    s.Tenant,
		APIKey:    d.APIKey,
		DeviceID:  d.ID,
		Format:    ingest.JSON,
		Payload:   payload,
		Received:  time.Now(),
		Transport: tr,
		Async:     s.Async,
	})
	if err == nil {
		return nil
	}
	var r *ingest.Rejection
	if errors.As(err, &r) {
		return &SendError{Kind: fmt.Sprintf("rejected %d", r.Status), Err: fmt.Errorf("device %s: %w", d.ID, err)}
	}
	return &SendError{Kind: "error", Err: fmt.Errorf("device %s: %w", d.ID, err)}
}

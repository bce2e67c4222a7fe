package main

import (
	"context"
	"net/url"

	"github.com/zenne-city/zenne/internal/ingest"
	"github.com/zenne-city/zenne/internal/ingest/mqtt"
)

// counter is a Receiver that takes every message and counts it.
type counter func()

func (c counter) Receive(context.Context, *ingest.Uplink) error {
	c()
	return nil
}

func startZenne(ctx context.Context, count func()) (target, error) {
	s, err := mqtt.NewServer(mqtt.Options{Listen: "127.0.0.1:0", Receiver: counter(count), AllowAnonymous: true, Logger: quiet()})
	if err != nil {
		return target{}, err
	}
	if err := s.Start(ctx); err != nil {
		return target{}, err
	}
	return target{addr: s.Addr(), close: func() { s.Close() }}, nil
}

// external subscribes to an external broker with internal/ingest/mqtt's
// client; the publishers connect to the same broker.
func external(broker string) startFunc {
	return func(ctx context.Context, count func()) (target, error) {
		u, err := url.Parse(broker)
		if err != nil {
			return target{}, err
		}
		c, err := mqtt.NewClient(mqtt.ClientOptions{BrokerURL: broker, Receiver: counter(count), Logger: quiet()})
		if err != nil {
			return target{}, err
		}
		if err := c.Start(ctx); err != nil {
			return target{}, err
		}
		return target{addr: u.Host, close: func() { c.Close() }}, nil
	}
}

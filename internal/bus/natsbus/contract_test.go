package natsbus_test

// The bus conformance suite (internal/bus/bustest) on the NATS bus.

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/zenne-city/zenne/internal/bus"
	"github.com/zenne-city/zenne/internal/bus/bustest"
	"github.com/zenne-city/zenne/internal/bus/natsbus"
	"github.com/zenne-city/zenne/internal/store/sqlite"
)

func TestContractNATS(t *testing.T) {
	natsURL(t)
	bustest.Run(t, func(t *testing.T, s *sqlite.Store, window int) (bus.Bus, func(uint64)) {
		name := newStream(t)
		b := newBus(t, natsbus.Options{Stream: name, Log: s, Window: window})
		js := jsFor(t)
		return b, func(upTo uint64) {
			waitFor(t, "the changes to be published", 10*time.Second, func() bool { return b.Durable() >= upTo })
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			st, err := js.Stream(ctx, name)
			if err == nil {
				err = st.Purge(ctx, jetstream.WithPurgeSequence(upTo+1))
			}
			if err != nil {
				t.Fatalf("purge the stream up to %d: %v", upTo, err)
			}
		}
	})
}

package bus_test

import (
	"testing"

	"github.com/zenne-city/zenne/internal/bus"
	"github.com/zenne-city/zenne/internal/bus/bustest"
	"github.com/zenne-city/zenne/internal/store/sqlite"
)

// TestLocal runs the bus conformance suite on the in-process bus.
func TestLocal(t *testing.T) {
	bustest.Run(t, func(t *testing.T, s *sqlite.Store, window int) (bus.Bus, func(uint64)) {
		return bus.NewLocal(s, window), func(uint64) {} // Local keeps nothing the log does not
	})
}

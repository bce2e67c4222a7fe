package app

import (
	"context"
	"fmt"
	"time"

	"github.com/zenne-city/zenne/internal/demo"
	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/ngsild/geo"
	"github.com/zenne-city/zenne/internal/simulate"
	"github.com/zenne-city/zenne/internal/store"
)

// LoadDemo loads the Brussels demo city into the default tenant through the
// broker's batch upsert, as any client would, and returns the count per type.
func (a *App) LoadDemo(ctx context.Context, progress func(done, total int)) (map[string]int, error) {
	raw, err := demo.City(1, time.Now())
	if err != nil {
		return nil, fmt.Errorf("build demo city: %w", err)
	}
	a.demoCity = raw
	opts := ngsild.ParseOptions{ValidateGeometry: func(v any) error { _, err := geo.ParseGeometry(v); return err }}
	var batch []*ngsild.Entity
	flush := func(done int) error {
		if len(batch) == 0 {
			return nil
		}
		res, err := a.Broker.BatchUpsert(ctx, store.DefaultTenant, batch, false)
		if err != nil {
			return err
		}
		if len(res.Errors) > 0 {
			return fmt.Errorf("demo entity %s: %v", res.Errors[0].EntityID, res.Errors[0].Err)
		}
		batch = batch[:0]
		if progress != nil {
			progress(done, len(raw))
		}
		return nil
	}
	for i, body := range raw {
		c, err := a.Resolver.Resolve(ctx, body["@context"])
		if err != nil {
			return nil, fmt.Errorf("demo entity %v: @context: %w", body["id"], err)
		}
		e, err := ngsild.ParseEntity(body, c, opts)
		if err != nil {
			return nil, fmt.Errorf("demo entity %v: %w", body["id"], err)
		}
		batch = append(batch, e)
		if len(batch) == 200 {
			if err := flush(i + 1); err != nil {
				return nil, err
			}
		}
	}
	if err := flush(len(raw)); err != nil {
		return nil, err
	}
	return demo.Summary(raw), nil
}

// StartSimulator keeps the loaded demo city alive: a simulated device for
// each of its sensors (bins, meters, counters, stations) is registered with
// the device service and sends readings to it in-process, each at its own
// interval, the first within a second, until ctx ends. It returns the number
// of devices.
func (a *App) StartSimulator(ctx context.Context) (int, error) {
	if a.demoCity == nil {
		return 0, fmt.Errorf("load the demo city first")
	}
	fleet, err := simulate.DemoFleet(demo.Sensors(a.demoCity), simulate.FleetOptions{Seed: 1})
	if err != nil {
		return 0, err
	}
	if _, err := fleet.ProvisionIn(ctx, a.Devices, store.DefaultTenant); err != nil {
		return 0, fmt.Errorf("register the demo's devices: %w", err)
	}
	go func() {
		if _, err := simulate.Run(ctx, simulate.Config{Fleet: fleet}, &simulate.ReceiverSender{Receiver: a.Devices}); err != nil && ctx.Err() == nil {
			a.cfg.Log.Warn("the demo's simulated sensors stopped", "err", err)
		}
	}()
	return fleet.Len(), nil
}

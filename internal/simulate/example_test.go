package simulate_test

import (
	"context"
	"log"
	"os"
	"time"

	"github.com/zenne-city/zenne/internal/demo"
	"github.com/zenne-city/zenne/internal/ingest"
	"github.com/zenne-city/zenne/internal/simulate"
)

// Keeping the demo city alive in the same process: the fleet of the demo's
// entities, registered with the device service, sends straight to it.
func Example_demo() {
	var devices *ingest.Service // the app's device service
	ctx := context.Background()

	now := time.Now()
	city, err := demo.City(1, now) // the entities the demo loads
	if err != nil {
		log.Fatal(err)
	}
	fleet, err := simulate.DemoFleet(demo.Sensors(city), simulate.FleetOptions{Seed: 1})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := fleet.ProvisionIn(ctx, devices, ""); err != nil {
		log.Fatal(err)
	}
	// Every device at its own interval; Speed 60 would make an hour pass
	// in a minute.
	go simulate.Run(ctx, simulate.Config{Fleet: fleet}, &simulate.ReceiverSender{Receiver: devices})
}

// A load test over MQTT: 10,000 devices, 20,000 messages/s at QoS 0, with
// the latency probe reading values back through the HTTP API.
func Example_load() {
	ctx := context.Background()
	fleet, err := simulate.GeneratedFleet(simulate.FleetOptions{Seed: 1, Devices: 10_000, Probes: 1, SilentFraction: -1, Transport: "MQTT"})
	if err != nil {
		log.Fatal(err)
	}
	// The provisioning API wants an API key with the devices right (an
	// operator's or an admin's); the uplinks carry the devices' own keys.
	key := os.Getenv("ZENNE_API_KEY")
	if _, err := fleet.Provision(ctx, "http://127.0.0.1:1026", "", simulate.APIClient(key, 30*time.Second)); err != nil {
		log.Fatal(err)
	}
	m, err := simulate.DialMQTT(ctx, fleet, simulate.MQTTOptions{URL: "mqtt://127.0.0.1:1883"})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	sum, err := simulate.Run(ctx, simulate.Config{
		Fleet: fleet, Rate: 20_000, Duration: time.Minute,
		Probe: &simulate.ProbeConfig{API: "http://127.0.0.1:1026", Key: key},
	}, m)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("%.0f msg/s, probe p99 %v", sum.Rate, sum.Probe.P99)
}

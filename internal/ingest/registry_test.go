package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/core"

	"github.com/zenne-city/zenne/internal/jsonld"
	"github.com/zenne-city/zenne/internal/store/sqlite"
)

// Two instances' registries over one store: what one registers or deletes,
// the other holds after a reload (the service reloads every few seconds),
// and MQTT permissions follow.
func TestRegistryAcrossInstances(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "zenne.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	res := jsonld.NewResolver(jsonld.Options{})
	a, err := NewRegistry(ctx, st, res, log)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewRegistry(ctx, st, res, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.PutGroups(ctx, "", []Group{{APIKey: "k1", EntityType: "Bin"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.PutDevices(ctx, "", []Device{{DeviceID: "d1", APIKey: "k1", Key: "device-key-1"}}); err != nil {
		t.Fatal(err)
	}
	if b.AllowPublish("d1", "k1", "d1") {
		t.Fatal("b allowed a device it has not loaded yet")
	}
	b.reloadIfStale(ctx, 0)
	if !b.AllowConnect("d1", "device-key-1") || b.AllowConnect("d1", "wrong") || !b.AllowPublish("d1", "k1", "d1") {
		t.Fatal("b does not hold d1 and its key after a reload")
	}
	if b.AllowPublish("", "k1", "d1") || b.AllowPublish("d2", "k1", "d1") {
		t.Fatal("anonymous or another device may publish for d1, which has a key")
	}
	if err := a.DeleteDevice(ctx, "", "d1"); err != nil {
		t.Fatal(err)
	}
	b.reloadIfStale(ctx, 0)
	if b.AllowPublish("d1", "k1", "d1") || b.lookup("", "d1") != nil {
		t.Fatal("b still takes d1 after it was deleted and b reloaded")
	}
}

// Closing the service while devices send must not panic nor hang: the
// senders get a 503 rejection and what was queued is written.
func TestCloseWhileReceiving(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "zenne.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg, err := NewRegistry(ctx, st, jsonld.NewResolver(jsonld.Options{}), log)
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.PutGroups(ctx, "", []Group{{APIKey: "k1", EntityType: "Meter"}}); err != nil {
		t.Fatal(err)
	}
	var ds []Device
	for i := range 8 {
		ds = append(ds, Device{DeviceID: fmt.Sprintf("m%d", i), APIKey: "k1"})
	}
	if _, err := reg.PutDevices(ctx, "", ds); err != nil {
		t.Fatal(err)
	}
	svc := NewService(reg, core.New(st, core.Options{}), log, Options{Rate: 1e9, Burst: 1e9})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for n := 0; ; n++ {
				err := svc.Receive(ctx, &Uplink{APIKey: "k1", DeviceID: fmt.Sprintf("m%d", i), Payload: []byte(fmt.Sprintf(`{"v": %d}`, n)), Async: n%2 == 0, Transport: "http"})
				var rej *Rejection
				if errors.As(err, &rej) && rej.Status == http.StatusServiceUnavailable {
					return
				}
				if err != nil {
					t.Errorf("receive: %v", err)
					return
				}
			}
		})
	}
	time.Sleep(100 * time.Millisecond)
	if err := svc.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
}

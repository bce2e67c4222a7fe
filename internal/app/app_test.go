package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/apitest"
	"github.com/zenne-city/zenne/internal/app"
)

// TestDemoCity loads the demo city as `zenne demo` does and checks it is
// queryable: every type with its count, the municipalities with their
// boundaries, and a typed geo-query in the centre of Brussels.
func TestDemoCity(t *testing.T) {
	s := apitest.Start(t)
	summary, err := s.App.LoadDemo(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if summary["Municipality"] != 19 || summary["Neighbourhood"] != 145 {
		t.Fatalf("summary %v: want 19 municipalities and 145 neighbourhoods", summary)
	}
	total := 0
	for _, n := range summary {
		total += n
	}
	if total < 300 {
		t.Fatalf("only %d demo entities", total)
	}
	r := s.Get("/ngsi-ld/v1/types?details=true", nil).Expect(t, http.StatusOK)
	if got := len(r.JSON(t).([]any)); got != len(summary) {
		t.Fatalf("%d types served, %d loaded", got, len(summary))
	}
	counted := 0
	for typ, n := range summary {
		ctx := map[string]string{}
		if typ == "Municipality" || typ == "Neighbourhood" {
			typ = "https://zenne.city/ns/" + typ
		}
		r := s.Get("/ngsi-ld/v1/entities?count=true&limit=0&type="+typeIRI(typ), ctx).Expect(t, http.StatusOK)
		if r.Header.Get("NGSILD-Results-Count") == "" {
			t.Fatalf("no count for %s", typ)
		}
		var c int
		json.Unmarshal([]byte(r.Header.Get("NGSILD-Results-Count")), &c)
		if c != n {
			t.Errorf("type %s: %d entities, %d loaded", typ, c, n)
		}
		counted += c
	}
	if counted != total {
		t.Errorf("counted %d of %d", counted, total)
	}
	// The Grand-Place lies in the City of Brussels (NIS 21004).
	r = s.Get("/ngsi-ld/v1/entities?type=https://zenne.city/ns/Municipality&georel=intersects&geometry=Point&coordinates=[4.3525,50.8467]&pick=id", nil).Expect(t, http.StatusOK)
	if !strings.Contains(string(r.Body), "urn:ngsi-ld:Municipality:21004") {
		t.Fatalf("the Grand-Place is not in the City of Brussels: %s", r.Body)
	}
}

// typeIRI gives the type as a query term: Smart Data Models types are
// expanded by their own contexts, so ask by full IRI where we know it.
func typeIRI(t string) string {
	if strings.Contains(t, "://") {
		return t
	}
	domains := map[string]string{
		"WasteContainer": "WasteManagement", "ParkingSpot": "Parking", "Streetlight": "Streetlighting",
		"AirQualityObserved": "Environment", "NoiseLevelObserved": "Environment",
		"WaterConsumptionObserved": "WaterConsumption", "Building": "Building",
		"CrowdFlowObserved": "Transportation", "PointOfInterest": "PointOfInterest",
	}
	return "https://smartdatamodels.org/dataModel." + domains[t] + "/" + t
}

func TestHealthAndMetrics(t *testing.T) {
	s := apitest.Start(t)
	for _, path := range []string{"/health", "/health/live", "/health/ready"} {
		r := s.Get(path, nil).Expect(t, http.StatusOK)
		if !strings.Contains(string(r.Body), `"status":"ok"`) {
			t.Fatalf("%s: %s", path, r.Body)
		}
	}
	s.Get("/ngsi-ld/v1/entities/urn:x:1", nil).Expect(t, http.StatusNotFound)
	resp, err := http.Get(s.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`zenne_http_requests_total{code="404",method="GET",route="GET /ngsi-ld/v1/entities/{id}"} 1`,
		"zenne_http_request_duration_seconds_bucket",
		`zenne_build_info{version="test"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestNotReadyAfterStoreClosed: readiness reports the store, liveness does not.
func TestNotReadyAfterStoreClosed(t *testing.T) {
	s := apitest.Start(t)
	s.App.Store.Close()
	s.Get("/health/ready", nil).Expect(t, http.StatusServiceUnavailable)
	s.Get("/health/live", nil).Expect(t, http.StatusOK)
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://zenne:s3cret@db:5432/zenne": "postgres://zenne:xxxxx@db:5432/zenne",
		"postgres://zenne@db/zenne":             "postgres://zenne@db/zenne",
		"sqlite:///var/lib/zenne/zenne.db":      "sqlite:///var/lib/zenne/zenne.db",
		"nats://u:p@nats:4222":                  "nats://u:xxxxx@nats:4222",
	} {
		if got := app.RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestDemoSensorsAlive: `zenne demo` registers a simulated device for each
// sensor of the demo city, and their readings reach the entities within
// seconds.
func TestDemoSensorsAlive(t *testing.T) {
	s := apitest.Start(t)
	if _, err := s.App.LoadDemo(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := time.Now()
	n, err := s.App.StartSimulator(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n < 100 {
		t.Fatalf("%d simulated devices, want one per demo sensor (hundreds)", n)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var page struct {
			Count   int
			Devices []struct {
				Status struct{ Messages int }
			}
		}
		if err := json.Unmarshal(s.Get("/iot/devices?limit=1000", nil).Expect(t, http.StatusOK).Body, &page); err != nil {
			t.Fatal(err)
		}
		seen := 0
		for _, d := range page.Devices {
			if d.Status.Messages > 0 {
				seen++
			}
		}
		if page.Count == n && seen >= n*9/10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s, %d of %d devices have sent a reading", seen, page.Count)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// A bin's filling level is a fresh reading.
	r := s.Get("/ngsi-ld/v1/entities/urn:ngsi-ld:WasteContainer:bxl-0001", map[string]string{
		"Link": apitest.LinkHeader("https://raw.githubusercontent.com/smart-data-models/dataModel.WasteManagement/master/context.jsonld")}).Expect(t, http.StatusOK)
	fl, _ := r.JSON(t).(map[string]any)["fillingLevel"].(map[string]any)
	at, err := time.Parse(time.RFC3339Nano, fmt.Sprint(fl["observedAt"]))
	if err != nil || at.Before(started.Add(-time.Second)) {
		t.Fatalf("fillingLevel %v: want a reading observed since the simulator started", fl)
	}
}

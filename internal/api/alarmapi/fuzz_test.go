package alarmapi_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/zenne-city/zenne/internal/alarm"
	"github.com/zenne-city/zenne/internal/apitest"
	"github.com/zenne-city/zenne/internal/jsonld"
	"github.com/zenne-city/zenne/internal/ngsild"
)

// FuzzParse feeds rule bodies to the parser behind POST /alarms/rules: it
// must not panic, and every error must be an ngsild.Error with a 4xx
// status, which the API answers as such (a 500 would be a bug).
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		fullBins,
		`{"kind": "rate", "entities": [{"type": "WaterMeter"}], "attribute": "flow", "rate": {"above": 5, "below": -5, "per": "PT1H"}}`,
		`{"kind": "count", "entities": [{"idPattern": "^urn:ngsi-ld:AirQualityObserved:"}], "attribute": "no2", "count": {"above": 200, "moreThan": 3, "within": "PT24H"}}`,
		`{"kind": "silence", "entities": [{"type": "Device"}], "silence": {"factor": 3, "atLeast": "PT5M"}}`,
		`{"kind": "silence", "entities": [{"id": "urn:ngsi-ld:Device:1"}], "silence": {"after": "PT1H"}}`,
		`{"kind": "leak", "entities": [{"type": "WaterMeter"}], "attribute": "flow", "timezone": "Europe/Brussels", "leak": {"from": "01:00", "to": "05:00", "atMost": 0.5, "nights": 3}}`,
		`{"kind": "anomaly", "entities": [{"type": "WaterMeter"}], "attribute": "volume", "anomaly": {"method": "delta", "weeks": 4, "sigma": 3, "minRatio": 1.2, "every": "PT15M"}}`,
		`{"kind": "threshold", "entities": [{"type": "Room"}], "q": "temperature>30", "geoQ": {"geometry": "Point", "coordinates": [4.35, 50.85], "georel": "near;maxDistance==500"}, "attribute": "temperature", "threshold": {"below": 5, "clearAbove": 7, "for": "PT10M"}}`,
		`{"kind": "threshold", "entities": [{"type": "Room"}], "attribute": "t", "datasetId": "urn:ds:1", "severity": "critical", "message": {"nl": "{name}: {value}"}, "threshold": {"above": 1}}`,
		`{"kind": "threshold", "entities": [], "threshold": {"above": "x"}}`,
		`{"kind": "leak", "entities": [{"type": "X"}], "attribute": "a", "leak": {"from": "25:00", "to": "05:00", "nights": 1e300}}`,
		`{"id": "", "kind": null, "entities": null}`,
		`{}`,
	} {
		f.Add(seed)
	}
	core := jsonld.NewResolver(jsonld.Options{}).Core()
	f.Fuzz(func(t *testing.T, body string) {
		var m map[string]any
		if json.Unmarshal([]byte(body), &m) != nil || m == nil {
			return
		}
		r, err := alarm.Parse(m, core)
		if err == nil {
			if r == nil || r.Kind == "" {
				t.Fatalf("no error and no rule for %s", body)
			}
			return
		}
		var e *ngsild.Error
		if !errors.As(err, &e) {
			t.Fatalf("%s: error %T %v is not an ngsild.Error", body, err, err)
		}
		if s := e.Status(); s < 400 || s > 499 {
			t.Fatalf("%s: error %v has status %d", body, err, s)
		}
		if e.Detail == "" {
			t.Fatalf("%s: error %v has no detail", body, err)
		}
	})
}

// FuzzCreateRule sends rule bodies to POST /alarms/rules and
// /alarms/backtest on a real server with entities: whatever the body, the
// answer is not a 5xx (a 503 for an unreachable @context aside, which the
// seeds do not use).
func FuzzCreateRule(f *testing.F) {
	for _, seed := range []string{
		fullBins,
		`{"kind": "threshold", "entities": [{"type": "WasteContainer"}], "q": "fillingLevel>0.5;name==\"x\"", "attribute": "fillingLevel", "threshold": {"above": 0.8}}`,
		`{"kind": "threshold", "entities": [{"type": "WasteContainer"}], "geoQ": {"geometry": "Point", "coordinates": [4.35, 50.85], "georel": "near;maxDistance==500"}, "attribute": "fillingLevel", "threshold": {"above": 0.8}}`,
		`{"kind": "silence", "entities": [{"idPattern": "^urn:ngsi-ld:WasteContainer:"}], "silence": {"factor": 3}}`,
		`{"kind": "leak", "entities": [{"type": "WasteContainer"}], "attribute": "fillingLevel", "leak": {"from": "23:00", "to": "05:00", "atMost": 0.1, "nights": 2}}`,
		`{"kind": "anomaly", "entities": [{"type": "WasteContainer"}], "attribute": "fillingLevel", "anomaly": {}}`,
		`{"@context": {"fl": "https://uri.etsi.org/ngsi-ld/default-context/fillingLevel"}, "kind": "count", "entities": [{"type": "WasteContainer"}], "attribute": "fl", "count": {"above": 0.8, "moreThan": 2, "within": "PT1H"}}`,
		`{"@context": [], "kind": "rate", "entities": [{"type": "WasteContainer"}], "attribute": "fillingLevel", "rate": {"below": -0.5, "per": "P1D"}}`,
		`{"id": "x", "kind": "threshold", "entities": [{"id": "urn:ngsi-ld:WasteContainer:a-1"}], "attribute": "fillingLevel", "threshold": {"below": 0.1}}`,
	} {
		f.Add(seed)
	}
	s := apitest.Start(f)
	bins(f, s, nil, "a", 6, 0.5)
	f.Fuzz(func(t *testing.T, body string) {
		if strings.Contains(body, "http") && strings.Contains(body, "@context") {
			return // remote contexts: not this test's subject
		}
		// The server's helpers report to f; within the target, plain HTTP.
		for _, path := range []string{"/alarms/rules", "/alarms/backtest"} {
			resp, err := s.Client.Post(s.URL+path, "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode >= 500 {
				t.Fatalf("POST %s %s: %d %s", path, body, resp.StatusCode, data)
			}
			if resp.StatusCode == http.StatusCreated {
				var made struct{ ID string }
				json.Unmarshal(data, &made)
				req, _ := http.NewRequest("DELETE", s.URL+"/alarms/rules/"+url.PathEscape(made.ID), nil)
				if resp, err := s.Client.Do(req); err == nil {
					resp.Body.Close()
				}
			}
		}
	})
}

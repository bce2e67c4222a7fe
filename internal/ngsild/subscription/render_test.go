package subscription

import (
	"bytes"
	"testing"
	"time"
)

// renderBodies are subscriptions that exercise every member Render writes.
var renderBodies = []struct{ name, body string }{
	{"minimal", minimal},
	{"full", `{
		"id": "urn:ngsi-ld:Subscription:full", "type": "Subscription",
		"subscriptionName": "hot rooms", "description": "rooms above 25 degrees",
		"entities": [{"type": "Building"}, {"idPattern": "^urn:ngsi-ld:Vehicle:", "type": "Vehicle|ex:Truck"}, {"id": "urn:ngsi-ld:Room:1"}],
		"watchedAttributes": ["temperature", "name", "ex:humidity"],
		"notificationTrigger": ["attributeUpdated", "entityDeleted"],
		"q": "temperature>25;(name==\"Tower\"|owner==urn:ngsi-ld:Person:1)", "scopeQ": "/Brussels/#,/Ghent",
		"geoQ": {"georel": "near;maxDistance==2000", "geometry": "Point", "coordinates": [4.35, 50.85], "geoproperty": "location"},
		"isActive": false, "expiresAt": "2030-01-01T00:00:00.123456Z", "throttling": 1.5, "lang": "nl",
		"notification": {"attributes": ["temperature", "owner"], "format": "simplified", "sysAttrs": true,
			"endpoint": {"uri": "mqtts://broker.example.org:8883/rooms/hot", "accept": "application/ld+json",
				"timeout": 2500, "cooldown": 1000,
				"receiverInfo": [{"key": "x-tenant", "value": "city"}],
				"notifierInfo": [{"key": "MQTT-Version", "value": "mqtt5.0"}, {"key": "MQTT-QoS", "value": "1"}]}}}`},
	{"periodic", `{"id": "urn:ngsi-ld:Subscription:p", "type": "Subscription", "entities": [{"type": "Building"}], "timeInterval": 90,
		"notification": {"format": "concise", "showChanges": true, "endpoint": {"uri": "https://h/n"}}}`},
	{"watched-only", `{"id": "urn:ngsi-ld:Subscription:w", "type": "Subscription", "watchedAttributes": ["owner"],
		"expiresAt": "2025-06-01T12:30:00Z", "notification": {"endpoint": {"uri": "http://h/n"}}}`},
}

func TestRenderGolden(t *testing.T) {
	ctx := testContext(t)
	status := Status{
		TimesSent: 12, TimesFailed: 2,
		LastNotification: now.Add(-time.Minute), LastSuccess: now.Add(-time.Hour), LastFailure: now.Add(-time.Minute),
		LastFailureCause: "connection refused",
	}
	for _, tc := range renderBodies {
		t.Run(tc.name, func(t *testing.T) {
			s := mustParse(t, tc.body)
			golden(t, "render/"+tc.name+".json", Render(s, Status{}, RenderOptions{Compact: ctx, Now: now}))
			// An hour later (the watched-only one has expired), with
			// sysAttrs and a failing endpoint.
			golden(t, "render/"+tc.name+"-status.json", Render(s, status, RenderOptions{Compact: ctx, SysAttrs: true, Now: now.Add(time.Hour)}))
		})
	}
}

func TestRenderRoundTrip(t *testing.T) {
	ctx := testContext(t)
	for _, tc := range renderBodies {
		t.Run(tc.name, func(t *testing.T) {
			s := mustParse(t, tc.body)
			body := roundTrip(t, s, ctx)

			stored, err := ParseStored(body, ctx)
			if err != nil {
				t.Fatalf("ParseStored(Render(s)): %v", err)
			}
			if d := sameSubscription(s, stored); d != "" {
				t.Errorf("ParseStored(Render(s)) differs: %s", d)
			}

			again, err := Parse(body, ctx, now)
			if err != nil {
				t.Fatalf("Parse(Render(s)): %v", err)
			}
			if d := sameSubscription(s, again); d != "" {
				t.Errorf("Parse(Render(s)) differs: %s", d)
			}

			if a, b := marshal(t, Render(s, Status{}, RenderOptions{Compact: ctx})), marshal(t, Render(stored, Status{}, RenderOptions{Compact: ctx})); !bytes.Equal(a, b) {
				t.Errorf("renders differ:\n%s\n%s", a, b)
			}
		})
	}
}

func TestRenderAfterUpdate(t *testing.T) {
	ctx := testContext(t)
	s := mustParse(t, renderBodies[1].body)
	u, err := Update(s, decode(t, `{"isActive": true, "q": null, "notification": {"format": "normalized", "endpoint": {"timeout": null}}}`), ctx, now.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	stored, err := ParseStored(roundTrip(t, u, ctx), ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := sameSubscription(u, stored); d != "" {
		t.Error(d)
	}
}

func TestState(t *testing.T) {
	s := mustParse(t, `{"type": "Subscription", "entities": [{"type": "Building"}], "expiresAt": "2025-06-02T00:00:00Z", "notification": {"endpoint": {"uri": "http://h/n"}}}`)
	for _, tc := range []struct {
		active bool
		at     time.Time
		want   string
	}{
		{true, now, "active"},
		{false, now, "paused"},
		{true, now.Add(24 * time.Hour), "expired"},
		{false, now.Add(24 * time.Hour), "expired"},
		{true, time.Time{}, "active"},
	} {
		s.IsActive = tc.active
		if got := s.State(tc.at); got != tc.want {
			t.Errorf("isActive %v at %v: %q, want %q", tc.active, tc.at, got, tc.want)
		}
	}
	for _, tc := range []struct {
		st   Status
		want string
	}{
		{Status{}, ""},
		{Status{LastNotification: now, LastSuccess: now}, "ok"},
		{Status{LastNotification: now, LastSuccess: now.Add(-time.Hour), LastFailure: now}, "failed"},
		{Status{LastNotification: now, LastSuccess: now, LastFailure: now.Add(-time.Hour)}, "ok"},
	} {
		if got := tc.st.State(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.st, got, tc.want)
		}
	}
}

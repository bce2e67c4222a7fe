package subscription

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
)

const minimal = `{"type": "Subscription", "entities": [{"type": "Building"}],
	"notification": {"endpoint": {"uri": "http://localhost:8080/notify"}}}`

func TestParseDefaults(t *testing.T) {
	s := mustParse(t, minimal)
	ctx := testContext(t)
	if s.ID != "" || s.Context != nil {
		t.Errorf("ID %q, Context %v: the caller sets them", s.ID, s.Context)
	}
	if !s.IsActive {
		t.Error("isActive defaults to true")
	}
	if !slices.Equal(s.Triggers, []Trigger{AttributeCreated, AttributeUpdated}) {
		t.Errorf("default triggers %v", s.Triggers)
	}
	n := s.Notification
	if n.Format != ngsild.Normalized || n.Endpoint.Accept != MIMEJSON || n.SysAttrs || n.ShowChanges {
		t.Errorf("notification defaults %+v", n)
	}
	if !s.CreatedAt.Equal(now) || !s.ModifiedAt.Equal(now) {
		t.Errorf("createdAt %v modifiedAt %v, want %v", s.CreatedAt, s.ModifiedAt, now)
	}
	if got := s.Entities[0].Type.AnyOf(); !slices.Equal(got, []string{ctx.ExpandTerm("Building")}) {
		t.Errorf("type expanded to %v", got)
	}
}

func TestParseFull(t *testing.T) {
	s := mustParse(t, `{
		"id": "urn:ngsi-ld:Subscription:full", "type": "Subscription",
		"subscriptionName": "hot rooms", "description": "rooms above 25 degrees",
		"entities": [{"type": "Building"}, {"idPattern": "^urn:ngsi-ld:Vehicle:", "type": "Vehicle"}, {"id": "urn:ngsi-ld:Room:1"}],
		"watchedAttributes": ["temperature", "name", "temperature"],
		"notificationTrigger": ["attributeUpdated", "entityDeleted"],
		"q": "temperature>25", "scopeQ": "/Brussels/#",
		"geoQ": {"georel": "near;maxDistance==2000", "geometry": "Point", "coordinates": [4.35, 50.85]},
		"isActive": false, "expiresAt": "2030-01-01T00:00:00.123456Z", "throttling": 1.5, "lang": "nl-BE",
		"notification": {"attributes": ["temperature"], "format": "simplified", "sysAttrs": true,
			"endpoint": {"uri": "mqtts://user:pw@broker.example.org:8883/rooms/hot", "accept": "application/ld+json",
				"timeout": 2500, "cooldown": 1000,
				"receiverInfo": [{"key": "x-tenant", "value": "city"}],
				"notifierInfo": [{"key": "MQTT-Version", "value": "mqtt5.0"}, {"key": "MQTT-QoS", "value": "1"}]}}}`)
	ctx := testContext(t)
	if s.ID != "urn:ngsi-ld:Subscription:full" || s.Name != "hot rooms" || s.Description != "rooms above 25 degrees" {
		t.Errorf("id/name/description: %+v", s)
	}
	if want := []string{ctx.ExpandTerm("temperature"), ctx.ExpandTerm("name")}; !slices.Equal(s.WatchedAttributes, want) {
		t.Errorf("watchedAttributes %v, want %v (expanded, without duplicates)", s.WatchedAttributes, want)
	}
	if !slices.Equal(s.Triggers, []Trigger{AttributeUpdated, EntityDeleted}) {
		t.Errorf("triggers %v", s.Triggers)
	}
	if s.Q.String() != "temperature>25" || s.ScopeQ.String() != "/Brussels/#" || s.GeoQ == nil || s.GeoQ.MaxDistance != 2000 {
		t.Errorf("queries %v %v %+v", s.Q, s.ScopeQ, s.GeoQ)
	}
	if s.IsActive || s.Throttling != 1500*time.Millisecond || s.Lang != "nl-BE" {
		t.Errorf("isActive %v throttling %v lang %q", s.IsActive, s.Throttling, s.Lang)
	}
	if want := time.Date(2030, 1, 1, 0, 0, 0, 123e6, time.UTC); !s.ExpiresAt.Equal(want) {
		t.Errorf("expiresAt %v, want %v (to the millisecond)", s.ExpiresAt, want)
	}
	n := s.Notification
	if n.Format != ngsild.KeyValues || !n.SysAttrs || !slices.Equal(n.Attributes, []string{ctx.ExpandTerm("temperature")}) {
		t.Errorf("notification %+v", n)
	}
	e := n.Endpoint
	if e.Accept != MIMEJSONLD || e.Timeout != 2500*time.Millisecond || e.Cooldown != time.Second ||
		!slices.Equal(e.ReceiverInfo, []KeyValue{{"x-tenant", "city"}}) || len(e.NotifierInfo) != 2 {
		t.Errorf("endpoint %+v", e)
	}
	if s.Entities[1].IDPattern.String() != "^urn:ngsi-ld:Vehicle:" || s.Entities[2].ID != "urn:ngsi-ld:Room:1" || s.Entities[2].Type != nil {
		t.Errorf("selectors %+v", s.Entities)
	}
}

func TestParseAccepts(t *testing.T) {
	for _, tc := range []struct{ name, body string }{
		{"watchedAttributes without entities", `{"type": "Subscription", "watchedAttributes": ["temperature"], "notification": {"endpoint": {"uri": "http://h/n"}}}`},
		{"id selector without type", `{"type": "Subscription", "entities": [{"id": "urn:ngsi-ld:Building:1"}], "notification": {"endpoint": {"uri": "https://h/n"}}}`},
		{"idPattern selector without type", `{"type": "Subscription", "entities": [{"idPattern": ".*"}], "notification": {"endpoint": {"uri": "http://h/n"}}}`},
		{"periodic", `{"type": "Subscription", "entities": [{"type": "Building"}], "timeInterval": 60, "notification": {"endpoint": {"uri": "http://h/n"}}}`},
		{"mqtt", `{"type": "Subscription", "entities": [{"type": "Building"}], "notification": {"endpoint": {"uri": "mqtt://broker:1883/topic"}}}`},
		{"concise with showChanges", `{"type": "Subscription", "entities": [{"type": "Building"}], "notification": {"format": "concise", "showChanges": true, "endpoint": {"uri": "http://h/n"}}}`},
		{"lang any", `{"type": "Subscription", "entities": [{"type": "Building"}], "lang": "*", "notification": {"endpoint": {"uri": "http://h/n"}}}`},
		{"type expression", `{"type": "Subscription", "entities": [{"type": "(Building;ex:Tower)|Vehicle"}], "notification": {"endpoint": {"uri": "http://h/n"}}}`},
		{"unknown and read-only members ignored", `{"type": "Subscription", "status": "active", "jsonldContext": "http://x/c", "entities": [{"type": "Building"}],
			"notification": {"timesSent": 3, "status": "ok", "endpoint": {"uri": "http://h/n"}}}`},
		{"expanded type", `{"type": "https://uri.etsi.org/ngsi-ld/Subscription", "entities": [{"type": "Building"}], "notification": {"endpoint": {"uri": "http://h/n"}}}`},
	} {
		t.Run(tc.name, func(t *testing.T) { mustParse(t, tc.body) })
	}
}

// parseErrors are bodies Parse must reject: each is minimal with one change.
var parseErrors = []struct {
	name, body string
	typ        ngsild.ErrorType
	detail     string
}{
	{"no type", `{"entities": [{"type": "Building"}], "notification": {"endpoint": {"uri": "http://h/n"}}}`,
		ngsild.BadRequestData, "no type member"},
	{"wrong type", `{"type": "Subscriptions", "entities": [{"type": "Building"}], "notification": {"endpoint": {"uri": "http://h/n"}}}`,
		ngsild.BadRequestData, `type must be "Subscription"`},
	{"no notification", `{"type": "Subscription", "entities": [{"type": "Building"}]}`,
		ngsild.BadRequestData, "no notification member"},
	{"notification not an object", `{"type": "Subscription", "entities": [{"type": "Building"}], "notification": "http://h/n"}`,
		ngsild.InvalidRequest, "notification must be an object"},
	{"no endpoint", `{"type": "Subscription", "entities": [{"type": "Building"}], "notification": {"format": "normalized"}}`,
		ngsild.BadRequestData, "notification has no endpoint"},
	{"endpoint not an object", `{"type": "Subscription", "entities": [{"type": "Building"}], "notification": {"endpoint": "http://h/n"}}`,
		ngsild.InvalidRequest, "notification.endpoint must be an object"},
	{"no uri", `{"type": "Subscription", "entities": [{"type": "Building"}], "notification": {"endpoint": {"accept": "application/json"}}}`,
		ngsild.BadRequestData, "notification.endpoint has no uri"},
	{"uri not a string", `{"type": "Subscription", "entities": [{"type": "Building"}], "notification": {"endpoint": {"uri": 42}}}`,
		ngsild.InvalidRequest, "notification.endpoint.uri must be a string"},
	{"uri unparsable", `{"type": "Subscription", "entities": [{"type": "Building"}], "notification": {"endpoint": {"uri": "http://h/a b"}}}`,
		ngsild.BadRequestData, "not a valid URI"},
	{"uri relative", `{"type": "Subscription", "entities": [{"type": "Building"}], "notification": {"endpoint": {"uri": "/notify"}}}`,
		ngsild.BadRequestData, "not a valid URI"},
	{"uri scheme", `{"type": "Subscription", "entities": [{"type": "Building"}], "notification": {"endpoint": {"uri": "ftp://h/n"}}}`,
		ngsild.BadRequestData, `scheme "ftp" is not supported`},
	{"uri without host", `{"type": "Subscription", "entities": [{"type": "Building"}], "notification": {"endpoint": {"uri": "http:/notify"}}}`,
		ngsild.BadRequestData, "has no host"},
	{"accept", `{"type": "Subscription", "entities": [{"type": "Building"}], "notification": {"endpoint": {"uri": "http://h/n", "accept": "text/plain"}}}`,
		ngsild.BadRequestData, `notification.endpoint.accept "text/plain" is not supported`},
	{"accept geo+json", `{"type": "Subscription", "entities": [{"type": "Building"}], "notification": {"endpoint": {"uri": "http://h/n", "accept": "application/geo+json"}}}`,
		ngsild.BadRequestData, "notification.endpoint.accept"},
	{"negative timeout", `{"type": "Subscription", "entities": [{"type": "Building"}], "notification": {"endpoint": {"uri": "http://h/n", "timeout": -1}}}`,
		ngsild.BadRequestData, "notification.endpoint.timeout must be a number of milliseconds"},
	{"timeout string", `{"type": "Subscription", "entities": [{"type": "Building"}], "notification": {"endpoint": {"uri": "http://h/n", "timeout": "5s"}}}`,
		ngsild.InvalidRequest, "notification.endpoint.timeout must be a number"},
	{"receiverInfo not a list", `{"type": "Subscription", "entities": [{"type": "Building"}], "notification": {"endpoint": {"uri": "http://h/n", "receiverInfo": {"key": "a", "value": "b"}}}}`,
		ngsild.InvalidRequest, "notification.endpoint.receiverInfo must be an array"},
	{"receiverInfo value not a string", `{"type": "Subscription", "entities": [{"type": "Building"}], "notification": {"endpoint": {"uri": "http://h/n", "receiverInfo": [{"key": "a", "value": 1}]}}}`,
		ngsild.BadRequestData, "receiverInfo[0] needs a string key and a string value"},
	{"receiverInfo bad header name", `{"type": "Subscription", "entities": [{"type": "Building"}], "notification": {"endpoint": {"uri": "http://h/n", "receiverInfo": [{"key": "a b", "value": "c"}]}}}`,
		ngsild.BadRequestData, "not an HTTP header name"},
	{"receiverInfo line break", `{"type": "Subscription", "entities": [{"type": "Building"}], "notification": {"endpoint": {"uri": "http://h/n", "receiverInfo": [{"key": "a", "value": "b\r\nX-Evil: 1"}]}}}`,
		ngsild.BadRequestData, "line break"},
	{"notifierInfo not a list", `{"type": "Subscription", "entities": [{"type": "Building"}], "notification": {"endpoint": {"uri": "mqtt://h/t", "notifierInfo": "MQTT-QoS"}}}`,
		ngsild.InvalidRequest, "notification.endpoint.notifierInfo must be an array"},
	{"MQTT-Version", `{"type": "Subscription", "entities": [{"type": "Building"}], "notification": {"endpoint": {"uri": "mqtt://h/t", "notifierInfo": [{"key": "MQTT-Version", "value": "mqtt4"}]}}}`,
		ngsild.BadRequestData, `MQTT-Version "mqtt4"`},
	{"MQTT-QoS", `{"type": "Subscription", "entities": [{"type": "Building"}], "notification": {"endpoint": {"uri": "mqtt://h/t", "notifierInfo": [{"key": "MQTT-QoS", "value": "3"}]}}}`,
		ngsild.BadRequestData, `MQTT-QoS "3"`},
	{"unknown trigger", `{"type": "Subscription", "entities": [{"type": "Building"}], "notificationTrigger": ["entityChanged"], "notification": {"endpoint": {"uri": "http://h/n"}}}`,
		ngsild.BadRequestData, `unknown notificationTrigger "entityChanged"`},
	{"empty triggers", `{"type": "Subscription", "entities": [{"type": "Building"}], "notificationTrigger": [], "notification": {"endpoint": {"uri": "http://h/n"}}}`,
		ngsild.BadRequestData, "notificationTrigger must not be empty"},
	{"triggers not a list", `{"type": "Subscription", "entities": [{"type": "Building"}], "notificationTrigger": "entityCreated", "notification": {"endpoint": {"uri": "http://h/n"}}}`,
		ngsild.InvalidRequest, "notificationTrigger must be an array"},
	{"bad q", `{"type": "Subscription", "entities": [{"type": "Building"}], "q": "temperature>>25", "notification": {"endpoint": {"uri": "http://h/n"}}}`,
		ngsild.BadRequestData, "q: "},
	{"q not a string", `{"type": "Subscription", "entities": [{"type": "Building"}], "q": 25, "notification": {"endpoint": {"uri": "http://h/n"}}}`,
		ngsild.InvalidRequest, "q must be a string"},
	{"bad scopeQ", `{"type": "Subscription", "entities": [{"type": "Building"}], "scopeQ": "/a/#/b", "notification": {"endpoint": {"uri": "http://h/n"}}}`,
		ngsild.BadRequestData, "scopeQ: "},
	{"geoQ georel", `{"type": "Subscription", "entities": [{"type": "Building"}], "geoQ": {"georel": "beside", "geometry": "Point", "coordinates": [4, 50]}, "notification": {"endpoint": {"uri": "http://h/n"}}}`,
		ngsild.BadRequestData, `geoQ: unknown georel "beside"`},
	{"geoQ incomplete", `{"type": "Subscription", "entities": [{"type": "Building"}], "geoQ": {"georel": "within", "geometry": "Polygon"}, "notification": {"endpoint": {"uri": "http://h/n"}}}`,
		ngsild.BadRequestData, "geoQ: a geo-query needs georel, geometry and coordinates"},
	{"geoQ not an object", `{"type": "Subscription", "entities": [{"type": "Building"}], "geoQ": "near", "notification": {"endpoint": {"uri": "http://h/n"}}}`,
		ngsild.BadRequestData, "geoQ must be a JSON object"},
	{"throttling and timeInterval", `{"type": "Subscription", "entities": [{"type": "Building"}], "throttling": 10, "timeInterval": 60, "notification": {"endpoint": {"uri": "http://h/n"}}}`,
		ngsild.BadRequestData, "throttling and timeInterval"},
	{"zero timeInterval", `{"type": "Subscription", "entities": [{"type": "Building"}], "timeInterval": 0, "notification": {"endpoint": {"uri": "http://h/n"}}}`,
		ngsild.BadRequestData, "timeInterval must be a positive number"},
	{"negative timeInterval", `{"type": "Subscription", "entities": [{"type": "Building"}], "timeInterval": -5, "notification": {"endpoint": {"uri": "http://h/n"}}}`,
		ngsild.BadRequestData, "timeInterval must be a positive number"},
	{"negative throttling", `{"type": "Subscription", "entities": [{"type": "Building"}], "throttling": -1, "notification": {"endpoint": {"uri": "http://h/n"}}}`,
		ngsild.BadRequestData, "throttling must be a positive number"},
	{"zero throttling", `{"type": "Subscription", "entities": [{"type": "Building"}], "throttling": 0, "notification": {"endpoint": {"uri": "http://h/n"}}}`,
		ngsild.BadRequestData, "throttling must be a positive number"},
	{"tiny throttling", `{"type": "Subscription", "entities": [{"type": "Building"}], "throttling": 0.0001, "notification": {"endpoint": {"uri": "http://h/n"}}}`,
		ngsild.BadRequestData, "throttling must be at least 0.001 seconds"},
	{"huge timeInterval", `{"type": "Subscription", "entities": [{"type": "Building"}], "timeInterval": 1e12, "notification": {"endpoint": {"uri": "http://h/n"}}}`,
		ngsild.BadRequestData, "timeInterval must be at most"},
	{"throttling string", `{"type": "Subscription", "entities": [{"type": "Building"}], "throttling": "10", "notification": {"endpoint": {"uri": "http://h/n"}}}`,
		ngsild.InvalidRequest, "throttling must be a number of seconds"},
	{"expiresAt invalid", `{"type": "Subscription", "entities": [{"type": "Building"}], "expiresAt": "tomorrow", "notification": {"endpoint": {"uri": "http://h/n"}}}`,
		ngsild.BadRequestData, `expiresAt "tomorrow" is not a DateTime`},
	{"expiresAt in the past", `{"type": "Subscription", "entities": [{"type": "Building"}], "expiresAt": "2020-01-01T00:00:00Z", "notification": {"endpoint": {"uri": "http://h/n"}}}`,
		ngsild.BadRequestData, "expiresAt 2020-01-01T00:00:00.000Z is not in the future"},
	{"expiresAt now", `{"type": "Subscription", "entities": [{"type": "Building"}], "expiresAt": "2025-06-01T12:00:00Z", "notification": {"endpoint": {"uri": "http://h/n"}}}`,
		ngsild.BadRequestData, "is not in the future"},
	{"empty selector", `{"type": "Subscription", "entities": [{}], "notification": {"endpoint": {"uri": "http://h/n"}}}`,
		ngsild.BadRequestData, "entities[0] needs a type, an id or an idPattern"},
	{"selector not an object", `{"type": "Subscription", "entities": ["Building"], "notification": {"endpoint": {"uri": "http://h/n"}}}`,
		ngsild.InvalidRequest, "entities[0] must be an object"},
	{"entities not a list", `{"type": "Subscription", "entities": {"type": "Building"}, "notification": {"endpoint": {"uri": "http://h/n"}}}`,
		ngsild.InvalidRequest, "entities must be an array"},
	{"entities empty", `{"type": "Subscription", "entities": [], "notification": {"endpoint": {"uri": "http://h/n"}}}`,
		ngsild.BadRequestData, "entities must not be empty"},
	{"bad idPattern", `{"type": "Subscription", "entities": [{"type": "Building"}, {"idPattern": "urn:(x"}], "notification": {"endpoint": {"uri": "http://h/n"}}}`,
		ngsild.BadRequestData, `entities[1].idPattern "urn:(x" is not a regular expression`},
	{"bad id", `{"type": "Subscription", "entities": [{"id": "not a uri", "type": "Building"}], "notification": {"endpoint": {"uri": "http://h/n"}}}`,
		ngsild.BadRequestData, `entities[0].id "not a uri" is not a URI`},
	{"bad type expression", `{"type": "Subscription", "entities": [{"type": "Building;"}], "notification": {"endpoint": {"uri": "http://h/n"}}}`,
		ngsild.BadRequestData, "entities[0].type: "},
	{"neither entities nor watchedAttributes", `{"type": "Subscription", "notification": {"endpoint": {"uri": "http://h/n"}}}`,
		ngsild.BadRequestData, "needs entities or watchedAttributes"},
	{"empty watchedAttributes", `{"type": "Subscription", "entities": [{"type": "Building"}], "watchedAttributes": [], "notification": {"endpoint": {"uri": "http://h/n"}}}`,
		ngsild.BadRequestData, "watchedAttributes must not be empty"},
	{"watchedAttributes not a list", `{"type": "Subscription", "entities": [{"type": "Building"}], "watchedAttributes": "temperature", "notification": {"endpoint": {"uri": "http://h/n"}}}`,
		ngsild.InvalidRequest, "watchedAttributes must be an array"},
	{"watchedAttributes bad name", `{"type": "Subscription", "entities": [{"type": "Building"}], "watchedAttributes": ["a=b"], "notification": {"endpoint": {"uri": "http://h/n"}}}`,
		ngsild.BadRequestData, `watchedAttributes: invalid attribute name "a=b"`},
	{"watchedAttributes with timeInterval", `{"type": "Subscription", "entities": [{"type": "Building"}], "watchedAttributes": ["temperature"], "timeInterval": 60, "notification": {"endpoint": {"uri": "http://h/n"}}}`,
		ngsild.BadRequestData, "watchedAttributes and timeInterval"},
	{"periodic selecting by watchedAttributes", `{"type": "Subscription", "watchedAttributes": ["temperature"], "timeInterval": 60, "notification": {"endpoint": {"uri": "http://h/n"}}}`,
		ngsild.BadRequestData, "watchedAttributes and timeInterval"},
	{"unknown format", `{"type": "Subscription", "entities": [{"type": "Building"}], "notification": {"format": "compact", "endpoint": {"uri": "http://h/n"}}}`,
		ngsild.BadRequestData, `notification.format "compact"`},
	{"showChanges with keyValues", `{"type": "Subscription", "entities": [{"type": "Building"}], "notification": {"format": "keyValues", "showChanges": true, "endpoint": {"uri": "http://h/n"}}}`,
		ngsild.BadRequestData, "showChanges cannot be true with the keyValues format"},
	{"attributes not a list", `{"type": "Subscription", "entities": [{"type": "Building"}], "notification": {"attributes": "temperature", "endpoint": {"uri": "http://h/n"}}}`,
		ngsild.InvalidRequest, "notification.attributes must be an array"},
	{"attributes not strings", `{"type": "Subscription", "entities": [{"type": "Building"}], "notification": {"attributes": [1], "endpoint": {"uri": "http://h/n"}}}`,
		ngsild.InvalidRequest, "notification.attributes[0] must be an attribute name"},
	{"sysAttrs not a boolean", `{"type": "Subscription", "entities": [{"type": "Building"}], "notification": {"sysAttrs": "yes", "endpoint": {"uri": "http://h/n"}}}`,
		ngsild.InvalidRequest, "notification.sysAttrs must be true or false"},
	{"bad lang", `{"type": "Subscription", "entities": [{"type": "Building"}], "lang": "fr_BE", "notification": {"endpoint": {"uri": "http://h/n"}}}`,
		ngsild.BadRequestData, `lang "fr_BE" is not a language tag`},
	{"lang not a string", `{"type": "Subscription", "entities": [{"type": "Building"}], "lang": ["fr"], "notification": {"endpoint": {"uri": "http://h/n"}}}`,
		ngsild.InvalidRequest, "lang must be a string"},
	{"bad subscription id", `{"id": "subscription 1", "type": "Subscription", "entities": [{"type": "Building"}], "notification": {"endpoint": {"uri": "http://h/n"}}}`,
		ngsild.BadRequestData, `the subscription id "subscription 1" is not a URI`},
	{"isActive not a boolean", `{"type": "Subscription", "entities": [{"type": "Building"}], "isActive": "false", "notification": {"endpoint": {"uri": "http://h/n"}}}`,
		ngsild.InvalidRequest, "isActive must be true or false"},
	{"null member", `{"type": "Subscription", "entities": [{"type": "Building"}], "q": null, "notification": {"endpoint": {"uri": "http://h/n"}}}`,
		ngsild.BadRequestData, "q is null"},
	{"NGSI-LD null member", `{"type": "Subscription", "entities": [{"type": "Building"}], "description": "urn:ngsi-ld:null", "notification": {"endpoint": {"uri": "http://h/n"}}}`,
		ngsild.BadRequestData, "description is null"},
}

func TestParseErrors(t *testing.T) {
	for _, tc := range parseErrors {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse(decode(t, tc.body), testContext(t), now)
			checkError(t, s, err, tc.typ, tc.detail)
		})
	}
}

func checkError(t *testing.T, s *Subscription, err error, typ ngsild.ErrorType, detail string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted: %+v", s)
	}
	var e *ngsild.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *ngsild.Error", err, err)
	}
	if e.Type != typ {
		t.Errorf("error type %s, want %s (%v)", e.Type, typ, err)
	}
	if !strings.Contains(e.Detail, detail) {
		t.Errorf("detail %q does not contain %q", e.Detail, detail)
	}
}

func TestParseStored(t *testing.T) {
	s := mustParse(t, `{"id": "urn:ngsi-ld:Subscription:x", "type": "Subscription", "entities": [{"type": "Building"}],
		"expiresAt": "2026-01-01T00:00:00Z", "notification": {"endpoint": {"uri": "http://h/n"}}}`)
	s.ModifiedAt = now.Add(time.Hour)
	body := roundTrip(t, s, testContext(t))

	// Later, the subscription has expired: Parse refuses it, ParseStored not.
	later := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := Parse(body, testContext(t), later); err == nil {
		t.Error("Parse accepted an expiresAt in the past")
	}
	got, err := ParseStored(body, testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	if d := sameSubscription(s, got); d != "" {
		t.Error(d)
	}
	if got.State(later) != "expired" {
		t.Errorf("state %q, want expired", got.State(later))
	}

	body["createdAt"] = "yesterday"
	if _, err := ParseStored(body, testContext(t)); err == nil {
		t.Error("ParseStored accepted a bad createdAt")
	}
}

func TestUpdate(t *testing.T) {
	const base = `{"id": "urn:ngsi-ld:Subscription:u", "type": "Subscription", "subscriptionName": "rooms",
		"entities": [{"type": "Building"}], "watchedAttributes": ["temperature"], "q": "temperature>20",
		"throttling": 5, "expiresAt": "2026-01-01T00:00:00Z",
		"notification": {"attributes": ["temperature"], "format": "keyValues",
			"endpoint": {"uri": "http://h/n", "accept": "application/ld+json", "receiverInfo": [{"key": "a", "value": "b"}]}}}`
	ctx := testContext(t)
	later := now.Add(time.Minute)
	for _, tc := range []struct {
		name, fragment string
		check          func(t *testing.T, s *Subscription)
	}{
		{"pause", `{"isActive": false}`, func(t *testing.T, s *Subscription) {
			if s.IsActive || s.State(later) != "paused" {
				t.Errorf("isActive %v state %s", s.IsActive, s.State(later))
			}
		}},
		{"resume", `{"isActive": true}`, func(t *testing.T, s *Subscription) {
			if !s.IsActive {
				t.Error("not resumed")
			}
		}},
		{"replace q and entities", `{"q": "temperature<5", "entities": [{"type": "Vehicle"}]}`, func(t *testing.T, s *Subscription) {
			if s.Q.String() != "temperature<5" || s.Entities[0].Type.String() != "Vehicle" {
				t.Errorf("q %s entities %s", s.Q, s.Entities[0].Type)
			}
		}},
		{"notification merged member by member", `{"notification": {"format": "normalized", "endpoint": {"uri": "https://other/n"}}}`,
			func(t *testing.T, s *Subscription) {
				n := s.Notification
				if n.Format != ngsild.Normalized || n.Endpoint.URI != "https://other/n" {
					t.Errorf("notification not updated: %+v", n)
				}
				if len(n.Attributes) != 1 || n.Endpoint.Accept != MIMEJSONLD || len(n.Endpoint.ReceiverInfo) != 1 {
					t.Errorf("notification members lost: %+v", n)
				}
			}},
		{"null removes", `{"q": null, "throttling": "urn:ngsi-ld:null", "expiresAt": null, "subscriptionName": null,
			"notification": {"attributes": null, "format": null, "endpoint": {"accept": null, "receiverInfo": null}}}`,
			func(t *testing.T, s *Subscription) {
				if s.Q != nil || s.Throttling != 0 || !s.ExpiresAt.IsZero() || s.Name != "" {
					t.Errorf("members not removed: %+v", s)
				}
				n := s.Notification
				if n.Attributes != nil || n.Format != ngsild.Normalized || n.Endpoint.Accept != MIMEJSON || n.Endpoint.ReceiverInfo != nil {
					t.Errorf("notification members not reset: %+v", n)
				}
			}},
		{"triggers back to default", `{"notificationTrigger": null}`, func(t *testing.T, s *Subscription) {
			if !slices.Equal(s.Triggers, DefaultTriggers()) {
				t.Errorf("triggers %v", s.Triggers)
			}
		}},
		{"same id and type", `{"id": "urn:ngsi-ld:Subscription:u", "type": "Subscription", "description": "d"}`, func(t *testing.T, s *Subscription) {
			if s.Description != "d" {
				t.Errorf("description %q", s.Description)
			}
		}},
		{"watched attributes expanded", `{"watchedAttributes": ["owner"]}`, func(t *testing.T, s *Subscription) {
			if !slices.Equal(s.WatchedAttributes, []string{ctx.ExpandTerm("owner")}) {
				t.Errorf("watchedAttributes %v", s.WatchedAttributes)
			}
		}},
		{"periodic", `{"timeInterval": 30, "throttling": null, "watchedAttributes": null}`, func(t *testing.T, s *Subscription) {
			if s.TimeInterval != 30*time.Second {
				t.Errorf("timeInterval %v", s.TimeInterval)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := mustParse(t, base)
			before := view(s)
			got, err := Update(s, decode(t, tc.fragment), ctx, later)
			if err != nil {
				t.Fatal(err)
			}
			if after := view(s); !equalViews(before, after) {
				t.Error("Update changed its argument")
			}
			if !got.ModifiedAt.Equal(later) || !got.CreatedAt.Equal(now) {
				t.Errorf("createdAt %v modifiedAt %v", got.CreatedAt, got.ModifiedAt)
			}
			tc.check(t, got)
		})
	}
}

func equalViews(a, b subView) bool {
	return sameSubscription(&a.Sub, &b.Sub) == "" && slices.Equal(a.Selectors, b.Selectors) && a.Q == b.Q && a.Scope == b.Scope && a.Geo == b.Geo
}

func TestUpdateErrors(t *testing.T) {
	const base = `{"id": "urn:ngsi-ld:Subscription:u", "type": "Subscription",
		"entities": [{"type": "Building"}], "throttling": 5,
		"notification": {"endpoint": {"uri": "http://h/n"}}}`
	for _, tc := range []struct {
		name, fragment string
		typ            ngsild.ErrorType
		detail         string
	}{
		{"other id", `{"id": "urn:ngsi-ld:Subscription:other"}`, ngsild.BadRequestData, "is not the subscription's"},
		{"other type", `{"type": "Registration"}`, ngsild.BadRequestData, `type must be "Subscription"`},
		{"remove notification", `{"notification": null}`, ngsild.BadRequestData, "notification is mandatory"},
		{"remove endpoint", `{"notification": {"format": "keyValues", "endpoint": null}}`, ngsild.BadRequestData, "notification.endpoint is mandatory"},
		{"remove uri", `{"notification": {"endpoint": {"uri": null}}}`, ngsild.BadRequestData, "notification.endpoint.uri is mandatory"},
		{"remove id", `{"id": null}`, ngsild.BadRequestData, "id is mandatory"},
		{"bad uri", `{"notification": {"endpoint": {"uri": "gopher://h"}}}`, ngsild.BadRequestData, "not supported"},
		{"timeInterval with throttling", `{"timeInterval": 10}`, ngsild.BadRequestData, "throttling and timeInterval"},
		{"remove entities", `{"entities": null}`, ngsild.BadRequestData, "needs entities or watchedAttributes"},
		{"expiresAt in the past", `{"expiresAt": "2024-01-01T00:00:00Z"}`, ngsild.BadRequestData, "not in the future"},
		{"bad q", `{"q": "temperature=="}`, ngsild.BadRequestData, "q: "},
		{"showChanges with keyValues", `{"notification": {"format": "keyValues", "showChanges": true}}`, ngsild.BadRequestData, "showChanges"},
		{"not an object", `{"notification": []}`, ngsild.InvalidRequest, "notification must be an object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := mustParse(t, base)
			got, err := Update(s, decode(t, tc.fragment), testContext(t), now.Add(time.Minute))
			checkError(t, got, err, tc.typ, tc.detail)
		})
	}

	// An expiresAt already past does not block other changes.
	s := mustParse(t, base)
	s.ExpiresAt = now.Add(-time.Hour)
	if _, err := Update(s, decode(t, `{"isActive": false}`), testContext(t), now); err != nil {
		t.Errorf("update of an expired subscription: %v", err)
	}
	if _, err := Update(s, nil, testContext(t), now); !ngsild.IsType(err, ngsild.InvalidRequest) {
		t.Errorf("nil fragment: %v", err)
	}
}

package subscription

import (
	"strings"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store"
)

const buildingJSON = `{"id": "urn:ngsi-ld:Building:1", "type": "Building", "scope": "/Brussels/Center",
	"name": {"type": "Property", "value": "Tower"},
	"temperature": {"type": "Property", "value": 21, "unitCode": "CEL", "observedAt": "2025-06-01T11:00:00Z"},
	"owner": {"type": "Relationship", "object": "urn:ngsi-ld:Person:1"},
	"location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [4.35, 50.85]}}}`

// changes builds the changes the match and data tests look at, by name.
func changes(t testing.TB) map[string]*store.Change {
	at := now.Add(time.Second)
	b := entity(t, buildingJSON)
	b.CreatedAt, b.ModifiedAt = now.Add(-time.Hour), now.Add(-time.Hour)
	for _, insts := range b.Attrs {
		insts[0].CreatedAt, insts[0].ModifiedAt = b.CreatedAt, b.CreatedAt
	}
	with := func(base *ngsild.Entity, attrs map[string]string) *ngsild.Entity { return derive(t, base, attrs, at) }
	update := func(after *ngsild.Entity, ac ...any) *store.Change {
		return &store.Change{Tenant: "t", At: at, Kind: store.EntityUpdated, ID: b.ID, Before: b, After: after, Attrs: attrs(t, ac...)}
	}
	vehicle := entity(t, `{"id": "urn:ngsi-ld:Vehicle:9", "type": "Vehicle", "temperature": {"type": "Property", "value": 30}}`)
	bare := entity(t, `{"id": "urn:ngsi-ld:Building:2", "type": "Building"}`)
	scoped := b.Derive()
	scoped.Scopes = []string{"/Ghent"}
	return map[string]*store.Change{
		"created":        {At: at, Kind: store.EntityCreated, ID: b.ID, After: b, Attrs: allAttrs(b, store.AttrCreated)},
		"created bare":   {At: at, Kind: store.EntityCreated, ID: bare.ID, After: bare},
		"temperature":    update(with(b, map[string]string{"temperature": `{"type": "Property", "value": 26, "unitCode": "CEL"}`}), store.AttrUpdated, "temperature"),
		"cold":           update(with(b, map[string]string{"temperature": `{"type": "Property", "value": 10}`}), store.AttrUpdated, "temperature"),
		"name":           update(with(b, map[string]string{"name": `{"type": "Property", "value": "Spire"}`}), store.AttrUpdated, "name"),
		"owner":          update(with(b, map[string]string{"owner": `{"type": "Relationship", "object": "urn:ngsi-ld:Person:2"}`}), store.AttrUpdated, "owner"),
		"humidity":       update(with(b, map[string]string{"ex:humidity": `{"type": "Property", "value": 60}`}), store.AttrCreated, "ex:humidity"),
		"name deleted":   update(with(b, map[string]string{"name": ""}), store.AttrDeleted, "name"),
		"owner deleted":  update(with(b, map[string]string{"owner": ""}), store.AttrDeleted, "owner"),
		"moved":          update(with(b, map[string]string{"location": `{"type": "GeoProperty", "value": {"type": "Point", "coordinates": [2.35, 48.85]}}`}), store.AttrUpdated, "location"),
		"mixed":          update(with(b, map[string]string{"name": "", "temperature": `{"type": "Property", "value": 27}`, "ex:humidity": `{"type": "Property", "value": 61}`}), store.AttrDeleted, "name", store.AttrUpdated, "temperature", store.AttrCreated, "ex:humidity"),
		"scope":          {At: at, Kind: store.EntityUpdated, ID: b.ID, Before: b, After: scoped},
		"deleted":        {At: at, Kind: store.EntityDeleted, ID: b.ID, Before: b, Attrs: allAttrs(b, store.AttrDeleted)},
		"deleted bare":   {At: at, Kind: store.EntityDeleted, ID: bare.ID, Before: bare},
		"vehicle":        {At: at, Kind: store.EntityUpdated, ID: vehicle.ID, Before: vehicle, After: with(vehicle, map[string]string{"temperature": `{"type": "Property", "value": 31}`}), Attrs: attrs(t, store.AttrUpdated, "temperature")},
		"vehicle create": {At: at, Kind: store.EntityCreated, ID: vehicle.ID, After: vehicle, Attrs: allAttrs(vehicle, store.AttrCreated)},
	}
}

// derive returns base with some attributes replaced (values given as
// normalized JSON) or, for an empty value, deleted, written at time at. The
// instances it does not replace are shared with base, as the broker's
// copy-on-write updates do.
func derive(t testing.TB, base *ngsild.Entity, attrs map[string]string, at time.Time) *ngsild.Entity {
	t.Helper()
	ctx := testContext(t)
	e := base.Derive()
	e.ModifiedAt = at
	for name, raw := range attrs {
		iri := ctx.ExpandTerm(name)
		if raw == "" {
			delete(e.Attrs, iri)
			continue
		}
		insts, err := ngsild.ParseAttribute(iri, decode(t, `{"a": `+raw+`}`)["a"], ctx, ngsild.ParseOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range insts {
			a.CreatedAt, a.ModifiedAt = at, at
			if old := base.Instance(iri, a.DatasetID); old != nil {
				a.CreatedAt = old.CreatedAt
			}
		}
		e.Attrs[iri] = insts
	}
	return e
}

// sub builds a subscription body from its members besides type, and a
// default notification if they have none.
func sub(members string) string {
	if !strings.Contains(members, `"notification"`) {
		if members != "" {
			members += ", "
		}
		members += `"notification": {"endpoint": {"uri": "http://h/n"}}`
	}
	return `{"type": "Subscription", ` + members + `}`
}

func TestMatch(t *testing.T) {
	cs := changes(t)
	const building = `"entities": [{"type": "Building"}]`
	for _, tc := range []struct {
		name, sub, change string
		want              Trigger // "": no notification
	}{
		// Default triggers: attributeCreated, attributeUpdated.
		{"default: creation", building, "created", AttributeCreated},
		{"default: entity without attributes created", building, "created bare", ""},
		{"default: update", building, "temperature", AttributeUpdated},
		{"default: attribute created", building, "humidity", AttributeCreated},
		{"default: attribute deleted", building, "name deleted", ""},
		{"default: scope change", building, "scope", ""},
		{"default: deletion", building, "deleted", ""},
		{"default: other type", building, "vehicle", ""},

		// Each trigger alone.
		{"entityCreated", building + `, "notificationTrigger": ["entityCreated"]`, "created", EntityCreated},
		{"entityCreated: bare entity", building + `, "notificationTrigger": ["entityCreated"]`, "created bare", EntityCreated},
		{"entityCreated: not on update", building + `, "notificationTrigger": ["entityCreated"]`, "temperature", ""},
		{"entityUpdated: attribute", building + `, "notificationTrigger": ["entityUpdated"]`, "temperature", EntityUpdated},
		{"entityUpdated: attribute deleted", building + `, "notificationTrigger": ["entityUpdated"]`, "name deleted", EntityUpdated},
		{"entityUpdated: scope change", building + `, "notificationTrigger": ["entityUpdated"]`, "scope", EntityUpdated},
		{"entityUpdated: not on creation", building + `, "notificationTrigger": ["entityUpdated"]`, "created", ""},
		{"entityUpdated: not on deletion", building + `, "notificationTrigger": ["entityUpdated"]`, "deleted", ""},
		{"entityDeleted", building + `, "notificationTrigger": ["entityDeleted"]`, "deleted", EntityDeleted},
		{"entityDeleted: bare entity", building + `, "notificationTrigger": ["entityDeleted"]`, "deleted bare", EntityDeleted},
		{"entityDeleted: not on attribute deletion", building + `, "notificationTrigger": ["entityDeleted"]`, "name deleted", ""},
		{"attributeCreated: new attribute", building + `, "notificationTrigger": ["attributeCreated"]`, "humidity", AttributeCreated},
		{"attributeCreated: not on update", building + `, "notificationTrigger": ["attributeCreated"]`, "temperature", ""},
		{"attributeUpdated: not on creation", building + `, "notificationTrigger": ["attributeUpdated"]`, "created", ""},
		{"attributeUpdated: not on new attribute", building + `, "notificationTrigger": ["attributeUpdated"]`, "humidity", ""},
		{"attributeDeleted", building + `, "notificationTrigger": ["attributeDeleted"]`, "name deleted", AttributeDeleted},
		{"attributeDeleted: entity deleted", building + `, "notificationTrigger": ["attributeDeleted"]`, "deleted", AttributeDeleted},
		{"attributeDeleted: bare entity deleted", building + `, "notificationTrigger": ["attributeDeleted"]`, "deleted bare", ""},
		{"attributeDeleted: not on update", building + `, "notificationTrigger": ["attributeDeleted"]`, "temperature", ""},
		{"all triggers: deletion first in a mixed update", building + `, "notificationTrigger": ["entityUpdated", "attributeUpdated", "attributeCreated", "attributeDeleted"]`, "mixed", AttributeDeleted},
		{"created and updated: creation first", building + `, "notificationTrigger": ["attributeUpdated", "attributeCreated"]`, "mixed", AttributeCreated},
		{"entityCreated before attributeCreated", building + `, "notificationTrigger": ["attributeCreated", "entityCreated"]`, "created", EntityCreated},
		{"entityDeleted before attributeDeleted", building + `, "notificationTrigger": ["attributeDeleted", "entityDeleted"]`, "deleted", EntityDeleted},

		// watchedAttributes.
		{"watched updated", building + `, "watchedAttributes": ["temperature"]`, "temperature", AttributeUpdated},
		{"other attribute updated", building + `, "watchedAttributes": ["temperature"]`, "name", ""},
		{"watched in a mixed update", building + `, "watchedAttributes": ["temperature"]`, "mixed", AttributeUpdated},
		{"watched among created", building + `, "watchedAttributes": ["temperature"]`, "created", AttributeCreated},
		{"watched missing from created entity", building + `, "watchedAttributes": ["ex:humidity"]`, "created", ""},
		{"entityCreated: watched present", building + `, "watchedAttributes": ["owner"], "notificationTrigger": ["entityCreated"]`, "created", EntityCreated},
		{"entityCreated: watched absent", building + `, "watchedAttributes": ["ex:humidity"], "notificationTrigger": ["entityCreated"]`, "created", ""},
		{"entityDeleted: watched present", building + `, "watchedAttributes": ["owner"], "notificationTrigger": ["entityDeleted"]`, "deleted", EntityDeleted},
		{"entityDeleted: watched absent", building + `, "watchedAttributes": ["ex:humidity"], "notificationTrigger": ["entityDeleted"]`, "deleted", ""},
		{"entityUpdated: other attribute", building + `, "watchedAttributes": ["temperature"], "notificationTrigger": ["entityUpdated"]`, "name", ""},
		{"entityUpdated: watched", building + `, "watchedAttributes": ["name"], "notificationTrigger": ["entityUpdated"]`, "name", EntityUpdated},
		{"entityUpdated: scope change with watched", building + `, "watchedAttributes": ["name"], "notificationTrigger": ["entityUpdated"]`, "scope", ""},
		{"attributeDeleted: other attribute", building + `, "watchedAttributes": ["owner"], "notificationTrigger": ["attributeDeleted"]`, "name deleted", ""},
		{"attributeDeleted: watched", building + `, "watchedAttributes": ["name"], "notificationTrigger": ["attributeDeleted"]`, "name deleted", AttributeDeleted},
		{"attributeDeleted: entity deleted, watched", building + `, "watchedAttributes": ["name"], "notificationTrigger": ["attributeDeleted"]`, "deleted", AttributeDeleted},
		{"attributeDeleted: entity deleted, watched absent", building + `, "watchedAttributes": ["ex:humidity"], "notificationTrigger": ["attributeDeleted"]`, "deleted", ""},
		{"watched without entities", `"watchedAttributes": ["temperature"]`, "vehicle", AttributeUpdated},
		{"watched without entities: other attribute", `"watchedAttributes": ["name"]`, "vehicle", ""},

		// Selectors.
		{"id", `"entities": [{"id": "urn:ngsi-ld:Building:1"}]`, "temperature", AttributeUpdated},
		{"other id", `"entities": [{"id": "urn:ngsi-ld:Building:2"}]`, "temperature", ""},
		{"id and type", `"entities": [{"id": "urn:ngsi-ld:Building:1", "type": "Vehicle"}]`, "temperature", ""},
		{"id wins over idPattern", `"entities": [{"id": "urn:ngsi-ld:Building:1", "idPattern": "^nothing$"}]`, "temperature", AttributeUpdated},
		{"idPattern", `"entities": [{"idPattern": "^urn:ngsi-ld:Building:"}]`, "temperature", AttributeUpdated},
		{"idPattern mismatch", `"entities": [{"idPattern": "^urn:ngsi-ld:Vehicle:"}]`, "temperature", ""},
		{"idPattern and type", `"entities": [{"idPattern": "Building", "type": "Vehicle"}]`, "temperature", ""},
		{"second selector", `"entities": [{"type": "Vehicle"}, {"type": "Building"}]`, "temperature", AttributeUpdated},
		{"type expression", `"entities": [{"type": "Vehicle|Building"}]`, "temperature", AttributeUpdated},
		{"type AND expression", `"entities": [{"type": "Building;ex:Tower"}]`, "temperature", ""},
		{"type on creation", `"entities": [{"type": "Vehicle"}]`, "vehicle create", AttributeCreated},
		{"type on deletion", `"entities": [{"type": "Vehicle"}], "notificationTrigger": ["entityDeleted"]`, "deleted", ""},

		// q, scopeQ, geoQ on the entity after the change (before it for deletions).
		{"q holds after", building + `, "q": "temperature>25"`, "temperature", AttributeUpdated},
		{"q fails after", building + `, "q": "temperature>25"`, "cold", ""},
		{"q held before only", building + `, "q": "temperature<25"`, "temperature", ""},
		{"q on another attribute", building + `, "q": "name==\"Tower\""`, "temperature", AttributeUpdated},
		{"q on deleted attribute", building + `, "q": "name", "notificationTrigger": ["attributeDeleted"]`, "name deleted", ""},
		{"q on deleted entity", building + `, "q": "temperature==21", "notificationTrigger": ["entityDeleted"]`, "deleted", EntityDeleted},
		{"q fails on deleted entity", building + `, "q": "temperature>25", "notificationTrigger": ["entityDeleted"]`, "deleted", ""},
		{"q on relationship", building + `, "q": "owner==urn:ngsi-ld:Person:2"`, "owner", AttributeUpdated},
		{"q with watched", building + `, "q": "temperature>25", "watchedAttributes": ["name"]`, "temperature", ""},
		{"scopeQ", building + `, "scopeQ": "/Brussels/#"`, "temperature", AttributeUpdated},
		{"scopeQ mismatch", building + `, "scopeQ": "/Ghent"`, "temperature", ""},
		{"scopeQ after scope change", building + `, "scopeQ": "/Ghent", "notificationTrigger": ["entityUpdated"]`, "scope", EntityUpdated},
		{"geoQ near", building + `, "geoQ": {"georel": "near;maxDistance==1000", "geometry": "Point", "coordinates": [4.351, 50.851]}`, "temperature", AttributeUpdated},
		{"geoQ far", building + `, "geoQ": {"georel": "near;maxDistance==1000", "geometry": "Point", "coordinates": [5.0, 51.0]}`, "temperature", ""},
		{"geoQ moved away", building + `, "geoQ": {"georel": "near;maxDistance==1000", "geometry": "Point", "coordinates": [4.351, 50.851]}`, "moved", ""},
		{"geoQ within", building + `, "geoQ": {"georel": "within", "geometry": "Polygon", "coordinates": [[[4, 50], [5, 50], [5, 51], [4, 51], [4, 50]]]}`, "temperature", AttributeUpdated},
		{"geoQ on entity without location", `"entities": [{"type": "Vehicle"}], "geoQ": {"georel": "near;maxDistance==1000", "geometry": "Point", "coordinates": [4.351, 50.851]}`, "vehicle", ""},

		// Periodic subscriptions are not triggered by changes.
		{"periodic", building + `, "timeInterval": 60`, "temperature", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := mustParse(t, sub(tc.sub))
			c := cs[tc.change]
			if c == nil {
				t.Fatalf("no change %q", tc.change)
			}
			got, ok := s.Match(c)
			if ok != (tc.want != "") || got != tc.want {
				t.Errorf("Match = %q, %v; want %q", got, ok, tc.want)
			}
		})
	}
}

func TestMatchIgnoresState(t *testing.T) {
	s := mustParse(t, sub(`"entities": [{"type": "Building"}], "throttling": 60, "isActive": false, "expiresAt": "2025-06-01T12:00:01Z"`))
	s.ExpiresAt = now.Add(-time.Hour) // expired meanwhile
	if _, ok := s.Match(changes(t)["temperature"]); !ok {
		t.Error("Match looked at isActive, expiresAt or throttling")
	}
}

package subscription

import (
	"strings"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store"
)

// richJSON has an attribute of each kind showChanges names differently, and
// a multi-attribute.
const richJSON = `{"id": "urn:ngsi-ld:Building:3", "type": "Building",
	"street": {"type": "LanguageProperty", "languageMap": {"fr": "Grand Place", "nl": "Grote Markt"}},
	"config": {"type": "JsonProperty", "json": {"floors": 3, "open": null}},
	"category": {"type": "VocabProperty", "vocab": "ex:office"},
	"readings": {"type": "ListProperty", "valueList": [1, 2, 3]},
	"owner": {"type": "Relationship", "object": "urn:ngsi-ld:Person:1"},
	"location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [4.35, 50.85]}},
	"name": [{"type": "Property", "value": "Tower"}, {"type": "Property", "value": "Toren", "datasetId": "urn:ngsi-ld:Dataset:nl"}]}`

// richChanges adds to changes an update of every attribute of the rich
// building (the default instance of name is not written) and its deletion.
func richChanges(t testing.TB) map[string]*store.Change {
	cs := changes(t)
	ctx := testContext(t)
	at := now.Add(time.Second)
	r := entity(t, richJSON)
	after := derive(t, r, map[string]string{
		"street":   `{"type": "LanguageProperty", "languageMap": {"fr": "Grand-Place", "nl": "Grote Markt", "en": "Grand Square"}}`,
		"config":   `{"type": "JsonProperty", "json": {"floors": 4}}`,
		"category": `{"type": "VocabProperty", "vocab": "ex:home"}`,
		"readings": `{"type": "ListProperty", "valueList": [4]}`,
		"owner":    `{"type": "Relationship", "object": "urn:ngsi-ld:Person:2"}`,
		"location": `{"type": "GeoProperty", "value": {"type": "Point", "coordinates": [4.36, 50.86]}}`,
	}, at)
	name := ctx.ExpandTerm("name")
	nl := derive(t, r, map[string]string{"name": `{"type": "Property", "value": "Torens", "datasetId": "urn:ngsi-ld:Dataset:nl"}`}, at).Attrs[name][0]
	after.Attrs[name] = []*ngsild.Attribute{r.Instance(name, ""), nl}
	cs["rich update"] = &store.Change{At: at, Kind: store.EntityUpdated, ID: r.ID, Before: r, After: after,
		Attrs: attrs(t, store.AttrUpdated, "street", store.AttrUpdated, "config", store.AttrUpdated, "category",
			store.AttrUpdated, "readings", store.AttrUpdated, "owner", store.AttrUpdated, "location", store.AttrUpdated, "name")}
	cs["rich deleted"] = &store.Change{At: at, Kind: store.EntityDeleted, ID: r.ID, Before: r, Attrs: allAttrs(r, store.AttrDeleted)}
	cs["rich attrs deleted"] = &store.Change{At: at, Kind: store.EntityUpdated, ID: r.ID, Before: r,
		After: derive(t, r, map[string]string{"street": "", "readings": "", "name": ""}, at),
		Attrs: attrs(t, store.AttrDeleted, "street", store.AttrDeleted, "readings", store.AttrDeleted, "name")}
	return cs
}

func TestData(t *testing.T) {
	cs := richChanges(t)
	ctx := testContext(t)
	const building = `"entities": [{"type": "Building"}]`
	notification := func(members string) string {
		return `"notification": {` + members + `, "endpoint": {"uri": "http://h/n"}}`
	}
	for _, tc := range []struct {
		golden, sub, change string
	}{
		// The three formats.
		{"normalized-update", building, "temperature"},
		{"keyValues-update", building + `, ` + notification(`"format": "keyValues"`), "temperature"},
		{"concise-update", building + `, ` + notification(`"format": "concise"`), "temperature"},
		{"normalized-sysAttrs-created", building + `, ` + notification(`"sysAttrs": true`), "created"},
		{"keyValues-rich", building + `, ` + notification(`"format": "keyValues"`), "rich update"},
		{"concise-rich", building + `, ` + notification(`"format": "concise"`), "rich update"},
		{"attributes", building + `, ` + notification(`"attributes": ["temperature", "location"]`), "temperature"},
		{"lang", building + `, "lang": "nl", ` + notification(`"format": "normalized"`), "rich update"},

		// showChanges: previousValue, previousObject, previousLanguageMap,
		// previousJson, previousVocab, previousValueList.
		{"showChanges-update", building + `, ` + notification(`"showChanges": true`), "temperature"},
		{"showChanges-relationship", building + `, ` + notification(`"showChanges": true`), "owner"},
		{"showChanges-rich", building + `, ` + notification(`"showChanges": true`), "rich update"},
		{"showChanges-lang", building + `, "lang": "fr", ` + notification(`"showChanges": true`), "rich update"},
		{"showChanges-created", building + `, "notificationTrigger": ["attributeCreated"], ` + notification(`"showChanges": true`), "humidity"},
		{"showChanges-concise", building + `, ` + notification(`"format": "concise", "showChanges": true`), "temperature"},
		{"showChanges-mixed-sysAttrs", building + `, "notificationTrigger": ["entityUpdated"], ` + notification(`"showChanges": true, "sysAttrs": true`), "mixed"},

		// Deleted attributes.
		{"attributeDeleted-normalized", building + `, "notificationTrigger": ["attributeDeleted"]`, "name deleted"},
		{"attributeDeleted-keyValues", building + `, "notificationTrigger": ["attributeDeleted"], ` + notification(`"format": "keyValues"`), "name deleted"},
		{"attributeDeleted-concise", building + `, "notificationTrigger": ["attributeDeleted"], ` + notification(`"format": "concise"`), "owner deleted"},
		{"attributeDeleted-rich-showChanges-sysAttrs", building + `, "notificationTrigger": ["attributeDeleted"], ` + notification(`"showChanges": true, "sysAttrs": true`), "rich attrs deleted"},
		{"attributeDeleted-rich-keyValues", building + `, "notificationTrigger": ["attributeDeleted"], ` + notification(`"format": "keyValues"`), "rich attrs deleted"},
		{"attributeDeleted-watched", building + `, "watchedAttributes": ["readings"], "notificationTrigger": ["attributeDeleted"]`, "rich attrs deleted"},
		{"attributeDeleted-entity-watched", building + `, "watchedAttributes": ["name"], "notificationTrigger": ["attributeDeleted"]`, "deleted"},
		{"attributeDeleted-entity-sysAttrs", building + `, "watchedAttributes": ["name"], "notificationTrigger": ["attributeDeleted"], ` + notification(`"sysAttrs": true`), "deleted"},

		// Deleted entities.
		{"entityDeleted-keyValues", building + `, "notificationTrigger": ["entityDeleted"], ` + notification(`"format": "keyValues"`), "deleted"},
		{"entityDeleted-normalized", building + `, "notificationTrigger": ["entityDeleted"]`, "deleted"},
		{"entityDeleted-sysAttrs", building + `, "notificationTrigger": ["entityDeleted"], ` + notification(`"sysAttrs": true`), "deleted"},
		{"entityDeleted-showChanges", building + `, "notificationTrigger": ["entityDeleted"], ` + notification(`"showChanges": true`), "rich deleted"},
		{"entityDeleted-showChanges-attributes", building + `, "notificationTrigger": ["entityDeleted"], ` + notification(`"showChanges": true, "attributes": ["street", "owner"]`), "rich deleted"},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			s := mustParse(t, sub(tc.sub))
			c := cs[tc.change]
			if c == nil {
				t.Fatalf("no change %q", tc.change)
			}
			trigger, ok := s.Match(c)
			if !ok {
				t.Fatalf("%s does not trigger the subscription", tc.change)
			}
			golden(t, "data/"+tc.golden+".json", ngsild.Object{{Key: "trigger", Value: string(trigger)}, {Key: "data", Value: s.Data(c, trigger, ctx)}})
		})
	}
}

// TestDataNoPrevious guards against previous values
// leaking into notifications that did not ask for them.
func TestDataNoPrevious(t *testing.T) {
	cs := richChanges(t)
	s := mustParse(t, sub(`"entities": [{"type": "Building"}], "notificationTrigger": ["entityDeleted", "attributeUpdated"]`))
	for _, name := range []string{"rich update", "rich deleted", "mixed"} {
		c := cs[name]
		trigger, ok := s.Match(c)
		if !ok {
			continue
		}
		if b := marshal(t, s.Data(c, trigger, testContext(t))); strings.Contains(string(b), "previous") {
			t.Errorf("%s: previous values without showChanges:\n%s", name, b)
		}
	}
}

func TestDataExpanded(t *testing.T) {
	// Without a compactor, names stay expanded.
	s := mustParse(t, sub(`"entities": [{"type": "Building"}]`))
	c := changes(t)["temperature"]
	d := s.Data(c, AttributeUpdated, nil)
	if _, ok := d.Get(testContext(t).ExpandTerm("temperature")); !ok {
		t.Errorf("expanded attribute name missing: %s", marshal(t, d))
	}
}

// TestDataPeriodic is how the notifier builds periodic notifications: the
// current entity, no trigger, nothing before it.
func TestDataPeriodic(t *testing.T) {
	ctx := testContext(t)
	s := mustParse(t, sub(`"entities": [{"type": "Building"}], "timeInterval": 60, "notification": {"showChanges": true, "sysAttrs": true, "endpoint": {"uri": "http://h/n"}}`))
	e := entity(t, buildingJSON)
	c := &store.Change{At: now, Kind: store.EntityUpdated, ID: e.ID, After: e}
	got := marshal(t, s.Data(c, "", ctx))
	want := marshal(t, ngsild.Render(e, ngsild.RenderOptions{SysAttrs: true, Compact: ctx}))
	if string(got) != string(want) {
		t.Errorf("periodic data\n got %s\nwant %s", got, want)
	}
}

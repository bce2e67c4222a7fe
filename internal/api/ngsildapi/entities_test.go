package ngsildapi_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/apitest"
)

const (
	apiBase     = "/ngsi-ld/v1"
	coreContext = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
	defaultNS   = "https://uri.etsi.org/ngsi-ld/default-context/"
	// wasteContext is one of the embedded Smart Data Models contexts.
	wasteContext = "https://raw.githubusercontent.com/smart-data-models/dataModel.WasteManagement/master/context.jsonld"
)

// --- helpers shared by the test files of this package ---

func entityPath(id string) string { return apiBase + "/entities/" + url.PathEscape(id) }

func linkHdr(u string) map[string]string { return map[string]string{"Link": apitest.LinkHeader(u)} }

// mustCreate creates an entity and fails unless the broker answers 201.
func mustCreate(t *testing.T, s *apitest.Server, body any, header map[string]string) {
	t.Helper()
	s.Post(apiBase+"/entities", body, header).Expect(t, http.StatusCreated)
}

// read retrieves an entity (with query, e.g. "?options=sysAttrs") and expects 200.
func readEntity(t *testing.T, s *apitest.Server, id, query string, header map[string]string) *apitest.Response {
	t.Helper()
	return s.Get(entityPath(id)+query, header).Expect(t, http.StatusOK)
}

// object decodes a JSON object body.
func jsonObject(t *testing.T, r *apitest.Response) map[string]any {
	t.Helper()
	m, ok := r.JSON(t).(map[string]any)
	if !ok {
		t.Fatalf("body is not a JSON object: %s", r.Body)
	}
	return m
}

// sameJSON fails unless the two bodies hold the same JSON value.
func sameJSON(t *testing.T, got, want []byte) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("not JSON: %s", got)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("not JSON: %s", want)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("bodies differ\n--- got\n%s\n--- want\n%s", got, want)
	}
}

// vehicle is an entity with the usual attribute kinds, in the core context
// (so its terms expand to the default-context namespace).
func vehicleEntity(id string) map[string]any {
	return map[string]any{
		"id":   id,
		"type": "Vehicle",
		"brandName": map[string]any{
			"type": "Property", "value": "Mercedes",
		},
		"speed": map[string]any{
			"type": "Property", "value": 80, "unitCode": "KMH", "observedAt": "2024-05-01T10:00:00Z",
			"accuracy": map[string]any{"type": "Property", "value": 0.95},
		},
		"isParked": map[string]any{
			"type": "Relationship", "object": "urn:ngsi-ld:OffStreetParking:Downtown1", "objectType": "OffStreetParking",
		},
		"location": map[string]any{
			"type": "GeoProperty", "value": map[string]any{"type": "Point", "coordinates": []any{4.35, 50.85}},
		},
		"street": map[string]any{
			"type": "LanguageProperty", "languageMap": map[string]any{"fr": "Grand Place", "nl": "Grote Markt"},
		},
	}
}

// --- create / retrieve / delete ---

func TestCreateEntity(t *testing.T) {
	s := apitest.Start(t)
	id := "urn:ngsi-ld:Vehicle:A4567"
	r := s.Post(apiBase+"/entities", vehicleEntity(id), nil).Expect(t, http.StatusCreated)
	if got, want := r.Header.Get("Location"), apiBase+"/entities/"+id; got != want {
		t.Errorf("Location %q, want %q", got, want)
	}
	if len(r.Body) != 0 {
		t.Errorf("201 with a body: %s", r.Body)
	}
	apitest.Golden(t, "entity_create_read", readEntity(t, s, id, "", nil).Body)

	t.Run("AlreadyExists", func(t *testing.T) {
		other := map[string]any{"id": id, "type": "Other", "x": map[string]any{"type": "Property", "value": 1}}
		s.Post(apiBase+"/entities", other, nil).ExpectProblem(t, http.StatusConflict, "AlreadyExists")
		apitest.Golden(t, "entity_create_read", readEntity(t, s, id, "", nil).Body)
	})
}

func TestRetrieveEntityRepresentations(t *testing.T) {
	s := apitest.Start(t)
	id := "urn:ngsi-ld:Vehicle:A4567"
	mustCreate(t, s, vehicleEntity(id), nil)
	cases := []struct {
		name, query string
	}{
		{"normalized", "?options=normalized"},
		{"keyValues", "?options=keyValues&attrs=brandName,speed,isParked,location"},
		{"format_simplified", "?format=simplified&attrs=brandName,speed,isParked,location"},
		{"concise", "?options=concise"},
		{"sysAttrs", "?options=sysAttrs"},
		{"attrs", "?attrs=speed,isParked"},
		{"pick", "?pick=id,speed"},
		{"omit", "?omit=id,speed,street"},
		{"lang_fr", "?lang=fr&attrs=street"},
		{"lang_missing_falls_back", "?lang=de&attrs=street"},
		{"lang_keyValues", "?lang=nl&attrs=street&options=keyValues"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := readEntity(t, s, id, tc.query, nil)
			if ct := r.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			apitest.Golden(t, "entity_retrieve_"+tc.name, r.Body)
		})
	}
	t.Run("attrs_none_present", func(t *testing.T) {
		s.Get(entityPath(id)+"?attrs=nothing", nil).ExpectProblem(t, http.StatusNotFound, "ResourceNotFound")
	})
	t.Run("two_formats", func(t *testing.T) {
		s.Get(entityPath(id)+"?options=keyValues,concise", nil).ExpectProblem(t, http.StatusBadRequest, "BadRequestData")
	})
	t.Run("unknown_option", func(t *testing.T) {
		s.Get(entityPath(id)+"?options=fancy", nil).ExpectProblem(t, http.StatusBadRequest, "BadRequestData")
	})
	t.Run("missing", func(t *testing.T) {
		s.Get(entityPath("urn:ngsi-ld:Vehicle:none"), nil).ExpectProblem(t, http.StatusNotFound, "ResourceNotFound")
	})
}

func TestRetrieveEntityAccept(t *testing.T) {
	s := apitest.Start(t)
	id := "urn:ngsi-ld:Vehicle:A4567"
	mustCreate(t, s, vehicleEntity(id), nil)

	t.Run("json_has_Link_header", func(t *testing.T) {
		r := readEntity(t, s, id, "?attrs=brandName", map[string]string{"Accept": "application/json"})
		if got, want := r.Header.Get("Link"), apitest.LinkHeader(coreContext); got != want {
			t.Errorf("Link %q, want %q", got, want)
		}
		if _, ok := jsonObject(t, r)["@context"]; ok {
			t.Errorf("application/json body with @context: %s", r.Body)
		}
	})
	t.Run("ld_json_has_context_member", func(t *testing.T) {
		r := readEntity(t, s, id, "?attrs=brandName", map[string]string{"Accept": "application/ld+json"})
		if ct := r.Header.Get("Content-Type"); ct != "application/ld+json" {
			t.Errorf("Content-Type %q", ct)
		}
		if l := r.Header.Get("Link"); l != "" {
			t.Errorf("application/ld+json response with a Link header %q", l)
		}
		apitest.Golden(t, "entity_retrieve_ld_json", r.Body)
	})
	t.Run("ld_json_echoes_user_context", func(t *testing.T) {
		r := readEntity(t, s, id, "?attrs=location", map[string]string{"Accept": "application/ld+json", "Link": apitest.LinkHeader(wasteContext)})
		if got := jsonObject(t, r)["@context"]; got != wasteContext {
			t.Errorf("@context %v, want %s", got, wasteContext)
		}
	})
	t.Run("geo_json_feature", func(t *testing.T) {
		r := readEntity(t, s, id, "?attrs=brandName,location", map[string]string{"Accept": "application/geo+json"})
		if ct := r.Header.Get("Content-Type"); ct != "application/geo+json" {
			t.Errorf("Content-Type %q", ct)
		}
		apitest.Golden(t, "entity_retrieve_geojson", r.Body)
	})
	t.Run("geo_json_keyValues", func(t *testing.T) {
		r := readEntity(t, s, id, "?attrs=brandName,location&options=keyValues", map[string]string{"Accept": "application/geo+json"})
		apitest.Golden(t, "entity_retrieve_geojson_keyValues", r.Body)
	})
	t.Run("wildcard", func(t *testing.T) {
		r := readEntity(t, s, id, "?attrs=brandName", map[string]string{"Accept": "*/*"})
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
	})
	t.Run("q_values", func(t *testing.T) {
		r := readEntity(t, s, id, "?attrs=brandName", map[string]string{"Accept": "application/json;q=0.5, application/ld+json"})
		if ct := r.Header.Get("Content-Type"); ct != "application/ld+json" {
			t.Errorf("Content-Type %q", ct)
		}
	})
	t.Run("unsupported", func(t *testing.T) {
		s.Get(entityPath(id), map[string]string{"Accept": "text/html"}).ExpectProblem(t, http.StatusNotAcceptable, "NotAcceptable")
	})
}

func TestDeleteEntity(t *testing.T) {
	s := apitest.Start(t)
	id := "urn:ngsi-ld:Vehicle:A4567"
	mustCreate(t, s, vehicleEntity(id), nil)
	r := s.Delete(entityPath(id), nil).Expect(t, http.StatusNoContent)
	if len(r.Body) != 0 {
		t.Errorf("204 with a body: %s", r.Body)
	}
	s.Get(entityPath(id), nil).ExpectProblem(t, http.StatusNotFound, "ResourceNotFound")
	s.Delete(entityPath(id), nil).ExpectProblem(t, http.StatusNotFound, "ResourceNotFound")
	// The id can be used again.
	mustCreate(t, s, vehicleEntity(id), nil)
}

// --- updates ---

func TestMergeEntity(t *testing.T) {
	cases := []struct {
		name        string
		contentType string
	}{
		{"json", "application/json"},
		{"merge_patch", "application/merge-patch+json"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := apitest.Start(t)
			id := "urn:ngsi-ld:Vehicle:A4567"
			mustCreate(t, s, vehicleEntity(id), nil)
			patch := map[string]any{
				// a new attribute
				"color": map[string]any{"type": "Property", "value": "red"},
				// value changes, accuracy merges, a new sub-attribute is added
				"speed": map[string]any{"value": 90, "accuracy": map[string]any{"value": 0.8}, "source": map[string]any{"type": "Property", "value": "gps"}},
				// null deletes an attribute
				"street": nil,
				// urn:ngsi-ld:null too
				"brandName": "urn:ngsi-ld:null",
			}
			s.Do(apitest.Req{Method: "PATCH", Path: entityPath(id), Body: patch, ContentType: tc.contentType}).Expect(t, http.StatusNoContent)
			apitest.Golden(t, "entity_merge", readEntity(t, s, id, "", nil).Body)
		})
	}
	t.Run("delete_sub_attribute", func(t *testing.T) {
		s := apitest.Start(t)
		id := "urn:ngsi-ld:Vehicle:A4567"
		mustCreate(t, s, vehicleEntity(id), nil)
		s.Patch(entityPath(id), map[string]any{"speed": map[string]any{"type": "Property", "accuracy": nil}}, nil).Expect(t, http.StatusNoContent)
		got := jsonObject(t, readEntity(t, s, id, "?attrs=speed", nil))
		want := map[string]any{"type": "Property", "value": 80.0, "unitCode": "KMH", "observedAt": "2024-05-01T10:00:00.000Z"}
		if !reflect.DeepEqual(got["speed"], want) {
			t.Errorf("speed %v, want %v", got["speed"], want)
		}
	})
	t.Run("missing_entity", func(t *testing.T) {
		s := apitest.Start(t)
		s.Patch(entityPath("urn:ngsi-ld:Vehicle:none"), map[string]any{"a": 1}, nil).ExpectProblem(t, http.StatusNotFound, "ResourceNotFound")
	})
	t.Run("id_mismatch", func(t *testing.T) {
		s := apitest.Start(t)
		id := "urn:ngsi-ld:Vehicle:A4567"
		mustCreate(t, s, vehicleEntity(id), nil)
		before := readEntity(t, s, id, "", nil).Body
		s.Patch(entityPath(id), map[string]any{"id": "urn:ngsi-ld:Vehicle:other", "a": 1}, nil).ExpectProblem(t, http.StatusBadRequest, "BadRequestData")
		sameJSON(t, readEntity(t, s, id, "", nil).Body, before)
	})
}

func TestReplaceEntity(t *testing.T) {
	s := apitest.Start(t)
	id := "urn:ngsi-ld:Vehicle:A4567"
	mustCreate(t, s, vehicleEntity(id), nil)
	created := jsonObject(t, readEntity(t, s, id, "?options=sysAttrs", nil))["createdAt"]
	time.Sleep(5 * time.Millisecond)
	repl := map[string]any{
		"type":  "Car",
		"color": map[string]any{"type": "Property", "value": "blue"},
	}
	s.Put(entityPath(id), repl, nil).Expect(t, http.StatusNoContent)
	apitest.Golden(t, "entity_replace", readEntity(t, s, id, "", nil).Body)
	after := jsonObject(t, readEntity(t, s, id, "?options=sysAttrs", nil))
	if after["createdAt"] != created {
		t.Errorf("replace changed createdAt: %v -> %v", created, after["createdAt"])
	}
	s.Put(entityPath("urn:ngsi-ld:Vehicle:none"), repl, nil).ExpectProblem(t, http.StatusNotFound, "ResourceNotFound")
	s.Put(entityPath(id), map[string]any{"id": "urn:ngsi-ld:Vehicle:B", "type": "Car"}, nil).ExpectProblem(t, http.StatusBadRequest, "BadRequestData")
}

func TestAppendAttrs(t *testing.T) {
	id := "urn:ngsi-ld:Vehicle:A4567"
	frag := map[string]any{
		"brandName": map[string]any{"type": "Property", "value": "BMW"},
		"color":     map[string]any{"type": "Property", "value": "red"},
	}
	t.Run("overwrite", func(t *testing.T) {
		s := apitest.Start(t)
		mustCreate(t, s, vehicleEntity(id), nil)
		s.Post(entityPath(id)+"/attrs", frag, nil).Expect(t, http.StatusNoContent)
		apitest.Golden(t, "entity_append", readEntity(t, s, id, "?attrs=brandName,color", nil).Body)
	})
	t.Run("noOverwrite", func(t *testing.T) {
		s := apitest.Start(t)
		mustCreate(t, s, vehicleEntity(id), nil)
		r := s.Post(entityPath(id)+"/attrs?options=noOverwrite", frag, nil).Expect(t, http.StatusMultiStatus)
		apitest.Golden(t, "entity_append_noOverwrite_result", r.Body)
		apitest.Golden(t, "entity_append_noOverwrite", readEntity(t, s, id, "?attrs=brandName,color", nil).Body)
	})
	t.Run("noOverwrite_all_new", func(t *testing.T) {
		s := apitest.Start(t)
		mustCreate(t, s, vehicleEntity(id), nil)
		s.Post(entityPath(id)+"/attrs?options=noOverwrite", map[string]any{"color": map[string]any{"type": "Property", "value": "red"}}, nil).Expect(t, http.StatusNoContent)
	})
	t.Run("missing_entity", func(t *testing.T) {
		s := apitest.Start(t)
		s.Post(entityPath(id)+"/attrs", frag, nil).ExpectProblem(t, http.StatusNotFound, "ResourceNotFound")
	})
}

func TestUpdateAttrs(t *testing.T) {
	s := apitest.Start(t)
	id := "urn:ngsi-ld:Vehicle:A4567"
	mustCreate(t, s, vehicleEntity(id), nil)
	s.Patch(entityPath(id)+"/attrs", map[string]any{"brandName": map[string]any{"type": "Property", "value": "BMW"}}, nil).Expect(t, http.StatusNoContent)
	r := s.Patch(entityPath(id)+"/attrs", map[string]any{
		"speed":   map[string]any{"type": "Property", "value": 50},
		"missing": map[string]any{"type": "Property", "value": 1},
	}, nil).Expect(t, http.StatusMultiStatus)
	apitest.Golden(t, "entity_update_attrs_result", r.Body)
	// Update replaces the whole attribute (its sub-attributes go).
	apitest.Golden(t, "entity_update_attrs", readEntity(t, s, id, "?attrs=brandName,speed,missing", nil).Body)
	s.Patch(entityPath("urn:ngsi-ld:Vehicle:none")+"/attrs", map[string]any{"a": 1}, nil).ExpectProblem(t, http.StatusNotFound, "ResourceNotFound")
}

func TestPartialAttrUpdate(t *testing.T) {
	s := apitest.Start(t)
	id := "urn:ngsi-ld:Sensor:1"
	mustCreate(t, s, map[string]any{
		"id": id, "type": "Sensor",
		"temperature": []any{
			map[string]any{"type": "Property", "value": 20, "unitCode": "CEL", "accuracy": map[string]any{"type": "Property", "value": 0.5}},
			map[string]any{"type": "Property", "value": 21, "datasetId": "urn:ngsi-ld:Dataset:b"},
		},
	}, nil)
	// The default instance: the value changes, unitCode and sub-attributes stay.
	s.Patch(entityPath(id)+"/attrs/temperature", map[string]any{"value": 25}, nil).Expect(t, http.StatusNoContent)
	// datasetId selects the instance.
	s.Patch(entityPath(id)+"/attrs/temperature", map[string]any{"value": 30, "datasetId": "urn:ngsi-ld:Dataset:b"}, nil).Expect(t, http.StatusNoContent)
	apitest.Golden(t, "entity_partial_attr_update", readEntity(t, s, id, "", nil).Body)

	t.Run("missing_instance", func(t *testing.T) {
		s.Patch(entityPath(id)+"/attrs/temperature", map[string]any{"value": 1, "datasetId": "urn:ngsi-ld:Dataset:none"}, nil).ExpectProblem(t, http.StatusNotFound, "ResourceNotFound")
	})
	t.Run("missing_attribute", func(t *testing.T) {
		s.Patch(entityPath(id)+"/attrs/humidity", map[string]any{"value": 1}, nil).ExpectProblem(t, http.StatusNotFound, "ResourceNotFound")
	})
	t.Run("missing_entity", func(t *testing.T) {
		s.Patch(entityPath("urn:ngsi-ld:Sensor:none")+"/attrs/temperature", map[string]any{"value": 1}, nil).ExpectProblem(t, http.StatusNotFound, "ResourceNotFound")
	})
	apitest.Golden(t, "entity_partial_attr_update", readEntity(t, s, id, "", nil).Body)
}

func TestDeleteAttr(t *testing.T) {
	id := "urn:ngsi-ld:Sensor:1"
	sensor := map[string]any{
		"id": id, "type": "Sensor",
		"temperature": []any{
			map[string]any{"type": "Property", "value": 20},
			map[string]any{"type": "Property", "value": 21, "datasetId": "urn:ngsi-ld:Dataset:b"},
		},
		"humidity": map[string]any{"type": "Property", "value": 60},
	}
	cases := []struct {
		name, path string
		want       string // the temperature instances left, as JSON, or "" for none
	}{
		{"default_instance", "/attrs/temperature", `{"type":"Property","value":21,"datasetId":"urn:ngsi-ld:Dataset:b"}`},
		{"datasetId", "/attrs/temperature?datasetId=urn:ngsi-ld:Dataset:b", `{"type":"Property","value":20}`},
		{"deleteAll", "/attrs/temperature?deleteAll=true", ``},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := apitest.Start(t)
			mustCreate(t, s, sensor, nil)
			s.Delete(entityPath(id)+tc.path, nil).Expect(t, http.StatusNoContent)
			got := jsonObject(t, readEntity(t, s, id, "", nil))
			if got["humidity"] == nil {
				t.Errorf("humidity was deleted too: %v", got)
			}
			if tc.want == "" {
				if _, ok := got["temperature"]; ok {
					t.Errorf("temperature left: %v", got["temperature"])
				}
				return
			}
			b, _ := json.Marshal(got["temperature"])
			sameJSON(t, b, []byte(tc.want))
		})
	}
	t.Run("errors", func(t *testing.T) {
		s := apitest.Start(t)
		mustCreate(t, s, sensor, nil)
		before := readEntity(t, s, id, "", nil).Body
		s.Delete(entityPath(id)+"/attrs/pressure", nil).ExpectProblem(t, http.StatusNotFound, "ResourceNotFound")
		s.Delete(entityPath(id)+"/attrs/temperature?datasetId=urn:ngsi-ld:Dataset:none", nil).ExpectProblem(t, http.StatusNotFound, "ResourceNotFound")
		s.Delete(entityPath(id)+"/attrs/temperature?datasetId=not%20a%20uri", nil).ExpectProblem(t, http.StatusBadRequest, "BadRequestData")
		s.Delete(entityPath(id)+"/attrs/temperature?deleteAll=yes", nil).ExpectProblem(t, http.StatusBadRequest, "BadRequestData")
		s.Delete(entityPath("urn:ngsi-ld:Sensor:none")+"/attrs/temperature", nil).ExpectProblem(t, http.StatusNotFound, "ResourceNotFound")
		sameJSON(t, readEntity(t, s, id, "", nil).Body, before)
	})
}

func TestReplaceAttr(t *testing.T) {
	s := apitest.Start(t)
	id := "urn:ngsi-ld:Vehicle:A4567"
	mustCreate(t, s, vehicleEntity(id), nil)
	// Replace drops the old sub-attributes and metadata.
	s.Put(entityPath(id)+"/attrs/speed", map[string]any{"type": "Property", "value": 10, "source": map[string]any{"type": "Property", "value": "radar"}}, nil).Expect(t, http.StatusNoContent)
	apitest.Golden(t, "entity_replace_attr", readEntity(t, s, id, "?attrs=speed", nil).Body)
	s.Put(entityPath(id)+"/attrs/missing", map[string]any{"type": "Property", "value": 1}, nil).ExpectProblem(t, http.StatusNotFound, "ResourceNotFound")
	s.Put(entityPath(id)+"/attrs/speed", map[string]any{"type": "Property"}, nil).ExpectProblem(t, http.StatusBadRequest, "BadRequestData")
	apitest.Golden(t, "entity_replace_attr", readEntity(t, s, id, "?attrs=speed", nil).Body)
}

// --- the information model ---

func TestAttributeKindsRoundTrip(t *testing.T) {
	s := apitest.Start(t)
	ctx := map[string]any{
		"ex":       "https://example.org/ns#",
		"Bin":      "ex:Bin",
		"Parking":  "ex:Parking",
		"category": "ex:category",
		"kerbside": "ex:kerbside",
		"organic":  "ex:organic",
	}
	id := "urn:ngsi-ld:Bin:1"
	body := map[string]any{
		"@context": []any{ctx, coreContext},
		"id":       id,
		"type":     "Bin",
		"fill":     map[string]any{"type": "Property", "value": 0.5},
		"parkedIn": map[string]any{"type": "Relationship", "object": "urn:ngsi-ld:Parking:1", "objectType": "Parking"},
		"location": map[string]any{"type": "GeoProperty", "value": map[string]any{"type": "Polygon", "coordinates": []any{[]any{[]any{0.0, 0.0}, []any{1.0, 0.0}, []any{1.0, 1.0}, []any{0.0, 0.0}}}}},
		"label":    map[string]any{"type": "LanguageProperty", "languageMap": map[string]any{"en": "bin", "fr": "poubelle", "@none": "bak"}},
		"config":   map[string]any{"type": "JsonProperty", "json": map[string]any{"type": "Property", "value": []any{1, "x"}, "nested": map[string]any{"a": nil}}},
		"category": map[string]any{"type": "VocabProperty", "vocab": []any{"kerbside", "organic"}},
		"kind":     map[string]any{"type": "VocabProperty", "vocab": "organic"},
		"readings": map[string]any{"type": "ListProperty", "valueList": []any{1, 2, 3}},
		"route":    map[string]any{"type": "ListRelationship", "objectList": []any{"urn:ngsi-ld:Stop:1", "urn:ngsi-ld:Stop:2"}, "objectType": "Stop"},
		"status":   map[string]any{"type": "Property", "value": map[string]any{"ok": true}},
	}
	s.Do(apitest.Req{Method: "POST", Path: apiBase + "/entities", Body: body, ContentType: "application/ld+json"}).Expect(t, http.StatusCreated)

	// Read back under the same context (hosted, so a Link header can name it):
	// short names, vocab values and objectType compacted. Under the core
	// context: full IRIs for the ex: terms, default-context short names.
	userCtx, _ := json.Marshal([]any{ctx, coreContext})
	loc := s.Post(apiBase+"/jsonldContexts", map[string]any{"@context": json.RawMessage(userCtx)}, nil).Expect(t, http.StatusCreated).Header.Get("Location")
	cases := []struct {
		name, query string
	}{
		{"normalized", ""},
		{"concise", "?options=concise"},
		{"keyValues", "?options=keyValues"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			apitest.Golden(t, "kinds_user_context_"+tc.name, readEntity(t, s, id, tc.query, linkHdr(s.URL+loc)).Body)
			apitest.Golden(t, "kinds_core_context_"+tc.name, readEntity(t, s, id, tc.query, nil).Body)
		})
	}
	t.Run("concise_round_trips", func(t *testing.T) {
		// The concise representation, posted back, gives the same entity.
		conc := jsonObject(t, readEntity(t, s, id, "?options=concise", nil))
		conc["id"] = "urn:ngsi-ld:Bin:2"
		mustCreate(t, s, conc, nil)
		a := jsonObject(t, readEntity(t, s, id, "", nil))
		b := jsonObject(t, readEntity(t, s, "urn:ngsi-ld:Bin:2", "", nil))
		b["id"] = id
		if !reflect.DeepEqual(a, b) {
			ab, _ := json.Marshal(a)
			bb, _ := json.Marshal(b)
			t.Errorf("concise round trip differs\n%s\n%s", ab, bb)
		}
	})
}

func TestMultiAttributes(t *testing.T) {
	s := apitest.Start(t)
	id := "urn:ngsi-ld:Sensor:1"
	mustCreate(t, s, map[string]any{
		"id": id, "type": "Sensor",
		"temperature": []any{
			map[string]any{"type": "Property", "value": 21, "datasetId": "urn:ngsi-ld:Dataset:z"},
			map[string]any{"type": "Property", "value": 20},
			map[string]any{"type": "Property", "value": 22, "datasetId": "urn:ngsi-ld:Dataset:a"},
		},
	}, nil)
	apitest.Golden(t, "multi_attribute", readEntity(t, s, id, "", nil).Body)
	apitest.Golden(t, "multi_attribute_concise", readEntity(t, s, id, "?options=concise", nil).Body)

	dup := map[string]any{
		"id": "urn:ngsi-ld:Sensor:2", "type": "Sensor",
		"temperature": []any{
			map[string]any{"type": "Property", "value": 21, "datasetId": "urn:ngsi-ld:Dataset:a"},
			map[string]any{"type": "Property", "value": 22, "datasetId": "urn:ngsi-ld:Dataset:a"},
		},
	}
	cases := []struct {
		name string
		send func() *apitest.Response
	}{
		{"create_duplicate_datasetId", func() *apitest.Response { return s.Post(apiBase+"/entities", dup, nil) }},
		{"create_two_defaults", func() *apitest.Response {
			d := map[string]any{"id": "urn:ngsi-ld:Sensor:2", "type": "Sensor", "t": []any{
				map[string]any{"type": "Property", "value": 1}, map[string]any{"type": "Property", "value": 2}}}
			return s.Post(apiBase+"/entities", d, nil)
		}},
		{"append_duplicate_datasetId", func() *apitest.Response {
			return s.Post(entityPath(id)+"/attrs", map[string]any{"temperature": dup["temperature"]}, nil)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := readEntity(t, s, id, "", nil).Body
			tc.send().ExpectProblem(t, http.StatusBadRequest, "BadRequestData")
			sameJSON(t, readEntity(t, s, id, "", nil).Body, before)
			s.Get(entityPath("urn:ngsi-ld:Sensor:2"), nil).ExpectProblem(t, http.StatusNotFound, "ResourceNotFound")
		})
	}
}

func TestSysAttrs(t *testing.T) {
	s := apitest.Start(t)
	id := "urn:ngsi-ld:Vehicle:A4567"
	mustCreate(t, s, vehicleEntity(id), nil)
	before := jsonObject(t, readEntity(t, s, id, "?options=sysAttrs", nil))
	for _, k := range []string{"createdAt", "modifiedAt"} {
		v, _ := before[k].(string)
		if _, err := time.Parse(time.RFC3339Nano, v); err != nil || !strings.HasSuffix(v, "Z") {
			t.Fatalf("%s %q is not a UTC date-time", k, v)
		}
	}
	if before["createdAt"] != before["modifiedAt"] {
		t.Errorf("new entity: createdAt %v != modifiedAt %v", before["createdAt"], before["modifiedAt"])
	}
	time.Sleep(5 * time.Millisecond)
	s.Patch(entityPath(id)+"/attrs/speed", map[string]any{"value": 100}, nil).Expect(t, http.StatusNoContent)
	after := jsonObject(t, readEntity(t, s, id, "?options=sysAttrs", nil))
	if after["createdAt"] != before["createdAt"] {
		t.Errorf("update changed createdAt: %v -> %v", before["createdAt"], after["createdAt"])
	}
	if after["modifiedAt"] == before["modifiedAt"] {
		t.Errorf("update left modifiedAt at %v", after["modifiedAt"])
	}
	sb, sa := before["speed"].(map[string]any), after["speed"].(map[string]any)
	if sa["createdAt"] != sb["createdAt"] || sa["modifiedAt"] == sb["modifiedAt"] {
		t.Errorf("speed times: before %v/%v after %v/%v", sb["createdAt"], sb["modifiedAt"], sa["createdAt"], sa["modifiedAt"])
	}
	bn, an := before["brandName"].(map[string]any), after["brandName"].(map[string]any)
	if an["modifiedAt"] != bn["modifiedAt"] {
		t.Errorf("an untouched attribute's modifiedAt changed: %v -> %v", bn["modifiedAt"], an["modifiedAt"])
	}
	// keyValues carries no system attributes.
	kv := jsonObject(t, readEntity(t, s, id, "?options=sysAttrs,keyValues&attrs=brandName", nil))
	if _, ok := kv["createdAt"]; ok {
		t.Errorf("keyValues with createdAt: %v", kv)
	}
	// createdAt/modifiedAt in a request body are ignored, not stored.
	mustCreate(t, s, map[string]any{"id": "urn:ngsi-ld:X:1", "type": "X", "createdAt": "2000-01-01T00:00:00Z"}, nil)
	x := jsonObject(t, readEntity(t, s, "urn:ngsi-ld:X:1", "?options=sysAttrs", nil))
	if x["createdAt"] == "2000-01-01T00:00:00.000Z" {
		t.Errorf("createdAt taken from the body")
	}
}

// datasetId (v1.9) keeps only the instances of the named datasets, "@none"
// being the default instance, on retrieve and on query.
func TestRetrieveDatasetID(t *testing.T) {
	s := apitest.Start(t)
	id := "urn:ngsi-ld:Sensor:ds"
	mustCreate(t, s, map[string]any{
		"id": id, "type": "Sensor",
		"temperature": []any{
			map[string]any{"type": "Property", "value": 20},
			map[string]any{"type": "Property", "value": 21, "datasetId": "urn:ngsi-ld:Dataset:a"},
			map[string]any{"type": "Property", "value": 22, "datasetId": "urn:ngsi-ld:Dataset:b"},
		},
		"status": map[string]any{"type": "Property", "value": "ok"},
	}, nil)
	values := func(body []byte) []any {
		var e map[string]any
		if err := json.Unmarshal(body, &e); err != nil {
			t.Fatal(err)
		}
		var out []any
		switch x := e["temperature"].(type) {
		case map[string]any:
			out = append(out, x["value"])
		case []any:
			for _, i := range x {
				out = append(out, i.(map[string]any)["value"])
			}
		}
		return out
	}
	for _, tc := range []struct {
		query string
		want  []any
	}{
		{"", []any{20.0, 21.0, 22.0}},
		{"?datasetId=urn:ngsi-ld:Dataset:a", []any{21.0}},
		{"?datasetId=@none,urn:ngsi-ld:Dataset:b", []any{20.0, 22.0}},
		{"?datasetId=urn:ngsi-ld:Dataset:nope", nil},
	} {
		got := values(readEntity(t, s, id, tc.query, nil).Body)
		if !slices.Equal(got, tc.want) {
			t.Errorf("GET %s: temperature values %v, want %v", tc.query, got, tc.want)
		}
	}
	r := s.Get(apiBase+"/entities?type=Sensor&datasetId=urn:ngsi-ld:Dataset:b", nil).Expect(t, http.StatusOK)
	var list []json.RawMessage
	if err := json.Unmarshal(r.Body, &list); err != nil || len(list) != 1 {
		t.Fatalf("query: %s (%v)", r.Body, err)
	}
	if got := values(list[0]); !slices.Equal(got, []any{22.0}) {
		t.Errorf("query with datasetId: temperature values %v, want [22]", got)
	}
	s.Get(entityPath(id)+"?datasetId=not%20a%20uri", nil).ExpectProblem(t, http.StatusBadRequest, "BadRequestData")
}

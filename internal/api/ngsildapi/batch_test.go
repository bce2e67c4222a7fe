package ngsildapi_test

import (
	"net/http"
	"testing"

	"github.com/zenne-city/zenne/internal/apitest"
)

func pv(v any) map[string]any { return map[string]any{"type": "Property", "value": v} }

func roomEntity(id string, temp any) map[string]any {
	return map[string]any{"id": id, "type": "Room", "temperature": pv(temp)}
}

func TestBatchCreate(t *testing.T) {
	t.Run("all_created", func(t *testing.T) {
		s := apitest.Start(t)
		r := s.Post(apiBase+"/entityOperations/create", []any{roomEntity("urn:ngsi-ld:Room:1", 20), roomEntity("urn:ngsi-ld:Room:2", 21)}, nil).Expect(t, http.StatusCreated)
		apitest.Golden(t, "batch_create_201", r.Body)
		apitest.Golden(t, "batch_room2", readEntity(t, s, "urn:ngsi-ld:Room:2", "", nil).Body)
	})
	t.Run("partial", func(t *testing.T) {
		s := apitest.Start(t)
		mustCreate(t, s, roomEntity("urn:ngsi-ld:Room:1", 1), nil)
		body := []any{
			roomEntity("urn:ngsi-ld:Room:1", 20),              // exists
			roomEntity("urn:ngsi-ld:Room:2", 21),              // ok
			map[string]any{"id": "not a uri", "type": "Room"}, // bad id
			map[string]any{"id": "urn:ngsi-ld:Room:3"},        // no type
			"urn:ngsi-ld:Room:4",                              // not an object
			map[string]any{"id": "urn:ngsi-ld:Room:5", "type": "Room", "x": map[string]any{"type": "Relationship"}}, // no object
		}
		r := s.Post(apiBase+"/entityOperations/create", body, nil).Expect(t, http.StatusMultiStatus)
		apitest.Golden(t, "batch_create_207", r.Body)
		// The valid item is stored, the existing entity is untouched.
		apitest.Golden(t, "batch_room2", readEntity(t, s, "urn:ngsi-ld:Room:2", "", nil).Body)
		if got := jsonObject(t, readEntity(t, s, "urn:ngsi-ld:Room:1", "?options=keyValues", nil))["temperature"]; got != 1.0 {
			t.Errorf("existing entity changed: temperature %v", got)
		}
		for _, id := range []string{"urn:ngsi-ld:Room:3", "urn:ngsi-ld:Room:5"} {
			s.Get(entityPath(id), nil).ExpectProblem(t, http.StatusNotFound, "ResourceNotFound")
		}
	})
	t.Run("ld_json_items", func(t *testing.T) {
		s := apitest.Start(t)
		a := roomEntity("urn:ngsi-ld:Room:1", 20)
		a["@context"] = map[string]any{"temperature": "https://example.org/temp"}
		b := roomEntity("urn:ngsi-ld:Room:2", 21) // no @context: an error with ld+json
		r := s.Do(apitest.Req{Method: "POST", Path: apiBase + "/entityOperations/create", Body: []any{a, b}, ContentType: "application/ld+json"}).Expect(t, http.StatusMultiStatus)
		apitest.Golden(t, "batch_create_ld_json_207", r.Body)
		got := jsonObject(t, readEntity(t, s, "urn:ngsi-ld:Room:1", "?options=keyValues", nil))
		if got["https://example.org/temp"] != 20.0 {
			t.Errorf("item context not applied: %v", got)
		}
	})
	t.Run("bad_bodies", func(t *testing.T) {
		s := apitest.Start(t)
		s.Post(apiBase+"/entityOperations/create", roomEntity("urn:ngsi-ld:Room:1", 1), nil).ExpectProblem(t, http.StatusBadRequest, "BadRequestData")
		s.Post(apiBase+"/entityOperations/create", []any{}, nil).ExpectProblem(t, http.StatusBadRequest, "BadRequestData")
		s.Get(entityPath("urn:ngsi-ld:Room:1"), nil).ExpectProblem(t, http.StatusNotFound, "ResourceNotFound")
	})
}

func TestBatchUpsert(t *testing.T) {
	existing := map[string]any{"id": "urn:ngsi-ld:Room:1", "type": "Room", "temperature": pv(1), "humidity": pv(50)}
	cases := []struct {
		name, query string
		items       []any
		status      int
		golden      string // golden of the upsert response ("" for none)
	}{
		{"replace_existing", "", []any{roomEntity("urn:ngsi-ld:Room:1", 20)}, http.StatusNoContent, ""},
		{"replace_option", "?options=replace", []any{roomEntity("urn:ngsi-ld:Room:1", 20)}, http.StatusNoContent, ""},
		{"update_option", "?options=update", []any{roomEntity("urn:ngsi-ld:Room:1", 20)}, http.StatusNoContent, ""},
		{"creates_new", "?options=update", []any{roomEntity("urn:ngsi-ld:Room:1", 20), roomEntity("urn:ngsi-ld:Room:2", 21)}, http.StatusCreated, "batch_upsert_201"},
		{"partial", "", []any{roomEntity("urn:ngsi-ld:Room:2", 21), map[string]any{"id": "urn:ngsi-ld:Room:3", "type": "Room", "t": map[string]any{"type": "Blob", "value": 1}}}, http.StatusMultiStatus, "batch_upsert_207"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := apitest.Start(t)
			mustCreate(t, s, existing, nil)
			r := s.Post(apiBase+"/entityOperations/upsert"+tc.query, tc.items, nil).Expect(t, tc.status)
			if tc.golden != "" {
				apitest.Golden(t, tc.golden, r.Body)
			}
			apitest.Golden(t, "batch_upsert_"+tc.name+"_room1", readEntity(t, s, "urn:ngsi-ld:Room:1", "", nil).Body)
		})
	}
	t.Run("unknown_option", func(t *testing.T) {
		s := apitest.Start(t)
		s.Post(apiBase+"/entityOperations/upsert?options=merge", []any{roomEntity("urn:ngsi-ld:Room:1", 20)}, nil).ExpectProblem(t, http.StatusBadRequest, "BadRequestData")
	})
}

func TestBatchUpdate(t *testing.T) {
	start := func(t *testing.T) *apitest.Server {
		s := apitest.Start(t)
		mustCreate(t, s, map[string]any{"id": "urn:ngsi-ld:Room:1", "type": "Room", "temperature": pv(1), "humidity": pv(50)}, nil)
		return s
	}
	frag := map[string]any{"id": "urn:ngsi-ld:Room:1", "type": "Room", "temperature": pv(20), "pressure": pv(1013)}
	t.Run("overwrite", func(t *testing.T) {
		s := start(t)
		s.Post(apiBase+"/entityOperations/update", []any{frag}, nil).Expect(t, http.StatusNoContent)
		apitest.Golden(t, "batch_update_room1", readEntity(t, s, "urn:ngsi-ld:Room:1", "?options=keyValues", nil).Body)
	})
	t.Run("noOverwrite", func(t *testing.T) {
		s := start(t)
		s.Post(apiBase+"/entityOperations/update?options=noOverwrite", []any{frag}, nil).Expect(t, http.StatusNoContent)
		apitest.Golden(t, "batch_update_noOverwrite_room1", readEntity(t, s, "urn:ngsi-ld:Room:1", "?options=keyValues", nil).Body)
	})
	t.Run("missing_entity", func(t *testing.T) {
		s := start(t)
		r := s.Post(apiBase+"/entityOperations/update", []any{frag, roomEntity("urn:ngsi-ld:Room:9", 1)}, nil).Expect(t, http.StatusMultiStatus)
		apitest.Golden(t, "batch_update_207", r.Body)
		apitest.Golden(t, "batch_update_room1", readEntity(t, s, "urn:ngsi-ld:Room:1", "?options=keyValues", nil).Body)
		s.Get(entityPath("urn:ngsi-ld:Room:9"), nil).ExpectProblem(t, http.StatusNotFound, "ResourceNotFound")
	})
}

func TestBatchMerge(t *testing.T) {
	s := apitest.Start(t)
	mustCreate(t, s, map[string]any{"id": "urn:ngsi-ld:Room:1", "type": "Room", "temperature": pv(1), "humidity": pv(50)}, nil)
	mustCreate(t, s, map[string]any{"id": "urn:ngsi-ld:Room:2", "type": "Room", "temperature": pv(2)}, nil)
	items := []any{
		map[string]any{"id": "urn:ngsi-ld:Room:1", "temperature": map[string]any{"value": 20}, "humidity": nil},
		map[string]any{"id": "urn:ngsi-ld:Room:2", "pressure": pv(1000)},
	}
	s.Post(apiBase+"/entityOperations/merge", items, nil).Expect(t, http.StatusNoContent)
	apitest.Golden(t, "batch_merge_room1", readEntity(t, s, "urn:ngsi-ld:Room:1", "?options=keyValues", nil).Body)
	apitest.Golden(t, "batch_merge_room2", readEntity(t, s, "urn:ngsi-ld:Room:2", "?options=keyValues", nil).Body)

	r := s.Post(apiBase+"/entityOperations/merge", []any{
		map[string]any{"id": "urn:ngsi-ld:Room:2", "temperature": 3},
		map[string]any{"id": "urn:ngsi-ld:Room:9", "temperature": 3},
		map[string]any{"temperature": 3},
	}, nil).Expect(t, http.StatusMultiStatus)
	apitest.Golden(t, "batch_merge_207", r.Body)
	if got := jsonObject(t, readEntity(t, s, "urn:ngsi-ld:Room:2", "?options=keyValues", nil))["temperature"]; got != 3.0 {
		t.Errorf("valid merge item not applied: temperature %v", got)
	}
}

func TestBatchDelete(t *testing.T) {
	s := apitest.Start(t)
	for _, id := range []string{"urn:ngsi-ld:Room:1", "urn:ngsi-ld:Room:2", "urn:ngsi-ld:Room:3"} {
		mustCreate(t, s, roomEntity(id, 1), nil)
	}
	s.Post(apiBase+"/entityOperations/delete", []any{"urn:ngsi-ld:Room:1", "urn:ngsi-ld:Room:2"}, nil).Expect(t, http.StatusNoContent)
	for _, id := range []string{"urn:ngsi-ld:Room:1", "urn:ngsi-ld:Room:2"} {
		s.Get(entityPath(id), nil).ExpectProblem(t, http.StatusNotFound, "ResourceNotFound")
	}
	r := s.Post(apiBase+"/entityOperations/delete", []any{"urn:ngsi-ld:Room:1", "urn:ngsi-ld:Room:3", 42, "not a uri"}, nil).Expect(t, http.StatusMultiStatus)
	apitest.Golden(t, "batch_delete_207", r.Body)
	s.Get(entityPath("urn:ngsi-ld:Room:3"), nil).ExpectProblem(t, http.StatusNotFound, "ResourceNotFound")
	s.Post(apiBase+"/entityOperations/delete", map[string]any{"id": "urn:ngsi-ld:Room:3"}, nil).ExpectProblem(t, http.StatusBadRequest, "BadRequestData")
}

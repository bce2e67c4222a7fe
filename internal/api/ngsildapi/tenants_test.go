package ngsildapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/zenne-city/zenne/internal/apitest"
)

func tenant(name string) map[string]string { return map[string]string{"NGSILD-Tenant": name} }

func TestTenants(t *testing.T) {
	s := apitest.Start(t)
	id := "urn:ngsi-ld:Room:1"
	mustCreate(t, s, roomEntity(id, 20), tenant("cityA"))
	mustCreate(t, s, roomEntity(id, 30), tenant("cityB"))

	cases := []struct {
		name   string
		header map[string]string
		want   any // temperature, or nil for 404
	}{
		{"cityA", tenant("cityA"), 20.0},
		{"cityB", tenant("cityB"), 30.0},
		{"default_tenant_is_separate", nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := s.Get(entityPath(id)+"?options=keyValues", tc.header)
			if tc.want == nil {
				r.ExpectProblem(t, http.StatusNotFound, "ResourceNotFound")
				return
			}
			r.Expect(t, http.StatusOK)
			if got := r.Header.Get("NGSILD-Tenant"); got != tc.header["NGSILD-Tenant"] {
				t.Errorf("response NGSILD-Tenant %q, want the request's", got)
			}
			if got := jsonObject(t, r)["temperature"]; got != tc.want {
				t.Errorf("temperature %v, want %v", got, tc.want)
			}
		})
	}

	t.Run("writes_stay_in_their_tenant", func(t *testing.T) {
		s.Patch(entityPath(id)+"/attrs/temperature", map[string]any{"value": 25}, tenant("cityA")).Expect(t, http.StatusNoContent)
		s.Delete(entityPath(id), tenant("cityB")).Expect(t, http.StatusNoContent)
		if got := jsonObject(t, readEntity(t, s, id, "?options=keyValues", tenant("cityA")))["temperature"]; got != 25.0 {
			t.Errorf("cityA temperature %v", got)
		}
		s.Get(entityPath(id), tenant("cityB")).ExpectProblem(t, http.StatusNotFound, "ResourceNotFound")
		// The tenant still exists once its last entity is gone.
		s.Post(apiBase+"/entityOperations/create", []any{roomEntity(id, 1)}, tenant("cityB")).Expect(t, http.StatusCreated)
	})

	t.Run("unknown_tenant", func(t *testing.T) {
		for _, path := range []string{entityPath(id), apiBase + "/types", apiBase + "/attributes", apiBase + "/entities?type=Room"} {
			s.Get(path, tenant("nowhere")).ExpectProblem(t, http.StatusNotFound, "NonexistentTenant")
		}
		s.Patch(entityPath(id)+"/attrs", map[string]any{"temperature": pv(1)}, tenant("nowhere2")).ExpectProblem(t, http.StatusNotFound, "NonexistentTenant")
	})

	t.Run("invalid_tenant_name", func(t *testing.T) {
		for _, name := range []string{"bad tenant", "a/b", "-x", "x;y", strings.Repeat("a", 65)} {
			s.Post(apiBase+"/entities", roomEntity("urn:ngsi-ld:Room:9", 1), tenant(name)).ExpectProblem(t, http.StatusBadRequest, "BadRequestData")
		}
	})

	t.Run("batch_and_discovery_per_tenant", func(t *testing.T) {
		s.Post(apiBase+"/entityOperations/upsert", []any{map[string]any{"id": "urn:ngsi-ld:Park:1", "type": "Park", "area": pv(3)}}, tenant("cityC")).Expect(t, http.StatusCreated)
		r := s.Get(apiBase+"/types", tenant("cityC")).Expect(t, http.StatusOK)
		if got := jsonObject(t, r)["typeList"]; len(got.([]any)) != 1 || got.([]any)[0] != "Park" {
			t.Errorf("cityC types %v", got)
		}
	})
}

package ngsildapi_test

import (
	"net/http"
	"testing"

	"github.com/zenne-city/zenne/internal/apitest"
)

func TestDiscovery(t *testing.T) {
	s := apitest.Start(t)
	mustCreate(t, s, vehicleEntity("urn:ngsi-ld:Vehicle:1"), nil)
	mustCreate(t, s, map[string]any{"id": "urn:ngsi-ld:Vehicle:2", "type": "Vehicle", "brandName": pv("Audi")}, nil)
	mustCreate(t, s, map[string]any{"id": "urn:ngsi-ld:Room:1", "type": []any{"Room", "Space"}, "temperature": pv(20),
		"brandName": map[string]any{"type": "LanguageProperty", "languageMap": map[string]any{"en": "x"}}}, nil)
	mustCreate(t, s, map[string]any{"id": "urn:ngsi-ld:WasteContainer:1", "type": "WasteContainer", "fillingLevel": pv(0.5)}, linkHdr(wasteContext))

	cases := []struct {
		name, path string
		header     map[string]string
	}{
		{"types", "/types", nil},
		{"types_details", "/types?details=true", nil},
		{"types_user_context", "/types", linkHdr(wasteContext)},
		{"type_info", "/types/Vehicle", nil},
		{"type_info_user_context", "/types/WasteContainer", linkHdr(wasteContext)},
		{"type_info_full_iri", "/types/" + "https:%2F%2Fsmartdatamodels.org%2FdataModel.WasteManagement%2FWasteContainer", nil},
		{"attributes", "/attributes", nil},
		{"attributes_details", "/attributes?details=true", nil},
		{"attribute_info", "/attributes/brandName", nil},
		{"attribute_info_user_context", "/attributes/fillingLevel", linkHdr(wasteContext)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := s.Get(apiBase+tc.path, tc.header).Expect(t, http.StatusOK)
			if ct := r.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if r.Header.Get("Link") == "" {
				t.Errorf("no Link header")
			}
			apitest.Golden(t, "discovery_"+tc.name, r.Body)
		})
	}
	t.Run("ld_json", func(t *testing.T) {
		r := s.Get(apiBase+"/types", map[string]string{"Accept": "application/ld+json"}).Expect(t, http.StatusOK)
		if jsonObject(t, r)["@context"] != coreContext {
			t.Errorf("no @context: %s", r.Body)
		}
	})
	t.Run("errors", func(t *testing.T) {
		s.Get(apiBase+"/types/Bicycle", nil).ExpectProblem(t, http.StatusNotFound, "ResourceNotFound")
		s.Get(apiBase+"/attributes/nothing", nil).ExpectProblem(t, http.StatusNotFound, "ResourceNotFound")
		s.Get(apiBase+"/types?details=maybe", nil).ExpectProblem(t, http.StatusBadRequest, "BadRequestData")
		s.Get(apiBase+"/types", map[string]string{"Accept": "text/csv"}).ExpectProblem(t, http.StatusNotAcceptable, "NotAcceptable")
	})
	t.Run("counts_follow_deletes", func(t *testing.T) {
		s.Delete(entityPath("urn:ngsi-ld:Vehicle:2"), nil).Expect(t, http.StatusNoContent)
		r := s.Get(apiBase+"/types/Vehicle", nil).Expect(t, http.StatusOK)
		if n := jsonObject(t, r)["entityCount"]; n != 1.0 {
			t.Errorf("entityCount %v after a delete", n)
		}
		s.Delete(entityPath("urn:ngsi-ld:Room:1"), nil).Expect(t, http.StatusNoContent)
		s.Get(apiBase+"/types/Room", nil).ExpectProblem(t, http.StatusNotFound, "ResourceNotFound")
		s.Get(apiBase+"/attributes/temperature", nil).ExpectProblem(t, http.StatusNotFound, "ResourceNotFound")
	})
}

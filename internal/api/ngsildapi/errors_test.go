package ngsildapi_test

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/zenne-city/zenne/internal/apitest"
)

// TestErrors sends bad requests against a stored entity and checks the
// ProblemDetails and that nothing stored changed.
func TestErrors(t *testing.T) {
	s := apitest.Start(t)
	id := "urn:ngsi-ld:Vehicle:A4567"
	mustCreate(t, s, vehicleEntity(id), nil)
	before := readEntity(t, s, id, "?options=sysAttrs", nil).Body

	// A context server that answers 404, and a port nobody listens on.
	missing := httptest.NewServer(http.NotFoundHandler())
	defer missing.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + ln.Addr().String() + "/context.jsonld"
	ln.Close()

	entities := apiBase + "/entities"
	attrs := entityPath(id) + "/attrs"
	newEntity := func(extra map[string]any) map[string]any {
		e := map[string]any{"id": "urn:ngsi-ld:Vehicle:new", "type": "Vehicle"}
		for k, v := range extra {
			e[k] = v
		}
		return e
	}
	big := append(append([]byte(`{"id":"urn:ngsi-ld:Vehicle:new","type":"Vehicle","pad":{"type":"Property","value":"`),
		bytes.Repeat([]byte("x"), 9<<20)...), []byte(`"}}`)...)

	cases := []struct {
		name    string
		req     apitest.Req
		status  int
		errType string
		golden  bool
	}{
		{"invalid_json", apitest.Req{Method: "POST", Path: entities, Body: `{"id": "urn:x:1", "type":`}, 400, "InvalidRequest", true},
		{"trailing_data", apitest.Req{Method: "POST", Path: entities, Body: `{"id":"urn:x:1","type":"T"} {}`}, 400, "InvalidRequest", false},
		{"empty_body", apitest.Req{Method: "POST", Path: entities, Body: ``, ContentType: "application/json"}, 400, "InvalidRequest", false},
		{"body_not_object", apitest.Req{Method: "POST", Path: entities, Body: `[1,2]`}, 400, "BadRequestData", false},
		{"id_not_uri", apitest.Req{Method: "POST", Path: entities, Body: map[string]any{"id": "not a uri", "type": "Vehicle"}}, 400, "BadRequestData", true},
		{"id_not_string", apitest.Req{Method: "POST", Path: entities, Body: map[string]any{"id": 42, "type": "Vehicle"}}, 400, "BadRequestData", false},
		{"missing_id", apitest.Req{Method: "POST", Path: entities, Body: map[string]any{"type": "Vehicle"}}, 400, "BadRequestData", false},
		{"missing_type", apitest.Req{Method: "POST", Path: entities, Body: map[string]any{"id": "urn:ngsi-ld:Vehicle:new"}}, 400, "BadRequestData", true},
		{"unknown_attribute_type", apitest.Req{Method: "POST", Path: entities, Body: newEntity(map[string]any{"a": map[string]any{"type": "Propperty", "value": 1}})}, 400, "BadRequestData", true},
		{"relationship_without_object", apitest.Req{Method: "POST", Path: entities, Body: newEntity(map[string]any{"r": map[string]any{"type": "Relationship", "value": "urn:x:1"}})}, 400, "BadRequestData", true},
		{"relationship_object_not_uri", apitest.Req{Method: "POST", Path: entities, Body: newEntity(map[string]any{"r": map[string]any{"type": "Relationship", "object": "nope"}})}, 400, "BadRequestData", false},
		{"invalid_geojson", apitest.Req{Method: "POST", Path: entities, Body: newEntity(map[string]any{"location": map[string]any{"type": "GeoProperty", "value": map[string]any{"type": "Point", "coordinates": []any{200, 10}}}})}, 400, "BadRequestData", true},
		{"geo_not_geometry", apitest.Req{Method: "POST", Path: entities, Body: newEntity(map[string]any{"location": map[string]any{"type": "GeoProperty", "value": "here"}})}, 400, "BadRequestData", false},
		{"null_attribute", apitest.Req{Method: "POST", Path: entities, Body: newEntity(map[string]any{"a": nil})}, 400, "BadRequestData", false},
		{"bad_observedAt", apitest.Req{Method: "POST", Path: entities, Body: newEntity(map[string]any{"a": map[string]any{"type": "Property", "value": 1, "observedAt": "yesterday"}})}, 400, "BadRequestData", false},
		{"bad_language_tag", apitest.Req{Method: "POST", Path: entities, Body: newEntity(map[string]any{"a": map[string]any{"type": "LanguageProperty", "languageMap": map[string]any{"not a tag": "x"}}})}, 400, "BadRequestData", false},
		{"bad_attribute_name", apitest.Req{Method: "POST", Path: entities, Body: newEntity(map[string]any{"a(b)": 1})}, 400, "BadRequestData", false},
		{"content_type_text", apitest.Req{Method: "POST", Path: entities, Body: `{"id":"urn:ngsi-ld:Vehicle:new","type":"Vehicle"}`, ContentType: "text/plain"}, 415, "UnsupportedMediaType", true},
		{"merge_patch_on_create", apitest.Req{Method: "POST", Path: entities, Body: newEntity(nil), ContentType: "application/merge-patch+json"}, 415, "UnsupportedMediaType", false},
		{"content_type_on_update", apitest.Req{Method: "PATCH", Path: attrs, Body: `{"brandName":{"type":"Property","value":"X"}}`, ContentType: "application/xml"}, 415, "UnsupportedMediaType", false},
		{"body_too_large", apitest.Req{Method: "POST", Path: entities, Body: big}, 413, "PayloadTooLarge", false},
		{"body_too_large_update", apitest.Req{Method: "PATCH", Path: attrs, Body: big}, 413, "PayloadTooLarge", false},
		{"context_in_json_body", apitest.Req{Method: "POST", Path: entities, Body: newEntity(map[string]any{"@context": coreContext})}, 400, "BadRequestData", true},
		{"context_in_json_update", apitest.Req{Method: "PATCH", Path: attrs, Body: map[string]any{"@context": coreContext, "brandName": pv("X")}}, 400, "BadRequestData", false},
		{"ld_json_without_context", apitest.Req{Method: "POST", Path: entities, Body: newEntity(nil), ContentType: "application/ld+json"}, 400, "BadRequestData", false},
		{"ld_json_with_link", apitest.Req{Method: "POST", Path: entities, Body: newEntity(map[string]any{"@context": coreContext}), ContentType: "application/ld+json", Header: linkHdr(wasteContext)}, 400, "BadRequestData", true},
		{"link_not_a_url", apitest.Req{Method: "POST", Path: entities, Body: newEntity(nil), Header: map[string]string{"Link": `<not a url>; rel="http://www.w3.org/ns/json-ld#context"`}}, 400, "BadRequestData", false},
		{"link_context_404", apitest.Req{Method: "POST", Path: entities, Body: newEntity(nil), Header: linkHdr(missing.URL + "/context.jsonld")}, 503, "LdContextNotAvailable", false},
		{"link_context_closed_port", apitest.Req{Method: "PATCH", Path: attrs, Body: map[string]any{"brandName": pv("X")}, Header: linkHdr(closedURL)}, 503, "LdContextNotAvailable", false},
		{"body_context_404", apitest.Req{Method: "POST", Path: entities, Body: newEntity(map[string]any{"@context": missing.URL + "/c.jsonld"}), ContentType: "application/ld+json"}, 503, "LdContextNotAvailable", false},
		{"link_context_on_read", apitest.Req{Method: "GET", Path: entityPath(id), Header: linkHdr(missing.URL + "/context.jsonld")}, 503, "LdContextNotAvailable", false},
		{"path_id_not_uri", apitest.Req{Method: "GET", Path: apiBase + "/entities/nope"}, 400, "BadRequestData", false},
		{"unknown_route", apitest.Req{Method: "GET", Path: apiBase + "/nothing/here"}, 404, "ResourceNotFound", true},
		{"unknown_route_post", apitest.Req{Method: "POST", Path: apiBase + "/entitiez", Body: newEntity(nil)}, 404, "ResourceNotFound", false},
		{"update_id_mismatch", apitest.Req{Method: "POST", Path: attrs, Body: map[string]any{"id": "urn:ngsi-ld:Vehicle:other", "brandName": pv("X")}}, 400, "BadRequestData", false},
		{"update_empty", apitest.Req{Method: "PATCH", Path: attrs, Body: map[string]any{}}, 400, "BadRequestData", false},
		{"append_bad_option", apitest.Req{Method: "POST", Path: attrs + "?options=keyValues", Body: map[string]any{"brandName": pv("X")}}, 400, "BadRequestData", false},
		{"append_invalid_attribute", apitest.Req{Method: "POST", Path: attrs, Body: map[string]any{"brandName": pv("X"), "r": map[string]any{"type": "Relationship"}}}, 400, "BadRequestData", false},
		{"tenant_invalid", apitest.Req{Method: "GET", Path: entityPath(id), Header: map[string]string{"NGSILD-Tenant": "bad tenant!"}}, 400, "BadRequestData", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := s.Do(tc.req)
			r.ExpectProblem(t, tc.status, tc.errType)
			if ct := r.Header.Get("Content-Type"); ct != "application/json" && ct != "application/problem+json" {
				t.Errorf("error Content-Type %q", ct)
			}
			if tc.golden {
				apitest.Golden(t, "error_"+tc.name, r.Body)
			}
			sameJSON(t, readEntity(t, s, id, "?options=sysAttrs", nil).Body, before)
			s.Get(entityPath("urn:ngsi-ld:Vehicle:new"), nil).ExpectProblem(t, http.StatusNotFound, "ResourceNotFound")
		})
	}
	t.Run("error_detail_hides_internals", func(t *testing.T) {
		r := s.Do(apitest.Req{Method: "POST", Path: entities, Body: newEntity(nil), Header: linkHdr(closedURL)})
		if strings.Contains(string(r.Body), "goroutine") {
			t.Errorf("stack trace in an error body: %s", r.Body)
		}
	})
}

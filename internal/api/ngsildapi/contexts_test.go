package ngsildapi_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/zenne-city/zenne/internal/apitest"
)

var parkingContext = map[string]any{
	"@context": map[string]any{
		"park":        "https://example.org/parking#",
		"ParkingLot":  "park:ParkingLot",
		"capacity":    "park:capacity",
		"operator":    "park:operator",
		"Company":     "park:Company",
		"levels":      map[string]any{"@id": "park:levels", "@type": "@vocab"},
		"Underground": "park:Underground",
	},
}

// registerContext posts a context to /jsonldContexts and returns its URL path.
func registerContext(t *testing.T, s *apitest.Server, doc any, contentType string) string {
	t.Helper()
	r := s.Do(apitest.Req{Method: "POST", Path: apiBase + "/jsonldContexts", Body: doc, ContentType: contentType}).Expect(t, http.StatusCreated)
	loc := r.Header.Get("Location")
	if !strings.HasPrefix(loc, apiBase+"/jsonldContexts/") {
		t.Fatalf("Location %q", loc)
	}
	return loc
}

func TestJSONLDContexts(t *testing.T) {
	s := apitest.Start(t)
	loc := registerContext(t, s, parkingContext, "application/json")
	// application/ld+json is accepted too, and the broker's own contexts need no network.
	registerContext(t, s, map[string]any{"@context": []any{map[string]any{"a": "https://example.org/a"}, wasteContext}}, "application/ld+json")

	t.Run("serve", func(t *testing.T) {
		r := s.Get(loc, nil).Expect(t, http.StatusOK)
		if ct := r.Header.Get("Content-Type"); ct != "application/ld+json" {
			t.Errorf("Content-Type %q", ct)
		}
		apitest.Golden(t, "contexts_serve", r.Body)
	})
	t.Run("list", func(t *testing.T) {
		r := s.Get(apiBase+"/jsonldContexts", nil).Expect(t, http.StatusOK)
		var urls []string
		for _, u := range r.JSON(t).([]any) {
			urls = append(urls, u.(string))
		}
		if !slices.Contains(urls, s.URL+loc) {
			t.Errorf("list %v lacks %s", urls, s.URL+loc)
		}
	})
	t.Run("list_details", func(t *testing.T) {
		r := s.Get(apiBase+"/jsonldContexts?details=true", nil).Expect(t, http.StatusOK)
		found := false
		for _, x := range r.JSON(t).([]any) {
			d := x.(map[string]any)
			if d["URL"] == s.URL+loc {
				found = true
				if d["kind"] != "Hosted" || d["localId"] != strings.TrimPrefix(loc, apiBase+"/jsonldContexts/") || d["createdAt"] == nil {
					t.Errorf("details %v", d)
				}
			}
		}
		if !found {
			t.Errorf("details lack %s: %s", loc, r.Body)
		}
	})
	t.Run("use_in_link_header_without_network", func(t *testing.T) {
		// A host that does not resolve: the context must come from the store.
		u := "http://zenne.invalid" + loc
		e := map[string]any{
			"id": "urn:ngsi-ld:ParkingLot:1", "type": "ParkingLot",
			"capacity": pv(120),
			"operator": map[string]any{"type": "Relationship", "object": "urn:ngsi-ld:Company:1", "objectType": "Company"},
			"levels":   map[string]any{"type": "VocabProperty", "vocab": "Underground"},
		}
		mustCreate(t, s, e, linkHdr(u))
		r := readEntity(t, s, "urn:ngsi-ld:ParkingLot:1", "", linkHdr(u))
		if got, want := r.Header.Get("Link"), apitest.LinkHeader(u); got != want {
			t.Errorf("response Link %q, want %q", got, want)
		}
		apitest.Golden(t, "contexts_hosted_user_context", r.Body)
		apitest.Golden(t, "contexts_hosted_core_context", readEntity(t, s, "urn:ngsi-ld:ParkingLot:1", "", nil).Body)
	})
	t.Run("bad_documents", func(t *testing.T) {
		for name, body := range map[string]any{
			"no_context": map[string]any{"x": 1},
			"number":     map[string]any{"@context": 5},
			"not_object": []any{1},
			"bad_term":   map[string]any{"@context": map[string]any{"x": 5}},
		} {
			t.Run(name, func(t *testing.T) {
				r := s.Post(apiBase+"/jsonldContexts", body, nil)
				r.ExpectProblem(t, http.StatusBadRequest, "BadRequestData")
			})
		}
	})
	t.Run("delete", func(t *testing.T) {
		s.Delete(loc, nil).Expect(t, http.StatusNoContent)
		s.Get(loc, nil).ExpectProblem(t, http.StatusNotFound, "ResourceNotFound")
		s.Delete(loc, nil).ExpectProblem(t, http.StatusNotFound, "ResourceNotFound")
		r := s.Get(apiBase+"/jsonldContexts", nil).Expect(t, http.StatusOK)
		if strings.Contains(string(r.Body), loc) {
			t.Errorf("deleted context still listed: %s", r.Body)
		}
		// A Link to it no longer resolves.
		s.Get(entityPath("urn:ngsi-ld:ParkingLot:1"), linkHdr("http://zenne.invalid"+loc)).ExpectProblem(t, http.StatusServiceUnavailable, "LdContextNotAvailable")
	})
}

// TestCompaction creates the same entity under a user context and reads it
// back under that context (short names) and the core context (full IRIs).
func TestCompaction(t *testing.T) {
	bin := map[string]any{
		"id":           "urn:ngsi-ld:WasteContainer:1",
		"type":         "WasteContainer",
		"fillingLevel": map[string]any{"type": "Property", "value": 0.7, "observedAt": "2024-05-01T10:00:00Z"},
		"binCapacity":  pv(1000),
		"location":     map[string]any{"type": "GeoProperty", "value": map[string]any{"type": "Point", "coordinates": []any{4.35, 50.85}}},
		"unknownTerm":  pv("default-context"),
	}
	cases := []struct {
		name string
		send func(s *apitest.Server)
	}{
		{"sdm_link_header", func(s *apitest.Server) { mustCreate(t, s, bin, linkHdr(wasteContext)) }},
		{"ld_json_body", func(s *apitest.Server) {
			b := map[string]any{"@context": wasteContext}
			for k, v := range bin {
				b[k] = v
			}
			s.Do(apitest.Req{Method: "POST", Path: apiBase + "/entities", Body: b, ContentType: "application/ld+json"}).Expect(t, http.StatusCreated)
		}},
		{"ld_json_body_array_context", func(s *apitest.Server) {
			b := map[string]any{"@context": []any{wasteContext, coreContext}}
			for k, v := range bin {
				b[k] = v
			}
			s.Do(apitest.Req{Method: "POST", Path: apiBase + "/entities", Body: b, ContentType: "application/ld+json"}).Expect(t, http.StatusCreated)
		}},
		{"batch_link_header", func(s *apitest.Server) {
			s.Post(apiBase+"/entityOperations/create", []any{bin}, linkHdr(wasteContext)).Expect(t, http.StatusCreated)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := apitest.Start(t)
			tc.send(s)
			id := "urn:ngsi-ld:WasteContainer:1"
			apitest.Golden(t, "compaction_sdm_user_context", readEntity(t, s, id, "", linkHdr(wasteContext)).Body)
			apitest.Golden(t, "compaction_sdm_core_context", readEntity(t, s, id, "", nil).Body)
			// Updates under the user context hit the same attributes.
			s.Patch(entityPath(id)+"/attrs/fillingLevel", map[string]any{"value": 0.9}, linkHdr(wasteContext)).Expect(t, http.StatusNoContent)
			kv := jsonObject(t, readEntity(t, s, id, "?options=keyValues", linkHdr(wasteContext)))
			if kv["fillingLevel"] != 0.9 {
				t.Errorf("fillingLevel %v after update", kv["fillingLevel"])
			}
			// attrs= and the attribute path take terms of the request's context.
			r := readEntity(t, s, id, "?attrs=binCapacity&options=keyValues", linkHdr(wasteContext))
			if jsonObject(t, r)["binCapacity"] != 1000.0 {
				t.Errorf("attrs=binCapacity under the SDM context: %s", r.Body)
			}
			s.Get(entityPath(id)+"?attrs=binCapacity", nil).ExpectProblem(t, http.StatusNotFound, "ResourceNotFound")
		})
	}
}

// TestImplicitContext: a query sent with an inline @context and answered as
// application/json links to that context, hosted by the broker as
// ImplicitlyCreated, so the client can read the compacted names and reuse it.
func TestImplicitContext(t *testing.T) {
	s := apitest.Start(t)
	inline := map[string]any{"Bike": "https://example.org/mobility#Bike", "battery": "https://example.org/mobility#battery"}
	s.Do(apitest.Req{Method: "POST", Path: "/ngsi-ld/v1/entities", ContentType: "application/ld+json", Body: map[string]any{
		"@context": inline, "id": "urn:ngsi-ld:Bike:1", "type": "Bike", "battery": map[string]any{"type": "Property", "value": 40},
	}}).Expect(t, http.StatusCreated)
	query := func() *apitest.Response {
		return s.Do(apitest.Req{Method: "POST", Path: "/ngsi-ld/v1/entityOperations/query?options=keyValues", ContentType: "application/ld+json",
			Body: map[string]any{"@context": inline, "type": "Query", "entities": []any{map[string]any{"type": "Bike"}}}}).Expect(t, http.StatusOK)
	}
	r := query()
	link := r.Header.Get("Link")
	if !strings.Contains(link, "/ngsi-ld/v1/jsonldContexts/implicit-") {
		t.Fatalf("Link %q does not point to a hosted implicit context", link)
	}
	if !strings.Contains(string(r.Body), `"battery":40`) {
		t.Fatalf("response not compacted with the inline context: %s", r.Body)
	}
	if again := query().Header.Get("Link"); again != link {
		t.Fatalf("the same inline context got a second URL: %q, then %q", link, again)
	}
	url := strings.TrimPrefix(link[:strings.Index(link, ">")], "<")
	doc := s.Get(strings.TrimPrefix(url, s.URL), nil).Expect(t, http.StatusOK)
	if !strings.Contains(string(doc.Body), "https://example.org/mobility#battery") {
		t.Fatalf("hosted implicit context: %s", doc.Body)
	}
	r = s.Get("/ngsi-ld/v1/entities?type=Bike&options=keyValues", map[string]string{"Link": apitest.LinkHeader(url)}).Expect(t, http.StatusOK)
	if !strings.Contains(string(r.Body), `"battery":40`) {
		t.Fatalf("reusing the implicit context: %s", r.Body)
	}
	list := s.Get("/ngsi-ld/v1/jsonldContexts?details=true&kind=ImplicitlyCreated", nil).Expect(t, http.StatusOK)
	if n := strings.Count(string(list.Body), `"ImplicitlyCreated"`); n != 1 {
		t.Fatalf("%d implicit contexts listed, want 1: %s", n, list.Body)
	}
	// Deleted, it is hosted again by the next response that needs it,
	// rather than linked to as it was.
	s.Delete(strings.TrimPrefix(url, s.URL), nil).Expect(t, http.StatusNoContent)
	query()
	s.Get(strings.TrimPrefix(url, s.URL), nil).Expect(t, http.StatusOK)
}

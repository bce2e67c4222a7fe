package alarmapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/apitest"
	"github.com/zenne-city/zenne/internal/auth"
	"github.com/zenne-city/zenne/internal/jsonld"
	"github.com/zenne-city/zenne/internal/ngsild"
)

const fullBins = `{"id": "full-bins", "name": "Full bins", "kind": "threshold", "severity": "high",
	"entities": [{"type": "WasteContainer"}], "attribute": "fillingLevel",
	"threshold": {"above": 0.8, "clearBelow": 0.6}}`

// alertLink asks for alerts in the Smart Data Models Alert terms.
var alertLink = map[string]string{"Link": apitest.LinkHeader(jsonld.SDMContextURL("Alert"))}

// bins creates n waste containers (urn:ngsi-ld:WasteContainer:<prefix>-<i>)
// with a fillingLevel.
func bins(t testing.TB, s *apitest.Server, h map[string]string, prefix string, n int, level float64) {
	t.Helper()
	for i := 1; i <= n; i++ {
		s.Post("/ngsi-ld/v1/entities", fmt.Sprintf(`{"id": "urn:ngsi-ld:WasteContainer:%s-%d", "type": "WasteContainer",
			"name": {"type": "Property", "value": "Bin %s-%d"},
			"fillingLevel": {"type": "Property", "value": %v}}`, prefix, i, prefix, i, level), h).Expect(t, http.StatusCreated)
	}
}

func fill(t testing.TB, s *apitest.Server, h map[string]string, id string, level float64) {
	t.Helper()
	s.Patch("/ngsi-ld/v1/entities/"+id+"/attrs", fmt.Sprintf(`{"fillingLevel": {"type": "Property", "value": %v}}`, level), h).
		Expect(t, http.StatusNoContent)
}

// problem checks a ProblemDetails answer: status, type and a piece of the
// detail.
func problem(t *testing.T, r *apitest.Response, status int, typ ngsild.ErrorType, detail string) {
	t.Helper()
	var p struct{ Type, Title, Detail string }
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatalf("status %d, body is not ProblemDetails: %s", r.Status, r.Body)
	}
	if r.Status != status || p.Type != string(typ) || p.Title == "" || !strings.Contains(p.Detail, detail) {
		t.Fatalf("got %d %s, want %d %s with detail containing %q", r.Status, r.Body, status, typ, detail)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("ProblemDetails Content-Type %q", ct)
	}
}

// firingAlert makes the rule fullBins open an alert on bin a-1 and returns
// the alert's id.
func firingAlert(t *testing.T, s *apitest.Server, h map[string]string) (*apitest.Server, string) {
	t.Helper()
	bins(t, s, h, "a", 2, 0.2)
	s.Post("/alarms/rules", fullBins, h).Expect(t, http.StatusCreated)
	fill(t, s, h, "urn:ngsi-ld:WasteContainer:a-1", 0.9)
	return s, waitAlert(t, s, h, "")
}

// waitAlert polls for an alert (whose alertStatus is status, if given) and
// returns its id.
func waitAlert(t *testing.T, s *apitest.Server, h map[string]string, status string) string {
	t.Helper()
	hdr := map[string]string{"Link": alertLink["Link"]}
	for k, v := range h {
		hdr[k] = v
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var got []map[string]any
		r := s.Get("/ngsi-ld/v1/entities?type=Alert&options=keyValues", hdr).Expect(t, http.StatusOK)
		if err := json.Unmarshal(r.Body, &got); err != nil {
			t.Fatal(err)
		}
		for _, a := range got {
			if status == "" || a["alertStatus"] == status {
				return a["id"].(string)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no alert within 5 s; alerts: %s", r.Body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// volatileAlert matches what changes from run to run in an alert: the
// alert id's opening time, times, and local times in descriptions.
var volatileAlert = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`(urn:ngsi-ld:Alert:[^:"]+:[0-9a-f]+:)\d+`), "${1}<ms>"},
	{regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z`), "<time>"},
	{regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d`), "<local time>"},
}

func normalizeAlert(b []byte) []byte {
	for _, v := range volatileAlert {
		b = v.re.ReplaceAll(b, []byte(v.with))
	}
	return b
}

// TestAlarmRules walks a rule through every route's success path.
func TestAlarmRules(t *testing.T) {
	s := apitest.Start(t)
	h := map[string]string{"NGSILD-Tenant": "city"}
	bins(t, s, h, "a", 2, 0.2)

	r := s.Post("/alarms/rules", fullBins, h).Expect(t, http.StatusCreated)
	if loc := r.Header.Get("Location"); loc != "/alarms/rules/full-bins" {
		t.Errorf("Location %q", loc)
	}
	if r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("Content-Type %q", r.Header.Get("Content-Type"))
	}
	r = s.Get("/alarms/rules/full-bins", h).Expect(t, http.StatusOK)
	apitest.Golden(t, "rule_get", r.Body)

	// Without an id the rule gets one; with ld+json its @context is the body's.
	r = s.Do(apitest.Req{Method: "POST", Path: "/alarms/rules", ContentType: "application/ld+json", Header: h,
		Body: `{"@context": ["https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"], "kind": "rate",
			"entities": [{"type": "WasteContainer"}], "attribute": "fillingLevel", "rate": {"above": 0.5, "per": "PT1H"}}`}).
		Expect(t, http.StatusCreated)
	var made map[string]any
	json.Unmarshal(r.Body, &made)
	id, _ := made["id"].(string)
	if !strings.HasPrefix(id, "rule-") || r.Header.Get("Location") != "/alarms/rules/"+id {
		t.Errorf("generated id %q, Location %q", id, r.Header.Get("Location"))
	}

	var list []map[string]any
	json.Unmarshal(s.Get("/alarms/rules", h).Expect(t, http.StatusOK).Body, &list)
	if len(list) != 2 || list[0]["id"] != "full-bins" || list[1]["id"] != id {
		t.Fatalf("list: %v", list)
	}
	if _, ok := list[0]["status"].(map[string]any); !ok {
		t.Errorf("a listed rule has no status: %v", list[0])
	}

	steps := []struct {
		name   string
		method string
		body   string
		ct     string
		check  func(rule map[string]any) string
	}{
		{"replace", "PUT", `{"kind": "threshold", "entities": [{"type": "WasteContainer"}], "attribute": "fillingLevel",
			"threshold": {"above": 0.85, "for": "PT10M"}, "createdAt": "ignored", "status": {"ignored": true}}`, "",
			func(rule map[string]any) string {
				th, _ := rule["threshold"].(map[string]any)
				if th["above"] != 0.85 || rule["name"] != nil || rule["createdAt"] == "ignored" {
					return "not replaced"
				}
				return ""
			}},
		{"pause", "PATCH", `{"paused": true}`, "", func(rule map[string]any) string {
			if rule["paused"] != true {
				return "not paused"
			}
			return ""
		}},
		{"merge patch keeps the other parameters", "PATCH", `{"threshold": {"for": null, "clearBelow": 0.7}}`, "application/merge-patch+json",
			func(rule map[string]any) string {
				th, _ := rule["threshold"].(map[string]any)
				if th["above"] != 0.85 || th["clearBelow"] != 0.7 || th["for"] != nil || rule["paused"] != true {
					return "not merged"
				}
				return ""
			}},
		{"resume", "PATCH", `{"paused": null}`, "", func(rule map[string]any) string {
			if _, ok := rule["paused"]; ok {
				return "still paused"
			}
			return ""
		}},
	}
	var created string
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			r := s.Do(apitest.Req{Method: st.method, Path: "/alarms/rules/full-bins", Body: st.body, ContentType: st.ct, Header: h}).
				Expect(t, http.StatusOK)
			var rule map[string]any
			json.Unmarshal(r.Body, &rule)
			if msg := st.check(rule); msg != "" {
				t.Fatalf("%s: %s", msg, r.Body)
			}
			if rule["id"] != "full-bins" || rule["@context"] == nil {
				t.Errorf("id or @context lost: %s", r.Body)
			}
			if created == "" {
				created, _ = rule["createdAt"].(string)
			}
			if rule["createdAt"] != created || rule["modifiedAt"].(string) < created {
				t.Errorf("createdAt %v (first %s), modifiedAt %v", rule["createdAt"], created, rule["modifiedAt"])
			}
			var again map[string]any
			json.Unmarshal(s.Get("/alarms/rules/full-bins", h).Expect(t, http.StatusOK).Body, &again)
			if msg := st.check(again); msg != "" {
				t.Fatalf("GET after %s: %s", st.name, msg)
			}
		})
	}

	s.Delete("/alarms/rules/full-bins", h).Expect(t, http.StatusNoContent)
	problem(t, s.Get("/alarms/rules/full-bins", h), 404, ngsild.ResourceNotFound, "no rule")
	// Other tenants do not see the tenant's rules.
	if b := s.Get("/alarms/rules", nil).Expect(t, http.StatusOK).Body; string(b) != "[]" {
		t.Errorf("default tenant lists %s", b)
	}
}

// TestAlarmRulesBadInput: every bad request is a 4xx ProblemDetails that
// says what is wrong, and nothing is stored.
func TestAlarmRulesBadInput(t *testing.T) {
	s := apitest.Start(t)
	bins(t, s, nil, "a", 2, 0.2)
	bins(t, s, nil, "full", 5, 0.95)
	s.Post("/ngsi-ld/v1/entities", `{"id": "urn:ngsi-ld:Streetlight:1", "type": "Streetlight", "powerState": {"type": "Property", "value": "on"}}`,
		map[string]string{"NGSILD-Tenant": "other"}).Expect(t, http.StatusCreated)
	s.Post("/alarms/rules", fullBins, nil).Expect(t, http.StatusCreated)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + ln.Addr().String() + "/context.jsonld"
	ln.Close()

	rule := func(kind, params string, extra ...string) string {
		b := `{"kind": "` + kind + `", "entities": [{"type": "WasteContainer"}], "attribute": "fillingLevel"`
		if params != "" {
			b += `, "` + kind + `": ` + params
		}
		for _, e := range extra {
			b += ", " + e
		}
		return b + "}"
	}
	th := func(params string, extra ...string) string { return rule("threshold", params, extra...) }
	big := `{"kind": "threshold", "description": "` + strings.Repeat("x", 1<<20) + `"}`
	const rules = "/alarms/rules"
	cases := []struct {
		name, method, path, body, ct string
		header                       map[string]string
		status                       int
		typ                          ngsild.ErrorType
		detail                       string
	}{
		{"missing kind", "POST", rules, `{"entities": [{"type": "WasteContainer"}], "attribute": "fillingLevel"}`, "", nil, 400, ngsild.BadRequestData, "kind is missing"},
		{"unknown kind", "POST", rules, rule("overflow", `{}`), "", nil, 400, ngsild.BadRequestData, `kind "overflow" is not a rule kind`},
		{"kind not a string", "POST", rules, `{"kind": 3, "entities": [{"type": "WasteContainer"}]}`, "", nil, 400, ngsild.BadRequestData, "kind must be a string"},
		{"missing parameters", "POST", rules, th(""), "", nil, 400, ngsild.BadRequestData, "threshold is missing"},
		{"parameters of another kind", "POST", rules, th(`{"above": 0.8}`, `"rate": {"above": 1, "per": "PT1H"}`), "", nil, 400, ngsild.BadRequestData, "rate is given but the rule's kind is threshold"},
		{"bad duration", "POST", rules, th(`{"above": 0.8, "for": "ten minutes"}`), "", nil, 400, ngsild.BadRequestData, "ten minutes"},
		{"duration of months", "POST", rules, rule("count", `{"above": 0.8, "moreThan": 3, "within": "P1M"}`), "", nil, 400, ngsild.BadRequestData, "months and years"},
		{"misspelt parameter", "POST", rules, th(`{"abve": 0.8}`), "", nil, 400, ngsild.BadRequestData, "abve is not a parameter"},
		{"misspelt member", "POST", rules, th(`{"above": 0.8}`, `"severty": "high"`), "", nil, 400, ngsild.BadRequestData, "severty is not a member of a rule"},
		{"unknown severity", "POST", rules, th(`{"above": 0.8}`, `"severity": "urgent"`), "", nil, 400, ngsild.BadRequestData, `severity "urgent"`},
		{"unknown placeholder", "POST", rules, th(`{"above": 0.8}`, `"message": {"en": "{bin} is full"}`), "", nil, 400, ngsild.BadRequestData, "{bin} is not a placeholder"},
		{"unknown attribute", "POST", rules, `{"kind": "threshold", "entities": [{"type": "WasteContainer"}], "attribute": "fillLevel", "threshold": {"above": 0.8}}`, "", nil, 400, ngsild.BadRequestData, "no entity of this tenant has it"},
		{"attribute of another tenant", "POST", rules, th(`{"above": 0.8}`), "", map[string]string{"NGSILD-Tenant": "other"}, 400, ngsild.BadRequestData, "no entity of this tenant has it"},
		{"every entity beyond the threshold", "POST", rules, `{"kind": "threshold", "entities": [{"idPattern": "^urn:ngsi-ld:WasteContainer:full-"}], "attribute": "fillingLevel", "threshold": {"above": 0.9}}`, "", nil, 400, ngsild.BadRequestData, "would fire on every entity"},
		{"bad q", "POST", rules, th(`{"above": 0.8}`, `"q": "fillingLevel>>"`), "", nil, 400, ngsild.BadRequestData, "q:"},
		{"bad id", "POST", rules, th(`{"above": 0.8}`, `"id": "a b"`), "", nil, 400, ngsild.BadRequestData, `id "a b"`},
		{"duplicate id", "POST", rules, th(`{"above": 0.8}`, `"id": "full-bins"`), "", nil, 409, ngsild.AlreadyExists, "full-bins"},
		{"wrong content type", "POST", rules, th(`{"above": 0.8}`), "text/plain", nil, 415, ngsild.UnsupportedMediaType, "text/plain"},
		{"merge patch on POST", "POST", rules, th(`{"above": 0.8}`), "application/merge-patch+json", nil, 415, ngsild.UnsupportedMediaType, "merge-patch"},
		{"too large", "POST", rules, big, "", nil, 413, ngsild.PayloadTooLarge, "larger than"},
		{"empty body", "POST", rules, "", "application/json", nil, 400, ngsild.InvalidRequest, "empty"},
		{"malformed JSON", "POST", rules, "{\n  \"kind\": threshold}", "", nil, 400, ngsild.InvalidRequest, "line 2, column"},
		{"truncated JSON", "POST", rules, `{"kind": "threshold"`, "", nil, 400, ngsild.InvalidRequest, "ends in the middle"},
		{"two values", "POST", rules, `{} {}`, "", nil, 400, ngsild.InvalidRequest, "data after its JSON value"},
		{"not an object", "POST", rules, `[{"kind": "threshold"}]`, "", nil, 400, ngsild.BadRequestData, "must be a JSON object, not an array"},
		{"ld+json without @context", "POST", rules, th(`{"above": 0.8}`), "application/ld+json", nil, 400, ngsild.BadRequestData, "@context"},
		{"@context in body and Link", "POST", rules, `{"@context": "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld", "kind": "threshold"}`, "", alertLink, 400, ngsild.BadRequestData, "not both"},
		{"invalid @context", "POST", rules, `{"@context": 42, "kind": "threshold", "entities": [{"type": "WasteContainer"}], "attribute": "fillingLevel", "threshold": {"above": 0.8}}`, "", nil, 400, ngsild.BadRequestData, "@context"},
		{"unreachable @context", "POST", rules, th(`{"above": 0.8}`, `"@context": "`+closedURL+`"`), "", nil, 503, ngsild.LdContextNotAvailable, closedURL},
		{"malformed Link", "POST", rules, th(`{"above": 0.8}`), "", map[string]string{"Link": "context.jsonld"}, 400, ngsild.BadRequestData, "malformed Link header"},
		{"invalid tenant", "GET", rules, "", "", map[string]string{"NGSILD-Tenant": "no/such tenant"}, 400, ngsild.BadRequestData, "invalid tenant"},
		{"unknown rule", "GET", rules + "/nope", "", "", nil, 404, ngsild.ResourceNotFound, `no rule "nope"`},
		{"replace unknown rule", "PUT", rules + "/nope", th(`{"above": 0.8}`), "", nil, 404, ngsild.ResourceNotFound, "nope"},
		{"patch unknown rule", "PATCH", rules + "/nope", `{"paused": true}`, "", nil, 404, ngsild.ResourceNotFound, "nope"},
		{"delete unknown rule", "DELETE", rules + "/nope", "", "", nil, 404, ngsild.ResourceNotFound, "nope"},
		{"rule of another tenant", "GET", rules + "/full-bins", "", "", map[string]string{"NGSILD-Tenant": "other"}, 404, ngsild.ResourceNotFound, "full-bins"},
		{"replace with another id", "PUT", rules + "/full-bins", th(`{"above": 0.8}`, `"id": "other"`), "", nil, 400, ngsild.BadRequestData, "is not the rule's"},
		{"replace with a bad rule", "PUT", rules + "/full-bins", th(`{"above": 0.8, "clearBelow": 0.9}`), "", nil, 400, ngsild.BadRequestData, "clearBelow 0.9 is above the threshold"},
		{"patch the id", "PATCH", rules + "/full-bins", `{"id": "other"}`, "", nil, 400, ngsild.BadRequestData, "cannot change"},
		{"patch the kind only", "PATCH", rules + "/full-bins", `{"kind": "rate"}`, "", nil, 400, ngsild.BadRequestData, "threshold is given but the rule's kind is rate"},
		{"patch a misspelt parameter", "PATCH", rules + "/full-bins", `{"threshold": {"abov": 1}}`, "", nil, 400, ngsild.BadRequestData, "abov is not a parameter"},
		{"patch paused not a boolean", "PATCH", rules + "/full-bins", `{"paused": "yes"}`, "", nil, 400, ngsild.BadRequestData, "paused must be true or false"},
		{"patch wrong content type", "PATCH", rules + "/full-bins", `{"paused": true}`, "text/json", nil, 415, ngsild.UnsupportedMediaType, ""},
		{"back-test an unknown rule", "POST", rules + "/nope/backtest", "", "", nil, 404, ngsild.ResourceNotFound, "nope"},
		{"back-test a bad from", "POST", rules + "/full-bins/backtest?from=yesterday", "", "", nil, 400, ngsild.BadRequestData, `from "yesterday" is not an RFC 3339 time`},
		{"back-test a bad to", "POST", rules + "/full-bins/backtest?to=2025-13-01T00:00:00Z", "", "", nil, 400, ngsild.BadRequestData, "to"},
		{"back-test from after to", "POST", rules + "/full-bins/backtest?from=2025-03-02T00:00:00Z&to=2025-03-01T00:00:00Z", "", "", nil, 400, ngsild.BadRequestData, "is not before"},
		{"back-test from equal to", "POST", rules + "/full-bins/backtest?from=2025-03-01T00:00:00Z&to=2025-03-01T00:00:00Z", "", "", nil, 400, ngsild.BadRequestData, "is not before"},
		{"back-test over two years", "POST", rules + "/full-bins/backtest?from=2022-01-01T00:00:00Z&to=2025-01-01T00:00:00Z", "", "", nil, 400, ngsild.BadRequestData, "longer than 2 years"},
		{"back-test a bad rule", "POST", "/alarms/backtest", th(`{"below": "low"}`), "", nil, 400, ngsild.BadRequestData, "below must be a number"},
		{"back-test without a body", "POST", "/alarms/backtest", "", "", nil, 415, ngsild.UnsupportedMediaType, ""},
	}
	before := string(s.Get(rules, nil).Expect(t, http.StatusOK).Body)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var body any
			if tc.body != "" {
				body = tc.body
			}
			r := s.Do(apitest.Req{Method: tc.method, Path: tc.path, Body: body, ContentType: tc.ct, Header: tc.header})
			problem(t, r, tc.status, tc.typ, tc.detail)
		})
	}
	if after := string(s.Get(rules, nil).Expect(t, http.StatusOK).Body); after != before {
		t.Errorf("bad requests changed the rules:\n%s\nbefore:\n%s", after, before)
	}
	// An unknown tenant has no rules.
	if b := s.Get(rules, map[string]string{"NGSILD-Tenant": "nobody"}).Expect(t, http.StatusOK).Body; string(b) != "[]" {
		t.Errorf("unknown tenant lists %s", b)
	}
}

// TestAlarmAlerts opens an alert through a rule and acts on it.
func TestAlarmAlerts(t *testing.T) {
	s := apitest.Start(t)
	s, id := firingAlert(t, s, nil)
	path := "/alarms/alerts/" + id

	// An operator acts with her own key: the alert records her, whatever
	// the body says.
	ctx := context.Background()
	if _, err := s.App.Auth.CreateUser(ctx, "an.peeters", "", []auth.Grant{{Role: auth.RoleOperator}}); err != nil {
		t.Fatal(err)
	}
	anKey, _, err := s.App.Auth.CreateKey(ctx, "an.peeters", "phone", []auth.Grant{{Role: auth.RoleOperator}}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	r := s.Do(apitest.Req{Method: "POST", Path: path + "/acknowledge", Body: `{"comment": "crew on its way"}`, Key: anKey}).Expect(t, http.StatusOK)
	if l := r.Header.Get("Link"); !strings.Contains(l, jsonld.SDMContextURL("Alert")) {
		t.Errorf("Link %q", l)
	}
	apitest.Golden(t, "alert_acknowledge", normalizeAlert(r.Body))

	r = s.Do(apitest.Req{Method: "POST", Path: path + "/assign", Body: `{"by": "an.peeters", "to": "crew-7"}`, Key: anKey}).Expect(t, http.StatusOK)
	var a map[string]any
	json.Unmarshal(r.Body, &a)
	if as, _ := a["assignedTo"].(map[string]any); as["value"] != "crew-7" || as["actor"].(map[string]any)["value"] != "an.peeters" {
		t.Errorf("assignedTo: %v", a["assignedTo"])
	}
	if st, _ := a["alertStatus"].(map[string]any); st["value"] != "acknowledged" {
		t.Errorf("assigning changed the status: %v", a["alertStatus"])
	}

	bad := []struct {
		name, action, body string
		status             int
		typ                ngsild.ErrorType
		detail             string
	}{
		{"by not a string", "acknowledge", `{"by": 7}`, 400, ngsild.BadRequestData, "by must be a string, not a number"},
		{"misspelt member", "assign", `{"by": "an", "too": "crew-1"}`, 400, ngsild.BadRequestData, "too: an action's body"},
		{"assign without to", "assign", `{"by": "an"}`, 400, ngsild.BadRequestData, "to is missing"},
		{"to with acknowledge", "acknowledge", `{"by": "an", "to": "crew-1"}`, 400, ngsild.BadRequestData, "to is for assign"},
		{"resolve without comment", "resolve", `{"by": "an"}`, 400, ngsild.BadRequestData, "comment is missing"},
		{"acknowledged already", "acknowledge", `{"by": "an"}`, 409, ngsild.Conflict, "acknowledged already"},
		{"malformed JSON", "resolve", `{"by": "an",}`, 400, ngsild.InvalidRequest, "not valid JSON"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			problem(t, s.Post(path+"/"+tc.action, tc.body, nil), tc.status, tc.typ, tc.detail)
		})
	}

	r = s.Post(path+"/resolve", `{"by": "crew-7", "comment": "emptied"}`, nil).Expect(t, http.StatusOK)
	json.Unmarshal(r.Body, &a)
	st, _ := a["alertStatus"].(map[string]any)
	// The administrator's key acting for someone else: both are recorded.
	if st["value"] != "resolved" || st["comment"].(map[string]any)["value"] != "emptied" ||
		!strings.HasPrefix(st["actor"].(map[string]any)["value"].(string), "crew-7 (via key ") {
		t.Errorf("alertStatus after resolve: %v", st)
	}
	problem(t, s.Post(path+"/acknowledge", `{"by": "an"}`, nil), 409, ngsild.Conflict, "resolved already")
	problem(t, s.Post(path+"/resolve", `{"by": "an", "comment": "again"}`, nil), 409, ngsild.Conflict, "resolved already")

	// The alert's history keeps who did what.
	var hist map[string]any
	json.Unmarshal(s.Get("/ngsi-ld/v1/temporal/entities/"+id+"?attrs=alertStatus", alertLink).Expect(t, http.StatusOK).Body, &hist)
	if insts, _ := hist["alertStatus"].([]any); len(insts) != 3 {
		t.Errorf("alertStatus history: %v, want open, acknowledged, resolved", hist["alertStatus"])
	}

	others := []struct {
		name, path string
		header     map[string]string
		status     int
		typ        ngsild.ErrorType
		detail     string
	}{
		{"not an alert", "/alarms/alerts/urn:ngsi-ld:WasteContainer:a-1/acknowledge", nil, 400, ngsild.BadRequestData, "is not an alert"},
		{"unknown alert", "/alarms/alerts/urn:ngsi-ld:Alert:nope/acknowledge", nil, 404, ngsild.ResourceNotFound, ""},
		{"not a URI", "/alarms/alerts/nope/acknowledge", nil, 400, ngsild.BadRequestData, "not a URI"},
		{"alert of a tenant that does not exist", path + "/acknowledge", map[string]string{"NGSILD-Tenant": "other"}, 404, ngsild.NonexistentTenant, ""},
		{"invalid tenant", path + "/acknowledge", map[string]string{"NGSILD-Tenant": "a b"}, 400, ngsild.BadRequestData, "invalid tenant"},
	}
	for _, tc := range others {
		t.Run(tc.name, func(t *testing.T) {
			problem(t, s.Post(tc.path, `{"by": "an"}`, tc.header), tc.status, tc.typ, tc.detail)
		})
	}
	problem(t, s.Do(apitest.Req{Method: "POST", Path: path + "/acknowledge", Body: `by=an`, ContentType: "application/x-www-form-urlencoded"}),
		415, ngsild.UnsupportedMediaType, "")
}

// TestAlarmBacktest runs a stored rule and a rule body over the history of
// the day.
func TestAlarmBacktest(t *testing.T) {
	s := apitest.Start(t)
	h := map[string]string{"NGSILD-Tenant": "bt"}
	bins(t, s, h, "a", 2, 0.2)
	fill(t, s, h, "urn:ngsi-ld:WasteContainer:a-1", 0.9)
	fill(t, s, h, "urn:ngsi-ld:WasteContainer:a-1", 0.3)
	s.Post("/alarms/rules", fullBins, h).Expect(t, http.StatusCreated)
	from := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	to := time.Now().Add(time.Minute).UTC().Format(time.RFC3339Nano)

	for _, tc := range []struct {
		name, path, body string
		rule             string
	}{
		{"stored rule", "/alarms/rules/full-bins/backtest?from=" + from + "&to=" + to, "", "full-bins"},
		{"stored rule, default period", "/alarms/rules/full-bins/backtest", "", "full-bins"},
		{"rule body", "/alarms/backtest?from=" + from, strings.Replace(fullBins, `"full-bins"`, `"draft"`, 1), "draft"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body any
			if tc.body != "" {
				body = tc.body
			}
			r := s.Do(apitest.Req{Method: "POST", Path: tc.path, Body: body, Header: h}).Expect(t, http.StatusOK)
			var rep struct {
				Rule     string
				From, To time.Time
				Entities int
				Readings int
				Firings  []struct {
					Entity          string
					Opened, Cleared time.Time
					Value           float64
				}
			}
			if err := json.Unmarshal(r.Body, &rep); err != nil {
				t.Fatal(err)
			}
			if rep.Rule != tc.rule || rep.Entities != 2 || rep.Readings < 4 || !rep.From.Before(rep.To) {
				t.Errorf("report: %s", r.Body)
			}
			if len(rep.Firings) != 1 || rep.Firings[0].Entity != "urn:ngsi-ld:WasteContainer:a-1" || rep.Firings[0].Value != 0.9 ||
				rep.Firings[0].Cleared.IsZero() {
				t.Errorf("firings: %s", r.Body)
			}
		})
	}
	// A back-test writes nothing: the draft is not stored, no alert opened.
	problem(t, s.Get("/alarms/rules/draft", h), 404, ngsild.ResourceNotFound, "draft")
	if b := s.Get("/ngsi-ld/v1/entities?type=Alert", mergeHeaders(h, alertLink)).Expect(t, http.StatusOK).Body; string(b) != "[]" {
		t.Errorf("alerts after back-tests: %s", b)
	}
}

func mergeHeaders(hs ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, h := range hs {
		for k, v := range h {
			out[k] = v
		}
	}
	return out
}

// TestAlarmRuleMessage: a rule may give its alerts' message.
func TestAlarmRuleMessage(t *testing.T) {
	s := apitest.Start(t)
	bins(t, s, nil, "a", 2, 0.2)
	s.Post("/alarms/rules", strings.Replace(fullBins, `"threshold": {`, `"message": {"en": "{name} is {value} full", "fr": "{name} est plein à {value}"}, "threshold": {`, 1), nil).
		Expect(t, http.StatusCreated)
}

// TestAlarmNewRuleEvaluatedWithoutRestart: a rule created on a running
// server fires without a restart.
func TestAlarmNewRuleEvaluatedWithoutRestart(t *testing.T) {
	s := apitest.Start(t)
	bins(t, s, nil, "a", 2, 0.2)
	s.Post("/alarms/rules", fullBins, nil).Expect(t, http.StatusCreated)
	fill(t, s, nil, "urn:ngsi-ld:WasteContainer:a-1", 0.9)
	waitAlert(t, s, nil, "open")
}

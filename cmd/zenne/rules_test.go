package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/apitest"
	"github.com/zenne-city/zenne/internal/jsonld"
)

// TestRulesAndAlertsCommands drives `zenne rules` and `zenne alerts`
// against a real server: a rule from a file, the list, show, pause and
// resume, a back-test, an alert acknowledged, assigned and resolved, and
// errors that say what to do next.
func TestRulesAndAlertsCommands(t *testing.T) {
	s := apitest.Start(t)
	h := map[string]string{"NGSILD-Tenant": "cli"}
	for _, id := range []string{"b1", "b2"} {
		s.Post("/ngsi-ld/v1/entities", `{"id": "urn:ngsi-ld:WasteContainer:`+id+`", "type": "WasteContainer",
			"fillingLevel": {"type": "Property", "value": 0.2}}`, h).Expect(t, http.StatusCreated)
	}
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	rule := write("rule.json", `{"id": "full", "kind": "threshold", "severity": "high", "entities": [{"type": "WasteContainer"}],
		"attribute": "fillingLevel", "threshold": {"above": 0.8}}`)
	replacement := write("replacement.json", `{"kind": "threshold", "severity": "high", "entities": [{"type": "WasteContainer"}],
		"attribute": "fillingLevel", "threshold": {"above": 0.8, "clearBelow": 0.5}}`)
	misspelt := write("misspelt.json", `{"id": "bad", "kind": "threshold", "entities": [{"type": "WasteContainer"}],
		"attribute": "fillingLevel", "threshold": {"abvoe": 0.8}}`)
	notJSON := write("rule.txt", `kind: threshold`)

	run := func(group string, args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := run(append([]string{group, "--api", s.URL, "--tenant", "cli", "--key", s.AdminKey}, args...), &out, &errOut)
		return out.String() + errOut.String(), err
	}
	type step struct {
		group string
		args  []string
		want  string // in the output, or in the error when fails (spacing aside)
		fails bool
	}
	steps := func(t *testing.T, list []step) {
		t.Helper()
		for _, c := range list {
			out, err := run(c.group, c.args...)
			got := out
			if err != nil {
				got += err.Error()
			}
			if testing.Verbose() {
				t.Logf("zenne %s %s\n%s", c.group, strings.Join(c.args, " "), got)
			}
			if (err != nil) != c.fails || !strings.Contains(words(got), words(c.want)) {
				t.Fatalf("zenne %s %s: err %v\n%s\nwant %q (fails: %v)", c.group, strings.Join(c.args, " "), err, out, c.want, c.fails)
			}
		}
	}
	steps(t, []step{
		{"rules", []string{"list"}, "no rules", false},
		{"rules", []string{"add", rule}, "rule full added", false},
		{"rules", []string{"list"}, "full threshold fillingLevel high running", false},
		{"rules", []string{"show", "full"}, `"kind": "threshold"`, false},
		{"rules", []string{"pause", "full"}, "rule full paused", false},
		{"rules", []string{"list"}, "paused", false},
		{"rules", []string{"resume", "full"}, "rule full resumed", false},
		{"rules", []string{"replace", "full", replacement}, "rule full replaced", false},
		{"rules", []string{"show", "full"}, `"clearBelow": 0.5`, false},
		{"rules", []string{"backtest", "full", "--from", time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)}, "rule full from", false},
		{"rules", []string{"backtest", "full", "--from", "2020-01-01", "--to", "2025-01-01"}, "two years apart", true},
		{"rules", []string{"backtest", "full", "--from", "last week"}, "--from \"last week\"", true},
		{"rules", []string{"add", rule}, "replace it with 'zenne rules replace", true},
		{"rules", []string{"add", misspelt}, "abvoe is not a parameter", true},
		{"rules", []string{"add", notJSON}, "expected a rule", true},
		{"rules", []string{"add"}, "give the JSON file", true},
		{"rules", []string{"show", "nope"}, "see the rules with 'zenne rules list'", true},
		{"rules", []string{"pause", "nope"}, "404 Not Found", true},
		{"rules", []string{"list", "--from", "2025-01-01"}, "does not take --from", true},
		{"rules", []string{"frobnicate"}, "unknown rules command", true},
		{"alerts", []string{"list"}, "no alerts", false},
	})

	s.Patch("/ngsi-ld/v1/entities/urn:ngsi-ld:WasteContainer:b1/attrs", `{"fillingLevel": {"type": "Property", "value": 0.9}}`, h).
		Expect(t, http.StatusNoContent)
	link := map[string]string{"NGSILD-Tenant": "cli", "Link": apitest.LinkHeader(jsonld.SDMContextURL("Alert"))}
	var id string
	for deadline := time.Now().Add(5 * time.Second); id == ""; time.Sleep(50 * time.Millisecond) {
		var alerts []struct{ ID string }
		json.Unmarshal(s.Get("/ngsi-ld/v1/entities?type=Alert&options=keyValues", link).Expect(t, http.StatusOK).Body, &alerts)
		if len(alerts) > 0 {
			id = alerts[0].ID
		} else if time.Now().After(deadline) {
			t.Fatal("no alert within 5 s")
		}
	}
	steps(t, []step{
		{"alerts", []string{"list"}, id + " high active open urn:ngsi-ld:WasteContainer:b1", false},
		{"alerts", []string{"ack", id}, "--by WHO", true},
		{"alerts", []string{"ack", id, "--by", "an", "--comment", "on it"}, "acknowledged by an", false},
		{"alerts", []string{"ack", id, "--by", "an"}, "see where the alert stands", true},
		{"alerts", []string{"assign", id, "--by", "an"}, "--to WHO", true},
		{"alerts", []string{"assign", "--by", "an", id, "--to", "crew-7"}, "assigned to crew-7", false},
		{"alerts", []string{"list", "--open"}, "acknowledged (crew-7)", false},
		{"alerts", []string{"resolve", id, "--by", "crew-7"}, "--comment C", true},
		{"alerts", []string{"resolve", id, "--by", "crew-7", "--comment", "emptied"}, "resolved by crew-7", false},
		{"alerts", []string{"list", "--open"}, "no open alerts", false},
		{"alerts", []string{"list"}, "resolved", false},
		{"alerts", []string{"ack", "urn:ngsi-ld:Alert:nope", "--by", "an"}, "see the alerts with 'zenne alerts list'", true},
		{"alerts", []string{"list", "--by", "an"}, "does not take --by", true},
		{"rules", []string{"delete", "full"}, "rule full deleted", false},
		{"rules", []string{"list"}, "no rules", false},
	})
	if _, err := run("rules", "--api", "http://127.0.0.1:1", "list"); err == nil || !strings.Contains(err.Error(), "--api") {
		t.Errorf("no server: %v, want advice about --api", err)
	}
}

// words collapses runs of spaces, so table columns compare whatever their width.
func words(s string) string { return strings.Join(strings.Fields(s), " ") }

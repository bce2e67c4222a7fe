package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/apitest"
	"github.com/zenne-city/zenne/internal/auth"
)

// TestDevicesCommand drives `zenne devices` against a real server: groups
// and devices from files, the list, one device, its dead letters, delete,
// and an error that says what was wrong.
func TestDevicesCommand(t *testing.T) {
	s := apitest.Start(t)
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	groups := write("groups.json", `{"services": [{"apikey": "cli-k3y", "entity_type": "ParkingSpot",
		"attributes": [{"object_id": "o", "name": "status"}]}]}`)
	devices := write("devices.json", `{"devices": [{"device_id": "spot-1", "apikey": "cli-k3y"}, {"device_id": "spot-2", "apikey": "cli-k3y"}]}`)
	run := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := run(append([]string{"devices", "--api", s.URL, "--key", s.AdminKey}, args...), &out, &errOut)
		return out.String() + errOut.String(), err
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"groups", "add", groups}, "1 services registered"},
		{[]string{"add", devices}, "2 devices registered"},
		{[]string{"list"}, "spot-2"},
		{[]string{"groups"}, `"apikey": "cli-k3y"`},
		{[]string{"show", "spot-1"}, `"device_id": "spot-1"`},
		{[]string{"deadletters", "spot-1"}, `"count": 0`},
		{[]string{"delete", "spot-2"}, "device spot-2 deleted"},
	} {
		out, err := run(c.args...)
		if err != nil || !strings.Contains(out, c.want) {
			t.Fatalf("zenne devices %s: %v\n%s\nwant %q", strings.Join(c.args, " "), err, out, c.want)
		}
	}
	if out, _ := run("list"); strings.Contains(out, "spot-2") {
		t.Errorf("spot-2 still listed after delete:\n%s", out)
	}
	if _, err := run("add", devices); err == nil || !strings.Contains(err.Error(), "registered: delete it first") {
		t.Errorf("adding spot-1 again: %v, want the server's reason", err)
	}
	if _, err := run("--api", "http://127.0.0.1:1", "list"); err == nil || !strings.Contains(err.Error(), "--api") {
		t.Errorf("no server: %v, want advice about --api", err)
	}
}

// TestCLIKeys checks that the CLIs that talk to zenne's API send the key of
// --key or ZENNE_API_KEY, and that a refusal says what to do: give a key
// (401 without one), another key (401 with one the server does not know),
// or the key of a user with the right (403).
func TestCLIKeys(t *testing.T) {
	s := apitest.Start(t)
	ctx := context.Background()
	s.Post("/ngsi-ld/v1/entities", `{"id": "urn:ngsi-ld:WasteContainer:b1", "type": "WasteContainer",
		"fillingLevel": {"type": "Property", "value": 0.2}}`, map[string]string{"NGSILD-Tenant": "cli"}).Expect(t, http.StatusCreated)
	grants := []auth.Grant{{Tenant: "cli", Role: auth.RoleViewer}}
	if _, err := s.App.Auth.CreateUser(ctx, "vera", "", grants); err != nil {
		t.Fatal(err)
	}
	viewer, _, err := s.App.Auth.CreateKey(ctx, "vera", "cli", grants, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rule := filepath.Join(dir, "rule.json")
	if err := os.WriteFile(rule, []byte(`{"id": "full", "kind": "threshold", "entities": [{"type": "WasteContainer"}],
		"attribute": "fillingLevel", "threshold": {"above": 0.8}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	const (
		giveKey    = "the server wants an API key: give --key or set ZENNE_API_KEY"
		otherKey   = "the server refused the API key"
		noRight    = `the API key has no right to do this on tenant "cli"`
		simGiveKey = "register the devices at"
	)
	for _, c := range []struct {
		name string
		env  string // ZENNE_API_KEY
		args []string
		want string // in the output, or in the error when it fails
		fail bool
	}{
		{"devices without a key", "", []string{"devices", "list"}, "401 Unauthorized", true},
		{"devices without a key, advice", "", []string{"devices", "list"}, giveKey, true},
		{"devices with the key of the environment", s.AdminKey, []string{"devices", "list"}, "DEVICE", false},
		{"devices with an unknown key", "", []string{"devices", "--key", auth.NewKeySecret(), "list"}, otherKey, true},
		{"--key beats the environment", auth.NewKeySecret(), []string{"devices", "--key", s.AdminKey, "list"}, "DEVICE", false},
		{"devices with a viewer's key", "", []string{"devices", "--key", viewer, "--tenant", "cli", "list"}, noRight, true},
		{"rules without a key", "", []string{"rules", "--tenant", "cli", "list"}, giveKey, true},
		{"rules list with a viewer's key", "", []string{"rules", "--tenant", "cli", "list", "--key", viewer}, "no rules", false},
		{"rules add with a viewer's key", "", []string{"rules", "--tenant", "cli", "add", rule, "--key", viewer}, noRight, true},
		{"rules add with the admin's key", s.AdminKey, []string{"rules", "--tenant", "cli", "add", rule}, "rule full added", false},
		{"alerts without a key", "", []string{"alerts", "--tenant", "cli", "list"}, giveKey, true},
		{"alerts with a viewer's key", viewer, []string{"alerts", "--tenant", "cli", "list"}, "no alerts", false},
		{"alerts ack with a viewer's key", viewer, []string{"alerts", "--tenant", "cli", "ack", "urn:ngsi-ld:Alert:x", "--by", "vera"}, noRight, true},
		{"simulate without a key", "", []string{"simulate", "--target", s.URL, "--devices", "3", "--rate", "3", "--duration", "300ms"}, simGiveKey, true},
		{"simulate without a key, advice", "", []string{"simulate", "--target", s.URL, "--devices", "3", "--rate", "3", "--duration", "300ms"}, giveKey, true},
		{"simulate with a viewer's key", "", []string{"simulate", "--tenant", "cli", "--key", viewer, "--target", s.URL, "--devices", "3", "--rate", "3", "--duration", "300ms"},
			"lacks the devices right on the tenant", true},
		{"simulate with the admin's key", s.AdminKey, []string{"simulate", "--target", s.URL, "--devices", "3", "--rate", "3", "--duration", "300ms", "--probe"},
			"errors: none", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("ZENNE_API_KEY", c.env)
			args := append([]string{c.args[0], "--api", s.URL}, c.args[1:]...)
			var out, errOut bytes.Buffer
			err := run(args, &out, &errOut)
			got := out.String()
			if err != nil {
				got += err.Error()
			}
			if (err != nil) != c.fail || !strings.Contains(got, c.want) {
				t.Fatalf("zenne %s: err %v\n%s%s\nwant %q (fails: %v)", strings.Join(args, " "), err, out.String(), errOut.String(), c.want, c.fail)
			}
			if strings.Contains(out.String()+errOut.String(), s.AdminKey) {
				t.Errorf("the key is printed:\n%s%s", out.String(), errOut.String())
			}
		})
	}
}

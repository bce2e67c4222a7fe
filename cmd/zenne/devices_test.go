package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zenne-city/zenne/internal/apitest"
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
		err := run(append([]string{"devices", "--api", s.URL}, args...), &out, &errOut)
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

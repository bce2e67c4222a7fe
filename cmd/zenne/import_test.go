package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zenne-city/zenne/internal/app"
	"github.com/zenne-city/zenne/internal/ngsild/temporal"
)

func writeCSV(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "readings.csv")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

const readings = "entityId,attribute,time,value,unit\n" +
	"urn:ngsi-ld:WaterMeter:w1,flow,2025-01-01T00:00:00Z,0,MQH\n" +
	"urn:ngsi-ld:WaterMeter:w1,flow,2025-01-01T00:15:00Z,1.25,MQH\n" +
	"urn:ngsi-ld:WaterMeter:w1,flow,not-a-time,2,MQH\n" +
	"urn:ngsi-ld:WaterMeter:w2,flow,2025-01-01T00:00:00Z,3,MQH\n"

func TestImportHistoryCommand(t *testing.T) {
	file := writeCSV(t, readings)
	data := t.TempDir()
	var out, errOut bytes.Buffer
	if err := run([]string{"import", "history", "--data", data, "--tenant", "water", file}, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	for _, want := range []string{"imported 3 rows", "2 created", "rejected: 1 rows, all listed in " + file + ".rejected", "line 4: time \"not-a-time\""} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	// Again: nothing to do.
	out.Reset()
	if err := run([]string{"import", "history", "--data", data, "--tenant", "water", file}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "imported completely before") {
		t.Errorf("second run said:\n%s", out.String())
	}

	st, err := app.OpenStore(context.Background(), app.Config{DataDir: data}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h, err := st.EntityHistory(context.Background(), "water", "urn:ngsi-ld:WaterMeter:w1", nil, &temporal.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(h.Attrs["https://uri.etsi.org/ngsi-ld/default-context/flow"]); n != 2 {
		t.Fatalf("%d instances of flow, want 2", n)
	}
	if _, err := st.Get(context.Background(), "water", "urn:ngsi-ld:WaterMeter:w2"); err != nil {
		t.Fatalf("the imported entity has no current state: %v", err)
	}
}

func TestImportWhileStoreInUse(t *testing.T) {
	data := t.TempDir()
	st, err := app.OpenStore(context.Background(), app.Config{DataDir: data}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	err = run([]string{"import", "history", "--data", data, writeCSV(t, readings)}, &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil {
		t.Fatal("the import opened a store another zenne holds")
	}
	for _, want := range []string{"in use by another zenne process", "stop it", "POST /ngsi-ld/v1/temporal/entities"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

func TestImportUsage(t *testing.T) {
	file := writeCSV(t, readings)
	cases := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"nothing", []string{"import"}, "import what?"},
		{"unknown", []string{"import", "entities", file}, `unknown import "entities"`},
		{"no file", []string{"import", "history", "--data", t.TempDir()}, "no FILE"},
		{"two files", []string{"import", "history", file, file}, "one FILE at a time"},
		{"missing file", []string{"import", "history", "--data", t.TempDir(), "/nonexistent.csv"}, "no such file"},
		{"bad tenant", []string{"import", "history", "--tenant", "a b", file}, "--tenant"},
		{"bad batch", []string{"import", "history", "--batch", "0", file}, "--batch"},
		{"unknown context", []string{"import", "history", "--data", t.TempDir(), "--context", "http://127.0.0.1:1/nope.jsonld", file}, "--context"},
		{"bad format", []string{"import", "history", "--data", t.TempDir(), "--format", "xml", file}, "unknown format"},
		{"bad store", []string{"import", "history", "--store", "mongodb://x", file}, "unknown scheme"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := run(tc.args, &bytes.Buffer{}, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one saying %q", err, tc.wantErr)
			}
		})
	}
}

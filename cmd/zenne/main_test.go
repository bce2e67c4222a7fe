package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunCommands(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		wantErr string
		wantOut string
	}{
		{"version", []string{"version"}, "", "zenne "},
		{"help", []string{"help"}, "", "zenne demo"},
		{"no command", nil, "no command given", ""},
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`, ""},
		{"bad flag", []string{"serve", "--nope"}, "flag provided but not defined", ""},
		{"bad log level", []string{"serve", "--log-level", "loud"}, "--log-level", ""},
		{"stray argument", []string{"serve", "extra"}, `unexpected argument "extra"`, ""},
		{"demo with store", []string{"demo", "--store", "sqlite:///tmp/x.db"}, "drop --store", ""},
		{"unknown store scheme", []string{"serve", "--listen", "127.0.0.1:0", "--store", "mongodb://x"}, "unknown scheme", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(tc.args, &out, &errOut)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("error %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("error %v, want one saying %q", err, tc.wantErr)
			}
			if !strings.Contains(out.String(), tc.wantOut) {
				t.Fatalf("output %q lacks %q", out.String(), tc.wantOut)
			}
		})
	}
}

func TestDemoRefusesUsedDataDir(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "zenne.db"), []byte("x"), 0o644)
	err := run([]string{"demo", "--data", dir, "--listen", "127.0.0.1:0"}, &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "fresh data directory") {
		t.Fatalf("error %v, want a refusal of a used data directory", err)
	}
}

func TestFlagsFromEnvironment(t *testing.T) {
	t.Setenv("ZENNE_LISTEN", "127.0.0.1:9999")
	t.Setenv("ZENNE_DATA", "/srv/zenne")
	t.Setenv("ZENNE_LOG_LEVEL", "debug")
	f, err := parseFlags("serve", nil, &bytes.Buffer{}, false)
	if err != nil {
		t.Fatal(err)
	}
	if f.listen != "127.0.0.1:9999" || f.data != "/srv/zenne" || f.logLevel != "debug" {
		t.Fatalf("flags %+v do not come from the environment", f)
	}
	// A flag beats its environment variable.
	f, _ = parseFlags("serve", []string{"--listen", ":1"}, &bytes.Buffer{}, false)
	if f.listen != ":1" {
		t.Fatalf("--listen %q, want :1", f.listen)
	}
}

package main

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
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

// TestSecurityFlags: the access flags parse, and bad values say what to
// give instead.
func TestSecurityFlags(t *testing.T) {
	t.Setenv("ZENNE_OIDC_CLIENT_SECRET", "s3cret")
	f, err := parseFlags("serve", []string{"--trust-proxy", "10.0.0.0/8, 192.168.1.4,::1", "--rate-limit", "100",
		"--anonymous-rate-limit", "0", "--audit-retain", "8760h", "--oidc-issuer", "https://sso.example/realms/z",
		"--session-idle", "20m"}, &bytes.Buffer{}, false)
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.4/32"), netip.MustParsePrefix("::1/128")}
	if !slices.Equal(f.trustProxies, want) || f.rateLimit != 100 || f.anonRateLimit != 0 || f.auditRetain != 8760*time.Hour ||
		f.oidc.Issuer != "https://sso.example/realms/z" || f.oidc.ClientSecret != "s3cret" || f.sessionIdle != 20*time.Minute || f.sessionMax != 12*time.Hour {
		t.Errorf("flags %+v", f)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--trust-proxy", "10.0.0.0/33"}, "--trust-proxy"},
		{[]string{"--trust-proxy", "proxy.internal"}, "neither an address nor a network"},
		{[]string{"--rate-limit", "-1"}, "--rate-limit"},
		{[]string{"--anonymous-rate-limit", "fast"}, "--anonymous-rate-limit"},
		{[]string{"--audit-retain", "1y"}, "--audit-retain"},
		{[]string{"--tls-cert", "cert.pem"}, "go together"},
		{[]string{"--session-max", "10m"}, "no shorter than --session-idle"},
	} {
		if _, err := parseFlags("serve", c.args, &bytes.Buffer{}, false); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.args, err, c.want)
		}
	}
}

func FuzzParsePrefixes(f *testing.F) {
	f.Add("10.0.0.0/8, 192.168.1.4,::1")
	f.Add(",,")
	f.Fuzz(func(t *testing.T, s string) {
		ps, err := parsePrefixes(s)
		if err != nil {
			return
		}
		for _, p := range ps {
			if !p.IsValid() || p != p.Masked() {
				t.Fatalf("%q gave %v", s, p)
			}
		}
	})
}

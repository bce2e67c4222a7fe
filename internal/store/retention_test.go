package store

import (
	"strings"
	"testing"
	"time"
)

func TestParseRetention(t *testing.T) {
	expand := func(s string) string { return "https://example.org/" + s }
	day := 24 * time.Hour
	r, err := ParseRetention("*=raw:90d,hourly:2y,daily:forever; energy=raw:400d; default/flow=raw:12w", expand)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		tenant, attr string
		want         RetentionRule
	}{
		{"", "https://example.org/flow", RetentionRule{Tenant: "", Attr: "https://example.org/flow", Raw: 84 * day}},
		{"", "https://example.org/kwh", RetentionRule{Tenant: "*", Raw: 90 * day, Hourly: 730 * day, Daily: Forever}},
		{"energy", "https://example.org/flow", RetentionRule{Tenant: "energy", Raw: 400 * day}},
		{"mobility", "https://example.org/flow", RetentionRule{Tenant: "*", Raw: 90 * day, Hourly: 730 * day, Daily: Forever}},
	}
	for _, c := range cases {
		got, ok := r.For(c.tenant, c.attr)
		if !ok || got != c.want {
			t.Errorf("For(%q, %q) = %+v, %v; want %+v", c.tenant, c.attr, got, ok, c.want)
		}
	}
	if _, ok := (Retention{}).For("", "x"); ok {
		t.Error("no rules: a rule applied")
	}
	bad := []struct{ in, says string }{
		{"*", "write <tenant>"},
		{"=raw:1d", "name a tenant"},
		{"*/=raw:1d", "attribute after / is empty"},
		{"*=hourly:1y", "give raw"},
		{"*=raw:1d,raw:2d", "each once"},
		{"*=raw:10d,hourly:5d", "at least as long"},
		{"*=raw:1x", "unit is d"},
		{"*=raw:-1d", "positive"},
		{"*=raw:1d,weekly:1y", "unknown level"},
	}
	for _, b := range bad {
		if _, err := ParseRetention(b.in, expand); err == nil || !strings.Contains(err.Error(), b.says) {
			t.Errorf("ParseRetention(%q) = %v, want an error saying %q", b.in, err, b.says)
		}
	}
}

func FuzzParseRetention(f *testing.F) {
	f.Add("*=raw:90d,hourly:2y,daily:forever; energy/flow=raw:400d")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRetention(s, func(s string) string { return s })
		if err != nil {
			return
		}
		for _, x := range r.Rules {
			if x.Raw <= 0 || (x.Hourly != 0 && x.Hourly < x.Raw) {
				t.Fatalf("accepted an inconsistent rule %+v from %q", x, s)
			}
		}
	})
}

package mqtt

import (
	"slices"
	"strings"
	"testing"
)

func TestParseTopic(t *testing.T) {
	ts, err := newTopics("city/{apikey}/{device}/up")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, topic    string
		apikey, device string // "" when the topic names no device
	}{
		{"attrs", "/bins-k3y/bin-0001/attrs", "bins-k3y", "bin-0001"},
		{"json attrs", "/json/bins-k3y/bin-0001/attrs", "bins-k3y", "bin-0001"},
		{"pattern", "city/bins-k3y/bin-0001/up", "bins-k3y", "bin-0001"},
		{"json as an API key", "/json/bin-0001/attrs", "json", "bin-0001"},
		{"dots and unicode", "/k.1/capteur-é/attrs", "k.1", "capteur-é"},
		{"no leading slash", "bins-k3y/bin-0001/attrs", "", ""},
		{"other last level", "/bins-k3y/bin-0001/cmd", "", ""},
		{"level too many", "/bins-k3y/bin-0001/attrs/x", "", ""},
		{"trailing slash", "/bins-k3y/bin-0001/attrs/", "", ""},
		{"level too few", "/bin-0001/attrs", "", ""},
		{"empty API key", "//bin-0001/attrs", "", ""},
		{"empty device", "/bins-k3y//attrs", "", ""},
		{"json empty device", "/json/bins-k3y//attrs", "", ""},
		{"pattern other prefix", "town/bins-k3y/bin-0001/up", "", ""},
		{"pattern empty device", "city/bins-k3y//up", "", ""},
		{"wildcard", "/bins-k3y/+/attrs", "", ""},
		{"multi-level wildcard", "/#/bin-0001/attrs", "", ""},
		{"empty", "", "", ""},
		{"slash", "/", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			apikey, device, ok := ts.parse(tc.topic)
			if ok != (tc.device != "") || apikey != tc.apikey || device != tc.device {
				t.Errorf("parse(%q) = %q, %q, %v; want %q, %q", tc.topic, apikey, device, ok, tc.apikey, tc.device)
			}
		})
	}
}

func TestPatternComesFirst(t *testing.T) {
	ts, err := newTopics("/{device}/{apikey}/attrs") // swaps the default's levels
	if err != nil {
		t.Fatal(err)
	}
	apikey, device, ok := ts.parse("/a/b/attrs")
	if !ok || apikey != "b" || device != "a" {
		t.Errorf("parse = %q, %q, %v; want the pattern's reading b, a", apikey, device, ok)
	}
	if got, want := ts.filters(), []string{"/+/+/attrs", "/json/+/+/attrs"}; !slices.Equal(got, want) {
		t.Errorf("filters = %q, want %q (no duplicate)", got, want)
	}
}

func TestParsePattern(t *testing.T) {
	for _, tc := range []struct {
		pattern, filter, err string
	}{
		{"city/{apikey}/{device}/up", "city/+/+/up", ""},
		{"{device}/{apikey}", "+/+", ""},
		{"/x/{apikey}/y/{device}", "/x/+/y/+", ""},
		{"city/{apikey}/up", "", "needs both"},
		{"city/{device}", "", "needs both"},
		{"", "", "needs both"},
		{"city/{apikey}/{apikey}/{device}", "", "twice"},
		{"city/{apikey}/dev-{device}", "", "whole topic level"},
		{"city/{apikey}/{devices}", "", "whole topic level"},
		{"city/+/{apikey}/{device}", "", "wildcards"},
		{"#/{apikey}/{device}", "", "wildcards"},
	} {
		t.Run(tc.pattern, func(t *testing.T) {
			p, err := parsePattern(tc.pattern)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f := p.filter(); f != tc.filter {
				t.Errorf("filter = %q, want %q", f, tc.filter)
			}
		})
	}
}

// FuzzParseTopic checks that a topic parses only into non-empty single
// levels, and that putting them back into the pattern that matched gives
// the topic again.
func FuzzParseTopic(f *testing.F) {
	for _, s := range [][2]string{
		{"city/{apikey}/{device}/up", "city/k/d/up"},
		{"", "/bins-k3y/bin-0001/attrs"},
		{"", "/json/bins-k3y/bin-0001/attrs"},
		{"{device}/{apikey}", "a/b"},
		{"/{apikey}/x/{device}", "/k/x/"},
		{"", "//attrs"},
		{"", "/+/#/attrs"},
		{"{apikey}/{device}/", "k/d/"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, topic string) {
		ts, err := newTopics(pattern)
		if err != nil {
			return
		}
		apikey, device, ok := ts.parse(topic)
		if !ok {
			if apikey != "" || device != "" {
				t.Fatalf("parse(%q) failed but returned %q, %q", topic, apikey, device)
			}
			return
		}
		for _, v := range []string{apikey, device} {
			if v == "" || strings.ContainsAny(v, "/+#") {
				t.Fatalf("parse(%q) = %q, %q: not one non-empty level", topic, apikey, device)
			}
		}
		for i := range ts {
			k, d, ok := ts[i].match(topic)
			if !ok {
				continue
			}
			if k != apikey || d != device {
				t.Fatalf("parse(%q) = %q, %q, but the first pattern that matches reads %q, %q", topic, apikey, device, k, d)
			}
			lv := slices.Clone(ts[i].levels)
			lv[ts[i].apikey], lv[ts[i].device] = k, d
			if back := strings.Join(lv, "/"); back != topic {
				t.Fatalf("parse(%q) = %q, %q; rebuilt: %q", topic, k, d, back)
			}
			return
		}
		t.Fatalf("parse(%q) succeeded but no pattern matches", topic)
	})
}

func BenchmarkParseTopic(b *testing.B) {
	ts, err := newTopics("city/{apikey}/{device}/up")
	if err != nil {
		b.Fatal(err)
	}
	for _, topic := range []string{"/bins-k3y/bin-0001/attrs", "/json/bins-k3y/bin-0001/attrs", "/bins-k3y/bin-0001/cmd"} {
		b.Run(topic, func(b *testing.B) {
			for b.Loop() {
				ts.parse(topic)
			}
		})
	}
}

package session

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

var nextSeeds = []string{
	"/", "/console/", "/ngsi-ld/v1/entities?type=Thing&limit=10", "/console/#/map", "/a/../b",
	"//evil.example", "///evil.example", `/\evil.example`, `\/evil.example`, "/\t/evil.example", "/\r\n/evil.example",
	"https://evil.example", "HTTPS://evil.example", "javascript:alert(1)", "data:text/html,x", "evil.example/x",
	" /x", "/x y", "/%2F%2Fevil.example", "/%5Cevil.example", "/\x00", "/\u00e9t\u00e9", "/\xff", "/login", "/LOGIN?x",
	"/login/oidc", "/logout", "/loginx", "/@evil.example", "/:x", "/?next=//evil.example", "",
}

func TestSafeNext(t *testing.T) {
	for _, tc := range []struct {
		in   string
		safe bool
	}{
		{"/", true}, {"/console/", true}, {"/ngsi-ld/v1/entities?type=Thing&limit=10", true}, {"/console/#/map", true},
		{"/%2F%2Fevil.example", true}, {"/@evil.example", true}, {"/loginx", true}, {"/\u00e9t\u00e9", true},
		{"", false}, {"//evil.example", false}, {"///evil.example", false}, {`/\evil.example`, false},
		{`\/evil.example`, false}, {"/\t/evil.example", false}, {"/\r\n/evil.example", false},
		{"https://evil.example", false}, {"javascript:alert(1)", false}, {"evil.example/x", false}, {" /x", false},
		{"/x y", false}, {"/\x00", false}, {"/\xff", false}, {"/login", false}, {"/LOGIN?x", false},
		{"/login/oidc", false}, {"/logout", false}, {"/" + strings.Repeat("a", maxNext), false},
	} {
		if got := SafeNext(tc.in); (got != "") != tc.safe || (got != "" && got != tc.in) {
			t.Errorf("SafeNext(%q) = %q, want safe %v", tc.in, got, tc.safe)
		}
	}
}

// FuzzSafeNext: whatever comes in, what SafeNext lets through is the
// input itself and leads a browser to a page of the same site.
func FuzzSafeNext(f *testing.F) {
	for _, s := range nextSeeds {
		f.Add(s)
	}
	base, _ := url.Parse("https://zenne.example/login?next=x")
	f.Fuzz(func(t *testing.T, next string) {
		got := SafeNext(next)
		if got == "" {
			return
		}
		if got != next {
			t.Fatalf("SafeNext(%q) = %q: changed", next, got)
		}
		if got[0] != '/' || strings.HasPrefix(got, "//") || strings.ContainsAny(got, "\\\t\r\n ") {
			t.Fatalf("SafeNext(%q) let it through", next)
		}
		u, err := url.Parse(got)
		if err != nil {
			t.Fatalf("SafeNext(%q) let through what does not parse: %v", next, err)
		}
		// As a browser resolves Location against the page's address.
		if to := base.ResolveReference(u); to.Scheme != "https" || to.Host != "zenne.example" || to.User != nil {
			t.Fatalf("SafeNext(%q) leads to %s", next, to)
		}
		// Browsers drop tabs and newlines and read '\' as '/': nothing of
		// the kind may remain to turn the path into another host.
		cleaned := strings.NewReplacer("\t", "", "\n", "", "\r", "", `\`, "/").Replace(got)
		if strings.HasPrefix(cleaned, "//") {
			t.Fatalf("SafeNext(%q): a browser reads %q", next, cleaned)
		}
	})
}

func TestAcceptLanguage(t *testing.T) {
	for _, tc := range []struct{ h, want string }{
		{"", "en"}, {"nl", "nl"}, {"fr-BE", "fr"}, {"de, fr;q=0.5, nl;q=0.6", "nl"}, {"nl;q=0, fr", "fr"},
		{"NL-be", "nl"}, {"*", "en"}, {"en;q=0.1, fr;q=bad", "en"}, {"fr;q=2, nl;q=0.9", "nl"},
	} {
		if got := acceptLanguage(tc.h); got != tc.want {
			t.Errorf("acceptLanguage(%q) = %q, want %q", tc.h, got, tc.want)
		}
	}
}

func TestUsername(t *testing.T) {
	for _, tc := range []struct {
		name   string
		claims map[string]any
		claim  string
		want   string
	}{
		{"preferred", map[string]any{"preferred_username": "Jan", "email": "x@y.z"}, "preferred_username", "jan"},
		{"email fallback", map[string]any{"email": "An@Brussels.example"}, "preferred_username", "an@brussels.example"},
		{"email verified", map[string]any{"email": "a@b.c", "email_verified": true}, "preferred_username", "a@b.c"},
		{"email verified as text", map[string]any{"email": "a@b.c", "email_verified": "true"}, "preferred_username", "a@b.c"},
		{"email unverified", map[string]any{"email": "a@b.c", "email_verified": false}, "preferred_username", ""},
		{"email unverified as text", map[string]any{"email": "a@b.c", "email_verified": "false"}, "preferred_username", ""},
		{"claim not a string", map[string]any{"preferred_username": 42}, "preferred_username", ""},
		{"other claim", map[string]any{"upn": "X@Y", "preferred_username": "z"}, "upn", "x@y"},
		{"nothing", map[string]any{"sub": "1"}, "preferred_username", ""},
	} {
		if got := username(tc.claims, tc.claim); got != tc.want {
			t.Errorf("%s: username = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestStateCookie(t *testing.T) {
	now := int64(1000)
	o := &oidcLogin{key: []byte("0123456789abcdef0123456789abcdef")}
	o.now = func() time.Time { return time.Unix(now, 0) }
	st := oidcState{State: "s", Nonce: "n", Verifier: "v", Next: "/x", Expires: 1600}
	v := o.seal(st)
	if got, ok := o.open(v); !ok || got != st {
		t.Fatalf("open(seal) = %+v, %v", got, ok)
	}
	for _, bad := range []string{"", "x", v + "x", "A" + v, strings.Replace(v, ".", "", 1), v[:len(v)-2]} {
		if _, ok := o.open(bad); ok {
			t.Errorf("open(%q) accepted", bad)
		}
	}
	other := &oidcLogin{key: []byte("another key of thirty-two bytes!"), now: o.now}
	if _, ok := other.open(v); ok {
		t.Error("a cookie signed with another key accepted")
	}
	now = 1600
	if _, ok := o.open(v); ok {
		t.Error("an expired state accepted")
	}
}

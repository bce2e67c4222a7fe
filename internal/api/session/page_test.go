package session_test

import (
	"net/http"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// TestLoginPageLanguages: the page speaks the language asked for (?lang=,
// then Accept-Language, then English), says so in its lang attribute, and
// is accessible: every field has its label, ids are unique, every
// aria-describedby names an element of the page, and there is no inline
// script or style (the Content-Security-Policy forbids them).
func TestLoginPageLanguages(t *testing.T) {
	s := start(t, nil)
	for _, tc := range []struct {
		name, query, accept, lang, user, password, submit string
	}{
		{"default", "", "", "en", "User name", "Password", "Log in"},
		{"query nl", "?lang=nl", "fr", "nl", "Gebruikersnaam", "Wachtwoord", "Aanmelden"},
		{"query fr", "?lang=FR", "", "fr", "Nom d&#39;utilisateur", "Mot de passe", "Se connecter"},
		{"accept fr-BE", "", "fr-BE,fr;q=0.9,en;q=0.8", "fr", "Nom d&#39;utilisateur", "Mot de passe", "Se connecter"},
		{"accept weighted", "", "de;q=1, en;q=0.3, nl-BE;q=0.7", "nl", "Gebruikersnaam", "Wachtwoord", "Aanmelden"},
		{"accept unknown", "", "de-DE, it", "en", "User name", "Password", "Log in"},
		{"query unknown", "?lang=xx", "nl", "nl", "Gebruikersnaam", "Wachtwoord", "Aanmelden"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBrowser(t, s.URL)
			h := map[string]string{}
			if tc.accept != "" {
				h["Accept-Language"] = tc.accept
			}
			p := b.do("GET", "/login"+tc.query, nil, h).expect(t, http.StatusOK)
			p.contains(t, `<html lang="`+tc.lang+`">`, `<label for="user">`+tc.user+`</label>`,
				`<label for="password">`+tc.password+`</label>`, `>`+tc.submit+`</button>`,
				`autocomplete="username"`, `autocomplete="current-password"`, `href="/static/session/login.css"`)
			if ct := p.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
			if cl := p.Header.Get("Content-Language"); cl != tc.lang {
				t.Errorf("Content-Language %q", cl)
			}
			if csp := p.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
				t.Errorf("CSP %q", csp)
			}
			checkHTML(t, p.Body)
		})
	}
	// A page with errors is checked the same way.
	b := newBrowser(t, s.URL)
	tok := b.formToken()
	p := b.post("/login?lang=nl", map[string][]string{"csrf_token": {tok}})
	p.expect(t, http.StatusBadRequest).contains(t, "Vul uw gebruikersnaam in.", `<html lang="nl">`)
	checkHTML(t, p.Body)
	p = b.post("/login", map[string][]string{"csrf_token": {tok}, "user": {"nobody"}, "password": {"whatever it is"}, "lang": {"fr"}})
	p.expect(t, http.StatusUnauthorized).contains(t, "Le nom d&#39;utilisateur ou le mot de passe est incorrect")
	checkHTML(t, p.Body)
}

// checkHTML parses a page and checks what a browser and a screen reader
// need.
func checkHTML(t *testing.T, body string) {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatalf("the page does not parse: %v", err)
	}
	if !strings.HasPrefix(body, "<!DOCTYPE html>") {
		t.Error("no doctype")
	}
	ids := map[string]int{}
	labels := map[string]bool{}
	var described []string
	var inputs []*html.Node
	var title string
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "script", "style":
				t.Errorf("a <%s> element in the page", n.Data)
			case "label":
				labels[attr(n, "for")] = true
			case "input":
				inputs = append(inputs, n)
			case "title":
				if n.FirstChild != nil {
					title = n.FirstChild.Data
				}
			}
			for _, a := range n.Attr {
				switch {
				case a.Key == "id":
					ids[a.Val]++
				case a.Key == "style" || strings.HasPrefix(a.Key, "on"):
					t.Errorf("inline %s=%q on <%s>", a.Key, a.Val, n.Data)
				case a.Key == "aria-describedby":
					described = append(described, strings.Fields(a.Val)...)
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	if title == "" {
		t.Error("no title")
	}
	for id, n := range ids {
		if n > 1 {
			t.Errorf("id %q used %d times", id, n)
		}
	}
	for _, in := range inputs {
		if attr(in, "type") == "hidden" {
			continue
		}
		if id := attr(in, "id"); id == "" || !labels[id] {
			t.Errorf("input %q has no label", attr(in, "name"))
		}
	}
	for _, id := range described {
		if ids[id] == 0 {
			t.Errorf("aria-describedby names %q, which is not in the page", id)
		}
	}
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

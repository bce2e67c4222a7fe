package session_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/zenne-city/zenne/internal/api/session"
	"github.com/zenne-city/zenne/internal/browsertest"
)

// TestBrowserLogin checks the login page in headless Chromium, in Dutch,
// French and English, as a person uses it: the page is in the language
// asked for, passes axe-core's WCAG 2.1 A and AA rules (light and dark
// colour schemes, the error state and the logged-in state too), reflows at
// 320 CSS pixels, reports no console error and no Content-Security-Policy
// violation; the keyboard goes user → password → button; a wrong password
// shows the message tied to both fields; a real login, typed and
// submitted, leads to the next page with an HttpOnly, SameSite=Lax session
// cookie; the page's logout button ends the session and comes back to the
// login page. Without Chromium it skips (fails with CI_REQUIRE_BROWSER=1).
func TestBrowserLogin(t *testing.T) {
	b := browsertest.Start(t)
	s := start(t, nil)
	for _, tc := range []struct {
		lang, heading, user, password, submit, badCredentials, loggedIn, logout string
	}{
		{"nl", "Aanmelden bij zenne", "Gebruikersnaam", "Wachtwoord", "Aanmelden",
			"De gebruikersnaam of het wachtwoord is onjuist.", "U bent aangemeld als %s.", "Afmelden"},
		{"fr", "Connexion à zenne", "Nom d'utilisateur", "Mot de passe", "Se connecter",
			"Le nom d'utilisateur ou le mot de passe est incorrect.", "Session ouverte au nom de %s.", "Se déconnecter"},
		{"en", "Log in to zenne", "User name", "Password", "Log in",
			"The user name or the password is wrong.", "You are logged in as %s.", "Log out"},
	} {
		t.Run(tc.lang, func(t *testing.T) {
			name := "ana." + tc.lang
			user(t, s, name, password)
			p := b.NewPage(t)
			const submit = "form.login button[type=submit]"

			// The page, in its language.
			r := p.Navigate(s.URL + session.LoginPath + "?lang=" + tc.lang + "&next=" + url.QueryEscape(session.InfoPath))
			if r.Status != http.StatusOK {
				t.Fatalf("GET /login: %d", r.Status)
			}
			if l := browsertest.Eval[string](p, "document.documentElement.lang"); l != tc.lang {
				t.Errorf("<html lang=%q>, want %q", l, tc.lang)
			}
			for css, want := range map[string]string{"h1": tc.heading, "label[for=user]": tc.user,
				"label[for=password]": tc.password, submit: tc.submit} {
				if got := p.Text(css); got != want {
					t.Errorf("%s says %q, want %q", css, got, want)
				}
			}
			for _, id := range []string{"user", "password"} {
				if ax := p.Accessible("#" + id); ax.Name != map[string]string{"user": tc.user, "password": tc.password}[id] {
					t.Errorf("#%s is named %q for assistive technology", id, ax.Name)
				}
			}
			checkPage(t, p)
			p.CheckReflow()

			// The keyboard: the name field has the focus, Tab goes on to
			// the password, then to the button.
			for i, want := range []string{"#user", "#password", "button[type=submit]"} {
				if i > 0 {
					p.Tab()
				}
				if got := p.Focused(); got != want {
					t.Errorf("focus on %q after %d Tab, want %q", got, i, want)
				}
			}

			// A wrong password: 401 (which Chromium reports in the
			// console), the message, tied to both fields, and the focus
			// back on the password.
			p.AllowConsole("the server responded with a status of 401")
			p.Type("#user", name)
			p.Type("#password", "not "+password)
			if r := p.ClickAndWait(submit); r.Status != http.StatusUnauthorized {
				t.Fatalf("a wrong password: %d", r.Status)
			}
			if msg := p.Text("#login-error"); !strings.HasPrefix(msg, tc.badCredentials) {
				t.Errorf("the error says %q, want %q...", msg, tc.badCredentials)
			}
			if role, _ := p.Attr("#login-error", "role"); role != "alert" {
				t.Errorf("the error has role %q, want alert", role)
			}
			for _, id := range []string{"#user", "#password"} {
				if v, _ := p.Attr(id, "aria-invalid"); v != "true" {
					t.Errorf("%s: aria-invalid=%q", id, v)
				}
				if v, _ := p.Attr(id, "aria-describedby"); v != "login-error" {
					t.Errorf("%s: aria-describedby=%q", id, v)
				}
				ax := p.Accessible(id)
				if !strings.HasPrefix(ax.Description, tc.badCredentials) || ax.Properties["invalid"] != "true" {
					t.Errorf("%s for assistive technology: description %q, invalid %q", id, ax.Description, ax.Properties["invalid"])
				}
			}
			if got := p.Focused(); got != "#password" {
				t.Errorf("focus on %q after a wrong password, want #password", got)
			}
			if v := browsertest.Run(p, chromedp.Value(chromedp.CSS("#user"))); v != name {
				t.Errorf("the name field holds %q, want %q", v, name)
			}
			checkPage(t, p)

			// The right password, typed and submitted: the next page, with
			// the session cookie.
			p.Type("#password", password)
			r = p.ClickAndWait(submit)
			if r.Status != http.StatusOK || p.Location() != s.URL+session.InfoPath {
				t.Fatalf("after the login: %d at %s, want 200 at %s", r.Status, p.Location(), session.InfoPath)
			}
			// Chromium asks for the icon of the JSON page: zenne has none.
			p.AllowConsole("/favicon.ico")
			var in info
			if body := browsertest.Eval[string](p, "document.body.innerText"); json.Unmarshal([]byte(body), &in) != nil ||
				in.User != name || in.Method != "password" {
				t.Errorf("GET %s: %s", session.InfoPath, body)
			}
			c := p.Cookie(session.CookieName, s.URL+"/")
			if c == nil {
				t.Fatalf("no %s cookie", session.CookieName)
			}
			if !c.HTTPOnly || c.SameSite != network.CookieSameSiteLax || c.Path != "/" || c.Secure || !c.Session {
				t.Errorf("%s: HttpOnly %v, SameSite %q, Path %q, Secure %v, session %v; want HttpOnly, Lax, /, not Secure over HTTP, a session cookie",
					c.Name, c.HTTPOnly, c.SameSite, c.Path, c.Secure, c.Session)
			}
			if jc := browsertest.Eval[string](p, "document.cookie"); strings.Contains(jc, session.CookieName) {
				t.Errorf("scripts can read the session cookie: %q", jc)
			}
			if c := p.Cookie(session.CSRFCookie, s.URL+session.LoginPath); c != nil {
				t.Errorf("the login form's %s cookie outlives the login", c.Name)
			}

			// The login page now says who is logged in, with a logout
			// button that ends the session.
			p.Navigate(s.URL + session.LoginPath + "?lang=" + tc.lang)
			if got, want := p.Text("form.session p"), fmt.Sprintf(tc.loggedIn, name); got != want {
				t.Errorf("the page says %q, want %q", got, want)
			}
			const logout = "form.session button[type=submit]"
			if got := p.Text(logout); got != tc.logout {
				t.Errorf("the logout button says %q, want %q", got, tc.logout)
			}
			checkPage(t, p)
			r = p.ClickAndWait(logout)
			if r.Status != http.StatusOK || !strings.HasPrefix(p.Location(), s.URL+session.LoginPath) {
				t.Fatalf("after the logout: %d at %s, want 200 at %s", r.Status, p.Location(), session.LoginPath)
			}
			if got := browsertest.Eval[string](p, `document.documentElement.lang`); got != tc.lang {
				t.Errorf("the login page after the logout is in %q, want %q", got, tc.lang)
			}
			if c := p.Cookie(session.CookieName, s.URL+"/"); c != nil {
				t.Errorf("the session cookie outlives the logout")
			}
			if browsertest.Eval[bool](p, `document.querySelector("form.session") !== null`) {
				t.Error("the page still shows a session after the logout")
			}
			p.WaitVisible(submit)
			checkPage(t, p)
		})
	}
}

// TestBrowserLoginCSP: the Content-Security-Policy is in force on the
// login page, and the browser check sees its violations (so that its
// silence on the login page means something).
func TestBrowserLoginCSP(t *testing.T) {
	b := browsertest.Start(t)
	s := start(t, nil)
	p := b.NewPage(t)
	p.Navigate(s.URL + session.LoginPath)
	p.Do(chromedp.Evaluate[chromedp.Void](`document.head.insertAdjacentHTML("beforeend", "<style>h1 { color: rgb(255, 0, 0) }</style>")`))
	if c := browsertest.Eval[string](p, `getComputedStyle(document.querySelector("h1")).color`); c == "rgb(255, 0, 0)" {
		t.Error("an inline style applies")
	}
	var refused bool
	for _, m := range p.Problems() {
		refused = refused || m.CSP() && strings.Contains(m.Text, "style-src")
	}
	if !refused {
		t.Error("no Content-Security-Policy violation seen for an inline style")
	}
}

// checkPage runs axe-core on the page in the light and the dark colour
// scheme, and checks the console.
func checkPage(t *testing.T, p *browsertest.Page) {
	t.Helper()
	for _, scheme := range []string{"light", "dark"} {
		p.SetColorScheme(scheme)
		p.CheckAccessibility()
	}
	p.SetColorScheme("")
	p.CheckConsole()
}

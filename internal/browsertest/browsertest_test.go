package browsertest_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/zenne-city/zenne/internal/browsertest"
)

// csp is zenne's policy (internal/server): no inline script or style.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"

const good = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Fine</title><link rel="icon" href="data:,"></head>
<body><main><h1>Fine</h1><form><label for="q">Query</label> <input id="q" name="q"> <button>Search</button></form></main></body></html>`

// pages are what the test server answers, under zenne's CSP.
var pages = map[string]string{
	"/good": good,
	"/csp": `<!DOCTYPE html><html lang="en"><head><title>Inline</title><link rel="icon" href="data:,">
<style>h1 { color: red }</style></head><body><main><h1>Inline</h1><script>document.title = "ran"</script></main></body></html>`,
	"/error": `<!DOCTYPE html><html lang="en"><head><title>Errors</title><link rel="icon" href="data:,">
<script src="/error.js"></script></head><body><main><h1>Errors</h1></main></body></html>`,
	"/error.js": `console.error("something broke"); setTimeout(() => { throw new Error("uncaught") }, 0);`,
	"/bad": `<!DOCTYPE html><html><head><title>Bad</title><link rel="icon" href="data:,"></head>
<body><main><h1>Bad</h1><form><input id="q" name="q"></form></main></body></html>`,
	"/wide": `<!DOCTYPE html><html lang="en"><head><title>Wide</title><link rel="icon" href="data:,">
<link rel="stylesheet" href="/wide.css"></head><body><main><h1>Wide</h1><p id="wide">x</p></main></body></html>`,
	"/wide.css": `#wide { width: 600px }`,
}

func server(t *testing.T) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := pages[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Security-Policy", csp)
		switch {
		case strings.HasSuffix(r.URL.Path, ".js"):
			w.Header().Set("Content-Type", "text/javascript")
		case strings.HasSuffix(r.URL.Path, ".css"):
			w.Header().Set("Content-Type", "text/css")
		default:
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
		}
		fmt.Fprint(w, body)
	}))
	t.Cleanup(s.Close)
	return s
}

// recorder is a test whose errors are recorded instead of failing it, to
// see the checks fail.
type recorder struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

func (r *recorder) all() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.errs, "\n")
}

func TestBrowserChecks(t *testing.T) {
	b := browsertest.Start(t)
	s := server(t)

	t.Run("good page passes", func(t *testing.T) {
		p := b.NewPage(t)
		if r := p.Navigate(s.URL + "/good"); r.Status != http.StatusOK {
			t.Fatalf("status %d", r.Status)
		}
		p.CheckAccessibility()
		p.CheckReflow()
		p.SetColorScheme("dark")
		p.CheckAccessibility()
		p.Do() // nothing
		p.Type("#q", "abc")
		if f := p.Focused(); f != "#q" {
			t.Errorf("focus on %q, want #q", f)
		}
		p.Tab()
		if f := p.Focused(); f != "button" {
			t.Errorf("focus on %q after Tab, want button", f)
		}
		if v, ok := p.Attr("#q", "name"); !ok || v != "q" {
			t.Errorf("name %q %v", v, ok)
		}
		if _, ok := p.Attr("#q", "aria-invalid"); ok {
			t.Error("aria-invalid found")
		}
		if got := p.Text("h1"); got != "Fine" {
			t.Errorf("h1 %q", got)
		}
		p.CheckConsole()
	})

	t.Run("CSP violations are caught", func(t *testing.T) {
		p := b.NewPage(t)
		p.AllowConsole("Content Security Policy") // never applies to CSP violations
		p.AllowConsole("inline")
		p.Navigate(s.URL + "/csp")
		p.CheckAccessibility() // axe-core runs under the page's CSP
		got := p.Problems()
		var style, script bool
		for _, m := range got {
			style = style || m.CSP() && strings.Contains(m.Text, "style-src")
			script = script || m.CSP() && strings.Contains(m.Text, "script-src")
		}
		if !style || !script || len(got) != 2 {
			t.Errorf("want the refused inline style and script (and nothing from axe-core), got %q", got)
		}
		if title := browsertest.Eval[string](p, "document.title"); title != "Inline" {
			t.Errorf("the inline script ran: title %q", title)
		}
	})

	t.Run("console errors are caught", func(t *testing.T) {
		p := b.NewPage(t)
		p.Navigate(s.URL + "/error")
		p.WaitVisible("h1")
		browsertest.Eval[bool](p, `new Promise(r => setTimeout(() => r(true), 50))`)
		got := fmt.Sprint(p.Problems())
		for _, want := range []string{"console.error: something broke", "exception: Uncaught Error: uncaught"} {
			if !strings.Contains(got, want) {
				t.Errorf("want %q in %s", want, got)
			}
		}
		p.Navigate(s.URL + "/missing")
		if got := fmt.Sprint(p.Problems()); !strings.Contains(got, "404") {
			t.Errorf("want the 404 reported, got %s", got)
		}
		p.AllowConsole("status of 404")
		p.Navigate(s.URL + "/missing")
		if got := p.Problems(); len(got) > 0 {
			t.Errorf("allowed, yet reported: %s", got)
		}
	})

	t.Run("accessibility violations are caught", func(t *testing.T) {
		rec := &recorder{TB: t}
		p := b.NewPage(rec)
		p.Navigate(s.URL + "/bad")
		p.CheckAccessibility()
		got := rec.all()
		for _, want := range []string{"html-has-lang (serious)", "label (critical)", "#q"} {
			if !strings.Contains(got, want) {
				t.Errorf("want %q in\n%s", want, got)
			}
		}
	})

	t.Run("reflow is checked", func(t *testing.T) {
		rec := &recorder{TB: t}
		p := b.NewPage(rec)
		p.Navigate(s.URL + "/wide")
		p.CheckReflow()
		if got := rec.all(); !strings.Contains(got, "p#wide") {
			t.Errorf("want p#wide named, got %q", got)
		}
	})
}

func TestExecPath(t *testing.T) {
	t.Setenv(browsertest.EnvChromium, "/nonexistent/chromium")
	if _, err := browsertest.ExecPath(); err == nil || strings.Contains(err.Error(), "no Chromium found") {
		t.Errorf("a wrong %s: %v", browsertest.EnvChromium, err)
	}
	t.Setenv(browsertest.EnvChromium, "")
	t.Setenv("PATH", t.TempDir())
	if _, err := browsertest.ExecPath(); err != browsertest.ErrNoChromium {
		t.Errorf("no browser: %v", err)
	}
}

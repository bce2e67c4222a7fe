package browsertest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/accessibility"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// Page is a browser tab of one test, with cookies of its own (a fresh
// browser context, as a private window). It collects the problems the
// page reports in its console: console.error and console.assert calls,
// uncaught exceptions, browser log errors (a resource that fails to load,
// a refused request) and every message about the Content-Security-Policy
// ("Refused to ...", "... violates the following Content Security Policy
// directive ..."), whatever its level. CheckConsole fails the test on
// them, and so does the end of the test for those not checked yet.
type Page struct {
	t   testing.TB
	ctx context.Context

	mu       sync.Mutex
	problems []Message
	allowed  []string
}

// Message is a problem a page reported in its console.
type Message struct {
	// Kind is "console.error" (or another console method), "exception"
	// or "log" (the browser's own messages).
	Kind string
	// Level and Source are those of a browser log message ("error",
	// "security", "network", ...).
	Level, Source string
	Text          string
	URL           string
	Line          int64
}

func (m Message) String() string {
	var b strings.Builder
	b.WriteString(m.Kind)
	if m.Source != "" {
		fmt.Fprintf(&b, " (%s %s)", m.Source, m.Level)
	}
	b.WriteString(": ")
	b.WriteString(m.Text)
	if m.URL != "" {
		fmt.Fprintf(&b, " [%s:%d]", m.URL, m.Line+1)
	}
	return b.String()
}

// CSP reports whether the message is about the Content-Security-Policy:
// a refusal ("Refused to load the script ..." in older browsers,
// "Executing inline script violates the following Content Security Policy
// directive ... The action has been blocked." in Chromium 156), a
// report-only violation, or a policy the browser could not apply.
func (m Message) CSP() bool {
	return strings.Contains(m.Text, "Refused to") || strings.Contains(m.Text, "Content Security Policy") ||
		strings.Contains(m.Text, "Content-Security-Policy")
}

// allowable reports whether AllowConsole may tolerate the message: never a
// CSP or other security message.
func (m Message) allowable() bool { return !m.CSP() && m.Source != string(log.EntrySourceSecurity) }

// NewPage opens a tab for t, closed when t ends.
func (b *Browser) NewPage(t testing.TB) *Page {
	t.Helper()
	p := &Page{t: t}
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext(), chromedp.WithListener(p.listen))
	// As for the browser, the first step binds the tab to its context.
	if err := within(cancel, func() error { return chromedp.Do(ctx) }); err != nil {
		cancel()
		t.Fatalf("open a tab: %v", err)
	}
	p.ctx = ctx
	t.Cleanup(func() {
		for _, m := range p.Problems() {
			t.Errorf("the page reported: %s", m)
		}
		cancel()
	})
	return p
}

// listen runs in the tab's event loop: it must return at once.
func (p *Page) listen(ev any) {
	var m Message
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		m = Message{Kind: "console." + string(ev.Type), Text: consoleText(ev.Args)}
		if f := ev.StackTrace; f != nil && len(f.CallFrames) > 0 {
			m.URL, m.Line = f.CallFrames[0].URL, f.CallFrames[0].LineNumber
		}
		if ev.Type != runtime.ConsoleAPICalledTypeError && ev.Type != runtime.ConsoleAPICalledTypeAssert && !m.CSP() {
			return
		}
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		m = Message{Kind: "exception", Text: d.Text, URL: d.URL, Line: d.LineNumber}
		if d.Exception != nil && d.Exception.Description != "" {
			m.Text += " " + d.Exception.Description
		}
	case *log.EventEntryAdded:
		e := ev.Entry
		m = Message{Kind: "log", Level: string(e.Level), Source: string(e.Source), Text: e.Text, URL: e.URL, Line: e.LineNumber}
		if e.Level != log.EntryLevelError && !m.CSP() {
			return
		}
	default:
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if m.allowable() {
		for _, a := range p.allowed {
			if strings.Contains(m.Text, a) || strings.Contains(m.URL, a) {
				return
			}
		}
	}
	p.problems = append(p.problems, m)
}

// consoleText is the text of a console call's arguments.
func consoleText(args []*runtime.RemoteObject) string {
	parts := make([]string, 0, len(args))
	for _, a := range args {
		var s string
		switch {
		case a.Type == runtime.RemoteObjectTypeString && json.Unmarshal(a.Value, &s) == nil:
		case a.Description != "":
			s = a.Description
		case a.UnserializableValue != "":
			s = string(a.UnserializableValue)
		default:
			s = string(a.Value)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

// AllowConsole tolerates console problems whose text or address contains
// s from now on, such as the browser's "Failed to load resource: the server responded
// with a status of 401" for a page that answers 401 on purpose. It never
// tolerates a Content-Security-Policy violation or another security
// message.
func (p *Page) AllowConsole(s string) {
	p.mu.Lock()
	p.allowed = append(p.allowed, s)
	p.mu.Unlock()
}

// Problems returns the console problems seen since the last call, and
// forgets them (a test that provokes one on purpose takes it this way).
func (p *Page) Problems() []Message {
	p.settle()
	p.mu.Lock()
	defer p.mu.Unlock()
	m := p.problems
	p.problems = nil
	return m
}

// settle lets the events the page has sent so far reach listen: the
// listener sees every event that came before the answer to a command.
func (p *Page) settle() {
	ctx, cancel := context.WithTimeout(p.ctx, Timeout)
	defer cancel()
	chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`new Promise(r => setTimeout(r, 0))`, chromedp.EvalAwaitPromise))
}

// CheckConsole fails the test if the page reported a console error, an
// uncaught exception or a Content-Security-Policy violation so far.
func (p *Page) CheckConsole() {
	p.t.Helper()
	for _, m := range p.Problems() {
		p.t.Errorf("the page reported: %s", m)
	}
}

// Context is the tab's chromedp context, for steps this package has no
// method for: it has no deadline, so derive one (or use Do and Run).
func (p *Page) Context() context.Context { return p.ctx }

// Do runs steps, each within Timeout; the test fails at once if one does
// not succeed.
func (p *Page) Do(steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	for i, s := range steps {
		ctx, cancel := context.WithTimeout(p.ctx, Timeout)
		err := chromedp.Do(ctx, s)
		cancel()
		if err != nil {
			p.t.Fatalf("browser step %d of %d: %v", i+1, len(steps), err)
		}
	}
}

// Run runs one step that returns a value, within Timeout; the test fails at
// once if it does not succeed.
func Run[T any](p *Page, a chromedp.Action[T]) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, Timeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		p.t.Fatalf("browser step: %v", err)
	}
	return v
}

// Eval evaluates a JavaScript expression in the page (awaiting it if it is
// a promise) and decodes its value. Evaluation through the DevTools
// protocol is not subject to the page's Content-Security-Policy.
func Eval[T any](p *Page, js string) T {
	p.t.Helper()
	return Run(p, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
}

// Navigate loads url and waits for it; it returns the response of the
// document.
func (p *Page) Navigate(url string) *network.Response {
	p.t.Helper()
	r := Run(p, chromedp.NavigateResponse(url))
	if r == nil {
		p.t.Fatalf("navigate to %s: no response", url)
	}
	return r
}

// ClickAndWait clicks the element of a CSS selector (a link, a submit
// button) and waits for the page it leads to; it returns the response of
// the new document.
func (p *Page) ClickAndWait(css string) *network.Response {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, Timeout)
	defer cancel()
	r, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(css)))
	if err != nil {
		p.t.Fatalf("click %s: %v", css, err)
	}
	if r == nil {
		p.t.Fatalf("click %s: no response", css)
	}
	return r
}

// Type types text into the element of a CSS selector, key by key, as a
// user does (it focuses the element first).
func (p *Page) Type(css, text string) {
	p.t.Helper()
	p.Do(chromedp.SendKeys(chromedp.CSS(css), text))
}

// Press sends keys (kb.Tab, kb.Enter, or text) to the focused element.
func (p *Page) Press(keys string) {
	p.t.Helper()
	p.Do(chromedp.KeyEvent(keys))
}

// Tab presses the Tab key.
func (p *Page) Tab() {
	p.t.Helper()
	p.Press(kb.Tab)
}

// Focused describes the element that has the keyboard focus: "#id" when
// it has an id, else its tag and type ("button[type=submit]"); "" when no
// element has it.
func (p *Page) Focused() string {
	p.t.Helper()
	return Eval[string](p, `(() => {
	const e = document.activeElement;
	if (!e || e === document.body || e === document.documentElement) return "";
	if (e.id) return "#" + e.id;
	const type = e.getAttribute("type");
	return e.localName + (type ? "[type=" + type + "]" : "");
})()`)
}

// WaitVisible waits until the element of a CSS selector is visible.
func (p *Page) WaitVisible(css string) {
	p.t.Helper()
	p.Do(chromedp.WaitVisible(chromedp.CSS(css)))
}

// Text is the rendered text (innerText) of the element of a CSS selector,
// once it is visible.
func (p *Page) Text(css string) string {
	p.t.Helper()
	p.WaitVisible(css)
	return Eval[string](p, `document.querySelector(`+jsString(css)+`).innerText`)
}

// Attr is an attribute of the element of a CSS selector (which must be in
// the page), and whether it has it.
func (p *Page) Attr(css, name string) (string, bool) {
	p.t.Helper()
	p.Do(chromedp.WaitReady(chromedp.CSS(css)))
	v := Eval[*string](p, `document.querySelector(`+jsString(css)+`).getAttribute(`+jsString(name)+`)`)
	if v == nil {
		return "", false
	}
	return *v, true
}

// Location is the address of the page.
func (p *Page) Location() string {
	p.t.Helper()
	return Run(p, chromedp.Location())
}

// Cookies are the browser's cookies for urls (none given: the page's).
// Unlike document.cookie they include the HttpOnly ones, with their
// attributes.
func (p *Page) Cookies(urls ...string) []*network.Cookie {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, Timeout)
	defer cancel()
	r, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: urls})
	if err != nil {
		p.t.Fatalf("read the cookies: %v", err)
	}
	return r.Cookies
}

// Cookie is the cookie name for urls (none given: the page's), nil if the
// browser has none.
func (p *Page) Cookie(name string, urls ...string) *network.Cookie {
	p.t.Helper()
	for _, c := range p.Cookies(urls...) {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// SetColorScheme makes the page see prefers-color-scheme: scheme ("light"
// or "dark"; "" for the browser's default).
func (p *Page) SetColorScheme(scheme string) {
	p.t.Helper()
	params := emulation.SetEmulatedMediaParams{}
	if scheme != "" {
		params.Features = []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}
	}
	p.Do(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, params)
		return err
	}))
}

// CheckReflow fails the test if the page needs horizontal scrolling at a
// width of 320 CSS pixels (WCAG 2.1 success criterion 1.4.10, Reflow: a
// 1280-pixel window zoomed to 400 %), naming the elements that stick out.
func (p *Page) CheckReflow() {
	p.t.Helper()
	p.Do(chromedp.EmulateViewport(320, 640))
	defer p.Do(chromedp.ResetViewport())
	wide := Eval[[]string](p, `(() => {
	const w = document.documentElement.clientWidth;
	if (document.documentElement.scrollWidth <= w) return [];
	const out = [];
	for (const e of document.body.querySelectorAll("*")) {
		const r = e.getBoundingClientRect();
		if (r.right > w + 0.5 && out.length < 10) out.push(e.localName + (e.id ? "#" + e.id : "") + " (" + Math.round(r.right) + "px)");
	}
	return out.length ? out : ["the page (" + document.documentElement.scrollWidth + "px)"];
})()`)
	if len(wide) > 0 {
		p.t.Errorf("at 320 CSS pixels the page scrolls sideways (WCAG 1.4.10); wider than the window: %s", strings.Join(wide, ", "))
	}
}

// jsString is s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// AXNode is how assistive technology sees an element: its computed role,
// accessible name and description, and its other properties ("invalid",
// "required", "focusable", ...), as Chromium's accessibility tree has them.
type AXNode struct {
	Role, Name, Description string
	Properties              map[string]string
}

// Accessible is the accessibility node of the element of a CSS selector:
// the description, for one, proves that a field's error message is tied to
// the field (aria-describedby) as a screen reader reads it.
func (p *Page) Accessible(css string) AXNode {
	p.t.Helper()
	ids := Run(p, chromedp.QueryNodeIDs(chromedp.CSS(css)))
	if len(ids) == 0 {
		p.t.Fatalf("no %s in the page", css)
	}
	ctx, cancel := context.WithTimeout(p.ctx, Timeout)
	defer cancel()
	r, err := chromedp.Call(ctx, accessibility.GetPartialAXTree,
		accessibility.GetPartialAXTreeParams{NodeID: ids[0], FetchRelatives: new(false)})
	if err != nil || len(r.Nodes) == 0 {
		p.t.Fatalf("the accessibility node of %s: %v", css, err)
	}
	n := r.Nodes[0]
	ax := AXNode{Role: axString(n.Role), Name: axString(n.Name), Description: axString(n.Description),
		Properties: map[string]string{}}
	for _, pr := range n.Properties {
		ax.Properties[string(pr.Name)] = axString(pr.Value)
	}
	return ax
}

// axString is an accessibility value as text.
func axString(v *accessibility.Value) string {
	if v == nil || len(v.Value) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(v.Value, &s) == nil {
		return s
	}
	return string(v.Value)
}

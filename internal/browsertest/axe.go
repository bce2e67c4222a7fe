package browsertest

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/chromedp/chromedp"
)

// axeSource is axe-core (Deque Systems, MPL-2.0): see axe/README.md.
//
//go:embed axe/axe.min.js
var axeSource string

// AxeTags are the axe-core rules run: those of WCAG 2.0 and 2.1, levels A
// and AA.
var AxeTags = []string{"wcag2a", "wcag2aa", "wcag21a", "wcag21aa"}

// Violation is a rule of axe-core that the page breaks.
type Violation struct {
	ID      string `json:"id"`
	Impact  string `json:"impact"`
	Help    string `json:"help"`
	HelpURL string `json:"helpUrl"`
	Nodes   []struct {
		Target  []any  `json:"target"` // CSS selectors (arrays of them inside frames and shadow roots)
		Summary string `json:"failureSummary"`
	} `json:"nodes"`
}

func (v Violation) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s): %s <%s>", v.ID, v.Impact, v.Help, v.HelpURL)
	for _, n := range v.Nodes {
		fmt.Fprintf(&b, "\n\t  %v", n.Target)
		if n.Summary != "" {
			fmt.Fprintf(&b, ": %s", strings.ReplaceAll(n.Summary, "\n", " "))
		}
	}
	return b.String()
}

// AxeResult is what axe-core found: the violations, and the rules it could
// not decide (such as a contrast over a background image), for a person to
// look at.
type AxeResult struct {
	Violations []Violation `json:"violations"`
	Incomplete []Violation `json:"incomplete"`
	Passes     int         `json:"passes"`
}

// Axe runs axe-core on the page as it is now, with the rules of AxeTags.
// The script is evaluated through the DevTools protocol, so the page's
// Content-Security-Policy does not stop it, and the page needs no change.
func (p *Page) Axe() AxeResult {
	p.t.Helper()
	if !Eval[bool](p, `typeof window.axe === "object" && typeof window.axe.run === "function"`) {
		p.Do(chromedp.Evaluate[chromedp.Void](axeSource))
	}
	tags, _ := json.Marshal(AxeTags)
	return Eval[AxeResult](p, `(() => {
	const slim = v => ({id: v.id, impact: v.impact || "", help: v.help, helpUrl: v.helpUrl,
		nodes: v.nodes.map(n => ({target: n.target, failureSummary: n.failureSummary || ""}))});
	return axe.run(document, {runOnly: {type: "tag", values: `+string(tags)+`}, resultTypes: ["violations", "incomplete"]})
		.then(r => ({violations: r.violations.map(slim), incomplete: r.incomplete.map(slim), passes: r.passes.length}));
})()`)
}

// CheckAccessibility fails the test if axe-core finds any violation of
// WCAG 2.1 A or AA in the page as it is now, listing each rule with its
// impact and the elements that break it. The rules axe-core cannot decide
// are logged.
func (p *Page) CheckAccessibility() {
	p.t.Helper()
	r := p.Axe()
	for _, v := range r.Violations {
		p.t.Errorf("accessibility (axe-core, WCAG 2.1 AA) at %s: %s", p.Location(), v)
	}
	for _, v := range r.Incomplete {
		p.t.Logf("accessibility to check by hand (axe-core could not decide) at %s: %s", p.Location(), v)
	}
	if r.Passes == 0 && len(r.Violations) == 0 {
		p.t.Errorf("accessibility: axe-core ran no rule at %s", p.Location())
	}
}

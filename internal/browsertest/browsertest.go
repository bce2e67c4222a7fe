// Package browsertest checks zenne's web pages in headless Chromium, for
// tests: it finds and starts the browser, opens pages in tabs of their own
// (each with its own cookies), fails the test on any console error or
// Content-Security-Policy violation, and checks accessibility with axe-core
// (WCAG 2.1 A and AA).
//
// Without Chromium the tests skip, saying how to install it, unless the
// environment variable CI_REQUIRE_BROWSER is 1 (as .ci/run sets it): then
// they fail, so that CI never passes without having run them.
//
//	b := browsertest.Start(t)
//	p := b.NewPage(t)
//	p.Navigate(s.URL + "/login?lang=nl")
//	p.CheckAccessibility()
//
// Every step is bounded by Timeout; a step that fails or times out fails the
// test (t.Fatal), so a test reads as a list of steps.
package browsertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/chromedp"
)

const (
	// EnvChromium names the browser to run (a path, or a command on
	// PATH); by default the first of Candidates on PATH.
	EnvChromium = "ZENNE_CHROMIUM"
	// EnvRequire set to 1 turns the skip of a test without Chromium into
	// a failure.
	EnvRequire = "CI_REQUIRE_BROWSER"
	// Timeout bounds each step: starting the browser, a navigation, a
	// wait, an evaluation.
	Timeout = 20 * time.Second
)

// Candidates are the commands tried, in order, when EnvChromium is not
// set: Debian's and Ubuntu's Chromium, then Google Chrome.
var Candidates = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

// installHint says how to get a browser for these tests.
const installHint = "install Chromium (Debian: apt-get install chromium chromium-driver) " +
	"or set " + EnvChromium + " to the path of a Chromium or Chrome"

// ErrNoChromium is returned by ExecPath when no browser is found.
var ErrNoChromium = errors.New("no Chromium found: " + installHint)

// ExecPath returns the path of the browser to run: EnvChromium's, else the
// first of Candidates on PATH. A EnvChromium that names nothing runnable is
// an error of its own, not ErrNoChromium: whoever set it wants that browser.
func ExecPath() (string, error) {
	if v := os.Getenv(EnvChromium); v != "" {
		p, err := exec.LookPath(v)
		if err != nil {
			return "", fmt.Errorf("%s=%s: %w", EnvChromium, v, err)
		}
		return p, nil
	}
	for _, c := range Candidates {
		if p, err := exec.LookPath(c); err == nil {
			return p, nil
		}
	}
	return "", ErrNoChromium
}

// Browser is a headless Chromium running for one test (and its subtests).
type Browser struct {
	ctx     context.Context // the browser's chromedp context
	Path    string          // the executable
	Version string          // as the browser says, "Chrome/156.0.8078.79"
}

// Start starts headless Chromium for t; it stops when t ends. Without a
// browser it skips t, or fails it when CI_REQUIRE_BROWSER=1.
func Start(t testing.TB) *Browser {
	t.Helper()
	path, err := ExecPath()
	switch {
	case errors.Is(err, ErrNoChromium) && os.Getenv(EnvRequire) != "1":
		t.Skipf("browser test skipped: %v (%s=1 makes this a failure)", err, EnvRequire)
	case errors.Is(err, ErrNoChromium):
		t.Fatalf("browser test: %v (%s=1: the browser tests must run here)", err, EnvRequire)
	case err != nil:
		t.Fatalf("browser test: %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.WindowSize(1280, 900),
		// The pages are zenne's own, served on loopback: nothing to
		// fetch elsewhere, no component updates.
		chromedp.Flag("disable-component-update", true),
	)
	if os.Geteuid() == 0 {
		// Chromium refuses to run as root with its sandbox (CI
		// containers).
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// The first step starts the browser and binds it to the context it
	// is given: that one has no deadline, so the deadline is kept apart.
	if err := within(cancel, func() error { return chromedp.Do(ctx) }); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	b := &Browser{ctx: ctx, Path: path}
	vctx, vcancel := context.WithTimeout(ctx, Timeout)
	defer vcancel()
	if v, err := chromedp.CallBrowser(vctx, browser.GetVersion, cdp.Empty{}); err == nil {
		b.Version = v.Product
	}
	t.Logf("browser: %s (%s)", b.Version, path)
	return b
}

// within runs f, cancelling (through stop) what it started if it takes
// more than Timeout.
func within(stop func(), f func() error) error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	timer := time.NewTimer(Timeout)
	defer timer.Stop()
	select {
	case err := <-done:
		return err
	case <-timer.C:
		stop()
		<-done
		return fmt.Errorf("no answer within %v", Timeout)
	}
}

package server

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func newTestServer(t *testing.T, logs *bytes.Buffer) *httptest.Server {
	t.Helper()
	s := New(slog.New(slog.NewTextHandler(logs, nil)), "test", nil)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /panic", func(http.ResponseWriter, *http.Request) { panic("boom") })
	mux.HandleFunc("GET /ok", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "fine") })
	ts := httptest.NewServer(s.Handler(mux))
	t.Cleanup(ts.Close)
	return ts
}

// TestPanicBecomesProblemDetails: a handler that panics answers 500 with an
// NGSI-LD InternalError that reveals nothing, the panic is logged with the
// request id, and the server goes on serving.
func TestPanicBecomesProblemDetails(t *testing.T) {
	var logs bytes.Buffer
	ts := newTestServer(t, &logs)
	req, _ := http.NewRequest("GET", ts.URL+"/panic", nil)
	req.Header.Set("X-Request-Id", "req-42")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(string(body), "errors/InternalError") || strings.Contains(string(body), "boom") {
		t.Fatalf("panic answered %d %s", resp.StatusCode, body)
	}
	if !strings.Contains(logs.String(), "req-42") || !strings.Contains(logs.String(), "boom") {
		t.Fatalf("panic not logged with its request id: %s", logs.String())
	}
	resp, err = http.Get(ts.URL + "/ok")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("server stopped serving after a panic: %v", err)
	}
	resp.Body.Close()
}

func TestRequestID(t *testing.T) {
	ts := newTestServer(t, &bytes.Buffer{})
	cases := []struct{ name, sent, want string }{
		{"kept", "abc-1", "abc-1"},
		{"made when missing", "", ""},
		{"replaced when too long", strings.Repeat("x", 65), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", ts.URL+"/ok", nil)
			if tc.sent != "" {
				req.Header.Set("X-Request-Id", tc.sent)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			got := resp.Header.Get("X-Request-Id")
			if tc.want != "" && got != tc.want || tc.want == "" && (len(got) != 16 || got == tc.sent) {
				t.Fatalf("X-Request-Id %q for %q", got, tc.sent)
			}
		})
	}
}

// TestForwardedFor: the client of an X-Forwarded-For chain is the last
// address that is not a trusted proxy; a malformed chain names nobody.
func TestForwardedFor(t *testing.T) {
	s := &Server{proxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}}
	cases := []struct {
		peer   string
		values []string
		want   string
	}{
		{"10.1.1.1:4000", []string{"203.0.113.9"}, "203.0.113.9"},
		{"10.1.1.1:4000", []string{"198.51.100.1, 203.0.113.9"}, "203.0.113.9"},
		{"10.1.1.1:4000", []string{"203.0.113.9, 10.2.2.2"}, "203.0.113.9"},
		{"10.1.1.1:4000", []string{"198.51.100.1", "203.0.113.9, 10.2.2.2"}, "203.0.113.9"},
		{"10.1.1.1:4000", []string{"10.3.3.3"}, "10.1.1.1"}, // only proxies: the peer
		{"10.1.1.1:4000", []string{"not-an-ip"}, "10.1.1.1"},
		{"10.1.1.1:4000", []string{"203.0.113.9, <script>"}, "10.1.1.1"},
		{"[::1]:4000", []string{"2001:db8::7"}, "2001:db8::7"},
		{"192.0.2.50:4000", []string{"203.0.113.9"}, "192.0.2.50"}, // not a trusted proxy
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.peer
		for _, v := range c.values {
			r.Header.Add("X-Forwarded-For", v)
		}
		var got string
		s.forwarded(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
			got, _, _ = net.SplitHostPort(r.RemoteAddr)
		})).ServeHTTP(httptest.NewRecorder(), r)
		if got != c.want {
			t.Errorf("%s %q: client %s, want %s", c.peer, c.values, got, c.want)
		}
	}
}

func FuzzForwardedFor(f *testing.F) {
	f.Add("198.51.100.1, 203.0.113.9")
	f.Add(" , ,::1,")
	f.Fuzz(func(t *testing.T, v string) {
		got := lastForwardedFor([]string{v}, func(a string) bool { return strings.HasPrefix(a, "10.") })
		if got == "" {
			return
		}
		if _, err := netip.ParseAddr(got); err != nil || strings.HasPrefix(got, "10.") {
			t.Fatalf("%q gave client %q", v, got)
		}
	})
}

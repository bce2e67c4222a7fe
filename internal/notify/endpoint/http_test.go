package endpoint

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const testBody = `{"id":"urn:ngsi-ld:Notification:1","type":"Notification","subscriptionId":"urn:ngsi-ld:Subscription:s1","notifiedAt":"2026-01-02T03:04:05.000Z","data":[{"id":"urn:ngsi-ld:Vehicle:A1","type":"Vehicle","speed":{"type":"Property","value":55}}]}`

const testLink = `<https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"`

// received is what an HTTP receiver got.
type received struct {
	Method, Path string
	Header       http.Header
	Body         string
	BasicUser    string
	BasicPass    string
	BasicOK      bool
}

// newReceiver starts a receiver on loopback that records each request and
// answers status.
func newReceiver(t *testing.T, status int) (*httptest.Server, <-chan received) {
	t.Helper()
	ch := make(chan received, 1024)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		u, p, ok := r.BasicAuth()
		ch <- received{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: string(b), BasicUser: u, BasicPass: p, BasicOK: ok}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, `{"some":"answer"}`)
	}))
	t.Cleanup(srv.Close)
	return srv, ch
}

func newSender(t *testing.T, opts Options) *Sender {
	t.Helper()
	s := New(opts)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func asError(t *testing.T, err error) *Error {
	t.Helper()
	if err == nil {
		t.Fatal("Send succeeded, want an error")
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %T %v is not an *Error", err, err)
	}
	return e
}

func TestHTTPDelivery(t *testing.T) {
	srv, got := newReceiver(t, http.StatusNoContent)
	s := newSender(t, Options{UserAgent: "zenne-test/1"})
	base := strings.Replace(srv.URL, "http://", "http://alice:s3cret@", 1)

	tests := []struct {
		name     string
		msg      Message
		wantCT   string
		wantLink string
		wantHdr  map[string][]string // header name -> values
		wantUA   string
		wantUser string
	}{
		{
			name:     "json with Link",
			msg:      Message{URI: srv.URL + "/notify", Accept: "application/json", Link: testLink},
			wantCT:   "application/json",
			wantLink: testLink,
			wantUA:   "zenne-test/1",
		},
		{
			name:   "default accept is json",
			msg:    Message{URI: srv.URL + "/notify"},
			wantCT: "application/json",
			wantUA: "zenne-test/1",
		},
		{
			name:   "ld+json sends no Link",
			msg:    Message{URI: srv.URL + "/notify", Accept: "application/ld+json", Link: testLink},
			wantCT: "application/ld+json",
			wantUA: "zenne-test/1",
		},
		{
			name: "receiverInfo headers",
			msg: Message{URI: srv.URL + "/a/b?x=1", Accept: "application/json", Link: testLink, Headers: []KV{
				{"NGSILD-Tenant", "city"},
				{"X-Api-Key", "k1"},
				{"X-Multi", "one"},
				{"X-Multi", "two"},
				{"Content-Type", "text/plain"},        // the broker's wins
				{"Link", "<http://evil>"},             // the broker's wins
				{"Content-Length", "3"},               // framing: ignored
				{"Connection", "close"},               // framing: ignored
				{"User-Agent", "receiver-wants-this"}, // may be replaced
			}},
			wantCT:   "application/json",
			wantLink: testLink,
			wantHdr:  map[string][]string{"Ngsild-Tenant": {"city"}, "X-Api-Key": {"k1"}, "X-Multi": {"one", "two"}},
			wantUA:   "receiver-wants-this",
		},
		{
			name:     "userinfo becomes basic authentication",
			msg:      Message{URI: base + "/notify", Accept: "application/json"},
			wantCT:   "application/json",
			wantUA:   "zenne-test/1",
			wantUser: "alice",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.msg
			m.Body = []byte(testBody)
			if err := s.Send(context.Background(), &m); err != nil {
				t.Fatalf("Send: %v", err)
			}
			r := <-got
			if r.Method != http.MethodPost {
				t.Errorf("method %s, want POST", r.Method)
			}
			if r.Body != testBody {
				t.Errorf("body %q, want %q", r.Body, testBody)
			}
			if ct := r.Header.Values("Content-Type"); len(ct) != 1 || ct[0] != tc.wantCT {
				t.Errorf("Content-Type %q, want [%s]", ct, tc.wantCT)
			}
			if l := r.Header.Values("Link"); tc.wantLink == "" && len(l) != 0 || tc.wantLink != "" && (len(l) != 1 || l[0] != tc.wantLink) {
				t.Errorf("Link %q, want %q", l, tc.wantLink)
			}
			for k, want := range tc.wantHdr {
				if got := r.Header.Values(k); strings.Join(got, "|") != strings.Join(want, "|") {
					t.Errorf("header %s = %q, want %q", k, got, want)
				}
			}
			if ua := r.Header.Values("User-Agent"); len(ua) != 1 || ua[0] != tc.wantUA {
				t.Errorf("User-Agent %q, want %s", ua, tc.wantUA)
			}
			if tc.wantUser != "" {
				if !r.BasicOK || r.BasicUser != tc.wantUser || r.BasicPass != "s3cret" {
					t.Errorf("basic auth %q %q %v, want %s", r.BasicUser, r.BasicPass, r.BasicOK, tc.wantUser)
				}
			} else if r.BasicOK {
				t.Errorf("unexpected basic auth %q", r.BasicUser)
			}
		})
	}
}

func TestHTTPStatus(t *testing.T) {
	s := newSender(t, Options{})
	tests := []struct {
		status    int
		wantErr   bool
		temporary bool
		cause     string
	}{
		{status: 200},
		{status: 201},
		{status: 204},
		{status: 500, wantErr: true, temporary: true, cause: "receiver answered 500 Internal Server Error"},
		{status: 503, wantErr: true, temporary: true, cause: "receiver answered 503 Service Unavailable"},
		{status: 429, wantErr: true, temporary: true, cause: "receiver answered 429 Too Many Requests"},
		{status: 404, wantErr: true, temporary: false, cause: "receiver answered 404 Not Found"},
		{status: 400, wantErr: true, temporary: false, cause: "receiver answered 400 Bad Request"},
		{status: 501, wantErr: true, temporary: false, cause: "receiver answered 501 Not Implemented"},
		{status: 302, wantErr: true, temporary: false, cause: "receiver answered 302 Found (redirects are not followed)"},
	}
	for _, tc := range tests {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			var hits atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				if tc.status == 302 {
					http.Redirect(w, r, "/elsewhere", http.StatusFound)
					return
				}
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(strings.Repeat("x", 64<<10))) // a big body: read at most a few KiB
			}))
			defer srv.Close()
			err := s.Send(context.Background(), &Message{URI: srv.URL + "/n", Body: []byte(testBody)})
			if hits.Load() != 1 {
				t.Errorf("receiver hit %d times, want 1", hits.Load())
			}
			if !tc.wantErr {
				if err != nil {
					t.Fatalf("Send: %v", err)
				}
				return
			}
			e := asError(t, err)
			if e.Status != tc.status || e.Temporary != tc.temporary || e.Cause != tc.cause {
				t.Errorf("got %+v, want status %d temporary %v cause %q", *e, tc.status, tc.temporary, tc.cause)
			}
			if e.Error() != tc.cause {
				t.Errorf("Error() %q", e.Error())
			}
		})
	}
}

func TestHTTPTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // hang
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	host := strings.TrimPrefix(srv.URL, "http://")

	t.Run("message timeout", func(t *testing.T) {
		s := newSender(t, Options{Timeout: time.Minute})
		start := time.Now()
		err := s.Send(context.Background(), &Message{URI: srv.URL, Body: []byte(testBody), Timeout: 200 * time.Millisecond})
		if d := time.Since(start); d < 200*time.Millisecond || d > 5*time.Second {
			t.Errorf("Send took %v, want about 200ms", d)
		}
		e := asError(t, err)
		if !strings.HasPrefix(e.Cause, "no answer from "+host+": timeout after ") || !e.Temporary || e.Status != 0 {
			t.Errorf("got %+v", *e)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("errors.Is(err, DeadlineExceeded) is false")
		}
	})
	t.Run("sender default timeout", func(t *testing.T) {
		s := newSender(t, Options{Timeout: 150 * time.Millisecond})
		e := asError(t, s.Send(context.Background(), &Message{URI: srv.URL, Body: []byte(testBody)}))
		if !strings.Contains(e.Cause, "timeout after") || !e.Temporary {
			t.Errorf("got %+v", *e)
		}
	})
	t.Run("caller cancels", func(t *testing.T) {
		s := newSender(t, Options{})
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel)
		err := s.Send(ctx, &Message{URI: srv.URL, Body: []byte(testBody)})
		e := asError(t, err)
		if !errors.Is(err, context.Canceled) || !strings.HasSuffix(e.Cause, ": canceled") {
			t.Errorf("got %+v", *e)
		}
	})
}

func TestHTTPConnectionClosed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	defer srv.Close()
	s := newSender(t, Options{})
	e := asError(t, s.Send(context.Background(), &Message{URI: srv.URL, Body: []byte(testBody)}))
	want := "connection closed by " + strings.TrimPrefix(srv.URL, "http://") + " before its answer"
	if e.Cause != want || !e.Temporary {
		t.Errorf("got %+v, want cause %q", *e, want)
	}
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestHTTPConnectionRefused(t *testing.T) {
	addr := freeAddr(t)
	s := newSender(t, Options{})
	err := s.Send(context.Background(), &Message{URI: "http://bob:hunter2pass@" + addr + "/n", Body: []byte(testBody)})
	e := asError(t, err)
	if want := "connect to " + addr + ": connection refused"; e.Cause != want || !e.Temporary {
		t.Errorf("got %+v, want %q", *e, want)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Error("errors.Is(err, ECONNREFUSED) is false")
	}
	if strings.Contains(e.Cause, "hunter2pass") || strings.Contains(e.Cause, "bob") {
		t.Errorf("cause %q shows credentials", e.Cause)
	}
}

func TestHTTPS(t *testing.T) {
	var got atomic.Value
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.Store(string(b))
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the untrusted case's handshake error
	srv.StartTLS()
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())

	t.Run("trusted", func(t *testing.T) {
		s := newSender(t, Options{TLS: &tls.Config{RootCAs: pool}})
		if err := s.Send(context.Background(), &Message{URI: srv.URL + "/n", Body: []byte(testBody)}); err != nil {
			t.Fatalf("Send: %v", err)
		}
		if got.Load() != testBody {
			t.Errorf("body %v", got.Load())
		}
	})
	t.Run("untrusted", func(t *testing.T) {
		s := newSender(t, Options{})
		e := asError(t, s.Send(context.Background(), &Message{URI: srv.URL + "/n", Body: []byte(testBody)}))
		if !strings.Contains(e.Cause, "TLS certificate not accepted") || e.Temporary {
			t.Errorf("got %+v", *e)
		}
	})
	t.Run("plain HTTP server", func(t *testing.T) {
		plain, _ := newReceiver(t, 204)
		s := newSender(t, Options{})
		e := asError(t, s.Send(context.Background(), &Message{URI: strings.Replace(plain.URL, "http:", "https:", 1), Body: []byte(testBody)}))
		if !strings.Contains(e.Cause, "does not speak TLS") || e.Temporary {
			t.Errorf("got %+v", *e)
		}
	})
}

// TestHTTPConcurrent sends from many goroutines to one receiver: every
// notification arrives once, over few reused connections.
func TestHTTPConcurrent(t *testing.T) {
	var (
		conns atomic.Int32
		mu    sync.Mutex
		seen  = map[string]int{}
	)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.Header.Get("X-Seq")]++
		mu.Unlock()
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	s := newSender(t, Options{})
	const workers, each = 32, 50
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				m := &Message{URI: srv.URL + "/n", Body: []byte(testBody), Headers: []KV{{"X-Seq", seq(w, i)}}}
				if err := s.Send(context.Background(), m); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != workers*each {
		t.Errorf("%d distinct notifications received, want %d", len(seen), workers*each)
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("notification %s received %d times", k, n)
		}
	}
	// A worker may send again before its last connection is back in the
	// idle pool, so a few more connections than workers are normal; one per
	// notification is not.
	if n := conns.Load(); n > 2*workers {
		t.Errorf("%d connections for %d workers: keep-alive connections not reused", n, workers)
	}
	t.Logf("%d notifications over %d connections", workers*each, conns.Load())
}

func seq(w, i int) string { return fmt.Sprintf("%d-%d", w, i) }

func TestInvalidMessages(t *testing.T) {
	srv, _ := newReceiver(t, 204)
	s := newSender(t, Options{})
	tests := []struct {
		name  string
		msg   *Message
		cause string
	}{
		{"nil", nil, "no message"},
		{"accept", &Message{URI: srv.URL, Accept: "text/html"}, `unsupported accept "text/html"`},
		{"scheme", &Message{URI: "ftp://example.org/x"}, `unsupported endpoint URI scheme "ftp"`},
		{"no scheme", &Message{URI: "example.org/x"}, "invalid endpoint URI: no scheme"},
		{"no host", &Message{URI: "http:///x"}, "invalid endpoint URI: no host"},
		{"bad escape keeps the password secret", &Message{URI: "http://u:pa%zzword@h/x"}, "invalid endpoint URI: invalid percent-encoding"},
		{"header name", &Message{URI: srv.URL, Headers: []KV{{"Bad Name", "v"}}}, `receiverInfo: invalid header name "Bad Name"`},
		{"header value", &Message{URI: srv.URL, Headers: []KV{{"X-Evil", "a\r\nX-Injected: 1"}}}, `receiverInfo: invalid value for header "X-Evil"`},
		{"link value", &Message{URI: srv.URL, Link: "<a>\n"}, "invalid Link header value"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := asError(t, s.Send(context.Background(), tc.msg))
			if !strings.HasPrefix(e.Cause, tc.cause) || e.Temporary {
				t.Errorf("got %+v, want cause %q, not temporary", *e, tc.cause)
			}
		})
	}
	t.Run("closed sender", func(t *testing.T) {
		s := New(Options{})
		_ = s.Close()
		_ = s.Close() // twice is fine
		e := asError(t, s.Send(context.Background(), &Message{URI: srv.URL, Body: []byte(testBody)}))
		if e.Cause != "sender closed" {
			t.Errorf("got %+v", *e)
		}
	})
}

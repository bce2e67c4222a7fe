package simulate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// HTTPOptions configure an HTTPSender.
type HTTPOptions struct {
	// URL is the base URL of the uplink endpoint, e.g. http://127.0.0.1:1026;
	// messages go to {URL}/iot/json?k={apikey}&i={device_id}.
	URL    string
	Tenant string // NGSILD-Tenant header ("": none)
	// Concurrency is how many requests run at once (default 32); the
	// keep-alive pool holds as many connections.
	Concurrency int
	Timeout     time.Duration // per request (default 10s)
	// Client replaces the sender's own (keep-alive pool, Timeout).
	Client *http.Client
}

// HTTPSender posts uplinks: POST /iot/json?k=&i= with the JSON payload.
type HTTPSender struct {
	base        string
	tenant      string
	client      *http.Client
	concurrency int
}

// NewHTTPSender checks o.URL and builds the sender.
func NewHTTPSender(o HTTPOptions) (*HTTPSender, error) {
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("uplink URL %q: give http://host:port (or https://)", o.URL)
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 32
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	c := o.Client
	if c == nil {
		tr := &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        2 * o.Concurrency,
			MaxIdleConnsPerHost: 2 * o.Concurrency,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		}
		c = &http.Client{Transport: tr, Timeout: o.Timeout}
	}
	return &HTTPSender{base: strings.TrimRight(o.URL, "/"), tenant: o.Tenant, client: c, concurrency: o.Concurrency}, nil
}

// Workers is the sender's concurrency.
func (s *HTTPSender) Workers() int { return s.concurrency }

// Send posts the payload for d.
func (s *HTTPSender) Send(ctx context.Context, d *Device, payload []byte) error {
	u := s.base + "/iot/json?k=" + url.QueryEscape(d.APIKey) + "&i=" + url.QueryEscape(d.ID)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(payload))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if s.tenant != "" {
		req.Header.Set("NGSILD-Tenant", s.tenant)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return &SendError{Kind: netErrorKind(err), Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16)) // keep the connection
		return nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return &SendError{
		Kind: fmt.Sprintf("http %d", resp.StatusCode),
		Err:  fmt.Errorf("POST %s: %s: %s", u, resp.Status, problem(body)),
	}
}

// Close closes the idle connections.
func (s *HTTPSender) Close() error {
	s.client.CloseIdleConnections()
	return nil
}

// netErrorKind classifies a transport error.
func netErrorKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection reset"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return "unknown host"
	}
	return "network"
}

package benchutil

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// NewClient is the HTTP client the benchmarks send requests with:
// keep-alive connections, one per concurrent worker.
func NewClient(conns int) *http.Client {
	return &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			MaxConnsPerHost:     conns,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
	}
}

// Do sends one request (a JSON body when body is not nil) and drains the
// answer; a non-2xx status is an error.
func Do(c *http.Client, method, url string, body []byte) (*http.Response, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	msg, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("%s %s: read answer: %w", method, url, err)
	}
	if resp.StatusCode/100 != 2 {
		if len(msg) > 300 {
			msg = msg[:300]
		}
		return resp, fmt.Errorf("%s %s: status %d: %s", method, url, resp.StatusCode, msg)
	}
	return resp, nil
}

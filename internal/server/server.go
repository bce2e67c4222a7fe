// Package server is zenne's HTTP front: the middleware every request passes
// (request id, recovery, metrics, access log, security headers), and the
// handlers of liveness and readiness (/health) and Prometheus metrics
// (/metrics). Routes are registered elsewhere (internal/api/access, which
// checks who may call them); Handler wraps them.
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Pinger reports whether a dependency can serve (the store).
type Pinger interface {
	Ping(ctx context.Context) error
}

// Server holds the middleware and the metrics registry.
type Server struct {
	Registry *prometheus.Registry
	log      *slog.Logger
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	ready    map[string]Pinger
	degrade  map[string]Pinger // failures make the instance degraded, not unready
	proxies  []netip.Prefix    // whose X-Forwarded-* headers are believed
}

// New returns a server; its Health and Metrics handlers are to be
// registered by the caller.
func New(log *slog.Logger, version string, ready map[string]Pinger) *Server {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s := &Server{
		Registry: reg,
		log:      log,
		ready:    ready,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zenne_http_requests_total", Help: "HTTP requests by route and status.",
		}, []string{"method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "zenne_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"method", "route"}),
	}
	info := prometheus.NewGauge(prometheus.GaugeOpts{Name: "zenne_build_info", Help: "Build information.", ConstLabels: prometheus.Labels{"version": version}})
	info.Set(1)
	reg.MustRegister(s.requests, s.duration, info)
	return s
}

// Metrics serves the Prometheus metrics.
func (s *Server) Metrics() http.Handler {
	return promhttp.HandlerFor(s.Registry, promhttp.HandlerOpts{})
}

// Health answers liveness (the process serves) or, with checkDeps,
// readiness (its dependencies answer too).
func (s *Server) Health(checkDeps bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		status, code := "ok", http.StatusOK
		checks := map[string]string{}
		if checkDeps {
			ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
			defer cancel()
			for name, p := range s.ready {
				if err := p.Ping(ctx); err != nil {
					checks[name] = err.Error()
					status, code = "unavailable", http.StatusServiceUnavailable
				} else {
					checks[name] = "ok"
				}
			}
			for name, p := range s.degrade {
				if err := p.Ping(ctx); err != nil {
					checks[name] = "degraded: " + err.Error()
					if status == "ok" {
						status = "degraded"
					}
				} else {
					checks[name] = "ok"
				}
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(map[string]any{"status": status, "checks": checks})
	}
}

// CheckDegraded adds a dependency /health/ready reports without failing:
// the instance serves without it, less well (the NATS bus: changes then come
// from the store's log). Call before serving.
func (s *Server) CheckDegraded(name string, p Pinger) {
	if s.degrade == nil {
		s.degrade = map[string]Pinger{}
	}
	s.degrade[name] = p
}

// Handler returns h wrapped in the middleware chain.
func (s *Server) Handler(h http.Handler) http.Handler {
	return s.forwarded(s.recover(s.observe(secure(h))))
}

// TrustProxies makes requests that come from these networks (a reverse
// proxy or load balancer) count as coming from the client their
// X-Forwarded-For names, over the scheme X-Forwarded-Proto names. Others'
// forwarding headers are ignored: anyone can send them. Call before serving.
func (s *Server) TrustProxies(nets []netip.Prefix) { s.proxies = nets }

// forwarded applies TrustProxies.
func (s *Server) forwarded(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(s.proxies) > 0 && s.trusted(r.RemoteAddr) {
			if client := lastForwardedFor(r.Header.Values("X-Forwarded-For"), s.trusted); client != "" {
				r.RemoteAddr = net.JoinHostPort(client, "0")
			}
			if strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
				r = r.WithContext(context.WithValue(r.Context(), httpsKey{}, true))
			}
		}
		next.ServeHTTP(w, r)
	})
}

// trusted reports whether addr (host or host:port) is a trusted proxy.
func (s *Server) trusted(addr string) bool {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		addr = h
	}
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	for _, n := range s.proxies {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// lastForwardedFor is the client of an X-Forwarded-For chain: the last
// address that is not a trusted proxy (the ones before it could be
// forged by the client).
func lastForwardedFor(values []string, trusted func(string) bool) string {
	var hops []string
	for _, v := range values {
		for _, h := range strings.Split(v, ",") {
			hops = append(hops, strings.TrimSpace(h))
		}
	}
	for i := len(hops) - 1; i >= 0; i-- {
		if _, err := netip.ParseAddr(hops[i]); err != nil {
			return ""
		}
		if !trusted(hops[i]) {
			return hops[i]
		}
	}
	return ""
}

type httpsKey struct{}

// OverTLS reports whether the client reached zenne over TLS: to zenne
// itself, or to a trusted proxy that said so (X-Forwarded-Proto: https
// from a network of TrustProxies). Cookies are marked Secure on such
// requests.
func OverTLS(r *http.Request) bool {
	https, _ := r.Context().Value(httpsKey{}).(bool)
	return r.TLS != nil || https
}

// contentSecurityPolicy allows the console's own scripts, styles and
// images only: no inline script, no framing.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"

// secure sets the security headers of every response; HSTS only over TLS,
// where a browser heeds it.
func secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		if OverTLS(r) {
			h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
		}
		next.ServeHTTP(w, r)
	})
}

// StatusWriter remembers the status a handler answered (for metrics and
// the audit log).
type StatusWriter struct {
	http.ResponseWriter
	code int
}

func (w *StatusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *StatusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *StatusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Status is the status answered: 200 when the handler wrote nothing.
func (w *StatusWriter) Status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}

// observe assigns a request id, counts and times the request by route, and
// logs it at debug level (info would drown the log at thousands of requests
// a second).
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if id == "" || len(id) > 64 {
			id = newRequestID()
		}
		w.Header().Set("X-Request-Id", id)
		sw := &StatusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		d := time.Since(start)
		s.requests.WithLabelValues(r.Method, route, strconv.Itoa(sw.Status())).Inc()
		s.duration.WithLabelValues(r.Method, route).Observe(d.Seconds())
		if s.log.Enabled(r.Context(), slog.LevelDebug) {
			s.log.Debug("request", "id", id, "method", r.Method, "path", r.URL.Path, "code", sw.Status(), "duration", d)
		}
	})
}

// recover turns a panic into a 500 ProblemDetails and a log line with the
// request id, so one bad request cannot take the server down.
func (s *Server) recover(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic serving request", "method", r.Method, "path", r.URL.Path, "request_id", w.Header().Get("X-Request-Id"), "panic", v)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusInternalServerError)
				w.Write([]byte(`{"type":"https://uri.etsi.org/ngsi-ld/errors/InternalError","title":"Internal error"}`))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func newRequestID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Package server is zenne's HTTP front: the middleware every request passes
// (request id, recovery, metrics, access log), liveness and readiness at
// /health, and Prometheus metrics at /metrics. APIs register their routes on
// its mux.
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Pinger reports whether a dependency can serve (the store).
type Pinger interface {
	Ping(ctx context.Context) error
}

// Server holds the mux and the metrics registry.
type Server struct {
	Mux      *http.ServeMux
	Registry *prometheus.Registry
	log      *slog.Logger
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	ready    map[string]Pinger
	degrade  map[string]Pinger // failures make the instance degraded, not unready
}

// New returns a server with /health and /metrics registered.
func New(log *slog.Logger, version string, ready map[string]Pinger) *Server {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s := &Server{
		Mux:      http.NewServeMux(),
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
	s.Mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	s.Mux.HandleFunc("GET /health", s.health(true))
	s.Mux.HandleFunc("GET /health/live", s.health(false))
	s.Mux.HandleFunc("GET /health/ready", s.health(true))
	return s
}

// health answers liveness (the process serves) or readiness (its
// dependencies answer too).
func (s *Server) health(checkDeps bool) http.HandlerFunc {
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

// Handler returns the mux wrapped in the middleware chain.
func (s *Server) Handler() http.Handler {
	return s.recover(s.observe(s.Mux))
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

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
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.code == 0 {
			sw.code = http.StatusOK
		}
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		d := time.Since(start)
		s.requests.WithLabelValues(r.Method, route, strconv.Itoa(sw.code)).Inc()
		s.duration.WithLabelValues(r.Method, route).Observe(d.Seconds())
		if s.log.Enabled(r.Context(), slog.LevelDebug) {
			s.log.Debug("request", "id", id, "method", r.Method, "path", r.URL.Path, "code", sw.code, "duration", d)
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

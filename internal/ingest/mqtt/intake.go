package mqtt

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zenne-city/zenne/internal/ingest"
)

// intake is what the embedded broker and the external broker's client share:
// a device topic's message becomes an Uplink for the Receiver; rejections
// and other topics are counted and logged (sampled, at debug level).
type intake struct {
	recv   ingest.Receiver
	topics topics
	m      *metrics
	log    *slog.Logger
	sample logSampler
}

func newIntake(recv ingest.Receiver, pattern string, log *slog.Logger, reg prometheus.Registerer, broker string) (*intake, error) {
	if recv == nil {
		return nil, fmt.Errorf("MQTT %s broker: no Receiver", broker)
	}
	ts, err := newTopics(pattern)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(reg, broker)
	if err != nil {
		return nil, err
	}
	return &intake{recv: recv, topics: ts, m: m, log: log}, nil
}

// receive hands one device message to the Receiver and returns its
// rejection, nil when it was accepted. A QoS 0 message is Async: nobody
// waits for its write. The payload is not copied: both brokers read each
// packet into a buffer of its own.
func (in *intake) receive(ctx context.Context, apikey, device string, payload []byte, qos byte, received time.Time) *ingest.Rejection {
	u := &ingest.Uplink{
		APIKey:    apikey,
		DeviceID:  device,
		Format:    ingest.JSON,
		Payload:   payload,
		Received:  received,
		Transport: "mqtt",
		Async:     qos == 0,
	}
	err := in.recv.Receive(ctx, u)
	if err == nil {
		return nil
	}
	r := ingest.AsRejection(err)
	in.reject(device, r)
	return r
}

// reject counts and logs a message refused for device.
func (in *intake) reject(device string, r *ingest.Rejection) {
	in.m.rejected[reasonClass(r.Status)].Inc()
	in.debug("MQTT message rejected", "device", device, "status", r.Status, "err", r.Reason)
}

// unknownTopic counts a message on a topic that names no device. The topic
// is not logged: it may hold an API key in a form zenne does not read.
func (in *intake) unknownTopic(client string) {
	in.m.unknown.Inc()
	in.debug("MQTT message on a topic that is not a device topic (/{apikey}/{device}/attrs, /json/{apikey}/{device}/attrs or the configured pattern): ignored", "client", client)
}

// debug logs at debug level, at most logsPerSecond lines a second.
func (in *intake) debug(msg string, args ...any) {
	ctx := context.Background()
	if !in.log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	ok, held := in.sample.allow(time.Now())
	if !ok {
		return
	}
	if held > 0 {
		args = append(args, "held_back", held)
	}
	in.log.Log(ctx, slog.LevelDebug, msg, args...)
}

// logsPerSecond bounds the debug lines about single messages: a fleet with a
// wrong mapping must not flood the log.
const logsPerSecond = 10

// logSampler lets logsPerSecond lines through each second and tells how many
// it held back since the last one it let through.
type logSampler struct {
	mu   sync.Mutex
	sec  int64
	n    int
	held int
}

func (l *logSampler) allow(now time.Time) (ok bool, held int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := now.Unix(); s != l.sec {
		l.sec, l.n = s, 0
	}
	if l.n >= logsPerSecond {
		l.held++
		return false, 0
	}
	l.n++
	held, l.held = l.held, 0
	return true, held
}

// The rejection reasons the metrics tell apart, by the Rejection's status.
var reasonClasses = [...]string{
	"bad_request",   // 400: malformed JSON, a value of the wrong type
	"unauthorized",  // 401: wrong key
	"forbidden",     // 403: the client may not publish for this device
	"not_found",     // 404: unknown device or API key
	"too_large",     // 413
	"unprocessable", // 422: e.g. a timestamp out of range
	"rate_limited",  // 429
	"unavailable",   // 503 and anything else: the store could not take it now
}

func reasonClass(status int) int {
	switch status {
	case http.StatusBadRequest:
		return 0
	case http.StatusUnauthorized:
		return 1
	case http.StatusForbidden:
		return 2
	case http.StatusNotFound:
		return 3
	case http.StatusRequestEntityTooLarge:
		return 4
	case http.StatusUnprocessableEntity:
		return 5
	case http.StatusTooManyRequests:
		return 6
	}
	return 7
}

type metrics struct {
	received    prometheus.Counter
	unknown     prometheus.Counter
	rejected    [len(reasonClasses)]prometheus.Counter
	connections prometheus.Gauge
	accepted    prometheus.Counter // connections
	refused     prometheus.Counter // connections
}

// newMetrics makes the metrics of one broker ("embedded" or "external", the
// label broker), registered with reg unless it is nil.
func newMetrics(reg prometheus.Registerer, broker string) (*metrics, error) {
	cl := prometheus.Labels{"broker": broker}
	rejected := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "zenne_mqtt_messages_rejected_total",
		Help: "MQTT device messages the ingest refused, by reason.", ConstLabels: cl}, []string{"reason"})
	conns := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "zenne_mqtt_connections_total",
		Help:        "MQTT connections: clients of the embedded broker, or zenne's connections to the external broker; accepted or refused.",
		ConstLabels: cl}, []string{"result"})
	m := &metrics{
		received: prometheus.NewCounter(prometheus.CounterOpts{Name: "zenne_mqtt_messages_received_total",
			Help: "MQTT messages received, on any topic.", ConstLabels: cl}),
		unknown: prometheus.NewCounter(prometheus.CounterOpts{Name: "zenne_mqtt_messages_unknown_topic_total",
			Help: "MQTT messages ignored because their topic names no device.", ConstLabels: cl}),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{Name: "zenne_mqtt_connections",
			Help: "Open MQTT connections: clients of the embedded broker, or 1 while connected to the external broker.", ConstLabels: cl}),
		accepted: conns.WithLabelValues("accepted"),
		refused:  conns.WithLabelValues("refused"),
	}
	for i, r := range reasonClasses {
		m.rejected[i] = rejected.WithLabelValues(r)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.received, m.unknown, rejected, m.connections, conns} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register MQTT metrics: %w", err)
			}
		}
	}
	return m, nil
}

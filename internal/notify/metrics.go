package notify

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	sent, failed, dropped, lost prometheus.Counter
	latency                     prometheus.Histogram
}

func newMetrics(s *Service, reg prometheus.Registerer) *metrics {
	m := &metrics{
		sent: prometheus.NewCounter(prometheus.CounterOpts{Name: "zenne_notifications_sent_total",
			Help: "Notifications their receiver accepted."}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{Name: "zenne_notification_attempts_failed_total",
			Help: "Attempts to deliver a notification that failed (it is retried)."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "zenne_notifications_dropped_total",
			Help: "Notifications given up after waiting longer than the maximum age for their receiver."}),
		lost: prometheus.NewCounter(prometheus.CounterOpts{Name: "zenne_notifier_changes_lost_total",
			Help: "Times the notifier found changes gone from the log before it matched them (should stay 0)."}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "zenne_notification_latency_seconds",
			Help:    "Time from a change's commit to its notification's delivery.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5, 30, 300}}),
	}
	if reg != nil {
		queued := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "zenne_notifications_queued",
			Help: "Notifications waiting for delivery."}, func() float64 { return float64(s.queued()) })
		subs := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "zenne_subscriptions",
			Help: "Subscriptions of all tenants."}, func() float64 { return float64(s.count()) })
		reg.MustRegister(m.sent, m.failed, m.dropped, m.lost, m.latency, queued, subs)
	}
	return m
}

func (s *Service) queued() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := 0
	for _, m := range s.entries {
		for _, e := range m {
			e.mu.Lock()
			n += e.queued
			e.mu.Unlock()
		}
	}
	return n
}

func (s *Service) count() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := 0
	for _, m := range s.entries {
		n += len(m)
	}
	return n
}

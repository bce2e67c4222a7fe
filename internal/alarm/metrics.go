package alarm

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	changes     prometheus.Counter
	evaluations prometheus.Counter
	opened      prometheus.Counter
	cleared     prometheus.Counter
	errors      prometheus.Counter
	actions     *prometheus.CounterVec
	writeErrors prometheus.Counter
}

func newMetrics(s *Service, reg prometheus.Registerer) *metrics {
	m := &metrics{
		changes:     prometheus.NewCounter(prometheus.CounterOpts{Name: "zenne_alarm_changes_total", Help: "Changes read from the bus by the alarm rules."}),
		evaluations: prometheus.NewCounter(prometheus.CounterOpts{Name: "zenne_alarm_evaluations_total", Help: "Rule evaluations on an entity's reading."}),
		opened:      prometheus.NewCounter(prometheus.CounterOpts{Name: "zenne_alarm_alerts_opened_total", Help: "Alerts opened by rules."}),
		cleared:     prometheus.NewCounter(prometheus.CounterOpts{Name: "zenne_alarm_alerts_cleared_total", Help: "Alerts cleared by rules."}),
		errors:      prometheus.NewCounter(prometheus.CounterOpts{Name: "zenne_alarm_rule_errors_total", Help: "Rule evaluations that failed on an entity's data."}),
		actions:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "zenne_alarm_actions_total", Help: "Staff actions on alerts."}, []string{"action"}),
		writeErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "zenne_alarm_alert_write_errors_total", Help: "Alert writes that failed and wait for a retry."}),
	}
	if reg != nil {
		reg.MustRegister(m.changes, m.evaluations, m.opened, m.cleared, m.errors, m.actions, m.writeErrors,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "zenne_alarm_rules", Help: "Alarm rules loaded."}, func() float64 {
				s.mu.Lock()
				defer s.mu.Unlock()
				return float64(len(s.rules))
			}))
	}
	return m
}

package alarm

import (
	"context"
	"time"
)

// Report is what a back-test found: when the rule would have fired over
// stored history.
type Report struct {
	Rule     string    `json:"rule"`
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	Entities int       `json:"entities"` // entities selected that have history of the attribute
	Readings int64     `json:"readings"` // readings replayed
	Firings  []Firing  `json:"firings"`  // in order of opening
	// Truncated is set when more firings happened than the report lists
	// (MaxFirings).
	Truncated bool          `json:"truncated,omitempty"`
	Elapsed   time.Duration `json:"-"`
}

// Firing is one alert a back-test would have opened.
type Firing struct {
	Entity  string    `json:"entity"`
	Opened  time.Time `json:"opened"`
	Cleared time.Time `json:"cleared,omitzero"` // zero: still active at To
	Value   float64   `json:"value"`           // the value that opened it
}

// MaxFirings bounds a back-test report.
const MaxFirings = 10000

// Backtest runs a rule (a body as for CreateRule, stored or not) over the
// tenant's stored history between from and to and reports when it would
// have fired. Nothing is written.
func (s *Service) Backtest(ctx context.Context, tenant string, body map[string]any, from, to time.Time) (*Report, error) {
	panic("not yet")
}

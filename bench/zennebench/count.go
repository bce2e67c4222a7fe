package main

import (
	"context"
	"net/http"
	"time"

	"github.com/zenne-city/zenne/bench/internal/benchutil"
)

type countResult struct {
	what    string
	matches int
	s       *stats
}

// countScenario times count=true&limit=0 queries, one at a time for 3 s
// (at least once, after one unmeasured; a query slower than 3 s is timed
// once): over one
// type (a tenth of the data set), over all ten types (the whole data set,
// which stands in for "1,000,000 entities of one type"), and over one type
// with a q filter (which no counter can answer).
func countScenario(client *http.Client, base string) ([]countResult, error) {
	cases := []struct{ what, typ string }{
		{"count=true, type=" + benchutil.Types[0], benchutil.Types[0]},
		{"count=true, all 10 types", allTypes()},
		{"count=true, type=" + benchutil.Types[0] + ", q=level>50", benchutil.Types[0] + "&q=level%3E50"},
	}
	// A count that walks the data set may take minutes; wait for it.
	slow := *client
	slow.Timeout = 30 * time.Minute
	client = &slow
	var out []countResult
	for _, c := range cases {
		url := base + "/ngsi-ld/v1/entities?count=true&limit=0&type=" + c.typ
		t0 := time.Now()
		matches, err := countQuery(client, url) // warm-up
		if err != nil {
			return nil, err
		}
		if d := time.Since(t0); d > 3*time.Second {
			// Too slow to repeat: the warm-up is the measurement.
			out = append(out, countResult{c.what, matches, &stats{benchutil.Stats{Elapsed: d, Lat: []time.Duration{d}}}})
			continue
		}
		s := runFor(context.Background(), 1, 0, 3*time.Second, func(w, i int) error {
			_, err := countQuery(client, url)
			return err
		})
		out = append(out, countResult{c.what, matches, s})
	}
	return out, nil
}

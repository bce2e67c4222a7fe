package main

import (
	"context"
	"net/http"
	"time"
)

type countResult struct {
	what    string
	matches int
	s       *stats
}

// countScenario times count=true&limit=0 queries, one at a time for 3 s
// (at least once, after one unmeasured): over one
// type (a tenth of the data set), over all ten types (the whole data set,
// which stands in for "1,000,000 entities of one type"), and over one type
// with a q filter (which no counter can answer).
func countScenario(client *http.Client, base string, cfg *config) ([]countResult, error) {
	cases := []struct{ what, typ string }{
		{"count=true, type=" + types[0], types[0]},
		{"count=true, all 10 types", allTypes()},
		{"count=true, type=" + types[0] + ", q=level>50", types[0] + "&q=level%3E50"},
	}
	var out []countResult
	for _, c := range cases {
		url := base + "/ngsi-ld/v1/entities?count=true&limit=0&type=" + c.typ
		matches, err := countQuery(client, url) // warm-up
		if err != nil {
			return nil, err
		}
		s := runFor(context.Background(), 1, 0, 3*time.Second, func(w, i int) error {
			_, err := countQuery(client, url)
			return err
		})
		out = append(out, countResult{c.what, matches, s})
	}
	return out, nil
}

package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/zenne-city/zenne/bench/internal/benchutil"
)

// load stores the data set by batch upsert (POST /entityOperations/upsert,
// cfg.batch entities a request, cfg.loadConc requests in flight) and prints
// progress. Its figure is the upsert scenario.
func load(ctx context.Context, cfg *config, client *http.Client, base string, out io.Writer) (*stats, error) {
	batches := (cfg.entities + cfg.batch - 1) / cfg.batch
	var done atomic.Int64
	stop := make(chan struct{})
	progress := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(progress)
		tick := time.NewTicker(5 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				n := done.Load()
				el := time.Since(start)
				fmt.Fprintf(out, "upsert loading: %d/%d entities, %s, %.0f entities/s\n", n, cfg.entities, el.Round(time.Second), float64(n)/el.Seconds())
			}
		}
	}()
	url := base + "/ngsi-ld/v1/entityOperations/upsert"
	s := runN(ctx, cfg.loadConc, batches, func(w, i int) error {
		from := i * cfg.batch
		to := min(from+cfg.batch, cfg.entities)
		if _, err := benchutil.Do(client, http.MethodPost, url, benchutil.BatchBody(from, to)); err != nil {
			return err
		}
		done.Add(int64(to - from))
		return nil
	})
	close(stop)
	<-progress
	if s.Errs > 0 {
		return nil, fmt.Errorf("load: %d of %d batches failed; first: %w", s.Errs, batches, s.FirstErr)
	}
	fmt.Fprintf(out, "upsert batches of %d, %d in flight: %d entities in %s = %.0f entities/s; per batch p50 %s p95 %s p99 %s\n",
		cfg.batch, cfg.loadConc, cfg.entities, s.Elapsed.Round(time.Millisecond), float64(cfg.entities)/s.Elapsed.Seconds(),
		ms(s.Pct(50)), ms(s.Pct(95)), ms(s.Pct(99)))
	return s, nil
}

// countAll is the number of entities in the store (the cardinality of a
// bitmap of the query index).
func countAll(client *http.Client, base string) (int, error) {
	return countQuery(client, base+"/ngsi-ld/v1/entities?count=true&limit=0&local=true")
}

// countQuery runs a count=true query and returns NGSILD-Results-Count.
func countQuery(client *http.Client, url string) (int, error) {
	resp, err := benchutil.Do(client, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(resp.Header.Get("NGSILD-Results-Count"))
	if err != nil {
		return 0, fmt.Errorf("GET %s: NGSILD-Results-Count %q", url, resp.Header.Get("NGSILD-Results-Count"))
	}
	return n, nil
}

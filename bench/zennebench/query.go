package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"time"

	"github.com/zenne-city/zenne/bench/internal/benchutil"
)

// queryURL is a query for one type, a q filter and the entities within 500 m
// of a random point of the region (the default page of 20 entities).
func queryURL(base string, r *rand.Rand, count bool) string {
	lon, lat := benchutil.RandomPoint(r)
	v := url.Values{}
	v.Set("type", benchutil.Types[r.IntN(len(benchutil.Types))])
	v.Set("q", "level>50")
	v.Set("georel", "near;maxDistance==500")
	v.Set("geometry", "Point")
	v.Set("coordinates", fmt.Sprintf("[%.5f,%.5f]", lon, lat))
	if count {
		v.Set("count", "true")
	}
	return base + "/ngsi-ld/v1/entities?" + v.Encode()
}

func queryScenario(ctx context.Context, cfg *config, client *http.Client, base string) *stats {
	return queryLoad(ctx, client, base, cfg.queryConc, 2, cfg.warmup, cfg.duration)
}

// queryLoad sends the scenario's queries on workers clients, each drawing
// its points from its own random stream (seeded with stream), for d after
// warmup.
func queryLoad(ctx context.Context, client *http.Client, base string, workers int, stream uint64, warmup, d time.Duration) *stats {
	rngs := make([]*rand.Rand, workers)
	for w := range rngs {
		rngs[w] = rand.New(rand.NewPCG(uint64(w), stream))
	}
	return runFor(ctx, workers, warmup, d, func(w, i int) error {
		_, err := benchutil.Do(client, http.MethodGet, queryURL(base, rngs[w], false), nil)
		return err
	})
}

// queryMatches is the average number of matches of the scenario's queries.
func queryMatches(client *http.Client, base string) (float64, error) {
	r := rand.New(rand.NewPCG(99, 2))
	total := 0
	const n = 50
	for range n {
		m, err := countQuery(client, queryURL(base, r, true))
		if err != nil {
			return 0, err
		}
		total += m
	}
	return float64(total) / n, nil
}

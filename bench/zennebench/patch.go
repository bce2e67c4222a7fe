package main

import (
	"context"
	"math/rand/v2"
	"net/http"
	"net/url"

	"github.com/zenne-city/zenne/bench/internal/benchutil"
)

// patchScenario sends PATCH /entities/{id}/attrs on cfg.concurrency
// keep-alive clients to random entities of the data set. The server answers
// 204 after the commit, so every update counted is durable.
func patchScenario(ctx context.Context, cfg *config, client *http.Client, base string) *stats {
	rngs := make([]*rand.Rand, cfg.concurrency)
	for w := range rngs {
		rngs[w] = rand.New(rand.NewPCG(uint64(w), 1))
	}
	return runFor(ctx, cfg.concurrency, cfg.warmup, cfg.duration, func(w, i int) error {
		id := benchutil.EntityID(rngs[w].IntN(cfg.entities))
		_, err := benchutil.Do(client, http.MethodPatch, base+"/ngsi-ld/v1/entities/"+url.PathEscape(id)+"/attrs", benchutil.PatchBody(i))
		return err
	})
}

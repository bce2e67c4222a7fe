// Package ratelimit keeps a token bucket (golang.org/x/time/rate) per key:
// per address for password checks, per API key, user or address for
// requests. Buckets that are full again are forgotten, so the map holds
// only the keys that were busy lately.
package ratelimit

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Buckets is a token bucket per key, each of rate r with bursts of burst.
type Buckets struct {
	r     rate.Limit
	burst int

	mu    sync.Mutex
	m     map[string]*rate.Limiter
	swept time.Time
}

const (
	// sweepEvery bounds how often full buckets are looked for.
	sweepEvery = time.Minute
	// maxKeys is how many buckets are kept before a sweep is forced.
	maxKeys = 100000
)

// New returns buckets of rate r (events per second) and bursts of burst.
func New(r rate.Limit, burst int) *Buckets {
	return &Buckets{r: r, burst: burst, m: map[string]*rate.Limiter{}}
}

// Take takes a token from key's bucket at now; when none is left it tells
// how long until one is.
func (b *Buckets) Take(key string, now time.Time) (time.Duration, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if now.Sub(b.swept) > sweepEvery || len(b.m) >= maxKeys {
		b.sweep(now)
	}
	l := b.m[key]
	if l == nil {
		l = rate.NewLimiter(b.r, b.burst)
		b.m[key] = l
	}
	res := l.ReserveN(now, 1)
	if !res.OK() {
		return time.Minute, false
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return d, false
	}
	return 0, true
}

// sweep forgets the buckets that are full again (they would allow as much
// as new ones), or every bucket if that frees too little.
func (b *Buckets) sweep(now time.Time) {
	b.swept = now
	for k, l := range b.m {
		if l.TokensAt(now) >= float64(b.burst) {
			delete(b.m, k)
		}
	}
	if len(b.m) >= maxKeys*9/10 {
		b.m = map[string]*rate.Limiter{}
	}
}

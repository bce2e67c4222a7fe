package access

import (
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/zenne-city/zenne/internal/auth"
)

// Limits are the request rate limits. A zero rate is no limit.
type Limits struct {
	// PerKey limits each API key or user (requests/s, with bursts of
	// KeyBurst).
	PerKey   rate.Limit
	KeyBurst int
	// PerAddress limits anonymous requests per client address (requests/s,
	// with bursts of AddressBurst).
	PerAddress   rate.Limit
	AddressBurst int
}

// limiter keeps a token bucket per key, user or address. Buckets idle
// long enough to be full again are swept.
type limiter struct {
	lim Limits
	now func() time.Time

	mu      sync.Mutex
	buckets map[string]*rate.Limiter
	swept   time.Time
}

// sweepEvery bounds how often idle buckets are looked for; maxBuckets how
// many are kept before a sweep is forced.
const (
	sweepEvery = time.Minute
	maxBuckets = 100000
)

func newLimiter(lim Limits, now func() time.Time) *limiter {
	if lim.PerKey > 0 && lim.KeyBurst <= 0 {
		lim.KeyBurst = max(1, int(2*lim.PerKey))
	}
	if lim.PerAddress > 0 && lim.AddressBurst <= 0 {
		lim.AddressBurst = max(1, int(2*lim.PerAddress))
	}
	return &limiter{lim: lim, now: now, buckets: map[string]*rate.Limiter{}}
}

// allow takes a token for p's request r; when none is left it tells how
// long to wait.
func (l *limiter) allow(p *auth.Principal, r *http.Request) (time.Duration, bool) {
	var id string
	var lim rate.Limit
	var burst int
	switch p.Kind() {
	case auth.Anonymous:
		id, lim, burst = "a "+auth.RemoteHost(r), l.lim.PerAddress, l.lim.AddressBurst
	case auth.KeyPrincipal:
		id, lim, burst = "k "+p.KeyID(), l.lim.PerKey, l.lim.KeyBurst
	default:
		id, lim, burst = "u "+p.User(), l.lim.PerKey, l.lim.KeyBurst
	}
	if lim <= 0 {
		return 0, true
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > sweepEvery || len(l.buckets) >= maxBuckets {
		l.sweep(now)
	}
	b := l.buckets[id]
	if b == nil {
		b = rate.NewLimiter(lim, burst)
		l.buckets[id] = b
	}
	res := b.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return d, false
	}
	return 0, true
}

// sweep forgets the buckets that are full again: they would allow as much
// as new ones.
func (l *limiter) sweep(now time.Time) {
	l.swept = now
	for id, b := range l.buckets {
		if b.TokensAt(now) >= float64(b.Burst()) {
			delete(l.buckets, id)
		}
	}
}

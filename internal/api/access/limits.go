package access

import (
	"net/http"
	"time"

	"golang.org/x/time/rate"

	"github.com/zenne-city/zenne/internal/auth"
	"github.com/zenne-city/zenne/internal/ratelimit"
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

// limiter keeps a token bucket per key or user, and one per address of
// anonymous callers.
type limiter struct {
	now             func() time.Time
	perKey, perAddr *ratelimit.Buckets // nil: no limit
}

func newLimiter(lim Limits, now func() time.Time) *limiter {
	l := &limiter{now: now}
	if lim.PerKey > 0 {
		l.perKey = ratelimit.New(lim.PerKey, burst(lim.KeyBurst, lim.PerKey))
	}
	if lim.PerAddress > 0 {
		l.perAddr = ratelimit.New(lim.PerAddress, burst(lim.AddressBurst, lim.PerAddress))
	}
	return l
}

// burst is b, or twice the rate r when b is not given.
func burst(b int, r rate.Limit) int {
	if b > 0 {
		return b
	}
	return max(1, int(2*r))
}

// allow takes a token for p's request r; when none is left it tells how
// long to wait.
func (l *limiter) allow(p *auth.Principal, r *http.Request) (time.Duration, bool) {
	var b *ratelimit.Buckets
	var key string
	switch p.Kind() {
	case auth.Anonymous:
		b, key = l.perAddr, "a "+auth.RemoteHost(r)
	case auth.KeyPrincipal:
		b, key = l.perKey, "k "+p.KeyID()
	default:
		b, key = l.perKey, "u "+p.User()
	}
	if b == nil {
		return 0, true
	}
	return b.Take(key, l.now())
}

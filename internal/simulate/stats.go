package simulate

import (
	"context"
	"errors"
	"maps"
	"math"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// SendError is a failed send with its kind, the key errors are counted by
// ("connect", "timeout", "http 429", "rejected 422", "mqtt not connected"...).
type SendError struct {
	Kind string
	Err  error
}

func (e *SendError) Error() string { return e.Err.Error() }
func (e *SendError) Unwrap() error { return e.Err }

// errorKind classifies err for the counters.
func errorKind(err error) string {
	var se *SendError
	switch {
	case errors.As(err, &se):
		return se.Kind
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	return "error"
}

// Percentiles summarise latencies.
type Percentiles struct {
	Count              int64
	P50, P95, P99, Max time.Duration
}

// ProbeStats are the latency probe's results: publish -> entity readable.
type ProbeStats struct {
	Percentiles
	// Timeouts are probes whose value was not readable in time; Failed
	// ones could not be sent or read.
	Timeouts, Failed int64
	// LastError is the latest failure, for the user.
	LastError string
	// Refused says the latest failure was the API refusing the reads'
	// credentials (401) or their rights (403): ProbeConfig.Key is missing,
	// wrong, or of a user who may not read the tenant.
	Refused bool
}

// Snapshot is how a run stands.
type Snapshot struct {
	Elapsed time.Duration
	// SimTime is the simulated time the readings follow.
	SimTime time.Time
	// Sent counts messages accepted by the sender; Readings the readings
	// in them (a datalogger's array holds several); Silent the messages
	// silent devices did not send; Errors the failed sends.
	Sent, Readings, Silent, Errors int64
	// Rate is messages/s: over the last second in progress reports, over
	// the whole run in the summary.
	Rate  float64
	Probe ProbeStats
}

// Summary is the result of a run.
type Summary struct {
	Snapshot
	TargetRate float64 // 0: realistic intervals
	// ErrorKinds counts failed sends by kind, ErrorSamples holds the first
	// error message of each kind.
	ErrorKinds   map[string]int64
	ErrorSamples map[string]string
	// Latency is the sender's: an HTTP request's round trip, an MQTT
	// publish (QoS 1: until PUBACK; QoS 0: until written), a Receiver call.
	Latency Percentiles
	// Behind counts the times the rate limiter fell more than a second
	// behind its schedule and skipped ahead: the sender or the server is
	// the limit.
	Behind int64
}

type counters struct {
	sent, readings, silent, errors, behind atomic.Int64

	mu        sync.Mutex
	errKinds  map[string]int64
	errSample map[string]string

	latency histogram
}

func newCounters() *counters {
	return &counters{errKinds: make(map[string]int64), errSample: make(map[string]string)}
}

func (c *counters) fail(err error) {
	c.errors.Add(1)
	k := errorKind(err)
	c.mu.Lock()
	c.errKinds[k]++
	if _, ok := c.errSample[k]; !ok {
		c.errSample[k] = err.Error()
	}
	c.mu.Unlock()
}

func (c *counters) errorKinds() (map[string]int64, map[string]string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.errKinds), maps.Clone(c.errSample)
}

// histogram counts durations in logarithmic buckets 4% apart from 1µs to
// about a minute, without locks.
type histogram struct {
	n, max atomic.Int64
	b      [histBuckets]atomic.Int64
}

const (
	histBuckets = 460
	histGrowth  = 1.04
)

func (h *histogram) record(d time.Duration) {
	i := 0
	if d > time.Microsecond {
		i = min(int(math.Log(float64(d)/float64(time.Microsecond))/math.Log(histGrowth)), histBuckets-1)
	}
	h.b[i].Add(1)
	h.n.Add(1)
	for {
		m := h.max.Load()
		if int64(d) <= m || h.max.CompareAndSwap(m, int64(d)) {
			break
		}
	}
}

func (h *histogram) percentiles() Percentiles {
	p := Percentiles{Count: h.n.Load(), Max: time.Duration(h.max.Load())}
	if p.Count == 0 {
		return p
	}
	at := func(q float64) time.Duration {
		want := int64(math.Ceil(q * float64(p.Count)))
		var seen int64
		for i := range h.b {
			seen += h.b[i].Load()
			if seen >= want {
				d := time.Duration(float64(time.Microsecond) * math.Pow(histGrowth, float64(i)+0.5))
				return min(d, p.Max)
			}
		}
		return p.Max
	}
	p.P50, p.P95, p.P99 = at(0.50), at(0.95), at(0.99)
	return p
}

// percentilesOf computes exact percentiles of a few latencies.
func percentilesOf(ds []time.Duration) Percentiles {
	p := Percentiles{Count: int64(len(ds))}
	if len(ds) == 0 {
		return p
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	at := func(q float64) time.Duration {
		i := int(math.Ceil(q*float64(len(s)))) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	p.P50, p.P95, p.P99, p.Max = at(0.50), at(0.95), at(0.99), s[len(s)-1]
	return p
}

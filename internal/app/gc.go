package app

import (
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// TuneGC lets the heap grow to three times the live data between
// collections (GOGC=200) unless the operator set GOGC: zenne's garbage is
// mostly short-lived request data, and the measured PATCH rate rises 15-20%
// (docs/PERFORMANCE.md). With a large live heap (the embedded store's query
// index holds every entity: about 360 MiB at a million entities) that would
// cost gigabytes, so unless the operator set GOMEMLIMIT, a soft memory limit
// keeps the heap under twice the live heap once it passes 1.125 GiB; it is
// raised as the live heap grows, so the collector does not run back to back
// (a limit closer to the live heap made it run most of the time after a
// bulk load: measured, docs/PERFORMANCE.md).
// The zenne command and the benchmark both call it, so the benchmark
// measures the server as shipped.
func TuneGC() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(200)
	}
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		go limitHeap(time.Second)
	}
}

// minHeapLimit is the least soft memory limit. At 1 GiB, with a million
// entities' query index (about 550 MiB live), the collector made a request
// wait 200 ms now and then; at 1.125 GiB it did not, for 60 MiB more RSS
// (docs/PERFORMANCE.md).
const minHeapLimit = 1152 << 20

// heapLimit is the soft memory limit for a live heap of live bytes.
func heapLimit(live uint64) int64 {
	return int64(max(minHeapLimit, 2*live))
}

// limitHeap sets the soft memory limit from the live heap every interval.
func limitHeap(interval time.Duration) {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	last := int64(math.MaxInt64)
	for {
		metrics.Read(sample)
		if sample[0].Value.Kind() == metrics.KindUint64 {
			if l := heapLimit(sample[0].Value.Uint64()); l != last {
				debug.SetMemoryLimit(l)
				last = l
			}
		}
		time.Sleep(interval)
	}
}

package app

import (
	"os"
	"runtime/debug"
)

// TuneGC lets the heap grow to three times the live data between
// collections (GOGC=200) unless the operator set GOGC. zenne's garbage is
// mostly short-lived request data; the measured PATCH rate rises 15-20% for
// a few hundred MiB more heap at a million entities (docs/PERFORMANCE.md).
// The zenne command and the benchmark both call it, so the benchmark
// measures the server as shipped.
func TuneGC() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(200)
	}
}

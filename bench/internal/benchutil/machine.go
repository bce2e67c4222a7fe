// Package benchutil holds what the benchmark programs under bench/ share.
package benchutil

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// CPUMeter tells how much CPU this process got while a scenario ran: on a
// shared machine the figures only mean something beside it.
type CPUMeter struct {
	wall time.Time
	cpu  time.Duration
}

// StartCPU starts measuring.
func StartCPU() CPUMeter { return CPUMeter{wall: time.Now(), cpu: processCPU()} }

// String is e.g. "1.85 of 2 cores, loadavg 2.10".
func (m CPUMeter) String() string {
	used := (processCPU() - m.cpu).Seconds() / time.Since(m.wall).Seconds()
	return fmt.Sprintf("this process used %.2f of %d cores, loadavg %s", used, runtime.NumCPU(), loadavg())
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loadavg is the 1-minute load average, or "?" off Linux.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

// Verdict is a report's "Met" column.
func Verdict(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

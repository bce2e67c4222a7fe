package benchutil

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

// Env is where and on what a benchmark ran, for the header of its report:
// figures from different machines or commits are not comparable.
type Env struct {
	CPU     string // model name, from /proc/cpuinfo
	Cores   int    // runtime.NumCPU
	Memory  uint64 // bytes, from /proc/meminfo (0 when unknown)
	Go      string // runtime.Version
	OS      string
	Commit  string // short hash, "+dirty" when the tree had changes; "?" when unknown
	Date    time.Time
	LoadAvg string // 1, 5 and 15 minutes when the run started
}

// Environment describes this machine, this build and now.
func Environment() Env {
	e := Env{Cores: runtime.NumCPU(), Go: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH,
		Date: time.Now(), CPU: cpuModel(), Memory: memTotal(), Commit: commit(), LoadAvg: loadavg3()}
	return e
}

// Machine is e.g. "2 vCPU (Intel Xeon ...), 7.8 GiB, linux/amd64".
func (e Env) Machine() string {
	s := fmt.Sprintf("%d CPUs", e.Cores)
	if e.CPU != "" {
		s += " (" + e.CPU + ")"
	}
	if e.Memory > 0 {
		s += fmt.Sprintf(", %.1f GiB", float64(e.Memory)/(1<<30))
	}
	return s + ", " + e.OS
}

// String is the report header's lines.
func (e Env) String() string {
	return fmt.Sprintf("**Machine:** %s; load average %s at the start\n**Go:** %s; **commit:** `%s`; **date:** %s",
		e.Machine(), e.LoadAvg, e.Go, e.Commit, e.Date.Format("2006-01-02 15:04 MST"))
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.Join(strings.Fields(v), " ")
		}
	}
	return ""
}

func memTotal() uint64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
			kb, _ := strconv.ParseUint(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

func loadavg3() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// commit is the build's VCS revision (go build stamps it), else what git
// says of the working directory (go run does not stamp it).
func commit() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		var rev string
		var dirty bool
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if rev != "" {
			if len(rev) > 7 {
				rev = rev[:7]
			}
			if dirty {
				rev += "+dirty"
			}
			return rev
		}
	}
	out, err := exec.Command("git", "rev-parse", "--short=7", "HEAD").Output()
	if err != nil {
		return "?"
	}
	rev := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(strings.TrimSpace(string(st))) > 0 {
		rev += "+dirty"
	}
	return rev
}

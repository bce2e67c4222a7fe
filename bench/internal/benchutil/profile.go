package benchutil

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
)

// Profiled runs f under the CPU profiler when dir is not "" (one file per
// name, dir/name.pprof), and says on out how much CPU the process got
// meanwhile.
func Profiled(dir, name string, out io.Writer, f func() error) error {
	m := StartCPU()
	defer func() { fmt.Fprintf(out, "       %s: %s\n", name, m) }()
	if dir == "" {
		return f()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	file, err := os.Create(filepath.Join(dir, name+".pprof"))
	if err != nil {
		return err
	}
	defer file.Close()
	if err := pprof.StartCPUProfile(file); err != nil {
		return err
	}
	defer pprof.StopCPUProfile()
	return f()
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/zenne-city/zenne/bench/internal/benchutil"
)

type startupResult struct {
	startup            time.Duration // exec to /health 200 (ready: the query index is built)
	firstQuery         time.Duration // exec to the first query (a count with q) answered
	rssReady, rssAfter int64         // bytes: VmRSS when ready, and after queries and a count
	hwm                int64         // VmHWM at the end
	dbBytes            int64         // the store's files on disk
}

// startupScenario runs the zenne binary on the data directory already
// holding the data set: start-up is the time from exec to the first 200 on
// /health (which waits for the query index) and to the first query
// answered; memory is the process's VmRSS then and after some queries.
// key is the administrator's API key the in-process server took.
func startupScenario(ctx context.Context, cfg *config, dataDir, key string, out io.Writer) (*startupResult, error) {
	bin := cfg.binary
	if bin == "" {
		tmp, err := os.MkdirTemp("", "zennebench-bin-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		bin = filepath.Join(tmp, "zenne")
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/zenne")
		if msg, err := build.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build ./cmd/zenne (run zennebench from the repository root, or pass -zenne): %v\n%s", err, msg)
		}
	}
	res := &startupResult{dbBytes: dirSize(dataDir)}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(bin, "serve", "--listen", addr, "--mqtt-listen", "", "--data", dataDir, "--log-level", "warn")
	cmd.Env = benchutil.ProcessEnv(append(os.Environ(), "ZENNE_STORE="), key)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}()

	base := "http://" + addr
	probe := &http.Client{Timeout: time.Second}
	for {
		resp, err := probe.Get(base + "/health")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-exited:
			exited <- err
			return nil, fmt.Errorf("zenne exited while starting: %v", err)
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
		if time.Since(start) > 5*time.Minute {
			return nil, errors.New("zenne was not healthy after 5 minutes")
		}
	}
	res.startup = time.Since(start)
	pid := cmd.Process.Pid
	if res.rssReady, err = procStatus(pid, "VmRSS"); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "startup %s to /health 200 with %d entities (%.0f MiB on disk); VmRSS %.0f MiB\n",
		res.startup.Round(time.Millisecond), cfg.entities, mib(res.dbBytes), mib(res.rssReady))

	// Some work, so the memory figure covers a serving process.
	client := benchutil.WithKey(benchutil.NewClient(cfg.queryConc), key)
	defer client.CloseIdleConnections()
	if _, err := countQuery(client, base+"/ngsi-ld/v1/entities?count=true&limit=0&type="+benchutil.Types[0]+"&q=level%3E50"); err != nil {
		return nil, err
	}
	res.firstQuery = time.Since(start)
	fmt.Fprintf(out, "startup %s to the first query answered\n", res.firstQuery.Round(time.Millisecond))
	s := queryLoad(ctx, client, base, cfg.queryConc, 3, 0, 5*time.Second)
	if res.rssAfter, err = procStatus(pid, "VmRSS"); err != nil {
		return nil, err
	}
	if res.hwm, err = procStatus(pid, "VmHWM"); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "startup after a count and 5 s of queries (%s): VmRSS %.0f MiB, VmHWM %.0f MiB\n",
		s, mib(res.rssAfter), mib(res.hwm))
	return res, nil
}

// procStatus reads a kB field of /proc/<pid>/status, in bytes.
func procStatus(pid int, field string) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read %s (Linux only): %w", field, err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse %s %q: %w", field, v, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

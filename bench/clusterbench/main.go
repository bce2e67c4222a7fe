// Command clusterbench measures issue 5's scale-out goal: with three zenne
// instances on this one machine, sharing one PostgreSQL database and one NATS
// JetStream stream, the total update rate is at least one instance's.
//
//	go run ./bench/clusterbench                            # 1 then 3 instances
//	go run ./bench/clusterbench -instances 1,3,1,3 -duration 20s
//
// It builds the zenne binary once, then for every count N of -instances:
// empties the -store database (DROP and CREATE: it must be a database the
// benchmark may destroy), starts N `zenne serve` processes on a stream of
// their own, loads -entities entities through the first by batch upsert,
// and sends PATCH /ngsi-ld/v1/entities/{id}/attrs from -concurrency
// keep-alive clients, client i to instance i%N, for -duration after
// -warmup. Only 204 counts as an update; any other answer is an error. The
// entities and the PATCH body are zennebench's patch scenario's, so the
// one-instance figure compares with its PostgreSQL row. The last thing
// printed is a markdown table for docs/PERFORMANCE.md.
//
// Run it from inside the repository (go build ./cmd/zenne runs at the
// module's root). PostgreSQL, NATS, the zenne processes and the client all
// share the machine's cores, so the CPU each used is printed beside the rates.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/zenne-city/zenne/bench/internal/benchutil"
)

type config struct {
	store            string // PostgreSQL URL of the database the instances share
	bus              string // NATS URL
	entities         int
	concurrency      int
	duration, warmup time.Duration
	instances        []int // the instance counts, in the order they run
	cpuProfile       string
}

// batch is the number of entities per upsert while loading, as zennebench's.
const batch = 1000

// loadConc is the number of upsert requests in flight while loading.
const loadConc = 4

func main() {
	cfg := &config{}
	var instances string
	flag.StringVar(&cfg.store, "store", "postgres://postgres@127.0.0.1:5432/cluster?sslmode=disable",
		"PostgreSQL URL of the database the instances share; it is DROPPED and created again before every instance count")
	flag.StringVar(&cfg.bus, "bus", "nats://127.0.0.1:4222", "NATS server with JetStream")
	flag.IntVar(&cfg.entities, "entities", 10_000, "entities loaded and updated")
	flag.IntVar(&cfg.concurrency, "concurrency", 64, "keep-alive PATCH clients, spread over the instances")
	flag.DurationVar(&cfg.duration, "duration", 10*time.Second, "measured time for each instance count")
	flag.DurationVar(&cfg.warmup, "warmup", 2*time.Second, "unmeasured warm-up before each measurement")
	flag.StringVar(&instances, "instances", "1,3", "instance counts to measure, in order (e.g. 1,3,1,3 to alternate)")
	flag.StringVar(&cfg.cpuProfile, "cpuprofile", "", "directory where each instance writes a CPU profile of its whole run (<run>-<instance>.pprof)")
	flag.Parse()
	var err error
	if cfg.instances, err = parseInstances(instances); err == nil && (cfg.entities <= 0 || cfg.concurrency <= 0 || cfg.duration <= 0 || cfg.warmup < 0) {
		err = errors.New("-entities, -concurrency and -duration must be positive, -warmup not negative")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "clusterbench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, cfg, os.Stdout)
	stop()
	if errors.Is(err, context.Canceled) {
		err = errors.New("interrupted (the zenne processes were stopped)")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "clusterbench:", err)
		os.Exit(1)
	}
}

func parseInstances(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-instances %q: give instance counts such as 1,3", s)
		}
		out = append(out, n)
	}
	return out, nil
}

func run(ctx context.Context, cfg *config, out io.Writer) error {
	// The services first, so a missing one is found in a second, not after
	// the build (runCluster empties the database again before every count).
	if err := checkBus(ctx, cfg.bus); err != nil {
		return err
	}
	if err := resetDatabase(ctx, cfg.store); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "clusterbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin, err := buildZenne(ctx, tmp, out)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "clusterbench: instances %v, %d entities, %d clients, %s after %s warm-up, %d cores\n",
		cfg.instances, cfg.entities, cfg.concurrency, cfg.duration, cfg.warmup, runtime.NumCPU())

	rep := &report{cfg: cfg}
	stamp := time.Now().Format("20060102T150405")
	for k, n := range cfg.instances {
		// Every count starts from an empty database and an empty stream,
		// so the runs are alike whatever ran before.
		stream := fmt.Sprintf("CLUSTERBENCH_%s_%d_N%d", stamp, k, n)
		res, err := runCluster(ctx, cfg, bin, filepath.Join(tmp, fmt.Sprintf("run%d", k)), n, stream, out)
		if err != nil {
			return fmt.Errorf("%d instance(s): %w", n, err)
		}
		rep.results = append(rep.results, res)
	}
	rep.print(out)
	return nil
}

// runCluster measures one instance count n: empty database, n processes,
// load, PATCH load; every process is stopped and the stream deleted on the
// way out, whatever happened.
func runCluster(ctx context.Context, cfg *config, bin, dir string, n int, stream string, out io.Writer) (res *result, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := resetDatabase(ctx, cfg.store); err != nil {
		return nil, err
	}
	defer deleteStream(cfg.bus, stream, out)
	var procs []*proc
	defer func() {
		if stopErr := stopAll(procs, out); stopErr != nil && err == nil {
			err = stopErr
		}
	}()

	// One after the other: the first creates the schema in the empty
	// database, and the administrator with this key, and the others find
	// them there.
	key := benchutil.AdminKey()
	start := time.Now()
	for i := range n {
		var profile string
		if cfg.cpuProfile != "" {
			profile = filepath.Join(cfg.cpuProfile, fmt.Sprintf("%s-%d.pprof", filepath.Base(dir), i))
		}
		p, err := startZenne(ctx, bin, filepath.Join(dir, strconv.Itoa(i)), key, profile,
			"--store", cfg.store, "--bus", cfg.bus, "--bus-stream", stream)
		if p != nil {
			procs = append(procs, p)
		}
		if err != nil {
			return nil, err
		}
	}
	urls := make([]string, n)
	for i, p := range procs {
		urls[i] = p.url
	}
	fmt.Fprintf(out, "N=%d: %d instance(s) healthy in %s (stream %s): %s\n", n, n, time.Since(start).Round(time.Millisecond), stream, strings.Join(urls, " "))

	client := benchutil.WithKey(benchutil.NewClient(max(cfg.concurrency, loadConc)), key)
	defer client.CloseIdleConnections()
	if err := load(ctx, cfg, client, urls, n, out); err != nil {
		return nil, err
	}
	res, err = measure(ctx, cfg, client, procs, out)
	if err != nil {
		return nil, err
	}
	// A process that died under load would make the figures meaningless.
	for i, p := range procs {
		if p.exited() {
			return nil, fmt.Errorf("instance %d (%s) exited during the run: %v\n%s", i, p.url, p.waitErr, p.logTail())
		}
	}
	return res, nil
}

// buildZenne compiles ./cmd/zenne of the module the current directory is in.
func buildZenne(ctx context.Context, tmp string, out io.Writer) (string, error) {
	gomod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(gomod))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run clusterbench from inside the zenne repository: it builds ./cmd/zenne")
	}
	bin := filepath.Join(tmp, "zenne")
	start := time.Now()
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/zenne")
	build.Dir = filepath.Dir(mod)
	if msg, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/zenne in %s: %v\n%s", build.Dir, err, msg)
	}
	fmt.Fprintf(out, "built zenne from %s in %s\n", build.Dir, time.Since(start).Round(time.Millisecond))
	return bin, nil
}

// proc is one `zenne serve` process.
type proc struct {
	cmd     *exec.Cmd
	url     string
	logPath string
	done    chan struct{} // closed when the process has exited
	waitErr error         // what Wait returned; read after done is closed
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// logTail is the end of the process's log, for error messages.
func (p *proc) logTail() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// startZenne runs `zenne serve` on a free port of 127.0.0.1 with its own
// data directory (the store is the shared PostgreSQL database; the
// directory only keeps zenne from writing into the current one) and waits
// until /health answers 200. key is given as ZENNE_ADMIN_KEY, the
// administrator's key in a new database; profile, if set, is the file of
// its CPU profile (ZENNE_CPU_PROFILE). The process is returned even on
// error, so the caller stops it.
func startZenne(ctx context.Context, bin, dir, key, profile string, args ...string) (*proc, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	logPath := filepath.Join(dir, "zenne.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child has its own descriptor
	args = append([]string{"serve", "--listen", addr, "--mqtt-listen", "", "--data", dir, "--log-level", "info"}, args...)
	cmd := exec.Command(bin, args...)
	cmd.Env = benchutil.ProcessEnv(envWithoutZenne(), key) // only the flags (and the key) configure the instances
	if profile != "" {
		cmd.Env = append(cmd.Env, "ZENNE_CPU_PROFILE="+profile)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start zenne: %w", err)
	}
	p := &proc{cmd: cmd, url: "http://" + addr, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()

	probe := &http.Client{Timeout: time.Second}
	deadline := time.After(60 * time.Second)
	for {
		resp, err := probe.Get(p.url + "/health")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		select {
		case <-p.done:
			return p, fmt.Errorf("zenne on %s exited before it was healthy: %v\n%s", addr, p.waitErr, p.logTail())
		case <-deadline:
			return p, fmt.Errorf("zenne on %s was not healthy within 60s:\n%s", addr, p.logTail())
		case <-ctx.Done():
			return p, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// stopAll sends SIGTERM to every process still running and waits for them
// (SIGKILL after 30 s). A process that does not exit cleanly is an error.
func stopAll(procs []*proc, out io.Writer) error {
	for _, p := range procs {
		if !p.exited() {
			p.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	var errs []error
	deadline := time.After(30 * time.Second)
	for i, p := range procs {
		select {
		case <-p.done:
		case <-deadline:
			fmt.Fprintf(out, "instance %d (%s) still running 30s after SIGTERM: killing it\n", i, p.url)
			p.cmd.Process.Kill()
			<-p.done
		}
		if p.waitErr != nil {
			errs = append(errs, fmt.Errorf("instance %d (%s) stopped with %v\n%s", i, p.url, p.waitErr, p.logTail()))
		}
	}
	return errors.Join(errs...)
}

func envWithoutZenne() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ZENNE_") {
			env = append(env, kv)
		}
	}
	return env
}

// freePort asks the kernel for a free port. Another program could take it
// before zenne listens on it; zenne then exits and startZenne says so.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// resetDatabase drops the database of storeURL and creates it again, empty,
// through the server's postgres (or else test) database.
func resetDatabase(ctx context.Context, storeURL string) error {
	u, err := url.Parse(storeURL)
	if err != nil {
		return fmt.Errorf("-store: %w", err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	switch {
	case name == "" || strings.Contains(name, "/"):
		return fmt.Errorf("-store %q: name the database in the path, e.g. postgres://postgres@127.0.0.1:5432/cluster", storeURL)
	case name == "postgres" || name == "test" || strings.HasPrefix(name, "template"):
		return fmt.Errorf("-store: the benchmark drops its database, and %q is not one to drop", name)
	}
	var conn *pgx.Conn
	var errs []error
	for _, admin := range []string{"postgres", "test"} {
		a := *u
		a.Path = "/" + admin
		c, err := pgx.Connect(ctx, a.String())
		if err == nil {
			conn = c
			break
		}
		errs = append(errs, fmt.Errorf("connect to database %s: %w", admin, err))
	}
	if conn == nil {
		return fmt.Errorf("-store: %w", errors.Join(errs...))
	}
	defer conn.Close(context.Background())
	ident := pgx.Identifier{name}.Sanitize()
	// FORCE ends the sessions a previous run may have left behind.
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+ident); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// checkBus fails early when the NATS server is away or has no JetStream.
func checkBus(ctx context.Context, busURL string) error {
	nc, err := nats.Connect(busURL, nats.Timeout(5*time.Second))
	if err != nil {
		return fmt.Errorf("-bus %s: %w", busURL, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("-bus %s: %w", busURL, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("-bus %s: JetStream: %w", busURL, err)
	}
	return nil
}

// deleteStream removes a run's stream once its instances are stopped. It
// runs on the way out, also after Ctrl-C, so it does not use the run's
// context.
func deleteStream(busURL, stream string, out io.Writer) {
	nc, err := nats.Connect(busURL, nats.Timeout(5*time.Second))
	if err == nil {
		defer nc.Close()
		var js jetstream.JetStream
		if js, err = jetstream.New(nc); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err = js.DeleteStream(ctx, stream)
			if errors.Is(err, jetstream.ErrStreamNotFound) {
				err = nil
			}
		}
	}
	if err != nil {
		fmt.Fprintf(out, "could not delete stream %s (nats stream rm %s): %v\n", stream, stream, err)
	}
}

// cpuTicks reads the user and system time of a process from
// /proc/<pid>/stat, in clock ticks.
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// count the fields from after its closing parenthesis, where field 3
	// (state) is f[0], so utime (14) is f[11] and stime (15) f[12].
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: utime %q, stime %q", pid, f[11], f[12])
	}
	return utime + stime, nil
}

// machineBusyTicks is the time all the machine's cores spent not idle, from
// the first line of /proc/stat, in clock ticks: zenne, PostgreSQL, NATS,
// the benchmark and whoever else uses the machine.
func machineBusyTicks() (int64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, errors.New("/proc/stat: no cpu line")
	}
	var busy int64
	// user nice system idle iowait irq softirq steal: all but idle and iowait.
	for i, v := range f[1:9] {
		if i == 3 || i == 4 {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %q", v)
		}
		busy += n
	}
	return busy, nil
}

// clockTicks is USER_HZ, the unit of /proc's CPU times: 100 on every Linux
// architecture Go runs on.
const clockTicks = 100

func ticksToDuration(t int64) time.Duration { return time.Duration(t) * time.Second / clockTicks }

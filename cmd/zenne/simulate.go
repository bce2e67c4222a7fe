package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/zenne-city/zenne/internal/simulate"
)

const simulateUsage = `Usage:
  zenne simulate [flags]

Sends realistic Brussels sensor readings to zenne (or any broker) over HTTP
or MQTT: energy dataloggers on public buildings, water meters (a few
leaking: their night flow never stops), bins filling street by street and
emptied on collection days, pedestrian counters busiest on Saturday
afternoons, parking sensors, NO2 and noise with the rush hours, and a few
devices that go silent for hours.

By default the demo city's sensors (the entities 'zenne demo' loads) report
at their own pace, every 5 to 30 minutes; --speed 60 makes an hour pass in
a minute. For load tests, --devices N spreads N devices over the region and
--rate R sends R messages per second in all, the devices in turn:

  zenne simulate                                  the demo city, over HTTP to 127.0.0.1:1026
  zenne simulate --speed 60 --duration 24m        a day of the demo city in 24 minutes
  zenne simulate --target mqtt://127.0.0.1:1883 --devices 10000 --rate 20000 --duration 1m
  zenne simulate --devices 5000 --rate 10000 --probe

First the devices and their service groups (API keys sim-bins, sim-parking,
...) are registered through --api (POST /iot/services and /iot/devices;
what exists already is kept). With another broker, register them yourself
and give --provision=false.

Registering needs an API key with the devices right on the tenant (an
operator's or an admin's): give --key or set ZENNE_API_KEY (zenne demo
prints keys; 'zenne keys create' makes one). The key is also sent with the
probe's reads; the uplinks carry the devices' own keys, never it.

--probe measures how long a reading takes to become readable: a probe
device sends a unique value and GET /ngsi-ld/v1/entities/{id} is polled on
--api until it shows; p50/p95/p99 are reported while the load runs.

Every flag has an environment variable fallback: --target is
ZENNE_SIM_TARGET, --rate is ZENNE_SIM_RATE, and so on.

Flags:
`

type simFlags struct {
	target, api, tenant, kinds, start, topic, mqttUser, mqttPassword string
	key                                                              string
	devices, connDevices, concurrency, batch                         int
	rate, speed, silent                                              float64
	duration, probeEvery                                             time.Duration
	qos                                                              int
	seed                                                             int64
	provision, probe, apiGiven                                       bool
}

func parseSimFlags(args []string, stderr io.Writer) (*simFlags, error) {
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, simulateUsage)
		fs.PrintDefaults()
	}
	// Environment fallbacks are read first, as the flags' defaults.
	var envErr error
	envParse := func(key string, parse func(string) error, what string) {
		if v, ok := os.LookupEnv(key); ok {
			if err := parse(strings.TrimSpace(v)); err != nil {
				envErr = errors.Join(envErr, fmt.Errorf("%s=%q: give %s", key, v, what))
			}
		}
	}
	envInt := func(key string, def int) int {
		envParse(key, func(v string) (err error) { def, err = strconv.Atoi(v); return }, "a whole number")
		return def
	}
	envFloat := func(key string, def float64) float64 {
		envParse(key, func(v string) (err error) { def, err = strconv.ParseFloat(v, 64); return }, "a number")
		return def
	}
	envBool := func(key string, def bool) bool {
		envParse(key, func(v string) (err error) { def, err = strconv.ParseBool(v); return }, "true or false")
		return def
	}
	envDuration := func(key string, def time.Duration) time.Duration {
		envParse(key, func(v string) (err error) { def, err = time.ParseDuration(v); return }, "a duration such as 1m")
		return def
	}

	f := &simFlags{}
	fs.StringVar(&f.target, "target", env("ZENNE_SIM_TARGET", "http://127.0.0.1:1026"), "where uplinks go: http://host:1026 (POST /iot/json) or mqtt://host:1883 (ZENNE_SIM_TARGET)")
	fs.StringVar(&f.api, "api", env("ZENNE_SIM_API", "http://127.0.0.1:1026"), "zenne's HTTP API, to register the devices and read probes back (ZENNE_SIM_API; with an MQTT --target, default http://<its host>:1026)")
	fs.StringVar(&f.tenant, "tenant", env("ZENNE_SIM_TENANT", ""), "NGSI-LD tenant of the devices and their entities (ZENNE_SIM_TENANT; default: the default tenant)")
	key := keyFlag(fs)
	fs.IntVar(&f.devices, "devices", envInt("ZENNE_SIM_DEVICES", 0), "generate this many devices spread over the region (ZENNE_SIM_DEVICES; 0: the demo city's sensors)")
	fs.StringVar(&f.kinds, "kinds", env("ZENNE_SIM_KINDS", "all"), "kinds of generated devices, comma-separated: datalogger, water, bin, pedestrian, parking, air, noise (ZENNE_SIM_KINDS)")
	fs.Float64Var(&f.rate, "rate", envFloat("ZENNE_SIM_RATE", 0), "messages per second in all (ZENNE_SIM_RATE; 0: each device at its own interval, 5 to 30 minutes)")
	fs.Float64Var(&f.speed, "speed", envFloat("ZENNE_SIM_SPEED", 1), "simulated seconds per second: 60 makes an hour pass in a minute (ZENNE_SIM_SPEED)")
	fs.StringVar(&f.start, "start", env("ZENNE_SIM_START", ""), "simulated time to start at, RFC 3339, e.g. 2026-11-21T14:00:00+01:00; a past start replays it into history (ZENNE_SIM_START; default: now)")
	fs.DurationVar(&f.duration, "duration", envDuration("ZENNE_SIM_DURATION", 0), "stop after this long, e.g. 1m (ZENNE_SIM_DURATION; 0: at Ctrl+C)")
	fs.IntVar(&f.qos, "qos", envInt("ZENNE_SIM_QOS", 0), "MQTT QoS, 0 or 1 (ZENNE_SIM_QOS)")
	fs.IntVar(&f.connDevices, "conn-devices", envInt("ZENNE_SIM_CONN_DEVICES", 100), "devices per MQTT connection; 1 connects each device with its id as user name (ZENNE_SIM_CONN_DEVICES)")
	fs.StringVar(&f.topic, "topic", env("ZENNE_SIM_TOPIC", simulate.DefaultTopic), "MQTT topic pattern (ZENNE_SIM_TOPIC)")
	fs.StringVar(&f.mqttUser, "mqtt-user", env("ZENNE_SIM_MQTT_USER", ""), "MQTT user name of every connection; the password is ZENNE_SIM_MQTT_PASSWORD (ZENNE_SIM_MQTT_USER)")
	f.mqttPassword = env("ZENNE_SIM_MQTT_PASSWORD", "")
	fs.IntVar(&f.concurrency, "concurrency", envInt("ZENNE_SIM_CONCURRENCY", 0), "sends at once (ZENNE_SIM_CONCURRENCY; 0: 32 over HTTP, one per connection over MQTT)")
	fs.BoolVar(&f.provision, "provision", envBool("ZENNE_SIM_PROVISION", true), "register the service groups and devices through --api first (ZENNE_SIM_PROVISION)")
	var seed int
	fs.IntVar(&seed, "seed", envInt("ZENNE_SIM_SEED", 1), "seed of the devices and their readings; the demo city's is 1 (ZENNE_SIM_SEED)")
	fs.Float64Var(&f.silent, "silent", envFloat("ZENNE_SIM_SILENT", 0.03), "share of devices that go silent for hours now and then (ZENNE_SIM_SILENT)")
	fs.IntVar(&f.batch, "batch", envInt("ZENNE_SIM_BATCH", 0), "dataloggers upload arrays of this many quarter-hour readings, as NRClick loggers do (ZENNE_SIM_BATCH; 0: one reading per message)")
	fs.BoolVar(&f.probe, "probe", envBool("ZENNE_SIM_PROBE", false), "measure send -> readable latency through --api while the load runs (ZENNE_SIM_PROBE)")
	fs.DurationVar(&f.probeEvery, "probe-every", envDuration("ZENNE_SIM_PROBE_EVERY", 200*time.Millisecond), "pause between probes (ZENNE_SIM_PROBE_EVERY)")
	if envErr != nil {
		return nil, envErr
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	f.seed = int64(seed)
	f.key = apiKey(*key)
	_, f.apiGiven = os.LookupEnv("ZENNE_SIM_API")
	fs.Visit(func(fl *flag.Flag) {
		if fl.Name == "api" {
			f.apiGiven = true
		}
	})
	var err error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			err = errors.Join(err, fmt.Errorf(format, args...))
		}
	}
	check(f.devices >= 0, "--devices %d: give a number of devices, or 0 for the demo city's", f.devices)
	check(f.rate >= 0, "--rate %v: give messages per second, or 0 for each device's own interval", f.rate)
	check(f.speed > 0, "--speed %v: give a positive factor, such as 60", f.speed)
	check(f.duration >= 0, "--duration %v: give a duration such as 1m, or 0 to run until Ctrl+C", f.duration)
	check(f.qos == 0 || f.qos == 1, "--qos %d: use 0 or 1", f.qos)
	check(f.connDevices >= 1, "--conn-devices %d: give a positive number of devices per connection, such as 100", f.connDevices)
	check(f.concurrency >= 0, "--concurrency %d: give a number of concurrent sends, or 0 for the default", f.concurrency)
	check(f.silent >= 0 && f.silent <= 1, "--silent %v: give a share between 0 and 1, such as 0.03", f.silent)
	check(f.batch >= 0, "--batch %d: give a number of quarter hours, such as 96 for a day, or 0", f.batch)
	check(f.probeEvery > 0, "--probe-every %v: give a duration such as 200ms", f.probeEvery)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// simulateCmd runs `zenne simulate`.
func simulateCmd(args []string, stdout, stderr io.Writer) error {
	f, err := parseSimFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	target, err := url.Parse(f.target)
	if err != nil || target.Host == "" {
		return fmt.Errorf("--target %q: give http://host:1026 for HTTP uplinks or mqtt://host:1883 for MQTT", f.target)
	}
	mqttTarget := false
	switch target.Scheme {
	case "http", "https":
	case "mqtt", "mqtts", "tcp", "ssl":
		mqttTarget = true
		if !f.apiGiven {
			f.api = "http://" + target.Hostname() + ":1026"
		}
	default:
		return fmt.Errorf("--target %q: give http://host:1026 for HTTP uplinks or mqtt://host:1883 for MQTT", f.target)
	}
	if u, err := url.Parse(f.api); (f.provision || f.probe) && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "") {
		return fmt.Errorf("--api %q: give zenne's HTTP address, such as http://127.0.0.1:1026", f.api)
	}
	var start time.Time
	if f.start != "" {
		if start, err = time.Parse(time.RFC3339, f.start); err != nil {
			return fmt.Errorf("--start %q: give an RFC 3339 time such as 2026-11-21T14:00:00+01:00", f.start)
		}
	}
	kinds, err := simulate.ParseKinds(f.kinds)
	if err != nil {
		return fmt.Errorf("--kinds: %w", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	transport := "HTTP"
	if mqttTarget {
		transport = "MQTT"
	}
	silent := f.silent
	if silent == 0 {
		silent = -1 // none
	}
	opts := simulate.FleetOptions{Seed: f.seed, Devices: f.devices, Kinds: kinds, SilentFraction: silent, Transport: transport, LoggerBatch: f.batch}
	if f.probe {
		opts.Probes = 1
	}
	fleet, err := simulate.NewFleet(opts, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "zenne simulate: %s\n", describeFleet(fleet, f.devices == 0))
	if f.rate > 0 {
		if per := f.rate / float64(len(fleet.Members())); per > 10 {
			fmt.Fprintf(stderr, "note: %.0f messages/s per device is above zenne's default per-device limit of 10/s, so many will be refused; give --devices %d or more\n",
				per, int(f.rate/10)+1)
		}
	}

	if f.provision {
		if f.devices == 0 {
			// Keep the demo's sensors where the running demo put them.
			if _, err := fleet.LocateFrom(ctx, f.api, f.tenant, simulate.APIClient(f.key, 30*time.Second)); err != nil && ctx.Err() == nil && !isUnreachable(err) {
				fmt.Fprintf(stderr, "note: could not read the demo's entities at %s (%v): the devices keep the demo city's own places\n", f.api, err)
				if refused(err) {
					fmt.Fprintln(stderr, keyAdvice(f.key, "read"))
				}
			}
		}
		res, err := fleet.Provision(ctx, f.api, f.tenant, simulate.APIClient(f.key, 30*time.Second))
		if err != nil {
			switch {
			case refused(err):
				return fmt.Errorf("register the devices at %s: %w\n%s", f.api, err, keyAdvice(f.key, "devices"))
			case errors.Is(err, simulate.ErrNoProvisioning):
				return fmt.Errorf("%w\nWith a broker other than zenne, register the devices yourself and give --provision=false", err)
			case isUnreachable(err):
				return fmt.Errorf("cannot register the devices at %s: %w\nIs zenne serve running there? Give --api, or --provision=false if the devices are registered already", f.api, err)
			}
			return fmt.Errorf("register the devices at %s: %w", f.api, err)
		}
		fmt.Fprintf(stderr, "registered at %s: %d service groups and %d devices new, %d groups and %d devices already there\n",
			f.api, res.Groups, res.Devices, res.GroupsExisting, res.DevicesExisting)
	}

	var sender simulate.Sender
	if mqttTarget {
		m, err := simulate.DialMQTT(ctx, fleet, simulate.MQTTOptions{
			URL: f.target, QoS: byte(f.qos), DevicesPerConn: f.connDevices, Topic: f.topic,
			Username: f.mqttUser, Password: f.mqttPassword,
		})
		if err != nil {
			var se *simulate.SendError
			if errors.As(err, &se) && se.Kind == "mqtt not authorized" {
				return fmt.Errorf("%w\nzenne's embedded broker takes a device's id as user name: give --conn-devices 1 (one connection per device), "+
					"or let the broker take anonymous clients, or give --mqtt-user", err)
			}
			return fmt.Errorf("%w\nIs zenne serve running with --mqtt-listen (or a broker) there? Give --target", err)
		}
		defer m.Close()
		fmt.Fprintf(stderr, "connected to %s: %d connections, QoS %d\n", f.target, m.Connections(), f.qos)
		sender = m
	} else {
		h, err := simulate.NewHTTPSender(simulate.HTTPOptions{URL: f.target, Tenant: f.tenant, Concurrency: f.concurrency})
		if err != nil {
			return err
		}
		defer h.Close()
		sender = h
	}

	cfg := simulate.Config{Fleet: fleet, Rate: f.rate, Speed: f.speed, Start: start, Duration: f.duration, Workers: f.concurrency}
	if f.probe {
		cfg.Probe = &simulate.ProbeConfig{API: f.api, Tenant: f.tenant, Key: f.key, Every: f.probeEvery}
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	p := newSimProgress(stderr, f.speed != 1 || !start.IsZero())
	gaveUp := false
	cfg.Progress = func(s simulate.Snapshot) {
		p.show(s)
		if s.Sent == 0 && s.Errors > 0 && s.Elapsed >= 5*time.Second {
			gaveUp = true
			cancel()
		}
	}
	switch {
	case f.rate > 0:
		fmt.Fprintf(stderr, "sending %s messages/s to %s", humanize.Commaf(f.rate), f.target)
	default:
		fmt.Fprintf(stderr, "sending each device's readings at its own interval (speed ×%g) to %s", f.speed, f.target)
	}
	if f.duration > 0 {
		fmt.Fprintf(stderr, " for %s", f.duration)
	}
	fmt.Fprintln(stderr, "; Ctrl+C stops")
	sum, err := simulate.Run(runCtx, cfg, sender)
	p.done()
	if err != nil {
		return err
	}
	printSimSummary(stdout, sum)
	if sum.Probe.Refused {
		fmt.Fprintln(stderr, keyAdvice(f.key, "read"))
	}
	if gaveUp || (sum.Sent == 0 && sum.Errors > 0) {
		return fmt.Errorf("nothing could be sent to %s: %s", f.target, simHint(sum))
	}
	return nil
}

func describeFleet(f *simulate.Fleet, demo bool) string {
	count := f.Count()
	var parts []string
	labels := map[simulate.Kind]string{
		simulate.Datalogger: "energy dataloggers", simulate.WaterMeter: "water meters", simulate.WasteBin: "bins",
		simulate.PedestrianCounter: "pedestrian counters", simulate.ParkingSensor: "parking sensors",
		simulate.AirQuality: "air-quality stations", simulate.NoiseMeter: "noise meters",
	}
	for _, k := range simulate.Kinds() {
		if n := count[k]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, labels[k]))
		}
	}
	what := "generated devices"
	if demo {
		what = "devices of the demo city"
	}
	return fmt.Sprintf("%s %s (%s)", humanize.Comma(int64(len(f.Members()))), what, strings.Join(parts, ", "))
}

// refused tells whether zenne's API refused a request's credentials (401)
// or their rights (403).
func refused(err error) bool {
	var se *simulate.StatusError
	return errors.As(err, &se) && se.Unauthorized()
}

// keyAdvice says what to do when the API refused the key (or its absence)
// for the right named (devices, read).
func keyAdvice(key, right string) string {
	const where = " (zenne demo prints keys; 'zenne keys create' makes one)"
	if key == "" {
		return "the server wants an API key: give --key or set " + envAPIKey + where
	}
	who := "an operator or an admin of the tenant"
	if right == "read" {
		who = "any user of the tenant"
	}
	return "the server refused the API key, or it lacks the " + right + " right on the tenant (--tenant): " +
		"give the key of " + who + " with --key or " + envAPIKey + where
}

func isUnreachable(err error) bool {
	s := err.Error()
	for _, x := range []string{"connection refused", "no such host", "i/o timeout", "Client.Timeout", "network is unreachable"} {
		if strings.Contains(s, x) {
			return true
		}
	}
	return false
}

// simHint says what to do about the errors of a run that sent nothing.
func simHint(s simulate.Summary) string {
	kind, n := "", int64(0)
	for k, c := range s.ErrorKinds {
		if c > n {
			kind, n = k, c
		}
	}
	sample := s.ErrorSamples[kind]
	var hint string
	switch kind {
	case "connection refused", "connection reset", "unknown host", "timeout", "network":
		hint = "is zenne serve running there? Give --target"
	case "http 404":
		hint = "the target has no /iot/json endpoint: is it zenne? For an MQTT broker give --target mqtt://host:1883"
	case "http 400", "http 401", "http 403":
		hint = "are the devices registered in this tenant? Leave --provision on (the default), or check --tenant and --api"
	case "http 429":
		hint = "the devices send faster than the server allows each one: give more --devices or a lower --rate"
	case "mqtt not connected", "mqtt publish":
		hint = "the broker dropped the connections: is it still running?"
	default:
		hint = "see the errors above"
	}
	return fmt.Sprintf("%s (%s)\n%s", sample, kind, hint)
}

// simProgress shows a run on stderr once a second: a line redrawn in place
// on a terminal, one line a second otherwise.
type simProgress struct {
	w       io.Writer
	tty     bool
	simTime bool
	drawn   bool
}

func newSimProgress(w io.Writer, simTime bool) *simProgress {
	tty := false
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return &simProgress{w: w, tty: tty, simTime: simTime}
}

func (p *simProgress) show(s simulate.Snapshot) {
	line := fmt.Sprintf("%6s  sent %s (%s/s)  errors %s", s.Elapsed.Round(time.Second), humanize.Comma(s.Sent), humanize.Comma(int64(s.Rate+0.5)), humanize.Comma(s.Errors))
	if s.Silent > 0 {
		line += "  silent " + humanize.Comma(s.Silent)
	}
	if s.Probe.Count > 0 {
		line += fmt.Sprintf("  probe p99 %s", fmtLatency(s.Probe.P99))
	}
	if s.Probe.Timeouts > 0 || s.Probe.Failed > 0 {
		line += fmt.Sprintf(" (%d timeouts, %d failed)", s.Probe.Timeouts, s.Probe.Failed)
	}
	if p.simTime {
		line += "  simulated " + s.SimTime.In(brusselsTZ()).Format("Mon 2 Jan 15:04")
	}
	if p.tty {
		fmt.Fprintf(p.w, "\r%s\x1b[K", line)
		p.drawn = true
		return
	}
	fmt.Fprintln(p.w, line)
}

func (p *simProgress) done() {
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}

func brusselsTZ() *time.Location {
	if loc, err := time.LoadLocation("Europe/Brussels"); err == nil {
		return loc
	}
	return time.Local
}

func printSimSummary(w io.Writer, s simulate.Summary) {
	fmt.Fprintf(w, "sent %s messages (%s readings) in %s: %s/s", humanize.Comma(s.Sent), humanize.Comma(s.Readings),
		s.Elapsed.Round(100*time.Millisecond), humanize.Commaf(float64(int64(s.Rate*10+0.5))/10))
	if s.TargetRate > 0 {
		fmt.Fprintf(w, " (target %s/s)", humanize.Commaf(s.TargetRate))
	}
	fmt.Fprintln(w)
	if s.Errors == 0 {
		fmt.Fprintln(w, "errors: none")
	} else {
		kinds := make([]string, 0, len(s.ErrorKinds))
		for k := range s.ErrorKinds {
			kinds = append(kinds, k)
		}
		sort.Slice(kinds, func(i, j int) bool { return s.ErrorKinds[kinds[i]] > s.ErrorKinds[kinds[j]] })
		fmt.Fprintf(w, "errors: %s\n", humanize.Comma(s.Errors))
		for _, k := range kinds {
			fmt.Fprintf(w, "  %-20s %10s  e.g. %s\n", k, humanize.Comma(s.ErrorKinds[k]), s.ErrorSamples[k])
		}
	}
	if s.Silent > 0 {
		fmt.Fprintf(w, "silent: %s turns of silent devices\n", humanize.Comma(s.Silent))
	}
	if s.Latency.Count > 0 {
		fmt.Fprintf(w, "send latency: p50 %s  p95 %s  p99 %s  max %s\n",
			fmtLatency(s.Latency.P50), fmtLatency(s.Latency.P95), fmtLatency(s.Latency.P99), fmtLatency(s.Latency.Max))
	}
	if p := s.Probe; p.Count > 0 || p.Timeouts > 0 || p.Failed > 0 {
		fmt.Fprintf(w, "probe (send -> readable): %d probes  p50 %s  p95 %s  p99 %s  max %s", p.Count,
			fmtLatency(p.P50), fmtLatency(p.P95), fmtLatency(p.P99), fmtLatency(p.Max))
		if p.Timeouts > 0 || p.Failed > 0 {
			fmt.Fprintf(w, "; %d timed out, %d failed: %s", p.Timeouts, p.Failed, p.LastError)
		}
		fmt.Fprintln(w)
	}
	if s.TargetRate > 0 && s.Rate < 0.95*s.TargetRate && s.Elapsed > 2*time.Second {
		fmt.Fprintf(w, "the target rate was not reached (fell behind %d times): the sender or the server is the limit; more --concurrency may help\n", s.Behind)
	}
}

// fmtLatency rounds a latency to about three significant digits.
func fmtLatency(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < 10*time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	case d < 100*time.Millisecond:
		return d.Round(100 * time.Microsecond).String()
	}
	return d.Round(time.Millisecond).String()
}

// Command zenne is the open urban data platform: an NGSI-LD context broker
// and the city modules built on it.
//
//	zenne serve    serve the API on the embedded store (or --store URL)
//	zenne demo     serve a live Brussels demo city from a fresh data directory
//	zenne import   import history in bulk (zenne import history FILE)
//	zenne migrate  copy a whole store into another (SQLite to PostgreSQL)
//	zenne simulate send realistic Brussels sensor streams (demo, load tests)
//	zenne version  print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/zenne-city/zenne/internal/api/session"
	"github.com/zenne-city/zenne/internal/app"
	"github.com/zenne-city/zenne/internal/auth"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = ""

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "zenne:", err)
		os.Exit(1)
	}
}

const usage = `zenne: the open urban data platform (NGSI-LD context broker)

Usage:
  zenne serve [flags]    serve the NGSI-LD API
  zenne demo [flags]     serve a live Brussels demo city from a fresh data directory
  zenne import history [flags] FILE
                         import recorded history (CSV or temporal JSON) into the store
  zenne migrate --from URL --to URL
                         copy a whole store into an empty one (e.g. SQLite to PostgreSQL)
  zenne simulate [flags] send realistic Brussels sensor readings over HTTP or MQTT
  zenne users COMMAND    manage accounts: list, create, grant, passwd, disable, unlock... (docs/ADMIN.md)
  zenne keys COMMAND     manage API keys: list, create, revoke, delete
  zenne audit [flags]    read or export the audit log
  zenne version          print the version

Run 'zenne serve -h' for the flags. Every flag has an environment variable
fallback: --listen is ZENNE_LISTEN, --data is ZENNE_DATA, and so on.
`

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stdout, stderr, false)
	case "demo":
		return serve(args[1:], stdout, stderr, true)
	case "migrate":
		return migrateCmd(args[1:], stdout, stderr)
	case "devices":
		return devicesCmd(args[1:], stdout, stderr)
	case "rules":
		return rulesCmd(args[1:], stdout, stderr)
	case "alerts":
		return alertsCmd(args[1:], stdout, stderr)
	case "users":
		return usersCmd(args[1:], stdout, stderr)
	case "keys":
		return keysCmd(args[1:], stdout, stderr)
	case "audit":
		return auditCmd(args[1:], stdout, stderr)
	case "import":
		return importCmd(args[1:], stdout, stderr)
	case "simulate":
		return simulateCmd(args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "zenne", versionString())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		rev, dirty := "", false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if rev != "" {
			if len(rev) > 12 {
				rev = rev[:12]
			}
			if dirty {
				rev += "-dirty"
			}
			return "dev-" + rev
		}
	}
	return "dev"
}

type flags struct {
	listen, data, store, bus, busStream, logLevel string
	sealAfter, notifyMaxAge                       time.Duration
	pageSize                                      int
	history                                       bool
	retention                                     string
	mqttListen, mqttBroker, mqttTopic             string
	mqttTLSCert, mqttTLSKey                       string
	mqttAnonymous, mqttListenSet                  bool
	tlsCert, tlsKey                               string
	trustProxies                                  []netip.Prefix
	rateLimit, anonRateLimit                      float64
	auditRetain                                   time.Duration
	oidc                                          session.OIDCConfig
	sessionIdle, sessionMax                       time.Duration
}

func parseFlags(name string, args []string, stderr io.Writer, demo bool) (*flags, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := &flags{}
	defData := "./zenne-data"
	if demo {
		defData = "" // a fresh temporary directory
	}
	fs.StringVar(&f.listen, "listen", env("ZENNE_LISTEN", ":1026"), "address to serve on (ZENNE_LISTEN)")
	fs.StringVar(&f.data, "data", env("ZENNE_DATA", defData), "data directory of the embedded store (ZENNE_DATA)")
	fs.StringVar(&f.store, "store", env("ZENNE_STORE", ""), "store URL, e.g. sqlite:///var/lib/zenne/zenne.db (ZENNE_STORE; default: the data directory's file)")
	fs.StringVar(&f.bus, "bus", env("ZENNE_BUS", ""), "NATS server of the event bus that instances sharing a --store postgres://... use, e.g. nats://nats:4222 (ZENNE_BUS; default: in-process)")
	fs.StringVar(&f.busStream, "bus-stream", env("ZENNE_BUS_STREAM", "ZENNE_CHANGES"), "JetStream stream of the --bus; every instance sharing a store uses the same (ZENNE_BUS_STREAM)")
	fs.StringVar(&f.logLevel, "log-level", env("ZENNE_LOG_LEVEL", "info"), "debug, info, warn or error (ZENNE_LOG_LEVEL)")
	sealAfter := env("ZENNE_HISTORY_SEAL_AFTER", "10m")
	fs.StringVar(&sealAfter, "history-seal-after", sealAfter, "how long history stays uncompressed before it is sealed into chunks (ZENNE_HISTORY_SEAL_AFTER)")
	fs.BoolVar(&f.history, "history", env("ZENNE_HISTORY", "true") != "false", "record the history of every change (ZENNE_HISTORY)")
	fs.StringVar(&f.retention, "history-retention", env("ZENNE_HISTORY_RETENTION", ""), `how long history is kept, e.g. "*=raw:90d,hourly:2y,daily:forever; energy=raw:400d" (ZENNE_HISTORY_RETENTION; default: all of it)`)
	notifyMaxAge := env("ZENNE_NOTIFY_MAX_AGE", "24h")
	fs.StringVar(&notifyMaxAge, "notify-max-age", notifyMaxAge, "how long a notification waits for an unreachable receiver before it is dropped (ZENNE_NOTIFY_MAX_AGE)")
	fs.StringVar(&f.mqttListen, "mqtt-listen", env("ZENNE_MQTT_LISTEN", ":1883"), `address of the embedded MQTT broker devices publish to; "" for none (ZENNE_MQTT_LISTEN)`)
	fs.StringVar(&f.mqttBroker, "mqtt-broker", env("ZENNE_MQTT_BROKER", ""), "an external MQTT broker to take device messages from, e.g. mqtt://user:pass@mosquitto:1883 (ZENNE_MQTT_BROKER)")
	fs.StringVar(&f.mqttTopic, "mqtt-topic", env("ZENNE_MQTT_TOPIC", ""), "a device topic pattern besides /{apikey}/{device}/attrs, e.g. city/{apikey}/{device}/up (ZENNE_MQTT_TOPIC)")
	fs.StringVar(&f.mqttTLSCert, "mqtt-tls-cert", env("ZENNE_MQTT_TLS_CERT", ""), "PEM certificate: the embedded broker speaks TLS only (ZENNE_MQTT_TLS_CERT)")
	fs.StringVar(&f.mqttTLSKey, "mqtt-tls-key", env("ZENNE_MQTT_TLS_KEY", ""), "PEM private key of --mqtt-tls-cert (ZENNE_MQTT_TLS_KEY)")
	fs.BoolVar(&f.mqttAnonymous, "mqtt-anonymous", env("ZENNE_MQTT_ANONYMOUS", "true") != "false", "devices without a key of their own may publish without credentials (ZENNE_MQTT_ANONYMOUS)")
	fs.StringVar(&f.tlsCert, "tls-cert", env("ZENNE_TLS_CERT", ""), "PEM certificate (chain): serve HTTPS only (ZENNE_TLS_CERT)")
	fs.StringVar(&f.tlsKey, "tls-key", env("ZENNE_TLS_KEY", ""), "PEM private key of --tls-cert (ZENNE_TLS_KEY)")
	proxies := env("ZENNE_TRUST_PROXY", "")
	fs.StringVar(&proxies, "trust-proxy", proxies, "comma-separated addresses or networks of reverse proxies whose X-Forwarded-For and X-Forwarded-Proto are believed, e.g. 10.0.0.0/8 (ZENNE_TRUST_PROXY)")
	rateLimit := env("ZENNE_RATE_LIMIT", "0")
	fs.StringVar(&rateLimit, "rate-limit", rateLimit, "requests per second each API key or user may make; 0 for no limit (ZENNE_RATE_LIMIT)")
	anonRate := env("ZENNE_ANONYMOUS_RATE_LIMIT", "50")
	fs.StringVar(&anonRate, "anonymous-rate-limit", anonRate, "requests per second each address may make without credentials (public data); 0 for no limit (ZENNE_ANONYMOUS_RATE_LIMIT)")
	auditRetain := env("ZENNE_AUDIT_RETAIN", "0")
	fs.StringVar(&auditRetain, "audit-retain", auditRetain, "how long the audit log keeps entries, e.g. 8760h; 0 keeps them all (ZENNE_AUDIT_RETAIN)")
	fs.StringVar(&f.oidc.Issuer, "oidc-issuer", env("ZENNE_OIDC_ISSUER", ""), "OpenID Connect provider for console sign-on, e.g. https://sso.example.brussels/realms/zenne (ZENNE_OIDC_ISSUER; the client secret is ZENNE_OIDC_CLIENT_SECRET, never a flag)")
	fs.StringVar(&f.oidc.ClientID, "oidc-client-id", env("ZENNE_OIDC_CLIENT_ID", ""), "zenne's client id at the OIDC provider (ZENNE_OIDC_CLIENT_ID)")
	fs.StringVar(&f.oidc.RedirectURL, "oidc-redirect-url", env("ZENNE_OIDC_REDIRECT_URL", ""), "the callback registered at the provider: https://<host>/login/oidc/callback (ZENNE_OIDC_REDIRECT_URL)")
	fs.StringVar(&f.oidc.UsernameClaim, "oidc-username-claim", env("ZENNE_OIDC_USERNAME_CLAIM", "preferred_username"), "the ID token claim naming the zenne account (ZENNE_OIDC_USERNAME_CLAIM)")
	fs.BoolVar(&f.oidc.AutoCreate, "oidc-auto-create", env("ZENNE_OIDC_AUTO_CREATE", "false") == "true", "create an account without rights for a user the provider knows and zenne does not (ZENNE_OIDC_AUTO_CREATE)")
	f.oidc.ClientSecret = os.Getenv("ZENNE_OIDC_CLIENT_SECRET")
	sessionIdle := env("ZENNE_SESSION_IDLE", "30m")
	fs.StringVar(&sessionIdle, "session-idle", sessionIdle, "a console session ends after this long without a request (ZENNE_SESSION_IDLE)")
	sessionMax := env("ZENNE_SESSION_MAX", "12h")
	fs.StringVar(&sessionMax, "session-max", sessionMax, "a console session ends this long after sign-in, however busy (ZENNE_SESSION_MAX)")
	pageSize := env("ZENNE_TEMPORAL_PAGE_SIZE", "1000")
	fs.StringVar(&pageSize, "temporal-page-size", pageSize, "most instances per attribute in a temporal response; longer histories are paginated (ZENNE_TEMPORAL_PAGE_SIZE)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	var err error
	if f.pageSize, err = strconv.Atoi(pageSize); err != nil || f.pageSize <= 0 {
		return nil, fmt.Errorf("--temporal-page-size %q: give a positive number of instances, such as 1000", pageSize)
	}
	if f.notifyMaxAge, err = time.ParseDuration(notifyMaxAge); err != nil || f.notifyMaxAge <= 0 {
		return nil, fmt.Errorf("--notify-max-age %q: give a positive duration such as 24h or 90m", notifyMaxAge)
	}
	if f.sealAfter, err = time.ParseDuration(sealAfter); err != nil || f.sealAfter <= 0 {
		return nil, fmt.Errorf("--history-seal-after %q: give a positive duration such as 10m or 1h", sealAfter)
	}
	if f.trustProxies, err = parsePrefixes(proxies); err != nil {
		return nil, fmt.Errorf("--trust-proxy %q: %w: give addresses or networks such as 10.0.0.0/8,192.168.1.4", proxies, err)
	}
	if f.rateLimit, err = strconv.ParseFloat(rateLimit, 64); err != nil || f.rateLimit < 0 {
		return nil, fmt.Errorf("--rate-limit %q: give requests per second, such as 100, or 0 for no limit", rateLimit)
	}
	if f.anonRateLimit, err = strconv.ParseFloat(anonRate, 64); err != nil || f.anonRateLimit < 0 {
		return nil, fmt.Errorf("--anonymous-rate-limit %q: give requests per second, such as 50, or 0 for no limit", anonRate)
	}
	if f.auditRetain, err = time.ParseDuration(auditRetain); err != nil || f.auditRetain < 0 {
		return nil, fmt.Errorf("--audit-retain %q: give a duration such as 8760h, or 0 to keep everything", auditRetain)
	}
	if f.sessionIdle, err = time.ParseDuration(sessionIdle); err != nil || f.sessionIdle <= 0 {
		return nil, fmt.Errorf("--session-idle %q: give a positive duration such as 30m", sessionIdle)
	}
	if f.sessionMax, err = time.ParseDuration(sessionMax); err != nil || f.sessionMax < f.sessionIdle {
		return nil, fmt.Errorf("--session-max %q: give a duration such as 12h, no shorter than --session-idle", sessionMax)
	}
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return nil, errors.New("--tls-cert and --tls-key go together: give both PEM files, or neither")
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	_, f.mqttListenSet = os.LookupEnv("ZENNE_MQTT_LISTEN")
	fs.Visit(func(fl *flag.Flag) { f.mqttListenSet = f.mqttListenSet || fl.Name == "mqtt-listen" })
	return f, nil
}

// parsePrefixes reads comma-separated addresses and networks.
func parsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if p, err := netip.ParsePrefix(part); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(part)
		if err != nil {
			return nil, fmt.Errorf("%q is neither an address nor a network", part)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

func env(key, def string) string {
	if v, ok := os.LookupEnv(key); ok {
		return v
	}
	return def
}

func newLogger(level string, w io.Writer) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// envCPUProfile names a file to write a CPU profile of the whole run to, for
// benchmarks of zenne processes (bench/clusterbench -cpuprofile).
const envCPUProfile = "ZENNE_CPU_PROFILE"

func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", envCPUProfile, err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", envCPUProfile, err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

func serve(args []string, stdout, stderr io.Writer, demo bool) error {
	name := "serve"
	if demo {
		name = "demo"
	}
	f, err := parseFlags(name, args, stderr, demo)
	if err != nil {
		return err
	}
	log, err := newLogger(f.logLevel, stderr)
	if err != nil {
		return err
	}
	if path := os.Getenv(envCPUProfile); path != "" {
		stop, err := startCPUProfile(path)
		if err != nil {
			return err
		}
		defer stop()
	}
	if demo {
		if f.store != "" {
			return errors.New("demo always runs on the embedded store: drop --store")
		}
		if f.data == "" {
			dir, err := os.MkdirTemp("", "zenne-demo-")
			if err != nil {
				return fmt.Errorf("create a demo data directory: %w", err)
			}
			f.data = dir
		} else if entries, err := os.ReadDir(f.data); err == nil && len(entries) > 0 {
			return fmt.Errorf("demo needs a fresh data directory and %s is not empty: choose another --data or leave it out", f.data)
		}
	}
	if f.store == "" {
		if err := app.EnsureDir(f.data); err != nil {
			return err
		}
	}
	if demo && !f.mqttListenSet && !portFree(f.mqttListen) {
		// Another broker (often Mosquitto) has the MQTT port: the demo
		// still runs, with its broker on a free port.
		f.mqttListen = "127.0.0.1:0"
	}
	app.TuneGC()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	getenv := os.Getenv
	adminPassword := ""
	if demo {
		// The demo's administrator, with a password printed below.
		adminPassword = app.DemoPassword()
		getenv = func(name string) string {
			if name == auth.EnvAdminPassword {
				return adminPassword
			}
			return ""
		}
	}

	a, err := app.New(ctx, app.Config{Listen: f.listen, DataDir: f.data, StoreURL: f.store, BusURL: f.bus, BusStream: f.busStream, Version: versionString(), Log: log, HistorySealAfter: f.sealAfter, TemporalPageSize: f.pageSize, NoHistory: !f.history, HistoryRetention: f.retention, NotifyMaxAge: f.notifyMaxAge,
		MQTTListen: f.mqttListen, MQTTBroker: f.mqttBroker, MQTTTopic: f.mqttTopic, MQTTTLSCert: f.mqttTLSCert, MQTTTLSKey: f.mqttTLSKey,
		MQTTAnonymous: f.mqttAnonymous, TLSCert: f.tlsCert, TLSKey: f.tlsKey, TrustProxies: f.trustProxies,
		RateLimit: f.rateLimit, AnonymousRateLimit: f.anonRateLimit, AuditRetain: f.auditRetain, Env: getenv,
		OIDC: f.oidc, SessionIdle: f.sessionIdle, SessionMax: f.sessionMax})
	if err != nil {
		return err
	}
	if err := a.Start(); err != nil {
		a.Close(context.Background())
		return err
	}
	if demo {
		accounts, err := a.CreateDemoAccounts(ctx, adminPassword)
		if err != nil {
			a.Close(context.Background())
			return err
		}
		fmt.Fprintf(stdout, "zenne demo: loading the Brussels demo city into %s\n", f.data)
		start := time.Now()
		summary, err := a.LoadDemo(ctx, func(done, total int) {
			fmt.Fprintf(stdout, "\r  %d/%d entities", done, total)
		})
		fmt.Fprintln(stdout)
		if err != nil {
			a.Close(context.Background())
			return fmt.Errorf("load the demo city: %w", err)
		}
		loaded := time.Since(start)
		// The sensors' history (so that the alarm rules have weeks to
		// compare with), the rules, then the live sensors continuing it.
		script, err := a.BackfillDemo(ctx, func(done, total int) {
			fmt.Fprintf(stdout, "\r  history: %d/%d sensors", done, total)
		})
		fmt.Fprintln(stdout)
		if err != nil {
			a.Close(context.Background())
			return fmt.Errorf("write the demo's history: %w", err)
		}
		fmt.Fprintf(stdout, "  history: %d readings (%d attribute instances) of %d sensors in %s: five weeks of the energy loggers, four days of the water meters, six hours of the others\n",
			script.Readings, script.Instances, script.Sensors, script.Took.Round(time.Millisecond))
		rules, err := a.StartDemoAlarms(ctx, script)
		if err != nil {
			a.Close(context.Background())
			return fmt.Errorf("create the demo's alarm rules: %w", err)
		}
		devices, err := a.StartScriptedSimulator(ctx, script)
		if err != nil {
			a.Close(context.Background())
			return fmt.Errorf("start the demo city's sensors: %w", err)
		}
		fmt.Fprintf(stdout, "  %d alarm rules:", len(rules))
		for i, r := range rules {
			sep := ","
			if i == len(rules)-1 {
				sep = "\n"
			}
			fmt.Fprintf(stdout, " %s (%v)%s", r.ID, r.Doc["name"], sep)
		}
		fmt.Fprintf(stdout, "  their alerts open within a minute: the full bins, %d silent sensors, %d leaking water meters, an unusual day at %s;\n",
			len(script.Silent), len(script.Leaking), script.Unusual)
		fmt.Fprintln(stdout, "  demo staff then assigns one and acknowledges another")
		if script.Emptied != "" {
			fmt.Fprintf(stdout, "  at %s %s is emptied: its alert clears\n", script.EmptiedAt.Local().Format("15:04:05"), script.Emptied)
		}
		if script.Back != "" {
			fmt.Fprintf(stdout, "  at %s %s reports again: its alert clears\n", script.BackAt.Local().Format("15:04:05"), script.Back)
		}
		fmt.Fprintf(stdout, "  alerts: curl '%s/ngsi-ld/v1/entities?type=https://smartdatamodels.org/dataModel.Alert/Alert&limit=100'\n", a.URL())
		printDemo(stdout, a.URL(), summary, loaded, devices, a.MQTTAddr(), accounts)
	}
	<-ctx.Done()
	log.Info("shutting down")
	shutdown, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return a.Close(shutdown)
}

func printDemo(w io.Writer, url string, summary map[string]int, took time.Duration, devices int, mqttAddr string, accounts []app.DemoAccount) {
	types := make([]string, 0, len(summary))
	total := 0
	for t, n := range summary {
		types = append(types, t)
		total += n
	}
	sort.Strings(types)
	fmt.Fprintf(w, "  loaded %d entities in %s:\n", total, took.Round(time.Millisecond))
	for _, t := range types {
		fmt.Fprintf(w, "    %-28s %5d\n", t, summary[t])
	}
	fmt.Fprintf(w, "\nzenne demo city is live at %s\n", url)
	fmt.Fprintf(w, "  try: curl '%s/ngsi-ld/v1/entities?type=WasteContainer&q=fillingLevel>0.8&limit=5&options=keyValues' \\\n", url)
	fmt.Fprintf(w, "         -H 'Link: <https://raw.githubusercontent.com/smart-data-models/dataModel.WasteManagement/master/context.jsonld>; rel=\"http://www.w3.org/ns/json-ld#context\"'\n")
	fmt.Fprintf(w, "  types: curl %s/ngsi-ld/v1/types\n", url)
	operator := ""
	for _, acc := range accounts {
		if acc.Role == auth.RoleOperator {
			operator = acc.Key
		}
	}
	fmt.Fprintf(w, "  %d simulated sensors send readings: curl %s/iot/devices -H 'Authorization: Bearer %s'\n", devices, url, operator)
	if mqttAddr != "" {
		fmt.Fprintf(w, "  MQTT devices publish to %s (topic /{apikey}/{device}/attrs)\n", mqttAddr)
	}
	fmt.Fprintf(w, "\nThe city's data is public to read. Demo accounts (new passwords and keys each run; sign in at %s/login, or send a key as 'Authorization: Bearer <key>'):\n", url)
	for _, acc := range accounts {
		fmt.Fprintf(w, "  %-18s %-9s password %s  key %s\n    %s\n", acc.User, acc.Role, acc.Password, acc.Key, acc.What)
	}
	fmt.Fprintln(w, "Press Ctrl+C to stop.")
}

// portFree reports whether addr can be listened on now.
func portFree(addr string) bool {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

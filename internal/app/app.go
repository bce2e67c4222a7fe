// Package app wires zenne together: store, @context resolver, broker, HTTP
// APIs and server. Reading this file shows every component and how they
// connect.
package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/zenne-city/zenne/internal/alarm"
	"github.com/zenne-city/zenne/internal/api/access"
	"github.com/zenne-city/zenne/internal/api/adminapi"
	"github.com/zenne-city/zenne/internal/api/alarmapi"
	"github.com/zenne-city/zenne/internal/api/iotapi"
	"github.com/zenne-city/zenne/internal/api/ngsildapi"
	"github.com/zenne-city/zenne/internal/api/session"
	"github.com/zenne-city/zenne/internal/api/stream"
	"github.com/zenne-city/zenne/internal/auth"
	"github.com/zenne-city/zenne/internal/bus"
	"github.com/zenne-city/zenne/internal/bus/natsbus"
	"github.com/zenne-city/zenne/internal/core"
	"github.com/zenne-city/zenne/internal/demo"
	"github.com/zenne-city/zenne/internal/ingest"
	"github.com/zenne-city/zenne/internal/ingest/mqtt"
	"github.com/zenne-city/zenne/internal/jsonld"
	"github.com/zenne-city/zenne/internal/notify"
	"github.com/zenne-city/zenne/internal/notify/endpoint"
	"github.com/zenne-city/zenne/internal/server"
	"github.com/zenne-city/zenne/internal/store"
	"github.com/zenne-city/zenne/internal/store/postgres"
	"github.com/zenne-city/zenne/internal/store/sqlite"
)

// Config is what `zenne serve` is told.
type Config struct {
	Listen   string // address, e.g. ":1026"
	DataDir  string // where the embedded store keeps its file
	StoreURL string // "sqlite://path" (default: DataDir/zenne.db) or "postgres://..."
	// BusURL is the NATS server of the event bus shared by several
	// instances ("nats://host:4222"); empty: the in-process bus.
	BusURL string
	// BusStream is the JetStream stream of the bus (default
	// natsbus.DefaultStream); instances sharing a store share it.
	BusStream string
	Version   string
	Log       *slog.Logger
	// MaxBody is the largest request body in bytes (default 8 MiB).
	MaxBody int64
	// TemporalPageSize is the most instances per attribute a temporal
	// response holds (default 1,000); longer histories are paginated.
	TemporalPageSize int
	// NoHistory turns history recording off (the embedded store).
	NoHistory bool
	// HistorySealAfter is how long the embedded store keeps history
	// records uncompressed before sealing them into chunks (default 10m).
	HistorySealAfter time.Duration
	// HistoryRetention is the embedded store's retention rules
	// (store.ParseRetention; attribute names expand with the NGSI-LD core
	// @context); empty keeps all history.
	HistoryRetention string
	// NotifyMaxAge is how long a notification waits for an unreachable
	// receiver before it is dropped (default 24h).
	NotifyMaxAge time.Duration
	// MQTTListen is the address of the embedded MQTT broker devices
	// publish to (":1883"); empty: none.
	MQTTListen string
	// MQTTBroker is an external MQTT broker to subscribe to for device
	// messages ("mqtt://user:pass@host:1883", "mqtts://..."); empty: none.
	MQTTBroker string
	// MQTTTopic is a device topic pattern besides /{apikey}/{device}/attrs,
	// e.g. "city/{apikey}/{device}/up".
	MQTTTopic string
	// MQTTTLSCert and MQTTTLSKey make the embedded broker speak TLS only.
	MQTTTLSCert, MQTTTLSKey string
	// MQTTAnonymous lets clients without credentials publish for devices
	// that have no key of their own (their group's API key is in the topic).
	MQTTAnonymous bool

	// Env reads the first administrator's settings on the first start
	// (ZENNE_ADMIN_PASSWORD, ZENNE_ADMIN_KEY; see auth.Bootstrap); nil is
	// os.Getenv.
	Env func(string) string
	// TLSCert and TLSKey make the HTTP server speak HTTPS only (PEM files).
	TLSCert, TLSKey string
	// TrustProxies are the networks of reverse proxies whose
	// X-Forwarded-For and X-Forwarded-Proto headers are believed.
	TrustProxies []netip.Prefix
	// RateLimit caps the requests per second of each API key or user, and
	// AnonymousRateLimit those of each address without credentials (0:
	// no limit).
	RateLimit, AnonymousRateLimit float64
	// AuditRetain is how long the audit log keeps entries (0: for ever).
	AuditRetain time.Duration
	// Auth tunes accounts and logins (tests make password hashing cheap).
	Auth auth.Options
	// OIDC configures the console's single sign-on (off without an
	// issuer); SessionIdle and SessionMax the console sessions' timeouts
	// (defaults 30 min without a request, 12 h at most).
	OIDC                    session.OIDCConfig
	SessionIdle, SessionMax time.Duration
}

// App is a running zenne.
type App struct {
	cfg      Config
	Store    store.Store
	Broker   *core.Broker
	Resolver *jsonld.Resolver
	Bus      bus.Bus
	Notify   *notify.Service
	Devices  *ingest.Service
	Alarms   *alarm.Service
	mqttSrv  *mqtt.Server
	demoCity []demo.Entity // what LoadDemo loaded, for StartSimulator
	mqttCli  *mqtt.Client
	stream   *stream.Handler
	sender   *endpoint.Sender
	server   *server.Server
	// Auth holds accounts and keys; Audit the log of writes and refusals;
	// Guard the routes and what each needs.
	Auth     *auth.Service
	Audit    *auth.AuditLog
	Guard    *access.Guard
	http     *http.Server
	listener net.Listener
}

// New opens the store and builds the components; Start serves.
func New(ctx context.Context, cfg Config) (*App, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	// The resolver first: the store's retention rules name attributes in
	// the core @context. Its registry reads the store once it is open.
	hosted := &hostedContexts{}
	resolver := jsonld.NewResolver(jsonld.Options{Registry: hosted})
	st, err := OpenStore(ctx, cfg, resolver.Core())
	if err != nil {
		return nil, err
	}
	// What is open so far, closed in reverse order if a later step fails.
	var opened []func() error
	fail := func(err error) (*App, error) {
		for i := len(opened) - 1; i >= 0; i-- {
			opened[i]()
		}
		return nil, err
	}
	opened = append(opened, st.Close)
	hosted.s = st
	authn, err := auth.New(ctx, st, withLog(cfg.Auth, cfg.Log))
	if err != nil {
		return fail(err)
	}
	opened = append(opened, authn.Close)
	env := cfg.Env
	if env == nil {
		env = os.Getenv
	}
	if err := authn.Bootstrap(ctx, env, cfg.Log); err != nil {
		return fail(fmt.Errorf("first administrator: %w", err))
	}
	audit := auth.NewAuditLog(st, auth.AuditOptions{Log: cfg.Log, Retain: cfg.AuditRetain})
	opened = append(opened, audit.Close)
	// The console's logins: the guard reads the Authorization header, else
	// the session cookie.
	web, err := session.New(ctx, session.Config{Auth: authn, Audit: audit, OIDC: cfg.OIDC, Log: cfg.Log,
		Session: auth.SessionOptions{Idle: cfg.SessionIdle, Max: cfg.SessionMax}})
	if err != nil {
		return fail(err)
	}
	guard := access.New(web, access.Options{Log: cfg.Log, Audit: audit, Limits: access.Limits{
		PerKey: rate.Limit(cfg.RateLimit), PerAddress: rate.Limit(cfg.AnonymousRateLimit)}})
	broker := core.New(st, core.Options{})
	srv := server.New(cfg.Log, cfg.Version, map[string]server.Pinger{"store": st})
	// Every committed change goes on the bus; subscriptions and the live
	// stream read it.
	b, err := openBus(ctx, cfg, st)
	if err != nil {
		return fail(err)
	}
	opened = append(opened, func() error { return closeBus(b) })
	if p, ok := b.(server.Pinger); ok {
		srv.CheckDegraded("bus", p)
	}
	sender := endpoint.New(endpoint.Options{UserAgent: "zenne/" + cfg.Version, Log: cfg.Log})
	opened = append(opened, sender.Close)
	nopts := notify.Options{MaxAge: cfg.NotifyMaxAge, Log: cfg.Log, Registry: srv.Registry,
		// The alarm rules read the log after a restart from their saved position.
		TrimFloor: func(ctx context.Context) (uint64, bool) { return alarm.SavedPosition(ctx, st) }}
	if l, ok := st.(store.Leaser); ok && shared(st) {
		// Several instances may share this store: one at a time notifies.
		nopts.Lease = l
	}
	ns, err := notify.New(ctx, st, b, resolver, sender, nopts)
	if err != nil {
		return fail(err)
	}
	opened = append(opened, ns.Close)
	reg, err := ingest.NewRegistry(ctx, st, resolver, cfg.Log)
	if err != nil {
		return fail(err)
	}
	aopts := alarm.Options{Log: cfg.Log, Registry: srv.Registry}
	if l, ok := st.(store.Leaser); ok && shared(st) {
		aopts.Lease = l // one instance at a time evaluates the rules
	}
	alarms, err := alarm.New(ctx, st, b, broker, resolver, aopts)
	if err != nil {
		return fail(err)
	}
	// Every route is registered through the guard, with what it needs.
	ngsi := guard.API(access.HeaderTenant, access.Problem)
	alarmapi.New(alarms, resolver, cfg.Log).Register(ngsi)
	devices := ingest.NewService(reg, broker, cfg.Log, ingest.Options{})
	iotapi.New(devices, broker, cfg.Log).Register(guard.API(iotapi.Tenant, access.Problem))
	live := stream.New(b, resolver.Core(), cfg.Log, stream.Options{})
	live.Register(guard.API(stream.Tenant, access.Problem))
	ngsildapi.New(broker, st, resolver, cfg.Log, ngsildapi.Options{MaxBody: cfg.MaxBody, TemporalPageSize: cfg.TemporalPageSize,
		Subscriptions: ns}).Register(ngsi)
	platform := guard.API(nil, access.Problem)
	adminapi.New(authn, audit, cfg.Log).Register(guard.API(adminapi.Tenant, access.Problem))
	const probe = "health checks and metrics are read by load balancers and Prometheus"
	platform.Open("GET /health", probe, srv.Health(true))
	platform.Open("GET /health/live", probe, srv.Health(false))
	platform.Open("GET /health/ready", probe, srv.Health(true))
	platform.Open("GET /metrics", probe, srv.Metrics())
	platform.Open("GET /{$}", "the welcome line names the version and the API", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "zenne %s: NGSI-LD API at %s\n", cfg.Version, ngsildapi.Prefix)
	}))
	web.Register(platform)
	srv.TrustProxies(cfg.TrustProxies)
	return &App{cfg: cfg, Store: st, Broker: broker, Resolver: resolver, Bus: b, Notify: ns, Devices: devices, Alarms: alarms,
		stream: live, sender: sender, server: srv, Auth: authn, Audit: audit, Guard: guard}, nil
}

// withLog gives auth options the app's logger when they have none.
func withLog(o auth.Options, log *slog.Logger) auth.Options {
	if o.Log == nil {
		o.Log = log
	}
	return o
}

// openBus is the in-process bus over the store's change log, or with
// cfg.BusURL the NATS JetStream bus several instances share.
func openBus(ctx context.Context, cfg Config, st store.Store) (bus.Bus, error) {
	if cfg.BusURL == "" {
		if shared(st) {
			cfg.Log.Warn("the store can be shared but the bus is in-process: run one instance, or give every instance --bus nats://...")
		}
		return bus.NewLocal(st, bus.DefaultWindow), nil
	}
	if !strings.HasPrefix(cfg.BusURL, "nats://") && !strings.HasPrefix(cfg.BusURL, "tls://") {
		return nil, fmt.Errorf("bus URL %q: expected nats://host:4222", RedactURL(cfg.BusURL))
	}
	if !shared(st) {
		return nil, errors.New("--bus connects instances that share one store: give it with --store postgres://host/db")
	}
	b, err := natsbus.New(ctx, natsbus.Options{URL: cfg.BusURL, Stream: cfg.BusStream, Log: st, Logger: cfg.Log})
	if err != nil {
		return nil, fmt.Errorf("bus %s: %w", RedactURL(cfg.BusURL), err)
	}
	return b, nil
}

// closeBus stops a bus that has something to stop.
func closeBus(b bus.Bus) error {
	if c, ok := b.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// shared reports whether several zenne processes may use the store at
// once (the embedded store belongs to one process).
func shared(st store.Store) bool {
	_, embedded := st.(*sqlite.Store)
	return !embedded
}

// WaitIndexed waits until the store answers queries at full speed (the
// embedded store builds its in-memory query index after opening). Stores
// without such a step are always ready.
func (a *App) WaitIndexed(ctx context.Context) error {
	if w, ok := a.Store.(interface{ WaitIndex(context.Context) error }); ok {
		return w.WaitIndex(ctx)
	}
	return nil
}

// OpenStore opens the backend the store URL names; core expands the
// attribute names of cfg.HistoryRetention (nil: the default core @context).
func OpenStore(ctx context.Context, cfg Config, core *jsonld.Context) (store.Store, error) {
	u := cfg.StoreURL
	if u == "" {
		if cfg.DataDir == "" {
			return nil, errors.New("no --data directory and no --store URL: tell zenne where to keep its data")
		}
		u = "sqlite://" + filepath.Join(cfg.DataDir, "zenne.db")
	}
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return nil, fmt.Errorf("store URL %q: expected sqlite:///path/to/zenne.db", u)
	}
	switch scheme {
	case "sqlite", "file":
		path := rest
		if p, err := url.PathUnescape(rest); err == nil {
			path = p
		}
		retention, err := parseRetention(cfg, core)
		if err != nil {
			return nil, err
		}
		st, err := sqlite.Open(ctx, path, sqlite.Options{Log: cfg.Log, SealAfter: cfg.HistorySealAfter, NoHistory: cfg.NoHistory, Retention: retention})
		if err != nil {
			return nil, fmt.Errorf("open store %s: %w", path, err)
		}
		return st, nil
	case "postgres", "postgresql":
		retention, err := parseRetention(cfg, core)
		if err != nil {
			return nil, err
		}
		st, err := postgres.Open(ctx, u, postgres.Options{SealAfter: cfg.HistorySealAfter, NoHistory: cfg.NoHistory, Retention: retention})
		if err != nil {
			return nil, fmt.Errorf("open store %s: %w", RedactURL(u), err)
		}
		return st, nil
	}
	return nil, fmt.Errorf("store URL %q: unknown scheme %q (use sqlite:// or postgres://)", RedactURL(u), scheme)
}

// parseRetention reads cfg.HistoryRetention, expanding attribute names with
// core (nil: the NGSI-LD core @context).
func parseRetention(cfg Config, core *jsonld.Context) (store.Retention, error) {
	if core == nil && cfg.HistoryRetention != "" {
		core = jsonld.NewResolver(jsonld.Options{}).Core()
	}
	retention, err := store.ParseRetention(cfg.HistoryRetention, func(s string) string { return core.ExpandTerm(s) })
	if err != nil {
		return store.Retention{}, fmt.Errorf("history retention: %w", err)
	}
	return retention, nil
}

// RedactURL hides the password of a store or bus URL in messages.
func RedactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.User == nil {
		return u
	}
	if _, ok := p.User.Password(); !ok {
		return u
	}
	return p.Redacted()
}

// Start listens and serves in the background; Addr tells where.
func (a *App) Start() error {
	ln, err := net.Listen("tcp", a.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another zenne or broker running? choose another --listen)", a.cfg.Listen, err)
	}
	a.listener = ln
	if err := a.startMQTT(); err != nil {
		ln.Close()
		return err
	}
	a.Notify.Start()
	a.Alarms.Start()
	a.http = &http.Server{
		Handler:           a.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(a.cfg.Log.Handler(), slog.LevelWarn),
	}
	serve := a.http.Serve
	if a.cfg.TLSCert != "" || a.cfg.TLSKey != "" {
		cert, err := tls.LoadX509KeyPair(a.cfg.TLSCert, a.cfg.TLSKey)
		if err != nil {
			ln.Close()
			return fmt.Errorf("TLS certificate: %w (give --tls-cert and --tls-key, PEM files)", err)
		}
		a.http.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		serve = func(ln net.Listener) error { return a.http.ServeTLS(ln, "", "") }
	}
	go func() {
		if err := serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.cfg.Log.Error("http server stopped", "err", err)
		}
	}()
	a.cfg.Log.Info("zenne serving", "addr", ln.Addr().String(), "version", a.cfg.Version)
	return nil
}

// startMQTT starts the embedded MQTT broker and the external broker's
// client, as configured.
func (a *App) startMQTT() error {
	ctx := context.Background()
	if a.cfg.MQTTListen != "" {
		var tlsCfg *tls.Config
		if a.cfg.MQTTTLSCert != "" || a.cfg.MQTTTLSKey != "" {
			cert, err := tls.LoadX509KeyPair(a.cfg.MQTTTLSCert, a.cfg.MQTTTLSKey)
			if err != nil {
				return fmt.Errorf("MQTT TLS certificate: %w (give --mqtt-tls-cert and --mqtt-tls-key, PEM files)", err)
			}
			tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		}
		srv, err := mqtt.NewServer(mqtt.Options{Listen: a.cfg.MQTTListen, TLS: tlsCfg, Receiver: a.Devices,
			Auth: a.Devices.Registry(), Topic: a.cfg.MQTTTopic, Logger: a.cfg.Log, AllowAnonymous: a.cfg.MQTTAnonymous,
			Registry: a.server.Registry})
		if err != nil {
			return err
		}
		if err := srv.Start(ctx); err != nil {
			return fmt.Errorf("MQTT broker on %s: %w (is another broker, e.g. Mosquitto, using the port? choose another --mqtt-listen, or \"\" for none)", a.cfg.MQTTListen, err)
		}
		a.mqttSrv = srv
		a.cfg.Log.Info("MQTT broker listening", "addr", srv.Addr())
	}
	if a.cfg.MQTTBroker != "" {
		cli, err := mqtt.NewClient(mqtt.ClientOptions{BrokerURL: a.cfg.MQTTBroker, Topic: a.cfg.MQTTTopic, QoS: 1,
			Receiver: a.Devices, Logger: a.cfg.Log, Registry: a.server.Registry})
		if err != nil {
			return err
		}
		if err := cli.Start(ctx); err != nil {
			return fmt.Errorf("MQTT broker %s: %w (check --mqtt-broker)", RedactURL(a.cfg.MQTTBroker), err)
		}
		a.mqttCli = cli
	}
	return nil
}

// MQTTAddr is the embedded MQTT broker's address, "" without one.
func (a *App) MQTTAddr() string {
	if a.mqttSrv == nil {
		return ""
	}
	return a.mqttSrv.Addr()
}

// Addr is the address the server listens on (useful with port 0).
func (a *App) Addr() string { return a.listener.Addr().String() }

// URL is the base URL clients on this machine can use.
func (a *App) URL() string {
	host, port, _ := net.SplitHostPort(a.Addr())
	if host == "" || host == "::" || host == "0.0.0.0" {
		host = "localhost"
	}
	scheme := "http://"
	if a.cfg.TLSCert != "" {
		scheme = "https://"
	}
	return scheme + net.JoinHostPort(host, port)
}

// Close stops serving (letting requests in flight finish) and closes the store.
func (a *App) Close(ctx context.Context) error {
	var errs []error
	a.stream.Close() // live streams never end by themselves: end them first
	if a.http != nil {
		errs = append(errs, a.http.Shutdown(ctx))
	}
	if a.mqttSrv != nil {
		errs = append(errs, a.mqttSrv.Close())
	}
	if a.mqttCli != nil {
		errs = append(errs, a.mqttCli.Close())
	}
	errs = append(errs, a.Devices.Close(), a.Alarms.Close(), a.Notify.Close(), a.sender.Close(), closeBus(a.Bus),
		a.Audit.Close(), a.Auth.Close(), a.Store.Close())
	return errors.Join(errs...)
}

// Handler is the HTTP handler, for tests that do not need a listener.
func (a *App) Handler() http.Handler { return a.server.Handler(a.Guard) }

// hostedContexts lets the resolver find contexts registered through
// /jsonldContexts by their URL, on whatever host name the client used.
type hostedContexts struct{ s store.Contexts }

func (h *hostedContexts) GetContext(ctx context.Context, u string) ([]byte, bool, error) {
	i := strings.Index(u, ngsildapi.HostedPath)
	if i < 0 {
		return nil, false, nil
	}
	rec, err := h.s.GetContext(ctx, u[i+len(ngsildapi.HostedPath):])
	if errors.Is(err, store.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return rec.Body, true, nil
}

// EnsureDir makes the data directory.
func EnsureDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create data directory %s: %w", dir, err)
	}
	return nil
}

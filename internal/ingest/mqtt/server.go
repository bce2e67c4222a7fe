// Package mqtt is the MQTT transport of the device ingest
// (docs/DEVICES.md): an embedded broker devices connect to (Server, on
// mochi-mqtt), or a client of an external broker (Client). A message on a
// device topic — /{apikey}/{device}/attrs, /json/{apikey}/{device}/attrs or
// a configured pattern — becomes an ingest.Uplink handed to an
// ingest.Receiver; what the message means is the Receiver's business.
package mqtt

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"
	"unicode/utf8"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/zenne-city/zenne/internal/ingest"
)

// Options configure the embedded broker.
type Options struct {
	// Listen is the address to listen on: ":1883", "127.0.0.1:0".
	Listen string
	// TLS, when set, makes the listener speak MQTT over TLS only.
	TLS      *tls.Config
	Receiver ingest.Receiver
	// Auth decides connections and publications. Nil: any client may
	// connect and publish for any device, which AllowAnonymous must then
	// allow explicitly.
	Auth ingest.Authenticator
	// Topic is a device topic pattern besides the default ones, with
	// {apikey} and {device} each a whole level: "city/{apikey}/{device}/up".
	Topic  string
	Logger *slog.Logger
	// AllowAnonymous lets clients connect without a user name (Auth is not
	// asked). They publish for the devices Auth.AllowPublish allows the
	// user name "" (for all devices when Auth is nil).
	AllowAnonymous bool
	// Registry receives the zenne_mqtt_* metrics (label broker="embedded");
	// nil: they are not registered.
	Registry prometheus.Registerer
}

// maxPacket bounds an MQTT packet (a datalogger's day of readings is a few
// kilobytes); a larger one closes the connection.
const maxPacket = 1 << 20

// Server is the embedded MQTT broker. Devices publish to it; nothing is
// delivered to MQTT subscribers (clients may not subscribe).
type Server struct {
	opts Options
	in   *intake
	// patternHint ends the PUBACK reason string of a message on another
	// topic: " or {pattern}".
	patternHint string
	log         *slog.Logger
	mq          *mochi.Server

	ctx       context.Context // of the Receive calls; ends at Close
	cancel    context.CancelFunc
	closeOnce sync.Once

	mu   sync.Mutex
	tcp  *listeners.TCP // (mu) set once started
	stop func() bool    // (mu) unregisters the Close at ctx's end
}

// NewServer returns a broker that listens once started.
func NewServer(o Options) (*Server, error) {
	if o.Listen == "" {
		return nil, errors.New("MQTT broker: no listen address")
	}
	if o.Auth == nil && !o.AllowAnonymous {
		return nil, errors.New("MQTT broker: no Authenticator, and anonymous clients are not allowed: nobody could connect")
	}
	in, err := newIntake(o.Receiver, o.Topic, o.Logger, o.Registry, "embedded")
	if err != nil {
		return nil, err
	}
	caps := mochi.NewDefaultServerCapabilities()
	caps.MaximumPacketSize = maxPacket
	caps.RetainAvailable = 0                               // nothing is delivered to subscribers, so nothing is kept
	caps.Compatibilities.NoInheritedPropertiesOnAck = true // a PUBACK does not echo the PUBLISH's properties
	s := &Server{opts: o, in: in, log: in.log}
	if o.Topic != "" {
		s.patternHint = " or " + o.Topic
	}
	s.mq = mochi.New(&mochi.Options{
		Capabilities: caps,
		Logger:       slog.New(demote{s.log.Handler()}).With("component", "mochi-mqtt"),
	})
	if err := s.mq.AddHook(&hook{s: s}, nil); err != nil {
		return nil, fmt.Errorf("MQTT broker: %w", err)
	}
	return s, nil
}

// Start listens and serves until Close is called or ctx ends.
func (s *Server) Start(ctx context.Context) error {
	// The hook reads s.ctx as soon as Serve accepts connections.
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	tcp := listeners.NewTCP(listeners.Config{ID: "devices", Address: s.opts.Listen, TLSConfig: s.opts.TLS})
	if err := s.mq.AddListener(tcp); err != nil {
		s.cancel()
		return fmt.Errorf("MQTT broker: listen on %s: %w", s.opts.Listen, err)
	}
	if err := s.mq.Serve(); err != nil {
		s.cancel()
		s.mq.Close()
		return fmt.Errorf("MQTT broker: %w", err)
	}
	s.mu.Lock()
	s.tcp = tcp
	s.stop = context.AfterFunc(ctx, func() { s.Close() })
	s.mu.Unlock()
	s.log.Info("MQTT broker listening", "addr", tcp.Address(), "tls", s.opts.TLS != nil)
	return nil
}

// Addr is the address the broker listens on (its port when Listen asked
// for port 0); "" before Start.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tcp == nil {
		return ""
	}
	return s.tcp.Address()
}

// Close disconnects the clients, stops listening and waits for the
// connections' goroutines to end.
func (s *Server) Close() error {
	s.mu.Lock()
	started := s.tcp != nil
	if started {
		s.stop()
	}
	s.mu.Unlock()
	if started {
		s.closeOnce.Do(func() {
			s.cancel()
			s.mq.Close()
		})
	}
	return nil
}

// allowConnect decides a CONNECT's credentials.
func (s *Server) allowConnect(user, password string) bool {
	if user == "" || s.opts.Auth == nil {
		return s.opts.AllowAnonymous
	}
	return s.opts.Auth.AllowConnect(user, password)
}

// hook is where mochi hands zenne connections and messages.
type hook struct {
	mochi.HookBase
	s *Server
}

func (h *hook) ID() string { return "zenne-ingest" }

func (h *hook) Provides(b byte) bool {
	switch b {
	case mochi.OnConnectAuthenticate, mochi.OnACLCheck, mochi.OnPublish,
		mochi.OnSessionEstablished, mochi.OnDisconnect:
		return true
	}
	return false
}

func (h *hook) OnConnectAuthenticate(cl *mochi.Client, pk packets.Packet) bool {
	user := string(pk.Connect.Username)
	if h.s.allowConnect(user, string(pk.Connect.Password)) {
		return true
	}
	h.s.in.m.refused.Inc()
	h.s.in.debug("MQTT connection refused: bad user name or password", "client", cl.ID, "device", user, "remote", cl.Net.Remote)
	return false
}

// OnACLCheck lets clients publish (OnPublish checks for which device) and
// subscribe to nothing: devices' messages are for zenne alone.
func (h *hook) OnACLCheck(_ *mochi.Client, _ string, write bool) bool { return write }

func (h *hook) OnSessionEstablished(*mochi.Client, packets.Packet) {
	h.s.in.m.accepted.Inc()
	h.s.in.m.connections.Inc()
}

func (h *hook) OnDisconnect(*mochi.Client, error, bool) { h.s.in.m.connections.Dec() }

// OnPublish hands a device's message to the Receiver. It runs on the
// client's connection before a QoS 1 message is acknowledged, so the PUBACK
// follows Receive. The returned error tells mochi to acknowledge and drop
// the message (nothing is routed to subscribers), or, to an MQTT 5 client
// at QoS 1, why it was refused.
func (h *hook) OnPublish(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	s, received := h.s, time.Now()
	s.in.m.received.Inc()
	apikey, device, ok := s.in.topics.parse(pk.TopicName)
	if !ok {
		s.in.unknownTopic(cl.ID)
		return pk, refusal(cl, pk, packets.Code{Code: packets.ErrTopicNameInvalid.Code,
			Reason: "zenne reads /{apikey}/{device}/attrs, /json/{apikey}/{device}/attrs" + s.patternHint})
	}
	if user := string(cl.Properties.Username); s.opts.Auth != nil && !s.opts.Auth.AllowPublish(user, apikey, device) {
		r := ingest.Reject(http.StatusForbidden, "the MQTT client connected as %q may not publish for device %q", user, device)
		s.in.reject(device, r)
		return pk, refusal(cl, pk, pubackCode(r))
	}
	if r := s.in.receive(s.ctx, apikey, device, pk.Payload, pk.FixedHeader.Qos, received); r != nil {
		return pk, refusal(cl, pk, pubackCode(r))
	}
	return pk, packets.CodeSuccessIgnore
}

// refusal is OnPublish's answer for a message zenne did not take: code in
// the PUBACK of an MQTT 5 client at QoS 1; otherwise acknowledged as usual
// (MQTT 3.1.1 has no way to say no but closing the connection) and dropped.
func refusal(cl *mochi.Client, pk packets.Packet, code packets.Code) error {
	if cl.Properties.ProtocolVersion == 5 && pk.FixedHeader.Qos == 1 {
		return code
	}
	return packets.CodeSuccessIgnore
}

// pubackCode is the MQTT 5 PUBACK for a rejection: a reason code for its
// status, and its reason as the reason string.
func pubackCode(r *ingest.Rejection) packets.Code {
	code := packets.ErrUnspecifiedError
	switch r.Status {
	case http.StatusBadRequest, http.StatusUnprocessableEntity:
		code = packets.ErrPayloadFormatInvalid
	case http.StatusUnauthorized, http.StatusForbidden:
		code = packets.ErrNotAuthorized
	case http.StatusTooManyRequests:
		code = packets.ErrQuotaExceeded
	case http.StatusNotFound, http.StatusRequestEntityTooLarge:
		code = packets.ErrImplementationSpecificError
	}
	reason := r.Reason
	if len(reason) > maxReason { // cut between characters: it must stay UTF-8
		n := maxReason
		for n > 0 && !utf8.RuneStart(reason[n]) {
			n--
		}
		reason = reason[:n]
	}
	return packets.Code{Code: code.Code, Reason: reason}
}

// maxReason bounds a PUBACK's reason string.
const maxReason = 256

// demote passes a library's records on at debug level. mochi's are about
// single clients (one went away, sent a bad packet) or, as errors, about
// each message the hook refused: a broker of thousands of devices sees them
// all the time.
type demote struct{ h slog.Handler }

func (d demote) Enabled(ctx context.Context, _ slog.Level) bool {
	return d.h.Enabled(ctx, slog.LevelDebug)
}

func (d demote) Handle(ctx context.Context, r slog.Record) error {
	r.Level = slog.LevelDebug
	return d.h.Handle(ctx, r)
}

func (d demote) WithAttrs(as []slog.Attr) slog.Handler { return demote{d.h.WithAttrs(as)} }
func (d demote) WithGroup(name string) slog.Handler    { return demote{d.h.WithGroup(name)} }

package mqtt

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/zenne-city/zenne/internal/ingest"
)

// ClientOptions configure the client of an external broker.
type ClientOptions struct {
	// BrokerURL is mqtt://[user:password@]host[:port] (port 1883 by
	// default), or mqtts:// for TLS (port 8883).
	BrokerURL string
	// Topic is a device topic pattern besides the default ones, as in
	// Options.
	Topic string
	// QoS of the subscriptions: 0 or 1.
	QoS      byte
	Receiver ingest.Receiver
	Logger   *slog.Logger
	// TLS configures mqtts:// (nil: the system's roots).
	TLS *tls.Config
	// ClientID names zenne at the broker. When set the session is
	// persistent: the broker keeps QoS 1 messages while zenne is away and
	// hands them over when it is back. Empty: a random id, a clean session.
	ClientID string
	// Workers is how many messages are handed to the Receiver at once
	// (default 64). A device's messages all go through one worker, in the
	// order they came.
	Workers int
	// Registry receives the zenne_mqtt_* metrics (label broker="external");
	// nil: they are not registered.
	Registry prometheus.Registerer
}

// connectTimeout bounds one connection attempt; after the first, the client
// tries again, waiting up to maxReconnectWait between attempts.
const (
	connectTimeout   = 10 * time.Second
	maxReconnectWait = 30 * time.Second
	workerQueue      = 64
)

// Client subscribes to the device topics on an external broker (MQTT 3.1.1,
// which every broker speaks) and hands their messages to the Receiver; a
// QoS 1 message is acknowledged once Receive has returned. It reconnects by
// itself.
type Client struct {
	opts    ClientOptions
	in      *intake
	log     *slog.Logger
	broker  string // scheme://host:port, for logs (no credentials)
	server  string // paho's broker URL
	user    string
	pass    string
	filters map[string]byte
	seed    maphash.Seed
	// persistent: the operator named the client; its session outlives
	// connections.
	persistent bool

	cl     paho.Client
	ctx    context.Context // of the Receive calls; ends at Close
	cancel context.CancelFunc
	stop   func() bool // (mu) unregisters the Close at ctx's end

	mu      sync.RWMutex // held (read) while a message is queued
	closed  bool         // (mu)
	queues  []chan message
	workers sync.WaitGroup

	first     chan error // the first subscription's outcome
	firstOnce sync.Once
	closeOnce sync.Once
}

// message is a device message waiting for a worker.
type message struct {
	apikey, device string
	received       time.Time
	m              paho.Message // acknowledged after Receive
}

// NewClient checks the options and returns a client to Start.
func NewClient(o ClientOptions) (*Client, error) {
	if o.QoS > 1 {
		return nil, fmt.Errorf("MQTT client: QoS %d: use 0 or 1", o.QoS)
	}
	u, err := url.Parse(o.BrokerURL)
	if err != nil || u.Host == "" { // (url's error would show the password)
		return nil, errors.New("MQTT client: the broker URL is not of the form mqtt://host:port or mqtts://host:port")
	}
	c := &Client{opts: o, seed: maphash.MakeSeed(), first: make(chan error, 1)}
	var scheme, port string
	switch u.Scheme {
	case "mqtt", "tcp":
		scheme, port = "tcp", "1883"
	case "mqtts", "ssl", "tls":
		scheme, port = "ssl", "8883"
	default:
		return nil, fmt.Errorf("MQTT client: broker URL %q: scheme %q: want mqtt or mqtts", u.Redacted(), u.Scheme)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), port)
	}
	c.server = scheme + "://" + host
	c.broker = u.Scheme + "://" + host
	c.user = u.User.Username()
	c.pass, _ = u.User.Password()
	if c.in, err = newIntake(o.Receiver, o.Topic, o.Logger, o.Registry, "external"); err != nil {
		return nil, err
	}
	c.log = c.in.log.With("broker", c.broker)
	c.filters = map[string]byte{}
	for _, f := range c.in.topics.filters() {
		c.filters[f] = o.QoS
	}
	if c.opts.Workers <= 0 {
		c.opts.Workers = 64
	}
	c.persistent = c.opts.ClientID != ""
	if !c.persistent {
		c.opts.ClientID = "zenne-" + randomHex(6)
	}
	return c, nil
}

// Start connects and subscribes, then keeps the subscriptions up (through
// reconnections) until Close is called or ctx ends. It fails when the first
// connection or subscription fails: a wrong address or password shows at
// once.
func (c *Client) Start(ctx context.Context) error {
	c.ctx, c.cancel = context.WithCancel(context.WithoutCancel(ctx))
	c.queues = make([]chan message, c.opts.Workers)
	for i := range c.queues {
		q := make(chan message, workerQueue)
		c.queues[i] = q
		c.workers.Add(1)
		go c.work(q)
	}
	o := paho.NewClientOptions().
		AddBroker(c.server).
		SetClientID(c.opts.ClientID).
		SetUsername(c.user).
		SetPassword(c.pass).
		SetProtocolVersion(4).
		SetAutoReconnect(true).
		SetConnectRetry(false).
		SetMaxReconnectInterval(maxReconnectWait).
		SetConnectTimeout(connectTimeout).
		SetKeepAlive(30 * time.Second).
		SetPingTimeout(10 * time.Second).
		SetOrderMatters(true). // handle queues; workers give the concurrency
		SetAutoAckDisabled(true).
		SetDefaultPublishHandler(c.handle).
		SetOnConnectHandler(c.subscribe).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			c.in.m.connections.Set(0)
			c.log.Warn("MQTT broker connection lost; reconnecting", "err", err)
		}).
		SetReconnectingHandler(func(paho.Client, *paho.ClientOptions) {
			c.log.Debug("MQTT broker: reconnecting")
		})
	o.SetCustomOpenConnectionFn(c.dial)
	o.SetCleanSession(!c.persistent) // a session is kept for an id the operator chose
	c.cl = paho.NewClient(o)
	tok := c.cl.Connect()
	var err error
	select {
	case <-tok.Done():
		if err = tok.Error(); err != nil {
			c.in.m.refused.Inc()
		}
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err == nil {
		select {
		case err = <-c.first: // counted by subscribe
		case <-ctx.Done():
			err = ctx.Err()
		case <-time.After(2 * connectTimeout): // subscribe waits connectTimeout
			err = errors.New("no answer to SUBSCRIBE")
		}
	}
	if err != nil {
		c.shutdown()
		return fmt.Errorf("MQTT client: connect to %s: %w", c.broker, err)
	}
	c.mu.Lock()
	c.stop = context.AfterFunc(ctx, func() { c.Close() })
	c.mu.Unlock()
	return nil
}

// Close disconnects and waits for the messages taken to reach the Receiver
// (which sees ctx ended).
func (c *Client) Close() error {
	if c.cl == nil { // not started
		return nil
	}
	c.mu.Lock()
	if c.stop != nil {
		c.stop()
	}
	c.mu.Unlock()
	c.shutdown()
	return nil
}

func (c *Client) shutdown() {
	c.closeOnce.Do(func() {
		c.cl.Disconnect(250)
		c.in.m.connections.Set(0)
		c.cancel()
		c.mu.Lock()
		c.closed = true
		for _, q := range c.queues {
			close(q)
		}
		c.mu.Unlock()
		c.workers.Wait()
	})
}

// subscribe runs on each connection, the first and the reconnections. A
// failure on the first fails Start; on a later one, it tries again while
// the connection lasts.
func (c *Client) subscribe(cl paho.Client) {
	for {
		err := c.trySubscribe(cl)
		first := false
		c.firstOnce.Do(func() { first = true; c.first <- err })
		if err == nil {
			c.in.m.accepted.Inc()
			c.in.m.connections.Set(1)
			c.log.Info("MQTT broker: subscribed", "topics", len(c.filters), "qos", c.opts.QoS)
			return
		}
		c.log.Error("MQTT broker: subscribe failed", "err", err)
		c.in.m.refused.Inc()
		if first {
			return // Start fails and closes
		}
		select {
		case <-c.ctx.Done():
			return
		case <-time.After(5 * time.Second):
		}
		if !cl.IsConnectionOpen() {
			return // the next connection subscribes
		}
	}
}

func (c *Client) trySubscribe(cl paho.Client) error {
	tok := cl.SubscribeMultiple(c.filters, nil) // nil: messages go to handle
	if !tok.WaitTimeout(connectTimeout) {
		return errors.New("no answer to SUBSCRIBE")
	}
	if err := tok.Error(); err != nil {
		return err
	}
	for f, code := range tok.(*paho.SubscribeToken).Result() {
		if code == 0x80 {
			return fmt.Errorf("the broker refused the subscription to %s", f)
		}
	}
	return nil
}

// handle runs in the paho client's one delivery goroutine: it queues the
// message for the worker of its device (waiting while that worker is busy,
// which slows the broker's sending) or, for other topics, acknowledges it.
func (c *Client) handle(_ paho.Client, m paho.Message) {
	received := time.Now()
	c.in.m.received.Inc()
	apikey, device, ok := c.in.topics.parse(m.Topic())
	if !ok {
		c.in.unknownTopic(c.opts.ClientID)
		m.Ack()
		return
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return // not acknowledged: a persistent session has it again
	}
	var h maphash.Hash
	h.SetSeed(c.seed)
	h.WriteString(apikey)
	h.WriteByte('/')
	h.WriteString(device)
	c.queues[h.Sum64()%uint64(len(c.queues))] <- message{apikey: apikey, device: device, received: received, m: m}
}

func (c *Client) work(q <-chan message) {
	defer c.workers.Done()
	for msg := range q {
		c.in.receive(c.ctx, msg.apikey, msg.device, msg.m.Payload(), msg.m.Qos(), msg.received)
		msg.m.Ack() // whatever the answer: sending it again would not change it
	}
}

// dial connects to the broker. The connection reads through a buffer:
// paho reads a packet's header a byte at a time.
func (c *Client) dial(uri *url.URL, _ paho.ClientOptions) (net.Conn, error) {
	d := &net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second}
	var conn net.Conn
	var err error
	if uri.Scheme == "ssl" {
		conn, err = tls.DialWithDialer(d, "tcp", uri.Host, c.opts.TLS) // nil: the system's roots
	} else {
		conn, err = d.Dial("tcp", uri.Host)
	}
	if err != nil {
		return nil, err
	}
	return &bufferedConn{Conn: conn, r: bufio.NewReaderSize(conn, 32<<10)}, nil
}

type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

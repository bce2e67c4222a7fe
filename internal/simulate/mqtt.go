package simulate

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
	"golang.org/x/sync/errgroup"
)

// MQTTOptions configure an MQTTSender.
type MQTTOptions struct {
	// URL is the broker: mqtt://host:1883 (or tcp://), mqtts://host:8883
	// (or ssl://).
	URL string
	QoS byte // 0 or 1
	// DevicesPerConn is how many devices share a connection (default 100).
	// 1 connects each device on its own with its device id as user name,
	// as zenne's embedded broker wants when anonymous publishing is off.
	DevicesPerConn int
	// Username and Password for every connection (default: none, or the
	// device id with DevicesPerConn 1).
	Username, Password string
	// Topic is the topic pattern (default "/{apikey}/{device}/attrs").
	Topic string
	// ConnectTimeout per connection (default 5s).
	ConnectTimeout time.Duration
}

// DefaultTopic is the IoT Agent JSON topic zenne listens to.
const DefaultTopic = "/{apikey}/{device}/attrs"

// MQTTSender publishes uplinks over several MQTT 3.1.1 connections.
type MQTTSender struct {
	url     string
	qos     byte
	perConn int
	conns   []mqtt.Client
	topics  []string // by Device.index
}

// DialMQTT connects to the broker for the fleet's devices, probes
// included: one connection per o.DevicesPerConn devices. It fails when a
// connection fails, saying why.
func DialMQTT(ctx context.Context, f *Fleet, o MQTTOptions) (*MQTTSender, error) {
	u, err := url.Parse(o.URL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("MQTT broker %q: give mqtt://host:1883", o.URL)
	}
	broker := ""
	switch u.Scheme {
	case "mqtt", "tcp":
		broker = "tcp://" + hostPort(u, "1883")
	case "mqtts", "ssl", "tls":
		broker = "ssl://" + hostPort(u, "8883")
	default:
		return nil, fmt.Errorf("MQTT broker %q: the scheme is mqtt:// or mqtts://", o.URL)
	}
	if o.QoS > 1 {
		return nil, fmt.Errorf("QoS %d: use 0 or 1", o.QoS)
	}
	if o.DevicesPerConn <= 0 {
		o.DevicesPerConn = 100
	}
	if o.Topic == "" {
		o.Topic = DefaultTopic
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 5 * time.Second
	}
	if u.User != nil && o.Username == "" {
		o.Username = u.User.Username()
		o.Password, _ = u.User.Password()
	}
	all := f.all()
	m := &MQTTSender{url: o.URL, qos: o.QoS, perConn: o.DevicesPerConn, topics: make([]string, len(all))}
	for _, d := range all {
		m.topics[d.index] = strings.NewReplacer("{apikey}", d.APIKey, "{device}", d.ID).Replace(o.Topic)
	}
	n := (len(all) + o.DevicesPerConn - 1) / o.DevicesPerConn
	m.conns = make([]mqtt.Client, n)
	nonce := time.Now().UnixNano() % 1_000_000_000
	var g errgroup.Group
	g.SetLimit(32)
	for i := range n {
		g.Go(func() error {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			user, pass := o.Username, o.Password
			if user == "" && o.DevicesPerConn == 1 {
				user = all[i].ID
			}
			opts := mqtt.NewClientOptions().
				AddBroker(broker).
				SetClientID(fmt.Sprintf("zenne-sim-%d-%d", nonce, i)).
				SetUsername(user).SetPassword(pass).
				SetProtocolVersion(4).
				SetCleanSession(true).
				SetAutoReconnect(true).
				SetMaxReconnectInterval(2 * time.Second).
				SetConnectRetry(false).
				SetOrderMatters(false).
				SetKeepAlive(30 * time.Second).
				SetConnectTimeout(o.ConnectTimeout).
				SetWriteTimeout(10 * time.Second).
				SetDialer(&net.Dialer{Timeout: o.ConnectTimeout, KeepAlive: 30 * time.Second})
			c := mqtt.NewClient(opts)
			tok := c.Connect()
			if !tok.WaitTimeout(o.ConnectTimeout + time.Second) {
				return fmt.Errorf("cannot connect to %s: no answer within %s", o.URL, o.ConnectTimeout)
			}
			if err := tok.Error(); err != nil {
				return connectError(o.URL, user, tok, err)
			}
			m.conns[i] = c
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

func hostPort(u *url.URL, port string) string {
	if u.Port() == "" {
		return net.JoinHostPort(u.Hostname(), port)
	}
	return u.Host
}

// connectError says why a CONNECT failed.
func connectError(url, user string, tok mqtt.Token, err error) error {
	var rc byte = packets.ErrNetworkError
	if ct, ok := tok.(*mqtt.ConnectToken); ok {
		rc = ct.ReturnCode()
	}
	switch rc {
	case packets.ErrRefusedNotAuthorised, packets.ErrRefusedBadUsernameOrPassword:
		who := "anonymous clients"
		if user != "" {
			who = "user " + user
		}
		return &SendError{Kind: "mqtt not authorized", Err: fmt.Errorf("%s refused %s: %w", url, who, err)}
	case packets.ErrRefusedIDRejected, packets.ErrRefusedBadProtocolVersion, packets.ErrRefusedServerUnavailable:
		return &SendError{Kind: "mqtt refused", Err: fmt.Errorf("%s refused the connection: %w", url, err)}
	}
	return &SendError{Kind: netErrorKind(err), Err: fmt.Errorf("cannot connect to %s: %w", url, err)}
}

// Connections is the number of MQTT connections.
func (m *MQTTSender) Connections() int { return len(m.conns) }

// Workers is one concurrent sender per connection (at most 1024).
func (m *MQTTSender) Workers() int { return min(len(m.conns), 1024) }

// Send publishes the payload on d's topic, on d's connection; with QoS 1 it
// waits for the broker's PUBACK.
func (m *MQTTSender) Send(ctx context.Context, d *Device, payload []byte) error {
	if d.index >= len(m.topics) {
		return fmt.Errorf("device %s is not of the fleet this sender connected for", d.ID)
	}
	c := m.conns[d.index/m.perConn]
	tok := c.Publish(m.topics[d.index], m.qos, false, payload)
	select {
	case <-tok.Done():
	case <-ctx.Done():
		// The message is queued: give it a moment, so that the counts say
		// what the broker got.
		if !tok.WaitTimeout(time.Second) {
			return ctx.Err()
		}
	}
	if err := tok.Error(); err != nil {
		if errors.Is(err, mqtt.ErrNotConnected) {
			return &SendError{Kind: "mqtt not connected", Err: fmt.Errorf("publish to %s: %w", m.url, err)}
		}
		return &SendError{Kind: "mqtt publish", Err: fmt.Errorf("publish to %s: %w", m.url, err)}
	}
	return nil
}

// Close disconnects, letting queued messages go for a quarter second.
func (m *MQTTSender) Close() error {
	var g errgroup.Group
	g.SetLimit(64)
	for _, c := range m.conns {
		if c != nil {
			g.Go(func() error { c.Disconnect(250); return nil })
		}
	}
	return g.Wait()
}

package endpoint

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
)

// mqtt5Conn is an MQTT 5.0 connection (eclipse/paho.golang's low-level
// client; the pool does what its autopaho would: connect again).
type mqtt5Conn struct {
	cl      *paho.Client
	key     mqttKey
	closing atomic.Bool // close was called: the client's errors are expected
}

func (p *mqttPool) dial5(ctx context.Context, key mqttKey, start time.Time) (mqttConn, error) {
	what := "connect to MQTT broker " + key.Addr
	nd := &net.Dialer{Timeout: p.s.timeout, KeepAlive: 30 * time.Second}
	var (
		conn net.Conn
		err  error
	)
	if key.TLS {
		td := &tls.Dialer{NetDialer: nd, Config: p.s.tls} // nil Config: the system's roots; the server name comes from Addr
		conn, err = td.DialContext(ctx, "tcp", key.Addr)
	} else {
		conn, err = nd.DialContext(ctx, "tcp", key.Addr)
	}
	if err != nil {
		return nil, failure(what, err, start, key.User, key.Password)
	}
	log := p.s.log
	c := &mqtt5Conn{key: key}
	c.cl = paho.NewClient(paho.ClientConfig{
		Conn:          packets.NewThreadSafeConn(conn), // publishes write from many goroutines
		PacketTimeout: p.s.timeout,
		OnClientError: func(err error) {
			if !c.closing.Load() {
				reason, _, _ := netFailure(err, key.User, key.Password)
				log.Info("MQTT connection lost", "endpoint", key.String(), "err", reason)
			}
		},
		OnServerDisconnect: func(d *paho.Disconnect) {
			log.Info("MQTT broker closed the connection", "endpoint", key.String(), "err", reasonText(d.ReasonCode))
		},
	})
	cp := &paho.Connect{
		ClientID:   newClientID(),
		CleanStart: true,
		KeepAlive:  uint16(mqttKeepAlive / time.Second),
	}
	if key.User != "" {
		cp.Username, cp.UsernameFlag = key.User, true
	}
	if key.HasPassword {
		cp.Password, cp.PasswordFlag = []byte(key.Password), true
	}
	ca, err := c.cl.Connect(ctx, cp) // closes conn when it fails
	if err != nil {
		if ca != nil && ca.ReasonCode >= 0x80 {
			return nil, &Error{
				Cause:     "MQTT broker " + key.Addr + " refused the connection: " + reasonText(ca.ReasonCode),
				Temporary: temporaryReason(ca.ReasonCode),
			}
		}
		return nil, failure(what, err, start, key.User, key.Password)
	}
	return c, nil
}

// errConnectionLost: the connection closed while a publish waited for its
// acknowledgment; the broker may or may not have the message.
var errConnectionLost = errors.New("connection lost")

func (c *mqtt5Conn) publish(ctx context.Context, p *mqttPublish) error {
	if !c.alive() {
		return &publishError{err: errConnectionLost, dropConn: true, notSent: true}
	}
	pub := &paho.Publish{Topic: p.Topic, QoS: p.QoS, Payload: p.Payload}
	if len(p.User) > 0 {
		user := make(paho.UserProperties, len(p.User))
		for i, kv := range p.User {
			user[i] = paho.UserProperty{Key: mqttString(kv.Key), Value: mqttString(kv.Value)}
		}
		pub.Properties = &paho.PublishProperties{User: user}
	}
	var lost atomic.Bool
	if p.QoS > 0 {
		// The client does not end a publish waiting for its acknowledgment
		// when the connection closes: this does.
		pctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() {
			select {
			case <-c.cl.Done():
				lost.Store(true)
				cancel()
			case <-pctx.Done():
			}
		}()
		ctx = pctx
	}
	pr, err := c.cl.Publish(ctx, pub)
	if pr != nil && pr.ReasonCode >= 0x80 { // PUBACK or PUBREC with an error: the connection is fine
		return &publishError{e: &Error{
			Cause:     "MQTT broker " + c.key.Addr + " rejected the message: " + reasonText(pr.ReasonCode),
			Temporary: temporaryReason(pr.ReasonCode),
		}}
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, paho.ErrInvalidArguments): // for example a QoS above the broker's maximum
		return &publishError{e: &Error{Cause: "MQTT broker " + c.key.Addr + " does not take the message: " + err.Error()}}
	case errors.Is(err, net.ErrClosed): // the connection had just been closed: nothing was written
		return &publishError{err: err, dropConn: true, notSent: true}
	case lost.Load() || !c.alive():
		return &publishError{err: errConnectionLost, dropConn: true}
	}
	// A timeout waiting for the acknowledgment; the connection may be fine (a slow broker).
	return &publishError{err: err}
}

func (c *mqtt5Conn) alive() bool {
	select {
	case <-c.cl.Done():
		return false
	default:
		return true
	}
}

func (c *mqtt5Conn) close() {
	c.closing.Store(true)
	_ = c.cl.Disconnect(&paho.Disconnect{ReasonCode: 0})
}

// reasonText names an MQTT 5 reason code (CONNACK, PUBACK, PUBREC, DISCONNECT).
func reasonText(code byte) string {
	switch code {
	case 0x00:
		return "normal disconnection"
	case 0x80:
		return "unspecified error"
	case 0x81:
		return "malformed packet"
	case 0x82:
		return "protocol error"
	case 0x83:
		return "implementation specific error"
	case 0x84:
		return "unsupported protocol version (MQTT 5.0)"
	case 0x85:
		return "client identifier not valid"
	case 0x86:
		return "bad user name or password"
	case 0x87:
		return "not authorized"
	case 0x88:
		return "server unavailable"
	case 0x89:
		return "server busy"
	case 0x8A:
		return "banned"
	case 0x8B:
		return "server shutting down"
	case 0x8C:
		return "bad authentication method"
	case 0x8D:
		return "keep alive timeout"
	case 0x8E:
		return "session taken over"
	case 0x90:
		return "topic name invalid"
	case 0x91:
		return "packet identifier in use"
	case 0x93:
		return "receive maximum exceeded"
	case 0x95:
		return "packet too large"
	case 0x96:
		return "message rate too high"
	case 0x97:
		return "quota exceeded"
	case 0x98:
		return "administrative action"
	case 0x99:
		return "payload format invalid"
	case 0x9A:
		return "retain not supported"
	case 0x9B:
		return "QoS not supported"
	case 0x9C:
		return "use another server"
	case 0x9D:
		return "server moved"
	case 0x9F:
		return "connection rate exceeded"
	}
	return fmt.Sprintf("reason code 0x%02x", code)
}

// temporaryReason tells whether an MQTT 5 failure reason may pass.
func temporaryReason(code byte) bool {
	switch code {
	case 0x80, 0x83, 0x88, 0x89, 0x8B, 0x91, 0x93, 0x96, 0x97, 0x9C, 0x9F:
		return true
	}
	return false
}

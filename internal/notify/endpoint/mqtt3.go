package endpoint

import (
	"context"
	"errors"
	"net"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// mqtt3Conn is an MQTT 3.1.1 connection (eclipse/paho.mqtt.golang). The
// client's own reconnection is off: the pool connects again.
type mqtt3Conn struct {
	cl  mqtt.Client
	key mqttKey
}

// mqttQuiesce is how long closing waits for queued packets and the DISCONNECT.
const mqttQuiesce = 250 // milliseconds

func (p *mqttPool) dial3(ctx context.Context, key mqttKey, start time.Time) (mqttConn, error) {
	timeout := p.s.timeout
	if d, ok := ctx.Deadline(); ok && time.Until(d) < timeout {
		timeout = max(time.Until(d), time.Millisecond)
	}
	o := mqtt.NewClientOptions()
	if key.TLS {
		o.AddBroker("ssl://" + key.Addr)
		o.SetTLSConfig(p.s.tls) // nil: the system's roots
	} else {
		o.AddBroker("tcp://" + key.Addr)
	}
	o.SetClientID(newClientID())
	o.SetUsername(key.User)
	o.SetPassword(key.Password)
	o.SetProtocolVersion(4)
	o.SetCleanSession(true)
	o.SetAutoReconnect(false)
	o.SetConnectRetry(false)
	o.SetOrderMatters(false)
	o.SetKeepAlive(mqttKeepAlive)
	o.SetPingTimeout(10 * time.Second)
	o.SetConnectTimeout(timeout)
	o.SetWriteTimeout(p.s.timeout)
	o.SetDialer(&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second})
	log := p.s.log
	o.SetConnectionLostHandler(func(_ mqtt.Client, err error) {
		reason, _, _ := netFailure(err, key.User, key.Password)
		log.Info("MQTT connection lost", "endpoint", key.String(), "err", reason)
	})
	cl := mqtt.NewClient(o)
	tok := cl.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		// The attempt goes on for at most timeout; close what it gives.
		p.cleanup(func() {
			<-tok.Done()
			if tok.Error() == nil {
				cl.Disconnect(0)
			}
		})
		return nil, failure("connect to MQTT broker "+key.Addr, ctx.Err(), start)
	}
	if err := tok.Error(); err != nil {
		var rc byte = packets.ErrNetworkError
		if ct, ok := tok.(*mqtt.ConnectToken); ok {
			rc = ct.ReturnCode()
		}
		return nil, connect3Failure(key, rc, err, start)
	}
	return &mqtt3Conn{cl: cl, key: key}, nil
}

// connect3Failure describes a CONNECT that failed with return code rc.
func connect3Failure(key mqttKey, rc byte, err error, start time.Time) *Error {
	refused := func(why string, temporary bool) *Error {
		return &Error{Cause: "MQTT broker " + key.Addr + " refused the connection: " + why, Temporary: temporary}
	}
	switch rc {
	case packets.ErrRefusedBadProtocolVersion:
		return refused("unacceptable protocol version (MQTT 3.1.1)", false)
	case packets.ErrRefusedIDRejected:
		return refused("client identifier rejected", false)
	case packets.ErrRefusedServerUnavailable:
		return refused("server unavailable", true)
	case packets.ErrRefusedBadUsernameOrPassword:
		return refused("bad user name or password", false)
	case packets.ErrRefusedNotAuthorised:
		return refused("not authorized", false)
	}
	return failure("connect to MQTT broker "+key.Addr, err, start, key.User, key.Password)
}

func (c *mqtt3Conn) publish(ctx context.Context, p *mqttPublish) error {
	tok := c.cl.Publish(p.Topic, p.QoS, false, p.Payload)
	select {
	case <-tok.Done():
	case <-ctx.Done():
		// A QoS 1 or 2 message stays with the client until acknowledged or
		// the connection closes; the connection may be fine (a slow broker).
		return &publishError{err: ctx.Err()}
	}
	if err := tok.Error(); err != nil {
		// ErrNotConnected: the connection was lost before; nothing was sent.
		return &publishError{err: err, dropConn: true, notSent: errors.Is(err, mqtt.ErrNotConnected)}
	}
	return nil
}

func (c *mqtt3Conn) alive() bool { return c.cl.IsConnectionOpen() }

func (c *mqtt3Conn) close() { c.cl.Disconnect(mqttQuiesce) }

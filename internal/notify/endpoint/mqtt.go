package endpoint

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/zenne-city/zenne/internal/ngsild"
)

// MQTT protocol versions, as named in an endpoint's notifierInfo (clause 7.2).
const (
	mqttVersionKey = "MQTT-Version"
	mqttQoSKey     = "MQTT-QoS"
	mqtt311        = "mqtt3.1.1"
	mqtt50         = "mqtt5.0"
)

// The pool closes a connection unused this long, looking at most once a
// sweepEvery.
const (
	mqttIdle       = 10 * time.Minute
	mqttSweepEvery = time.Minute
	mqttKeepAlive  = 30 * time.Second
)

// mqttPublish is one PUBLISH.
type mqttPublish struct {
	Topic   string
	QoS     byte
	Payload []byte
	User    []KV // MQTT 5 user properties
}

// mqttConn is a connection to a broker, for one protocol version.
type mqttConn interface {
	publish(ctx context.Context, p *mqttPublish) error
	alive() bool
	close()
}

// mqttKey identifies a pooled connection: one per broker, credentials and
// protocol version.
type mqttKey struct {
	TLS         bool
	Addr        string
	User        string
	Password    string
	HasPassword bool
	Version     string
}

func (k mqttKey) scheme() string {
	if k.TLS {
		return "mqtts"
	}
	return "mqtt"
}

// String is the broker for logs and errors: no credentials.
func (k mqttKey) String() string { return k.scheme() + "://" + k.Addr }

func (s *Sender) sendMQTT(ctx context.Context, u *url.URL, ctype string, timeout time.Duration, m *Message) error {
	t, err := parseMQTT(u, m.URI)
	if err != nil {
		return err
	}
	version, qos, err := notifierInfo(m.NotifierInfo)
	if err != nil {
		return err
	}
	if version == mqtt311 && t.HasPassword && t.User == "" {
		return &Error{Cause: "invalid MQTT endpoint URI: MQTT 3.1.1 needs a user name with a password"}
	}
	meta := mqttMetadata(ctype, m)
	payload, err := mqttPayload(meta, m.Body)
	if err != nil {
		return err
	}
	p := &mqttPublish{Topic: t.Topic, QoS: qos, Payload: payload}
	if version == mqtt50 {
		p.User = meta
	}
	key := mqttKey{TLS: t.TLS, Addr: t.Addr, User: t.User, Password: t.Password, HasPassword: t.HasPassword, Version: version}

	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		conn, err := s.mqtt.get(ctx, key, start)
		if err != nil {
			return err
		}
		err = conn.publish(ctx, p)
		if err == nil {
			return nil
		}
		pe := asPublishError(err)
		if pe.dropConn {
			s.mqtt.drop(key, conn)
		}
		if pe.notSent && attempt == 0 && ctx.Err() == nil {
			continue // the pooled connection had just been lost: once more on a new one
		}
		if pe.e != nil {
			return pe.e
		}
		return failure("publish to MQTT broker "+key.Addr, pe.err, start, t.User, t.Password)
	}
}

// publishError is what an mqttConn's publish returns: either an *Error
// already described (e) or an error to describe (err); dropConn says the
// connection is broken.
type publishError struct {
	e        *Error
	err      error
	dropConn bool
	notSent  bool // nothing reached the broker: sending again on a new connection cannot duplicate
}

func (p *publishError) Error() string {
	if p.e != nil {
		return p.e.Error()
	}
	return p.err.Error()
}

func asPublishError(err error) *publishError {
	if pe, ok := err.(*publishError); ok {
		return pe
	}
	return &publishError{err: err, dropConn: true}
}

// notifierInfo reads the MQTT version and QoS from an endpoint's notifierInfo.
func notifierInfo(info []KV) (version string, qos byte, err error) {
	version = mqtt311
	for _, kv := range info {
		switch {
		case strings.EqualFold(kv.Key, mqttVersionKey):
			switch v := strings.ToLower(strings.TrimSpace(kv.Value)); v {
			case mqtt311, mqtt50:
				version = v
			default:
				return "", 0, &Error{Cause: fmt.Sprintf("notifierInfo: unknown %s %q: want %s or %s", mqttVersionKey, kv.Value, mqtt311, mqtt50)}
			}
		case strings.EqualFold(kv.Key, mqttQoSKey):
			switch v := strings.TrimSpace(kv.Value); v {
			case "0", "1", "2":
				qos = v[0] - '0'
			default:
				return "", 0, &Error{Cause: fmt.Sprintf("notifierInfo: invalid %s %q: want 0, 1 or 2", mqttQoSKey, kv.Value)}
			}
		}
	}
	return version, qos, nil
}

// mqttMetadata is what HTTP would send as headers (clause 7.2): the content
// type, the Link to the @context, then receiverInfo. A key given twice keeps
// its first place and its last value; receiverInfo does not replace
// Content-Type or a Link the broker sets.
func mqttMetadata(ctype string, m *Message) []KV {
	meta := make([]KV, 0, 2+len(m.Headers))
	meta = append(meta, KV{"Content-Type", ctype})
	link := linkFor(ctype, m.Link)
	if link != "" {
		meta = append(meta, KV{"Link", link})
	}
next:
	for _, kv := range m.Headers {
		if strings.EqualFold(kv.Key, "Content-Type") || (link != "" && strings.EqualFold(kv.Key, "Link")) {
			continue
		}
		for i := range meta {
			if meta[i].Key == kv.Key {
				meta[i].Value = kv.Value
				continue next
			}
		}
		meta = append(meta, kv)
	}
	return meta
}

// mqttPayload is the MQTT notification message (clause 7.2): a JSON object
// {"metadata": {key: value, ...}, "body": <the notification>}.
func mqttPayload(meta []KV, body []byte) ([]byte, error) {
	if !json.Valid(body) {
		return nil, &Error{Cause: "notification body is not valid JSON"}
	}
	n := len(body) + 32
	for _, kv := range meta {
		n += len(kv.Key) + len(kv.Value) + 6
	}
	b := make([]byte, 0, n)
	b = append(b, `{"metadata":{`...)
	for i, kv := range meta {
		if i > 0 {
			b = append(b, ',')
		}
		b, _ = ngsild.AppendJSON(b, kv.Key) // a string always encodes
		b = append(b, ':')
		b, _ = ngsild.AppendJSON(b, kv.Value)
	}
	b = append(b, `},"body":`...)
	b = append(b, body...)
	b = append(b, '}')
	return b, nil
}

// mqttString makes s a valid MQTT UTF-8 string (no invalid UTF-8, no NUL), for
// MQTT 5 user properties.
func mqttString(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// newClientID returns a fresh client identifier: a broker disconnects a
// client when another connects with the same one. 22 characters, within
// MQTT 3.1.1's 23 that every broker takes.
func newClientID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "zenne-" + hex.EncodeToString(b[:])
}

// mqttPool keeps one connection per mqttKey.
type mqttPool struct {
	s         *Sender
	mu        sync.Mutex
	slots     map[mqttKey]*mqttSlot
	closed    bool
	lastSweep time.Time
	wg        sync.WaitGroup // connection attempts abandoned by their Send, still to be closed
}

type mqttSlot struct {
	dialing chan struct{} // capacity 1: held by whoever connects
	// Guarded by mqttPool.mu:
	conn     mqttConn  // nil: none yet, or dropped
	used     time.Time // last handed out
	failedAt time.Time // the last attempt to connect failed then,
	failure  Error     // for this reason: given to those who waited for it
}

func newMQTTPool(s *Sender) *mqttPool {
	return &mqttPool{s: s, slots: make(map[mqttKey]*mqttSlot), lastSweep: time.Now()}
}

// get returns the live connection for key, connecting if there is none.
func (p *mqttPool) get(ctx context.Context, key mqttKey, start time.Time) (mqttConn, error) {
	for {
		now := time.Now()
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, &Error{Cause: causeSenderClosed}
		}
		var idle []mqttConn
		if now.Sub(p.lastSweep) >= mqttSweepEvery {
			idle = p.sweepLocked(now)
		}
		slot := p.slots[key]
		if slot == nil {
			slot = &mqttSlot{dialing: make(chan struct{}, 1)}
			p.slots[key] = slot
		}
		if c := slot.conn; c != nil && c.alive() {
			slot.used = now
			p.mu.Unlock()
			closeAll(idle)
			return c, nil
		}
		p.mu.Unlock()
		closeAll(idle)

		select {
		case slot.dialing <- struct{}{}:
		case <-ctx.Done():
			return nil, failure("connect to MQTT broker "+key.Addr, ctx.Err(), start)
		}
		c, retry, err := p.connectLocked(ctx, key, slot, now, start)
		<-slot.dialing
		if !retry {
			return c, err
		}
	}
}

// connectLocked connects slot's key; the caller holds slot.dialing and has
// waited for it since waited. retry says the slot was swept meanwhile: start
// again.
func (p *mqttPool) connectLocked(ctx context.Context, key mqttKey, slot *mqttSlot, waited, start time.Time) (c mqttConn, retry bool, err error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, false, &Error{Cause: causeSenderClosed}
	}
	if p.slots[key] != slot {
		p.mu.Unlock()
		return nil, true, nil
	}
	if c := slot.conn; c != nil && c.alive() { // another Send connected while this one waited
		slot.used = time.Now()
		p.mu.Unlock()
		return c, false, nil
	}
	if slot.failedAt.After(waited) { // the attempt this one waited for failed: so does this one
		e := slot.failure
		p.mu.Unlock()
		return nil, false, &e
	}
	stale := slot.conn
	slot.conn = nil
	p.mu.Unlock()
	if stale != nil {
		stale.close()
	}

	if key.Version == mqtt50 {
		c, err = p.dial5(ctx, key, start)
	} else {
		c, err = p.dial3(ctx, key, start)
	}
	if err != nil {
		if e, ok := err.(*Error); ok && !errors.Is(e, context.Canceled) {
			p.mu.Lock()
			slot.failedAt, slot.failure = time.Now(), *e
			p.mu.Unlock()
		}
		return nil, false, err
	}
	p.s.log.Debug("MQTT connected", "endpoint", key.String(), "version", key.Version)

	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		c.close()
		return nil, false, &Error{Cause: causeSenderClosed}
	}
	slot.conn = c
	slot.used = time.Now()
	p.mu.Unlock()
	return c, false, nil
}

// sweepLocked removes the slots idle for mqttIdle and returns their
// connections, to be closed outside the lock. A slot being connected stays.
func (p *mqttPool) sweepLocked(now time.Time) []mqttConn {
	p.lastSweep = now
	var idle []mqttConn
	for k, slot := range p.slots {
		if now.Sub(slot.used) < mqttIdle {
			continue
		}
		select {
		case slot.dialing <- struct{}{}:
		default:
			continue
		}
		if slot.conn != nil {
			idle = append(idle, slot.conn)
			p.s.log.Debug("MQTT connection idle, closing", "endpoint", k.String())
		}
		delete(p.slots, k)
		<-slot.dialing
	}
	return idle
}

// drop forgets c, broken, and closes it; the next get connects again. Of
// the Sends that saw c fail, the first closes it; a connection no longer in
// its slot was closed by whoever took it out.
func (p *mqttPool) drop(key mqttKey, c mqttConn) {
	p.mu.Lock()
	slot := p.slots[key]
	mine := slot != nil && slot.conn == c
	if mine {
		slot.conn = nil
	}
	p.mu.Unlock()
	if mine {
		c.close()
	}
}

// close closes every connection and waits for abandoned attempts.
func (p *mqttPool) close() {
	p.mu.Lock()
	p.closed = true
	var conns []mqttConn
	for k, slot := range p.slots {
		if slot.conn != nil {
			conns = append(conns, slot.conn)
			slot.conn = nil
		}
		delete(p.slots, k)
	}
	p.mu.Unlock()
	closeAll(conns)
	p.wg.Wait()
}

// cleanup runs f, which closes what an abandoned attempt leaves, in a
// goroutine close waits for; once the pool is closed, at once.
func (p *mqttPool) cleanup(f func()) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		f()
		return
	}
	p.wg.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.wg.Done()
		f()
	}()
}

// closeAll closes conns at once: each may wait a moment for its DISCONNECT.
func closeAll(conns []mqttConn) {
	switch len(conns) {
	case 0:
		return
	case 1:
		conns[0].close()
		return
	}
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(c.close)
	}
	wg.Wait()
}

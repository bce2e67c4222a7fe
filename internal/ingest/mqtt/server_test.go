package mqtt

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	paho5 "github.com/eclipse/paho.golang/paho"
	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/zenne-city/zenne/internal/ingest"
	"github.com/zenne-city/zenne/internal/mqtttest"
)

// recorder is a Receiver that keeps what it receives and answers with
// reject (nil: accepts everything).
type recorder struct {
	ch     chan ingest.Uplink
	reject func(u *ingest.Uplink) error
}

func newRecorder() *recorder { return &recorder{ch: make(chan ingest.Uplink, 1000)} }

func (r *recorder) Receive(_ context.Context, u *ingest.Uplink) error {
	r.ch <- *u
	if r.reject != nil {
		return r.reject(u)
	}
	return nil
}

// next waits for the next uplink whose API key is apikey (others are
// skipped: the shared broker may carry other tests' messages).
func (r *recorder) next(t *testing.T, apikey string) ingest.Uplink {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case u := <-r.ch:
			if u.APIKey == apikey {
				return u
			}
		case <-timeout:
			t.Fatalf("no uplink for API key %s", apikey)
		}
	}
}

func checkUplink(t *testing.T, u ingest.Uplink, apikey, device, payload string) {
	t.Helper()
	if u.APIKey != apikey || u.DeviceID != device || string(u.Payload) != payload {
		t.Errorf("uplink %s/%s %s, want %s/%s %s", u.APIKey, u.DeviceID, u.Payload, apikey, device, payload)
	}
	if u.Format != ingest.JSON || u.Transport != "mqtt" || u.Tenant != "" {
		t.Errorf("uplink format %d, transport %q, tenant %q; want JSON, mqtt, default", u.Format, u.Transport, u.Tenant)
	}
	if d := time.Since(u.Received); d < 0 || d > time.Minute {
		t.Errorf("uplink received at %v, %v ago", u.Received, d)
	}
}

// fakeAuth knows devices and their keys ("" for none). A device publishes
// for itself; anonymous clients for devices without a key.
type fakeAuth map[string]string

func (a fakeAuth) AllowConnect(user, password string) bool {
	key, ok := a[user]
	return ok && key == password
}

func (a fakeAuth) AllowPublish(user, _, device string) bool {
	if user == "" {
		key, ok := a[device]
		return ok && key == ""
	}
	return user == device
}

// startServer starts an embedded broker on a free loopback port.
func startServer(t *testing.T, o Options) (*Server, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	o.Listen, o.Registry = "127.0.0.1:0", reg
	if o.Receiver == nil {
		o.Receiver = newRecorder()
	}
	s, err := NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, reg
}

var clientSeq atomic.Int64

// connect3 connects an MQTT 3.1.1 client.
func connect3(t *testing.T, addr, user, password string, tlsConf *tls.Config) (paho.Client, error) {
	t.Helper()
	scheme := "tcp://"
	if tlsConf != nil {
		scheme = "ssl://"
	}
	o := paho.NewClientOptions().AddBroker(scheme + addr).
		SetClientID(fmt.Sprintf("test-%d", clientSeq.Add(1))).
		SetUsername(user).SetPassword(password).SetTLSConfig(tlsConf).
		SetProtocolVersion(4).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
	cl := paho.NewClient(o)
	tok := cl.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return nil, errors.New("connect: no answer")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { cl.Disconnect(0) })
	return cl, nil
}

func mustConnect3(t *testing.T, addr, user, password string) paho.Client {
	t.Helper()
	cl, err := connect3(t, addr, user, password, nil)
	if err != nil {
		t.Fatalf("connect as %q: %v", user, err)
	}
	return cl
}

func publish3(t *testing.T, cl paho.Client, topic string, qos byte, payload string) {
	t.Helper()
	tok := cl.Publish(topic, qos, false, payload)
	if !tok.WaitTimeout(10 * time.Second) {
		t.Fatalf("publish %s: no answer", topic)
	}
	if err := tok.Error(); err != nil {
		t.Fatalf("publish %s: %v", topic, err)
	}
}

// metric is the value of a counter or gauge, 0 if it has no value yet.
func metric(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					found = found || lp.GetName() == labels[i] && lp.GetValue() == labels[i+1]
				}
				if !found {
					continue next
				}
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("still not %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestServerTopics(t *testing.T) {
	rec := newRecorder()
	s, reg := startServer(t, Options{Receiver: rec, AllowAnonymous: true, Topic: "city/{apikey}/{device}/up"})
	cl := mustConnect3(t, s.Addr(), "", "")
	n := 0
	for _, qos := range []byte{0, 1} {
		for _, tc := range []struct{ name, topic string }{
			{"attrs", "/bins-k3y/bin-0001/attrs"},
			{"json", "/json/bins-k3y/bin-0001/attrs"},
			{"pattern", "city/bins-k3y/bin-0001/up"},
		} {
			t.Run(fmt.Sprintf("%s qos %d", tc.name, qos), func(t *testing.T) {
				payload := fmt.Sprintf(`{"f":%d,"t":18.5}`, n)
				n++
				publish3(t, cl, tc.topic, qos, payload)
				u := rec.next(t, "bins-k3y")
				checkUplink(t, u, "bins-k3y", "bin-0001", payload)
				if u.Async != (qos == 0) {
					t.Errorf("Async = %v at QoS %d: want true at QoS 0 only", u.Async, qos)
				}
			})
		}
	}
	if v := metric(t, reg, "zenne_mqtt_messages_received_total", "broker", "embedded"); v != 6 {
		t.Errorf("messages received = %v, want 6", v)
	}
	if v := metric(t, reg, "zenne_mqtt_connections"); v != 1 {
		t.Errorf("connections = %v, want 1", v)
	}
	cl.Disconnect(100)
	eventually(t, "0 connections", func() bool { return metric(t, reg, "zenne_mqtt_connections") == 0 })
}

func TestServerIgnoresOtherTopics(t *testing.T) {
	rec := newRecorder()
	s, reg := startServer(t, Options{Receiver: rec, AllowAnonymous: true})
	cl := mustConnect3(t, s.Addr(), "", "")
	for _, topic := range []string{"/bins-k3y/bin-0001/cmd", "bins-k3y/bin-0001/attrs", "/bins-k3y//attrs", "city/bins-k3y/bin-0001/up"} {
		publish3(t, cl, topic, 1, `{"f":1}`)
	}
	publish3(t, cl, "/bins-k3y/bin-0002/attrs", 1, `{"f":2}`)
	checkUplink(t, rec.next(t, "bins-k3y"), "bins-k3y", "bin-0002", `{"f":2}`)
	if v := metric(t, reg, "zenne_mqtt_messages_unknown_topic_total"); v != 4 {
		t.Errorf("unknown topics = %v, want 4", v)
	}
	if v := metric(t, reg, "zenne_mqtt_messages_received_total"); v != 5 {
		t.Errorf("received = %v, want 5", v)
	}
}

func TestServerRejectionKeepsConnection(t *testing.T) {
	rec := newRecorder()
	rec.reject = func(u *ingest.Uplink) error {
		switch string(u.Payload) {
		case "slow down":
			return &ingest.Rejection{Status: http.StatusTooManyRequests, Reason: "more than 10 messages/s", RetryAfter: time.Second}
		case "not json":
			return ingest.Reject(http.StatusBadRequest, "the payload is not JSON")
		case "store down":
			return errors.New("database is locked") // not a Rejection: counted as unavailable
		}
		return nil
	}
	s, reg := startServer(t, Options{Receiver: rec, AllowAnonymous: true})
	cl := mustConnect3(t, s.Addr(), "", "")
	for _, qos := range []byte{0, 1} {
		for _, p := range []string{"slow down", "not json", "store down", `{"f":1}`} {
			publish3(t, cl, "/k/d/attrs", qos, p)
			checkUplink(t, rec.next(t, "k"), "k", "d", p)
		}
	}
	if !cl.IsConnectionOpen() {
		t.Error("the client was disconnected")
	}
	for reason, want := range map[string]float64{"rate_limited": 2, "bad_request": 2, "unavailable": 2, "forbidden": 0} {
		if v := metric(t, reg, "zenne_mqtt_messages_rejected_total", "reason", reason); v != want {
			t.Errorf("rejected %s = %v, want %v", reason, v, want)
		}
	}
}

// MQTT 5 clients learn why a QoS 1 message was refused, in the PUBACK.
func TestServerPubackReasonCodes(t *testing.T) {
	rec := newRecorder()
	rec.reject = func(u *ingest.Uplink) error {
		switch u.DeviceID {
		case "bad":
			return ingest.Reject(http.StatusBadRequest, "bad")
		case "unknown":
			return ingest.Reject(http.StatusNotFound, "no such device")
		case "fast":
			return ingest.Reject(http.StatusTooManyRequests, "slow down")
		}
		return nil
	}
	s, _ := startServer(t, Options{Receiver: rec, Auth: fakeAuth{"ok": "", "bad": "", "unknown": "", "fast": "", "other": "k"},
		AllowAnonymous: true, Topic: "city/{apikey}/{device}/up"})
	conn, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	cl := paho5.NewClient(paho5.ClientConfig{Conn: conn})
	if _, err := cl.Connect(ctx, &paho5.Connect{ClientID: "v5", CleanStart: true, KeepAlive: 30}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Disconnect(&paho5.Disconnect{}) })
	for _, tc := range []struct {
		topic string
		code  byte
	}{
		{"/k/ok/attrs", 0x00},
		{"/k/bad/attrs", 0x99},     // payload format invalid
		{"/k/unknown/attrs", 0x83}, // implementation specific error
		{"/k/fast/attrs", 0x97},    // quota exceeded
		{"/k/other/attrs", 0x87},   // not authorized: other has a key
		{"/k/ok/cmd", 0x90},        // topic name invalid
	} {
		resp, _ := cl.Publish(ctx, &paho5.Publish{Topic: tc.topic, QoS: 1, Payload: []byte(`{}`)})
		if resp == nil || resp.ReasonCode != tc.code {
			t.Errorf("%s: PUBACK %+v, want reason code %#x", tc.topic, resp, tc.code)
			continue
		}
		if tc.code == 0 {
			continue
		}
		// The reason string says why.
		if resp.Properties == nil || resp.Properties.ReasonString == "" {
			t.Errorf("%s: PUBACK without a reason string", tc.topic)
		} else {
			t.Logf("%s: %#x %s", tc.topic, resp.ReasonCode, resp.Properties.ReasonString)
		}
	}
}

func TestServerAuth(t *testing.T) {
	rec := newRecorder()
	auth := fakeAuth{"bin-0001": "s3cret", "bin-0002": "other", "bin-0003": ""}
	s, reg := startServer(t, Options{Receiver: rec, Auth: auth})
	addr := s.Addr()

	for _, tc := range []struct{ name, user, password string }{
		{"wrong password", "bin-0001", "guess"},
		{"unknown device", "bin-9999", ""},
		{"anonymous", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := connect3(t, addr, tc.user, tc.password, nil); err == nil {
				t.Fatal("connected")
			}
		})
	}
	if v := metric(t, reg, "zenne_mqtt_connections_total", "result", "refused"); v != 3 {
		t.Errorf("connections refused = %v, want 3", v)
	}

	cl := mustConnect3(t, addr, "bin-0001", "s3cret")
	publish3(t, cl, "/bins-k3y/bin-0002/attrs", 1, `{"f":2}`) // another device's
	publish3(t, cl, "/bins-k3y/bin-0001/attrs", 1, `{"f":1}`)
	checkUplink(t, rec.next(t, "bins-k3y"), "bins-k3y", "bin-0001", `{"f":1}`)
	if v := metric(t, reg, "zenne_mqtt_messages_rejected_total", "reason", "forbidden"); v != 1 {
		t.Errorf("rejected forbidden = %v, want 1", v)
	}
	if !cl.IsConnectionOpen() {
		t.Error("the client was disconnected")
	}

	// Clients may not subscribe: devices' messages are for zenne alone.
	tok := cl.Subscribe("#", 0, func(paho.Client, paho.Message) {})
	tok.WaitTimeout(5 * time.Second)
	if r := tok.(*paho.SubscribeToken).Result()["#"]; r != 0x80 {
		t.Errorf("SUBACK for # = %#x, want 0x80 (refused)", r)
	}
	if v := metric(t, reg, "zenne_mqtt_connections_total", "result", "accepted"); v != 1 {
		t.Errorf("connections accepted = %v, want 1", v)
	}
}

func TestServerAnonymous(t *testing.T) {
	rec := newRecorder()
	s, _ := startServer(t, Options{Receiver: rec, Auth: fakeAuth{"bin-0001": "s3cret", "bin-0003": ""}, AllowAnonymous: true})
	cl := mustConnect3(t, s.Addr(), "", "")
	publish3(t, cl, "/k/bin-0001/attrs", 0, `{"f":1}`) // has a key: refused
	publish3(t, cl, "/k/bin-0003/attrs", 0, `{"f":3}`)
	checkUplink(t, rec.next(t, "k"), "k", "bin-0003", `{"f":3}`)

	// Credentials, when given, are checked all the same.
	if _, err := connect3(t, s.Addr(), "bin-0001", "guess", nil); err == nil {
		t.Error("connected with a wrong password")
	}
	mustConnect3(t, s.Addr(), "bin-0001", "s3cret")
}

func TestServerTLS(t *testing.T) {
	cert := mqtttest.NewCert(t)
	rec := newRecorder()
	s, _ := startServer(t, Options{Receiver: rec, AllowAnonymous: true, TLS: &tls.Config{Certificates: []tls.Certificate{cert.Pair}}})
	cl, err := connect3(t, s.Addr(), "", "", &tls.Config{RootCAs: cert.Pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	publish3(t, cl, "/k/d/attrs", 1, `{"f":1}`)
	checkUplink(t, rec.next(t, "k"), "k", "d", `{"f":1}`)

	if _, err := connect3(t, s.Addr(), "", "", &tls.Config{}); err == nil { // the system's roots
		t.Error("connected without trusting the certificate")
	}
	if _, err := connect3(t, s.Addr(), "", "", nil); err == nil {
		t.Error("connected without TLS")
	}
}

func TestServerClose(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	s, err := NewServer(Options{Listen: "127.0.0.1:0", Receiver: newRecorder(), AllowAnonymous: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	cl := mustConnect3(t, s.Addr(), "", "")
	cancel() // ends the server as Close does
	eventually(t, "disconnected", func() bool { return !cl.IsConnectionOpen() })
	if c, err := net.DialTimeout("tcp", s.Addr(), time.Second); err == nil {
		c.Close()
		t.Error("still listening")
	}
	if err := s.Close(); err != nil {
		t.Error(err)
	}
}

func TestServerOptions(t *testing.T) {
	rec := newRecorder()
	for _, tc := range []struct {
		name string
		o    Options
		err  string
	}{
		{"no address", Options{Receiver: rec, AllowAnonymous: true}, "no listen address"},
		{"nobody", Options{Listen: ":0", Receiver: rec}, "nobody could connect"},
		{"no receiver", Options{Listen: ":0", AllowAnonymous: true}, "no Receiver"},
		{"bad pattern", Options{Listen: ":0", Receiver: rec, AllowAnonymous: true, Topic: "city/{device}"}, "needs both"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewServer(tc.o); err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("err = %v, want one saying %q", err, tc.err)
			}
		})
	}
	// A port in use: Start fails and Close is harmless.
	s1, _ := startServer(t, Options{AllowAnonymous: true})
	s2, err := NewServer(Options{Listen: s1.Addr(), Receiver: rec, AllowAnonymous: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Start(t.Context()); err == nil {
		t.Error("started on a port in use")
	}
	s2.Close()
}

func TestLogSampler(t *testing.T) {
	var l logSampler
	t0 := time.Unix(1000, 0)
	for i := range logsPerSecond {
		if ok, held := l.allow(t0); !ok || held != 0 {
			t.Fatalf("line %d: allow = %v, %d", i, ok, held)
		}
	}
	for range 5 {
		if ok, _ := l.allow(t0.Add(500 * time.Millisecond)); ok {
			t.Fatal("more than logsPerSecond lines in a second")
		}
	}
	if ok, held := l.allow(t0.Add(time.Second)); !ok || held != 5 {
		t.Errorf("next second: allow = %v, held back %d; want true, 5", ok, held)
	}
}

func TestPubackReasonIsCutBetweenCharacters(t *testing.T) {
	r := ingest.Reject(http.StatusBadRequest, "%s", strings.Repeat("é", maxReason))
	c := pubackCode(r)
	if c.Code != 0x99 || len(c.Reason) > maxReason || !utf8.ValidString(c.Reason) {
		t.Errorf("code %#x, reason of %d bytes, valid UTF-8 %v", c.Code, len(c.Reason), utf8.ValidString(c.Reason))
	}
}

package endpoint

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"

	"github.com/zenne-city/zenne/internal/mqtttest"
)

// wrapper is the MQTT notification message of clause 7.2.
type wrapper struct {
	Metadata map[string]string `json:"metadata"`
	Body     json.RawMessage   `json:"body"`
}

func decodeWrapper(t *testing.T, payload []byte) wrapper {
	t.Helper()
	var w wrapper
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		t.Fatalf("payload %s: %v", payload, err)
	}
	return w
}

func versionInfo(version, qos string) []KV {
	var info []KV
	if version != "" {
		info = append(info, KV{"MQTT-Version", version})
	}
	if qos != "" {
		info = append(info, KV{"MQTT-QoS", qos})
	}
	return info
}

func TestMQTTDelivery(t *testing.T) {
	addr := mqtttest.Broker(t)
	s := newSender(t, Options{})
	for _, version := range []string{"", "mqtt3.1.1", "mqtt5.0"} {
		for _, qos := range []string{"", "0", "1", "2"} {
			name := fmt.Sprintf("version=%s/qos=%s", or(version, "default"), or(qos, "default"))
			t.Run(name, func(t *testing.T) {
				topic := uniqueTopic(t) + "/sub level"
				got := subscribe(t, addr, "", "", topic, nil)
				uri := "mqtt://" + addr + "/" + strings.ReplaceAll(topic, " ", "%20")
				m := &Message{
					URI:          uri,
					Accept:       "application/json",
					Link:         testLink,
					Headers:      []KV{{"NGSILD-Tenant", "city"}, {"X-Api-Key", `k"1`}},
					NotifierInfo: versionInfo(version, qos),
					Body:         []byte(testBody),
				}
				if err := s.Send(context.Background(), m); err != nil {
					t.Fatalf("Send: %v", err)
				}
				msg := receive(t, got)
				if msg.Topic() != topic {
					t.Errorf("topic %q, want %q", msg.Topic(), topic)
				}
				wantQoS := byte(0)
				if qos != "" {
					wantQoS = qos[0] - '0'
				}
				if msg.Qos() != wantQoS {
					t.Errorf("received with QoS %d, want %d", msg.Qos(), wantQoS)
				}
				if msg.Retained() {
					t.Error("message retained")
				}
				w := decodeWrapper(t, msg.Payload())
				want := map[string]string{"Content-Type": "application/json", "Link": testLink, "NGSILD-Tenant": "city", "X-Api-Key": `k"1`}
				if fmt.Sprint(w.Metadata) != fmt.Sprint(want) {
					t.Errorf("metadata %v, want %v", w.Metadata, want)
				}
				if string(w.Body) != testBody {
					t.Errorf("body %s, want %s", w.Body, testBody)
				}
				if !bytes.HasPrefix(msg.Payload(), []byte(`{"metadata":{"Content-Type":"application/json","Link":`)) {
					t.Errorf("payload does not start with the metadata in order: %s", msg.Payload())
				}
				noMore(t, got)
			})
		}
	}
	t.Run("ld+json", func(t *testing.T) {
		topic := uniqueTopic(t)
		got := subscribe(t, addr, "", "", topic, nil)
		m := &Message{URI: "mqtt://" + addr + "/" + topic, Accept: "application/ld+json", Link: testLink, Body: []byte(testBody)}
		if err := s.Send(context.Background(), m); err != nil {
			t.Fatalf("Send: %v", err)
		}
		w := decodeWrapper(t, receive(t, got).Payload())
		if want := map[string]string{"Content-Type": "application/ld+json"}; fmt.Sprint(w.Metadata) != fmt.Sprint(want) {
			t.Errorf("metadata %v, want %v", w.Metadata, want)
		}
	})
	// One connection per (broker, credentials, version), reused.
	s.mqtt.mu.Lock()
	defer s.mqtt.mu.Unlock()
	if n := len(s.mqtt.slots); n != 2 {
		t.Errorf("%d pooled MQTT connections, want 2 (one per version)", n)
	}
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// subscribe5 subscribes with MQTT 5 to see the user properties.
func subscribe5(t *testing.T, addr, topic string) <-chan *paho.Publish {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan *paho.Publish, 16)
	cl := paho.NewClient(paho.ClientConfig{
		Conn: packets.NewThreadSafeConn(conn),
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			ch <- pr.Packet
			return true, nil
		}},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cl.Connect(ctx, &paho.Connect{ClientID: newClientID(), CleanStart: true, KeepAlive: 30}); err != nil {
		t.Fatalf("MQTT 5 subscriber connect: %v", err)
	}
	t.Cleanup(func() { _ = cl.Disconnect(&paho.Disconnect{}) })
	if _, err := cl.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: topic, QoS: 1}}}); err != nil {
		t.Fatalf("MQTT 5 subscribe: %v", err)
	}
	return ch
}

func TestMQTT5UserProperties(t *testing.T) {
	addr := mqtttest.Broker(t)
	s := newSender(t, Options{})
	topic := uniqueTopic(t)
	got := subscribe5(t, addr, topic)
	m := &Message{
		URI:          "mqtt://" + addr + "/" + topic,
		Link:         testLink,
		Headers:      []KV{{"NGSILD-Tenant", "city"}, {"X-Bad-UTF8", "a\xffb\x00c"}},
		NotifierInfo: []KV{{"MQTT-Version", "mqtt5.0"}, {"MQTT-QoS", "1"}},
		Body:         []byte(testBody),
	}
	if err := s.Send(context.Background(), m); err != nil {
		t.Fatalf("Send: %v", err)
	}
	select {
	case p := <-got:
		var props []string
		if p.Properties != nil {
			for _, u := range p.Properties.User {
				props = append(props, u.Key+"="+u.Value)
			}
		}
		want := []string{"Content-Type=application/json", "Link=" + testLink, "NGSILD-Tenant=city", "X-Bad-UTF8=a\uFFFDb\uFFFDc"}
		if strings.Join(props, "\n") != strings.Join(want, "\n") {
			t.Errorf("user properties %q, want %q", props, want)
		}
		w := decodeWrapper(t, p.Payload)
		if string(w.Body) != testBody || w.Metadata["NGSILD-Tenant"] != "city" {
			t.Errorf("payload %s", p.Payload)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no message")
	}
}

// TestMQTTConcurrent publishes from many goroutines: every message arrives,
// over one connection per version.
func TestMQTTConcurrent(t *testing.T) {
	addr := mqtttest.Broker(t)
	s := newSender(t, Options{})
	for _, version := range []string{"mqtt3.1.1", "mqtt5.0"} {
		t.Run(version, func(t *testing.T) {
			topic := uniqueTopic(t)
			got := subscribe(t, addr, "", "", topic, nil)
			const workers, each = 16, 25
			var wg sync.WaitGroup
			errs := make(chan error, workers*each)
			for w := range workers {
				wg.Go(func() {
					for i := range each {
						m := &Message{
							URI:          "mqtt://" + addr + "/" + topic,
							Headers:      []KV{{"X-Seq", seq(w, i)}},
							NotifierInfo: []KV{{"MQTT-Version", version}, {"MQTT-QoS", "1"}},
							Body:         []byte(testBody),
						}
						if err := s.Send(context.Background(), m); err != nil {
							errs <- err
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			seen := map[string]bool{}
			for len(seen) < workers*each {
				w := decodeWrapper(t, receive(t, got).Payload())
				if seen[w.Metadata["X-Seq"]] {
					t.Errorf("%s received twice", w.Metadata["X-Seq"])
				}
				seen[w.Metadata["X-Seq"]] = true
			}
		})
	}
	s.mqtt.mu.Lock()
	defer s.mqtt.mu.Unlock()
	if n := len(s.mqtt.slots); n != 2 {
		t.Errorf("%d pooled MQTT connections, want 2", n)
	}
}

func TestMQTTUnreachable(t *testing.T) {
	s := newSender(t, Options{})
	for _, version := range []string{"mqtt3.1.1", "mqtt5.0"} {
		t.Run(version, func(t *testing.T) {
			err := s.Send(context.Background(), &Message{
				URI:          "mqtt://someone:pw-never-shown@127.0.0.1:1/topic",
				NotifierInfo: []KV{{"MQTT-Version", version}},
				Body:         []byte(testBody),
			})
			e := asError(t, err)
			if want := "connect to MQTT broker 127.0.0.1:1: connection refused"; e.Cause != want || !e.Temporary {
				t.Errorf("got %+v, want %q", *e, want)
			}
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Error("errors.Is(err, ECONNREFUSED) is false")
			}
		})
	}
}

// TestMQTTTimeout: a broker that accepts the connection and never answers.
func TestMQTTTimeout(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	addr := l.Addr().String()
	s := New(Options{})
	t.Cleanup(func() { _ = s.Close() })
	for _, version := range []string{"mqtt3.1.1", "mqtt5.0"} {
		t.Run(version, func(t *testing.T) {
			start := time.Now()
			err := s.Send(context.Background(), &Message{
				URI:          "mqtt://" + addr + "/topic",
				NotifierInfo: []KV{{"MQTT-Version", version}},
				Body:         []byte(testBody),
				Timeout:      300 * time.Millisecond,
			})
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Send took %v, want about 300ms", d)
			}
			e := asError(t, err)
			if want := "connect to MQTT broker " + addr + ": timeout after "; !strings.HasPrefix(e.Cause, want) || !e.Temporary {
				t.Errorf("got %+v, want %q...", *e, want)
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Error("errors.Is(err, DeadlineExceeded) is false")
			}
		})
	}
	for _, version := range []string{"mqtt3.1.1", "mqtt5.0"} {
		t.Run(version+"/caller cancels", func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(100*time.Millisecond, cancel)
			err := s.Send(ctx, &Message{
				URI:          "mqtt://" + addr + "/topic",
				NotifierInfo: []KV{{"MQTT-Version", version}},
				Body:         []byte(testBody),
				Timeout:      time.Second,
			})
			e := asError(t, err)
			if want := "connect to MQTT broker " + addr + ": canceled"; e.Cause != want || !errors.Is(err, context.Canceled) {
				t.Errorf("got %+v, want %q", *e, want)
			}
		})
	}
	// Close waits for the abandoned attempt (at most the message's timeout).
	done := make(chan struct{})
	go func() { _ = s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close hangs")
	}
}

func TestMQTTCredentials(t *testing.T) {
	b := startBroker(t, brokerConfig{users: map[string]string{"alice": "wonderland-42"}})
	var logs syncBuffer
	s := newSender(t, Options{Log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	for _, version := range []string{"mqtt3.1.1", "mqtt5.0"} {
		t.Run(version+"/good", func(t *testing.T) {
			topic := uniqueTopic(t)
			got := subscribe(t, b.addr, "alice", "wonderland-42", topic, nil)
			deliverQoS1(t, s, "mqtt://alice:wonderland-42@"+b.addr+"/"+topic, version, got)
		})
		for _, cred := range []string{"alice:bad-password-77@", "mallory:wonderland-42@", ""} {
			t.Run(version+"/refused/"+or(strings.TrimSuffix(cred, "@"), "anonymous"), func(t *testing.T) {
				err := s.Send(context.Background(), &Message{
					URI:          "mqtt://" + cred + b.addr + "/topic",
					NotifierInfo: []KV{{"MQTT-Version", version}},
					Body:         []byte(testBody),
				})
				e := asError(t, err)
				prefix := "MQTT broker " + b.addr + " refused the connection: "
				if !strings.HasPrefix(e.Cause, prefix) || e.Temporary {
					t.Errorf("got %+v, want %q...", *e, prefix)
				}
				reason := strings.TrimPrefix(e.Cause, prefix)
				if reason != "not authorized" && reason != "bad user name or password" {
					t.Errorf("reason %q", reason)
				}
				if strings.Contains(e.Cause, "password-77") || strings.Contains(e.Cause, "wonderland") {
					t.Errorf("cause %q shows the password", e.Cause)
				}
			})
		}
	}
	if strings.Contains(logs.String(), "wonderland") || strings.Contains(logs.String(), "password-77") {
		t.Errorf("logs show a password:\n%s", logs.String())
	}
}

// TestMQTTReconnect: the broker goes away and comes back; the Sender says
// so, then connects again.
func TestMQTTReconnect(t *testing.T) {
	b := startBroker(t, brokerConfig{})
	var logs syncBuffer
	s := newSender(t, Options{Log: slog.New(slog.NewTextHandler(&logs, nil))})
	for _, version := range []string{"mqtt3.1.1", "mqtt5.0"} {
		t.Run(version, func(t *testing.T) {
			topic := uniqueTopic(t)
			msg := &Message{
				URI:          "mqtt://user:secret-in-uri@" + b.addr + "/" + topic, // anonymous broker: any credentials do
				NotifierInfo: []KV{{"MQTT-Version", version}, {"MQTT-QoS", "1"}},
				Body:         []byte(testBody),
				Timeout:      2 * time.Second,
			}
			if err := s.Send(context.Background(), msg); err != nil {
				t.Fatalf("Send before restart: %v", err)
			}
			b.stop()
			var e *Error
			for deadline := time.Now().Add(5 * time.Second); e == nil && time.Now().Before(deadline); {
				if err := s.Send(context.Background(), msg); err != nil {
					e = asError(t, err)
				}
			}
			if e == nil {
				t.Fatal("Send still succeeds with the broker stopped")
			}
			if !e.Temporary || strings.Contains(e.Cause, "secret-in-uri") {
				t.Errorf("broker stopped: got %+v", *e)
			}
			t.Logf("broker stopped: %s", e.Cause)

			b.start()
			got := subscribe(t, b.addr, "", "", topic, nil)
			var err error
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				if err = s.Send(context.Background(), msg); err == nil {
					break
				}
			}
			if err != nil {
				t.Fatalf("Send after restart: %v", err)
			}
			receiveTestBody(t, got)
		})
	}
	if strings.Contains(logs.String(), "secret-in-uri") {
		t.Errorf("logs show the password:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "MQTT connection lost") && !strings.Contains(logs.String(), "MQTT broker closed the connection") {
		t.Errorf("the lost connection is not logged:\n%s", logs.String())
	}
}

func TestMQTTS(t *testing.T) {
	cert := mqtttest.NewCert(t)
	b := startBroker(t, brokerConfig{tls: cert})
	clientTLS := &tls.Config{RootCAs: cert.Pool}
	for _, version := range []string{"mqtt3.1.1", "mqtt5.0"} {
		t.Run(version+"/trusted", func(t *testing.T) {
			s := newSender(t, Options{TLS: clientTLS})
			topic := uniqueTopic(t)
			got := subscribe(t, b.addr, "", "", topic, clientTLS)
			deliverQoS1(t, s, "mqtts://"+b.addr+"/"+topic, version, got)
		})
		t.Run(version+"/untrusted", func(t *testing.T) {
			s := newSender(t, Options{})
			e := asError(t, s.Send(context.Background(), &Message{
				URI:          "mqtts://" + b.addr + "/topic",
				NotifierInfo: []KV{{"MQTT-Version", version}},
				Body:         []byte(testBody),
			}))
			if !strings.Contains(e.Cause, "TLS certificate not accepted") || e.Temporary {
				t.Errorf("got %+v", *e)
			}
		})
		t.Run(version+"/plain to TLS port", func(t *testing.T) {
			s := newSender(t, Options{})
			e := asError(t, s.Send(context.Background(), &Message{
				URI:          "mqtt://" + b.addr + "/topic",
				NotifierInfo: []KV{{"MQTT-Version", version}},
				Body:         []byte(testBody),
				Timeout:      2 * time.Second,
			}))
			if !strings.HasPrefix(e.Cause, "connect to MQTT broker "+b.addr+": ") {
				t.Errorf("got %+v", *e)
			}
			t.Logf("plain MQTT to a TLS listener: %s", e.Cause)
		})
	}
}

func TestMQTTInvalidMessages(t *testing.T) {
	s := newSender(t, Options{})
	tests := []struct {
		name  string
		msg   Message
		cause string
	}{
		{"version", Message{URI: "mqtt://127.0.0.1:1/t", NotifierInfo: []KV{{"MQTT-Version", "mqtt3.1"}}}, `notifierInfo: unknown MQTT-Version "mqtt3.1"`},
		{"qos", Message{URI: "mqtt://127.0.0.1:1/t", NotifierInfo: []KV{{"MQTT-QoS", "3"}}}, `notifierInfo: invalid MQTT-QoS "3"`},
		{"no topic", Message{URI: "mqtt://127.0.0.1:1/"}, errMQTTNoTopic},
		{"no path", Message{URI: "mqtt://127.0.0.1:1"}, errMQTTNoTopic},
		{"wildcard +", Message{URI: "mqtt://127.0.0.1:1/a/+/b"}, errMQTTWildcard},
		{"wildcard #", Message{URI: "mqtt://127.0.0.1:1/a/#"}, errMQTTWildcard},
		{"query", Message{URI: "mqtt://127.0.0.1:1/a?b=c"}, errMQTTQuery},
		{"port", Message{URI: "mqtt://127.0.0.1:70000/a"}, errMQTTPort},
		{"password without user in 3.1.1", Message{URI: "mqtt://:pw@127.0.0.1:1/a"}, "invalid MQTT endpoint URI: MQTT 3.1.1 needs a user name with a password"},
		{"body", Message{URI: "mqtt://127.0.0.1:1/a", Body: []byte(`{"a":`)}, "notification body is not valid JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.msg
			if m.Body == nil {
				m.Body = []byte(testBody)
			}
			e := asError(t, s.Send(context.Background(), &m))
			if !strings.HasPrefix(e.Cause, tc.cause) || e.Temporary {
				t.Errorf("got %+v, want %q", *e, tc.cause)
			}
		})
	}
}

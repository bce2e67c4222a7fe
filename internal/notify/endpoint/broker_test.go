package endpoint

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/zenne-city/zenne/internal/mqtttest"
)

// The MQTT tests use the machine's Mosquitto (ZENNE_TEST_MQTT, default
// 127.0.0.1:1883, anonymous access) and, for credentials, TLS and restarts,
// Mosquitto processes of their own. Without Mosquitto they fail, unless
// ZENNE_TEST_NO_MQTT=1 says to skip them.

// broker is a Mosquitto process of a test's own.
type broker struct {
	t        *testing.T
	dir      string
	addr     string
	conf     string
	mu       sync.Mutex
	cmd      *exec.Cmd
	waitDone chan struct{}
	log      *syncBuffer
}

// syncBuffer is a buffer for a process's output, read while it runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// brokerConfig is what a test's own broker needs besides its listener.
type brokerConfig struct {
	users map[string]string // none: anonymous access
	tls   *mqtttest.Cert    // serve MQTT over TLS
}

// startBroker starts Mosquitto on a free loopback port.
func startBroker(t *testing.T, cfg brokerConfig) *broker {
	t.Helper()
	if _, err := exec.LookPath("mosquitto"); err != nil {
		mqtttest.Skip(t, "mosquitto is not installed")
	}
	dir := t.TempDir()
	// Mosquitto started as root runs as the user mosquitto: let it read its files.
	for _, d := range []string{filepath.Dir(dir), dir} { // t.TempDir makes both 0700
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b := &broker{t: t, dir: dir, addr: freeAddr(t)}
	_, port, _ := net.SplitHostPort(b.addr)
	var conf strings.Builder
	fmt.Fprintf(&conf, "listener %s 127.0.0.1\npersistence false\nlog_dest stderr\nlog_type error\nlog_type warning\n", port)
	if len(cfg.users) > 0 {
		pw := filepath.Join(dir, "passwd")
		if err := os.WriteFile(pw, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		for u, p := range cfg.users {
			if out, err := exec.Command("mosquitto_passwd", "-b", pw, u, p).CombinedOutput(); err != nil {
				t.Fatalf("mosquitto_passwd: %v: %s", err, out)
			}
		}
		if err := os.Chmod(pw, 0o644); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&conf, "allow_anonymous false\npassword_file %s\n", pw)
	} else {
		conf.WriteString("allow_anonymous true\n")
	}
	if cfg.tls != nil {
		certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
		if err := os.WriteFile(certFile, cfg.tls.CertPEM, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(keyFile, cfg.tls.KeyPEM, 0o644); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&conf, "certfile %s\nkeyfile %s\n", certFile, keyFile)
	}
	b.conf = filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(b.conf, []byte(conf.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	b.start()
	t.Cleanup(b.stop)
	return b
}

func (b *broker) start() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.log = new(syncBuffer)
	b.cmd = exec.Command("mosquitto", "-c", b.conf)
	b.cmd.Stdout, b.cmd.Stderr = b.log, b.log
	if err := b.cmd.Start(); err != nil {
		b.t.Fatalf("start mosquitto: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = b.cmd.Wait(); close(done) }()
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.DialTimeout("tcp", b.addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-done:
			b.t.Fatalf("mosquitto exited: %s", b.log)
		default:
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("mosquitto does not listen on %s: %s", b.addr, b.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.waitDone = done
}

// stop kills the broker (its own process, by its id) and waits for it.
func (b *broker) stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return
	}
	_ = b.cmd.Process.Kill()
	<-b.waitDone
	b.cmd = nil
}

// subscribe subscribes to topic on the broker at addr (MQTT 3.1.1, over TLS
// when tlsConf is set) and returns the messages it gets.
func subscribe(t *testing.T, addr, user, password, topic string, tlsConf *tls.Config) <-chan mqtt.Message {
	t.Helper()
	ch := make(chan mqtt.Message, 1024)
	scheme := "tcp://"
	if tlsConf != nil {
		scheme = "ssl://"
	}
	o := mqtt.NewClientOptions().AddBroker(scheme + addr).SetClientID(newClientID()).SetTLSConfig(tlsConf).
		SetUsername(user).SetPassword(password).SetAutoReconnect(false).SetCleanSession(true).
		SetConnectTimeout(5 * time.Second).SetOrderMatters(false)
	cl := mqtt.NewClient(o)
	if tok := cl.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber connect to %s: %v", addr, tok.Error())
	}
	t.Cleanup(func() { cl.Disconnect(100) })
	tok := cl.Subscribe(topic, 2, func(_ mqtt.Client, m mqtt.Message) { ch <- m })
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", topic, tok.Error())
	}
	return ch
}

// uniqueTopic is a topic no other test run publishes to.
func uniqueTopic(t *testing.T) string {
	name := strings.NewReplacer("/", "-", " ", "_", "+", "_", "#", "_").Replace(t.Name())
	return "zenne-test/" + newClientID() + "/" + name
}

func receive(t *testing.T, ch <-chan mqtt.Message) mqtt.Message {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no MQTT message received within 10s")
		return nil
	}
}

// receiveTestBody checks that the next message on ch carries testBody.
func receiveTestBody(t *testing.T, ch <-chan mqtt.Message) {
	t.Helper()
	if w := decodeWrapper(t, receive(t, ch).Payload()); string(w.Body) != testBody {
		t.Errorf("body %s", w.Body)
	}
}

// deliverQoS1 sends testBody to uri with MQTT version at QoS 1 and checks
// that ch receives it.
func deliverQoS1(t *testing.T, s *Sender, uri, version string, ch <-chan mqtt.Message) {
	t.Helper()
	err := s.Send(context.Background(), &Message{
		URI:          uri,
		NotifierInfo: []KV{{"MQTT-Version", version}, {"MQTT-QoS", "1"}},
		Body:         []byte(testBody),
	})
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	receiveTestBody(t, ch)
}

func noMore(t *testing.T, ch <-chan mqtt.Message) {
	t.Helper()
	select {
	case m := <-ch:
		t.Errorf("unexpected extra message on %s: %s", m.Topic(), m.Payload())
	case <-time.After(100 * time.Millisecond):
	}
}

package mqtt

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/zenne-city/zenne/internal/ingest"
	"github.com/zenne-city/zenne/internal/mqtttest"
)

// The client's tests use the machine's Mosquitto (ZENNE_TEST_MQTT, default
// 127.0.0.1:1883, anonymous access) and, for TLS and passwords, a Mosquitto
// process of their own. Without Mosquitto they fail, unless
// ZENNE_TEST_NO_MQTT=1 says to skip them (as the other MQTT tests do).

// startClient starts a client of the broker at url.
func startClient(t *testing.T, o ClientOptions) (*Client, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	o.Registry = reg
	c, err := NewClient(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, reg
}

// uniqueKey is an API key no other test run uses.
func uniqueKey() string { return "test-" + randomHex(6) }

// collect waits for n uplinks of apikey.
func (r *recorder) collect(t *testing.T, apikey string, n int) []ingest.Uplink {
	t.Helper()
	var us []ingest.Uplink
	for range n {
		us = append(us, r.next(t, apikey))
	}
	return us
}

func TestClientReceives(t *testing.T) {
	addr := mqtttest.Broker(t)
	key := uniqueKey()
	rec := newRecorder()
	rec.reject = func(u *ingest.Uplink) error {
		if u.DeviceID == "d-bad" {
			return ingest.Reject(http.StatusNotFound, "no device d-bad")
		}
		return nil
	}
	_, reg := startClient(t, ClientOptions{BrokerURL: "mqtt://" + addr, QoS: 1, Receiver: rec, Topic: "zenne-test/{apikey}/{device}/up"})
	pub := mustConnect3(t, addr, "", "")
	publish3(t, pub, "/"+key+"/d-bad/attrs", 1, `{"f":0}`)
	publish3(t, pub, "/"+key+"/d1/attrs", 0, `{"f":1}`)
	publish3(t, pub, "/json/"+key+"/d2/attrs", 1, `{"f":2}`)
	publish3(t, pub, "zenne-test/"+key+"/d3/up", 1, `{"f":3}`)
	got := rec.collect(t, key, 4)
	slices.SortFunc(got, func(a, b ingest.Uplink) int { return strings.Compare(a.DeviceID, b.DeviceID) })
	for i, want := range []struct {
		device, payload string
		async           bool
	}{{"d-bad", `{"f":0}`, false}, {"d1", `{"f":1}`, true}, {"d2", `{"f":2}`, false}, {"d3", `{"f":3}`, false}} {
		checkUplink(t, got[i], key, want.device, want.payload)
		if got[i].Async != want.async {
			t.Errorf("%s: Async = %v, want %v (QoS 0 only)", want.device, got[i].Async, want.async)
		}
	}
	if v := metric(t, reg, "zenne_mqtt_messages_rejected_total", "broker", "external", "reason", "not_found"); v != 1 {
		t.Errorf("rejected not_found = %v, want 1", v)
	}
	if v := metric(t, reg, "zenne_mqtt_connections"); v != 1 {
		t.Errorf("connections = %v, want 1", v)
	}

	// One device's messages reach the Receiver in the order they came,
	// though the client hands several devices' messages at once.
	const n = 200
	for i := range n {
		publish3(t, pub, "/"+key+"/d1/attrs", 1, fmt.Sprint(i))
	}
	for i, u := range rec.collect(t, key, n) {
		if string(u.Payload) != fmt.Sprint(i) {
			t.Fatalf("message %d is %s", i, u.Payload)
		}
	}
}

// With a client id of its own, zenne's session outlives its connection: QoS
// 1 messages published while it is away arrive when it is back.
func TestClientPersistentSession(t *testing.T) {
	addr := mqtttest.Broker(t)
	key, id := uniqueKey(), "zenne-test-"+randomHex(6)
	t.Cleanup(func() { // after the clients: end the session on the shared broker
		cl := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).SetCleanSession(true))
		if tok := cl.Connect(); tok.WaitTimeout(5*time.Second) && tok.Error() == nil {
			cl.Disconnect(0)
		}
	})
	rec := newRecorder()
	o := ClientOptions{BrokerURL: "mqtt://" + addr, QoS: 1, Receiver: rec, ClientID: id}
	c, _ := startClient(t, o)
	c.Close()
	pub := mustConnect3(t, addr, "", "")
	publish3(t, pub, "/"+key+"/d1/attrs", 1, `{"f":1}`)
	startClient(t, o)
	checkUplink(t, rec.next(t, key), key, "d1", `{"f":1}`)
}

func TestClientReconnects(t *testing.T) {
	addr := mqtttest.Broker(t)
	key := uniqueKey()
	proxy := newProxy(t, addr)
	rec := newRecorder()
	_, reg := startClient(t, ClientOptions{BrokerURL: "mqtt://" + proxy.addr, QoS: 1, Receiver: rec})
	pub := mustConnect3(t, addr, "", "")
	publish3(t, pub, "/"+key+"/d1/attrs", 1, `{"f":1}`)
	checkUplink(t, rec.next(t, key), key, "d1", `{"f":1}`)

	proxy.cut()
	eventually(t, "reconnected", func() bool {
		return metric(t, reg, "zenne_mqtt_connections_total", "result", "accepted") == 2 &&
			metric(t, reg, "zenne_mqtt_connections") == 1
	})
	publish3(t, pub, "/"+key+"/d1/attrs", 1, `{"f":2}`)
	checkUplink(t, rec.next(t, key), key, "d1", `{"f":2}`)
}

func TestClientTLSAndPassword(t *testing.T) {
	cert := mqtttest.NewCert(t)
	b := startMosquitto(t, cert, "zenne", "s3cret")
	key := uniqueKey()
	rec := newRecorder()
	tlsConf := &tls.Config{RootCAs: cert.Pool}
	startClient(t, ClientOptions{BrokerURL: "mqtts://zenne:s3cret@" + b, Receiver: rec, TLS: tlsConf})
	pub, err := connect3(t, b, "zenne", "s3cret", tlsConf)
	if err != nil {
		t.Fatal(err)
	}
	publish3(t, pub, "/"+key+"/d1/attrs", 0, `{"f":1}`)
	checkUplink(t, rec.next(t, key), key, "d1", `{"f":1}`)

	for _, url := range []string{
		"mqtts://zenne:guess@" + b, // wrong password
		"mqtt://zenne:s3cret@" + b, // no TLS
	} {
		c, err := NewClient(ClientOptions{BrokerURL: url, Receiver: rec, TLS: tlsConf})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(t.Context()); err == nil {
			c.Close()
			t.Errorf("%s: started", url)
		} else if strings.Contains(err.Error(), "guess") {
			t.Errorf("the error shows the password: %v", err)
		}
	}
}

func TestClientOptions(t *testing.T) {
	rec := newRecorder()
	for _, tc := range []struct {
		name string
		o    ClientOptions
		err  string
	}{
		{"no URL", ClientOptions{Receiver: rec}, "not of the form"},
		{"no host", ClientOptions{BrokerURL: "mqtt:///x", Receiver: rec}, "not of the form"},
		{"scheme", ClientOptions{BrokerURL: "http://u:p4ss@127.0.0.1", Receiver: rec}, `scheme "http"`},
		{"QoS 2", ClientOptions{BrokerURL: "mqtt://127.0.0.1", QoS: 2, Receiver: rec}, "QoS 2"},
		{"no receiver", ClientOptions{BrokerURL: "mqtt://127.0.0.1"}, "no Receiver"},
		{"pattern", ClientOptions{BrokerURL: "mqtt://127.0.0.1", Receiver: rec, Topic: "{apikey}/+/{device}"}, "wildcards"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewClient(tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err = %v, want one saying %q", err, tc.err)
			}
			if strings.Contains(err.Error(), "p4ss") {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
	// Nothing listens: Start fails.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	free := l.Addr().String()
	l.Close()
	c, err := NewClient(ClientOptions{BrokerURL: "mqtt://" + free, Receiver: rec})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(t.Context()); err == nil {
		t.Error("started")
	}
	c.Close()
}

// proxy forwards TCP connections to a broker until cut.
type proxy struct {
	addr  string
	mu    sync.Mutex
	conns []net.Conn
}

func newProxy(t *testing.T, upstream string) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{addr: l.Addr().String()}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); p.cut(); wg.Wait() })
	wg.Go(func() {
		for {
			down, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", upstream)
			if err != nil {
				down.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, down, up)
			p.mu.Unlock()
			wg.Go(func() { io.Copy(up, down); up.Close() })
			wg.Go(func() { io.Copy(down, up); down.Close() })
		}
	})
	return p
}

// cut closes the connections it forwards (not its listener).
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// startMosquitto starts a Mosquitto of the test's own on a free loopback
// port, over TLS, with one user, and returns its address.
func startMosquitto(t *testing.T, cert *mqtttest.Cert, user, password string) string {
	t.Helper()
	for _, bin := range []string{"mosquitto", "mosquitto_passwd"} {
		if _, err := exec.LookPath(bin); err != nil {
			mqtttest.Skip(t, bin+" is not installed")
		}
	}
	dir := t.TempDir()
	// Mosquitto started as root runs as the user mosquitto: let it read its files.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, port, _ := net.SplitHostPort(addr)
	files := map[string][]byte{"cert.pem": cert.CertPEM, "key.pem": cert.KeyPEM, "passwd": nil}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pw := filepath.Join(dir, "passwd")
	if out, err := exec.Command("mosquitto_passwd", "-b", pw, user, password).CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_passwd: %v: %s", err, out)
	}
	if err := os.Chmod(pw, 0o644); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "mosquitto.conf")
	text := fmt.Sprintf("listener %s 127.0.0.1\npersistence false\nlog_dest stderr\nlog_type error\n"+
		"allow_anonymous false\npassword_file %s\ncertfile %s\nkeyfile %s\n",
		port, pw, filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	cmd := exec.Command("mosquitto", "-c", conf)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start mosquitto: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return addr
		}
		select {
		case <-done:
			t.Fatalf("mosquitto exited: %s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto does not listen on %s", addr)
		}
	}
}

// A connection cut while the workers are busy and messages wait for them:
// the client comes back, and Close does not hang.
func TestClientReconnectsUnderLoad(t *testing.T) {
	addr := mqtttest.Broker(t)
	key := uniqueKey()
	proxy := newProxy(t, addr)
	rec := newRecorder()
	rec.reject = func(*ingest.Uplink) error { time.Sleep(2 * time.Millisecond); return nil }
	c, reg := startClient(t, ClientOptions{BrokerURL: "mqtt://" + proxy.addr, QoS: 1, Receiver: rec, Workers: 4})
	pub := mustConnect3(t, addr, "", "")
	for i := range 300 {
		pub.Publish(fmt.Sprintf("/%s/d%d/attrs", key, i%8), 1, false, fmt.Sprint(i))
	}
	rec.collect(t, key, 50)
	proxy.cut()
	eventually(t, "reconnected", func() bool {
		return metric(t, reg, "zenne_mqtt_connections_total", "result", "accepted") == 2 &&
			metric(t, reg, "zenne_mqtt_connections") == 1
	})
	publish3(t, pub, "/"+key+"/last/attrs", 1, "last")
	for u := rec.next(t, key); u.DeviceID != "last"; u = rec.next(t, key) {
	}
	done := make(chan struct{})
	go func() { c.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close hangs")
	}
}

// Command mqttbench measures how many MQTT publishes per second a broker
// takes from many device connections and hands to a callback in this
// process: the figures behind docs/DEVICES.md's choice of embedded broker,
// and the machine's limit beside the ingest figures ("the same messages into
// the broker with no processing").
//
// N publisher connections (in this process, on loopback) publish as fast as
// they can, each for its share of the device ids, on
// /{apikey}/{device}/attrs topics with a 3-field JSON payload of 56 bytes.
// The broker is one of:
//
//   - mochi-hook: mochi-mqtt embedded; an OnPublish hook counts each message;
//   - mochi-inline: mochi-mqtt embedded; an inline subscription to
//     /+/+/attrs counts each message;
//   - zenne: internal/ingest/mqtt's embedded broker with a Receiver that
//     counts (what the package adds: topic parsing, the Uplink, metrics);
//   - mqtt://host:port: an external broker (the machine's Mosquitto),
//     consumed by internal/ingest/mqtt's client with a counting Receiver.
//
// The publishers are eclipse/paho.mqtt.golang clients (-client paho) or a
// minimal MQTT 3.1.1 writer that batches PUBLISH packets into few writes
// (-client raw, QoS 0 only), which leaves more of the machine to the broker.
//
// Usage: go run ./bench/mqttbench [-broker mochi-hook] [-client paho] [-conns 100] [-devices 10000] [-qos 0] [-duration 10s]
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/zenne-city/zenne/bench/internal/benchutil"
)

// payload is a smart bin's reading: 56 bytes.
var payload = []byte(`{"fillingLevel":42,"temperature":18.5,"batteryLevel":97}`)

const apiKey = "bins-k3y"

type config struct {
	broker   string
	client   string
	conns    int
	devices  int
	qos      int
	window   int
	warmup   time.Duration
	duration time.Duration
}

// target is a broker under test: where publishers connect, and how to stop it.
type target struct {
	addr  string
	close func()
}

// startFunc starts a broker that calls count once per message it delivers.
type startFunc func(ctx context.Context, count func()) (target, error)

func main() {
	cfg := config{}
	flag.StringVar(&cfg.broker, "broker", "mochi-hook", "mochi-hook, mochi-inline, zenne or mqtt://host:port (an external broker)")
	flag.StringVar(&cfg.client, "client", "paho", "publishers: paho (paho.mqtt.golang) or raw (batched writes, QoS 0)")
	flag.IntVar(&cfg.conns, "conns", 100, "publisher connections")
	flag.IntVar(&cfg.devices, "devices", 10000, "device ids the topics cycle over")
	flag.IntVar(&cfg.qos, "qos", 0, "QoS of the publishes (0 or 1)")
	flag.IntVar(&cfg.window, "window", 64, "QoS 1: unacknowledged publishes per connection")
	flag.DurationVar(&cfg.warmup, "warmup", 2*time.Second, "time before measuring")
	flag.DurationVar(&cfg.duration, "duration", 10*time.Second, "time measured")
	flag.BoolVar(&verbose, "v", false, "log the brokers' and clients' information and warnings")
	flag.Parse()
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "mqttbench:", err)
		os.Exit(1)
	}
}

func brokers() map[string]startFunc {
	return map[string]startFunc{
		"mochi-hook":   startMochiHook,
		"mochi-inline": startMochiInline,
		"zenne":        startZenne,
	}
}

func run(cfg config) error {
	if cfg.client == "raw" && cfg.qos != 0 {
		return errors.New("-client raw publishes QoS 0 only")
	}
	start, ok := brokers()[cfg.broker]
	if strings.Contains(cfg.broker, "://") {
		start, ok = external(cfg.broker), true
	}
	if !ok {
		return fmt.Errorf("unknown broker %q", cfg.broker)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var received atomic.Int64
	tg, err := start(ctx, func() { received.Add(1) })
	if err != nil {
		return fmt.Errorf("start %s: %w", cfg.broker, err)
	}
	defer tg.close()

	var sent atomic.Int64
	// Each publisher connects, then waits for the others before it
	// publishes: the connection time is measured apart.
	var wg, connected sync.WaitGroup
	begin := make(chan struct{})
	connecting := time.Now()
	errs := make(chan error, cfg.conns)
	for c := range cfg.conns {
		var topics []string
		for d := c; d < cfg.devices; d += cfg.conns {
			topics = append(topics, fmt.Sprintf("/%s/dev-%05d/attrs", apiKey, d))
		}
		if len(topics) == 0 {
			continue
		}
		pub := publishPaho
		if cfg.client == "raw" {
			pub = publishRaw
		}
		wg.Add(1)
		connected.Add(1)
		go func() {
			defer wg.Done()
			done := sync.OnceFunc(connected.Done)
			defer done()
			ready := func() {
				done()
				select {
				case <-begin:
				case <-ctx.Done():
				}
			}
			if err := pub(ctx, cfg, tg.addr, fmt.Sprintf("bench-%d", c), topics, ready, &sent); err != nil && ctx.Err() == nil {
				errs <- err
				cancel()
			}
		}()
	}
	connected.Wait()
	connectTime := time.Since(connecting)
	close(begin)

	select {
	case <-time.After(cfg.warmup):
	case <-ctx.Done():
	}
	s0, r0, cpu, cpu0, t0 := sent.Load(), received.Load(), benchutil.StartCPU(), processCPU(), time.Now()
	select {
	case <-time.After(cfg.duration):
	case <-ctx.Done():
	}
	s1, r1, el, cpu1 := sent.Load(), received.Load(), time.Since(t0), processCPU()
	usage := cpu.String()
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		return err
	}
	perMsg := time.Duration(0)
	if r1 > r0 {
		perMsg = (cpu1 - cpu0) / time.Duration(r1-r0)
	}
	fmt.Printf("broker=%s client=%s conns=%d devices=%d qos=%d payload=%dB: connected in %v; sent %.0f/s, received %.0f/s, %.2f µs CPU per message received, publishers included (%s)\n",
		cfg.broker, cfg.client, cfg.conns, cfg.devices, cfg.qos, len(payload), connectTime.Round(time.Millisecond),
		float64(s1-s0)/el.Seconds(), float64(r1-r0)/el.Seconds(), float64(perMsg.Nanoseconds())/1000, usage)
	return nil
}

// publishPaho publishes with a paho.mqtt.golang client until ctx ends. At
// QoS 1 it keeps at most cfg.window publishes unacknowledged.
func publishPaho(ctx context.Context, cfg config, addr, id string, topics []string, ready func(), sent *atomic.Int64) error {
	o := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).
		SetCleanSession(true).SetAutoReconnect(false).SetKeepAlive(time.Minute).
		SetUsername(strings.TrimPrefix(id, "bench-"))
	cl := paho.NewClient(o)
	if tok := cl.Connect(); tok.Wait() && tok.Error() != nil {
		return fmt.Errorf("connect %s: %w", id, tok.Error())
	}
	defer cl.Disconnect(0)
	ready()
	var pending []paho.Token
	for i := 0; ctx.Err() == nil; i++ {
		tok := cl.Publish(topics[i%len(topics)], byte(cfg.qos), false, payload)
		if cfg.qos > 0 {
			pending = append(pending, tok)
			if len(pending) >= cfg.window {
				if pending[0].Wait(); pending[0].Error() != nil {
					return pending[0].Error()
				}
				pending = pending[1:]
			}
		} else if tok.Error() != nil {
			return tok.Error()
		}
		sent.Add(1)
	}
	return nil
}

// publishRaw speaks just enough MQTT 3.1.1 to connect and publish at QoS 0,
// writing packets through a 64 KiB buffer.
func publishRaw(ctx context.Context, _ config, addr, id string, topics []string, ready func(), sent *atomic.Int64) error {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	context.AfterFunc(ctx, func() { conn.Close() })
	// CONNECT: protocol "MQTT" level 4, clean session, no keep-alive.
	user := strings.TrimPrefix(id, "bench-")
	vh := []byte{0, 4, 'M', 'Q', 'T', 'T', 4, 0x82, 0, 0}
	vh = appendString(vh, id)
	vh = appendString(vh, user)
	if _, err := conn.Write(appendPacket(nil, 0x10, vh)); err != nil {
		return err
	}
	ack := make([]byte, 4)
	if _, err := io.ReadFull(conn, ack); err != nil {
		return fmt.Errorf("read CONNACK: %w", err)
	}
	if ack[0] != 0x20 || ack[3] != 0 {
		return fmt.Errorf("connection refused: % x", ack)
	}
	ready()
	// Pre-encode one PUBLISH per topic.
	pkts := make([][]byte, len(topics))
	for i, t := range topics {
		pkts[i] = appendPacket(nil, 0x30, append(appendString(nil, t), payload...))
	}
	w := bufio.NewWriterSize(conn, 64<<10)
	for i := 0; ctx.Err() == nil; i++ {
		if _, err := w.Write(pkts[i%len(pkts)]); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if i%64 == 63 {
			sent.Add(64)
		}
	}
	return nil
}

func appendString(b []byte, s string) []byte {
	return append(append(b, byte(len(s)>>8), byte(len(s))), s...)
}

// appendPacket appends a packet of type (and flags) h with body.
func appendPacket(b []byte, h byte, body []byte) []byte {
	b = append(b, h)
	for n := len(body); ; {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		b = append(b, d)
		if n == 0 {
			break
		}
	}
	return append(b, body...)
}

// processCPU is the CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// verbose is -v.
var verbose bool

// quiet is the brokers' logger: errors only (clients going away at the end
// are warnings), unless -v.
func quiet() *slog.Logger {
	level := slog.LevelError
	if verbose {
		level = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

package endpoint

import (
	"encoding/json"
	"net"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseMQTTURI(t *testing.T) {
	tests := []struct {
		name string
		uri  string
		want mqttTarget
		err  string
	}{
		{name: "plain", uri: "mqtt://broker.example.org/notify", want: mqttTarget{Addr: "broker.example.org:1883", Topic: "notify"}},
		{name: "tls default port", uri: "mqtts://broker.example.org/a/b", want: mqttTarget{TLS: true, Addr: "broker.example.org:8883", Topic: "a/b"}},
		{name: "port", uri: "mqtt://127.0.0.1:1884/a", want: mqttTarget{Addr: "127.0.0.1:1884", Topic: "a"}},
		{name: "leading zeros in port", uri: "mqtt://127.0.0.1:001884/a", want: mqttTarget{Addr: "127.0.0.1:1884", Topic: "a"}},
		{name: "ipv6", uri: "mqtt://[::1]:1884/a", want: mqttTarget{Addr: "[::1]:1884", Topic: "a"}},
		{name: "upper-case scheme", uri: "MQTTS://h/a", want: mqttTarget{TLS: true, Addr: "h:8883", Topic: "a"}},
		{name: "user and password", uri: "mqtt://alice:p%40ss@h/a", want: mqttTarget{Addr: "h:1883", User: "alice", Password: "p@ss", HasPassword: true, Topic: "a"}},
		{name: "user only", uri: "mqtt://alice@h/a", want: mqttTarget{Addr: "h:1883", User: "alice", Topic: "a"}},
		{name: "password only", uri: "mqtt://:pw@h/a", want: mqttTarget{Addr: "h:1883", Password: "pw", HasPassword: true, Topic: "a"}},
		{name: "escaped topic", uri: "mqtt://h/room%201/t%C3%A9", want: mqttTarget{Addr: "h:1883", Topic: "room 1/té"}},
		{name: "sub-levels and empty level", uri: "mqtt://h/a//b/", want: mqttTarget{Addr: "h:1883", Topic: "a//b/"}},
		{name: "no topic", uri: "mqtt://h", err: errMQTTNoTopic},
		{name: "slash only", uri: "mqtt://h/", err: errMQTTNoTopic},
		{name: "no host", uri: "mqtt:///a", err: errMQTTNoHost},
		{name: "port only", uri: "mqtt://:1883/a", err: errMQTTNoHost},
		{name: "opaque", uri: "mqtt:h/a", err: errMQTTOpaque},
		{name: "port 0", uri: "mqtt://h:0/a", err: errMQTTPort},
		{name: "port too big", uri: "mqtt://h:65536/a", err: errMQTTPort},
		{name: "query", uri: "mqtt://h/a?x", err: errMQTTQuery},
		{name: "empty query", uri: "mqtt://h/a?", err: errMQTTQuery},
		{name: "plus", uri: "mqtt://h/a/+", err: errMQTTWildcard},
		{name: "hash", uri: "mqtt://h/a/#", err: errMQTTWildcard},
		{name: "escaped hash", uri: "mqtt://h/a/%23", err: errMQTTWildcard},
		{name: "NUL", uri: "mqtt://h/a%00b", err: errMQTTTopic},
		{name: "invalid UTF-8", uri: "mqtt://h/a%FFb", err: errMQTTTopic},
		{name: "http", uri: "http://h/a", err: errMQTTOpaque},
		{name: "bad escape", uri: "mqtt://u:%zz@h/a", err: "invalid endpoint URI: invalid percent-encoding"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseMQTTURI(tc.uri)
			if tc.err != "" {
				e, ok := err.(*Error)
				if !ok || e.Cause != tc.err || e.Temporary {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

var parseCauses = map[string]bool{
	errMQTTOpaque: true, errMQTTNoHost: true, errMQTTPort: true, errMQTTQuery: true,
	errMQTTNoTopic: true, errMQTTWildcard: true, errMQTTTopic: true,
}

// FuzzParseURI holds parseMQTT to its promises on any URI url.Parse takes:
// no panic; a target has a usable address and a topic one can publish to;
// an error is one of the fixed causes, so it shows nothing of the URI.
func FuzzParseURI(f *testing.F) {
	for _, s := range []string{
		"mqtt://h/t", "mqtts://u:p@h:8883/a/b/c", "mqtt://[::1]/x", "mqtt://h:0/t", "mqtt://h/a/#",
		"mqtt://h/a/+/b", "mqtt://h/%00", "mqtt://h/a?b", "mqtt:opaque", "mqtt://:pw@h/t", "mqtt://h//",
		"mqtt://u:%41@h:65535/%E2%82%AC", "mqtts://[fe80::1%25eth0]:1/t",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.Parse(raw)
		if err != nil {
			return
		}
		if s := strings.ToLower(u.Scheme); s != "mqtt" && s != "mqtts" {
			return
		}
		got, err := parseMQTT(u, raw)
		if err != nil {
			e, ok := err.(*Error)
			if !ok || !parseCauses[e.Cause] || e.Temporary {
				t.Fatalf("%q: error %v", raw, err)
			}
			return
		}
		host, port, err := net.SplitHostPort(got.Addr)
		if err != nil || host == "" {
			t.Fatalf("%q: address %q", raw, got.Addr)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			t.Fatalf("%q: port %q", raw, port)
		}
		if got.Topic == "" || strings.ContainsAny(got.Topic, "+#\x00") || !utf8.ValidString(got.Topic) || len(got.Topic) > 65535 {
			t.Fatalf("%q: topic %q", raw, got.Topic)
		}
		if got.TLS != strings.EqualFold(u.Scheme, "mqtts") {
			t.Fatalf("%q: TLS %v", raw, got.TLS)
		}
		if u.User != nil {
			p, ok := u.User.Password()
			if got.User != u.User.Username() || got.Password != p || got.HasPassword != ok {
				t.Fatalf("%q: credentials %+v", raw, got)
			}
		}
	})
}

// FuzzMQTTPayload: the MQTT message is valid JSON holding the metadata and
// the body as given.
func FuzzMQTTPayload(f *testing.F) {
	f.Add("NGSILD-Tenant", "city", `{"a":1}`)
	f.Add("k\"\\\n", "v\x00\x7f\xff\u2028", `[1,"x"]`)
	f.Add("", "", `null`)
	f.Fuzz(func(t *testing.T, key, value, body string) {
		if !json.Valid([]byte(body)) {
			if _, err := mqttPayload(nil, []byte(body)); err == nil {
				t.Fatal("invalid body accepted")
			}
			return
		}
		meta := mqttMetadata(ctJSON, &Message{Link: "<x>", Headers: []KV{{key, value}}})
		payload, err := mqttPayload(meta, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		var w struct {
			Metadata map[string]string `json:"metadata"`
			Body     json.RawMessage   `json:"body"`
		}
		if err := json.Unmarshal(payload, &w); err != nil {
			t.Fatalf("payload %q: %v", payload, err)
		}
		if string(w.Body) != strings.TrimSpace(body) && string(w.Body) != strings.Trim(body, " \t\r\n") {
			t.Fatalf("body %q, want %q", w.Body, body)
		}
		if w.Metadata["Content-Type"] != ctJSON || w.Metadata["Link"] != "<x>" {
			t.Fatalf("metadata %q", w.Metadata)
		}
		if strings.EqualFold(key, "Content-Type") || strings.EqualFold(key, "Link") {
			return
		}
		want := string([]rune(value)) // each invalid byte becomes U+FFFD
		if k := string([]rune(key)); w.Metadata[k] != want {
			t.Fatalf("metadata[%q] = %q, want %q", k, w.Metadata[k], want)
		}
	})
}

// parseMQTTURI parses raw, an mqtt or mqtts URI, as Send does.
func parseMQTTURI(raw string) (mqttTarget, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return mqttTarget{}, &Error{Cause: "invalid endpoint URI: " + sanitizeURLError(err)}
	}
	if s := strings.ToLower(u.Scheme); s != "mqtt" && s != "mqtts" {
		return mqttTarget{}, &Error{Cause: errMQTTOpaque}
	}
	return parseMQTT(u, raw)
}

package endpoint

import (
	"net"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Default MQTT ports (clause 7.2).
const (
	mqttPort  = "1883"
	mqttsPort = "8883"
)

// mqttTarget is an MQTT endpoint URI taken apart:
// mqtt[s]://[<username>][:<password>]@<host>[:<port>]/<topic>[/<subtopic>]*
type mqttTarget struct {
	TLS         bool
	Addr        string // host:port, the port defaulted
	User        string
	Password    string
	HasPassword bool
	Topic       string // the URI's path without its leading "/", unescaped
}

// Causes of parseMQTT's errors. They hold no part of the URI, which may hold
// a password.
const (
	errMQTTOpaque   = "invalid MQTT endpoint URI: want mqtt[s]://[user[:password]@]host[:port]/topic"
	errMQTTNoHost   = "invalid MQTT endpoint URI: no host"
	errMQTTPort     = "invalid MQTT endpoint URI: port out of range"
	errMQTTQuery    = "invalid MQTT endpoint URI: a query is not allowed"
	errMQTTNoTopic  = "invalid MQTT endpoint URI: no topic (the path is the topic)"
	errMQTTWildcard = "invalid MQTT endpoint URI: the topic must not contain the wildcards + or #"
	errMQTTTopic    = "invalid MQTT endpoint URI: the topic must be UTF-8 without NUL, at most 65535 bytes"
)

// parseMQTT takes apart u, parsed from raw, whose scheme is mqtt or mqtts.
func parseMQTT(u *url.URL, raw string) (mqttTarget, error) {
	var t mqttTarget
	t.TLS = strings.EqualFold(u.Scheme, "mqtts")
	if u.Opaque != "" {
		return t, &Error{Cause: errMQTTOpaque}
	}
	host := u.Hostname()
	if host == "" {
		return t, &Error{Cause: errMQTTNoHost}
	}
	port := u.Port()
	switch {
	case port == "" && t.TLS:
		port = mqttsPort
	case port == "":
		port = mqttPort
	default:
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil || n == 0 {
			return t, &Error{Cause: errMQTTPort}
		}
		port = strconv.FormatUint(n, 10)
	}
	t.Addr = net.JoinHostPort(host, port)
	if u.RawQuery != "" || u.ForceQuery {
		return t, &Error{Cause: errMQTTQuery}
	}
	// url.Parse drops an empty fragment ("mqtt://h/a/#"): look at raw.
	if u.Fragment != "" || strings.IndexByte(raw, '#') >= 0 {
		return t, &Error{Cause: errMQTTWildcard}
	}
	t.Topic = strings.TrimPrefix(u.Path, "/")
	if t.Topic == "" {
		return t, &Error{Cause: errMQTTNoTopic}
	}
	if strings.ContainsAny(t.Topic, "+#") {
		return t, &Error{Cause: errMQTTWildcard}
	}
	if len(t.Topic) > 65535 || !utf8.ValidString(t.Topic) || strings.IndexByte(t.Topic, 0) >= 0 {
		return t, &Error{Cause: errMQTTTopic}
	}
	if u.User != nil {
		t.User = u.User.Username()
		t.Password, t.HasPassword = u.User.Password()
	}
	return t, nil
}

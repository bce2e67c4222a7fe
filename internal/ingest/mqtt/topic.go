package mqtt

import (
	"fmt"
	"slices"
	"strings"
)

// The topics every broker and client read (IoT Agent JSON): the API key and
// the device id are one topic level each.
var defaultPatterns = []string{
	"/{apikey}/{device}/attrs",
	"/json/{apikey}/{device}/attrs",
}

// pattern is a topic with the placeholders {apikey} and {device}, each one
// whole topic level: "city/{apikey}/{device}/up".
type pattern struct {
	levels         []string // literal levels; the placeholders' entries are unused
	apikey, device int      // the placeholders' level indexes
}

func parsePattern(p string) (pattern, error) {
	pt := pattern{levels: strings.Split(p, "/"), apikey: -1, device: -1}
	for i, lv := range pt.levels {
		switch {
		case lv == "{apikey}" && pt.apikey < 0:
			pt.apikey = i
		case lv == "{device}" && pt.device < 0:
			pt.device = i
		case lv == "{apikey}" || lv == "{device}":
			return pattern{}, fmt.Errorf("MQTT topic pattern %q: %s appears twice", p, lv)
		case strings.ContainsAny(lv, "{}"):
			return pattern{}, fmt.Errorf("MQTT topic pattern %q: level %q: a placeholder ({apikey} or {device}) must be a whole topic level", p, lv)
		case strings.ContainsAny(lv, "+#\x00"):
			return pattern{}, fmt.Errorf("MQTT topic pattern %q: level %q: wildcards are not allowed; use {apikey} and {device}", p, lv)
		}
	}
	if pt.apikey < 0 || pt.device < 0 {
		return pattern{}, fmt.Errorf("MQTT topic pattern %q: it needs both {apikey} and {device}", p)
	}
	return pt, nil
}

// match returns the API key and device id of a topic of the pattern's form.
// Both are non-empty and hold no '/', '+' or '#'.
func (p *pattern) match(topic string) (apikey, device string, ok bool) {
	rest := topic
	last := len(p.levels) - 1
	for i, lit := range p.levels {
		level, after, more := strings.Cut(rest, "/")
		if more == (i == last) { // too few or too many levels
			return "", "", false
		}
		rest = after
		switch i {
		case p.apikey:
			apikey = level
		case p.device:
			device = level
		default:
			if level != lit {
				return "", "", false
			}
			continue
		}
		if level == "" || strings.ContainsAny(level, "+#") {
			return "", "", false
		}
	}
	return apikey, device, true
}

// filter is the subscription that receives the pattern's topics.
func (p *pattern) filter() string {
	lv := make([]string, len(p.levels))
	copy(lv, p.levels)
	lv[p.apikey], lv[p.device] = "+", "+"
	return strings.Join(lv, "/")
}

// topics recognises device topics: the configured pattern first, then the
// default ones.
type topics []pattern

// newTopics parses the configured pattern ("" for none) beside the defaults.
func newTopics(custom string) (topics, error) {
	var ts topics
	if custom != "" {
		p, err := parsePattern(custom)
		if err != nil {
			return nil, err
		}
		ts = append(ts, p)
	}
	for _, d := range defaultPatterns {
		p, err := parsePattern(d)
		if err != nil {
			panic(err) // the defaults are constants
		}
		ts = append(ts, p)
	}
	return ts, nil
}

// parse returns the API key and device id a topic names.
func (ts topics) parse(topic string) (apikey, device string, ok bool) {
	for i := range ts {
		if apikey, device, ok = ts[i].match(topic); ok {
			return apikey, device, true
		}
	}
	return "", "", false
}

// filters are the subscriptions (without duplicates) an external broker's
// client makes.
func (ts topics) filters() []string {
	var fs []string
	for i := range ts {
		f := ts[i].filter()
		if !slices.Contains(fs, f) {
			fs = append(fs, f)
		}
	}
	return fs
}

package qlang

import (
	"cmp"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"
)

type valueKind uint8

const (
	vNum valueKind = iota
	vStr
	vBool
	vURI
	vTime
)

type timeKind uint8

const (
	tkDateTime timeKind = iota
	tkDate
	tkTime
)

// value is a literal of a query term.
type value struct {
	kind valueKind
	num  float64
	str  string // vStr, vURI; the source text of vTime
	exp  string // vStr, vURI: the literal expanded as a term, compared with VocabProperty values
	b    bool
	tk   timeKind
	t    time.Time     // tkDateTime, tkDate (UTC)
	tod  time.Duration // tkTime: time of day in UTC
}

func (v value) String() string {
	switch v.kind {
	case vNum:
		if v.num == math.Trunc(v.num) && math.Abs(v.num) < 1e15 {
			if v.num == 0 && math.Signbit(v.num) {
				return "-0"
			}
			return strconv.FormatInt(int64(v.num), 10)
		}
		return strconv.FormatFloat(v.num, 'g', -1, 64)
	case vStr:
		return quote(v.str)
	case vBool:
		return strconv.FormatBool(v.b)
	default: // vURI, vTime
		return v.str
	}
}

// ordered reports whether the literal may be used with <, <=, >, >= and ranges.
func (v value) ordered() bool { return v.kind == vNum || v.kind == vStr || v.kind == vTime }

// classify turns an unquoted token into a literal.
func classify(tok string) (value, bool) {
	switch tok {
	case "true":
		return value{kind: vBool, b: true}, true
	case "false":
		return value{kind: vBool, b: false}, true
	}
	if isNumber(tok) {
		f, err := strconv.ParseFloat(tok, 64)
		if err != nil || math.IsInf(f, 0) {
			return value{}, false
		}
		return value{kind: vNum, num: f}, true
	}
	if c := tok[0]; c >= '0' && c <= '9' {
		if t, ok := parseDateTime(tok); ok {
			return value{kind: vTime, tk: tkDateTime, t: t, str: tok}, true
		}
		if t, ok := parseDate(tok); ok {
			return value{kind: vTime, tk: tkDate, t: t, str: tok}, true
		}
		if d, ok := parseTimeOfDay(tok); ok {
			return value{kind: vTime, tk: tkTime, tod: d, str: tok}, true
		}
		return value{}, false
	}
	if isURI(tok) {
		return value{kind: vURI, str: tok}, true
	}
	return value{}, false
}

// isNumber accepts -?digits(.digits)?([eE][+-]?digits)?
func isNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	digits := func() bool {
		j := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i > j
	}
	if !digits() {
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if !digits() {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if !digits() {
			return false
		}
	}
	return i == len(s)
}

// isURI accepts scheme ":" rest, rest not empty (RFC 3986 scheme syntax).
func isURI(s string) bool {
	colon := strings.IndexByte(s, ':')
	if colon < 1 || colon == len(s)-1 {
		return false
	}
	for i := 0; i < colon; i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}

// parseDateTime accepts ISO 8601 date-times with seconds, optional fraction and
// an optional zone (UTC when absent).
func parseDateTime(s string) (time.Time, bool) {
	if len(s) < 19 || s[10] != 'T' {
		return time.Time{}, false
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), true
	}
	if t, err := time.Parse("2006-01-02T15:04:05.999999999", s); err == nil {
		return t, true
	}
	return time.Time{}, false
}

func parseDate(s string) (time.Time, bool) {
	if len(s) != 10 {
		return time.Time{}, false
	}
	t, err := time.Parse("2006-01-02", s)
	return t, err == nil
}

var todLayouts = []string{"15:04:05.999999999Z07:00", "15:04:05.999999999", "15:04Z07:00", "15:04"}

// parseTimeOfDay parses an ISO 8601 time and returns it as the time of day in UTC.
func parseTimeOfDay(s string) (time.Duration, bool) {
	if len(s) < 5 || s[2] != ':' {
		return 0, false
	}
	for _, l := range todLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return timeOfDay(t), true
		}
	}
	return 0, false
}

func timeOfDay(t time.Time) time.Duration {
	h, m, sec := t.UTC().Clock()
	return time.Duration(h)*time.Hour + time.Duration(m)*time.Minute +
		time.Duration(sec)*time.Second + time.Duration(t.Nanosecond())
}

// toFloat reports x as a float64 if it is a JSON number.
func toFloat(x any) (float64, bool) {
	switch n := x.(type) {
	case float64:
		return n, true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case float32:
		return float64(n), true
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	}
	return 0, false
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	case a == b:
		return 0
	}
	return 2 // NaN: unordered and unequal
}

// compare compares a target value x with literal v. ok is false when the two
// are of different types (then they are unequal and unordered). vocab asks for
// string literals to also compare equal with their expansion.
func compare(x any, v *value, vocab bool) (c int, ok bool) {
	switch v.kind {
	case vNum:
		f, ok := toFloat(x)
		if !ok {
			return 0, false
		}
		c = cmpFloat(f, v.num)
		return c, c != 2
	case vStr:
		switch s := x.(type) {
		case string:
			if vocab && s == v.exp {
				return 0, true
			}
			return strings.Compare(s, v.str), true
		case time.Time:
			// metadata times against a quoted time
			if t, ok := parseDateTime(v.str); ok {
				return s.Compare(t), true
			}
			if t, ok := parseDate(v.str); ok {
				return s.Compare(t), true
			}
		}
		return 0, false
	case vURI:
		s, ok := x.(string)
		if !ok {
			return 0, false
		}
		if s == v.str || vocab && s == v.exp {
			return 0, true
		}
		return 1, true
	case vBool:
		b, ok := x.(bool)
		if !ok {
			return 0, false
		}
		if b == v.b {
			return 0, true
		}
		return 1, true
	case vTime:
		var t time.Time
		switch s := x.(type) {
		case time.Time:
			t = s
		case string:
			if v.tk == tkTime {
				d, ok := parseTimeOfDay(s)
				if !ok {
					return 0, false
				}
				return cmp.Compare(d, v.tod), true
			}
			var ok bool
			if t, ok = parseDateTime(s); !ok {
				if t, ok = parseDate(s); !ok {
					return 0, false
				}
			}
		default:
			return 0, false
		}
		if t.IsZero() {
			return 0, false
		}
		if v.tk == tkTime {
			return cmp.Compare(timeOfDay(t), v.tod), true
		}
		return t.Compare(v.t), true
	}
	return 0, false
}

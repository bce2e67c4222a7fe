package subscription

// Readers of the JSON values a subscription body holds, with the errors
// that name the member.

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
)

func str(path string, v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", ngsild.Errorf(ngsild.InvalidRequest, "%s must be a string, not %s", path, ngsild.JSONKind(v))
	}
	return s, nil
}

func boolean(path string, v any) (bool, error) {
	b, ok := v.(bool)
	if !ok {
		return false, ngsild.Errorf(ngsild.InvalidRequest, "%s must be true or false, not %s", path, ngsild.JSONKind(v))
	}
	return b, nil
}

func dateTime(path string, v any) (time.Time, error) {
	s, err := str(path, v)
	if err != nil {
		return time.Time{}, err
	}
	t, err := ngsild.ParseTime(s)
	if err != nil {
		return time.Time{}, ngsild.Errorf(ngsild.BadRequestData, "%s %q is not a DateTime such as 2030-01-31T12:00:00Z", path, s)
	}
	return msTime(t), nil
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	}
	return 0, false
}

// seconds parses a positive number of seconds (timeInterval, throttling),
// kept to the millisecond so that rendering it back gives the same value.
func seconds(path string, v any) (time.Duration, error) {
	f, ok := number(v)
	if !ok {
		return 0, ngsild.Errorf(ngsild.InvalidRequest, "%s must be a number of seconds, not %s", path, ngsild.JSONKind(v))
	}
	if math.IsNaN(f) || f <= 0 {
		return 0, ngsild.Errorf(ngsild.BadRequestData, "%s must be a positive number of seconds, got %v", path, f)
	}
	if f > maxSeconds {
		return 0, ngsild.Errorf(ngsild.BadRequestData, "%s must be at most %d seconds, got %v", path, maxSeconds, f)
	}
	ms := math.Round(f * 1000)
	if ms < 1 {
		return 0, ngsild.Errorf(ngsild.BadRequestData, "%s must be at least 0.001 seconds, got %v", path, f)
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// millis parses a non-negative number of milliseconds (timeout, cooldown).
func millis(path string, v any) (time.Duration, error) {
	f, ok := number(v)
	if !ok {
		return 0, ngsild.Errorf(ngsild.InvalidRequest, "%s must be a number of milliseconds, not %s", path, ngsild.JSONKind(v))
	}
	if math.IsNaN(f) || f < 0 || f > maxSeconds*1000 {
		return 0, ngsild.Errorf(ngsild.BadRequestData, "%s must be a number of milliseconds between 0 and %d, got %v", path, maxSeconds*1000, f)
	}
	return time.Duration(math.Round(f)) * time.Millisecond, nil
}

// validLang accepts a language tag (BCP 47 shape: alphanumeric subtags of at
// most 8 characters, the first one letters) or "*" (any language, 4.15).
func validLang(s string) bool {
	if s == "*" {
		return true
	}
	if s == "" || len(s) > 35 {
		return false
	}
	for i, part := range strings.Split(s, "-") {
		if part == "" || len(part) > 8 {
			return false
		}
		for _, r := range part {
			letter := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
			if !letter && (i == 0 || r < '0' || r > '9') {
				return false
			}
		}
	}
	return true
}

// within prefixes an error's detail with the member it is about.
func within(path string, err error) error {
	var e *ngsild.Error
	if errors.As(err, &e) {
		if strings.HasPrefix(e.Detail, path) {
			return e
		}
		return ngsild.Errorf(e.Type, "%s: %s", path, e.Detail)
	}
	return ngsild.Errorf(ngsild.BadRequestData, "%s: %v", path, err)
}

// msTime is t in UTC to the millisecond: what FormatTime writes, so a
// rendered subscription parses back to the same times.
func msTime(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Truncate(time.Millisecond)
}

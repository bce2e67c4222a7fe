package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/ngsild/geo"
)

// Limits on what one uplink may hold.
const (
	MaxPayload  = 256 << 10 // bytes
	MaxReadings = 2000      // readings in one array (a month of hourly values)
	futureSlack = 10 * time.Minute
)

var minTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// reading is the attributes of one reading, all observed at one time.
type reading struct {
	at    time.Time
	attrs map[string][]*ngsild.Attribute
}

// ttsUplink is the part of a The Things Stack v3 uplink message zenne reads.
type ttsUplink struct {
	EndDeviceIDs struct {
		DeviceID string `json:"device_id"`
	} `json:"end_device_ids"`
	ReceivedAt    string `json:"received_at"`
	UplinkMessage *struct {
		DecodedPayload map[string]any `json:"decoded_payload"`
		ReceivedAt     string         `json:"received_at"`
	} `json:"uplink_message"`
}

// parseTTS returns the device id, decoded fields and time of a TTS uplink.
func parseTTS(payload []byte) (deviceID string, fields map[string]any, at string, err error) {
	var m ttsUplink
	if err := json.Unmarshal(payload, &m); err != nil {
		return "", nil, "", Reject(http.StatusBadRequest, "not a The Things Stack uplink message: %v", err)
	}
	if m.EndDeviceIDs.DeviceID == "" {
		return "", nil, "", Reject(http.StatusBadRequest, "no end_device_ids.device_id in the uplink message")
	}
	if m.UplinkMessage == nil || m.UplinkMessage.DecodedPayload == nil {
		return m.EndDeviceIDs.DeviceID, nil, "", Reject(http.StatusUnprocessableEntity,
			"no uplink_message.decoded_payload: set a payload formatter for the device in The Things Stack")
	}
	at = m.UplinkMessage.ReceivedAt
	if at == "" {
		at = m.ReceivedAt
	}
	return m.EndDeviceIDs.DeviceID, m.UplinkMessage.DecodedPayload, at, nil
}

// decodeJSON decodes an IoT Agent JSON payload: an object or an array of
// objects.
func decodeJSON(payload []byte) ([]map[string]any, error) {
	p := bytes.TrimSpace(payload)
	if len(p) == 0 {
		return nil, Reject(http.StatusBadRequest, "empty payload: send a JSON object of field -> value")
	}
	if p[0] == '[' {
		var arr []map[string]any
		if err := json.Unmarshal(p, &arr); err != nil {
			return nil, Reject(http.StatusBadRequest, "malformed JSON array of readings: %v", err)
		}
		if len(arr) == 0 {
			return nil, Reject(http.StatusBadRequest, "empty array of readings")
		}
		if len(arr) > MaxReadings {
			return nil, Reject(http.StatusRequestEntityTooLarge, "%d readings in one message: send at most %d", len(arr), MaxReadings)
		}
		return arr, nil
	}
	var obj map[string]any
	if err := json.Unmarshal(p, &obj); err != nil {
		return nil, Reject(http.StatusBadRequest, "malformed JSON: %v (send a JSON object of field -> value)", err)
	}
	return []map[string]any{obj}, nil
}

// readings maps decoded payload objects to attributes, oldest first; at is
// the time of an object without a timestamp field (the receive time, or
// the time a LoRaWAN network server gives).
func (c *compiled) readings(objs []map[string]any, at, now time.Time) ([]reading, error) {
	out := make([]reading, 0, len(objs))
	for i, obj := range objs {
		r := reading{at: at, attrs: make(map[string][]*ngsild.Attribute, len(obj))}
		if c.tsField != "" {
			if v, ok := obj[c.tsField]; ok {
				t, err := parseTime(v)
				if err != nil {
					return nil, Reject(http.StatusBadRequest, "reading %d: timestamp field %q: %v", i, c.tsField, err)
				}
				r.at = t
			}
		}
		if r.at.After(now.Add(futureSlack)) || r.at.Before(minTime) {
			return nil, Reject(http.StatusUnprocessableEntity, "reading %d: time %s is in the future or before 2000: check the device's clock", i, r.at.Format(time.RFC3339))
		}
		// Fields in a stable order, so that errors name the same field
		// every time.
		names := make([]string, 0, len(obj))
		for k := range obj {
			if k != c.tsField {
				names = append(names, k)
			}
		}
		sort.Strings(names)
		for _, k := range names {
			f := c.fields[k]
			if f == nil {
				if c.explicit {
					continue
				}
				f = &field{name: c.expand(k), kind: ngsild.Property, scale: 1}
			}
			a, err := f.attribute(obj[k], r.at)
			if err != nil {
				return nil, Reject(http.StatusUnprocessableEntity, "reading %d: field %q: %v", i, k, err)
			}
			if a != nil {
				r.attrs[f.name] = []*ngsild.Attribute{a}
			}
		}
		if len(r.attrs) == 0 {
			return nil, Reject(http.StatusUnprocessableEntity, "reading %d has no mapped field: check the payload's field names against the device's attributes", i)
		}
		out = append(out, r)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].at.Before(out[j].at) })
	return out, nil
}

// attribute converts one payload value; nil for a JSON null (no reading).
func (f *field) attribute(v any, at time.Time) (*ngsild.Attribute, error) {
	if v == nil {
		return nil, nil
	}
	a := &ngsild.Attribute{Kind: f.kind, ObservedAt: at, UnitCode: f.unitCode}
	switch f.kind {
	case ngsild.Property:
		if f.scale != 1 || f.offset != 0 {
			x, ok := number(v)
			if !ok {
				return nil, fmt.Errorf("%v is not a number (the mapping scales it)", v)
			}
			v = roundNoise(x*f.scale + f.offset)
		}
		a.Value = v
	case ngsild.GeoProperty:
		if pair, ok := v.([]any); ok && len(pair) == 2 { // [lon, lat]
			v = map[string]any{"type": "Point", "coordinates": pair}
		}
		if _, err := geo.ParseGeometry(v); err != nil {
			return nil, fmt.Errorf("not a GeoJSON geometry or [longitude, latitude]: %v", err)
		}
		a.Value = v
	case ngsild.Relationship:
		s, ok := v.(string)
		if !ok || ngsild.ValidURI(s) != nil {
			return nil, fmt.Errorf("%v is not an entity URI", v)
		}
		a.Value = s
	}
	return a, nil
}

// number reads a JSON number, or a string holding one (devices that send
// every value as text).
func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case string:
		f, err := strconv.ParseFloat(x, 64)
		return f, err == nil && !math.IsInf(f, 0) && !math.IsNaN(f)
	}
	return 0, false
}

// parseTime reads an RFC 3339 time or Unix milliseconds.
func parseTime(v any) (time.Time, error) {
	switch x := v.(type) {
	case string:
		t, err := time.Parse(time.RFC3339Nano, x)
		if err != nil {
			return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time (2026-11-22T10:15:00Z)", x)
		}
		return t.UTC(), nil
	case float64:
		if x < 0 || x > 1e15 {
			return time.Time{}, fmt.Errorf("%v is not Unix milliseconds", x)
		}
		return time.UnixMilli(int64(x)).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("%v is neither an RFC 3339 time nor Unix milliseconds", v)
}

// roundNoise rounds a scaled value to 15 significant digits, dropping the
// binary noise of the arithmetic (95 × 0.01 is 0.9500000000000001).
func roundNoise(x float64) float64 {
	r, err := strconv.ParseFloat(strconv.FormatFloat(x, 'g', 15, 64), 64)
	if err != nil {
		return x
	}
	return r
}

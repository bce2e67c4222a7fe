package adminapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zenne-city/zenne/internal/auth"
	"github.com/zenne-city/zenne/internal/ngsild"
)

// Bodies are JSON objects read member by member, so that every mistake is
// told precisely: an unknown or repeated member, a value of the wrong type
// (named with its member), malformed JSON with its line and column. Values
// are never repeated in messages: a body may hold a password.

// members is a body's members by name.
type members map[string]json.RawMessage

// body reads the request's JSON object body with members among allowed.
func (req *request) body(allowed ...string) (members, error) {
	ct := req.r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil || mt != "application/json" {
		return nil, ngsild.Errorf(ngsild.UnsupportedMediaType, "send the body as application/json (Content-Type: application/json)")
	}
	data, err := io.ReadAll(io.LimitReader(req.r.Body, MaxBody+1))
	if err != nil {
		return nil, ngsild.Errorf(ngsild.InvalidRequest, "reading the body: %v", err)
	}
	if len(data) > MaxBody {
		return nil, ngsild.Errorf(ngsild.PayloadTooLarge, "the body is larger than %d bytes", MaxBody)
	}
	return decodeObject(data, "the body", allowed)
}

// decodeObject parses a JSON object (what: "the body", "a grant") whose
// member names are among allowed, each given once.
func decodeObject(data []byte, what string, allowed []string) (members, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, ngsild.Errorf(ngsild.InvalidRequest, "the request body is empty: send a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return nil, syntaxError(data, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, ngsild.Errorf(ngsild.BadRequestData, "%s must be a JSON object, not %s", what, kindOfToken(tok))
	}
	m := members{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, syntaxError(data, err)
		}
		name, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, syntaxError(data, err)
		}
		if !slices.Contains(allowed, name) {
			return nil, ngsild.Errorf(ngsild.BadRequestData, "unknown member %s: %s takes %s", strconv.Quote(clip(name, 40)), what, strings.Join(allowed, ", "))
		}
		if _, dup := m[name]; dup {
			return nil, ngsild.Errorf(ngsild.BadRequestData, "member %s given twice", name)
		}
		m[name] = raw
	}
	if _, err := dec.Token(); err != nil {
		return nil, syntaxError(data, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, ngsild.Errorf(ngsild.InvalidRequest, "the body has data after its JSON object (at byte %d)", dec.InputOffset())
	}
	return m, nil
}

func kindOfToken(tok json.Token) string {
	switch t := tok.(type) {
	case json.Delim:
		if t == '[' {
			return "an array"
		}
	case nil:
		return "null"
	case string:
		return "a string"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	}
	return "that"
}

// syntaxError says where a body stops being JSON.
func syntaxError(data []byte, err error) error {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		line, col := position(data, syn.Offset)
		return ngsild.Errorf(ngsild.InvalidRequest, "the body is not valid JSON: %v (line %d, column %d)", syn, line, col)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return ngsild.Errorf(ngsild.InvalidRequest, "the body is not valid JSON: it ends in the middle of a value")
	}
	return ngsild.Errorf(ngsild.InvalidRequest, "the body is not valid JSON: %v", err)
}

// position is the line and column of the byte before offset.
func position(data []byte, offset int64) (line, col int) {
	line, col = 1, 0
	for i := int64(0); i < offset && i < int64(len(data)); i++ {
		if data[i] == '\n' {
			line, col = line+1, 0
		} else {
			col++
		}
	}
	return line, max(col, 1)
}

// wrongType names what a member should have been and what it is.
func wrongType(member, want string, raw json.RawMessage) error {
	var v any
	json.Unmarshal(raw, &v)
	return ngsild.Errorf(ngsild.BadRequestData, "member %s: expected %s, not %s", member, want, ngsild.JSONKind(v))
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// str reads a string member; ok is false when it is absent.
func (m members) str(name string) (s string, ok bool, err error) {
	raw, ok := m[name]
	if !ok {
		return "", false, nil
	}
	if err := json.Unmarshal(raw, &s); err != nil || isNull(raw) {
		return "", true, wrongType(name, "a string", raw)
	}
	return s, true, nil
}

// required reads a string member that must be given.
func (m members) required(name string) (string, error) {
	s, ok, err := m.str(name)
	if err == nil && !ok {
		err = ngsild.Errorf(ngsild.BadRequestData, "member %s is required", name)
	}
	return s, err
}

// boolean reads a boolean member; ok is false when it is absent.
func (m members) boolean(name string) (b, ok bool, err error) {
	raw, ok := m[name]
	if !ok {
		return false, false, nil
	}
	if err := json.Unmarshal(raw, &b); err != nil || isNull(raw) {
		return false, true, wrongType(name, "true or false", raw)
	}
	return b, true, nil
}

// time reads an RFC 3339 time member; ok is false when it is absent or
// null.
func (m members) time(name string) (t time.Time, ok bool, err error) {
	raw, ok := m[name]
	if !ok || isNull(raw) {
		return time.Time{}, false, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return time.Time{}, true, wrongType(name, "a time (RFC 3339, e.g. 2030-01-31T00:00:00Z)", raw)
	}
	t, err = time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, true, ngsild.Errorf(ngsild.BadRequestData, "member %s: expected a time in RFC 3339, e.g. 2030-01-31T00:00:00Z", name)
	}
	return t, true, nil
}

// grants reads a grants member: an array of {"tenant", "role", "types"}
// objects, tenant and role required; ok is false when it is absent.
func (m members) grants(name string) (gs []auth.Grant, ok bool, err error) {
	raw, ok := m[name]
	if !ok {
		return nil, false, nil
	}
	gs, err = decodeGrants(name, raw)
	return gs, true, err
}

// decodeGrants parses grants. Types are expanded IRIs (an editor's grant
// limited to some entity types), checked by auth.ValidateGrants.
func decodeGrants(member string, raw json.RawMessage) ([]auth.Grant, error) {
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil || isNull(raw) {
		return nil, wrongType(member, `an array of grants ({"tenant": "...", "role": "..."})`, raw)
	}
	gs := make([]auth.Grant, 0, len(items))
	for i, item := range items {
		at := fmt.Sprintf("%s[%d]", member, i)
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(item, &obj); err != nil || obj == nil {
			return nil, wrongType(at, `a grant ({"tenant": "...", "role": "..."})`, item)
		}
		g, err := decodeObject(item, "a grant", []string{"tenant", "role", "types"})
		if err != nil {
			return nil, prefixed(at, err)
		}
		tenant, ok, err := g.str("tenant")
		if err != nil {
			return nil, prefixed(at, err)
		}
		if !ok {
			return nil, ngsild.Errorf(ngsild.BadRequestData, `%s: member tenant is required ("" for the default tenant, "*" for every tenant)`, at)
		}
		role, err := g.required("role")
		if err != nil {
			return nil, prefixed(at, err)
		}
		var types []string
		if rawTypes, ok := g["types"]; ok && !isNull(rawTypes) {
			if err := json.Unmarshal(rawTypes, &types); err != nil {
				return nil, wrongType(at+".types", "an array of entity types (expanded IRIs)", rawTypes)
			}
		}
		gs = append(gs, auth.Grant{Tenant: tenant, Role: auth.Role(role), Types: types})
	}
	return gs, nil
}

// prefixed puts where a grant's error is before it.
func prefixed(at string, err error) error {
	var ne *ngsild.Error
	if errors.As(err, &ne) {
		return ngsild.Errorf(ne.Type, "%s: %s", at, ne.Detail)
	}
	return err
}

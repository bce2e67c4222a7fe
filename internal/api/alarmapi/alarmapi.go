// Package alarmapi is the HTTP transport of alarm rules and alerts
// (docs/ALARMS.md): rules under /alarms/rules, back-tests, and the staff's
// actions on alerts. Errors are NGSI-LD ProblemDetails.
package alarmapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"

	"github.com/zenne-city/zenne/internal/alarm"
	"github.com/zenne-city/zenne/internal/api/access"
	"github.com/zenne-city/zenne/internal/api/problem"
	"github.com/zenne-city/zenne/internal/auth"
	"github.com/zenne-city/zenne/internal/jsonld"
	"github.com/zenne-city/zenne/internal/ngsild"
)

// MaxBody bounds a request body.
const MaxBody = 1 << 20

const (
	mimeJSON  = "application/json"
	mimeLD    = "application/ld+json"
	mimeMerge = "application/merge-patch+json"
)

// API serves /alarms/....
type API struct {
	svc *alarm.Service
	res *jsonld.Resolver
	log *slog.Logger
}

// New returns the API over an alarm service.
func New(svc *alarm.Service, res *jsonld.Resolver, log *slog.Logger) *API {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &API{svc: svc, res: res, log: log}
}

// Register adds the routes to mux: anyone who reads a tenant may read its
// rules; changing and back-testing them needs the rules right, acting on
// alerts the alerts right.
func (a *API) Register(mux *access.Mux) {
	const read, rules = auth.PermRead, auth.PermRules
	mux.Handle("GET /alarms/rules", read, a.handle(a.listRules))
	mux.Handle("POST /alarms/rules", rules, a.handle(a.createRule))
	mux.Handle("GET /alarms/rules/{id}", read, a.handle(a.getRule))
	mux.Handle("PUT /alarms/rules/{id}", rules, a.handle(a.replaceRule))
	mux.Handle("PATCH /alarms/rules/{id}", rules, a.handle(a.patchRule))
	mux.Handle("DELETE /alarms/rules/{id}", rules, a.handle(a.deleteRule))
	mux.Handle("POST /alarms/rules/{id}/backtest", rules, a.handle(a.backtestStored))
	mux.Handle("POST /alarms/backtest", rules, a.handle(a.backtestBody))
	for _, kind := range []string{alarm.Acknowledge, alarm.Assign, alarm.Resolve} {
		mux.Handle("POST /alarms/alerts/{id}/"+kind, auth.PermAlerts, a.handle(a.act(kind)))
	}
}

// request is one API call being served.
type request struct {
	w      http.ResponseWriter
	r      *http.Request
	tenant string
	// link is the @context URL of the request's Link header ("" none).
	link string
}

func (req *request) ctx() context.Context { return req.r.Context() }

func (a *API) handle(f func(*request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := &request{w: w, r: r}
		err := req.prepare()
		if err == nil {
			err = f(req)
		}
		if err != nil {
			a.fail(req, err)
		}
	})
}

// prepare reads the tenant and the Link header.
func (req *request) prepare() error {
	t := req.r.Header.Get("NGSILD-Tenant")
	if t != "" && !ngsild.ValidTenant(t) {
		return ngsild.Errorf(ngsild.BadRequestData, "invalid tenant name %q: use letters, digits, '_', '-' and '.' (at most 64)", t)
	}
	req.tenant = t // "" is store.DefaultTenant
	if t != "" {
		req.w.Header().Set("NGSILD-Tenant", t)
	}
	for _, v := range req.r.Header.Values("Link") {
		u, ok, err := jsonld.ParseContextLink(v)
		if err != nil {
			return err
		}
		if ok {
			if req.link != "" {
				return ngsild.Errorf(ngsild.BadRequestData, "more than one JSON-LD @context Link header")
			}
			req.link = u
		}
	}
	return nil
}

// body reads a JSON object body: application/json or application/ld+json
// (and application/merge-patch+json when merge), at most MaxBody bytes.
func (req *request) body(merge bool) (map[string]any, error) {
	ct := req.r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil {
		return nil, ngsild.Errorf(ngsild.UnsupportedMediaType, "missing or malformed Content-Type: send application/json or application/ld+json")
	}
	ld := mt == mimeLD
	if mt != mimeJSON && !ld && !(merge && mt == mimeMerge) {
		return nil, ngsild.Errorf(ngsild.UnsupportedMediaType, "Content-Type %s is not supported: send application/json or application/ld+json", mt)
	}
	data, err := io.ReadAll(io.LimitReader(req.r.Body, MaxBody+1))
	if err != nil {
		return nil, ngsild.Errorf(ngsild.InvalidRequest, "reading the body: %v", err)
	}
	if len(data) > MaxBody {
		return nil, ngsild.Errorf(ngsild.PayloadTooLarge, "the body is larger than %d bytes", MaxBody)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, ngsild.Errorf(ngsild.InvalidRequest, "the request body is empty: send a JSON object")
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&v); err != nil {
		return nil, ngsild.Errorf(ngsild.InvalidRequest, "the body is not valid JSON: %s", jsonError(data, err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, ngsild.Errorf(ngsild.InvalidRequest, "the body has data after its JSON value (at byte %d)", dec.InputOffset())
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, ngsild.Errorf(ngsild.BadRequestData, "the body must be a JSON object, not %s", ngsild.JSONKind(v))
	}
	_, has := m["@context"]
	switch {
	case ld && !has:
		return nil, ngsild.Errorf(ngsild.BadRequestData, "an application/ld+json body must have an @context member")
	case has && req.link != "":
		return nil, ngsild.Errorf(ngsild.BadRequestData, "give the @context in the body or in a Link header, not both")
	}
	return m, nil
}

// jsonError says where a body stops being JSON.
func jsonError(data []byte, err error) string {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		line, col := position(data, syn.Offset)
		return fmt.Sprintf("%v (line %d, column %d)", syn, line, col)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "it ends in the middle of a value"
	}
	return err.Error()
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

// fail writes err as ProblemDetails.
func (a *API) fail(req *request, err error) { problem.Write(req.w, req.r, a.log, err) }

// writeJSON writes a JSON response.
func (req *request) writeJSON(status int, body any) error {
	data, err := ngsild.Marshal(body)
	if err != nil {
		return err
	}
	req.w.Header().Set("Content-Type", mimeJSON)
	req.w.WriteHeader(status)
	req.w.Write(data)
	return nil
}

package adminapi

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/zenne-city/zenne/internal/auth"
	"github.com/zenne-city/zenne/internal/ngsild"
)

// Limits of GET /admin/audit.
const (
	DefaultAuditLimit = 100
	MaxAuditLimit     = 1000
)

// filter reads the audit query: from and to (RFC 3339; from <= time <
// to), who (a user, a key id, or anonymous), tenant (on the platform:
// tenants separated by commas, DefaultTenant for the default tenant and *
// for platform-wide actions; on a tenant, only itself) and limit. On a
// tenant, only its entries are read.
func (req *request) filter(maxLimit int) (auth.Filter, error) {
	q, err := req.query("from", "to", "who", "tenant", "limit")
	if err != nil {
		return auth.Filter{}, err
	}
	var f auth.Filter
	for _, b := range []struct {
		name string
		t    *time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		if v := q[b.name]; v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return f, ngsild.Errorf(ngsild.BadRequestData, "query parameter %s: expected an RFC 3339 time, e.g. 2025-03-01T00:00:00Z", b.name)
			}
			*b.t = t
		}
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		return f, ngsild.Errorf(ngsild.BadRequestData, "from must be before to")
	}
	if f.Who = q["who"]; len(f.Who) > 128 {
		return f, ngsild.Errorf(ngsild.BadRequestData, "query parameter who: at most 128 characters (a user name, a key id or anonymous)")
	}
	if v, ok := q["tenant"]; ok {
		for _, t := range strings.Split(v, ",") {
			switch {
			case t == DefaultTenant:
				t = ""
			case t == auth.AllTenants, ngsild.ValidTenant(t):
			default:
				return f, ngsild.Errorf(ngsild.BadRequestData, "query parameter tenant: %q is no tenant name (give names separated by commas, %s for the default tenant, * for platform-wide actions)", clip(t, 64), DefaultTenant)
			}
			f.Tenants = append(f.Tenants, t)
		}
	}
	if !req.scope.platform {
		for _, t := range f.Tenants {
			if t != req.scope.tenant {
				return f, ngsild.Errorf(ngsild.Forbidden, "this request reads the audit log of %s (NGSILD-Tenant) and no other tenant's", req.scope)
			}
		}
		f.Tenants = []string{req.scope.tenant}
	}
	if v := q["limit"]; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || (maxLimit > 0 && n > maxLimit) {
			if maxLimit > 0 {
				return f, ngsild.Errorf(ngsild.BadRequestData, "query parameter limit: give a number of entries from 1 to %d", maxLimit)
			}
			return f, ngsild.Errorf(ngsild.BadRequestData, "query parameter limit: give a positive number of entries")
		}
		f.Limit = n
	}
	return f, nil
}

// listAudit answers the entries of the filter, newest first.
func (a *API) listAudit(req *request) error {
	f, err := req.filter(MaxAuditLimit)
	if err != nil {
		return err
	}
	if f.Limit == 0 {
		f.Limit = DefaultAuditLimit
	}
	es, err := a.audit.Entries(req.ctx(), f)
	if err != nil {
		return err
	}
	return req.writeJSON(http.StatusOK, es)
}

// exportAudit streams the entries of the filter, oldest first, as JSON
// lines (all of them unless limit is given).
func (a *API) exportAudit(req *request) error {
	f, err := req.filter(0)
	if err != nil {
		return err
	}
	h := req.w.Header()
	h.Set("Content-Type", "application/x-ndjson")
	h.Set("Content-Disposition", `attachment; filename="zenne-audit-`+time.Now().UTC().Format("20060102T150405Z")+`.jsonl"`)
	cw := &countingWriter{w: req.w}
	if _, err := a.audit.Export(req.ctx(), cw, f); err != nil {
		if cw.n == 0 {
			h.Del("Content-Disposition")
			return err
		}
		// Half sent: cut the response, so that the client sees it is
		// incomplete rather than take it for the whole log.
		a.log.Error("audit export failed midway", "err", err, "request_id", h.Get("X-Request-Id"))
		panic(http.ErrAbortHandler)
	}
	return nil
}

// countingWriter counts what was written.
type countingWriter struct {
	w http.ResponseWriter
	n int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

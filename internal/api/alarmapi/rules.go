package alarmapi

import (
	"maps"
	"net/http"
	"net/url"
	"sort"
	"time"

	"github.com/zenne-city/zenne/internal/alarm"
	"github.com/zenne-city/zenne/internal/jsonld"
	"github.com/zenne-city/zenne/internal/ngsild"
)

// readOnly are the members a rule response adds; a body that carries them
// (a rule read, edited and sent back) has them ignored.
var readOnly = []string{"createdAt", "modifiedAt", "status"}

// ruleBody reads a rule body and gives it the request's @context when it
// has none: the Link header's, else the core context.
func (req *request) ruleBody(merge bool) (map[string]any, error) {
	body, err := req.body(merge)
	if err != nil {
		return nil, err
	}
	for _, k := range readOnly {
		delete(body, k)
	}
	if _, ok := body["@context"]; !ok {
		if req.link != "" {
			body["@context"] = req.link
		} else if !merge {
			body["@context"] = jsonld.CoreContext
		}
	}
	return body, nil
}

// ruleJSON is a rule as the API returns it: the stored body with its times
// and status.
func ruleJSON(info *alarm.RuleInfo) ngsild.Object {
	obj := make(ngsild.Object, 0, len(info.Doc)+4)
	if c, ok := info.Doc["@context"]; ok {
		obj.Set("@context", c)
	}
	obj.Set("id", info.ID)
	keys := make([]string, 0, len(info.Doc))
	for k := range info.Doc {
		switch k {
		case "@context", "id", "createdAt", "modifiedAt", "status":
		default:
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		obj.Set(k, info.Doc[k])
	}
	obj.Set("createdAt", ngsild.FormatTime(info.CreatedAt.UTC()))
	obj.Set("modifiedAt", ngsild.FormatTime(info.ModifiedAt.UTC()))
	obj.Set("status", info.Status)
	return obj
}

func (a *API) listRules(req *request) error {
	rules, err := a.svc.Rules(req.ctx(), req.tenant)
	if err != nil {
		return err
	}
	out := make([]any, len(rules))
	for i, info := range rules {
		out[i] = ruleJSON(info)
	}
	return req.writeJSON(http.StatusOK, out)
}

func (a *API) getRule(req *request) error {
	info, err := a.svc.Rule(req.ctx(), req.tenant, req.r.PathValue("id"))
	if err != nil {
		return err
	}
	return req.writeJSON(http.StatusOK, ruleJSON(info))
}

func (a *API) createRule(req *request) error {
	body, err := req.ruleBody(false)
	if err != nil {
		return err
	}
	info, err := a.svc.CreateRule(req.ctx(), req.tenant, body)
	if err != nil {
		return err
	}
	req.w.Header().Set("Location", "/alarms/rules/"+url.PathEscape(info.ID))
	return req.writeJSON(http.StatusCreated, ruleJSON(info))
}

func (a *API) replaceRule(req *request) error {
	body, err := req.ruleBody(false)
	if err != nil {
		return err
	}
	info, err := a.svc.ReplaceRule(req.ctx(), req.tenant, req.r.PathValue("id"), body)
	if err != nil {
		return err
	}
	return req.writeJSON(http.StatusOK, ruleJSON(info))
}

// patchRule applies a JSON merge patch (RFC 7396). The service replaces
// the members the patch names; objects are merged here first, so that
// {"threshold": {"above": 0.9}} keeps the threshold's other parameters.
// A patch without @context sent with a Link header makes that the rule's
// @context; without either the rule keeps its own.
func (a *API) patchRule(req *request) error {
	patch, err := req.ruleBody(true)
	if err != nil {
		return err
	}
	id := req.r.PathValue("id")
	cur, err := a.svc.Rule(req.ctx(), req.tenant, id)
	if err != nil {
		return err
	}
	for k, v := range patch {
		if p, ok := v.(map[string]any); ok {
			c, _ := cur.Doc[k].(map[string]any)
			patch[k] = mergePatch(c, p)
		}
	}
	info, err := a.svc.PatchRule(req.ctx(), req.tenant, id, patch)
	if err != nil {
		return err
	}
	return req.writeJSON(http.StatusOK, ruleJSON(info))
}

// mergePatch applies an object of a JSON merge patch to the current value
// (nil when it is not an object).
func mergePatch(cur, patch map[string]any) map[string]any {
	out := maps.Clone(cur)
	if out == nil {
		out = map[string]any{}
	}
	for k, v := range patch {
		switch p := v.(type) {
		case nil:
			delete(out, k)
		case map[string]any:
			c, _ := out[k].(map[string]any)
			out[k] = mergePatch(c, p)
		default:
			out[k] = v
		}
	}
	return out
}

func (a *API) deleteRule(req *request) error {
	if err := a.svc.DeleteRule(req.ctx(), req.tenant, req.r.PathValue("id")); err != nil {
		return err
	}
	req.w.WriteHeader(http.StatusNoContent)
	return nil
}

// A back-test covers 30 days up to now unless the request says, and at
// most maxYears years.
const (
	defaultSpan = 30 * 24 * time.Hour
	maxYears    = 2
)

// period reads the from and to query parameters (RFC 3339).
func period(r *http.Request, now time.Time) (from, to time.Time, err error) {
	q := r.URL.Query()
	parse := func(name string) (time.Time, bool, error) {
		s := q.Get(name)
		if s == "" {
			return time.Time{}, false, nil
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return time.Time{}, false, ngsild.Errorf(ngsild.BadRequestData, "%s %q is not an RFC 3339 time such as 2025-03-01T00:00:00Z", name, s)
		}
		return t, true, nil
	}
	to, hasTo, err := parse("to")
	if err != nil {
		return
	}
	if !hasTo {
		to = now
	}
	from, hasFrom, err := parse("from")
	if err != nil {
		return
	}
	if !hasFrom {
		from = to.Add(-defaultSpan)
	}
	switch {
	case !from.Before(to):
		err = ngsild.Errorf(ngsild.BadRequestData, "from %s is not before to %s", ngsild.FormatTime(from.UTC()), ngsild.FormatTime(to.UTC()))
	case from.AddDate(maxYears, 0, 0).Before(to):
		err = ngsild.Errorf(ngsild.BadRequestData, "from %s to %s is longer than %d years: back-test a shorter period", ngsild.FormatTime(from.UTC()), ngsild.FormatTime(to.UTC()), maxYears)
	}
	return from.UTC(), to.UTC(), err
}

// backtestStored runs a stored rule over history.
func (a *API) backtestStored(req *request) error {
	from, to, err := period(req.r, time.Now())
	if err != nil {
		return err
	}
	info, err := a.svc.Rule(req.ctx(), req.tenant, req.r.PathValue("id"))
	if err != nil {
		return err
	}
	return a.backtest(req, info.Doc, from, to)
}

// backtestBody runs a rule given in the body, which is not stored.
func (a *API) backtestBody(req *request) error {
	from, to, err := period(req.r, time.Now())
	if err != nil {
		return err
	}
	body, err := req.ruleBody(false)
	if err != nil {
		return err
	}
	return a.backtest(req, body, from, to)
}

func (a *API) backtest(req *request, body map[string]any, from, to time.Time) error {
	rep, err := a.svc.Backtest(req.ctx(), req.tenant, body, from, to)
	if err != nil {
		return err
	}
	if rep.Firings == nil {
		rep.Firings = []alarm.Firing{}
	}
	return req.writeJSON(http.StatusOK, rep)
}

package alarmapi

import (
	"net/http"
	"sort"
	"strings"

	"github.com/zenne-city/zenne/internal/alarm"
	"github.com/zenne-city/zenne/internal/api/access"
	"github.com/zenne-city/zenne/internal/auth"
	"github.com/zenne-city/zenne/internal/jsonld"
	"github.com/zenne-city/zenne/internal/ngsild"
)

// alertContext is what alerts are compacted with: the core context and the
// Smart Data Models Alert context, named in the response's Link header.
var alertContext = []any{jsonld.CoreContext, jsonld.SDMContextURL("Alert")}

// actionMembers are the members of an action's body.
var actionMembers = map[string]bool{"by": true, "to": true, "comment": true}

// act serves POST /alarms/alerts/{id}/<kind>: {"by", "to", "comment"} in,
// the alert after the action out (NGSI-LD normalized).
func (a *API) act(kind string) func(*request) error {
	return func(req *request) error {
		id := req.r.PathValue("id")
		if ngsild.ValidURI(id) != nil {
			return ngsild.Errorf(ngsild.BadRequestData, "the alert id %q is not a URI", id)
		}
		body, err := req.body(false)
		if err != nil {
			return err
		}
		act := alarm.Action{Kind: kind}
		var unknown []string
		for k, v := range body {
			if !actionMembers[k] {
				unknown = append(unknown, k)
				continue
			}
			s, ok := v.(string)
			if !ok && v != nil {
				return ngsild.Errorf(ngsild.BadRequestData, "%s must be a string, not %s", k, ngsild.JSONKind(v))
			}
			switch k {
			case "by":
				act.By = s
			case "to":
				act.To = s
			case "comment":
				act.Comment = s
			}
		}
		if len(unknown) > 0 {
			sort.Strings(unknown)
			return ngsild.Errorf(ngsild.BadRequestData, "%s: an action's body has by, to (assign) and comment only", strings.Join(unknown, ", "))
		}
		if act.To != "" && kind != alarm.Assign {
			return ngsild.Errorf(ngsild.BadRequestData, "to is for assign: %s says who acts (by) and why (comment)", kind)
		}
		act.By = actor(access.PrincipalFrom(req.ctx()), act.By)
		e, err := a.svc.Act(req.ctx(), req.tenant, id, act)
		if err != nil {
			return err
		}
		c, err := a.res.Resolve(req.ctx(), alertContext)
		if err != nil {
			return err
		}
		req.w.Header().Set("Link", jsonld.LinkHeader(jsonld.SDMContextURL("Alert")))
		return req.writeJSON(http.StatusOK, ngsild.Render(e, ngsild.RenderOptions{Format: ngsild.Normalized, Compact: c}))
	}
}

// actor is who the alert's history records as acting: the authenticated
// user; a body's "by" that names someone else (a console or integration
// acting for a person) is kept beside it, so the record cannot be forged.
func actor(p *auth.Principal, by string) string {
	by = strings.TrimSpace(by)
	who := p.User()
	switch {
	case who == "":
		return by
	case by == "" || by == who:
		return who
	}
	return by + " (via " + p.Who() + ")"
}

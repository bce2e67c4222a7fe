package ngsildapi

import (
	"mime"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/zenne-city/zenne/internal/jsonld"
	"github.com/zenne-city/zenne/internal/ngsild"
)

// accepted chooses the response media type from the Accept header among
// offers (in the server's order of preference); 406 if none fits.
func (req *request) accepted(offers ...string) (string, error) {
	h := req.r.Header.Get("Accept")
	if strings.TrimSpace(h) == "" {
		return offers[0], nil
	}
	type choice struct {
		mt string
		q  float64
	}
	var cs []choice
	for _, part := range strings.Split(h, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if s, ok := params["q"]; ok {
			if f, err := strconv.ParseFloat(s, 64); err == nil {
				q = f
			}
		}
		cs = append(cs, choice{mt, q})
	}
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].q > cs[j].q })
	for _, c := range cs {
		if c.q <= 0 {
			continue
		}
		for _, o := range offers {
			if c.mt == o || c.mt == "*/*" || c.mt == "application/*" {
				return o, nil
			}
		}
	}
	return "", ngsild.Errorf(ngsild.NotAcceptable, "cannot answer with %s: accepted types are %s", h, strings.Join(offers, ", "))
}

// contextSource is what a response says its @context is: the URL of the
// request's Link header, the body's @context, or the core context.
func (req *request) contextSource() any {
	if req.linkURL != "" {
		return req.linkURL
	}
	if req.ldBody && req.ctx != nil {
		return req.ctx.Source()
	}
	return coreContextV8
}

// linkHeader sets the response's JSON-LD context Link header.
func (req *request) linkHeader() {
	src := req.contextSource()
	url, ok := src.(string)
	if !ok {
		url = req.api.implicitContext(req.r, src)
	}
	req.w.Header().Set("Link", jsonld.LinkHeader(url))
}

// writeJSON writes a JSON response of media type mt: application/json gets the
// Link header, application/ld+json gets @context members (withContext adds
// one to an object or to each object of an array).
func (req *request) writeJSON(status int, mt string, body any, withContext bool) {
	if withContext {
		if mt == mimeLD {
			body = addContext(body, req.contextSource())
		} else {
			req.linkHeader()
		}
	}
	req.w.Header().Set("Content-Type", mt)
	data, err := ngsild.Marshal(body)
	if err != nil {
		req.fail(err)
		return
	}
	req.w.WriteHeader(status)
	req.w.Write(data)
}

func addContext(body any, ctx any) any {
	switch b := body.(type) {
	case ngsild.Object:
		return append(ngsild.Object{{Key: "@context", Value: ctx}}, b...)
	case []any:
		out := make([]any, len(b))
		for i, x := range b {
			out[i] = addContext(x, ctx)
		}
		return out
	}
	return body
}

// noContent answers 204.
func (req *request) noContent() {
	req.w.WriteHeader(http.StatusNoContent)
}

// geoJSON renders entities as GeoJSON features (6.3.15): the geometry is the
// chosen GeoProperty's value, the rest goes into properties.
func geoFeature(e *ngsild.Entity, obj ngsild.Object, geoProp string) ngsild.Object {
	f := ngsild.Object{{Key: "id", Value: e.ID}, {Key: "type", Value: "Feature"}}
	var geometry any
	if insts := e.Attrs[geoProp]; len(insts) > 0 && insts[0].Kind == ngsild.GeoProperty {
		geometry = insts[0].Value
	}
	f.Set("geometry", geometry)
	props := ngsild.Object{}
	for _, m := range obj {
		if m.Key == "id" {
			continue
		}
		props = append(props, m)
	}
	f.Set("properties", props)
	return f
}

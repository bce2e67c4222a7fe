package subscription

import (
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
)

// RenderOptions say how a subscription is written.
type RenderOptions struct {
	// Compact compacts attribute names with the response's @context (nil:
	// names stay expanded).
	Compact ngsild.Compactor
	// SysAttrs adds createdAt and modifiedAt.
	SysAttrs bool
	// Now decides whether the subscription has expired (zero: never).
	Now time.Time
}

// State is the status member of 5.2.12: "expired" once expiresAt has passed
// (now zero: never), "paused" while isActive is false, else "active".
func (s *Subscription) State(now time.Time) string {
	switch {
	case !now.IsZero() && !s.ExpiresAt.IsZero() && !s.ExpiresAt.After(now):
		return "expired"
	case !s.IsActive:
		return "paused"
	}
	return "active"
}

// State is notification.status (5.2.14): "failed" when the last attempt
// failed, "ok" when it succeeded, "" before any attempt.
func (st Status) State() string {
	switch {
	case !st.LastFailure.IsZero() && st.LastFailure.After(st.LastSuccess):
		return "failed"
	case !st.LastSuccess.IsZero() || !st.LastNotification.IsZero():
		return "ok"
	}
	return ""
}

// Render writes s in its JSON representation (5.2.12), with the notification
// status st. Attribute names, and the names in entity types and q, are
// compacted with opts.Compact (a name in a type or q expression stays as the
// user wrote it when its compacted form would not read back); scopeQ is
// written as the user wrote it. Parse and ParseStored read
// what Render writes back to an equal subscription (given the same @context),
// ignoring the read-only members (status, notification.status, timesSent...).
func Render(s *Subscription, st Status, opts RenderOptions) ngsild.Object {
	c := opts.Compact
	if c == nil {
		c = expanded{}
	}
	o := ngsild.Object{}
	if s.ID != "" {
		o.Set("id", s.ID)
	}
	o.Set("type", "Subscription")
	if s.Name != "" {
		o.Set("subscriptionName", s.Name)
	}
	if s.Description != "" {
		o.Set("description", s.Description)
	}
	if len(s.Entities) > 0 {
		sels := make([]any, len(s.Entities))
		for i, sel := range s.Entities {
			so := ngsild.Object{}
			if sel.ID != "" {
				so.Set("id", sel.ID)
			}
			if sel.IDPattern != nil {
				so.Set("idPattern", sel.IDPattern.String())
			}
			if sel.Type != nil {
				so.Set("type", sel.Type.Compact(c.CompactIRI))
			}
			sels[i] = so
		}
		o.Set("entities", sels)
	}
	if len(s.WatchedAttributes) > 0 {
		o.Set("watchedAttributes", compactAll(s.WatchedAttributes, c))
	}
	if len(s.Triggers) > 0 {
		ts := make([]string, len(s.Triggers))
		for i, t := range s.Triggers {
			ts[i] = string(t)
		}
		o.Set("notificationTrigger", ts)
	}
	if s.TimeInterval > 0 {
		o.Set("timeInterval", durationSeconds(s.TimeInterval))
	}
	if s.Q != nil {
		o.Set("q", s.Q.Compact(c.CompactIRI))
	}
	if s.GeoQRaw != nil {
		o.Set("geoQ", s.GeoQRaw)
	}
	if s.ScopeQ != nil {
		o.Set("scopeQ", s.ScopeQ.String())
	}
	if s.Lang != "" {
		o.Set("lang", s.Lang)
	}
	o.Set("isActive", s.IsActive)
	o.Set("status", s.State(opts.Now))
	if !s.ExpiresAt.IsZero() {
		o.Set("expiresAt", ngsild.FormatTime(s.ExpiresAt))
	}
	if s.Throttling > 0 {
		o.Set("throttling", durationSeconds(s.Throttling))
	}
	o.Set("notification", renderNotification(&s.Notification, st, c))
	if opts.SysAttrs {
		setSysTimes(&o, s.CreatedAt, s.ModifiedAt)
	}
	return o
}

func renderNotification(n *Notification, st Status, c ngsild.Compactor) ngsild.Object {
	o := ngsild.Object{}
	if len(n.Attributes) > 0 {
		o.Set("attributes", compactAll(n.Attributes, c))
	}
	o.Set("format", formatName(n.Format))
	o.Set("sysAttrs", n.SysAttrs)
	o.Set("showChanges", n.ShowChanges)

	e := &n.Endpoint
	eo := ngsild.Object{{Key: "uri", Value: e.URI}}
	accept := e.Accept
	if accept == "" {
		accept = MIMEJSON
	}
	eo.Set("accept", accept)
	if e.Timeout > 0 {
		eo.Set("timeout", float64(e.Timeout.Milliseconds()))
	}
	if e.Cooldown > 0 {
		eo.Set("cooldown", float64(e.Cooldown.Milliseconds()))
	}
	if len(e.ReceiverInfo) > 0 {
		eo.Set("receiverInfo", renderKeyValues(e.ReceiverInfo))
	}
	if len(e.NotifierInfo) > 0 {
		eo.Set("notifierInfo", renderKeyValues(e.NotifierInfo))
	}
	o.Set("endpoint", eo)

	if state := st.State(); state != "" {
		o.Set("status", state)
	}
	o.Set("timesSent", st.TimesSent)
	o.Set("timesFailed", st.TimesFailed)
	for _, m := range []struct {
		key string
		t   time.Time
	}{{"lastNotification", st.LastNotification}, {"lastSuccess", st.LastSuccess}, {"lastFailure", st.LastFailure}} {
		if !m.t.IsZero() {
			o.Set(m.key, ngsild.FormatTime(m.t))
		}
	}
	return o
}

func renderKeyValues(kvs []KeyValue) []any {
	out := make([]any, len(kvs))
	for i, kv := range kvs {
		out[i] = ngsild.Object{{Key: "key", Value: kv.Key}, {Key: "value", Value: kv.Value}}
	}
	return out
}

func compactAll(iris []string, c ngsild.Compactor) []string {
	out := make([]string, len(iris))
	for i, iri := range iris {
		out[i] = c.CompactIRI(iri)
	}
	return out
}

// durationSeconds writes a duration as seconds, to the millisecond (what
// Parse keeps).
func durationSeconds(d time.Duration) float64 {
	return float64(d.Milliseconds()) / 1000
}

// expanded is the Compactor that leaves IRIs as they are.
type expanded struct{}

func (expanded) CompactIRI(iri string) string { return iri }

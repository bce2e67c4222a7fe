package subscription

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/ngsild/geo"
	"github.com/zenne-city/zenne/internal/ngsild/qlang"
)

// The notification payload types an endpoint may ask for (5.2.15).
const (
	MIMEJSON   = "application/json"
	MIMEJSONLD = "application/ld+json"
)

// maxSeconds bounds timeInterval and throttling (and timeout and cooldown,
// in milliseconds): a time.Duration holds about 292 years, and ten years is
// more than anyone means.
const maxSeconds = 10 * 365 * 24 * 3600

// DefaultTriggers are the notificationTrigger values of a subscription that
// gives none (5.2.12): attribute creations and updates, which also covers an
// entity created with attributes.
func DefaultTriggers() []Trigger { return []Trigger{AttributeCreated, AttributeUpdated} }

// newSubscription is a subscription holding every default of 5.2.12, 5.2.14
// and 5.2.15, before the body's members are applied.
func newSubscription() *Subscription {
	return &Subscription{
		Triggers: DefaultTriggers(),
		IsActive: true,
		Notification: Notification{
			Format:   ngsild.Normalized,
			Endpoint: Endpoint{Accept: MIMEJSON},
		},
	}
}

// Parse turns a subscription creation body (POST /subscriptions, 5.8.1),
// decoded from JSON with its @context already resolved into ex and the
// "@context" member removed, into a Subscription. Names are expanded with ex.
// It validates every member and the rules between them; errors are
// *ngsild.Error (InvalidRequest when a member has the wrong JSON type,
// BadRequestData when its content is wrong). An absent id leaves ID empty for
// the caller to assign; Context is left unset for the caller too. CreatedAt
// and ModifiedAt are now (to the millisecond, as rendered).
//
// Members Parse does not know (and the read-only ones Render writes, such as
// status or notification.timesSent) are ignored.
func Parse(body map[string]any, ex ngsild.Expander, now time.Time) (*Subscription, error) {
	now = msTime(now)
	s, err := parseBody(body, ex)
	if err != nil {
		return nil, err
	}
	if err := checkExpiry(s.ExpiresAt, now); err != nil {
		return nil, err
	}
	s.CreatedAt, s.ModifiedAt = now, now
	return s, nil
}

// ParseStored parses a subscription written by Render (with SysAttrs), as the
// notifier reloads its subscriptions at start-up: like Parse, except that an
// expiresAt in the past is accepted (the subscription has simply expired) and
// createdAt and modifiedAt are taken from the body.
func ParseStored(body map[string]any, ex ngsild.Expander) (*Subscription, error) {
	s, err := parseBody(body, ex)
	if err != nil {
		return nil, err
	}
	for _, m := range []struct {
		key string
		dst *time.Time
	}{{"createdAt", &s.CreatedAt}, {"modifiedAt", &s.ModifiedAt}} {
		v, ok := body[m.key]
		if !ok {
			continue
		}
		t, err := dateTime(m.key, v)
		if err != nil {
			return nil, err
		}
		*m.dst = t
	}
	return s, nil
}

// Update applies a PATCH /subscriptions/{id} fragment (5.8.2) to s and returns
// the result, leaving s as it was: each member of the fragment replaces the
// subscription's (notification and notification.endpoint are merged member by
// member), a null member (JSON null or "urn:ngsi-ld:null") removes it, back to
// its default. The result is validated as a whole, with Parse's errors;
// removing a mandatory member (notification, endpoint, uri) is BadRequestData.
// An id or type in the fragment must be the subscription's. An expiresAt in
// the fragment must be in the future; one already stored that has passed does
// not prevent other changes. ModifiedAt becomes now.
func Update(s *Subscription, fragment map[string]any, ex ngsild.Expander, now time.Time) (*Subscription, error) {
	if fragment == nil {
		return nil, ngsild.Errorf(ngsild.InvalidRequest, "the subscription fragment must be a JSON object")
	}
	now = msTime(now)
	n := s.clone()
	p := applier{ex: ex, update: true}
	if err := p.apply(n, fragment); err != nil {
		return nil, err
	}
	if err := n.validate(); err != nil {
		return nil, err
	}
	if v, ok := fragment["expiresAt"]; ok && !isNull(v) {
		if err := checkExpiry(n.ExpiresAt, now); err != nil {
			return nil, err
		}
	}
	n.ModifiedAt = now
	return n, nil
}

// clone copies s deeply enough that changing the copy's members never
// changes s (parsed queries and patterns are immutable and shared).
func (s *Subscription) clone() *Subscription {
	n := *s
	n.Entities = slices.Clone(s.Entities)
	n.WatchedAttributes = slices.Clone(s.WatchedAttributes)
	n.Triggers = slices.Clone(s.Triggers)
	n.Notification.Attributes = slices.Clone(s.Notification.Attributes)
	n.Notification.Endpoint.ReceiverInfo = slices.Clone(s.Notification.Endpoint.ReceiverInfo)
	n.Notification.Endpoint.NotifierInfo = slices.Clone(s.Notification.Endpoint.NotifierInfo)
	return &n
}

func parseBody(body map[string]any, ex ngsild.Expander) (*Subscription, error) {
	if body == nil {
		return nil, ngsild.Errorf(ngsild.InvalidRequest, "the subscription must be a JSON object")
	}
	if err := requireMembers(body); err != nil {
		return nil, err
	}
	s := newSubscription()
	p := applier{ex: ex}
	if err := p.apply(s, body); err != nil {
		return nil, err
	}
	if err := s.validate(); err != nil {
		return nil, err
	}
	return s, nil
}

// requireMembers checks the mandatory members of 5.2.12 are there (their
// content is checked when they are applied).
func requireMembers(body map[string]any) error {
	if _, ok := body["type"]; !ok {
		return ngsild.Errorf(ngsild.BadRequestData, "the subscription has no type member: it must be \"Subscription\"")
	}
	n, ok := body["notification"]
	if !ok {
		return ngsild.Errorf(ngsild.BadRequestData, "the subscription has no notification member")
	}
	nm, ok := n.(map[string]any)
	if !ok {
		return nil // reported as a wrong JSON type when applied
	}
	e, ok := nm["endpoint"]
	if !ok {
		return ngsild.Errorf(ngsild.BadRequestData, "notification has no endpoint member")
	}
	if em, ok := e.(map[string]any); ok {
		if _, ok := em["uri"]; !ok {
			return ngsild.Errorf(ngsild.BadRequestData, "notification.endpoint has no uri member")
		}
	}
	return nil
}

// applier applies the members of a body or fragment to a subscription.
type applier struct {
	ex ngsild.Expander
	// update: a PATCH fragment, where null removes a member and id must
	// match the subscription's.
	update bool
}

// The members of a subscription, in the order they are applied (so the
// first error reported does not depend on map order).
var (
	subscriptionMembers = []string{
		"id", "type", "subscriptionName", "description", "entities", "watchedAttributes",
		"notificationTrigger", "timeInterval", "q", "geoQ", "scopeQ", "isActive",
		"expiresAt", "throttling", "lang", "notification",
	}
	notificationMembers = []string{"attributes", "format", "sysAttrs", "showChanges", "endpoint"}
	endpointMembers     = []string{"uri", "accept", "timeout", "cooldown", "receiverInfo", "notifierInfo"}
)

// isNull reports whether v is JSON null or the NGSI-LD Null (5.2.1).
func isNull(v any) bool { return v == nil || v == ngsild.NullURI }

// nullMember handles a null member: an error in a creation body; in an
// update, an error for a mandatory member, else true (reset it).
func (p *applier) nullMember(path string, mandatory bool) error {
	if !p.update {
		return ngsild.Errorf(ngsild.BadRequestData, "%s is null: null only removes a member in an update", path)
	}
	if mandatory {
		return ngsild.Errorf(ngsild.BadRequestData, "%s is mandatory and cannot be removed", path)
	}
	return nil
}

func (p *applier) apply(s *Subscription, body map[string]any) error {
	for _, key := range subscriptionMembers {
		v, ok := body[key]
		if !ok {
			continue
		}
		if isNull(v) {
			if err := p.nullMember(key, key == "id" || key == "type" || key == "notification"); err != nil {
				return err
			}
			resetMember(s, key)
			continue
		}
		if err := p.member(s, key, v); err != nil {
			return err
		}
	}
	return nil
}

// resetMember puts a removed member back to its default.
func resetMember(s *Subscription, key string) {
	switch key {
	case "subscriptionName":
		s.Name = ""
	case "description":
		s.Description = ""
	case "entities":
		s.Entities = nil
	case "watchedAttributes":
		s.WatchedAttributes = nil
	case "notificationTrigger":
		s.Triggers = DefaultTriggers()
	case "timeInterval":
		s.TimeInterval = 0
	case "q":
		s.Q = nil
	case "geoQ":
		s.GeoQ, s.GeoQRaw = nil, nil
	case "scopeQ":
		s.ScopeQ = nil
	case "isActive":
		s.IsActive = true
	case "expiresAt":
		s.ExpiresAt = time.Time{}
	case "throttling":
		s.Throttling = 0
	case "lang":
		s.Lang = ""
	}
}

func (p *applier) member(s *Subscription, key string, v any) error {
	var err error
	switch key {
	case "id":
		var id string
		if id, err = str(key, v); err != nil {
			return err
		}
		if ngsild.ValidURI(id) != nil {
			return ngsild.Errorf(ngsild.BadRequestData, "the subscription id %q is not a URI", id)
		}
		if p.update && id != s.ID {
			return ngsild.Errorf(ngsild.BadRequestData, "the fragment's id %q is not the subscription's (%s)", id, s.ID)
		}
		s.ID = id
	case "type":
		var t string
		if t, err = str(key, v); err != nil {
			return err
		}
		if t != "Subscription" && p.ex.ExpandTerm(t) != ngsild.CoreNS+"Subscription" {
			return ngsild.Errorf(ngsild.BadRequestData, "type must be \"Subscription\", not %q", t)
		}
	case "subscriptionName":
		s.Name, err = str(key, v)
	case "description":
		s.Description, err = str(key, v)
	case "entities":
		s.Entities, err = p.selectors(v)
	case "watchedAttributes":
		s.WatchedAttributes, err = p.attrNames(key, v)
		if err == nil && len(s.WatchedAttributes) == 0 {
			err = ngsild.Errorf(ngsild.BadRequestData, "watchedAttributes must not be empty: leave it out to watch every attribute")
		}
	case "notificationTrigger":
		s.Triggers, err = triggers(v)
	case "timeInterval":
		s.TimeInterval, err = seconds(key, v)
	case "q":
		var q string
		if q, err = str(key, v); err != nil {
			return err
		}
		s.Q, err = qlang.ParseQ(q, p.ex.ExpandTerm)
	case "geoQ":
		if s.GeoQ, err = geo.ParseQueryJSON(v, p.ex.ExpandTerm); err != nil {
			return within("geoQ", err)
		}
		s.GeoQRaw = v
	case "scopeQ":
		var q string
		if q, err = str(key, v); err != nil {
			return err
		}
		s.ScopeQ, err = qlang.ParseScopeQ(q)
	case "isActive":
		s.IsActive, err = boolean(key, v)
	case "expiresAt":
		s.ExpiresAt, err = dateTime(key, v)
	case "throttling":
		s.Throttling, err = seconds(key, v)
	case "lang":
		var l string
		if l, err = str(key, v); err != nil {
			return err
		}
		if !validLang(l) {
			return ngsild.Errorf(ngsild.BadRequestData, "lang %q is not a language tag (such as fr or nl-BE) or *", l)
		}
		s.Lang = l
	case "notification":
		m, ok := v.(map[string]any)
		if !ok {
			return ngsild.Errorf(ngsild.InvalidRequest, "notification must be an object, not %s", ngsild.JSONKind(v))
		}
		err = p.notification(&s.Notification, m)
	}
	return err
}

func (p *applier) notification(n *Notification, m map[string]any) error {
	for _, key := range notificationMembers {
		v, ok := m[key]
		if !ok {
			continue
		}
		path := "notification." + key
		if isNull(v) {
			if err := p.nullMember(path, key == "endpoint"); err != nil {
				return err
			}
			switch key {
			case "attributes":
				n.setAttributes(nil)
			case "format":
				n.Format = ngsild.Normalized
			case "sysAttrs":
				n.SysAttrs = false
			case "showChanges":
				n.ShowChanges = false
			}
			continue
		}
		var err error
		switch key {
		case "attributes":
			var names []string
			if names, err = p.attrNames(path, v); err != nil {
				return err
			}
			n.setAttributes(names)
		case "format":
			var f string
			if f, err = str(path, v); err != nil {
				return err
			}
			var ok bool
			if n.Format, ok = parseFormat(f); !ok {
				return ngsild.Errorf(ngsild.BadRequestData, "notification.format %q is not normalized, keyValues (or simplified) or concise", f)
			}
		case "sysAttrs":
			n.SysAttrs, err = boolean(path, v)
		case "showChanges":
			n.ShowChanges, err = boolean(path, v)
		case "endpoint":
			em, ok := v.(map[string]any)
			if !ok {
				return ngsild.Errorf(ngsild.InvalidRequest, "notification.endpoint must be an object, not %s", ngsild.JSONKind(v))
			}
			err = p.endpoint(&n.Endpoint, em)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (p *applier) endpoint(e *Endpoint, m map[string]any) error {
	for _, key := range endpointMembers {
		v, ok := m[key]
		if !ok {
			continue
		}
		path := "notification.endpoint." + key
		if isNull(v) {
			if err := p.nullMember(path, key == "uri"); err != nil {
				return err
			}
			switch key {
			case "accept":
				e.Accept = MIMEJSON
			case "timeout":
				e.Timeout = 0
			case "cooldown":
				e.Cooldown = 0
			case "receiverInfo":
				e.ReceiverInfo = nil
			case "notifierInfo":
				e.NotifierInfo = nil
			}
			continue
		}
		var err error
		switch key {
		case "uri":
			if e.URI, err = str(path, v); err == nil {
				err = checkEndpointURI(e.URI)
			}
		case "accept":
			if e.Accept, err = str(path, v); err == nil && e.Accept != MIMEJSON && e.Accept != MIMEJSONLD {
				err = ngsild.Errorf(ngsild.BadRequestData, "%s %q is not supported: expected %s or %s", path, e.Accept, MIMEJSON, MIMEJSONLD)
			}
		case "timeout":
			e.Timeout, err = millis(path, v)
		case "cooldown":
			e.Cooldown, err = millis(path, v)
		case "receiverInfo", "notifierInfo":
			var kvs []KeyValue
			if kvs, err = keyValues(path, v); err != nil {
				return err
			}
			if key == "receiverInfo" {
				e.ReceiverInfo = kvs
			} else {
				e.NotifierInfo = kvs
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// validate checks the rules that tie members together (5.2.12, 5.8.1).
func (s *Subscription) validate() error {
	if s.Notification.Endpoint.URI == "" {
		return ngsild.Errorf(ngsild.BadRequestData, "notification.endpoint.uri is missing")
	}
	if len(s.Entities) == 0 && len(s.WatchedAttributes) == 0 {
		return ngsild.Errorf(ngsild.BadRequestData, "a subscription needs entities or watchedAttributes (or both)")
	}
	if s.TimeInterval > 0 {
		if s.Throttling > 0 {
			return ngsild.Errorf(ngsild.BadRequestData, "throttling and timeInterval cannot be given together")
		}
		// With no watchedAttributes, the rule above already makes a periodic
		// subscription name its entities.
		if len(s.WatchedAttributes) > 0 {
			return ngsild.Errorf(ngsild.BadRequestData, "watchedAttributes and timeInterval cannot be given together: a periodic subscription does not watch changes")
		}
	}
	if s.Notification.ShowChanges && s.Notification.Format == ngsild.KeyValues {
		return ngsild.Errorf(ngsild.BadRequestData, "notification.showChanges cannot be true with the keyValues format")
	}
	e := &s.Notification.Endpoint
	if scheme := endpointScheme(e.URI); scheme == "http" || scheme == "https" {
		// receiverInfo becomes HTTP headers.
		for i, kv := range e.ReceiverInfo {
			if !httpToken(kv.Key) {
				return ngsild.Errorf(ngsild.BadRequestData, "notification.endpoint.receiverInfo[%d].key %q is not an HTTP header name", i, kv.Key)
			}
		}
	}
	for i, kv := range e.NotifierInfo {
		switch {
		case strings.EqualFold(kv.Key, "MQTT-Version"):
			if kv.Value != "mqtt3.1.1" && kv.Value != "mqtt5.0" {
				return ngsild.Errorf(ngsild.BadRequestData, "notification.endpoint.notifierInfo[%d]: MQTT-Version %q must be mqtt3.1.1 or mqtt5.0", i, kv.Value)
			}
		case strings.EqualFold(kv.Key, "MQTT-QoS"):
			if kv.Value != "0" && kv.Value != "1" && kv.Value != "2" {
				return ngsild.Errorf(ngsild.BadRequestData, "notification.endpoint.notifierInfo[%d]: MQTT-QoS %q must be 0, 1 or 2", i, kv.Value)
			}
		}
	}
	return nil
}

func checkExpiry(expiresAt, now time.Time) error {
	if !expiresAt.IsZero() && !expiresAt.After(now) {
		return ngsild.Errorf(ngsild.BadRequestData, "expiresAt %s is not in the future", ngsild.FormatTime(expiresAt))
	}
	return nil
}

func (p *applier) selectors(v any) ([]Selector, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, ngsild.Errorf(ngsild.InvalidRequest, "entities must be an array of EntitySelectors, not %s", ngsild.JSONKind(v))
	}
	if len(list) == 0 {
		return nil, ngsild.Errorf(ngsild.BadRequestData, "entities must not be empty: leave it out to select entities by watchedAttributes only")
	}
	out := make([]Selector, len(list))
	for i, x := range list {
		m, ok := x.(map[string]any)
		if !ok {
			return nil, ngsild.Errorf(ngsild.InvalidRequest, "entities[%d] must be an object, not %s", i, ngsild.JSONKind(x))
		}
		sel := &out[i]
		if raw, ok := m["id"]; ok {
			id, err := str(fmt.Sprintf("entities[%d].id", i), raw)
			if err != nil {
				return nil, err
			}
			if ngsild.ValidURI(id) != nil {
				return nil, ngsild.Errorf(ngsild.BadRequestData, "entities[%d].id %q is not a URI", i, id)
			}
			sel.ID = id
		}
		if raw, ok := m["idPattern"]; ok {
			pat, err := str(fmt.Sprintf("entities[%d].idPattern", i), raw)
			if err != nil {
				return nil, err
			}
			if pat == "" {
				return nil, ngsild.Errorf(ngsild.BadRequestData, "entities[%d].idPattern is empty", i)
			}
			if sel.IDPattern, err = regexp.Compile(pat); err != nil {
				return nil, ngsild.Errorf(ngsild.BadRequestData, "entities[%d].idPattern %q is not a regular expression: %v", i, pat, err)
			}
		}
		if raw, ok := m["type"]; ok {
			path := fmt.Sprintf("entities[%d].type", i)
			t, err := str(path, raw)
			if err != nil {
				return nil, err
			}
			if sel.Type, err = qlang.ParseTypeQuery(t, p.ex.ExpandTerm); err != nil {
				return nil, within(path, err)
			}
		}
		if sel.ID == "" && sel.IDPattern == nil && sel.Type == nil {
			return nil, ngsild.Errorf(ngsild.BadRequestData, "entities[%d] needs a type, an id or an idPattern", i)
		}
	}
	return out, nil
}

// attrNames parses a list of attribute names into expanded names, without
// duplicates.
func (p *applier) attrNames(path string, v any) ([]string, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, ngsild.Errorf(ngsild.InvalidRequest, "%s must be an array of attribute names, not %s", path, ngsild.JSONKind(v))
	}
	var out []string
	for i, x := range list {
		name, ok := x.(string)
		if !ok {
			return nil, ngsild.Errorf(ngsild.InvalidRequest, "%s[%d] must be an attribute name, not %s", path, i, ngsild.JSONKind(x))
		}
		if err := ngsild.ValidAttrName(name); err != nil {
			return nil, within(path, err)
		}
		iri := p.ex.ExpandTerm(name)
		if iri == "" {
			return nil, ngsild.Errorf(ngsild.BadRequestData, "%s: attribute %s is mapped to null by the @context", path, name)
		}
		if !slices.Contains(out, iri) {
			out = append(out, iri)
		}
	}
	return out, nil
}

func triggers(v any) ([]Trigger, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, ngsild.Errorf(ngsild.InvalidRequest, "notificationTrigger must be an array of strings, not %s", ngsild.JSONKind(v))
	}
	if len(list) == 0 {
		return nil, ngsild.Errorf(ngsild.BadRequestData, "notificationTrigger must not be empty: leave it out for the default (attributeCreated, attributeUpdated)")
	}
	var out []Trigger
	for i, x := range list {
		s, ok := x.(string)
		if !ok {
			return nil, ngsild.Errorf(ngsild.InvalidRequest, "notificationTrigger[%d] must be a string, not %s", i, ngsild.JSONKind(x))
		}
		t := Trigger(s)
		switch t {
		case EntityCreated, EntityUpdated, EntityDeleted, AttributeCreated, AttributeUpdated, AttributeDeleted:
		default:
			return nil, ngsild.Errorf(ngsild.BadRequestData,
				"unknown notificationTrigger %q: expected entityCreated, entityUpdated, entityDeleted, attributeCreated, attributeUpdated or attributeDeleted", s)
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out, nil
}

func parseFormat(s string) (ngsild.Format, bool) {
	switch s {
	case "normalized":
		return ngsild.Normalized, true
	case "keyValues", "simplified":
		return ngsild.KeyValues, true
	case "concise":
		return ngsild.Concise, true
	}
	return 0, false
}

func formatName(f ngsild.Format) string {
	switch f {
	case ngsild.KeyValues:
		return "keyValues"
	case ngsild.Concise:
		return "concise"
	}
	return "normalized"
}

// checkEndpointURI accepts absolute http, https, mqtt and mqtts URIs with a
// host (5.2.15; MQTT binding 7.2).
func checkEndpointURI(raw string) error {
	if ngsild.ValidURI(raw) != nil {
		return ngsild.Errorf(ngsild.BadRequestData, "notification.endpoint.uri %q is not a valid URI", raw)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return ngsild.Errorf(ngsild.BadRequestData, "notification.endpoint.uri %q is not a valid URI", raw)
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https", "mqtt", "mqtts":
	default:
		return ngsild.Errorf(ngsild.BadRequestData, "notification.endpoint.uri %q: scheme %q is not supported, expected http, https, mqtt or mqtts", raw, u.Scheme)
	}
	if u.Hostname() == "" {
		return ngsild.Errorf(ngsild.BadRequestData, "notification.endpoint.uri %q has no host", raw)
	}
	return nil
}

func endpointScheme(raw string) string {
	if i := strings.IndexByte(raw, ':'); i > 0 {
		return strings.ToLower(raw[:i])
	}
	return ""
}

// httpToken reports whether s is an HTTP field name (RFC 9110 token).
func httpToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// keyValues parses an array of KeyValuePairs (5.2.22).
func keyValues(path string, v any) ([]KeyValue, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, ngsild.Errorf(ngsild.InvalidRequest, "%s must be an array of {\"key\", \"value\"} objects, not %s", path, ngsild.JSONKind(v))
	}
	var out []KeyValue // nil for an empty list, as when it is left out
	for i, x := range list {
		m, ok := x.(map[string]any)
		if !ok {
			return nil, ngsild.Errorf(ngsild.InvalidRequest, "%s[%d] must be a {\"key\", \"value\"} object, not %s", path, i, ngsild.JSONKind(x))
		}
		k, kok := m["key"].(string)
		val, vok := m["value"].(string)
		if !kok || !vok {
			return nil, ngsild.Errorf(ngsild.BadRequestData, "%s[%d] needs a string key and a string value", path, i)
		}
		if k == "" {
			return nil, ngsild.Errorf(ngsild.BadRequestData, "%s[%d] has an empty key", path, i)
		}
		// Keys and values become headers or MQTT properties: no line breaks.
		if strings.ContainsAny(k, "\r\n\x00") || strings.ContainsAny(val, "\r\n\x00") {
			return nil, ngsild.Errorf(ngsild.BadRequestData, "%s[%d] contains a line break or NUL", path, i)
		}
		out = append(out, KeyValue{Key: k, Value: val})
	}
	return out, nil
}

// ParseSelectors parses an array of EntitySelectors (a subscription's
// entities member) with ex expanding their types; alarm rules select
// entities the same way.
func ParseSelectors(v any, ex ngsild.Expander) ([]Selector, error) {
	return (&applier{ex: ex}).selectors(v)
}

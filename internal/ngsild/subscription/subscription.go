// Package subscription is the NGSI-LD subscription (ETSI GS CIM 009 v1.8,
// 5.2.12) in expanded form: parsing and validating request bodies, rendering
// subscriptions back, deciding whether a committed change triggers one, and
// building the entity a notification carries. It does no I/O: storage,
// queues and delivery are internal/notify's.
package subscription

import (
	"regexp"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/ngsild/geo"
	"github.com/zenne-city/zenne/internal/ngsild/qlang"
)

// Trigger is a notificationTrigger.
type Trigger string

const (
	EntityCreated    Trigger = "entityCreated"
	EntityUpdated    Trigger = "entityUpdated"
	EntityDeleted    Trigger = "entityDeleted"
	AttributeCreated Trigger = "attributeCreated"
	AttributeUpdated Trigger = "attributeUpdated"
	AttributeDeleted Trigger = "attributeDeleted"
)

// Subscription is one NGSI-LD subscription. Names (attributes, types) are
// expanded IRIs; the raw forms kept beside them are what the user wrote, for
// rendering.
type Subscription struct {
	ID          string
	Name        string // subscriptionName
	Description string

	Entities          []Selector
	WatchedAttributes []string // expanded
	Triggers          []Trigger
	TimeInterval      time.Duration // periodic notifications (0: on change)
	Q                 *qlang.Query
	GeoQ              *geo.Query
	GeoQRaw           any // the geoQ member as given (for rendering)
	ScopeQ            *qlang.ScopeQuery
	IsActive          bool
	ExpiresAt         time.Time // zero: never
	Throttling        time.Duration
	Lang              string

	Notification Notification

	// Context is the @context the subscription was created with, as given
	// (a URL, an object or a list): notifications are compacted with it.
	Context any

	CreatedAt, ModifiedAt time.Time
}

// Selector is one entry of entities.
type Selector struct {
	ID        string
	IDPattern *regexp.Regexp
	Type      *qlang.TypeQuery // nil: any type (v1.8 requires a type; we accept its absence only with id or idPattern)
}

// Notification is the notification member: what is sent and where.
type Notification struct {
	Attributes  []string // expanded; empty: all
	SysAttrs    bool
	Format      ngsild.Format
	ShowChanges bool
	Endpoint    Endpoint

	// attrSet is Attributes as ngsild.RenderOptions.Attrs wants it (nil:
	// all), made once by setAttributes rather than for every notification.
	attrSet map[string]bool
}

// setAttributes sets Attributes and the set Data renders them with.
func (n *Notification) setAttributes(names []string) {
	n.Attributes, n.attrSet = names, nil
	if len(names) > 0 {
		n.attrSet = make(map[string]bool, len(names))
		for _, a := range names {
			n.attrSet[a] = true
		}
	}
}

// Endpoint is where notifications go.
type Endpoint struct {
	URI          string        // http, https, mqtt or mqtts
	Accept       string        // application/json (default) or application/ld+json
	Timeout      time.Duration // 0: the notifier's default
	Cooldown     time.Duration // v1.8 cooldown: minimum time between two attempts after a failure (0: none)
	ReceiverInfo []KeyValue    // headers (HTTP) or user properties (MQTT 5)
	NotifierInfo []KeyValue    // MQTT options: MQTT-Version, MQTT-QoS
}

// KeyValue is one KeyValuePair of receiverInfo or notifierInfo.
type KeyValue struct{ Key, Value string }

// Status is the notification status the broker keeps per subscription.
type Status struct {
	TimesSent        int64
	TimesFailed      int64
	LastNotification time.Time
	LastSuccess      time.Time
	LastFailure      time.Time
	// LastFailureCause says why the last attempt failed, for logs and
	// operators. The spec's NotificationParams (5.2.14) has no member for it,
	// so Render does not show it.
	LastFailureCause string
}

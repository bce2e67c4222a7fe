package ingest

import (
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
)

// Every device is also a Device entity (Smart Data Models, device
// subject), so the map and queries see devices: its location, the entity it
// feeds, its state and counters. Names are in the default @context.
const deviceNS = ngsild.DefaultContextNS

// DeviceEntityID is the id of a device's Device entity.
func DeviceEntityID(deviceID string) string { return "urn:ngsi-ld:Device:" + deviceID }

// registeredEntity is the Device entity written when a device is
// registered.
func registeredEntity(c *compiled) *ngsild.Entity {
	e := &ngsild.Entity{ID: DeviceEntityID(c.id), Types: []string{deviceNS + "Device"}, Attrs: map[string][]*ngsild.Attribute{
		deviceNS + "controlledAsset": {{Kind: ngsild.Relationship, Value: c.entityID}},
		deviceNS + "deviceState":     {{Kind: ngsild.Property, Value: "registered"}},
	}}
	if loc := c.static[ngsild.IRILocation]; len(loc) > 0 {
		e.Attrs[ngsild.IRILocation] = loc
	}
	return e
}

// deviceStatusEntity is the fragment a status save merges into a Device
// entity.
func deviceStatusEntity(id string, s DeviceStatus) *ngsild.Entity {
	state := "ok"
	if s.Errors > 0 && s.Messages == 0 {
		state = "error"
	}
	attrs := map[string][]*ngsild.Attribute{
		deviceNS + "deviceState":      {{Kind: ngsild.Property, Value: state}},
		deviceNS + "messagesReceived": {{Kind: ngsild.Property, Value: float64(s.Messages)}},
		deviceNS + "messagesRejected": {{Kind: ngsild.Property, Value: float64(s.Errors)}},
	}
	if !s.LastSeen.IsZero() {
		attrs[deviceNS+"dateLastValueReported"] = []*ngsild.Attribute{{Kind: ngsild.Property,
			Value: map[string]any{"@type": "DateTime", "@value": s.LastSeen.UTC().Format(time.RFC3339Nano)}}}
	}
	return &ngsild.Entity{ID: DeviceEntityID(id), Types: []string{deviceNS + "Device"}, Attrs: attrs}
}

package ingest

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/zenne-city/zenne/internal/jsonld"
	"github.com/zenne-city/zenne/internal/store"
)

// Record kinds of the registry (store.Records).
const (
	kindGroup  = "iot.group"       // id: the API key
	kindDevice = "iot.device"      // id: the device id
	kindDead   = "iot.deadletters" // id: the device id, or "group:" + API key for unknown devices
)

// devKey identifies a device: ids are unique within a tenant.
type devKey struct{ tenant, id string }

type groupEntry struct {
	tenant string
	g      *Group
}

// Registry holds the service groups and devices of every tenant, kept in
// the store's records and cached compiled in memory. Registrations made on
// another instance are seen at the next reload (every few seconds, and at
// once when a message names a device this instance does not know).
type Registry struct {
	st  store.Records
	res *jsonld.Resolver
	log *slog.Logger

	mu       sync.RWMutex
	groups   map[string]*groupEntry // by API key (unique across tenants: MQTT has no tenant)
	devices  map[devKey]*Device
	compiled map[devKey]*compiled
	lastLoad time.Time
	loadMu   sync.Mutex // one reload at a time
}

// NewRegistry loads the registry from st.
func NewRegistry(ctx context.Context, st store.Records, res *jsonld.Resolver, log *slog.Logger) (*Registry, error) {
	r := &Registry{st: st, res: res, log: log}
	if err := r.Reload(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// Reload reads every group and device from the store.
func (r *Registry) Reload(ctx context.Context) error {
	r.loadMu.Lock()
	defer r.loadMu.Unlock()
	grecs, err := r.st.ListRecords(ctx, kindGroup, "", true)
	if err != nil {
		return fmt.Errorf("devices: reading service groups: %w", err)
	}
	drecs, err := r.st.ListRecords(ctx, kindDevice, "", true)
	if err != nil {
		return fmt.Errorf("devices: reading devices: %w", err)
	}
	groups := make(map[string]*groupEntry, len(grecs))
	for _, rec := range grecs {
		g := new(Group)
		if err := json.Unmarshal(rec.Doc, g); err != nil {
			r.log.Warn("devices: a stored service group does not decode; skipped", "tenant", rec.Tenant, "apikey", rec.ID, "err", err)
			continue
		}
		groups[g.APIKey] = &groupEntry{tenant: rec.Tenant, g: g}
	}
	devices := make(map[devKey]*Device, len(drecs))
	comp := make(map[devKey]*compiled, len(drecs))
	for _, rec := range drecs {
		d := new(Device)
		if err := json.Unmarshal(rec.Doc, d); err != nil {
			r.log.Warn("devices: a stored device does not decode; skipped", "tenant", rec.Tenant, "device", rec.ID, "err", err)
			continue
		}
		k := devKey{rec.Tenant, d.DeviceID}
		devices[k] = d
		if ge := groups[d.APIKey]; ge != nil && ge.tenant == rec.Tenant {
			c, err := compile(ctx, r.res, rec.Tenant, ge.g, d)
			if err != nil {
				r.log.Warn("devices: a stored device does not compile; it receives nothing", "tenant", rec.Tenant, "device", d.DeviceID, "err", err)
				continue
			}
			comp[k] = c
		}
	}
	r.mu.Lock()
	r.groups, r.devices, r.compiled, r.lastLoad = groups, devices, comp, time.Now()
	r.mu.Unlock()
	return nil
}

// reloadIfStale reloads when the last reload is older than age.
func (r *Registry) reloadIfStale(ctx context.Context, age time.Duration) {
	r.mu.RLock()
	stale := time.Since(r.lastLoad) > age
	r.mu.RUnlock()
	if stale {
		if err := r.Reload(ctx); err != nil {
			r.log.Warn("devices: reloading the registry", "err", err)
		}
	}
}

// group returns the group of an API key and its tenant.
func (r *Registry) group(apiKey string) (*groupEntry, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	ge, ok := r.groups[apiKey]
	return ge, ok
}

// lookup returns the compiled device for an uplink of a group's tenant.
func (r *Registry) lookup(tenant, id string) *compiled {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.compiled[devKey{tenant, id}]
}

// PutGroups creates service groups of tenant; a group whose API key exists
// (in any tenant) is a conflict and nothing is stored.
func (r *Registry) PutGroups(ctx context.Context, tenant string, gs []Group) error {
	if len(gs) == 0 {
		return Reject(http.StatusBadRequest, `no service group: send {"services": [{"apikey": ..., "entity_type": ...}]}`)
	}
	// Conflicts are judged on the store's groups (another instance may have
	// created one since this one's last reload); groups are few.
	stored, err := r.st.ListRecords(ctx, kindGroup, "", true)
	if err != nil {
		return fmt.Errorf("devices: reading service groups: %w", err)
	}
	seen := map[string]bool{}
	for _, rec := range stored {
		seen[rec.ID] = true
	}
	for i := range gs {
		g := &gs[i]
		if err := validID("apikey", g.APIKey); err != nil {
			return err
		}
		if g.EntityType == "" {
			return Reject(http.StatusBadRequest, "service group %s: entity_type is required", g.APIKey)
		}
		if seen[g.APIKey] {
			return Reject(http.StatusConflict, "a service group with apikey %s exists: delete it first or choose another key", g.APIKey)
		}
		seen[g.APIKey] = true
		// Compile a stand-in device: the group's mapping must be valid.
		if _, err := compile(ctx, r.res, tenant, g, &Device{DeviceID: "check", APIKey: g.APIKey}); err != nil {
			return err
		}
	}
	for _, g := range gs {
		if err := r.put(ctx, kindGroup, tenant, g.APIKey, g); err != nil {
			return err
		}
	}
	return r.Reload(ctx)
}

// put stores a registration document (a Group or a Device) as JSON.
func (r *Registry) put(ctx context.Context, kind, tenant, id string, v any) error {
	doc, err := json.Marshal(v)
	if err == nil {
		err = r.st.PutRecord(ctx, kind, tenant, id, doc)
	}
	if err != nil {
		return fmt.Errorf("devices: storing %s %s: %w", kind, id, err)
	}
	return nil
}

// Groups returns the service groups of tenant, by API key.
func (r *Registry) Groups(ctx context.Context, tenant string) []Group {
	r.reloadIfStale(ctx, time.Second)
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []Group
	for _, ge := range r.groups {
		if ge.tenant == tenant {
			out = append(out, *ge.g)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].APIKey < out[j].APIKey })
	return out
}

// DeleteGroup deletes a service group of tenant.
func (r *Registry) DeleteGroup(ctx context.Context, tenant, apiKey string) error {
	if err := r.st.DeleteRecord(ctx, kindGroup, tenant, apiKey); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return Reject(http.StatusNotFound, "no service group with apikey %s", apiKey)
		}
		return err
	}
	return r.Reload(ctx)
}

// PutDevices registers devices of tenant; they must belong to a group of
// the tenant, and a device id that exists is a conflict (nothing stored).
func (r *Registry) PutDevices(ctx context.Context, tenant string, ds []Device) ([]*compiled, error) {
	if len(ds) == 0 {
		return nil, Reject(http.StatusBadRequest, `no device: send {"devices": [{"device_id": ..., "apikey": ...}]}`)
	}
	seen := map[string]bool{}
	out := make([]*compiled, len(ds))
	for i := range ds {
		d := &ds[i]
		if err := validID("device_id", d.DeviceID); err != nil {
			return nil, err
		}
		ge, ok := r.group(d.APIKey)
		if !ok || ge.tenant != tenant {
			return nil, Reject(http.StatusBadRequest, "device %s: no service group with apikey %q in this tenant: create it first (POST /iot/services)", d.DeviceID, d.APIKey)
		}
		// The store decides whether the id is taken: another instance may
		// have registered it since this one's last reload.
		_, err := r.st.GetRecord(ctx, kindDevice, tenant, d.DeviceID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("devices: reading device %s: %w", d.DeviceID, err)
		}
		if err == nil || seen[d.DeviceID] {
			return nil, Reject(http.StatusConflict, "device %s is registered: delete it first to register it again", d.DeviceID)
		}
		seen[d.DeviceID] = true
		if d.Key != "" {
			if len(d.Key) < 8 {
				return nil, Reject(http.StatusBadRequest, "device %s: a key of at least 8 characters, please", d.DeviceID)
			}
			d.KeyHash, d.Key = hashKey(d.Key), ""
		}
		c, err := compile(ctx, r.res, tenant, ge.g, d)
		if err != nil {
			return nil, err
		}
		out[i] = c
	}
	for _, d := range ds {
		if err := r.put(ctx, kindDevice, tenant, d.DeviceID, d); err != nil {
			return nil, err
		}
	}
	// Added to this instance's registry at once; a full reload of a large
	// registry for every registration would make registering devices one
	// by one quadratic.
	r.mu.Lock()
	for i := range ds {
		k := devKey{tenant, ds[i].DeviceID}
		r.devices[k] = &ds[i]
		r.compiled[k] = out[i]
	}
	r.mu.Unlock()
	return out, nil
}

// Devices returns the devices of tenant sorted by id, without their keys.
func (r *Registry) Devices(ctx context.Context, tenant string) []Device {
	r.reloadIfStale(ctx, time.Second)
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []Device
	for k, d := range r.devices {
		if k.tenant == tenant {
			out = append(out, *d)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].DeviceID < out[j].DeviceID })
	return out
}

// Device returns one device of tenant.
func (r *Registry) Device(ctx context.Context, tenant, id string) (*Device, bool) {
	r.reloadIfStale(ctx, time.Second)
	r.mu.RLock()
	defer r.mu.RUnlock()
	d, ok := r.devices[devKey{tenant, id}]
	return d, ok
}

// DeleteDevice deletes a device's registration and its dead letters.
func (r *Registry) DeleteDevice(ctx context.Context, tenant, id string) error {
	if err := r.st.DeleteRecord(ctx, kindDevice, tenant, id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return Reject(http.StatusNotFound, "no device %s", id)
		}
		return err
	}
	if err := r.st.DeleteRecord(ctx, kindDead, tenant, id); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	r.mu.Lock()
	delete(r.devices, devKey{tenant, id})
	delete(r.compiled, devKey{tenant, id})
	r.mu.Unlock()
	return nil
}

// AllowConnect implements Authenticator: username is a device id (in any
// tenant), password its key; a device without a key connects with any
// password (its group's API key guards its topics).
func (r *Registry) AllowConnect(username, password string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	// A device needs a group of its tenant, and groups are few: look the id
	// up in each group's tenant rather than scan every device (a fleet of
	// 10,000 connecting one by one).
	for _, ge := range r.groups {
		if c := r.compiled[devKey{ge.tenant, username}]; c != nil && keyMatches(c.keyHash, password) {
			return true
		}
	}
	return false
}

// AllowPublish implements Authenticator: a device publishes only for
// itself, under its own group's API key; an anonymous client (username "",
// when the broker allows them) only for devices without a key.
func (r *Registry) AllowPublish(username, apiKey, deviceID string) bool {
	if username != deviceID && username != "" {
		return false
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	ge := r.groups[apiKey]
	if ge == nil {
		return false
	}
	c := r.compiled[devKey{ge.tenant, deviceID}]
	return c != nil && c.apiKey == apiKey && (username != "" || c.keyHash == "")
}

// keyMatches compares a key with a stored hash in constant time; a device
// without a hash accepts any key.
func keyMatches(hash, key string) bool {
	if hash == "" {
		return true
	}
	return subtle.ConstantTimeCompare([]byte(hash), []byte(hashKey(key))) == 1
}

package simulate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/zenne-city/zenne/internal/ingest"
)

// The provisioning bodies of docs/DEVICES.md (POST /iot/services,
// POST /iot/devices).

// Attribute maps a payload field to an attribute.
type Attribute struct {
	ObjectID string  `json:"object_id,omitempty"`
	Name     string  `json:"name"`
	Type     string  `json:"type,omitempty"`
	UnitCode string  `json:"unitCode,omitempty"`
	Scale    float64 `json:"scale,omitempty"`
	Offset   float64 `json:"offset,omitempty"`
}

// AttrMap is the mapping as the device service compiles it.
func (a Attribute) AttrMap() ingest.AttrMap {
	m := ingest.AttrMap{ObjectID: a.ObjectID, Name: a.Name, Type: a.Type, UnitCode: a.UnitCode, Offset: a.Offset}
	if a.Scale != 0 {
		m.Scale = &a.Scale
	}
	return m
}

// StaticAttribute is an attribute with a fixed value.
type StaticAttribute struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Value any    `json:"value"`
}

// ServiceGroup is one element of POST /iot/services' "services".
type ServiceGroup struct {
	APIKey           string            `json:"apikey"`
	EntityType       string            `json:"entity_type"`
	Resource         string            `json:"resource"`
	Attributes       []Attribute       `json:"attributes"`
	StaticAttributes []StaticAttribute `json:"static_attributes,omitempty"`
	TimestampField   string            `json:"timestamp_field,omitempty"`
}

// DeviceRegistration is one element of POST /iot/devices' "devices".
type DeviceRegistration struct {
	DeviceID         string            `json:"device_id"`
	APIKey           string            `json:"apikey"`
	EntityName       string            `json:"entity_name"`
	EntityType       string            `json:"entity_type"`
	Transport        string            `json:"transport"`
	StaticAttributes []StaticAttribute `json:"static_attributes,omitempty"`
}

// ServicesBody is the body of POST /iot/services.
type ServicesBody struct {
	Services []ServiceGroup `json:"services"`
}

// DevicesBody is the body of POST /iot/devices.
type DevicesBody struct {
	Devices []DeviceRegistration `json:"devices"`
}

// TimestampField is the payload field that carries a reading's time.
const TimestampField = "ts"

// ServiceGroups are the groups the fleet's devices belong to, one per kind
// present (API key "sim-bins", "sim-parking"...), in Kind order.
func (f *Fleet) ServiceGroups() []ServiceGroup {
	count := f.Count()
	var out []ServiceGroup
	for _, k := range append(Kinds(), Probe) {
		if count[k] == 0 {
			continue
		}
		out = append(out, ServiceGroup{
			APIKey:         k.APIKey(),
			EntityType:     k.EntityType(),
			Resource:       "/iot/json",
			Attributes:     k.Attributes(),
			TimestampField: TimestampField,
		})
	}
	return out
}

// Devices are the registrations of every device of the fleet, probes last.
// Each carries its location; devices of a generated fleet also their
// address (the demo city's entities have theirs).
func (f *Fleet) Devices() []DeviceRegistration {
	all := f.all()
	out := make([]DeviceRegistration, 0, len(all))
	for _, d := range all {
		static := []StaticAttribute{{
			Name: "location", Type: "GeoProperty",
			Value: map[string]any{"type": "Point", "coordinates": []float64{d.Lon, d.Lat}},
		}}
		if d.Postcode != "" {
			static = append(static, StaticAttribute{Name: "address", Type: "Property", Value: map[string]any{
				"streetAddress": d.Street, "postalCode": d.Postcode, "addressLocality": d.Municipality, "addressCountry": "BE",
			}})
		}
		out = append(out, DeviceRegistration{
			DeviceID:         d.ID,
			APIKey:           d.APIKey,
			EntityName:       d.Entity,
			EntityType:       d.Kind.EntityType(),
			Transport:        f.transport,
			StaticAttributes: static,
		})
	}
	return out
}

// ProvisionResult counts what Provision registered and what was there.
type ProvisionResult struct {
	Groups, GroupsExisting   int
	Devices, DevicesExisting int
}

// provisionBatch is how many devices one POST /iot/devices registers.
const provisionBatch = 200

// Provision registers the fleet's service groups and devices at baseURL
// (zenne's HTTP API: POST /iot/services, POST /iot/devices) in tenant ("":
// the default). What exists already (409) counts as provisioned, so running
// it again is harmless. c nil is http.DefaultClient; zenne wants an API key
// with the devices right on the tenant: give APIClient(key, timeout). A
// refusal is a *StatusError.
func (f *Fleet) Provision(ctx context.Context, baseURL, tenant string, c *http.Client) (ProvisionResult, error) {
	if c == nil {
		c = http.DefaultClient
	}
	base := strings.TrimRight(baseURL, "/")
	return f.provision(ctx,
		func(g ServiceGroup) (bool, error) {
			return post(ctx, c, base+"/iot/services", tenant, ServicesBody{Services: []ServiceGroup{g}})
		},
		func(ds []DeviceRegistration) (bool, error) {
			return post(ctx, c, base+"/iot/devices", tenant, DevicesBody{Devices: ds})
		})
}

// ProvisionIn registers the fleet's service groups and devices with zenne's
// device service in the same process (what `zenne demo` can do before
// running the fleet with a ReceiverSender), as Provision does over HTTP.
func (f *Fleet) ProvisionIn(ctx context.Context, s *ingest.Service, tenant string) (ProvisionResult, error) {
	created := func(err error) (bool, error) {
		var r *ingest.Rejection
		if errors.As(err, &r) && r.Status == http.StatusConflict {
			return false, nil
		}
		return err == nil, err
	}
	return f.provision(ctx,
		func(g ServiceGroup) (bool, error) {
			var ig ingest.Group
			if err := convert(g, &ig); err != nil {
				return false, err
			}
			return created(s.Registry().PutGroups(ctx, tenant, []ingest.Group{ig}))
		},
		func(ds []DeviceRegistration) (bool, error) {
			var ids []ingest.Device
			if err := convert(ds, &ids); err != nil {
				return false, err
			}
			return created(s.Register(ctx, tenant, ids))
		})
}

// convert copies a registration into ingest's type of the same JSON.
func convert(from, to any) error {
	b, err := json.Marshal(from)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, to)
}

// provision registers the groups one by one, then the devices in batches;
// a batch that conflicts (some devices exist) goes one by one. The
// functions report true when they created, false when it existed.
func (f *Fleet) provision(ctx context.Context, putGroup func(ServiceGroup) (bool, error), putDevices func([]DeviceRegistration) (bool, error)) (ProvisionResult, error) {
	var res ProvisionResult
	for _, g := range f.ServiceGroups() {
		created, err := putGroup(g)
		if err != nil {
			return res, fmt.Errorf("register service group %s: %w", g.APIKey, err)
		}
		if created {
			res.Groups++
		} else {
			res.GroupsExisting++
		}
	}
	devs := f.Devices()
	for i := 0; i < len(devs); i += provisionBatch {
		batch := devs[i:min(i+provisionBatch, len(devs))]
		created, err := putDevices(batch)
		if err != nil {
			return res, fmt.Errorf("register devices %s…: %w", batch[0].DeviceID, err)
		}
		if created {
			res.Devices += len(batch)
			continue
		}
		var g errgroup.Group
		g.SetLimit(8)
		made := make([]bool, len(batch))
		for j := range batch {
			g.Go(func() error {
				ok, err := putDevices(batch[j : j+1])
				if err != nil {
					return fmt.Errorf("register device %s: %w", batch[j].DeviceID, err)
				}
				made[j] = ok
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return res, err
		}
		for _, ok := range made {
			if ok {
				res.Devices++
			} else {
				res.DevicesExisting++
			}
		}
	}
	return res, ctx.Err()
}

// ErrNoProvisioning says the server has no provisioning API.
var ErrNoProvisioning = errors.New("the server has no device provisioning API (/iot/services, /iot/devices)")

// post sends body as JSON; it reports true for 201 (or another 2xx), false
// for 409 (already there), and an error otherwise.
func post(ctx context.Context, c *http.Client, url, tenant string, body any) (bool, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return false, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	if tenant != "" {
		req.Header.Set("NGSILD-Tenant", tenant)
	}
	resp, err := c.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	switch {
	case resp.StatusCode/100 == 2:
		return true, nil
	case resp.StatusCode == http.StatusConflict:
		return false, nil
	case (resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed) &&
		!strings.Contains(resp.Header.Get("Content-Type"), "json"):
		// Not a ProblemDetails from the API: no such route.
		return false, fmt.Errorf("%w: POST %s answered %s", ErrNoProvisioning, url, resp.Status)
	}
	return false, statusError(http.MethodPost, url, resp, msg)
}

// problem renders a ProblemDetails body (or any body) in one line.
func problem(body []byte) string {
	var p struct {
		Title  string `json:"title"`
		Detail string `json:"detail"`
	}
	if json.Unmarshal(body, &p) == nil && (p.Title != "" || p.Detail != "") {
		if p.Detail == "" {
			return p.Title
		}
		if p.Title == "" {
			return p.Detail
		}
		return p.Title + ": " + p.Detail
	}
	s := strings.Join(strings.Fields(string(body)), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

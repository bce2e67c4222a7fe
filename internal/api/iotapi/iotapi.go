// Package iotapi is the HTTP transport of device ingestion (docs/DEVICES.md):
// the provisioning API for service groups and devices, and the HTTP and
// LoRaWAN (The Things Stack webhook) uplinks. It follows the FIWARE IoT
// Agent's conventions so existing tools and devices work.
package iotapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/zenne-city/zenne/internal/api/access"
	"github.com/zenne-city/zenne/internal/auth"
	"github.com/zenne-city/zenne/internal/core"
	"github.com/zenne-city/zenne/internal/ingest"
	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store"
)

// maxProvisioning bounds a provisioning request's body.
const maxProvisioning = 4 << 20

// API serves /iot/....
type API struct {
	svc    *ingest.Service
	broker *core.Broker
	log    *slog.Logger
}

// New returns the API over an ingest service.
func New(svc *ingest.Service, broker *core.Broker, log *slog.Logger) *API {
	return &API{svc: svc, broker: broker, log: log}
}

// Register adds the routes to mux: provisioning needs the devices right on
// the tenant; uplinks are open to devices, which authenticate with their
// group's or their own key.
func (a *API) Register(mux *access.Mux) {
	const dev = auth.PermDevices
	mux.HandleFunc("POST /iot/services", dev, a.handle(a.postServices))
	mux.HandleFunc("GET /iot/services", dev, a.handle(a.getServices))
	mux.HandleFunc("DELETE /iot/services", dev, a.handle(a.deleteService))
	mux.HandleFunc("POST /iot/devices", dev, a.handle(a.postDevices))
	mux.HandleFunc("GET /iot/devices", dev, a.handle(a.getDevices))
	mux.HandleFunc("GET /iot/devices/{id}", dev, a.handle(a.getDevice))
	mux.HandleFunc("DELETE /iot/devices/{id}", dev, a.handle(a.deleteDevice))
	mux.HandleFunc("GET /iot/devices/{id}/deadletters", dev, a.handle(a.getDeadLetters))
	const byDeviceKey = "devices authenticate with their group's or their own key, checked by the handler"
	mux.Open("POST /iot/json", byDeviceKey, a.handle(a.uplink(ingest.JSON, "http")))
	mux.Open("POST /iot/ttn", byDeviceKey, a.handle(a.uplink(ingest.TTS, "lorawan")))
}

// Tenant is the tenant of a devices API request: the NGSILD-Tenant header,
// or the IoT Agents' Fiware-Service.
func Tenant(r *http.Request) string {
	if t := r.Header.Get("NGSILD-Tenant"); t != "" {
		return t
	}
	return r.Header.Get("Fiware-Service")
}

// handle runs f and writes its error as ProblemDetails.
func (a *API) handle(f func(w http.ResponseWriter, r *http.Request, tenant string) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tenant := Tenant(r)
		if tenant != "" && !ngsild.ValidTenant(tenant) {
			writeProblem(w, ingest.Reject(http.StatusBadRequest, "invalid tenant name %q: use letters, digits, '_', '-' and '.' (at most 64)", tenant))
			return
		}
		if err := f(w, r, tenant); err != nil {
			rej := ingest.AsRejection(err)
			if rej.Status >= 500 {
				a.log.Warn("devices API", "path", r.URL.Path, "err", err)
			}
			writeProblem(w, rej)
		}
	}
}

// problemTypes are the ProblemDetails types of rejections.
var problemTypes = map[int]string{
	http.StatusBadRequest:            "https://uri.etsi.org/ngsi-ld/errors/BadRequestData",
	http.StatusUnauthorized:          "https://zenne.city/errors/Unauthorized",
	http.StatusForbidden:             "https://zenne.city/errors/Forbidden",
	http.StatusNotFound:              "https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound",
	http.StatusConflict:              "https://uri.etsi.org/ngsi-ld/errors/AlreadyExists",
	http.StatusRequestEntityTooLarge: "https://zenne.city/errors/PayloadTooLarge",
	http.StatusUnsupportedMediaType:  "https://uri.etsi.org/ngsi-ld/errors/UnsupportedMediaType",
	http.StatusUnprocessableEntity:   "https://zenne.city/errors/UnprocessablePayload",
	http.StatusTooManyRequests:       "https://zenne.city/errors/TooManyRequests",
	http.StatusServiceUnavailable:    "https://zenne.city/errors/ServiceUnavailable",
}

func writeProblem(w http.ResponseWriter, rej *ingest.Rejection) {
	typ := problemTypes[rej.Status]
	if typ == "" {
		typ = "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"
	}
	if rej.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((rej.RetryAfter+time.Second-1)/time.Second)))
	}
	writeJSON(w, rej.Status, map[string]any{"type": typ, "title": http.StatusText(rej.Status), "status": rej.Status, "detail": rej.Reason})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

// readJSON decodes a provisioning body into v, refusing unknown fields so a
// misspelt mapping is not silently ignored.
func readJSON(r *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxProvisioning))
	if err != nil {
		return ingest.Reject(http.StatusRequestEntityTooLarge, "body over %d bytes", maxProvisioning)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return ingest.Reject(http.StatusBadRequest, "malformed JSON: %v", err)
	}
	return nil
}

func (a *API) postServices(w http.ResponseWriter, r *http.Request, tenant string) error {
	var body struct {
		Services []ingest.Group `json:"services"`
	}
	if err := readJSON(r, &body); err != nil {
		return err
	}
	if err := a.svc.Registry().PutGroups(r.Context(), tenant, body.Services); err != nil {
		return err
	}
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (a *API) getServices(w http.ResponseWriter, r *http.Request, tenant string) error {
	gs := a.svc.Registry().Groups(r.Context(), tenant)
	if gs == nil {
		gs = []ingest.Group{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"count": len(gs), "services": gs})
	return nil
}

func (a *API) deleteService(w http.ResponseWriter, r *http.Request, tenant string) error {
	key := r.URL.Query().Get("apikey")
	if key == "" {
		return ingest.Reject(http.StatusBadRequest, "give the group's key: DELETE /iot/services?apikey=...")
	}
	if err := a.svc.Registry().DeleteGroup(r.Context(), tenant, key); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) postDevices(w http.ResponseWriter, r *http.Request, tenant string) error {
	var body struct {
		Devices []ingest.Device `json:"devices"`
	}
	if err := readJSON(r, &body); err != nil {
		return err
	}
	if err := a.svc.Register(r.Context(), tenant, body.Devices); err != nil {
		return err
	}
	w.WriteHeader(http.StatusCreated)
	return nil
}

// deviceView is a device as the API shows it.
type deviceView struct {
	ingest.Device
	HasKey bool                `json:"has_key"`
	Status ingest.DeviceStatus `json:"status"`
}

func (a *API) view(tenant string, d ingest.Device) deviceView {
	pub, has := d.Public()
	return deviceView{Device: pub, HasKey: has, Status: a.svc.Status(tenant, d.DeviceID)}
}

func (a *API) getDevices(w http.ResponseWriter, r *http.Request, tenant string) error {
	limit, offset, err := page(r)
	if err != nil {
		return err
	}
	all := a.svc.Registry().Devices(r.Context(), tenant)
	out := []deviceView{}
	for i := offset; i < len(all) && len(out) < limit; i++ {
		out = append(out, a.view(tenant, all[i]))
	}
	writeJSON(w, http.StatusOK, map[string]any{"count": len(all), "devices": out})
	return nil
}

func page(r *http.Request) (limit, offset int, err error) {
	limit, offset = 20, 0
	q := r.URL.Query()
	if s := q.Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 1 || limit > 1000 {
			return 0, 0, ingest.Reject(http.StatusBadRequest, "limit %q: use 1 to 1000", s)
		}
	}
	if s := q.Get("offset"); s != "" {
		if offset, err = strconv.Atoi(s); err != nil || offset < 0 {
			return 0, 0, ingest.Reject(http.StatusBadRequest, "offset %q: use 0 or more", s)
		}
	}
	return limit, offset, nil
}

func (a *API) getDevice(w http.ResponseWriter, r *http.Request, tenant string) error {
	d, ok := a.svc.Registry().Device(r.Context(), tenant, r.PathValue("id"))
	if !ok {
		return ingest.Reject(http.StatusNotFound, "no device %s", r.PathValue("id"))
	}
	writeJSON(w, http.StatusOK, a.view(tenant, *d))
	return nil
}

func (a *API) deleteDevice(w http.ResponseWriter, r *http.Request, tenant string) error {
	if err := a.svc.Unregister(r.Context(), tenant, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) getDeadLetters(w http.ResponseWriter, r *http.Request, tenant string) error {
	id := r.PathValue("id")
	if _, ok := a.svc.Registry().Device(r.Context(), tenant, id); !ok {
		return ingest.Reject(http.StatusNotFound, "no device %s", id)
	}
	dl, err := a.svc.DeadLetters(r.Context(), tenant, id)
	if err != nil {
		return err
	}
	if dl == nil {
		dl = []ingest.DeadLetter{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"count": len(dl), "deadletters": dl})
	return nil
}

// uplink receives a device message over HTTP.
func (a *API) uplink(format ingest.Format, transport string) func(w http.ResponseWriter, r *http.Request, tenant string) error {
	return func(w http.ResponseWriter, r *http.Request, tenant string) error {
		q := r.URL.Query()
		key := r.Header.Get("X-Api-Key")
		if key == "" {
			key = q.Get("k")
		}
		if key == "" {
			return ingest.Reject(http.StatusUnauthorized, "no apikey: send ?k=... or the X-Api-Key header")
		}
		id := q.Get("i")
		if format == ingest.JSON && id == "" {
			return ingest.Reject(http.StatusBadRequest, "no device id: send ?i=...")
		}
		payload, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, ingest.MaxPayload))
		if err != nil {
			return ingest.Reject(http.StatusRequestEntityTooLarge, "payload over %d bytes", ingest.MaxPayload)
		}
		u := &ingest.Uplink{Tenant: tenant, APIKey: key, DeviceID: id, DeviceKey: r.Header.Get("X-Device-Key"),
			Format: format, Payload: payload, Transport: transport}
		if err := a.svc.Receive(r.Context(), u); err != nil {
			if errors.Is(err, context.Canceled) {
				return nil // the client went away
			}
			if store.IsUnavailable(err) {
				return &ingest.Rejection{Status: http.StatusServiceUnavailable, RetryAfter: 5 * time.Second, Reason: fmt.Sprintf("the store is unavailable: send the message again later (%v)", err)}
			}
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	}
}

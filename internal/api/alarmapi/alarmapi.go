// Package alarmapi is the HTTP transport of alarm rules and alerts
// (docs/ALARMS.md).
package alarmapi

import (
	"log/slog"
	"net/http"

	"github.com/zenne-city/zenne/internal/alarm"
	"github.com/zenne-city/zenne/internal/jsonld"
)

// API serves /alarms/....
type API struct {
	svc *alarm.Service
	res *jsonld.Resolver
	log *slog.Logger
}

// New returns the API over an alarm service.
func New(svc *alarm.Service, res *jsonld.Resolver, log *slog.Logger) *API {
	return &API{svc: svc, res: res, log: log}
}

// Register adds the routes to mux.
func (a *API) Register(mux *http.ServeMux) {
}

// Package problem writes errors as NGSI-LD ProblemDetails, the one way
// every API built on the NGSI-LD error types answers a failure.
package problem

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/zenne-city/zenne/internal/jsonld"
	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store"
)

// Write answers r with err: an ngsild.Error with its status; an @context
// that cannot be fetched or is invalid as LdContextNotAvailable or
// BadRequestData; a store that cannot be reached as 503 with Retry-After;
// a request that took too long, or anything else, as a logged 500 that
// reveals nothing. A client that went away gets 499 (for logs and
// metrics; nobody reads it).
func Write(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	switch {
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		w.WriteHeader(499)
		return
	case errors.Is(err, jsonld.ErrNotAvailable), errors.Is(err, jsonld.ErrInvalid):
		err = jsonld.AsNGSILDError(err)
	case errors.Is(err, context.DeadlineExceeded):
		err = ngsild.Errorf(ngsild.InternalError, "the request took too long")
	case store.IsUnavailable(err):
		log.Warn("store unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		w.Header().Set("Retry-After", "5")
		err = ngsild.Errorf(ngsild.ServiceUnavailable, "the store cannot be reached now: try again in a few seconds")
	}
	e := ngsild.AsError(err)
	if e.Type == ngsild.InternalError {
		log.Error("internal error", "method", r.Method, "path", r.URL.Path,
			"request_id", w.Header().Get("X-Request-Id"), "err", err)
	}
	WriteError(w, e)
}

// WriteError writes e as ProblemDetails with its status.
func WriteError(w http.ResponseWriter, e *ngsild.Error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.Status())
	data, _ := ngsild.Marshal(e.Object())
	w.Write(data)
}

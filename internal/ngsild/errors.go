package ngsild

import (
	"errors"
	"fmt"
	"net/http"
)

// ErrorType is the URI identifying an NGSI-LD error (ETSI GS CIM 009, 5.5.2).
type ErrorType string

const errNS = "https://uri.etsi.org/ngsi-ld/errors/"

const (
	InvalidRequest        ErrorType = errNS + "InvalidRequest"
	BadRequestData        ErrorType = errNS + "BadRequestData"
	AlreadyExists         ErrorType = errNS + "AlreadyExists"
	OperationNotSupported ErrorType = errNS + "OperationNotSupported"
	ResourceNotFound      ErrorType = errNS + "ResourceNotFound"
	InternalError         ErrorType = errNS + "InternalError"
	TooComplexQuery       ErrorType = errNS + "TooComplexQuery"
	TooManyResults        ErrorType = errNS + "TooManyResults"
	LdContextNotAvailable ErrorType = errNS + "LdContextNotAvailable"
	NoMultiTenantSupport  ErrorType = errNS + "NoMultiTenantSupport"
	NonexistentTenant     ErrorType = errNS + "NonexistentTenant"
	NotAcceptable         ErrorType = errNS + "NotAcceptable"
	UnsupportedMediaType  ErrorType = errNS + "UnsupportedMediaType"
	PayloadTooLarge       ErrorType = errNS + "PayloadTooLarge"
	MethodNotAllowed      ErrorType = errNS + "MethodNotAllowed"

	// ServiceUnavailable is zenne's own type (the specification has none
	// for it): the store cannot be reached now; the client may retry.
	ServiceUnavailable ErrorType = "https://zenne.city/errors/ServiceUnavailable"
	// Conflict is zenne's own type for a request the resource's state does
	// not allow now (resolving an alert that is resolved already).
	Conflict ErrorType = "https://zenne.city/errors/Conflict"
	// Unauthorized, Forbidden and TooManyRequests are zenne's own types
	// for access control (the specification leaves it to implementations):
	// no or wrong credentials (401), credentials without the right (403),
	// a rate limit reached (429).
	Unauthorized    ErrorType = "https://zenne.city/errors/Unauthorized"
	Forbidden       ErrorType = "https://zenne.city/errors/Forbidden"
	TooManyRequests ErrorType = "https://zenne.city/errors/TooManyRequests"
)

// Status is the HTTP status the specification gives each error type.
func (t ErrorType) Status() int {
	switch t {
	case InvalidRequest, BadRequestData:
		return http.StatusBadRequest
	case AlreadyExists, Conflict:
		return http.StatusConflict
	case OperationNotSupported:
		return http.StatusUnprocessableEntity
	case ResourceNotFound, NonexistentTenant:
		return http.StatusNotFound
	case TooComplexQuery, TooManyResults:
		return http.StatusForbidden
	case LdContextNotAvailable, ServiceUnavailable:
		return http.StatusServiceUnavailable
	case NoMultiTenantSupport:
		return http.StatusNotImplemented
	case NotAcceptable:
		return http.StatusNotAcceptable
	case UnsupportedMediaType:
		return http.StatusUnsupportedMediaType
	case PayloadTooLarge:
		return http.StatusRequestEntityTooLarge
	case MethodNotAllowed:
		return http.StatusMethodNotAllowed
	case Unauthorized:
		return http.StatusUnauthorized
	case Forbidden:
		return http.StatusForbidden
	case TooManyRequests:
		return http.StatusTooManyRequests
	default:
		return http.StatusInternalServerError
	}
}

// Error is an NGSI-LD error; the HTTP transport writes it as ProblemDetails
// (RFC 7807) with the type's status.
type Error struct {
	Type   ErrorType `json:"type"`
	Title  string    `json:"title"`
	Detail string    `json:"detail,omitempty"`
}

// Object is e as a ProblemDetails body (detail only when there is one), for
// the reflection-free encoder, which does not HTML-escape the comparison
// signs q expressions put in details.
func (e *Error) Object() Object {
	o := Object{{"type", string(e.Type)}, {"title", e.Title}}
	if e.Detail != "" {
		o.Set("detail", e.Detail)
	}
	return o
}

func (e *Error) Error() string {
	if e.Detail == "" {
		return e.Title
	}
	return e.Title + ": " + e.Detail
}

// Status is the HTTP status of the error.
func (e *Error) Status() int { return e.Type.Status() }

var titles = map[ErrorType]string{
	InvalidRequest:        "Invalid request",
	BadRequestData:        "Bad request data",
	AlreadyExists:         "Already exists",
	OperationNotSupported: "Operation not supported",
	ResourceNotFound:      "Resource not found",
	InternalError:         "Internal error",
	TooComplexQuery:       "Too complex query",
	TooManyResults:        "Too many results",
	LdContextNotAvailable: "JSON-LD @context not available",
	NoMultiTenantSupport:  "No multi-tenant support",
	NonexistentTenant:     "Nonexistent tenant",
	NotAcceptable:         "Not acceptable",
	UnsupportedMediaType:  "Unsupported media type",
	PayloadTooLarge:       "Payload too large",
	MethodNotAllowed:      "Method not allowed",
	ServiceUnavailable:    "Service unavailable",
	Conflict:              "Conflict",
	Unauthorized:          "Unauthorized",
	Forbidden:             "Forbidden",
	TooManyRequests:       "Too many requests",
}

// Errorf builds an Error of type t whose detail is formatted like fmt.Sprintf.
func Errorf(t ErrorType, format string, args ...any) *Error {
	return &Error{Type: t, Title: titles[t], Detail: fmt.Sprintf(format, args...)}
}

// AsError returns err as an *Error, turning anything else into an InternalError
// (whose detail hides the cause: it is logged, never shown).
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Type: InternalError, Title: titles[InternalError]}
}

// IsType reports whether err is an NGSI-LD error of type t.
func IsType(err error, t ErrorType) bool {
	var e *Error
	return errors.As(err, &e) && e.Type == t
}

// Package problem is the cloud's vocabulary for failures a client can act on.
// Domain packages return a *problem.Error; the api package turns its Kind into
// an HTTP status and the proto error envelope in one place.
package problem

import (
	"errors"
	"fmt"
	"net/http"

	"homeport.dev/proto"
)

// Kind classifies an error by what the caller should do about it.
type Kind int

// Kinds, each mapped to one HTTP status by the api package.
const (
	Invalid      Kind = iota + 1 // fix the input (400)
	Unauthorized                 // authenticate (401)
	Forbidden                    // not allowed for this caller (403)
	Inactive                     // wait for an admin to approve the account (403)
	NotFound                     // no such thing, or not yours (404)
	Conflict                     // clashes with existing state (409)
	Quota                        // a per-user or per-home limit is reached (409)
	NoCapacity                   // the cloud has no free resource (409)
	Unavailable                  // a dependency is down or missing; try later (503)
	RateLimited                  // too many of these lately; try later (429)
)

// Error is a failure with a kind, an optional field name and a message that
// tells the user what to do.
type Error struct {
	Kind    Kind
	Field   string
	Message string
}

func (e *Error) Error() string {
	if e.Field != "" {
		return e.Field + ": " + e.Message
	}
	return e.Message
}

// New returns an Error of kind k.
func New(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...)}
}

// InvalidField reports bad input in a named request field.
func InvalidField(field string, err error) *Error {
	return &Error{Kind: Invalid, Field: field, Message: err.Error()}
}

// KindOf returns the kind of err, or 0 when err is not a problem.
func KindOf(err error) Kind {
	var p *Error
	if errors.As(err, &p) {
		return p.Kind
	}
	return 0
}

// HTTPStatus is the one place that maps a kind to an HTTP status and a proto
// error code; the API and the web UI both use it.
func HTTPStatus(k Kind) (int, string) {
	switch k {
	case Invalid:
		return http.StatusBadRequest, proto.CodeInvalid
	case Unauthorized:
		return http.StatusUnauthorized, proto.CodeUnauthorized
	case Forbidden:
		return http.StatusForbidden, proto.CodeForbidden
	case Inactive:
		return http.StatusForbidden, proto.CodeInactive
	case NotFound:
		return http.StatusNotFound, proto.CodeNotFound
	case Conflict:
		return http.StatusConflict, proto.CodeConflict
	case Quota:
		return http.StatusConflict, proto.CodeQuota
	case NoCapacity:
		return http.StatusConflict, proto.CodeNoCapacity
	case Unavailable:
		return http.StatusServiceUnavailable, proto.CodeUnavailable
	case RateLimited:
		return http.StatusTooManyRequests, proto.CodeRateLimited
	}
	return http.StatusInternalServerError, proto.CodeInternal
}

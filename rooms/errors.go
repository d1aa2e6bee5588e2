package rooms

import (
	"context"
	"errors"
	"fmt"
	"time"

	"onair/rooms/mongodb"
)

// Sentinel errors. Every error a method returns wraps at most one of them (test with
// errors.Is); Code turns an error into a stable string for APIs.
var (
	// ErrNotFound: no such user, room, broadcast or session.
	ErrNotFound = errors.New("not found")
	// ErrForbidden: the actor is signed in but may not do this (not the room's owner or an admin).
	ErrForbidden = errors.New("forbidden")
	// ErrUnauthorized: no valid session, or wrong credentials.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrConflict: a unique value (email, handle, slug) is taken; see ConflictError.
	ErrConflict = errors.New("conflict")
	// ErrInvalid: the input was rejected; see ValidationError for the field.
	ErrInvalid = errors.New("invalid input")
	// ErrRateLimited: too many attempts; see RateLimitError for when to retry.
	ErrRateLimited = errors.New("too many attempts")
	// ErrUnavailable: MongoDB could not be reached in time. Retrying later may succeed;
	// nothing needs to be reset, the driver reconnects by itself.
	ErrUnavailable = errors.New("database unavailable")
)

// ErrInvalidCredentials is what LogIn returns for an unknown account and for a wrong
// password alike. It wraps ErrUnauthorized.
var ErrInvalidCredentials = fmt.Errorf("%w: wrong email, handle or password", ErrUnauthorized)

// ErrAccountDisabled is what signing in to a disabled account returns, once the password
// was right (so that it tells nothing to someone who does not know it). It wraps
// ErrForbidden.
var ErrAccountDisabled = fmt.Errorf("%w: this account is disabled", ErrForbidden)

// ValidationError says which input field was rejected and why, in words fit for a user.
// errors.Is(err, ErrInvalid) holds for it.
type ValidationError struct {
	Field   string // the input's field name, e.g. "email", "slug"
	Message string // e.g. "must be 3 to 24 characters: a-z, 0-9 and _"
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Message }

// Is makes errors.Is(err, ErrInvalid) true.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// ConflictError says which unique field is already taken. errors.Is(err, ErrConflict)
// holds for it.
type ConflictError struct {
	Field   string // "email", "handle" or "slug"
	Message string
}

func (e *ConflictError) Error() string { return e.Field + ": " + e.Message }

// Is makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// RateLimitError is returned while login attempts (or sign-ups) are blocked. errors.Is(err,
// ErrRateLimited) holds for it.
type RateLimitError struct {
	// Scope is "account", "ip", "signup" or "stream key": which limit was hit.
	Scope string
	// RetryAfter is how long until one more attempt is allowed (at least one second).
	RetryAfter time.Duration
}

func (e *RateLimitError) Error() string {
	if e.Scope == "stream key" {
		return fmt.Sprintf("too many wrong stream keys from this address; retry in %s", e.RetryAfter.Round(time.Second))
	}
	if e.Scope == "signup" {
		return fmt.Sprintf("too many accounts made from this address; retry in %s", e.RetryAfter.Round(time.Second))
	}
	return fmt.Sprintf("too many failed logins for this %s; retry in %s", e.Scope, e.RetryAfter.Round(time.Second))
}

// Is makes errors.Is(err, ErrRateLimited) true.
func (e *RateLimitError) Is(target error) bool { return target == ErrRateLimited }

// Stable codes returned by Code.
const (
	CodeNotFound     = "not_found"
	CodeForbidden    = "forbidden"
	CodeUnauthorized = "unauthorized"
	CodeConflict     = "conflict"
	CodeInvalid      = "invalid"
	CodeRateLimited  = "rate_limited"
	CodeUnavailable  = "unavailable"
	CodeCanceled     = "canceled"
	CodeInternal     = "internal"
)

// Code maps an error returned by this package to a stable string for API responses:
// one of the Code* constants ("" for nil). A web layer typically maps not_found → 404,
// forbidden → 403, unauthorized → 401, conflict → 409, invalid → 400 (with
// ValidationError.Field), rate_limited → 429 (Retry-After from RateLimitError),
// unavailable → 503, canceled → no response (the client left), internal → 500.
func Code(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrUnavailable):
		return CodeUnavailable
	case errors.Is(err, ErrInvalid):
		return CodeInvalid
	case errors.Is(err, ErrConflict):
		return CodeConflict
	case errors.Is(err, ErrRateLimited):
		return CodeRateLimited
	case errors.Is(err, ErrUnauthorized):
		return CodeUnauthorized
	case errors.Is(err, ErrForbidden):
		return CodeForbidden
	case errors.Is(err, ErrNotFound):
		return CodeNotFound
	case errors.Is(err, context.Canceled):
		return CodeCanceled
	default:
		return CodeInternal
	}
}

// dbError says what was being done when the driver returned err; errors that mean
// MongoDB could not be reached (network errors, server selection timeouts, deadlines
// while talking to the server, a primary stepping down) also wrap ErrUnavailable. A
// caller's cancellation stays a plain context.Canceled.
func dbError(op string, err error) error { return mongodb.Wrap(op, err, ErrUnavailable) }

package webhook

import (
	"errors"
	"fmt"

	"onair/rooms/mongodb"
)

// Sentinel errors; the package's errors wrap at most one of them.
var (
	// ErrInvalid: an argument was rejected; see *ValidationError for the field.
	ErrInvalid = errors.New("invalid webhook input")
	// ErrNotFound: no such webhook in this room.
	ErrNotFound = errors.New("webhook not found")
	// ErrUnavailable: MongoDB could not be reached in time; retry later.
	ErrUnavailable = errors.New("webhooks unavailable")
	// ErrQueueFull: Publish could not queue the event (it is dropped, logged and counted).
	ErrQueueFull = errors.New("webhook event queue full")
)

// ErrNoDelivery: no such delivery (for whoever asked). It wraps ErrNotFound.
var ErrNoDelivery = fmt.Errorf("%w: no such delivery", ErrNotFound)

// ValidationError names the rejected field. errors.Is(err, ErrInvalid) holds for it.
type ValidationError struct {
	Field   string
	Message string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Message }

// Is makes errors.Is(err, ErrInvalid) true.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Message: fmt.Sprintf(format, args...)}
}

func dbError(op string, err error) error { return mongodb.Wrap(op, err, ErrUnavailable) }

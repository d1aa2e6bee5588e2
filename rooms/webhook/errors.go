package webhook

import (
	"errors"
	"fmt"

	"onair/rooms/mongodb"
)

// Sentinel errors; the package's errors wrap at most one of them.
var (
	// ErrInvalid: an argument was rejected; see *InvalidError for the field.
	ErrInvalid = errors.New("invalid webhook input")
	// ErrNotFound: no such webhook in this room.
	ErrNotFound = errors.New("webhook not found")
	// ErrUnavailable: MongoDB could not be reached in time; retry later.
	ErrUnavailable = errors.New("webhooks unavailable")
	// ErrQueueFull: Publish could not queue the event (it is dropped, logged and counted).
	ErrQueueFull = errors.New("webhook event queue full")
)

// InvalidError names the rejected field. errors.Is(err, ErrInvalid) holds for it.
type InvalidError struct {
	Field   string
	Message string
}

func (e *InvalidError) Error() string { return e.Field + ": " + e.Message }

// Is makes errors.Is(err, ErrInvalid) true.
func (e *InvalidError) Is(target error) bool { return target == ErrInvalid }

func invalid(field, format string, args ...any) error {
	return &InvalidError{Field: field, Message: fmt.Sprintf(format, args...)}
}

func dbError(op string, err error) error {
	if mongodb.Unavailable(err) {
		return fmt.Errorf("%s: %w: %w", op, ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

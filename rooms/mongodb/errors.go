package mongodb

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"
)

// unavailableCodes are server error codes that mean "try again later": host unreachable
// or not found, network timeout, shutdown, not primary, stepped down, time limit exceeded.
var unavailableCodes = []int{6, 7, 89, 91, 189, 262, 10107, 11600, 11602, 13435, 13436}

// Unavailable reports whether err means MongoDB could not be reached in time (as opposed
// to a request it refused). A caller's own cancellation is not unavailability.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || mongo.IsNetworkError(err) || mongo.IsTimeout(err) ||
		errors.Is(err, mongo.ErrClientDisconnected) {
		return true
	}
	var sse topology.ServerSelectionError
	if errors.As(err, &sse) {
		return true
	}
	var ce topology.ConnectionError
	if errors.As(err, &ce) {
		return true
	}
	// An operation that was waiting for a connection when another one found the server
	// gone fails with the pool's "cleared" error, which wraps nothing the checks above see.
	var pe driver.RetryablePoolError
	if errors.As(err, &pe) && pe.Retryable() {
		return true
	}
	var se mongo.ServerError
	if errors.As(err, &se) {
		if se.HasErrorLabel("RetryableWriteError") || se.HasErrorLabel("NetworkError") {
			return true
		}
		for _, c := range unavailableCodes {
			if se.HasErrorCode(c) {
				return true
			}
		}
	}
	return false
}

// IsDup reports a duplicate key error: code 11000, or the embedded server's code 1 for a
// duplicate caused by an update.
func IsDup(err error) bool {
	if err == nil {
		return false
	}
	if mongo.IsDuplicateKeyError(err) {
		return true
	}
	var se mongo.ServerError
	if errors.As(err, &se) && se.HasErrorCode(1) {
		msg := err.Error()
		return strings.Contains(msg, "UNIQUE constraint failed") || strings.Contains(msg, "duplicate key")
	}
	return false
}

// Wrap says what was being done when err happened (nil stays nil). When err means MongoDB
// could not be reached, the result also wraps unavailable, the caller's package's
// sentinel for it, so that its callers answer 503 and retry.
func Wrap(op string, err, unavailable error) error {
	if err == nil {
		return nil
	}
	if Unavailable(err) {
		return fmt.Errorf("%s: %w: %w", op, unavailable, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

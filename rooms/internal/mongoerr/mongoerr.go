// Package mongoerr classifies MongoDB driver errors the way rooms and its sub-packages
// need: MongoDB away (answer 503, retry) or a duplicate key (on MongoDB and FerretDB).
package mongoerr

import (
	"context"
	"errors"
	"strings"

	"go.mongodb.org/mongo-driver/v2/mongo"
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

// IsDup reports a duplicate key error: 11000 on MongoDB, and on FerretDB also the
// internal error (code 1) it returns for a duplicate caused by an update.
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

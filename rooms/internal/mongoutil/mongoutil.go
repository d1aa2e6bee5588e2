// Package mongoutil holds the few MongoDB helpers that rooms' sub-packages (audit,
// webhook) share: classifying driver errors and keyset-pagination cursors.
package mongoutil

import (
	"context"
	"encoding/base64"
	"encoding/json"
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

// EncodeCursor turns a page position into an opaque string for APIs.
func EncodeCursor(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeCursor reads a cursor made by EncodeCursor into a T; false if it is not one.
func DecodeCursor[T any](s string) (T, bool) {
	var v T
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return v, false
	}
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.DisallowUnknownFields()
	if err := d.Decode(&v); err != nil {
		return v, false
	}
	return v, true
}

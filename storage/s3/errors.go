package s3

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"onair/storage"
)

// wrap says which operation on which key failed and classifies the SDK's error into the
// storage package's errors, keeping the original (request id, code) in the chain.
func wrap(op, key string, err error) error {
	if err == nil {
		return nil
	}
	if kind := classify(err); kind != nil {
		return fmt.Errorf("s3 %s %q: %w: %w", op, key, kind, err)
	}
	return fmt.Errorf("s3 %s %q: %w", op, key, err)
}

func classify(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "NoSuchKey", "NotFound", "NoSuchUpload":
			return storage.ErrNotFound
		case "InvalidRange":
			return storage.ErrInvalidRange
		case "EntityTooSmall":
			return storage.ErrPartTooSmall
		case "NoSuchBucket":
			// A configuration problem, not a missing object: callers must not conclude
			// that an upload or a recording is gone.
			return nil
		}
	}
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.HTTPStatusCode() == 0 {
		// No HTTP answer at all (the SDK reports status 0): the network or the server is
		// down.
		return storage.ErrUnavailable
	}
	switch code := re.HTTPStatusCode(); {
	case code == http.StatusNotFound:
		return storage.ErrNotFound
	case code == http.StatusRequestedRangeNotSatisfiable:
		return storage.ErrInvalidRange
	case code >= 500, code == http.StatusTooManyRequests, code == http.StatusRequestTimeout:
		return storage.ErrUnavailable
	}
	return nil
}

package s3

import (
	"context"
	"time"

	"github.com/aws/smithy-go/middleware"
)

// observeMiddleware times each operation from the top of the SDK's stack, so the time
// includes its retries, as the caller experiences it.
func observeMiddleware(observe func(op string, took time.Duration, err error)) func(*middleware.Stack) error {
	return func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("onairObserve",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				start := time.Now()
				out, md, err := next.HandleInitialize(ctx, in)
				observe(middleware.GetOperationName(ctx), time.Since(start), err)
				return out, md, err
			}), middleware.Before)
	}
}

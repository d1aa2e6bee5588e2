package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"
)

// errStopped ends a retry loop because its owner asked it to stop (Spool.Close taking over
// the uploads), not because anything failed.
var errStopped = errors.New("storage: stopped")

// retrier runs store operations until they succeed, waiting between attempts with
// exponential backoff capped at max and jittered so that many spools do not hammer a store
// that comes back in step.
type retrier struct {
	min, max time.Duration
	log      *slog.Logger
	// failed, when set, is told every failure (Spool keeps the last one for Stats); ok is
	// told every success.
	failed func(error)
	ok     func()
}

// permanent reports errors that no amount of retrying can fix.
func permanent(err error) bool {
	return errors.Is(err, ErrNotFound) || errors.Is(err, ErrInvalidKey) ||
		errors.Is(err, ErrPartTooSmall) || errors.Is(err, ErrInvalidRange)
}

// do calls op until it returns nil or a permanent error, ctx ends, or stop is closed
// (errStopped). An attempt in flight is never cut short by stop, only by ctx.
func (r retrier) do(ctx context.Context, stop <-chan struct{}, what string, op func(context.Context) error) error {
	wait := r.min
	for attempt := 1; ; attempt++ {
		err := op(ctx)
		if err == nil {
			if r.ok != nil {
				r.ok()
			}
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w (gave up: %w)", what, err, ctx.Err())
		}
		if permanent(err) {
			return err
		}
		if r.failed != nil {
			r.failed(err)
		}
		// Half fixed, half random: waits stay near the schedule but spread out.
		d := wait/2 + rand.N(wait/2+1)
		r.log.Warn("storage operation failed; retrying", "op", what, "attempt", attempt,
			"retry_in", d.Round(time.Millisecond), "err", err)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: %w (gave up: %w)", what, err, ctx.Err())
		case <-stop:
			t.Stop()
			return errStopped
		case <-t.C:
		}
		wait = min(wait*2, r.max)
	}
}

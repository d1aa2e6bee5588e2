package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"
)

// Retrier runs store operations until they succeed, waiting between attempts with
// exponential backoff capped at Max and jittered, so that many writers do not hammer a
// store that comes back in step. The zero value waits 100 ms to 10 s.
type Retrier struct {
	Min, Max time.Duration
	Logger   *slog.Logger
	// Failed, when set, is told every failure; OK every success.
	Failed func(error)
	OK     func()
}

// Permanent reports errors that no amount of retrying can fix.
func Permanent(err error) bool {
	return errors.Is(err, ErrNotFound) || errors.Is(err, ErrInvalidKey) ||
		errors.Is(err, ErrPartTooSmall) || errors.Is(err, ErrInvalidRange)
}

// Do calls op until it returns nil or a permanent error, or ctx ends.
func (r Retrier) Do(ctx context.Context, what string, op func(context.Context) error) error {
	wait, top := r.Min, r.Max
	if wait <= 0 {
		wait = 100 * time.Millisecond
	}
	if top <= 0 {
		top = 10 * time.Second
	}
	log := r.Logger
	if log == nil {
		log = slog.Default()
	}
	for attempt := 1; ; attempt++ {
		err := op(ctx)
		if err == nil {
			if r.OK != nil {
				r.OK()
			}
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w (gave up: %w)", what, err, ctx.Err())
		}
		if Permanent(err) {
			return err
		}
		if r.Failed != nil {
			r.Failed(err)
		}
		// Half fixed, half random: waits stay near the schedule but spread out.
		d := wait/2 + rand.N(wait/2+1)
		log.Warn("storage operation failed; retrying", "op", what, "attempt", attempt,
			"retry_in", d.Round(time.Millisecond), "err", err)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: %w (gave up: %w)", what, err, ctx.Err())
		case <-t.C:
		}
		wait = min(wait*2, top)
	}
}

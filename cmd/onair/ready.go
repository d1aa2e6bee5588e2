package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo/readpref"

	"onair/storage"
	"onair/web"
)

// readiness answers /readyz: MongoDB and object storage reachable, listeners up. Probes
// come often and from every load balancer, so an answer is reused for a couple of seconds.
type readiness struct {
	app       *app
	listening atomic.Bool

	mu      sync.Mutex
	checked time.Time
	last    error
}

const readyCacheFor = 2 * time.Second

func (r *readiness) check(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.checked) < readyCacheFor {
		return r.last
	}
	err := r.probe(ctx)
	if (err == nil) != (r.last == nil) || (err != nil && err.Error() != r.last.Error()) {
		if err != nil {
			r.app.log.Warn("not ready", "err", err)
		} else if !r.checked.IsZero() {
			r.app.log.Info("ready again")
		}
	}
	r.last, r.checked = err, time.Now()
	return r.last
}

func (r *readiness) probe(ctx context.Context) error {
	if !r.listening.Load() {
		return &web.Unready{Part: "listeners", Err: errors.New("not up yet")}
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	a := r.app
	if a.mongo != nil {
		if err := a.mongo.Ping(ctx, readpref.Primary()); err != nil {
			return &web.Unready{Part: "mongodb", Err: fmt.Errorf("unreachable: %w", err)}
		}
	}
	if a.store != nil {
		// Any answer about a key that does not exist proves the store is reachable.
		if _, err := a.store.Head(ctx, "readyz-probe"); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return &web.Unready{Part: "object storage", Err: fmt.Errorf("unreachable: %w", err)}
		}
	}
	return nil
}

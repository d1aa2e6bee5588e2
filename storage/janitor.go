package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// JanitorConfig configures NewJanitor.
type JanitorConfig struct {
	Store Store
	// Prefix is what the janitor looks after; RecordingsPrefix when empty.
	Prefix string
	// MaxAge: objects last modified longer ago are deleted. Required.
	MaxAge time.Duration
	// Interval between sweeps; an hour when 0.
	Interval time.Duration
	Logger   *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Janitor deletes recordings older than MaxAge. It works per object, like a bucket
// lifecycle rule, so the two agree; with several nodes each may run one (deletes are
// idempotent).
type Janitor struct {
	cfg JanitorConfig
}

// NewJanitor checks cfg and returns a janitor; Run starts it.
func NewJanitor(cfg JanitorConfig) (*Janitor, error) {
	if cfg.Store == nil || cfg.MaxAge <= 0 {
		return nil, errors.New("janitor: Store and a positive MaxAge are required")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = RecordingsPrefix
	}
	if err := ValidatePrefix(cfg.Prefix); err != nil {
		return nil, fmt.Errorf("janitor: %w", err)
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Janitor{cfg: cfg}, nil
}

// Run sweeps at once and then every Interval until ctx ends. A failed sweep is logged and
// tried again at the next tick.
func (j *Janitor) Run(ctx context.Context) {
	t := time.NewTicker(j.cfg.Interval)
	defer t.Stop()
	for {
		if n, err := j.Sweep(ctx); err != nil && ctx.Err() == nil {
			j.cfg.Logger.Error("retention sweep failed", "prefix", j.cfg.Prefix, "deleted", n, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sweep deletes every object under Prefix older than MaxAge and returns how many it deleted.
func (j *Janitor) Sweep(ctx context.Context) (int, error) {
	cutoff := j.cfg.Now().Add(-j.cfg.MaxAge)
	var old []string
	err := j.cfg.Store.List(ctx, j.cfg.Prefix, func(o Object) error {
		if o.LastModified.Before(cutoff) {
			old = append(old, o.Key)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("list %q for retention: %w", j.cfg.Prefix, err)
	}
	for i, key := range old {
		if err := j.cfg.Store.Delete(ctx, key); err != nil {
			return i, fmt.Errorf("delete expired %q: %w", key, err)
		}
		j.cfg.Logger.Info("deleted expired recording", "key", key)
	}
	return len(old), nil
}

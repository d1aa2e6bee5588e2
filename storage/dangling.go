package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// DanglingAge is how old an upload or object that nothing accounts for must be before it
// is swept (AbortDanglingUploads, DeleteDanglingObjects): only once clearly orphaned (no
// lease, no record of its recording, nothing on a node's disk) and older than any
// broadcast and any outage a node could come back from with its disk. The nodes complete
// or delete, through their leases, everything they account for; this age only sweeps
// what no one ever will.
const DanglingAge = 7 * 24 * time.Hour

// DanglingConfig configures AbortDanglingUploads.
type DanglingConfig struct {
	Store  Store
	Prefix string
	// Keep reports whether an upload is accounted for (its own spool, a lease, a record of
	// its recording): those are never aborted. An error aborts nothing more.
	Keep func(ctx context.Context, u PendingUpload) (bool, error)
	// OlderThan spares uploads initiated less than this long ago (0: any age).
	OlderThan time.Duration
	Now       func() time.Time // default time.Now
	Logger    *slog.Logger
}

// AbortDanglingUploads aborts the multipart uploads under cfg.Prefix that cfg.Keep does not
// account for and that are older than cfg.OlderThan, and returns how many it aborted. With
// several onair nodes on one bucket, an upload being written by another node is accounted
// for by its lease: a spool directory only knows its own node.
func AbortDanglingUploads(ctx context.Context, cfg DanglingConfig) (int, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	uploads, err := cfg.Store.ListUploads(ctx, cfg.Prefix)
	if err != nil {
		return 0, fmt.Errorf("list uploads under %q: %w", cfg.Prefix, err)
	}
	aborted := 0
	for _, u := range uploads {
		if cfg.OlderThan > 0 && cfg.Now().Sub(u.Initiated) < cfg.OlderThan {
			continue
		}
		if cfg.Keep != nil {
			keep, err := cfg.Keep(ctx, u)
			if err != nil {
				return aborted, fmt.Errorf("check dangling upload of %q: %w", u.Key, err)
			}
			if keep {
				continue
			}
		}
		if err := cfg.Store.AbortUpload(ctx, u.Key, u.UploadID); err != nil && !errors.Is(err, ErrNotFound) {
			return aborted, fmt.Errorf("abort dangling upload of %q: %w", u.Key, err)
		}
		cfg.Logger.Info("aborted dangling upload", "key", u.Key, "initiated", u.Initiated)
		aborted++
	}
	return aborted, nil
}

// DanglingObjects configures DeleteDanglingObjects.
type DanglingObjects struct {
	Store  Store
	Prefix string
	// Group names the thing an object belongs to (a recording's key for its chunks), ""
	// for objects this sweep leaves alone.
	Group func(key string) string
	// Keep reports whether a group is accounted for: its objects are never deleted. An
	// error deletes nothing more.
	Keep      func(ctx context.Context, group string) (bool, error)
	OlderThan time.Duration
	Now       func() time.Time // default time.Now
	Logger    *slog.Logger
}

// DeleteDanglingObjects deletes the objects under cfg.Prefix of groups that cfg.Keep does
// not account for, once older than cfg.OlderThan (a recording's chunks that no recording
// will ever be assembled from), and returns how many it deleted.
func DeleteDanglingObjects(ctx context.Context, cfg DanglingObjects) (int, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	var stale []Object
	err := cfg.Store.List(ctx, cfg.Prefix, func(o Object) error {
		if cfg.Group(o.Key) != "" && cfg.Now().Sub(o.LastModified) >= cfg.OlderThan {
			stale = append(stale, o)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("list objects under %q: %w", cfg.Prefix, err)
	}
	kept := map[string]bool{}
	deleted := 0
	for _, o := range stale {
		g := cfg.Group(o.Key)
		keep, known := kept[g]
		if !known {
			if keep, err = cfg.Keep(ctx, g); err != nil {
				return deleted, fmt.Errorf("check dangling objects of %q: %w", g, err)
			}
			kept[g] = keep
		}
		if keep {
			continue
		}
		if err := cfg.Store.Delete(ctx, o.Key); err != nil {
			return deleted, fmt.Errorf("delete dangling object %q: %w", o.Key, err)
		}
		cfg.Logger.Info("deleted dangling object", "key", o.Key, "of", g, "modified", o.LastModified)
		deleted++
	}
	return deleted, nil
}

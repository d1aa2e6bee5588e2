package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// DanglingAge is how old an upload that nothing accounts for must be before
// AbortDanglingUploads aborts it. Uploads are aborted only when they are clearly orphaned:
// no lease, no record of its recording and no spool claims it, and it is older than any
// broadcast and any outage a node could come back from with its spool (a node of an older
// version records without leases, and a crash between creating an upload and recording it
// leaves one unaccounted for). The nodes complete or abort, through their leases, every
// upload they account for; this age only sweeps what no one ever will.
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

// ClaimedUploads returns a Keep function for AbortDanglingUploads that claims the upload of
// every spool in dir (live, or left by a recovery that failed and will be tried again).
func ClaimedUploads(dir string) (func(key, uploadID string) bool, error) {
	spools, err := ListSpools(dir)
	if err != nil {
		return nil, err
	}
	claimed := map[string]string{}
	for _, sp := range spools {
		if sp.UploadID != "" {
			claimed[sp.UploadID] = sp.Key
		}
	}
	return func(key, uploadID string) bool { return claimed[uploadID] == key }, nil
}

package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
)

// AbortDanglingUploads aborts the multipart uploads under prefix that keep does not claim
// (keep may be nil: claim nothing) and returns how many it aborted. Run it after
// RecoverSpools, keeping the uploads of spools still on disk (ClaimedUploads). With
// several onair nodes on one bucket, keep must also claim the uploads of broadcasts live
// on other nodes: a spool directory only knows its own node.
func AbortDanglingUploads(ctx context.Context, store Store, prefix string, keep func(key, uploadID string) bool, logger *slog.Logger) (int, error) {
	if logger == nil {
		logger = slog.Default()
	}
	uploads, err := store.ListUploads(ctx, prefix)
	if err != nil {
		return 0, fmt.Errorf("list uploads under %q: %w", prefix, err)
	}
	aborted := 0
	for _, u := range uploads {
		if keep != nil && keep(u.Key, u.UploadID) {
			continue
		}
		if err := store.AbortUpload(ctx, u.Key, u.UploadID); err != nil && !errors.Is(err, ErrNotFound) {
			return aborted, fmt.Errorf("abort dangling upload of %q: %w", u.Key, err)
		}
		logger.Info("aborted dangling upload", "key", u.Key, "initiated", u.Initiated)
		aborted++
	}
	return aborted, nil
}

// ClaimedUploads returns a keep function for AbortDanglingUploads that claims the upload of
// every spool in dir (live, or left by a recovery that failed and will be tried again).
func ClaimedUploads(dir string) (func(key, uploadID string) bool, error) {
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("list spools in %s: %w", dir, err)
	}
	claimed := map[string]string{}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		m, err := readManifest(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // no manifest, no upload it could claim
		}
		if m.UploadID != "" {
			claimed[m.UploadID] = m.Key
		}
	}
	return func(key, uploadID string) bool { return claimed[uploadID] == key }, nil
}

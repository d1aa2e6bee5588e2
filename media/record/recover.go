package record

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"onair/storage"
)

// Recover completes what a crash left behind, before any stream starts: spools become
// finished objects cut at their last complete fragment, uploads no one can use any more
// are aborted, and each recording is registered through Recorded in the background
// (retrying until the database takes it, while Run keeps the recorder alive).
func (r *Recorder) Recover(ctx context.Context) error {
	paths, err := filepath.Glob(filepath.Join(r.indexDir, "*.jsonl"))
	if err != nil {
		return fmt.Errorf("record: list indexes: %w", err)
	}
	recs := map[string]Recording{}
	pathOf := map[string]string{}
	for _, p := range paths {
		rec, err := readIndex(p)
		if err != nil {
			r.log.Error("record: unreadable index left in place", "path", p, "err", err)
			continue
		}
		recs[rec.Key], pathOf[rec.Key] = rec, p
	}

	// The index says where the last complete fragment ends; anything after is torn.
	truncate := func(key string, found int64) int64 {
		rec, ok := recs[key]
		if !ok {
			return 0
		}
		rec.truncateTo(found)
		if len(rec.Fragments) == 0 {
			return 0
		}
		return rec.Size
	}
	recovered, err := storage.RecoverSpools(ctx, r.spoolDir, r.cfg.Store, truncate, r.log)
	if err != nil {
		return fmt.Errorf("record: recover spools: %w", err)
	}
	spooled := map[string]storage.Recovered{}
	for _, rc := range recovered {
		spooled[rc.Key] = rc
	}

	for key, rec := range recs {
		size := int64(-1)
		if rc, ok := spooled[key]; ok {
			if rc.Err != nil {
				r.log.Error("record: recording not recovered yet; kept for next start", "key", key, "err", rc.Err)
				continue
			}
			size = rc.Size
		} else {
			// No spool: the upload completed before the crash but was not registered.
			obj, err := r.cfg.Store.Head(ctx, key)
			switch {
			case errors.Is(err, storage.ErrNotFound):
				size = 0
			case err != nil:
				r.log.Error("record: cannot check recording; kept for next start", "key", key, "err", err)
				continue
			default:
				size = obj.Size
			}
		}
		rec.truncateTo(size)
		if len(rec.Fragments) == 0 {
			r.removeIndex(pathOf[key])
			continue
		}
		rec.Recovered = true
		r.log.Info("recording recovered after a crash", "key", key, "bytes", rec.Size, "duration", rec.Duration, "fragments", len(rec.Fragments))
		r.active.Add(1)
		go func(rec Recording, path string) {
			defer r.active.Done()
			if r.deliver(rec) == nil {
				r.removeIndex(path) // else the next start delivers it
			}
		}(rec, pathOf[key])
	}

	claimed, err := storage.ClaimedUploads(r.spoolDir)
	if err != nil {
		return fmt.Errorf("record: claimed uploads: %w", err)
	}
	keep := func(key, uploadID string) bool {
		return claimed(key, uploadID) || (r.cfg.InUse != nil && r.cfg.InUse(key))
	}
	n, err := storage.AbortDanglingUploads(ctx, r.cfg.Store, storage.RecordingsPrefix, keep, r.log)
	if err != nil {
		return fmt.Errorf("record: abort dangling uploads: %w", err)
	}
	if n > 0 {
		r.log.Info("record: aborted dangling uploads", "count", n)
	}
	return nil
}

func (r *Recorder) removeIndex(path string) {
	if err := os.Remove(path); err != nil {
		r.log.Warn("record: remove index", "path", path, "err", err)
	}
}

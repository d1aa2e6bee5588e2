package record

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"onair/storage"
)

// Recover completes what a crash left on this node's disk, before any stream starts:
// spools become finished objects cut at their last complete fragment, and each recording
// is registered through Recorded in the background (retrying until the database takes
// it, while Run keeps the recorder alive). Only recordings this node still owns are
// touched: one another node adopted meanwhile is dropped from the disk, and one whose
// owner cannot be asked now (the database is away) is left for Run to retry. Then uploads
// nothing accounts for are aborted, once clearly orphaned (storage.DanglingAge).
func (r *Recorder) Recover(ctx context.Context) error {
	if err := storage.PruneSpools(r.spoolDir, r.log); err != nil {
		return fmt.Errorf("record: %w", err)
	}
	if err := r.recoverLocal(ctx); err != nil {
		return err
	}
	claimed, err := storage.ClaimedUploads(r.spoolDir)
	if err != nil {
		return fmt.Errorf("record: claimed uploads: %w", err)
	}
	n, err := storage.AbortDanglingUploads(ctx, storage.DanglingConfig{
		Store: r.cfg.Store, Prefix: storage.RecordingsPrefix, OlderThan: storage.DanglingAge, Logger: r.log,
		// Another node's recording is accounted for by its ownership, even before that
		// node noted the upload's id.
		Keep: func(ctx context.Context, u storage.PendingUpload) (bool, error) {
			if claimed(u.Key, u.UploadID) {
				return true, nil
			}
			return r.cfg.Ledger.Known(ctx, u.Key)
		},
	})
	if err != nil {
		return fmt.Errorf("record: abort dangling uploads: %w", err)
	}
	if n > 0 {
		r.log.Info("record: aborted dangling uploads", "count", n)
	}
	return nil
}

// onDisk lists the recordings this node's disk holds: their indexes (by key, with their
// paths) and the keys of their spools.
func (r *Recorder) onDisk() (recs map[string]Recording, paths map[string]string, spooled map[string]bool, err error) {
	files, err := filepath.Glob(filepath.Join(r.indexDir, "*.jsonl"))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("record: list indexes: %w", err)
	}
	recs, paths, spooled = map[string]Recording{}, map[string]string{}, map[string]bool{}
	for _, p := range files {
		rec, err := readIndex(p)
		if err != nil {
			r.log.Error("record: unreadable index left in place", "path", p, "err", err)
			continue
		}
		recs[rec.Key], paths[rec.Key] = rec, p
	}
	spools, err := storage.ListSpools(r.spoolDir)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("record: %w", err)
	}
	for _, sp := range spools {
		spooled[sp.Key] = true
	}
	return recs, paths, spooled, nil
}

// recoverLocal recovers every recording the disk holds that this process is not working on.
func (r *Recorder) recoverLocal(ctx context.Context) error {
	recs, paths, spooled, err := r.onDisk()
	if err != nil {
		r.log.Error("recordings on disk not listed", "err", err)
		return err
	}
	keys := make([]string, 0, len(recs)+len(spooled))
	for k := range recs {
		keys = append(keys, k)
	}
	for k := range spooled {
		if _, ok := recs[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, key := range keys {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !r.take(key) {
			continue // live, or being recovered or adopted
		}
		rec, indexed := recs[key]
		if !r.recoverOne(ctx, key, rec, indexed, paths[key], spooled[key]) {
			r.release(key)
		}
	}
	return nil
}

// recoverOne recovers one recording left on disk. It reports whether it handed the key
// to a goroutine that registers the recording (and releases the key).
func (r *Recorder) recoverOne(ctx context.Context, key string, rec Recording, indexed bool, path string, spooled bool) bool {
	log := r.log.With("key", key)
	own, err := r.cfg.Ledger.Resume(ctx, key)
	if err != nil {
		log.Warn("record: cannot tell who owns a recording on disk; retrying later", "err", err)
		return false
	}
	if !own {
		log.Warn("record: another node adopted this recording while this one was away; dropping the local copy")
		if err := storage.DropSpool(r.spoolDir, key); err != nil {
			log.Error("record: drop spool", "err", err)
			return false
		}
		r.removeIndex(path)
		return false
	}
	size := int64(-1)
	if spooled {
		keep := func(int64) int64 { return 0 } // a spool without its index holds nothing playable
		if indexed {
			keep = keepFragments(rec)
		}
		rc, _ := storage.RecoverSpool(ctx, storage.SpoolRecovery{Dir: r.spoolDir, Store: r.cfg.Store, Key: key, Keep: keep, Logger: r.log})
		switch {
		case rc.Err != nil:
			log.Error("record: recording not recovered yet; kept for a later attempt", "err", rc.Err)
			return false
		case rc.Elsewhere:
			size = 0 // completed and registered by the node that adopted it
		default:
			size = rc.Size
		}
	} else if indexed {
		// No spool: the upload completed before the crash but was not registered.
		obj, err := r.cfg.Store.Head(ctx, key)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			size = 0
		case err != nil:
			log.Error("record: cannot check recording; kept for a later attempt", "err", err)
			return false
		default:
			size = obj.Size
		}
	}
	rec.truncateTo(max(size, 0))
	if !indexed || len(rec.Fragments) == 0 {
		if r.forget(key) {
			r.removeIndex(path)
		}
		return false
	}
	rec.Recovered = true
	log.Info("recording recovered after a crash", "bytes", rec.Size, "duration", rec.Duration, "fragments", len(rec.Fragments))
	r.active.Add(1)
	go func() {
		defer r.active.Done()
		defer r.release(key)
		if r.deliver(rec) == nil && r.forget(key) {
			r.removeIndex(path) // else the next start delivers it
		}
	}()
	return true
}

func (r *Recorder) removeIndex(path string) {
	if path == "" {
		return
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		r.log.Warn("record: remove index", "path", path, "err", err)
	}
}

package record

import (
	"context"
	"errors"
	"os"
	"slices"

	"onair/storage"
)

// A dead node's recording is still a recording. When a node is lost with its disk, what it
// had uploaded (whole parts of its multipart upload) and the fragment index it kept in the
// ledger as those parts were acknowledged are enough to complete a playable recording,
// ending where the uploaded media ends. Any node adopts such a recording once its owner
// has been dead for the ledger's grace period (so that a node restarting under its id
// finishes its own from its spool first), and a node that comes back under its id without
// its disk adopts its own at once.
//
// The object ends at the end of the last whole part that holds indexed fragments, so it
// may carry a torn fragment after the last indexed one, less than a part long. Replay goes
// by the index's byte ranges and never reads it; only a download of the whole file shows
// it, as a truncated last fragment that players stop at.

// adopt claims the recordings that need a new owner and completes each in the background.
func (r *Recorder) adopt(ctx context.Context) {
	spools, err := storage.ListSpools(r.spoolDir)
	if err != nil {
		r.log.Warn("record: spools not listed; adopting nothing this time", "err", err)
		return
	}
	// What the disk holds is this node's to recover, not to adopt from the store.
	inHand := func(key string) bool {
		r.mu.Lock()
		busy := r.busy[key]
		r.mu.Unlock()
		_, err := os.Stat(indexPath(r.indexDir, key))
		return busy || !errors.Is(err, os.ErrNotExist) || slices.ContainsFunc(spools, func(s storage.SpoolInfo) bool { return s.Key == key })
	}
	orphans, err := r.cfg.Ledger.Orphans(ctx, inHand)
	if err != nil {
		r.log.Warn("record: looking for recordings to adopt", "err", err)
	}
	if len(orphans) == 0 {
		return
	}
	uploads, err := r.cfg.Store.ListUploads(ctx, storage.RecordingsPrefix)
	if err != nil {
		// The ownership taken stays this node's; the next pass finds the recordings again.
		r.log.Warn("record: list uploads to adopt recordings; retrying later", "err", err)
		return
	}
	for _, o := range orphans {
		key := o.Recording.Key
		if !r.take(key) {
			continue
		}
		r.active.Add(1)
		go func() {
			defer r.active.Done()
			defer r.release(key)
			r.adoptOne(o, uploads)
		}()
	}
}

// adoptOne completes an orphan from the parts in the store and registers it. Every step
// may be repeated: a failure leaves the recording this node's, for the next pass (or,
// should this node die, another node's).
func (r *Recorder) adoptOne(o Orphan, uploads []storage.PendingUpload) {
	rec := o.Recording
	log := r.log.With("key", rec.Key, "upload_id", o.UploadID)
	if o.Empty {
		r.forget(rec.Key)
		return
	}
	done, err := storage.CompleteStored(r.base, storage.Adoption{Store: r.cfg.Store, Key: rec.Key,
		Uploads: uploads, UploadID: o.UploadID, Keep: keepFragments(rec), Logger: r.log})
	if err != nil {
		log.Warn("record: adopted recording not completed yet; retrying later", "err", err)
		return
	}
	rec.truncateTo(done.Size)
	if len(rec.Fragments) == 0 {
		if done.Size > 0 {
			log.Warn("record: adopted recording has no fragment index; its object is left to retention", "bytes", done.Size)
		} else {
			log.Info("record: adopted recording had nothing in the store; nothing to keep")
		}
		r.forget(rec.Key)
		return
	}
	// The object's size, torn tail included, is what a download gets.
	rec.Size, rec.Recovered = done.Size, true
	log.Info("recording of a lost node completed from the store", "stream", rec.StreamName, "run_id", rec.StreamID,
		"bytes", rec.Size, "duration", rec.Duration, "fragments", len(rec.Fragments))
	if r.deliver(rec) == nil {
		r.forget(rec.Key)
	}
}

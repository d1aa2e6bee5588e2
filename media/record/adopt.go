package record

import (
	"context"

	"onair/storage"
)

// A dead node's recording is still a recording. When a node is lost with its disk, the
// chunks of its log that reached the store, and the segments the ledger noted for them,
// are a playable recording ending where the stored chunks end (a chunk ends where a
// segment ends). Any node adopts such a recording once its owner has been dead for the
// ledger's grace period (so that a node restarting under its id finishes its own from its
// disk first), and a node that comes back under its id without its disk adopts its own at
// once.

// adopt claims the recordings that need a new owner and completes each in the background.
func (r *Recorder) adopt(ctx context.Context) {
	local := r.localKeys()
	orphans, err := r.cfg.Ledger.Orphans(ctx, func(key string) bool { return local[key] })
	if err != nil {
		r.log.Warn("record: looking for recordings to adopt", "err", err)
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
			r.adoptOne(ctx, o)
		}()
	}
}

// adoptOne completes an orphan from its chunks in the store and registers it. Every step
// may be repeated: a failure leaves the recording this node's, for the next pass (or,
// should this node die, another node's).
func (r *Recorder) adoptOne(ctx context.Context, o Orphan) {
	rec := o.Recording
	log := r.log.With("key", rec.Key)
	if o.Empty {
		r.forget(rec.Key)
		return
	}
	inStore, err := r.storedChunks(ctx, rec.Key)
	if err != nil {
		log.Warn("record: adopted recording's chunks not listed; retrying later", "err", err)
		return
	}
	var sources []storage.Source
	var chunks, stored []StoredChunk
	for i, c := range o.Chunks {
		if size, ok := inStore[c.N]; !ok || size != c.Size || c.N != i+1 {
			break
		}
		sources = append(sources, storage.Source{Object: storage.ChunkKey(rec.Key, c.N)})
		chunks = append(chunks, c)
	}
	for n := range inStore {
		stored = append(stored, StoredChunk{N: n})
	}
	rec = withSegments(rec, chunks)
	rec.Recovered = true
	if len(rec.Segments) == 0 {
		log.Info("record: adopted recording had nothing in the store; nothing to keep")
	} else {
		log.Info("recording of a lost node completed from the store", "stream", rec.StreamName, "run_id", rec.StreamID,
			"bytes", rec.Size, "duration", rec.Duration, "segments", len(rec.Segments), "chunks", len(chunks))
	}
	r.finish(rec, "", sources, stored)
}

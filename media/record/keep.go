package record

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"

	"onair/media/fmp4"
	"onair/storage"
)

// keptRun records one run: it uploads each chunk of the run's log as it is sealed, and
// assembles the recording when the run ends. Sealed and Ended come from the segmenter's
// goroutine and never wait; the uploads run on a goroutine of their own.
type keptRun struct {
	r      *Recorder
	mlog   *fmp4.Log
	dir    string
	log    *slog.Logger
	ledger *ledgerWriter

	mu        sync.Mutex
	rec       Recording     // fixed fields
	queue     []*fmp4.Chunk // sealed, waiting for the store
	stored    []fmp4.Chunk  // in the store, as objects
	last      *fmp4.Chunk   // the run's last chunk: it goes into the recording directly
	ended     bool
	pending   int64 // bytes of the queue
	full      bool  // the queue reached MaxDisk: the recording stops growing...
	lastKept  int   // ...at this chunk
	assembled bool  // reads go to the recording itself
	wake      chan struct{}
}

func (r *Recorder) startRun(rec Recording, mlog *fmp4.Log, dir string) *keptRun {
	k := &keptRun{r: r, mlog: mlog, dir: dir, rec: rec, wake: make(chan struct{}, 1),
		log: r.log.With("stream", rec.StreamName, "id", rec.StreamID)}
	mlog.Hold(holdRecord, 1, 0)
	k.ledger = startLedgerWriter(r.base, r.cfg.Ledger, rec.Key, k.log)
	r.active.Add(1)
	r.mu.Lock()
	r.runs[k] = struct{}{}
	r.mu.Unlock()
	go k.run()
	return k
}

func (k *keptRun) poke() {
	select {
	case k.wake <- struct{}{}:
	default:
	}
}

// Sealed queues a chunk for the store. Past MaxDisk of chunks waiting (the store is
// away), the recording stops growing: it keeps what it has, and the log lets the rest go.
func (k *keptRun) Sealed(c *fmp4.Chunk) {
	k.mu.Lock()
	if k.full {
		k.mu.Unlock()
		return
	}
	if k.pending+c.Size <= k.r.cfg.MaxDisk {
		k.queue = append(k.queue, c)
		k.pending += c.Size
		k.mu.Unlock()
		k.poke()
		return
	}
	k.full, k.lastKept = true, c.N-1
	k.mlog.Hold(holdRecord, k.firstUnstoredLocked(), k.lastKept)
	err := fmt.Errorf("record %s: %d bytes wait for the object store, and chunk %d would pass max disk %d", k.rec.Key, k.pending, c.N, k.r.cfg.MaxDisk)
	rec := k.rec
	k.mu.Unlock()
	k.log.Error("recording stops growing: the object store has been away too long", "key", rec.Key, "err", err, "last_chunk", c.N-1)
	if k.r.cfg.Failed != nil {
		k.r.cfg.Failed(rec, err, true)
	}
}

func (k *keptRun) firstUnstoredLocked() int {
	if len(k.stored) == 0 {
		return 1
	}
	return k.stored[len(k.stored)-1].N + 1
}

// Ended takes the run's last chunk; the recording is assembled once the queue is in the
// store.
func (k *keptRun) Ended(last *fmp4.Chunk) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.ended = true
	if last != nil && !k.full {
		k.last = last
		k.pending += last.Size
	}
	k.poke()
}

func (k *keptRun) backlog() (bytes int64, chunks int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := len(k.queue)
	if k.last != nil {
		n++
	}
	return k.pending, n
}

// Open reads n bytes of the log at off from the store: from the chunk object that holds
// them, or from the recording once assembled.
func (k *keptRun) Open(ctx context.Context, off, n int64) (io.ReadCloser, error) {
	k.mu.Lock()
	key, at := k.rec.Key, off
	found := k.assembled
	for _, c := range k.stored {
		if !found && off >= c.Start && off+n <= c.Start+c.Size {
			key, at, found = storage.ChunkKey(k.rec.Key, c.N), off-c.Start, true
		}
	}
	k.mu.Unlock()
	if !found {
		return nil, fmt.Errorf("record %s: %d bytes at %d are in no stored chunk: %w", k.rec.Key, n, off, os.ErrNotExist)
	}
	rc, _, err := k.r.cfg.Store.Get(ctx, key, at, n)
	return rc, err
}

// run uploads the chunks as they come, then assembles the recording. The recorder's
// context ending stops it where it is: the log stays on disk for the next start.
func (k *keptRun) run() {
	r := k.r
	defer r.active.Done()
	defer func() {
		r.mu.Lock()
		delete(r.runs, k)
		delete(r.busy, k.rec.Key)
		r.mu.Unlock()
	}()
	defer k.ledger.close()
	// The recording is this node's, in the ledger, before any of it is in the store.
	if err := r.retry("own recording", k.rec.Key, func(ctx context.Context) error { return r.cfg.Ledger.Begin(ctx, k.rec.fixed()) }); err != nil {
		return
	}
	for {
		k.mu.Lock()
		var next *fmp4.Chunk
		if len(k.queue) > 0 {
			next = k.queue[0]
		}
		ended := k.ended
		k.mu.Unlock()
		if next == nil && ended {
			break
		}
		if next == nil {
			select {
			case <-k.wake:
				continue
			case <-r.base.Done():
				return
			}
		}
		if err := k.store(next); err != nil {
			k.log.Warn("recording stopped before the end; it completes at next start", "err", err)
			return
		}
	}
	k.complete()
}

// store uploads a sealed chunk as an object, notes it in the ledger and lets the log
// delete it once the DVR window no longer needs it.
func (k *keptRun) store(c *fmp4.Chunk) error {
	r := k.r
	f, err := os.Open(c.Path)
	if err != nil {
		return fmt.Errorf("record %s: open chunk %d: %w", k.rec.Key, c.N, err)
	}
	defer f.Close()
	// On disk for good before it leaves: until the store has it, this is the only copy.
	if err := f.Sync(); err != nil {
		return fmt.Errorf("record %s: sync chunk %d: %w", k.rec.Key, c.N, err)
	}
	key := storage.ChunkKey(k.rec.Key, c.N)
	err = r.cfg.Retry.Do(r.base, "upload "+key, func(ctx context.Context) error {
		// A section reader bounds the body to the chunk and has no Close for the HTTP
		// client to call between attempts.
		return r.cfg.Store.Put(ctx, key, io.NewSectionReader(f, 0, c.Size), c.Size, "video/mp4")
	})
	if err != nil {
		return err
	}
	k.ledger.tell(storedChunk(*c))
	k.mu.Lock()
	k.queue = k.queue[1:]
	k.pending -= c.Size
	k.stored = append(k.stored, *c)
	to := k.lastKept
	k.mu.Unlock()
	k.mlog.Hold(holdRecord, c.N+1, to)
	return nil
}

// complete assembles the recording from the stored chunks and the last one, registers it,
// and lets the log go.
func (k *keptRun) complete() {
	k.mu.Lock()
	var chunks, stored []StoredChunk
	var sources []storage.Source
	for _, c := range k.stored {
		sources = append(sources, storage.Source{Object: storage.ChunkKey(k.rec.Key, c.N)})
		chunks = append(chunks, storedChunk(c))
		stored = append(stored, StoredChunk{N: c.N})
	}
	last := k.last
	k.mu.Unlock()
	var f *os.File
	if last != nil && len(last.Segments) > 0 {
		var err error
		if f, err = os.Open(last.Path); err != nil {
			k.log.Error("recording's last chunk unreadable; it completes at next start", "err", err)
			return
		}
		defer f.Close()
		sources = append(sources, storage.Source{Body: io.NewSectionReader(f, 0, last.Size), Size: last.Size})
		chunks = append(chunks, storedChunk(*last))
	}
	k.ledger.close()
	rec := withSegments(k.rec, chunks)
	if !k.r.finish(rec, k.dir, sources, stored) {
		return
	}
	k.mu.Lock()
	k.assembled = true
	k.mu.Unlock()
	k.mlog.Release(holdRecord)
}

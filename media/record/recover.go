package record

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"onair/media/fmp4"
	"onair/storage"
)

// Recover completes what a crash left on this node's disk, before any stream starts:
// each recording's log becomes a finished recording cut at its last complete segment,
// registered through Recorded (in the background, retrying while the database is away;
// Run keeps the recorder alive). Only recordings this node still owns are touched: one
// another node adopted meanwhile is dropped from the disk, and one whose owner cannot be
// asked now is left for Run to retry. Then uploads and chunks nothing accounts for are
// swept, once clearly orphaned (storage.DanglingAge).
func (r *Recorder) Recover(ctx context.Context) error {
	if err := r.recoverLocal(ctx); err != nil {
		return err
	}
	local := r.localKeys()
	keep := func(ctx context.Context, key string) (bool, error) {
		if local[key] {
			return true, nil
		}
		return r.cfg.Ledger.Known(ctx, key)
	}
	n, err := storage.AbortDanglingUploads(ctx, storage.DanglingConfig{
		Store: r.cfg.Store, Prefix: storage.RecordingsPrefix, OlderThan: storage.DanglingAge, Logger: r.log,
		Keep: func(ctx context.Context, u storage.PendingUpload) (bool, error) { return keep(ctx, u.Key) },
	})
	if err != nil {
		return fmt.Errorf("record: abort dangling uploads: %w", err)
	}
	m, err := storage.DeleteDanglingObjects(ctx, storage.DanglingObjects{
		Store: r.cfg.Store, Prefix: storage.RecordingsPrefix, OlderThan: storage.DanglingAge, Logger: r.log,
		Group: func(key string) string {
			folder, _ := storage.ChunkOf(key)
			return folder
		},
		// Every recording of a folder is named recording.mp4 (Keep).
		Keep: func(ctx context.Context, folder string) (bool, error) { return keep(ctx, folder+"recording.mp4") },
	})
	if err != nil {
		return fmt.Errorf("record: delete dangling chunks: %w", err)
	}
	if n+m > 0 {
		r.log.Info("record: swept what no recording accounts for", "uploads", n, "chunks", m)
	}
	return nil
}

// leftovers lists the recordings' log directories on this node's disk, by key.
func (r *Recorder) leftovers() map[string]string {
	entries, err := os.ReadDir(r.cfg.Dir)
	if err != nil {
		r.log.Error("record: logs on disk not listed", "dir", r.cfg.Dir, "err", err)
		return nil
	}
	out := map[string]string{}
	for _, e := range entries {
		dir := filepath.Join(r.cfg.Dir, e.Name())
		rec, err := readMarker(dir)
		if errors.Is(err, os.ErrNotExist) {
			continue // a run no recording keeps: HLS's
		}
		if err != nil {
			r.log.Error("record: unreadable recording left in place", "dir", dir, "err", err)
			continue
		}
		out[rec.Key] = dir
	}
	return out
}

func (r *Recorder) localKeys() map[string]bool {
	keys := map[string]bool{}
	for k := range r.leftovers() {
		keys[k] = true
	}
	r.mu.Lock()
	for k := range r.busy {
		keys[k] = true
	}
	r.mu.Unlock()
	return keys
}

// recoverLocal recovers every recording the disk holds that this process is not working
// on.
func (r *Recorder) recoverLocal(ctx context.Context) error {
	for key, dir := range r.leftovers() {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !r.take(key) {
			continue // live, or being recovered or adopted
		}
		r.active.Add(1)
		go func() {
			defer r.active.Done()
			defer r.release(key)
			r.recoverOne(ctx, key, dir)
		}()
	}
	return nil
}

// recoverOne completes one recording a crash left on disk, from its log and the chunks
// that reached the store.
func (r *Recorder) recoverOne(ctx context.Context, key, dir string) {
	log := r.log.With("key", key, "dir", dir)
	own, err := r.cfg.Ledger.Resume(ctx, key)
	if err != nil {
		log.Warn("record: cannot tell who owns a recording on disk; retrying later", "err", err)
		return
	}
	if !own {
		log.Warn("record: another node adopted this recording while this one was away; dropping the local copy")
		r.removeDir(dir)
		return
	}
	rec, err := readMarker(dir)
	if err != nil {
		log.Error("record: recording not recovered", "err", err)
		return
	}
	st, err := fmp4.ReadLog(dir)
	if err != nil {
		log.Error("record: recording's log unreadable; left in place", "err", err)
		return
	}
	inStore, err := r.storedChunks(ctx, key)
	if err != nil {
		log.Warn("record: chunks in the store not listed; retrying later", "err", err)
		return
	}
	// The recording is the log's chunks in order, each from the store or the disk, up to
	// the first that neither holds.
	var sources []storage.Source
	var chunks, stored []StoredChunk
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	for _, c := range st.Chunks {
		if size, ok := inStore[c.N]; ok && size == c.Size {
			sources = append(sources, storage.Source{Object: storage.ChunkKey(key, c.N)})
		} else if c.Path != "" {
			f, err := os.Open(c.Path)
			if err != nil {
				break
			}
			files = append(files, f)
			sources = append(sources, storage.Source{Body: io.NewSectionReader(f, 0, c.Size), Size: c.Size})
		} else {
			log.Warn("record: chunk neither on disk nor in the store; the recording ends before it", "chunk", c.N)
			break
		}
		chunks = append(chunks, storedChunk(c))
	}
	for n := range inStore {
		stored = append(stored, StoredChunk{N: n})
	}
	rec = withSegments(rec, chunks)
	rec.Recovered = true
	log.Info("recording recovered after a crash", "bytes", rec.Size, "duration", rec.Duration, "segments", len(rec.Segments))
	if r.finish(rec, dir, sources, stored) {
		r.removeDir(dir)
	}
}

// storedChunks lists the chunk objects of a recording in the store: number → size.
func (r *Recorder) storedChunks(ctx context.Context, key string) (map[int]int64, error) {
	out := map[int]int64{}
	prefix := strings.TrimSuffix(storage.ChunkKey(key, 1), "000001")
	err := r.cfg.Store.List(ctx, prefix, func(o storage.Object) error {
		if _, n := storage.ChunkOf(o.Key); n > 0 {
			out[n] = o.Size
		}
		return nil
	})
	return out, err
}

func (r *Recorder) removeDir(dir string) {
	if err := os.RemoveAll(dir); err != nil {
		r.log.Warn("record: remove recording's log", "dir", dir, "err", err)
	}
}

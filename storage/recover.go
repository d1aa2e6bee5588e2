package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// Recovered reports what recovery did with one spool left by a crash.
type Recovered struct {
	Key string
	// Found is the bytes the store and the disk held together; Size is what the completed
	// object kept after cutting a torn tail (0: nothing worth keeping, upload aborted).
	Found, Size int64
	// Elsewhere: the upload was gone and the disk no longer held all of its bytes, but the
	// object exists: another writer completed it (a node that adopted the recording). The
	// spool was removed without touching the store.
	Elsewhere bool
	// Err is why the spool could not be completed; its directory is left in place so that
	// nothing is lost and a later attempt can try again.
	Err error
}

// RecoverSpools completes every spool left in dir by a crash into a finished object: the
// parts the store already has plus the chunks still on disk. Call it at start, before any
// spool is opened in dir (RecoverSpool recovers one spool while others are in use).
// Store operations are retried until ctx ends.
//
// truncate, when set, is told how many bytes were found for a key and returns how many to
// keep: the recorder answers with the end of its last complete fragment, cutting a torn
// tail. Without it, recovery keeps what the last Sync made durable. Bytes already uploaded
// in a part whose chunk is gone cannot be cut: the cut moves to the end of that part.
func RecoverSpools(ctx context.Context, dir string, store Store, truncate func(key string, written int64) int64, logger *slog.Logger) ([]Recovered, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("recover spools in %s: %w", dir, err)
	}
	var out []Recovered
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		rec, ok := recoverDir(ctx, filepath.Join(dir, e.Name()), store, truncate, logger)
		if ok {
			out = append(out, rec)
		}
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
	}
	return out, nil
}

// SpoolRecovery names one spool for RecoverSpool.
type SpoolRecovery struct {
	Dir   string // the spools' root, as given to OpenSpool
	Store Store
	Key   string
	// Keep is told how many bytes were found and returns how many to keep (see
	// RecoverSpools' truncate); nil keeps what the last Sync made durable.
	Keep   func(found int64) int64
	Logger *slog.Logger
}

// RecoverSpool completes the spool of one key, left by a crash, into a finished object,
// as RecoverSpools does for all of them. It may run while other spools of the same root
// are in use. ok is false when the key has no spool.
func RecoverSpool(ctx context.Context, r SpoolRecovery) (rec Recovered, ok bool) {
	var truncate func(string, int64) int64
	if r.Keep != nil {
		truncate = func(_ string, found int64) int64 { return r.Keep(found) }
	}
	dir := filepath.Join(r.Dir, spoolDirName(r.Key))
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return Recovered{Key: r.Key}, false
	}
	return recoverDir(ctx, dir, r.Store, truncate, r.Logger)
}

// recoverDir recovers the spool in sdir; ok is false when there was none to report (an
// empty shell, removed).
func recoverDir(ctx context.Context, sdir string, store Store, truncate func(string, int64) int64, logger *slog.Logger) (Recovered, bool) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m, err := readManifest(sdir)
	if errors.Is(err, os.ErrNotExist) {
		// OpenSpool writes the manifest before any data: this is an empty shell.
		logger.Warn("removing spool directory without a manifest", "dir", sdir)
		if err := os.RemoveAll(sdir); err != nil {
			return Recovered{Err: fmt.Errorf("remove spool %s: %w", sdir, err)}, true
		}
		return Recovered{}, false
	}
	if err != nil {
		return Recovered{Err: err}, true
	}
	r := recoverer{dir: sdir, m: m, store: store, truncate: truncate,
		log: logger.With("key", m.Key, "dir", sdir)}
	r.retry = retrier{min: 100 * time.Millisecond, max: 10 * time.Second, log: r.log}
	rec := r.run(ctx)
	switch {
	case rec.Err != nil:
		r.log.Error("spool recovery failed; directory kept", "err", rec.Err)
	case rec.Elsewhere:
		r.log.Warn("spool dropped: its upload was completed by another writer")
	default:
		r.log.Info("spool recovered", "found", rec.Found, "size", rec.Size)
	}
	return rec, true
}

// PruneSpools removes the spool directories in dir that have no manifest: OpenSpool writes
// the manifest before any data, so they hold nothing (a crash came in between). Call it
// before any spool is opened in dir.
func PruneSpools(dir string, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("list spools in %s: %w", dir, err)
	}
	for _, e := range entries {
		sdir := filepath.Join(dir, e.Name())
		if _, err := os.Stat(filepath.Join(sdir, manifestName)); !e.IsDir() || !errors.Is(err, os.ErrNotExist) {
			continue
		}
		logger.Warn("removing spool directory without a manifest", "dir", sdir)
		if err := os.RemoveAll(sdir); err != nil {
			return fmt.Errorf("remove spool %s: %w", sdir, err)
		}
	}
	return nil
}

// SpoolInfo is a spool found on disk.
type SpoolInfo struct {
	Key, UploadID string // UploadID is "" until the store accepted CreateUpload
}

// ListSpools returns the spools in dir that have a manifest, live or left by a crash.
func ListSpools(dir string) ([]SpoolInfo, error) {
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("list spools in %s: %w", dir, err)
	}
	var out []SpoolInfo
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		m, err := readManifest(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // no manifest, no data: recovery removes it
		}
		out = append(out, SpoolInfo{Key: m.Key, UploadID: m.UploadID})
	}
	return out, nil
}

// DropSpool removes the spool of key from dir without touching the store: the object is
// another writer's now (a node that adopted it), and this spool must not complete it.
func DropSpool(dir, key string) error {
	if err := os.RemoveAll(filepath.Join(dir, spoolDirName(key))); err != nil {
		return fmt.Errorf("drop spool of %q: %w", key, err)
	}
	return syncDir(dir)
}

// recoverer completes one spool.
type recoverer struct {
	dir      string
	m        *manifest
	store    Store
	truncate func(string, int64) int64
	log      *slog.Logger
	retry    retrier
}

// piece is one part of the object as found: on disk (a chunk), in the store, or both.
type piece struct {
	n      int
	size   int64
	onDisk bool
	stored *Part // the store's part, if it has one of this size
}

func (r *recoverer) run(ctx context.Context) Recovered {
	rec := Recovered{Key: r.m.Key}
	chunks, err := chunkSizes(r.dir)
	if err != nil {
		rec.Err = err
		return rec
	}
	stored, gone, err := r.storedParts(ctx)
	if err != nil {
		rec.Err = err
		return rec
	}
	if gone && r.m.Completing {
		// The crash came after CompleteUpload succeeded: the object is there already.
		size := r.m.uploadedBytes()
		var obj Object
		err := r.retry.do(ctx, nil, fmt.Sprintf("head %q", r.m.Key), func(ctx context.Context) error {
			var err error
			obj, err = r.store.Head(ctx, r.m.Key)
			return err
		})
		if err == nil && obj.Size == size {
			rec.Found, rec.Size = size, size
			rec.Err = r.removeDir()
			return rec
		}
	}
	if _, first := chunks[1]; gone && len(r.m.Parts) > 0 && !first {
		// Without the upload, the disk cannot rebuild the object. If the object exists,
		// another writer completed it from the parts (a node adopted the recording while
		// this one was away): it is theirs.
		if _, err := r.store.Head(ctx, r.m.Key); err == nil {
			rec.Elsewhere = true
			rec.Err = r.removeDir()
			return rec
		}
		rec.Err = fmt.Errorf("recover %q: upload %s is gone with parts the disk no longer holds: %w", r.m.Key, r.m.UploadID, ErrNotFound)
		return rec
	}
	pieces := r.pieces(chunks, stored)
	for _, p := range pieces {
		rec.Found += p.size
	}
	keep := r.keep(pieces, rec.Found)
	if keep == 0 {
		if r.m.UploadID != "" && !gone {
			if err := r.store.AbortUpload(ctx, r.m.Key, r.m.UploadID); err != nil && !errors.Is(err, ErrNotFound) {
				rec.Err = fmt.Errorf("recover %q: abort empty upload: %w", r.m.Key, err)
				return rec
			}
		}
		rec.Err = r.removeDir()
		return rec
	}
	if gone || r.m.UploadID == "" {
		if err := r.newUpload(ctx); err != nil {
			rec.Err = err
			return rec
		}
		for i := range pieces {
			pieces[i].stored = nil
		}
	}
	if err := r.complete(ctx, pieces, keep); err != nil {
		rec.Err = err
		return rec
	}
	rec.Size = keep
	rec.Err = r.removeDir()
	return rec
}

// storedParts asks the store which parts it has: the manifest may miss the last one (a crash
// between the upload and the manifest write). gone: the upload no longer exists.
func (r *recoverer) storedParts(ctx context.Context) (map[int]Part, bool, error) {
	if r.m.UploadID == "" {
		return nil, false, nil
	}
	var parts []Part
	err := r.retry.do(ctx, nil, fmt.Sprintf("list parts of %q", r.m.Key), func(ctx context.Context) error {
		var err error
		parts, err = r.store.ListParts(ctx, r.m.Key, r.m.UploadID)
		return err
	})
	if errors.Is(err, ErrNotFound) {
		return nil, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("recover %q: %w", r.m.Key, err)
	}
	byNumber := make(map[int]Part, len(parts))
	for _, p := range parts {
		byNumber[p.Number] = p
	}
	return byNumber, false, nil
}

// pieces lines up the object from part 1 on, each part from disk or the store, and stops
// at the first hole or short part: only the last part may be short, and bytes after a
// hole cannot make a playable file.
func (r *recoverer) pieces(chunks map[int]int64, stored map[int]Part) []piece {
	var out []piece
	for n := 1; ; n++ {
		size, onDisk := chunks[n]
		sp, inStore := stored[n]
		var p piece
		switch {
		case onDisk:
			p = piece{n: n, size: size, onDisk: true}
			// A chunk is uploaded only once it is final, so a stored part of the same
			// size holds the same bytes.
			if inStore && sp.Size == size {
				p.stored = &sp
			}
		case inStore:
			p = piece{n: n, size: sp.Size, stored: &sp}
		default:
			return out
		}
		if p.size == 0 {
			return out // the empty chunk after an exactly full one
		}
		out = append(out, p)
		if p.size < r.m.PartSize {
			if _, more := chunks[n+1]; more || len(stored) > n {
				r.log.Warn("spool has data after a short part; ignoring it", "part", n)
			}
			return out
		}
	}
}

// keep decides how many bytes the object keeps.
func (r *recoverer) keep(pieces []piece, found int64) int64 {
	keep := min(r.m.Synced, found)
	if r.truncate != nil {
		keep = max(0, min(r.truncate(r.m.Key, found), found))
	}
	// Bytes of parts whose chunk is gone are in the store for good.
	var floor, off int64
	for _, p := range pieces {
		off += p.size
		if !p.onDisk {
			floor = off
		}
	}
	if keep < floor {
		r.log.Warn("cannot cut into parts already uploaded; keeping them whole", "wanted", keep, "keeping", floor)
		keep = floor
	}
	return keep
}

func (r *recoverer) newUpload(ctx context.Context) error {
	var id string
	err := r.retry.do(ctx, nil, fmt.Sprintf("create upload of %q", r.m.Key), func(ctx context.Context) error {
		var err error
		id, err = r.store.CreateUpload(ctx, r.m.Key, r.m.ContentType)
		return err
	})
	if err != nil {
		return fmt.Errorf("recover %q: %w", r.m.Key, err)
	}
	r.m.UploadID, r.m.Parts, r.m.Completing = id, []manifestPart{}, false
	return writeManifest(r.dir, r.m)
}

// complete uploads what the store lacks of the first keep bytes, cutting the last chunk
// where keep ends, and completes the upload. The manifest is kept current on the way, so
// a crash during recovery is recovered the same way.
func (r *recoverer) complete(ctx context.Context, pieces []piece, keep int64) error {
	var parts []Part
	var off int64
	r.m.Parts = r.m.Parts[:0]
	for _, p := range pieces {
		if off >= keep {
			break
		}
		want := min(p.size, keep-off)
		part := p.stored
		if want < p.size || part == nil {
			if want < p.size {
				if err := os.Truncate(chunkPath(r.dir, p.n), want); err != nil {
					return fmt.Errorf("recover %q: cut chunk %d: %w", r.m.Key, p.n, err)
				}
			}
			up, err := uploadChunk(ctx, nil, r.retry, r.store, r.m.Key, r.m.UploadID, r.dir, p.n)
			if err != nil {
				return fmt.Errorf("recover %q: %w", r.m.Key, err)
			}
			part = &up
		}
		parts = append(parts, *part)
		// The manifest lists the object's parts as decided so far.
		r.m.Parts = append(r.m.Parts, manifestPart{Number: p.n, ETag: part.ETag, Size: want, Offset: off})
		if err := writeManifest(r.dir, r.m); err != nil {
			return fmt.Errorf("recover %q: %w", r.m.Key, err)
		}
		off += want
	}
	r.m.Completing = true
	if err := writeManifest(r.dir, r.m); err != nil {
		return fmt.Errorf("recover %q: %w", r.m.Key, err)
	}
	if err := completeUpload(ctx, r.retry, r.store, r.m.Key, r.m.UploadID, parts, keep, false); err != nil {
		return fmt.Errorf("recover %q: %w", r.m.Key, err)
	}
	return nil
}

func (r *recoverer) removeDir() error {
	if err := os.RemoveAll(r.dir); err != nil {
		return fmt.Errorf("remove recovered spool %s: %w", r.dir, err)
	}
	return syncDir(filepath.Dir(r.dir))
}

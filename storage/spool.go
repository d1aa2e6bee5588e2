package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Spool errors.
var (
	// ErrSpoolFull: a Write would take the bytes waiting on disk past MaxDisk. Nothing of
	// that write was kept; later writes succeed again once uploads free room.
	ErrSpoolFull = errors.New("storage: spool is full")
	// ErrSpoolClosed: the spool was closed or aborted, or its context ended.
	ErrSpoolClosed = errors.New("storage: spool is closed")
	// ErrSpoolExists: the key already has a spool directory (an unrecovered crash).
	ErrSpoolExists = errors.New("storage: a spool for this key already exists")
)

// SpoolConfig configures OpenSpool.
type SpoolConfig struct {
	// Dir holds the spools, one directory each; RecoverSpools takes the same Dir.
	Dir   string
	Store Store
	// Key and ContentType of the object being written.
	Key, ContentType string
	// PartSize is the size of every part but the last: at least MinPartSize, 8 MiB when 0.
	// It is also how much an upload puts at risk at a time.
	PartSize int64
	// MaxDisk caps the bytes waiting on disk (1 GiB when 0, at least 2 parts): about 20
	// minutes of a 6 Mb/s stream while the store is unreachable.
	MaxDisk int64
	// RetryMin and RetryMax bound the backoff between failed attempts (100 ms and 10 s).
	RetryMin, RetryMax time.Duration
	Logger             *slog.Logger
	// BeforeUpload, when set, is called before the multipart upload is created, and
	// retried like the store's operations until it succeeds: the owner records first that
	// the key is its own (a lease shared by the nodes), so that no upload exists that no
	// owner answers for. It must be idempotent.
	BeforeUpload func(ctx context.Context) error
	// Progress, when set, is told what the store holds: once the upload is created, then
	// after every part the store acknowledged. It runs on the uploader's goroutine and
	// must return at once.
	Progress func(SpoolProgress)
}

// SpoolProgress is what the store holds of a spool's object: the first Uploaded bytes, in
// Parts parts of the multipart upload UploadID.
type SpoolProgress struct {
	UploadID string
	Parts    int
	Uploaded int64
}

// SpoolStats is a snapshot of a spool's progress.
type SpoolStats struct {
	Written       int64 // bytes accepted by Write
	Synced        int64 // bytes made durable by Sync
	Uploaded      int64 // bytes in parts the store acknowledged
	Pending       int64 // bytes on local disk waiting for upload
	PartsUploaded int
	PartsPending  int   // chunk files on disk
	LastError     error // the last failure talking to the store; nil after a success
}

// Spool writes a growing object through local disk to a multipart upload. Write and Sync
// touch only the local disk; a goroutine uploads each full chunk as a part, in order,
// retrying with backoff for as long as the store is away. A chunk goes up only once Sync
// has covered it, so every uploaded byte is durable and ends before a fragment boundary
// the writer synced at; Close sends the rest. Only Stats may be called concurrently with
// the others.
//
// The context given to OpenSpool bounds the spool's life: when it ends without Close, the
// spool stops where it is and leaves its directory for RecoverSpools, exactly as a crash
// would.
type Spool struct {
	cfg   SpoolConfig
	dir   string
	log   *slog.Logger
	retry retrier

	// fileMu orders manifest writes so that a newer snapshot is never overwritten by an
	// older one; it is taken before mu, never while holding it.
	fileMu sync.Mutex

	mu        sync.Mutex
	man       manifest
	cur       *os.File   // chunk being appended to
	curPart   int        // its part number
	curSize   int64      // its size
	unsynced  []*os.File // full chunks written since the last Sync, still to fsync
	dirDirty  bool       // chunk files created since the last Sync
	written   int64
	onDisk    int64 // bytes in chunk files
	chunks    int   // chunk files on disk
	lastErr   error
	fatal     error // the upload is gone: nothing more can be added to it
	closed    bool  // Close or Abort called: no more writes
	dead      bool  // the context ended: the spool is frozen on disk
	wake      chan struct{}
	stop      chan struct{} // closed by Close/Abort: the uploader exits when idle
	cancel    context.CancelFunc
	done      chan struct{} // closed when the uploader has exited
	closeOnce sync.Once
}

// OpenSpool creates the spool directory for cfg.Key and starts uploading in the
// background. It does not wait for the store: if CreateUpload fails (the store is down),
// writes still go to disk and the upload is created when the store is back.
func OpenSpool(ctx context.Context, cfg SpoolConfig) (*Spool, error) {
	if cfg.Store == nil || cfg.Dir == "" {
		return nil, errors.New("open spool: Store and Dir are required")
	}
	if err := ValidateKey(cfg.Key); err != nil {
		return nil, fmt.Errorf("open spool: %w", err)
	}
	if cfg.PartSize == 0 {
		cfg.PartSize = 8 << 20
	}
	if cfg.PartSize < MinPartSize {
		return nil, fmt.Errorf("open spool for %q: part size %d is below the store's minimum %d", cfg.Key, cfg.PartSize, MinPartSize)
	}
	if cfg.MaxDisk == 0 {
		cfg.MaxDisk = 1 << 30
	}
	if cfg.MaxDisk < 2*cfg.PartSize {
		return nil, fmt.Errorf("open spool for %q: MaxDisk %d must hold at least two parts of %d", cfg.Key, cfg.MaxDisk, cfg.PartSize)
	}
	if cfg.ContentType == "" {
		cfg.ContentType = "application/octet-stream"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = 100 * time.Millisecond
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = 10 * time.Second
	}

	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("open spool for %q: %w", cfg.Key, err)
	}
	dir := filepath.Join(cfg.Dir, spoolDirName(cfg.Key))
	if err := os.Mkdir(dir, 0o750); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("open spool for %q in %s: %w", cfg.Key, dir, ErrSpoolExists)
		}
		return nil, fmt.Errorf("open spool for %q: %w", cfg.Key, err)
	}
	s := &Spool{
		cfg:  cfg,
		dir:  dir,
		log:  cfg.Logger.With("key", cfg.Key),
		wake: make(chan struct{}, 1),
		stop: make(chan struct{}),
		done: make(chan struct{}),
		man: manifest{Version: manifestVersion, Key: cfg.Key, ContentType: cfg.ContentType,
			PartSize: cfg.PartSize, Created: time.Now().UTC(), Parts: []manifestPart{}},
	}
	s.retry = retrier{min: cfg.RetryMin, max: cfg.RetryMax, log: s.log,
		failed: s.setErr, ok: func() { s.setErr(nil) }}
	// The manifest comes first: a directory without one holds no data and recovery
	// removes it.
	err := writeManifest(dir, &s.man)
	if err == nil {
		err = syncDir(cfg.Dir)
	}
	if err == nil {
		s.cur, err = os.OpenFile(chunkPath(dir, 1), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	}
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("open spool for %q: %w", cfg.Key, err)
	}
	s.curPart, s.chunks, s.dirDirty = 1, 1, true

	ctx, s.cancel = context.WithCancel(ctx)
	go s.upload(ctx)
	return s, nil
}

// Write appends p to the spool on local disk. It never waits on the store. Past MaxDisk it
// fails with ErrSpoolFull and keeps nothing of p.
func (s *Spool) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usableLocked(); err != nil {
		return 0, err
	}
	if s.onDisk+int64(len(p)) > s.cfg.MaxDisk {
		return 0, fmt.Errorf("write %d bytes to spool of %q with %d pending: %w", len(p), s.cfg.Key, s.onDisk, ErrSpoolFull)
	}
	if s.written+int64(len(p)) > MaxParts*s.cfg.PartSize {
		return 0, fmt.Errorf("spool of %q: object would pass %d parts of %d bytes: %w", s.cfg.Key, MaxParts, s.cfg.PartSize, ErrSpoolFull)
	}
	written := 0
	for written < len(p) {
		room := s.cfg.PartSize - s.curSize
		chunk := p[written:min(len(p), written+int(room))]
		n, err := s.cur.Write(chunk)
		written += n
		s.curSize += int64(n)
		s.written += int64(n)
		s.onDisk += int64(n)
		if err != nil {
			return written, fmt.Errorf("write spool chunk %d of %q: %w", s.curPart, s.cfg.Key, err)
		}
		if s.curSize == s.cfg.PartSize {
			if err := s.nextChunkLocked(); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

// nextChunkLocked starts the chunk of the next part; the full one waits for Sync to fsync it.
func (s *Spool) nextChunkLocked() error {
	f, err := os.OpenFile(chunkPath(s.dir, s.curPart+1), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("start spool chunk %d of %q: %w", s.curPart+1, s.cfg.Key, err)
	}
	s.unsynced = append(s.unsynced, s.cur)
	s.cur, s.curPart, s.curSize = f, s.curPart+1, 0
	s.chunks++
	s.dirDirty = true
	return nil
}

func (s *Spool) usableLocked() error {
	switch {
	case s.fatal != nil:
		return s.fatal
	case s.closed || s.dead:
		return fmt.Errorf("spool of %q: %w", s.cfg.Key, ErrSpoolClosed)
	}
	return nil
}

// Sync makes everything written so far durable on local disk, records it in the manifest
// and lets the uploader send the parts it completes. The recorder calls it after every
// fragment, so that synced bytes end on a fragment boundary.
func (s *Spool) Sync() error {
	s.mu.Lock()
	if err := s.usableLocked(); err != nil {
		s.mu.Unlock()
		return err
	}
	err := s.syncLocked()
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if err := s.saveManifest(); err != nil {
		return err
	}
	s.poke()
	return nil
}

// syncLocked fsyncs the chunks written since the last Sync. It holds mu through the fsyncs:
// the uploader only waits for it between parts, never the other way round.
func (s *Spool) syncLocked() error {
	for len(s.unsynced) > 0 {
		f := s.unsynced[0]
		if err := f.Sync(); err != nil {
			return fmt.Errorf("sync spool of %q: %w", s.cfg.Key, err)
		}
		_ = f.Close()
		s.unsynced = s.unsynced[1:]
	}
	if err := s.cur.Sync(); err != nil {
		return fmt.Errorf("sync spool of %q: %w", s.cfg.Key, err)
	}
	if s.dirDirty {
		if err := syncDir(s.dir); err != nil {
			return err
		}
		s.dirDirty = false
	}
	s.man.Synced = s.written
	return nil
}

// saveManifest writes the current manifest. Taking the snapshot under fileMu keeps
// concurrent writers (Sync and the uploader) from putting an older state back.
func (s *Spool) saveManifest() error {
	s.fileMu.Lock()
	defer s.fileMu.Unlock()
	s.mu.Lock()
	m := s.man
	m.Parts = append([]manifestPart(nil), s.man.Parts...)
	s.mu.Unlock()
	if err := writeManifest(s.dir, &m); err != nil {
		return fmt.Errorf("spool of %q: %w", s.cfg.Key, err)
	}
	return nil
}

func (s *Spool) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Spool) setErr(err error) {
	s.mu.Lock()
	s.lastErr = err
	s.mu.Unlock()
}

// Stats returns a snapshot of the spool's progress.
func (s *Spool) Stats() SpoolStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return SpoolStats{
		Written: s.written, Synced: s.man.Synced, Uploaded: s.man.uploadedBytes(),
		Pending: s.onDisk, PartsUploaded: len(s.man.Parts), PartsPending: s.chunks,
		LastError: s.lastErr,
	}
}

// Close uploads what remains as the last part and completes the upload, retrying until ctx
// ends; then it removes the spool directory. If ctx ends first, the directory stays for
// RecoverSpools and Close returns the error.
func (s *Spool) Close(ctx context.Context) error {
	defer s.cancel()
	defer s.release()
	if err := s.finish(ctx); err != nil {
		return err
	}
	if err := s.drain(ctx); err != nil {
		return err
	}
	return s.remove()
}

// Abort discards the upload and the spool directory.
func (s *Spool) Abort(ctx context.Context) error {
	defer s.cancel()
	defer s.release()
	if err := s.finish(ctx); err != nil && !errors.Is(err, s.fatalErr()) {
		return err
	}
	s.mu.Lock()
	id := s.man.UploadID
	s.mu.Unlock()
	if id != "" {
		err := s.retry.do(ctx, nil, fmt.Sprintf("abort upload of %q", s.cfg.Key), func(ctx context.Context) error {
			return s.cfg.Store.AbortUpload(ctx, s.cfg.Key, id)
		})
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	return s.remove()
}

func (s *Spool) fatalErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fatal
}

// finish stops writes, syncs, and takes over from the uploader: it lets an upload in
// flight end (or cancels it when ctx ends first).
func (s *Spool) finish(ctx context.Context) error {
	s.mu.Lock()
	if s.closed || s.dead {
		s.mu.Unlock()
		return fmt.Errorf("close spool of %q: %w", s.cfg.Key, ErrSpoolClosed)
	}
	err := s.syncLocked()
	s.closed = true
	s.mu.Unlock()
	if err == nil {
		err = s.saveManifest()
	}
	s.closeOnce.Do(func() { close(s.stop) })
	select {
	case <-s.done:
	case <-ctx.Done():
		s.cancel()
		<-s.done
	}
	if err != nil {
		return err
	}
	if ctx.Err() != nil {
		return fmt.Errorf("close spool of %q (left on disk for recovery): %w", s.cfg.Key, ctx.Err())
	}
	return s.fatalErr()
}

// release closes the spool's files; whatever is left on disk stays for recovery.
func (s *Spool) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	closeFilesLocked(s)
}

func closeFilesLocked(s *Spool) {
	for _, f := range s.unsynced {
		_ = f.Close()
	}
	if s.cur != nil {
		_ = s.cur.Close()
	}
	s.unsynced, s.cur = nil, nil
}

// remove deletes the spool directory once the object is complete or aborted.
func (s *Spool) remove() error {
	s.release()
	s.cancel()
	if err := os.RemoveAll(s.dir); err != nil {
		return fmt.Errorf("remove spool of %q: %w", s.cfg.Key, err)
	}
	return syncDir(s.cfg.Dir)
}

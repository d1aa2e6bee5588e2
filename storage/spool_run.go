package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
)

// upload is the spool's background goroutine: it creates the multipart upload, then sends
// every chunk that is full and synced as a part, in order, until Close or Abort takes over
// (stop) or the spool's context ends.
func (s *Spool) upload(ctx context.Context) {
	defer close(s.done)
	defer s.freezeIfDead(ctx)
	if err := s.ensureUpload(ctx, s.stop); err != nil {
		s.stopped(err)
		return
	}
	for {
		n, ok := s.readyPart()
		if !ok {
			select {
			case <-s.wake:
				continue
			case <-s.stop:
				return
			case <-ctx.Done():
				return
			}
		}
		if err := s.sendPart(ctx, s.stop, n); err != nil {
			s.stopped(err)
			return
		}
	}
}

// stopped records why the uploader gave up. Being told to stop, or the context ending, is
// not a failure; anything else is permanent (the upload was aborted behind our back) and
// fails later writes and Close.
func (s *Spool) stopped(err error) {
	if errors.Is(err, errStopped) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return
	}
	s.log.Error("spool cannot upload any more; its data stays on disk", "dir", s.dir, "err", err)
	s.mu.Lock()
	s.fatal = fmt.Errorf("spool of %q: %w", s.cfg.Key, err)
	s.lastErr = err
	s.mu.Unlock()
}

// freezeIfDead leaves the spool as a crash would when its context ended without Close:
// files closed, directory kept for RecoverSpools.
func (s *Spool) freezeIfDead(ctx context.Context) {
	if ctx.Err() == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return // Close gave up on its own context and reports it
	}
	s.dead = true
	closeFilesLocked(s)
	s.log.Warn("spool stopped before Close; left on disk for recovery", "dir", s.dir)
}

// ensureUpload creates the multipart upload if the spool has none yet.
func (s *Spool) ensureUpload(ctx context.Context, stop <-chan struct{}) error {
	s.mu.Lock()
	id := s.man.UploadID
	s.mu.Unlock()
	if id != "" {
		return nil
	}
	if s.cfg.BeforeUpload != nil {
		if err := s.retry.do(ctx, stop, fmt.Sprintf("prepare upload of %q", s.cfg.Key), s.cfg.BeforeUpload); err != nil {
			return err
		}
	}
	err := s.retry.do(ctx, stop, fmt.Sprintf("create upload of %q", s.cfg.Key), func(ctx context.Context) error {
		var err error
		id, err = s.cfg.Store.CreateUpload(ctx, s.cfg.Key, s.cfg.ContentType)
		return err
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.man.UploadID = id
	s.mu.Unlock()
	s.progress()
	if err := s.saveManifest(); err != nil {
		// The upload is not lost for the live spool; after a crash, recovery starts a new
		// one from the chunks and this one is aborted as dangling.
		s.log.Error("record upload id in spool manifest", "err", err)
		s.setErr(err)
	}
	return nil
}

// progress tells the owner what the store holds now.
func (s *Spool) progress() {
	if s.cfg.Progress == nil {
		return
	}
	s.mu.Lock()
	p := SpoolProgress{UploadID: s.man.UploadID, Parts: len(s.man.Parts), Uploaded: s.man.uploadedBytes()}
	s.mu.Unlock()
	s.cfg.Progress(p)
}

// readyPart returns the next part to upload if its chunk is full and synced.
func (s *Spool) readyPart() (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := len(s.man.Parts) + 1
	if next < s.curPart && s.man.Synced >= int64(next)*s.cfg.PartSize {
		return next, true
	}
	return 0, false
}

// sendPart uploads chunk n, records the part in the manifest, then deletes the chunk, in
// that order: a crash at any point leaves the bytes either on disk or listed by the store.
func (s *Spool) sendPart(ctx context.Context, stop <-chan struct{}, n int) error {
	s.mu.Lock()
	id := s.man.UploadID
	s.mu.Unlock()
	part, err := uploadChunk(ctx, stop, s.retry, s.cfg.Store, s.cfg.Key, id, s.dir, n)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.man.Parts = append(s.man.Parts, manifestPart{Number: n, ETag: part.ETag, Size: part.Size,
		Offset: int64(n-1) * s.cfg.PartSize})
	s.mu.Unlock()
	s.progress()
	if err := s.saveManifest(); err != nil {
		s.log.Error("record uploaded part in spool manifest; keeping its chunk", "part", n, "err", err)
		s.setErr(err)
		return nil
	}
	if err := os.Remove(chunkPath(s.dir, n)); err != nil {
		s.log.Warn("remove uploaded spool chunk", "part", n, "err", err)
		return nil
	}
	s.mu.Lock()
	s.onDisk -= part.Size
	s.chunks--
	s.mu.Unlock()
	return nil
}

// drain uploads every chunk left, the last one whatever its size, and completes the upload.
func (s *Spool) drain(ctx context.Context) error {
	s.mu.Lock()
	written, last, lastSize := s.written, s.curPart, s.curSize
	s.mu.Unlock()
	if written == 0 {
		return s.putEmpty(ctx)
	}
	if err := s.ensureUpload(ctx, nil); err != nil {
		return fmt.Errorf("close spool of %q: %w", s.cfg.Key, err)
	}
	for {
		s.mu.Lock()
		next := len(s.man.Parts) + 1
		s.mu.Unlock()
		// The chunk after an exactly full one is empty: it is no part.
		if next > last || next == last && lastSize == 0 {
			break
		}
		if err := s.sendPart(ctx, nil, next); err != nil {
			return fmt.Errorf("close spool of %q: %w", s.cfg.Key, err)
		}
	}
	s.mu.Lock()
	s.man.Completing = true
	id, parts, size := s.man.UploadID, s.man.storeParts(), s.man.uploadedBytes()
	s.mu.Unlock()
	if err := s.saveManifest(); err != nil {
		return err
	}
	if err := completeUpload(ctx, s.retry, s.cfg.Store, s.cfg.Key, id, parts, size, false); err != nil {
		return fmt.Errorf("close spool of %q: %w", s.cfg.Key, err)
	}
	s.log.Info("recording uploaded", "size", size, "parts", len(parts))
	return nil
}

// putEmpty stores an empty object: S3 cannot complete a multipart upload without parts.
func (s *Spool) putEmpty(ctx context.Context) error {
	s.mu.Lock()
	id := s.man.UploadID
	s.mu.Unlock()
	if id != "" {
		if err := s.cfg.Store.AbortUpload(ctx, s.cfg.Key, id); err != nil && !errors.Is(err, ErrNotFound) {
			s.log.Warn("abort unused upload; it will be aborted as dangling later", "err", err)
		}
	}
	return s.retry.do(ctx, nil, fmt.Sprintf("put empty %q", s.cfg.Key), func(ctx context.Context) error {
		return s.cfg.Store.Put(ctx, s.cfg.Key, bytes.NewReader(nil), 0, s.cfg.ContentType)
	})
}

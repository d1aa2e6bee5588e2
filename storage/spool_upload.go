package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
)

// uploadChunk uploads chunk file n of a spool as part n, retrying until it succeeds, ctx
// ends or stop is closed. It does not touch the manifest or delete the chunk: the caller
// records the part first, so a crash in between leaves the bytes on disk for recovery.
func uploadChunk(ctx context.Context, stop <-chan struct{}, r retrier, store Store, key, uploadID, dir string, n int) (Part, error) {
	f, err := os.Open(chunkPath(dir, n))
	if err != nil {
		return Part{}, fmt.Errorf("open chunk %d of %q: %w", n, key, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return Part{}, fmt.Errorf("stat chunk %d of %q: %w", n, key, err)
	}
	var part Part
	err = r.do(ctx, stop, fmt.Sprintf("upload part %d of %q", n, key), func(ctx context.Context) error {
		// A section reader, not the file: it bounds the body to the chunk and has no Close
		// for the HTTP client to call between attempts.
		body := io.NewSectionReader(f, 0, info.Size())
		p, err := store.UploadPart(ctx, key, uploadID, n, body, info.Size())
		part = p
		return err
	})
	if err != nil {
		return Part{}, err
	}
	return part, nil
}

// completeUpload completes an upload of size bytes, retrying until it succeeds or ctx ends.
// When the upload turns out to be gone after an attempt whose answer was lost (or, with
// maybeDone, before the first one, because a crash came right after completing), the
// object itself is checked: if it is there with the right size the work was done.
func completeUpload(ctx context.Context, r retrier, store Store, key, uploadID string, parts []Part, size int64, maybeDone bool) error {
	return r.do(ctx, nil, fmt.Sprintf("complete upload of %q", key), func(ctx context.Context) error {
		err := store.CompleteUpload(ctx, key, uploadID, parts)
		if errors.Is(err, ErrNotFound) && maybeDone {
			obj, herr := store.Head(ctx, key)
			if herr == nil && obj.Size == size {
				return nil
			}
			if herr != nil && !errors.Is(herr, ErrNotFound) {
				return herr // not known yet: try again
			}
		}
		maybeDone = true
		return err
	})
}

package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// Source is one piece of an object Assemble makes: another object of the store, copied
// inside the store, or bytes from here.
type Source struct {
	// Object is the key of an object to copy whole.
	Object string
	// Body and Size are bytes to upload, when Object is "".
	Body io.ReadSeeker
	Size int64
}

// Assembly describes an object for Assemble.
type Assembly struct {
	Store       Store
	Key         string
	ContentType string
	// Sources, in order; every one but the last at least MinPartSize long.
	Sources []Source
	Retry   Retrier
}

// Assemble makes the object Key from its sources in one multipart upload whose parts are
// copies of the source objects (the bytes stay in the store) and uploads of local bytes,
// retrying each step until ctx ends. A lone local source is put in one request. An upload
// left by an attempt that failed is aborted; one left by a crash is dangling, for
// AbortDanglingUploads.
func Assemble(ctx context.Context, a Assembly) error {
	if len(a.Sources) == 0 {
		return fmt.Errorf("assemble %q: no source", a.Key)
	}
	if s := a.Sources[0]; len(a.Sources) == 1 && s.Object == "" {
		return a.Retry.Do(ctx, fmt.Sprintf("put %q", a.Key), func(ctx context.Context) error {
			if _, err := s.Body.Seek(0, io.SeekStart); err != nil {
				return err
			}
			return a.Store.Put(ctx, a.Key, s.Body, s.Size, a.ContentType)
		})
	}
	var id string
	err := a.Retry.Do(ctx, fmt.Sprintf("create upload of %q", a.Key), func(ctx context.Context) error {
		var err error
		id, err = a.Store.CreateUpload(ctx, a.Key, a.ContentType)
		return err
	})
	if err != nil {
		return err
	}
	parts := make([]Part, len(a.Sources))
	for i, s := range a.Sources {
		n := i + 1
		err = a.Retry.Do(ctx, fmt.Sprintf("part %d of %q", n, a.Key), func(ctx context.Context) error {
			var err error
			if s.Object != "" {
				parts[i], err = a.Store.CopyPart(ctx, a.Key, id, n, s.Object)
				return err
			}
			if _, err := s.Body.Seek(0, io.SeekStart); err != nil {
				return err
			}
			parts[i], err = a.Store.UploadPart(ctx, a.Key, id, n, s.Body, s.Size)
			return err
		})
		if err != nil {
			break
		}
	}
	if err == nil {
		var size int64
		for _, p := range parts {
			size += p.Size
		}
		tried := false
		err = a.Retry.Do(ctx, fmt.Sprintf("complete upload of %q", a.Key), func(ctx context.Context) error {
			err := a.Store.CompleteUpload(ctx, a.Key, id, parts)
			if errors.Is(err, ErrNotFound) && tried {
				// An attempt whose answer was lost completed it: the object is there.
				if obj, herr := a.Store.Head(ctx, a.Key); herr == nil && obj.Size == size {
					return nil
				}
			}
			tried = true
			return err
		})
	}
	if err != nil {
		if ctx.Err() == nil {
			if aerr := a.Store.AbortUpload(context.WithoutCancel(ctx), a.Key, id); aerr != nil && !errors.Is(aerr, ErrNotFound) {
				err = errors.Join(err, aerr)
			}
		}
		return fmt.Errorf("assemble %q: %w", a.Key, err)
	}
	return nil
}

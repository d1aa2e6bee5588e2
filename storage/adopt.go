package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
)

// Adoption asks CompleteStored to finish the object of a writer that is gone with its
// disk, from what the store holds.
type Adoption struct {
	Store Store
	Key   string
	// Uploads are the multipart uploads in progress (ListUploads); those of other keys are
	// ignored. UploadID, when one of them, is the one the writer said it used.
	Uploads  []PendingUpload
	UploadID string
	// Keep is told how many bytes from the object's start the store holds, in parts 1..k
	// without a hole, and returns how many of them are worth keeping (the end of the last
	// complete fragment the writer recorded): 0 keeps nothing and aborts the upload.
	Keep   func(found int64) int64
	Logger *slog.Logger
}

// Adopted is what CompleteStored made.
type Adopted struct {
	// Size is the object's size (0: there is none, nothing was worth keeping).
	Size int64
	// Parts is how many parts the object was completed from; 0 with a Size when the object
	// was complete already (an earlier adopter completed it and stopped before the end).
	Parts int
}

// CompleteStored completes a key's object from the parts the store holds, when the writer
// of its multipart upload is gone with the bytes it had not uploaded yet (a lost disk).
// Only whole parts can be kept: the object ends at the end of the first part reaching the
// kept bytes, so it may hold a torn tail after them, less than a part long; readers that
// go by an index of byte ranges never see it. The key's other uploads are aborted: the
// caller owns the key (a lease), and one object is made of one upload.
//
// It is idempotent: run again after a crash halfway, it finds the upload gone and the
// object there, and reports it. Errors are worth retrying later.
func CompleteStored(ctx context.Context, a Adoption) (Adopted, error) {
	if a.Logger == nil {
		a.Logger = slog.New(slog.DiscardHandler)
	}
	log := a.Logger.With("key", a.Key)
	var mine []PendingUpload
	for _, u := range a.Uploads {
		if u.Key == a.Key {
			mine = append(mine, u)
		}
	}
	chosen, parts, err := chooseUpload(ctx, a.Store, a.Key, mine, a.UploadID)
	if err != nil {
		return Adopted{}, err
	}
	var found, size int64
	for _, p := range parts {
		found += p.Size
	}
	keep := int64(0)
	if found > 0 {
		keep = max(0, min(a.Keep(found), found))
	}
	n := 0
	for n < len(parts) && size < keep {
		size += parts[n].Size
		n++
	}
	var done Adopted
	if n > 0 {
		err = a.Store.CompleteUpload(ctx, a.Key, chosen, parts[:n])
		done = Adopted{Size: size, Parts: n}
	}
	if n == 0 || errors.Is(err, ErrNotFound) {
		// Nothing to complete, or completed already: by an attempt whose answer was lost,
		// or by an earlier adopter that stopped before the end.
		done, err = completedObject(ctx, a.Store, a.Key)
	}
	if err != nil {
		return Adopted{}, fmt.Errorf("adopt %q: complete upload %s: %w", a.Key, chosen, err)
	}
	if done.Parts > 0 {
		log.Info("upload completed from the parts in the store", "upload_id", chosen, "found", found,
			"kept", keep, "size", done.Size, "parts", n, "parts_found", len(parts))
	}
	// Whatever was not completed cannot be any more: the key has one object.
	for _, u := range mine {
		if done.Parts > 0 && u.UploadID == chosen {
			continue
		}
		if err := a.Store.AbortUpload(ctx, a.Key, u.UploadID); err != nil {
			return done, fmt.Errorf("adopt %q: abort upload %s: %w", a.Key, u.UploadID, err)
		}
		log.Info("aborted an upload of an adopted object", "upload_id", u.UploadID, "initiated", u.Initiated)
	}
	return done, nil
}

// chooseUpload picks the upload to complete among the key's: the writer's own if listed,
// else the one whose parts hold the most bytes; and returns its parts 1..k without a hole,
// each but the last as long as the first (the writer's part size). chosen is "" when
// there is none.
func chooseUpload(ctx context.Context, st Store, key string, uploads []PendingUpload, writers string) (chosen string, parts []Part, err error) {
	only := ""
	for _, u := range uploads {
		if u.UploadID == writers {
			only = writers
		}
	}
	var best int64 = -1
	for _, u := range uploads {
		if only != "" && u.UploadID != only {
			continue
		}
		ps, err := st.ListParts(ctx, key, u.UploadID)
		if errors.Is(err, ErrNotFound) {
			continue // completed or aborted meanwhile
		}
		if err != nil {
			return "", nil, fmt.Errorf("adopt %q: list parts of %s: %w", key, u.UploadID, err)
		}
		ps = contiguous(ps)
		var size int64
		for _, p := range ps {
			size += p.Size
		}
		if size > best {
			chosen, parts, best = u.UploadID, ps, size
		}
	}
	return chosen, parts, nil
}

// contiguous keeps parts 1..k of a listing ordered by number: no hole, and only the last
// shorter than the first (a writer uploads full parts until its last).
func contiguous(parts []Part) []Part {
	for i, p := range parts {
		if p.Number != i+1 || p.Size == 0 {
			return parts[:i]
		}
		if p.Size < parts[0].Size {
			return parts[:i+1]
		}
	}
	return parts
}

// completedObject reports the key's object if it exists (an earlier adopter completed
// it), or nothing.
func completedObject(ctx context.Context, st Store, key string) (Adopted, error) {
	obj, err := st.Head(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return Adopted{}, nil
	}
	if err != nil {
		return Adopted{}, fmt.Errorf("adopt %q: %w", key, err)
	}
	return Adopted{Size: obj.Size}, nil
}

package local

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"onair/storage"
)

// upload is the record of a multipart upload in progress.
type upload struct {
	Key         string    `json:"key"`
	ContentType string    `json:"contentType,omitempty"`
	Initiated   time.Time `json:"initiated"`
}

const partPrefix = "part-"

func uploadDir(id string) string        { return uploadsDir + "/" + id }
func partName(id string, n int) string  { return fmt.Sprintf("%s/%s%05d", uploadDir(id), partPrefix, n) }
func uploadRecordName(id string) string { return uploadDir(id) + "/upload.json" }

// CreateUpload starts a multipart upload: a folder for its parts.
func (s *Store) CreateUpload(ctx context.Context, key, contentType string) (string, error) {
	if err := storage.ValidateKey(key); err != nil {
		return "", err
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	id := randomID()
	b, _ := json.Marshal(upload{Key: key, ContentType: contentType, Initiated: time.Now().UTC()})
	if err := s.root.Mkdir(uploadDir(id), 0o750); err != nil {
		return "", fmt.Errorf("local create upload %q: %w", key, err)
	}
	if err := s.root.WriteFile(uploadRecordName(id), b, 0o640); err != nil {
		return "", fmt.Errorf("local create upload %q: %w", key, err)
	}
	return id, nil
}

// findUpload returns an upload's record, checking that the id is well formed (it becomes
// a path) and belongs to key, as S3 does.
func (s *Store) findUpload(op, key, id string) (upload, error) {
	var u upload
	if err := storage.ValidateKey(key); err != nil {
		return u, err
	}
	if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" {
		return u, fmt.Errorf("local %s %q: upload %q: %w", op, key, id, storage.ErrNotFound)
	}
	b, err := s.root.ReadFile(uploadRecordName(id))
	if err != nil {
		return u, mapErr(op, key, err)
	}
	if err := json.Unmarshal(b, &u); err != nil {
		return u, fmt.Errorf("local %s %q: upload record: %w", op, key, err)
	}
	if u.Key != key {
		return u, fmt.Errorf("local %s %q: upload %s is for another key: %w", op, key, id, storage.ErrNotFound)
	}
	return u, nil
}

// UploadPart stores part n, replacing an earlier one with the same number at once.
func (s *Store) UploadPart(ctx context.Context, key, uploadID string, n int, body io.ReadSeeker, size int64) (storage.Part, error) {
	return s.uploadPart(ctx, key, uploadID, n, body, size)
}

func (s *Store) uploadPart(ctx context.Context, key, uploadID string, n int, body io.Reader, size int64) (storage.Part, error) {
	if _, err := s.findUpload("upload part", key, uploadID); err != nil {
		return storage.Part{}, err
	}
	if n < 1 || n > storage.MaxParts {
		return storage.Part{}, fmt.Errorf("local upload part %q: part number %d outside 1..10000", key, n)
	}
	tmp, f, err := s.tempFile()
	if err != nil {
		return storage.Part{}, fmt.Errorf("local upload part %d of %q: %w", n, key, err)
	}
	defer s.root.Remove(tmp)
	h := md5.New()
	written, err := io.Copy(io.MultiWriter(f, h), ctxReader{ctx, body})
	if err == nil && written != size {
		err = fmt.Errorf("body has %d bytes, %d announced", written, size)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = s.root.Rename(tmp, partName(uploadID, n))
	}
	if err != nil {
		return storage.Part{}, fmt.Errorf("local upload part %d of %q: %w", n, key, err)
	}
	return storage.Part{Number: n, ETag: hex.EncodeToString(h.Sum(nil)), Size: written}, nil
}

// ListParts returns the parts stored for an upload. ETags are recomputed from the bytes:
// this is for crash recovery, not a hot path.
func (s *Store) ListParts(ctx context.Context, key, uploadID string) ([]storage.Part, error) {
	if _, err := s.findUpload("list parts", key, uploadID); err != nil {
		return nil, err
	}
	entries, err := fs.ReadDir(s.root.FS(), uploadDir(uploadID))
	if err != nil {
		return nil, mapErr("list parts", key, err)
	}
	var parts []storage.Part
	for _, e := range entries {
		n, err := strconv.Atoi(strings.TrimPrefix(e.Name(), partPrefix))
		if !strings.HasPrefix(e.Name(), partPrefix) || err != nil {
			continue
		}
		etag, size, err := s.hashPart(ctx, uploadID, n, io.Discard)
		if err != nil {
			return nil, fmt.Errorf("local list parts %q: %w", key, err)
		}
		parts = append(parts, storage.Part{Number: n, ETag: etag, Size: size})
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i].Number < parts[j].Number })
	return parts, nil
}

// hashPart copies part n to w and returns its ETag and size.
func (s *Store) hashPart(ctx context.Context, uploadID string, n int, w io.Writer) (string, int64, error) {
	f, err := s.root.Open(partName(uploadID, n))
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := md5.New()
	size, err := io.Copy(io.MultiWriter(w, h), ctxReader{ctx, f})
	return hex.EncodeToString(h.Sum(nil)), size, err
}

// CompleteUpload concatenates the parts into a temporary file and renames it into place,
// so readers see the old object or the whole new one. It refuses what S3 refuses: parts
// out of order, unknown or changed parts, and parts but the last under 5 MiB.
func (s *Store) CompleteUpload(ctx context.Context, key, uploadID string, parts []storage.Part) error {
	u, err := s.findUpload("complete upload", key, uploadID)
	if err != nil {
		return err
	}
	if len(parts) == 0 {
		return fmt.Errorf("local complete upload %q: no parts", key)
	}
	tmp, f, err := s.tempFile()
	if err != nil {
		return fmt.Errorf("local complete upload %q: %w", key, err)
	}
	defer s.root.Remove(tmp)
	defer f.Close()
	whole := md5.New()
	for i, p := range parts {
		if i > 0 && p.Number <= parts[i-1].Number {
			return fmt.Errorf("local complete upload %q: parts out of order at %d", key, p.Number)
		}
		etag, size, err := s.hashPart(ctx, uploadID, p.Number, f)
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("local complete upload %q: no part %d", key, p.Number)
		}
		if err != nil {
			return fmt.Errorf("local complete upload %q: part %d: %w", key, p.Number, err)
		}
		if strings.Trim(p.ETag, `"`) != etag {
			return fmt.Errorf("local complete upload %q: part %d changed (etag %s, have %s)", key, p.Number, p.ETag, etag)
		}
		if size < storage.MinPartSize && i < len(parts)-1 {
			return fmt.Errorf("local complete upload %q: part %d has %d bytes: %w", key, p.Number, size, storage.ErrPartTooSmall)
		}
		b, _ := hex.DecodeString(etag)
		whole.Write(b)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("local complete upload %q: %w", key, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("local complete upload %q: %w", key, err)
	}
	// The ETag S3 gives a multipart object: the hash of the parts' hashes, and their count.
	etag := fmt.Sprintf("%s-%d", hex.EncodeToString(whole.Sum(nil)), len(parts))
	if err := s.install(key, tmp, meta{ContentType: u.ContentType, ETag: etag}); err != nil {
		return err
	}
	if err := s.root.RemoveAll(uploadDir(uploadID)); err != nil {
		s.log.Warn("remove completed upload's parts", "key", key, "err", err)
	}
	return nil
}

// AbortUpload discards an upload and its parts; an unknown one is not an error.
func (s *Store) AbortUpload(ctx context.Context, key, uploadID string) error {
	if _, err := s.findUpload("abort upload", key, uploadID); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return nil
		}
		return err
	}
	if err := s.root.RemoveAll(uploadDir(uploadID)); err != nil {
		return fmt.Errorf("local abort upload %q: %w", key, err)
	}
	return nil
}

// ListUploads returns the uploads in progress under prefix.
func (s *Store) ListUploads(ctx context.Context, prefix string) ([]storage.PendingUpload, error) {
	if err := storage.ValidatePrefix(prefix); err != nil {
		return nil, err
	}
	entries, err := fs.ReadDir(s.root.FS(), uploadsDir)
	if err != nil {
		return nil, fmt.Errorf("local list uploads: %w", err)
	}
	var out []storage.PendingUpload
	for _, e := range entries {
		b, err := s.root.ReadFile(uploadRecordName(e.Name()))
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("local list uploads: %w", err)
			}
			continue // completed or aborted meanwhile
		}
		var u upload
		if json.Unmarshal(b, &u) != nil || !strings.HasPrefix(u.Key, prefix) {
			continue
		}
		out = append(out, storage.PendingUpload{Key: u.Key, UploadID: e.Name(), Initiated: u.Initiated})
	}
	return out, nil
}

// CopyPart makes part n of an upload from the whole object src.
func (s *Store) CopyPart(ctx context.Context, key, uploadID string, n int, src string) (storage.Part, error) {
	if err := storage.ValidateKey(src); err != nil {
		return storage.Part{}, err
	}
	f, obj, err := s.open(ctx, src)
	if err != nil {
		return storage.Part{}, fmt.Errorf("local copy part %d of %q: %w", n, key, err)
	}
	defer f.Close()
	return s.UploadPart(ctx, key, uploadID, n, f, obj.Size)
}

// Package storage is what onair needs of object storage, behind one small interface with
// two backends (storage/s3 for AWS S3, MinIO and R2; storage/local for a directory served
// by onair itself), plus the spooled uploader the recorder writes through, crash recovery
// of its spools, and the retention janitor.
package storage

import (
	"context"
	"errors"
	"io"
	"time"
)

// Errors every backend maps its own to, so callers can branch with errors.Is.
var (
	// ErrNotFound: no such object, or no such multipart upload.
	ErrNotFound = errors.New("storage: not found")
	// ErrInvalidRange: a ranged read starting past the end of the object.
	ErrInvalidRange = errors.New("storage: range not satisfiable")
	// ErrUnavailable: the store could not be reached or answered with a server error
	// (network, 5xx, throttling). Retrying later may succeed.
	ErrUnavailable = errors.New("storage: unavailable")
	// ErrInvalidKey: a key or prefix that is not allowed (see ValidateKey).
	ErrInvalidKey = errors.New("storage: invalid key")
	// ErrPartTooSmall: a part other than the last was smaller than MinPartSize.
	ErrPartTooSmall = errors.New("storage: multipart part too small")
)

// MinPartSize is the smallest part S3 accepts for any part but the last.
const MinPartSize = 5 << 20

// MaxParts is the most parts a multipart upload may have (S3's limit).
const MaxParts = 10000

// MaxPresignTTL is the longest validity S3 (SigV4) allows a presigned URL.
const MaxPresignTTL = 7 * 24 * time.Hour

// Store is object storage as onair uses it. Keys are slash-separated and validated with
// ValidateKey; backends that add their own prefix (storage/s3) hide it from callers.
type Store interface {
	// CreateUpload starts a multipart upload and returns its id.
	CreateUpload(ctx context.Context, key, contentType string) (uploadID string, err error)
	// UploadPart uploads part n (1-based) of an upload. Uploading the same number again
	// replaces it, which makes retries safe.
	UploadPart(ctx context.Context, key, uploadID string, n int, body io.ReadSeeker, size int64) (Part, error)
	// CopyPart makes part n (1-based) of an upload from the whole object src, inside the
	// store (S3's UploadPartCopy): the bytes never travel through onair. Copying the same
	// number again replaces the part, which makes retries safe.
	CopyPart(ctx context.Context, key, uploadID string, n int, src string) (Part, error)
	// ListParts returns the parts the store holds for an upload, ordered by number; it is
	// the authority on what was uploaded. ErrNotFound when the upload does not exist.
	ListParts(ctx context.Context, key, uploadID string) ([]Part, error)
	// CompleteUpload assembles the parts, in the given order, into the object.
	CompleteUpload(ctx context.Context, key, uploadID string, parts []Part) error
	// AbortUpload discards an upload and its parts. An unknown upload is not an error
	// (AWS reports one, MinIO does not: both backends say nil).
	AbortUpload(ctx context.Context, key, uploadID string) error
	// ListUploads returns the multipart uploads in progress whose key starts with prefix.
	ListUploads(ctx context.Context, prefix string) ([]PendingUpload, error)

	// Put stores a small object in one request.
	Put(ctx context.Context, key string, body io.ReadSeeker, size int64, contentType string) error
	// Get reads length bytes from offset (length < 0: to the end). A length running past
	// the end is cut to the end; an offset past the end is ErrInvalidRange.
	Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, Object, error)
	// Head returns an object's metadata, or ErrNotFound.
	Head(ctx context.Context, key string) (Object, error)
	// List calls fn for every object whose key starts with prefix, in key order; an error
	// from fn stops the listing and is returned.
	List(ctx context.Context, prefix string, fn func(Object) error) error
	// Delete removes an object; a missing object is not an error.
	Delete(ctx context.Context, key string) error
	// DeletePrefix removes every object whose key starts with prefix (not "").
	DeletePrefix(ctx context.Context, prefix string) error

	// PresignGet returns a URL anyone can GET (with Range) until ttl passes. A non-empty
	// downloadName makes the response an attachment with that file name.
	PresignGet(ctx context.Context, key string, ttl time.Duration, downloadName string) (string, error)
	// PresignPut returns a URL anyone can PUT the object to until ttl passes; the request
	// must carry exactly this Content-Type. The local backend accepts one PUT per URL, and
	// only on URLs it handed out itself.
	PresignPut(ctx context.Context, key string, ttl time.Duration, contentType string) (string, error)
	// PresignPart returns a URL anyone can PUT part n (1-based) of the multipart upload
	// uploadID of key to until ttl passes, with a body of exactly size bytes: browsers
	// upload straight to the store, in parts, and retry a part on the same URL. The store
	// holds the part under that number as UploadPart would have.
	PresignPart(ctx context.Context, key, uploadID string, n int, size int64, ttl time.Duration) (string, error)
}

// Object is an object's metadata. Size is the whole object's, even for a ranged Get.
type Object struct {
	Key          string
	Size         int64
	LastModified time.Time
	ContentType  string
	ETag         string
}

// Part is one uploaded part of a multipart upload.
type Part struct {
	Number int
	ETag   string
	Size   int64
}

// PendingUpload is a multipart upload that was started and neither completed nor aborted.
type PendingUpload struct {
	Key       string
	UploadID  string
	Initiated time.Time
}

package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"onair/storage"
)

// CreateUpload starts a multipart upload.
func (s *Store) CreateUpload(ctx context.Context, key, contentType string) (string, error) {
	full, err := s.full(key)
	if err != nil {
		return "", err
	}
	out, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: aws.String(s.bucket), Key: aws.String(full), ContentType: optional(contentType)})
	if err != nil {
		return "", wrap("create upload", key, err)
	}
	return aws.ToString(out.UploadId), nil
}

// UploadPart uploads part n of an upload.
func (s *Store) UploadPart(ctx context.Context, key, uploadID string, n int, body io.ReadSeeker, size int64) (storage.Part, error) {
	full, err := s.full(key)
	if err != nil {
		return storage.Part{}, err
	}
	if n < 1 || n > storage.MaxParts {
		return storage.Part{}, fmt.Errorf("s3 upload part %q: part number %d outside 1..10000", key, n)
	}
	out, err := s.client.UploadPart(ctx, &s3.UploadPartInput{
		Bucket: aws.String(s.bucket), Key: aws.String(full), UploadId: aws.String(uploadID),
		PartNumber: aws.Int32(int32(n)), Body: body, ContentLength: aws.Int64(size)})
	if err != nil {
		return storage.Part{}, wrap(fmt.Sprintf("upload part %d", n), key, err)
	}
	return storage.Part{Number: n, ETag: aws.ToString(out.ETag), Size: size}, nil
}

// ListParts returns the parts S3 holds for an upload, by number.
func (s *Store) ListParts(ctx context.Context, key, uploadID string) ([]storage.Part, error) {
	full, err := s.full(key)
	if err != nil {
		return nil, err
	}
	var parts []storage.Part
	p := s3.NewListPartsPaginator(s.client, &s3.ListPartsInput{
		Bucket: aws.String(s.bucket), Key: aws.String(full), UploadId: aws.String(uploadID)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, wrap("list parts", key, err)
		}
		for _, part := range page.Parts {
			parts = append(parts, storage.Part{Number: int(aws.ToInt32(part.PartNumber)),
				ETag: aws.ToString(part.ETag), Size: aws.ToInt64(part.Size)})
		}
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i].Number < parts[j].Number })
	return parts, nil
}

// CompleteUpload assembles the parts into the object.
func (s *Store) CompleteUpload(ctx context.Context, key, uploadID string, parts []storage.Part) error {
	full, err := s.full(key)
	if err != nil {
		return err
	}
	completed := make([]types.CompletedPart, len(parts))
	for i, p := range parts {
		completed[i] = types.CompletedPart{ETag: aws.String(p.ETag), PartNumber: aws.Int32(int32(p.Number))}
	}
	_, err = s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: aws.String(s.bucket), Key: aws.String(full), UploadId: aws.String(uploadID),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: completed}})
	return wrap("complete upload", key, err)
}

// AbortUpload discards an upload; an unknown one is not an error.
func (s *Store) AbortUpload(ctx context.Context, key, uploadID string) error {
	full, err := s.full(key)
	if err != nil {
		return err
	}
	_, err = s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket: aws.String(s.bucket), Key: aws.String(full), UploadId: aws.String(uploadID)})
	if errors.Is(classify(err), storage.ErrNotFound) {
		return nil // AWS says NoSuchUpload, MinIO says nothing: either way it is gone
	}
	return wrap("abort upload", key, err)
}

// ListUploads returns the uploads in progress under prefix. It lists the whole bucket and
// filters here: MinIO answers a listing by key prefix with nothing.
func (s *Store) ListUploads(ctx context.Context, prefix string) ([]storage.PendingUpload, error) {
	full, err := s.fullPrefix(prefix)
	if err != nil {
		return nil, err
	}
	var out []storage.PendingUpload
	p := s3.NewListMultipartUploadsPaginator(s.client, &s3.ListMultipartUploadsInput{Bucket: aws.String(s.bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, wrap("list uploads", prefix, err)
		}
		for _, u := range page.Uploads {
			k := aws.ToString(u.Key)
			if !strings.HasPrefix(k, full) {
				continue
			}
			out = append(out, storage.PendingUpload{Key: s.short(k), UploadID: aws.ToString(u.UploadId),
				Initiated: aws.ToTime(u.Initiated)})
		}
	}
	return out, nil
}

// CopyPart makes part n of an upload from the whole object src (UploadPartCopy).
func (s *Store) CopyPart(ctx context.Context, key, uploadID string, n int, src string) (storage.Part, error) {
	full, err := s.full(key)
	if err != nil {
		return storage.Part{}, err
	}
	fullSrc, err := s.full(src)
	if err != nil {
		return storage.Part{}, err
	}
	if n < 1 || n > storage.MaxParts {
		return storage.Part{}, fmt.Errorf("s3 copy part %q: part number %d outside 1..10000", key, n)
	}
	head, err := s.Head(ctx, src)
	if err != nil {
		return storage.Part{}, fmt.Errorf("s3 copy part %d of %q from %q: %w", n, key, src, err)
	}
	out, err := s.client.UploadPartCopy(ctx, &s3.UploadPartCopyInput{
		Bucket: aws.String(s.bucket), Key: aws.String(full), UploadId: aws.String(uploadID),
		PartNumber: aws.Int32(int32(n)), CopySource: aws.String(s.bucket + "/" + escapePath(fullSrc))})
	if err != nil {
		return storage.Part{}, wrap(fmt.Sprintf("copy part %d from %q", n, src), key, err)
	}
	etag := ""
	if out.CopyPartResult != nil {
		etag = aws.ToString(out.CopyPartResult.ETag)
	}
	return storage.Part{Number: n, ETag: etag, Size: head.Size}, nil
}

// escapePath URL-encodes a key for CopySource, segment by segment: S3 wants it encoded,
// with its slashes kept.
func escapePath(key string) string {
	segs := strings.Split(key, "/")
	for i, seg := range segs {
		segs[i] = url.PathEscape(seg)
	}
	return strings.Join(segs, "/")
}

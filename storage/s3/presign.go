package s3

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"onair/storage"
)

// PresignGet returns a SigV4 URL for GET (Range works); a download name is signed in as the
// response's Content-Disposition.
func (s *Store) PresignGet(ctx context.Context, key string, ttl time.Duration, downloadName string) (string, error) {
	full, err := s.full(key)
	if err != nil {
		return "", err
	}
	if err := checkTTL(ttl); err != nil {
		return "", fmt.Errorf("s3 presign get %q: %w", key, err)
	}
	in := &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(full)}
	if downloadName != "" {
		in.ResponseContentDisposition = aws.String(storage.AttachmentDisposition(downloadName))
	}
	req, err := s.presign.PresignGetObject(ctx, in, s3.WithPresignExpires(ttl))
	if err != nil {
		return "", wrap("presign get", key, err)
	}
	return req.URL, nil
}

// PresignPut returns a SigV4 URL for PUT; the request must send exactly contentType.
func (s *Store) PresignPut(ctx context.Context, key string, ttl time.Duration, contentType string) (string, error) {
	full, err := s.full(key)
	if err != nil {
		return "", err
	}
	if err := checkTTL(ttl); err != nil {
		return "", fmt.Errorf("s3 presign put %q: %w", key, err)
	}
	req, err := s.presign.PresignPutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(s.bucket),
		Key: aws.String(full), ContentType: optional(contentType)}, s3.WithPresignExpires(ttl))
	if err != nil {
		return "", wrap("presign put", key, err)
	}
	return req.URL, nil
}

// PresignPart returns a SigV4 URL for UploadPart; the signature covers Content-Length, so
// S3 refuses a body of any other size.
func (s *Store) PresignPart(ctx context.Context, key, uploadID string, n int, size int64, ttl time.Duration) (string, error) {
	full, err := s.full(key)
	if err != nil {
		return "", err
	}
	if err := checkTTL(ttl); err != nil {
		return "", fmt.Errorf("s3 presign part %d of %q: %w", n, key, err)
	}
	if n < 1 || n > storage.MaxParts || size <= 0 {
		return "", fmt.Errorf("s3 presign part %d of %q: part number outside 1..%d or size %d not positive", n, key, storage.MaxParts, size)
	}
	req, err := s.presign.PresignUploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(s.bucket), Key: aws.String(full),
		UploadId: aws.String(uploadID), PartNumber: aws.Int32(int32(n)), ContentLength: aws.Int64(size)}, s3.WithPresignExpires(ttl))
	if err != nil {
		return "", wrap(fmt.Sprintf("presign part %d", n), key, err)
	}
	return req.URL, nil
}

func checkTTL(ttl time.Duration) error {
	if ttl <= 0 || ttl > storage.MaxPresignTTL {
		return fmt.Errorf("validity %s outside (0, %s]", ttl, storage.MaxPresignTTL)
	}
	return nil
}

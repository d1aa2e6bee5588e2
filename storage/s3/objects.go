package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"onair/storage"
)

// Put stores a small object in one request.
func (s *Store) Put(ctx context.Context, key string, body io.ReadSeeker, size int64, contentType string) error {
	full, err := s.full(key)
	if err != nil {
		return err
	}
	_, err = s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(s.bucket), Key: aws.String(full), Body: body,
		ContentLength: aws.Int64(size), ContentType: optional(contentType),
	})
	return wrap("put", key, err)
}

// Get reads a range of an object (length < 0: to the end).
func (s *Store) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, storage.Object, error) {
	full, err := s.full(key)
	if err != nil {
		return nil, storage.Object{}, err
	}
	if offset < 0 {
		return nil, storage.Object{}, fmt.Errorf("s3 get %q: negative offset: %w", key, storage.ErrInvalidRange)
	}
	if length == 0 {
		// S3 has no empty range: answer from the metadata.
		obj, err := s.Head(ctx, key)
		if err != nil {
			return nil, obj, err
		}
		if offset > 0 && offset >= obj.Size {
			return nil, obj, fmt.Errorf("s3 get %q: offset %d past size %d: %w", key, offset, obj.Size, storage.ErrInvalidRange)
		}
		return io.NopCloser(strings.NewReader("")), obj, nil
	}
	in := &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(full)}
	if offset > 0 || length > 0 {
		r := "bytes=" + strconv.FormatInt(offset, 10) + "-"
		if length > 0 {
			r += strconv.FormatInt(offset+length-1, 10)
		}
		in.Range = aws.String(r)
	}
	out, err := s.client.GetObject(ctx, in)
	if err != nil && offset == 0 && errors.Is(classify(err), storage.ErrInvalidRange) {
		// A range from 0 on an empty object: S3 refuses it, but it is simply empty.
		in.Range = nil
		out, err = s.client.GetObject(ctx, in)
	}
	if err != nil {
		return nil, storage.Object{}, wrap("get", key, err)
	}
	obj := storage.Object{Key: key, Size: aws.ToInt64(out.ContentLength), ContentType: aws.ToString(out.ContentType),
		ETag: aws.ToString(out.ETag), LastModified: aws.ToTime(out.LastModified)}
	if total, ok := rangeTotal(aws.ToString(out.ContentRange)); ok {
		obj.Size = total
	}
	return out.Body, obj, nil
}

// rangeTotal reads the object's size from "bytes 0-9/1234".
func rangeTotal(contentRange string) (int64, bool) {
	i := strings.LastIndexByte(contentRange, '/')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(contentRange[i+1:], 10, 64)
	return n, err == nil
}

// Head returns an object's metadata, or storage.ErrNotFound.
func (s *Store) Head(ctx context.Context, key string) (storage.Object, error) {
	full, err := s.full(key)
	if err != nil {
		return storage.Object{}, err
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(full)})
	if err != nil {
		return storage.Object{}, wrap("head", key, err)
	}
	return storage.Object{Key: key, Size: aws.ToInt64(out.ContentLength), ContentType: aws.ToString(out.ContentType),
		ETag: aws.ToString(out.ETag), LastModified: aws.ToTime(out.LastModified)}, nil
}

// List calls fn for every object under prefix, in key order. ContentType is not filled:
// S3 listings do not carry it.
func (s *Store) List(ctx context.Context, prefix string, fn func(storage.Object) error) error {
	full, err := s.fullPrefix(prefix)
	if err != nil {
		return err
	}
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: aws.String(s.bucket), Prefix: aws.String(full)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return wrap("list", prefix, err)
		}
		for _, o := range page.Contents {
			err := fn(storage.Object{Key: s.short(aws.ToString(o.Key)), Size: aws.ToInt64(o.Size),
				ETag: aws.ToString(o.ETag), LastModified: aws.ToTime(o.LastModified)})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// Delete removes an object; a missing one is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	full, err := s.full(key)
	if err != nil {
		return err
	}
	_, err = s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(full)})
	if err != nil && !errors.Is(classify(err), storage.ErrNotFound) {
		return wrap("delete", key, err)
	}
	return nil
}

// DeletePrefix removes every object under prefix, a thousand per request.
func (s *Store) DeletePrefix(ctx context.Context, prefix string) error {
	if prefix == "" {
		return fmt.Errorf("s3 delete prefix: refusing to delete everything: %w", storage.ErrInvalidKey)
	}
	var batch []types.ObjectIdentifier
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		out, err := s.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(s.bucket),
			Delete: &types.Delete{Objects: batch, Quiet: aws.Bool(true)}})
		if err != nil {
			return wrap("delete prefix", prefix, err)
		}
		if len(out.Errors) > 0 {
			e := out.Errors[0]
			return fmt.Errorf("s3 delete prefix %q: %d objects not deleted, first %q: %s: %s", prefix,
				len(out.Errors), s.short(aws.ToString(e.Key)), aws.ToString(e.Code), aws.ToString(e.Message))
		}
		batch = batch[:0]
		return nil
	}
	err := s.List(ctx, prefix, func(o storage.Object) error {
		batch = append(batch, types.ObjectIdentifier{Key: aws.String(s.prefix + o.Key)})
		if len(batch) == 1000 {
			return flush()
		}
		return nil
	})
	if err != nil {
		return err
	}
	return flush()
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}

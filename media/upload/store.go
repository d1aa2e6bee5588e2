package upload

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/av1"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	mp4codecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"onair/storage"
)

// dimensions is the video's size from its codec configuration (0, 0 when unreadable).
func dimensions(t *Track) (int, int) {
	switch c := t.Codec.(type) {
	case *mp4codecs.H264:
		var s h264.SPS
		if s.Unmarshal(c.SPS) == nil {
			return s.Width(), s.Height()
		}
	case *mp4codecs.H265:
		var s h265.SPS
		if s.Unmarshal(c.SPS) == nil {
			return s.Width(), s.Height()
		}
	case *mp4codecs.AV1:
		var s av1.SequenceHeader
		if s.Unmarshal(c.SequenceHeader) == nil {
			return s.Width(), s.Height()
		}
	}
	return 0, 0
}

// StoredFile is an object of a store as a Source.
type StoredFile struct {
	Store storage.Store
	Key   string
	Len   int64
}

// Size implements Source.
func (f StoredFile) Size() int64 { return f.Len }

// ReadAt implements Source with one ranged Get.
func (f StoredFile) ReadAt(ctx context.Context, off, n int64) ([]byte, error) {
	rc, _, err := f.Store.Get(ctx, f.Key, off, n)
	if err != nil {
		return nil, fmt.Errorf("read %d bytes at %d of %s: %w", n, off, f.Key, err)
	}
	defer rc.Close()
	b := make([]byte, n)
	if _, err := io.ReadFull(rc, b); err != nil {
		return nil, fmt.Errorf("read %d bytes at %d of %s: %w", n, off, f.Key, err)
	}
	return b, nil
}

// PartSize is the size of the parts MultipartSink uploads (the last may be smaller).
const PartSize = 8 << 20

// MultipartSink writes an object through a multipart upload, a part at a time, so that
// it holds at most one part in memory.
type MultipartSink struct {
	Store    storage.Store
	Key      string
	UploadID string
	buf      []byte
	parts    []storage.Part
}

// Write implements Sink.
func (s *MultipartSink) Write(ctx context.Context, p []byte) error {
	for len(p) > 0 {
		n := min(len(p), PartSize-len(s.buf))
		s.buf = append(s.buf, p[:n]...)
		p = p[n:]
		if len(s.buf) == PartSize {
			if err := s.flush(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *MultipartSink) flush(ctx context.Context) error {
	if len(s.buf) == 0 {
		return nil
	}
	n := len(s.parts) + 1
	part, err := s.Store.UploadPart(ctx, s.Key, s.UploadID, n, bytes.NewReader(s.buf), int64(len(s.buf)))
	if err != nil {
		return fmt.Errorf("upload part %d of %s: %w", n, s.Key, err)
	}
	s.parts = append(s.parts, part)
	s.buf = s.buf[:0]
	return nil
}

// Close uploads what is left and completes the object.
func (s *MultipartSink) Close(ctx context.Context) error {
	if err := s.flush(ctx); err != nil {
		return err
	}
	if err := s.Store.CompleteUpload(ctx, s.Key, s.UploadID, s.parts); err != nil {
		return fmt.Errorf("complete %s: %w", s.Key, err)
	}
	return nil
}

package oldkit

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// FLV tag types (the low five bits of a tag header's first byte).
const (
	FlvTagAudio  = 8
	FlvTagVideo  = 9
	FlvTagScript = 18
)

// flvTag is one tag of an FLV file: its type, its timestamp in milliseconds and its body
// (what an RTMP audio, video or data message carries).
type FlvTag struct {
	Type      byte
	Timestamp uint32
	Data      []byte
}

// flvReader reads the tags of an FLV file in order.
type flvReader struct {
	r       *bufio.Reader
	started bool
}

func newFLVReader(r io.Reader) *flvReader {
	return &flvReader{r: bufio.NewReaderSize(r, 64<<10)}
}

// readHeader checks the 9-byte file header and skips to the first tag's PreviousTagSize.
func (f *flvReader) readHeader() error {
	var h [9]byte
	if _, err := io.ReadFull(f.r, h[:]); err != nil {
		return fmt.Errorf("flv: read file header: %w", err)
	}
	if string(h[:3]) != "FLV" {
		return errors.New("flv: not an FLV file (signature is not \"FLV\")")
	}
	if h[3] != 1 {
		return fmt.Errorf("flv: unsupported version %d", h[3])
	}
	offset := binary.BigEndian.Uint32(h[5:9])
	if offset < 9 {
		return fmt.Errorf("flv: header size %d is shorter than the header", offset)
	}
	if _, err := f.r.Discard(int(offset - 9)); err != nil {
		return fmt.Errorf("flv: skip extended header: %w", err)
	}
	return nil
}

// Next returns the next tag, or io.EOF after the last one.
func (f *flvReader) Next() (FlvTag, error) {
	if !f.started {
		if err := f.readHeader(); err != nil {
			return FlvTag{}, err
		}
		f.started = true
	}
	// PreviousTagSize of the tag before (0 for the first).
	var prev [4]byte
	if _, err := io.ReadFull(f.r, prev[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return FlvTag{}, io.EOF
		}
		return FlvTag{}, fmt.Errorf("flv: read previous tag size: %w", err)
	}
	var h [11]byte
	n, err := io.ReadFull(f.r, h[:])
	if n == 0 && errors.Is(err, io.EOF) {
		return FlvTag{}, io.EOF // the file ends with the last PreviousTagSize
	}
	if err != nil {
		return FlvTag{}, fmt.Errorf("flv: read tag header: %w", err)
	}
	if h[0]&0x20 != 0 {
		return FlvTag{}, errors.New("flv: encrypted tags are not supported")
	}
	size := uint32(h[1])<<16 | uint32(h[2])<<8 | uint32(h[3])
	ts := uint32(h[7])<<24 | uint32(h[4])<<16 | uint32(h[5])<<8 | uint32(h[6])
	data := make([]byte, size)
	if _, err := io.ReadFull(f.r, data); err != nil {
		return FlvTag{}, fmt.Errorf("flv: read %d-byte tag body at %d ms: %w", size, ts, err)
	}
	return FlvTag{Type: h[0] & 0x1f, Timestamp: ts, Data: data}, nil
}

// readFLVTags reads a whole FLV file into memory (a minute of 720p is about 20 MB), so
// that publishers send from memory and disk reads never disturb their timing.
func ReadFLVTags(r io.Reader) ([]FlvTag, error) {
	fr := newFLVReader(r)
	var tags []FlvTag
	for {
		t, err := fr.Next()
		if errors.Is(err, io.EOF) {
			if len(tags) == 0 {
				return nil, errors.New("flv: the file has no tags")
			}
			return tags, nil
		}
		if err != nil {
			return nil, err
		}
		tags = append(tags, t)
	}
}

// Package upload turns an uploaded MP4 or MOV file into a recording as onair writes them:
// it checks what the file holds (H.264, HEVC or AV1 video, AAC or Opus audio), then remuxes
// its samples, without decoding them, into the fragmented MP4 of a recording (an init
// segment, then per segment its video fragment and its audio fragment) with the segment
// index replay needs. The file is read by byte ranges, a segment at a time, so a large
// upload never sits in memory whole.
package upload

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"

	amp4 "github.com/abema/go-mp4"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	mcfmp4 "github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	mp4codecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
)

// Source is the uploaded file, read by byte ranges.
type Source interface {
	// ReadAt returns n bytes from offset off.
	ReadAt(ctx context.Context, off, n int64) ([]byte, error)
	// Size is the file's length.
	Size() int64
}

// RefusedError says why a file is not a video onair takes; the message is for its
// uploader.
type RefusedError struct{ Reason string }

func (e *RefusedError) Error() string { return "refused: " + e.Reason }

func refuse(format string, a ...any) error { return &RefusedError{Reason: fmt.Sprintf(format, a...)} }

// IsRefused reports whether err is a RefusedError and returns its reason.
func IsRefused(err error) (string, bool) {
	var r *RefusedError
	if errors.As(err, &r) {
		return r.Reason, true
	}
	return "", false
}

// Bounds on what a file may hold, so that a hostile one cannot make onair allocate much.
const (
	maxMoovSize   = 64 << 20
	maxSamples    = 20_000_000
	maxTopBoxes   = 10_000
	maxSampleSize = 64 << 20
)

// Movie is what Probe found in a file: the tracks onair keeps.
type Movie struct {
	Video *Track
	Audio *Track // nil without audio
}

// Track is one track of the file, with its samples in decode order.
type Track struct {
	ID        int
	Timescale uint32
	Codec     mp4codecs.Codec
	// lengthSize is the byte length of H.264 and HEVC NAL unit prefixes in the file
	// (recordings use 4).
	lengthSize int
	Samples    []Sample
}

// Sample is where a sample lies in the file and when it plays, in its track's timescale.
type Sample struct {
	Offset    int64
	Size      uint32
	DTS       int64
	PTSOffset int32
	Duration  uint32
	Sync      bool
}

// CodecName is the track's codec as broadcasts name it.
func (t *Track) CodecName() string {
	switch t.Codec.(type) {
	case *mp4codecs.H264:
		return "h264"
	case *mp4codecs.H265:
		return "h265"
	case *mp4codecs.AV1:
		return "av1"
	case *mp4codecs.MPEG4Audio:
		return "aac"
	case *mp4codecs.Opus:
		return "opus"
	}
	return fmt.Sprintf("%T", t.Codec)
}

// box is a box's place in the file.
type box struct {
	typ       string
	off, size int64 // size includes the header
	hdr       int64
}

// topBoxes lists the file's top-level boxes, refusing what is no ISO base media file.
func topBoxes(ctx context.Context, src Source) ([]box, error) {
	var out []box
	size := src.Size()
	for off := int64(0); off < size; {
		if len(out) == maxTopBoxes {
			return nil, refuse("the file has more than %d top-level boxes", maxTopBoxes)
		}
		b, err := readBoxHeader(ctx, src, off, size)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
		off += b.size
	}
	return out, nil
}

// knownTop are the boxes an MP4 or MOV file may begin with.
var knownTop = map[string]bool{"ftyp": true, "moov": true, "mdat": true, "free": true, "wide": true, "skip": true, "pnot": true}

func readBoxHeader(ctx context.Context, src Source, off, fileSize int64) (box, error) {
	n := min(16, fileSize-off)
	if n < 8 {
		return box{}, refuse("the file ends inside a box header at byte %d", off)
	}
	h, err := src.ReadAt(ctx, off, n)
	if err != nil {
		return box{}, err
	}
	b := box{typ: string(h[4:8]), off: off, size: int64(binary.BigEndian.Uint32(h)), hdr: 8}
	if off == 0 && !knownTop[b.typ] {
		return box{}, refuse("not an MP4 or MOV file")
	}
	switch b.size {
	case 0:
		b.size = fileSize - off
	case 1:
		if n < 16 {
			return box{}, refuse("the file ends inside a box header at byte %d", off)
		}
		b.size, b.hdr = int64(binary.BigEndian.Uint64(h[8:16])), 16
	}
	for _, c := range []byte(b.typ) {
		if c < 0x20 || c > 0x7e {
			return box{}, refuse("not an MP4 or MOV file (box at byte %d)", off)
		}
	}
	if b.size < b.hdr || b.size > fileSize-off {
		return box{}, refuse("box %q at byte %d runs past the end of the file: the upload is truncated or not an MP4", b.typ, off)
	}
	return b, nil
}

// Probe reads the file's structure and checks that onair can serve it.
func Probe(ctx context.Context, src Source) (*Movie, error) {
	boxes, err := topBoxes(ctx, src)
	if err != nil {
		return nil, err
	}
	var moov *box
	for i := range boxes {
		switch boxes[i].typ {
		case "moov":
			moov = &boxes[i]
		case "moof":
			return nil, refuse("fragmented MP4 files are not supported: export a regular MP4")
		}
	}
	if moov == nil {
		return nil, refuse("the file has no movie header (moov): the upload is truncated or not an MP4")
	}
	if moov.size > maxMoovSize {
		return nil, refuse("the movie header is %d bytes, more than %d", moov.size, maxMoovSize)
	}
	raw, err := src.ReadAt(ctx, moov.off, moov.size)
	if err != nil {
		return nil, err
	}
	return parseMoov(raw, src.Size())
}

// parseMoov reads the tracks' sample tables and codecs: the first video track and the
// first audio track are kept, and must be in codecs onair serves.
func parseMoov(moov []byte, fileSize int64) (*Movie, error) {
	tables, movieScale, err := readTables(moov)
	if err != nil {
		return nil, refuse("the movie header cannot be read: %v", err)
	}
	ids := make([]int, 0, len(tables))
	for id := range tables {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var m Movie
	for _, id := range ids {
		tb := tables[id]
		var slot **Track
		switch {
		case tb.handler == "vide" && m.Video == nil:
			if !videoFormats[tb.format] {
				return nil, refuse("the video is %s: onair takes H.264, HEVC or AV1 video", formatLabel(tb.format))
			}
			slot = &m.Video
		case tb.handler == "soun" && m.Audio == nil:
			if tb.format != "mp4a" && tb.format != "Opus" {
				return nil, refuse("the audio is %s: onair takes AAC or Opus audio", formatLabel(tb.format))
			}
			slot = &m.Audio
		default:
			continue
		}
		codec, scale, err := trackCodec(tb)
		if err != nil {
			return nil, refuse("track %d (%s): the codec configuration cannot be read: %v", id, formatLabel(tb.format), err)
		}
		t := &Track{ID: id, Timescale: scale, Codec: codec, lengthSize: 4}
		if _, ok := codec.(*mp4codecs.AV1); !ok && tb.handler == "vide" {
			t.lengthSize = tb.lengthSize
		}
		if t.Samples, err = tb.samples(fileSize); err != nil {
			return nil, refuse("track %d: %v", id, err)
		}
		if len(t.Samples) == 0 {
			return nil, refuse("track %d has no samples", id)
		}
		tb.shift(t, movieScale)
		*slot = t
	}
	if m.Video == nil {
		return nil, refuse("the file has no video track")
	}
	alignStarts(&m)
	return &m, nil
}

var videoFormats = map[string]bool{"avc1": true, "avc3": true, "hvc1": true, "hev1": true, "av01": true}

// formatLabel names a sample entry's format for an uploader.
func formatLabel(f string) string {
	switch f {
	case "mp4a":
		return "AAC"
	case ".mp3", "mp3 ":
		return "MP3"
	case "jpeg", "mjpa", "mjpb":
		return "Motion JPEG"
	case "mp4v":
		return "MPEG-4 Part 2"
	case "vp09":
		return "VP9"
	case "ac-3":
		return "AC-3"
	case "sowt", "twos", "lpcm", "in24", "in32", "fl32":
		return "PCM"
	case "apcn", "apch", "apcs", "apco", "ap4h":
		return "ProRes"
	}
	return strconv.Quote(f)
}

// trackCodec reads a track's codec configuration with mediacommon's init reader, on an
// init segment of that track alone. QuickTime's AAC sample entries (version 1, the
// configuration inside a wave box) are beyond that reader: their esds is read directly.
func trackCodec(tb *table) (mp4codecs.Codec, uint32, error) {
	var init mcfmp4.Init
	err := init.Unmarshal(bytes.NewReader(initOf(tb.trak)))
	if err == nil && len(init.Tracks) == 1 {
		return init.Tracks[0].Codec, init.Tracks[0].TimeScale, nil
	}
	if tb.format == "mp4a" {
		if asc, ok := esdsConfig(tb.stsd); ok {
			var conf mpeg4audio.AudioSpecificConfig
			if err := conf.Unmarshal(asc); err != nil {
				return nil, 0, fmt.Errorf("AAC configuration: %w", err)
			}
			return &mp4codecs.MPEG4Audio{Config: conf}, tb.timescale, nil
		}
	}
	if err == nil {
		err = errors.New("codec information not found")
	}
	return nil, 0, err
}

// esdsConfig finds the esds box in a sample description and returns its decoder-specific
// information (an AAC AudioSpecificConfig).
func esdsConfig(stsd []byte) ([]byte, bool) {
	i := bytes.Index(stsd, []byte("esds"))
	if i < 4 {
		return nil, false
	}
	size := int(binary.BigEndian.Uint32(stsd[i-4:]))
	if size < 12 || i-4+size > len(stsd) {
		return nil, false
	}
	var esds amp4.Esds
	payload := stsd[i+4 : i-4+size]
	if _, err := amp4.Unmarshal(bytes.NewReader(payload), uint64(len(payload)), &esds, amp4.Context{}); err != nil {
		return nil, false
	}
	for _, d := range esds.Descriptors {
		if d.Tag == amp4.DecSpecificInfoTag {
			return d.Data, true
		}
	}
	return nil, false
}

// initOf is an init segment of one track: an ftyp, then a moov with an empty mvhd and
// the trak (mediacommon's reader takes nothing else there).
func initOf(trak []byte) []byte {
	mvhd := make([]byte, 108)
	binary.BigEndian.PutUint32(mvhd, 108)
	copy(mvhd[4:], "mvhd")
	body := append(mvhd, trak...)
	out := []byte{0, 0, 0, 16, 'f', 't', 'y', 'p', 'i', 's', 'o', 'm', 0, 0, 2, 0}
	out = binary.BigEndian.AppendUint32(out, uint32(8+len(body)))
	out = append(out, "moov"...)
	return append(out, body...)
}

package flv

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"onair/media"
)

// vp9Key and vp9Inter are the uncompressed headers of a profile 0 VP9 key frame of
// 320x240 and of an inter frame: what the demuxer reads of a frame.
var (
	vp9Key   = []byte{0x82, 0x49, 0x83, 0x42, 0x00, 0x13, 0xf0, 0x0e, 0xf0, 0, 0, 0}
	vp9Inter = []byte{0x86, 0x00, 0x00, 0x00}
)

// opusHead is an OpusHead of the given channel count and mapping family.
func opusHead(channels, family byte) []byte {
	return append([]byte("OpusHead"), 1, channels, 0x38, 0x01, 0x80, 0xbb, 0, 0, 0, 0, family)
}

// flacStreamInfo is a STREAMINFO block of 48 kHz stereo 16-bit FLAC, 4608-sample blocks.
var flacStreamInfo = []byte{
	0x12, 0x00, 0x12, 0x00, 0, 0, 0, 0, 0, 0,
	0x0b, 0xb8, 0x02, 0xf0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
}

func TestParseVP9Config(t *testing.T) {
	for _, tt := range []struct {
		name    string
		in      []byte
		want    media.VP9Config
		wantErr string
	}{
		{name: "ffmpeg, with full box header", in: []byte{1, 0, 0, 0, 0, 31, 0x82, 1, 1, 1, 0, 0},
			want: media.VP9Config{Profile: 0, Level: 31, BitDepth: 8, ChromaSubsampling: 1}},
		{name: "record alone, profile 2 10-bit full range", in: []byte{2, 41, 0xa3, 9, 16, 9, 0, 0},
			want: media.VP9Config{Profile: 2, Level: 41, BitDepth: 10, ChromaSubsampling: 1, FullRange: true}},
		{name: "truncated", in: []byte{1, 0, 0, 0, 0, 31}, wantErr: "6 bytes, need at least 8"},
		{name: "bad bit depth", in: []byte{0, 31, 0x92, 1, 1, 1, 0, 0}, wantErr: "bit depth 9"},
		{name: "bad profile", in: []byte{4, 31, 0x82, 1, 1, 1, 0, 0}, wantErr: "profile 4"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseVP9Config(tt.in)
			if checkErr(t, err, tt.wantErr, nil) && got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseOpusHead(t *testing.T) {
	for _, tt := range []struct {
		name    string
		in      []byte
		want    int
		wantErr string
		wantIs  error
	}{
		{name: "stereo", in: opusHead(2, 0), want: 2},
		{name: "mono", in: opusHead(1, 0), want: 1},
		{name: "5.1 refused", in: opusHead(6, 1), wantErr: "6 channels with mapping family 1", wantIs: ErrUnsupportedCodec},
		{name: "not an OpusHead", in: []byte("OpusTags0123456789012"), wantErr: "not an OpusHead"},
		{name: "truncated", in: opusHead(2, 0)[:18], wantErr: "not an OpusHead"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseOpusHead(tt.in)
			if checkErr(t, err, tt.wantErr, tt.wantIs) && got != tt.want {
				t.Fatalf("got %d channels, want %d", got, tt.want)
			}
		})
	}
}

func TestParseFLACConfig(t *testing.T) {
	blockHeader := []byte{0x80, 0, 0, 34}
	for _, tt := range []struct {
		name    string
		in      []byte
		wantErr string
	}{
		{name: "streaminfo alone", in: flacStreamInfo},
		{name: "metadata block", in: cat(blockHeader, flacStreamInfo)},
		{name: "fLaC marker and block", in: cat([]byte("fLaC"), blockHeader, flacStreamInfo)},
		{name: "fLaC marker, block and more blocks", in: cat([]byte("fLaC"), []byte{0, 0, 0, 34}, flacStreamInfo, []byte{0x84, 0, 0, 1, 0})},
		{name: "truncated", in: flacStreamInfo[:30], wantErr: "need a 34-byte STREAMINFO"},
		{name: "zero sample rate", in: make([]byte, 34), wantErr: "sample rate 0"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			si, block, err := ParseFLACConfig(tt.in)
			if !checkErr(t, err, tt.wantErr, nil) {
				return
			}
			if si.SampleRate != 48000 || si.ChannelCount != 2 || si.BitDepth != 16 || len(block) != 34 {
				t.Fatalf("got %+v (%d-byte block), want 48 kHz stereo 16-bit", si, len(block))
			}
		})
	}
}

// A VP9 + Opus publish, as the Enhanced RTMP test publisher sends it, yields both tracks
// and their access units; FLAC and legacy HEVC id 12 configure their tracks.
func TestDemuxerVP9Opus(t *testing.T) {
	var d Demuxer
	if _, err := d.Video(0, exTag(1, exSequenceStart, "vp09", []byte{1, 0, 0, 0, 0, 21, 0x82, 1, 1, 1, 0, 0}), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Video(0, exTag(2, exCodedFramesX, "vp09", vp9Inter), time.Time{}); !errors.Is(err, ErrNotConfigured) {
		t.Fatalf("inter frame before the first key frame: %v, want ErrNotConfigured", err)
	}
	au, err := d.Video(0, exTag(1, exCodedFramesX, "vp09", vp9Key), time.Time{})
	if err != nil || au == nil || !au.Key || !au.Video || len(au.Payload) != 1 {
		t.Fatalf("key frame: %+v, %v", au, err)
	}
	v := d.Tracks().Video
	if v.Codec != media.CodecVP9 || v.Width != 320 || v.Height != 240 || *v.VP9 != (media.VP9Config{Level: 21, BitDepth: 8, ChromaSubsampling: 1}) {
		t.Fatalf("video track %+v (vp9 %+v)", v, v.VP9)
	}
	gen := d.Generation()
	au, err = d.Video(33, exTag(2, exCodedFrames, "vp09", vp9Inter), time.Time{})
	if err != nil || au.Key || au.DTS != 33*time.Millisecond || au.PTS != au.DTS {
		t.Fatalf("inter frame: %+v, %v", au, err)
	}
	if _, err := d.Video(66, exTag(1, exCodedFrames, "vp09", vp9Key), time.Time{}); err != nil || d.Generation() != gen {
		t.Fatalf("same key frame again: %v, generation %d -> %d", err, gen, d.Generation())
	}

	if _, err := d.Audio(0, exAudio(exAudioSequenceStart, "Opus", opusHead(2, 0)), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if a := d.Tracks().Audio; a.Codec != media.CodecOpus || a.Channels != 2 || a.SampleRate != 48000 {
		t.Fatalf("audio track %+v", a)
	}
	au, err = d.Audio(80, exAudio(exAudioCodedFrames, "Opus", []byte{0xfc, 1, 2}), time.Time{})
	if err != nil || au.Video || !au.Key || au.DTS != 80*time.Millisecond || len(au.Payload) != 1 {
		t.Fatalf("opus frame: %+v, %v", au, err)
	}

	if _, err := d.Audio(0, exAudio(exAudioSequenceStart, "fLaC", cat([]byte("fLaC"), []byte{0x80, 0, 0, 34}, flacStreamInfo)), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if a := d.Tracks().Audio; a.Codec != media.CodecFLAC || a.Channels != 2 || a.SampleRate != 48000 || len(a.FLAC) != 34 {
		t.Fatalf("flac track %+v", a)
	}
	if _, err := d.Audio(0, exAudio(exAudioSequenceStart, "ac-3", nil), time.Time{}); !errors.Is(err, ErrUnsupportedCodec) {
		t.Fatalf("ac-3: %v, want ErrUnsupportedCodec", err)
	}
}

// HEVC under the legacy FLV codec id 12 (laid out like AVC) gives the same track and
// access units as over Enhanced RTMP.
func TestDemuxerLegacyHEVC(t *testing.T) {
	f := loadFixtures(t)
	legacy := func(frameType, packetType byte, cts int32, data []byte) []byte {
		b := avcTag(frameType, packetType, cts, data)
		b[0] = frameType<<4 | 12
		return b
	}
	var d Demuxer
	feed(t, &d, message{video: true, body: legacy(1, 0, 0, f.hevcRecord)})
	if v := d.Tracks().Video; v == nil || v.Codec != media.CodecH265 || v.Width != 160 || v.Height != 120 {
		t.Fatalf("video track %+v", v)
	}
	au := feed(t, &d, message{video: true, timestamp: 1000, body: legacy(1, 1, 33, lengthPrefixed(f.h265AUs[0]...))})
	if got := nalTypes(au, true); !au.Key || au.PTS-au.DTS != 33*time.Millisecond || !bytes.Equal(got, []uint8{32, 33, 34, 39, 20}) {
		t.Fatalf("key frame: key %v, cts %v, nal types %v", au.Key, au.PTS-au.DTS, got)
	}
}

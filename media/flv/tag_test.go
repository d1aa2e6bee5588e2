package flv

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"onair/media"
)

// checkErr fails unless err matches: nil when wantErr is "", else containing wantErr and,
// if wantIs is set, wrapping it.
func checkErr(t *testing.T, err error, wantErr string, wantIs error) bool {
	t.Helper()
	if wantErr == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return true
	}
	if err == nil {
		t.Fatalf("want error containing %q, got none", wantErr)
	}
	if !strings.Contains(err.Error(), wantErr) {
		t.Fatalf("error %q does not contain %q", err, wantErr)
	}
	if wantIs != nil && !errors.Is(err, wantIs) {
		t.Fatalf("error %q does not wrap %v", err, wantIs)
	}
	return false
}

func TestParseVideoTag(t *testing.T) {
	nalus := lengthPrefixed([]byte{0x65, 1, 2, 3})
	obus := []byte{0x12, 0x00, 0x32, 0x01, 0xaa}
	tests := []struct {
		name    string
		in      []byte
		want    VideoTag
		wantErr string
		wantIs  error
	}{
		// Classic FLV.
		{name: "avc sequence header", in: avcTag(1, 0, 0, []byte{1, 2, 3}),
			want: VideoTag{Kind: PacketConfig, Codec: media.CodecH264, FrameType: 1, Data: []byte{1, 2, 3}}},
		{name: "avc key frame", in: avcTag(1, 1, 66, nalus),
			want: VideoTag{Kind: PacketFrame, Codec: media.CodecH264, FrameType: 1, CompositionTime: 66, Data: nalus}},
		{name: "avc inter frame negative cts", in: avcTag(2, 1, -33, nalus),
			want: VideoTag{Kind: PacketFrame, Codec: media.CodecH264, FrameType: 2, CompositionTime: -33, Data: nalus}},
		{name: "avc end of sequence", in: avcTag(1, 2, 0, nil),
			want: VideoTag{Kind: PacketEnd, Codec: media.CodecH264, FrameType: 1}},
		{name: "avc command frame", in: []byte{0x57, 0x00},
			want: VideoTag{Kind: PacketIgnore, FrameType: 5}},
		{name: "empty", in: nil, wantErr: "video tag: empty"},
		{name: "avc header truncated", in: []byte{0x17, 0x01, 0x00}, wantErr: "h264 header needs 5 bytes, got 3"},
		{name: "avc packet type unknown", in: avcTag(1, 3, 0, nil), wantErr: "h264 packet type 3 unknown"},
		{name: "legacy hevc id 12 sequence header", in: append([]byte{0x1c, 0, 0, 0, 0}, 9),
			want: VideoTag{Kind: PacketConfig, Codec: media.CodecH265, FrameType: 1, Data: []byte{9}}},
		{name: "legacy hevc id 12 frame", in: append([]byte{0x2c, 1, 0, 0, 40}, nalus...),
			want: VideoTag{Kind: PacketFrame, Codec: media.CodecH265, FrameType: 2, CompositionTime: 40, Data: nalus}},
		{name: "sorenson", in: []byte{0x12, 0, 0}, wantErr: "codec id 2 (Sorenson H.263)", wantIs: ErrUnsupportedCodec},
		{name: "vp6", in: []byte{0x14, 0, 0}, wantErr: "codec id 4 (On2 VP6)", wantIs: ErrUnsupportedCodec},
		{name: "codec id 15", in: []byte{0x1f}, wantErr: "codec id 15 (unknown)", wantIs: ErrUnsupportedCodec},

		// Enhanced RTMP.
		{name: "avc1 sequence start", in: exTag(1, exSequenceStart, "avc1", []byte{9}),
			want: VideoTag{Kind: PacketConfig, Codec: media.CodecH264, FrameType: 1, Data: []byte{9}}},
		{name: "hvc1 sequence start", in: exTag(1, exSequenceStart, "hvc1", []byte{9}),
			want: VideoTag{Kind: PacketConfig, Codec: media.CodecH265, FrameType: 1, Data: []byte{9}}},
		{name: "av01 sequence start", in: exTag(1, exSequenceStart, "av01", []byte{9}),
			want: VideoTag{Kind: PacketConfig, Codec: media.CodecAV1, FrameType: 1, Data: []byte{9}}},
		{name: "hvc1 coded frames", in: exFrame(1, "hvc1", 0x7fffff, nalus),
			want: VideoTag{Kind: PacketFrame, Codec: media.CodecH265, FrameType: 1, CompositionTime: 0x7fffff, Data: nalus}},
		{name: "hvc1 coded frames min cts", in: exFrame(2, "hvc1", -0x800000, nalus),
			want: VideoTag{Kind: PacketFrame, Codec: media.CodecH265, FrameType: 2, CompositionTime: -0x800000, Data: nalus}},
		{name: "avc1 coded frames x", in: exTag(2, exCodedFramesX, "avc1", nalus),
			want: VideoTag{Kind: PacketFrame, Codec: media.CodecH264, FrameType: 2, Data: nalus}},
		{name: "av01 coded frames have no cts", in: exTag(2, exCodedFrames, "av01", obus),
			want: VideoTag{Kind: PacketFrame, Codec: media.CodecAV1, FrameType: 2, Data: obus}},
		{name: "av01 coded frames x", in: exTag(2, exCodedFramesX, "av01", obus),
			want: VideoTag{Kind: PacketFrame, Codec: media.CodecAV1, FrameType: 2, Data: obus}},
		{name: "sequence end", in: exTag(1, exSequenceEnd, "hvc1", nil),
			want: VideoTag{Kind: PacketEnd, Codec: media.CodecH265, FrameType: 1}},
		{name: "metadata", in: exTag(1, exMetadata, "hvc1", []byte{2, 0, 0}),
			want: VideoTag{Kind: PacketIgnore, FrameType: 1}},
		{name: "command frame", in: []byte{0x80 | 5<<4 | exCodedFrames, 0x01},
			want: VideoTag{Kind: PacketIgnore, FrameType: 5}},
		{name: "multitrack of a reserved type", in: exTag(1, exMultitrack, "avc1", nil), wantErr: "multitrack: type 6 reserved", wantIs: ErrUnsupportedPacket},
		{name: "multitrack track 1 in the one-track API", in: exTag(1, exMultitrack, "\x00avc1\x01", nil), wantErr: "multitrack (1 tracks, the first 1)", wantIs: ErrUnsupportedPacket},
		{name: "modex truncated", in: []byte{0x80 | 1<<4 | exModEx, 0, 0}, wantErr: "modex: 1 bytes of data and the packet type, got 1"},
		{name: "modex before sequence end", in: append([]byte{0x80 | 1<<4 | exModEx, 0, 9, 0x10 | exSequenceEnd}, "hvc1"...),
			want: VideoTag{Kind: PacketEnd, Codec: media.CodecH265, FrameType: 1}},
		{name: "mpeg2ts sequence start", in: exTag(1, exMPEG2TSSequenceStart, "av01", nil), wantErr: "mpeg2-ts sequence start", wantIs: ErrUnsupportedPacket},
		{name: "reserved packet type", in: exTag(1, 9, "av01", nil), wantErr: "packet type 9 reserved", wantIs: ErrUnsupportedPacket},
		{name: "vp09 sequence start", in: exTag(1, exSequenceStart, "vp09", []byte{9}),
			want: VideoTag{Kind: PacketConfig, Codec: media.CodecVP9, FrameType: 1, Data: []byte{9}}},
		{name: "vp09 coded frames have no cts", in: exTag(1, exCodedFrames, "vp09", []byte{0x82, 0x49}),
			want: VideoTag{Kind: PacketFrame, Codec: media.CodecVP9, FrameType: 1, Data: []byte{0x82, 0x49}}},
		{name: "unknown fourcc", in: exTag(1, exSequenceStart, "vp08", nil), wantErr: `fourcc "vp08"`, wantIs: ErrUnsupportedCodec},
		{name: "binary fourcc", in: exTag(1, exSequenceStart, "\x00\xff\x01\n", nil), wantErr: `fourcc "\x00\xff\x01\n"`, wantIs: ErrUnsupportedCodec},
		{name: "fourcc truncated", in: []byte{0x91, 'h', 'v'}, wantErr: "enhanced header needs 5 bytes, got 3"},
		{name: "cts truncated", in: exTag(1, exCodedFrames, "hvc1", []byte{0, 0}), wantErr: "hvc1 coded frames need a 3-byte composition time, got 2 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseVideoTag(tt.in)
			if !checkErr(t, err, tt.wantErr, tt.wantIs) {
				return
			}
			if got.Kind != tt.want.Kind || got.Codec != tt.want.Codec || got.FrameType != tt.want.FrameType ||
				got.CompositionTime != tt.want.CompositionTime || !bytes.Equal(got.Data, tt.want.Data) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseAudioTag(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		want    AudioTag
		wantErr string
		wantIs  error
	}{
		{name: "aac config", in: aacTag(0, []byte{0x12, 0x10}),
			want: AudioTag{Kind: PacketConfig, Codec: media.CodecAAC, Data: []byte{0x12, 0x10}}},
		{name: "aac frame", in: aacTag(1, []byte{1, 2, 3}),
			want: AudioTag{Kind: PacketFrame, Codec: media.CodecAAC, Data: []byte{1, 2, 3}}},
		{name: "aac mono flags", in: []byte{0xa0, 1, 7},
			want: AudioTag{Kind: PacketFrame, Codec: media.CodecAAC, Data: []byte{7}}},
		{name: "empty", in: []byte{}, wantErr: "audio tag: empty"},
		{name: "aac packet type missing", in: []byte{0xaf}, wantErr: "aac packet type missing"},
		{name: "aac packet type unknown", in: aacTag(2, nil), wantErr: "aac packet type 2 unknown"},
		{name: "mp3", in: []byte{0x2f, 0xff}, wantErr: "sound format 2 (MP3)", wantIs: ErrUnsupportedCodec},
		{name: "speex", in: []byte{0xb2}, wantErr: "sound format 11 (Speex)", wantIs: ErrUnsupportedCodec},
		{name: "reserved", in: []byte{0xc0}, wantErr: "sound format 12 (reserved)", wantIs: ErrUnsupportedCodec},
		{name: "opus sequence start", in: exAudio(exAudioSequenceStart, "Opus", []byte("OpusHead")),
			want: AudioTag{Kind: PacketConfig, Codec: media.CodecOpus, Data: []byte("OpusHead")}},
		{name: "opus coded frames", in: exAudio(exAudioCodedFrames, "Opus", []byte{0xfc, 1}),
			want: AudioTag{Kind: PacketFrame, Codec: media.CodecOpus, Data: []byte{0xfc, 1}}},
		{name: "flac sequence start", in: exAudio(exAudioSequenceStart, "fLaC", []byte{1, 2}),
			want: AudioTag{Kind: PacketConfig, Codec: media.CodecFLAC, Data: []byte{1, 2}}},
		{name: "flac coded frames", in: exAudio(exAudioCodedFrames, "fLaC", []byte{0xff, 0xf8}),
			want: AudioTag{Kind: PacketFrame, Codec: media.CodecFLAC, Data: []byte{0xff, 0xf8}}},
		{name: "enhanced aac", in: exAudio(exAudioCodedFrames, "mp4a", []byte{7}),
			want: AudioTag{Kind: PacketFrame, Codec: media.CodecAAC, Data: []byte{7}}},
		{name: "opus sequence end", in: exAudio(exAudioSequenceEnd, "Opus", nil),
			want: AudioTag{Kind: PacketIgnore, Codec: media.CodecOpus}},
		{name: "multichannel config", in: exAudio(exAudioMultichannelConfig, "Opus", []byte{1, 2}),
			want: AudioTag{Kind: PacketIgnore, Codec: media.CodecOpus}},
		{name: "ac-3 refused", in: exAudio(exAudioSequenceStart, "ac-3", nil), wantErr: `fourcc "ac-3" (AC-3)`, wantIs: ErrUnsupportedCodec},
		{name: "e-ac-3 refused", in: exAudio(exAudioCodedFrames, "ec-3", nil), wantErr: `fourcc "ec-3" (E-AC-3)`, wantIs: ErrUnsupportedCodec},
		{name: "mp3 fourcc refused", in: exAudio(exAudioCodedFrames, ".mp3", nil), wantErr: `(MP3)`, wantIs: ErrUnsupportedCodec},
		{name: "unknown audio fourcc", in: exAudio(exAudioCodedFrames, "abcd", nil), wantErr: `fourcc "abcd" (unknown)`, wantIs: ErrUnsupportedCodec},
		{name: "audio multitrack truncated", in: []byte{0x90 | exAudioMultitrack, 0}, wantErr: "multitrack: fourcc missing"},
		{name: "audio reserved packet type", in: exAudio(3, "Opus", nil), wantErr: "packet type 3 reserved", wantIs: ErrUnsupportedPacket},
		{name: "audio fourcc truncated", in: []byte{0x90, 'O'}, wantErr: "enhanced header needs 5 bytes, got 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseAudioTag(tt.in)
			if !checkErr(t, err, tt.wantErr, tt.wantIs) {
				return
			}
			if got.Kind != tt.want.Kind || got.Codec != tt.want.Codec || !bytes.Equal(got.Data, tt.want.Data) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// The errors a healthy publisher may cause are told apart from the others.
func TestSkippableErrors(t *testing.T) {
	var d Demuxer
	for _, tt := range []struct {
		video bool
		in    []byte
		want  bool
	}{
		{true, exTag(1, exMultitrack, "avc1", nil), true},
		{false, []byte{0x90 | exAudioModEx}, false},                   // malformed
		{false, exAudio(exAudioCodedFrames, "Opus", []byte{1}), true}, // before the sequence header
		{false, exAudio(exAudioSequenceStart, "ac-3", nil), false},    // unsupported codec
		{true, []byte{0x12}, false},                                   // unsupported codec: the caller decides
		{true, []byte{0x17}, false},                                   // malformed
		{true, avcTag(1, 1, 0, lengthPrefixed([]byte{0x65})), true},   // before the sequence header
		{false, aacTag(1, []byte{1}), true},                           // before the sequence header
	} {
		var err error
		if tt.video {
			_, err = d.Video(0, tt.in, time.Time{})
		} else {
			_, err = d.Audio(0, tt.in, time.Time{})
		}
		if got := errors.Is(err, ErrUnsupportedPacket) || errors.Is(err, ErrNotConfigured); got != tt.want {
			t.Errorf("skippable(%v) = %v, want %v", err, got, tt.want)
		}
	}
}

// exAudio is an Enhanced RTMP audio tag.
func exAudio(packetType byte, fourCC string, body []byte) []byte {
	return append(append([]byte{0x90 | packetType}, fourCC...), body...)
}

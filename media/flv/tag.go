// Package flv turns the payloads of RTMP audio and video messages (FLV tag bodies, without
// the 11-byte FLV tag header) into media.Tracks and media.AccessUnits.
//
// It understands classic FLV (H.264 video, HEVC under the non-standard codec id 12, AAC
// audio), Enhanced RTMP video (FourCC avc1, hvc1, av01, vp09) and Enhanced RTMP audio
// (FourCC mp4a, Opus, fLaC), with Enhanced RTMP v2's multitrack and ModEx packets. Everything it reads comes from the network: malformed input yields an
// error, never a panic, and memory use stays proportional to the message being parsed.
package flv

import (
	"errors"
	"fmt"

	"onair/media"
)

// Errors that mark a message the caller can skip without giving up on the publisher: a
// healthy encoder may send them, and the Demuxer's state is unchanged after them. Test
// with errors.Is.
var (
	// ErrUnsupportedPacket is returned for message kinds this package does not handle
	// (MPEG-2 TS sequence start, reserved packet and multitrack types; several tracks
	// where one is expected: see ParseVideoTags).
	ErrUnsupportedPacket = errors.New("unsupported packet")
	// ErrNotConfigured is returned for frames that arrive before the sequence header of
	// their codec.
	ErrNotConfigured = errors.New("frame before its sequence header")
)

// ErrUnsupportedCodec is returned for codecs onair does not ingest (e.g. Sorenson, VP6,
// MP3, AC-3). Unlike the errors above, every message of that track will fail the same way:
// the caller refuses the publish rather than serve a stream without that track.
var ErrUnsupportedCodec = errors.New("unsupported codec")

// PacketKind says what a parsed tag carries.
type PacketKind int

// Packet kinds.
const (
	// PacketIgnore carries nothing the demuxer uses: command and info frames, metadata.
	PacketIgnore PacketKind = iota
	// PacketConfig carries the codec configuration record (sequence header).
	PacketConfig
	// PacketFrame carries one video picture or one audio frame.
	PacketFrame
	// PacketEnd marks the end of a video sequence.
	PacketEnd
)

// frameTypeCommand marks FLV video info/command frames, which carry no picture.
const frameTypeCommand = 5

// VideoTag is a parsed video message body.
type VideoTag struct {
	Kind PacketKind
	// Codec is set for every kind but PacketIgnore.
	Codec media.Codec
	// FrameType is the FLV frame type (1 key, 2 inter, 3 disposable, 4 generated key,
	// 5 command). Advisory only: the demuxer decides keys from the bitstream.
	FrameType uint8
	// CompositionTime is PTS minus DTS in milliseconds, for PacketFrame.
	CompositionTime int32
	// Data is the configuration record (PacketConfig) or the frame (PacketFrame):
	// length-prefixed NAL units for H.264 and H.265, low-overhead OBUs for AV1, one frame
	// for VP9.
	// It aliases the parsed payload.
	Data []byte
}

// Classic FLV codec IDs, for error messages.
var videoCodecNames = map[uint8]string{
	2: "Sorenson H.263", 3: "Screen video", 4: "On2 VP6", 5: "On2 VP6 with alpha",
	6: "Screen video v2", 7: "AVC", 12: "HEVC (non-standard codec id 12)",
}

// Enhanced RTMP video packet types.
const (
	exSequenceStart        = 0
	exCodedFrames          = 1
	exSequenceEnd          = 2
	exCodedFramesX         = 3
	exMetadata             = 4
	exMPEG2TSSequenceStart = 5
	exMultitrack           = 6
	exModEx                = 7
)

// ParseVideoTag parses the body of an RTMP video message.
func ParseVideoTag(payload []byte) (VideoTag, error) {
	if len(payload) == 0 {
		return VideoTag{}, errors.New("video tag: empty")
	}
	b := payload[0]
	if b&0x80 != 0 {
		return parseExVideoTag(payload)
	}

	tag := VideoTag{FrameType: b >> 4}
	codecID := b & 0x0f
	if tag.FrameType == frameTypeCommand {
		// Info/command frames carry a command byte instead of codec data: nothing to use.
		return VideoTag{Kind: PacketIgnore, FrameType: tag.FrameType}, nil
	}
	switch codecID {
	case 7:
		tag.Codec = media.CodecH264
	case 12:
		// Encoders that predate Enhanced RTMP send HEVC this way, laid out like AVC.
		tag.Codec = media.CodecH265
	default:
		name := videoCodecNames[codecID]
		if name == "" {
			name = "unknown"
		}
		return VideoTag{}, fmt.Errorf("video tag: codec id %d (%s): %w", codecID, name, ErrUnsupportedCodec)
	}
	if len(payload) < 5 {
		return VideoTag{}, fmt.Errorf("video tag: %s header needs 5 bytes, got %d", tag.Codec, len(payload))
	}
	switch payload[1] {
	case 0:
		tag.Kind = PacketConfig
	case 1:
		tag.Kind = PacketFrame
		tag.CompositionTime = si24(payload[2:5])
	case 2:
		tag.Kind = PacketEnd
		return tag, nil
	default:
		return VideoTag{}, fmt.Errorf("video tag: %s packet type %d unknown", tag.Codec, payload[1])
	}
	tag.Data = payload[5:]
	return tag, nil
}

// parseExVideoTag parses an Enhanced RTMP video tag of one track, track 0.
func parseExVideoTag(payload []byte) (VideoTag, error) {
	tags, err := parseExVideoTags(payload)
	if err != nil {
		return VideoTag{}, err
	}
	if len(tags) != 1 || tags[0].Track != 0 {
		return VideoTag{}, fmt.Errorf("video tag: multitrack (%d tracks, the first %d): %w", len(tags), tags[0].Track, ErrUnsupportedPacket)
	}
	return tags[0].VideoTag, nil
}

// parseExVideoBody parses what follows an Enhanced RTMP video tag's FourCC.
func parseExVideoBody(frameType, packetType uint8, fourCC string, rest []byte) (VideoTag, error) {
	tag := VideoTag{FrameType: frameType}
	if tag.FrameType == frameTypeCommand || packetType == exMetadata {
		// Command frames and metadata (HDR info) change nothing the muxers need.
		return VideoTag{Kind: PacketIgnore, FrameType: tag.FrameType}, nil
	}
	switch fourCC {
	case "avc1":
		tag.Codec = media.CodecH264
	case "hvc1":
		tag.Codec = media.CodecH265
	case "av01":
		tag.Codec = media.CodecAV1
	case "vp09":
		tag.Codec = media.CodecVP9
	default:
		return VideoTag{}, fmt.Errorf("video tag: fourcc %q: %w", fourCC, ErrUnsupportedCodec)
	}

	switch packetType {
	case exSequenceStart:
		tag.Kind = PacketConfig
		tag.Data = rest
	case exSequenceEnd:
		tag.Kind = PacketEnd
	case exCodedFrames:
		tag.Kind = PacketFrame
		if tag.Codec == media.CodecAV1 || tag.Codec == media.CodecVP9 {
			// AV1 and VP9 have no composition time: their frames are in presentation order.
			tag.Data = rest
			break
		}
		if len(rest) < 3 {
			return VideoTag{}, fmt.Errorf("video tag: %s coded frames need a 3-byte composition time, got %d bytes", fourCC, len(rest))
		}
		tag.CompositionTime = si24(rest)
		tag.Data = rest[3:]
	case exCodedFramesX:
		tag.Kind = PacketFrame
		tag.Data = rest
	case exMPEG2TSSequenceStart:
		// Only defined for AV1, whose av1C arrives with SequenceStart as well (OBS, FFmpeg);
		// the TS-style descriptor adds nothing, so skip it.
		return VideoTag{}, fmt.Errorf("video tag: %s mpeg2-ts sequence start: %w", fourCC, ErrUnsupportedPacket)
	default:
		return VideoTag{}, fmt.Errorf("video tag: enhanced packet type %d reserved: %w", packetType, ErrUnsupportedPacket)
	}
	return tag, nil
}

// AudioTag is a parsed audio message body.
type AudioTag struct {
	Kind  PacketKind // PacketConfig, PacketFrame or PacketIgnore
	Codec media.Codec
	// Data is the configuration (PacketConfig: AudioSpecificConfig, OpusHead, FLAC
	// STREAMINFO) or one frame (PacketFrame). It aliases the parsed payload.
	Data []byte
}

var soundFormatNames = map[uint8]string{
	0: "linear PCM", 1: "ADPCM", 2: "MP3", 3: "linear PCM little endian", 4: "Nellymoser 16 kHz",
	5: "Nellymoser 8 kHz", 6: "Nellymoser", 7: "G.711 A-law", 8: "G.711 mu-law", 10: "AAC",
	11: "Speex", 14: "MP3 8 kHz", 15: "device-specific",
}

// Enhanced RTMP audio FourCCs onair refuses, for error messages: fMP4 could carry them,
// but browsers' Media Source Extensions do not play AC-3 or E-AC-3 (Chromium, Firefox),
// and MP3 in fMP4 plays nowhere hls.js runs reliably.
var exAudioNames = map[string]string{"ac-3": "AC-3", "ec-3": "E-AC-3", ".mp3": "MP3"}

// Enhanced RTMP audio packet types.
const (
	exAudioSequenceStart      = 0
	exAudioCodedFrames        = 1
	exAudioSequenceEnd        = 2
	exAudioMultichannelConfig = 4
	exAudioMultitrack         = 5
	exAudioModEx              = 7
)

// soundFormatEx marks an Enhanced RTMP audio tag.
const soundFormatEx = 9

// ParseAudioTag parses the body of an RTMP audio message.
func ParseAudioTag(payload []byte) (AudioTag, error) {
	if len(payload) == 0 {
		return AudioTag{}, errors.New("audio tag: empty")
	}
	format := payload[0] >> 4
	switch format {
	case 10:
	case soundFormatEx:
		return parseExAudioTag(payload)
	default:
		name := soundFormatNames[format]
		if name == "" {
			name = "reserved"
		}
		return AudioTag{}, fmt.Errorf("audio tag: sound format %d (%s): %w", format, name, ErrUnsupportedCodec)
	}
	if len(payload) < 2 {
		return AudioTag{}, errors.New("audio tag: aac packet type missing")
	}
	tag := AudioTag{Codec: media.CodecAAC, Data: payload[2:]}
	switch payload[1] {
	case 0:
		tag.Kind = PacketConfig
	case 1:
		tag.Kind = PacketFrame
	default:
		return AudioTag{}, fmt.Errorf("audio tag: aac packet type %d unknown", payload[1])
	}
	return tag, nil
}

// parseExAudioTag parses an Enhanced RTMP audio tag of one track, track 0.
func parseExAudioTag(payload []byte) (AudioTag, error) {
	tags, err := parseExAudioTags(payload)
	if err != nil {
		return AudioTag{}, err
	}
	if len(tags) != 1 || tags[0].Track != 0 {
		return AudioTag{}, fmt.Errorf("audio tag: multitrack (%d tracks, the first %d): %w", len(tags), tags[0].Track, ErrUnsupportedPacket)
	}
	return tags[0].AudioTag, nil
}

// parseExAudioBody parses what follows an Enhanced RTMP audio tag's FourCC.
func parseExAudioBody(packetType uint8, fourCC string, body []byte) (AudioTag, error) {
	var tag AudioTag
	switch fourCC {
	case "mp4a":
		tag.Codec = media.CodecAAC
	case "Opus":
		tag.Codec = media.CodecOpus
	case "fLaC":
		tag.Codec = media.CodecFLAC
	default:
		name := exAudioNames[fourCC]
		if name == "" {
			name = "unknown"
		}
		return AudioTag{}, fmt.Errorf("audio tag: fourcc %q (%s): %w", fourCC, name, ErrUnsupportedCodec)
	}
	tag.Data = body
	switch packetType {
	case exAudioSequenceStart:
		tag.Kind = PacketConfig
	case exAudioCodedFrames:
		tag.Kind = PacketFrame
	case exAudioSequenceEnd, exAudioMultichannelConfig:
		// The channel layout repeats what the codec's configuration says.
		tag.Kind, tag.Data = PacketIgnore, nil
	default:
		return AudioTag{}, fmt.Errorf("audio tag: enhanced packet type %d reserved: %w", packetType, ErrUnsupportedPacket)
	}
	return tag, nil
}

// si24 reads a big-endian signed 24-bit integer.
func si24(b []byte) int32 {
	v := int32(b[0])<<16 | int32(b[1])<<8 | int32(b[2])
	return v << 8 >> 8 // sign-extend bit 23
}

// Package media holds the live pipeline's shared vocabulary: tracks, access units, and the
// hub that gives each stream one publisher and fans its access units out to sinks.
//
// Sub-packages do the protocol and container work: media/flv parses RTMP's FLV tags,
// media/rtmp accepts publishers, media/hls serves viewers.
package media

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
)

// Codec names a video or audio codec as it appears in APIs and metrics.
type Codec string

// The codecs onair ingests.
const (
	CodecH264 Codec = "h264"
	CodecH265 Codec = "h265"
	CodecAV1  Codec = "av1"
	CodecVP9  Codec = "vp9"
	CodecAAC  Codec = "aac"
	CodecOpus Codec = "opus"
	CodecFLAC Codec = "flac"
)

// VideoTrack describes a stream's video.
type VideoTrack struct {
	Codec Codec
	// Parameter sets of H.264 (SPS, PPS) and H.265 (VPS, SPS, PPS), without start codes.
	VPS, SPS, PPS []byte
	// SequenceHeader is AV1's sequence header OBU without its size field
	// (obu_has_size_field = 0), the form gohlslib and mediacommon compare.
	SequenceHeader []byte
	// VP9 is the profile, level, bit depth and colour of a VP9 stream, from its
	// VPCodecConfigurationRecord.
	VP9           *VP9Config
	Width, Height int
}

// VP9Config is what a VPCodecConfigurationRecord (VP Codec ISO Media File Format Binding,
// 2.2) says of a VP9 stream: the fields of its "vp09" codec string and sample entry.
type VP9Config struct {
	Profile, Level, BitDepth, ChromaSubsampling uint8
	FullRange                                   bool
}

// AudioTrack describes a stream's audio.
type AudioTrack struct {
	Codec Codec
	// AAC is the AudioSpecificConfig of AAC audio (nil for other codecs).
	AAC *mpeg4audio.AudioSpecificConfig
	// FLAC is the STREAMINFO metadata block of FLAC audio (nil for other codecs).
	FLAC []byte
	// SampleRate is the clock of the audio's timestamps (Opus: always 48000).
	SampleRate int
	// Channels is 0 when a program config element gives the layout.
	Channels int
}

// Tracks is what a stream carries; at least one of the two is set.
type Tracks struct {
	Video *VideoTrack
	Audio *AudioTrack
}

// AccessUnit is one video picture or one audio frame. Sinks share it and must not modify it.
type AccessUnit struct {
	Video bool
	// DTS and PTS count from the stream's first access unit.
	DTS, PTS time.Duration
	// Key marks a random access point: an IDR picture or an AV1 key frame. Audio frames are
	// always keys.
	Key bool
	// Payload holds the NAL units (H.264, H.265) or OBUs (AV1) of one picture, one VP9
	// frame, or one audio frame (AAC, Opus packet, FLAC frame) as its only element.
	// Elements are never empty (muxers read their first byte).
	Payload [][]byte
	// Received is when the access unit arrived, on the wall clock.
	Received time.Time
	// Discontinuity marks the first access unit of a publisher that continues a run (see
	// Hub): timestamps go on from the run's end, but the media itself starts afresh
	// (video at a key frame).
	Discontinuity bool
}

// Size is the payload's length in bytes.
func (au *AccessUnit) Size() int {
	n := 0
	for _, p := range au.Payload {
		n += len(p)
	}
	return n
}

// Route is what a stream key resolves to.
type Route struct {
	// Name is the public stream name used in URLs; it never reveals the key.
	Name string
	// Record asks outputs that record to keep this stream.
	Record bool
	// RoomID is the room the stream belongs to; empty for the config file's streams.
	RoomID string
	// Rendition names a further rendition of the stream (a simulcast output published
	// with ?rendition=, or a track of a multitrack publish); empty for the main one.
	Rendition string
}

// key is the hub's key of the route's publisher: the stream name, and the rendition's.
func (r Route) key() string {
	if r.Rendition == "" {
		return r.Name
	}
	return r.Name + "?rendition=" + r.Rendition
}

// ErrUnknownKey is returned by a KeyResolver for a key that publishes nothing.
var ErrUnknownKey = errors.New("unknown stream key")

// KeyResolver turns a publisher's stream key into the stream it may publish.
type KeyResolver interface {
	ResolveKey(ctx context.Context, key string) (Route, error)
}

// KeyID is a short fingerprint of a stream key, so logs can tell keys apart without
// holding anything that would let a reader publish.
func KeyID(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "key-" + hex.EncodeToString(sum[:4])
}

// StaticKeys resolves keys from a fixed table, e.g. streams listed in the config file.
type StaticKeys map[string]Route

// Names lists the stream names the table publishes to.
func (k StaticKeys) Names() []string {
	names := make([]string, 0, len(k))
	for _, r := range k {
		names = append(names, r.Name)
	}
	return names
}

// ResolveKey implements KeyResolver.
func (k StaticKeys) ResolveKey(_ context.Context, key string) (Route, error) {
	if r, ok := k[key]; ok && key != "" {
		return r, nil
	}
	return Route{}, ErrUnknownKey
}

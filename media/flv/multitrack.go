package flv

import (
	"errors"
	"fmt"
	"time"

	"onair/media"
)

// Enhanced RTMP v2 (veovera enhanced-rtmp v2) lets one message carry several tracks
// (multitrack: one track with an id, several of one codec, or several of several codecs)
// and put modifier extensions (ModEx) before the packet type. OBS's multitrack video
// sends its first track as a plain message and each further one in a one-track wrapper.

// Multitrack types.
const (
	multitrackOneTrack             = 0
	multitrackManyTracks           = 1
	multitrackManyTracksManyCodecs = 2
)

// MaxTracks bounds the tracks of one kind a publisher may send: track ids are a byte, and
// each track is a rendition with its own state.
const MaxTracks = 8

// TrackVideoTag is one track's part of a video message: Track 0 for a message without the
// multitrack wrapper.
type TrackVideoTag struct {
	Track uint8
	VideoTag
}

// TrackAudioTag is one track's part of an audio message.
type TrackAudioTag struct {
	Track uint8
	AudioTag
}

// ParseVideoTags parses the body of an RTMP video message, which may carry several tracks.
// A message without the multitrack wrapper is track 0.
func ParseVideoTags(payload []byte) ([]TrackVideoTag, error) {
	if len(payload) == 0 || payload[0]&0x80 == 0 {
		tag, err := ParseVideoTag(payload)
		if err != nil {
			return nil, err
		}
		return []TrackVideoTag{{VideoTag: tag}}, nil
	}
	return parseExVideoTags(payload)
}

func parseExVideoTags(payload []byte) ([]TrackVideoTag, error) {
	frameType, packetType := (payload[0]>>4)&7, payload[0]&0x0f
	rest, packetType, err := skipModEx(payload[1:], packetType)
	if err != nil {
		return nil, fmt.Errorf("video tag: %w", err)
	}
	if packetType != exMultitrack {
		if frameType == frameTypeCommand || packetType == exMetadata {
			return []TrackVideoTag{{VideoTag: VideoTag{Kind: PacketIgnore, FrameType: frameType}}}, nil
		}
		if len(rest) < 4 {
			return nil, fmt.Errorf("video tag: enhanced header needs 5 bytes, got %d", len(payload))
		}
		tag, err := parseExVideoBody(frameType, packetType, string(rest[:4]), rest[4:])
		if err != nil {
			return nil, err
		}
		return []TrackVideoTag{{VideoTag: tag}}, nil
	}
	var out []TrackVideoTag
	err = eachTrack(rest, func(track, packetType uint8, fourCC string, body []byte) error {
		tag, err := parseExVideoBody(frameType, packetType, fourCC, body)
		if err != nil {
			return err
		}
		out = append(out, TrackVideoTag{Track: track, VideoTag: tag})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("video tag: %w", err)
	}
	return out, nil
}

// ParseAudioTags parses the body of an RTMP audio message, which may carry several tracks.
func ParseAudioTags(payload []byte) ([]TrackAudioTag, error) {
	if len(payload) == 0 || payload[0]>>4 != soundFormatEx {
		tag, err := ParseAudioTag(payload)
		if err != nil {
			return nil, err
		}
		return []TrackAudioTag{{AudioTag: tag}}, nil
	}
	return parseExAudioTags(payload)
}

func parseExAudioTags(payload []byte) ([]TrackAudioTag, error) {
	rest, packetType, err := skipModEx(payload[1:], payload[0]&0x0f)
	if err != nil {
		return nil, fmt.Errorf("audio tag: %w", err)
	}
	if packetType != exAudioMultitrack {
		if len(rest) < 4 {
			return nil, fmt.Errorf("audio tag: enhanced header needs 5 bytes, got %d", len(payload))
		}
		tag, err := parseExAudioBody(packetType, string(rest[:4]), rest[4:])
		if err != nil {
			return nil, err
		}
		return []TrackAudioTag{{AudioTag: tag}}, nil
	}
	var out []TrackAudioTag
	err = eachTrack(rest, func(track, packetType uint8, fourCC string, body []byte) error {
		tag, err := parseExAudioBody(packetType, fourCC, body)
		if err != nil {
			return err
		}
		out = append(out, TrackAudioTag{Track: track, AudioTag: tag})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("audio tag: %w", err)
	}
	return out, nil
}

// skipModEx skips the modifier extensions before a packet type (ModEx, packet type 7 of
// both video and audio): their one kind, a timestamp offset in nanoseconds, is below what
// RTMP's millisecond timestamps and the muxers' clocks resolve.
func skipModEx(b []byte, packetType uint8) ([]byte, uint8, error) {
	for n := 0; packetType == exModEx; n++ {
		if n == 8 {
			return nil, 0, errors.New("modex: more than 8 extensions")
		}
		if len(b) < 1 {
			return nil, 0, errors.New("modex: size missing")
		}
		size := int(b[0]) + 1
		b = b[1:]
		if size == 256 {
			if len(b) < 2 {
				return nil, 0, errors.New("modex: 16-bit size missing")
			}
			size = (int(b[0])<<8 | int(b[1])) + 1
			b = b[2:]
		}
		if len(b) < size+1 {
			return nil, 0, fmt.Errorf("modex: %d bytes of data and the packet type, got %d", size, len(b))
		}
		packetType = b[size] & 0x0f
		b = b[size+1:]
	}
	return b, packetType, nil
}

// eachTrack walks the tracks of a multitrack body (what follows the packet type 6 or 5):
// multitrack type and packet type, the FourCC unless each track has its own, then per
// track its FourCC (several codecs), id, and size (several tracks).
func eachTrack(b []byte, fn func(track, packetType uint8, fourCC string, body []byte) error) error {
	if len(b) < 1 {
		return errors.New("multitrack: type missing")
	}
	kind, packetType := b[0]>>4, b[0]&0x0f
	b = b[1:]
	switch {
	case kind > multitrackManyTracksManyCodecs:
		return fmt.Errorf("multitrack: type %d reserved: %w", kind, ErrUnsupportedPacket)
	case packetType == exMultitrack || packetType == exModEx:
		return fmt.Errorf("multitrack: packet type %d inside a multitrack packet", packetType)
	}
	var fourCC string
	if kind != multitrackManyTracksManyCodecs {
		if len(b) < 4 {
			return errors.New("multitrack: fourcc missing")
		}
		fourCC, b = string(b[:4]), b[4:]
	}
	for n := 0; len(b) > 0; n++ {
		if n == MaxTracks {
			return fmt.Errorf("multitrack: more than %d tracks in a message", MaxTracks)
		}
		if kind == multitrackManyTracksManyCodecs {
			if len(b) < 4 {
				return errors.New("multitrack: track fourcc missing")
			}
			fourCC, b = string(b[:4]), b[4:]
		}
		if len(b) < 1 {
			return errors.New("multitrack: track id missing")
		}
		track := b[0]
		body := b[1:]
		b = nil
		if kind != multitrackOneTrack {
			if len(body) < 3 {
				return fmt.Errorf("multitrack: track %d size missing", track)
			}
			size := int(body[0])<<16 | int(body[1])<<8 | int(body[2])
			body = body[3:]
			if len(body) < size {
				return fmt.Errorf("multitrack: track %d of %d bytes, %d left", track, size, len(body))
			}
			body, b = body[:size], body[size:]
		}
		if err := fn(track, packetType, fourCC, body); err != nil {
			return fmt.Errorf("track %d: %w", track, err)
		}
	}
	return nil
}

// TrackUnit is an access unit of one video track of a message.
type TrackUnit struct {
	Track uint8
	AU    *media.AccessUnit
}

// VideoUnits handles one RTMP video message, which may carry several tracks (Enhanced
// RTMP v2 multitrack): track 0 is the Demuxer's own video, each further track has state of
// its own (TrackVideo), and all share the Demuxer's clock. A track past MaxTracks is
// dropped. Sequence headers and the like yield no unit. An error of one track leaves the
// others' units; ErrUnsupportedCodec is returned whatever else the message held.
func (d *Demuxer) VideoUnits(timestamp uint32, payload []byte, received time.Time) ([]TrackUnit, error) {
	tags, err := ParseVideoTags(payload)
	if err != nil {
		return nil, err
	}
	var out []TrackUnit
	var firstErr error
	for _, t := range tags {
		target := d
		if t.Track != 0 {
			if target = d.trackDemuxer(t.Track); target == nil {
				continue
			}
		}
		au, err := target.videoTag(t.VideoTag)
		if err != nil {
			if t.Track != 0 {
				err = fmt.Errorf("track %d: %w", t.Track, err)
			}
			if firstErr == nil || errors.Is(err, ErrUnsupportedCodec) {
				firstErr = err
			}
			continue
		}
		if au != nil {
			out = append(out, TrackUnit{Track: t.Track, AU: au})
		}
	}
	if len(out) > 0 {
		dts := d.timestamp(timestamp)
		for _, u := range out {
			u.AU.Received, u.AU.DTS = received, dts
			// The composition time cannot push PTS before the stream's start.
			u.AU.PTS = max(0, dts+u.AU.PTS)
		}
	}
	return out, firstErr
}

// trackDemuxer is the state of a further video track, made on its first message; nil past
// MaxTracks.
func (d *Demuxer) trackDemuxer(id uint8) *Demuxer {
	if t := d.tracks[id]; t != nil {
		return t
	}
	if len(d.tracks) >= MaxTracks-1 {
		return nil
	}
	if d.tracks == nil {
		d.tracks = map[uint8]*Demuxer{}
	}
	t := &Demuxer{}
	d.tracks[id] = t
	return t
}

// TrackVideo is the configuration of a further video track (id > 0) of a multitrack
// publish, nil until its sequence header came.
func (d *Demuxer) TrackVideo(id uint8) *media.VideoTrack {
	if t := d.tracks[id]; t != nil {
		return t.video
	}
	return nil
}

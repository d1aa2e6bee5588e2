package flv

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/av1"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/vp9"

	"onair/media"
)

// maxDimension bounds the width and height taken from a parameter set: anything larger is
// a malformed (or hostile) SPS, and downstream buffers are sized from these numbers.
const maxDimension = 32768

// Demuxer turns one publisher's audio and video messages into tracks and access units.
// The zero value is ready to use. It is not safe for concurrent use.
//
// A message that returns an error changes nothing, so the caller may skip it and go on;
// ErrUnsupportedPacket and ErrNotConfigured are the ones a healthy publisher may cause.
//
// The tracks that Tracks returns are never modified, so sinks may keep them: a new sequence
// header replaces a track with a new value and increases Generation.
//
// DTS counts from the publisher's first access unit, audio or video, so it starts at 0;
// RTMP's 32-bit millisecond timestamps are extended across their wrap-around.
type Demuxer struct {
	video *media.VideoTrack
	audio *media.AudioTrack
	gen   uint64

	// av1Pending is set when an av1C without a sequence header announced AV1: the track
	// starts with the first in-band sequence header.
	av1Pending bool
	// av1Reduced is reduced_still_picture_header of the current AV1 sequence header.
	av1Reduced bool

	// Timestamps are RTMP's 32-bit milliseconds extended to 64 bits; base is the first
	// access unit's.
	started    bool
	base, last int64

	// tracks are the further video tracks of a multitrack publish, by id.
	tracks map[uint8]*Demuxer
	// audioTrack is the id of the audio track kept, the first seen.
	audioTrack  uint8
	audioPicked bool
}

// Tracks reports the tracks whose configuration has been seen so far.
func (d *Demuxer) Tracks() media.Tracks {
	return media.Tracks{Video: d.video, Audio: d.audio}
}

// Generation counts changes of Tracks: it increases whenever a track appears, disappears
// or is replaced by a different configuration. Re-sent identical sequence headers do not
// change it. A caller notices a change by comparing it with the value it last saw.
func (d *Demuxer) Generation() uint64 { return d.gen }

// Video handles one RTMP video message of track 0 (see VideoUnits for several tracks). It
// returns a nil access unit for messages that carry none (sequence headers, end of
// sequence, metadata, command frames).
func (d *Demuxer) Video(timestamp uint32, payload []byte, received time.Time) (*media.AccessUnit, error) {
	units, err := d.VideoUnits(timestamp, payload, received)
	for _, u := range units {
		if u.Track == 0 {
			return u.AU, err
		}
	}
	return nil, err
}

// videoTag handles one track's video tag; the caller times the access unit.
func (d *Demuxer) videoTag(tag VideoTag) (*media.AccessUnit, error) {
	switch tag.Kind {
	case PacketConfig:
		return nil, d.videoConfig(tag)
	case PacketFrame:
	default:
		return nil, nil
	}

	var au *media.AccessUnit
	var err error
	switch tag.Codec {
	case media.CodecAV1:
		au, err = d.av1Frame(tag.Data)
	case media.CodecVP9:
		au, err = d.vp9Frame(tag.Data)
	default:
		au, err = d.nalFrame(tag.Codec, tag.Data)
	}
	if err != nil || au == nil {
		return nil, err
	}
	au.Video = true
	// The composition time, until the caller adds the DTS.
	au.PTS = time.Duration(tag.CompositionTime) * time.Millisecond
	return au, nil
}

// Audio handles one RTMP audio message. It returns a nil access unit for the
// AudioSpecificConfig.
//
// Of a multitrack publish's audio tracks, the first one seen is the stream's audio, the
// others are dropped: viewers get one audio group.
func (d *Demuxer) Audio(timestamp uint32, payload []byte, received time.Time) (*media.AccessUnit, error) {
	tags, err := ParseAudioTags(payload)
	if err != nil {
		return nil, err
	}
	if !d.audioPicked {
		d.audioTrack, d.audioPicked = tags[0].Track, true
	}
	i := 0
	for i < len(tags) && tags[i].Track != d.audioTrack {
		i++
	}
	if i == len(tags) {
		return nil, nil
	}
	tag := tags[i].AudioTag
	switch tag.Kind {
	case PacketConfig:
		track, err := audioTrack(tag)
		if err != nil {
			return nil, err
		}
		if d.audio == nil || !sameAudio(d.audio, track) {
			d.audio = track
			d.gen++
		}
		return nil, nil
	case PacketIgnore:
		return nil, nil
	}

	if d.audio == nil || d.audio.Codec != tag.Codec {
		return nil, fmt.Errorf("%s frame: %w", tag.Codec, ErrNotConfigured)
	}
	if len(tag.Data) == 0 {
		return nil, fmt.Errorf("%s frame: empty", tag.Codec)
	}
	dts := d.timestamp(timestamp)
	return &media.AccessUnit{
		DTS:      dts,
		PTS:      dts,
		Key:      true,
		Payload:  [][]byte{bytes.Clone(tag.Data)},
		Received: received,
	}, nil
}

// Base is the RTMP timestamp of the first access unit, which DTS counts from (0 before
// it): publishers of one encoder's outputs map their timelines onto each other by it.
func (d *Demuxer) Base() time.Duration { return time.Duration(d.base) * time.Millisecond }

// timestamp extends an RTMP timestamp and makes it relative to the first access unit.
// Consecutive timestamps are taken to be less than 2^31 ms (24 days) apart, in either
// direction: audio may trail video a little, and the 32-bit count wraps after 49.7 days.
// It is called only once a message has produced an access unit, so sequence headers with
// stray timestamps do not disturb the count.
func (d *Demuxer) timestamp(ts uint32) time.Duration {
	if !d.started {
		d.started = true
		d.base = int64(ts)
		d.last = int64(ts)
	} else {
		d.last += int64(int32(ts - uint32(d.last)))
	}
	// Something that predates the first access unit (audio trailing the first video
	// frame) is clamped to the start rather than given a negative DTS.
	return time.Duration(max(0, d.last-d.base)) * time.Millisecond
}

func (d *Demuxer) setVideo(t *media.VideoTrack, av1Reduced bool) {
	d.av1Pending = false
	d.av1Reduced = av1Reduced
	if d.video != nil && sameVideo(d.video, t) {
		return
	}
	d.video = t
	d.gen++
}

func sameVideo(a, b *media.VideoTrack) bool {
	if (a.VP9 == nil) != (b.VP9 == nil) || (a.VP9 != nil && (*a.VP9 != *b.VP9 || a.Width != b.Width || a.Height != b.Height)) {
		return false
	}
	return a.Codec == b.Codec && bytes.Equal(a.VPS, b.VPS) && bytes.Equal(a.SPS, b.SPS) &&
		bytes.Equal(a.PPS, b.PPS) && bytes.Equal(a.SequenceHeader, b.SequenceHeader)
}

func (d *Demuxer) videoConfig(tag VideoTag) error {
	switch tag.Codec {
	case media.CodecH264:
		c, err := ParseAVCConfig(tag.Data)
		if err != nil {
			return err
		}
		if c.LengthSize != 4 {
			return fmt.Errorf("avc config: nal length size %d unsupported, only 4", c.LengthSize)
		}
		t, err := h264Track(c.SPS[0], c.PPS[0])
		if err != nil {
			return err
		}
		d.setVideo(t, false)

	case media.CodecH265:
		c, err := ParseHEVCConfig(tag.Data)
		if err != nil {
			return err
		}
		if c.LengthSize != 4 {
			return fmt.Errorf("hevc config: nal length size %d unsupported, only 4", c.LengthSize)
		}
		t, err := h265Track(c.VPS[0], c.SPS[0], c.PPS[0])
		if err != nil {
			return err
		}
		d.setVideo(t, false)

	case media.CodecAV1:
		c, err := ParseAV1Config(tag.Data)
		if err != nil {
			return err
		}
		if c.SequenceHeader == nil {
			// The sequence header comes in-band with the first key frame.
			if d.video != nil && d.video.Codec == media.CodecAV1 {
				return nil
			}
			if d.video != nil {
				d.video = nil
				d.gen++
			}
			d.av1Pending = true
			return nil
		}
		t, reduced, err := av1Track(c.SequenceHeader)
		if err != nil {
			return fmt.Errorf("av1 config: %w", err)
		}
		d.setVideo(t, reduced)

	case media.CodecVP9:
		c, err := ParseVP9Config(tag.Data)
		if err != nil {
			return err
		}
		// The size comes with the first key frame's header.
		t := &media.VideoTrack{Codec: media.CodecVP9, VP9: &c}
		if v := d.video; v != nil && v.Codec == media.CodecVP9 {
			t.Width, t.Height = v.Width, v.Height
		}
		d.setVideo(t, false)
	}
	return nil
}

func checkDimensions(w, h int) error {
	if w < 1 || h < 1 || w > maxDimension || h > maxDimension {
		return fmt.Errorf("size %dx%d out of range", w, h)
	}
	return nil
}

func h264Track(sps, pps []byte) (*media.VideoTrack, error) {
	var s h264.SPS
	if err := s.Unmarshal(sps); err != nil {
		return nil, fmt.Errorf("avc config: sps: %w", err)
	}
	if err := checkDimensions(s.Width(), s.Height()); err != nil {
		return nil, fmt.Errorf("avc config: sps: %w", err)
	}
	// Copies, because the record lives in a buffer the RTMP library reuses.
	return &media.VideoTrack{
		Codec: media.CodecH264, SPS: bytes.Clone(sps), PPS: bytes.Clone(pps),
		Width: s.Width(), Height: s.Height(),
	}, nil
}

func h265Track(vps, sps, pps []byte) (*media.VideoTrack, error) {
	var s h265.SPS
	if err := s.Unmarshal(sps); err != nil {
		return nil, fmt.Errorf("hevc config: sps: %w", err)
	}
	if err := checkDimensions(s.Width(), s.Height()); err != nil {
		return nil, fmt.Errorf("hevc config: sps: %w", err)
	}
	return &media.VideoTrack{
		Codec: media.CodecH265, VPS: bytes.Clone(vps), SPS: bytes.Clone(sps), PPS: bytes.Clone(pps),
		Width: s.Width(), Height: s.Height(),
	}, nil
}

// av1Track builds a track from a sequence header OBU without size field.
func av1Track(obu []byte) (*media.VideoTrack, bool, error) {
	var sh av1.SequenceHeader
	if err := sh.Unmarshal(obu); err != nil {
		return nil, false, fmt.Errorf("sequence header: %w", err)
	}
	if err := checkDimensions(sh.Width(), sh.Height()); err != nil {
		return nil, false, fmt.Errorf("sequence header: %w", err)
	}
	return &media.VideoTrack{
		Codec: media.CodecAV1, SequenceHeader: bytes.Clone(obu),
		Width: sh.Width(), Height: sh.Height(),
	}, sh.ReducedStillPictureHeader, nil
}

func audioTrack(tag AudioTag) (*media.AudioTrack, error) {
	switch tag.Codec {
	case media.CodecOpus:
		channels, err := ParseOpusHead(tag.Data)
		if err != nil {
			return nil, err
		}
		// Opus's timestamps run at 48 kHz whatever rate the source had.
		return &media.AudioTrack{Codec: media.CodecOpus, SampleRate: 48000, Channels: channels}, nil
	case media.CodecFLAC:
		si, block, err := ParseFLACConfig(tag.Data)
		if err != nil {
			return nil, err
		}
		return &media.AudioTrack{Codec: media.CodecFLAC, FLAC: bytes.Clone(block),
			SampleRate: int(si.SampleRate), Channels: int(si.ChannelCount)}, nil
	}
	return aacTrack(tag.Data)
}

func sameAudio(a, b *media.AudioTrack) bool {
	if a.Codec != b.Codec || a.SampleRate != b.SampleRate || a.Channels != b.Channels || !bytes.Equal(a.FLAC, b.FLAC) {
		return false
	}
	return a.AAC == nil || b.AAC == nil || *a.AAC == *b.AAC
}

func aacTrack(asc []byte) (*media.AudioTrack, error) {
	var c mpeg4audio.AudioSpecificConfig
	if err := c.Unmarshal(asc); err != nil {
		return nil, fmt.Errorf("aac config (% x): %w", truncate(asc, 16), err)
	}
	if c.SampleRate < 1 {
		return nil, fmt.Errorf("aac config: sample rate %d", c.SampleRate)
	}
	channels := int(c.ChannelConfig)
	if c.ChannelConfig == 7 {
		channels = 8
	}
	// ChannelConfig 0 defers the layout to a program config element: Channels stays 0.
	return &media.AudioTrack{Codec: media.CodecAAC, AAC: &c, SampleRate: c.SampleRate, Channels: channels}, nil
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// nalFrame turns length-prefixed H.264 or H.265 NAL units into an access unit: AUDs
// dropped (fMP4 does not want them), and the track's parameter sets put in front of key
// frames that lack them, so a muxer starting at any key frame can decode.
func (d *Demuxer) nalFrame(codec media.Codec, data []byte) (*media.AccessUnit, error) {
	if d.video == nil {
		return nil, fmt.Errorf("%s frame: %w", codec, ErrNotConfigured)
	}
	if d.video.Codec != codec {
		return nil, fmt.Errorf("%s frame on a %s track: %w", codec, d.video.Codec, ErrNotConfigured)
	}
	// The one copy of the message: the NAL units point into it.
	var nalus h264.AVCC
	if err := nalus.Unmarshal(bytes.Clone(data)); err != nil {
		return nil, fmt.Errorf("%s frame (%d bytes): %w", codec, len(data), err)
	}

	isH265 := codec == media.CodecH265
	var key, hasVPS, hasSPS, hasPPS bool
	kept := nalus[:0]
	for _, nalu := range nalus { // AVCC.Unmarshal drops zero-length units.
		if isH265 {
			switch t := h265NALType(nalu); {
			case t == h265NALAUD:
				continue
			case t >= h265NALIRAPFirst && t <= h265NALIRAPLast:
				key = true
			case t == h265NALVPS:
				hasVPS = true
			case t == h265NALSPS:
				hasSPS = true
			case t == h265NALPPS:
				hasPPS = true
			}
		} else {
			switch h264NALType(nalu) {
			case h264NALAUD:
				continue
			case h264NALIDR:
				key = true
			case h264NALSPS:
				hasSPS = true
			case h264NALPPS:
				hasPPS = true
			}
		}
		kept = append(kept, nalu)
	}
	if len(kept) == 0 {
		return nil, nil // only delimiters: no picture
	}

	payload := [][]byte(kept)
	if key {
		payload = make([][]byte, 0, len(kept)+3)
		if isH265 && !hasVPS {
			payload = append(payload, d.video.VPS)
		}
		if !hasSPS {
			payload = append(payload, d.video.SPS)
		}
		if !hasPPS {
			payload = append(payload, d.video.PPS)
		}
		payload = append(payload, kept...)
	}
	return &media.AccessUnit{Key: key, Payload: payload}, nil
}

// av1Frame turns a temporal unit into an access unit: temporal delimiters dropped, an
// in-band sequence header taken as the track's configuration, and the sequence header put
// in front of key frames that lack it.
func (d *Demuxer) av1Frame(data []byte) (*media.AccessUnit, error) {
	if !d.av1Pending {
		if d.video == nil {
			return nil, fmt.Errorf("av1 frame: %w", ErrNotConfigured)
		}
		if d.video.Codec != media.CodecAV1 {
			return nil, fmt.Errorf("av1 frame on a %s track: %w", d.video.Codec, ErrNotConfigured)
		}
	}
	obus, err := splitOBUs(data) // copies
	if err != nil {
		return nil, fmt.Errorf("av1 frame (%d bytes): %w", len(data), err)
	}
	var seqHeader []byte
	kept := obus[:0]
	for _, obu := range obus {
		switch obuType(obu) {
		case obuTemporalDelimiter:
			continue
		case obuSequenceHeader:
			if seqHeader == nil {
				seqHeader = obu
			}
		}
		kept = append(kept, obu)
	}

	if seqHeader != nil && (d.video == nil || !bytes.Equal(seqHeader, d.video.SequenceHeader)) {
		t, reduced, err := av1Track(seqHeader)
		if err != nil {
			return nil, fmt.Errorf("av1 frame: in-band %w", err)
		}
		d.setVideo(t, reduced)
	}
	if d.video == nil {
		return nil, fmt.Errorf("av1 frame: no sequence header yet: %w", ErrNotConfigured)
	}
	if len(kept) == 0 {
		return nil, nil
	}

	key := av1.IsRandomAccess2(kept) || firstFrameIsKey(kept, d.av1Reduced)
	payload := [][]byte(kept)
	if key && seqHeader == nil {
		payload = append([][]byte{d.video.SequenceHeader}, kept...)
	}
	return &media.AccessUnit{Key: key, Payload: payload}, nil
}

// vp9Frame turns a VP9 frame (or superframe) into an access unit; a key frame's header
// gives the track its size.
func (d *Demuxer) vp9Frame(data []byte) (*media.AccessUnit, error) {
	if d.video == nil || d.video.Codec != media.CodecVP9 {
		return nil, fmt.Errorf("vp9 frame: %w", ErrNotConfigured)
	}
	if len(data) == 0 {
		return nil, errors.New("vp9 frame: empty")
	}
	var h vp9.Header
	if err := h.Unmarshal(data); err != nil {
		return nil, fmt.Errorf("vp9 frame (%d bytes) header: %w", len(data), err)
	}
	key := !h.ShowExistingFrame && !h.NonKeyFrame
	if key {
		w, ht := h.Width(), h.Height()
		if err := checkDimensions(w, ht); err != nil {
			return nil, fmt.Errorf("vp9 key frame: %w", err)
		}
		if w != d.video.Width || ht != d.video.Height {
			t := *d.video
			t.Width, t.Height = w, ht
			d.setVideo(&t, false)
		}
	} else if d.video.Width == 0 {
		return nil, fmt.Errorf("vp9 frame before the first key frame: %w", ErrNotConfigured)
	}
	return &media.AccessUnit{Key: key, Payload: [][]byte{bytes.Clone(data)}}, nil
}

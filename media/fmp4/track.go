// Package fmp4 is onair's one fMP4 write path, shared by live HLS, DVR, "from the start"
// and the recording: the mapping of a stream's tracks to fMP4 tracks and their
// timescales, the init segment, the marshalling of a track fragment (moof + mdat) into
// one buffer, and the run's log those fragments are appended to.
package fmp4

import (
	"fmt"
	"math/bits"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/av1"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/flac"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/opus"
	mcfmp4 "github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	mp4codecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"onair/media"
)

// VideoTimescale is the clock of video tracks: 90 kHz, the usual one, fine enough for any
// frame rate.
const VideoTimescale = 90000

// Track IDs: fixed, so that every init segment of a run (the recording's, with both
// tracks, and each HLS rendition's, with one) agrees with every fragment.
const (
	VideoID = 1
	AudioID = 2
)

// Track is one track of a run as fMP4 carries it.
type Track struct {
	ID        uint32
	Timescale uint32
	Video     bool
	Codec     media.Codec
	// Channels is the audio's channel count (0: unknown, AAC with a program config
	// element).
	Channels int
	// Config is the codec's configuration as mediacommon describes it (for the init
	// segment and for codec strings).
	Config mp4codecs.Codec
	// VP9Level is a VP9 stream's level from its configuration record, for its codec
	// string: mediacommon's VP9 carries none.
	VP9Level uint8
	// avcc: samples are NAL units, written with 4-byte length prefixes (H.264, H.265).
	avcc bool
}

// Tracks are a run's fMP4 tracks; Video or Audio is nil when the stream has none.
type Tracks struct {
	Video, Audio *Track
}

// NewTracks maps a stream's tracks. Audio in a codec fMP4 cannot carry here is left out.
func NewTracks(t media.Tracks) (Tracks, error) {
	var out Tracks
	if v := t.Video; v != nil {
		tr := &Track{ID: VideoID, Timescale: VideoTimescale, Video: true, Codec: v.Codec}
		switch v.Codec {
		case media.CodecH264:
			tr.Config, tr.avcc = &mp4codecs.H264{SPS: v.SPS, PPS: v.PPS}, true
		case media.CodecH265:
			tr.Config, tr.avcc = &mp4codecs.H265{VPS: v.VPS, SPS: v.SPS, PPS: v.PPS}, true
		case media.CodecAV1:
			tr.Config = &mp4codecs.AV1{SequenceHeader: v.SequenceHeader}
		case media.CodecVP9:
			if v.VP9 == nil {
				return out, fmt.Errorf("fmp4: vp9 track without its codec configuration")
			}
			tr.Config = &mp4codecs.VP9{Width: v.Width, Height: v.Height, Profile: v.VP9.Profile,
				BitDepth: v.VP9.BitDepth, ChromaSubsampling: v.VP9.ChromaSubsampling, ColorRange: v.VP9.FullRange}
			tr.VP9Level = v.VP9.Level
		default:
			return out, fmt.Errorf("fmp4: video codec %q not supported", v.Codec)
		}
		out.Video = tr
	}
	if a := t.Audio; a != nil {
		tr := &Track{ID: AudioID, Codec: a.Codec, Channels: a.Channels}
		switch {
		case a.Codec == media.CodecAAC && a.AAC != nil && a.SampleRate > 0:
			tr.Timescale, tr.Config = uint32(a.SampleRate), &mp4codecs.MPEG4Audio{Config: *a.AAC}
		case a.Codec == media.CodecOpus && a.Channels > 0:
			// Opus always runs at 48 kHz, whatever rate the source had.
			tr.Timescale, tr.Config = 48000, &mp4codecs.Opus{ChannelCount: a.Channels}
		case a.Codec == media.CodecFLAC && a.FLAC != nil:
			var si flac.StreamInfo
			if err := si.Unmarshal(a.FLAC); err != nil || si.SampleRate < 1 {
				return out, fmt.Errorf("fmp4: flac streaminfo (%d bytes, rate %d): %v", len(a.FLAC), si.SampleRate, err)
			}
			tr.Timescale, tr.Config = si.SampleRate, &mp4codecs.FLAC{StreamInfo: &si}
		}
		if tr.Config != nil {
			out.Audio = tr
		}
	}
	if out.Video == nil && out.Audio == nil {
		return out, fmt.Errorf("fmp4: no track to write (video %v, audio %v)", t.Video != nil, t.Audio != nil)
	}
	return out, nil
}

// List is the tracks present, video first.
func (ts Tracks) List() []*Track {
	var out []*Track
	for _, t := range []*Track{ts.Video, ts.Audio} {
		if t != nil {
			out = append(out, t)
		}
	}
	return out
}

// Ticks converts a duration to the track's timescale.
func (t *Track) Ticks(d time.Duration) int64 {
	ts := int64(t.Timescale)
	return int64(d/time.Second)*ts + int64(d%time.Second)*ts/int64(time.Second)
}

// Duration converts ticks of the track's timescale to a duration.
func (t *Track) Duration(ticks int64) time.Duration {
	ts := int64(t.Timescale)
	return time.Duration(ticks/ts)*time.Second + time.Duration(ticks%ts)*time.Second/time.Duration(ts)
}

// Sample turns an access unit into a sample of this track; its Duration is set once the
// next sample's decode time is known.
func (t *Track) Sample(au *media.AccessUnit) (Sample, error) {
	dts := t.Ticks(au.DTS)
	s := Sample{DTS: dts, PTSOffset: int32(t.Ticks(au.PTS) - dts), Sync: au.Key, Payload: au.Payload}
	switch {
	case t.avcc:
	case t.Codec == media.CodecAV1:
		b, err := av1.Bitstream(au.Payload).Marshal()
		if err != nil {
			return Sample{}, fmt.Errorf("fmp4: av1 temporal unit at %s: %w", au.DTS, err)
		}
		s.Payload = [][]byte{b}
	case len(au.Payload) != 1:
		return Sample{}, fmt.Errorf("fmp4: %s access unit at %s has %d frames, want 1", t.Codec, au.DTS, len(au.Payload))
	}
	if !t.Video {
		s.Sync = true
	}
	return s, nil
}

// FrameTicks is how long an audio sample lasts, in the track's timescale, by its codec:
// 1024 (or 960) samples per AAC frame, what its header says for an Opus packet or a FLAC
// frame. 0 for
// video, whose samples last until the next one.
func (t *Track) FrameTicks(s *Sample) int64 {
	switch c := t.Config.(type) {
	case *mp4codecs.MPEG4Audio:
		if c.Config.FrameLengthFlag {
			return 960
		}
		return mpeg4audio.SamplesPerAccessUnit
	case *mp4codecs.Opus:
		if len(s.Payload) == 1 {
			if d := opus.PacketDuration2(s.Payload[0]); d > 0 {
				return d
			}
		}
		return 960 // 20 ms, Opus's usual packet
	case *mp4codecs.FLAC:
		if len(s.Payload) == 1 {
			if n := flacBlockSize(s.Payload[0]); n > 0 {
				return n
			}
		}
		return int64(c.StreamInfo.MaxBlockSize)
	}
	return 0
}

// Init marshals the init segment (ftyp + moov) of the given tracks.
func Init(tracks ...*Track) ([]byte, error) {
	var init mcfmp4.Init
	for _, t := range tracks {
		init.Tracks = append(init.Tracks, &mcfmp4.InitTrack{ID: int(t.ID), TimeScale: t.Timescale, Codec: t.Config})
	}
	var buf seekablebuffer.Buffer
	if err := init.Marshal(&buf); err != nil {
		return nil, fmt.Errorf("fmp4: marshal init of %d tracks: %w", len(tracks), err)
	}
	return buf.Bytes(), nil
}

// flacBlockSize is the number of samples of a FLAC frame, from its header (RFC 9639,
// 9.1.1), or 0 when the header does not say.
func flacBlockSize(f []byte) int64 {
	if len(f) < 5 || f[0] != 0xff || f[1]&0xfe != 0xf8 {
		return 0
	}
	switch code := f[2] >> 4; {
	case code == 1:
		return 192
	case code >= 2 && code <= 5:
		return 576 << (code - 2)
	case code >= 8:
		return 256 << (code - 8)
	case code == 6 || code == 7:
		// The size follows the coded frame or sample number, UTF-8-like: its first byte's
		// leading ones say how many bytes it takes.
		at := 4 + max(bits.LeadingZeros8(^f[4]), 1)
		if code == 6 && len(f) > at {
			return int64(f[at]) + 1
		}
		if code == 7 && len(f) > at+1 {
			return int64(f[at])<<8 | int64(f[at+1]) + 1
		}
	}
	return 0
}

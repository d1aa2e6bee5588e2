// Package record keeps every live stream as a fragmented MP4 in object storage, with the
// codecs as ingested, written through a local spool so the live path never waits on the
// network.
package record

import (
	"fmt"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/av1"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"onair/media"
)

// Fragment locates one moof+mdat pair in the recording.
type Fragment struct {
	Offset int64 `json:"o" bson:"o"`
	Size   int64 `json:"s" bson:"s"`
	// Start is the fragment's first DTS, counted from the recording's first sample.
	Start time.Duration `json:"t" bson:"t"`
	// Duration of the fragment on the leading track (video when present).
	Duration time.Duration `json:"d" bson:"d"`
	// Key is set when the fragment begins with a key frame, so playback can start there.
	Key bool `json:"k" bson:"k"`
}

// fragmenterConfig bounds fragment lengths.
type fragmenterConfig struct {
	// MinFragment: fragments end at the first key frame after this much media.
	MinFragment time.Duration
	// MaxFragment: a fragment ends here even without a key frame (long GOPs).
	MaxFragment time.Duration
}

// trackState is one track of the fragmenter.
type trackState struct {
	id        int
	timescale int64
	video     bool
	codec     media.Codec
	// pending holds the newest sample, whose duration is known only when the next arrives.
	pending    *fmp4.Sample
	pendingDTS int64
	samples    []*fmp4.Sample
	baseTime   int64
	lastDur    int64
}

// fragmenter turns access units into an fMP4 init segment and fragments.
type fragmenter struct {
	cfg      fragmenterConfig
	tracks   []*trackState
	video    *trackState
	audio    *trackState
	leading  *trackState
	seq      uint32
	started  bool
	fragKey  bool  // the current fragment starts with a key frame
	fragDTS  int64 // leading track DTS at the current fragment's start
	startDTS int64 // leading track DTS of the first recorded sample
}

func newFragmenter(cfg fragmenterConfig, tracks media.Tracks) (*fragmenter, []byte, error) {
	if cfg.MinFragment <= 0 {
		cfg.MinFragment = time.Second
	}
	if cfg.MaxFragment <= 0 {
		cfg.MaxFragment = 4 * cfg.MinFragment
	}
	cfg.MaxFragment = max(cfg.MaxFragment, cfg.MinFragment)
	f := &fragmenter{cfg: cfg}
	var init fmp4.Init
	if v := tracks.Video; v != nil {
		var c codecs.Codec
		switch v.Codec {
		case media.CodecH264:
			c = &codecs.H264{SPS: v.SPS, PPS: v.PPS}
		case media.CodecH265:
			c = &codecs.H265{VPS: v.VPS, SPS: v.SPS, PPS: v.PPS}
		case media.CodecAV1:
			c = &codecs.AV1{SequenceHeader: v.SequenceHeader}
		default:
			return nil, nil, fmt.Errorf("record: video codec %q not supported", v.Codec)
		}
		f.video = &trackState{id: len(f.tracks) + 1, timescale: 90000, video: true, codec: v.Codec}
		f.tracks = append(f.tracks, f.video)
		init.Tracks = append(init.Tracks, &fmp4.InitTrack{ID: f.video.id, TimeScale: 90000, Codec: c})
	}
	if a := tracks.Audio; a != nil && a.Codec == media.CodecAAC && a.AAC != nil && a.SampleRate > 0 {
		f.audio = &trackState{id: len(f.tracks) + 1, timescale: int64(a.SampleRate), codec: a.Codec}
		f.tracks = append(f.tracks, f.audio)
		init.Tracks = append(init.Tracks, &fmp4.InitTrack{
			ID: f.audio.id, TimeScale: uint32(a.SampleRate),
			Codec: &codecs.MPEG4Audio{Config: *a.AAC},
		})
	}
	if len(f.tracks) == 0 {
		return nil, nil, fmt.Errorf("record: no track to record")
	}
	f.leading = f.tracks[0]
	var buf seekablebuffer.Buffer
	if err := init.Marshal(&buf); err != nil {
		return nil, nil, fmt.Errorf("record: marshal init: %w", err)
	}
	return f, buf.Bytes(), nil
}

func toTimescale(d time.Duration, timescale int64) int64 {
	return int64(d/time.Second)*timescale + int64(d%time.Second)*timescale/int64(time.Second)
}

func fromTimescale(v, timescale int64) time.Duration {
	return time.Duration(v/timescale)*time.Second + time.Duration(v%timescale)*time.Second/time.Duration(timescale)
}

// write adds an access unit. When it completes a fragment, the fragment's bytes and its
// index entry (with Offset left to the caller) are returned.
func (f *fragmenter) write(au *media.AccessUnit) ([]byte, *Fragment, error) {
	t := f.audio
	if au.Video {
		t = f.video
	}
	if t == nil {
		return nil, nil, nil
	}
	payload, err := samplePayload(t.codec, au.Payload)
	if err != nil {
		return nil, nil, err
	}
	dts := toTimescale(au.DTS, t.timescale)
	// Recording starts at the first key frame of the leading track, so it decodes from 0.
	if !f.started {
		if t != f.leading || !au.Key {
			return nil, nil, nil
		}
		f.started = true
		f.startDTS, f.fragDTS, f.fragKey = dts, dts, true
	}
	sample := &fmp4.Sample{
		PTSOffset:       int32(toTimescale(au.PTS, t.timescale) - dts),
		IsNonSyncSample: t.video && !au.Key,
		Payload:         payload,
	}

	var out []byte
	var frag *Fragment
	if t == f.leading && t.pending != nil {
		elapsed := dts - f.fragDTS
		long := elapsed >= toTimescale(f.cfg.MaxFragment, t.timescale)
		if (au.Key && elapsed >= toTimescale(f.cfg.MinFragment, t.timescale)) || long {
			// Everything before this sample closes the fragment; its duration comes from this
			// sample's DTS.
			f.settle(t, dts)
			out, frag, err = f.flush(dts)
			if err != nil {
				return nil, nil, err
			}
			f.fragDTS, f.fragKey = dts, au.Key
		}
	}
	f.push(t, sample, dts)
	return out, frag, nil
}

// push queues sample, settling the previous one's duration.
func (f *fragmenter) push(t *trackState, s *fmp4.Sample, dts int64) {
	f.settle(t, dts)
	t.pending = s
	t.pendingDTS = dts
}

// settle moves the pending sample of t into the fragment, its duration ending at dts.
func (f *fragmenter) settle(t *trackState, dts int64) {
	if t.pending == nil {
		return
	}
	d := dts - t.pendingDTS
	if d < 0 {
		d = 0
	}
	t.pending.Duration = uint32(d)
	if d > 0 {
		t.lastDur = d
	}
	if len(t.samples) == 0 {
		t.baseTime = t.pendingDTS
	}
	t.samples = append(t.samples, t.pending)
	t.pending = nil
}

// flush emits the current fragment; nextDTS is the leading track's DTS where it ends.
func (f *fragmenter) flush(nextDTS int64) ([]byte, *Fragment, error) {
	lead := f.leading
	if len(lead.samples) == 0 {
		return nil, nil, nil
	}
	part := fmp4.Part{SequenceNumber: f.seq + 1}
	for _, t := range f.tracks {
		if len(t.samples) == 0 {
			continue
		}
		part.Tracks = append(part.Tracks, &fmp4.PartTrack{ID: t.id, BaseTime: uint64(t.baseTime), Samples: t.samples})
	}
	var buf seekablebuffer.Buffer
	if err := part.Marshal(&buf); err != nil {
		return nil, nil, fmt.Errorf("record: marshal fragment %d: %w", f.seq+1, err)
	}
	f.seq++
	frag := &Fragment{
		Size:     int64(buf.Len()),
		Start:    fromTimescale(f.fragDTS-f.startDTS, lead.timescale),
		Duration: fromTimescale(nextDTS-f.fragDTS, lead.timescale),
		Key:      f.fragKey,
	}
	for _, t := range f.tracks {
		t.samples = nil
	}
	return buf.Bytes(), frag, nil
}

// finish closes the last fragment at the end of the stream. The final samples have no
// successor, so they last as long as the sample before them.
func (f *fragmenter) finish() ([]byte, *Fragment, error) {
	if !f.started {
		return nil, nil, nil
	}
	end := f.leading.pendingDTS + f.leading.lastDur
	for _, t := range f.tracks {
		if t.pending != nil {
			f.settle(t, t.pendingDTS+t.lastDur)
		}
	}
	return f.flush(end)
}

func samplePayload(codec media.Codec, payload [][]byte) ([]byte, error) {
	switch codec {
	case media.CodecH264, media.CodecH265:
		b, err := h264.AVCC(payload).Marshal() // length-prefixed NAL units, the same for H.265
		if err != nil {
			return nil, fmt.Errorf("record: %s access unit: %w", codec, err)
		}
		return b, nil
	case media.CodecAV1:
		b, err := av1.Bitstream(payload).Marshal()
		if err != nil {
			return nil, fmt.Errorf("record: av1 temporal unit: %w", err)
		}
		return b, nil
	case media.CodecAAC:
		if len(payload) != 1 {
			return nil, fmt.Errorf("record: aac access unit with %d frames, want 1", len(payload))
		}
		return payload[0], nil
	}
	return nil, fmt.Errorf("record: codec %q not supported", codec)
}

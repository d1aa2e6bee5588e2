package upload

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"onair/media"
	"onair/media/fmp4"
)

// Sink takes the recording's bytes in order.
type Sink interface {
	Write(ctx context.Context, p []byte) error
}

// Segment is one segment of the recording: its length in bytes and in time, and whether
// it starts with a key frame. Segments follow each other from the end of the init.
type Segment struct {
	Size     int64
	Duration time.Duration
	Key      bool
}

// Result describes the recording Remux wrote.
type Result struct {
	InitSize int64
	Size     int64
	Duration time.Duration
	Segments []Segment
	// VideoCodec and AudioCodec name the codecs ("" for no audio); Width and Height are
	// the video's size when its codec configuration says.
	VideoCodec, AudioCodec string
	Width, Height          int
	VideoSamples           int
}

// SegmentTarget is the shortest segment: a segment ends at the first key frame after it.
const SegmentTarget = 2 * time.Second

// maxSegmentBytes bounds what one segment holds in memory (its samples, then its
// fragments): a file whose key frames lie further apart is refused.
const maxSegmentBytes = 256 << 20

// Remux writes the recording of m, read from src, to dst.
func Remux(ctx context.Context, m *Movie, src Source, dst Sink) (Result, error) {
	var res Result
	vt := &fmp4.Track{ID: fmp4.VideoID, Timescale: m.Video.Timescale, Video: true, Codec: mediaCodec(m.Video), Config: m.Video.Codec}
	tracks := []*fmp4.Track{vt}
	var at *fmp4.Track
	if m.Audio != nil {
		at = &fmp4.Track{ID: fmp4.AudioID, Timescale: m.Audio.Timescale, Codec: mediaCodec(m.Audio), Config: m.Audio.Codec}
		tracks = append(tracks, at)
		res.AudioCodec = m.Audio.CodecName()
	}
	res.VideoCodec = m.Video.CodecName()
	res.Width, res.Height = dimensions(m.Video)
	init, err := fmp4.Init(tracks...)
	if err != nil {
		return res, refuse("the codec configuration cannot be written: %v", err)
	}
	if err := dst.Write(ctx, init); err != nil {
		return res, err
	}
	res.InitSize, res.Size = int64(len(init)), int64(len(init))

	vs, as := m.Video.Samples, []Sample(nil)
	if m.Audio != nil {
		as = m.Audio.Samples
	}
	target := int64(SegmentTarget) * int64(m.Video.Timescale) / int64(time.Second)
	seq := uint32(0)
	ai := 0
	for vi := 0; vi < len(vs); {
		end := vi + 1
		for end < len(vs) && (!vs[end].Sync || vs[end].DTS-vs[vi].DTS < target) {
			end++
		}
		segEnd := vs[len(vs)-1].DTS + int64(vs[len(vs)-1].Duration)
		if end < len(vs) {
			segEnd = vs[end].DTS
		}
		aEnd := len(as)
		if end < len(vs) && m.Audio != nil {
			cut := segEnd * int64(m.Audio.Timescale) / int64(m.Video.Timescale)
			aEnd = ai
			for aEnd < len(as) && as[aEnd].DTS < cut {
				aEnd++
			}
		}
		seg, err := writeSegment(ctx, src, dst, &seq, vt, m.Video, vs[vi:end], at, m.Audio, as[ai:aEnd])
		if err != nil {
			return res, err
		}
		seg.Duration = durationOf(segEnd-vs[vi].DTS, m.Video.Timescale)
		res.Segments = append(res.Segments, seg)
		res.Size += seg.Size
		res.Duration += seg.Duration
		vi, ai = end, aEnd
	}
	res.VideoSamples = len(vs)
	return res, nil
}

func durationOf(ticks int64, scale uint32) time.Duration {
	ts := int64(scale)
	return time.Duration(ticks/ts)*time.Second + time.Duration(ticks%ts)*time.Second/time.Duration(ts)
}

// writeSegment reads the segment's samples and writes its video fragment, then its audio
// fragment.
func writeSegment(ctx context.Context, src Source, dst Sink, seq *uint32, vt *fmp4.Track, v *Track, vs []Sample,
	at *fmp4.Track, a *Track, as []Sample) (Segment, error) {
	total := int64(0)
	for _, s := range vs {
		total += int64(s.Size)
	}
	for _, s := range as {
		total += int64(s.Size)
	}
	if total > maxSegmentBytes {
		return Segment{}, refuse("key frames lie too far apart (%d bytes between two of them, at most %d)", total, maxSegmentBytes)
	}
	// One pass over the file for both tracks: their chunks are interleaved.
	all, err := payloads(ctx, src, append(slices.Clip(vs), as...))
	if err != nil {
		return Segment{}, err
	}
	vp, ap := all[:len(vs)], all[len(vs):]
	seg := Segment{Key: vs[0].Sync}
	vsamples := make([]fmp4.Sample, len(vs))
	for i, s := range vs {
		p := vp[i]
		if v.lengthSize != 4 {
			if p, err = toLength4(p, v.lengthSize); err != nil {
				return Segment{}, refuse("video sample at byte %d: %v", s.Offset, err)
			}
		}
		vsamples[i] = fmp4.Sample{DTS: s.DTS, PTSOffset: s.PTSOffset, Duration: s.Duration, Sync: s.Sync, Payload: [][]byte{p}}
	}
	var asamples []fmp4.Sample
	size := vt.FragmentSize(vsamples)
	if at != nil && len(as) > 0 {
		asamples = make([]fmp4.Sample, len(as))
		for i, s := range as {
			asamples[i] = fmp4.Sample{DTS: s.DTS, Duration: s.Duration, Sync: true, Payload: [][]byte{ap[i]}}
		}
		size += at.FragmentSize(asamples)
	}
	*seq++
	buf := vt.AppendFragment(make([]byte, 0, size), *seq, vs[0].DTS, vsamples)
	if asamples != nil {
		*seq++
		buf = at.AppendFragment(buf, *seq, as[0].DTS, asamples)
	}
	seg.Size = int64(len(buf))
	return seg, dst.Write(ctx, buf)
}

// Reads of sample data are merged across gaps up to maxGap, in reads of at most maxRead.
const (
	maxGap  = 256 << 10
	maxRead = 16 << 20
)

// payloads reads the samples' bytes, merging reads of samples that lie close together
// (a file interleaves its tracks' chunks, so a segment's samples are mostly one range).
func payloads(ctx context.Context, src Source, ss []Sample) ([][]byte, error) {
	out := make([][]byte, len(ss))
	order := make([]int, len(ss))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return int(ss[a].Offset - ss[b].Offset) })
	for k := 0; k < len(order); {
		start := ss[order[k]].Offset
		end := start + int64(ss[order[k]].Size)
		j := k + 1
		for j < len(order) {
			s := ss[order[j]]
			e := max(end, s.Offset+int64(s.Size))
			if s.Offset > end+maxGap || e-start > maxRead {
				break
			}
			end = e
			j++
		}
		b, err := src.ReadAt(ctx, start, end-start)
		if err != nil {
			return nil, err
		}
		for _, i := range order[k:j] {
			o := ss[i].Offset - start
			out[i] = b[o : o+int64(ss[i].Size)]
		}
		k = j
	}
	return out, nil
}

// toLength4 rewrites NAL units prefixed with n-byte lengths to 4-byte ones.
func toLength4(p []byte, n int) ([]byte, error) {
	var out []byte
	for len(p) > 0 {
		if len(p) < n {
			return nil, fmt.Errorf("truncated NAL unit length")
		}
		var l int
		for _, c := range p[:n] {
			l = l<<8 | int(c)
		}
		p = p[n:]
		if l > len(p) {
			return nil, fmt.Errorf("NAL unit of %d bytes in %d", l, len(p))
		}
		out = binary.BigEndian.AppendUint32(out, uint32(l))
		out = append(out, p[:l]...)
		p = p[l:]
	}
	return out, nil
}

func mediaCodec(t *Track) media.Codec {
	switch t.CodecName() {
	case "h264":
		return media.CodecH264
	case "h265":
		return media.CodecH265
	case "av1":
		return media.CodecAV1
	case "aac":
		return media.CodecAAC
	case "opus":
		return media.CodecOpus
	}
	return ""
}

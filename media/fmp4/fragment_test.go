package fmp4

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	mcfmp4 "github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"

	"onair/media"
)

var (
	testSPS = []byte{0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50, 0x05, 0xbb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x83, 0x19, 0x60}
	testPPS = []byte{0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0}
)

func testTracks(t testing.TB) Tracks {
	t.Helper()
	ts, err := NewTracks(media.Tracks{
		Video: &media.VideoTrack{Codec: media.CodecH264, SPS: testSPS, PPS: testPPS, Width: 1280, Height: 720},
		Audio: &media.AudioTrack{Codec: media.CodecAAC, SampleRate: 48000, Channels: 2,
			AAC: &mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 48000, ChannelConfig: 2}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// randomSamples makes n samples like an encoder's: a key frame first, composition offsets
// for B-frames when bframes is set.
func randomSamples(r *rand.Rand, n int, video, bframes bool) []Sample {
	out := make([]Sample, n)
	dts := r.Int64N(1 << 40)
	for i := range out {
		var payload [][]byte
		for range 1 + r.IntN(3) {
			p := make([]byte, 1+r.IntN(3000))
			for j := range p {
				p[j] = byte(r.Uint32())
			}
			payload = append(payload, p)
		}
		if !video {
			payload = payload[:1]
		}
		out[i] = Sample{DTS: dts, Duration: uint32(1 + r.IntN(6000)), Sync: !video || i == 0, Payload: payload}
		if bframes {
			out[i].PTSOffset = int32(r.IntN(9000)) - 3000
		}
		dts += int64(out[i].Duration)
	}
	return out
}

// reference marshals the samples with mediacommon, whose layout AppendFragment follows.
func reference(t *testing.T, tr *Track, seq uint32, samples []Sample) []byte {
	t.Helper()
	var mc []*mcfmp4.Sample
	for _, s := range samples {
		payload := s.Payload[0]
		if tr.avcc {
			var err error
			if payload, err = h264.AVCC(s.Payload).Marshal(); err != nil {
				t.Fatal(err)
			}
		}
		mc = append(mc, &mcfmp4.Sample{Duration: s.Duration, PTSOffset: s.PTSOffset, IsNonSyncSample: !s.Sync, Payload: payload})
	}
	part := mcfmp4.Part{SequenceNumber: seq, Tracks: []*mcfmp4.PartTrack{{ID: int(tr.ID), BaseTime: uint64(samples[0].DTS), Samples: mc}}}
	var buf seekablebuffer.Buffer
	if err := part.Marshal(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestAppendFragmentMatchesMediacommon(t *testing.T) {
	ts := testTracks(t)
	r := rand.New(rand.NewPCG(1, 2))
	cases := []struct {
		name    string
		track   *Track
		bframes bool
		n       int
	}{
		{"video", ts.Video, false, 6},
		{"video with B-frames", ts.Video, true, 7},
		{"one key frame", ts.Video, false, 1},
		{"audio", ts.Audio, false, 10},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for range 20 {
				samples := randomSamples(r, c.n, c.track.Video, c.bframes)
				seq := r.Uint32()
				got := c.track.AppendFragment([]byte("prefix"), seq, samples[0].DTS, samples)
				if !bytes.HasPrefix(got, []byte("prefix")) {
					t.Fatal("AppendFragment dropped what dst held")
				}
				got = got[len("prefix"):]
				if want := reference(t, c.track, seq, samples); !bytes.Equal(got, want) {
					t.Fatalf("fragment differs from mediacommon's:\n got %x\nwant %x", got[:min(len(got), 160)], want[:min(len(want), 160)])
				}
				if n := c.track.FragmentSize(samples); n != len(got) {
					t.Fatalf("FragmentSize = %d, AppendFragment wrote %d", n, len(got))
				}
				var parts mcfmp4.Parts
				if err := parts.Unmarshal(got); err != nil || len(parts) != 1 || len(parts[0].Tracks[0].Samples) != c.n {
					t.Fatalf("mediacommon reads back %d parts: %v", len(parts), err)
				}
			}
		})
	}
}

func TestNewTracks(t *testing.T) {
	if _, err := NewTracks(media.Tracks{}); err == nil {
		t.Fatal("no tracks accepted")
	}
	ts, err := NewTracks(media.Tracks{Audio: &media.AudioTrack{Codec: media.CodecOpus, SampleRate: 44100, Channels: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if ts.Video != nil || ts.Audio.Timescale != 48000 || ts.Audio.ID != AudioID {
		t.Fatalf("opus track = %+v", ts.Audio)
	}
	init, err := Init(ts.Audio)
	if err != nil {
		t.Fatal(err)
	}
	var back mcfmp4.Init
	if err := back.Unmarshal(bytes.NewReader(init)); err != nil || len(back.Tracks) != 1 {
		t.Fatalf("init of an Opus track: %v", err)
	}
	both := testTracks(t)
	init, err = Init(both.List()...)
	if err != nil {
		t.Fatal(err)
	}
	back = mcfmp4.Init{}
	if err := back.Unmarshal(bytes.NewReader(init)); err != nil || len(back.Tracks) != 2 || back.Tracks[0].ID != VideoID || back.Tracks[1].ID != AudioID {
		t.Fatalf("init of both tracks: %+v %v", back.Tracks, err)
	}
}

// A 200 ms part of 720p30 video: six frames of 10 kB.
func benchSamples() []Sample {
	s := make([]Sample, 6)
	for i := range s {
		s[i] = Sample{DTS: int64(i) * 3000, Duration: 3000, PTSOffset: 3000, Sync: i == 0, Payload: [][]byte{make([]byte, 10_000)}}
	}
	return s
}

func BenchmarkAppendFragment(b *testing.B) {
	ts := testTracks(b)
	samples := benchSamples()
	b.ReportAllocs()
	for b.Loop() {
		buf := make([]byte, 0, ts.Video.FragmentSize(samples))
		_ = ts.Video.AppendFragment(buf, 1, 0, samples)
	}
}

// BenchmarkMediacommonPart is the same part through mediacommon's marshaller, for
// comparison.
func BenchmarkMediacommonPart(b *testing.B) {
	var mc []*mcfmp4.Sample
	for _, s := range benchSamples() {
		mc = append(mc, &mcfmp4.Sample{Duration: s.Duration, PTSOffset: s.PTSOffset, IsNonSyncSample: !s.Sync, Payload: s.Payload[0]})
	}
	b.ReportAllocs()
	for b.Loop() {
		var buf seekablebuffer.Buffer
		part := mcfmp4.Part{SequenceNumber: 1, Tracks: []*mcfmp4.PartTrack{{ID: 1, Samples: mc}}}
		if err := part.Marshal(&buf); err != nil {
			b.Fatal(err)
		}
	}
}

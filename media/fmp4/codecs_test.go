package fmp4

import (
	"bytes"
	"testing"
	"time"

	mp4codecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"onair/media"
)

// flacStreamInfo is a STREAMINFO block of 48 kHz stereo 16-bit FLAC, 4608-sample blocks.
var flacStreamInfo = []byte{
	0x12, 0x00, 0x12, 0x00, 0, 0, 0, 0, 0, 0,
	0x0b, 0xb8, 0x02, 0xf0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
}

// VP9, Opus and FLAC map to fMP4 tracks whose init segment carries their sample entries.
func TestNewTracksVP9OpusFLAC(t *testing.T) {
	vp9 := &media.VideoTrack{Codec: media.CodecVP9, Width: 320, Height: 240,
		VP9: &media.VP9Config{Profile: 0, Level: 21, BitDepth: 8, ChromaSubsampling: 1}}
	for _, tt := range []struct {
		name      string
		tracks    media.Tracks
		timescale uint32 // of the audio
		entries   []string
	}{
		{"vp9 opus", media.Tracks{Video: vp9, Audio: &media.AudioTrack{Codec: media.CodecOpus, SampleRate: 48000, Channels: 2}},
			48000, []string{"vp09", "vpcC", "Opus", "dOps"}},
		{"vp9 flac", media.Tracks{Video: vp9, Audio: &media.AudioTrack{Codec: media.CodecFLAC, FLAC: flacStreamInfo, SampleRate: 48000, Channels: 2}},
			48000, []string{"vp09", "fLaC", "dfLa"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ts, err := NewTracks(tt.tracks)
			if err != nil {
				t.Fatal(err)
			}
			if ts.Video == nil || ts.Audio == nil {
				t.Fatalf("tracks %+v: one is missing", ts)
			}
			if v, ok := ts.Video.Config.(*mp4codecs.VP9); !ok || v.Width != 320 || v.BitDepth != 8 || ts.Video.VP9Level != 21 {
				t.Fatalf("video config %#v, level %d", ts.Video.Config, ts.Video.VP9Level)
			}
			if ts.Audio.Timescale != tt.timescale {
				t.Fatalf("audio timescale %d, want %d", ts.Audio.Timescale, tt.timescale)
			}
			init, err := Init(ts.List()...)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range tt.entries {
				if !bytes.Contains(init, []byte(e)) {
					t.Errorf("init segment has no %q box", e)
				}
			}
			s, err := ts.Video.Sample(&media.AccessUnit{Video: true, Key: true, DTS: time.Second, PTS: time.Second, Payload: [][]byte{{0x82, 0x49}}})
			if err != nil || len(s.Payload) != 1 || !s.Sync || s.DTS != VideoTimescale {
				t.Fatalf("vp9 sample %+v, %v", s, err)
			}
		})
	}
}

func TestFLACFrameTicks(t *testing.T) {
	ts, err := NewTracks(media.Tracks{Audio: &media.AudioTrack{Codec: media.CodecFLAC, FLAC: flacStreamInfo, SampleRate: 48000, Channels: 2}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		frame []byte
		want  int64
	}{
		{"block size code 1", []byte{0xff, 0xf8, 0x19, 0x08, 0x00}, 192},
		{"block size code 5 (4608)", []byte{0xff, 0xf8, 0x59, 0x08, 0x00}, 4608},
		{"block size code 12 (4096)", []byte{0xff, 0xf8, 0xc9, 0x08, 0x00}, 4096},
		{"8-bit size after a 1-byte number", []byte{0xff, 0xf8, 0x69, 0x08, 0x05, 99}, 100},
		{"16-bit size after a 2-byte number", []byte{0xff, 0xf9, 0x79, 0x08, 0xc2, 0x80, 0x03, 0xe7}, 1000},
		{"not a frame: the streaminfo's block size", []byte{1, 2, 3, 4, 5}, 4608},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := ts.Audio.FrameTicks(&Sample{Payload: [][]byte{tt.frame}}); got != tt.want {
				t.Fatalf("got %d ticks, want %d", got, tt.want)
			}
		})
	}
}

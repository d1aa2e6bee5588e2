package flv

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"onair/media"
)

// mtVideo is an Enhanced RTMP v2 multitrack video tag: header, multitrack type and packet
// type, then the tracks as the type lays them out.
func mtVideo(frameType, kind, packetType byte, fourCC string, tracks ...[]byte) []byte {
	b := []byte{0x80 | frameType<<4 | exMultitrack, kind<<4 | packetType}
	if kind != multitrackManyTracksManyCodecs {
		b = append(b, fourCC...)
	}
	for _, t := range tracks {
		b = append(b, t...)
	}
	return b
}

// mtTrack is one track of a multitrack tag: its FourCC (several codecs), id, and size
// (several tracks).
func mtTrack(kind byte, fourCC string, id byte, body []byte) []byte {
	var b []byte
	if kind == multitrackManyTracksManyCodecs {
		b = append(b, fourCC...)
	}
	b = append(b, id)
	if kind != multitrackOneTrack {
		b = append(b, byte(len(body)>>16), byte(len(body)>>8), byte(len(body)))
	}
	return append(b, body...)
}

func TestParseVideoTags(t *testing.T) {
	cts := []byte{0, 0, 40}
	frame := []byte{0, 0, 0, 1, 0x65}
	type want struct {
		track byte
		codec media.Codec
		kind  PacketKind
		data  []byte
	}
	tests := []struct {
		name    string
		in      []byte
		want    []want
		wantErr string
	}{
		{name: "plain enhanced tag is track 0", in: exFrame(1, "avc1", 40, frame),
			want: []want{{0, media.CodecH264, PacketFrame, frame}}},
		{name: "one track", in: mtVideo(1, multitrackOneTrack, exCodedFrames, "avc1", mtTrack(multitrackOneTrack, "", 2, cat(cts, frame))),
			want: []want{{2, media.CodecH264, PacketFrame, frame}}},
		{name: "many tracks of one codec", in: mtVideo(1, multitrackManyTracks, exCodedFramesX, "hvc1",
			mtTrack(multitrackManyTracks, "", 1, []byte{1, 2}), mtTrack(multitrackManyTracks, "", 2, []byte{3})),
			want: []want{{1, media.CodecH265, PacketFrame, []byte{1, 2}}, {2, media.CodecH265, PacketFrame, []byte{3}}}},
		{name: "many tracks of many codecs", in: mtVideo(1, multitrackManyTracksManyCodecs, exSequenceStart, "",
			mtTrack(multitrackManyTracksManyCodecs, "av01", 0, []byte{9}), mtTrack(multitrackManyTracksManyCodecs, "vp09", 1, []byte{8})),
			want: []want{{0, media.CodecAV1, PacketConfig, []byte{9}}, {1, media.CodecVP9, PacketConfig, []byte{8}}}},
		{name: "modex before multitrack", in: cat([]byte{0x80 | 1<<4 | exModEx, 2, 0, 0, 0, 0x10 | exMultitrack},
			mtVideo(1, multitrackOneTrack, exCodedFramesX, "avc1", mtTrack(multitrackOneTrack, "", 1, frame))[1:]),
			want: []want{{1, media.CodecH264, PacketFrame, frame}}},
		{name: "track size past the message", in: mtVideo(1, multitrackManyTracks, exCodedFramesX, "avc1", []byte{1, 0, 0, 9, 1}),
			wantErr: "track 1 of 9 bytes, 1 left"},
		{name: "track size missing", in: mtVideo(1, multitrackManyTracks, exCodedFramesX, "avc1", []byte{1, 0}),
			wantErr: "track 1 size missing"},
		{name: "nested multitrack", in: mtVideo(1, multitrackOneTrack, exMultitrack, "avc1", []byte{1}),
			wantErr: "inside a multitrack packet"},
		{name: "reserved multitrack type", in: mtVideo(1, 3, exCodedFramesX, "avc1", []byte{1}), wantErr: "type 3 reserved"},
		{name: "unsupported codec in a track", in: mtVideo(1, multitrackManyTracksManyCodecs, exSequenceStart, "",
			mtTrack(multitrackManyTracksManyCodecs, "vp08", 1, []byte{1})), wantErr: `track 1: video tag: fourcc "vp08"`},
		{name: "too many tracks", in: mtVideo(1, multitrackManyTracks, exCodedFramesX, "avc1",
			bytes.Repeat(mtTrack(multitrackManyTracks, "", 1, []byte{1}), MaxTracks+1)), wantErr: "more than 8 tracks"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseVideoTags(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("%d tracks, want %d", len(got), len(tt.want))
			}
			for i, w := range tt.want {
				g := got[i]
				if g.Track != w.track || g.Codec != w.codec || g.Kind != w.kind || !bytes.Equal(g.Data, w.data) {
					t.Errorf("track %d: %+v, want %+v", i, g, w)
				}
			}
		})
	}
}

func TestParseAudioTags(t *testing.T) {
	// Two Opus tracks in one message.
	in := []byte{0x90 | exAudioMultitrack, multitrackManyTracks<<4 | exAudioCodedFrames}
	in = append(in, "Opus"...)
	in = append(in, mtTrack(multitrackManyTracks, "", 0, []byte{1, 2})...)
	in = append(in, mtTrack(multitrackManyTracks, "", 3, []byte{4})...)
	got, err := ParseAudioTags(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Track != 0 || got[1].Track != 3 || got[1].Codec != media.CodecOpus || !bytes.Equal(got[1].Data, []byte{4}) {
		t.Fatalf("got %+v", got)
	}
}

// A multitrack publish as OBS sends it: track 0 plain, track 1 in a one-track wrapper,
// both H.264: the demuxer keeps a configuration per track and times both on one clock.
func TestDemuxerMultitrack(t *testing.T) {
	d, f, key := h264Fixture(t)
	keyFrame := lengthPrefixed(key...)
	wrap := func(frameType, packetType byte, body []byte) []byte {
		return mtVideo(frameType, multitrackOneTrack, packetType, "avc1", mtTrack(multitrackOneTrack, "", 1, body))
	}
	units, err := d.VideoUnits(1000, wrap(1, exSequenceStart, f.avcRecord), received)
	if err != nil || len(units) != 0 {
		t.Fatalf("sequence start of track 1: %v, %d units", err, len(units))
	}
	if v := d.TrackVideo(1); v == nil || v.Codec != media.CodecH264 || v.Width == 0 || d.TrackVideo(2) != nil {
		t.Fatalf("track 1's configuration: %+v", v)
	}
	units, err = d.VideoUnits(1000, avcTag(1, 1, 0, keyFrame), received)
	if err != nil || len(units) != 1 || units[0].Track != 0 || units[0].AU.DTS != 0 || !units[0].AU.Key {
		t.Fatalf("track 0's key frame: %v, %+v", err, units)
	}
	units, err = d.VideoUnits(1033, wrap(1, exCodedFrames, cat([]byte{0, 0, 0}, keyFrame)), received)
	if err != nil || len(units) != 1 || units[0].Track != 1 || units[0].AU.DTS != 33*time.Millisecond || !units[0].AU.Key {
		t.Fatalf("track 1's key frame: %v, %+v", err, units)
	}
	// A frame of a track whose sequence header never came is skipped, told apart.
	units, err = d.VideoUnits(1066, mtVideo(1, multitrackOneTrack, exCodedFramesX, "avc1", mtTrack(multitrackOneTrack, "", 5, keyFrame)), received)
	if len(units) != 0 || !errors.Is(err, ErrNotConfigured) || !strings.Contains(err.Error(), "track 5") {
		t.Fatalf("a frame of an unconfigured track: %v, %+v", err, units)
	}
	// Video (track 0's) leaves the other tracks' units out.
	if au, err := d.Video(1100, wrap(2, exCodedFrames, cat([]byte{0, 0, 0}, keyFrame)), received); au != nil || err != nil {
		t.Fatalf("Video returned track 1's unit: %+v, %v", au, err)
	}
	// Past MaxTracks tracks further ones are dropped.
	for id := byte(2); id < 20; id++ {
		_, _ = d.VideoUnits(1200, mtVideo(1, multitrackOneTrack, exSequenceStart, "avc1", mtTrack(multitrackOneTrack, "", id, f.avcRecord)), received)
	}
	if len(d.tracks) != MaxTracks-1 || d.TrackVideo(19) != nil {
		t.Fatalf("%d further tracks kept", len(d.tracks))
	}
}

// Of a multitrack publish's audio tracks the first one seen is the stream's audio.
func TestDemuxerMultitrackAudio(t *testing.T) {
	f := loadFixtures(t)
	mt := func(packetType byte, tracks ...[]byte) []byte {
		b := []byte{0x90 | exAudioMultitrack, multitrackManyTracks<<4 | packetType}
		b = append(b, "mp4a"...)
		for _, tr := range tracks {
			b = append(b, tr...)
		}
		return b
	}
	var d Demuxer
	if _, err := d.Audio(0, mt(exAudioSequenceStart, mtTrack(multitrackManyTracks, "", 2, f.aacConfig), mtTrack(multitrackManyTracks, "", 0, f.aacConfig)), received); err != nil {
		t.Fatal(err)
	}
	if d.Tracks().Audio == nil {
		t.Fatal("no audio track from the multitrack sequence start")
	}
	au, err := d.Audio(20, mt(exAudioCodedFrames, mtTrack(multitrackManyTracks, "", 0, []byte{1}), mtTrack(multitrackManyTracks, "", 2, []byte{2, 2})), received)
	if err != nil || au == nil || !bytes.Equal(au.Payload[0], []byte{2, 2}) {
		t.Fatalf("the first track seen (2) is not the one kept: %v, %+v", err, au)
	}
	// A message of the other track alone carries nothing.
	if au, err := d.Audio(40, mt(exAudioCodedFrames, mtTrack(multitrackManyTracks, "", 0, []byte{1})), received); au != nil || err != nil {
		t.Fatalf("the other track's frame was kept: %v, %+v", err, au)
	}
}

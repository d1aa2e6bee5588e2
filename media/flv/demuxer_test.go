package flv

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"

	"onair/media"
)

const ms = time.Millisecond

var received = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// feed sends one message and fails the test on error.
func feed(t *testing.T, d *Demuxer, m message) *media.AccessUnit {
	t.Helper()
	var au *media.AccessUnit
	var err error
	if m.video {
		au, err = d.Video(m.timestamp, m.body, received)
	} else {
		au, err = d.Audio(m.timestamp, m.body, received)
	}
	if err != nil {
		t.Fatalf("message at %d ms: %v", m.timestamp, err)
	}
	if au != nil {
		checkAU(t, au, m.video)
	}
	return au
}

// checkAU checks what every access unit must satisfy.
func checkAU(t testing.TB, au *media.AccessUnit, video bool) {
	t.Helper()
	if au.Video != video {
		t.Fatalf("Video = %v, want %v", au.Video, video)
	}
	if au.DTS < 0 || au.PTS < 0 {
		t.Fatalf("negative time: DTS %v PTS %v", au.DTS, au.PTS)
	}
	if len(au.Payload) == 0 {
		t.Fatal("access unit without payload")
	}
	for i, p := range au.Payload {
		if len(p) == 0 {
			t.Fatalf("payload element %d is empty", i)
		}
	}
}

func clonePayload(p [][]byte) [][]byte {
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = bytes.Clone(p[i])
	}
	return out
}

func nalTypes(au *media.AccessUnit, h265 bool) []uint8 {
	var out []uint8
	for _, n := range au.Payload {
		if h265 {
			out = append(out, h265NALType(n))
		} else {
			out = append(out, h264NALType(n))
		}
	}
	return out
}

func TestDemuxerH264AAC(t *testing.T) {
	f := loadFixtures(t)
	var d Demuxer
	var videoAUs, audioAUs int
	for _, m := range f.flv {
		au := feed(t, &d, m)
		if au == nil {
			continue
		}
		if au.Received != received {
			t.Fatalf("Received = %v", au.Received)
		}
		// The fixture's first message with an access unit is at 0 ms.
		if au.DTS != time.Duration(m.timestamp)*ms {
			t.Fatalf("DTS %v, want %d ms", au.DTS, m.timestamp)
		}
		if !au.Video {
			audioAUs++
			if !au.Key || au.PTS != au.DTS || len(au.Payload) != 1 || !bytes.Equal(au.Payload[0], m.body[2:]) {
				t.Fatalf("audio AU %+v does not carry the frame", au)
			}
			continue
		}
		videoAUs++
		tag, err := ParseVideoTag(m.body)
		if err != nil {
			t.Fatal(err)
		}
		if au.PTS-au.DTS != time.Duration(tag.CompositionTime)*ms {
			t.Fatalf("PTS-DTS %v, want composition time %d ms", au.PTS-au.DTS, tag.CompositionTime)
		}
		types := nalTypes(au, false)
		if bytes.IndexByte(types, h264NALAUD) >= 0 {
			t.Fatalf("AUD kept: types %v", types)
		}
		if au.Key != (bytes.IndexByte(types, h264NALIDR) >= 0) || au.Key != (tag.FrameType == 1) {
			t.Fatalf("Key %v for types %v, frame type %d", au.Key, types, tag.FrameType)
		}
		if au.Key && (!bytes.Equal(au.Payload[0], f.h264SPS) || !bytes.Equal(au.Payload[1], f.h264PPS)) {
			t.Fatalf("key frame does not start with SPS, PPS: types %v", types)
		}
		if !au.Key && (bytes.IndexByte(types, h264NALSPS) >= 0 || bytes.IndexByte(types, h264NALPPS) >= 0) {
			t.Fatalf("parameter sets added to a non-key frame: %v", types)
		}
	}
	if videoAUs != 6 || audioAUs != 10 {
		t.Fatalf("%d video and %d audio access units, want 6 and 10", videoAUs, audioAUs)
	}
	tr := d.Tracks()
	if v := tr.Video; v == nil || v.Codec != media.CodecH264 || v.Width != 160 || v.Height != 120 ||
		!bytes.Equal(v.SPS, f.h264SPS) || !bytes.Equal(v.PPS, f.h264PPS) {
		t.Fatalf("video track %+v", tr.Video)
	}
	if a := tr.Audio; a == nil || a.Codec != media.CodecAAC || a.SampleRate != 44100 || a.Channels != 1 || a.AAC == nil {
		t.Fatalf("audio track %+v", tr.Audio)
	}
	if d.Generation() != 2 {
		t.Fatalf("Generation %d, want 2", d.Generation())
	}
}

func TestDemuxerH265(t *testing.T) {
	f := loadFixtures(t)
	var d Demuxer
	feed(t, &d, message{video: true, body: exTag(1, exSequenceStart, "hvc1", f.hevcRecord)})
	v := d.Tracks().Video
	if v == nil || v.Codec != media.CodecH265 || v.Width != 160 || v.Height != 120 ||
		!bytes.Equal(v.VPS, f.vps) || !bytes.Equal(v.SPS, f.sps265) || !bytes.Equal(v.PPS, f.pps265) {
		t.Fatalf("video track %+v", v)
	}

	withoutParams := func(au [][]byte) [][]byte {
		var out [][]byte
		for _, n := range au {
			if typ := h265NALType(n); typ < h265NALVPS || typ > h265NALPPS {
				out = append(out, n)
			}
		}
		return out
	}
	tests := []struct {
		name      string
		body      []byte
		wantKey   bool
		wantTypes []uint8
		wantCTS   time.Duration
	}{
		{name: "IDR with in-band parameter sets, cts", body: exFrame(1, "hvc1", 33, lengthPrefixed(f.h265AUs[0]...)),
			wantKey: true, wantTypes: []uint8{32, 33, 34, 39, 20}, wantCTS: 33 * ms},
		{name: "CRA without parameter sets gets them", body: exFrame(1, "hvc1", 0, lengthPrefixed(withoutParams(f.h265AUs[1])...)),
			wantKey: true, wantTypes: []uint8{32, 33, 34, 39, 21}},
		{name: "coded frames x", body: exTag(2, exCodedFramesX, "hvc1", lengthPrefixed(f.h265AUs[2]...)),
			wantTypes: []uint8{8}},
		{name: "inter frame", body: exFrame(2, "hvc1", 66, lengthPrefixed(f.h265AUs[3]...)),
			wantTypes: []uint8{1}, wantCTS: 66 * ms},
		{name: "key frame with only the SPS in-band gets VPS and PPS", body: exTag(1, exCodedFramesX, "hvc1",
			lengthPrefixed(f.sps265, f.h265AUs[0][5])), wantKey: true, wantTypes: []uint8{32, 34, 33, 20}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			au := feed(t, &d, message{video: true, timestamp: uint32(1000 + 40*i), body: tt.body})
			if au.DTS != time.Duration(40*i)*ms || au.PTS-au.DTS != tt.wantCTS {
				t.Fatalf("DTS %v PTS %v", au.DTS, au.PTS)
			}
			if got := nalTypes(au, true); au.Key != tt.wantKey || !bytes.Equal(got, tt.wantTypes) {
				t.Fatalf("key %v types %v, want %v %v", au.Key, got, tt.wantKey, tt.wantTypes)
			}
		})
	}
}

func TestDemuxerAV1(t *testing.T) {
	f := loadFixtures(t)
	check := func(t *testing.T, au *media.AccessUnit, wantKey bool, wantTypes []uint8) {
		t.Helper()
		var types []uint8
		for _, o := range au.Payload {
			types = append(types, obuType(o))
			if o[0]&0x02 != 0 {
				t.Fatal("OBU keeps obu_has_size_field")
			}
		}
		if au.Key != wantKey || !bytes.Equal(types, wantTypes) {
			t.Fatalf("key %v types %v, want %v %v", au.Key, types, wantKey, wantTypes)
		}
	}

	t.Run("config record with sequence header", func(t *testing.T) {
		var d Demuxer
		feed(t, &d, message{video: true, body: exTag(1, exSequenceStart, "av01", f.av1Record)})
		v := d.Tracks().Video
		if v == nil || v.Codec != media.CodecAV1 || v.Width != 160 || v.Height != 120 || !bytes.Equal(v.SequenceHeader, f.av1SeqHeader) {
			t.Fatalf("video track %+v", v)
		}
		wantKeys := []bool{true, false, true, false}
		for i, tu := range f.av1TUs {
			au := feed(t, &d, message{video: true, timestamp: uint32(33 * i), body: exTag(1, exCodedFrames, "av01", tu)})
			want := []uint8{obuFrame}
			if wantKeys[i] {
				want = []uint8{obuSequenceHeader, obuFrame} // the temporal delimiter is gone
			}
			check(t, au, wantKeys[i], want)
			if au.DTS != time.Duration(33*i)*ms || au.PTS != au.DTS {
				t.Fatalf("DTS %v PTS %v", au.DTS, au.PTS)
			}
		}
		if d.Generation() != 1 {
			t.Fatalf("in-band copies of the sequence header changed the track: generation %d", d.Generation())
		}
	})

	t.Run("sequence header in-band only", func(t *testing.T) {
		var d Demuxer
		feed(t, &d, message{video: true, body: exTag(1, exSequenceStart, "av01", f.av1Record[:4])})
		if d.Tracks().Video != nil {
			t.Fatal("track without sequence header")
		}
		_, err := d.Video(0, exTag(2, exCodedFrames, "av01", f.av1TUs[1]), received)
		if !errors.Is(err, ErrNotConfigured) {
			t.Fatalf("inter frame before any sequence header: %v", err)
		}
		au := feed(t, &d, message{video: true, body: exTag(1, exCodedFrames, "av01", f.av1TUs[0])})
		check(t, au, true, []uint8{obuSequenceHeader, obuFrame})
		if v := d.Tracks().Video; v == nil || !bytes.Equal(v.SequenceHeader, f.av1SeqHeader) || v.Width != 160 {
			t.Fatalf("video track %+v", v)
		}
		if d.Generation() != 1 {
			t.Fatalf("generation %d, want 1", d.Generation())
		}
	})

	t.Run("key frame without sequence header gets it", func(t *testing.T) {
		var d Demuxer
		feed(t, &d, message{video: true, body: exTag(1, exSequenceStart, "av01", f.av1Record)})
		// Temporal unit 2 without its sequence header: the frame header alone says key.
		tu := f.av1TUs[2]
		shLen := 2 + len(f.av1SeqHeader) - 1
		stripped := cat(tu[:2], tu[2+shLen:])
		au := feed(t, &d, message{video: true, body: exTag(1, exCodedFramesX, "av01", stripped)})
		check(t, au, true, []uint8{obuSequenceHeader, obuFrame})
		if !bytes.Equal(au.Payload[0], f.av1SeqHeader) {
			t.Fatal("prepended sequence header differs")
		}
	})

	t.Run("only a temporal delimiter", func(t *testing.T) {
		var d Demuxer
		feed(t, &d, message{video: true, body: exTag(1, exSequenceStart, "av01", f.av1Record)})
		if au := feed(t, &d, message{video: true, body: exTag(2, exCodedFrames, "av01", []byte{0x12, 0})}); au != nil {
			t.Fatalf("got %+v, want no access unit", au)
		}
	})
}

func TestTimestamps(t *testing.T) {
	const wrap = 1 << 32
	tests := []struct {
		name string
		in   []uint32
		want []int64 // DTS in ms
	}{
		{"starts at zero from any timestamp", []uint32{5000, 5040, 5080}, []int64{0, 40, 80}},
		{"wraps around", []uint32{wrap - 100, wrap - 20, 30, 500}, []int64{0, 80, 130, 600}},
		{"wraps twice", []uint32{wrap - 1, 0, wrap/2 - 1, wrap - 2, 1}, []int64{0, 1, wrap / 2, wrap - 1, wrap + 2}},
		{"audio trailing the first frame is clamped", []uint32{1000, 980, 1020, 1010}, []int64{0, 0, 20, 10}},
		{"trailing across the wrap is clamped", []uint32{0, wrap - 20, 40}, []int64{0, 0, 40}},
		{"repeated timestamps", []uint32{7, 7, 7}, []int64{0, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d Demuxer
			feed(t, &d, message{body: aacTag(0, []byte{0x12, 0x10})})
			for i, ts := range tt.in {
				au := feed(t, &d, message{timestamp: ts, body: aacTag(1, []byte{0x21})})
				if au.DTS != time.Duration(tt.want[i])*ms {
					t.Fatalf("timestamp %d (#%d): DTS %v, want %d ms", ts, i, au.DTS, tt.want[i])
				}
			}
		})
	}
}

// h264Fixture returns a demuxer configured with the fixture's H.264 record and the NAL
// units of the fixture's first key frame.
func h264Fixture(t *testing.T) (*Demuxer, *fixtures, [][]byte) {
	f := loadFixtures(t)
	d := &Demuxer{}
	feed(t, d, message{video: true, body: avcTag(1, 0, 0, f.avcRecord)})
	for _, m := range f.flv {
		if m.video && m.body[0] == 0x17 && m.body[1] == 1 {
			var nalus h264.AVCC
			if err := nalus.Unmarshal(m.body[5:]); err != nil {
				t.Fatal(err)
			}
			return d, f, nalus
		}
	}
	t.Fatal("no key frame")
	return nil, nil, nil
}

func TestH264Frames(t *testing.T) {
	d, f, key := h264Fixture(t)
	var idr, sei []byte
	for _, n := range key {
		switch h264NALType(n) {
		case h264NALIDR:
			idr = n
		case 6:
			sei = n
		}
	}
	aud := []byte{0x09, 0xf0}
	nonIDR := []byte{0x41, 0x9a, 0x02}
	tests := []struct {
		name      string
		cts       int32
		nalus     [][]byte
		wantKey   bool
		wantTypes []uint8
		wantPTS   time.Duration // DTS is 0
	}{
		{name: "IDR gets SPS and PPS", nalus: [][]byte{aud, sei, idr}, wantKey: true, wantTypes: []uint8{7, 8, 6, 5}},
		{name: "IDR with in-band SPS and PPS is left alone", nalus: [][]byte{aud, f.h264SPS, f.h264PPS, idr},
			wantKey: true, wantTypes: []uint8{7, 8, 5}},
		{name: "IDR with in-band PPS gets only SPS", nalus: [][]byte{f.h264PPS, idr}, wantKey: true, wantTypes: []uint8{7, 8, 5}},
		{name: "non-IDR stays as is", cts: 100, nalus: [][]byte{aud, nonIDR}, wantTypes: []uint8{1}, wantPTS: 100 * ms},
		{name: "negative composition time clamps PTS", cts: -50, nalus: [][]byte{nonIDR}, wantTypes: []uint8{1}},
		{name: "zero-length NAL units are skipped", nalus: [][]byte{{}, nonIDR, {}}, wantTypes: []uint8{1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			au := feed(t, d, message{video: true, body: avcTag(2, 1, tt.cts, lengthPrefixed(tt.nalus...))})
			if got := nalTypes(au, false); au.Key != tt.wantKey || !bytes.Equal(got, tt.wantTypes) {
				t.Fatalf("key %v types %v, want %v %v", au.Key, got, tt.wantKey, tt.wantTypes)
			}
			if au.PTS != tt.wantPTS {
				t.Fatalf("PTS %v, want %v", au.PTS, tt.wantPTS)
			}
		})
	}

	if au := feed(t, d, message{video: true, body: avcTag(2, 1, 0, lengthPrefixed(aud))}); au != nil {
		t.Fatalf("AUD alone gave %+v, want nothing", au)
	}
}

func TestNoAliasing(t *testing.T) {
	f := loadFixtures(t)
	d, _, key := h264Fixture(t)
	feed(t, d, message{body: aacTag(0, f.aacConfig)})
	av1d := &Demuxer{}
	feed(t, av1d, message{video: true, body: exTag(1, exSequenceStart, "av01", f.av1Record)})
	tests := []struct {
		name  string
		d     *Demuxer
		video bool
		body  []byte
	}{
		{"h264", d, true, avcTag(1, 1, 0, lengthPrefixed(key...))},
		{"aac", d, false, aacTag(1, []byte{1, 2, 3, 4})},
		{"av1", av1d, true, exTag(1, exCodedFrames, "av01", f.av1TUs[0])},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := bytes.Clone(tt.body)
			au := feed(t, tt.d, message{video: tt.video, body: body})
			want := clonePayload(au.Payload)
			for i := range body {
				body[i] = 0xa5
			}
			if !equalNALUs(au.Payload, want) {
				t.Fatal("access unit changed with the input buffer")
			}
		})
	}

	t.Run("tracks", func(t *testing.T) {
		var d Demuxer
		rec := avcTag(1, 0, 0, bytes.Clone(f.avcRecord))
		asc := aacTag(0, bytes.Clone(f.aacConfig))
		feed(t, &d, message{video: true, body: rec})
		feed(t, &d, message{body: asc})
		v, a := *d.Tracks().Video, *d.Tracks().Audio.AAC
		for i := range rec {
			rec[i] = 0xa5
		}
		for i := range asc {
			asc[i] = 0xa5
		}
		if !bytes.Equal(d.Tracks().Video.SPS, v.SPS) || !bytes.Equal(d.Tracks().Video.SPS, f.h264SPS) ||
			!bytes.Equal(d.Tracks().Video.PPS, f.h264PPS) || *d.Tracks().Audio.AAC != a {
			t.Fatal("track changed with the input buffer")
		}
	})
}

func TestGeneration(t *testing.T) {
	f := loadFixtures(t)
	var d Demuxer
	steps := []struct {
		name    string
		m       message
		wantGen uint64
	}{
		{"avc config", message{video: true, body: avcTag(1, 0, 0, f.avcRecord)}, 1},
		{"same avc config again", message{video: true, body: exTag(1, exSequenceStart, "avc1", f.avcRecord)}, 1},
		{"aac config", message{body: aacTag(0, f.aacConfig)}, 2},
		{"same aac config", message{body: aacTag(0, f.aacConfig)}, 2},
		{"other aac config", message{body: aacTag(0, []byte{0x11, 0x90})}, 3},
		{"hevc replaces avc", message{video: true, body: exTag(1, exSequenceStart, "hvc1", f.hevcRecord)}, 4},
		{"av1 without sequence header removes the video track", message{video: true, body: exTag(1, exSequenceStart, "av01", f.av1Record[:4])}, 5},
		{"av1 without sequence header again", message{video: true, body: exTag(1, exSequenceStart, "av01", f.av1Record[:4])}, 5},
		{"in-band sequence header", message{video: true, body: exTag(1, exCodedFrames, "av01", f.av1TUs[0])}, 6},
		{"record with the same sequence header", message{video: true, body: exTag(1, exSequenceStart, "av01", f.av1Record)}, 6},
		{"end of sequence", message{video: true, body: exTag(1, exSequenceEnd, "av01", nil)}, 6},
	}
	for _, s := range steps {
		feed(t, &d, s.m)
		if d.Generation() != s.wantGen {
			t.Fatalf("%s: generation %d, want %d", s.name, d.Generation(), s.wantGen)
		}
	}
	if d.Tracks().Audio.SampleRate != 48000 || d.Tracks().Audio.Channels != 2 {
		t.Fatalf("audio track %+v", d.Tracks().Audio)
	}
}

func TestDemuxerErrors(t *testing.T) {
	f := loadFixtures(t)
	avcConfig := message{video: true, body: avcTag(1, 0, 0, f.avcRecord)}
	aacConfig := message{body: aacTag(0, f.aacConfig)}
	av1Config := message{video: true, body: exTag(1, exSequenceStart, "av01", f.av1Record)}
	tests := []struct {
		name    string
		setup   []message // by default an H.264 and an AAC track
		video   bool
		body    []byte
		wantErr string
		wantIs  error
	}{
		{name: "avc frame before config", setup: []message{aacConfig}, video: true, body: avcTag(1, 1, 0, lengthPrefixed([]byte{0x65, 1})),
			wantErr: "h264 frame: frame before its sequence header", wantIs: ErrNotConfigured},
		{name: "hevc frame on an h264 track", video: true, body: exFrame(1, "hvc1", 0, lengthPrefixed([]byte{0x26, 1, 2})),
			wantErr: "h265 frame on a h264 track: frame before its sequence header", wantIs: ErrNotConfigured},
		{name: "av1 frame on an h264 track", video: true, body: exTag(1, exCodedFrames, "av01", f.av1TUs[0]),
			wantErr: "av1 frame on a h264 track: frame before its sequence header", wantIs: ErrNotConfigured},
		{name: "aac frame before config", setup: []message{avcConfig}, body: aacTag(1, []byte{1}), wantErr: "aac frame: frame before its sequence header", wantIs: ErrNotConfigured},
		{name: "only zero-length NAL units", video: true, body: avcTag(2, 1, 0, lengthPrefixed([]byte{}, []byte{})),
			wantErr: "h264 frame (8 bytes)", wantIs: h264.ErrAVCCNoNALUs},
		{name: "no NAL units", video: true, body: avcTag(2, 1, 0, nil), wantErr: "h264 frame (0 bytes): invalid length"},
		{name: "NAL length past end", video: true, body: avcTag(2, 1, 0, []byte{0, 0, 1, 0, 0x41, 1}),
			wantErr: "h264 frame (6 bytes): invalid length"},
		{name: "NAL length prefix truncated", video: true, body: avcTag(2, 1, 0, cat(lengthPrefixed([]byte{0x41}), []byte{0, 0})),
			wantErr: "h264 frame (7 bytes): invalid length"},
		{name: "too many NAL units", video: true, body: avcTag(2, 1, 0, bytes.Repeat(lengthPrefixed([]byte{0x41}), 51)),
			wantErr: "NALU count (51) exceeds maximum allowed (50)"},
		{name: "avc config with 2-byte lengths", video: true, body: avcTag(1, 0, 0, set(f.avcRecord, 4, 0xfd)),
			wantErr: "avc config: nal length size 2 unsupported, only 4"},
		{name: "avc config with a broken sps", video: true, body: avcTag(1, 0, 0, avcRecord([][]byte{{0x67, 0x64}}, [][]byte{f.h264PPS})),
			wantErr: "avc config: sps: "},
		{name: "hevc config with a broken sps", video: true, body: exTag(1, exSequenceStart, "hvc1",
			hevcRecord(f.hevcRecord, hevcArray{32, [][]byte{f.vps}}, hevcArray{33, [][]byte{f.sps265[:6]}}, hevcArray{34, [][]byte{f.pps265}})),
			wantErr: "hevc config: sps: "},
		{name: "av1 config with a broken sequence header", video: true, body: exTag(1, exSequenceStart, "av01", cat(f.av1Record[:4], []byte{0x0a, 1, 0})),
			wantErr: "av1 config: sequence header: "},
		{name: "av1 frame with a broken in-band sequence header", setup: []message{av1Config}, video: true,
			body:    exTag(1, exCodedFrames, "av01", cat([]byte{0x12, 0, 0x0a, 1, 0}, f.av1TUs[0][2:])),
			wantErr: "av1 frame: in-band sequence header: "},
		{name: "av1 frame truncated", setup: []message{av1Config}, video: true, body: exTag(1, exCodedFrames, "av01", f.av1TUs[0][:100]),
			wantErr: "av1 frame (100 bytes): obu 2 size 1396 exceeds data (83 bytes left)"},
		{name: "aac config garbage", body: aacTag(0, []byte{0xff, 0xff}), wantErr: "aac config (ff ff): "},
		{name: "aac config empty", body: aacTag(0, nil), wantErr: "aac config (): "},
		{name: "aac frame empty", body: aacTag(1, nil), wantErr: "aac frame: empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d Demuxer
			if tt.setup == nil {
				tt.setup = []message{avcConfig, aacConfig}
			}
			for _, m := range tt.setup {
				feed(t, &d, m)
			}
			before, gen := d.Tracks(), d.Generation()
			var au *media.AccessUnit
			var err error
			if tt.video {
				au, err = d.Video(0, tt.body, received)
			} else {
				au, err = d.Audio(0, tt.body, received)
			}
			if au != nil {
				t.Fatalf("access unit %+v with an error", au)
			}
			checkErr(t, err, tt.wantErr, tt.wantIs)
			if d.Tracks() != before || d.Generation() != gen {
				t.Fatal("a failed message changed the tracks")
			}
			if d.started {
				t.Fatal("a failed message started the clock")
			}
		})
	}
}

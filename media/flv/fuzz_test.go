package flv

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"onair/media"
)

// encodeMessages lays messages out as fuzz input: for each, a flags byte (bit 0: video),
// a 4-byte timestamp, a 2-byte length and the body.
func encodeMessages(msgs ...message) []byte {
	var b []byte
	for _, m := range msgs {
		var flags byte
		if m.video {
			flags = 1
		}
		b = append(b, flags)
		b = binary.BigEndian.AppendUint32(b, m.timestamp)
		b = binary.BigEndian.AppendUint16(b, uint16(len(m.body)))
		b = append(b, m.body...)
	}
	return b
}

// decodeMessages undoes encodeMessages on any input; a length past the end takes what is
// left.
func decodeMessages(b []byte) []message {
	var msgs []message
	for len(b) >= 7 {
		m := message{video: b[0]&1 == 1, timestamp: binary.BigEndian.Uint32(b[1:])}
		n := min(int(binary.BigEndian.Uint16(b[5:])), len(b)-7)
		m.body = b[7 : 7+n]
		msgs = append(msgs, m)
		b = b[7+n:]
	}
	return msgs
}

func fuzzSeeds(tb testing.TB) [][]byte {
	f := loadFixtures(tb)
	hevc := []message{{video: true, body: exTag(1, exSequenceStart, "hvc1", f.hevcRecord)}}
	for i, au := range f.h265AUs {
		hevc = append(hevc, message{video: true, timestamp: uint32(40 * i), body: exFrame(1, "hvc1", 40, lengthPrefixed(au...))})
	}
	av1 := []message{{video: true, body: exTag(1, exSequenceStart, "av01", f.av1Record)}}
	av1InBand := []message{{video: true, body: exTag(1, exSequenceStart, "av01", f.av1Record[:4])}}
	for i, tu := range f.av1TUs {
		m := message{video: true, timestamp: uint32(33 * i), body: exTag(1, exCodedFrames, "av01", tu)}
		av1 = append(av1, m)
		av1InBand = append(av1InBand, m)
	}
	var truncated []message
	for _, m := range f.flv {
		truncated = append(truncated, message{video: m.video, timestamp: m.timestamp, body: m.body[:len(m.body)/2]})
	}
	wrap := []message{
		{body: aacTag(0, f.aacConfig)},
		{timestamp: 1<<32 - 10, body: aacTag(1, []byte{0x21})},
		{timestamp: 20, body: aacTag(1, []byte{0x21})},
	}
	return [][]byte{
		encodeMessages(f.flv...),
		encodeMessages(hevc...),
		encodeMessages(av1...),
		encodeMessages(av1InBand...),
		encodeMessages(append(f.flv[:1:1], truncated...)...),
		encodeMessages(wrap...),
		encodeMessages(message{video: true, body: avcTag(1, 1, 0, []byte{0, 0, 0, 0})}),
		encodeMessages(message{video: true, body: exTag(1, exSequenceStart, "hvc1", set(f.hevcRecord, 22, 255))}),
	}
}

func FuzzDemuxer(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var d Demuxer
		for _, m := range decodeMessages(data) {
			tracks, gen := d.Tracks(), d.Generation()
			body := bytes.Clone(m.body)
			var au *media.AccessUnit
			var err error
			if m.video {
				au, err = d.Video(m.timestamp, body, time.Time{})
			} else {
				au, err = d.Audio(m.timestamp, body, time.Time{})
			}
			if err != nil {
				if au != nil {
					t.Fatalf("access unit with error %v", err)
				}
				if d.Tracks() != tracks || d.Generation() != gen {
					t.Fatalf("failed message changed the tracks: %v", err)
				}
				continue
			}
			checkTracks(t, d.Tracks())
			if au == nil {
				continue
			}
			checkAU(t, au, m.video)
			want := clonePayload(au.Payload)
			for i := range body {
				body[i] ^= 0xff
			}
			if !equalNALUs(au.Payload, want) {
				t.Fatal("access unit aliases the message")
			}
		}
	})
}

func checkTracks(t *testing.T, tr media.Tracks) {
	t.Helper()
	if v := tr.Video; v != nil {
		if v.Width < 1 || v.Height < 1 || v.Width > maxDimension || v.Height > maxDimension {
			t.Fatalf("video size %dx%d", v.Width, v.Height)
		}
		ok := false
		switch v.Codec {
		case media.CodecH264:
			ok = len(v.SPS) > 0 && len(v.PPS) > 0
		case media.CodecH265:
			ok = len(v.VPS) > 0 && len(v.SPS) > 0 && len(v.PPS) > 0
		case media.CodecAV1:
			ok = len(v.SequenceHeader) > 0
		}
		if !ok {
			t.Fatalf("incomplete video track %+v", v)
		}
	}
	if a := tr.Audio; a != nil && (a.Codec != media.CodecAAC || a.AAC == nil || a.SampleRate < 1) {
		t.Fatalf("incomplete audio track %+v", a)
	}
}

// FuzzConfigParsers feeds one input to every record and tag parser.
func FuzzConfigParsers(f *testing.F) {
	fx := loadFixtures(f)
	for _, s := range [][]byte{fx.avcRecord, fx.hevcRecord, fx.av1Record, fx.aacConfig, fx.av1TUs[0]} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		nonEmpty := func(what string, lists ...[][]byte) {
			for _, l := range lists {
				for _, n := range l {
					if len(n) == 0 {
						t.Fatalf("%s: empty parameter set", what)
					}
				}
			}
		}
		if c, err := ParseAVCConfig(data); err == nil {
			nonEmpty("avc", c.SPS, c.PPS)
		}
		if c, err := ParseHEVCConfig(data); err == nil {
			nonEmpty("hevc", c.VPS, c.SPS, c.PPS)
		}
		if c, err := ParseAV1Config(data); err == nil && c.SequenceHeader != nil && obuType(c.SequenceHeader) != obuSequenceHeader {
			t.Fatal("av1: not a sequence header")
		}
		if obus, err := splitOBUs(data); err == nil {
			nonEmpty("obus", obus)
		}
		_, _ = ParseVideoTag(data)
		_, _ = ParseAudioTag(data)
	})
}

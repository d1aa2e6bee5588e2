package flv

// The fixtures under testdata/ are real encoder output, made once with Debian's ffmpeg 5.1
// (unit tests never run ffmpeg):
//
//	# H.264 (B-frames, so composition times, and AUDs) + AAC, muxed the way RTMP carries them:
//	ffmpeg -f lavfi -i testsrc2=size=160x120:rate=30 -f lavfi -i sine=frequency=440:sample_rate=44100 \
//	    -t 0.2 -c:v libx264 -preset veryfast -bf 2 -g 4 -crf 35 -x264-params aud=1 \
//	    -c:a aac -b:a 24k -ac 1 -f flv h264_aac.flv
//	# H.265 Annex B (in-band VPS/SPS/PPS and AUDs), and the same stream in MP4 for its hvcC:
//	ffmpeg -f lavfi -i testsrc2=size=160x120:rate=30 -frames:v 4 -c:v libx265 -preset ultrafast \
//	    -crf 40 -x265-params log-level=error:keyint=2:aud=1 -f hevc h265.hevc
//	ffmpeg -i h265.hevc -c copy -tag:v hvc1 h265.mp4
//	# AV1 low-overhead OBUs (temporal delimiters, in-band sequence headers), and in MP4 for av1C:
//	ffmpeg -f lavfi -i testsrc2=size=160x120:rate=30 -frames:v 4 -c:v libaom-av1 -cpu-used 8 \
//	    -crf 50 -g 2 -f obu av1.obu
//	ffmpeg -i av1.obu -c copy av1.mp4
//
// FFmpeg 5.1 cannot write Enhanced RTMP, so the H.265 and AV1 messages are built here from
// those bitstreams and records, byte for byte as the Enhanced RTMP spec lays them out.

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/av1"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// message is one RTMP audio or video message.
type message struct {
	video     bool
	timestamp uint32
	body      []byte
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// flvMessages returns the audio and video tags of an FLV file as RTMP messages.
func flvMessages(t testing.TB, file []byte) []message {
	t.Helper()
	if len(file) < 9 || string(file[:3]) != "FLV" {
		t.Fatal("not an FLV file")
	}
	b := file[binary.BigEndian.Uint32(file[5:9]):]
	var out []message
	for {
		if len(b) < 4 {
			t.Fatal("truncated FLV")
		}
		b = b[4:] // PreviousTagSize
		if len(b) == 0 {
			return out
		}
		if len(b) < 11 {
			t.Fatal("truncated FLV tag header")
		}
		typ := b[0]
		size := int(b[1])<<16 | int(b[2])<<8 | int(b[3])
		ts := uint32(b[7])<<24 | uint32(b[4])<<16 | uint32(b[5])<<8 | uint32(b[6])
		b = b[11:]
		if len(b) < size {
			t.Fatal("truncated FLV tag")
		}
		if typ == 8 || typ == 9 {
			out = append(out, message{video: typ == 9, timestamp: ts, body: b[:size:size]})
		}
		b = b[size:]
	}
}

// mp4Box returns the body of the first box of the given type, found by its name.
func mp4Box(t testing.TB, file []byte, typ string) []byte {
	t.Helper()
	i := bytes.Index(file, []byte(typ))
	if i < 4 {
		t.Fatalf("no %s box", typ)
	}
	size := int(binary.BigEndian.Uint32(file[i-4:]))
	return file[i+4 : i-4+size]
}

// h265AccessUnits splits an Annex B H.265 stream into access units at its AUDs; the
// delimiters stay in.
func h265AccessUnits(t testing.TB, stream []byte) [][][]byte {
	t.Helper()
	var nalus h264.AnnexB
	if err := nalus.Unmarshal(stream); err != nil {
		t.Fatal(err)
	}
	var aus [][][]byte
	for _, n := range nalus {
		if h265NALType(n) == h265NALAUD {
			aus = append(aus, nil)
		}
		if len(aus) == 0 {
			t.Fatal("stream does not start with an AUD")
		}
		aus[len(aus)-1] = append(aus[len(aus)-1], n)
	}
	return aus
}

// av1TemporalUnits splits a low-overhead AV1 stream at its temporal delimiters, keeping
// the bytes as they are (with size fields), as Enhanced RTMP carries them.
func av1TemporalUnits(t testing.TB, stream []byte) [][]byte {
	t.Helper()
	var tus [][]byte
	start := 0
	for pos := 0; pos < len(stream); {
		var size av1.LEB128
		n, err := size.Unmarshal(stream[pos+1:])
		if err != nil {
			t.Fatal(err)
		}
		if obuType(stream[pos:]) == obuTemporalDelimiter && pos > 0 {
			tus = append(tus, stream[start:pos])
			start = pos
		}
		pos += 1 + n + int(size)
	}
	return append(tus, stream[start:])
}

// lengthPrefixed lays NAL units out as AVCC/HVCC: each after a 4-byte length.
func lengthPrefixed(nalus ...[]byte) []byte {
	var b []byte
	for _, n := range nalus {
		b = binary.BigEndian.AppendUint32(b, uint32(len(n)))
		b = append(b, n...)
	}
	return b
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// Message bodies.

func avcTag(frameType, packetType byte, cts int32, data []byte) []byte {
	return cat([]byte{frameType<<4 | 7, packetType, byte(cts >> 16), byte(cts >> 8), byte(cts)}, data)
}

func exTag(frameType, packetType byte, fourCC string, data []byte) []byte {
	return cat([]byte{0x80 | frameType<<4 | packetType}, []byte(fourCC), data)
}

func exFrame(frameType byte, fourCC string, cts int32, data []byte) []byte {
	return exTag(frameType, exCodedFrames, fourCC, cat([]byte{byte(cts >> 16), byte(cts >> 8), byte(cts)}, data))
}

func aacTag(packetType byte, data []byte) []byte {
	// AAC, 44 kHz, 16 bit, stereo: the flags FLV requires for AAC whatever the stream is.
	return cat([]byte{0xaf, packetType}, data)
}

// fixtures holds the parsed test data.
type fixtures struct {
	flv []message // H.264 + AAC

	avcRecord           []byte
	h264SPS             []byte
	h264PPS             []byte
	hevcRecord          []byte
	h265AUs             [][][]byte
	vps, sps265, pps265 []byte
	av1Record           []byte
	av1TUs              [][]byte
	av1SeqHeader        []byte // without size field
	aacConfig           []byte
}

func loadFixtures(t testing.TB) *fixtures {
	t.Helper()
	f := &fixtures{flv: flvMessages(t, readFixture(t, "h264_aac.flv"))}
	for _, m := range f.flv {
		switch {
		case m.video && f.avcRecord == nil && m.body[1] == 0:
			f.avcRecord = m.body[5:]
		case !m.video && f.aacConfig == nil && m.body[1] == 0:
			f.aacConfig = m.body[2:]
		}
	}
	c, err := ParseAVCConfig(f.avcRecord)
	if err != nil {
		t.Fatal(err)
	}
	f.h264SPS, f.h264PPS = c.SPS[0], c.PPS[0]

	f.hevcRecord = mp4Box(t, readFixture(t, "h265.mp4"), "hvcC")
	f.h265AUs = h265AccessUnits(t, readFixture(t, "h265.hevc"))
	for _, n := range f.h265AUs[0] {
		switch h265NALType(n) {
		case h265NALVPS:
			f.vps = n
		case h265NALSPS:
			f.sps265 = n
		case h265NALPPS:
			f.pps265 = n
		}
	}

	f.av1Record = mp4Box(t, readFixture(t, "av1.mp4"), "av1C")
	f.av1TUs = av1TemporalUnits(t, readFixture(t, "av1.obu"))
	obus, err := splitOBUs(f.av1TUs[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range obus {
		if obuType(o) == obuSequenceHeader {
			f.av1SeqHeader = o
		}
	}
	if f.vps == nil || f.sps265 == nil || f.pps265 == nil || f.av1SeqHeader == nil || f.aacConfig == nil {
		t.Fatal("fixtures lack a parameter set")
	}
	return f
}

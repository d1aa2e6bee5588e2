package flv

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/flac"

	"onair/media"
)

// AVCConfig is what the demuxer needs from an AVCDecoderConfigurationRecord
// (ISO/IEC 14496-15, 5.3.3.1). Parameter sets alias the parsed record.
type AVCConfig struct {
	// LengthSize is the size in bytes of each NAL unit's length prefix in frames: 1, 2 or 4.
	LengthSize int
	SPS, PPS   [][]byte
}

// HEVCConfig is what the demuxer needs from an HEVCDecoderConfigurationRecord
// (ISO/IEC 14496-15, 8.3.3.1). Parameter sets alias the parsed record; arrays of other NAL
// unit types (SEI) are skipped.
type HEVCConfig struct {
	LengthSize    int
	VPS, SPS, PPS [][]byte
}

// AV1Config is what the demuxer needs from an AV1CodecConfigurationRecord (AV1 ISOBMFF
// binding, 2.3.3).
type AV1Config struct {
	// SequenceHeader is the sequence header OBU from configOBUs without its size field
	// (the form mediacommon's av1 package uses), in a new buffer. It is nil when the record
	// carries none: the stream then carries it in-band with the first key frame.
	SequenceHeader []byte
}

// H.264 and H.265 NAL unit types the demuxer looks at.
const (
	h264NALIDR = 5
	h264NALSPS = 7
	h264NALPPS = 8
	h264NALAUD = 9

	h265NALIRAPFirst = 16
	h265NALIRAPLast  = 23
	h265NALVPS       = 32
	h265NALSPS       = 33
	h265NALPPS       = 34
	h265NALAUD       = 35
)

// maxHEVCNALUs bounds the NAL units of one record, so a record made of thousands of tiny
// NAL units cannot make us allocate many times its own size. Real records hold a VPS, an
// SPS, a PPS and maybe an SEI.
const maxHEVCNALUs = 64

func h264NALType(nalu []byte) uint8 { return nalu[0] & 0x1f }
func h265NALType(nalu []byte) uint8 { return (nalu[0] >> 1) & 0x3f }

// ParseAVCConfig parses an AVCDecoderConfigurationRecord. It requires at least one SPS and
// one PPS.
func ParseAVCConfig(rec []byte) (AVCConfig, error) {
	if len(rec) < 6 {
		return AVCConfig{}, fmt.Errorf("avc config: %d bytes, need at least 6", len(rec))
	}
	if rec[0] != 1 {
		return AVCConfig{}, fmt.Errorf("avc config: version %d, want 1", rec[0])
	}
	c := AVCConfig{LengthSize: int(rec[4]&3) + 1}
	if c.LengthSize == 3 {
		return AVCConfig{}, fmt.Errorf("avc config: nal length size 3 is invalid")
	}

	rest := rec[6:]
	var err error
	c.SPS, rest, err = readParamSets(rest, int(rec[5]&0x1f), "avc config: sps", len(rec))
	if err != nil {
		return AVCConfig{}, err
	}
	if len(rest) < 1 {
		return AVCConfig{}, fmt.Errorf("avc config: pps count missing after %d sps", len(c.SPS))
	}
	c.PPS, _, err = readParamSets(rest[1:], int(rest[0]), "avc config: pps", len(rec))
	if err != nil {
		return AVCConfig{}, err
	}
	// Bytes after the PPS (the high-profile chroma and bit depth fields) repeat the SPS.

	if len(c.SPS) == 0 {
		return AVCConfig{}, fmt.Errorf("avc config: no sps")
	}
	if len(c.PPS) == 0 {
		return AVCConfig{}, fmt.Errorf("avc config: no pps")
	}
	for i, sps := range c.SPS {
		if t := h264NALType(sps); t != h264NALSPS {
			return AVCConfig{}, fmt.Errorf("avc config: sps %d has nal type %d, want %d", i, t, h264NALSPS)
		}
	}
	for i, pps := range c.PPS {
		if t := h264NALType(pps); t != h264NALPPS {
			return AVCConfig{}, fmt.Errorf("avc config: pps %d has nal type %d, want %d", i, t, h264NALPPS)
		}
	}
	return c, nil
}

// readParamSets reads n 16-bit-length-prefixed NAL units. Each one takes at least three
// bytes of b, so n cannot make it allocate more than b justifies.
func readParamSets(b []byte, n int, what string, recLen int) ([][]byte, []byte, error) {
	var out [][]byte
	for i := range n {
		if len(b) < 2 {
			return nil, nil, fmt.Errorf("%s %d of %d: length truncated (record is %d bytes)", what, i, n, recLen)
		}
		l := int(binary.BigEndian.Uint16(b))
		b = b[2:]
		if l == 0 {
			return nil, nil, fmt.Errorf("%s %d of %d: empty", what, i, n)
		}
		if l > len(b) {
			return nil, nil, fmt.Errorf("%s %d of %d: length %d exceeds record (%d bytes left)", what, i, n, l, len(b))
		}
		out = append(out, b[:l:l])
		b = b[l:]
	}
	return out, b, nil
}

// hevcFixedLen is the size of the record's fields before its arrays, numOfArrays included.
const hevcFixedLen = 23

// ParseHEVCConfig parses an HEVCDecoderConfigurationRecord. It requires at least one VPS,
// SPS and PPS.
func ParseHEVCConfig(rec []byte) (HEVCConfig, error) {
	if len(rec) < hevcFixedLen {
		return HEVCConfig{}, fmt.Errorf("hevc config: %d bytes, need at least %d", len(rec), hevcFixedLen)
	}
	if rec[0] != 1 {
		return HEVCConfig{}, fmt.Errorf("hevc config: version %d, want 1", rec[0])
	}
	c := HEVCConfig{LengthSize: int(rec[21]&3) + 1}
	if c.LengthSize == 3 {
		return HEVCConfig{}, fmt.Errorf("hevc config: nal length size 3 is invalid")
	}

	numArrays := int(rec[22])
	b := rec[hevcFixedLen:]
	total := 0
	for i := range numArrays {
		if len(b) < 3 {
			return HEVCConfig{}, fmt.Errorf("hevc config: array %d of %d: header truncated (%d bytes left)", i, numArrays, len(b))
		}
		typ := b[0] & 0x3f
		n := int(binary.BigEndian.Uint16(b[1:]))
		total += n
		if total > maxHEVCNALUs {
			return HEVCConfig{}, fmt.Errorf("hevc config: array %d of %d: %d nal units bring the record past the limit of %d", i, numArrays, n, maxHEVCNALUs)
		}
		what := fmt.Sprintf("hevc config: array %d (nal type %d): nal unit", i, typ)
		nalus, rest, err := readParamSets(b[3:], n, what, len(rec))
		if err != nil {
			return HEVCConfig{}, err
		}
		b = rest

		var dst *[][]byte
		switch typ {
		case h265NALVPS:
			dst = &c.VPS
		case h265NALSPS:
			dst = &c.SPS
		case h265NALPPS:
			dst = &c.PPS
		default:
			continue
		}
		for j, nalu := range nalus {
			if len(nalu) < 2 {
				return HEVCConfig{}, fmt.Errorf("%s %d: %d byte, shorter than a nal header", what, j, len(nalu))
			}
			if t := h265NALType(nalu); t != typ {
				return HEVCConfig{}, fmt.Errorf("%s %d: has nal type %d", what, j, t)
			}
		}
		*dst = append(*dst, nalus...)
	}

	switch {
	case len(c.VPS) == 0:
		return HEVCConfig{}, fmt.Errorf("hevc config: no vps")
	case len(c.SPS) == 0:
		return HEVCConfig{}, fmt.Errorf("hevc config: no sps")
	case len(c.PPS) == 0:
		return HEVCConfig{}, fmt.Errorf("hevc config: no pps")
	}
	return c, nil
}

// ParseAV1Config parses an AV1CodecConfigurationRecord: a 4-byte header, then configOBUs in
// low-overhead format, where the sequence header OBU is looked for.
func ParseAV1Config(rec []byte) (AV1Config, error) {
	if len(rec) < 4 {
		return AV1Config{}, fmt.Errorf("av1 config: %d bytes, need at least 4", len(rec))
	}
	// marker (1 bit, always 1) and version (7 bits, 1).
	if rec[0] != 0x81 {
		return AV1Config{}, fmt.Errorf("av1 config: marker and version byte 0x%02x, want 0x81", rec[0])
	}
	obus, err := splitOBUs(rec[4:])
	if err != nil {
		return AV1Config{}, fmt.Errorf("av1 config: config obus: %w", err)
	}
	for _, obu := range obus {
		if obuType(obu) == obuSequenceHeader {
			return AV1Config{SequenceHeader: obu}, nil
		}
	}
	return AV1Config{}, nil
}

// ParseVP9Config parses a VPCodecConfigurationRecord (VP Codec ISO Media File Format
// Binding, 2.2.3). FFmpeg sends it with the version and flags of its vpcC full box in
// front (version 1, flags 0), the binding's record alone starts at the profile: both are
// taken.
func ParseVP9Config(rec []byte) (media.VP9Config, error) {
	if len(rec) >= 12 && rec[0] == 1 && rec[1] == 0 && rec[2] == 0 && rec[3] == 0 {
		rec = rec[4:]
	}
	if len(rec) < 8 {
		return media.VP9Config{}, fmt.Errorf("vp9 config: %d bytes, need at least 8", len(rec))
	}
	c := media.VP9Config{
		Profile: rec[0], Level: rec[1], BitDepth: rec[2] >> 4,
		ChromaSubsampling: (rec[2] >> 1) & 7, FullRange: rec[2]&1 != 0,
	}
	switch {
	case c.Profile > 3:
		return media.VP9Config{}, fmt.Errorf("vp9 config: profile %d, want 0 to 3", c.Profile)
	case c.BitDepth != 8 && c.BitDepth != 10 && c.BitDepth != 12:
		return media.VP9Config{}, fmt.Errorf("vp9 config: bit depth %d, want 8, 10 or 12", c.BitDepth)
	case c.ChromaSubsampling > 3:
		return media.VP9Config{}, fmt.Errorf("vp9 config: chroma subsampling %d, want 0 to 3", c.ChromaSubsampling)
	}
	return c, nil
}

// maxOpusChannels is what onair serves of Opus: mono and stereo (channel mapping family
// 0), the layouts the fMP4 writer describes and browsers play.
const maxOpusChannels = 2

// ParseOpusHead reads the channel count of an Opus identification header (RFC 7845,
// 5.1), which Enhanced RTMP carries as Opus's sequence start.
func ParseOpusHead(head []byte) (channels int, err error) {
	if len(head) < 19 || string(head[:8]) != "OpusHead" {
		return 0, fmt.Errorf("opus config: %d bytes (% x...) are not an OpusHead", len(head), truncate(head, 8))
	}
	if v := head[8]; v>>4 != 0 {
		return 0, fmt.Errorf("opus config: version %d, want 1 to 15", v)
	}
	channels = int(head[9])
	if channels < 1 || channels > maxOpusChannels || head[18] != 0 {
		return 0, fmt.Errorf("opus config: %d channels with mapping family %d: only mono and stereo are served: %w",
			channels, head[18], ErrUnsupportedCodec)
	}
	return channels, nil
}

// flacStreamInfoLen is the size of a STREAMINFO metadata block's body.
const flacStreamInfoLen = 34

// ParseFLACConfig finds the STREAMINFO block of a FLAC sequence start: the block alone,
// or behind the "fLaC" marker and its metadata block header, as encoders differ. The
// result aliases rec.
func ParseFLACConfig(rec []byte) (flac.StreamInfo, []byte, error) {
	b := bytes.TrimPrefix(rec, []byte("fLaC"))
	if len(b) >= 4+flacStreamInfoLen && b[0]&0x7f == 0 && b[1] == 0 && b[2] == 0 && b[3] == flacStreamInfoLen {
		b = b[4:] // METADATA_BLOCK_HEADER of a STREAMINFO block
	}
	var si flac.StreamInfo
	if len(b) < flacStreamInfoLen {
		return si, nil, fmt.Errorf("flac config: %d bytes, need a %d-byte STREAMINFO", len(rec), flacStreamInfoLen)
	}
	b = b[:flacStreamInfoLen]
	if err := si.Unmarshal(b); err != nil {
		return si, nil, fmt.Errorf("flac config: %w", err)
	}
	if si.SampleRate < 1 || si.SampleRate > 655350 {
		return si, nil, fmt.Errorf("flac config: sample rate %d", si.SampleRate)
	}
	return si, b, nil
}

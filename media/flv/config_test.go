package flv

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// avcRecord builds an AVCDecoderConfigurationRecord around the given parameter sets.
func avcRecord(sps, pps [][]byte) []byte {
	b := []byte{1, 0x64, 0x00, 0x0b, 0xff, 0xe0 | byte(len(sps))}
	for _, s := range sps {
		b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
		b = append(b, s...)
	}
	b = append(b, byte(len(pps)))
	for _, p := range pps {
		b = binary.BigEndian.AppendUint16(b, uint16(len(p)))
		b = append(b, p...)
	}
	return b
}

type hevcArray struct {
	typ   byte
	nalus [][]byte
}

// hevcRecord builds an HEVCDecoderConfigurationRecord with the fixed fields of head.
func hevcRecord(head []byte, arrays ...hevcArray) []byte {
	b := append([]byte(nil), head[:22]...)
	b = append(b, byte(len(arrays)))
	for _, a := range arrays {
		b = append(b, 0x80|a.typ)
		b = binary.BigEndian.AppendUint16(b, uint16(len(a.nalus)))
		for _, n := range a.nalus {
			b = binary.BigEndian.AppendUint16(b, uint16(len(n)))
			b = append(b, n...)
		}
	}
	return b
}

func set(b []byte, i int, v byte) []byte {
	b = bytes.Clone(b)
	b[i] = v
	return b
}

func TestParseAVCConfig(t *testing.T) {
	f := loadFixtures(t)
	sps, pps := f.h264SPS, f.h264PPS
	tests := []struct {
		name    string
		in      []byte
		wantErr string
		want    AVCConfig
	}{
		{name: "ffmpeg record", in: f.avcRecord, want: AVCConfig{LengthSize: 4, SPS: [][]byte{sps}, PPS: [][]byte{pps}}},
		{name: "two of each", in: avcRecord([][]byte{sps, sps}, [][]byte{pps, pps}),
			want: AVCConfig{LengthSize: 4, SPS: [][]byte{sps, sps}, PPS: [][]byte{pps, pps}}},
		{name: "length size 2", in: set(avcRecord([][]byte{sps}, [][]byte{pps}), 4, 0xfd),
			want: AVCConfig{LengthSize: 2, SPS: [][]byte{sps}, PPS: [][]byte{pps}}},
		{name: "empty", in: nil, wantErr: "avc config: 0 bytes, need at least 6"},
		{name: "truncated header", in: f.avcRecord[:5], wantErr: "avc config: 5 bytes, need at least 6"},
		{name: "version 0", in: set(f.avcRecord, 0, 0), wantErr: "avc config: version 0, want 1"},
		{name: "length size 3", in: set(f.avcRecord, 4, 0xfe), wantErr: "nal length size 3 is invalid"},
		{name: "sps length past end", in: []byte{1, 0x64, 0, 0x0b, 0xff, 0xe1, 0x01, 0x2c, 0x67, 1, 2},
			wantErr: "avc config: sps 0 of 1: length 300 exceeds record (3 bytes left)"},
		{name: "sps length truncated", in: []byte{1, 0x64, 0, 0x0b, 0xff, 0xe1, 0x01},
			wantErr: "avc config: sps 0 of 1: length truncated (record is 7 bytes)"},
		{name: "zero-length sps", in: avcRecord([][]byte{{}}, [][]byte{pps}), wantErr: "avc config: sps 0 of 1: empty"},
		{name: "absurd sps count", in: set(avcRecord([][]byte{sps}, [][]byte{pps}), 5, 0xff),
			wantErr: "avc config: sps 1 of 31: length"},
		{name: "pps count missing", in: avcRecord([][]byte{sps}, nil)[:6+2+len(sps)],
			wantErr: "avc config: pps count missing after 1 sps"},
		{name: "pps length past end", in: cat(avcRecord([][]byte{sps}, nil)[:6+2+len(sps)], []byte{1, 0, 9, 0x68}),
			wantErr: "avc config: pps 0 of 1: length 9 exceeds record (1 bytes left)"},
		{name: "absurd pps count", in: set(avcRecord([][]byte{sps}, [][]byte{pps}), 6+2+len(sps), 255),
			wantErr: "avc config: pps 1 of 255: length truncated"},
		{name: "no sps", in: avcRecord(nil, [][]byte{pps}), wantErr: "avc config: no sps"},
		{name: "no pps", in: avcRecord([][]byte{sps}, nil), wantErr: "avc config: no pps"},
		{name: "sps of wrong type", in: avcRecord([][]byte{pps}, [][]byte{pps}), wantErr: "avc config: sps 0 has nal type 8, want 7"},
		{name: "pps of wrong type", in: avcRecord([][]byte{sps}, [][]byte{sps}), wantErr: "avc config: pps 0 has nal type 7, want 8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseAVCConfig(tt.in)
			if !checkErr(t, err, tt.wantErr, nil) {
				return
			}
			if got.LengthSize != tt.want.LengthSize || !equalNALUs(got.SPS, tt.want.SPS) || !equalNALUs(got.PPS, tt.want.PPS) {
				t.Fatalf("got %x, want %x", got, tt.want)
			}
		})
	}
}

func equalNALUs(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

func TestParseHEVCConfig(t *testing.T) {
	f := loadFixtures(t)
	head := f.hevcRecord
	vps, sps, pps := f.vps, f.sps265, f.pps265
	all := []hevcArray{{32, [][]byte{vps}}, {33, [][]byte{sps}}, {34, [][]byte{pps}}}
	withArrayCount := func(n byte) []byte { return set(hevcRecord(head), 22, n) }
	tests := []struct {
		name    string
		in      []byte
		wantErr string
		want    HEVCConfig
	}{
		{name: "ffmpeg record", in: f.hevcRecord, want: HEVCConfig{LengthSize: 4, VPS: [][]byte{vps}, SPS: [][]byte{sps}, PPS: [][]byte{pps}}},
		{name: "sei array skipped", in: hevcRecord(head, append(all, hevcArray{39, [][]byte{{0x4e, 0x01, 5}}})...),
			want: HEVCConfig{LengthSize: 4, VPS: [][]byte{vps}, SPS: [][]byte{sps}, PPS: [][]byte{pps}}},
		{name: "empty", in: nil, wantErr: "hevc config: 0 bytes, need at least 23"},
		{name: "truncated header", in: head[:22], wantErr: "hevc config: 22 bytes, need at least 23"},
		{name: "version 2", in: set(head, 0, 2), wantErr: "hevc config: version 2, want 1"},
		{name: "length size 3", in: set(head, 21, head[21]&^3|2), wantErr: "hevc config: nal length size 3 is invalid"},
		{name: "absurd array count", in: withArrayCount(255), wantErr: "hevc config: array 0 of 255: header truncated (0 bytes left)"},
		{name: "absurd nal count", in: cat(withArrayCount(1), []byte{0xa0, 0xff, 0xff, 0, 1, 0x40}),
			wantErr: "hevc config: array 0 of 1: 65535 nal units bring the record past the limit of 64"},
		{name: "nal count truncated", in: cat(withArrayCount(2), []byte{0xa0, 0, 1, 0, 3, 0x40, 1, 2}),
			wantErr: "hevc config: array 1 of 2: header truncated (0 bytes left)"},
		{name: "nal length past end", in: cat(withArrayCount(1), []byte{0xa0, 0, 1, 0, 100, 0x40, 1, 2}),
			wantErr: "hevc config: array 0 (nal type 32): nal unit 0 of 1: length 100 exceeds record (3 bytes left)"},
		{name: "zero-length nal", in: hevcRecord(head, hevcArray{32, [][]byte{{}}}),
			wantErr: "hevc config: array 0 (nal type 32): nal unit 0 of 1: empty"},
		{name: "one-byte nal", in: hevcRecord(head, hevcArray{33, [][]byte{{0x42}}}),
			wantErr: "hevc config: array 0 (nal type 33): nal unit 0: 1 byte, shorter than a nal header"},
		{name: "nal of wrong type", in: hevcRecord(head, hevcArray{32, [][]byte{sps}}),
			wantErr: "hevc config: array 0 (nal type 32): nal unit 0: has nal type 33"},
		{name: "no vps", in: hevcRecord(head, all[1:]...), wantErr: "hevc config: no vps"},
		{name: "no sps", in: hevcRecord(head, all[0], all[2]), wantErr: "hevc config: no sps"},
		{name: "no pps", in: hevcRecord(head, all[:2]...), wantErr: "hevc config: no pps"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseHEVCConfig(tt.in)
			if !checkErr(t, err, tt.wantErr, nil) {
				return
			}
			if got.LengthSize != tt.want.LengthSize || !equalNALUs(got.VPS, tt.want.VPS) ||
				!equalNALUs(got.SPS, tt.want.SPS) || !equalNALUs(got.PPS, tt.want.PPS) {
				t.Fatalf("got %x, want %x", got, tt.want)
			}
		})
	}
}

func TestParseAV1Config(t *testing.T) {
	f := loadFixtures(t)
	head := f.av1Record[:4]
	tests := []struct {
		name    string
		in      []byte
		wantErr string
		wantSH  []byte
	}{
		{name: "ffmpeg record", in: f.av1Record, wantSH: f.av1SeqHeader},
		{name: "no config obus", in: head},
		{name: "metadata only", in: cat(head, []byte{0x2a, 0x01, 0x04})},
		{name: "sequence header after metadata", in: cat(head, []byte{0x2a, 0x01, 0x04}, f.av1Record[4:]), wantSH: f.av1SeqHeader},
		{name: "empty", in: nil, wantErr: "av1 config: 0 bytes, need at least 4"},
		{name: "truncated", in: head[:3], wantErr: "av1 config: 3 bytes, need at least 4"},
		{name: "bad marker", in: set(f.av1Record, 0, 0x01), wantErr: "av1 config: marker and version byte 0x01, want 0x81"},
		{name: "obu without size", in: cat(head, []byte{0x08, 0, 0}), wantErr: "av1 config: config obus: obu 0 has no size field"},
		{name: "forbidden bit", in: cat(head, []byte{0x8a, 0}), wantErr: "obu 0 header 0x8a: forbidden bit is set"},
		{name: "extension header", in: cat(head, []byte{0x0e, 0}), wantErr: "obu 0 header 0x0e: extension flag"},
		{name: "size past end", in: cat(head, []byte{0x0a, 0x10, 1, 2}), wantErr: "obu 0 size 16 exceeds data (2 bytes left)"},
		{name: "size truncated", in: cat(head, []byte{0x12, 0x00, 0x0a, 0x80}), wantErr: "obu 1 size: not enough bytes"},
		{name: "huge size", in: cat(head, []byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 1}), wantErr: "obu 0 size 4294967295 exceeds data (1 bytes left)"},
		{name: "too many obus", in: cat(head, bytes.Repeat([]byte{0x12, 0x00}, 129)), wantErr: "more than 128 obus"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseAV1Config(tt.in)
			if !checkErr(t, err, tt.wantErr, nil) {
				return
			}
			if !bytes.Equal(got.SequenceHeader, tt.wantSH) {
				t.Fatalf("sequence header %x, want %x", got.SequenceHeader, tt.wantSH)
			}
		})
	}
}

func TestSplitOBUs(t *testing.T) {
	in := []byte{0x12, 0x00, 0x32, 0x02, 0xaa, 0xbb, 0x0a, 0x81, 0x00, 0xcc}
	got, err := splitOBUs(in)
	if err != nil {
		t.Fatal(err)
	}
	// has_size cleared, size fields gone; a two-byte LEB128 with a redundant byte works.
	want := [][]byte{{0x10}, {0x30, 0xaa, 0xbb}, {0x08, 0xcc}}
	if !equalNALUs(got, want) {
		t.Fatalf("got %x, want %x", got, want)
	}
	in[4] = 0
	if got[1][1] != 0xaa {
		t.Fatal("OBUs alias the input")
	}
}

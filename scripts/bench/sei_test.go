package main

import (
	"bytes"
	"encoding/binary"
	"testing"
)

func TestEscapeRBSP(t *testing.T) {
	for _, tc := range []struct{ in, want []byte }{
		{[]byte{0, 0, 0}, []byte{0, 0, 3, 0}},
		{[]byte{0, 0, 1}, []byte{0, 0, 3, 1}},
		{[]byte{0, 0, 2}, []byte{0, 0, 3, 2}},
		{[]byte{0, 0, 3}, []byte{0, 0, 3, 3}},
		{[]byte{0, 0, 4}, []byte{0, 0, 4}},
		{[]byte{0, 0, 0, 0, 0}, []byte{0, 0, 3, 0, 0, 3, 0}},
		{[]byte{1, 0, 2, 0, 0}, []byte{1, 0, 2, 0, 0}},
	} {
		got := escapeRBSP(tc.in)
		if !bytes.Equal(got, tc.want) {
			t.Errorf("escapeRBSP(%x) = %x, want %x", tc.in, got, tc.want)
		}
		if back := unescapeRBSP(got); !bytes.Equal(back, tc.in) {
			t.Errorf("unescapeRBSP(%x) = %x, want %x", got, back, tc.in)
		}
	}
}

func TestStampRoundTrip(t *testing.T) {
	for _, ts := range []int64{
		1_700_000_000_123_456_789,
		0x0000_0100_0000_0302, // zero runs followed by 0x01, 0x00 and 0x03: three escapes
		0,                     // eight zero bytes
		-1,
	} {
		nal := stampNAL(ts)
		if nal[0] != nalTypeSEI {
			t.Fatalf("NAL header %#x, want SEI", nal[0])
		}
		for i := 1; i+2 < len(nal); i++ {
			if nal[i] == 0 && nal[i+1] == 0 && nal[i+2] <= 3 && nal[i+2] != 3 {
				t.Fatalf("stamp %#x: start code emulation at %d in %x", ts, i, nal)
			}
		}
		got, ok := readStamp(nal)
		if !ok || got != ts {
			t.Errorf("readStamp(stampNAL(%#x)) = %#x, %v", ts, got, ok)
		}
	}
	if len(stampNAL(0)) <= 1+3+stampPayloadSize {
		t.Error("an all-zero stamp must carry emulation prevention bytes")
	}
}

func TestReadStampIgnoresOtherSEI(t *testing.T) {
	// x264's own SEI (user data unregistered with another UUID), then ours in the same NAL.
	other := append([]byte{seiTypeUserDataUnregistered, 20}, bytes.Repeat([]byte{0xdc}, 20)...)
	ours := append([]byte{seiTypeUserDataUnregistered, stampPayloadSize}, stampUUID...)
	ours = binary.BigEndian.AppendUint64(ours, 42)
	rbsp := append(append(append([]byte{}, other...), ours...), 0x80)
	nal := append([]byte{nalTypeSEI}, escapeRBSP(rbsp)...)
	if got, ok := readStamp(nal); !ok || got != 42 {
		t.Errorf("readStamp = %d, %v; want 42, true", got, ok)
	}
	if _, ok := readStamp(append([]byte{nalTypeSEI}, escapeRBSP(append(other, 0x80))...)); ok {
		t.Error("a foreign SEI read as a stamp")
	}
	if _, ok := readStamp([]byte{nalTypeIDR, 1, 2, 3}); ok {
		t.Error("a slice read as a stamp")
	}
	if _, ok := readStamp([]byte{nalTypeSEI, seiTypeUserDataUnregistered, 200, 1}); ok {
		t.Error("a truncated SEI read as a stamp")
	}
}

// avcTag builds an FLV AVC NALU tag body from NAL units with 4-byte lengths.
func avcTag(key bool, nalus ...[]byte) []byte {
	first := byte(0x27)
	if key {
		first = 0x17
	}
	b := []byte{first, flvAVCNALU, 0, 0, 0}
	for _, n := range nalus {
		b = binary.BigEndian.AppendUint32(b, uint32(len(n)))
		b = append(b, n...)
	}
	return b
}

// splitAVCC splits 4-byte length-prefixed NAL units.
func splitAVCC(t *testing.T, b []byte) [][]byte {
	t.Helper()
	var out [][]byte
	for len(b) > 0 {
		if len(b) < 4 {
			t.Fatalf("truncated length in %x", b)
		}
		n := int(binary.BigEndian.Uint32(b))
		if len(b) < 4+n {
			t.Fatalf("NAL of %d bytes overruns %d", n, len(b)-4)
		}
		out = append(out, b[4:4+n])
		b = b[4+n:]
	}
	return out
}

func TestStampVideoTag(t *testing.T) {
	sps := []byte{7, 0x64, 0, 0x1f}
	pps := []byte{8, 0xee, 0x3c, 0x80}
	x264SEI := []byte{6, 5, 1, 0xaa, 0x80}
	idr := []byte{0x65, 0x88, 0x84, 0, 0, 3, 1}
	tag := avcTag(true, sps, pps, x264SEI, idr)
	const ts = int64(0x0000_0100_0000_0302)

	out, ok, err := stampVideoTag(tag, 4, ts)
	if err != nil || !ok {
		t.Fatalf("stampVideoTag: %v, %v", ok, err)
	}
	if !bytes.Equal(out[:5], tag[:5]) {
		t.Errorf("tag header changed: %x", out[:5])
	}
	nalus := splitAVCC(t, out[5:])
	if len(nalus) != 5 {
		t.Fatalf("%d NAL units, want 5", len(nalus))
	}
	for i, want := range [][]byte{sps, pps, x264SEI} {
		if !bytes.Equal(nalus[i], want) {
			t.Errorf("NAL %d = %x, want %x", i, nalus[i], want)
		}
	}
	if !bytes.Equal(nalus[4], idr) {
		t.Errorf("picture = %x, want %x", nalus[4], idr)
	}
	fi := inspectAU(nalus)
	if !fi.idr || !fi.hasStamp || fi.stamp != ts {
		t.Errorf("inspectAU = %+v, want an IDR stamped %#x", fi, ts)
	}
	if !bytes.Equal(tag, avcTag(true, sps, pps, x264SEI, idr)) {
		t.Error("stampVideoTag modified its input")
	}
}

func TestStampVideoTagLeavesOthers(t *testing.T) {
	seqHeader := []byte{0x17, flvAVCSequenceStart, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff}
	if n, ok := avcLengthSize(seqHeader); !ok || n != 4 {
		t.Errorf("avcLengthSize = %d, %v; want 4, true", n, ok)
	}
	for name, body := range map[string][]byte{
		"sequence header": seqHeader,
		"end of sequence": {0x17, 2, 0, 0, 0},
		"no picture":      avcTag(false, []byte{6, 5, 1, 0xaa, 0x80}),
		"HEVC (Enhanced)": {0x90, 'h', 'v', 'c', '1', 1, 2, 3},
	} {
		out, ok, err := stampVideoTag(body, 4, 1)
		if err != nil || ok || !bytes.Equal(out, body) {
			t.Errorf("%s: stampVideoTag = %x, %v, %v; want it unchanged", name, out, ok, err)
		}
	}
	if _, _, err := stampVideoTag(avcTag(false, []byte{1, 2, 3})[:9], 4, 1); err == nil {
		t.Error("a truncated NAL unit was accepted")
	}
}

func TestStampVideoTagShortLengths(t *testing.T) {
	body := []byte{0x27, flvAVCNALU, 0, 0, 0, 0, 3, 0x41, 0x9a, 0x02}
	out, ok, err := stampVideoTag(body, 2, 7)
	if err != nil || !ok {
		t.Fatalf("stampVideoTag: %v, %v", ok, err)
	}
	p := out[5:]
	n := int(p[0])<<8 | int(p[1])
	if got, ok := readStamp(p[2 : 2+n]); !ok || got != 7 {
		t.Errorf("stamp = %d, %v; want 7", got, ok)
	}
	if !bytes.Equal(p[2+n:], body[5:]) {
		t.Errorf("picture = %x, want %x", p[2+n:], body[5:])
	}
}

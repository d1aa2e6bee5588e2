package flv

import (
	"fmt"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/av1"
)

// OBU types the demuxer looks at (AV1 spec, 6.2.2).
const (
	obuSequenceHeader    = 1
	obuTemporalDelimiter = 2
	obuFrameHeader       = 3
	obuFrame             = 6
)

// maxOBUs bounds the OBUs of one temporal unit or config record, so a message made of tiny
// OBUs cannot make us allocate many times its size. A temporal unit of a single-layer
// stream holds a few: delimiter, sequence header, metadata, a frame or two, tile groups.
const maxOBUs = 128

func obuType(obu []byte) uint8 { return (obu[0] >> 3) & 0x0f }

// splitOBUs splits a low-overhead AV1 bitstream (every OBU with a size field) into OBUs in
// the form mediacommon and gohlslib use: obu_has_size_field cleared and no size field. The
// OBUs are written into one new buffer no larger than b, so they never alias b. Unlike
// av1.Bitstream.Unmarshal, which allocates each OBU on its own, this bounds the count.
func splitOBUs(b []byte) ([][]byte, error) {
	if len(b) == 0 {
		return nil, nil
	}
	// Every OBU loses at least its size field, so buf never grows past len(b) and the
	// slices taken from it stay valid.
	buf := make([]byte, 0, len(b))
	var obus [][]byte
	for i := 0; len(b) > 0; i++ {
		if i == maxOBUs {
			return nil, fmt.Errorf("more than %d obus", maxOBUs)
		}
		var h av1.OBUHeader
		if err := h.Unmarshal(b); err != nil {
			return nil, fmt.Errorf("obu %d header 0x%02x: %w", i, b[0], err)
		}
		if !h.HasSize {
			return nil, fmt.Errorf("obu %d has no size field, which the low-overhead format requires", i)
		}
		var size av1.LEB128
		n, err := size.Unmarshal(b[1:])
		if err != nil {
			return nil, fmt.Errorf("obu %d size: %w", i, err)
		}
		body := b[1+n:]
		if uint64(size) > uint64(len(body)) {
			return nil, fmt.Errorf("obu %d size %d exceeds data (%d bytes left)", i, size, len(body))
		}
		start := len(buf)
		buf = append(buf, b[0]&^0x02)
		buf = append(buf, body[:size]...)
		obus = append(obus, buf[start:len(buf):len(buf)])
		b = body[size:]
	}
	return obus, nil
}

// firstFrameIsKey reports whether the first frame of a temporal unit is a shown key frame,
// from the first bits of its uncompressed header (AV1 spec, 5.9.2). With
// reduced_still_picture_header every frame is a key frame.
func firstFrameIsKey(obus [][]byte, reducedStill bool) bool {
	for _, obu := range obus {
		switch obuType(obu) {
		case obuFrameHeader, obuFrame:
			if reducedStill {
				return true
			}
			if len(obu) < 2 {
				return false
			}
			h := obu[1] // splitOBUs rejects extension headers, so the frame header starts here.
			showExisting := h >> 7
			frameType := (h >> 5) & 3 // 0 is KEY_FRAME
			showFrame := (h >> 4) & 1
			return showExisting == 0 && frameType == 0 && showFrame == 1
		}
	}
	return false
}

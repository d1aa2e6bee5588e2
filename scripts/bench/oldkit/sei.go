package oldkit

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The publisher stamps every video access unit with an H.264 SEI NAL unit of type
// user_data_unregistered that carries stampUUID and the wall-clock time (UnixNano, big
// endian) at which the access unit was handed to the RTMP connection. Servers pass SEI
// through to HLS, where the probe finds the stamp again.
const (
	stampUUID = "onair-bench-sei1" // 16 bytes, as user_data_unregistered requires

	nalTypeNonIDR = 1
	nalTypeIDR    = 5
	nalTypeSEI    = 6

	seiTypeUserDataUnregistered = 5
	stampPayloadSize            = 16 + 8
)

// stampNAL returns an SEI NAL unit (header included, emulation prevention applied)
// carrying sendTime.
func stampNAL(sendTime int64) []byte {
	rbsp := make([]byte, 0, 3+stampPayloadSize)
	rbsp = append(rbsp, seiTypeUserDataUnregistered, stampPayloadSize)
	rbsp = append(rbsp, stampUUID...)
	rbsp = binary.BigEndian.AppendUint64(rbsp, uint64(sendTime))
	rbsp = append(rbsp, 0x80) // rbsp_trailing_bits
	return append([]byte{nalTypeSEI}, escapeRBSP(rbsp)...)
}

// escapeRBSP inserts an emulation prevention byte (0x03) wherever two zero bytes are
// followed by a byte of 0x03 or less, so that the NAL unit never contains a start code.
func escapeRBSP(rbsp []byte) []byte {
	out := make([]byte, 0, len(rbsp)+len(rbsp)/16+1)
	zeros := 0
	for _, b := range rbsp {
		if zeros >= 2 && b <= 3 {
			out = append(out, 3)
			zeros = 0
		}
		out = append(out, b)
		if b == 0 {
			zeros++
		} else {
			zeros = 0
		}
	}
	return out
}

// unescapeRBSP removes emulation prevention bytes.
func unescapeRBSP(ebsp []byte) []byte {
	out := make([]byte, 0, len(ebsp))
	zeros := 0
	for _, b := range ebsp {
		if zeros >= 2 && b == 3 {
			zeros = 0
			continue
		}
		out = append(out, b)
		if b == 0 {
			zeros++
		} else {
			zeros = 0
		}
	}
	return out
}

// readStamp returns the send time carried by nal if it is one of the benchmark's SEI NAL
// units (any SEI message of it may be the stamp).
func readStamp(nal []byte) (int64, bool) {
	if len(nal) < 2 || nal[0]&0x1f != nalTypeSEI {
		return 0, false
	}
	p := unescapeRBSP(nal[1:])
	for len(p) > 0 && p[0] != 0x80 { // sei_message()* until rbsp_trailing_bits
		typ, n := seiNumber(p)
		if n == 0 {
			return 0, false
		}
		p = p[n:]
		size, n := seiNumber(p)
		if n == 0 || len(p)-n < size {
			return 0, false
		}
		payload := p[n : n+size]
		p = p[n+size:]
		if typ == seiTypeUserDataUnregistered && size >= stampPayloadSize && string(payload[:16]) == stampUUID {
			return int64(binary.BigEndian.Uint64(payload[16:24])), true
		}
	}
	return 0, false
}

// seiNumber reads an SEI payload type or size (a run of 0xFF bytes adding 255 each, then
// a last byte) and returns it with the number of bytes read, 0 when p is too short.
func seiNumber(p []byte) (int, int) {
	v := 0
	for i, b := range p {
		v += int(b)
		if b != 0xff {
			return v, i + 1
		}
	}
	return 0, 0
}

// FLV AVC video tag layout: frame type and codec id, AVCPacketType, composition time.
const (
	flvCodecAVC         = 7
	flvAVCSequenceStart = 0
	flvAVCNALU          = 1
	flvAVCHeaderSize    = 5
)

// avcLengthSize returns the NAL length field size of an FLV AVC sequence header tag body
// (AVCDecoderConfigurationRecord's lengthSizeMinusOne + 1), and false for other tags.
func AvcLengthSize(body []byte) (int, bool) {
	if len(body) < flvAVCHeaderSize+5 || body[0]&0x0f != flvCodecAVC || body[1] != flvAVCSequenceStart {
		return 0, false
	}
	return int(body[flvAVCHeaderSize+4]&0x03) + 1, true
}

// stampVideoTag returns a copy of an FLV AVC NALU tag body with a stamp NAL unit
// carrying sendTime inserted before the first slice. Other tags come back unchanged with
// false.
func StampVideoTag(body []byte, lengthSize int, sendTime int64) ([]byte, bool, error) {
	if len(body) < flvAVCHeaderSize || body[0]&0x0f != flvCodecAVC || body[1] != flvAVCNALU {
		return body, false, nil
	}
	if lengthSize < 1 || lengthSize > 4 {
		return nil, false, fmt.Errorf("sei: NAL length size %d", lengthSize)
	}
	at := -1 // offset of the first slice's length field
	for off := flvAVCHeaderSize; off < len(body); {
		if len(body)-off < lengthSize {
			return nil, false, errors.New("sei: truncated NAL length")
		}
		n := 0
		for _, b := range body[off : off+lengthSize] {
			n = n<<8 | int(b)
		}
		start := off + lengthSize
		if n == 0 || len(body)-start < n {
			return nil, false, fmt.Errorf("sei: NAL unit of %d bytes at offset %d overruns the %d-byte tag", n, start, len(body))
		}
		if t := body[start] & 0x1f; t >= nalTypeNonIDR && t <= nalTypeIDR {
			at = off
			break
		}
		off = start + n
	}
	if at < 0 {
		return body, false, nil // no picture in this tag
	}
	sei := stampNAL(sendTime)
	if lengthSize < 4 && len(sei) >= 1<<(8*lengthSize) {
		return nil, false, fmt.Errorf("sei: stamp does not fit a %d-byte NAL length", lengthSize)
	}
	out := make([]byte, 0, len(body)+lengthSize+len(sei))
	out = append(out, body[:at]...)
	for i := lengthSize - 1; i >= 0; i-- {
		out = append(out, byte(len(sei)>>(8*i)))
	}
	out = append(out, sei...)
	out = append(out, body[at:]...)
	return out, true, nil
}

// frameInfo is what the probe needs from one received video access unit.
type frameInfo struct {
	stamp    int64 // send time; 0 when the access unit carries no stamp
	hasStamp bool
	idr      bool
}

// inspectAU looks at the NAL units of one access unit.
func inspectAU(nalus [][]byte) frameInfo {
	var fi frameInfo
	for _, n := range nalus {
		if len(n) == 0 {
			continue
		}
		switch n[0] & 0x1f {
		case nalTypeIDR:
			fi.idr = true
		case nalTypeSEI:
			if t, ok := readStamp(n); ok && !fi.hasStamp {
				fi.stamp, fi.hasStamp = t, true
			}
		}
	}
	return fi
}

package rtmp

import (
	"encoding/binary"
	"fmt"
	"io"
	"sync/atomic"
)

// guardLimits bound what one connection may make the server hold.
type guardLimits struct {
	MaxMessageSize  uint32 // largest message length a chunk header may declare (e.g. 8 MiB)
	MaxChunkSize    uint32 // largest Set Chunk Size the peer may ask for (e.g. 1 MiB)
	MaxChunkStreams int    // distinct chunk stream ids (e.g. 64)
	// MaxPending bounds the message bytes go-rtmp buffers across all chunk streams (e.g.
	// 16 MiB): the received part of every incomplete message and, because go-rtmp keeps a
	// chunk stream's buffer after its message completes, the largest message seen on each
	// chunk stream. go-rtmp's bytes.Buffer growth can make its memory up to twice this
	// (ConnMemory).
	MaxPending int64
}

const (
	handshakeSize    = 1 + 1536 + 1536 // C0, C1, C2
	rtmpVersion      = 3
	initialChunkSize = 128
	// extendedTimestamp in a header's 24-bit timestamp field means a 4-byte timestamp follows.
	extendedTimestamp = 0xffffff
	typeSetChunkSize  = 1
	typeDataAMF0      = 18
	typeCommandAMF0   = 20
	// maxAMF0MessageSize bounds command and data messages, which go-amf0 turns into maps
	// and interfaces many times their size; publishers send well under 1 KiB.
	maxAMF0MessageSize = 256 << 10
	// guardBufSize fits the longest chunk header the guard accepts (2-byte basic header,
	// 11-byte message header, 4-byte extended timestamp) plus a Set Chunk Size payload
	// held until checked.
	guardBufSize = 2 + 11 + 4 + 4
)

// chunkStream is what the guard remembers of one chunk stream, mirroring go-rtmp's reader.
type chunkStream struct {
	length   uint32 // message length of the last fmt 0/1 header
	typeID   byte   // message type of the last fmt 0/1 header
	received uint32 // bytes of the current message passed on; 0 between messages
	// charged is what this chunk stream counts against MaxPending: the most bytes go-rtmp
	// has buffered for it, since it never shrinks that buffer.
	charged uint32
	// hasExt says the last fmt 0/1/2 header carried the extended timestamp ext, which the
	// peer then repeats after every fmt 3 header (RTMP spec 5.3.1.3).
	hasExt bool
	ext    [4]byte
	// setChunkSize collects a Set Chunk Size payload that may arrive over several chunks.
	setChunkSize [4]byte
	amf0         *amf0Scanner // follows AMF0 messages; made on the first one
}

// chunkGuard wraps the client→server byte stream of one RTMP connection. It follows the
// chunk framing that go-rtmp will parse, passes the bytes on unchanged (but for the fmt 3
// extended timestamps go-rtmp cannot read), and fails the read before go-rtmp sees a
// header that would make it buffer without bound, panic or lose the framing. The 3-byte
// basic header is refused for the last reason.
//
// Abort Message (type 2) is not followed: go-rtmp ignores it too, so both keep the same
// view of the framing.
type chunkGuard struct {
	r      io.Reader
	limits guardLimits
	err    error // the protocol violation found; every later Read returns it

	handshakeLeft int // bytes of C0, C1, C2 still to pass through
	chunkSize     uint32
	streams       map[int]*chunkStream
	// held is the sum of chunkStream.charged. Only the reading goroutine changes it; the
	// server reads it from others to report what its connections hold.
	held atomic.Int64

	// buf[off:end] was read from r but not yet returned. Its first hdrOut bytes are the
	// current chunk's header; any after them begin the payload, or even the next header
	// (read ahead when peeking for a fmt 3 extended timestamp).
	buf      [guardBufSize]byte
	off, end int
	hdrOut   int

	cur         *chunkStream // the chunk stream of the chunk being passed on
	curID       int          // and its id
	payloadLeft int          // payload bytes of that chunk still to pass on
}

func newChunkGuard(r io.Reader, limits guardLimits) *chunkGuard {
	return &chunkGuard{
		r:             r,
		limits:        limits,
		handshakeLeft: handshakeSize,
		chunkSize:     initialChunkSize,
		streams:       make(map[int]*chunkStream),
	}
}

// setLimits replaces the limits for the chunks after the current one; what is already
// buffered stays charged. It must be called from the goroutine that reads.
func (g *chunkGuard) setLimits(limits guardLimits) { g.limits = limits }

// Read returns at most one chunk's header and the payload bytes one read of the
// underlying reader yields, so it never waits for data beyond what go-rtmp needs next.
func (g *chunkGuard) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if g.handshakeLeft > 0 {
		return g.readHandshake(p)
	}
	if g.hdrOut == 0 && g.payloadLeft == 0 {
		if err := g.readHeader(); err != nil {
			return 0, err
		}
	}
	n := 0
	if g.hdrOut > 0 {
		n = copy(p, g.buf[g.off:g.off+g.hdrOut])
		g.off += n
		g.hdrOut -= n
		if g.hdrOut > 0 {
			return n, nil
		}
	}
	q := p[n:]
	if len(q) > g.payloadLeft {
		q = q[:g.payloadLeft]
	}
	if len(q) == 0 {
		return n, nil
	}
	var m int
	var err error
	if g.off < g.end {
		m = copy(q, g.buf[g.off:g.end])
		g.off += m
	} else {
		m, err = g.r.Read(q)
	}
	cs := g.cur
	if cs.typeID == typeCommandAMF0 || cs.typeID == typeDataAMF0 {
		// go-rtmp decodes a message once it is complete, so failing here, with its bytes
		// withheld, is in time.
		if cs.received == 0 {
			cs.amf0.reset()
		}
		if aerr := cs.amf0.scan(q[:m], cs.length); aerr != nil {
			return 0, g.fail("rtmp chunk stream %d: %v", g.curID, aerr)
		}
	}
	g.payloadLeft -= m
	cs.received += uint32(m)
	if cs.received == cs.length {
		cs.received = 0
	}
	return n + m, err
}

func (g *chunkGuard) readHandshake(p []byte) (int, error) {
	if len(p) > g.handshakeLeft {
		p = p[:g.handshakeLeft]
	}
	n, err := g.r.Read(p)
	if n > 0 && g.handshakeLeft == handshakeSize && p[0] != rtmpVersion {
		return 0, g.fail("rtmp handshake: C0 version %d, want %d", p[0], rtmpVersion)
	}
	g.handshakeLeft -= n
	return n, err
}

// readHeader reads and checks the next chunk header. It changes no state until the whole
// header (and a Set Chunk Size payload) has been read, so after an I/O error a later Read
// parses the same bytes again.
func (g *chunkGuard) readHeader() error {
	g.end = copy(g.buf[:], g.buf[g.off:g.end])
	g.off = 0

	if err := g.fill(1); err != nil {
		return err
	}
	format := g.buf[0] >> 6
	csid, size := int(g.buf[0]&0x3f), 1
	switch csid {
	case 0:
		size = 2
		if err := g.fill(size); err != nil {
			return err
		}
		csid = 64 + int(g.buf[1])
	case 1:
		// go-rtmp reads this form with io.ReadAtLeast into its 64 KiB buffer, swallowing
		// the bytes after it: its framing and ours would part, voiding every check here.
		// Clients use chunk stream ids below 320, which the shorter forms encode.
		return g.fail("rtmp chunk basic header %#02x: the 3-byte form (chunk stream ids from 320) is not supported", g.buf[0])
	}

	cs := g.streams[csid]
	var next chunkStream
	if cs != nil {
		next = *cs
	} else {
		if format != 0 {
			// go-rtmp would use a zero message length and panic.
			return g.fail("rtmp chunk stream %d: fmt %d header without a previous fmt 0 header", csid, format)
		}
		if len(g.streams) >= g.limits.MaxChunkStreams {
			return g.fail("rtmp chunk stream %d: more than %d chunk streams", csid, g.limits.MaxChunkStreams)
		}
	}

	drop := 0 // bytes after the basic header that go-rtmp must not see
	if format == 3 {
		if next.hasExt {
			repeated, err := g.peekExtendedTimestamp(size, &next.ext)
			if err != nil {
				return err
			}
			if repeated {
				// go-rtmp does not read this field; passed on, it would corrupt the framing.
				drop = 4
			}
		}
	} else {
		mh := [3]int{11, 7, 3}[format]
		if err := g.fill(size + mh); err != nil {
			return err
		}
		h := g.buf[size : size+mh]
		next.hasExt = uint24(h) == extendedTimestamp
		size += mh
		if next.hasExt {
			if err := g.fill(size + 4); err != nil {
				return err
			}
			copy(next.ext[:], g.buf[size:size+4])
			size += 4
		}
		if format <= 1 {
			if err := g.checkMessageHeader(csid, &next, uint24(h[3:]), h[6]); err != nil {
				return err
			}
		}
	}

	chunk := min(g.chunkSize, next.length-next.received)
	var charge uint32
	if want := next.received + chunk; want > next.charged {
		charge = want - next.charged
		if held := g.held.Load() + int64(charge); held > g.limits.MaxPending {
			return g.fail("rtmp chunk stream %d: buffered messages would reach %d bytes, limit %d", csid, held, g.limits.MaxPending)
		}
	}

	var newChunkSize uint32
	if next.typeID == typeSetChunkSize {
		// Hold the payload back until it is known to be acceptable: once passed on,
		// go-rtmp would apply it.
		start := size + drop
		if err := g.fill(start + int(chunk)); err != nil {
			return err
		}
		copy(next.setChunkSize[next.received:], g.buf[start:start+int(chunk)])
		if next.received+chunk == next.length {
			v, err := g.checkChunkSize(csid, binary.BigEndian.Uint32(next.setChunkSize[:]))
			if err != nil {
				return err
			}
			newChunkSize = v
		}
	}

	if (next.typeID == typeCommandAMF0 || next.typeID == typeDataAMF0) && next.amf0 == nil {
		next.amf0 = new(amf0Scanner)
	}
	if cs == nil {
		cs = new(chunkStream)
		g.streams[csid] = cs
	}
	*cs = next
	cs.charged += charge
	if charge > 0 {
		g.held.Add(int64(charge))
	}
	if drop > 0 {
		copy(g.buf[drop:drop+size], g.buf[:size])
		g.off = drop
	}
	g.hdrOut = size
	g.cur, g.curID = cs, csid
	g.payloadLeft = int(chunk)
	if newChunkSize != 0 {
		// It governs the chunks after this one; this chunk's size is already fixed, as in go-rtmp.
		g.chunkSize = newChunkSize
	}
	return nil
}

// checkMessageHeader checks a fmt 0/1 header's message length and type against the limits
// and the chunk stream's current message, and records them in cs.
func (g *chunkGuard) checkMessageHeader(csid int, cs *chunkStream, length uint32, typeID byte) error {
	switch {
	case length == 0:
		// go-rtmp would panic on an empty message.
		return g.fail("rtmp chunk stream %d: message length 0", csid)
	case length > g.limits.MaxMessageSize:
		return g.fail("rtmp chunk stream %d: message length %d exceeds limit %d", csid, length, g.limits.MaxMessageSize)
	case cs.received > 0 && (length != cs.length || typeID != cs.typeID):
		// go-rtmp would append the new message to the buffered part of the old one.
		return g.fail("rtmp chunk stream %d: header for a type %d message of length %d while %d of %d bytes of a type %d message are buffered",
			csid, typeID, length, cs.received, cs.length, cs.typeID)
	case typeID == typeSetChunkSize && length != 4:
		return g.fail("rtmp chunk stream %d: Set Chunk Size message length %d, want 4", csid, length)
	case (typeID == typeCommandAMF0 || typeID == typeDataAMF0) && length > maxAMF0MessageSize:
		return g.fail("rtmp chunk stream %d: type %d AMF0 message length %d exceeds limit %d", csid, typeID, length, maxAMF0MessageSize)
	}
	cs.length, cs.typeID = length, typeID
	return nil
}

func (g *chunkGuard) checkChunkSize(csid int, v uint32) (uint32, error) {
	switch {
	case v&0x80000000 != 0:
		return 0, g.fail("rtmp chunk stream %d: Set Chunk Size %#08x has the reserved top bit set", csid, v)
	case v == 0:
		return 0, g.fail("rtmp chunk stream %d: Set Chunk Size 0", csid)
	case v > g.limits.MaxChunkSize:
		return 0, g.fail("rtmp chunk stream %d: Set Chunk Size %d exceeds limit %d", csid, v, g.limits.MaxChunkSize)
	}
	return v, nil
}

// peekExtendedTimestamp reports whether the 4 bytes after a fmt 3 basic header of the
// given size repeat the chunk stream's extended timestamp, as librtmp and nginx-rtmp
// decide it. Peers that omit the field send payload there instead; stopping at the first
// byte that differs keeps such a peer, whose last chunk may be shorter than 4 bytes,
// from waiting on bytes the guard would never get.
func (g *chunkGuard) peekExtendedTimestamp(size int, ext *[4]byte) (bool, error) {
	for i := range 4 {
		if err := g.fill(size + i + 1); err != nil {
			return false, err
		}
		if g.buf[size+i] != ext[i] {
			return false, nil
		}
	}
	return true, nil
}

// fill reads from r until buf holds n bytes, reading no further, so that payload bytes
// go straight from r to the caller.
func (g *chunkGuard) fill(n int) error {
	for g.end < n {
		m, err := g.r.Read(g.buf[g.end:n])
		g.end += m
		if err != nil && g.end < n {
			if err == io.EOF && g.end > 0 {
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

func (g *chunkGuard) fail(format string, args ...any) error {
	g.err = fmt.Errorf(format, args...)
	return g.err
}

func uint24(b []byte) uint32 {
	return uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2])
}

// maxAMF0Depth bounds the nesting of AMF0 objects and arrays; publishers nest 2 deep.
const maxAMF0Depth = 32

// amf0Scanner follows the AMF0 values of a command or data message as its bytes pass, to
// refuse what go-amf0 cannot survive: it allocates a strict array's declared length up
// front (a 5-byte value can ask for 32 GiB) and recurses once per nesting level, and both
// out of memory and out of stack are fatal to the whole process, not panics.
type amf0Scanner struct {
	state    amf0State
	next     amf0State // after amf0Skip: amf0Marker for a property's value, else amf0Done
	n        int       // bytes still to skip, or to read into acc
	acc      uint32
	stack    [maxAMF0Depth]amf0Frame
	depth    int
	elements uint64 // strict array elements declared so far in the message
}

type amf0Frame struct {
	array bool   // a strict array; else an object or ECMA array
	left  uint32 // elements still to come in a strict array
}

type amf0State uint8

const (
	amf0Marker     amf0State = iota // a value's marker
	amf0Skip                        // n bytes of a value or property name
	amf0StringLen                   // n bytes of a string's length
	amf0KeyLen                      // n bytes of a property name's length
	amf0ObjectEnd                   // the end marker after an empty property name
	amf0ECMACount                   // n bytes of an ECMA array's count, which go-amf0 ignores
	amf0ArrayCount                  // n bytes of a strict array's length
	amf0Done                        // a value is complete (only as next)
	amf0Stop                        // go-amf0 fails here and decodes nothing after
)

func (s *amf0Scanner) reset() { *s = amf0Scanner{} }

// scan follows the next bytes b of a message of the given length.
func (s *amf0Scanner) scan(b []byte, length uint32) error {
	for i := 0; i < len(b); {
		switch s.state {
		case amf0Stop:
			return nil
		case amf0Skip:
			k := min(s.n, len(b)-i)
			i += k
			if s.n -= k; s.n == 0 {
				s.then(s.next)
			}
		case amf0Marker:
			c := b[i]
			i++
			switch c {
			case 0x00: // number
				s.skip(8, amf0Done)
			case 0x01: // boolean
				s.skip(1, amf0Done)
			case 0x02: // string
				s.read(amf0StringLen, 2)
			case 0x03, 0x08: // object, ECMA array
				if err := s.push(amf0Frame{}); err != nil {
					return err
				}
				if c == 0x03 {
					s.read(amf0KeyLen, 2)
				} else {
					s.read(amf0ECMACount, 4)
				}
			case 0x05: // null
				s.valueDone()
			case 0x0a: // strict array
				s.read(amf0ArrayCount, 4)
			case 0x0b: // date: 8-byte time, 2-byte zone
				s.skip(10, amf0Done)
			default: // not decoded by go-amf0: an error
				s.state = amf0Stop
			}
		case amf0ObjectEnd:
			if b[i] != 0x09 {
				s.state = amf0Stop
				break
			}
			i++
			s.depth--
			s.valueDone()
		default:
			s.acc = s.acc<<8 | uint32(b[i])
			i++
			if s.n--; s.n > 0 {
				break
			}
			if err := s.length(length); err != nil {
				return err
			}
		}
	}
	return nil
}

// length acts on a length or count just read.
func (s *amf0Scanner) length(msgLength uint32) error {
	v := s.acc
	switch s.state {
	case amf0StringLen:
		s.skip(int(v), amf0Done)
	case amf0KeyLen:
		if v == 0 {
			s.state = amf0ObjectEnd
		} else {
			s.skip(int(v), amf0Marker)
		}
	case amf0ECMACount:
		s.read(amf0KeyLen, 2)
	case amf0ArrayCount:
		if v > 1<<31-1 {
			s.state = amf0Stop // go-amf0 refuses it before allocating
			return nil
		}
		// Every element starts with its own marker byte, so valid messages never declare
		// more elements than they have bytes.
		if s.elements += uint64(v); s.elements > uint64(msgLength) {
			return fmt.Errorf("AMF0 strict arrays declare %d elements in a %d-byte message", s.elements, msgLength)
		}
		if v == 0 {
			s.valueDone()
			return nil
		}
		return s.push(amf0Frame{array: true, left: v})
	}
	return nil
}

func (s *amf0Scanner) push(f amf0Frame) error {
	if s.depth == maxAMF0Depth {
		return fmt.Errorf("AMF0 values nested deeper than %d", maxAMF0Depth)
	}
	s.stack[s.depth] = f
	s.depth++
	s.state = amf0Marker
	return nil
}

func (s *amf0Scanner) read(state amf0State, n int) {
	s.state, s.n, s.acc = state, n, 0
}

func (s *amf0Scanner) skip(n int, next amf0State) {
	s.state, s.n, s.next = amf0Skip, n, next
	if n == 0 {
		s.then(next)
	}
}

func (s *amf0Scanner) then(next amf0State) {
	if next == amf0Done {
		s.valueDone()
	} else {
		s.state = next
	}
}

// valueDone moves on after a complete value: to the next property name of an object, the
// next element of an array, or the next value of the message.
func (s *amf0Scanner) valueDone() {
	for s.depth > 0 {
		f := &s.stack[s.depth-1]
		if !f.array {
			s.read(amf0KeyLen, 2)
			return
		}
		if f.left--; f.left > 0 {
			s.state = amf0Marker
			return
		}
		s.depth--
	}
	s.state = amf0Marker
}

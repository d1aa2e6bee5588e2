package rtmp

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/yutopp/go-amf0"
	gortmp "github.com/yutopp/go-rtmp"
	rtmpmsg "github.com/yutopp/go-rtmp/message"
)

var testLimits = guardLimits{
	MaxMessageSize:  8 << 20,
	MaxChunkSize:    1 << 20,
	MaxChunkStreams: 64,
	MaxPending:      16 << 20,
}

// testHandshake is a valid C0, C1, C2.
func testHandshake() []byte {
	b := make([]byte, handshakeSize)
	b[0] = rtmpVersion
	for i := 1; i < len(b); i++ {
		b[i] = byte(i * 7)
	}
	return b
}

// chunkEncoder writes a client's chunk stream with full control over header formats, and
// what go-rtmp should make of it.
type chunkEncoder struct {
	wire      []byte // what the client sends
	clean     []byte // what go-rtmp must receive: wire without the fmt 3 extended timestamps
	chunkSize int
	// fmt3Ext repeats the extended timestamp after fmt 3 headers, as the spec, ffmpeg and
	// OBS do; go-rtmp's own writer does not.
	fmt3Ext bool
	streams map[int]*encStream
	want    []wantMsg
}

type encStream struct {
	ext       []byte // extended timestamp field of the last fmt 0/1/2 header, nil if none
	ts, delta uint32 // go-rtmp's timestamp bookkeeping
	length    int
	typeID    byte
	msid      uint32
	payload   []byte // the current message
	sent      int    // bytes of it sent
}

type wantMsg struct {
	csid      int
	timestamp uint32
	typeID    byte
	msid      uint32
	payload   []byte
}

func newChunkEncoder() *chunkEncoder {
	return &chunkEncoder{chunkSize: initialChunkSize, fmt3Ext: true, streams: map[int]*encStream{}}
}

func (e *chunkEncoder) both(b ...byte) {
	e.wire = append(e.wire, b...)
	e.clean = append(e.clean, b...)
}

func (e *chunkEncoder) basicHeader(format byte, csid int) {
	switch {
	case csid < 64:
		e.both(format<<6 | byte(csid))
	case csid < 320:
		e.both(format<<6, byte(csid-64))
	default:
		e.both(format<<6|1, byte((csid-64)%256), byte((csid-64)/256))
	}
}

// header writes a fmt 0/1/2 header; ts is the timestamp (fmt 0) or delta (fmt 1, 2).
func (e *chunkEncoder) header(format byte, csid int, ts uint32, length int, typeID byte, msid uint32) {
	e.basicHeader(format, csid)
	s := e.streams[csid]
	if s == nil {
		s = &encStream{}
		e.streams[csid] = s
	}
	field := min(ts, extendedTimestamp)
	e.both(byte(field>>16), byte(field>>8), byte(field))
	if format <= 1 {
		e.both(byte(length>>16), byte(length>>8), byte(length), typeID)
		s.length, s.typeID = length, typeID
	}
	if format == 0 {
		e.both(binary.LittleEndian.AppendUint32(nil, msid)...)
		s.msid = msid
	}
	s.ext = nil
	if field == extendedTimestamp {
		s.ext = binary.BigEndian.AppendUint32(nil, ts)
		e.both(s.ext...)
	}
	if format == 0 {
		s.ts, s.delta = ts, 0
	} else {
		s.delta = ts
	}
}

// fmt3 writes a fmt 3 header, with the extended timestamp repeated if fmt3Ext.
func (e *chunkEncoder) fmt3(csid int) {
	e.basicHeader(3, csid)
	if s := e.streams[csid]; s.ext != nil && e.fmt3Ext {
		e.wire = append(e.wire, s.ext...)
	}
}

// begin starts a message on csid with a header of the given format and sends its first
// chunk; fmt 3 repeats the previous header.
func (e *chunkEncoder) begin(format byte, csid int, ts uint32, typeID byte, msid uint32, payload []byte) {
	if s := e.streams[csid]; format >= 2 && len(payload) != s.length {
		panic(fmt.Sprintf("test bug: fmt %d message of %d bytes, header says %d", format, len(payload), s.length))
	}
	if format == 3 {
		e.fmt3(csid)
	} else {
		e.header(format, csid, ts, len(payload), typeID, msid)
	}
	s := e.streams[csid]
	s.payload, s.sent = payload, 0
	e.payload(csid)
}

// next sends the next chunk of csid's message under a fmt 3 header.
func (e *chunkEncoder) next(csid int) {
	e.fmt3(csid)
	e.payload(csid)
}

func (e *chunkEncoder) payload(csid int) {
	s := e.streams[csid]
	n := min(e.chunkSize, len(s.payload)-s.sent)
	e.both(s.payload[s.sent : s.sent+n]...)
	s.sent += n
	if s.sent == len(s.payload) {
		s.ts += s.delta
		e.want = append(e.want, wantMsg{csid, s.ts, s.typeID, s.msid, s.payload})
	}
}

func (e *chunkEncoder) done(csid int) bool {
	s := e.streams[csid]
	return s.sent == len(s.payload)
}

// msg sends a whole message.
func (e *chunkEncoder) msg(format byte, csid int, ts uint32, typeID byte, msid uint32, payload []byte) {
	e.begin(format, csid, ts, typeID, msid, payload)
	for !e.done(csid) {
		e.next(csid)
	}
}

func (e *chunkEncoder) setChunkSize(n uint32) {
	e.msg(0, 2, 0, typeSetChunkSize, 0, binary.BigEndian.AppendUint32(nil, n))
	e.chunkSize = int(n)
}

func testPayload(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*31)
	}
	return b
}

const (
	typeAudio = 8
	typeVideo = 9
)

// validStreams are chunk streams the guard must pass on; each builds its encoder.
var validStreams = []struct {
	name  string
	build func(e *chunkEncoder)
}{
	{"single small message", func(e *chunkEncoder) {
		e.msg(0, 6, 40, typeVideo, 1, testPayload(100, 1))
	}},
	{"multi-chunk message at default chunk size", func(e *chunkEncoder) {
		e.msg(0, 6, 40, typeVideo, 1, testPayload(1000, 2))
	}},
	{"fmt 1, 2, 3 headers for later messages", func(e *chunkEncoder) {
		e.msg(0, 4, 0, typeAudio, 1, testPayload(300, 3))
		e.msg(1, 4, 23, typeAudio, 1, testPayload(200, 4))
		e.msg(2, 4, 21, 0, 0, testPayload(200, 5))
		e.msg(3, 4, 0, 0, 0, testPayload(200, 6))
		e.msg(0, 4, 5, typeVideo, 1, testPayload(10, 7))
	}},
	{"interleaved chunk streams", func(e *chunkEncoder) {
		e.begin(0, 6, 0, typeVideo, 1, testPayload(1000, 8))
		e.begin(0, 4, 0, typeAudio, 1, testPayload(50, 9))
		e.next(6)
		e.begin(0, 5, 0, typeVideo, 1, testPayload(400, 10))
		e.next(5)
		e.begin(1, 4, 20, typeAudio, 1, testPayload(300, 11))
		for !e.done(6) || !e.done(5) || !e.done(4) {
			for _, cs := range []int{4, 5, 6} {
				if !e.done(cs) {
					e.next(cs)
				}
			}
		}
	}},
	{"chunk size changes", func(e *chunkEncoder) {
		e.msg(0, 6, 0, typeVideo, 1, testPayload(1000, 12))
		e.setChunkSize(4096)
		e.msg(1, 6, 33, typeVideo, 1, testPayload(10000, 13))
		e.setChunkSize(1)
		e.msg(1, 6, 33, typeVideo, 1, testPayload(10, 14))
		e.setChunkSize(3) // its 4 bytes arrive in two chunks
		e.msg(1, 6, 33, typeVideo, 1, testPayload(10, 15))
		e.setChunkSize(1 << 20)
		e.msg(1, 6, 33, typeVideo, 1, testPayload(300000, 16))
	}},
	{"chunk size change between chunks of an interleaved message", func(e *chunkEncoder) {
		e.begin(0, 6, 0, typeVideo, 1, testPayload(1000, 17))
		e.setChunkSize(500)
		for !e.done(6) {
			e.next(6)
		}
	}},
	{"2-byte basic headers", func(e *chunkEncoder) {
		e.msg(0, 64, 0, typeVideo, 1, testPayload(300, 18))
		e.msg(0, 319, 0, typeVideo, 1, testPayload(300, 19))
		e.msg(1, 319, 10, typeVideo, 1, testPayload(300, 22))
	}},
	{"extended timestamps on fmt 0, 1, 2", func(e *chunkEncoder) {
		e.msg(0, 6, 0x01000000, typeVideo, 1, testPayload(100, 23))
		e.msg(1, 6, 0x00ffffff, typeVideo, 1, testPayload(100, 24))
		e.msg(2, 6, 0x12345678, 0, 0, testPayload(100, 25))
		e.msg(2, 6, 40, 0, 0, testPayload(100, 26))
	}},
	{"extended timestamps repeated after fmt 3", func(e *chunkEncoder) {
		e.msg(0, 6, 0x7fffff00, typeVideo, 1, testPayload(1000, 27))
		e.msg(1, 6, 0x01000000, typeVideo, 1, testPayload(1000, 28))
		e.msg(3, 6, 0, 0, 0, testPayload(1000, 29)) // a new message under fmt 3
		e.msg(0, 4, 0xfffffff0, typeAudio, 1, testPayload(200, 30))
		e.msg(2, 4, 0xffffffff, 0, 0, testPayload(200, 31))
		e.msg(2, 4, 5, 0, 0, testPayload(200, 32)) // no extended timestamp any more
	}},
	{"extended timestamps repeated after fmt 3, interleaved", func(e *chunkEncoder) {
		e.begin(0, 6, 0x01000000, typeVideo, 1, testPayload(1000, 33))
		e.begin(0, 4, 0x01000001, typeAudio, 1, testPayload(1000, 34))
		for !e.done(6) || !e.done(4) {
			e.next(6)
			e.next(4)
		}
	}},
	{"extended timestamps not repeated after fmt 3 (go-rtmp style)", func(e *chunkEncoder) {
		e.fmt3Ext = false
		e.msg(0, 6, 0x01000000, typeVideo, 1, testPayload(1000, 35))
		e.msg(3, 6, 0, 0, 0, testPayload(1000, 36))
	}},
	{"omitted extended timestamp with a short last chunk that starts like it", func(e *chunkEncoder) {
		// The guard must read past the 2-byte chunk into the next header to see that.
		e.fmt3Ext = false
		p := testPayload(130, 37)
		p[128], p[129] = 0x01, 0x02
		e.msg(0, 6, 0x01020304, typeVideo, 1, p)
		e.msg(0, 4, 0, typeAudio, 1, testPayload(10, 38))
	}},
	{"publisher commands and metadata", func(e *chunkEncoder) {
		e.msg(0, 3, 0, typeCommandAMF0, 0, amf0Values("connect", 1, map[string]any{
			"app": "live", "type": "nonprivate", "flashVer": "FMLE/3.0 (compatible; FMSc/1.0)",
			"tcUrl": "rtmp://localhost/live", "fpad": false, "capabilities": 15, "objectEncoding": 0,
		}))
		e.setChunkSize(4096)
		e.msg(1, 3, 0, typeCommandAMF0, 0, amf0Values("releaseStream", 2, nil, "key"))
		e.msg(1, 3, 0, typeCommandAMF0, 0, amf0Values("createStream", 4, nil))
		e.msg(0, 8, 0, typeCommandAMF0, 1, amf0Values("publish", 5, nil, "key", "live"))
		e.setChunkSize(128)
		e.begin(0, 4, 0, typeDataAMF0, 1, amf0Values("@setDataFrame", "onMetaData", amf0.ECMAArray{
			"duration": 0, "width": 1920, "height": 1080, "videocodecid": 7, "audiocodecid": 10,
			"encoder": "obs-output module", "stereo": true, "empty": "",
			"nested":  map[string]any{"a": []any{1, "two", nil, []any{}, map[string]any{}}},
			"created": time.Unix(1700000000, 0), "keyframes": []any{0.0, 2.0, 4.0},
		}))
		e.begin(0, 6, 0, typeVideo, 1, testPayload(1000, 40))
		for !e.done(4) || !e.done(6) {
			for _, cs := range []int{4, 6} {
				if !e.done(cs) {
					e.next(cs)
				}
			}
		}
		// go-amf0 stops at values it does not decode (here undefined); what follows is not looked at.
		e.msg(0, 4, 0, typeDataAMF0, 1, append(amf0Values("onTextData"), 0x06, 0x0a, 0x7f, 0xff, 0xff, 0xff))
		e.msg(0, 4, 0, typeDataAMF0, 1, append(amf0Values("onTextData"), 0x0a, 0x80, 0, 0, 0))
	}},
	{"AMF0 nested as deep as allowed", func(e *chunkEncoder) {
		v := amf0Values("onMetaData")
		for range 31 {
			v = append(v, 0x03, 0, 1, 'a')
		}
		v = append(v, 0x0a, 0, 0, 0, 2, 0x05, 0x05)
		for range 31 {
			v = append(v, 0, 0, 0x09)
		}
		e.msg(0, 5, 0, typeDataAMF0, 1, append(v, amf0Values("after", 1.5)...))
	}},
	{"same length fmt 0 and 1 headers within a message", func(e *chunkEncoder) {
		e.begin(0, 6, 0, typeVideo, 1, testPayload(300, 39))
		e.header(1, 6, 7, 300, typeVideo, 0)
		e.payload(6)
		e.header(0, 6, 9, 300, typeVideo, 1)
		e.payload(6)
	}},
}

func guarded(wire []byte, src func(io.Reader) io.Reader) *chunkGuard {
	return newChunkGuard(src(bytes.NewReader(append(testHandshake(), wire...))), testLimits)
}

// readers decide how the bytes reach the guard and how they are read from it.
var readers = []struct {
	name string
	src  func(io.Reader) io.Reader // below the guard
	dst  func(io.Reader) io.Reader // above it
}{
	{"plain", func(r io.Reader) io.Reader { return r }, func(r io.Reader) io.Reader { return r }},
	{"bufio", func(r io.Reader) io.Reader { return bufio.NewReaderSize(r, 64<<10) }, func(r io.Reader) io.Reader { return bufio.NewReaderSize(r, 16<<10) }},
	{"one byte", iotest.OneByteReader, iotest.OneByteReader},
	{"half", iotest.HalfReader, iotest.HalfReader},
}

func TestGuardPassesValidStreams(t *testing.T) {
	for _, tc := range validStreams {
		for _, rd := range readers {
			t.Run(tc.name+"/"+rd.name, func(t *testing.T) {
				e := newChunkEncoder()
				tc.build(e)
				g := guarded(e.wire, rd.src)
				got, err := io.ReadAll(rd.dst(g))
				if err != nil {
					t.Fatalf("guard: %v", err)
				}
				want := append(testHandshake(), e.clean...)
				if !bytes.Equal(got, want) {
					t.Fatalf("guard passed %d bytes, want %d; first difference at %d", len(got), len(want), firstDiff(got, want))
				}
			})
		}
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestGuardGoRTMPReadsMessages checks that go-rtmp, reading through the guard, gets the
// messages that were sent, extended timestamps included.
func TestGuardGoRTMPReadsMessages(t *testing.T) {
	for _, tc := range validStreams {
		for _, rd := range readers[:2] {
			t.Run(tc.name+"/"+rd.name, func(t *testing.T) {
				e := newChunkEncoder()
				tc.build(e)
				g := guarded(e.wire, rd.src)
				if _, err := io.ReadFull(g, make([]byte, handshakeSize)); err != nil {
					t.Fatal(err)
				}
				got, err := readMessages(rd.dst(g))
				if err != io.EOF {
					t.Fatalf("after %d messages: %v", len(got), err)
				}
				if len(got) != len(e.want) {
					t.Fatalf("go-rtmp read %d messages, want %d", len(got), len(e.want))
				}
				for i, w := range e.want {
					if g := got[i]; g.csid != w.csid || g.timestamp != w.timestamp || g.typeID != w.typeID || g.msid != w.msid || !bytes.Equal(g.payload, w.payload) {
						t.Errorf("message %d: got chunk stream %d, timestamp %#x, type %d, stream %d, %d bytes; want %d, %#x, %d, %d, %d bytes",
							i, g.csid, g.timestamp, g.typeID, g.msid, len(g.payload), w.csid, w.timestamp, w.typeID, w.msid, len(w.payload))
					}
				}
			})
		}
	}
}

func TestGuardExtendedTimestampsReachGoRTMP(t *testing.T) {
	e := newChunkEncoder()
	e.msg(0, 6, 0x01000000, typeVideo, 1, testPayload(1000, 1))
	e.msg(1, 6, 0x00ffffff, typeVideo, 1, testPayload(300, 2))
	e.msg(3, 6, 0, 0, 0, testPayload(300, 3))
	e.msg(2, 6, 1, 0, 0, testPayload(300, 4))
	g := guarded(e.wire, func(r io.Reader) io.Reader { return r })
	if _, err := io.ReadFull(g, make([]byte, handshakeSize)); err != nil {
		t.Fatal(err)
	}
	got, err := readMessages(g)
	if err != io.EOF {
		t.Fatal(err)
	}
	want := []uint32{0x01000000, 0x01ffffff, 0x02fffffe, 0x02ffffff}
	if len(got) != len(want) {
		t.Fatalf("got %d messages, want %d", len(got), len(want))
	}
	for i, ts := range want {
		if got[i].timestamp != ts {
			t.Errorf("message %d: timestamp %#x, want %#x", i, got[i].timestamp, ts)
		}
	}
}

// TestGuardGoRTMPStillNeedsIt pins the go-rtmp bugs the guard works around. Should a new
// go-rtmp read these streams right, the guard must stop removing fmt 3 extended
// timestamps (it would now corrupt streams) and may accept 3-byte basic headers.
func TestGuardGoRTMPStillNeedsIt(t *testing.T) {
	ext := newChunkEncoder()
	ext.msg(0, 6, 0x01000000, typeVideo, 1, testPayload(1000, 1))
	threeByte := newChunkEncoder()
	threeByte.msg(0, 320, 0, typeVideo, 1, testPayload(300, 2))
	threeByte.msg(0, 4, 0, typeVideo, 1, testPayload(300, 3))
	for name, e := range map[string]*chunkEncoder{"fmt 3 extended timestamp": ext, "3-byte basic header": threeByte} {
		t.Run(name, func(t *testing.T) {
			got, err := func() (got []wantMsg, err error) {
				defer func() {
					if r := recover(); r != nil {
						err = fmt.Errorf("panic: %v", r)
					}
				}()
				return readMessages(bytes.NewReader(e.wire))
			}()
			if err == io.EOF && len(got) == len(e.want) && bytes.Equal(got[0].payload, e.want[0].payload) {
				t.Fatalf("go-rtmp now reads this stream without the guard: revisit the guard")
			}
		})
	}
}

// readMessages reads messages with go-rtmp's ChunkStreamer until it fails, applying Set
// Chunk Size as go-rtmp's connection does.
func readMessages(r io.Reader) ([]wantMsg, error) {
	cs := gortmp.NewChunkStreamer(r, io.Discard, nil)
	defer cs.Close()
	var out []wantMsg
	for {
		var cm gortmp.ChunkMessage
		csid, ts, err := cs.Read(&cm)
		if err != nil {
			return out, err
		}
		m := wantMsg{csid: csid, timestamp: ts, typeID: byte(cm.Message.TypeID()), msid: cm.StreamID}
		switch msg := cm.Message.(type) {
		case *rtmpmsg.SetChunkSize:
			if err := cs.PeerState().SetChunkSize(msg.ChunkSize); err != nil {
				return out, err
			}
			m.payload = binary.BigEndian.AppendUint32(nil, msg.ChunkSize)
		case *rtmpmsg.VideoMessage:
			m.payload, _ = io.ReadAll(msg.Payload)
		case *rtmpmsg.AudioMessage:
			m.payload, _ = io.ReadAll(msg.Payload)
		case *rtmpmsg.CommandMessage:
			body, _ := io.ReadAll(msg.Body)
			m.payload = append(amf0Values(msg.CommandName, msg.TransactionID), body...)
			decodeAMF0(body)
		case *rtmpmsg.DataMessage:
			body, _ := io.ReadAll(msg.Body)
			m.payload = append(amf0Values(msg.Name), body...)
			decodeAMF0(body)
		}
		out = append(out, m)
	}
}

// decodeAMF0 decodes values as go-rtmp does the body of a command it does not know. go-rtmp
// recovers go-amf0's panics (it has some), but running out of memory or stack is fatal:
// the guard must not let through what leads there.
func decodeAMF0(b []byte) {
	defer func() { _ = recover() }()
	d := amf0.NewDecoder(bytes.NewReader(b))
	for {
		var v any
		if d.Decode(&v) != nil {
			return
		}
	}
}

func amf0Values(vs ...any) []byte {
	var b bytes.Buffer
	for _, v := range vs {
		if err := amf0.NewEncoder(&b).Encode(v); err != nil {
			panic(err)
		}
	}
	return b.Bytes()
}

func TestGuardRejects(t *testing.T) {
	limits := guardLimits{MaxMessageSize: 1 << 20, MaxChunkSize: 64 << 10, MaxChunkStreams: 4, MaxPending: 1<<20 + 1000}
	tests := []struct {
		name string
		// build writes valid chunks, then returns where (in what go-rtmp sees) the bad
		// chunk starts, then writes it.
		build func(e *chunkEncoder) int
		want  string
	}{
		{"message length 0", func(e *chunkEncoder) int {
			n := len(e.clean)
			e.header(0, 4, 0, 0, typeAudio, 1)
			return n
		}, "rtmp chunk stream 4: message length 0"},
		{"message length above limit", func(e *chunkEncoder) int {
			e.msg(0, 4, 0, typeAudio, 1, testPayload(10, 1))
			n := len(e.clean)
			e.header(1, 4, 0, 1<<20+1, typeAudio, 1)
			return n
		}, "rtmp chunk stream 4: message length 1048577 exceeds limit 1048576"},
		{"Set Chunk Size 0", func(e *chunkEncoder) int {
			n := len(e.clean)
			e.setChunkSize(0)
			return n
		}, "rtmp chunk stream 2: Set Chunk Size 0"},
		{"Set Chunk Size with the top bit", func(e *chunkEncoder) int {
			n := len(e.clean)
			e.setChunkSize(0x80000080)
			return n
		}, "rtmp chunk stream 2: Set Chunk Size 0x80000080 has the reserved top bit set"},
		{"Set Chunk Size above limit", func(e *chunkEncoder) int {
			n := len(e.clean)
			e.setChunkSize(64<<10 + 1)
			return n
		}, "rtmp chunk stream 2: Set Chunk Size 65537 exceeds limit 65536"},
		{"Set Chunk Size above limit, split over chunks", func(e *chunkEncoder) int {
			e.setChunkSize(2)
			e.begin(0, 2, 0, typeSetChunkSize, 0, binary.BigEndian.AppendUint32(nil, 1<<30))
			n := len(e.clean)
			e.next(2)
			return n
		}, "rtmp chunk stream 2: Set Chunk Size 1073741824 exceeds limit 65536"},
		{"Set Chunk Size of 5 bytes", func(e *chunkEncoder) int {
			n := len(e.clean)
			e.msg(0, 2, 0, typeSetChunkSize, 0, []byte{0, 0, 1, 0, 0})
			return n
		}, "rtmp chunk stream 2: Set Chunk Size message length 5, want 4"},
		{"too many chunk streams", func(e *chunkEncoder) int {
			for _, cs := range []int{2, 3, 4, 5} {
				e.msg(0, cs, 0, typeAudio, 1, testPayload(10, 2))
			}
			e.msg(1, 3, 0, typeAudio, 1, testPayload(10, 2))
			n := len(e.clean)
			e.msg(0, 300, 0, typeAudio, 1, testPayload(10, 2))
			return n
		}, "rtmp chunk stream 300: more than 4 chunk streams"},
		{"3-byte basic header", func(e *chunkEncoder) int {
			e.msg(0, 4, 0, typeAudio, 1, testPayload(10, 3))
			n := len(e.clean)
			e.msg(0, 320, 0, typeAudio, 1, testPayload(10, 3))
			return n
		}, "rtmp chunk basic header 0x01: the 3-byte form (chunk stream ids from 320) is not supported"},
		{"fmt 1 without fmt 0", func(e *chunkEncoder) int {
			e.msg(0, 4, 0, typeAudio, 1, testPayload(10, 3))
			n := len(e.clean)
			e.header(1, 5, 0, 10, typeAudio, 0)
			return n
		}, "rtmp chunk stream 5: fmt 1 header without a previous fmt 0 header"},
		{"fmt 2 without fmt 0", func(e *chunkEncoder) int {
			e.header(2, 70, 0, 10, typeAudio, 0)
			return 0
		}, "rtmp chunk stream 70: fmt 2 header without a previous fmt 0 header"},
		{"fmt 3 without fmt 0", func(e *chunkEncoder) int {
			e.basicHeader(3, 3)
			return 0
		}, "rtmp chunk stream 3: fmt 3 header without a previous fmt 0 header"},
		{"fmt 0 with another length within a message", func(e *chunkEncoder) int {
			e.begin(0, 6, 0, typeVideo, 1, testPayload(1000, 4))
			n := len(e.clean)
			e.header(0, 6, 0, 999, typeVideo, 1)
			return n
		}, "rtmp chunk stream 6: header for a type 9 message of length 999 while 128 of 1000 bytes of a type 9 message are buffered"},
		{"fmt 1 with another length within a message", func(e *chunkEncoder) int {
			e.begin(0, 6, 0, typeVideo, 1, testPayload(1000, 5))
			e.next(6)
			n := len(e.clean)
			e.header(1, 6, 0, 100, typeVideo, 1)
			return n
		}, "rtmp chunk stream 6: header for a type 9 message of length 100 while 256 of 1000 bytes of a type 9 message are buffered"},
		{"fmt 1 turning a message into Set Chunk Size", func(e *chunkEncoder) int {
			e.begin(0, 6, 0, typeVideo, 1, testPayload(1000, 6))
			n := len(e.clean)
			e.header(1, 6, 0, 1000, typeSetChunkSize, 1)
			return n
		}, "rtmp chunk stream 6: header for a type 1 message of length 1000 while 128 of 1000 bytes of a type 9 message are buffered"},
		{"AMF0 strict array longer than its message", func(e *chunkEncoder) int {
			n := len(e.clean)
			e.msg(0, 3, 0, typeCommandAMF0, 0, append(amf0Values("x", 1), 0x0a, 0x7f, 0xff, 0xff, 0xff))
			return n
		}, "rtmp chunk stream 3: AMF0 strict arrays declare 2147483647 elements in a 18-byte message"},
		{"AMF0 nested strict arrays longer than their message", func(e *chunkEncoder) int {
			v := append(amf0Values("x", 1, strings.Repeat("p", 104)), 0x0a, 0, 0, 0, 100, 0x0a, 0, 0, 0, 100)
			e.begin(0, 3, 0, typeCommandAMF0, 0, v)
			n := len(e.clean)
			e.next(3) // the second array's length crosses into this chunk
			return n
		}, "rtmp chunk stream 3: AMF0 strict arrays declare 200 elements in a 130-byte message"},
		{"AMF0 nested too deep", func(e *chunkEncoder) int {
			v := amf0Values("onMetaData")
			for range 32 {
				v = append(v, 0x03, 0, 1, 'a')
			}
			v = append(v, 0x0a, 0, 0, 0, 1, 0x05)
			e.begin(0, 5, 0, typeDataAMF0, 1, v)
			n := len(e.clean)
			e.next(5)
			return n
		}, "rtmp chunk stream 5: AMF0 values nested deeper than 32"},
		{"AMF0 message too long", func(e *chunkEncoder) int {
			n := len(e.clean)
			e.header(0, 3, 0, 256<<10+1, typeCommandAMF0, 0)
			return n
		}, "rtmp chunk stream 3: type 20 AMF0 message length 262145 exceeds limit 262144"},
		{"incomplete messages above MaxPending", func(e *chunkEncoder) int {
			e.setChunkSize(64 << 10)
			e.begin(0, 4, 0, typeVideo, 1, testPayload(1<<20, 7))
			for range 15 {
				e.next(4)
			}
			n := len(e.clean)
			e.begin(0, 5, 0, typeVideo, 1, testPayload(5000, 8))
			return n
		}, "rtmp chunk stream 5: buffered messages would reach 1053580 bytes, limit 1049576"},
		{"complete messages whose buffers go-rtmp keeps, above MaxPending", func(e *chunkEncoder) int {
			e.setChunkSize(64 << 10)
			e.msg(0, 4, 0, typeVideo, 1, testPayload(1<<19, 9))
			e.msg(0, 5, 0, typeVideo, 1, testPayload(1<<19, 10))
			e.msg(0, 4, 0, typeVideo, 1, testPayload(1<<19, 11)) // reuses 4's buffer: fine
			n := len(e.clean)
			e.msg(0, 3, 0, typeVideo, 1, testPayload(2000, 12))
			return n
		}, "rtmp chunk stream 3: buffered messages would reach 1050580 bytes, limit 1049576"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newChunkEncoder()
			at := tc.build(e)
			g := newChunkGuard(bytes.NewReader(append(testHandshake(), e.wire...)), limits)
			got, err := io.ReadAll(g)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if passed := len(got) - handshakeSize; passed > at {
				t.Errorf("passed %d bytes, bad chunk starts at %d", passed, at)
			}
			if _, err2 := g.Read(make([]byte, 10)); err2 != err {
				t.Errorf("next Read: %v, want the same error", err2)
			}
		})
	}
}

// TestGuardAMF0ScannerFollowsValues checks that the scanner ends valid AMF0 where go-amf0
// does: between values, with no container open.
func TestGuardAMF0ScannerFollowsValues(t *testing.T) {
	values := []any{
		"connect", 1, nil, true, "", strings.Repeat("x", 300), 3.5, time.Unix(1700000000, 0),
		map[string]any{}, map[string]any{"app": "live", "n": map[string]any{"deep": []any{1, "a", nil}}},
		amf0.ECMAArray{}, amf0.ECMAArray{"width": 1920, "encoder": "obs", "flags": map[string]any{"x": false}},
		[]any{}, []any{[]any{1, 2}, []any{}, map[string]any{"k": []any{"v"}}},
	}
	b := amf0Values(values...)
	for _, step := range []int{1, 3, len(b)} {
		var s amf0Scanner
		for i := 0; i < len(b); i += step {
			if err := s.scan(b[i:min(i+step, len(b))], uint32(len(b))); err != nil {
				t.Fatalf("step %d: %v", step, err)
			}
		}
		if s.state != amf0Marker || s.depth != 0 {
			t.Fatalf("step %d: scanner ends in state %d at depth %d", step, s.state, s.depth)
		}
	}
}

func TestGuardRejectsBadVersion(t *testing.T) {
	hs := testHandshake()
	hs[0] = 6 // RTMPE
	g := newChunkGuard(bytes.NewReader(hs), testLimits)
	n, err := g.Read(make([]byte, 1))
	if n != 0 || err == nil || err.Error() != "rtmp handshake: C0 version 6, want 3" {
		t.Fatalf("Read = %d, %v", n, err)
	}
}

// TestGuardCutsOffHugeMessage sends a header declaring the largest message length, then
// bytes without end: the guard must fail before passing any of it.
func TestGuardCutsOffHugeMessage(t *testing.T) {
	e := newChunkEncoder()
	e.header(0, 4, 0, 0xffffff, typeVideo, 1)
	r := &countingReader{r: io.MultiReader(bytes.NewReader(append(testHandshake(), e.wire...)), endless{})}
	g := newChunkGuard(r, testLimits)
	got, err := io.ReadAll(io.LimitReader(g, 64<<20))
	if err == nil || err.Error() != "rtmp chunk stream 4: message length 16777215 exceeds limit 8388608" {
		t.Fatalf("error %v", err)
	}
	if len(got) != handshakeSize || r.n > int64(handshakeSize+len(e.wire)) {
		t.Fatalf("passed %d bytes after the handshake, read %d", len(got)-handshakeSize, r.n)
	}
}

// TestGuardFailsFastOnGarbage feeds random bytes after a valid handshake.
func TestGuardFailsFastOnGarbage(t *testing.T) {
	const bound = 16 << 10
	var worst int64
	for seed := range uint64(2000) {
		rng := rand.New(rand.NewPCG(seed, 1))
		r := &countingReader{r: bufio.NewReader(io.MultiReader(bytes.NewReader(testHandshake()), randomReader{rng}))}
		g := newChunkGuard(r, testLimits)
		_, err := io.Copy(io.Discard, io.LimitReader(g, 1<<30))
		if err == nil {
			t.Fatalf("seed %d: no error after 1 GiB of random bytes", seed)
		}
		worst = max(worst, r.n-handshakeSize)
	}
	if worst > bound {
		t.Fatalf("read up to %d random bytes before failing, want at most %d", worst, bound)
	}
	t.Logf("read at most %d random bytes before failing", worst)
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

type randomReader struct{ rng *rand.Rand }

func (r randomReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r.rng.Uint32())
	}
	return len(p), nil
}

// TestGuardResumesAfterReadError checks that an error from the connection in the middle
// of a header (a read deadline, say) loses nothing when the read is retried.
func TestGuardResumesAfterReadError(t *testing.T) {
	e := newChunkEncoder()
	for _, tc := range validStreams {
		if strings.HasPrefix(tc.name, "interleaved") || strings.HasPrefix(tc.name, "extended timestamps repeated") {
			tc.build(e)
		}
	}
	src := append(testHandshake(), e.wire...)
	g := newChunkGuard(&flakyReader{src: src}, testLimits)
	var got []byte
	buf := make([]byte, 100)
	for {
		n, err := g.Read(buf)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil && err != errFlaky {
			t.Fatal(err)
		}
	}
	if want := append(testHandshake(), e.clean...); !bytes.Equal(got, want) {
		t.Fatalf("got %d bytes, want %d; first difference at %d", len(got), len(want), firstDiff(got, want))
	}
}

var errFlaky = errors.New("flaky")

// flakyReader returns one byte at a time and an error before every other byte.
type flakyReader struct {
	src  []byte
	fail bool
}

func (f *flakyReader) Read(p []byte) (int, error) {
	if len(f.src) == 0 {
		return 0, io.EOF
	}
	if f.fail = !f.fail; f.fail {
		return 0, errFlaky
	}
	p[0] = f.src[0]
	f.src = f.src[1:]
	return 1, nil
}

// FuzzChunkGuard feeds arbitrary bytes after a valid handshake through the guard into
// go-rtmp: go-rtmp must not panic on anything the guard lets through.
func FuzzChunkGuard(f *testing.F) {
	for _, tc := range validStreams {
		e := newChunkEncoder()
		tc.build(e)
		if len(e.wire) < 4096 {
			f.Add(e.wire)
		}
	}
	f.Add([]byte{0x04, 0, 0, 0, 0, 0, 0, typeVideo, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		limits := guardLimits{MaxMessageSize: 1 << 16, MaxChunkSize: 1 << 12, MaxChunkStreams: 8, MaxPending: 1 << 17}
		g := newChunkGuard(bytes.NewReader(append(testHandshake(), data...)), limits)
		if _, err := io.ReadFull(g, make([]byte, handshakeSize)); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("go-rtmp panicked on input the guard accepted (guard error %v): %v", g.err, r)
			}
		}()
		_, err := readMessages(g)
		if err == nil {
			t.Fatal("readMessages ended without an error")
		}
	})
}

// benchStream is a second of a 2.5 Mbit/s publisher in 4096-byte chunks: a 60 KB key
// frame and 24 more video frames of 10-11 KB (25 fps), and about 40 AAC frames.
func benchStream() []byte {
	e := newChunkEncoder()
	e.setChunkSize(4096)
	rng := rand.New(rand.NewPCG(1, 2))
	e.msg(0, 6, 0, typeVideo, 1, testPayload(60_000, 1))
	e.msg(0, 4, 0, typeAudio, 1, testPayload(380, 2))
	for i := 1; i < 25; i++ {
		e.msg(1, 6, 40, typeVideo, 1, testPayload(10_000+rng.IntN(1_000), byte(i)))
		e.msg(2, 4, 23, 0, 0, testPayload(380, byte(i)))
		if i%3 != 0 {
			e.msg(3, 4, 0, 0, 0, testPayload(380, byte(i)))
		}
	}
	return e.wire
}

// loopReader repeats a chunk stream without end.
type loopReader struct {
	b   []byte
	off int
}

func (l *loopReader) Read(p []byte) (int, error) {
	n := copy(p, l.b[l.off:])
	l.off = (l.off + n) % len(l.b)
	return n, nil
}

func BenchmarkChunkGuard(b *testing.B) {
	stream := benchStream()
	b.Logf("stream of %d bytes", len(stream))
	for _, guard := range []bool{true, false} {
		b.Run(fmt.Sprintf("guard=%v", guard), func(b *testing.B) {
			var r io.Reader = bufio.NewReaderSize(io.MultiReader(bytes.NewReader(testHandshake()), &loopReader{b: stream}), 64<<10)
			if guard {
				r = newChunkGuard(r, testLimits)
			}
			// go-rtmp reads through a 16 KiB bufio.Reader.
			r = bufio.NewReaderSize(r, 16<<10)
			if _, err := io.ReadFull(r, make([]byte, handshakeSize)); err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, 16<<10)
			b.SetBytes(int64(len(stream)))
			b.ReportAllocs()
			for b.Loop() {
				for left := len(stream); left > 0; {
					n, err := r.Read(buf[:min(len(buf), left)])
					if err != nil {
						b.Fatal(err)
					}
					left -= n
				}
			}
		})
	}
}

// TestGuardBoundsBuffered: whatever mix of unfinished and finished messages a client
// sends, the bytes the guard lets go-rtmp buffer never exceed MaxPending, before publish
// (the server's setup limits) and after (its publish limits, here for 1 MiB messages),
// and a message too large for the limits in force is refused at its header.
func TestGuardBoundsBuffered(t *testing.T) {
	srv := &Server{cfg: Config{MaxMessageSize: 1 << 20}}
	setup, publish := srv.setupLimits(), srv.publishLimits()
	if setup.MaxPending != SetupMaxBuffered || setup.MaxMessageSize != SetupMaxMessageSize || publish.MaxPending != 2<<20 || publish.MaxMessageSize != 1<<20 {
		t.Fatalf("limits: setup %+v, publish %+v", setup, publish)
	}
	// fill sends per bytes of a message of the given length on each of 4 chunk streams.
	fill := func(e *chunkEncoder, length, per int) {
		e.setChunkSize(4096)
		for csid := 3; csid < 7; csid++ {
			e.begin(0, csid, 0, typeVideo, 1, testPayload(length, byte(csid)))
			for sent := e.chunkSize; sent < per && !e.done(csid); sent += e.chunkSize {
				e.next(csid)
			}
		}
	}
	for _, tc := range []struct {
		name    string
		limits  guardLimits
		build   func(e *chunkEncoder)
		wantErr string
	}{
		{"setup: one 8 MiB message", setup, func(e *chunkEncoder) {
			e.header(0, 4, 0, 8<<20, typeVideo, 1)
		}, "rtmp chunk stream 4: message length 8388608 exceeds limit 32768"},
		{"setup: unfinished messages on several chunk streams", setup, func(e *chunkEncoder) {
			fill(e, SetupMaxMessageSize, SetupMaxMessageSize-1)
		}, "buffered messages would reach"},
		{"setup: finished messages on several chunk streams", setup, func(e *chunkEncoder) {
			fill(e, SetupMaxMessageSize, SetupMaxMessageSize)
		}, "buffered messages would reach"},
		{"publish: unfinished 1 MiB messages on several chunk streams", publish, func(e *chunkEncoder) {
			fill(e, 1<<20, 1<<20-1)
		}, "buffered messages would reach"},
		{"publish: a message over the limit", publish, func(e *chunkEncoder) {
			e.msg(0, 4, 0, typeVideo, 1, testPayload(1<<20+1, 2))
		}, "rtmp chunk stream 4: message length 1048577 exceeds limit 1048576"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newChunkEncoder()
			tc.build(e)
			g := newChunkGuard(bytes.NewReader(append(testHandshake(), e.wire...)), tc.limits)
			buf := make([]byte, 16<<10)
			var err error
			for err == nil {
				_, err = g.Read(buf)
				if held := g.held.Load(); held > tc.limits.MaxPending {
					t.Fatalf("the guard let %d bytes be buffered, limit %d", held, tc.limits.MaxPending)
				}
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
		})
	}

	t.Run("setup limits, then publish limits", func(t *testing.T) {
		e := newChunkEncoder()
		e.msg(0, 3, 0, typeCommandAMF0, 0, amf0Values("publish", 5, nil, "key", "live"))
		at := len(e.clean)
		e.msg(0, 6, 0, typeVideo, 1, testPayload(1<<20, 3))
		g := newChunkGuard(bytes.NewReader(append(testHandshake(), e.wire...)), setup)
		got, err := io.ReadAll(io.LimitReader(g, int64(handshakeSize+at)))
		if err != nil || len(got) != handshakeSize+at {
			t.Fatalf("read %d bytes of %d: %v", len(got), handshakeSize+at, err)
		}
		g.setLimits(publish)
		rest, err := io.ReadAll(g)
		if err != nil {
			t.Fatalf("a 1 MiB message after publish: %v", err)
		}
		if want := e.clean[at:]; !bytes.Equal(rest, want) {
			t.Fatalf("passed %d bytes, want %d", len(rest), len(want))
		}
	})
}

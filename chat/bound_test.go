package chat

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"onair/scripts/hostile"
	"onair/scripts/testenv"
)

// What a hostile client can make the server hold for its socket, measured against the bound
// the package declares (Config.SendQueueBytes), with clients that speak the websocket
// protocol by hand as an attacker's would: after a real upgrade they write frames and
// read nothing.

// Opcodes of the frames the tests write by hand (RFC 6455 section 5.2).
const (
	opText  = 0x1
	opClose = 0x8
	opPing  = 0x9
)

// rawUpgrade connects to th as a hand-made websocket client that reads nothing.
func rawUpgrade(t *testing.T, th *testHub, room, user string) (net.Conn, *bufio.Reader) {
	t.Helper()
	return testenv.RawWebsocket(t, wsURL(th, room, user), nil)
}

// readServerFrame reads one unmasked, unfragmented server frame.
func readServerFrame(br *bufio.Reader) (op byte, payload []byte, err error) {
	var hdr [2]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := uint64(hdr[1] & 0x7f)
	switch n {
	case 126:
		var ext [2]byte
		if _, err := io.ReadFull(br, ext[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(ext[:]))
	case 127:
		var ext [8]byte
		if _, err := io.ReadFull(br, ext[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(ext[:])
	}
	payload = make([]byte, n)
	_, err = io.ReadFull(br, payload)
	return hdr[0] & 0x0f, payload, err
}

// socketOf is the server's side of the one socket in room.
func socketOf(t *testing.T, th *testHub, room string) *conn {
	t.Helper()
	var c *conn
	testenv.Eventually(t, 5*time.Second, func() (bool, string) {
		r := th.lookup(room)
		if r == nil {
			return false, "no room"
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		if len(r.subs) != 1 {
			return false, fmt.Sprintf("%d sockets in the room", len(r.subs))
		}
		c = r.subs[0]
		return true, ""
	})
	return c
}

// heldBytes is what the server holds of c's outgoing frames, by the package's account.
func heldBytes(c *conn) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.held
}

// liveHeap is the heap in use after a collection: what the process holds.
func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// heapSlack is what the test process may allocate and keep besides the socket under test
// between two measurements (driver pools, logs, the runtime's own structures).
const heapSlack = 8 << 20

// TestPingFloodHoldsBoundedMemory is the attack of issue 12: a socket that sends pings as
// fast as it can and never reads made the server queue a pong per ping, without bound.
// What the server holds for the socket must stay within Config.SendQueueBytes, anonymous
// or signed in, while the socket is still open.
func TestPingFloodHoldsBoundedMemory(t *testing.T) {
	const flood = 32 << 20 // bytes of pings
	e := newEnv(t)
	th := e.hub("n1", func(c *Config) {
		// Neither a write timeout nor the idle timeout may end the socket before the
		// measurement: it is what the server holds for an open socket that counts.
		c.WriteTimeout, c.PingInterval, c.PongTimeout = time.Hour, time.Hour, time.Hour
	})
	limit := th.cfg.SendQueueBytes
	for _, user := range []string{"", alice.ID} {
		name := "anonymous"
		if user != "" {
			name = "signed in"
		}
		t.Run(name, func(t *testing.T) {
			room := "flood-" + strings.ReplaceAll(name, " ", "-")
			nc, _ := rawUpgrade(t, th, room, user)
			c := socketOf(t, th, room)
			received := th.Stats().MessagesReceived
			before := liveHeap()

			ping := hostile.MaskedFrame(opPing, bytes.Repeat([]byte("p"), 125), true)
			batch := bytes.Repeat(ping, 512)
			maxHeld := 0
			_ = nc.SetWriteDeadline(time.Now().Add(time.Minute))
			for sent := 0; sent < flood; sent += len(batch) {
				if _, err := nc.Write(batch); err != nil {
					t.Fatalf("after %d bytes of pings: %v", sent, err)
				}
				maxHeld = max(maxHeld, heldBytes(c))
			}
			// Frames are read in order: once the server has read this one, it has read
			// every ping.
			if _, err := nc.Write(hostile.MaskedFrame(opText, []byte(`{"type":"message","text":"done"}`), true)); err != nil {
				t.Fatal(err)
			}
			testenv.Eventually(t, 30*time.Second, func() (bool, string) {
				return th.Stats().MessagesReceived > received, "the server has not read the pings yet"
			})
			maxHeld = max(maxHeld, heldBytes(c))
			grown := int64(liveHeap()) - int64(before)
			t.Logf("%d MiB of pings: held at most %d bytes, heap grew %d bytes (limit %d)", flood>>20, maxHeld, grown, limit)
			if maxHeld > limit {
				t.Errorf("the server held %d bytes for the socket, over Config.SendQueueBytes (%d)", maxHeld, limit)
			}
			if grown > int64(limit+heapSlack) {
				t.Errorf("the heap grew by %d bytes during the flood, over Config.SendQueueBytes (%d) + %d", grown, limit, heapSlack)
			}
			// Measured on an open socket, or it would prove nothing.
			if th.Sockets() < 1 || c.closed.Load() {
				t.Error("the socket was closed before the measurement")
			}
		})
	}
}

// TestPongAnswersTheLatestPing: pongs are coalesced, but a client that reads again gets
// the answer to its most recent ping (RFC 6455 section 5.5.3), and no more pongs than pings.
func TestPongAnswersTheLatestPing(t *testing.T) {
	e := newEnv(t)
	th := e.hub("n1", nil)
	ws, _, err := websocket.DefaultDialer.Dial(wsURL(th, "r1", ""), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	const pings = 2000
	for i := range pings {
		if err := ws.WriteControl(websocket.PingMessage, []byte(fmt.Sprint(i)), time.Now().Add(5*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	pongs := make(chan string, pings+1)
	ws.SetPongHandler(func(s string) error { pongs <- s; return nil })
	go func() {
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				close(pongs)
				return
			}
		}
	}()
	n := 0
	deadline := time.After(10 * time.Second)
	for {
		select {
		case p, ok := <-pongs:
			if !ok {
				t.Fatal("socket closed before the last pong")
			}
			n++
			if p != fmt.Sprint(pings-1) {
				continue
			}
			t.Logf("%d pings answered by %d pongs", pings, n)
			if n > pings {
				t.Fatalf("%d pongs for %d pings", n, pings)
			}
			return
		case <-deadline:
			t.Fatalf("no pong to the last ping after %d pongs", n)
		}
	}
}

// TestNonReadingSocketIsClosedAtItsByteLimit: a client that sends frames the server must
// answer (here malformed ones, whose error frames echo what was wrong) and never reads is
// closed once its answers would hold more than Config.SendQueueBytes, not later, even
// when the frame count allows more.
func TestNonReadingSocketIsClosedAtItsByteLimit(t *testing.T) {
	e := newEnv(t)
	th := e.hub("n1", func(c *Config) { c.SendQueue = 1 << 16; c.WriteTimeout = time.Hour })
	limit := th.cfg.SendQueueBytes
	nc, _ := rawUpgrade(t, th, "r1", "")
	c := socketOf(t, th, "r1")
	// About 3.9 KiB of error frame per 4 KiB frame sent.
	bad := hostile.MaskedFrame(opText, []byte(`{"`+strings.Repeat("x", int(th.cfg.ReadLimit)-16)+`":1}`), true)
	maxHeld := 0
	_ = nc.SetWriteDeadline(time.Now().Add(30 * time.Second))
	for sent := 0; th.Stats().SlowClosed == 0; sent++ {
		if sent == 100_000 {
			t.Fatal("the socket was never closed")
		}
		if _, err := nc.Write(bad); err != nil {
			break // closed by the server
		}
		maxHeld = max(maxHeld, heldBytes(c))
	}
	testenv.Eventually(t, 10*time.Second, func() (bool, string) {
		return th.Sockets() == 0, fmt.Sprintf("%d sockets", th.Sockets())
	})
	maxHeld = max(maxHeld, heldBytes(c))
	if s := th.Stats(); s.SlowClosed != 1 {
		t.Fatalf("stats %+v, want one slow socket closed", s)
	}
	if maxHeld > limit {
		t.Fatalf("held %d bytes, over Config.SendQueueBytes (%d)", maxHeld, limit)
	}
}

// TestOversizeFramesClose: the read limits, for data frames (Config.ReadLimit, whole
// messages, fragments included) and control frames (125 bytes, RFC 6455), close the socket
// before the server holds more.
func TestOversizeFramesClose(t *testing.T) {
	e := newEnv(t)
	th := e.hub("n1", nil)
	limit := int(th.cfg.ReadLimit)
	half := bytes.Repeat([]byte("x"), limit/2+1)
	cases := []struct {
		name   string
		frames [][]byte
		code   int
	}{
		{"text over the read limit", [][]byte{hostile.MaskedFrame(opText, bytes.Repeat([]byte("x"), limit+1), true)}, websocket.CloseMessageTooBig},
		{"binary over the read limit", [][]byte{hostile.MaskedFrame(0x2, bytes.Repeat([]byte("x"), limit+1), true)}, websocket.CloseMessageTooBig},
		{"fragments over the read limit", [][]byte{hostile.MaskedFrame(opText, half, false), hostile.MaskedFrame(0x0, half, true)}, websocket.CloseMessageTooBig},
		{"ping over 125 bytes", [][]byte{hostile.MaskedFrame(opPing, bytes.Repeat([]byte("p"), 126), true)}, websocket.CloseProtocolError},
		{"close over 125 bytes", [][]byte{hostile.MaskedFrame(opClose, bytes.Repeat([]byte("c"), 126), true)}, websocket.CloseProtocolError},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			room := fmt.Sprint("r", i)
			nc, br := rawUpgrade(t, th, room, alice.ID)
			socketOf(t, th, room)
			for _, f := range tc.frames {
				if _, err := nc.Write(f); err != nil {
					t.Fatal(err)
				}
			}
			_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
			for {
				op, p, err := readServerFrame(br)
				if err != nil {
					t.Fatalf("no close frame: %v", err)
				}
				if op != opClose {
					continue // the join frames
				}
				if len(p) < 2 || int(binary.BigEndian.Uint16(p)) != tc.code {
					t.Fatalf("close frame %q, want code %d", p, tc.code)
				}
				break
			}
			testenv.Eventually(t, 5*time.Second, func() (bool, string) {
				return th.lookup(room) == nil, "the socket is still open"
			})
		})
	}
}

// TestHistoryFrameIsBounded: the history a joining socket holds is at most half of its
// byte limit, however long the messages, and is the newest messages.
func TestHistoryFrameIsBounded(t *testing.T) {
	client, err := mongo.Connect(options.Client().ApplyURI("mongodb://127.0.0.1:1")) // never used
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Config{DB: client.Database("bound"), NodeID: "a", SendQueueBytes: MinSendQueueBytes, HistorySize: 500})
	if err != nil {
		t.Fatal(err)
	}
	r := newRoom(h, Room{ID: "r"})
	// U+2028 is the costliest character to send: 3 bytes of UTF-8, 6 of JSON.
	long := strings.Repeat("\u2028", h.cfg.MaxLength)
	for i := range 1000 {
		r.recent = append(r.recent, Message{Type: typeMessage, ID: fmt.Sprint(i), UserID: "u", Handle: "h", Text: long, At: time.Now()})
	}
	m := r.history()
	if max := maxHistoryFrame(h.cfg.SendQueueBytes); m.size > max {
		t.Fatalf("history frame of %d bytes, over %d", m.size, max)
	}
	var hist historyFrame
	if err := json.Unmarshal(r.historyPayload(), &hist); err != nil {
		t.Fatal(err)
	}
	if len(hist.Messages) == 0 || hist.Messages[len(hist.Messages)-1].ID != "999" {
		t.Fatalf("history of %d messages, want the newest", len(hist.Messages))
	}
	// Short messages all fit.
	r.recent = r.recent[:0]
	for i := range 10 {
		r.recent = append(r.recent, Message{Type: typeMessage, ID: fmt.Sprint(i), Text: "hi"})
	}
	if err := json.Unmarshal(r.historyPayload(), &hist); err != nil || len(hist.Messages) != 10 {
		t.Fatalf("history of %d short messages (%v), want 10", len(hist.Messages), err)
	}
}

func TestSendQueueBytesBounds(t *testing.T) {
	client, err := mongo.Connect(options.Client().ApplyURI("mongodb://127.0.0.1:1")) // never used
	if err != nil {
		t.Fatal(err)
	}
	db := client.Database("bound")
	h, err := New(Config{DB: db, NodeID: "a"})
	if err != nil || h.cfg.SendQueueBytes != DefaultSendQueueBytes {
		t.Fatalf("default: %v, %d bytes", err, h.cfg.SendQueueBytes)
	}
	if _, err := New(Config{DB: db, NodeID: "a", SendQueueBytes: MinSendQueueBytes - 1}); err == nil {
		t.Fatal("SendQueueBytes below MinSendQueueBytes accepted")
	}
	if controlRoom*4 > MinSendQueueBytes {
		t.Fatalf("controlRoom %d leaves too little of MinSendQueueBytes %d", controlRoom, MinSendQueueBytes)
	}
}

// TestWriteLanesAreBounded: events and log entries waiting for MongoDB carry what clients
// wrote; however long the wait, a lane holds at most its byte bound, the newest items.
func TestWriteLanesAreBounded(t *testing.T) {
	client, err := mongo.Connect(options.Client().ApplyURI("mongodb://127.0.0.1:1")) // never written: Run is not running
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Config{DB: client.Database("bound"), NodeID: "a"})
	if err != nil {
		t.Fatal(err)
	}
	frame := marshal(Message{Type: typeMessage, ID: "x", Text: strings.Repeat("\u2028", 10_000)})
	reason := strings.Repeat("r", MaxReason)
	for i := range 2000 {
		h.w.event(event{Room: "r", Type: typeMessage, Frame: frame})
		h.w.action(actionDoc{Room: "r", Action: "ban", Reason: reason + fmt.Sprint(i)})
	}
	for l, limit := range map[*lane]int{h.w.lanes[0]: eventQueueBytes, h.w.lanes[1]: modlogQueueBytes} {
		h.w.mu.Lock()
		sum := 0
		for _, it := range l.queue {
			sum += itemSize(it)
		}
		bytes, n := l.bytes, len(l.queue)
		h.w.mu.Unlock()
		if sum != bytes || bytes > limit || n == 0 {
			t.Fatalf("%s lane: %d items, %d bytes accounted, %d held, limit %d", l.what, n, bytes, sum, limit)
		}
	}
}

// TestIdleSocketHoldsOneGoroutine: what an idle socket holds on the server is its reader
// alone. The HTTP handler returns once the socket has joined (net/http's state for the
// request goes with it), and the writer runs only while something waits to be written.
// Two goroutines per socket, and the handler's stack, were most of the memory 2,000 idle
// anonymous sockets took (issue 12).
func TestIdleSocketHoldsOneGoroutine(t *testing.T) {
	th := newEnv(t).hub("n1", nil)
	const sockets = 200
	before := runtime.NumGoroutine()
	for range sockets {
		rawUpgrade(t, th, "r1", "") // reads nothing: its history frame is written, then it is idle
	}
	testenv.Eventually(t, 20*time.Second, func() (bool, string) {
		added := runtime.NumGoroutine() - before
		return th.Sockets() == sockets && added <= sockets+sockets/4,
			fmt.Sprintf("%d sockets joined, %d goroutines more than before them", th.Sockets(), added)
	})
}

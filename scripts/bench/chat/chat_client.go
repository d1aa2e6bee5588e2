package chat

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// chatClient is one websocket of the load generator: a reader of the room and, for the
// senders, a poster too.
type chatClient struct {
	l       *chatLoad
	group   int
	sender  bool
	ws      *websocket.Conn
	reading bool       // read runs (set before it starts, by connect)
	wmu     sync.Mutex // one writer at a time (posts, pongs)
	buf     []byte     // the reader's frame buffer

	// Written by the reader goroutine only, read once done is closed.
	counts     []uint8 // per measured message: how often it arrived
	lat        []int32 // first arrivals' latencies, µs
	unexpected int64
	err        error // why the reader stopped before the end
	done       chan struct{}

	lastWarm atomic.Int64 // highest warm-up message received; -1 before the first
}

// sioMsgPrefix starts a "msg" event, after the Engine.IO type.
const sioMsgPrefix = `2["msg",`

// next reads the next data frame into the client's buffer.
func (c *chatClient) next() ([]byte, error) {
	_, r, err := c.ws.NextReader()
	if err != nil {
		return nil, err
	}
	b := c.buf[:0]
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			c.buf = b
			return b, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// write sends one text frame.
func (c *chatClient) write(frame []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return c.ws.WriteMessage(websocket.TextMessage, frame)
}

// join waits until the client is in the room: onair's history frame, or socket.io's
// connect and the acknowledgement of a "join" event.
func (c *chatClient) join(deadline time.Time, room string) error {
	_ = c.ws.SetReadDeadline(deadline)
	defer func() { _ = c.ws.SetReadDeadline(time.Time{}) }()
	if c.l.spec.Proto == chatProtoOnair {
		for {
			data, err := c.next()
			if err != nil {
				return fmt.Errorf("chat client: join (waiting for the history frame): %w", err)
			}
			if hasPrefix(data, onairHistoryPrefix) {
				return nil
			}
		}
	}
	data, err := c.next()
	if err != nil {
		return fmt.Errorf("socket.io client: open: %w", err)
	}
	if _, err := parseEIOOpen(data); err != nil {
		return err
	}
	if err := c.write([]byte(sioConnectFrame)); err != nil {
		return fmt.Errorf("socket.io client: connect: %w", err)
	}
	if err := c.awaitSIO(sioConnect, -1); err != nil {
		return err
	}
	joinFrame, err := sioEventFrame(0, "join", room)
	if err != nil {
		return err
	}
	if err := c.write(joinFrame); err != nil {
		return fmt.Errorf("socket.io client: join: %w", err)
	}
	return c.awaitSIO(sioAck, 0)
}

// awaitSIO reads until a Socket.IO packet of type typ (and ack id, unless -1) arrives,
// answering pings meanwhile.
func (c *chatClient) awaitSIO(typ byte, id int) error {
	for {
		data, err := c.next()
		if err != nil {
			return fmt.Errorf("socket.io client: waiting for packet %q: %w", typ, err)
		}
		et, payload, err := parseEIO(data)
		if err != nil {
			return err
		}
		switch et {
		case eioPing:
			if err := c.write([]byte(eioPongFrame)); err != nil {
				return fmt.Errorf("socket.io client: pong: %w", err)
			}
			continue
		case eioClose:
			return errors.New("socket.io client: the server closed the session")
		case eioMessage:
		default:
			continue
		}
		p, err := parseSIO(payload)
		if err != nil {
			return err
		}
		if p.Type == sioConnectError {
			return fmt.Errorf("socket.io client: connect refused: %s", p.Data)
		}
		if p.Type == typ && (id < 0 || p.ID == id) {
			return nil
		}
	}
}

// read receives frames until the connection ends.
func (c *chatClient) read() {
	defer close(c.done)
	for {
		data, err := c.next()
		if err != nil {
			if !c.l.closing.Load() {
				c.err = err
			}
			return
		}
		now := time.Now().UnixNano()
		if c.l.spec.Proto == chatProtoOnair {
			c.onairFrame(data, now)
			continue
		}
		if err := c.sioFrame(data, now); err != nil {
			if !c.l.closing.Load() {
				c.err = err
			}
			return
		}
	}
}

// onairFrame handles a frame of onair's chat protocol (chat/doc.go).
func (c *chatClient) onairFrame(data []byte, now int64) {
	if hasPrefix(data, onairBatchPrefix) {
		var b struct {
			Events []json.RawMessage `json:"events"`
		}
		if json.Unmarshal(data, &b) == nil {
			for _, ev := range b.Events {
				c.onairFrame(ev, now)
			}
		}
		return
	}
	if hasPrefix(data, onairMessagePrefix) {
		c.stamped(data, now)
		return
	}
	if !c.sender {
		return // history, viewers and notices: nothing to count
	}
	var f struct {
		Type  string `json:"type"`
		Nonce string `json:"nonce"`
		Code  string `json:"code"`
	}
	if json.Unmarshal(data, &f) != nil || f.Nonce == "" {
		return
	}
	phase, seq, ok := parseChatNonce(f.Nonce)
	switch {
	case !ok:
	case f.Type == "ack":
		c.l.answered(phase, seq, "", now)
	case f.Type == "error":
		c.l.answered(phase, seq, f.Code, now)
	}
}

// sioFrame handles an Engine.IO packet.
func (c *chatClient) sioFrame(data []byte, now int64) error {
	typ, payload, err := parseEIO(data)
	if err != nil {
		return err
	}
	switch typ {
	case eioPing:
		if err := c.write([]byte(eioPongFrame)); err != nil {
			return fmt.Errorf("socket.io client: pong: %w", err)
		}
		return nil
	case eioClose:
		return errors.New("socket.io client: the server closed the session")
	case eioMessage:
	default:
		return nil
	}
	if hasPrefix(payload, sioMsgPrefix) {
		c.stamped(payload, now)
		return nil
	}
	p, err := parseSIO(payload)
	if err != nil {
		return err
	}
	switch p.Type {
	case sioAck:
		if phase, seq, ok := parseChatAckID(p.ID); ok {
			c.l.answered(phase, seq, sioAckError(p.Data), now)
		}
	case sioDisconnect:
		return errors.New("socket.io client: disconnected by the server")
	}
	return nil
}

// stamped counts a received message and its latency.
func (c *chatClient) stamped(data []byte, now int64) {
	s, ok := findChatStamp(data)
	if !ok {
		return
	}
	if s.Phase == chatPhaseWarm {
		if int64(s.Seq) > c.lastWarm.Load() {
			c.lastWarm.Store(int64(s.Seq))
		}
		return
	}
	if s.Seq >= len(c.counts) {
		c.unexpected++
		return
	}
	if c.counts[s.Seq] < 255 {
		c.counts[s.Seq]++
	}
	if c.counts[s.Seq] == 1 {
		c.lat = append(c.lat, latencyMicros(now-s.SentNS))
		c.l.delivered.Add(1)
	}
}

// post sends message seq of phase, stamped with the time now.
func (c *chatClient) post(phase byte, seq int, now time.Time) error {
	text := chatText(chatStamp{Phase: phase, Seq: seq, SentNS: now.UnixNano()}, c.l.spec.TextBytes)
	var frame []byte
	var err error
	if c.l.spec.Proto == chatProtoOnair {
		frame, err = json.Marshal(struct {
			Type  string `json:"type"`
			Text  string `json:"text"`
			Nonce string `json:"nonce"`
		}{"message", text, chatNonce(phase, seq)})
	} else {
		frame, err = sioEventFrame(chatAckID(phase, seq), "msg", map[string]string{"room": c.l.spec.Room, "text": text})
	}
	if err != nil {
		return fmt.Errorf("chat client: encode: %w", err)
	}
	return c.write(frame)
}

package chat

import (
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// Outgoing messages.
//
// Each socket has a queue of messages that never blocks whoever adds to it, and a writer
// goroutine (writeLoop) while the queue or a control frame waits: an idle socket has
// none. Messages are websocket.PreparedMessage: what every socket
// of a room receives is prepared once for all of them (room.flush), so each socket's
// write is one buffer and one syscall; what one socket receives (acks, errors, its
// history) is prepared for it. The writer also sends the control frames: our pings, the
// pongs to the client's pings and one close frame.
//
// What a socket holds is bounded in bytes whether or not its client reads: the messages
// queued and the one being written count against Config.SendQueueBytes (held), and so do
// the control frames waiting or being written. A message that would take the socket past
// Config.SendQueue messages or SendQueueBytes less controlRoom closes it (1013) instead
// of slowing anyone. Control frames are not queued one per request, so a client cannot
// grow them by sending pings: a pong waiting is replaced by the answer to a later ping
// (RFC 6455 section 5.5.3 allows answering only the most recent one), our ping is due at
// most once, and a socket sends one close frame, after which it sends nothing.

// frameHeader is the most a frame's header adds to its payload (RFC 6455 section 5.2).
const frameHeader = 10

// maxControlFrame is the largest control frame: a 2-byte header and the most payload RFC
// 6455 allows a control frame (125 bytes).
const maxControlFrame = 2 + 125

// controlRoom is the part of Config.SendQueueBytes that messages never take, so that
// control frames always fit: a pong, a ping and a close frame waiting, one of them being
// written, and the close frame the websocket library writes by itself when the client
// breaks the protocol.
const controlRoom = 5 * maxControlFrame

// closeGrace bounds the wait for a socket's last frames (the close frame) to be written.
const closeGrace = time.Second

// outMsg is a queued message.
type outMsg struct {
	pm     *websocket.PreparedMessage
	size   int // what it holds: payload and header
	events int // live events in it, for Stats; 0 for a socket's own frames
}

// prepare makes a text message of a JSON frame.
func prepare(payload []byte, events int) outMsg {
	pm, err := websocket.NewPreparedMessage(websocket.TextMessage, payload)
	if err != nil {
		// Only fails for an invalid message type.
		panic("prepare chat message: " + err.Error())
	}
	return outMsg{pm: pm, size: len(payload) + frameHeader, events: events}
}

// sendFrame queues a frame for this socket alone.
func (c *conn) sendFrame(payload []byte) bool { return c.send(prepare(payload, 0)) }

// send queues m without blocking and reports whether it was queued. A message that does
// not fit closes the socket (1013, too slow).
func (c *conn) send(m outMsg) bool {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		c.h.stats.dropped.Add(uint64(m.events))
		return false
	}
	if len(c.q) >= c.h.cfg.SendQueue || c.held+m.size > c.h.cfg.SendQueueBytes-controlRoom {
		queued, held := len(c.q), c.held
		c.mu.Unlock()
		c.h.stats.dropped.Add(uint64(m.events))
		if c.shutdown(websocket.CloseTryAgainLater, "too slow") {
			c.h.stats.slowClosed.Add(1)
			c.h.log.Info("closing slow socket", "room", c.r.id, "conn", c.id,
				"queued_messages", queued, "held_bytes", held, "limit_bytes", c.h.cfg.SendQueueBytes)
		}
		return false
	}
	c.q = append(c.q, m)
	c.held += m.size
	start := c.wakeLocked()
	c.mu.Unlock()
	c.startWriter(start)
	return true
}

// queuePong answers the client's ping; it replaces a pong still waiting. It is the
// websocket's ping handler, run by the reader.
func (c *conn) queuePong(payload string) error {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return nil
	}
	if c.pong != nil {
		c.held -= len(c.pong) + 2
	}
	c.pong = []byte(payload) // never nil, even empty; at most 125 bytes, as the library checks
	c.held += len(c.pong) + 2
	start := c.wakeLocked()
	c.mu.Unlock()
	c.startWriter(start)
	return nil
}

// queuePing has the writer ping the client, unless a ping is due already.
func (c *conn) queuePing() {
	c.mu.Lock()
	start := false
	if !c.ping && !c.closing {
		c.ping = true
		c.held += 2
		start = c.wakeLocked()
	}
	c.mu.Unlock()
	c.startWriter(start)
}

// wakeLocked notes that the writer has work, and reports whether it must be started. c.mu
// is held.
func (c *conn) wakeLocked() bool {
	if c.writing {
		return false
	}
	c.writing = true
	return true
}

// startWriter starts the writer when wakeLocked said so.
func (c *conn) startWriter(start bool) {
	if start {
		go c.writeLoop()
	}
}

// control is a control frame taken by the writer.
type control struct {
	op      int
	payload []byte
}

func (f control) size() int { return len(f.payload) + 2 }

// next takes the writer's next frame: a control frame, else a message, else the close
// frame once nothing is queued. Control frames go first so that a long queue does not
// delay the answer to a ping, nor our ping. ok is false when there is nothing to write:
// the writer then ends, and closes the connection if the reader has (abort).
func (c *conn) next() (ctl *control, m outMsg, ok, abort bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closeSent:
	case c.pong != nil:
		ctl, c.pong = &control{websocket.PongMessage, c.pong}, nil
		return ctl, m, true, false
	case c.ping:
		ctl, c.ping = &control{websocket.PingMessage, nil}, false
		return ctl, m, true, false
	case len(c.q) > 0:
		m = c.q[0]
		c.q[0] = outMsg{}
		c.q = c.q[1:]
		return nil, m, true, false
	case c.closeDue:
		ctl, c.closeSent = &control{websocket.CloseMessage, c.closeMsg}, true
		return ctl, m, true, false
	}
	c.writing = false
	return nil, m, false, c.abort
}

// writeLoop is the socket's writer: it writes what is queued, and ends when nothing is
// (or the connection fails). Once the reader has ended nothing more is queued: what was
// is written, then the writer closes the connection.
func (c *conn) writeLoop() {
	for {
		ctl, m, ok, abort := c.next()
		if !ok {
			if abort {
				c.closeNow()
			}
			return
		}
		deadline := time.Now().Add(c.h.cfg.WriteTimeout)
		var err error
		size := m.size
		if ctl != nil {
			size = ctl.size()
			err = c.ws.WriteControl(ctl.op, ctl.payload, deadline)
		} else {
			_ = c.ws.SetWriteDeadline(deadline)
			c.h.stats.writes.Add(1)
			err = c.ws.WritePreparedMessage(m.pm)
		}
		c.mu.Lock()
		c.held -= size // written, or dropped with the connection
		c.mu.Unlock()
		if err != nil {
			// The writer stays marked as running: nothing is written on this socket any
			// more.
			c.closed.Store(true)
			c.closeNow()
			return
		}
	}
}

// shutdown closes the socket. With a code, it queues a close frame after the messages
// already queued and leaves the connection open for the client's reply (its reader then
// ends and calls shutdown(0)). With code 0 it closes the connection once the queue is
// written. Either way the connection is closed within closeGrace. It reports whether
// this call started the closing.
func (c *conn) shutdown(code int, reason string) bool {
	for len(reason) > 123 || !utf8.ValidString(reason) {
		reason = reason[:len(reason)-1]
	}
	c.mu.Lock()
	first := !c.closing
	c.closing = true
	if first {
		c.closeCode = code
		if code != 0 {
			c.closeDue = true
			c.closeMsg = websocket.FormatCloseMessage(code, reason)
			c.held += len(c.closeMsg) + 2
		}
	}
	if code == 0 {
		c.abort = true
	}
	start := c.wakeLocked()
	c.mu.Unlock()
	c.closed.Store(true)
	c.startWriter(start)
	if first {
		time.AfterFunc(closeGrace, c.closeNow)
	}
	return first
}

// closeNow closes the network connection; the reader and the writer then end.
func (c *conn) closeNow() {
	c.closeOnce.Do(func() {
		if c.ws != nil {
			_ = c.ws.Close()
		}
		close(c.gone)
	})
}

package chat

import (
	"bufio"
	"encoding/binary"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"
)

// Outgoing frames.
//
// A socket's outgoing frames are complete websocket frames ([]byte), encoded once per
// broadcast and shared by every socket they go to. Each socket has a bounded queue of
// them; queuing never blocks. Queues are written by a small pool of flusher goroutines
// (not one writer goroutine per socket): a flusher writes a socket's whole queue with one
// writev that does not wait (frameWriter). A socket whose TCP buffer is full gets a
// goroutine of its own that finishes the write with the full write timeout; frames queue
// meanwhile, and a socket whose queue overflows is closed (1013) instead of slowing
// anyone. A few flushers rather than a writer per socket keep a broadcast to thousands of
// sockets from making thousands of goroutines runnable at once, which would delay
// everything else (reading posts, storing them) by milliseconds per scheduling hop.
//
// With Config.FlushDelay the flushers linger before taking their work, so that the frames
// of several broadcasts go out in the same writev: a write, not a frame, is what a
// delivery costs (a syscall, and on loopback the peer's TCP receive path too), so in a
// busy room this divides the server's CPU per delivery, at the price of up to FlushDelay
// of latency.
//
// The websocket library still reads, answers pings and closes: its own writes (pongs,
// close frames) go through sockConn, which queues a copy.
//
// What a socket holds is bounded in bytes whether or not its client reads: the frames
// queued for it and those taken by a write that has not finished count against
// Config.SendQueueBytes (held). A data frame that would take the socket beyond it, less
// controlRoom, closes the socket (1013) instead. Control frames are coalesced rather than
// queued one per request, so a client cannot grow them by sending pings: a queued pong is
// replaced by the answer to a later ping (RFC 6455 section 5.5.3 allows answering only the
// most recent one), a queued ping of ours is not queued twice, and a socket sends one close
// frame, after which it queues nothing more.

// frame encodes an unmasked server frame (RFC 6455 section 5.2) with opcode op.
func frame(op byte, payload []byte) []byte {
	n := len(payload)
	var hdr [10]byte
	hdr[0] = 0x80 | op // FIN
	h := 2
	switch {
	case n < 126:
		hdr[1] = byte(n)
	case n <= 0xffff:
		hdr[1] = 126
		binary.BigEndian.PutUint16(hdr[2:], uint16(n))
		h = 4
	default:
		hdr[1] = 127
		binary.BigEndian.PutUint64(hdr[2:], uint64(n))
		h = 10
	}
	b := make([]byte, h+n)
	copy(b, hdr[:h])
	copy(b[h:], payload)
	return b
}

const (
	opText  = 0x1
	opClose = 0x8
	opPing  = 0x9
	opPong  = 0xa
)

// maxControlFrame is the largest control frame a server sends: a 2-byte header and the
// most payload RFC 6455 allows a control frame (125 bytes).
const maxControlFrame = 2 + 125

// controlRoom is the part of Config.SendQueueBytes that data frames never take, so that
// control frames always fit: at most a ping and a pong queued, a ping and a pong being
// written, and the close frame.
const controlRoom = 5 * maxControlFrame

// frameKind tells the queue how to bound a frame.
type frameKind uint8

const (
	kindData  frameKind = iota // bounded by Config.SendQueue and SendQueueBytes; a full queue closes the socket
	kindPing                   // ours; at most one queued
	kindPong                   // the answer to the client's latest ping; at most one queued
	kindClose                  // at most one per socket, and the last frame it sends
)

// controlKind is the kind of a complete server frame f.
func controlKind(f []byte) frameKind {
	if len(f) < 2 || f[0]&0x80 == 0 {
		return kindData
	}
	switch f[0] & 0x0f {
	case opPing:
		return kindPing
	case opPong:
		return kindPong
	case opClose:
		return kindClose
	}
	return kindData
}

func textFrame(payload []byte) []byte { return frame(opText, payload) }

func closeFrame(code int, reason string) []byte {
	for len(reason) > 123 || !utf8.ValidString(reason) {
		reason = reason[:len(reason)-1]
	}
	p := make([]byte, 2+len(reason))
	binary.BigEndian.PutUint16(p, uint16(code))
	copy(p[2:], reason)
	return frame(opClose, p)
}

// closeGrace bounds the wait for a socket's last frames (the close frame) to be written.
const closeGrace = time.Second

// sockConn is the hijacked connection of a websocket. Until the socket is set up it
// writes through (the handshake response); then writes by the websocket library are
// queued as frames and its write deadlines ignored (flushers set their own).
type sockConn struct {
	net.Conn
	c atomic.Pointer[conn]
}

// Write queues a frame of the websocket library. Chat sends its data frames itself, so the
// library writes only control frames (pongs, close frames), each whole in one Write; they
// are coalesced by kind (see queue). Anything else is bounded as a data frame.
func (s *sockConn) Write(p []byte) (int, error) {
	if c := s.c.Load(); c != nil {
		c.queue(append([]byte(nil), p...), controlKind(p))
		return len(p), nil
	}
	return s.Conn.Write(p)
}

func (s *sockConn) SetWriteDeadline(t time.Time) error {
	if s.c.Load() != nil {
		return nil
	}
	return s.Conn.SetWriteDeadline(t)
}

// hijackWriter hands the websocket upgrader a sockConn when it hijacks the connection. It
// hijacks through http.ResponseController, so response writers wrapped by middleware work.
type hijackWriter struct {
	http.ResponseWriter
	conn *sockConn
}

func (w *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.conn = &sockConn{Conn: nc}
	return w.conn, brw, nil
}

// queue adds f to the socket's queue without blocking and reports whether it was
// queued. A data frame that does not fit (Config.SendQueue frames, or Config.SendQueueBytes
// less controlRoom) closes the socket (1013, too slow); see the top of this file for
// control frames.
func (c *conn) queue(f []byte, kind frameKind) bool {
	c.mu.Lock()
	switch kind {
	case kindData:
		if c.closing || c.closeQueued {
			c.mu.Unlock()
			c.h.stats.dropped.Add(1)
			return false
		}
		if len(c.q) >= c.h.cfg.SendQueue || c.held+len(f) > c.h.cfg.SendQueueBytes-controlRoom {
			queued, held := len(c.q), c.held
			c.mu.Unlock()
			c.h.stats.dropped.Add(1)
			if c.shutdown(1013, "too slow") {
				c.h.stats.slowClosed.Add(1)
				c.h.log.Info("closing slow socket", "room", c.r.id, "conn", c.id,
					"queued_frames", queued, "held_bytes", held, "limit_bytes", c.h.cfg.SendQueueBytes)
			}
			return false
		}
	case kindClose:
		if c.closeQueued {
			c.mu.Unlock()
			return false
		}
		c.closeQueued = true
		// Pings and pongs still queued would follow the close frame: drop them.
		c.unqueue(&c.pongAt)
		c.unqueue(&c.pingAt)
	case kindPing, kindPong:
		at := &c.pingAt
		if kind == kindPong {
			at = &c.pongAt
		}
		switch {
		case c.closeQueued:
			c.mu.Unlock()
			return false
		case *at > 0 && kind == kindPing:
			c.mu.Unlock()
			return true // ours is queued already
		case *at > 0:
			i := *at - 1
			c.held += len(f) - len(c.q[i])
			c.q[i] = f // the newest ping is the one to answer
			c.mu.Unlock()
			return true
		}
		*at = len(c.q) + 1
	}
	if c.held+len(f) > c.h.cfg.SendQueueBytes {
		// controlRoom makes this unreachable; should it happen, the bound wins.
		c.unqueue(&c.pingAt)
		c.unqueue(&c.pongAt)
		c.mu.Unlock()
		c.h.log.Error("control frame over the socket's byte limit, closing it", "room", c.r.id, "conn", c.id)
		c.closed.Store(true)
		c.closeNow()
		return false
	}
	c.q = append(c.q, f)
	c.held += len(f)
	schedule := !c.scheduled && !c.draining
	c.scheduled = c.scheduled || schedule
	closing := c.closing || c.closeQueued
	c.mu.Unlock()
	if schedule {
		c.wakeWriter(closing)
	}
	return true
}

// unqueue removes the ping or pong whose position *at holds from the queue. Called with
// mu held.
func (c *conn) unqueue(at *int) {
	i := *at - 1
	*at = 0
	if i < 0 || i >= len(c.q) {
		return
	}
	c.held -= len(c.q[i])
	c.q = slices.Delete(c.q, i, i+1)
	for _, o := range []*int{&c.pingAt, &c.pongAt} {
		if *o > i+1 {
			*o--
		}
	}
}

// take empties the queue for a writer, leaving next (a recycled slice, or nil) in its
// place. The frames stay counted in held until they are written. Called with mu held.
func (c *conn) take(next [][]byte) [][]byte {
	q := c.q
	c.q = next
	c.pingAt, c.pongAt = 0, 0
	return q
}

// written uncounts n bytes that were written, or dropped with the connection.
func (c *conn) written(n int) {
	c.mu.Lock()
	c.held -= n
	c.mu.Unlock()
}

// size is the bytes in bufs.
func size(bufs [][]byte) int {
	n := 0
	for _, b := range bufs {
		n += len(b)
	}
	return n
}

// wakeWriter has the socket's queue written: by the flushers, or by its own writer.
// urgent skips the flushers' linger: a closing socket has nothing to coalesce with, and
// its peer, or a hub shutting down, waits for the close.
func (c *conn) wakeWriter(urgent bool) {
	if c.own != nil {
		signal(c.own)
	} else {
		c.h.flush.add(c, urgent)
	}
}

// enqueue queues a data frame.
func (c *conn) enqueue(f []byte) bool { return c.queue(f, kindData) }

// shutdown closes the socket. With a code, it queues a close frame after the frames
// already queued and leaves the connection open for the client's reply (its reader then
// ends and calls shutdown(0)). With code 0 it closes the connection once the queue is
// written. Either way the connection is closed within closeGrace. It reports whether
// this call started the closing.
func (c *conn) shutdown(code int, reason string) bool {
	c.mu.Lock()
	first := !c.closing
	c.closing = true
	if first {
		c.closeCode = code
	}
	if code == 0 {
		c.abort = true
	}
	c.mu.Unlock()
	c.closed.Store(true)
	if first && code != 0 {
		c.queue(closeFrame(code, reason), kindClose)
	}
	if code == 0 {
		c.wakeWriter(true) // writes what is queued, then closes
	}
	if first {
		time.AfterFunc(closeGrace, c.closeNow)
	}
	return first
}

// closeNow closes the network connection; the reader then ends.
func (c *conn) closeNow() {
	c.closeOnce.Do(func() {
		if c.nc != nil {
			_ = c.nc.Conn.Close()
		}
		close(c.gone)
	})
}

// flushPool is the flusher goroutines and their work list: sockets with queued frames.
type flushPool struct {
	delay time.Duration // linger: Config.FlushDelay

	mu    sync.Mutex
	list  []*conn
	since time.Time // when list last became non-empty; only with a delay
	hurry bool      // list holds a closing socket: take it without lingering
	wake  chan struct{}
	rush  chan struct{} // ends a linger early, for hurry
}

func newFlushPool(delay time.Duration) *flushPool {
	return &flushPool{delay: delay, wake: make(chan struct{}, 1), rush: make(chan struct{}, 1)}
}

func (p *flushPool) add(c *conn, urgent bool) {
	p.mu.Lock()
	if len(p.list) == 0 && p.delay > 0 {
		p.since = time.Now()
	}
	p.list = append(p.list, c)
	p.hurry = p.hurry || urgent
	p.mu.Unlock()
	signal(p.wake)
	if urgent && p.delay > 0 {
		signal(p.rush)
	}
}

func (p *flushPool) take(buf []*conn) []*conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	buf = append(buf[:0], p.list...)
	clear(p.list)
	p.list = p.list[:0]
	p.hurry = false
	return buf
}

// linger waits until the work list is delay old (counted from its first socket, as
// Kafka's linger.ms, so that a long flush does not add a delay of its own to what queued
// meanwhile), or holds a closing socket. It reports false if stop was closed meanwhile.
func (p *flushPool) linger(stop <-chan struct{}, t *time.Timer) bool {
	if p.delay <= 0 {
		return true
	}
	p.mu.Lock()
	var wait time.Duration
	if len(p.list) > 0 && !p.hurry {
		wait = p.delay - time.Since(p.since)
	}
	p.mu.Unlock()
	if wait <= 0 {
		return true
	}
	t.Reset(wait)
	select {
	case <-stop:
		t.Stop()
		return false
	case <-t.C:
	case <-p.rush:
		t.Stop()
	}
	return true
}

// run is one flusher; it returns when stop is closed.
func (p *flushPool) run(stop <-chan struct{}) {
	var batch []*conn
	w := newFrameWriter()
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-p.wake:
		}
		for {
			if !p.linger(stop, t) {
				return
			}
			batch = p.take(batch)
			if len(batch) == 0 {
				break
			}
			signal(p.wake) // let another flusher share the next batch
			for i, c := range batch {
				c.flush(w)
				batch[i] = nil
			}
		}
	}
}

// flush writes the socket's queue, in a flusher, with w.
func (c *conn) flush(w *frameWriter) {
	c.mu.Lock()
	c.scheduled = false
	if c.draining {
		c.mu.Unlock()
		return
	}
	bufs := c.take(c.spare[:0])
	c.spare = nil
	c.mu.Unlock()

	total := size(bufs)
	var err error
	if len(bufs) > 0 && c.nc != nil {
		var rest [][]byte
		rest, err = w.write(c, bufs)
		if err == nil && len(rest) > 0 {
			c.mu.Lock()
			c.held -= total - size(rest)
			c.draining = true
			rest = append(append([][]byte(nil), rest...), c.take(nil)...)
			c.mu.Unlock()
			go c.drain(rest)
			return
		}
	}
	clear(bufs)
	c.mu.Lock()
	c.held -= total // written, or dropped with the connection
	if c.spare == nil {
		c.spare = bufs[:0]
	}
	done := c.abort && len(c.q) == 0
	c.mu.Unlock()
	if err != nil || done {
		c.closed.Store(true)
		c.closeNow()
	}
}

// ownWriter writes the queue of a socket whose connection cannot take the flushers'
// short write deadlines: after a timed-out write a TLS connection is unusable. It is the
// socket's one writer goroutine, with the full write timeout.
func (c *conn) ownWriter() {
	for {
		select {
		case <-c.gone:
			return
		case <-c.own:
		}
		c.mu.Lock()
		c.scheduled = false
		bufs := c.take(nil)
		c.mu.Unlock()
		if len(bufs) > 0 {
			n := size(bufs)
			_ = c.nc.Conn.SetWriteDeadline(time.Now().Add(c.h.cfg.WriteTimeout))
			nb := net.Buffers(bufs)
			c.h.stats.writes.Add(1)
			_, err := nb.WriteTo(c.nc.Conn)
			c.written(n)
			if err != nil {
				c.closed.Store(true)
				c.closeNow()
				return
			}
		}
		c.mu.Lock()
		done := c.abort && len(c.q) == 0
		c.mu.Unlock()
		if done {
			c.closeNow()
			return
		}
	}
}

// rawSocket returns the socket under nc if a write to it that stops short (its buffer
// full, or its deadline passed) leaves the connection usable, with what was written
// accounted for: TCP and Unix sockets, not TLS. nil: nc needs a writer of its own.
func rawSocket(nc net.Conn) syscall.RawConn {
	switch nc := nc.(type) {
	case *net.TCPConn:
		if rc, err := nc.SyscallConn(); err == nil {
			return rc
		}
	case *net.UnixConn:
		if rc, err := nc.SyscallConn(); err == nil {
			return rc
		}
	}
	return nil
}

// drain finishes a write that stalled, with the full write timeout, then writes what was
// queued meanwhile, until the queue is empty; then flushers take over again.
func (c *conn) drain(bufs [][]byte) {
	for {
		n := size(bufs)
		_ = c.nc.Conn.SetWriteDeadline(time.Now().Add(c.h.cfg.WriteTimeout))
		nb := net.Buffers(bufs)
		c.h.stats.writes.Add(1)
		_, err := nb.WriteTo(c.nc.Conn)
		c.mu.Lock()
		c.held -= n // written, or dropped with the connection
		if err != nil {
			c.mu.Unlock()
			c.closed.Store(true)
			c.closeNow()
			return
		}
		if len(c.q) == 0 {
			// The flushers' writes would fail once this deadline passed.
			_ = c.nc.Conn.SetWriteDeadline(time.Time{})
			c.draining = false
			done := c.abort
			c.mu.Unlock()
			if done {
				c.closeNow()
			}
			return
		}
		bufs = c.take(nil)
		c.mu.Unlock()
	}
}

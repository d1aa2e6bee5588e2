package chat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// conn is one chat socket. Its reader is readLoop; its writer, writeLoop (socket.go),
// runs only while there is something to write.
type conn struct {
	h    *Hub
	r    *room
	ws   *websocket.Conn // nil in benchmarks without a network
	user *User           // nil: anonymous
	priv bool            // owner, moderator or admin of the room when it joined
	id   uint64

	inflight chan struct{} // posts being stored

	idx         int  // position in r.subs, guarded by r.mu
	needHistory bool // joined while the room could not be loaded; guarded by r.mu

	mu        sync.Mutex // guards the fields below
	q         []outMsg   // messages to write, oldest first
	held      int        // bytes queued or being written, control frames included; at most Config.SendQueueBytes
	pong      []byte     // the payload of the latest ping not answered yet; nil: none to answer
	ping      bool       // our ping is due
	closing   bool       // shutdown was called: nothing more is queued
	closeDue  bool       // our close frame (closeMsg) follows the queue
	closeMsg  []byte
	closeSent bool // the close frame was taken: nothing may follow it
	abort     bool // the reader has ended: close the connection once the queue is written
	closeCode int
	writing   bool // writeLoop runs

	closed    atomic.Bool   // closing, or the connection failed
	closeOnce sync.Once     // for closeNow
	gone      chan struct{} // closed when the network connection is closed
}

// ServeWS upgrades the request to a chat websocket for room and hands the socket to a
// reader goroutine of its own. user nil is an anonymous reader. The caller has
// authenticated the user and resolved the room; the Origin header is checked here
// (Config.CheckOrigin). Until Run runs, and once it is stopping, requests get 503.
//
// ServeWS returns once the socket has joined, rather than reading it: net/http's state
// for the request and the stack of the handler chain would otherwise stay alive as long
// as the socket, which for idle sockets is most of what they hold.
func (h *Hub) ServeWS(w http.ResponseWriter, req *http.Request, info Room, user *User) {
	h.mu.Lock()
	if h.stopping || !h.live.Load() {
		h.mu.Unlock()
		http.Error(w, "chat is not running", http.StatusServiceUnavailable)
		return
	}
	h.conns.Add(1)
	h.mu.Unlock()

	ws, err := h.upgrader.Upgrade(w, req, nil) // writes the error response itself
	if err != nil {
		h.conns.Done()
		h.log.Debug("websocket upgrade refused", "room", info.ID, "err", err)
		return
	}
	if user != nil && user.ID == "" {
		user = nil
	}
	c := &conn{
		h: h, ws: ws, user: user, id: h.connSeq.Add(1), idx: -1,
		priv:     user != nil && rank(info, *user) > 0,
		inflight: make(chan struct{}, maxInflight),
		gone:     make(chan struct{}),
	}
	r := h.acquire(info)
	c.r = r
	h.sockets.Add(1)

	ws.SetReadLimit(h.cfg.ReadLimit)
	_ = ws.SetReadDeadline(time.Now().Add(c.idle()))
	ws.SetPongHandler(func(string) error { return ws.SetReadDeadline(time.Now().Add(c.idle())) })
	// The library's own handlers would write the pong or the close reply from the reader,
	// which would then wait for a client that does not read: the writer sends them.
	ws.SetPingHandler(c.queuePong)
	ws.SetCloseHandler(func(code int, _ string) error {
		c.shutdown(code, "")
		return nil
	})

	ctx, cancel := context.WithTimeout(req.Context(), h.cfg.OpTimeout)
	_ = r.ensureLoaded(ctx) // on failure the socket gets an error frame instead of history
	cancel()
	r.join(c)
	h.mu.Lock()
	stopping := h.stopping
	h.mu.Unlock()
	if stopping { // Run's shutdown may have missed this socket
		c.shutdown(websocket.CloseGoingAway, "server shutting down")
	}
	h.log.Debug("socket joined", "room", r.id, "conn", c.id, "signed_in", user != nil)
	go c.readLoop()
}

// idle is how long a socket may stay silent: a ping and the time to answer it.
func (c *conn) idle() time.Duration { return c.h.cfg.PingInterval + c.h.cfg.PongTimeout }

// readLoop reads the client's frames until the socket closes, then leaves the room.
func (c *conn) readLoop() {
	h, r := c.h, c.r
	defer h.conns.Done()
	for {
		mt, data, err := c.ws.ReadMessage()
		if err != nil {
			if !c.closed.Load() && !websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived) {
				h.log.Debug("socket read ended", "room", r.id, "conn", c.id, "err", err)
			}
			break
		}
		if c.closed.Load() {
			break // being closed: ignore what else the client sends
		}
		_ = c.ws.SetReadDeadline(time.Now().Add(c.idle()))
		h.handleFrame(c, mt, data)
	}
	c.shutdown(0, "") // after a close frame from the client, its reply is queued
	<-c.gone
	r.leave(c)
	h.release(r)
	h.sockets.Add(-1)
	c.mu.Lock()
	code := c.closeCode
	c.mu.Unlock()
	h.log.Debug("socket left", "room", r.id, "conn", c.id, "close_code", code)
}

// handleFrame handles one client frame.
func (h *Hub) handleFrame(c *conn, mt int, data []byte) {
	if mt != websocket.TextMessage {
		c.sendFrame(errorMsg(codeBadRequest, "frames must be JSON text", "", 0))
		return
	}
	var in clientFrame
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err := dec.Decode(&in)
	if err == nil {
		if _, e := dec.Token(); e != io.EOF {
			err = errors.New("trailing data after the JSON object")
		}
	}
	if err != nil {
		c.sendFrame(errorMsg(codeBadRequest, "malformed frame: "+err.Error(), "", 0))
		return
	}
	nonce := ""
	if in.Nonce != nil {
		nonce = *in.Nonce
		if len(nonce) > maxNonce {
			c.sendFrame(errorMsg(codeBadRequest, "nonce is too long", "", 0))
			return
		}
	}
	switch in.Type {
	case typeMessage:
		if in.Text == nil {
			c.sendFrame(errorMsg(codeBadRequest, `a message needs a "text"`, nonce, 0))
			return
		}
		h.post(c, *in.Text, nonce)
	default:
		c.sendFrame(errorMsg(codeBadRequest, "unknown frame type", nonce, 0))
	}
}

// post stores a client's message and publishes it: ack to the sender, broadcast to the
// room, event for the other nodes. Nothing is acknowledged or broadcast unless stored.
func (h *Hub) post(c *conn, raw, nonce string) {
	h.stats.received.Add(1)
	reject := func(code, msg string, retry time.Duration) {
		h.stats.rejected.Add(1)
		c.sendFrame(errorMsg(code, msg, nonce, retry))
	}
	if c.user == nil {
		reject(codeUnauthorized, "sign in to chat", 0)
		return
	}
	text, code, msg := checkText(raw, h.cfg.MaxLength)
	if code != "" {
		reject(code, msg, 0)
		return
	}
	if !h.live.Load() {
		reject(codeUnavailable, "chat is not running", 0)
		return
	}
	r := c.r
	ctx, cancel := context.WithTimeout(context.Background(), h.cfg.OpTimeout)
	defer cancel()
	if err := r.ensureLoaded(ctx); err != nil {
		reject(codeUnavailable, "chat is unavailable right now, try again", 0)
		return
	}
	v, res := r.admit(c.user.ID, c.priv, time.Now())
	if v.code != "" {
		reject(v.code, v.msg, v.retry)
		return
	}

	// The insert completes asynchronously so that a socket can have several posts in
	// flight (a bounded number: beyond it this reader waits); the room's sequencer
	// publishes them in order.
	select {
	case c.inflight <- struct{}{}:
	case <-c.gone:
		r.unreserve(res)
		return
	}
	h.hold(r) // the room outlives the socket while its posts are in flight
	e, oid, at := r.seqReserve()
	doc := messageDoc{
		ID: oid, Room: r.id, Kind: typeMessage, UserID: c.user.ID, Handle: c.user.Handle,
		Admin: c.user.Admin, Text: text, At: at, Node: h.cfg.NodeID,
	}
	h.w.submit(&insertReq{doc: doc, deadline: time.Now().Add(h.cfg.OpTimeout), done: func(err error) {
		defer func() {
			h.release(r)
			<-c.inflight
		}()
		if err != nil {
			r.seqComplete(e, nil)
			r.unreserve(res)
			h.log.Warn("store message failed", "room", r.id, "user", c.user.ID, "err", err)
			if errors.Is(err, ErrUnavailable) {
				reject(codeUnavailable, "message not sent: chat storage is unavailable, try again", 0)
			} else {
				reject(codeInternal, "message not sent: the server could not store it", 0)
			}
			return
		}
		h.stats.stored.Add(1)
		m := doc.message()
		data := marshal(m)
		ack := marshal(ackFrame{Type: typeAck, Nonce: nonce, ID: m.ID, At: m.At})
		r.seqComplete(e, func() {
			c.sendFrame(ack)
			h.publishMessage(r, m, data)
		})
	}})
}

// publishMessage broadcasts a stored message or notice of this node and queues it for the
// other nodes. Called in the room's publication order (under seqMu).
func (h *Hub) publishMessage(r *room, m Message, data []byte) {
	r.publish(data, func() bool { return r.addMessage(m) })
	h.w.event(event{Room: r.id, Type: m.Type, Frame: data})
}

// rank orders privileges: 3 admin, 2 room owner, 1 moderator, 0 anyone else.
func rank(info Room, u User) int {
	switch {
	case u.ID == "":
		return 0
	case u.Admin:
		return 3
	case u.ID == info.OwnerID:
		return 2
	case slices.Contains(info.Moderators, u.ID):
		return 1
	}
	return 0
}

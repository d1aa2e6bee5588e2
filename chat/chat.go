package chat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"onair/rooms/mongodb"
)

// Sentinel errors; every error the package returns for these conditions wraps one of them.
var (
	// ErrForbidden: the actor may not do this (see "Limits and moderation" in the package
	// documentation); the wrapping error says which rule refused it.
	ErrForbidden = errors.New("chat: forbidden")
	// ErrNotFound: no such message in this room.
	ErrNotFound = errors.New("chat: not found")
	// ErrUnavailable: MongoDB could not be reached or did not answer in time; retry later.
	ErrUnavailable = errors.New("chat: storage unavailable")
	// ErrInvalid: an argument is out of range (empty text, a negative duration, …).
	ErrInvalid = errors.New("chat: invalid argument")
)

// Config configures a Hub. Zero values take the documented defaults.
type Config struct {
	// Logger defaults to slog.New(slog.DiscardHandler).
	Logger *slog.Logger
	// DB holds the chat collections. Required.
	DB *mongo.Database
	// EventDB holds the capped event collection chat_events shared by the nodes. It
	// defaults to the database named DB's name + "_events" on DB's client: FerretDB keeps
	// each database in its own SQLite file and locks a capped collection's whole file for
	// its housekeeping every second, which would stall message inserts (ferretdb.go). On
	// MongoDB any database will do (EventDB = DB is fine); the user needs readWrite on it.
	EventDB *mongo.Database
	// NodeID names this process in the shared event log: the node id of the cluster, the
	// same for every part of the process and different between nodes sharing DB. Required.
	NodeID string
	// CheckOrigin vets the Origin header of websocket upgrades. The default accepts requests
	// without an Origin header and those whose Origin host equals the request's Host.
	CheckOrigin func(*http.Request) bool

	// HistorySize is how many messages a socket gets on join (default 50).
	HistorySize int
	// MaxLength is the longest message text in runes after cleaning (default
	// DefaultMaxLength; Hub.MaxLength tells the one in use).
	MaxLength int
	// RateLimit messages per RatePer per user and room (defaults 5 per 10 s). Applies to
	// everyone, moderators included; slow mode is what moderators are exempt from.
	RateLimit int
	RatePer   time.Duration

	// SendQueue is each socket's outgoing queue, in websocket messages (default 256). A
	// socket whose queue is full is closed with code 1013 ("try again later").
	SendQueue int
	// SendQueueBytes bounds what a socket holds of its outgoing messages, queued or being
	// written, control frames included, in bytes (default DefaultSendQueueBytes, at least
	// MinSendQueueBytes). A socket that would hold more is closed with code 1013; pongs and
	// pings are coalesced rather than queued, so a client that sends pings and never reads
	// cannot make the server hold more. The history frame of a join is at most half of it.
	SendQueueBytes int
	// ReadLimit is the largest frame a client may send, in bytes (default 4096). A larger
	// frame closes the socket with code 1009.
	ReadLimit int64
	// PingInterval between pings (default 30 s); a socket that sends nothing, not even a
	// pong, for PingInterval+PongTimeout (default 10 s) is closed.
	PingInterval time.Duration
	PongTimeout  time.Duration
	// WriteTimeout bounds each frame write (default 10 s).
	WriteTimeout time.Duration
	// FlushDelay is how long an event may wait to go to a room's sockets in one message
	// with the events that follow it (a "batch" frame; 0, the default: each at once).
	// Every message costs each socket a write (a syscall) whatever its size, so at a few
	// events a second per room a delay of tens of milliseconds sends several per write and
	// cuts the server's CPU per delivery, adding up to FlushDelay to the delivery latency.
	// Events that come in a bunch go sooner, as soon as they are as many as one message
	// holds at the room's recent pace (one more than come in FlushDelay): the room gets
	// no more messages than at an even pace, and the bunch does not wait. At most 1 s.
	// Frames for one socket (acks, errors, history, close) are not delayed.
	FlushDelay time.Duration
	// OpTimeout bounds each MongoDB operation made on behalf of a socket or in the
	// background (default 5 s). Calls with a context use that context as well.
	OpTimeout time.Duration

	// EventLogBytes and EventLogMaxDocs size the capped collection chat_events that carries
	// events between nodes, when it is created (the first node to start creates it). Each
	// document is a batch of one node's events of up to 50 ms. Defaults: 8 MiB, and no
	// document limit on MongoDB but 24 documents on FerretDB (ferretdb.go). The log only
	// needs to hold a few seconds; more lets a node that lost its connection for longer
	// catch up.
	EventLogBytes   int64
	EventLogMaxDocs int64
	// CacheRefresh is how often a room's cached bans, slow mode and recent messages are
	// reloaded from MongoDB as a safety net against missed events (default 1 min).
	CacheRefresh time.Duration
	// TailLinger is how long a node goes on following the event log after its last room
	// (socket or operation in flight) went (default 15 s): an idle node asks MongoDB for
	// nothing, and sockets that reconnect at once do not reopen the tail.
	TailLinger time.Duration

	// Actions, when set, is told of every moderation action once it took effect.
	Actions Actions

	// Admit, when set, is asked every AdmitInterval (default 30 s), and after Recheck,
	// whether the users of this node's sockets may still be in their rooms (admit.go):
	// sockets of those who may not (an invitation to a private room revoked, a room made
	// private) are closed with code 4403.
	Admit         func(ctx context.Context, seats []Seat) ([]bool, error)
	AdmitInterval time.Duration
}

func (c *Config) setDefaults() error {
	if c.DB == nil || c.NodeID == "" {
		return errors.New("chat: Config.DB and Config.NodeID are required")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.EventDB == nil {
		c.EventDB = c.DB.Client().Database(c.DB.Name() + "_events")
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.HistorySize, 50)
	def(&c.MaxLength, DefaultMaxLength)
	def(&c.RateLimit, 5)
	def(&c.SendQueue, 256)
	def(&c.SendQueueBytes, DefaultSendQueueBytes)
	defDur(&c.RatePer, 10*time.Second)
	defDur(&c.PingInterval, 30*time.Second)
	defDur(&c.PongTimeout, 10*time.Second)
	defDur(&c.WriteTimeout, 10*time.Second)
	defDur(&c.OpTimeout, 5*time.Second)
	defDur(&c.CacheRefresh, time.Minute)
	defDur(&c.AdmitInterval, 30*time.Second)
	defDur(&c.TailLinger, 15*time.Second)
	if c.ReadLimit == 0 {
		c.ReadLimit = 4096
	}
	if c.EventLogBytes == 0 {
		c.EventLogBytes = 8 << 20
	}
	switch {
	case c.HistorySize < 0 || c.HistorySize > 500:
		return fmt.Errorf("chat: HistorySize %d out of range 0..500", c.HistorySize)
	case c.MaxLength < 1:
		return fmt.Errorf("chat: MaxLength %d must be positive", c.MaxLength)
	case c.RateLimit < 1 || c.RatePer < 0:
		return fmt.Errorf("chat: RateLimit %d per %s is invalid", c.RateLimit, c.RatePer)
	case c.SendQueue < 4:
		// the join messages (history, viewers) go through the queue.
		return fmt.Errorf("chat: SendQueue %d must be at least 4", c.SendQueue)
	case c.SendQueueBytes < MinSendQueueBytes:
		return fmt.Errorf("chat: SendQueueBytes %d must be at least %d", c.SendQueueBytes, MinSendQueueBytes)
	case c.ReadLimit < 256:
		return fmt.Errorf("chat: ReadLimit %d must be at least 256", c.ReadLimit)
	case c.PingInterval < 0 || c.PongTimeout < 0 || c.WriteTimeout < 0 || c.OpTimeout < 0 || c.CacheRefresh < 0 || c.FlushDelay < 0 ||
		c.AdmitInterval < 0 || c.TailLinger < 0:
		return errors.New("chat: durations must not be negative")
	case c.FlushDelay > time.Second:
		return fmt.Errorf("chat: FlushDelay %s is over 1s", c.FlushDelay)
	case c.EventLogBytes < 64<<10 || c.EventLogMaxDocs < 0:
		return fmt.Errorf("chat: event log of %d bytes / %d documents is too small", c.EventLogBytes, c.EventLogMaxDocs)
	}
	return nil
}

// DefaultMaxLength is Config.MaxLength's default, in runes.
const DefaultMaxLength = 500

// MaxLength is the longest message text this hub accepts, in runes (Config.MaxLength).
func (h *Hub) MaxLength() int { return h.cfg.MaxLength }

// Bounds of Config.SendQueueBytes.
const (
	// DefaultSendQueueBytes holds hundreds of typical frames: a reader some seconds behind
	// a busy room catches up, a client that stops reading is closed.
	DefaultSendQueueBytes = 256 << 10
	// MinSendQueueBytes leaves room for a history frame and a few frames of the longest
	// messages.
	MinSendQueueBytes = 16 << 10
)

// Room is what chat needs to know of a room.
type Room struct {
	ID    string
	Slug  string // for logs, audit entries and webhooks
	Title string // for audit entries and webhooks
	// Stream is the room's media stream name, which its viewer count is reported under
	// (SetViewerCounts); Slug when empty.
	Stream  string
	OwnerID string
	// Moderators are user IDs. A socket's privileges are fixed when it joins.
	Moderators []string
}

// User is a signed-in user; a nil *User is an anonymous reader.
type User struct {
	ID     string
	Handle string
	Admin  bool
}

// Message is a stored chat message or system notice, as delivered to clients.
type Message struct {
	Type   string    `json:"type"` // "message" or "system"
	ID     string    `json:"id"`
	UserID string    `json:"user_id,omitempty"`
	Handle string    `json:"handle,omitempty"`
	Text   string    `json:"text"`
	At     time.Time `json:"at"`
}

// ActionKind names a moderation action.
type ActionKind string

// Moderation actions.
const (
	ActionDelete   ActionKind = "delete"
	ActionTimeout  ActionKind = "timeout"
	ActionBan      ActionKind = "ban"
	ActionUnban    ActionKind = "unban"
	ActionSlowMode ActionKind = "slow_mode"
	ActionPurge    ActionKind = "purge"
)

// Action is one recorded moderation action. For a delete, the target is the message's
// author.
type Action struct {
	ID           string        `json:"id"`
	Action       ActionKind    `json:"action"`
	ActorID      string        `json:"actor_id"`
	ActorHandle  string        `json:"actor_handle,omitempty"`
	TargetID     string        `json:"target_id,omitempty"`
	TargetHandle string        `json:"target_handle,omitempty"`
	MessageID    string        `json:"message_id,omitempty"`
	Duration     time.Duration `json:"duration_ms,omitempty"` // timeout length, slow-mode interval or purge window; marshals as milliseconds
	Count        int           `json:"count,omitempty"`       // messages a purge deleted
	Reason       string        `json:"reason,omitempty"`
	At           time.Time     `json:"at"`
}

// Actions is what chat tells of the moderation actions that took effect (Config.Actions):
// cmd/onair records them in the audit trail and sends them to webhooks.
type Actions interface {
	// Moderated gets the context of the call that acted (who asked, from where) and must
	// return quickly.
	Moderated(ctx context.Context, room Room, actor User, a Action)
}

// Stats are counters for metrics. All but Sockets and Rooms only grow.
type Stats struct {
	Sockets int // open sockets
	Rooms   int // rooms with sockets or operations in flight on this node
	// MessagesReceived counts "message" frames from clients; MessagesStored the ones
	// accepted and stored; MessagesRejected the ones refused (validation, bans, limits,
	// storage unavailable).
	MessagesReceived uint64
	MessagesStored   uint64
	MessagesRejected uint64
	// MessagesSent counts frames queued to sockets; MessagesDropped the frames that could
	// not be queued because a socket was too slow (it is then closed, counted in SlowClosed).
	MessagesSent    uint64
	MessagesDropped uint64
	SlowClosed      uint64
	// EventsPublished counts events written to the shared event log, EventsReceived the
	// events of other nodes delivered here, TailRestarts the times the tail was reopened
	// and EventLogGaps the times it found it had fallen out of the event log.
	EventsPublished uint64
	EventsReceived  uint64
	TailRestarts    uint64
	EventLogGaps    uint64
}

// Hub is the chat service of one node. Build it with New, call EnsureIndexes once, run Run
// for the life of the process and hand websocket requests to ServeWS.
type Hub struct {
	cfg      Config
	log      *slog.Logger
	db       *mongo.Database
	eventDB  *mongo.Database
	messages *mongo.Collection
	events   *mongo.Collection
	modlog   *mongo.Collection
	bans     *mongo.Collection
	settings *mongo.Collection
	upgrader websocket.Upgrader

	w        *writer       // this node's messages, events and queued moderation log entries
	recheck  chan struct{} // asks for an admission pass now (admit.go)
	tailWake chan struct{} // a room came: the event log's tail may be needed (events.go)

	mu        sync.Mutex
	rooms     map[string]*room
	roomsGone time.Time      // when the last room went
	tailReady chan struct{}  // closed once the tail has a position in the event log
	viewers   map[string]int // by room slug: the last SetViewerCounts
	stopping  bool
	running   bool
	conns     sync.WaitGroup // sockets being served

	live    atomic.Bool // Run is running
	tailing atomic.Bool // the event log is being followed
	sockets atomic.Int64
	connSeq atomic.Uint64
	stats   counters
}

type counters struct {
	received, stored, rejected, sent, dropped, slowClosed atomic.Uint64
	published, remote, tailRestarts, gaps                 atomic.Uint64
	writes                                                atomic.Uint64 // messages written to sockets
}

// Collection names.
const (
	collMessages = "chat_messages"
	collEvents   = "chat_events"
	collModlog   = "chat_moderation"
	collBans     = "chat_bans"
	collSettings = "chat_settings"
)

// New builds a Hub. It does not touch MongoDB.
func New(cfg Config) (*Hub, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	h := &Hub{
		cfg:       cfg,
		log:       cfg.Logger.With("component", "chat", "node", cfg.NodeID),
		db:        cfg.DB,
		eventDB:   cfg.EventDB,
		messages:  cfg.DB.Collection(collMessages),
		events:    cfg.EventDB.Collection(collEvents),
		modlog:    cfg.DB.Collection(collModlog),
		bans:      cfg.DB.Collection(collBans),
		settings:  cfg.DB.Collection(collSettings),
		rooms:     make(map[string]*room),
		viewers:   make(map[string]int),
		recheck:   make(chan struct{}, 1),
		tailWake:  make(chan struct{}, 1),
		tailReady: make(chan struct{}),
	}
	h.upgrader = websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   1024,
		WriteBufferSize:  1024,
		WriteBufferPool:  &sync.Pool{},
		CheckOrigin:      cfg.CheckOrigin, // nil: gorilla's same-host check
	}
	h.w = newWriter(h)
	return h, nil
}

// NodeID is this hub's node name in the event log.
func (h *Hub) NodeID() string { return h.cfg.NodeID }

// Sockets is the number of open chat sockets on this node.
func (h *Hub) Sockets() int { return int(h.sockets.Load()) }

// Stats returns the hub's counters.
func (h *Hub) Stats() Stats {
	h.mu.Lock()
	rooms := len(h.rooms)
	h.mu.Unlock()
	s := &h.stats
	return Stats{
		Sockets:          h.Sockets(),
		Rooms:            rooms,
		MessagesReceived: s.received.Load(),
		MessagesStored:   s.stored.Load(),
		MessagesRejected: s.rejected.Load(),
		MessagesSent:     s.sent.Load(),
		MessagesDropped:  s.dropped.Load(),
		SlowClosed:       s.slowClosed.Load(),
		EventsPublished:  s.published.Load(),
		EventsReceived:   s.remote.Load(),
		TailRestarts:     s.tailRestarts.Load(),
		EventLogGaps:     s.gaps.Load(),
	}
}

// Run writes this node's messages and events, tails the shared event log and does
// housekeeping until ctx ends; then it closes every socket with code 1001 (going away),
// flushes what it can and returns nil. It must be called once, and be running for posts
// and System to be stored (until it runs they fail as unavailable).
func (h *Hub) Run(ctx context.Context) error {
	h.mu.Lock()
	if h.running {
		h.mu.Unlock()
		return errors.New("chat: Run called twice")
	}
	h.running = true
	h.mu.Unlock()
	h.log.Info("chat hub running")

	var wg sync.WaitGroup
	wg.Go(func() { h.pinger(ctx) })
	wg.Go(func() { h.tail(ctx) })
	wg.Go(func() { h.w.runMessages(ctx) })
	wg.Go(func() { h.w.runLanes(ctx) })
	wg.Go(func() { h.housekeeping(ctx) })
	wg.Go(func() { h.admissions(ctx) })
	h.live.Store(true)
	<-ctx.Done()

	h.live.Store(false)
	h.mu.Lock()
	h.stopping = true
	rooms := make([]*room, 0, len(h.rooms))
	for _, r := range h.rooms {
		rooms = append(rooms, r)
	}
	h.mu.Unlock()
	for _, r := range rooms {
		r.closeAll(websocket.CloseGoingAway, "server shutting down")
	}
	wg.Wait()
	done := make(chan struct{})
	go func() { h.conns.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		h.log.Warn("chat sockets still open after shutdown", "sockets", h.Sockets())
	}
	h.log.Info("chat hub stopped")
	return nil
}

// pinger pings every socket every PingInterval; a socket whose client does not answer
// (nor send anything) within PingInterval+PongTimeout is closed by its reader.
func (h *Hub) pinger(ctx context.Context) {
	tick := time.NewTicker(h.cfg.PingInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for _, r := range h.roomList() {
			r.mu.Lock()
			for _, c := range r.subs {
				c.queuePing()
			}
			r.mu.Unlock()
		}
	}
}

// housekeeping retries room loads that failed, refreshes room caches, forgets idle
// per-user limiter state and deletes expired timeouts.
func (h *Hub) housekeeping(ctx context.Context) {
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	lastPurge := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			for _, r := range h.roomList() {
				r.housekeeping(now)
			}
			if now.Sub(lastPurge) > time.Minute {
				lastPurge = now
				h.purgeExpiredTimeouts(ctx)
			}
		}
	}
}

func (h *Hub) roomList() []*room {
	h.mu.Lock()
	defer h.mu.Unlock()
	rooms := make([]*room, 0, len(h.rooms))
	for _, r := range h.rooms {
		rooms = append(rooms, r)
	}
	return rooms
}

// acquire returns the room's state on this node, creating it, and holds it until release.
func (h *Hub) acquire(info Room) *room {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.rooms[info.ID]
	if r == nil {
		r = newRoom(h, info)
		r.viewers = h.viewers[r.stream]
		h.rooms[info.ID] = r
		signal(h.tailWake)
	} else if info.Stream != "" {
		r.stream = info.Stream // renamed by a change of visibility
	}
	r.refs++
	return r
}

// hold takes another reference to a room held already.
func (h *Hub) hold(r *room) {
	h.mu.Lock()
	r.refs++
	h.mu.Unlock()
}

func (h *Hub) release(r *room) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r.refs--
	if r.refs == 0 && h.rooms[r.id] == r {
		delete(h.rooms, r.id)
		if len(h.rooms) == 0 {
			h.roomsGone = time.Now()
		}
	}
}

// lookup returns the room's state if this node has it.
func (h *Hub) lookup(id string) *room {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.rooms[id]
}

// SetViewerCounts sets the viewer count of every room, by stream name (Room.Stream; a
// room missing has none), and pushes a "viewers" frame to the sockets on this node of
// each room whose count changed. The counts are the whole cluster's, wherever the room is
// live.
func (h *Hub) SetViewerCounts(byStream map[string]int) {
	counts := make(map[string]int, len(byStream))
	for name, n := range byStream {
		if n > 0 {
			counts[name] = n
		}
	}
	type update struct {
		r *room
		n int
	}
	h.mu.Lock()
	h.viewers = counts
	updates := make([]update, 0, len(h.rooms))
	for _, r := range h.rooms {
		updates = append(updates, update{r, counts[r.stream]})
	}
	h.mu.Unlock()
	for _, u := range updates {
		u.r.setViewers(u.n)
	}
}

func (h *Hub) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, h.cfg.OpTimeout)
}

// unavailable is an error of op that a retry may not have: chat is stopping, a wait for
// MongoDB ran out, or other moderators kept changing what op depends on.
func unavailable(op string, err error) error {
	return fmt.Errorf("%w: %s: %w", ErrUnavailable, op, err)
}

// dbError is a MongoDB error of op: ErrUnavailable when MongoDB could not be reached in
// time (retry later), else the request MongoDB refused, which a retry does not change.
func dbError(op string, err error) error { return mongodb.Wrap(op, err, ErrUnavailable) }

package chat

import (
	"context"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// banState is a user's ban and timeout in a room.
type banState struct {
	banned bool
	until  time.Time // end of a timeout; zero if none
}

// room is a room's chat state on this node. It exists while sockets are joined or
// operations are in flight (refs, guarded by Hub.mu).
type room struct {
	h      *Hub
	id     string
	slug   string
	stream string // its viewer count's name, guarded by h.mu
	refs   int    // guarded by h.mu

	// mu guards everything below. Fan-out to the room's sockets happens under mu, which
	// makes a join (history snapshot plus subscription) atomic with respect to broadcasts;
	// a fan-out only queues frames, which never blocks.
	mu       sync.Mutex
	subs     []*conn
	loaded   bool          // bans, slowMode and recent reflect MongoDB plus later events
	loading  bool          // a load or refresh is in flight
	loadDone chan struct{} // closed when the load in flight ends
	loadErr  error         // of the last load
	replay   []func()      // state changes seen while loading, replayed on the snapshot
	lastLoad time.Time
	bans     map[string]banState
	slowMode time.Duration
	recent   []Message // last messages, oldest first, deleted ones removed
	trimmed  bool      // older messages than recent exist
	deleted  map[string]struct{}
	delRing  []string // deleted ids in order, to bound deleted
	users    map[string]*userState
	viewers  int
	histMsg  *outMsg // the history frame for joining sockets; nil when stale
	viewMsg  *outMsg // the viewers frame for joining sockets; nil when stale

	// Events broadcast within Config.FlushDelay of the first of them go to the sockets as
	// one batch message, when the delay is up or they reach batchBytes.
	pending      [][]byte    // the events' JSON, in order
	pendingBytes int         // their total length
	flushTimer   *time.Timer // ends the delay
	batchGoal    int         // pending events that go without waiting for the delay (pace)
	paceEvents   int         // events broadcast since paceSince
	paceSince    time.Time

	// seqMu orders this node's posts: ids and times are assigned in order and messages
	// are published (acked, broadcast, sent to the event log) in that order, whatever
	// order their inserts complete in.
	seqMu  sync.Mutex
	seqQ   []*seqEntry
	lastAt time.Time
}

type seqEntry struct {
	done    bool
	publish func() // nil: the insert failed, nothing to publish
}

const (
	deletedMemory = 512             // recently deleted ids remembered per room
	loadRetry     = 3 * time.Second // between attempts to load a room that failed to load
)

func newRoom(h *Hub, info Room) *room {
	if info.Stream == "" {
		info.Stream = info.Slug
	}
	return &room{
		h: h, id: info.ID, slug: info.Slug, stream: info.Stream,
		batchGoal: math.MaxInt, // until the room's pace is known
		bans:      make(map[string]banState),
		deleted:   make(map[string]struct{}),
		users:     make(map[string]*userState),
	}
}

// ensureLoaded loads the room's bans, slow mode and recent messages from MongoDB unless
// that is done; concurrent callers share one load.
func (r *room) ensureLoaded(ctx context.Context) error {
	r.mu.Lock()
	if r.loaded {
		r.mu.Unlock()
		return nil
	}
	if !r.loading {
		r.beginLoad()
		r.mu.Unlock()
		return r.runLoad()
	}
	ch := r.loadDone
	r.mu.Unlock()
	select {
	case <-ch:
	case <-ctx.Done():
		return unavailable("load room", ctx.Err())
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.loaded {
		return nil
	}
	return r.loadErr
}

// reload loads the room again in the background unless a load is in flight: the
// periodic refresh, the retry of a failed load, and the catch-up after a gap in the
// event log.
func (r *room) reload() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.loading {
		return
	}
	r.beginLoad()
	go func() { _ = r.runLoad() }()
}

// beginLoad marks a load in flight. Called with mu held.
func (r *room) beginLoad() {
	r.loading = true
	r.loadDone = make(chan struct{})
	r.replay = nil
}

// runLoad reads the room's state from MongoDB and installs it, replaying the changes
// observed meanwhile.
func (r *room) runLoad() error {
	ctx, cancel := context.WithTimeout(context.Background(), r.h.cfg.OpTimeout)
	var snap *snapshot
	err := r.h.awaitTail(ctx) // events after the snapshot must reach the room
	if err == nil {
		snap, err = r.h.loadSnapshot(ctx, r.id)
	}
	cancel()

	r.mu.Lock()
	defer r.mu.Unlock()
	r.loading = false
	close(r.loadDone)
	first := r.loadErr == nil
	r.loadErr = err
	r.lastLoad = time.Now()
	replay := r.replay
	r.replay = nil
	if err != nil {
		level := slog.LevelDebug
		if first {
			level = slog.LevelWarn
		}
		r.h.log.Log(context.Background(), level, "load room failed", "room", r.id, "slug", r.slug, "err", err)
		return err
	}
	wasLoaded := r.loaded
	r.bans = snap.bans
	r.slowMode = snap.slowMode
	r.recent = snap.recent
	r.trimmed = snap.trimmed
	r.loaded = true
	for _, fn := range replay {
		fn()
	}
	r.histMsg = nil
	if !wasLoaded {
		// Sockets that joined while the room could not be loaded get their history now.
		hist := r.history()
		for _, c := range r.subs {
			if c.needHistory {
				c.needHistory = false
				c.send(hist)
			}
		}
	}
	return nil
}

// mutate applies a state change now if the state is loaded, and again after a load in
// flight, whose snapshot may predate it. Changes must be idempotent. Called with mu held.
func (r *room) mutate(fn func()) {
	if r.loaded {
		fn()
	}
	if r.loading {
		r.replay = append(r.replay, fn)
	}
}

// housekeeping retries a failed load, refreshes the cache now and then, and forgets
// limiter state nobody needs any more.
func (r *room) housekeeping(now time.Time) {
	r.mu.Lock()
	subs := len(r.subs)
	needLoad := subs > 0 && !r.loading &&
		((!r.loaded && now.Sub(r.lastLoad) >= loadRetry) ||
			(r.loaded && r.h.cfg.CacheRefresh > 0 && now.Sub(r.lastLoad) >= r.h.cfg.CacheRefresh))
	keep := max(r.h.cfg.RatePer, r.slowMode)
	for id, u := range r.users {
		if now.Sub(u.last) > keep {
			delete(r.users, id)
		}
	}
	r.mu.Unlock()
	if needLoad {
		r.reload()
	}
}

// broadcast sends an event (its JSON frame) to every socket of the room: at once without
// Config.FlushDelay, else with the events that follow within the delay, in one message;
// sooner when they are as many as a batch holds at the room's pace (batchGoal).
// Called with mu held.
func (r *room) broadcast(ev []byte) {
	if len(r.subs) == 0 {
		return
	}
	r.pending = append(r.pending, ev)
	r.pendingBytes += len(ev)
	delay := r.h.cfg.FlushDelay
	if delay > 0 {
		r.pace(time.Now(), delay)
	}
	switch {
	case delay == 0 || r.pendingBytes >= batchBytes(r.h.cfg.SendQueueBytes) || len(r.pending) >= r.batchGoal:
		r.flush()
	case len(r.pending) > 1:
	case r.flushTimer == nil:
		r.flushTimer = time.AfterFunc(delay, r.flushLater)
	default:
		r.flushTimer.Reset(delay)
	}
}

// paceWindow is the span over which a room's pace is measured for batchGoal; within the
// current one, the pace over paceWindow/8 or more can raise the goal.
const paceWindow = time.Second

// pace counts an event and sets batchGoal from the room's pace: the events that a batch
// holds when they come evenly at that pace, one waiting FlushDelay for those that follow
// (one more than come in FlushDelay). Events that come in a bunch (a burst of posts, or
// posts held up together by a slow store) then go as soon as they are that many, rather
// than waiting out the delay, and the room still gets about as few messages per second
// as at an even pace. The pace is that of the last paceWindow, or of the current one
// when it is faster, so that a burst after a quiet spell soon raises the goal.
// Called with mu held.
func (r *room) pace(now time.Time, delay time.Duration) {
	if r.paceSince.IsZero() {
		r.paceSince = now
	}
	r.paceEvents++
	elapsed := now.Sub(r.paceSince)
	goal := func(span time.Duration) int {
		perDelay := float64(r.paceEvents) * float64(delay) / float64(max(span, delay))
		return max(2, int(math.Ceil(perDelay))+1)
	}
	switch {
	case elapsed >= paceWindow:
		r.batchGoal = goal(elapsed)
		r.paceEvents, r.paceSince = 0, now
	case r.batchGoal != math.MaxInt:
		r.batchGoal = max(r.batchGoal, goal(max(elapsed, paceWindow/8)))
	}
}

// batchBytes is about the most a batch message holds, so that one fits in every socket's
// queue with room to spare.
func batchBytes(sendQueueBytes int) int { return sendQueueBytes / 8 }

func (r *room) flushLater() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.flush()
}

// flush sends the pending events to the room's sockets: the event itself when there is
// one, else a batch. Called with mu held.
func (r *room) flush() {
	n := len(r.pending)
	if n == 0 {
		return
	}
	if r.flushTimer != nil {
		r.flushTimer.Stop()
	}
	f := r.pending[0]
	if n > 1 {
		f = batchPayload(r.pending)
	}
	clear(r.pending)
	r.pending, r.pendingBytes = r.pending[:0], 0
	m := prepare(f, n)
	sent := 0
	for _, c := range r.subs {
		if c.send(m) {
			sent += n
		}
	}
	r.h.stats.sent.Add(uint64(sent))
}

// publish applies a state change (nil for none; returning false suppresses the event)
// and broadcasts ev to the room's sockets, atomically with respect to joins.
func (r *room) publish(ev []byte, change func() bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if change != nil && !change() {
		return
	}
	r.broadcast(ev)
}

// addMessage puts m into the recent cache unless it is there or was deleted; false when
// it was deleted. Called with mu held.
func (r *room) addMessage(m Message) bool {
	if _, gone := r.deleted[m.ID]; gone {
		return false
	}
	r.mutate(func() {
		if _, gone := r.deleted[m.ID]; gone {
			return
		}
		if slices.ContainsFunc(r.recent, func(o Message) bool { return o.ID == m.ID }) {
			return // a change replayed on a snapshot that has it
		}
		r.recent = append(r.recent, m)
		if n := cacheSize(r.h.cfg.HistorySize); len(r.recent) > n {
			r.recent = slices.Delete(r.recent, 0, len(r.recent)-n)
			r.trimmed = true
		}
		r.histMsg = nil
	})
	return true
}

// deleteMessage removes a message from the cache and remembers that it is deleted.
// Called with mu held.
func (r *room) deleteMessage(id string) {
	if _, ok := r.deleted[id]; !ok {
		r.deleted[id] = struct{}{}
		r.delRing = append(r.delRing, id)
		if len(r.delRing) > deletedMemory {
			delete(r.deleted, r.delRing[0])
			r.delRing = slices.Delete(r.delRing, 0, 1)
		}
	}
	r.mutate(func() {
		i := slices.IndexFunc(r.recent, func(m Message) bool { return m.ID == id })
		if i < 0 {
			return
		}
		r.recent = slices.Delete(r.recent, i, i+1)
		r.histMsg = nil
		if r.trimmed && len(r.recent) < r.h.cfg.HistorySize && !r.loading {
			r.beginLoad() // fetch older messages to fill the history again
			go func() { _ = r.runLoad() }()
		}
	})
}

func (r *room) setBan(user string, banned bool, until time.Time, unban bool) {
	r.mutate(func() {
		switch {
		case unban:
			delete(r.bans, user)
		default:
			b := r.bans[user]
			if banned {
				b.banned = true
			}
			if !until.IsZero() {
				b.until = until
			}
			r.bans[user] = b
		}
	})
}

func (r *room) setSlowMode(d time.Duration) {
	r.mutate(func() {
		r.slowMode = d
		r.histMsg = nil
	})
}

// history is the history message for joining sockets. Called with mu held.
func (r *room) history() outMsg {
	if r.histMsg == nil {
		m := prepare(r.historyPayload(), 0)
		r.histMsg = &m
	}
	return *r.histMsg
}

// historyPayload is the history frame: the last HistorySize messages, fewer if they
// would make it larger than maxHistoryFrame. Called with mu held.
func (r *room) historyPayload() []byte {
	msgs := r.recent
	if n := r.h.cfg.HistorySize; len(msgs) > n {
		msgs = msgs[len(msgs)-n:]
	}
	if msgs == nil {
		msgs = []Message{}
	}
	f := historyFrame{Type: typeHistory, Messages: msgs, SlowModeMS: r.slowMode.Milliseconds()}
	limit := maxHistoryFrame(r.h.cfg.SendQueueBytes) - frameHeader
	b := marshal(f)
	if len(b) > limit {
		// Each message adds its own JSON and a comma: leave out the oldest until the
		// rest fits.
		over := len(b) - limit
		drop := 0
		for drop < len(msgs) && over > 0 {
			over -= len(marshal(msgs[drop])) + 1
			drop++
		}
		f.Messages = msgs[drop:]
		b = marshal(f)
	}
	return b
}

// maxHistoryFrame bounds the history frame, which every joining socket holds until it is
// written, to half of a socket's byte limit, leaving the rest for live frames.
func maxHistoryFrame(sendQueueBytes int) int { return sendQueueBytes / 2 }

// viewersMsg is the viewers message for joining sockets. Called with mu held.
func (r *room) viewersMsg() outMsg {
	if r.viewMsg == nil {
		m := prepare(marshal(viewersFrame{Type: typeViewers, Count: r.viewers}), 0)
		r.viewMsg = &m
	}
	return *r.viewMsg
}

func (r *room) setViewers(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.viewers == n {
		return
	}
	r.viewers = n
	r.viewMsg = nil
	r.broadcast(marshal(viewersFrame{Type: typeViewers, Count: n}))
}

// join subscribes c and queues its join frames: the history (or an error when the room
// could not be loaded) and the viewer count. Nothing broadcast after the history snapshot
// is missed, nothing in it is repeated.
func (r *room) join(c *conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.flush() // its events are in the history already
	if r.loaded {
		c.send(r.history())
	} else {
		c.needHistory = true
		c.sendFrame(errorMsg(codeUnavailable, "chat history is unavailable right now", "", 0))
	}
	c.send(r.viewersMsg())
	c.idx = len(r.subs)
	r.subs = append(r.subs, c)
}

func (r *room) leave(c *conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	i := c.idx
	if i < 0 || i >= len(r.subs) || r.subs[i] != c {
		return
	}
	last := len(r.subs) - 1
	r.subs[i] = r.subs[last]
	r.subs[i].idx = i
	r.subs[last] = nil
	r.subs = r.subs[:last]
	c.idx = -1
}

func (r *room) closeAll(code int, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.flush()
	for _, c := range r.subs {
		c.shutdown(code, reason)
	}
}

// seqReserve takes the next place in the room's publication order, with the message's
// id and time (both increasing in that order).
func (r *room) seqReserve() (e *seqEntry, id bson.ObjectID, at time.Time) {
	r.seqMu.Lock()
	defer r.seqMu.Unlock()
	at = time.Now().UTC().Truncate(time.Millisecond)
	if at.Before(r.lastAt) {
		at = r.lastAt
	}
	r.lastAt = at
	e = &seqEntry{}
	r.seqQ = append(r.seqQ, e)
	return e, bson.NewObjectID(), at
}

// seqComplete records the outcome of e (publish nil: failed) and publishes every
// completed entry at the head of the order.
func (r *room) seqComplete(e *seqEntry, publish func()) {
	r.seqMu.Lock()
	defer r.seqMu.Unlock()
	e.done, e.publish = true, publish
	n := 0
	for n < len(r.seqQ) && r.seqQ[n].done {
		if p := r.seqQ[n].publish; p != nil {
			p()
		}
		r.seqQ[n] = nil
		n++
	}
	r.seqQ = r.seqQ[n:]
	if len(r.seqQ) == 0 {
		r.seqQ = nil
	}
}

package chat

import (
	"context"
	"log/slog"
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

// userState is what rate limiting and slow mode remember of a user in a room.
type userState struct {
	posts []time.Time // accepted posts within RatePer, oldest first
	last  time.Time   // last accepted post, for slow mode
}

// dropBefore forgets the posts at or before cut: they no longer count.
func (u *userState) dropBefore(cut time.Time) {
	i := 0
	for i < len(u.posts) && !u.posts[i].After(cut) {
		i++
	}
	u.posts = slices.Delete(u.posts, 0, i)
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
	mu        sync.Mutex
	subs      []*conn
	loaded    bool          // bans, slowMode and recent reflect MongoDB plus later events
	loading   bool          // a load or refresh is in flight
	loadDone  chan struct{} // closed when the load in flight ends
	loadErr   error         // of the last load
	replay    []func()      // state changes seen while loading, replayed on the snapshot
	lastLoad  time.Time
	bans      map[string]banState
	slowMode  time.Duration
	recent    []Message // last messages, oldest first, deleted ones removed
	trimmed   bool      // older messages than recent exist
	deleted   map[string]struct{}
	delRing   []string // deleted ids in order, to bound deleted
	users     map[string]*userState
	viewers   int
	histFrame []byte // cached history frame, nil when stale
	viewFrame []byte // cached viewers frame, nil when stale

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
		bans:    make(map[string]banState),
		deleted: make(map[string]struct{}),
		users:   make(map[string]*userState),
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
	snap, err := r.h.loadSnapshot(ctx, r.id)
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
		r.h.log.Log(context.Background(), level, "chat: load room failed", "room", r.id, "slug", r.slug, "err", err)
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
	r.histFrame = nil
	if !wasLoaded {
		// Sockets that joined while the room could not be loaded get their history now.
		hist := r.historyFrameBytes()
		for _, c := range r.subs {
			if c.needHistory {
				c.needHistory = false
				c.enqueue(hist)
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

// fanout queues pm to every socket of the room without blocking. Called with mu held.
func (r *room) fanout(f []byte) {
	sent := 0
	for _, c := range r.subs {
		if c.enqueue(f) {
			sent++
		}
	}
	r.h.stats.sent.Add(uint64(sent))
}

// publish applies a state change (nil for none; returning false suppresses the frame)
// and broadcasts pm to the room's sockets, atomically with respect to joins.
func (r *room) publish(pm []byte, change func() bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if change != nil && !change() {
		return
	}
	r.fanout(pm)
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
		r.histFrame = nil
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
		r.histFrame = nil
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
		r.histFrame = nil
	})
}

// historyFrameBytes is the history frame for joining sockets: the last HistorySize
// messages, fewer if they would make it larger than maxHistoryFrame. Called with mu held.
func (r *room) historyFrameBytes() []byte {
	if r.histFrame == nil {
		msgs := r.recent
		if n := r.h.cfg.HistorySize; len(msgs) > n {
			msgs = msgs[len(msgs)-n:]
		}
		if msgs == nil {
			msgs = []Message{}
		}
		f := historyFrame{Type: typeHistory, Messages: msgs, SlowModeMS: r.slowMode.Milliseconds()}
		limit := maxHistoryFrame(r.h.cfg.SendQueueBytes)
		b := textFrame(marshal(f))
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
			b = textFrame(marshal(f))
		}
		r.histFrame = b
	}
	return r.histFrame
}

// maxHistoryFrame bounds the history frame, which every joining socket holds until it is
// written, to half of a socket's byte limit, leaving the rest for live frames.
func maxHistoryFrame(sendQueueBytes int) int { return sendQueueBytes / 2 }

// viewersFrameBytes is the viewers frame. Called with mu held.
func (r *room) viewersFrameBytes() []byte {
	if r.viewFrame == nil {
		r.viewFrame = textFrame(marshal(viewersFrame{Type: typeViewers, Count: r.viewers}))
	}
	return r.viewFrame
}

func (r *room) setViewers(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.viewers == n {
		return
	}
	r.viewers = n
	r.viewFrame = nil
	if len(r.subs) > 0 {
		r.fanout(r.viewersFrameBytes())
	}
}

// join subscribes c and queues its join frames: the history (or an error when the room
// could not be loaded) and the viewer count. Nothing broadcast after the history snapshot
// is missed, nothing in it is repeated.
func (r *room) join(c *conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.loaded {
		c.enqueue(r.historyFrameBytes())
	} else {
		c.needHistory = true
		c.enqueue(errorMsg(codeUnavailable, "chat history is unavailable right now", "", 0))
	}
	c.enqueue(r.viewersFrameBytes())
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
	for _, c := range r.subs {
		c.shutdown(code, reason)
	}
}

// verdict is the outcome of admit: an error code and how long until a retry may succeed.
type verdict struct {
	code  string
	msg   string
	retry time.Duration
}

// reservation undoes admit's bookkeeping when the post then fails.
type reservation struct {
	user     string
	at       time.Time
	prevLast time.Time
}

// admit checks bans, timeouts, slow mode and the rate limit for a post by user at now,
// and reserves the post's place in the limits.
func (r *room) admit(user string, privileged bool, now time.Time) (verdict, reservation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if b, ok := r.bans[user]; ok {
		if b.banned {
			return verdict{code: codeBanned, msg: "you are banned from this chat"}, reservation{}
		}
		if left := b.until.Sub(now); left > 0 {
			return verdict{code: codeTimedOut, msg: "you are timed out", retry: left}, reservation{}
		}
	}
	u := r.users[user]
	if u == nil {
		u = &userState{}
		r.users[user] = u
	}
	if r.slowMode > 0 && !privileged && !u.last.IsZero() {
		if left := r.slowMode - now.Sub(u.last); left > 0 {
			return verdict{code: codeSlowMode, msg: "slow mode is on", retry: left}, reservation{}
		}
	}
	cut := now.Add(-r.h.cfg.RatePer)
	u.dropBefore(cut)
	if len(u.posts) >= r.h.cfg.RateLimit {
		return verdict{code: codeRateLimited, msg: "you are sending messages too fast", retry: u.posts[0].Sub(cut)}, reservation{}
	}
	res := reservation{user: user, at: now, prevLast: u.last}
	u.posts = append(u.posts, now)
	u.last = now
	return verdict{}, res
}

// notePost counts a post that user made through another node at `at` (its clock; now if
// that is ahead of ours) in this node's rate limit and slow mode.
func (r *room) notePost(user string, at, now time.Time) {
	if at.IsZero() || at.After(now) {
		at = now
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if now.Sub(at) >= max(r.h.cfg.RatePer, r.slowMode) {
		return // too old to matter
	}
	u := r.users[user]
	if u == nil {
		u = &userState{}
		r.users[user] = u
	}
	// Posts out of the window go here too, or a user who posts only elsewhere would pile
	// them up.
	cut := now.Add(-r.h.cfg.RatePer)
	u.dropBefore(cut)
	if at.After(cut) {
		i, _ := slices.BinarySearchFunc(u.posts, at, func(p, t time.Time) int { return p.Compare(t) })
		u.posts = slices.Insert(u.posts, i, at)
	}
	if at.After(u.last) {
		u.last = at
	}
}

// unreserve undoes admit for a post that was not stored.
func (r *room) unreserve(res reservation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	u := r.users[res.user]
	if u == nil {
		return
	}
	if i := slices.Index(u.posts, res.at); i >= 0 {
		u.posts = slices.Delete(u.posts, i, i+1)
	}
	if u.last.Equal(res.at) {
		u.last = res.prevLast
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

package chat

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// writer writes this node's messages (one goroutine) and its events and queued moderation
// log entries (another), in batches, started by Run. One writer per kind and node means
// group commit under load and no write-write contention inside the node, which matters on
// FerretDB/SQLite (one write lock per database, busy-waiting writers). The two goroutines
// write to different databases (see Config.EventDB), so they do not contend either.
//
// Messages are requests: each gets its outcome (a callback, in order) and nothing is
// retried (a post is acknowledged only once stored; a failed one is refused). Events and log entries are queued, written in order
// and retried with backoff until stored; they carry their _id, so a retry after an
// unknown outcome skips what is stored already (duplicate key).
type writer struct {
	h        *Hub
	wakeMsgs chan struct{}
	wake     chan struct{} // lanes

	mu      sync.Mutex // never held across I/O
	msgs    []*insertReq
	stopped bool     // runMessages has returned: submissions fail at once
	lanes   [2]*lane // events, then moderation log entries
}

type insertReq struct {
	doc      messageDoc
	deadline time.Time       // not written after this; fails as unavailable instead
	done     func(err error) // called once by the writer goroutine with the outcome
	taken    bool            // guarded by writer.mu: being written, can no longer be withdrawn
}

// lane is a queue for one collection, written in order with retries: either documents
// (written with InsertMany), or items packed into one document per write (pack set),
// after lingering a little for more items to come.
type lane struct {
	coll *mongo.Collection
	what string
	max  int // queued items beyond this drop the oldest
	// maxBytes bounds the queue in bytes (itemSize) too: its items carry what clients
	// wrote (message text, reasons), and it grows while MongoDB refuses writes.
	maxBytes int
	bytes    int
	linger   time.Duration
	pack     func(items []any) any
	queue    []any
	since    time.Time // when the oldest queued item came
	packed   any       // the packed document being written, kept across retries (its _id too)
	npacked  int       // items in packed
	retryAt  time.Time // after a failure, no attempt before this
	backoff  time.Duration
	fails    int // consecutive refusals of the head document
}

const (
	writeBatch  = 256                   // documents per InsertMany, events per event document
	eventLinger = 50 * time.Millisecond // events wait this long for others to share their document

	// What the lanes may hold while MongoDB refuses their writes: seconds of a busy node's
	// events, whatever the length of its messages; more is dropped, oldest first, as the
	// other nodes' caches are reloaded every Config.CacheRefresh anyway.
	eventQueueBytes  = 16 << 20
	modlogQueueBytes = 4 << 20
	// itemOverhead is what a queued item costs besides its strings.
	itemOverhead = 128
)

// itemSize is what a queued lane item holds, in bytes.
func itemSize(item any) int {
	switch v := item.(type) {
	case event:
		return itemOverhead + len(v.Room) + len(v.Type) + len(v.Frame)
	case actionDoc:
		return itemOverhead + len(v.Room) + len(v.Action) + len(v.ActorID) + len(v.ActorHandle) +
			len(v.TargetID) + len(v.TargetHandle) + len(v.MessageID) + len(v.Reason) + len(v.Node)
	}
	return itemOverhead
}

// drop removes the first n items of l's queue. Called with writer.mu held.
func (l *lane) drop(n int) {
	for _, it := range l.queue[:n] {
		l.bytes -= itemSize(it)
	}
	clear(l.queue[:n])
	l.queue = l.queue[n:]
	if len(l.queue) == 0 {
		l.queue = nil
	}
}

func newWriter(h *Hub) *writer {
	return &writer{
		h:        h,
		wakeMsgs: make(chan struct{}, 1),
		wake:     make(chan struct{}, 1),
		lanes: [2]*lane{
			{coll: h.events, what: "event", max: 20000, maxBytes: eventQueueBytes, linger: eventLinger, pack: func(items []any) any {
				evs := make([]event, len(items))
				for i, it := range items {
					evs[i] = it.(event)
				}
				return eventDoc{ID: bson.NewObjectID(), Node: h.cfg.NodeID, Batch: marshal(evs)}
			}},
			{coll: h.modlog, what: "moderation log", max: 10000, maxBytes: modlogQueueBytes},
		},
	}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// submit queues a message for insertion; done gets the outcome, in the writer goroutine,
// in submission order. It does not block.
func (w *writer) submit(req *insertReq) {
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		req.done(unavailable("store message", errors.New("chat is shutting down")))
		return
	}
	w.msgs = append(w.msgs, req)
	w.mu.Unlock()
	signal(w.wakeMsgs)
}

// store inserts a message through the writer and waits for the outcome. A request still
// queued when ctx ends is withdrawn, so it can never be stored unacknowledged later.
func (w *writer) store(ctx context.Context, doc messageDoc) error {
	ch := make(chan error, 1)
	req := &insertReq{doc: doc, deadline: time.Now().Add(w.h.cfg.OpTimeout), done: func(err error) { ch <- err }}
	w.submit(req)
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
	}
	w.mu.Lock()
	if !req.taken {
		w.msgs = slices.DeleteFunc(w.msgs, func(r *insertReq) bool { return r == req })
		w.mu.Unlock()
		return unavailable("store message", ctx.Err())
	}
	w.mu.Unlock()
	return <-ch // the write in flight has its own deadline
}

// event queues an event for the other nodes.
func (w *writer) event(ev event) { w.add(w.lanes[0], ev) }

// action queues a moderation log entry whose direct write failed.
func (w *writer) action(doc actionDoc) { w.add(w.lanes[1], doc) }

func (w *writer) add(l *lane, item any) {
	size := itemSize(item)
	w.mu.Lock()
	dropped := 0
	for len(l.queue) > 0 && (len(l.queue) >= l.max || l.bytes+size > l.maxBytes) {
		l.drop(1)
		dropped++
	}
	if len(l.queue) == 0 {
		l.since = time.Now()
	}
	l.queue = append(l.queue, item)
	l.bytes += size
	w.mu.Unlock()
	if dropped > 0 {
		w.h.log.Warn("write queue full, dropping its oldest items", "queue", l.what, "dropped", dropped)
	}
	signal(w.wake)
}

// runMessages inserts waiting messages until ctx ends, then fails those still waiting.
func (w *writer) runMessages(ctx context.Context) {
	for {
		for w.writeMessages(ctx) {
		}
		select {
		case <-ctx.Done():
			w.mu.Lock()
			msgs := w.msgs
			w.msgs = nil
			w.stopped = true
			w.mu.Unlock()
			for _, req := range msgs {
				req.done(unavailable("store message", errors.New("chat is shutting down")))
			}
			return
		case <-w.wakeMsgs:
		}
	}
}

// runLanes writes the events and log entries until ctx ends, then tries for a moment to
// flush what is queued.
func (w *writer) runLanes(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for ctx.Err() == nil {
		next := w.writeLanes(ctx)
		wait := time.Hour
		if !next.IsZero() {
			wait = max(time.Until(next), time.Millisecond)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
		case <-w.wake:
		case <-timer.C:
		}
	}
	w.mu.Lock()
	for _, l := range w.lanes {
		l.retryAt, l.linger = time.Time{}, 0
	}
	w.mu.Unlock()
	flush, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	for _, l := range w.lanes {
		for flush.Err() == nil && w.writeLane(flush, l) {
		}
	}
}

// writeLanes writes everything due in the lanes. It returns when nothing more can be
// written now, with the time of the next retry (zero: nothing pending).
func (w *writer) writeLanes(ctx context.Context) time.Time {
	for ctx.Err() == nil {
		progress := false
		for _, l := range w.lanes {
			if w.writeLane(ctx, l) {
				progress = true
			}
		}
		if !progress {
			break
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	var next time.Time
	for _, l := range w.lanes {
		if len(l.queue) == 0 && l.packed == nil {
			continue
		}
		t := l.retryAt
		if l.packed == nil && len(l.queue) < writeBatch {
			t = later(t, l.since.Add(l.linger))
		}
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	return next
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// writeMessages inserts one batch of waiting messages; false when there were none.
func (w *writer) writeMessages(ctx context.Context) bool {
	w.mu.Lock()
	n := min(len(w.msgs), writeBatch)
	batch := slices.Clone(w.msgs[:n])
	for _, req := range batch {
		req.taken = true
	}
	w.msgs = slices.Delete(w.msgs, 0, n)
	w.mu.Unlock()
	if n == 0 {
		return false
	}
	// Requests that waited too long fail rather than be stored late; the rest of the
	// batch stays in order behind them.
	now := time.Now()
	late := 0
	for late < n && now.After(batch[late].deadline) {
		batch[late].done(unavailable("store message", context.DeadlineExceeded))
		late++
	}
	batch = batch[late:]
	n = len(batch)
	if n == 0 {
		return true
	}
	docs := make([]any, n)
	for i, req := range batch {
		docs[i] = req.doc
	}
	opCtx, cancel := w.h.opContext(ctx)
	_, err := w.h.messages.InsertMany(opCtx, docs, options.InsertMany().SetOrdered(true))
	cancel()
	stored := n
	if err != nil {
		stored = 0
		var bwe mongo.BulkWriteException
		if errors.As(err, &bwe) && len(bwe.WriteErrors) > 0 && bwe.WriteConcernError == nil {
			stored = bwe.WriteErrors[0].Index // an ordered insert stops at its first error
		}
	}
	for i, req := range batch {
		if i < stored {
			req.done(nil)
		} else {
			req.done(dbError("store message", err))
		}
	}
	return true
}

// writeLane makes one attempt at writing what is due in l: a batch of its documents, or
// its packed document; true when something was stored.
func (w *writer) writeLane(ctx context.Context, l *lane) bool {
	now := time.Now()
	w.mu.Lock()
	if now.Before(l.retryAt) {
		w.mu.Unlock()
		return false
	}
	var batch []any
	switch {
	case l.pack == nil:
		batch = slices.Clone(l.queue[:min(len(l.queue), writeBatch)])
	case l.packed != nil:
	case len(l.queue) == 0 || (len(l.queue) < writeBatch && now.Before(l.since.Add(l.linger))):
		// nothing yet, or lingering for more
	default:
		n := min(len(l.queue), writeBatch)
		l.packed, l.npacked = l.pack(l.queue[:n]), n
		l.drop(n)
		l.since = now
	}
	if l.packed != nil {
		batch = []any{l.packed}
	}
	w.mu.Unlock()
	if len(batch) == 0 {
		return false
	}

	opCtx, cancel := w.h.opContext(ctx)
	_, err := l.coll.InsertMany(opCtx, batch, options.InsertMany().SetOrdered(true))
	cancel()
	done := len(batch) // documents stored (or given up)
	if err != nil {
		done = 0
		var bwe mongo.BulkWriteException
		if errors.As(err, &bwe) && len(bwe.WriteErrors) > 0 && bwe.WriteConcernError == nil {
			we := bwe.WriteErrors[0]
			done = we.Index
			switch {
			case we.Code == 11000: // stored by an earlier attempt
				done++
				err = nil
			case l.fails >= 4: // the document itself is refused: give up on it
				w.h.log.Error("document refused, dropping it", "queue", l.what, "code", we.Code, "err", err)
				done++
				l.fails = 0
				err = nil
			default:
				l.fails++
			}
		}
	}
	w.mu.Lock()
	if l.packed != nil {
		if done > 0 {
			if l == w.lanes[0] {
				w.h.stats.published.Add(uint64(l.npacked))
			}
			l.packed, l.npacked = nil, 0
		}
	} else {
		l.drop(done)
	}
	if err == nil {
		l.backoff, l.retryAt = 0, time.Time{}
		if done > 0 {
			l.fails = 0
		}
	} else {
		l.backoff = min(max(2*l.backoff, 100*time.Millisecond), 3*time.Second)
		l.retryAt = time.Now().Add(l.backoff)
	}
	pending := len(l.queue)
	w.mu.Unlock()
	if err != nil && ctx.Err() == nil {
		w.h.log.Warn("write failed, will retry", "queue", l.what, "pending", pending, "retry_in", l.backoff, "err", err)
	}
	return done > 0
}

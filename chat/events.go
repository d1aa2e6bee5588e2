package chat

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Cross-node fan-out.
//
// Every node appends its events (messages, notices, deletions, moderation, slow mode) to
// the capped collection chat_events, in its publication order, from one goroutine
// (writer), in batches of about eventLinger (one document per batch). Every node follows
// the collection with a tailable awaitData cursor and delivers the events of other nodes
// to its own sockets; its own events reached them directly when they were published.
//
// Positions are the documents' $recordId (showRecordId), which increases in insertion
// order, the order a tailable cursor returns documents in. ObjectIDs are no position:
// those of different nodes are not ordered by insertion, so a filter {_id: {$gt: last}}
// would skip events of a node whose clock is behind. The tail remembers the $recordId of
// the last event it saw and ignores anything at or before it; that also absorbs FerretDB
// cursors that, after an await timeout in the middle of a scan, restart at an earlier
// document.
//
// Opening a cursor: insert a marker event (so that the filter matches a document, which
// FerretDB needs, and to learn the current end of the log), then find with batch size 1
// (FerretDB closes a tailable cursor whose first batch is not full) and raise the batch
// size for the getMores (FerretDB sleeps 10 ms per awaited batch: batches of one cap a tail
// at about 75 events/s). On the first open, or when the log has wrapped past the last event
// seen (a gap: events were lost to this node), the tail starts after the marker, i.e. from
// the newest event, rather than replaying a log it cannot keep up with; after a gap it
// reloads the cached state of its rooms from MongoDB. On errors (MongoDB restarting) it
// reopens with backoff and resumes after the last event seen.
//
// A node follows the log only while it has rooms (sockets, or operations in flight) and
// for Config.TailLinger after the last one went: an awaitData cursor costs the server
// work while it waits (FerretDB rescans the collection every 10 ms), and a node without
// rooms has nobody to deliver to and no cached state to keep current. The first room
// starts the tail again, from the end of the log; a room's first load waits until the
// tail has that position (tailReady), so that no event after its snapshot is missed.

const (
	tailAwait    = 2 * time.Second // maxAwaitTime of the tail's getMores
	tailBatch    = 128
	filterMargin = 5 * time.Minute // clock skew tolerated by the _id lower bound of a reopened cursor
)

type tailer struct {
	h        *Hub
	ready    bool      // the event log exists
	lastRID  int64     // $recordId of the last event seen; 0 before the first open
	lastTime time.Time // _id time of the last event seen
	moved    bool      // events were seen since the last (re)open
}

// errTailIdle ends a tail on a node without rooms.
var errTailIdle = errors.New("no rooms on this node")

// tail follows the event log while this node has rooms, until ctx ends.
func (h *Hub) tail(ctx context.Context) {
	t := &tailer{h: h}
	backoff := 100 * time.Millisecond
	failures := 0
	for {
		if !h.awaitRooms(ctx) {
			return
		}
		t.moved = false
		h.tailing.Store(true)
		err := t.follow(ctx)
		h.tailing.Store(false)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, errTailIdle) {
			t.lastRID = 0 // the next tail starts at the end of the log
			backoff, failures = 100*time.Millisecond, 0
			h.log.Debug("event log tail stopped", "reason", err)
			continue
		}
		h.stats.tailRestarts.Add(1)
		if t.moved {
			backoff, failures = 100*time.Millisecond, 0
		}
		failures++
		if failures <= 3 || failures%20 == 0 {
			h.log.Warn("event log tail interrupted, reopening", "err", err, "retry_in", backoff, "failures", failures)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// follow opens a tailable cursor and delivers events until it fails or ctx ends.
func (t *tailer) follow(ctx context.Context) error {
	h := t.h
	opCtx, cancel := h.opContext(ctx)
	defer cancel()
	if !t.ready {
		if err := h.ensureEventLog(opCtx); err != nil {
			return err
		}
		t.ready = true
	}

	marker := eventDoc{ID: bson.NewObjectID(), Node: h.cfg.NodeID}
	if _, err := h.events.InsertOne(opCtx, marker); err != nil {
		return dbError("insert event log marker", err)
	}
	markerRID, err := t.recordID(opCtx, bson.D{{Key: "_id", Value: marker.ID}}, nil)
	if err != nil {
		return err
	}
	switch {
	case t.lastRID == 0:
		t.lastRID, t.lastTime = markerRID, marker.ID.Timestamp() // start at the end
	case markerRID < t.lastRID: // positions went back: the collection was recreated
		h.log.Warn("event log was recreated; resuming from its end")
		t.gap(markerRID, marker)
	default:
		oldest, err := t.recordID(opCtx, bson.D{}, bson.D{{Key: "$natural", Value: 1}})
		if err != nil {
			return err
		}
		if oldest > t.lastRID {
			h.log.Warn("event log wrapped past the last event seen; resuming from its end",
				"last_seen", t.lastTime)
			t.gap(markerRID, marker)
		}
	}

	h.tailPositioned()

	from := t.lastTime.Add(-filterMargin)
	opts := options.Find().
		SetCursorType(options.TailableAwait).
		SetBatchSize(1).
		SetMaxAwaitTime(tailAwait).
		SetShowRecordID(true)
	cur, err := h.events.Find(opCtx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: bson.NewObjectIDFromTimestamp(from)}}}}, opts)
	if err != nil {
		return dbError("open event log cursor", err)
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		_ = cur.Close(closeCtx)
		cancel()
	}()
	cur.SetBatchSize(tailBatch)

	for {
		if h.tailIdle(time.Now()) {
			return errTailIdle
		}
		// TryNext does at most one getMore, which the server answers within tailAwait;
		// the deadline catches a connection that went silent.
		nextCtx, cancel := context.WithTimeout(ctx, tailAwait+h.cfg.OpTimeout)
		asked := time.Now()
		ok := cur.TryNext(nextCtx)
		cancel()
		if !ok {
			if err := cur.Err(); err != nil {
				return dbError("follow event log", err)
			}
			if cur.ID() == 0 {
				return errors.New("event log cursor closed by the server")
			}
			if time.Since(asked) < 5*time.Millisecond { // a server that does not await data
				select {
				case <-ctx.Done():
				case <-time.After(20 * time.Millisecond):
				}
			}
			continue
		}
		var doc tailedEvents
		if err := cur.Decode(&doc); err != nil {
			h.log.Warn("undecodable event log document", "err", err)
			continue
		}
		if doc.RecordID <= t.lastRID {
			continue // seen already
		}
		t.lastRID, t.lastTime, t.moved = doc.RecordID, doc.ID.Timestamp(), true
		if doc.Node == h.cfg.NodeID {
			continue // delivered locally when published
		}
		if len(doc.Batch) == 0 {
			continue // a marker
		}
		var evs []event
		if err := json.Unmarshal(doc.Batch, &evs); err != nil {
			h.log.Warn("undecodable event batch", "node", doc.Node, "err", err)
			continue
		}
		for i := range evs {
			h.applyRemote(&evs[i], doc.Node)
		}
	}
}

// awaitRooms waits until this node has a room; false when ctx ends first.
func (h *Hub) awaitRooms(ctx context.Context) bool {
	for {
		h.mu.Lock()
		n := len(h.rooms)
		h.mu.Unlock()
		if n > 0 {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-h.tailWake:
		}
	}
}

// tailIdle reports whether the tail may stop: this node has had no room for
// Config.TailLinger. It then re-arms tailReady, under the lock that guards the rooms, so
// that a room that comes after waits for the next tail's position.
func (h *Hub) tailIdle(now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.rooms) > 0 || now.Sub(h.roomsGone) < h.cfg.TailLinger {
		return false
	}
	h.tailReady = make(chan struct{})
	return true
}

// tailPositioned tells the rooms' loads waiting in awaitTail that the tail has a position.
func (h *Hub) tailPositioned() {
	h.mu.Lock()
	defer h.mu.Unlock()
	select {
	case <-h.tailReady:
	default:
		close(h.tailReady)
	}
}

// awaitTail waits until the tail has a position in the event log.
func (h *Hub) awaitTail(ctx context.Context) error {
	h.mu.Lock()
	ready := h.tailReady
	h.mu.Unlock()
	select {
	case <-ready:
		return nil
	default:
	}
	select {
	case <-ready:
		return nil
	case <-ctx.Done():
		return unavailable("follow the event log", ctx.Err())
	}
}

// gap resumes from the end of the log (the marker) and reloads the rooms' cached state,
// which may have missed events.
func (t *tailer) gap(markerRID int64, marker eventDoc) {
	t.h.stats.gaps.Add(1)
	t.lastRID, t.lastTime = markerRID, marker.ID.Timestamp()
	for _, r := range t.h.roomList() {
		r.mu.Lock()
		loaded := r.loaded
		r.mu.Unlock()
		if loaded {
			r.reload()
		}
	}
}

// recordID returns the $recordId of the first event matching filter in sort order.
func (t *tailer) recordID(ctx context.Context, filter, sort bson.D) (int64, error) {
	opts := options.FindOne().SetShowRecordID(true).SetProjection(bson.D{{Key: "_id", Value: 1}})
	if sort != nil {
		opts.SetSort(sort)
	}
	var doc struct {
		RecordID int64 `bson:"$recordId"`
	}
	if err := t.h.events.FindOne(ctx, filter, opts).Decode(&doc); err != nil {
		return 0, dbError("read event log position", err)
	}
	if doc.RecordID == 0 {
		return 0, errors.New("chat: the event log does not report $recordId")
	}
	return doc.RecordID, nil
}

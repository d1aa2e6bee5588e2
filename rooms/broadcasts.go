package rooms

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"onair/rooms/internal/cursor"
	"onair/rooms/mongodb"
)

// Broadcast is one live run of a room's stream, from the first media to the publisher
// leaving. Figures are final once Ended is set; while live, the heartbeat refreshes them
// every HeartbeatInterval.
type Broadcast struct {
	// ID is the broadcast's public id (playback.go), never its ObjectID: broadcasts of
	// rooms that are not public must not be found by enumerating ids.
	ID       string `json:"id"`
	RoomID   string `json:"room_id"`
	RoomSlug string `json:"room_slug"`
	// Title is the room's broadcast title (Room.BroadcastTitle) as the broadcast started,
	// followed while live and kept once ended; "" for broadcasts from before titles.
	Title string `json:"title"`
	// Stream is the name the room's stream had for this broadcast (StreamRoute.Name): its
	// slug, or its playback id when it was not public.
	Stream string `json:"-"`
	// RunID is the media stream's id (StreamStart.RunID), also in HLS playlist URLs.
	RunID string `json:"run_id"`
	// Node is the onair node that ingested it (its cluster id).
	Node    string     `json:"node"`
	Started time.Time  `json:"started"`
	Ended   *time.Time `json:"ended"` // nil while live
	// EndReason is "" for a publisher that left normally, else why it was ended.
	EndReason  string     `json:"end_reason,omitempty"`
	Codecs     Codecs     `json:"codecs"`
	Resolution Resolution `json:"resolution"`
	Bytes      int64      `json:"bytes"`
	DurationMS int64      `json:"duration_ms"`
	// Bitrate is the average in bits per second: Bytes over the wall-clock duration.
	Bitrate int64 `json:"bitrate"`
	// PeakViewers is the highest viewer estimate over all nodes; TotalViewers adds up every
	// rise of that estimate (viewers who joined), so it counts a viewer who left and came
	// back twice.
	PeakViewers  int `json:"peak_viewers"`
	TotalViewers int `json:"total_viewers"`
	// Recording is the recordings feature's sub-document, nil until it writes one.
	Recording *Recording `json:"recording,omitempty"`
	// Source is "upload" for a broadcast made from an uploaded video, "" for a live one.
	Source string `json:"source,omitempty"`
}

// Codecs names a broadcast's codecs ("" for a missing track).
type Codecs struct {
	Video string `json:"video" bson:"video"`
	Audio string `json:"audio" bson:"audio"`
}

// Resolution is the video's size in pixels (0 without video).
type Resolution struct {
	Width  int `json:"width" bson:"width"`
	Height int `json:"height" bson:"height"`
}

type broadcastDoc struct {
	ID           bson.ObjectID `bson:"_id"`
	RoomID       bson.ObjectID `bson:"room_id"`
	RoomSlug     string        `bson:"room_slug"`
	Title        string        `bson:"title,omitempty"`
	Stream       string        `bson:"stream,omitempty"` // absent before playback ids: the slug
	RunID        string        `bson:"run_id"`
	Node         string        `bson:"node"`
	Started      time.Time     `bson:"started"`
	Ended        *time.Time    `bson:"ended"` // null while live
	EndReason    string        `bson:"end_reason"`
	Heartbeat    time.Time     `bson:"heartbeat"`
	Codecs       Codecs        `bson:"codecs"`
	Resolution   Resolution    `bson:"resolution"`
	Bytes        int64         `bson:"bytes"`
	DurationMS   int64         `bson:"duration_ms"`
	Bitrate      int64         `bson:"bitrate"`
	PeakViewers  int           `bson:"peak_viewers"`
	TotalViewers int           `bson:"total_viewers"`
	Recording    *Recording    `bson:"recording,omitempty"`
	Source       string        `bson:"source,omitempty"`
}

// stream is the name the stream had: broadcasts written before playback ids have none,
// and their streams were named by slug.
func (d *broadcastDoc) stream() string {
	if d.Stream != "" {
		return d.Stream
	}
	return d.RoomSlug
}

// broadcastOf is the broadcast as this package returns it, with its public id.
func (s *Service) broadcastOf(d *broadcastDoc) Broadcast {
	var id string
	if k := s.pkeys(); k != nil {
		id = k.BroadcastID(d.ID)
	}
	return Broadcast{
		ID: id, RoomID: d.RoomID.Hex(), RoomSlug: d.RoomSlug, Title: d.Title, Stream: d.stream(), RunID: d.RunID, Node: d.Node,
		Started: d.Started, Ended: d.Ended, EndReason: d.EndReason, Codecs: d.Codecs, Resolution: d.Resolution,
		Bytes: d.Bytes, DurationMS: d.DurationMS, Bitrate: d.Bitrate,
		PeakViewers: d.PeakViewers, TotalViewers: d.TotalViewers, Recording: d.Recording, Source: d.Source,
	}
}

// liveBroadcast is a broadcast running on this node. Its goroutine (runBroadcast) is the
// only writer of its document.
type liveBroadcast struct {
	doc     broadcastDoc // owned by the goroutine
	stream  LiveStream
	keyHash string // the room's stream key when it went live, owned by the goroutine
	// retitle asks the goroutine to write the room's new title now (liveSet.retitle).
	retitle chan struct{}

	mu                   sync.Mutex
	viewers, peak, total int
	endedAt              time.Time // when the stream ended, zero while live
}

// watch notes when the stream ends, even while the writer is still retrying earlier
// writes, so that the broadcast ends at the right time and viewer estimates stop counting.
func (b *liveBroadcast) watch(now func() time.Time, live *liveSet) {
	<-b.stream.Done()
	b.mu.Lock()
	b.endedAt = now()
	b.mu.Unlock()
	live.remove(b)
}

func (b *liveBroadcast) ended() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.endedAt
}

func (b *liveBroadcast) setViewers(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n > b.viewers {
		b.total += n - b.viewers
	}
	b.viewers = n
	b.peak = max(b.peak, n)
}

func (b *liveBroadcast) figures() (viewers, peak, total int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.viewers, b.peak, b.total
}

// liveSet indexes this node's live broadcasts by stream name. It reads only their
// documents' ID, RoomID and Stream, which never change, while their goroutines write the rest.
type liveSet struct {
	mu       sync.Mutex
	byStream map[string]*liveBroadcast
}

func (l *liveSet) add(b *liveBroadcast) {
	l.mu.Lock()
	l.byStream[b.doc.Stream] = b // a newer run of the stream replaces the old one
	l.mu.Unlock()
}

func (l *liveSet) remove(b *liveBroadcast) {
	l.mu.Lock()
	if l.byStream[b.doc.Stream] == b {
		delete(l.byStream, b.doc.Stream)
	}
	l.mu.Unlock()
}

func (l *liveSet) has(id bson.ObjectID) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, b := range l.byStream {
		if b.doc.ID == id {
			return true
		}
	}
	return false
}

// viewers is the current estimate of the live broadcast id, if it runs here.
func (l *liveSet) viewers(id bson.ObjectID) (int, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, b := range l.byStream {
		if b.doc.ID == id {
			n, _, _ := b.figures()
			return n, true
		}
	}
	return 0, false
}

func (l *liveSet) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.byStream)
}

// StartBroadcast records the broadcast of a stream whose key ResolveKey resolved
// (cmd/onair calls it for every stream the media hub starts; a RoomID that is no room's
// id, e.g. a stream from the config file, is skipped). It returns at once: a goroutine
// writes the broadcast document and sets the room live, then, when the stream ends,
// writes the final figures and sets the room offline. Writes that MongoDB refuses are
// retried with backoff until they succeed or Run gives up at shutdown.
func (s *Service) StartBroadcast(st StreamStart, stream LiveStream) {
	roomID, err := bson.ObjectIDFromHex(st.RoomID)
	if err != nil {
		return
	}
	// The room's slug is read by the broadcast's goroutine: the stream is named by slug
	// only when the room is public.
	doc := broadcastDoc{
		ID: bson.NewObjectID(), RoomID: roomID, Stream: st.Name, RunID: st.RunID, Node: s.node(),
		Started: s.now(), Codecs: st.Codecs, Resolution: st.Resolution,
	}
	doc.Heartbeat = doc.Started
	b := &liveBroadcast{doc: doc, stream: stream, retitle: make(chan struct{}, 1)}
	s.live.add(b)
	s.writers.Add(1)
	go s.runBroadcast(b)
	go b.watch(s.now, &s.live)
}

func (s *Service) runBroadcast(b *liveBroadcast) {
	defer s.writers.Done()
	defer s.live.remove(b)
	d := &b.doc
	attrs := []any{"room_id", d.RoomID.Hex(), "stream", d.Stream, "broadcast_id", d.ID.Hex(), "run_id", d.RunID}
	log := s.log.With(attrs...)

	err := s.retry("broadcast: insert", attrs, func(ctx context.Context) error {
		if d.RoomSlug == "" {
			room, err := s.roomDoc(ctx, bson.D{{Key: "_id", Value: d.RoomID}}, "room of broadcast")
			switch {
			case errors.Is(err, ErrNotFound):
				d.RoomSlug = d.Stream // deleted meanwhile: the broadcast is history at once
			case err != nil:
				return err
			default:
				d.RoomSlug, d.Title = room.Slug, room.broadcastTitle()
			}
		}
		_, err := s.broadcasts.InsertOne(ctx, d)
		if mongodb.IsDup(err) { // an earlier attempt landed but its answer was lost
			return nil
		}
		return dbError("insert broadcast", err)
	})
	if err != nil {
		return
	}

	var room roomDoc
	announced := false
	err = s.retry("broadcast: set room live", attrs, func(ctx context.Context) error {
		viewers, _, _ := b.figures()
		r, err := s.updateRoomIf(ctx, d.RoomID,
			// Only a broadcast newer than the room's latest may set it live.
			bson.D{{Key: "live_started", Value: bson.D{{Key: "$lte", Value: d.Started}}}},
			bson.D{{Key: "$set", Value: bson.D{
				{Key: "live", Value: true}, {Key: "broadcast_id", Value: d.ID}, {Key: "live_started", Value: d.Started},
				{Key: "live_node", Value: d.Node}, {Key: "viewers", Value: viewers}, {Key: "activity", Value: d.Started},
			}}}, "set room live")
		if errors.Is(err, ErrNotFound) {
			return nil // the room was deleted, or a newer broadcast holds it
		}
		if err == nil {
			room, announced, b.keyHash = r, true, r.KeyHash
		}
		return err
	})
	if err != nil {
		return
	}
	if announced {
		log.Info("room live")
		if s.cfg.OnLive != nil {
			s.cfg.OnLive(s.room(&room), s.broadcastOf(d))
		}
	} else {
		log.Warn("room not set live: deleted, or a newer broadcast holds it")
	}

	viewersTick := time.NewTicker(s.cfg.ViewersInterval)
	defer viewersTick.Stop()
	heartbeat := time.NewTicker(s.cfg.HeartbeatInterval)
	defer heartbeat.Stop()
	persisted := -1
wait:
	for {
		select {
		case <-b.stream.Done():
			break wait
		case <-s.bg.Done():
			log.Warn("broadcast left open at shutdown")
			return
		case <-viewersTick.C:
			if n, err := s.clusterViewers(d.Stream); err == nil {
				b.setViewers(n)
			} else {
				log.Debug("viewers not summed", "err", err)
			}
			if n, _, _ := b.figures(); n != persisted && announced {
				if s.persistViewers(d, n) == nil {
					persisted = n
				}
			}
		case <-heartbeat.C:
			s.heartbeat(b, announced)
		case <-b.retitle:
			s.heartbeat(b, false)
		}
	}

	s.live.remove(b)
	ended := b.ended()
	if ended.IsZero() { // the watcher has not run yet
		ended = s.now()
	}
	s.finalFigures(b, ended)
	reason := b.stream.Err()
	if reason != nil {
		d.EndReason = reason.Error()
	}
	err = s.retry("broadcast: end", attrs, func(ctx context.Context) error {
		// The title it ends with is the room's now, even if changed since the last heartbeat.
		switch room, err := s.followRoom(ctx, d.RoomID); {
		case err == nil:
			d.Title = room.broadcastTitle()
		case !errors.Is(err, mongo.ErrNoDocuments):
			return dbError("read the title of the room of broadcast", err)
		}
		_, err := s.broadcasts.UpdateOne(ctx, bson.D{{Key: "_id", Value: d.ID}}, bson.D{{Key: "$set", Value: bson.D{
			{Key: "title", Value: d.Title}, {Key: "ended", Value: d.Ended}, {Key: "end_reason", Value: d.EndReason}, {Key: "heartbeat", Value: ended},
			{Key: "bytes", Value: d.Bytes}, {Key: "duration_ms", Value: d.DurationMS}, {Key: "bitrate", Value: d.Bitrate},
			{Key: "peak_viewers", Value: d.PeakViewers}, {Key: "total_viewers", Value: d.TotalViewers},
		}}})
		return dbError("end broadcast", err)
	})
	if err != nil {
		return
	}
	if !announced {
		return
	}
	offline := false
	err = s.retry("broadcast: set room offline", attrs, func(ctx context.Context) error {
		// Another node that took the stream over owns the room now, even before its own
		// broadcast has set it live.
		if elsewhere, err := s.heldElsewhere(ctx, d.Stream); err != nil || elsewhere {
			return err
		}
		r, err := s.setOffline(ctx, d.RoomID, d.ID, ended)
		if errors.Is(err, ErrNotFound) {
			return nil // deleted, or a newer broadcast holds the room: it did not go offline
		}
		if err == nil {
			room, offline = r, true
		}
		return err
	})
	if err != nil {
		return
	}
	if !offline {
		log.Info("broadcast ended; the room stays with a newer broadcast", "duration", time.Duration(d.DurationMS)*time.Millisecond,
			"reason", d.EndReason)
		return
	}
	log.Info("room offline", "duration", time.Duration(d.DurationMS)*time.Millisecond, "bytes", d.Bytes,
		"peak_viewers", d.PeakViewers, "reason", d.EndReason)
	if s.cfg.OnEnded != nil {
		s.cfg.OnEnded(s.room(&room), s.broadcastOf(d))
	}
}

// checkRoom stops the stream when its room (d, as followRoom read it with err) no longer
// lets it go on: the room was deleted, its stream key rotated, its visibility changed the
// stream's name, or its owner was disabled. Those requests reach any node, which stops the
// stream at once only when it runs there; on the node it runs on, these reads at every
// heartbeat do.
func (s *Service) checkRoom(ctx context.Context, b *liveBroadcast, d roomDoc, err error) {
	if s.cfg.Stopper == nil {
		return
	}
	var reason error
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		reason = errRoomDeleted
	case err != nil:
		return // unreachable: the next heartbeat looks again
	case d.KeyHash != b.keyHash:
		reason = errKeyRotated
	case s.room(&d).StreamName() != b.doc.Stream:
		reason = errVisibilityChanged
	default:
		if disabled, err := s.ownerDisabled(ctx, d.OwnerID); err != nil || !disabled {
			return
		}
		reason = errOwnerDisabled
	}
	if s.cfg.Stopper.Stop(b.doc.Stream, reason) {
		s.log.Info("live stream stopped", "room_id", b.doc.RoomID.Hex(), "reason", reason)
	}
}

// finalFigures fills the document's statistics from the stream and the viewer figures.
func (s *Service) finalFigures(b *liveBroadcast, ended time.Time) {
	d := &b.doc
	bytes := b.stream.Bytes()
	dur := ended.Sub(d.Started)
	d.Bytes = bytes
	d.DurationMS = dur.Milliseconds()
	if dur > 0 {
		d.Bitrate = int64(float64(bytes*8) / dur.Seconds())
	}
	_, d.PeakViewers, d.TotalViewers = b.figures()
	d.Ended = &ended
}

func (s *Service) setOffline(ctx context.Context, roomID, broadcastID bson.ObjectID, at time.Time) (roomDoc, error) {
	return s.updateRoomIf(ctx, roomID, bson.D{{Key: "broadcast_id", Value: broadcastID}},
		bson.D{{Key: "$set", Value: bson.D{
			{Key: "live", Value: false}, {Key: "broadcast_id", Value: nil}, {Key: "viewers", Value: 0}, {Key: "activity", Value: at},
		}}}, "set room offline")
}

// persistViewers writes the room's viewer count (one attempt; the next tick retries).
func (s *Service) persistViewers(d *broadcastDoc, n int) error {
	ctx, cancel := s.op(s.bg)
	defer cancel()
	_, err := s.updateRoomIf(ctx, d.RoomID, bson.D{{Key: "broadcast_id", Value: d.ID}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "viewers", Value: n}}}}, "write viewers")
	if err != nil && !errors.Is(err, ErrNotFound) {
		s.log.Debug("write viewers", "slug", d.RoomSlug, "err", err)
		return err
	}
	return nil
}

// heartbeat refreshes a live broadcast's figures, title and heartbeat (one attempt), and
// with check, checks that its room still lets it go on.
func (s *Service) heartbeat(b *liveBroadcast, check bool) {
	d := &b.doc
	rctx, rcancel := s.op(s.bg)
	defer rcancel()
	room, err := s.followRoom(rctx, d.RoomID)
	if err == nil {
		d.Title = room.broadcastTitle()
	}
	if check {
		s.checkRoom(rctx, b, room, err)
	}
	now := s.now()
	bytes := b.stream.Bytes()
	_, peak, total := b.figures()
	var bitrate int64
	if dur := now.Sub(d.Started); dur > 0 {
		bitrate = int64(float64(bytes*8) / dur.Seconds())
	}
	ctx, cancel := s.op(s.bg)
	defer cancel()
	_, err = s.broadcasts.UpdateOne(ctx, bson.D{{Key: "_id", Value: d.ID}, {Key: "ended", Value: nil}}, bson.D{{Key: "$set", Value: bson.D{
		{Key: "heartbeat", Value: now}, {Key: "title", Value: d.Title}, {Key: "bytes", Value: bytes}, {Key: "duration_ms", Value: now.Sub(d.Started).Milliseconds()},
		{Key: "bitrate", Value: bitrate}, {Key: "peak_viewers", Value: peak}, {Key: "total_viewers", Value: total},
	}}})
	if err != nil {
		s.log.Debug("broadcast heartbeat", "broadcast_id", d.ID.Hex(), "err", dbError("heartbeat", err))
	}
}

// GetBroadcast returns the broadcast with this public id (Broadcast.ID), whatever its
// room's visibility; callers check the room's Admit.
func (s *Service) GetBroadcast(ctx context.Context, id string) (Broadcast, error) {
	d, err := s.broadcastDoc(ctx, id)
	if err != nil {
		return Broadcast{}, err
	}
	return s.broadcastOf(&d), nil
}

func (s *Service) broadcastDoc(ctx context.Context, id string) (broadcastDoc, error) {
	var d broadcastDoc
	k, err := s.Playback(ctx)
	if err != nil {
		return d, err
	}
	oid, ok := k.broadcastOID(id)
	if !ok {
		return d, fmt.Errorf("broadcast %q: %w", id, ErrNotFound)
	}
	octx, cancel := s.op(ctx)
	defer cancel()
	err = s.broadcasts.FindOne(octx, bson.D{{Key: "_id", Value: oid}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return d, fmt.Errorf("broadcast %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return d, dbError("find broadcast", err)
	}
	return d, nil
}

// BroadcastQuery pages through a room's broadcasts.
type BroadcastQuery struct {
	Limit  int    // default 20, at most 100
	Cursor string // BroadcastPage.Next of the previous page
}

// BroadcastPage is one page of ListBroadcasts.
type BroadcastPage struct {
	Broadcasts []Broadcast `json:"broadcasts"`
	Next       string      `json:"next,omitempty"`
}

type broadcastCursor struct {
	Started time.Time     `json:"s"`
	ID      bson.ObjectID `json:"i"`
}

// ListBroadcasts lists the broadcasts of the room named ref (its slug or playback id),
// newest first (a live one included), whatever its visibility.
func (s *Service) ListBroadcasts(ctx context.Context, ref string, q BroadcastQuery) (BroadcastPage, error) {
	room, _, err := s.FindRoom(ctx, ref)
	if err != nil {
		return BroadcastPage{}, err
	}
	return s.RoomBroadcasts(ctx, room, q)
}

// RoomBroadcasts lists the room's broadcasts, newest first (a live one included).
func (s *Service) RoomBroadcasts(ctx context.Context, room Room, q BroadcastQuery) (BroadcastPage, error) {
	if _, err := s.Playback(ctx); err != nil {
		return BroadcastPage{}, err
	}
	roomID, err := bson.ObjectIDFromHex(room.ID)
	if err != nil {
		return BroadcastPage{}, fmt.Errorf("room %q: %w", room.ID, ErrNotFound)
	}
	filter := bson.D{{Key: "room_id", Value: roomID}}
	if q.Cursor != "" {
		c, err := decodeCursor[broadcastCursor](q.Cursor)
		if err != nil {
			return BroadcastPage{}, err
		}
		filter = append(filter, cursor.Older("started", c.Started, c.ID)...)
	}
	limit := cursor.Limit(q.Limit, 20, 100)
	octx, cancel := s.op(ctx)
	defer cancel()
	// Lists leave out the fragment index: replay reads it through GetBroadcast.
	cur, err := s.broadcasts.Find(octx, filter, options.Find().
		SetSort(bson.D{{Key: "started", Value: -1}, {Key: "_id", Value: -1}}).SetLimit(int64(limit+1)).
		SetProjection(bson.D{{Key: "recording.fragments", Value: 0}, {Key: "recording.segments", Value: 0}}))
	if err != nil {
		return BroadcastPage{}, dbError("list broadcasts", err)
	}
	var docs []broadcastDoc
	if err := cur.All(octx, &docs); err != nil {
		return BroadcastPage{}, dbError("list broadcasts", err)
	}
	var page BroadcastPage
	page.Broadcasts, page.Next = cursor.Page(docs, limit, s.broadcastOf,
		func(d *broadcastDoc) any { return broadcastCursor{Started: d.Started, ID: d.ID} })
	return page, nil
}

package rooms

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"onair/rooms/audit"
)

// ObjectStore is what rooms needs of object storage: removing recordings.
type ObjectStore interface {
	DeletePrefix(ctx context.Context, prefix string) error
}

// maxRetentionDays bounds a room's retention setting (ten years).
const maxRetentionDays = 3650

// Recording states.
const (
	RecordingReady   = "ready"
	RecordingExpired = "expired"
)

// ErrNotReady: the broadcast is still being written as ended; try again shortly.
var ErrNotReady = errors.New("broadcast not ended yet")

// Recording is a broadcast's recording: one fragmented MP4 object. It is written once the
// broadcast has ended, so that a broadcast document has one writer at a time (doc.go,
// The embedded database).
type Recording struct {
	Status      string `json:"status" bson:"status"`
	Key         string `json:"-" bson:"key"`
	Prefix      string `json:"-" bson:"prefix"`
	ContentType string `json:"content_type" bson:"content_type"`
	Size        int64  `json:"size" bson:"size"`
	// InitSize is the length of the init segment at the start of the object.
	InitSize   int64 `json:"-" bson:"init_size"`
	DurationMS int64 `json:"duration_ms" bson:"duration_ms"`
	// Segments index the object for replay without scanning it, one entry per segment
	// (1 to 2 s) in order, each starting where the one before ends (the first at
	// InitSize): a 24-hour broadcast's index is about 3 MB. Lists leave them out.
	Segments []RecordingSegment `json:"-" bson:"segments,omitempty"`
	// Fragments is the index of recordings made before Segments, with each one's offset.
	Fragments []RecordingFragment `json:"-" bson:"fragments,omitempty"`
	// Recovered is set when the recording was completed after a crash.
	Recovered bool      `json:"recovered,omitempty" bson:"recovered,omitempty"`
	Completed time.Time `json:"completed" bson:"completed"`
}

// RecordingSegment is one segment of a recording: its length in bytes and in time, and
// whether it starts with a key frame.
type RecordingSegment struct {
	Size     int64         `bson:"s"`
	Duration time.Duration `bson:"d"`
	Key      bool          `bson:"k"`
}

// RecordingFragment locates one fragment (moof+mdat) of a recording.
type RecordingFragment struct {
	Offset   int64         `bson:"o"`
	Size     int64         `bson:"s"`
	Start    time.Duration `bson:"t"`
	Duration time.Duration `bson:"d"`
	Key      bool          `bson:"k"`
}

// AttachRecording stores the recording of the broadcast with this stream run id once the
// broadcast has been written as ended (ErrNotReady until then): from then on nothing else
// writes the document, which keeps it to one writer at a time (doc.go). A
// recording recovered after a crash also moves the broadcast's end, set from the node's
// last heartbeat, to its last fragment, which is where the crash cut it. Attaching twice
// is harmless. The broadcast of a room deleted meanwhile is deleted instead, and
// ErrNotFound returned: its recording is to be deleted too.
func (s *Service) AttachRecording(ctx context.Context, runID string, rec Recording, endedAt time.Time) error {
	var d broadcastDoc
	octx, cancel := s.op(ctx)
	err := s.broadcasts.FindOne(octx, bson.D{{Key: "run_id", Value: runID}}).Decode(&d)
	cancel()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return fmt.Errorf("broadcast of run %s: %w", runID, ErrNotFound)
	}
	if err != nil {
		return dbError("find broadcast of run "+runID, err)
	}
	set := bson.D{{Key: "recording", Value: rec}}
	switch {
	case d.Ended == nil:
		return fmt.Errorf("attach recording to broadcast %s: %w", d.ID.Hex(), ErrNotReady)
	case s.roomShows(ctx, d.RoomID, d.ID):
		// Ended, but its room still shows it live: the end is announced (OnEnded, and
		// stream.ended before recording.ready) once the room is set offline.
		return fmt.Errorf("attach recording to broadcast %s: its room still shows it live: %w", d.ID.Hex(), ErrNotReady)
	case rec.Recovered:
		end := endedAt.UTC().Truncate(time.Millisecond)
		set = append(set, bson.E{Key: "ended", Value: end}, bson.E{Key: "end_reason", Value: "recovered after a crash"},
			bson.E{Key: "duration_ms", Value: end.Sub(d.Started).Milliseconds()})
	}
	octx, cancel = s.op(ctx)
	defer cancel()
	if _, err := s.broadcasts.UpdateOne(octx, bson.D{{Key: "_id", Value: d.ID}}, bson.D{{Key: "$set", Value: set}}); err != nil {
		return dbError("attach recording", err)
	}
	// An owner deleting the broadcast at this very moment races this write: check that the
	// recording stuck, and let the caller retry when it did not.
	var stored broadcastDoc
	if err := s.broadcasts.FindOne(octx, bson.D{{Key: "_id", Value: d.ID}},
		options.FindOne().SetProjection(bson.D{{Key: "recording.key", Value: 1}})).Decode(&stored); err != nil {
		return dbError("check attached recording", err)
	}
	if stored.Recording == nil || stored.Recording.Key != rec.Key {
		return fmt.Errorf("attach recording to broadcast %s: a concurrent update won: %w", d.ID.Hex(), ErrNotReady)
	}
	// A room deleted while it recorded (its owner's account with it) took its ended
	// broadcasts and recordings along, but not this one, which ended after: it goes now,
	// and the caller deletes the recording's object on ErrNotFound.
	if n, err := s.rooms.CountDocuments(octx, bson.D{{Key: "_id", Value: d.RoomID}}, options.Count().SetLimit(1)); err == nil && n == 0 {
		if _, err := s.broadcasts.DeleteOne(octx, bson.D{{Key: "_id", Value: d.ID}}); err != nil {
			return dbError("delete the broadcast of a deleted room", err)
		}
		s.log.Info("broadcast of a deleted room deleted with its recording", "broadcast_id", d.ID.Hex(), "room_id", d.RoomID.Hex())
		return fmt.Errorf("attach recording to broadcast %s: its room was deleted: %w", d.ID.Hex(), ErrNotFound)
	}
	s.log.Info("recording attached", "broadcast_id", d.ID.Hex(), "room_id", d.RoomID.Hex(), "bytes", rec.Size,
		"duration_ms", rec.DurationMS, "recovered", rec.Recovered)
	again := d.Recording != nil && d.Recording.Status == rec.Status && d.Recording.Key == rec.Key
	if s.cfg.OnRecording != nil && rec.Status == RecordingReady && !again {
		s.announceRecording(ctx, d, rec, set)
	}
	return nil
}

// roomShows reports whether the room shows the broadcast as its live one (true too while
// the room cannot be read: the caller retries).
func (s *Service) roomShows(ctx context.Context, roomID, broadcastID bson.ObjectID) bool {
	octx, cancel := s.op(ctx)
	defer cancel()
	n, err := s.rooms.CountDocuments(octx, bson.D{{Key: "_id", Value: roomID}, {Key: "broadcast_id", Value: broadcastID}}, options.Count().SetLimit(1))
	return err != nil || n > 0
}

// announceRecording calls OnRecording with the broadcast as just written. A room deleted
// meanwhile has nobody to tell; one that cannot be read now is described by what the
// broadcast knows of it (id and slug).
func (s *Service) announceRecording(ctx context.Context, d broadcastDoc, rec Recording, set bson.D) {
	room, err := s.RoomByID(ctx, d.RoomID.Hex())
	switch {
	case errors.Is(err, ErrNotFound):
		return
	case err != nil:
		s.log.Warn("recording ready: room not readable, announced without its title", "broadcast_id", d.ID.Hex(), "err", err)
		room = Room{ID: d.RoomID.Hex(), Slug: d.RoomSlug}
	}
	for _, e := range set {
		switch v := e.Value.(type) {
		case time.Time:
			if e.Key == "ended" {
				d.Ended = &v
			}
		case string:
			if e.Key == "end_reason" {
				d.EndReason = v
			}
		case int64:
			if e.Key == "duration_ms" {
				d.DurationMS = v
			}
		}
	}
	rec.Fragments, rec.Segments = nil, nil
	d.Recording = &rec
	if d.Title == "" { // a broadcast from before titles
		d.Title = room.Title
	}
	s.cfg.OnRecording(room, s.broadcastOf(&d))
}

// DeleteBroadcast deletes a past broadcast and its recording; only the room's owner or an
// admin may, and not while it is live.
func (s *Service) DeleteBroadcast(ctx context.Context, actor User, id string) error {
	d, b, room, err := s.editableBroadcast(ctx, actor, "delete", id)
	if err != nil {
		return err
	}
	if b.Ended == nil {
		return &ConflictError{Field: "broadcast", Message: "the broadcast is live; stop the stream first"}
	}
	if err := s.deleteRecording(ctx, b.Recording); err != nil {
		return err
	}
	octx, cancel := s.op(ctx)
	defer cancel()
	if _, err := s.broadcasts.DeleteOne(octx, bson.D{{Key: "_id", Value: d.ID}}); err != nil {
		return dbError("delete broadcast "+id, err)
	}
	s.log.Info("broadcast deleted", "broadcast_id", id, "room_id", b.RoomID, "by", actor.ID)
	details := map[string]any{"started": b.Started.UTC().Format(time.RFC3339Nano), "recording": b.Recording != nil}
	s.record(ctx, actor, audit.BroadcastDelete, &room, &audit.Target{Kind: audit.KindBroadcast, ID: id}, details)
	return nil
}

// editableBroadcast loads broadcast id and its room, and checks that actor may change it
// (the room's owner or an admin); op names the change in the error. The room of a
// broadcast whose room is gone is its id and slug alone, for the audit trail.
func (s *Service) editableBroadcast(ctx context.Context, actor User, op, id string) (broadcastDoc, Broadcast, Room, error) {
	d, err := s.broadcastDoc(ctx, id)
	if err != nil {
		return d, Broadcast{}, Room{}, err
	}
	b := s.broadcastOf(&d)
	room, err := s.RoomByID(ctx, b.RoomID)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return d, b, room, err
	}
	if !room.CanEdit(actor) && !actor.Admin {
		return d, b, room, fmt.Errorf("%s broadcast %s: %w", op, id, ErrForbidden)
	}
	if room.ID == "" {
		room = Room{ID: b.RoomID, Slug: b.RoomSlug}
	}
	return d, b, room, nil
}

// pastRetention gives the retention of a room's recordings and clips (overrides by room,
// else the server's; 0 keeps them forever) and whether something of it from at is past it.
func (s *Service) pastRetention(overrides map[bson.ObjectID]int, room bson.ObjectID, at, now time.Time) (days int, past bool) {
	days, ok := overrides[room]
	if !ok {
		days = s.cfg.RetentionDays
	}
	return days, days > 0 && !at.After(now.Add(-time.Duration(days)*24*time.Hour))
}

func (s *Service) deleteRecording(ctx context.Context, rec *Recording) error {
	if rec == nil || rec.Status != RecordingReady || rec.Prefix == "" {
		return nil
	}
	if s.cfg.Objects == nil {
		return fmt.Errorf("delete recording %s: no object storage configured", rec.Key)
	}
	if err := s.cfg.Objects.DeletePrefix(ctx, rec.Prefix); err != nil {
		return fmt.Errorf("delete recording %s: %w: %w", rec.Prefix, ErrUnavailable, err)
	}
	return nil
}

// ExpireRecordings deletes the recordings past their room's retention (or the default)
// and marks them expired; the broadcasts stay as history. It returns how many it deleted.
func (s *Service) ExpireRecordings(ctx context.Context) (int, error) {
	if err := s.forgetDeletedClips(ctx); err != nil {
		s.log.Warn("deleted clips not forgotten", "err", err)
	}
	if s.cfg.Objects == nil {
		return 0, nil
	}
	overrides := map[bson.ObjectID]int{}
	octx, cancel := s.op(ctx)
	cur, err := s.rooms.Find(octx, bson.D{{Key: "retention_days", Value: bson.D{{Key: "$gt", Value: 0}}}},
		options.Find().SetProjection(bson.D{{Key: "retention_days", Value: 1}}))
	if err == nil {
		var docs []roomDoc
		if err = cur.All(octx, &docs); err == nil {
			for _, d := range docs {
				overrides[d.ID] = d.Retention
			}
		}
	}
	cancel()
	if err != nil {
		return 0, dbError("read retention settings", err)
	}
	shortest := s.cfg.RetentionDays
	for _, days := range overrides {
		if shortest == 0 || days < shortest {
			shortest = days
		}
	}
	if shortest == 0 {
		return 0, nil // everything is kept forever
	}
	if n, err := s.expireClips(ctx, overrides, shortest); err != nil {
		s.log.Warn("expired clips not deleted", "err", err)
	} else if n > 0 {
		s.log.Info("deleted expired clips", "count", n)
	}
	now := s.now()
	cutoff := now.Add(-time.Duration(shortest) * 24 * time.Hour)
	octx, cancel = s.op(ctx)
	cur, err = s.broadcasts.Find(octx, bson.D{
		{Key: "recording.status", Value: RecordingReady},
		{Key: "ended", Value: bson.D{{Key: "$lt", Value: cutoff}}},
	}, options.Find().SetProjection(bson.D{{Key: "recording.fragments", Value: 0}, {Key: "recording.segments", Value: 0}}).SetLimit(500))
	var docs []broadcastDoc
	if err == nil {
		err = cur.All(octx, &docs)
	}
	cancel()
	if err != nil {
		return 0, dbError("find expired recordings", err)
	}
	n := 0
	for _, d := range docs {
		if d.Ended == nil {
			continue
		}
		days, past := s.pastRetention(overrides, d.RoomID, *d.Ended, now)
		if !past {
			continue
		}
		if err := s.deleteRecording(ctx, d.Recording); err != nil {
			return n, err
		}
		octx, cancel := s.op(ctx)
		_, err := s.broadcasts.UpdateOne(octx, bson.D{{Key: "_id", Value: d.ID}}, bson.D{
			{Key: "$set", Value: bson.D{{Key: "recording.status", Value: RecordingExpired}}},
			{Key: "$unset", Value: bson.D{{Key: "recording.fragments", Value: ""}, {Key: "recording.segments", Value: ""}}},
		})
		cancel()
		if err != nil {
			return n, dbError("mark recording expired", err)
		}
		n++
		s.log.Info("recording expired", "broadcast_id", d.ID.Hex(), "room_id", d.RoomID.Hex(), "retention_days", days)
	}
	return n, nil
}

// forgetRoom removes a deleted room's broadcasts and recordings. It runs after the room
// is gone, so failures are logged, not returned: the room's deletion stands. It is where
// a room's clips go too (their objects are in the room's folder): deleting an account
// deletes its rooms through here and promises its clips with them.
func (s *Service) forgetRoom(roomID bson.ObjectID) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if s.cfg.Objects != nil {
		if err := s.cfg.Objects.DeletePrefix(ctx, s.cfg.RecordingsPrefix+roomID.Hex()+"/"); err != nil {
			s.log.Error("recordings of a deleted room left in storage", "room_id", roomID.Hex(), "err", err)
		}
	}
	octx, cancel := s.op(ctx)
	defer cancel()
	if _, err := s.broadcasts.DeleteMany(octx, bson.D{{Key: "room_id", Value: roomID}, {Key: "ended", Value: bson.D{{Key: "$ne", Value: nil}}}}); err != nil {
		s.log.Error("broadcasts of a deleted room left in the database", "room_id", roomID.Hex(), "err", err)
	}
	if _, err := s.clips.DeleteMany(octx, bson.D{{Key: "room_id", Value: roomID}}); err != nil {
		s.log.Error("clips of a deleted room left in the database", "room_id", roomID.Hex(), "err", err)
	}
}

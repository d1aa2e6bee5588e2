package rooms

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"onair/rooms/internal/cursor"
)

// A clip is a few seconds of a broadcast, live or past, that a signed-in viewer cut: one
// fragmented MP4 object laid out like a recording (init, then segments end to end),
// stored in the room's recordings folder (<prefix><room id>/clips/<clip id>.mp4) so that
// a room's deletion, its retention and a bucket's lifecycle rule take its clips with its
// recordings. Its id is random and unguessable, like a broadcast's public id: a clip of a
// room that is not public is for whoever has its link and may watch the room.

// Bounds of a clip's length.
const (
	MinClipSeconds = 5
	MaxClipSeconds = 60
)

// MaxClipsPerHour bounds the clips one user makes in an hour, across every room and node.
const MaxClipsPerHour = 30

// clipIDBytes is the randomness of a clip's id (128 bits).
const clipIDBytes = 16

// ErrClipLimit: the user made MaxClipsPerHour clips in the last hour.
var ErrClipLimit = fmt.Errorf("%w: at most %d clips an hour", ErrRateLimited, MaxClipsPerHour)

// Clip is a clip as this package returns it.
type Clip struct {
	ID          string  `json:"id"`
	RoomID      string  `json:"room_id"`
	BroadcastID string  `json:"broadcast_id"`
	Title       string  `json:"title"`
	Maker       UserRef `json:"maker"`
	// StartMS is where the clip starts in its broadcast; DurationMS its length.
	StartMS    int64     `json:"start_ms"`
	DurationMS int64     `json:"duration_ms"`
	Created    time.Time `json:"created"`
	// Media is the clip's object and its index, for playback.
	Media Recording `json:"-"`
}

type clipDoc struct {
	ID          string        `bson:"_id"`
	RoomID      bson.ObjectID `bson:"room_id"`
	BroadcastID string        `bson:"broadcast_id"`
	Title       string        `bson:"title"`
	MakerID     string        `bson:"maker_id"`
	MakerHandle string        `bson:"maker_handle"`
	StartMS     int64         `bson:"start_ms"`
	DurationMS  int64         `bson:"duration_ms"`
	Created     time.Time     `bson:"created"`
	Media       Recording     `bson:"media"`
	// Deleted clips stay, without their object, until they no longer count towards their
	// maker's MaxClipsPerHour: deleting a clip does not make room for another.
	Deleted bool `bson:"deleted,omitempty"`
}

// notDeleted filters out deleted clips.
var notDeleted = bson.E{Key: "deleted", Value: bson.D{{Key: "$ne", Value: true}}}

func (d *clipDoc) clip() Clip {
	return Clip{ID: d.ID, RoomID: d.RoomID.Hex(), BroadcastID: d.BroadcastID, Title: d.Title,
		Maker: UserRef{ID: d.MakerID, Handle: d.MakerHandle}, StartMS: d.StartMS, DurationMS: d.DurationMS,
		Created: d.Created, Media: d.Media}
}

// ClipRequest asks for a clip of Seconds ending now (live) or at a replay's position.
type ClipRequest struct {
	Seconds int
	Title   string
}

// ClipMedia is what the caller's cut wrote: the object's index, and where the clip starts
// in its broadcast.
type ClipMedia struct {
	Media   Recording
	StartMS int64
}

// CheckClip validates a clip request: its seconds, and its title (optional, checked like
// a room's; the broadcast's title without one).
func CheckClip(in ClipRequest) (ClipRequest, error) {
	if in.Seconds < MinClipSeconds || in.Seconds > MaxClipSeconds {
		return in, invalid("seconds", "must be %d to %d, got %d", MinClipSeconds, MaxClipSeconds, in.Seconds)
	}
	t, err := cleanTitleField("title", in.Title, 0)
	if err != nil {
		return in, err
	}
	in.Title = t
	return in, nil
}

// CreateClip makes a clip of broadcast b of room, by u: it checks the request, that u may
// watch the room and has made fewer than MaxClipsPerHour clips in the last hour, then
// lets cut write the object at key and stores the clip. An object whose clip could not be
// stored is deleted.
func (s *Service) CreateClip(ctx context.Context, u User, room Room, b Broadcast, in ClipRequest,
	cut func(ctx context.Context, key string) (ClipMedia, error)) (Clip, error) {
	if u.ID == "" {
		return Clip{}, fmt.Errorf("clip: sign in first: %w", ErrUnauthorized)
	}
	in, err := CheckClip(in)
	if err != nil {
		return Clip{}, err
	}
	if err := room.Admit(u, ViaPlaybackID); err != nil {
		return Clip{}, err
	}
	roomID, err := bson.ObjectIDFromHex(room.ID)
	if err != nil {
		return Clip{}, fmt.Errorf("room %q: %w", room.ID, ErrNotFound)
	}
	now := s.now()
	octx, cancel := s.op(ctx)
	n, err := s.clips.CountDocuments(octx, bson.D{{Key: "maker_id", Value: u.ID}, {Key: "created", Value: bson.D{{Key: "$gt", Value: now.Add(-time.Hour)}}}},
		options.Count().SetLimit(MaxClipsPerHour))
	cancel()
	if err != nil {
		return Clip{}, dbError("count recent clips", err)
	}
	if n >= MaxClipsPerHour {
		return Clip{}, ErrClipLimit
	}
	d := clipDoc{ID: randomToken(clipIDBytes), RoomID: roomID, BroadcastID: b.ID, Title: in.Title,
		MakerID: u.ID, MakerHandle: u.Handle, Created: now}
	if d.Title == "" {
		d.Title = b.Title
		if room.Live && b.ID == room.BroadcastID {
			d.Title = room.BroadcastTitle()
		}
	}
	key := s.ClipKey(room.ID, d.ID)
	m, err := cut(ctx, key)
	if err != nil {
		return Clip{}, err
	}
	d.Media, d.StartMS, d.DurationMS = m.Media, m.StartMS, m.Media.DurationMS
	d.Media.Key, d.Media.Prefix, d.Media.Status = key, key, RecordingReady
	octx, cancel = s.op(ctx)
	_, err = s.clips.InsertOne(octx, d)
	cancel()
	if err != nil {
		s.deleteClipObject(d.Media.Key)
		return Clip{}, dbError("insert clip", err)
	}
	c := d.clip()
	s.log.Info("clip created", "clip_id", c.ID, "room_id", room.ID, "broadcast_id", b.ID, "maker", u.Handle, "duration_ms", c.DurationMS)
	if s.cfg.OnClip != nil {
		s.cfg.OnClip(room, c)
	}
	return c, nil
}

// ClipKey is where a clip's object lives: in its room's recordings folder, so that what
// removes the room's recordings removes its clips.
func (s *Service) ClipKey(roomID, clipID string) string {
	return s.cfg.RecordingsPrefix + roomID + "/clips/" + clipID + ".mp4"
}

// GetClip returns the clip with this id, whatever its room's visibility; callers check
// the room's Admit.
func (s *Service) GetClip(ctx context.Context, id string) (Clip, error) {
	if len(id) > 64 {
		return Clip{}, fmt.Errorf("clip %q: %w", id, ErrNotFound)
	}
	var d clipDoc
	octx, cancel := s.op(ctx)
	defer cancel()
	err := s.clips.FindOne(octx, bson.D{{Key: "_id", Value: id}, notDeleted}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return Clip{}, fmt.Errorf("clip %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return Clip{}, dbError("find clip", err)
	}
	return d.clip(), nil
}

// ClipPage is a page of a room's clips, newest first.
type ClipPage struct {
	Clips []Clip `json:"clips"`
	Next  string `json:"next,omitempty"`
}

// RoomClips lists a room's clips, newest first: limit (default 20, at most 100) from the
// cursor (the Next of the previous page). Callers check the room's Admit.
func (s *Service) RoomClips(ctx context.Context, room Room, limit int, cursorText string) (ClipPage, error) {
	roomID, err := bson.ObjectIDFromHex(room.ID)
	if err != nil {
		return ClipPage{}, fmt.Errorf("room %q: %w", room.ID, ErrNotFound)
	}
	filter := bson.D{{Key: "room_id", Value: roomID}, notDeleted}
	if cursorText != "" {
		c, err := decodeCursor[clipCursor](cursorText)
		if err != nil {
			return ClipPage{}, err
		}
		filter = append(filter, cursor.Older("created", c.Created, c.ID)...)
	}
	limit = cursor.Limit(limit, 20, 100)
	octx, cancel := s.op(ctx)
	defer cancel()
	cur, err := s.clips.Find(octx, filter, options.Find().SetSort(bson.D{{Key: "created", Value: -1}, {Key: "_id", Value: -1}}).
		SetLimit(int64(limit)+1).SetProjection(bson.D{{Key: "media.segments", Value: 0}}))
	var docs []clipDoc
	if err == nil {
		err = cur.All(octx, &docs)
	}
	if err != nil {
		return ClipPage{}, dbError("list clips", err)
	}
	var page ClipPage
	page.Clips, page.Next = cursor.Page(docs, limit, (*clipDoc).clip,
		func(d *clipDoc) any { return clipCursor{Created: d.Created, ID: d.ID} })
	return page, nil
}

// clipCursor is a position in a room's list of clips.
type clipCursor struct {
	Created time.Time `json:"c"`
	ID      string    `json:"i"`
}

// CanDeleteClip: its maker, and whoever moderates its room (owner, moderators, admins).
func CanDeleteClip(u User, room Room, c Clip) bool {
	return u.ID != "" && (u.ID == c.Maker.ID || room.CanModerate(u))
}

// DeleteClip deletes a clip and its object, if u may (CanDeleteClip).
func (s *Service) DeleteClip(ctx context.Context, u User, id string) error {
	c, err := s.GetClip(ctx, id)
	if err != nil {
		return err
	}
	room, err := s.RoomByID(ctx, c.RoomID)
	if err != nil {
		return err
	}
	if err := room.Admit(u, ViaPlaybackID); err != nil {
		return err
	}
	if !CanDeleteClip(u, room, c) {
		return fmt.Errorf("delete clip %s: only its maker and the room's moderators may: %w", id, ErrForbidden)
	}
	if s.cfg.Objects != nil {
		if err := s.cfg.Objects.DeletePrefix(ctx, c.Media.Key); err != nil {
			return fmt.Errorf("delete clip %s: %w: %w", c.Media.Key, ErrUnavailable, err)
		}
	}
	octx, cancel := s.op(ctx)
	defer cancel()
	if _, err := s.clips.UpdateOne(octx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: bson.D{{Key: "deleted", Value: true}}},
		{Key: "$unset", Value: bson.D{{Key: "media.segments", Value: ""}}}}); err != nil {
		return dbError("delete clip", err)
	}
	s.log.Info("clip deleted", "clip_id", id, "room_id", c.RoomID, "by", u.Handle)
	return nil
}

func (s *Service) deleteClipObject(key string) {
	if s.cfg.Objects == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.cfg.Objects.DeletePrefix(ctx, key); err != nil {
		s.log.Error("clip object left in storage", "key", key, "err", err)
	}
}

// forgetDeletedClips removes the deleted clips that no longer count towards a limit.
func (s *Service) forgetDeletedClips(ctx context.Context) error {
	octx, cancel := s.op(ctx)
	defer cancel()
	_, err := s.clips.DeleteMany(octx, bson.D{{Key: "deleted", Value: true}, {Key: "created", Value: bson.D{{Key: "$lt", Value: s.now().Add(-time.Hour)}}}})
	return dbError("forget deleted clips", err)
}

// expireClips deletes the clips older than their room's retention (overrides, by room;
// days the server's default), at most a batch at a time, and says how many.
func (s *Service) expireClips(ctx context.Context, overrides map[bson.ObjectID]int, shortest int) (int, error) {
	now := s.now()
	octx, cancel := s.op(ctx)
	cur, err := s.clips.Find(octx, bson.D{notDeleted, {Key: "created", Value: bson.D{{Key: "$lt", Value: now.Add(-time.Duration(shortest) * 24 * time.Hour)}}}},
		options.Find().SetProjection(bson.D{{Key: "media.segments", Value: 0}}).SetLimit(500))
	var docs []clipDoc
	if err == nil {
		err = cur.All(octx, &docs)
	}
	cancel()
	if err != nil {
		return 0, dbError("find expired clips", err)
	}
	n := 0
	for _, d := range docs {
		if _, past := s.pastRetention(overrides, d.RoomID, d.Created, now); !past {
			continue
		}
		if s.cfg.Objects != nil {
			if err := s.cfg.Objects.DeletePrefix(ctx, d.Media.Key); err != nil {
				return n, fmt.Errorf("delete expired clip %s: %w: %w", d.Media.Key, ErrUnavailable, err)
			}
		}
		octx, cancel := s.op(ctx)
		_, err := s.clips.DeleteOne(octx, bson.D{{Key: "_id", Value: d.ID}})
		cancel()
		if err != nil {
			return n, dbError("delete expired clip", err)
		}
		n++
	}
	return n, nil
}

// deleteMadeClips deletes the clips a user made, in every room: an account's deletion
// takes them along.
func (s *Service) deleteMadeClips(ctx context.Context, userID string) error {
	octx, cancel := s.op(ctx)
	cur, err := s.clips.Find(octx, bson.D{{Key: "maker_id", Value: userID}}, options.Find().SetProjection(bson.D{{Key: "media.key", Value: 1}}))
	var docs []clipDoc
	if err == nil {
		err = cur.All(octx, &docs)
	}
	cancel()
	if err != nil {
		return dbError("find the clips of user "+userID, err)
	}
	for _, d := range docs {
		if s.cfg.Objects != nil && d.Media.Key != "" {
			if err := s.cfg.Objects.DeletePrefix(ctx, d.Media.Key); err != nil {
				return fmt.Errorf("delete clip %s: %w: %w", d.Media.Key, ErrUnavailable, err)
			}
		}
	}
	octx, cancel = s.op(ctx)
	defer cancel()
	_, err = s.clips.DeleteMany(octx, bson.D{{Key: "maker_id", Value: userID}})
	return dbError("delete the clips of user "+userID, err)
}

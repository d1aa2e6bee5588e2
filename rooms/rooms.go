package rooms

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"onair/rooms/audit"
	"onair/rooms/mongodb"
)

// Visibility says who finds and watches a room (access.go): public rooms are listed and
// addressed by slug; unlisted ones are reachable by their playback id URL only; private
// ones too, and only by their owner, moderators, admins and invited viewers.
type Visibility string

// Visibilities.
const (
	Public   Visibility = "public"
	Unlisted Visibility = "unlisted"
	Private  Visibility = "private"
)

// UserRef names a user in a room: owner or moderator.
type UserRef struct {
	ID     string `json:"id"`
	Handle string `json:"handle"`
}

// Room is a channel: a stream name (its slug), a stream key, chat moderators.
type Room struct {
	ID    string `json:"id"`
	Slug  string `json:"slug"` // immutable: it is in public rooms' HLS and page URLs
	Title string `json:"title"`
	// StreamTitle is the title of the coming or current broadcast ("": the room's Title):
	// a broadcast takes it when it starts, follows it while live and keeps it once ended.
	StreamTitle string     `json:"stream_title"`
	Description string     `json:"description"`
	Visibility  Visibility `json:"visibility"`
	Owner       UserRef    `json:"owner"`
	Moderators  []UserRef  `json:"moderators"`
	// PlaybackID addresses the room in the URLs of an unlisted or private room; Invited are
	// the viewers of a private room besides its owner, moderators and admins. Both are left
	// out of JSON: web shows them to whom it may.
	PlaybackID string    `json:"-"`
	Invited    []UserRef `json:"-"`
	// Recording asks for every broadcast to be recorded (the stream's StreamRoute.Record).
	Recording bool `json:"recording"`
	// RetentionDays overrides Config.RetentionDays for this room's recordings (0: the default).
	RetentionDays int `json:"retention_days"`
	// MaxLadderKbps caps what OBS's multitrack video may send to this room, every track
	// and audio together, in kbit/s (0: the server's rtmp.max_ladder_kbps).
	MaxLadderKbps int       `json:"max_ladder_kbps"`
	Created       time.Time `json:"created"`
	Updated       time.Time `json:"updated"`
	// Activity is the latest of creation, edit, going live and going offline; lists sort by it.
	Activity time.Time `json:"activity"`

	Live bool `json:"live"`
	// BroadcastID and LiveSince describe the current broadcast while Live.
	BroadcastID string    `json:"broadcast_id,omitempty"`
	LiveSince   time.Time `json:"live_since,omitzero"`
	// Viewers is the current viewer estimate over all nodes: the live broadcast's latest
	// sum of the nodes' reports on the node it runs on, elsewhere the count last written
	// (at most about ViewersInterval old).
	Viewers int `json:"viewers"`
}

// IsOwner reports whether u owns the room.
func (r Room) IsOwner(u User) bool { return u.ID != "" && u.ID == r.Owner.ID }

// IsModerator reports whether u is one of the room's moderators.
func (r Room) IsModerator(u User) bool {
	for _, m := range r.Moderators {
		if u.ID != "" && m.ID == u.ID {
			return true
		}
	}
	return false
}

// CanEdit reports whether u may edit or delete the room, rotate its key and appoint
// moderators: its owner or an admin.
func (r Room) CanEdit(u User) bool { return r.IsOwner(u) || (u.ID != "" && u.Admin) }

// CanModerate reports whether u may moderate the room's chat: its owner, a moderator, or
// an admin.
func (r Room) CanModerate(u User) bool { return r.CanEdit(u) || r.IsModerator(u) }

// NewRoom is the input of CreateRoom.
type NewRoom struct {
	Slug        string
	Title       string
	Description string
	Visibility  Visibility // default Public
	Recording   *bool      // default true
}

// RoomUpdate changes the fields that are set; the slug cannot change.
type RoomUpdate struct {
	Title *string
	// StreamTitle: "" clears it (broadcasts then take the room's title).
	StreamTitle *string
	Description *string
	Visibility  *Visibility
	Recording   *bool
	// RetentionDays: 0 falls back to the server's default.
	RetentionDays *int
	// MaxLadderKbps: 0 falls back to the server's default.
	MaxLadderKbps *int
}

type userRefDoc struct {
	ID     bson.ObjectID `bson:"id"`
	Handle string        `bson:"handle"`
}

type roomDoc struct {
	ID          bson.ObjectID `bson:"_id"`
	Slug        string        `bson:"slug"`
	Title       string        `bson:"title"`
	StreamTitle string        `bson:"stream_title,omitempty"`
	Description string        `bson:"description"`
	Visibility  Visibility    `bson:"visibility"`
	OwnerID     bson.ObjectID `bson:"owner_id"`
	OwnerHandle string        `bson:"owner_handle"`
	Moderators  []userRefDoc  `bson:"moderators"`
	Invited     []userRefDoc  `bson:"invited,omitempty"`
	Recording   bool          `bson:"recording"`
	Retention   int           `bson:"retention_days"`
	MaxLadder   int           `bson:"max_ladder_kbps,omitempty"`
	KeyHash     string        `bson:"key_hash"` // hex SHA-256 of the stream key
	Created     time.Time     `bson:"created"`
	Updated     time.Time     `bson:"updated"`
	Activity    time.Time     `bson:"activity"`

	Live        bool           `bson:"live"`
	BroadcastID *bson.ObjectID `bson:"broadcast_id"` // null while offline
	// LiveStarted is the start of the latest broadcast that set the room live (the Unix
	// epoch before any): it only grows, so a delayed write of an older broadcast cannot
	// overwrite a newer one.
	LiveStarted time.Time `bson:"live_started"`
	LiveNode    string    `bson:"live_node"`
	Viewers     int       `bson:"viewers"`
}

func (s *Service) room(d *roomDoc) Room {
	r := Room{
		ID: d.ID.Hex(), Slug: d.Slug, Title: d.Title, StreamTitle: d.StreamTitle, Description: d.Description, Visibility: d.Visibility,
		Owner:      UserRef{ID: d.OwnerID.Hex(), Handle: d.OwnerHandle},
		Moderators: make([]UserRef, 0, len(d.Moderators)),
		Recording:  d.Recording, RetentionDays: d.Retention, MaxLadderKbps: d.MaxLadder, Created: d.Created, Updated: d.Updated, Activity: d.Activity,
		Live: d.Live, Viewers: d.Viewers,
	}
	for _, m := range d.Moderators {
		r.Moderators = append(r.Moderators, UserRef{ID: m.ID.Hex(), Handle: m.Handle})
	}
	for _, v := range d.Invited {
		r.Invited = append(r.Invited, UserRef{ID: v.ID.Hex(), Handle: v.Handle})
	}
	k := s.pkeys()
	if k != nil {
		r.PlaybackID = k.encode(d.ID, roomTag)
	}
	if d.Live && d.BroadcastID != nil && k != nil {
		r.BroadcastID = k.BroadcastID(*d.BroadcastID)
		r.LiveSince = d.LiveStarted
		if n, ok := s.live.viewers(*d.BroadcastID); ok {
			r.Viewers = n
		}
	}
	if !d.Live {
		r.Viewers = 0
	}
	return r
}

var slugRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{2,39}$`)

const (
	maxTitle       = 100
	maxDescription = 2000
	maxModerators  = 100
)

func validateSlug(slug string) error {
	if !slugRE.MatchString(slug) {
		return invalid("slug", "must be 3 to 40 characters: lowercase letters a-z, digits and -, not starting with -")
	}
	// Playback ids share URLs with slugs (/live/<name>/, API refs): no slug may look like one.
	if IsPlaybackID(slug) {
		return invalid("slug", "must not be 26 characters of a-z and 2-7 only (that is the shape of a playback id)")
	}
	return nil
}

func validVisibility(v Visibility) error {
	if v != Public && v != Unlisted && v != Private {
		return invalid("visibility", "must be %q, %q or %q", Public, Unlisted, Private)
	}
	return nil
}

// RoomChange is a room created or deleted (Config.OnRoomCreated, OnRoomDeleted).
type RoomChange struct {
	At    time.Time // when it took effect
	Actor User      // who made it
	Room  Room      // as created, or as it was when deleted
}

// CreateRoom creates a room owned by actor and returns it with its stream key: the only
// time the key is shown, besides RotateKey. The slug is lowercased. Errors: a
// *ValidationError, a *ConflictError on "slug", ErrUnauthorized for an anonymous actor,
// ErrUnavailable.
func (s *Service) CreateRoom(ctx context.Context, actor User, in NewRoom) (Room, string, error) {
	owner, err := bson.ObjectIDFromHex(actor.ID)
	if err != nil {
		return Room{}, "", fmt.Errorf("create room: %w", ErrUnauthorized)
	}
	slug := strings.ToLower(strings.TrimSpace(in.Slug))
	if err := validateSlug(slug); err != nil {
		return Room{}, "", err
	}
	if s.reserved(slug) {
		return Room{}, "", &ConflictError{Field: "slug", Message: "is already taken"}
	}
	title, err := cleanTitle(in.Title)
	if err != nil {
		return Room{}, "", err
	}
	desc, err := cleanDescription(in.Description)
	if err != nil {
		return Room{}, "", err
	}
	if in.Visibility == "" {
		in.Visibility = Public
	}
	if err := validVisibility(in.Visibility); err != nil {
		return Room{}, "", err
	}
	recording := true
	if in.Recording != nil {
		recording = *in.Recording
	}
	key := newStreamKey()
	now := s.now()
	d := roomDoc{
		ID: bson.NewObjectID(), Slug: slug, Title: title, Description: desc, Visibility: in.Visibility,
		OwnerID: owner, OwnerHandle: actor.Handle, Moderators: []userRefDoc{}, Recording: recording,
		KeyHash: keyHash(key), Created: now, Updated: now, Activity: now, LiveStarted: time.Unix(0, 0).UTC(),
	}
	octx, cancel := s.op(ctx)
	defer cancel()
	_, err = s.rooms.InsertOne(octx, d)
	if mongodb.IsDup(err) {
		return Room{}, "", &ConflictError{Field: "slug", Message: "is already taken"}
	}
	if err != nil {
		return Room{}, "", dbError("create room", err)
	}
	s.log.Info("room created", "room_id", d.ID.Hex(), "slug", slug, "owner_id", actor.ID, "key_id", KeyID(key))
	room := s.room(&d)
	s.record(ctx, actor, audit.RoomCreate, &room, nil, map[string]any{"visibility": string(d.Visibility), "recording": d.Recording})
	if s.cfg.OnRoomCreated != nil {
		s.cfg.OnRoomCreated(RoomChange{At: now, Actor: actor, Room: room})
	}
	return room, key, nil
}

// reserved reports whether slug is the name of a stream configured outside rooms.
func (s *Service) reserved(slug string) bool {
	return slices.Contains(s.cfg.ReservedSlugs, slug)
}

// GetRoom returns the room with this slug, whatever its visibility (see FindRoom and
// Room.Admit for requests on behalf of a user).
func (s *Service) GetRoom(ctx context.Context, slug string) (Room, error) {
	d, err := s.roomDoc(ctx, bson.D{{Key: "slug", Value: strings.ToLower(slug)}}, "room "+slug)
	if err != nil {
		return Room{}, err
	}
	return s.room(&d), nil
}

// RoomByID returns the room with this id.
func (s *Service) RoomByID(ctx context.Context, id string) (Room, error) {
	oid, err := bson.ObjectIDFromHex(id)
	if err != nil {
		return Room{}, fmt.Errorf("room %q: %w", id, ErrNotFound)
	}
	d, err := s.roomDoc(ctx, bson.D{{Key: "_id", Value: oid}}, "room "+id)
	if err != nil {
		return Room{}, err
	}
	return s.room(&d), nil
}

func (s *Service) roomDoc(ctx context.Context, filter bson.D, what string) (roomDoc, error) {
	var d roomDoc
	// Rooms are shown with their playback id: the keys are read once, before any room.
	if _, err := s.Playback(ctx); err != nil {
		return d, err
	}
	octx, cancel := s.op(ctx)
	defer cancel()
	err := s.rooms.FindOne(octx, filter).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return d, fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	if err != nil {
		return d, dbError("find "+what, err)
	}
	return d, nil
}

// editableRoom finds the room (ref: its slug or playback id) and checks that actor may
// edit it.
func (s *Service) editableRoom(ctx context.Context, actor User, slug, verb string) (roomDoc, error) {
	if actor.ID == "" {
		return roomDoc{}, fmt.Errorf("%s room %s: %w", verb, slug, ErrUnauthorized)
	}
	d, _, err := s.queryRoomDoc(ctx, slug) // an edit starts from the room as it is now
	if err != nil {
		return d, err
	}
	if !s.room(&d).CanEdit(actor) {
		return d, fmt.Errorf("%s room %s: only its owner or an admin may: %w", verb, slug, ErrForbidden)
	}
	return d, nil
}

// UpdateRoom changes a room's title, description, visibility or recording; only its
// owner or an admin may (ErrForbidden).
func (s *Service) UpdateRoom(ctx context.Context, actor User, slug string, in RoomUpdate) (Room, error) {
	set := bson.D{}
	if in.Title != nil {
		t, err := cleanTitle(*in.Title)
		if err != nil {
			return Room{}, err
		}
		set = append(set, bson.E{Key: "title", Value: t})
	}
	if in.StreamTitle != nil {
		t, err := cleanStreamTitle(*in.StreamTitle)
		if err != nil {
			return Room{}, err
		}
		set = append(set, bson.E{Key: "stream_title", Value: t})
	}
	if in.Description != nil {
		d, err := cleanDescription(*in.Description)
		if err != nil {
			return Room{}, err
		}
		set = append(set, bson.E{Key: "description", Value: d})
	}
	changed := func() map[string]any { // the new settings, for the audit trail
		m := map[string]any{}
		for _, e := range set {
			if v, ok := e.Value.(Visibility); ok {
				e.Value = string(v)
			}
			m[e.Key] = e.Value
		}
		return m
	}
	if in.Visibility != nil {
		if err := validVisibility(*in.Visibility); err != nil {
			return Room{}, err
		}
		set = append(set, bson.E{Key: "visibility", Value: *in.Visibility})
	}
	if in.Recording != nil {
		set = append(set, bson.E{Key: "recording", Value: *in.Recording})
	}
	if in.RetentionDays != nil {
		if n := *in.RetentionDays; n < 0 || n > maxRetentionDays {
			return Room{}, invalid("retention_days", "must be between 0 (server default) and %d, got %d", maxRetentionDays, n)
		}
		set = append(set, bson.E{Key: "retention_days", Value: *in.RetentionDays})
	}
	if in.MaxLadderKbps != nil {
		if n := *in.MaxLadderKbps; n < 0 || n > MaxLadderKbps {
			return Room{}, invalid("max_ladder_kbps", "must be between 0 (server default) and %d, got %d", MaxLadderKbps, n)
		}
		set = append(set, bson.E{Key: "max_ladder_kbps", Value: *in.MaxLadderKbps})
	}
	d, err := s.editableRoom(ctx, actor, slug, "update")
	if err != nil {
		return Room{}, err
	}
	if len(set) == 0 {
		return s.room(&d), nil
	}
	details := changed()
	now := s.now()
	set = append(set, bson.E{Key: "updated", Value: now}, bson.E{Key: "activity", Value: now})
	before := s.room(&d)
	d, err = s.updateRoom(ctx, d.ID, bson.D{{Key: "$set", Value: set}}, "update room "+slug)
	if err != nil {
		return Room{}, err
	}
	room := s.room(&d)
	if in.Recording != nil || in.MaxLadderKbps != nil || room.StreamName() != before.StreamName() {
		s.keys.evictRoom(d.ID.Hex()) // the key's route carries Record, MaxLadderKbps and the stream's name
	}
	if room.StreamName() != before.StreamName() {
		s.renameStream(before, room)
	}
	if room.BroadcastTitle() != before.BroadcastTitle() {
		s.live.retitle(d.ID) // its broadcast here writes the new title now, not at its next heartbeat
	}
	s.log.Info("room updated", "room_id", d.ID.Hex(), "slug", d.Slug, "by", actor.ID)
	s.record(ctx, actor, audit.RoomUpdate, &room, nil, details)
	return room, nil
}

// updateRoom applies update to one room document and returns it as written. This
// process's writes to one room are serialised, so that no update depends on concurrent
// updates of one document being atomic (doc.go, The embedded database).
func (s *Service) updateRoom(ctx context.Context, id bson.ObjectID, update bson.D, what string) (roomDoc, error) {
	return s.updateRoomIf(ctx, id, nil, update, what)
}

// updateRoomIf is updateRoom for a room that also matches cond; ErrNotFound otherwise.
func (s *Service) updateRoomIf(ctx context.Context, id bson.ObjectID, cond bson.D, update bson.D, what string) (roomDoc, error) {
	unlock := s.locks.lock(id.Hex())
	defer unlock()
	var d roomDoc
	octx, cancel := s.op(ctx)
	defer cancel()
	filter := append(bson.D{{Key: "_id", Value: id}}, cond...)
	err := s.rooms.FindOneAndUpdate(octx, filter, update,
		options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return d, fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	if err != nil {
		return d, dbError(what, err)
	}
	return d, nil
}

// DeleteRoom deletes a room; only its owner or an admin may (ErrForbidden). A live
// stream in it is stopped, and its key no longer resolves. Its broadcast documents are
// kept (recordings refer to them).
func (s *Service) DeleteRoom(ctx context.Context, actor User, slug string) error {
	d, err := s.editableRoom(ctx, actor, slug, "delete")
	if err != nil {
		return err
	}
	unlock := s.locks.lock(d.ID.Hex())
	octx, cancel := s.op(ctx)
	res, err := s.rooms.DeleteOne(octx, bson.D{{Key: "_id", Value: d.ID}})
	cancel()
	unlock()
	if err != nil {
		return dbError("delete room "+slug, err)
	}
	s.keys.evictRoom(d.ID.Hex())
	if res.DeletedCount == 0 {
		return fmt.Errorf("delete room %s: %w", slug, ErrNotFound)
	}
	room := s.room(&d)
	if s.cfg.Stopper != nil && s.cfg.Stopper.Stop(room.StreamName(), errRoomDeleted) {
		s.log.Info("live stream stopped: room deleted", "slug", d.Slug)
	}
	s.log.Info("room deleted", "room_id", d.ID.Hex(), "slug", d.Slug, "by", actor.ID)
	s.record(ctx, actor, audit.RoomDelete, &room, nil, map[string]any{
		"owner_id": room.Owner.ID, "owner_handle": room.Owner.Handle, "visibility": string(room.Visibility)})
	if s.cfg.OnRoomDeleted != nil {
		s.cfg.OnRoomDeleted(RoomChange{At: s.now(), Actor: actor, Room: room})
	}
	s.forgetRoom(d.ID)
	return nil
}

// AddModerator lets the user with this handle moderate the room's chat; only the room's
// owner or an admin may (ErrForbidden). Adding a moderator twice is not an error.
func (s *Service) AddModerator(ctx context.Context, actor User, slug, handle string) (Room, error) {
	return s.addMember(ctx, actor, slug, handle, moderators)
}

// RemoveModerator takes away a moderator (by handle); only the room's owner or an admin
// may. Removing someone who is not a moderator is not an error.
func (s *Service) RemoveModerator(ctx context.Context, actor User, slug, handle string) (Room, error) {
	return s.removeMember(ctx, actor, slug, handle, moderators)
}

// memberList is a list of users kept in a room's document: its moderators, or the
// viewers invited to it (access.go).
type memberList struct {
	field          string // in the room document
	max            int
	name           string // in messages: "moderators"
	added, removed string // audit actions
	verb           string // in logs: "moderator" added, removed
	of             func(*roomDoc) []userRefDoc
}

var moderators = memberList{field: "moderators", max: maxModerators, name: "moderators",
	added: audit.ModeratorAdd, removed: audit.ModeratorRemove, verb: "moderator",
	of: func(d *roomDoc) []userRefDoc { return d.Moderators }}

// addMember adds the user with this handle to the room's list; only the room's owner or
// an admin may (ErrForbidden). Adding someone twice is not an error.
func (s *Service) addMember(ctx context.Context, actor User, ref, handle string, l memberList) (Room, error) {
	d, err := s.editableRoom(ctx, actor, ref, "add to the "+l.name+" of")
	if err != nil {
		return Room{}, err
	}
	u, err := s.UserByHandle(ctx, handle)
	if errors.Is(err, ErrNotFound) {
		return Room{}, invalid("handle", "no user is called @%s", normalizeHandle(handle))
	}
	if err != nil {
		return Room{}, err
	}
	if u.ID == d.OwnerID.Hex() {
		return Room{}, invalid("handle", "@%s owns the room already", u.Handle)
	}
	members := l.of(&d)
	for _, m := range members {
		if m.ID.Hex() == u.ID {
			return s.room(&d), nil
		}
	}
	if len(members) >= l.max {
		return Room{}, invalid("handle", "a room has at most %d %s", l.max, l.name)
	}
	uid, _ := bson.ObjectIDFromHex(u.ID)
	d, err = s.updateRoom(ctx, d.ID, bson.D{
		{Key: "$addToSet", Value: bson.D{{Key: l.field, Value: userRefDoc{ID: uid, Handle: u.Handle}}}},
		{Key: "$set", Value: bson.D{{Key: "updated", Value: s.now()}}},
	}, "add to the "+l.name+" of "+d.Slug)
	if err != nil {
		return Room{}, err
	}
	s.log.Info(l.verb+" added", "room_id", d.ID.Hex(), "slug", d.Slug, "user_id", u.ID, "by", actor.ID)
	room := s.room(&d)
	s.record(ctx, actor, l.added, &room, userTarget(UserRef{ID: u.ID, Handle: u.Handle}), nil)
	return room, nil
}

// removeMember takes the user with this handle off the room's list; only the room's owner
// or an admin may. Removing someone who is not on it is not an error.
func (s *Service) removeMember(ctx context.Context, actor User, ref, handle string, l memberList) (Room, error) {
	d, err := s.editableRoom(ctx, actor, ref, "remove from the "+l.name+" of")
	if err != nil {
		return Room{}, err
	}
	handle = normalizeHandle(handle)
	for _, m := range l.of(&d) {
		if m.Handle != handle {
			continue
		}
		// $pull of the exact sub-document, not with a condition (doc.go).
		d, err = s.updateRoom(ctx, d.ID, bson.D{
			{Key: "$pull", Value: bson.D{{Key: l.field, Value: m}}},
			{Key: "$set", Value: bson.D{{Key: "updated", Value: s.now()}}},
		}, "remove from the "+l.name+" of "+d.Slug)
		if err != nil {
			return Room{}, err
		}
		s.log.Info(l.verb+" removed", "room_id", d.ID.Hex(), "slug", d.Slug, "user_id", m.ID.Hex(), "by", actor.ID)
		room := s.room(&d)
		s.record(ctx, actor, l.removed, &room, userTarget(UserRef{ID: m.ID.Hex(), Handle: m.Handle}), nil)
		break
	}
	return s.room(&d), nil
}

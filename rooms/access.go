package rooms

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"onair/rooms/audit"
)

// Who may watch a room, and under which address:
//
//   - Public rooms are listed and addressed by their slug: anyone watches.
//   - Unlisted rooms are addressed by their playback id only: anyone with the link
//     watches, and nobody finds them by slug.
//   - Private rooms are addressed by their playback id, and only their owner, moderators,
//     admins and the viewers the owner invited watch them, read and post in their chat,
//     and see their broadcasts. Their media needs a playback token (playback.go).
//
// The slug stays the owner's handle for a room in the API and the dashboard: its owner,
// moderators and admins may address any room by slug; for everyone else a room that is
// not public does not exist by slug.

// Via says how a request named a room.
type Via int

// Ways of naming a room.
const (
	ViaSlug Via = iota
	ViaPlaybackID
)

// maxInvited bounds a room's invited viewers (the list lives in the room's document).
const maxInvited = 500

// StreamName is the name of the room's media stream (StreamRoute.Name), which names its
// HLS URLs: the slug of a public room, the playback id of any other.
func (r Room) StreamName() string {
	if r.Visibility == Public {
		return r.Slug
	}
	return r.PlaybackID
}

// Ref is how the room is addressed in public URLs: its slug if it is public, its
// playback id otherwise.
func (r Room) Ref() string { return r.StreamName() }

// IsInvited reports whether u is one of the room's invited viewers.
func (r Room) IsInvited(u User) bool {
	for _, v := range r.Invited {
		if u.ID != "" && v.ID == u.ID {
			return true
		}
	}
	return false
}

// Admit decides whether u may watch the room (its page, media, chat and broadcasts) when
// the request named it via: nil, or an error wrapping ErrNotFound (the room does not
// exist for u under that name), ErrUnauthorized (private: sign in first) or ErrForbidden
// (private, and u is not invited). The zero User is anonymous.
func (r Room) Admit(u User, via Via) error {
	if via == ViaSlug && r.Visibility != Public && !r.CanModerate(u) {
		return fmt.Errorf("room %s: %w", r.Slug, ErrNotFound)
	}
	if r.Visibility != Private || r.CanModerate(u) || r.IsInvited(u) {
		return nil
	}
	if u.ID == "" {
		return fmt.Errorf("private room: %w", ErrUnauthorized)
	}
	return fmt.Errorf("private room, @%s is not invited: %w", u.Handle, ErrForbidden)
}

// FindRoom returns the room named by ref, a playback id or a slug, whatever its
// visibility, and how it was named; callers check Admit.
func (s *Service) FindRoom(ctx context.Context, ref string) (Room, Via, error) {
	d, via, err := s.findRoomDoc(ctx, ref)
	if err != nil {
		return Room{}, via, err
	}
	return s.room(&d), via, nil
}

// findRoomDoc finds a room by slug or playback id. Lookups of the same reference at the
// same moment share one query: when a crowd arrives at once (a popular stream going
// live, everyone's chat connecting), each request would otherwise hold its goroutine and
// its state while thousands of identical queries queue for the database's connections.
func (s *Service) findRoomDoc(ctx context.Context, ref string) (roomDoc, Via, error) {
	type found struct {
		d   roomDoc
		via Via
	}
	v, err, _ := s.lookups.Do(ref, func() (any, error) {
		// The query serves every caller waiting on it: none of them may cancel it.
		d, via, err := s.queryRoomDoc(context.WithoutCancel(ctx), ref)
		return found{d, via}, err
	})
	f := v.(found)
	return f.d, f.via, err
}

func (s *Service) queryRoomDoc(ctx context.Context, ref string) (roomDoc, Via, error) {
	k, err := s.Playback(ctx)
	if err != nil {
		return roomDoc{}, ViaSlug, err
	}
	if oid, ok := k.roomOID(ref); ok {
		d, err := s.roomDoc(ctx, bson.D{{Key: "_id", Value: oid}}, "room "+ref)
		return d, ViaPlaybackID, err
	}
	d, err := s.roomDoc(ctx, bson.D{{Key: "slug", Value: strings.ToLower(ref)}}, "room "+ref)
	return d, ViaSlug, err
}

// StreamAccess says what the media of the stream called name requires.
type StreamAccess struct {
	// Room is false for a name that is no room's stream (the config file's streams):
	// nothing is required.
	Room bool
	// Hidden: the name is the slug of a room that is not public, whose media is never
	// served under it (what the stream published before the room left public view).
	Hidden bool
	// PlaybackID is set for a private room: its media needs a token for this room.
	PlaybackID string
}

// StreamAccess looks up the room behind a stream name: a playback id or a public room's
// slug.
func (s *Service) StreamAccess(ctx context.Context, name string) (StreamAccess, error) {
	d, via, err := s.findRoomDoc(ctx, name)
	if errors.Is(err, ErrNotFound) {
		return StreamAccess{}, nil
	}
	if err != nil {
		return StreamAccess{}, err
	}
	r := s.room(&d)
	a := StreamAccess{Room: true}
	switch {
	case via == ViaSlug && r.Visibility != Public:
		a.Hidden = true
	case r.Visibility == Private:
		a.PlaybackID = r.PlaybackID
	}
	return a, nil
}

// Seat is a chat socket's user in a room, for Admitted; UserID "" is an anonymous reader.
type Seat struct {
	RoomID string
	UserID string
	Admin  bool
}

// Admitted reports, for each seat, whether its user may still be in the room (Admit by
// playback id): chat asks it now and then to close the sockets of viewers whose
// invitation was revoked, of rooms made private and of disabled accounts. A deleted room
// admits nobody. Two queries whatever the number of seats.
func (s *Service) Admitted(ctx context.Context, seats []Seat) ([]bool, error) {
	ids := bson.A{}
	seen := map[string]bool{}
	for _, st := range seats {
		if oid, err := bson.ObjectIDFromHex(st.RoomID); err == nil && !seen[st.RoomID] {
			seen[st.RoomID] = true
			ids = append(ids, oid)
		}
	}
	found := map[string]Room{}
	if len(ids) > 0 {
		octx, cancel := s.op(ctx)
		defer cancel()
		cur, err := s.rooms.Find(octx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}},
			options.Find().SetProjection(bson.D{{Key: "key_hash", Value: 0}}))
		if err != nil {
			return nil, dbError("read rooms for chat access", err)
		}
		var docs []roomDoc
		if err := cur.All(octx, &docs); err != nil {
			return nil, dbError("read rooms for chat access", err)
		}
		for i := range docs {
			found[docs[i].ID.Hex()] = s.room(&docs[i])
		}
	}
	// A disabled account leaves every chat it is in, whatever the room.
	var users []bson.ObjectID
	seenUser := map[string]bool{}
	for _, st := range seats {
		if oid, err := bson.ObjectIDFromHex(st.UserID); err == nil && !seenUser[st.UserID] {
			seenUser[st.UserID] = true
			users = append(users, oid)
		}
	}
	disabled, err := s.disabledAmong(ctx, users)
	if err != nil {
		return nil, err
	}
	out := make([]bool, len(seats))
	for i, st := range seats {
		r, ok := found[st.RoomID]
		uid, _ := bson.ObjectIDFromHex(st.UserID)
		out[i] = ok && r.Admit(User{ID: st.UserID, Admin: st.Admin}, ViaPlaybackID) == nil && (st.UserID == "" || !disabled[uid])
	}
	return out, nil
}

// invited are the viewers of a private room besides its owner, moderators and admins.
var invited = memberList{field: "invited", max: maxInvited, name: "invited viewers",
	added: audit.ViewerInvite, removed: audit.ViewerRevoke, verb: "invited viewer",
	of: func(d *roomDoc) []userRefDoc { return d.Invited }}

// InviteViewer lets the user with this handle watch the private room (ref: its slug or
// playback id); only its owner or an admin may. The list is kept whatever the room's
// visibility and counts while it is private. Inviting someone twice is not an error.
func (s *Service) InviteViewer(ctx context.Context, actor User, ref, handle string) (Room, error) {
	return s.addMember(ctx, actor, ref, handle, invited)
}

// RevokeViewer takes back an invitation (by handle); only the room's owner or an admin
// may. The viewer's playback tokens run out within CookieTokenTTL, and chat closes their
// sockets (Admitted). Revoking someone who is not invited is not an error.
func (s *Service) RevokeViewer(ctx context.Context, actor User, ref, handle string) (Room, error) {
	return s.removeMember(ctx, actor, ref, handle, invited)
}

// renameStream ends the live publish of a room whose stream name changed with its
// visibility (public to unlisted or private, or back): its HLS URLs carry the name, and
// the old ones must stop working at once. The key stays valid, so OBS reconnects by
// itself and publishes under the new name, as after a dropped connection. A publish on
// another node is ended by that node's broadcast heartbeat (checkStreamName).
func (s *Service) renameStream(before, after Room) {
	if s.cfg.Stopper != nil && s.cfg.Stopper.Stop(before.StreamName(), errVisibilityChanged) {
		s.log.Info("live stream stopped: the room's visibility changed its name", "room_id", after.ID,
			"visibility", string(after.Visibility))
	}
}

package web

import (
	"context"
	"errors"
	"net/http"

	"onair/rooms"
)

// Rooms are named in API paths ({slug}) by their slug or their playback id, and every
// request on behalf of a viewer goes through Room.Admit (rooms/access.go): a room that is
// not public does not exist by slug except for its owner, moderators and admins, and a
// private one admits only them and its invited viewers.

// viewerOf is the request's user, the zero User when anonymous.
func viewerOf(r *http.Request) rooms.User {
	if u := userOf(r); u != nil {
		return *u
	}
	return rooms.User{}
}

// admittedRoom resolves the room named by the {slug} path value and checks that the
// request's user may watch it; otherwise it answers (404, 401 or 403) and returns false.
func (s *Server) admittedRoom(w http.ResponseWriter, r *http.Request) (rooms.Room, bool) {
	room, via, err := s.cfg.Rooms.FindRoom(r.Context(), r.PathValue("slug"))
	if err == nil {
		err = s.admit(r, room, via)
	}
	if err != nil {
		s.fail(w, r, err)
		return rooms.Room{}, false
	}
	return room, true
}

// admit is room.Admit for the request's user, unavailable rather than unauthorized when
// the session could not be checked.
func (s *Server) admit(r *http.Request, room rooms.Room, via rooms.Via) error {
	err := room.Admit(viewerOf(r), via)
	if errors.Is(err, rooms.ErrUnauthorized) && authErrOf(r) != nil {
		return authErrOf(r)
	}
	return err
}

// roomURL is the page of a room: by slug while it is public, by playback id otherwise.
func roomURL(room rooms.Room) string {
	if room.Visibility == rooms.Public {
		return "/rooms/" + room.Slug
	}
	return "/watch/" + room.PlaybackID
}

// editedRoom is admittedRoom for those who may edit the room (its owner, an admin); it
// answers 401 or 403 with why to others.
func (s *Server) editedRoom(w http.ResponseWriter, r *http.Request, why string) (rooms.User, rooms.Room, bool) {
	u, ok := s.requireUser(w, r)
	if !ok {
		return u, rooms.Room{}, false
	}
	room, ok := s.admittedRoom(w, r)
	if !ok {
		return u, room, false
	}
	if !room.CanEdit(u) {
		writeAPIError(w, http.StatusForbidden, "forbidden", "", why)
		return u, room, false
	}
	return u, room, true
}

// listInvited answers GET /api/v1/rooms/{slug}/viewers: the invited viewers, for those
// who may edit the room.
func (s *Server) listInvited(w http.ResponseWriter, r *http.Request) {
	_, room, ok := s.editedRoom(w, r, "only the room's owner or an admin sees its invited viewers")
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, invitedList{append([]rooms.UserRef{}, room.Invited...)})
}

// invitedList is a private room's invited viewers.
type invitedList struct {
	Viewers []rooms.UserRef `json:"viewers"`
}

// inviteViewer answers POST /api/v1/rooms/{slug}/viewers {"handle"}: the room as its
// owner sees it.
func (s *Server) inviteViewer(w http.ResponseWriter, r *http.Request) {
	s.editMembers(w, r, s.cfg.Rooms.InviteViewer)
}

// revokeViewer answers DELETE /api/v1/rooms/{slug}/viewers/{handle}. The viewer's chat
// sockets on this node close at once, on the others within chat's admission interval;
// playback stops when the viewer's token runs out.
func (s *Server) revokeViewer(w http.ResponseWriter, r *http.Request) {
	s.editMembers(w, r, func(ctx context.Context, actor rooms.User, ref, handle string) (rooms.Room, error) {
		room, err := s.cfg.Rooms.RevokeViewer(ctx, actor, ref, handle)
		if err == nil {
			s.cfg.Chat.Recheck()
		}
		return room, err
	})
}

package web

import (
	"context"
	"net"
	"net/http"
	"strings"

	"onair/rooms"
)

// roomView is a room as the API shows it.
type roomView struct {
	rooms.Room
	// Ref names the room in URLs (its slug while public, its playback id otherwise), URL
	// is its page.
	Ref    string `json:"ref"`
	URL    string `json:"url"`
	HLSURL string `json:"hls_url"`
	// StartURL plays the live broadcast from its start; only while a recorded one is live.
	StartURL string `json:"start_url,omitempty"`
	// PlaybackID is shown for rooms that are not public, and to those who may edit any.
	PlaybackID string `json:"playback_id,omitempty"`
	// Invited are a private room's invited viewers; shown to those who may edit the room.
	Invited []rooms.UserRef `json:"invited,omitempty"`
	// RTMPURL is where the owner points OBS; shown to those who may edit the room.
	RTMPURL string `json:"rtmp_url,omitempty"`
	// RTMPSURL is the same over TLS, when onair offers it.
	RTMPSURL string `json:"rtmps_url,omitempty"`
	// OBSConfigURL is OBS's multitrack video configuration URL (POST /api/v1/obs/config),
	// and DefaultMaxLadderKbps the cap that applies while the room's max_ladder_kbps is 0;
	// both shown to those who may edit the room.
	OBSConfigURL         string `json:"obs_config_url,omitempty"`
	DefaultMaxLadderKbps int    `json:"default_max_ladder_kbps,omitempty"`
}

// roomView shows room to the request's user, who may see it (admittedRoom, or a list).
// A room that is not public hides its slug from all but those who may address it by slug.
func (s *Server) roomView(r *http.Request, room rooms.Room) roomView {
	u := viewerOf(r)
	v := roomView{Room: room, Ref: room.Ref(), URL: roomURL(room), HLSURL: "/live/" + room.StreamName() + "/index.m3u8",
		StartURL: s.startURL(room)}
	if room.Visibility != rooms.Public || room.CanEdit(u) {
		v.PlaybackID = room.PlaybackID
	}
	if room.Visibility != rooms.Public && !room.CanModerate(u) {
		v.Slug = ""
	}
	if room.CanEdit(u) {
		v.RTMPURL, v.RTMPSURL = s.rtmpURL(r), s.rtmpsURL(r)
		v.OBSConfigURL, v.DefaultMaxLadderKbps = s.ownOrigin(r)+obsConfigPath, s.maxLadderKbps()
		v.Invited = append([]rooms.UserRef{}, room.Invited...)
	}
	return v
}

// startURL is the playlist of room's live broadcast from its start, "" when it has none:
// offline, or not recorded (the recording is what keeps what left the DVR window).
func (s *Server) startURL(room rooms.Room) string {
	if !room.Live || !room.Recording || !s.cfg.FromStart {
		return ""
	}
	return "/live/" + room.StreamName() + "/start.m3u8"
}

// rtmpURL is the publish URL streamers paste into OBS's Server field.
func (s *Server) rtmpURL(r *http.Request) string {
	if s.cfg.RTMPURL != "" {
		return s.cfg.RTMPURL
	}
	return "rtmp://" + net.JoinHostPort(s.publicHost(r), s.cfg.RTMPPort) + "/" + s.cfg.RTMPApp
}

// rtmpsURL is the publish URL over TLS, "" when onair does not offer RTMPS.
func (s *Server) rtmpsURL(r *http.Request) string {
	if s.cfg.RTMPSURL != "" || s.cfg.RTMPSPort == "" {
		return s.cfg.RTMPSURL
	}
	return "rtmps://" + net.JoinHostPort(s.publicHost(r), s.cfg.RTMPSPort) + "/" + s.cfg.RTMPApp
}

// publicHost is the host name browsers reach onair by, without a port.
func (s *Server) publicHost(r *http.Request) string {
	if s.publicURL != nil {
		return s.publicURL.Hostname()
	}
	if h, _, err := net.SplitHostPort(r.Host); err == nil {
		return h
	}
	return r.Host
}

// roomList is a page of rooms.
type roomList struct {
	Rooms []roomView `json:"rooms"`
	Next  string     `json:"next,omitempty"`
}

// writeRooms answers a page of rooms as the request's user sees them.
func (s *Server) writeRooms(w http.ResponseWriter, r *http.Request, page rooms.RoomPage) {
	out := roomList{Rooms: make([]roomView, 0, len(page.Rooms)), Next: page.Next}
	for _, room := range page.Rooms {
		out.Rooms = append(out.Rooms, s.roomView(r, room))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) listRooms(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, ok := queryInt(w, r, "limit")
	if !ok {
		return
	}
	query := rooms.RoomQuery{Search: q.Get("q"), LiveOnly: q.Get("live") == "true", Limit: limit, Cursor: q.Get("cursor")}
	var viewer rooms.User
	if u := userOf(r); u != nil {
		viewer = *u
	}
	if q.Get("owner") == "me" {
		if _, ok := s.requireUser(w, r); !ok {
			return
		}
		query.OwnerID = viewer.ID
	}
	page, err := s.cfg.Rooms.ListRooms(r.Context(), viewer, query)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeRooms(w, r, page)
}

// createRoomRequest is POST /api/v1/rooms.
type createRoomRequest struct {
	Slug        string           `json:"slug"`
	Title       string           `json:"title"`
	Description string           `json:"description"`
	Visibility  rooms.Visibility `json:"visibility"`
	// Recording defaults to true.
	Recording *bool `json:"recording"`
}

// createRoomResponse carries the room's stream key: the only time it is shown.
type createRoomResponse struct {
	Room      roomView `json:"room"`
	StreamKey string   `json:"stream_key"`
}

// updateRoomRequest is PATCH /api/v1/rooms/{slug}: the fields to change.
type updateRoomRequest struct {
	Title *string `json:"title"`
	// StreamTitle is the coming or current broadcast's title; "" clears it (broadcasts
	// then take the room's title).
	StreamTitle   *string           `json:"stream_title"`
	Description   *string           `json:"description"`
	Visibility    *rooms.Visibility `json:"visibility"`
	Recording     *bool             `json:"recording"`
	RetentionDays *int              `json:"retention_days"`
	// MaxLadderKbps caps OBS's multitrack video for this room, kbit/s (0: the server's).
	MaxLadderKbps *int `json:"max_ladder_kbps"`
}

// streamKeyResponse carries a rotated stream key: the only time it is shown.
type streamKeyResponse struct {
	StreamKey string `json:"stream_key"`
	RTMPURL   string `json:"rtmp_url"`
	RTMPSURL  string `json:"rtmps_url,omitempty"`
}

// handleRequest names a user to add to one of a room's lists.
type handleRequest struct {
	Handle string `json:"handle"`
}

func (s *Server) createRoom(w http.ResponseWriter, r *http.Request) {
	u, ok := s.requireUser(w, r)
	if !ok {
		return
	}
	var in createRoomRequest
	if !decode(w, r, &in) {
		return
	}
	room, key, err := s.cfg.Rooms.CreateRoom(r.Context(), u, rooms.NewRoom{
		Slug: in.Slug, Title: in.Title, Description: in.Description, Visibility: in.Visibility, Recording: in.Recording,
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, createRoomResponse{s.roomView(r, room), key})
}

func (s *Server) getRoom(w http.ResponseWriter, r *http.Request) {
	room, ok := s.admittedRoom(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, s.roomView(r, room))
}

func (s *Server) updateRoom(w http.ResponseWriter, r *http.Request) {
	u, ok := s.requireUser(w, r)
	if !ok {
		return
	}
	var in updateRoomRequest
	if !decode(w, r, &in) {
		return
	}
	room, err := s.cfg.Rooms.UpdateRoom(r.Context(), u, r.PathValue("slug"), rooms.RoomUpdate{
		Title: in.Title, StreamTitle: in.StreamTitle, Description: in.Description, Visibility: in.Visibility, Recording: in.Recording, RetentionDays: in.RetentionDays,
		MaxLadderKbps: in.MaxLadderKbps,
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if in.Visibility != nil && *in.Visibility == rooms.Private {
		s.cfg.Chat.Recheck() // uninvited readers leave its chat
	}
	writeJSON(w, http.StatusOK, s.roomView(r, room))
}

func (s *Server) deleteRoom(w http.ResponseWriter, r *http.Request) {
	u, ok := s.requireUser(w, r)
	if !ok {
		return
	}
	if err := s.cfg.Rooms.DeleteRoom(r.Context(), u, r.PathValue("slug")); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) rotateKey(w http.ResponseWriter, r *http.Request) {
	u, ok := s.requireUser(w, r)
	if !ok {
		return
	}
	key, err := s.cfg.Rooms.RotateKey(r.Context(), u, r.PathValue("slug"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, streamKeyResponse{key, s.rtmpURL(r), s.rtmpsURL(r)})
}

// memberEdit changes one of a room's lists of users (moderators, invited viewers) with
// edit, for the handle in the JSON body (adding) or the {handle} path value (removing),
// and answers the room as its editor sees it.
type memberEdit func(ctx context.Context, actor rooms.User, ref, handle string) (rooms.Room, error)

func (s *Server) editMembers(w http.ResponseWriter, r *http.Request, edit memberEdit) {
	u, ok := s.requireUser(w, r)
	if !ok {
		return
	}
	handle := r.PathValue("handle")
	if r.Method == http.MethodPost {
		var in handleRequest
		if !decode(w, r, &in) {
			return
		}
		handle = strings.TrimPrefix(in.Handle, "@")
	}
	room, err := edit(r.Context(), u, r.PathValue("slug"), handle)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.roomView(r, room))
}

func (s *Server) addModerator(w http.ResponseWriter, r *http.Request) {
	s.editMembers(w, r, s.cfg.Rooms.AddModerator)
}

func (s *Server) removeModerator(w http.ResponseWriter, r *http.Request) {
	s.editMembers(w, r, s.cfg.Rooms.RemoveModerator)
}

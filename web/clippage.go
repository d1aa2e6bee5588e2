package web

import (
	"errors"
	"net/http"
	"time"

	"onair/rooms"
)

type clipData struct {
	Clip        rooms.Clip
	Room        rooms.Room
	RoomURL     string
	Private     bool // the page gets a playback cookie before it plays
	PlaylistURL string
	CanDelete   bool
}

// clipPage is /clips/<id>: the clip, playing at once, with its room's access rules.
func (s *Server) clipPage(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Rooms == nil {
		s.notFoundPage(w, r)
		return
	}
	c, err := s.cfg.Rooms.GetClip(r.Context(), r.PathValue("id"))
	var room rooms.Room
	if err == nil {
		room, err = s.cfg.Rooms.RoomByID(r.Context(), c.RoomID)
	}
	if err == nil {
		err = room.Admit(viewerOf(r), rooms.ViaPlaybackID)
	}
	if err != nil {
		if errors.Is(err, rooms.ErrInvalid) {
			err = rooms.ErrNotFound
		}
		s.pageError(w, r, "clip", err)
		return
	}
	v := s.clipView(r, room, c)
	d := clipData{Clip: c, Room: room, RoomURL: roomURL(room), Private: room.Visibility == rooms.Private,
		PlaylistURL: v.PlaylistURL, CanDelete: v.CanDelete}
	s.renderWith(w, r, http.StatusOK, "clip", pageData{Title: c.Title + " · clip", Page: "clip", Script: "player.js", Data: d, OG: s.clipOG(r, room, c)},
		s.mediaOrigin(r.Context()))
}

// clipOG describes a public room's clip; others get the generic card (no title leaks).
func (s *Server) clipOG(r *http.Request, room rooms.Room, c rooms.Clip) *ogMeta {
	path := "/clips/" + c.ID
	if room.Visibility != rooms.Public {
		return s.genericOG(r, path)
	}
	desc := "Clip of " + room.Title + " (@" + room.Owner.Handle + ") by @" + c.Maker.Handle + ", " +
		clock(time.Duration(c.DurationMS)*time.Millisecond) + " long"
	return &ogMeta{Title: c.Title + " · clip", Description: desc, URL: s.ownOrigin(r) + path, Type: "video.other"}
}

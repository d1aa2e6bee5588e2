package web

import (
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"onair/rooms"
)

// Open Graph and Twitter card tags make a shared link show the room's title and whether it
// is live. They are in the HTML the server sends: the crawlers of chat apps and social
// sites run no script. Rooms that are not public get generic tags: their link may be
// unfurled for people who may not watch, and the crawler, anonymous, would be turned away
// anyway. No tag names an image: rooms have no thumbnail.

// ogMeta is a page's Open Graph tags.
type ogMeta struct {
	Title, Description, URL, Type string
}

// genericOG says no more than that the link is to onair.
func (s *Server) genericOG(r *http.Request, path string) *ogMeta {
	return &ogMeta{Title: "A room on onair", Description: "Watch on onair.", URL: s.ownOrigin(r) + path, Type: "website"}
}

func (s *Server) roomOG(r *http.Request, room rooms.Room) *ogMeta {
	if room.Visibility != rooms.Public {
		return s.genericOG(r, roomURL(room))
	}
	state := "Offline"
	if room.Live {
		state = "Live now"
	}
	desc := state + " · @" + room.Owner.Handle
	if room.StreamTitle != "" { // the title of the broadcast that is on, or coming
		desc = state + ": " + room.StreamTitle + " · @" + room.Owner.Handle
	}
	if room.Description != "" {
		desc += " · " + room.Description
	}
	return &ogMeta{Title: room.Title, Description: clip(desc, 200), URL: s.ownOrigin(r) + roomURL(room), Type: "video.other"}
}

func (s *Server) replayOG(r *http.Request, room rooms.Room, b rooms.Broadcast) *ogMeta {
	path := "/replay/" + b.ID
	if room.Visibility != rooms.Public {
		return s.genericOG(r, path)
	}
	desc := "Past broadcast of @" + room.Owner.Handle + ", " + b.Started.UTC().Format("2 Jan 2006")
	if b.Title != "" && b.Title != room.Title {
		desc = "Past broadcast of " + room.Title + " (@" + room.Owner.Handle + "), " + b.Started.UTC().Format("2 Jan 2006")
	}
	if b.DurationMS > 0 {
		desc += ", " + clock(time.Duration(b.DurationMS)*time.Millisecond) + " long"
	}
	title := b.Title
	if title == "" {
		title = room.Title
	}
	return &ogMeta{Title: title + " · replay", Description: desc, URL: s.ownOrigin(r) + path, Type: "video.other"}
}

// streamOG is for a stream of the config file (/watch/<name>), which has no room.
func (s *Server) streamOG(r *http.Request, name string) *ogMeta {
	state := "Offline"
	if st := s.cfg.Hub.Stream(name); st != nil {
		state = "Live now"
	}
	return &ogMeta{Title: name, Description: state + " on onair", URL: s.ownOrigin(r) + "/watch/" + name, Type: "video.other"}
}

// clip cuts s to at most n bytes, on a rune boundary, marking the cut.
func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= n {
		return s
	}
	s = s[:n-3]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}

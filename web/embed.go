package web

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"onair/rooms"
)

// Embeds are the pages other sites put in an iframe: /embed/<room> (the player alone) and
// /embed/<room>/chat. Only they may be framed, by the origins of the server's
// frame-ancestors setting; every other page refuses framing, so that no site can dress
// up onair's forms (clickjacking). An embed admits whom the room's page admits: a private
// room's embed plays only for a viewer signed in to onair whose browser sends the
// session cookie to the frame.

// FrameAncestors checks the sources of a CSP frame-ancestors directive from the config and
// returns the directive's value: "*", "'self'", "'none'" (alone), scheme sources
// ("https:") and origins, with a wildcard for subdomains (https://*.example.com). Empty
// means "*": embeds are meant to be embedded anywhere.
func FrameAncestors(sources []string) (string, error) {
	if len(sources) == 0 {
		return "*", nil
	}
	for _, src := range sources {
		switch {
		case src == "*", src == "'self'":
		case src == "'none'":
			if len(sources) > 1 {
				return "", errors.New("'none' must be the only source")
			}
		case src == "http:", src == "https:":
		default:
			u, err := url.Parse(strings.Replace(src, "://*.", "://wildcard.", 1))
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
				(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil ||
				strings.ContainsAny(src, " ;,'\"\t\r\n") {
				return "", fmt.Errorf("source %q: want *, 'self', 'none', http:, https: or an origin (https://example.com, https://*.example.com)", src)
			}
		}
	}
	return strings.Join(sources, " "), nil
}

// embedData is what the embed templates get.
type embedData struct {
	Room    rooms.Room
	Ref     string // how URLs and the API name the room
	URL     string // the room's page, to open it on onair
	Private bool
	Text    string // why there is nothing to show (a private room), when set
}

func (s *Server) embedRoutes() {
	s.mux.Handle("GET /embed/{room}", s.withUser(s.embedPage("embed")))
	s.mux.Handle("GET /embed/{room}/chat", s.withUser(s.embedPage("embedchat")))
}

func (s *Server) embedPage(tmpl string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.Rooms == nil {
			s.notFoundPage(w, r)
			return
		}
		name := r.PathValue("room")
		room, via, err := s.cfg.Rooms.FindRoom(r.Context(), name)
		if err == nil {
			err = room.Admit(viewerOf(r), via)
		}
		switch {
		case err == nil:
		case errors.Is(err, rooms.ErrUnauthorized) && authErrOf(r) == nil, errors.Is(err, rooms.ErrForbidden):
			// Said in the frame itself: the host page's visitors see why it shows nothing.
			status := http.StatusForbidden
			if errors.Is(err, rooms.ErrUnauthorized) {
				status = http.StatusUnauthorized
			}
			s.renderEmbed(w, r, status, "embedmessage", pageData{Title: "Private room", Page: "embedmessage",
				Data: embedData{Text: "This room is private. Open it on onair and log in to watch, if its owner invited you.", URL: roomURL(room)}}, "")
			return
		default:
			s.pageError(w, r, "room", err)
			return
		}
		if want := "/embed/" + room.Ref(); !strings.HasPrefix(r.URL.Path+"/", want+"/") {
			http.Redirect(w, r, strings.Replace(r.URL.Path, "/embed/"+name, want, 1), http.StatusFound)
			return
		}
		d := embedData{Room: room, Ref: room.Ref(), URL: roomURL(room), Private: room.Visibility == rooms.Private}
		s.renderEmbed(w, r, http.StatusOK, tmpl, pageData{Title: room.Title, Page: tmpl, Script: "player.js", Data: d},
			s.mediaOrigin(r.Context()))
	}
}

// renderEmbed is render for the embed pages: the same locked-down headers, except that the
// configured frame ancestors may frame them.
func (s *Server) renderEmbed(w http.ResponseWriter, r *http.Request, status int, tmpl string, p pageData, mediaOrigin string) {
	p.User = userOf(r)
	p.Accounts = s.cfg.Rooms != nil && s.cfg.Chat != nil
	var b bytes.Buffer
	if err := s.site.pages.ExecuteTemplate(&b, tmpl, p); err != nil {
		s.log.Error("render page", "page", tmpl, "err", err)
		http.Error(w, "page failed to render", http.StatusInternalServerError)
		return
	}
	s.pageHeaders(w, r, mediaOrigin)
	h := w.Header()
	h.Set("Content-Security-Policy", strings.Replace(h.Get("Content-Security-Policy"),
		"frame-ancestors 'none'", "frame-ancestors "+s.frameAncestors, 1))
	// X-Frame-Options cannot name several origins; the CSP says who may frame.
	h.Del("X-Frame-Options")
	h.Set("Cross-Origin-Resource-Policy", "cross-origin")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

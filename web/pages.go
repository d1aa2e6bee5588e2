package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"onair/rooms"
	"onair/storage"
)

// The pages are rendered on the server with html/template (so they read without
// JavaScript and every value is escaped) and carry what their script needs in data-
// attributes: no inline script, so the Content-Security-Policy allows only onair's own
// files. The scripts (web/ui/src, bundled by web/ui/build.mjs) add the player, the chat
// and the dashboard; they talk to the JSON API like any other client.

// site holds the parsed templates and the embedded, pre-compressed assets.
type site struct {
	pages  *template.Template
	assets map[string]*asset
	// manifest maps a logical asset name (player.js) to its content-hashed file.
	manifest map[string]string
}

// asset is one built file with its pre-compressed variants.
type asset struct {
	ctype     string
	immutable bool
	etag      string
	identity  []byte
	gzip      []byte
	brotli    []byte
}

// hashedName matches the file names build.mjs gives its outputs: name-HASH.ext.
var hashedName = regexp.MustCompile(`-[A-Z0-9]{8}\.[a-z.]+$`)

// newSite reads the bundle in dist (ui/dist, embedded) and parses the templates.
func newSite(dist fs.FS) (*site, error) {
	st := &site{assets: map[string]*asset{}, manifest: map[string]string{}}
	if b, err := fs.ReadFile(dist, "manifest.json"); err == nil {
		if err := json.Unmarshal(b, &st.manifest); err != nil {
			return nil, fmt.Errorf("web: ui/dist/manifest.json: %w", err)
		}
	}
	err := fs.WalkDir(dist, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if strings.HasSuffix(p, ".gz") || strings.HasSuffix(p, ".br") || p == "README.md" || p == "manifest.json" {
			return nil
		}
		b, err := fs.ReadFile(dist, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		a := &asset{identity: b, immutable: hashedName.MatchString(p), etag: hex.EncodeToString(sum[:8])}
		a.ctype = mime.TypeByExtension(path.Ext(p))
		switch path.Ext(p) {
		case ".js", ".mjs":
			a.ctype = "text/javascript; charset=utf-8"
		case ".css":
			a.ctype = "text/css; charset=utf-8"
		case ".txt":
			a.ctype = "text/plain; charset=utf-8"
		}
		if a.ctype == "" {
			a.ctype = "application/octet-stream"
		}
		a.gzip, _ = fs.ReadFile(dist, p+".gz")
		a.brotli, _ = fs.ReadFile(dist, p+".br")
		st.assets[p] = a
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("web: read ui/dist: %w", err)
	}
	funcs := template.FuncMap{
		"asset": st.assetURL,
		"since": func(t time.Time) string { return humanDuration(time.Since(t)) },
		"ms":    func(ms int64) string { return clock(time.Duration(ms) * time.Millisecond) },
		"iso":   func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"date":  func(t time.Time) string { return t.UTC().Format("2 Jan 2006, 15:04 UTC") },
		"bytes": humanBytes,
		"sec":   func(ms int64) int64 { return ms / 1000 },
	}
	st.pages, err = template.New("").Funcs(funcs).ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("web: parse templates: %w", err)
	}
	return st, nil
}

// assetURL is where pages load a built file from: its content-hashed name when the
// bundle has been built.
func (st *site) assetURL(name string) string {
	if h, ok := st.manifest[name]; ok {
		return "/assets/" + h
	}
	return "/assets/" + name
}

func (s *Server) pageRoutes() {
	page := func(pattern string, h http.HandlerFunc) { s.mux.Handle(pattern, s.withUser(h)) }
	page("GET /{$}", s.homePage)
	page("GET /watch/{name}", s.watchPage)
	page("GET /rooms/{slug}", s.roomPage)
	page("GET /replay/{id}", s.replayPage)
	page("GET /clips/{id}", s.clipPage)
	page("GET /dashboard", s.dashboardPage)
	page("GET /dashboard/{slug}", s.dashboardPage)
	page("GET /settings", s.settingsPage)
	page("GET /admin", s.adminPage)
	s.embedRoutes()
	page("GET /login", s.authPage("login"))
	page("GET /signup", s.authPage("signup"))
	page("/", s.notFoundPage)
	s.mux.HandleFunc("GET /assets/{file}", s.serveAsset)
}

// pageData is what every page template gets.
type pageData struct {
	Title string
	// Page names the page for its script (body data-page).
	Page string
	// Script is the bundle the page loads: "player.js" (pages with video) or "app.js".
	Script string
	User   *rooms.User
	// Accounts is false without MongoDB: no sign-in, rooms or chat.
	Accounts bool
	// SignInWith names the OpenID Connect provider offered on the login and sign-up
	// pages, and to link on the dashboard; empty: none.
	SignInWith string
	// OG, when set, are the page's Open Graph tags (og.go).
	OG   *ogMeta
	Data any
}

// pageHeaders lock a page down: only onair's own scripts and styles run; media and
// playlists come from onair and, for recordings, from the object store (mediaOrigin).
func (s *Server) pageHeaders(w http.ResponseWriter, r *http.Request, mediaOrigin string) {
	media := "'self' blob:"
	connect := "'self'"
	if mediaOrigin != "" {
		media += " " + mediaOrigin
		connect += " " + mediaOrigin
	}
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"font-src 'self'; media-src "+media+"; connect-src "+connect+"; worker-src 'self' blob:; "+
		"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; "+
		// No script may turn a string into markup or code (innerHTML, eval, script URLs):
		// chat and every other text goes into pages as text.
		"require-trusted-types-for 'script'; trusted-types 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Content-Type", "text/html; charset=utf-8")
	// Pages name the signed-in user: never shared by caches, always revalidated.
	h.Set("Cache-Control", "private, no-cache")
	h.Add("Vary", "Cookie")
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, tmpl string, p pageData) {
	s.renderWith(w, r, status, tmpl, p, "")
}

func (s *Server) renderWith(w http.ResponseWriter, r *http.Request, status int, tmpl string, p pageData, mediaOrigin string) {
	p.User = userOf(r)
	p.Accounts = s.cfg.Rooms != nil && s.cfg.Chat != nil
	if p.Script == "" {
		p.Script = "app.js"
	}
	var b bytes.Buffer
	if err := s.site.pages.ExecuteTemplate(&b, tmpl, p); err != nil {
		s.log.Error("render page", "page", tmpl, "err", err)
		http.Error(w, "page failed to render", http.StatusInternalServerError)
		return
	}
	s.pageHeaders(w, r, mediaOrigin)
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// message renders the simple page that explains an error or an empty state.
func (s *Server) message(w http.ResponseWriter, r *http.Request, status int, title, text string) {
	s.render(w, r, status, "message", pageData{Title: title, Page: "message", Data: text})
}

func (s *Server) notFoundPage(w http.ResponseWriter, r *http.Request) {
	s.log.Debug("no such page", "method", r.Method, "path", r.URL.Path)
	w.Header().Set(noRouteHeader, "1")
	s.message(w, r, http.StatusNotFound, "Not found", "There is nothing at this address. It may have been deleted, or the link is mistyped.")
}

// pageError answers a page whose data could not be loaded.
func (s *Server) pageError(w http.ResponseWriter, r *http.Request, what string, err error) {
	switch {
	case errors.Is(err, rooms.ErrNotFound):
		s.message(w, r, http.StatusNotFound, "Not found", "This "+what+" does not exist, or it was deleted.")
	case errors.Is(err, rooms.ErrUnauthorized) && authErrOf(r) != nil:
		s.pageError(w, r, what, authErrOf(r)) // the session could not be checked
	case errors.Is(err, rooms.ErrUnauthorized):
		s.render(w, r, http.StatusUnauthorized, "private", pageData{Title: "Private room", Page: "message",
			Data: privateData{Text: "This room is private. Log in to watch it, if its owner invited you.", Next: r.URL.Path}})
	case errors.Is(err, rooms.ErrForbidden):
		s.render(w, r, http.StatusForbidden, "private", pageData{Title: "Private room", Page: "message",
			Data: privateData{Text: "This room is private, and its owner has not invited you. Ask them for an invitation."}})
	case errors.Is(err, rooms.ErrUnavailable):
		w.Header().Set("Retry-After", "5")
		s.message(w, r, http.StatusServiceUnavailable, "Temporarily unavailable", "The database is unreachable right now. Try again in a few seconds.")
	case r.Context().Err() != nil:
	default:
		s.log.Error("page failed", "path", r.URL.Path, "err", err)
		s.message(w, r, http.StatusInternalServerError, "Something went wrong", "Something went wrong on our side. Try again in a moment.")
	}
}

// privateData is the page of a private room that the user may not watch; Next, when
// set, is where to come back after logging in.
type privateData struct {
	Text, Next string
}

// roomCard is a room in a list.
type roomCard struct {
	Slug, Title, Description, Owner string
	StreamTitle                     string // the live broadcast's title, when the room has one
	// Public rooms that are live offer a preview on the home page: other rooms' media
	// need a playback token.
	Live, Public bool
	Viewers      int
	LiveSince    time.Time
}

func roomCardOf(r rooms.Room) roomCard {
	return roomCard{Slug: r.Slug, Title: r.Title, StreamTitle: r.StreamTitle, Description: r.Description, Owner: r.Owner.Handle,
		Live: r.Live, Public: r.Visibility == rooms.Public, Viewers: r.Viewers, LiveSince: r.LiveSince}
}

type homeData struct {
	Query   string
	Live    []roomCard
	Rooms   []roomCard
	Next    string
	Streams []roomCard // live streams of the config file (no room), watched at /watch/{name}
	Problem string
}

func (s *Server) homePage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := homeData{Query: strings.TrimSpace(q.Get("q"))}
	for _, st := range s.cfg.Hub.Streams() {
		if st.Route().RoomID == "" {
			d.Streams = append(d.Streams, roomCard{Slug: st.Name(), Title: st.Name(), Live: true, Public: true, LiveSince: st.StartedAt()})
		}
	}
	if s.cfg.Rooms != nil {
		var viewer rooms.User
		if u := userOf(r); u != nil {
			viewer = *u
		}
		live, err := s.cfg.Rooms.ListRooms(r.Context(), viewer, rooms.RoomQuery{LiveOnly: true, Search: d.Query, Limit: 24})
		if err == nil {
			for _, room := range live.Rooms {
				d.Live = append(d.Live, roomCardOf(room))
			}
			var all rooms.RoomPage
			all, err = s.cfg.Rooms.ListRooms(r.Context(), viewer, rooms.RoomQuery{Search: d.Query, Limit: 24, Cursor: q.Get("cursor")})
			for _, room := range all.Rooms {
				d.Rooms = append(d.Rooms, roomCardOf(room))
			}
			d.Next = all.Next
		}
		var ve *rooms.ValidationError
		switch {
		case err == nil:
		case errors.As(err, &ve):
			d.Problem = "That search does not work: " + ve.Error() + "."
		case errors.Is(err, rooms.ErrUnavailable):
			d.Problem = "Rooms cannot be listed right now: the database is unreachable. Try again shortly."
		default:
			if r.Context().Err() == nil {
				s.log.Error("home page: rooms not listed", "err", err)
			}
			d.Problem = "Rooms cannot be listed right now."
		}
	}
	title := "Live now"
	if d.Query != "" {
		title = "Search: " + d.Query
	}
	// The live cards' previews play with hls.js, which player.js carries: the home page
	// loads it only when a card has one.
	script := ""
	if len(d.Streams) > 0 || slices.ContainsFunc(d.Live, func(c roomCard) bool { return c.Public }) {
		script = "player.js"
	}
	s.render(w, r, http.StatusOK, "home", pageData{Title: title, Page: "home", Script: script, Data: d})
}

// streamNameRE is what a stream's public name looks like.
var streamNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// watchPage plays a stream by its public name: an unlisted or private room's playback id
// (its room page), or one of the config file's streams, which have no room (and so no
// chat or past broadcasts). A public room's stream has its room page. The slug of a room
// that is not public shows what an unknown name shows, except to those who may address
// the room by slug.
func (s *Server) watchPage(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if !streamNameRE.MatchString(name) {
		s.notFoundPage(w, r)
		return
	}
	if st := s.cfg.Hub.Stream(name); (st == nil || st.Route().RoomID != "") && s.cfg.Rooms != nil {
		room, via, err := s.cfg.Rooms.FindRoom(r.Context(), name)
		switch {
		case err == nil && via == rooms.ViaPlaybackID:
			s.showRoom(w, r, room, via)
			return
		case err == nil && (room.Visibility == rooms.Public || room.CanModerate(viewerOf(r))):
			http.Redirect(w, r, roomURL(room), http.StatusFound)
			return
		case err == nil, errors.Is(err, rooms.ErrNotFound):
		default:
			s.pageError(w, r, "room", err)
			return
		}
	}
	s.render(w, r, http.StatusOK, "watch", pageData{Title: name, Page: "watch", Script: "player.js", Data: name, OG: s.streamOG(r, name)})
}

type roomData struct {
	Room        rooms.Room
	Ref, URL    string // how URLs and the API name the room; its page
	StartURL    string // its live broadcast from the start, when it has one
	Private     bool
	CanModerate bool
	CanEdit     bool
}

func (s *Server) roomPage(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Rooms == nil {
		s.notFoundPage(w, r)
		return
	}
	room, via, err := s.cfg.Rooms.FindRoom(r.Context(), r.PathValue("slug"))
	if err != nil {
		s.pageError(w, r, "room", err)
		return
	}
	s.showRoom(w, r, room, via)
}

// showRoom renders the room's page, at its address (a room that is not public is at
// /watch/<playback id>), if the user may watch it.
func (s *Server) showRoom(w http.ResponseWriter, r *http.Request, room rooms.Room, via rooms.Via) {
	u := viewerOf(r)
	if err := room.Admit(u, via); err != nil {
		s.pageError(w, r, "room", err)
		return
	}
	if url := roomURL(room); r.URL.Path != url {
		http.Redirect(w, r, url, http.StatusFound)
		return
	}
	d := roomData{Room: room, Ref: room.Ref(), URL: roomURL(room), StartURL: s.startURL(room), Private: room.Visibility == rooms.Private,
		CanModerate: room.CanModerate(u), CanEdit: room.CanEdit(u)}
	// Offline rooms play their latest recording, from the object store.
	s.renderWith(w, r, http.StatusOK, "room", pageData{Title: room.Title, Page: "room", Script: "player.js", Data: d, OG: s.roomOG(r, room)},
		s.mediaOrigin(r.Context()))
}

type replayData struct {
	Broadcast   rooms.Broadcast
	Room        rooms.Room
	RoomURL     string
	Private     bool // the page gets a playback cookie before it plays
	ReplayURL   string
	DownloadURL string
	Status      string // why there is nothing to play, when ReplayURL is empty
}

func (s *Server) replayPage(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Rooms == nil {
		s.notFoundPage(w, r)
		return
	}
	b, err := s.cfg.Rooms.GetBroadcast(r.Context(), r.PathValue("id"))
	var room rooms.Room
	if err == nil {
		room, err = s.cfg.Rooms.RoomByID(r.Context(), b.RoomID)
	}
	if err == nil {
		err = room.Admit(viewerOf(r), rooms.ViaPlaybackID)
	}
	if err != nil {
		if errors.Is(err, rooms.ErrInvalid) {
			err = rooms.ErrNotFound
		}
		s.pageError(w, r, "broadcast", err)
		return
	}
	v := s.broadcastView(r, room, b)
	d := replayData{Broadcast: v.Broadcast, Room: room, RoomURL: roomURL(room), Private: room.Visibility == rooms.Private,
		ReplayURL: v.ReplayURL, DownloadURL: v.DownloadURL}
	switch {
	case s.cfg.Recordings == nil:
		d.ReplayURL, d.DownloadURL = "", ""
		d.Status = "Recordings are not configured on this server."
	case b.Ended == nil:
		d.Status = "This broadcast is still live."
	case b.Recording == nil:
		d.Status = "This broadcast was not recorded, or its recording is still being saved."
	case b.Recording.Status == rooms.RecordingExpired:
		d.Status = "This recording has expired and was deleted."
	case v.ReplayURL == "":
		d.Status = "The recording is still being saved. Reload in a moment."
	}
	s.renderWith(w, r, http.StatusOK, "replay", pageData{Title: v.Title + " · replay", Page: "replay", Script: "player.js", Data: d, OG: s.replayOG(r, room, v.Broadcast)},
		s.mediaOrigin(r.Context()))
}

// mediaOrigin is the origin recordings are fetched from when it is not onair's own (S3):
// the page's CSP must allow the player to fetch from it.
func (s *Server) mediaOrigin(ctx context.Context) string {
	if s.cfg.Recordings == nil {
		return ""
	}
	key, err := storage.RecordingKey("csp", "probe", "recording.mp4")
	if err != nil {
		return ""
	}
	raw, err := s.cfg.Recordings.PresignGet(ctx, key, time.Minute, "")
	if err != nil {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "" // onair serves it (the local backend)
	}
	return u.Scheme + "://" + u.Host
}

func (s *Server) dashboardPage(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Rooms == nil {
		s.message(w, r, http.StatusServiceUnavailable, "Dashboard unavailable", "Rooms need MongoDB: set mongo.uri in the config.")
		return
	}
	if userOf(r) == nil {
		if err := authErrOf(r); err != nil {
			s.pageError(w, r, "page", err)
			return
		}
		http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.Path), http.StatusSeeOther)
		return
	}
	p := pageData{Title: "Dashboard", Page: "dashboard", Data: r.PathValue("slug")}
	if s.cfg.OIDC != nil {
		p.SignInWith = s.cfg.OIDCName
	}
	// The upload form PUTs parts straight to the object store.
	s.renderWith(w, r, http.StatusOK, "dashboard", p, s.mediaOrigin(r.Context()))
}

func (s *Server) authPage(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.Rooms == nil {
			s.message(w, r, http.StatusServiceUnavailable, "Accounts unavailable", "Accounts need MongoDB: set mongo.uri in the config.")
			return
		}
		next := r.URL.Query().Get("next")
		if !localPath(next) {
			next = "/dashboard"
		}
		title := "Log in"
		if kind == "signup" {
			title = "Sign up"
		}
		p := pageData{Title: title, Page: kind, Data: next}
		if s.cfg.OIDC != nil {
			p.SignInWith = s.cfg.OIDCName
		}
		s.render(w, r, http.StatusOK, kind, p)
	}
}

// localPath reports whether p is a path on this site, safe to redirect to after login.
// Browsers drop tabs and newlines from URLs and read a backslash as a slash, so any
// control, white space or backslash is refused outright rather than reasoned about:
// "/\t/evil.example" would otherwise reach the browser as "//evil.example".
func localPath(p string) bool {
	if len(p) == 0 || len(p) >= 512 || p[0] != '/' || strings.HasPrefix(p, "//") {
		return false
	}
	if strings.ContainsFunc(p, func(r rune) bool {
		return r <= ' ' || r == 0x7f || r == '\\' || unicode.IsSpace(r) || !unicode.IsPrint(r)
	}) {
		return false
	}
	u, err := url.Parse(p)
	return err == nil && u.Scheme == "" && u.Host == "" && u.User == nil && strings.HasPrefix(u.Path, "/") && !strings.HasPrefix(u.Path, "//")
}

// humanDuration is a rough, friendly length: "45 s", "12 min", "3 h 05 min".
func humanDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return strconv.Itoa(max(int(d.Seconds()), 0)) + " s"
	case d < time.Hour:
		return strconv.Itoa(int(d.Minutes())) + " min"
	default:
		return fmt.Sprintf("%d h %02d min", int(d.Hours()), int(d.Minutes())%60)
	}
}

// clock formats a length as h:mm:ss or m:ss.
func clock(d time.Duration) string {
	s := int(d.Round(time.Second).Seconds())
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

// humanBytes is a size in decimal units: "3.4 MB".
func humanBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}

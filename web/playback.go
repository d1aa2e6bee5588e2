package web

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"onair/rooms"
)

// The media of a private room (live HLS, replays, downloads) is served only to requests
// carrying a playback token of that room (rooms/playback.go), checked on every node that
// answers a viewer, before any cache:
//
//   - The web pages get theirs in an httpOnly cookie, scoped to the room's media paths
//     (/live/<playback id>/ and /vod/<playback id>/), from POST /api/v1/rooms/{ref}/playback,
//     which the page calls again before the token runs out: page JavaScript never sees it,
//     and a viewer whose invitation is revoked gets no new one.
//   - External players get a URL token from their owner (POST .../playback-tokens) in
//     the path of the HLS URL it hands out (/live/<playback id>/t/<token>/index.m3u8):
//     playlists list relative URIs, which resolve under that path, so every request
//     carries the token and each playlist is served as it is for everyone. A token in
//     the query (?token=) is accepted too; the playlists answered then list every URI
//     with it, rewritten for each request.
//   - A node fetching HLS from the node that has the stream (origin.go) has checked the
//     viewer's token itself and sends a short token of its own in X-Onair-Playback; the
//     viewer's token is never forwarded and never part of a cache key.
//
// Answers for private rooms are Cache-Control: private, so no CDN keeps them.

const (
	playbackCookie = "onair_play"
	tokenParam     = "token"
	// pathTokenParam names the token in /live/{name}/t/{token}/{file}.
	pathTokenParam = "token"
	// playbackHeader carries a node's token on the HLS requests it proxies.
	playbackHeader = "X-Onair-Playback"
	nodeViewer     = "node"
	nodeTokenTTL   = 2 * time.Minute
	// cookieRefresh is when the page asks for a new cookie: well before it expires.
	cookieRefresh = rooms.CookieTokenTTL * 2 / 5
	// maxRewrite bounds a playlist held to add a URL token to its URIs.
	maxRewrite = 4 << 20
)

// gateTTL is how long a stream's access rule is remembered: a room made private, or
// taken out of public view, applies to its media within it.
const gateTTL = 5 * time.Second

// maxGateEntries bounds the remembered rules (names requested, including unknown ones).
const maxGateEntries = 10_000

// streamGate remembers what each stream name's media requires (rooms.StreamAccess);
// concurrent lookups of one name make one query.
type streamGate struct {
	flight singleflight.Group
	mu     sync.Mutex
	m      map[string]gateEntry
}

type gateEntry struct {
	acc rooms.StreamAccess
	at  time.Time
}

func (g *streamGate) get(name string) (gateEntry, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	e, ok := g.m[name]
	return e, ok
}

func (g *streamGate) put(name string, acc rooms.StreamAccess, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.m == nil || len(g.m) >= maxGateEntries {
		g.m = map[string]gateEntry{}
	}
	g.m[name] = gateEntry{acc: acc, at: now}
}

// streamAccess is what the media of stream name requires. While MongoDB cannot answer,
// the last known rule holds; without one, only this node's streams of the config file
// (which are no room's) are served.
func (s *Server) streamAccess(ctx context.Context, name string) (rooms.StreamAccess, error) {
	if s.cfg.Rooms == nil {
		return rooms.StreamAccess{}, nil // only the config file's streams exist
	}
	now := time.Now()
	e, cached := s.gate.get(name)
	if cached && now.Sub(e.at) < gateTTL {
		return e.acc, nil
	}
	v, err, _ := s.gate.flight.Do(name, func() (any, error) {
		// Shared by the viewers asking meanwhile: not bound to this one's request.
		return s.cfg.Rooms.StreamAccess(context.WithoutCancel(ctx), name)
	})
	if err != nil {
		if cached {
			// The last known rule holds for another gateTTL: viewers' requests must not
			// each wait for MongoDB to time out.
			s.gate.put(name, e.acc, now)
			return e.acc, nil
		}
		if st := s.cfg.Hub.Stream(name); st != nil && st.Route().RoomID == "" {
			return rooms.StreamAccess{}, nil
		}
		return rooms.StreamAccess{}, err
	}
	acc := v.(rooms.StreamAccess)
	s.gate.put(name, acc, now)
	return acc, nil
}

// playbackGrant finds a valid token of the room among the request's: the one in its
// path, then ?token= (a URL token, returned so that playlists can carry it on), then its
// cookies and a node's header.
func (s *Server) playbackGrant(r *http.Request, room string) (g rooms.Grant, urlToken string, err error) {
	keys, err := s.cfg.Rooms.Playback(r.Context())
	if err != nil {
		return g, "", err
	}
	now := time.Now()
	err = rooms.ErrBadToken
	try := func(tok string) bool {
		got, verr := keys.Verify(tok, room, now)
		if verr == nil {
			g = got
			return true
		}
		if errors.Is(verr, rooms.ErrTokenExpired) {
			err = verr // the more useful answer to give
		}
		return false
	}
	if tok := r.PathValue(pathTokenParam); tok != "" && try(tok) {
		return g, "", nil
	}
	// Most requests carry a cookie, and no query to parse for a token.
	if strings.Contains(r.URL.RawQuery, tokenParam+"=") {
		if tok := r.URL.Query().Get(tokenParam); tok != "" && try(tok) {
			return g, tok, nil
		}
	}
	for i, c := range r.CookiesNamed(playbackCookie) {
		if i == 4 {
			break
		}
		if try(c.Value) {
			return g, "", nil
		}
	}
	if tok := r.Header.Get(playbackHeader); tok != "" && try(tok) {
		return g, "", nil
	}
	return rooms.Grant{}, "", err
}

// refuseMedia answers a media request of a private room without a valid token.
func (s *Server) refuseMedia(w http.ResponseWriter, r *http.Request, err error) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	if errors.Is(err, rooms.ErrUnavailable) {
		w.Header().Set("Retry-After", "5")
		http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
		return
	}
	if tok := r.URL.Query().Get(tokenParam); tok != "" {
		s.log.Debug("playback token refused", "path", r.URL.Path, "token", rooms.TokenFingerprint(tok), "err", err)
	}
	msg := "this room is private: a valid playback token is required"
	if errors.Is(err, rooms.ErrTokenExpired) {
		msg = "the playback token has expired"
	}
	http.Error(w, msg, http.StatusForbidden)
}

// gateLive applies the stream's access rule to an HLS request. It answers refused
// requests and returns false; otherwise it returns the request to serve (without the
// viewer's token, and with this node's token for an origin node when the room is private)
// and the writer to serve it through.
func (s *Server) gateLive(w http.ResponseWriter, r *http.Request, name string) (*mediaWriter, *http.Request, bool) {
	acc, err := s.streamAccess(r.Context(), name)
	if err != nil {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Retry-After", "5")
		http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
		return nil, nil, false
	}
	if acc.Hidden {
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, "stream not found", http.StatusNotFound)
		return nil, nil, false
	}
	if acc.PlaybackID == "" || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		return nil, withoutToken(r), true // OPTIONS and the like carry no media
	}
	g, urlToken, err := s.playbackGrant(r, acc.PlaybackID)
	if err != nil {
		s.refuseMedia(w, r, err)
		return nil, nil, false
	}
	m := &mediaWriter{ResponseWriter: w, bufs: &s.rewrites, room: g.Room, token: urlToken, playlist: strings.HasSuffix(r.PathValue("file"), ".m3u8")}
	r = withoutToken(r)
	if m.rewriting() && r.Header.Get("Accept-Encoding") != "" {
		// The playlist is rewritten as text: the HLS server (or the origin node) must not
		// gzip it.
		r = r.Clone(r.Context())
		r.Header.Del("Accept-Encoding")
	}
	return m, r, true
}

// withoutToken is r without a token in its path or query (valid or not) nor a token
// header: what the HLS server, the origin node and the caches see is the same for every
// viewer. r itself when it has none, as most requests (cookies) do.
func withoutToken(r *http.Request) *http.Request {
	inPath := r.PathValue(pathTokenParam) != ""
	if !inPath && !strings.Contains(r.URL.RawQuery, tokenParam+"=") && r.Header.Get(playbackHeader) == "" {
		return r
	}
	r = r.Clone(r.Context())
	if inPath {
		r.SetPathValue(pathTokenParam, "")
		r.URL.Path, r.URL.RawPath = livePath(r.PathValue("name"), r.PathValue("file")), ""
	}
	if q := r.URL.Query(); q.Has(tokenParam) {
		q.Del(tokenParam)
		r.URL.RawQuery = q.Encode()
	}
	r.Header.Del(playbackHeader)
	return r
}

// withNodeToken is r with this node's token for the room in its header, for the origin
// node it is proxied to: signed only then, since most requests are served here.
func (s *Server) withNodeToken(r *http.Request, room string) *http.Request {
	keys, err := s.cfg.Rooms.Playback(r.Context()) // loaded by playbackGrant
	if err != nil {
		return r
	}
	tok, err := keys.Sign(rooms.Grant{Room: room, Viewer: nodeViewer, Expires: time.Now().Add(nodeTokenTTL)})
	if err != nil {
		return r
	}
	r = r.Clone(r.Context())
	r.Header.Set(playbackHeader, tok)
	return r
}

// mediaWriter serves a private room's media: answers are private to the viewer, and a
// playlist fetched with a URL token lists every URI with that token.
type mediaWriter struct {
	http.ResponseWriter
	bufs     *sync.Pool // of *[]byte, for the held playlist and its rewrite
	room     string     // the playback id the viewer's token grants
	token    string     // URL token to add to a playlist's URIs; "" for none
	playlist bool

	status   int     // held back while a playlist is rewritten
	held     *[]byte // the playlist, while status is set
	overflow bool
	wrote    bool
}

func (m *mediaWriter) rewriting() bool { return m.token != "" && m.playlist }

func (m *mediaWriter) WriteHeader(code int) {
	if m.wrote || m.status != 0 {
		return
	}
	h := m.Header()
	if cc := h.Get("Cache-Control"); strings.Contains(cc, "public") {
		h.Set("Cache-Control", strings.ReplaceAll(cc, "public", "private"))
	}
	if m.rewriting() && code == http.StatusOK {
		m.status, m.held = code, m.buf()
		if n, err := strconv.Atoi(h.Get("Content-Length")); err == nil && n <= maxRewrite {
			*m.held = slices.Grow(*m.held, n)
		}
		return
	}
	m.wrote = true
	m.ResponseWriter.WriteHeader(code)
}

func (m *mediaWriter) Write(p []byte) (int, error) {
	if !m.wrote && m.status == 0 {
		m.WriteHeader(http.StatusOK)
	}
	if m.status == 0 {
		return m.ResponseWriter.Write(p)
	}
	if len(*m.held)+len(p) > maxRewrite {
		m.overflow = true
		return 0, errors.New("playlist too large to rewrite")
	}
	*m.held = append(*m.held, p...)
	return len(p), nil
}

// buf is an empty buffer, recycled if possible.
func (m *mediaWriter) buf() *[]byte {
	if b, ok := m.bufs.Get().(*[]byte); ok {
		*b = (*b)[:0]
		return b
	}
	return new([]byte)
}

// recycle gives b back for another playlist, unless it grew large: a rare huge playlist
// does not stay held.
func (m *mediaWriter) recycle(b *[]byte) {
	if cap(*b) <= 256<<10 {
		m.bufs.Put(b)
	}
}

// ReadFrom keeps the server's sendfile path for segments.
func (m *mediaWriter) ReadFrom(r io.Reader) (int64, error) {
	if !m.wrote && m.status == 0 {
		m.WriteHeader(http.StatusOK)
	}
	if m.status != 0 {
		return io.Copy(struct{ io.Writer }{m}, r)
	}
	return io.Copy(m.ResponseWriter, r)
}

// finish sends a held playlist, rewritten.
func (m *mediaWriter) finish() {
	if m.status == 0 {
		return
	}
	defer m.recycle(m.held)
	if m.overflow {
		m.ResponseWriter.Header().Set("Cache-Control", "no-store")
		http.Error(m.ResponseWriter, "playlist too large", http.StatusBadGateway)
		return
	}
	body := m.buf()
	defer m.recycle(body)
	*body = withToken(*body, *m.held, m.token)
	m.Header().Set("Content-Length", strconv.Itoa(len(*body)))
	m.ResponseWriter.WriteHeader(m.status)
	_, _ = m.ResponseWriter.Write(*body)
}

// withToken lists every URI of an HLS playlist with the token: URI lines (variants,
// segments) and URI="..." attributes (parts, preload hints, rendition reports, maps,
// renditions). Players request what the playlist lists, and resolve blocking reloads from
// the playlist's own URL, which carries the token already. Every playlist request of an
// external player passes here, so it is one pass over the bytes, appended to dst.
func withToken(dst, playlist []byte, token string) []byte {
	param := tokenParam + "=" + url.QueryEscape(token)
	attr := []byte(`URI="`)
	// Room for the token on every line and attribute, so that out grows at most once.
	out := slices.Grow(dst, len(playlist)+(1+bytes.Count(playlist, []byte{'\n'})+bytes.Count(playlist, attr))*(1+len(param)))
	add := func(uri []byte) {
		out = append(out, uri...)
		if len(uri) == 0 {
			return
		}
		if bytes.IndexByte(uri, '?') >= 0 {
			out = append(out, '&')
		} else {
			out = append(out, '?')
		}
		out = append(out, param...)
	}
	for len(playlist) > 0 {
		line, rest, newline := bytes.Cut(playlist, []byte{'\n'})
		text := bytes.TrimRight(line, "\r")
		switch {
		case len(text) == 0:
			out = append(out, line...)
		case text[0] == '#':
			for {
				i := bytes.Index(line, attr)
				if i < 0 {
					break
				}
				start := i + len(attr)
				end := bytes.IndexByte(line[start:], '"')
				if end < 0 {
					break
				}
				out = append(out, line[:start]...)
				add(line[start : start+end])
				out = append(out, '"')
				line = line[start+end+1:]
			}
			out = append(out, line...)
		default:
			add(text)
			out = append(out, line[len(text):]...)
		}
		if newline {
			out = append(out, '\n')
		}
		playlist = rest
	}
	return out
}

// playbackSession answers POST /api/v1/rooms/{slug}/playback for the room's page: for a
// private room it sets the playback token cookies of the request's user, for one
// CookieTokenTTL, and says when to ask again; other rooms need none.
func (s *Server) playbackSession(w http.ResponseWriter, r *http.Request) {
	room, ok := s.admittedRoom(w, r)
	if !ok {
		return
	}
	if room.Visibility != rooms.Private {
		writeJSON(w, http.StatusOK, playbackAnswer{})
		return
	}
	u := viewerOf(r) // admitted to a private room: signed in
	keys, err := s.cfg.Rooms.Playback(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	exp := time.Now().Add(rooms.CookieTokenTTL).Truncate(time.Second)
	tok, err := keys.Sign(rooms.Grant{Room: room.PlaybackID, Viewer: u.ID, Expires: exp})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	for _, p := range mediaPaths(room.PlaybackID) {
		http.SetCookie(w, &http.Cookie{
			Name: playbackCookie, Value: tok, Path: p, Expires: exp, MaxAge: int(rooms.CookieTokenTTL.Seconds()),
			HttpOnly: true, Secure: s.secure(r), SameSite: http.SameSiteStrictMode,
		})
	}
	writeJSON(w, http.StatusOK, playbackAnswer{Required: true, Expires: exp, RefreshAfter: cookieRefresh.Milliseconds()})
}

// playbackAnswer says whether the room's media needs the playback cookie, and when to
// renew it.
type playbackAnswer struct {
	Required     bool      `json:"required"`
	Expires      time.Time `json:"expires,omitzero"`
	RefreshAfter int64     `json:"refresh_after_ms,omitempty"`
}

// urlTokenRequest is POST /api/v1/rooms/{slug}/playback-tokens.
type urlTokenRequest struct {
	TTLSeconds int64 `json:"ttl_seconds"`
}

// urlTokenResponse is a URL token for external players and the HLS URL carrying it.
type urlTokenResponse struct {
	Token   string    `json:"token"`
	Expires time.Time `json:"expires"`
	HLSURL  string    `json:"hls_url"`
}

// mediaPaths are the paths of a private room's media: its live HLS and its replays and
// downloads, where its playback cookie is sent.
func mediaPaths(playbackID string) []string {
	return []string{"/live/" + playbackID + "/", "/vod/" + playbackID + "/"}
}

// urlToken answers POST /api/v1/rooms/{slug}/playback-tokens {"ttl_seconds"} for the
// room's owner or an admin: a token for external players (an embed, a TV app), valid for
// MinURLTokenTTL to MaxURLTokenTTL, and the room's HLS URL carrying it.
func (s *Server) urlToken(w http.ResponseWriter, r *http.Request) {
	var in urlTokenRequest
	if !decode(w, r, &in) {
		return
	}
	u, room, ok := s.editedRoom(w, r, "only the room's owner or an admin hands out playback tokens")
	if !ok {
		return
	}
	ttl := time.Duration(in.TTLSeconds) * time.Second
	if ttl < rooms.MinURLTokenTTL || ttl > rooms.MaxURLTokenTTL {
		writeAPIError(w, http.StatusBadRequest, "invalid", "ttl_seconds",
			"ttl_seconds must be between "+strconv.Itoa(int(rooms.MinURLTokenTTL.Seconds()))+" and "+strconv.Itoa(int(rooms.MaxURLTokenTTL.Seconds())))
		return
	}
	if room.Visibility != rooms.Private {
		writeAPIError(w, http.StatusConflict, "conflict", "visibility", "the room is not private: its media needs no token")
		return
	}
	keys, err := s.cfg.Rooms.Playback(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	exp := time.Now().Add(ttl).Truncate(time.Second)
	tok, err := keys.Sign(rooms.Grant{Room: room.PlaybackID, Viewer: u.ID, Expires: exp})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("playback token issued", "room_id", room.ID, "by", u.ID, "token", rooms.TokenFingerprint(tok), "expires", exp)
	writeJSON(w, http.StatusCreated, urlTokenResponse{tok, exp, liveTokenPath(room.PlaybackID, tok, "index.m3u8")})
}

// livePath is the path of a live HLS file.
func livePath(name, file string) string { return "/live/" + name + "/" + file }

// liveTokenPath is the path of a live HLS file with a URL token in it: the playlists'
// relative URIs resolve under it, so that every request carries the token.
func liveTokenPath(name, token, file string) string {
	return "/live/" + name + "/t/" + url.PathEscape(token) + "/" + file
}

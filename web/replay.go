package web

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"onair/media/hls"
	"onair/rooms"
	"onair/storage"
)

// Recordings is what web needs of object storage: URLs browsers can fetch recordings from
// without credentials (presigned for S3, signed by onair for the local backend).
type Recordings interface {
	PresignGet(ctx context.Context, key string, ttl time.Duration, downloadName string) (string, error)
}

// broadcastView is a broadcast as the API shows it, with where to replay and download it.
type broadcastView struct {
	rooms.Broadcast
	ReplayURL   string `json:"replay_url,omitempty"`
	DownloadURL string `json:"download_url,omitempty"`
}

// broadcastView shows b, a broadcast of room, to the request's user. The slug of a room
// that is not public is its owner's handle, shown only to those who may edit the room
// (it addresses nothing for others anyway). A private room's recordings are played from
// under its media path (/vod/<playback id>/), where its viewers' playback cookie goes.
func (s *Server) broadcastView(r *http.Request, room rooms.Room, b rooms.Broadcast) broadcastView {
	v := broadcastView{Broadcast: b}
	switch {
	case room.Live && b.ID == room.BroadcastID:
		// The live broadcast's title is the room's: its document follows within a heartbeat.
		v.Title = room.BroadcastTitle()
	case b.Title == "": // a broadcast from before titles
		v.Title = room.Title
	}
	if room.Visibility != rooms.Public && !room.CanEdit(viewerOf(r)) {
		v.RoomSlug = ""
	}
	if b.Recording != nil && b.Recording.Status == rooms.RecordingReady {
		if room.Visibility == rooms.Private {
			v.ReplayURL = vodPath(room, b) + "index.m3u8"
			v.DownloadURL = vodPath(room, b) + "download"
		} else {
			v.ReplayURL = "/api/v1/broadcasts/" + b.ID + "/replay.m3u8"
			v.DownloadURL = "/api/v1/broadcasts/" + b.ID + "/download"
		}
	}
	return v
}

// broadcastList is a page of a room's broadcasts.
type broadcastList struct {
	Broadcasts []broadcastView `json:"broadcasts"`
	Next       string          `json:"next,omitempty"`
}

// vodPath is the folder of a private room's broadcast's replay files.
func vodPath(room rooms.Room, b rooms.Broadcast) string {
	return "/vod/" + room.PlaybackID + "/" + b.ID + "/"
}

func (s *Server) listBroadcasts(w http.ResponseWriter, r *http.Request) {
	limit, ok := queryInt(w, r, "limit")
	if !ok {
		return
	}
	room, ok := s.admittedRoom(w, r)
	if !ok {
		return
	}
	page, err := s.cfg.Rooms.RoomBroadcasts(r.Context(), room, rooms.BroadcastQuery{Limit: limit, Cursor: r.URL.Query().Get("cursor")})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := broadcastList{Broadcasts: make([]broadcastView, 0, len(page.Broadcasts)), Next: page.Next}
	for _, b := range page.Broadcasts {
		out.Broadcasts = append(out.Broadcasts, s.broadcastView(r, room, b))
	}
	writeJSON(w, http.StatusOK, out)
}

// admittedBroadcast loads the broadcast named by the {id} path value and its room, and
// checks that the request's user may watch the room; otherwise it answers and returns
// false. A broadcast is named by its public id, so its room counts as named by playback
// id: an unlisted room's broadcasts are for whoever has their link.
func (s *Server) admittedBroadcast(w http.ResponseWriter, r *http.Request) (rooms.Broadcast, rooms.Room, bool) {
	b, err := s.cfg.Rooms.GetBroadcast(r.Context(), r.PathValue("id"))
	var room rooms.Room
	if err == nil {
		room, err = s.cfg.Rooms.RoomByID(r.Context(), b.RoomID)
	}
	if err == nil {
		err = room.Admit(viewerOf(r), rooms.ViaPlaybackID)
	}
	if err != nil {
		s.fail(w, r, err)
		return b, room, false
	}
	return b, room, true
}

func (s *Server) getBroadcast(w http.ResponseWriter, r *http.Request) {
	b, room, ok := s.admittedBroadcast(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, s.broadcastView(r, room, b))
}

func (s *Server) deleteBroadcast(w http.ResponseWriter, r *http.Request) {
	u, ok := s.requireUser(w, r)
	if !ok {
		return
	}
	if _, _, ok := s.admittedBroadcast(w, r); !ok {
		return
	}
	if err := s.cfg.Rooms.DeleteBroadcast(r.Context(), u, r.PathValue("id")); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// broadcastPatch is what may change of a past broadcast.
type broadcastPatch struct {
	Title string `json:"title"`
}

func (s *Server) retitleBroadcast(w http.ResponseWriter, r *http.Request) {
	u, ok := s.requireUser(w, r)
	if !ok {
		return
	}
	var in broadcastPatch
	if !decode(w, r, &in) {
		return
	}
	_, room, ok := s.admittedBroadcast(w, r)
	if !ok {
		return
	}
	b, err := s.cfg.Rooms.RetitleBroadcast(r.Context(), u, r.PathValue("id"), in.Title)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.broadcastView(r, room, b))
}

// replay is a recording being served, with what a private room's token allows.
type replay struct {
	b    rooms.Broadcast
	room rooms.Room
	// grant is the token's, for a private room; urlToken is the token the request carried
	// in its query, for the playlist to carry on.
	grant    *rooms.Grant
	urlToken string
}

// replayOf loads the recording of the broadcast named by the {id} path value, by ref
// (the {ref} path value: the room's slug while it is public, or its playback id; "" on
// the API routes), and checks a private room's playback token: the playlist, each of
// its fragments and the download each need one. It answers refused requests and returns
// false.
func (s *Server) replayOf(w http.ResponseWriter, r *http.Request) (replay, bool) {
	if s.cfg.Recordings == nil || s.cfg.Rooms == nil {
		writeAPIError(w, http.StatusNotFound, "not_found", "", "recordings are not configured")
		return replay{}, false
	}
	b, err := s.cfg.Rooms.GetBroadcast(r.Context(), r.PathValue("id"))
	var room rooms.Room
	if err == nil {
		room, err = s.cfg.Rooms.RoomByID(r.Context(), b.RoomID)
	}
	if ref := r.PathValue("ref"); err == nil && ref != "" && ref != room.Ref() && ref != room.PlaybackID {
		err = rooms.ErrNotFound
	}
	if err != nil {
		s.fail(w, r, err)
		return replay{}, false
	}
	rp := replay{b: b, room: room}
	if room.Visibility == rooms.Private {
		g, tok, err := s.playbackGrant(r, room.PlaybackID)
		if err != nil {
			s.refuseMedia(w, r, err)
			return replay{}, false
		}
		rp.grant, rp.urlToken = &g, tok
	}
	if b.Recording == nil || b.Recording.Status != rooms.RecordingReady {
		writeAPIError(w, http.StatusNotFound, "not_found", "", "this broadcast has no recording")
		return replay{}, false
	}
	return rp, true
}

// presign gives a URL of the recording for ttl, cut to what is left of a private room's
// token: a URL outliving the token would outlive the viewer's right to it.
func (s *Server) presign(w http.ResponseWriter, r *http.Request, rp replay, ttl time.Duration, name string) (string, bool) {
	if rp.grant != nil {
		ttl = min(ttl, time.Until(rp.grant.Expires).Truncate(time.Second))
		if ttl < time.Second {
			s.refuseMedia(w, r, rooms.ErrTokenExpired)
			return "", false
		}
	}
	url, err := s.cfg.Recordings.PresignGet(r.Context(), rp.b.Recording.Key, ttl, name)
	if err != nil {
		s.fail(w, r, fmt.Errorf("presign %s: %w", rp.b.Recording.Key, err))
		return "", false
	}
	return url, true
}

// presignTTL outlives the video, so a viewer can pause and seek to the end.
func presignTTL(d time.Duration) time.Duration {
	return min(max(2*d+time.Hour, 6*time.Hour), storage.MaxPresignTTL)
}

// replayPlaylist is VOD HLS over the one MP4 object: the init segment and each fragment
// are byte ranges, so players seek without downloading the file. Those of public and
// unlisted rooms point at a presigned URL of the object; those of a private room at
// media.mp4 under its media path, which checks the token of each request before it sends
// the player to a URL presigned for minutes (replayMedia): a playlist keeps playing for as
// long as the page renews its cookie, and stops when it can no more.
func (s *Server) replayPlaylist(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	rp, ok := s.replayOf(w, r)
	if !ok {
		return
	}
	rec := rp.b.Recording
	var body []byte
	if rp.grant != nil {
		body = []byte(vodPlaylist(vodPath(rp.room, rp.b)+"media.mp4", rec, rp.b.Started))
		if rp.urlToken != "" {
			body = withToken(nil, body, rp.urlToken)
		}
	} else {
		url, ok := s.presign(w, r, rp, presignTTL(time.Duration(rec.DurationMS)*time.Millisecond), "")
		if !ok {
			return
		}
		body = []byte(vodPlaylist(url, rec, rp.b.Started))
	}
	w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
	// The playlist holds expiring URLs: caches may keep it briefly, for one viewer.
	w.Header().Set("Cache-Control", "private, max-age=60")
	_, _ = w.Write(body)
}

// replayMediaTTL is how long the URL a private replay's fragment request is sent to
// lasts: long enough to be fetched, cut to the token's life.
const replayMediaTTL = 5 * time.Minute

// replayMedia sends a player fetching a byte range of a private room's recording to a
// short-lived presigned URL of it (the Range header goes along with the redirect).
func (s *Server) replayMedia(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	rp, ok := s.replayOf(w, r)
	if !ok {
		return
	}
	url, ok := s.presign(w, r, rp, replayMediaTTL, "")
	if !ok {
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, url, http.StatusFound)
}

// replaySegments lists a recording's segments: from its segment index, or from the
// fragment index of recordings made before it.
func replaySegments(rec *rooms.Recording) []hls.ReplaySegment {
	out := make([]hls.ReplaySegment, 0, len(rec.Segments)+len(rec.Fragments))
	at := rec.InitSize
	for _, s := range rec.Segments {
		out = append(out, hls.ReplaySegment{Offset: at, Size: s.Size, Duration: s.Duration, Key: s.Key})
		at += s.Size
	}
	for _, f := range rec.Fragments {
		out = append(out, hls.ReplaySegment{Offset: f.Offset, Size: f.Size, Duration: f.Duration, Key: f.Key})
	}
	return out
}

// vodPlaylist writes the replay playlist of rec, whose object is at url and whose media
// starts at start (zero: unknown).
func vodPlaylist(url string, rec *rooms.Recording, start time.Time) string {
	return hls.ReplayPlaylist(url, rec.InitSize, replaySegments(rec), start)
}

// download sends the browser to a short-lived URL of the MP4, named for the broadcast
// (for its room's slug only while the room is public).
func (s *Server) download(w http.ResponseWriter, r *http.Request) {
	rp, ok := s.replayOf(w, r)
	if !ok {
		return
	}
	prefix := "recording"
	if rp.room.Visibility == rooms.Public {
		prefix = rp.room.Slug
	}
	name := fmt.Sprintf("%s-%s.mp4", prefix, rp.b.Started.UTC().Format("2006-01-02-1504"))
	url, ok := s.presign(w, r, rp, time.Hour, name)
	if !ok {
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, url, http.StatusFound)
}

package web

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"onair/rooms"
)

// Recordings is what web needs of object storage: URLs browsers can fetch recordings from
// without credentials (presigned for S3, signed by onair for the local backend).
type Recordings interface {
	PresignGet(ctx context.Context, key string, ttl time.Duration, downloadName string) (string, error)
}

// maxPresign is the longest presigned URL S3 allows (SigV4: 7 days).
const maxPresign = 7 * 24 * time.Hour

// broadcastView is a broadcast as the API shows it, with where to replay and download it.
type broadcastView struct {
	rooms.Broadcast
	ReplayURL   string `json:"replay_url,omitempty"`
	DownloadURL string `json:"download_url,omitempty"`
}

func broadcastViewOf(b rooms.Broadcast) broadcastView {
	v := broadcastView{Broadcast: b}
	if b.Recording != nil && b.Recording.Status == rooms.RecordingReady {
		v.ReplayURL = "/api/v1/broadcasts/" + b.ID + "/replay.m3u8"
		v.DownloadURL = "/api/v1/broadcasts/" + b.ID + "/download"
	}
	return v
}

func (s *Server) listBroadcasts(w http.ResponseWriter, r *http.Request) {
	limit, ok := queryInt(w, r, "limit")
	if !ok {
		return
	}
	page, err := s.cfg.Rooms.ListBroadcasts(r.Context(), r.PathValue("slug"), rooms.BroadcastQuery{Limit: limit, Cursor: r.URL.Query().Get("cursor")})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := struct {
		Broadcasts []broadcastView `json:"broadcasts"`
		Next       string          `json:"next,omitempty"`
	}{Broadcasts: make([]broadcastView, 0, len(page.Broadcasts)), Next: page.Next}
	for _, b := range page.Broadcasts {
		out.Broadcasts = append(out.Broadcasts, broadcastViewOf(b))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getBroadcast(w http.ResponseWriter, r *http.Request) {
	b, err := s.cfg.Rooms.GetBroadcast(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, broadcastViewOf(b))
}

func (s *Server) deleteBroadcast(w http.ResponseWriter, r *http.Request) {
	u, ok := s.requireUser(w, r)
	if !ok {
		return
	}
	if err := s.cfg.Rooms.DeleteBroadcast(r.Context(), u, r.PathValue("id")); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// recording loads a broadcast whose recording can be played.
func (s *Server) recording(w http.ResponseWriter, r *http.Request) (rooms.Broadcast, bool) {
	if s.cfg.Recordings == nil {
		writeAPIError(w, http.StatusNotFound, "not_found", "", "recordings are not configured")
		return rooms.Broadcast{}, false
	}
	b, err := s.cfg.Rooms.GetBroadcast(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return b, false
	}
	if b.Recording == nil || b.Recording.Status != rooms.RecordingReady {
		writeAPIError(w, http.StatusNotFound, "not_found", "", "this broadcast has no recording")
		return b, false
	}
	return b, true
}

// presignTTL outlives the video, so a viewer can pause and seek to the end.
func presignTTL(d time.Duration) time.Duration {
	return min(max(2*d+time.Hour, 6*time.Hour), maxPresign)
}

// replayPlaylist is VOD HLS over the one MP4 object: the init segment and each fragment
// are byte ranges, so players seek without downloading the file.
func (s *Server) replayPlaylist(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	b, ok := s.recording(w, r)
	if !ok {
		return
	}
	rec := b.Recording
	url, err := s.cfg.Recordings.PresignGet(r.Context(), rec.Key, presignTTL(time.Duration(rec.DurationMS)*time.Millisecond), "")
	if err != nil {
		s.fail(w, r, fmt.Errorf("presign %s: %w", rec.Key, err))
		return
	}
	w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
	// The playlist holds expiring URLs: caches may keep it briefly, for one viewer.
	w.Header().Set("Cache-Control", "private, max-age=60")
	_, _ = w.Write([]byte(vodPlaylist(url, rec)))
}

// replaySegment is a byte range of a recording and how long it plays.
type replaySegment struct {
	offset, size int64
	duration     time.Duration
	key          bool
}

// replaySegments lists a recording's segments: from its segment index, or from the
// fragment index of recordings made before it.
func replaySegments(rec *rooms.Recording) []replaySegment {
	out := make([]replaySegment, 0, len(rec.Segments)+len(rec.Fragments))
	at := rec.InitSize
	for _, s := range rec.Segments {
		out = append(out, replaySegment{offset: at, size: s.Size, duration: s.Duration, key: s.Key})
		at += s.Size
	}
	for _, f := range rec.Fragments {
		out = append(out, replaySegment{offset: f.Offset, size: f.Size, duration: f.Duration, key: f.Key})
	}
	return out
}

// vodPlaylist writes the replay playlist: EXT-X-VERSION 6, the lowest that EXT-X-MAP
// (and EXT-X-BYTERANGE, 4) needs; TARGETDURATION rounded up from the longest segment.
func vodPlaylist(url string, rec *rooms.Recording) string {
	segs := replaySegments(rec)
	target := 1.0
	independent := true
	for _, s := range segs {
		target = max(target, math.Ceil(s.duration.Seconds()))
		independent = independent && s.key
	}
	var sb strings.Builder
	sb.WriteString("#EXTM3U\n#EXT-X-VERSION:6\n")
	fmt.Fprintf(&sb, "#EXT-X-TARGETDURATION:%d\n", int(target))
	sb.WriteString("#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-MEDIA-SEQUENCE:0\n")
	if independent {
		sb.WriteString("#EXT-X-INDEPENDENT-SEGMENTS\n")
	}
	fmt.Fprintf(&sb, "#EXT-X-MAP:URI=%q,BYTERANGE=\"%d@0\"\n", url, rec.InitSize)
	for _, s := range segs {
		sb.WriteString("#EXTINF:" + strconv.FormatFloat(s.duration.Seconds(), 'f', 5, 64) + ",\n")
		fmt.Fprintf(&sb, "#EXT-X-BYTERANGE:%d@%d\n%s\n", s.size, s.offset, url)
	}
	sb.WriteString("#EXT-X-ENDLIST\n")
	return sb.String()
}

// download sends the browser to a short-lived URL of the MP4, named for the broadcast.
func (s *Server) download(w http.ResponseWriter, r *http.Request) {
	b, ok := s.recording(w, r)
	if !ok {
		return
	}
	name := fmt.Sprintf("%s-%s.mp4", b.RoomSlug, b.Started.UTC().Format("2006-01-02-1504"))
	url, err := s.cfg.Recordings.PresignGet(r.Context(), b.Recording.Key, time.Hour, name)
	if err != nil {
		s.fail(w, r, fmt.Errorf("presign %s: %w", b.Recording.Key, err))
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, url, http.StatusFound)
}

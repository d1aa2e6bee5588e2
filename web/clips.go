package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"time"

	"onair/media/hls"
	"onair/rooms"
	"onair/storage"
)

// Clips: a signed-in viewer cuts the last seconds of a live stream, from this node's DVR
// window, or of a replay, from its recording, into one object (rooms/clips.go), played
// with the same VOD playlist as a replay. A clip follows its room's access rules: a
// private room's clip plays only with the room's playback cookie or token, like its
// replays, from a URL presigned for no longer than that grant lasts.

// LiveCutter cuts clips of the streams live on this node (a *hls.Server).
type LiveCutter interface {
	CutLive(ctx context.Context, name string, want time.Duration, w io.Writer) (hls.Cut, error)
}

// ClipObjects is what clips need of object storage: reading recordings, storing clips.
type ClipObjects interface {
	Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, storage.Object, error)
	Put(ctx context.Context, key string, body io.ReadSeeker, size int64, contentType string) error
}

// clipRequest asks for a clip of the last seconds of a live room.
type clipRequest struct {
	Seconds int    `json:"seconds"`
	Title   string `json:"title,omitempty"`
}

// replayClipRequest asks for a clip of a replay, ending at its position at_ms.
type replayClipRequest struct {
	AtMS    int64  `json:"at_ms"`
	Seconds int    `json:"seconds"`
	Title   string `json:"title,omitempty"`
}

// clipView is a clip as the API shows it.
type clipView struct {
	rooms.Clip
	PageURL     string `json:"page_url"`
	PlaylistURL string `json:"playlist_url"`
	CanDelete   bool   `json:"can_delete"`
}

// clipList is a page of a room's clips.
type clipList struct {
	Clips []clipView `json:"clips"`
	Next  string     `json:"next,omitempty"`
}

// clipView shows a clip. A private room's plays from under its media path (/vod/<playback
// id>/), where its viewers' playback cookie goes.
func (s *Server) clipView(r *http.Request, room rooms.Room, c rooms.Clip) clipView {
	v := clipView{Clip: c, PageURL: "/clips/" + c.ID, PlaylistURL: "/api/v1/clips/" + c.ID + "/clip.m3u8",
		CanDelete: rooms.CanDeleteClip(viewerOf(r), room, c)}
	if room.Visibility == rooms.Private {
		v.PlaylistURL = "/vod/" + room.PlaybackID + "/clips/" + c.ID + "/index.m3u8"
	}
	return v
}

// clipsReady answers 404 and returns false when this server cannot make clips.
func (s *Server) clipsReady(w http.ResponseWriter) bool {
	if s.cfg.ClipObjects == nil || s.cfg.Recordings == nil {
		writeAPIError(w, http.StatusNotFound, "not_found", "", "clips need object storage, which is not configured")
		return false
	}
	return true
}

func (s *Server) createLiveClip(w http.ResponseWriter, r *http.Request) {
	u, ok := s.requireUser(w, r)
	if !ok || !s.clipsReady(w) {
		return
	}
	var in clipRequest
	if !decode(w, r, &in) {
		return
	}
	room, ok := s.admittedRoom(w, r)
	if !ok {
		return
	}
	if !room.Live || room.BroadcastID == "" {
		writeAPIError(w, http.StatusConflict, "conflict", "", "the room is not live: clip one of its replays instead")
		return
	}
	if s.cfg.LiveClips == nil || !s.cfg.HLS.Live(room.StreamName()) {
		// The DVR window is on the node that ingests the stream: that node cuts the clip.
		if s.proxy != nil && r.Header.Get(proxiedHeader) == "" {
			if base := s.proxy.origin(r.Context(), room.StreamName()); base != "" {
				s.forwardLiveClip(w, r, base, in)
				return
			}
		}
		writeAPIError(w, http.StatusConflict, "conflict", "", "the stream is not live on a node of this cluster that answers: clip the replay once it is ready")
		return
	}
	b, err := s.cfg.Rooms.GetBroadcast(r.Context(), room.BroadcastID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	c, err := s.cfg.Rooms.CreateClip(r.Context(), u, room, b, rooms.ClipRequest{Seconds: in.Seconds, Title: in.Title},
		func(ctx context.Context, key string) (rooms.ClipMedia, error) {
			var cut hls.Cut
			err := s.storeClip(ctx, key, func(f io.Writer) (err error) {
				cut, err = s.cfg.LiveClips.CutLive(ctx, room.StreamName(), time.Duration(in.Seconds)*time.Second, f)
				return err
			})
			if err != nil {
				return rooms.ClipMedia{}, err
			}
			return rooms.ClipMedia{Media: clipRecording(cut.InitSize, cut.Segments), StartMS: cut.Start.Milliseconds()}, nil
		})
	s.answerClip(w, r, room, c, err)
}

// forwardLiveClip sends a live clip request on to the node at base, which ingests the
// stream and holds its DVR window, and relays its answer. That node checks the viewer's
// session, CSRF token and Origin as if asked directly: the request keeps its headers and
// its Host, and carries the body this node decoded.
func (s *Server) forwardLiveClip(w http.ResponseWriter, r *http.Request, base string, in clipRequest) {
	target, err := url.Parse(base)
	if err != nil {
		s.log.Error("origin node URL", "url", base, "err", err)
		writeAPIError(w, http.StatusBadGateway, "unavailable", "", "the node that ingests the stream cannot be reached")
		return
	}
	body, err := json.Marshal(in)
	if err != nil {
		s.fail(w, r, fmt.Errorf("clip request: %w", err))
		return
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host
			pr.Out.Body = io.NopCloser(bytes.NewReader(body))
			pr.Out.ContentLength = int64(len(body))
			pr.Out.Header.Set(proxiedHeader, "1")
		},
		Transport: s.proxy.client.Transport,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			s.log.Warn("forward live clip", "origin", base, "room", r.PathValue("ref"), "err", err)
			writeAPIError(w, http.StatusBadGateway, "unavailable", "", "the node that ingests the stream did not answer")
		},
	}
	rp.ServeHTTP(w, r)
}

func (s *Server) createReplayClip(w http.ResponseWriter, r *http.Request) {
	u, ok := s.requireUser(w, r)
	if !ok || !s.clipsReady(w) {
		return
	}
	var in replayClipRequest
	if !decode(w, r, &in) {
		return
	}
	b, room, ok := s.admittedBroadcast(w, r)
	if !ok {
		return
	}
	rec := b.Recording
	if rec == nil || rec.Status != rooms.RecordingReady {
		writeAPIError(w, http.StatusConflict, "conflict", "", "this broadcast has no recording to clip")
		return
	}
	if in.AtMS < 0 || in.AtMS > rec.DurationMS+1000 {
		writeAPIError(w, http.StatusBadRequest, "invalid", "at_ms", fmt.Sprintf("must be within the recording, 0 to %d", rec.DurationMS))
		return
	}
	segs := replaySegments(rec)
	end, at := 0, time.Duration(0)
	for end < len(segs) && at < time.Duration(in.AtMS)*time.Millisecond {
		at += segs[end].Duration
		end++
	}
	c, err := s.cfg.Rooms.CreateClip(r.Context(), u, room, b, rooms.ClipRequest{Seconds: in.Seconds, Title: in.Title},
		func(ctx context.Context, key string) (rooms.ClipMedia, error) {
			first := hls.ClipSpan(segs, end, time.Duration(in.Seconds)*time.Second)
			if first >= end {
				return rooms.ClipMedia{}, fmt.Errorf("%w: nothing to clip before at_ms %d", rooms.ErrInvalid, in.AtMS)
			}
			var start time.Duration
			for _, sg := range segs[:first] {
				start += sg.Duration
			}
			part := segs[first:end]
			from, to := part[0].Offset, part[len(part)-1].Offset+part[len(part)-1].Size
			err := s.storeClip(ctx, key, func(f io.Writer) error {
				if err := s.copyObject(ctx, f, rec.Key, 0, rec.InitSize); err != nil {
					return err
				}
				return s.copyObject(ctx, f, rec.Key, from, to-from)
			})
			if err != nil {
				return rooms.ClipMedia{}, err
			}
			moved := make([]hls.ReplaySegment, len(part))
			for i, sg := range part {
				moved[i] = sg
				moved[i].Offset = rec.InitSize + sg.Offset - from
			}
			return rooms.ClipMedia{Media: clipRecording(rec.InitSize, moved), StartMS: start.Milliseconds()}, nil
		})
	s.answerClip(w, r, room, c, err)
}

func (s *Server) answerClip(w http.ResponseWriter, r *http.Request, room rooms.Room, c rooms.Clip, err error) {
	switch {
	case errors.Is(err, hls.ErrNotLive):
		writeAPIError(w, http.StatusConflict, "conflict", "", "the stream is not live on this node")
	case errors.Is(err, hls.ErrTooShort):
		writeAPIError(w, http.StatusConflict, "conflict", "", "the stream just started: there is nothing to clip yet")
	case err != nil:
		s.fail(w, r, err)
	default:
		writeJSON(w, http.StatusCreated, s.clipView(r, room, c))
	}
}

// clipRecording is a clip's index, in a recording's terms.
func clipRecording(initSize int64, segs []hls.ReplaySegment) rooms.Recording {
	rec := rooms.Recording{ContentType: "video/mp4", InitSize: initSize, Size: initSize, Completed: time.Now().UTC()}
	var d time.Duration
	for _, sg := range segs {
		rec.Segments = append(rec.Segments, rooms.RecordingSegment{Size: sg.Size, Duration: sg.Duration, Key: sg.Key})
		rec.Size += sg.Size
		d += sg.Duration
	}
	rec.DurationMS = d.Milliseconds()
	return rec
}

// maxConcurrentClips bounds the clips this node cuts at once; more wait their turn.
const maxConcurrentClips = 4

// maxClipBytes bounds a clip's object: a minute of video at a high bit rate.
const maxClipBytes = 512 << 20

// storeClip writes a clip through a temporary file (Put needs its size and to seek, for
// retries) and stores it at key.
func (s *Server) storeClip(ctx context.Context, key string, write func(io.Writer) error) error {
	select {
	case s.clipping <- struct{}{}:
		defer func() { <-s.clipping }()
	case <-ctx.Done():
		return fmt.Errorf("clip %s: waiting for a turn: %w", key, ctx.Err())
	}
	f, err := os.CreateTemp("", "onair-clip-*.mp4")
	if err != nil {
		return fmt.Errorf("clip %s: temporary file: %w", key, err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if err := write(&limitedWriter{w: f, left: maxClipBytes}); err != nil {
		return fmt.Errorf("clip %s: %w", key, err)
	}
	size, err := f.Seek(0, io.SeekCurrent)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		return fmt.Errorf("clip %s: %w", key, err)
	}
	if err := s.cfg.ClipObjects.Put(ctx, key, f, size, "video/mp4"); err != nil {
		return fmt.Errorf("store clip %s: %w", key, err)
	}
	return nil
}

// copyObject copies n bytes of the object key at off to w.
func (s *Server) copyObject(ctx context.Context, w io.Writer, key string, off, n int64) error {
	rc, _, err := s.cfg.ClipObjects.Get(ctx, key, off, n)
	if err != nil {
		return fmt.Errorf("read %s at %d: %w", key, off, err)
	}
	defer rc.Close()
	got, err := io.Copy(w, rc)
	if err == nil && got != n {
		err = fmt.Errorf("read %s at %d: %d bytes of %d", key, off, got, n)
	}
	return err
}

// limitedWriter fails past left bytes.
type limitedWriter struct {
	w    io.Writer
	left int64
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > l.left {
		return 0, fmt.Errorf("clip over %d bytes", maxClipBytes)
	}
	l.left -= int64(len(p))
	return l.w.Write(p)
}

func (s *Server) listClips(w http.ResponseWriter, r *http.Request) {
	limit, ok := queryInt(w, r, "limit")
	if !ok {
		return
	}
	room, ok := s.admittedRoom(w, r)
	if !ok {
		return
	}
	page, err := s.cfg.Rooms.RoomClips(r.Context(), room, limit, r.URL.Query().Get("cursor"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := clipList{Clips: make([]clipView, 0, len(page.Clips)), Next: page.Next}
	for _, c := range page.Clips {
		out.Clips = append(out.Clips, s.clipView(r, room, c))
	}
	writeJSON(w, http.StatusOK, out)
}

// admittedClip loads the clip named by the {id} path value and its room, and checks that
// the request's user may watch the room (a clip's id counts as its room's playback id).
func (s *Server) admittedClip(w http.ResponseWriter, r *http.Request) (rooms.Clip, rooms.Room, bool) {
	c, err := s.cfg.Rooms.GetClip(r.Context(), r.PathValue("id"))
	var room rooms.Room
	if err == nil {
		room, err = s.cfg.Rooms.RoomByID(r.Context(), c.RoomID)
	}
	if err == nil {
		err = s.admit(r, room, rooms.ViaPlaybackID)
	}
	if err != nil {
		s.fail(w, r, err)
		return c, room, false
	}
	return c, room, true
}

func (s *Server) getClip(w http.ResponseWriter, r *http.Request) {
	c, room, ok := s.admittedClip(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, s.clipView(r, room, c))
}

func (s *Server) deleteClip(w http.ResponseWriter, r *http.Request) {
	u, ok := s.requireUser(w, r)
	if !ok {
		return
	}
	if err := s.cfg.Rooms.DeleteClip(r.Context(), u, r.PathValue("id")); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// clipPlaylist is the clip's VOD playlist over its object. A private room's needs its
// playback cookie or token, and the object's URL lasts no longer than they do.
func (s *Server) clipPlaylist(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	if !s.clipsReady(w) {
		return
	}
	// Like a replay's, the playlist is for whoever holds the room's playback token (its
	// cookie, or a URL token): the media routes know no sessions.
	c, err := s.cfg.Rooms.GetClip(r.Context(), r.PathValue("id"))
	var room rooms.Room
	if err == nil {
		room, err = s.cfg.Rooms.RoomByID(r.Context(), c.RoomID)
	}
	if ref := r.PathValue("ref"); err == nil && ref != "" && ref != room.PlaybackID {
		err = rooms.ErrNotFound
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ttl := presignTTL(time.Duration(c.DurationMS) * time.Millisecond)
	if room.Visibility == rooms.Private {
		g, _, err := s.playbackGrant(r, room.PlaybackID)
		if err != nil {
			s.refuseMedia(w, r, err)
			return
		}
		if ttl = min(ttl, time.Until(g.Expires).Truncate(time.Second)); ttl < time.Second {
			s.refuseMedia(w, r, rooms.ErrTokenExpired)
			return
		}
	}
	url, err := s.cfg.Recordings.PresignGet(r.Context(), c.Media.Key, ttl, "")
	if err != nil {
		s.fail(w, r, fmt.Errorf("presign %s: %w", c.Media.Key, err))
		return
	}
	w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
	w.Header().Set("Cache-Control", "private, max-age=60")
	_, _ = io.WriteString(w, vodPlaylist(url, &c.Media, time.Time{}))
}

package web

import (
	"context"
	"net/http"
	"time"

	"onair/media"
)

// roomHealth is the live health of a room's stream, for its owner's dashboard. Counters
// are running totals of the current run: the dashboard derives the current bitrate and
// frame rate from two readings (their difference over At's).
type roomHealth struct {
	Live bool `json:"live"`
	// Here is false when the room is live on another onair node: only the room's own
	// figures (viewers, since) are known then.
	Here      bool      `json:"here"`
	At        time.Time `json:"at"`
	LiveSince time.Time `json:"live_since,omitzero"`
	UptimeMS  int64     `json:"uptime_ms"`
	Viewers   int       `json:"viewers"`
	// Recording says whether this run is being recorded.
	Recording bool `json:"recording"`

	RunID       string       `json:"run_id,omitempty"`
	Bytes       int64        `json:"bytes"`
	VideoFrames int64        `json:"video_frames"`
	AudioFrames int64        `json:"audio_frames"`
	MediaMS     int64        `json:"media_ms"` // timestamp of the latest access unit
	Bitrate     int64        `json:"bitrate"`  // average bits per second of the run
	FPS         float64      `json:"fps"`      // average video frames per second of the run
	Video       *videoHealth `json:"video,omitempty"`
	Audio       *audioHealth `json:"audio,omitempty"`
	// Warnings say what the stream's settings cost viewers, e.g. a key frame interval
	// longer than the segments.
	Warnings []string `json:"warnings,omitempty"`
	// PublishError is why a node (any of the cluster's) last refused a publish of the
	// stream (a codec it cannot serve, a rendition whose key frames are not aligned, or
	// sent to a node without the main rendition), unless a run started since.
	PublishError *publishError `json:"publish_error,omitempty"`
	// Renditions are the quality ladder: the main rendition first, then each further one
	// (simulcast outputs, multitrack video tracks), with their recent rates.
	Renditions []renditionHealth `json:"renditions,omitempty"`
}

type renditionHealth struct {
	Name    string      `json:"name"` // "" for the main rendition
	Codec   media.Codec `json:"codec"`
	Width   int         `json:"width"`
	Height  int         `json:"height"`
	Bitrate int64       `json:"bitrate"` // bits per second over the last seconds
	FPS     float64     `json:"fps"`
	// Aligned: its key frames were found where the main's are, and viewers are offered it.
	Aligned bool `json:"aligned"`
}

// renditionsHealth lists the ladder of a stream with further renditions (nil without).
func renditionsHealth(main *media.Stream, subs []*media.Stream) []renditionHealth {
	if len(subs) == 0 {
		return nil
	}
	out := make([]renditionHealth, 0, len(subs)+1)
	for _, st := range append([]*media.Stream{main}, subs...) {
		stats := st.Stats()
		rh := renditionHealth{Name: st.Rendition(), Codec: st.VideoCodec(), Bitrate: stats.Bitrate, FPS: stats.FPS, Aligned: st.Aligned()}
		if v := st.Tracks().Video; v != nil {
			rh.Width, rh.Height = v.Width, v.Height
		}
		out = append(out, rh)
	}
	return out
}

type publishError struct {
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
}

type videoHealth struct {
	Codec  media.Codec `json:"codec"`
	Width  int         `json:"width"`
	Height int         `json:"height"`
}

type audioHealth struct {
	Codec      media.Codec `json:"codec"`
	SampleRate int         `json:"sample_rate"`
	Channels   int         `json:"channels"`
}

// roomHealth answers GET /api/v1/rooms/{slug}/health, for those who may edit the room.
func (s *Server) roomHealth(w http.ResponseWriter, r *http.Request) {
	_, room, ok := s.editedRoom(w, r, "only the room's owner sees its stream's health")
	if !ok {
		return
	}
	now := time.Now()
	h := roomHealth{Live: room.Live, At: now, Viewers: room.Viewers, Recording: room.Live && room.Recording}
	if room.Live {
		h.LiveSince = room.LiveSince
	}
	if st := s.cfg.Hub.Stream(room.StreamName()); st != nil && st.Route().RoomID == room.ID {
		stats := st.Stats()
		h.Live, h.Here = true, true
		h.LiveSince = st.StartedAt()
		h.Recording = st.Route().Record
		h.RunID = st.ID()
		h.Warnings = st.Warnings()
		h.Bytes, h.VideoFrames, h.AudioFrames = stats.Bytes, stats.VideoUnits, stats.AudioUnits
		h.MediaMS = stats.Duration.Milliseconds()
		if secs := now.Sub(st.StartedAt()).Seconds(); secs > 0 {
			h.Bitrate = int64(float64(stats.Bytes*8) / secs)
		}
		if stats.Duration > 0 {
			h.FPS = float64(stats.VideoUnits) / stats.Duration.Seconds()
		}
		tr := st.Tracks()
		if v := tr.Video; v != nil {
			h.Video = &videoHealth{Codec: v.Codec, Width: v.Width, Height: v.Height}
		}
		if a := tr.Audio; a != nil {
			h.Audio = &audioHealth{Codec: a.Codec, SampleRate: a.SampleRate, Channels: a.Channels}
		}
		h.Renditions = renditionsHealth(st, s.cfg.Hub.Renditions(room.StreamName()))
	}
	if f, ok := s.lastRefusal(r.Context(), room.StreamName()); ok && (!h.Here || f.At.After(h.LiveSince)) {
		h.PublishError = &publishError{At: f.At, Reason: f.Reason}
	}
	if h.Live && !h.LiveSince.IsZero() {
		h.UptimeMS = now.Sub(h.LiveSince).Milliseconds()
	}
	writeJSON(w, http.StatusOK, h)
}

// lastRefusal is the latest refusal of a publish of the stream called name by any node:
// behind a load balancer the node that refused a rendition (one without the main) is
// seldom the one serving its streamer's dashboard. Each node reports its own recent
// refusals in its heartbeat document (rooms/cluster), its alone to write, expiring with
// media.RefusalTTL or with the node; they are read only when a dashboard asks.
func (s *Server) lastRefusal(ctx context.Context, name string) (media.Refusal, bool) {
	best, ok := s.cfg.Hub.LastRefusal(name)
	if s.cfg.Cluster == nil {
		return best, ok
	}
	nodes, err := s.cfg.Cluster.Nodes(ctx)
	if err != nil {
		s.log.Warn("the other nodes' refusals are not shown", "stream", name, "err", err)
		return best, ok
	}
	for _, n := range nodes {
		if f, found := n.Refusal(name); found && time.Since(f.At) < media.RefusalTTL && (!ok || f.At.After(best.At)) {
			best, ok = media.Refusal{At: f.At, Reason: f.Reason}, true
		}
	}
	return best, ok
}

package web

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"onair/rooms"
	"onair/web/golive"
)

// obsConfigPath is where OBS's multitrack video ("Enhanced Broadcasting") asks which
// renditions to encode. It is outside the API's guards: OBS posts without a session, an
// API token or an Origin, and authenticates with the stream key in the body.
const obsConfigPath = "/api/v1/obs/config"

// defaultMaxLadderKbps is the cap on a multitrack publish when neither the room nor the
// config sets one: enough for the full hardware ladder (1080p60, 720p30, 480p30 and audio).
const defaultMaxLadderKbps = 10000

// obsConfig serves POST /api/v1/obs/config: the body OBS posts (golive.Request) with the
// room's stream key in "authentication"; the answer is the ladder for the streamer's
// machine within the room's maximum bitrate, and the RTMP(S) ingest.
//
// OBS reads the body of a 2xx answer only (its HTTP client fails on an error status and
// shows the status line instead), so OBS's own requests (User-Agent obs-basic) get their
// refusals as 200 with status "error", which OBS shows to the streamer before staying
// offline; any other client gets the same body with the error's HTTP status.
func (s *Server) obsConfig(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		s.obsRefuse(w, r, http.StatusUnsupportedMediaType, "Send the configuration request as application/json.")
		return
	}
	var req golive.Request
	// Unknown fields are accepted, unlike the API's: OBS adds fields to this body between
	// versions, and refusing them would break every newer OBS.
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, golive.MaxRequestBytes))
	if err := dec.Decode(&req); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.obsRefuse(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("The configuration request is larger than %d bytes.", golive.MaxRequestBytes))
			return
		}
		s.obsRefuse(w, r, http.StatusBadRequest, "Malformed configuration request: "+err.Error())
		return
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		s.obsRefuse(w, r, http.StatusBadRequest, "Malformed configuration request: one JSON object expected.")
		return
	}
	if s.cfg.Rooms == nil {
		s.obsRefuse(w, r, http.StatusServiceUnavailable, "Multitrack video needs onair's database, which this server runs without.")
		return
	}
	key, _, _ := strings.Cut(req.Authentication, "?") // as RTMP: OBS's key may carry a query
	if key == "" {
		s.obsRefuse(w, r, http.StatusUnauthorized, "No stream key: paste the room's stream key from the onair dashboard into Settings → Stream → Stream Key.")
		return
	}
	route, err := s.cfg.Rooms.ResolveKeyFrom(r.Context(), key, s.clientIP(r))
	var rl *rooms.RateLimitError
	switch {
	case errors.Is(err, rooms.ErrUnknownKey):
		s.log.Info("obs config refused: unknown stream key", "key_id", rooms.KeyID(key), "ip", s.clientIP(r))
		s.obsRefuse(w, r, http.StatusForbidden, "This stream key belongs to no room on this server: copy it again from the room's dashboard (it changes when the key is rotated).")
		return
	case errors.As(err, &rl):
		w.Header().Set("Retry-After", strconv.Itoa(int(rl.RetryAfter.Round(time.Second).Seconds())+1))
		s.obsRefuse(w, r, http.StatusTooManyRequests, "Too many wrong stream keys from this address; try again in "+rl.RetryAfter.Round(time.Second).String()+".")
		return
	case errors.Is(err, rooms.ErrUnavailable):
		w.Header().Set("Retry-After", "5")
		s.obsRefuse(w, r, http.StatusServiceUnavailable, "onair cannot reach its database right now; try again shortly.")
		return
	case err != nil:
		s.log.Error("obs config: resolve stream key", "key_id", rooms.KeyID(key), "err", err)
		s.obsRefuse(w, r, http.StatusInternalServerError, "Something went wrong on onair's side.")
		return
	}
	capKbps := s.ladderCap(route.MaxLadderKbps)
	choice, err := golive.Choose(&req, capKbps)
	if err != nil {
		s.obsRefuse(w, r, http.StatusBadRequest, "The maximum streaming bandwidth is too low for multitrack video: raise it to at least "+
			strconv.Itoa(golive.MinVideoKbps+golive.AudioKbps)+" kbit/s (OBS's Maximum Streaming Bandwidth, or the room's setting on onair).")
		return
	}
	cfg := s.ladderConfig(r, choice, newConfigID())
	s.log.Info("obs multitrack config served", "room_id", route.RoomID, "stream", route.Name, "key_id", rooms.KeyID(key),
		"obs", req.Client.Version, "encoder", choice.Encoder, "tracks", len(choice.Video), "total_kbps", choice.TotalKbps(),
		"cap_kbps", capKbps, "config_id", cfg.Meta.ConfigID)
	writeJSON(w, http.StatusOK, cfg)
}

// ladderCap is a room's cap on its ladders: its own, else the server's.
func (s *Server) ladderCap(room int) int {
	if room > 0 {
		return room
	}
	return s.maxLadderKbps()
}

func (s *Server) maxLadderKbps() int {
	if s.cfg.MaxLadderKbps > 0 {
		return s.cfg.MaxLadderKbps
	}
	return defaultMaxLadderKbps
}

// ingestEndpoints are the publish URLs the dashboard shows, RTMP first: OBS takes the first
// RTMP one unless its server is rtmps.
func (s *Server) ingestEndpoints(r *http.Request) []golive.IngestEndpoint {
	eps := []golive.IngestEndpoint{{Protocol: "RTMP", URLTemplate: s.rtmpURL(r) + "/{stream_key}"}}
	if u := s.rtmpsURL(r); u != "" {
		eps = append(eps, golive.IngestEndpoint{Protocol: "RTMPS", URLTemplate: u + "/{stream_key}"})
	}
	return eps
}

// obsRefuse answers a refusal in the shape OBS shows: status "error" with the message as
// HTML, no tracks (see obsConfig for the status).
func (s *Server) obsRefuse(w http.ResponseWriter, r *http.Request, status int, msg string) {
	if strings.HasPrefix(r.Header.Get("User-Agent"), "obs-basic") {
		status = http.StatusOK
	}
	writeJSON(w, status, golive.Config{
		Meta:                  golive.Meta{Service: "onair", SchemaVersion: golive.SchemaVersion},
		Status:                &golive.Status{Result: golive.StatusError, HTMLEnUS: html.EscapeString(msg)},
		IngestEndpoints:       []golive.IngestEndpoint{},
		EncoderConfigurations: []golive.Encoder{},
		AudioConfigurations:   golive.AudioConfigs{Live: []golive.Audio{}},
	})
}

// newConfigID names one answer; OBS logs it and passes it back in the stream key's query
// (clientConfigId), which ties a publish to the ladder it was given.
func newConfigID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// roomOBSConfig serves GET /api/v1/rooms/{slug}/obs-config?hardware=&output= to the room's
// owner: a fixed configuration for the machine named, within the room's cap, to paste into
// OBS's "Config Override (JSON)", which OBS 32.2 and later read for the Custom service
// instead of a configuration URL.
func (s *Server) roomOBSConfig(w http.ResponseWriter, r *http.Request) {
	_, room, ok := s.editedRoom(w, r, "only the room's owner gets its OBS configuration")
	if !ok {
		return
	}
	q := r.URL.Query()
	hw, out := q.Get("hardware"), q.Get("output")
	if hw == "" {
		hw = "nvidia"
	}
	if out == "" {
		out = "1080p60"
	}
	req, err := golive.Profile(hw, out)
	if err != nil {
		writeAPIError(w, http.StatusBadRequest, "invalid", "", err.Error())
		return
	}
	capKbps := s.ladderCap(room.MaxLadderKbps)
	choice, err := golive.Choose(&req, capKbps)
	if err != nil {
		writeAPIError(w, http.StatusBadRequest, "invalid", "max_ladder_kbps", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, s.ladderConfig(r, choice, "override-"+hw+"-"+out))
}

// ladderConfig is the answer that hands OBS choice.
func (s *Server) ladderConfig(r *http.Request, choice golive.Choice, configID string) golive.Config {
	return golive.Config{
		Meta:                  golive.Meta{Service: "onair", SchemaVersion: golive.SchemaVersion, ConfigID: configID},
		Status:                &golive.Status{Result: golive.StatusSuccess},
		IngestEndpoints:       s.ingestEndpoints(r),
		EncoderConfigurations: choice.Video,
		AudioConfigurations:   choice.Audio,
	}
}

// Package hls turns live streams into HLS (Low-Latency HLS by default) with gohlslib and
// serves the playlists, parts and segments to players and CDNs.
package hls

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gohlslib/v2"
	"github.com/bluenviron/gohlslib/v2/pkg/codecs"

	"onair/media"
)

// Variants of HLS a server can produce.
const (
	VariantLowLatency = "lowlatency"
	VariantFMP4       = "fmp4"
	VariantMPEGTS     = "mpegts"
)

// Config configures a Server.
type Config struct {
	Logger  *slog.Logger
	Variant string
	// SegmentDuration is the shortest segment; segments end on a key frame after it.
	SegmentDuration time.Duration
	// PartDuration is the shortest Low-Latency HLS part.
	PartDuration time.Duration
	// DVRWindow is how far back a viewer can rewind.
	DVRWindow time.Duration
	// Directory keeps finished segments on disk, so that the DVR window does not sit in RAM.
	// It is owned by the server: leftovers of an earlier run are deleted at start.
	Directory string
	// EndGrace is how long an ended stream's final playlist stays available.
	EndGrace time.Duration
	// PlaylistWait bounds how long a request waits for a starting stream's first segment or
	// for a blocking playlist reload.
	PlaylistWait time.Duration
}

// Server is a media.Output producing HLS, and the http.Handler serving it.
type Server struct {
	cfg     Config
	log     *slog.Logger
	variant gohlslib.MuxerVariant

	mu       sync.Mutex
	sessions map[string]*session // by stream name: the current or most recently ended run

	stats [kindSegment + 1]struct{ requests, bytes atomic.Int64 }
}

// New checks cfg and prepares cfg.Directory.
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	var variant gohlslib.MuxerVariant
	switch cfg.Variant {
	case VariantLowLatency, "":
		variant = gohlslib.MuxerVariantLowLatency
	case VariantFMP4:
		variant = gohlslib.MuxerVariantFMP4
	case VariantMPEGTS:
		variant = gohlslib.MuxerVariantMPEGTS
	default:
		return nil, fmt.Errorf("hls: unknown variant %q (want %s, %s or %s)", cfg.Variant, VariantLowLatency, VariantFMP4, VariantMPEGTS)
	}
	if cfg.SegmentDuration <= 0 {
		cfg.SegmentDuration = time.Second
	}
	if cfg.PartDuration <= 0 {
		cfg.PartDuration = 200 * time.Millisecond
	}
	if cfg.DVRWindow <= 0 {
		cfg.DVRWindow = 2 * time.Minute
	}
	if cfg.EndGrace <= 0 {
		cfg.EndGrace = 30 * time.Second
	}
	if cfg.PlaylistWait <= 0 {
		cfg.PlaylistWait = 10 * time.Second
	}
	if cfg.Directory == "" {
		return nil, errors.New("hls: Directory is required")
	}
	if err := os.MkdirAll(cfg.Directory, 0o750); err != nil {
		return nil, fmt.Errorf("hls: create %s: %w", cfg.Directory, err)
	}
	old, err := filepath.Glob(filepath.Join(cfg.Directory, sessionDirPrefix+"*"))
	if err != nil {
		return nil, fmt.Errorf("hls: list %s: %w", cfg.Directory, err)
	}
	for _, d := range old {
		if err := os.RemoveAll(d); err != nil {
			return nil, fmt.Errorf("hls: remove leftover %s: %w", d, err)
		}
	}
	return &Server{
		cfg:      cfg,
		log:      cfg.Logger.With("component", "hls"),
		variant:  variant,
		sessions: map[string]*session{},
	}, nil
}

// Run removes ended streams once their grace period is over, until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			s.mu.Lock()
			all := s.sessions
			s.sessions = map[string]*session{}
			s.mu.Unlock()
			for _, sess := range all {
				sess.close()
			}
			return nil
		case now := <-tick.C:
			var expired []*session
			s.mu.Lock()
			for name, sess := range s.sessions {
				if t, ok := sess.endedAt(); ok && now.Sub(t) >= s.cfg.EndGrace {
					delete(s.sessions, name)
					expired = append(expired, sess)
				}
			}
			s.mu.Unlock()
			for _, sess := range expired {
				sess.close()
			}
		}
	}
}

// OpenSink implements media.Output.
func (s *Server) OpenSink(st *media.Stream) (media.Sink, error) {
	variant := s.variant
	tracks := st.Tracks()
	if variant == gohlslib.MuxerVariantMPEGTS && tracks.Video != nil && tracks.Video.Codec != media.CodecH264 {
		s.log.Info("mpegts carries only H.264: serving fmp4 instead", "stream", st.Name(), "codec", tracks.Video.Codec)
		variant = gohlslib.MuxerVariantFMP4
	}

	segments := int(s.cfg.DVRWindow/s.cfg.SegmentDuration) + 1
	minSegments := 3
	if variant == gohlslib.MuxerVariantLowLatency {
		minSegments = 7 // gohlslib (and iOS) need at least 7 for LL-HLS
	}
	segments = max(segments, minSegments)

	dir := filepath.Join(s.cfg.Directory, sessionDirPrefix+st.Name()+"-"+st.ID())
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("hls: create %s: %w", dir, err)
	}

	sess := &session{
		id:        st.ID(),
		name:      st.Name(),
		dir:       dir,
		log:       s.log.With("stream", st.Name(), "id", st.ID()),
		ended:     make(chan struct{}),
		responses: responses{entries: map[string]*sharedResponse{}},
	}
	var muxTracks []*gohlslib.Track
	if v := tracks.Video; v != nil {
		var c codecs.Codec
		switch v.Codec {
		case media.CodecH264:
			c = &codecs.H264{SPS: v.SPS, PPS: v.PPS}
		case media.CodecH265:
			c = &codecs.H265{VPS: v.VPS, SPS: v.SPS, PPS: v.PPS}
		case media.CodecAV1:
			c = &codecs.AV1{SequenceHeader: v.SequenceHeader}
		default:
			return nil, fmt.Errorf("hls: video codec %q not supported", v.Codec)
		}
		sess.video = &gohlslib.Track{Codec: c, ClockRate: 90000}
		sess.videoCodec = v.Codec
		muxTracks = append(muxTracks, sess.video)
	}
	if a := tracks.Audio; a != nil && a.Codec == media.CodecAAC && a.AAC != nil {
		sess.audio = &gohlslib.Track{Codec: &codecs.MPEG4Audio{Config: *a.AAC}, ClockRate: a.SampleRate}
		muxTracks = append(muxTracks, sess.audio)
	}

	sess.muxer = &gohlslib.Muxer{
		Tracks:             muxTracks,
		Variant:            variant,
		SegmentCount:       segments,
		SegmentMinDuration: s.cfg.SegmentDuration,
		PartMinDuration:    s.cfg.PartDuration,
		Directory:          dir,
		OnEncodeError: func(err error) {
			sess.log.Debug("hls encode warning", "err", err)
		},
	}
	if err := sess.muxer.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("hls: start muxer for %q: %w", st.Name(), err)
	}

	s.mu.Lock()
	prev := s.sessions[st.Name()]
	s.sessions[st.Name()] = sess
	s.mu.Unlock()
	if prev != nil {
		prev.close() // a new run replaces the ended one at once
	}
	return &sink{sess: sess, server: s}, nil
}

func (s *Server) lookup(name string) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[name]
}

// release drops sess if it is still the current session of its stream.
func (s *Server) release(sess *session) {
	s.mu.Lock()
	if s.sessions[sess.name] == sess {
		delete(s.sessions, sess.name)
	}
	s.mu.Unlock()
	sess.close()
}

// Live reports whether name has a session that has not ended.
func (s *Server) Live(name string) bool {
	sess := s.lookup(name)
	if sess == nil {
		return false
	}
	_, ended := sess.endedAt()
	return !ended
}

const sessionDirPrefix = "live-"

// sink writes one stream's access units into its muxer.
type sink struct {
	sess   *session
	server *Server
	errors int
}

func (k *sink) WriteAccessUnit(au *media.AccessUnit) error {
	sess := k.sess
	var err error
	switch {
	case au.Video && sess.video != nil:
		pts := durationToClock(au.PTS, 90000)
		switch sess.videoCodec {
		case media.CodecH264:
			err = sess.muxer.WriteH264(sess.video, au.Received, pts, au.Payload)
		case media.CodecH265:
			err = sess.muxer.WriteH265(sess.video, au.Received, pts, au.Payload)
		case media.CodecAV1:
			err = sess.muxer.WriteAV1(sess.video, au.Received, pts, au.Payload)
		}
	case !au.Video && sess.audio != nil:
		err = sess.muxer.WriteMPEG4Audio(sess.audio, au.Received, durationToClock(au.PTS, sess.audio.ClockRate), au.Payload)
	}
	if err != nil {
		// A frame the muxer cannot place (e.g. a timestamp jump) is skipped; the next key
		// frame recovers. Stopping HLS for the whole stream would be worse.
		k.errors++
		if k.errors == 1 || k.errors%100 == 0 {
			sess.log.Warn("hls: access unit skipped", "err", err, "skipped_total", k.errors)
		}
	}
	return nil
}

func (k *sink) Close(err error) {
	if errors.Is(err, media.ErrSinkTooSlow) {
		k.sess.log.Warn("hls: muxer fell behind; stream stops on HLS")
	}
	if !k.sess.finish(k.server.cfg) {
		k.server.release(k.sess)
	}
}

func durationToClock(d time.Duration, rate int) int64 {
	secs := int64(d / time.Second)
	rest := int64(d % time.Second)
	return secs*int64(rate) + rest*int64(rate)/int64(time.Second)
}

// classify tells what a file name of the muxer is, for caching and for the ended state.
type fileKind int

const (
	kindUnknown fileKind = iota
	kindMultivariant
	kindMediaPlaylist
	kindInit
	kindPart
	kindSegment
)

func classify(file string) fileKind {
	switch {
	case file == "index.m3u8":
		return kindMultivariant
	case strings.HasSuffix(file, "_stream.m3u8"):
		return kindMediaPlaylist
	case strings.HasSuffix(file, "_init.mp4"):
		return kindInit
	case strings.Contains(file, "_part") && strings.HasSuffix(file, ".mp4"):
		return kindPart
	case strings.Contains(file, "_seg") && (strings.HasSuffix(file, ".mp4") || strings.HasSuffix(file, ".ts")):
		return kindSegment
	}
	return kindUnknown
}

// cacheControl is what a CDN may do with a successful response of each kind. Parts,
// segments and init files never change (their names are unique to a run), playlists do.
// Blocking playlist requests carry the run's id and the media sequence they wait for, so
// caching their answer can never hand an old run's playlist to a new viewer.
func cacheControl(kind fileKind, blocking, sessionPinned bool) string {
	switch kind {
	case kindInit, kindPart, kindSegment:
		return "public, max-age=31536000, immutable"
	case kindMediaPlaylist:
		if blocking && sessionPinned {
			return "public, max-age=60"
		}
		if !sessionPinned {
			return "no-cache"
		}
		return "public, max-age=1"
	case kindMultivariant:
		return "public, max-age=1"
	}
	return "no-store"
}

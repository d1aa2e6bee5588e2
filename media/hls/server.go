// Package hls serves live streams as Low-Latency HLS with onair's own segmenter: each
// run's access units are cut into parts and segments, marshalled once into the run's fMP4
// log (media/fmp4), and served from it: the live edge's parts from memory, the DVR
// window's segments as byte ranges of the log with sendfile, and "from the start" from the
// log and from what an archive (the recording) holds of it.
package hls

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"onair/media"
	"onair/media/fmp4"
)

// Config configures a Server.
type Config struct {
	Logger *slog.Logger
	// SegmentDuration is when a segment is due: it ends at the first key frame after it.
	// Rounded up to whole seconds it is the target duration, which no segment exceeds.
	SegmentDuration time.Duration
	// PartDuration is the Low-Latency HLS part target: no part is longer.
	PartDuration time.Duration
	// DVRWindow is how far back a viewer can rewind.
	DVRWindow time.Duration
	// Dir keeps the runs' logs, one directory each. Leftovers of an earlier process are
	// removed at start unless Archive owns them.
	Dir string
	// ChunkSize is the size of the log's chunks for runs an archive keeps (its object
	// store's part size); the logs of other runs are cut into chunks of a fraction of the
	// DVR window, so that what leaves the window leaves the disk soon.
	ChunkSize int64
	// Archive, when set, is offered every run (media/record keeps them as recordings).
	Archive Archive
	// EndGrace is how long an ended stream's final playlist stays available.
	EndGrace time.Duration
	// PlaylistWait bounds how long a request waits for a starting stream's first part or
	// for a blocking playlist reload.
	PlaylistWait time.Duration
}

// Archive keeps runs' logs beyond the DVR window (media/record: as recordings).
type Archive interface {
	// Keep is offered each run as it starts, with its log; it returns nil, nil to leave
	// the run alone. A run kept holds its log's chunks until the archive releases them
	// (Log.Release), and is served "from the start".
	Keep(st *media.Stream, log *fmp4.Log) (Kept, error)
	// Owns reports whether a run's directory left by an earlier process is the archive's
	// to recover.
	Owns(dir string) bool
}

// dvrChunks is how many chunks the log of a run no archive keeps has over its DVR window:
// what leaves the window leaves the disk within a chunk.
const dvrChunks = 8

// Server is a media.Output producing LL-HLS, and the http.Handler serving it.
type Server struct {
	cfg Config
	log *slog.Logger

	mu   sync.Mutex
	runs map[string]*run // by stream name: the current or most recently ended run

	stats [kindSegment + 1]struct{ requests, bytes atomic.Int64 }
}

// New checks cfg and prepares cfg.Dir.
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.SegmentDuration <= 0 {
		cfg.SegmentDuration = time.Second
	}
	if cfg.PartDuration <= 0 {
		cfg.PartDuration = 200 * time.Millisecond
	}
	if cfg.PartDuration >= cfg.SegmentDuration {
		return nil, fmt.Errorf("hls: part duration %s must be shorter than the segment duration %s", cfg.PartDuration, cfg.SegmentDuration)
	}
	if cfg.DVRWindow <= 0 {
		cfg.DVRWindow = 2 * time.Minute
	}
	if cfg.ChunkSize <= 0 {
		cfg.ChunkSize = 8 << 20
	}
	if cfg.EndGrace <= 0 {
		cfg.EndGrace = 30 * time.Second
	}
	if cfg.PlaylistWait <= 0 {
		cfg.PlaylistWait = 10 * time.Second
	}
	if cfg.Dir == "" {
		return nil, errors.New("hls: Dir is required")
	}
	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("hls: create %s: %w", cfg.Dir, err)
	}
	s := &Server{cfg: cfg, log: cfg.Logger.With("component", "hls"), runs: map[string]*run{}}
	if err := s.removeLeftovers(); err != nil {
		return nil, err
	}
	return s, nil
}

// removeLeftovers removes the logs an earlier process left that no archive recovers.
func (s *Server) removeLeftovers() error {
	entries, err := os.ReadDir(s.cfg.Dir)
	if err != nil {
		return fmt.Errorf("hls: list %s: %w", s.cfg.Dir, err)
	}
	for _, e := range entries {
		dir := filepath.Join(s.cfg.Dir, e.Name())
		if s.cfg.Archive != nil && s.cfg.Archive.Owns(dir) {
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("hls: remove leftover %s: %w", dir, err)
		}
	}
	return nil
}

// Run removes ended streams once their grace period is over, until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			s.mu.Lock()
			all := s.runs
			s.runs = map[string]*run{}
			s.mu.Unlock()
			for _, r := range all {
				r.release()
			}
			return nil
		case now := <-tick.C:
			var expired []*run
			s.mu.Lock()
			for name, r := range s.runs {
				if t, ok := r.endedAtTime(); ok && now.Sub(t) >= s.cfg.EndGrace {
					delete(s.runs, name)
					expired = append(expired, r)
				}
			}
			s.mu.Unlock()
			for _, r := range expired {
				r.release()
			}
		}
	}
}

// release lets the log go: HLS needs none of it any more.
func (r *run) release() { r.mediaLog.Release(holdHLS) }

// OpenSink implements media.Output.
func (s *Server) OpenSink(st *media.Stream) (media.Sink, error) {
	if st.Rendition() != "" {
		return s.openRendition(st)
	}
	tracks, err := fmp4.NewTracks(st.Tracks())
	if err != nil {
		return nil, fmt.Errorf("hls %q: %w", st.Name(), err)
	}
	avInit, err := fmp4.Init(tracks.List()...)
	if err != nil {
		return nil, fmt.Errorf("hls %q: %w", st.Name(), err)
	}
	r := &run{
		id: st.ID(), name: st.Name(), log: s.log.With("stream", st.Name(), "id", st.ID()),
		tracks: tracks, avInit: avInit, segDue: s.cfg.SegmentDuration,
		target: time.Duration(math.Ceil(s.cfg.SegmentDuration.Seconds())) * time.Second,
		window: max(3, int(s.cfg.DVRWindow/s.cfg.SegmentDuration)+1), maxHist: maxRunSegments,
	}
	r.changed = make(chan struct{})
	if v := st.Tracks().Video; v != nil {
		r.width, r.height = v.Width, v.Height
	}
	if tracks.Video != nil {
		r.rends = append(r.rends, &rend{name: renditionVideo, idx: 0, track: tracks.Video, partTarget: s.cfg.PartDuration})
	}
	if a := tracks.Audio; a != nil {
		// Audio parts end at the audio frame nearest the video's part boundary, so that
		// they may run a frame past the part target.
		target := s.cfg.PartDuration
		if tracks.Video != nil {
			// Rounded up to what the playlist writes (five decimals), so that no part
			// reads longer than its target.
			target += a.Duration(a.FrameTicks(&fmp4.Sample{}))
			target = (target + 10*time.Microsecond - 1).Truncate(10 * time.Microsecond)
		}
		r.rends = append(r.rends, &rend{name: renditionAudio, idx: 1, track: a, partTarget: target})
	}
	for _, rd := range r.rends {
		if rd.init, err = fmp4.Init(rd.track); err != nil {
			return nil, fmt.Errorf("hls %q: %w", st.Name(), err)
		}
	}
	r.mediaLog, err = fmp4.CreateLog(fmp4.LogConfig{Dir: filepath.Join(s.cfg.Dir, st.ID()), ChunkSize: s.cfg.ChunkSize, Init: avInit})
	if err != nil {
		return nil, fmt.Errorf("hls %q: %w", st.Name(), err)
	}
	r.mediaLog.Hold(holdHLS, 1, 0)
	if s.cfg.Archive != nil {
		if r.kept, err = s.cfg.Archive.Keep(st, r.mediaLog); err != nil {
			r.log.Error("hls: run not archived", "err", err)
		}
	}
	if r.kept != nil {
		r.hist, r.histTimes = []histSeg{}, map[int]time.Time{}
	}
	k := &sink{server: s, r: r, g: newSegmenter(r, r.mediaLog, st, s.cfg)}
	if r.kept == nil {
		k.g.chunkSpan = r.tracks.List()[0].Ticks(max(time.Second, s.cfg.DVRWindow/dvrChunks))
	}

	s.mu.Lock()
	prev := s.runs[st.Name()]
	s.runs[st.Name()] = r
	s.mu.Unlock()
	if prev != nil {
		prev.release() // a new run replaces the ended one at once
	}
	return k, nil
}

func (s *Server) lookup(name string) *run {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runs[name]
}

// drop forgets r if it is still the current run of its stream.
func (s *Server) drop(r *run) {
	s.mu.Lock()
	if s.runs[r.name] == r {
		delete(s.runs, r.name)
	}
	s.mu.Unlock()
	r.release()
}

// Live reports whether name has a run that has not ended.
func (s *Server) Live(name string) bool {
	r := s.lookup(name)
	if r == nil {
		return false
	}
	_, ended := r.endedAtTime()
	return !ended
}

// sink feeds one run's segmenter.
type sink struct {
	server  *Server
	r       *run
	g       *segmenter
	skipped int
}

func (k *sink) WriteAccessUnit(au *media.AccessUnit) error {
	err := k.g.write(au)
	switch {
	case err == nil:
	case errors.Is(err, errPartTooLarge), errors.Is(err, fmp4.ErrLogFailed):
		return err
	default:
		// An access unit that cannot be placed is skipped; the next key frame recovers.
		// Stopping HLS for the whole run would be worse.
		k.skipped++
		if k.skipped == 1 || k.skipped%100 == 0 {
			k.r.log.Warn("hls: access unit skipped", "err", err, "skipped_total", k.skipped)
		}
	}
	return nil
}

// Paused publishes the part being cut, and ends its segment, when the publisher drops:
// players get every frame received at once instead of when a publisher comes back, and
// the segmenter would end them there anyway, at the discontinuity.
func (k *sink) Paused() {
	if err := k.g.flush(); err != nil {
		k.r.log.Error("hls: the part before the publisher dropped is lost", "err", err)
	}
}

func (k *sink) Close(err error) {
	r := k.r
	if errors.Is(err, media.ErrSinkTooSlow) {
		r.log.Warn("hls: segmenter fell behind; the run stops on HLS")
	} else if err != nil {
		r.log.Error("hls: the run stops on HLS", "err", err)
	}
	r.beginEnd()
	if ferr := k.g.flush(); ferr != nil {
		r.log.Error("hls: last part lost", "err", ferr)
	}
	last, serr := r.mediaLog.Seal()
	if serr != nil {
		r.log.Error("hls: seal the run's log", "err", serr)
	}
	if r.kept != nil {
		r.kept.Ended(last)
	}
	r.end()
	if r.main != nil {
		r.dropRendition() // its players go back to the main's multivariant playlist
		return
	}
	r.mu.RLock()
	content := r.hasContent()
	r.mu.RUnlock()
	if !content {
		k.server.drop(r)
	}
}

package hls

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gohlslib/v2/pkg/playlist"

	"onair/media"
	"onair/media/fmp4"
)

// A stream's further renditions (media.Stream.Rendition) are runs of their own, each with
// its log and segmenter, attached to the main rendition's run: its multivariant playlist
// lists them, and every media playlist reports the others. A rendition's segments start
// where the main's do, with the same media sequence numbers and dates, so that players
// switch between renditions at any segment boundary; its audio is the main's.

// renditionPrefix starts the file-name token of a further rendition ("r-360p").
const renditionPrefix = "r-"

// alignWait bounds how long a rendition's segmenter waits for the main to get as far as
// one of its key frames, to learn whether the main starts a segment there.
const alignWait = 2 * time.Second

// alignSlack is how far apart a rendition's key frame and the start of the main's segment
// may be and still be one boundary: RTMP's millisecond timestamps.
const alignSlack = 20 * time.Millisecond

// ladder is a main run's further renditions.
type ladder struct {
	mu   sync.Mutex
	subs []*run
}

// runSummary is what other runs of the ladder read of a run without taking its lock (a
// run's lock is never held while another's is taken).
type runSummary struct {
	msn, part          int
	peak, avg, audio   int64 // bits per second: both tracks' peak and average, audio's average
	fps                float64
	width, height      int
	videoCodec, aCodec string
}

// isRendition reports whether a file-name token names a further rendition.
func isRendition(token string) bool {
	name, ok := strings.CutPrefix(token, renditionPrefix)
	return ok && media.ValidRendition(name) == nil
}

// openRendition starts the run of a further rendition of a stream whose main run is live
// here: its video alone, beside the main's run.
func (s *Server) openRendition(st *media.Stream) (media.Sink, error) {
	main := s.lookup(st.Name())
	if main == nil || st.Main() == nil || main.id != st.Main().ID() {
		return nil, fmt.Errorf("hls %q rendition %q: the main rendition's run is not live here", st.Name(), st.Rendition())
	}
	if _, ended := main.endedAtTime(); ended {
		return nil, fmt.Errorf("hls %q rendition %q: the main rendition's run ended", st.Name(), st.Rendition())
	}
	tracks, err := fmp4.NewTracks(media.Tracks{Video: st.Tracks().Video})
	if err != nil {
		return nil, fmt.Errorf("hls %q rendition %q: %w", st.Name(), st.Rendition(), err)
	}
	init, err := fmp4.Init(tracks.Video)
	if err != nil {
		return nil, fmt.Errorf("hls %q rendition %q: %w", st.Name(), st.Rendition(), err)
	}
	v := st.Tracks().Video
	r := &run{
		id: st.ID(), name: st.Name(), log: s.log.With("stream", st.Name(), "rendition", st.Rendition(), "id", st.ID()),
		tracks: tracks, avInit: init, segDue: main.segDue, target: main.target, window: main.window,
		width: v.Width, height: v.Height, maxHist: maxRunSegments,
	}
	r.main, r.aligned = main, st.Aligned
	r.changed = make(chan struct{})
	r.rends = []*rend{{name: renditionPrefix + st.Rendition(), track: tracks.Video, init: init, partTarget: s.cfg.PartDuration}}
	r.mediaLog, err = fmp4.CreateLog(fmp4.LogConfig{Dir: filepath.Join(s.cfg.Dir, st.ID()), ChunkSize: s.cfg.ChunkSize, Init: init})
	if err != nil {
		return nil, fmt.Errorf("hls %q rendition %q: %w", st.Name(), st.Rendition(), err)
	}
	r.mediaLog.Hold(holdHLS, 1, 0)
	k := &sink{server: s, r: r, g: newSegmenter(r, r.mediaLog, st, s.cfg)}
	k.g.chunkSpan = tracks.Video.Ticks(max(time.Second, s.cfg.DVRWindow/dvrChunks))
	main.ladder.mu.Lock()
	main.ladder.subs = append(main.ladder.subs, r)
	main.ladder.mu.Unlock()
	return k, nil
}

// dropRendition takes an ended rendition off its main's ladder.
func (r *run) dropRendition() {
	l := &r.main.ladder
	l.mu.Lock()
	for i, sub := range l.subs {
		if sub == r {
			l.subs = append(l.subs[:i], l.subs[i+1:]...)
			break
		}
	}
	l.mu.Unlock()
	// The main's playlists, which list and report it, change.
	r.main.mu.Lock()
	r.main.bump()
	r.main.mu.Unlock()
	r.release()
}

// rungs lists the renditions of the main run r that players are offered: started, and
// found aligned with the main.
func (r *run) rungs() []*run {
	r.ladder.mu.Lock()
	defer r.ladder.mu.Unlock()
	var out []*run
	for _, sub := range r.ladder.subs {
		if sub.summary.Load() != nil && sub.aligned() {
			out = append(out, sub)
		}
	}
	return out
}

// sub finds a further rendition of the main run r by its file-name token.
func (r *run) sub(token string) *run {
	r.ladder.mu.Lock()
	defer r.ladder.mu.Unlock()
	for _, sub := range r.ladder.subs {
		if sub.rends[0].name == token {
			return sub
		}
	}
	return nil
}

// summarize publishes what the ladder's other runs read of r. Called with r.mu held.
func (r *run) summarize() {
	if !r.hasContent() {
		return
	}
	sm := &runSummary{width: r.width, height: r.height, fps: r.frameRate()}
	sm.msn, sm.part = r.position()
	sm.peak, sm.avg = r.bitrates()
	if r.durAll > 0 {
		sm.audio = int64(float64(r.audioBytes*8) / r.durAll.Seconds())
	}
	for _, rd := range r.rends {
		if rd.idx == 0 {
			sm.videoCodec = codecString(rd.track)
		} else {
			sm.aCodec = codecString(rd.track)
		}
	}
	r.summary.Store(sm)
}

// ladderReports are the RENDITION-REPORTs of the ladder's runs other than r, for r's
// media playlists. Called with r.mu read-locked: it reads the others' summaries only.
func (r *run) ladderReports() []*playlist.MediaRenditionReport {
	main := r
	if r.main != nil {
		main = r.main
	}
	var out []*playlist.MediaRenditionReport
	report := func(o *run, token string) {
		if sm := o.summary.Load(); sm != nil {
			out = append(out, &playlist.MediaRenditionReport{URI: pinned(playlistName(token), o.id), LastMSN: sm.msn, LastPart: ptr(sm.part)})
		}
	}
	if main != r {
		for _, rd := range main.rends {
			report(main, rd.name)
		}
	}
	for _, sub := range main.rungs() {
		if sub != r {
			report(sub, sub.rends[0].name)
		}
	}
	return out
}

// ladderVariants adds the further renditions to the main's multivariant playlist, and
// puts every variant in descending order of bandwidth.
func (r *run) ladderVariants(mv *playlist.Multivariant, audio string) {
	var audioBits int64
	if sm := r.summary.Load(); sm != nil {
		audioBits = sm.audio
	}
	for _, sub := range r.rungs() {
		sm := sub.summary.Load()
		v := &playlist.MultivariantVariant{Bandwidth: int(sm.peak + audioBits), AverageBandwidth: ptr(int(sm.avg + audioBits)),
			Codecs: []string{sm.videoCodec}, URI: pinned(playlistName(sub.rends[0].name), sub.id)}
		if sm.width > 0 && sm.height > 0 {
			v.Resolution = strconv.Itoa(sm.width) + "x" + strconv.Itoa(sm.height)
		}
		if sm.fps > 0 {
			v.FrameRate = ptr(sm.fps)
		}
		if audio != "" {
			v.Codecs = append(v.Codecs, audio)
			v.Audio = "audio"
		}
		mv.Variants = append(mv.Variants, v)
	}
	sort.SliceStable(mv.Variants, func(i, j int) bool { return mv.Variants[i].Bandwidth > mv.Variants[j].Bandwidth })
}

// segmentStartAt waits (at most alignWait) until the main run's media reaches t, and
// reports the sequence number and date of its segment that starts at t, if one does.
func (r *run) segmentStartAt(t time.Duration) (seq int, date time.Time, found bool) {
	ctx, cancel := context.WithTimeout(context.Background(), alignWait)
	defer cancel()
	r.wait(ctx, func() bool { return r.edge >= t+alignSlack })
	r.mu.RLock()
	defer r.mu.RUnlock()
	segs := r.segs
	if r.open != nil {
		segs = append(segs[:len(segs):len(segs)], r.open)
	}
	for i := len(segs) - 1; i >= 0; i-- {
		s := segs[i]
		if d := s.at - t; d <= alignSlack && d >= -alignSlack {
			return s.Seq, s.Time, s.Independent
		}
		if s.at < t-alignSlack {
			break
		}
	}
	return 0, time.Time{}, false
}

// anchor starts a rendition's first segment at its key frame at dts (lead ticks) where
// the main starts one: same sequence number, same date. false: the main starts none
// there, and the rendition waits for its next key frame. The main's first two segments
// (one part, then the rest of its first GOP) have no peer in a rendition.
func (g *segmenter) anchor(dts int64) bool {
	seq, date, ok := g.r.main.segmentStartAt(g.lead.t.Duration(dts))
	if !ok || seq < 2 {
		return false
	}
	g.r.mu.Lock()
	g.r.nextSeq = seq
	g.r.mu.Unlock()
	g.first = false
	g.chunkStart, g.origin = dts, dts
	g.wall0, g.media0 = date, dts
	return true
}

// runLadder is what a run holds of the ladder.
type runLadder struct {
	ladder  ladder                     // a main run's further renditions
	main    *run                       // a further rendition's main run
	aligned func() bool                // a further rendition is offered to players
	summary atomic.Pointer[runSummary] // nil until the run has content
	// edge is where the run's latest part ends, in its lead's media time.
	edge time.Duration
}

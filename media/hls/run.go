package hls

import (
	"context"
	"io"
	"log/slog"
	"sort"
	"sync"
	"time"

	"onair/media/fmp4"
)

// maxLiveEdgeBytes bounds the parts a run keeps in memory: past it, older parts are read
// from the log even at the live edge.
const maxLiveEdgeBytes = 8 << 20

// maxRunSegments bounds the compact index of a run's every segment that "from the start"
// needs, about 25 bytes a segment: past it (55 hours of 1 s segments) the run is no longer
// offered from the start.
const maxRunSegments = 200_000

// holdHLS is the log holder name of the DVR window.
const holdHLS = "hls"

// rend is one rendition of a run: one of its tracks, served on its own.
type rend struct {
	name       string // renditionVideo or renditionAudio
	idx        int    // 0 video, 1 audio: the index into parts' and segments' arrays
	track      *fmp4.Track
	init       []byte
	partTarget time.Duration
}

// livePart is one part of the run, in every rendition.
type livePart struct {
	n     int
	indep bool
	end   time.Duration    // where the part ends, in the lead's media time
	dur   [2]time.Duration // video, audio
	size  [2]int64
	off   [2]int64  // offsets in the log, -1 until written
	buf   [2][]byte // kept in memory near the live edge, nil after
	// audioLag is how much later than the video its audio starts (an audio frame at most).
	audioLag time.Duration
}

// liveSeg is a segment of the DVR window, or the open one.
type liveSeg struct {
	fmp4.Segment // for the open segment: what is known yet
	dur          [2]time.Duration
	parts        []*livePart
	firstPart    int
	frames       int
	at           time.Duration // where the segment starts, in the lead's media time
	// audioLag is how much later than the video the segment's audio starts: its date in
	// the audio playlist is that much later, so that players placing segments by date put
	// each track where its samples are.
	audioLag time.Duration
}

// histSeg is a segment of the run for "from the start", compactly: both tracks' bytes as
// one range of the log.
type histSeg struct {
	off   int64
	size  uint32
	dur   uint32 // microseconds
	flags uint8
}

const (
	histIndependent = 1 << iota
	histDiscontinuity
)

// run is one run of a stream on HLS: its segmenter writes, requests read.
type run struct {
	id, name string
	log      *slog.Logger
	tracks   fmp4.Tracks
	rends    []*rend
	avInit   []byte
	width    int
	height   int
	target   time.Duration // TARGETDURATION, whole seconds, fixed for the run
	segDue   time.Duration
	window   int // segments in the DVR window
	mediaLog *fmp4.Log
	kept     Kept // nil when no archive keeps the run
	maxHist  int  // maxRunSegments, lower in tests

	mu        sync.RWMutex
	segs      []*liveSeg // the DVR window, oldest first
	open      *liveSeg
	nextSeq   int
	nextPart  int
	discGone  int // discontinuities that left the window: EXT-X-DISCONTINUITY-SEQUENCE
	hist      []histSeg
	histTimes map[int]time.Time // PROGRAM-DATE-TIME of the first and discontinuous segments
	ended     bool
	endedAt   time.Time
	// ending holds back the wake-ups of the last parts that the end flushes, so that the
	// requests they would release get the final playlist.
	ending     bool
	changed    chan struct{} // closed and replaced whenever the run changes
	version    uint64
	edgeBytes  int64
	peakBits   int64 // highest bit rate of a complete segment, both tracks
	bytesAll   int64
	audioBytes int64
	durAll     time.Duration

	cache renderCache
	runLadder
}

// addPart publishes a part: into open, the new open segment, when given.
func (r *run) addPart(p *livePart, open *liveSeg, frames int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if open != nil {
		open.Seq, open.firstPart, open.audioLag = r.nextSeq, r.nextPart, p.audioLag
		r.nextSeq++
		r.open = open
	}
	p.n = r.nextPart
	r.nextPart++
	o := r.open
	o.parts = append(o.parts, p)
	o.frames += frames
	for i := range 2 {
		o.dur[i] += p.dur[i]
	}
	r.edgeBytes += p.size[0] + p.size[1]
	if r.edgeBytes > maxLiveEdgeBytes {
		r.forgetEdge()
	}
	r.edge = p.end
	r.summarize()
	r.bump()
}

// closeSegment completes the open segment, whose audio parts went into the log at
// audioOff (-1: none), and returns it as the log indexes it.
func (r *run) closeSegment(audioOff int64, d time.Duration) fmp4.Segment {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.open
	r.open = nil
	off := audioOff
	for _, p := range s.parts {
		if off >= 0 {
			p.off[1] = off
			off += p.size[1]
		}
		s.Video += p.size[0]
		s.Audio += p.size[1]
	}
	s.Offset = s.parts[0].off[0]
	if s.Video == 0 {
		s.Offset = s.parts[0].off[1]
	}
	s.Duration = d
	r.segs = append(r.segs, s)
	if r.kept != nil && r.hist != nil {
		r.remember(s)
	}
	for len(r.segs) > r.window {
		if r.segs[0].Discontinuity {
			r.discGone++
		}
		r.segs[0] = nil
		r.segs = r.segs[1:]
	}
	r.forgetEdge()
	if d > 0 {
		r.peakBits = max(r.peakBits, int64(float64(s.Size()*8)/d.Seconds()))
	}
	r.bytesAll += s.Size()
	r.audioBytes += s.Audio
	r.durAll += d
	r.summarize()
	r.bump()
	return s.Segment
}

// remember adds a complete segment to the run's index for "from the start".
func (r *run) remember(s *liveSeg) {
	if len(r.hist) >= r.maxHist {
		r.log.Warn("hls: run too long to be offered from the start any more", "segments", len(r.hist))
		r.hist, r.histTimes = nil, nil
		return
	}
	var flags uint8
	if s.Independent {
		flags |= histIndependent
	}
	if s.Discontinuity {
		flags |= histDiscontinuity
	}
	if s.Seq == 0 || s.Discontinuity {
		r.histTimes[s.Seq] = s.Time
	}
	r.hist = append(r.hist, histSeg{off: s.Offset, size: uint32(s.Size()), dur: uint32(s.Duration.Microseconds()), flags: flags})
}

// forgetEdge drops the buffers of the complete segments' parts, and of the open segment's
// oldest parts while they hold more than maxLiveEdgeBytes: the log has them. Players at the
// live edge fetch each part as it comes (the preload hint), so only the open segment's
// parts are asked for often; a player joining at a segment boundary reads a few older
// parts from the log. (The open segment's audio parts are only in memory until the
// segment ends, each at most maxPartBytes.)
func (r *run) forgetEdge() {
	keep := len(r.segs)
	segs := r.segs
	if r.open != nil {
		segs = append(segs[:len(segs):len(segs)], r.open)
	}
	for i, s := range segs {
		for _, p := range s.parts {
			for k := range p.buf {
				if p.buf[k] == nil || p.off[k] < 0 || (i >= keep && r.edgeBytes <= maxLiveEdgeBytes) {
					continue
				}
				r.edgeBytes -= int64(len(p.buf[k]))
				p.buf[k] = nil
			}
		}
	}
}

// holdWindow tells the log which chunks the DVR window needs.
func (r *run) holdWindow() {
	r.mu.RLock()
	var first int64 = -1
	if len(r.segs) > 0 {
		first = r.segs[0].Offset
	}
	r.mu.RUnlock()
	if first >= 0 {
		r.mediaLog.Hold(holdHLS, r.mediaLog.ChunkOf(first), 0)
	}
}

// ending announces the run's end: what the segmenter flushes now is part of the final
// playlist, not an update of the live one.
func (r *run) beginEnd() {
	r.mu.Lock()
	r.ending = true
	r.mu.Unlock()
}

// end marks the run ended: playlists get EXT-X-ENDLIST, waiting requests are answered.
func (r *run) end() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ended, r.endedAt = true, time.Now()
	r.bump()
}

func (r *run) bump() {
	if r.ending && !r.ended {
		return
	}
	r.version++
	if r.changed != nil {
		close(r.changed)
	}
	r.changed = make(chan struct{})
}

// endedAtTime reports when the run ended, if it did.
func (r *run) endedAtTime() (time.Time, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.endedAt, r.ended
}

// wait waits until ready (called with r.mu read-locked) holds, the run ends, or ctx ends;
// it reports whether ready holds.
func (r *run) wait(ctx context.Context, ready func() bool) bool {
	for {
		r.mu.RLock()
		ok, ended, ch := ready(), r.ended, r.changed
		r.mu.RUnlock()
		if ok {
			return true
		}
		if ended {
			return false
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}

// hasContent: the run has a complete segment, which its first part makes. Called with
// r.mu held.
func (r *run) hasContent() bool { return len(r.segs) > 0 }

// position is the newest part: its segment's sequence number and index. Called with r.mu
// held, once the run has content.
func (r *run) position() (msn, part int) {
	if r.open != nil {
		return r.open.Seq, len(r.open.parts) - 1
	}
	last := r.segs[len(r.segs)-1]
	return last.Seq, len(last.parts) - 1
}

// hasPart reports whether part (msn, part) exists; a part past the last of a complete
// segment is part 0 of the next segment. Called with r.mu held.
func (r *run) hasPart(msn, part int) bool {
	if !r.hasContent() {
		return false
	}
	cur, last := r.position()
	for msn < cur {
		s := r.segment(msn)
		if s == nil || part < len(s.parts) {
			return true // gone from the window, or there
		}
		msn, part = msn+1, 0
	}
	return msn == cur && part <= last
}

// segment finds a segment of the window, or the open one, by sequence number. Called with
// r.mu held.
func (r *run) segment(seq int) *liveSeg {
	if r.open != nil && r.open.Seq == seq {
		return r.open
	}
	i := sort.Search(len(r.segs), func(i int) bool { return r.segs[i].Seq >= seq })
	if i < len(r.segs) && r.segs[i].Seq == seq {
		return r.segs[i]
	}
	return nil
}

// part finds a part by its number. Called with r.mu held.
func (r *run) part(n int) *livePart {
	if o := r.open; o != nil && n >= o.firstPart {
		if i := n - o.firstPart; i < len(o.parts) {
			return o.parts[i]
		}
		return nil
	}
	i := sort.Search(len(r.segs), func(i int) bool { return r.segs[i].firstPart+len(r.segs[i].parts) > n })
	if i < len(r.segs) && n >= r.segs[i].firstPart {
		return r.segs[i].parts[n-r.segs[i].firstPart]
	}
	return nil
}

// rendition finds a rendition by name.
func (r *run) rendition(name string) *rend {
	for _, rd := range r.rends {
		if rd.name == name {
			return rd
		}
	}
	return nil
}

// fromStartAvailable: the run is kept by an archive, which serves what left the disk.
func (r *run) fromStartAvailable() bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.kept != nil && r.hist != nil
}

// Kept is a run an archive keeps (media/record: the recording), told what the log does.
type Kept interface {
	// Sealed is told each chunk the log seals, on the segmenter's goroutine: it must not
	// wait.
	Sealed(c *fmp4.Chunk)
	// Ended is told once the run has ended and its log is sealed; last is its last chunk
	// (nil when it held nothing more). The archive releases its hold on the log when done.
	Ended(last *fmp4.Chunk)
	// Open reads n bytes of the log at offset off from the archive: a chunk that left the
	// disk.
	Open(ctx context.Context, off, n int64) (io.ReadCloser, error)
}

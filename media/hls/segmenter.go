package hls

import (
	"errors"
	"fmt"
	"time"

	"onair/media"
	"onair/media/fmp4"
)

// maxPartBytes bounds what a part may hold before it is cut: a publisher can make media
// time stand still (the same timestamp again and again), and a part must not grow with
// it. No real stream comes near: 16 MiB in 200 ms is 670 Mbit/s.
const maxPartBytes = 16 << 20

// errPartTooLarge ends a run's HLS when a publisher sends more than maxPartBytes without
// media time going by.
var errPartTooLarge = errors.New("hls: part exceeds its byte bound")

// keyframeWarning is the code of the dashboard's warning while segments are cut at the
// target duration without a key frame.
const keyframeWarning = "hls_keyframes"

// cleanSegmentsToClearWarning is how many segments in a row must start with a key frame
// before the key frame warning goes.
const cleanSegmentsToClearWarning = 30

// segmenter cuts one run's access units into parts and segments. A part is at most the
// part target long: it ends before the lead track's (video, else audio) sample that would
// take it past the target, before every key frame, and where its segment ends. A segment
// ends at the first key frame once it is due (SegmentDuration), or after the last part
// that fits in the target duration whatever the frames; the run's first segment ends
// with its first part, so that a playlist exists as soon as a part does. Each part of each
// track is marshalled once into one buffer: video parts go into the log at once, audio
// parts at the end of their segment in one write, so that a segment's video and its
// audio are one byte range each.
//
// It runs on the run's sink goroutine alone.
type segmenter struct {
	r     *run
	log   *fmp4.Log
	video *cutTrack
	audio *cutTrack
	lead  *cutTrack
	st    *media.Stream

	partTarget, segDue, segMax int64 // in lead ticks

	started   bool // the lead's first key frame arrived (again, after a discontinuity)
	disc      bool // the next segment starts after a discontinuity
	first     bool // the run's first segment is open
	segOpen   bool
	partStart int64
	segStart  int64
	// dueAt is when the open segment is due: SegmentDuration after its start, or, for the
	// segment after the run's one-part first segment, after the run's start, so that
	// segments keep to the encoder's key frames.
	dueAt int64
	// segKey: the open segment starts with a key frame. One that does not (cut at the
	// target inside a long GOP) ends at the next key frame, so that segments go back to
	// starting on the encoder's key frames, where players start and renditions align.
	segKey  bool
	fragSeq uint32
	// audioBlock holds the open segment's audio parts, which go into the log at its end.
	audioBlock []byte

	wall0  time.Time // wall clock at lead media time media0: PROGRAM-DATE-TIME's mapping
	media0 int64
	// origin is the run's first key frame, where its media time (Segment.Start) counts
	// from.
	origin int64

	// chunkSpan, when set, seals a chunk of the log once it holds this much media (lead
	// ticks): the DVR window's leaving the disk, for runs no archive keeps.
	chunkSpan  int64
	chunkStart int64

	nonKey, clean int // segments in a row without and with a key frame at their start
}

// cutTrack is one track's samples on their way into a part.
type cutTrack struct {
	t       *fmp4.Track
	samples []fmp4.Sample // settled: in the open part, durations known
	pending fmp4.Sample   // the newest sample, whose duration the next one tells
	has     bool          // pending is set
	// minDelta is the video's shortest frame interval: how soon the next frame may come.
	minDelta int64
	bytes    int
	// next is where the last settled sample ends: audio's next sample starts there.
	next    int64
	hasNext bool
}

func newSegmenter(r *run, log *fmp4.Log, st *media.Stream, cfg Config) *segmenter {
	g := &segmenter{r: r, log: log, st: st, first: true}
	if r.tracks.Video != nil {
		g.video = &cutTrack{t: r.tracks.Video}
	}
	if r.tracks.Audio != nil {
		g.audio = &cutTrack{t: r.tracks.Audio}
	}
	g.lead = g.video
	if g.lead == nil {
		g.lead = g.audio
	}
	g.partTarget = g.lead.t.Ticks(cfg.PartDuration)
	g.segDue = g.lead.t.Ticks(cfg.SegmentDuration)
	g.segMax = g.lead.t.Ticks(r.target)
	return g
}

// write takes one access unit.
func (g *segmenter) write(au *media.AccessUnit) error {
	if au.Discontinuity && g.started {
		if err := g.flush(); err != nil {
			return err
		}
		g.started, g.disc = false, true
		for _, c := range []*cutTrack{g.video, g.audio} {
			if c != nil {
				c.has, c.hasNext, c.samples, c.bytes, c.minDelta = false, false, c.samples[:0], 0, 0
			}
		}
	}
	c := g.audio
	if au.Video {
		c = g.video
	}
	if c == nil {
		return nil
	}
	s, err := c.t.Sample(au)
	if err != nil {
		return err
	}
	c.retime(&s)
	if !g.started {
		// A run starts at the lead's key frame, so that it decodes from its first byte.
		if c != g.lead || !s.Sync {
			return nil
		}
		if g.r.main != nil && g.first && !g.anchor(s.DTS) {
			return nil
		}
		if g.first {
			g.chunkStart, g.origin = s.DTS, s.DTS
		}
		g.started = true
		g.partStart, g.segStart, g.dueAt, g.segKey = s.DTS, s.DTS, s.DTS+g.segDue, true
		if g.r.main == nil { // a further rendition takes its main's dates (anchor)
			g.wall0, g.media0 = au.Received, s.DTS
		}
		if g.wall0.IsZero() {
			g.wall0 = time.Now()
		}
		c.push(s)
		return nil
	}
	if c == g.lead {
		if err := g.maybeCut(&s); err != nil {
			return err
		}
	}
	c.push(s)
	if c.bytes > maxPartBytes {
		return fmt.Errorf("%w: %d bytes of %s at media time %s", errPartTooLarge, c.bytes, c.t.Codec, au.DTS)
	}
	return nil
}

// retime puts an audio sample back on its track's grid: audio frames last what their
// codec says, and timestamps rounded to RTMP's milliseconds would otherwise make each
// last a little more or less. A timestamp off the grid by half a frame or more is a real
// jump (lost frames), and kept.
func (c *cutTrack) retime(s *fmp4.Sample) {
	step := c.t.FrameTicks(s)
	if step == 0 || !c.hasNext {
		return
	}
	if d := s.DTS - c.next; d > -step/2 && d < step/2 {
		s.DTS = c.next
	}
}

// push adds a sample, settling the one before it.
func (c *cutTrack) push(s fmp4.Sample) {
	if c.has {
		c.settle(s.DTS)
	}
	c.pending, c.has = s, true
	for _, p := range s.Payload {
		c.bytes += len(p)
	}
}

// settle moves the pending sample into the open part, lasting until end.
func (c *cutTrack) settle(end int64) {
	d := max(0, end-c.pending.DTS)
	if c.t.Video && d > 0 && (c.minDelta == 0 || d < c.minDelta) {
		c.minDelta = d
	}
	c.pending.Duration = uint32(d)
	c.samples = append(c.samples, c.pending)
	c.has = false
	c.next, c.hasNext = c.pending.DTS+d, true
}

// guess is how long the pending sample lasts when no next sample tells: its codec's
// frame, or the video's usual interval.
func (c *cutTrack) guess() int64 {
	if step := c.t.FrameTicks(&c.pending); step > 0 {
		return step
	}
	return max(c.minDelta, 1)
}

// take removes the settled samples decoded before end and returns them.
func (c *cutTrack) take(end int64) []fmp4.Sample {
	n := 0
	for n < len(c.samples) && c.samples[n].DTS < end {
		n++
	}
	out := append([]fmp4.Sample(nil), c.samples[:n]...)
	c.samples = append(c.samples[:0], c.samples[n:]...)
	c.bytes = 0
	for _, s := range c.samples {
		for _, p := range s.Payload {
			c.bytes += len(p)
		}
	}
	if c.has {
		for _, p := range c.pending.Payload {
			c.bytes += len(p)
		}
	}
	return out
}

// maybeCut ends the open part (and segment) before the lead's sample s when it is due.
func (g *segmenter) maybeCut(s *fmp4.Sample) error {
	c := g.lead
	elapsed := s.DTS - g.partStart // the part's length if it ends here
	if elapsed <= 0 {
		return nil
	}
	var cut bool
	if c.t.Video {
		// Every key frame starts a part, so that players can start there.
		cut = s.Sync || elapsed+c.minDelta > g.partTarget
	} else {
		cut = elapsed+c.t.FrameTicks(s) > g.partTarget
	}
	if !cut {
		return nil
	}
	segLen := g.partEnd(s.DTS) - g.segStart
	// Key frames land on the encoder's interval, give or take the rounding of RTMP's
	// millisecond timestamps: half a frame early still counts.
	due := s.Sync && (!g.segKey || s.DTS >= g.dueAt-c.minDelta/2)
	if g.r.main != nil && s.Sync {
		// A further rendition cuts where its main does.
		_, _, due = g.r.main.segmentStartAt(c.t.Duration(s.DTS))
	}
	endSeg := g.first || due || segLen+g.partTarget > g.segMax
	if endSeg {
		g.segKey = s.Sync
	}
	return g.cut(s.DTS, endSeg)
}

// partEnd is where the open part ends when the lead's next sample starts at next: there,
// unless that would take the part past its target (frames missing), where the media gets
// a gap instead, so that no part or segment ever outgrows its target.
func (g *segmenter) partEnd(next int64) int64 {
	return min(next, g.partStart+g.partTarget)
}

// flush ends the open part and segment with what the tracks hold: at the end of the run,
// or before a publisher that came back starts afresh.
func (g *segmenter) flush() error {
	lead := g.lead
	if !g.started || (!lead.has && len(lead.samples) == 0) {
		return nil
	}
	end, _ := lead.end()
	// The video's last frame lasts a guess. Where the audio ends within it, the video ends
	// there too: players that place a returning publisher's media after the video's end
	// (VHS, hls.js) place its audio there as well, and audio ending sooner than the video
	// leaves a hole in the audio buffer that stops playback until they jump it.
	if a := g.audio; lead.has && a != nil && a != lead {
		if audioEnd, ok := a.end(); ok {
			if e := lead.t.Ticks(a.t.Duration(audioEnd)); e > lead.pending.DTS && e < end {
				end = e
			}
		}
	}
	return g.cut(end, true)
}

// end is where the track's media ends so far: its newest sample's end, by a guess when
// no sample after it tells.
func (c *cutTrack) end() (int64, bool) {
	switch n := len(c.samples); {
	case c.has:
		return c.pending.DTS + c.guess(), true
	case n > 0:
		return c.samples[n-1].DTS + int64(c.samples[n-1].Duration), true
	}
	return c.next, c.hasNext
}

// cut ends the open part where the lead's next sample starts (at), and its segment too
// when endSeg is set.
func (g *segmenter) cut(at int64, endSeg bool) error {
	lead := g.lead
	end := g.partEnd(at)
	if lead.has {
		lead.settle(end)
	}
	samples := lead.take(end + 1)
	if len(samples) == 0 {
		return nil
	}
	if last := &samples[len(samples)-1]; last.DTS+int64(last.Duration) > end {
		last.Duration = uint32(max(0, end-last.DTS))
	}
	p := &livePart{indep: samples[0].Sync, off: [2]int64{-1, -1}, end: lead.t.Duration(end)}
	leadIdx := trackIndex(lead.t)
	p.dur[leadIdx] = lead.t.Duration(end - g.partStart)
	if err := g.emit(lead, leadIdx, p, samples[0].DTS, samples); err != nil {
		return err
	}
	frames := 0
	if lead.t.Video {
		frames = len(samples)
	}
	if a := g.audio; a != nil && a != lead {
		cutAt := a.t.Ticks(lead.t.Duration(end))
		if a.has && a.pending.DTS < cutAt {
			a.settle(a.pending.DTS + a.guess())
		}
		taken := a.take(cutAt)
		base := cutAt
		p.dur[1] = p.dur[0] // a stretch without audio lasts as long as the video
		if n := len(taken); n > 0 {
			base = taken[0].DTS
			p.audioLag = a.t.Duration(base) - lead.t.Duration(g.partStart)
			p.dur[1] = a.t.Duration(taken[n-1].DTS + int64(taken[n-1].Duration) - base)
		}
		if err := g.emit(a, 1, p, base, taken); err != nil {
			return err
		}
	}
	g.publish(p, frames)
	g.partStart = end
	if !endSeg {
		return nil
	}
	return g.endSegment(end)
}

func trackIndex(t *fmp4.Track) int {
	if t.Video {
		return 0
	}
	return 1
}

// emit marshals samples of c into one buffer for the part: video (or audio without
// video) into the log at once, audio with video into the segment's audio block.
func (g *segmenter) emit(c *cutTrack, i int, p *livePart, base int64, samples []fmp4.Sample) error {
	g.fragSeq++
	buf := c.t.AppendFragment(make([]byte, 0, c.t.FragmentSize(samples)), g.fragSeq, base, samples)
	p.buf[i], p.size[i] = buf, int64(len(buf))
	if i == 1 && g.video != nil {
		g.audioBlock = append(g.audioBlock, buf...)
		return nil
	}
	off, err := g.log.Append(buf)
	p.off[i] = off
	return err
}

// publish makes the part servable, opening a segment for it if none is open.
func (g *segmenter) publish(p *livePart, frames int) {
	var open *liveSeg
	if !g.segOpen {
		g.segOpen = true
		lead := g.lead.t
		open = &liveSeg{Segment: fmp4.Segment{
			Start:         lead.Duration(g.segStart - g.origin),
			Independent:   p.indep,
			Discontinuity: g.disc,
			Time:          g.wall0.Add(lead.Duration(g.segStart - g.media0)),
		}, at: lead.Duration(g.segStart)}
		g.disc = false
	}
	g.r.addPart(p, open, frames)
}

// endSegment ends the open segment at end: its audio goes into the log in one write, it
// becomes a complete segment of the playlists and of the log's index.
func (g *segmenter) endSegment(end int64) error {
	audioOff := int64(-1)
	if len(g.audioBlock) > 0 {
		off, err := g.log.Append(g.audioBlock)
		if err != nil {
			return err
		}
		audioOff = off
		g.audioBlock = g.audioBlock[:0]
	}
	seg := g.r.closeSegment(audioOff, g.lead.t.Duration(end-g.segStart))
	if !g.first {
		g.dueAt = end + g.segDue
	}
	g.segOpen, g.first, g.segStart = false, false, end
	g.noteKeyframes(seg)
	chunk, err := g.log.EndSegment(seg, g.chunkSpan > 0 && end-g.chunkStart >= g.chunkSpan)
	if err != nil {
		return err
	}
	if chunk != nil {
		g.chunkStart = end
	}
	if chunk != nil && g.r.kept != nil {
		g.r.kept.Sealed(chunk)
	}
	g.r.holdWindow()
	return nil
}

// noteKeyframes warns the streamer, in the dashboard, while segments start without a key
// frame: the encoder's key frame interval is longer than the segment target, so players
// joining mid-GOP wait for the next one.
func (g *segmenter) noteKeyframes(seg fmp4.Segment) {
	// The segment after the run's first, one-part, segment starts mid-GOP whatever the
	// encoder does.
	if g.video == nil || seg.Seq == 1 {
		return
	}
	if seg.Independent {
		g.nonKey, g.clean = 0, g.clean+1
		if g.clean == cleanSegmentsToClearWarning {
			g.st.Warn(keyframeWarning, "")
		}
		return
	}
	g.nonKey, g.clean = g.nonKey+1, 0
	if g.nonKey == 1 {
		g.st.Warn(keyframeWarning, fmt.Sprintf("The key frame interval is longer than the %s segments viewers get: "+
			"set the encoder's keyframe interval to %s or less (OBS: Output → Keyframe Interval) for a quick start and low latency.",
			g.r.target, g.r.segDue))
	}
}

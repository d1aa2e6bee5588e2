package hls

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/bluenviron/gohlslib/v2/pkg/codecparams"
	"github.com/bluenviron/gohlslib/v2/pkg/codecs"
	"github.com/bluenviron/gohlslib/v2/pkg/playlist"
	mp4codecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"onair/media/fmp4"
)

// Protocol versions (RFC 8216bis, section 7): 6 for EXT-X-MAP without EXT-X-I-FRAMES-ONLY,
// 9 for EXT-X-SKIP. Nothing else onair writes needs more. A multivariant playlist's own
// tags need no version; it states its media playlists', which a client must support.
const (
	versionMedia = 6
	versionDelta = 9
)

// Playlist rules of the run, from its configuration.
const (
	// partHoldBackParts: PART-HOLD-BACK is three part targets, Apple's minimum.
	partHoldBackParts = 3
	// skipTargets: CAN-SKIP-UNTIL is six target durations, the spec's minimum.
	skipTargets = 6
	// partsTargets: parts are listed for the segments within three target durations of the
	// playlist's end; older ones are only whole segments.
	partsTargets = 3
)

// renderKey names one rendering of a playlist.
type renderKey struct {
	file string // playlist file name
	skip bool   // a delta update
}

// rendered is a playlist as of one version of the run, shared by every request until the
// run changes.
type rendered struct {
	version uint64
	body    []byte
	gz      []byte
	etag    string
}

// renderCache keeps the latest rendering of each playlist.
type renderCache struct {
	mu      sync.Mutex
	entries map[renderKey]*rendered
}

// playlist renders file for the run's current version, or returns the rendering already
// made for it.
func (r *run) playlist(key renderKey, gz bool) *rendered {
	r.mu.RLock()
	defer r.mu.RUnlock()
	c := &r.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[key]
	if e == nil || e.version != r.version {
		e = &rendered{version: r.version, body: r.render(key)}
		e.etag = fmt.Sprintf(`"%s-%d-%d"`, r.id, r.version, len(e.body))
		if c.entries == nil {
			c.entries = map[renderKey]*rendered{}
		}
		c.entries[key] = e
	}
	if gz && e.gz == nil {
		var b bytes.Buffer
		w, _ := gzip.NewWriterLevel(&b, gzip.BestSpeed)
		_, _ = w.Write(e.body)
		_ = w.Close()
		e.gz = b.Bytes()
	}
	return e
}

// render marshals a playlist. Called with r.mu read-locked, once the run has content.
func (r *run) render(key renderKey) []byte {
	var b []byte
	var err error
	switch {
	case key.file == multivariantFile:
		b, err = r.multivariant().Marshal()
	case key.file == startFile:
		b, err = r.fromStart().Marshal()
	default:
		rd := r.rendition(stripSuffix(key.file))
		pl := r.media(rd, key.skip)
		if b, err = pl.Marshal(); err == nil {
			b = r.markOpenDiscontinuity(b, rd, pl)
		}
	}
	if err != nil {
		// The types marshal whatever they hold; nothing here can fail.
		panic(fmt.Sprintf("hls: marshal %s: %v", key.file, err))
	}
	return b
}

// markOpenDiscontinuity writes EXT-X-DISCONTINUITY and the segment's date before the
// parts of an open segment that follows a discontinuity (a publisher that came back):
// the playlist type holds the parts after the last complete segment without segment tags,
// and without them a player would take the returning publisher's first parts, all it has
// until their segment completes, for a continuation of the old ones, and learn otherwise
// only once it has played them. Called with r.mu read-locked.
func (r *run) markOpenDiscontinuity(b []byte, rd *rend, pl *playlist.Media) []byte {
	o := r.open
	if o == nil || !o.Discontinuity || len(pl.Parts) == 0 {
		return b
	}
	at := bytes.Index(b, []byte(`,URI="`+pl.Parts[0].URI+`"`))
	if at < 0 {
		return b
	}
	at = bytes.LastIndexByte(b[:at], '\n') + 1
	t := o.Time
	if rd.idx == 1 {
		t = t.Add(o.audioLag)
	}
	tags := "#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:" + t.Format(timeRFC3339Millis) + "\n"
	return append(b[:at:at], append([]byte(tags), b[at:]...)...)
}

// timeRFC3339Millis is how gohlslib writes EXT-X-PROGRAM-DATE-TIME.
const timeRFC3339Millis = "2006-01-02T15:04:05.999Z07:00"

func stripSuffix(file string) string { return file[:len(file)-len(playlistSuffix)] }

// media is a rendition's media playlist: the DVR window, parts near the end, and while
// live the LL-HLS tags; skip makes it a delta update.
func (r *run) media(rd *rend, skip bool) *playlist.Media {
	pl := &playlist.Media{
		Version:        versionMedia,
		TargetDuration: int(r.target / time.Second),
		Map:            &playlist.MediaMap{URI: pinned(initName(r.id, rd.name), r.id)},
	}
	segs := r.segs
	pl.MediaSequence = r.nextSeq - len(segs)
	if r.open != nil {
		pl.MediaSequence--
	}
	if r.discGone > 0 {
		pl.DiscontinuitySequence = &r.discGone
	}
	if !r.ended {
		pl.ServerControl = &playlist.MediaServerControl{CanBlockReload: true,
			PartHoldBack: ptr(partHoldBackParts * rd.partTarget), CanSkipUntil: ptr(skipTargets * r.target)}
		pl.PartInf = &playlist.MediaPartInf{PartTarget: rd.partTarget}
	}

	// The playlist's end, and where parts and skipping begin, from it.
	var total time.Duration
	for _, s := range segs {
		total += s.dur[rd.idx]
	}
	if r.open != nil {
		total += r.open.dur[rd.idx]
	}
	skipped := 0
	if skip && !r.ended {
		var at time.Duration
		for skipped < len(segs) && total-(at+segs[skipped].dur[rd.idx]) >= skipTargets*r.target {
			at += segs[skipped].dur[rd.idx]
			skipped++
		}
		if skipped > 0 {
			pl.Skip = &playlist.MediaSkip{SkippedSegments: skipped}
			pl.Version = versionDelta
		}
	}
	var at time.Duration
	for i, s := range segs {
		start := at
		at += s.dur[rd.idx]
		if i < skipped {
			continue
		}
		ms := &playlist.MediaSegment{Duration: s.dur[rd.idx], URI: pinned(segmentName(r.id, rd.name, s.Seq), r.id),
			Discontinuity: s.Discontinuity}
		// Every segment has its own, which players place segments and measure their
		// distance from live by.
		ms.DateTime = &s.Time
		if rd.idx == 1 && s.audioLag != 0 {
			t := s.Time.Add(s.audioLag)
			ms.DateTime = &t
		}
		if !r.ended && total-start <= partsTargets*r.target {
			ms.Parts = r.partTags(rd, s)
		}
		pl.Segments = append(pl.Segments, ms)
	}
	if r.ended {
		pl.Endlist = true
		return pl
	}
	if o := r.open; o != nil {
		pl.Parts = r.partTags(rd, o)
	}
	pl.PreloadHint = &playlist.MediaPreloadHint{URI: pinned(partName(r.id, rd.name, r.nextPart), r.id)}
	msn, part := r.position()
	for _, other := range r.rends {
		if other != rd {
			pl.RenditionReport = append(pl.RenditionReport, &playlist.MediaRenditionReport{
				URI: pinned(playlistName(other.name), r.id), LastMSN: msn, LastPart: &part})
		}
	}
	pl.RenditionReport = append(pl.RenditionReport, r.ladderReports()...)
	return pl
}

func (r *run) partTags(rd *rend, s *liveSeg) []*playlist.MediaPart {
	out := make([]*playlist.MediaPart, len(s.parts))
	for i, p := range s.parts {
		out[i] = &playlist.MediaPart{Duration: p.dur[rd.idx], URI: pinned(partName(r.id, rd.name, p.n), r.id),
			Independent: p.indep || rd.idx == 1}
	}
	return out
}

// multivariant is the run's multivariant playlist: the video rendition as the variant,
// audio as its rendition group; or the audio alone.
func (r *run) multivariant() *playlist.Multivariant {
	mv := &playlist.Multivariant{Version: versionMedia}
	var video, audio *rend
	for _, rd := range r.rends {
		if rd.idx == 0 {
			video = rd
		} else {
			audio = rd
		}
	}
	peak, avg := r.bitrates()
	v := &playlist.MultivariantVariant{Bandwidth: int(peak), AverageBandwidth: ptr(int(avg))}
	audioCodec := ""
	if audio != nil {
		audioCodec = codecString(audio.track)
		v.Codecs = append(v.Codecs, audioCodec)
	}
	if video != nil {
		v.Codecs = append([]string{codecString(video.track)}, v.Codecs...)
		v.URI = pinned(playlistName(video.name), r.id)
		if r.width > 0 && r.height > 0 {
			v.Resolution = strconv.Itoa(r.width) + "x" + strconv.Itoa(r.height)
		}
		if fps := r.frameRate(); fps > 0 {
			v.FrameRate = &fps
		}
		if audio != nil {
			v.Audio = "audio"
			rend := &playlist.MultivariantRendition{Type: playlist.MultivariantRenditionTypeAudio, GroupID: "audio",
				Name: "audio", Default: true, Autoselect: true, URI: ptr(pinned(playlistName(audio.name), r.id))}
			if ch := audio.track.Channels; ch > 0 {
				rend.Channels = ptr(strconv.Itoa(ch))
			}
			mv.Renditions = append(mv.Renditions, rend)
		}
	} else {
		v.URI = pinned(playlistName(audio.name), r.id)
	}
	mv.Variants = []*playlist.MultivariantVariant{v}
	if video != nil {
		r.ladderVariants(mv, audioCodec)
	}
	return mv
}

func ptr[T any](v T) *T { return &v }

// bitrates measures the run's peak and average bit rate over both tracks: the peak of its
// complete segments, or of what its parts hold before the first one.
func (r *run) bitrates() (peak, avg int64) {
	peak = r.peakBits
	if r.durAll > 0 {
		avg = int64(float64(r.bytesAll*8) / r.durAll.Seconds())
	}
	if o := r.open; peak == 0 && o != nil && o.dur[0]+o.dur[1] > 0 {
		var bytes int64
		for _, p := range o.parts {
			bytes += p.size[0] + p.size[1]
		}
		d := max(o.dur[0], o.dur[1])
		peak = int64(float64(bytes*8) / d.Seconds())
	}
	return max(peak, avg, 1), max(avg, 1)
}

// frameRate is the video's frames per second over the run so far, as FRAME-RATE writes it.
func (r *run) frameRate() float64 {
	var frames int
	var d time.Duration
	for _, s := range r.segs {
		frames += s.frames
		d += s.dur[0]
	}
	if o := r.open; o != nil {
		frames += o.frames
		d += o.dur[0]
	}
	if d <= 0 || frames == 0 {
		return 0
	}
	return math.Round(float64(frames)/d.Seconds()*1000) / 1000
}

// codecString is the RFC 6381 codec of a track, for CODECS.
func codecString(t *fmp4.Track) string {
	var c codecs.Codec
	switch cfg := t.Config.(type) {
	case *mp4codecs.H264:
		c = &codecs.H264{SPS: cfg.SPS, PPS: cfg.PPS}
	case *mp4codecs.H265:
		c = &codecs.H265{VPS: cfg.VPS, SPS: cfg.SPS, PPS: cfg.PPS}
	case *mp4codecs.AV1:
		c = &codecs.AV1{SequenceHeader: cfg.SequenceHeader}
	case *mp4codecs.MPEG4Audio:
		c = &codecs.MPEG4Audio{Config: cfg.Config}
	case *mp4codecs.Opus:
		c = &codecs.Opus{ChannelCount: cfg.ChannelCount}
	case *mp4codecs.VP9:
		return vp9CodecString(cfg, t.VP9Level)
	case *mp4codecs.FLAC:
		// The sample entry's name, as MP4 registers it (gohlslib writes "flac").
		return "fLaC"
	}
	return codecparams.Marshal(c)
}

// vp9Levels are the levels VP9's codec string may name (VP Codec ISO Media File Format
// Binding, Annex A); browsers refuse a codec string with any other.
var vp9Levels = map[uint8]bool{10: true, 11: true, 20: true, 21: true, 30: true, 31: true, 40: true,
	41: true, 50: true, 51: true, 52: true, 60: true, 61: true, 62: true}

// vp9CodecString is "vp09.PP.LL.DD" from the stream's VP9 configuration record (gohlslib
// writes level 1 whatever the stream's is). A record that names no valid level (0: not
// given) is written as level 1, as browsers do not hold a stream to its level.
func vp9CodecString(cfg *mp4codecs.VP9, level uint8) string {
	if !vp9Levels[level] {
		level = 10
	}
	return fmt.Sprintf("vp09.%02d.%02d.%02d", cfg.Profile, level, cfg.BitDepth)
}

// fromStart is the "from the start" playlist: every segment of the run so far, both
// tracks in one, as an EVENT playlist (VOD once the run ended).
func (r *run) fromStart() *playlist.Media {
	kind := playlist.MediaPlaylistTypeEvent
	pl := &playlist.Media{
		Version:        versionMedia,
		TargetDuration: int(r.target / time.Second),
		PlaylistType:   &kind,
		Map:            &playlist.MediaMap{URI: pinned(initName(r.id, renditionAV), r.id)},
		Endlist:        r.ended,
	}
	pl.Segments = make([]*playlist.MediaSegment, len(r.hist))
	for i, h := range r.hist {
		s := &playlist.MediaSegment{Duration: time.Duration(h.dur) * time.Microsecond,
			URI: pinned(segmentName(r.id, renditionAV, i), r.id), Discontinuity: h.flags&histDiscontinuity != 0}
		if t, ok := r.histTimes[i]; ok {
			s.DateTime = &t
		}
		pl.Segments[i] = s
	}
	return pl
}

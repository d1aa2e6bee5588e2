package hls

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gohlslib/v2/pkg/playlist"
	mcfmp4 "github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"

	"onair/media"
)

// expect is what a media playlist must be, for checkMedia.
type expect struct {
	live       bool          // Low-Latency HLS tags and no EXT-X-ENDLIST
	target     int           // TARGETDURATION
	partTarget time.Duration // PART-TARGET
	reports    []string      // the renditions its RENDITION-REPORTs name
	// replay: a recording's VOD playlist, byte ranges of one object, initSize bytes of
	// init first (its URIs are the object's, not pinned to a run).
	replay   bool
	initSize int64
	// sparseDates: only the first segment and those after a discontinuity need a date
	// (the "from the start" playlist, whose index of a long run stays small).
	sparseDates bool
	// ladder: the reports include further renditions, runs of their own that may be a
	// part or so behind or ahead of this one.
	ladder bool
}

// checkMedia checks a media playlist against the rules of RFC 8216bis and Apple's
// authoring spec that onair promises, and returns it parsed.
func checkMedia(t *testing.T, name string, body []byte, e expect) *playlist.Media {
	t.Helper()
	var pl playlist.Media
	if err := pl.Unmarshal(body); err != nil {
		t.Fatalf("%s: %v\n%s", name, err, body)
	}
	fail := func(format string, a ...any) {
		t.Helper()
		t.Fatalf("%s: %s\n%s", name, fmt.Sprintf(format, a...), body)
	}
	text := string(body)
	// The lowest version the tags need: 6 for EXT-X-MAP, 9 with EXT-X-SKIP.
	if want := map[bool]int{false: 6, true: 9}[pl.Skip != nil]; pl.Version != want {
		fail("EXT-X-VERSION %d, want %d", pl.Version, want)
	}
	if strings.Count(text, "#EXT-X-VERSION") != 1 || strings.Count(text, "#EXT-X-TARGETDURATION") != 1 {
		fail("a header tag is repeated")
	}
	if pl.TargetDuration != e.target {
		fail("TARGETDURATION %d, want %d", pl.TargetDuration, e.target)
	}
	if pl.Map == nil {
		fail("no EXT-X-MAP")
	}
	if e.replay {
		checkReplay(t, name, body, &pl, e)
		return &pl
	}
	run, _, _ := strings.Cut(pl.Map.URI, "_")
	pinnedURI := func(u string) {
		t.Helper()
		if !strings.HasSuffix(u, "?s="+run) || !strings.HasPrefix(u, run+"_") {
			fail("URI %q is not pinned to run %s", u, run)
		}
	}
	pinnedURI(pl.Map.URI)
	if len(pl.Segments) == 0 || pl.Segments[0].DateTime == nil {
		fail("the first segment has no EXT-X-PROGRAM-DATE-TIME")
	}
	for i, s := range pl.Segments {
		pinnedURI(s.URI)
		// Every segment carries its date, and dates follow durations but where a
		// returning publisher made a discontinuity.
		if s.DateTime == nil && !e.sparseDates {
			fail("segment %s has no EXT-X-PROGRAM-DATE-TIME", s.URI)
		}
		if i > 0 && !s.Discontinuity && s.DateTime != nil && pl.Segments[i-1].DateTime != nil {
			prev := pl.Segments[i-1]
			if d := s.DateTime.Sub(prev.DateTime.Add(prev.Duration)); d < -50*time.Millisecond || d > 50*time.Millisecond {
				fail("segment %s is dated %s off its predecessor's end", s.URI, d)
			}
		}
		// The spec's rule: EXTINF rounded to the nearest integer; video segments keep to
		// the target itself (audio ones follow them to the nearest audio frame).
		if d := s.Duration.Seconds(); math.Round(d) > float64(e.target) || (strings.Contains(s.URI, "_video1_") && d > float64(e.target)) {
			fail("segment %s lasts %s, more than the target duration", s.URI, s.Duration)
		}
		if s.Discontinuity && s.DateTime == nil {
			fail("segment %s after a discontinuity has no EXT-X-PROGRAM-DATE-TIME", s.URI)
		}
		if len(s.Parts) > 0 {
			var sum time.Duration
			for _, p := range s.Parts {
				sum += p.Duration
			}
			if d := sum - s.Duration; d < -time.Millisecond || d > time.Millisecond {
				fail("segment %s lasts %s, its parts %s", s.URI, s.Duration, sum)
			}
		}
	}
	var parts []*playlist.MediaPart
	for _, s := range pl.Segments {
		parts = append(parts, s.Parts...)
	}
	parts = append(parts, pl.Parts...)
	if !e.live {
		if !pl.Endlist || pl.ServerControl != nil || pl.PartInf != nil || len(parts) > 0 || pl.PreloadHint != nil || len(pl.RenditionReport) > 0 {
			fail("an ended playlist must have EXT-X-ENDLIST and nothing that invites blocking requests")
		}
		return &pl
	}
	if pl.Endlist {
		fail("EXT-X-ENDLIST while live")
	}
	sc := pl.ServerControl
	switch {
	case sc == nil || !sc.CanBlockReload:
		fail("no CAN-BLOCK-RELOAD=YES")
	case pl.PartInf == nil || pl.PartInf.PartTarget != e.partTarget:
		fail("PART-TARGET %v, want %s", pl.PartInf, e.partTarget)
	case sc.PartHoldBack == nil || *sc.PartHoldBack < 3*pl.PartInf.PartTarget:
		fail("PART-HOLD-BACK under three part targets")
	case sc.CanSkipUntil == nil || *sc.CanSkipUntil < 6*time.Duration(e.target)*time.Second:
		fail("CAN-SKIP-UNTIL under six target durations")
	case pl.PreloadHint == nil:
		fail("no EXT-X-PRELOAD-HINT")
	case len(parts) == 0:
		fail("no parts")
	}
	pinnedURI(pl.PreloadHint.URI)
	for _, p := range parts {
		if p.URI == pl.PreloadHint.URI {
			fail("PRELOAD-HINT names %s, a part already listed", p.URI)
		}
		pinnedURI(p.URI)
		// The playlist writes five decimals.
		if p.Duration > e.partTarget+5*time.Microsecond {
			fail("part %s lasts %s, more than PART-TARGET %s", p.URI, p.Duration, e.partTarget)
		}
	}
	// The renditions are cut together: each report names this playlist's last part.
	skipped := 0
	if pl.Skip != nil {
		skipped = pl.Skip.SkippedSegments
	}
	lastMSN, lastPart := pl.MediaSequence+skipped+len(pl.Segments), len(pl.Parts)-1
	if lastPart < 0 {
		lastMSN, lastPart = lastMSN-1, len(pl.Segments[len(pl.Segments)-1].Parts)-1
	}
	var reported []string
	for _, r := range pl.RenditionReport {
		reported = append(reported, uri(r.URI))
		if r.LastPart == nil {
			fail("RENDITION-REPORT %s without LAST-PART", r.URI)
		}
		if e.ladder {
			if d := r.LastMSN - lastMSN; d < -1 || d > 1 {
				fail("RENDITION-REPORT %s at %d.%d, the playlist ends at %d.%d", r.URI, r.LastMSN, *r.LastPart, lastMSN, lastPart)
			}
			continue
		}
		if r.LastMSN != lastMSN || *r.LastPart != lastPart {
			fail("RENDITION-REPORT %s at %d.%d, the playlist ends at %d.%d", r.URI, r.LastMSN, *r.LastPart, lastMSN, lastPart)
		}
	}
	if strings.Join(reported, ",") != strings.Join(e.reports, ",") {
		fail("RENDITION-REPORTs name %v, want %v", reported, e.reports)
	}
	return &pl
}

// checkIndependent fetches the playlist's parts and checks INDEPENDENT=YES on exactly those
// that start with a key frame.
func checkIndependent(t *testing.T, h *harness, pl *playlist.Media) (independent, other int) {
	t.Helper()
	var parts []*playlist.MediaPart
	for _, s := range pl.Segments {
		parts = append(parts, s.Parts...)
	}
	for _, p := range append(parts, pl.Parts...) {
		var fr mcfmp4.Parts
		if err := fr.Unmarshal(h.must(uri(p.URI))); err != nil || len(fr) != 1 || len(fr[0].Tracks) != 1 {
			t.Fatalf("part %s: %d fragments: %v", p.URI, len(fr), err)
		}
		samples := fr[0].Tracks[0].Samples
		key := len(samples) > 0 && !samples[0].IsNonSyncSample
		if p.Independent != key {
			t.Fatalf("part %s: INDEPENDENT=%v, starts with a key frame: %v", p.URI, p.Independent, key)
		}
		if key {
			independent++
		} else {
			other++
		}
	}
	return independent, other
}

func TestLivePlaylists(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	video := expect{live: true, target: 1, partTarget: 200 * time.Millisecond, reports: []string{"audio2_stream.m3u8"}}
	audio := expect{live: true, target: 1, partTarget: 221340 * time.Microsecond, reports: []string{"video1_stream.m3u8"}}
	// Every reload along the way obeys the rules, TARGETDURATION never changes.
	for range 40 {
		h.feed(300 * time.Millisecond)
		checkMedia(t, "video", h.must("video1_stream.m3u8"), video)
		checkMedia(t, "audio", h.must("audio2_stream.m3u8"), audio)
	}
	pl := checkMedia(t, "video", h.must("video1_stream.m3u8"), video)
	key, other := checkIndependent(t, h, pl)
	if key == 0 || other == 0 {
		t.Fatalf("%d independent parts, %d others: want both", key, other)
	}
	checkIndependent(t, h, checkMedia(t, "audio", h.must("audio2_stream.m3u8"), audio))
	// With 1 s key frames every segment but the second (after the run's one-part first)
	// starts with one.
	for i, s := range pl.Segments {
		if len(s.Parts) > 0 && !s.Parts[0].Independent && pl.MediaSequence+i != 1 {
			t.Errorf("segment %s does not start with a key frame", s.URI)
		}
	}
	if w := h.st.Warnings(); len(w) != 0 {
		t.Errorf("warnings with 1 s key frames: %v", w)
	}
	// The segments and parts are what ffprobe and players read: fMP4 fragments.
	seg := pl.Segments[len(pl.Segments)-1]
	var fr mcfmp4.Parts
	if err := fr.Unmarshal(h.must(uri(seg.URI))); err != nil || len(fr) != len(seg.Parts) {
		t.Fatalf("segment %s: %d fragments for %d parts: %v", seg.URI, len(fr), len(seg.Parts), err)
	}
}

// The encoder's key frames come every 2 s, the target duration is 1 s: segments are cut at
// the target anyway, parts carry INDEPENDENT=YES where a key frame starts them, and the
// streamer is warned.
func TestLongKeyFrameInterval(t *testing.T) {
	h := newHarness(t, harnessOpts{gop: 60})
	h.feed(12 * time.Second)
	pl := checkMedia(t, "video", h.must("video1_stream.m3u8"),
		expect{live: true, target: 1, partTarget: 200 * time.Millisecond, reports: []string{"audio2_stream.m3u8"}})
	key, other := checkIndependent(t, h, pl)
	if key == 0 || other == 0 {
		t.Fatalf("%d independent parts, %d others", key, other)
	}
	if w := h.st.Warnings(); len(w) != 1 || !strings.Contains(w[0], "key frame interval") {
		t.Fatalf("warnings = %v, want the key frame warning", w)
	}
}

// A blocking reload is answered as soon as the part it names exists; the part after the
// last of a complete segment is part 0 of the next segment; a request beyond what will
// come soon is refused at once.
func TestBlockingReload(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.feed(3 * time.Second)
	pl := checkMedia(t, "video", h.must("video1_stream.m3u8"),
		expect{live: true, target: 1, partTarget: 200 * time.Millisecond, reports: []string{"audio2_stream.m3u8"}})
	msn := pl.MediaSequence + len(pl.Segments)
	next := len(pl.Parts)

	type answer struct {
		r    response
		took time.Duration
	}
	ask := func(q string) chan answer {
		ch := make(chan answer, 1)
		start := time.Now()
		go func() {
			r := h.get("video1_stream.m3u8?s=" + h.st.ID() + "&" + q)
			ch <- answer{r, time.Since(start)}
		}()
		return ch
	}
	waiting := ask(fmt.Sprintf("_HLS_msn=%d&_HLS_part=%d", msn, next))
	select {
	case a := <-waiting:
		t.Fatalf("answered before the part existed: %d", a.r.code)
	case <-time.After(200 * time.Millisecond):
	}
	h.feed(300 * time.Millisecond)
	a := <-waiting
	got := checkMedia(t, "blocking", a.r.body, expect{live: true, target: 1, partTarget: 200 * time.Millisecond, reports: []string{"audio2_stream.m3u8"}})
	if !hasPart(got, msn, next) {
		t.Fatalf("blocking answer lacks part %d.%d:\n%s", msn, next, a.r.body)
	}
	if cc := a.r.header.Get("Cache-Control"); cc != cacheBlocking {
		t.Fatalf("blocking answer Cache-Control %q", cc)
	}

	// Finish the segment: a request for the part after its last is part 0 of the next.
	h.feed(time.Second - h.now()%time.Second)
	pl = checkMedia(t, "video", h.must("video1_stream.m3u8"),
		expect{live: true, target: 1, partTarget: 200 * time.Millisecond, reports: []string{"audio2_stream.m3u8"}})
	last := pl.Segments[len(pl.Segments)-1]
	lastMSN := pl.MediaSequence + len(pl.Segments) - 1
	if len(pl.Parts) != 0 {
		h.feed(time.Second - h.now()%time.Second)
		pl = checkMedia(t, "video", h.must("video1_stream.m3u8"), expect{live: true, target: 1, partTarget: 200 * time.Millisecond, reports: []string{"audio2_stream.m3u8"}})
		last = pl.Segments[len(pl.Segments)-1]
		lastMSN = pl.MediaSequence + len(pl.Segments) - 1
	}
	waiting = ask(fmt.Sprintf("_HLS_msn=%d&_HLS_part=%d", lastMSN, len(last.Parts)))
	time.Sleep(100 * time.Millisecond)
	h.feed(250 * time.Millisecond) // part 0 of the next segment, not the whole segment
	select {
	case a := <-waiting:
		if a.r.code != http.StatusOK || !strings.Contains(string(a.r.body), "#EXT-X-PART:") {
			t.Fatalf("answer %d:\n%s", a.r.code, a.r.body)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the part after a segment's last was not answered as part 0 of the next segment")
	}

	if r := h.get(fmt.Sprintf("video1_stream.m3u8?_HLS_msn=%d&_HLS_part=0", lastMSN+5)); r.code != http.StatusBadRequest {
		t.Fatalf("a request five segments ahead: %d, want 400", r.code)
	}
	if r := h.get("video1_stream.m3u8?_HLS_msn=x"); r.code != http.StatusBadRequest {
		t.Fatalf("a malformed _HLS_msn: %d, want 400", r.code)
	}
	// A blocking request without the run id is not for shared caches.
	h.feed(300 * time.Millisecond)
	if r := h.get(fmt.Sprintf("video1_stream.m3u8?_HLS_msn=%d", lastMSN)); r.code != http.StatusOK || r.header.Get("Cache-Control") != cacheRevalidate {
		t.Fatalf("unpinned blocking request: %d, Cache-Control %q", r.code, r.header.Get("Cache-Control"))
	}
}

func hasPart(pl *playlist.Media, msn, part int) bool {
	i := msn - pl.MediaSequence
	switch {
	case i < len(pl.Segments) && i >= 0:
		return part < len(pl.Segments[i].Parts)
	case i == len(pl.Segments):
		return part < len(pl.Parts)
	}
	return false
}

// A delta update skips what the client has, keeps EXT-X-MAP, and ends where the full
// playlist ends.
func TestDeltaUpdate(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.feed(15 * time.Second)
	e := expect{live: true, target: 1, partTarget: 200 * time.Millisecond, reports: []string{"audio2_stream.m3u8"}}
	full := checkMedia(t, "full", h.must("video1_stream.m3u8"), e)
	delta := checkMedia(t, "delta", h.must("video1_stream.m3u8?_HLS_skip=YES"), e)
	if delta.Skip == nil || delta.Skip.SkippedSegments == 0 {
		t.Fatal("no EXT-X-SKIP")
	}
	if delta.MediaSequence != full.MediaSequence || delta.Skip.SkippedSegments+len(delta.Segments) != len(full.Segments) {
		t.Fatalf("delta (%d skipped, %d listed) does not cover the full playlist (%d)", delta.Skip.SkippedSegments, len(delta.Segments), len(full.Segments))
	}
	var kept time.Duration
	for _, s := range delta.Segments {
		kept += s.Duration
	}
	if kept < 6*time.Second-time.Second {
		t.Fatalf("the delta keeps %s, less than CAN-SKIP-UNTIL asks", kept)
	}
}

func TestMultivariant(t *testing.T) {
	opus := &media.AudioTrack{Codec: media.CodecOpus, SampleRate: 48000, Channels: 6}
	cases := []struct {
		name   string
		tracks media.Tracks
		codecs string
		res    string
		chans  string
	}{
		{"h264 aac", h264AAC, `CODECS="avc1.64001f,mp4a.40.2"`, "RESOLUTION=1280x720", `CHANNELS="2"`},
		{"hevc opus", media.Tracks{Video: &media.VideoTrack{Codec: media.CodecH265, VPS: h265VPS, SPS: h265SPS, PPS: h265PPS, Width: 160, Height: 120}, Audio: opus},
			`CODECS="hvc1.1.6.L60.90,opus"`, "RESOLUTION=160x120", `CHANNELS="6"`},
		{"av1 aac", media.Tracks{Video: &media.VideoTrack{Codec: media.CodecAV1, SequenceHeader: av1Seq, Width: 160, Height: 120}, Audio: aacTrack(1)},
			`CODECS="av01.0.00M.08.0.110.01.01.01.0,mp4a.40.2"`, "RESOLUTION=160x120", `CHANNELS="1"`},
		{"aac alone", media.Tracks{Audio: aacTrack(2)}, `CODECS="mp4a.40.2"`, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{tracks: c.tracks})
			h.feed(3 * time.Second)
			checkMultivariant(t, h.must("index.m3u8"), c.tracks, c.codecs, c.res, c.chans)
		})
	}
}

// checkMultivariant checks a multivariant playlist of a run fed by the harness: the
// lowest version, CODECS, RESOLUTION, FRAME-RATE and the audio group with its CHANNELS
// (res and chans empty where they do not apply), BANDWIDTH with the audio.
func checkMultivariant(t *testing.T, body []byte, tracks media.Tracks, codecs, res, chans string) {
	t.Helper()
	var mv playlist.Multivariant
	if err := mv.Unmarshal(body); err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	text := string(body)
	for _, want := range []string{"#EXT-X-VERSION:6", codecs, res, chans} {
		if !strings.Contains(text, want) {
			t.Errorf("lacks %s:\n%s", want, text)
		}
	}
	v := mv.Variants[0]
	if tracks.Video != nil {
		if v.FrameRate == nil || math.Abs(*v.FrameRate-30) > 0.1 || v.Audio != "audio" || len(mv.Renditions) != 1 {
			t.Errorf("variant %+v, renditions %d", v, len(mv.Renditions))
		}
	}
	// BANDWIDTH is measured, both tracks included: the video is 480 kbit/s here, the
	// audio 112.5.
	want := 0
	if tracks.Video != nil {
		want += 2000 * 8 * 30
	}
	want += 300 * 8 * 48000 / 1024
	if v.Bandwidth < want || v.Bandwidth > want*13/10 || v.AverageBandwidth == nil || *v.AverageBandwidth < want {
		t.Errorf("BANDWIDTH %d, AVERAGE-BANDWIDTH %v: want about %d", v.Bandwidth, v.AverageBandwidth, want)
	}
}

// An ended run's playlists end with EXT-X-ENDLIST, and a request waiting for a part that
// will never come gets the final playlist.
func TestEndedPlaylist(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.feed(4 * time.Second)
	pl := checkMedia(t, "video", h.must("video1_stream.m3u8"), expect{live: true, target: 1, partTarget: 200 * time.Millisecond, reports: []string{"audio2_stream.m3u8"}})
	waiting := make(chan response, 1)
	go func() {
		waiting <- h.get(fmt.Sprintf("video1_stream.m3u8?_HLS_msn=%d&_HLS_part=%d", pl.MediaSequence+len(pl.Segments)+1, 0))
	}()
	time.Sleep(100 * time.Millisecond)
	h.end()
	r := <-waiting
	checkMedia(t, "released", r.body, expect{target: 1})
	final := checkMedia(t, "final video", h.must("video1_stream.m3u8"), expect{target: 1})
	checkMedia(t, "final audio", h.must("audio2_stream.m3u8"), expect{target: 1})
	if len(final.Segments) < len(pl.Segments) {
		t.Fatalf("the final playlist has %d segments, the live one had %d", len(final.Segments), len(pl.Segments))
	}
	h.must(uri(final.Segments[len(final.Segments)-1].URI))
}

// A publisher that comes back continues the playlists: the same run, sequence numbers going
// on, EXT-X-DISCONTINUITY before its first segment.
func TestDiscontinuity(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.feed(3500 * time.Millisecond)
	before := checkMedia(t, "before", h.must("video1_stream.m3u8"), expect{live: true, target: 1, partTarget: 200 * time.Millisecond, reports: []string{"audio2_stream.m3u8"}})
	// The publisher drops: what it sent goes out at once, not when it comes back.
	listed := func(pl *playlist.Media) time.Duration {
		var d time.Duration
		for _, s := range pl.Segments {
			d += s.Duration
		}
		for _, p := range pl.Parts {
			d += p.Duration
		}
		return d
	}
	sent := time.Duration(h.frame) * time.Second / 30
	if d := listed(before); d > sent-30*time.Millisecond {
		t.Fatalf("%s of %s listed while the publisher sends: the test needs a frame held back", d, sent)
	}
	h.sink.(media.Pauser).Paused()
	paused := checkMedia(t, "paused", h.must("video1_stream.m3u8"), expect{live: true, target: 1, partTarget: 200 * time.Millisecond, reports: []string{"audio2_stream.m3u8"}})
	if d := listed(paused); len(paused.Parts) > 0 || d < sent-2*time.Millisecond || d > sent+2*time.Millisecond {
		t.Fatalf("after the publisher dropped, %s of %s listed, %d parts of an open segment", d, sent, len(paused.Parts))
	}
	// The hub marks the first access unit of the returning publisher and continues its
	// timestamps; here the same: a key frame, marked.
	h.frame = (h.frame/h.gop + 1) * h.gop
	h.audio = int(time.Duration(h.frame) * time.Second / 30 * 48000 / 1024 / time.Second)
	ms := time.Duration(h.frame) * time.Second / 30
	if err := h.sink.WriteAccessUnit(&media.AccessUnit{Video: true, Key: true, DTS: ms, PTS: ms, Discontinuity: true,
		Received: time.Now(), Payload: [][]byte{{1, 2, 3}}}); err != nil {
		t.Fatal(err)
	}
	h.frame++
	// While the returning publisher's first segment is still open, its parts follow the
	// discontinuity, dated, in both renditions.
	h.feed(300 * time.Millisecond)
	for _, file := range []string{"video1_stream.m3u8", "audio2_stream.m3u8"} {
		body := h.must(file)
		var pl playlist.Media
		if err := pl.Unmarshal(body); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		text := string(body)
		_, tail, found := strings.Cut(text, "#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:")
		if !found || len(pl.Parts) == 0 || strings.Contains(tail, "#EXTINF") ||
			!strings.Contains(tail, `URI="`+pl.Parts[0].URI+`",INDEPENDENT=YES`) {
			t.Fatalf("%s: the open segment's parts do not follow a dated EXT-X-DISCONTINUITY:\n%s", file, body)
		}
	}
	h.feed(2700 * time.Millisecond)
	after := checkMedia(t, "after", h.must("video1_stream.m3u8"), expect{live: true, target: 1, partTarget: 200 * time.Millisecond, reports: []string{"audio2_stream.m3u8"}})
	if after.Map.URI != before.Map.URI || after.MediaSequence < before.MediaSequence {
		t.Fatal("the playlist did not go on")
	}
	n := 0
	for _, s := range after.Segments {
		if s.Discontinuity {
			n++
			if !s.Parts[0].Independent {
				t.Error("the segment after the discontinuity does not start with its key frame")
			}
		}
	}
	if n != 1 {
		t.Fatalf("%d discontinuities:\n%s", n, h.must("video1_stream.m3u8"))
	}
}

// When the publisher drops with its audio a little behind its video, the video's last
// frame, whose length is a guess, ends where the audio does: players place the returning
// publisher's audio after the video's end, and would find a hole in the audio before it.
func TestDroppedPublisherTracksEndTogether(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.feed(3500 * time.Millisecond)
	// One more video frame (3.5 s, lasting to 3.533 s), its audio (to 3.52 s) yet to come.
	ms := time.Duration(h.frame) * time.Second / 30
	if err := h.sink.WriteAccessUnit(&media.AccessUnit{Video: true, DTS: ms.Truncate(time.Millisecond), PTS: ms.Truncate(time.Millisecond),
		Received: time.Now(), Payload: [][]byte{{1, 2, 3}}}); err != nil {
		t.Fatal(err)
	}
	h.sink.(media.Pauser).Paused()
	total := func(file string) time.Duration {
		var pl playlist.Media
		if err := pl.Unmarshal(h.must(file)); err != nil {
			t.Fatal(err)
		}
		var d time.Duration
		for _, s := range pl.Segments {
			d += s.Duration
		}
		return d
	}
	video, audio := total("video1_stream.m3u8"), total("audio2_stream.m3u8")
	if d := video - audio; d < -time.Millisecond || d > time.Millisecond {
		t.Fatalf("the video ends at %s, the audio at %s", video, audio)
	}
}

// "From the start" lists the whole run of a kept run, reads what left the disk from the
// archive, and becomes VOD-like once the run ends.
func TestFromStart(t *testing.T) {
	a := &archive{}
	h := newHarness(t, harnessOpts{archive: a, cfg: Config{DVRWindow: 5 * time.Second, ChunkSize: 40_000}})
	h.feed(20 * time.Second)
	body := h.must("start.m3u8")
	var pl playlist.Media
	if err := pl.Unmarshal(body); err != nil {
		t.Fatal(err)
	}
	if pl.PlaylistType == nil || *pl.PlaylistType != playlist.MediaPlaylistTypeEvent || pl.MediaSequence != 0 || pl.Endlist || pl.Version != 6 {
		t.Fatalf("from the start:\n%s", body)
	}
	if len(pl.Segments) < 19 || pl.Segments[0].DateTime == nil {
		t.Fatalf("%d segments from the start", len(pl.Segments))
	}
	init := h.must(uri(pl.Map.URI))
	first := h.must(uri(pl.Segments[0].URI)) // long gone from the disk: from the archive
	var fr mcfmp4.Parts
	if err := fr.Unmarshal(first); err != nil || len(fr) != 2 || len(fr[0].Tracks) != 1 {
		t.Fatalf("the first segment from the start: %d fragments, %v", len(fr), err)
	}
	var in mcfmp4.Init
	if err := in.Unmarshal(bytes.NewReader(init)); err != nil || len(in.Tracks) != 2 {
		t.Fatalf("init of both tracks: %v", err)
	}
	h.end()
	var ended playlist.Media
	if err := ended.Unmarshal(h.must("start.m3u8")); err != nil || !ended.Endlist {
		t.Fatalf("from the start after the end: %v", err)
	}
	// A run no archive keeps has no playlist from the start.
	if r := newHarness(t, harnessOpts{}).get("start.m3u8"); r.code != http.StatusNotFound {
		t.Fatalf("from the start of a run not kept: %d", r.code)
	}
}

// The first part makes the playlists: a player starts about a part after the first key
// frame, not a segment.
func TestPlaylistWithTheFirstPart(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	got := make(chan response, 1)
	go func() { got <- h.get("index.m3u8") }()
	h.feed(150 * time.Millisecond)
	select {
	case r := <-got:
		t.Fatalf("answered before the first part: %d", r.code)
	case <-time.After(100 * time.Millisecond):
	}
	h.feed(100 * time.Millisecond)
	if r := <-got; r.code != http.StatusOK {
		t.Fatalf("multivariant: %d", r.code)
	}
	pl := checkMedia(t, "first", h.must("video1_stream.m3u8"), expect{live: true, target: 1, partTarget: 200 * time.Millisecond, reports: []string{"audio2_stream.m3u8"}})
	if len(pl.Segments) != 1 || len(pl.Segments[0].Parts) != 1 || !pl.Segments[0].Parts[0].Independent {
		t.Fatalf("first playlist:\n%s", h.must("video1_stream.m3u8"))
	}
}

func TestCacheHeadersAndGzip(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.feed(3 * time.Second)
	pl := checkMedia(t, "video", h.must("video1_stream.m3u8"), expect{live: true, target: 1, partTarget: 200 * time.Millisecond, reports: []string{"audio2_stream.m3u8"}})
	plain := h.get("video1_stream.m3u8?s=" + h.st.ID())
	if cc := plain.header.Get("Cache-Control"); cc != cacheRevalidate {
		t.Errorf("plain reload Cache-Control %q: a shared cache must not answer it", cc)
	}
	gz := h.get("video1_stream.m3u8?s="+h.st.ID(), "Accept-Encoding", "gzip")
	if gz.header.Get("Content-Encoding") != "gzip" || gz.header.Get("Vary") != "Accept-Encoding" {
		t.Fatalf("gzip: %v", gz.header)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz.body))
	if err != nil {
		t.Fatal(err)
	}
	unzipped, _ := io.ReadAll(zr)
	if !bytes.Equal(unzipped, plain.body) {
		t.Fatal("the gzipped playlist differs")
	}
	if r := h.get("video1_stream.m3u8?s="+h.st.ID(), "If-None-Match", plain.header.Get("ETag")); r.code != http.StatusNotModified {
		t.Fatalf("revalidation of an unchanged playlist: %d", r.code)
	}
	for _, f := range []string{uri(pl.Map.URI), uri(pl.Segments[1].URI), uri(pl.Parts[0].URI)} {
		r := h.get(f)
		if r.code != http.StatusOK || r.header.Get("Cache-Control") != cacheImmutable || !h.srv.Immutable(f) {
			t.Errorf("%s: %d, Cache-Control %q", f, r.code, r.header.Get("Cache-Control"))
		}
		if n, _ := strconv.Atoi(r.header.Get("Content-Length")); n != len(r.body) || n == 0 {
			t.Errorf("%s: Content-Length %d for %d bytes", f, n, len(r.body))
		}
	}
	if r := h.get("index.m3u8"); r.header.Get("Cache-Control") != cacheMultivariant {
		t.Errorf("multivariant Cache-Control %q", r.header.Get("Cache-Control"))
	}
	// Another run's files are gone, and say so.
	if r := h.get("video1_stream.m3u8?s=0123456789abcdef"); r.code != http.StatusNotFound || r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("an old run's playlist: %d %q", r.code, r.header.Get("Cache-Control"))
	}
}

// What a publisher can make a run hold is bounded: a part's bytes (media time standing
// still), the parts kept in memory, the index "from the start" keeps.
func TestBounds(t *testing.T) {
	t.Run("part", func(t *testing.T) {
		h := newHarness(t, harnessOpts{})
		h.feed(time.Second)
		big := bytes.Repeat([]byte{1}, 1<<20)
		var err error
		for i := 0; i <= maxPartBytes>>20 && err == nil; i++ {
			err = h.sink.WriteAccessUnit(&media.AccessUnit{Video: true, DTS: time.Second, PTS: time.Second, Payload: [][]byte{big}})
		}
		if !errors.Is(err, errPartTooLarge) {
			t.Fatalf("%d MiB at one media time: %v, want errPartTooLarge", maxPartBytes>>20, err)
		}
	})
	t.Run("live edge", func(t *testing.T) {
		h := newHarness(t, harnessOpts{})
		h.bytes = 400_000 // 96 Mbit/s
		h.feed(8 * time.Second)
		r := h.srv.lookup("cam")
		r.mu.RLock()
		defer r.mu.RUnlock()
		var held int64
		for _, s := range append(r.segs, r.open) {
			if s == nil {
				continue
			}
			for _, p := range s.parts {
				held += int64(len(p.buf[0]) + len(p.buf[1]))
			}
		}
		if held != r.edgeBytes || held > maxLiveEdgeBytes+int64(h.bytes)*6 {
			t.Fatalf("parts in memory: %d bytes (counted %d), bound %d", held, r.edgeBytes, maxLiveEdgeBytes)
		}
	})
	t.Run("from the start", func(t *testing.T) {
		h := newHarness(t, harnessOpts{archive: &archive{}})
		r := h.srv.lookup("cam")
		r.mu.Lock()
		r.maxHist = 5
		r.mu.Unlock()
		h.feed(8 * time.Second)
		if r := h.get("start.m3u8"); r.code != http.StatusNotFound {
			t.Fatalf("from the start past %d segments: %d, want 404", 5, r.code)
		}
		_ = maxRunSegments // the bound in production
	})
}

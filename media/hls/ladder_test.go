package hls

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gohlslib/v2/pkg/playlist"

	"onair/media"
)

// addRendition publishes a further rendition of the harness's stream, at w x h and bytes
// per frame, fed by hand like the main.
func (h *harness) addRendition(name string, w, hgt, bytes int) *harness {
	h.t.Helper()
	pub, err := h.hub.Publish(context.Background(), media.Route{Name: "cam", Rendition: name}, "test")
	if err != nil {
		h.t.Fatal(err)
	}
	st, err := pub.Start(media.Tracks{Video: &media.VideoTrack{Codec: media.CodecH264, SPS: h264SPS, PPS: h264PPS, Width: w, Height: hgt}})
	if err != nil {
		h.t.Fatal(err)
	}
	snk, err := h.srv.OpenSink(st)
	if err != nil {
		h.t.Fatal(err)
	}
	// The hub finds a rendition aligned from the access units its publisher writes; the
	// harness feeds the sink directly, with key frames where the main's are.
	snk.(*sink).r.aligned = func() bool { return true }
	return &harness{t: h.t, srv: h.srv, http: h.http, hub: h.hub, pub: pub, st: st, sink: snk,
		fps: h.fps, gop: h.gop, wall0: h.wall0, video: true, bytes: bytes}
}

// feedLadder feeds the main and its renditions d of media each, the main a little ahead
// as it is when a rendition waits to learn where the main cuts.
func feedLadder(d time.Duration, main *harness, subs ...*harness) {
	main.feed(d)
	for _, s := range subs {
		s.feed(main.now() - s.now() - 300*time.Millisecond)
	}
}

// A stream with two further renditions: the multivariant playlist lists the three in
// descending bandwidth with their attributes, every media playlist passes the conformance
// check and reports the others, and the renditions' segments start where the main's do,
// with the same sequence numbers and dates.
func TestLadder(t *testing.T) {
	main := newHarness(t, harnessOpts{})
	main.feed(500 * time.Millisecond)
	r360 := main.addRendition("360p", 640, 360, 800)
	r480 := main.addRendition("low_480", 854, 480, 1200)
	for range 30 {
		feedLadder(300*time.Millisecond, main, r360, r480)
	}

	var mv playlist.Multivariant
	body := main.must("index.m3u8")
	if err := mv.Unmarshal(body); err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	if len(mv.Variants) != 3 {
		t.Fatalf("%d variants, want 3:\n%s", len(mv.Variants), body)
	}
	wantRes := []string{"1280x720", "854x480", "640x360"}
	wantURI := []string{"video1_stream.m3u8", "r-low_480_stream.m3u8", "r-360p_stream.m3u8"}
	for i, v := range mv.Variants {
		if i > 0 && v.Bandwidth > mv.Variants[i-1].Bandwidth {
			t.Errorf("variants not in descending bandwidth:\n%s", body)
		}
		if v.Resolution != wantRes[i] || uri(v.URI) != wantURI[i] || v.Audio != "audio" || v.FrameRate == nil ||
			v.AverageBandwidth == nil || strings.Join(v.Codecs, ",") != "avc1.64001f,mp4a.40.2" {
			t.Errorf("variant %d: %+v, want %s at %s", i, v, wantURI[i], wantRes[i])
		}
	}
	// 800 bytes a frame at 30 fps and the audio's 112.5 kbit/s.
	if bw := mv.Variants[2].Bandwidth; bw < 800*8*30+112_500 || bw > (800*8*30+112_500)*13/10 {
		t.Errorf("360p BANDWIDTH %d", bw)
	}

	e := func(reports ...string) expect {
		return expect{live: true, target: 1, partTarget: 200 * time.Millisecond, reports: reports, ladder: true}
	}
	playlists := map[string]expect{
		"video1_stream.m3u8":    e("audio2_stream.m3u8", "r-360p_stream.m3u8", "r-low_480_stream.m3u8"),
		"r-360p_stream.m3u8":    e("video1_stream.m3u8", "audio2_stream.m3u8", "r-low_480_stream.m3u8"),
		"r-low_480_stream.m3u8": e("video1_stream.m3u8", "audio2_stream.m3u8", "r-360p_stream.m3u8"),
	}
	got := map[string]*playlist.Media{}
	for file, want := range playlists {
		pl := checkMedia(t, file, main.must(uri(file)), want)
		checkIndependent(t, main, pl)
		got[file] = pl
	}
	checkMedia(t, "audio", main.must("audio2_stream.m3u8"),
		expect{live: true, target: 1, partTarget: 221340 * time.Microsecond, ladder: true,
			reports: []string{"video1_stream.m3u8", "r-360p_stream.m3u8", "r-low_480_stream.m3u8"}})

	// A rendition's delta update and blocking reload obey the same rules.
	sub := playlists["r-360p_stream.m3u8"]
	if pl := checkMedia(t, "delta", main.must("r-360p_stream.m3u8?_HLS_skip=YES"), sub); pl.Skip == nil {
		t.Error("no EXT-X-SKIP in the rendition's delta update")
	}
	before := got["r-360p_stream.m3u8"]
	msn, part := before.MediaSequence+len(before.Segments), len(before.Parts)
	answer := make(chan response, 1)
	go func() {
		answer <- main.get(fmt.Sprintf("r-360p_stream.m3u8?s=%s&_HLS_msn=%d&_HLS_part=%d", r360.st.ID(), msn, part))
	}()
	feedLadder(600*time.Millisecond, main, r360, r480)
	if r := <-answer; r.code != 200 {
		t.Fatalf("blocking request of the rendition: %d %s", r.code, r.body)
	} else if pl := checkMedia(t, "blocking", r.body, sub); !hasPart(pl, msn, part) {
		t.Fatalf("the blocking answer lacks part %d.%d:\n%s", msn, part, r.body)
	}

	// Segments line up: the same sequence number has the same date and duration.
	type seg struct {
		date time.Time
		dur  time.Duration
	}
	mainSegs := map[int]seg{}
	pm := got["video1_stream.m3u8"]
	for i, s := range pm.Segments {
		mainSegs[pm.MediaSequence+i] = seg{*s.DateTime, s.Duration}
	}
	for _, file := range []string{"r-360p_stream.m3u8", "r-low_480_stream.m3u8"} {
		pl, matched := got[file], 0
		for i, s := range pl.Segments {
			m, ok := mainSegs[pl.MediaSequence+i]
			if !ok || len(s.Parts) == 0 {
				continue
			}
			matched++
			if d := s.DateTime.Sub(m.date); d < -time.Millisecond || d > time.Millisecond || s.Duration != m.dur {
				t.Errorf("%s segment %d: %s for %s, the main's %s for %s", file, pl.MediaSequence+i, s.DateTime, s.Duration, m.date, m.dur)
			}
			if !s.Parts[0].Independent {
				t.Errorf("%s segment %d does not start with a key frame", file, pl.MediaSequence+i)
			}
		}
		if matched < 3 {
			t.Errorf("%s: %d segments beside the main's", file, matched)
		}
	}

	// A rendition that ends leaves the ladder; the main goes on.
	r360.end()
	if strings.Contains(string(main.must("index.m3u8")), "r-360p") {
		t.Error("the ended rendition is still offered")
	}
	if r := main.get("r-360p_stream.m3u8"); r.code != 404 {
		t.Errorf("the ended rendition's playlist: %d", r.code)
	}
}

func TestRenditionFileNames(t *testing.T) {
	cases := []struct {
		file string
		want fileRef
	}{
		{"r-360p_stream.m3u8", fileRef{kind: kindMediaPlaylist, rendition: "r-360p"}},
		{"r-low_1_stream.m3u8", fileRef{kind: kindMediaPlaylist, rendition: "r-low_1"}},
		{"abc_r-low_1_part12.mp4", fileRef{kind: kindPart, rendition: "r-low_1", run: "abc", n: 12}},
		{"abc_r-360p_seg3.mp4", fileRef{kind: kindSegment, rendition: "r-360p", run: "abc", n: 3}},
		{"abc_r-360p_init.mp4", fileRef{kind: kindInit, rendition: "r-360p", run: "abc"}},
		{"r-_stream.m3u8", fileRef{}},
		{"r-UP_stream.m3u8", fileRef{}},
		{"abc_video1_extra_part1.mp4", fileRef{}},
	}
	for _, c := range cases {
		if got := parseFile(c.file); got != c.want {
			t.Errorf("parseFile(%q) = %+v, want %+v", c.file, got, c.want)
		}
	}
}

// With key frames further apart than the segment target (2 s, as Twitch asks of OBS), a
// segment cut at the target inside a GOP ends at the next key frame: segments go back to
// starting on key frames, so that a rendition finds where to start beside the main.
func TestLadderLongKeyFrameInterval(t *testing.T) {
	main := newHarness(t, harnessOpts{gop: 60})
	main.feed(500 * time.Millisecond)
	r360 := main.addRendition("360p", 640, 360, 800)
	for range 40 {
		feedLadder(300*time.Millisecond, main, r360)
	}
	var pm playlist.Media
	if err := pm.Unmarshal(main.must("video1_stream.m3u8")); err != nil {
		t.Fatal(err)
	}
	for i, s := range pm.Segments {
		for j, p := range s.Parts {
			if p.Independent && j > 0 {
				t.Errorf("segment %d: its part %d starts with a key frame, not the segment", pm.MediaSequence+i, j)
			}
		}
	}
	pl := checkMedia(t, "360p", main.must("r-360p_stream.m3u8"),
		expect{live: true, target: 1, partTarget: 200 * time.Millisecond, ladder: true,
			reports: []string{"video1_stream.m3u8", "audio2_stream.m3u8"}})
	if len(pl.Segments) < 3 {
		t.Fatalf("the rendition has %d segments after 12 s", len(pl.Segments))
	}
}

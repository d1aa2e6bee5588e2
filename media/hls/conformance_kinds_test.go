package hls

import (
	"context"
	"fmt"
	"io"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gohlslib/v2/pkg/playlist"
	mcfmp4 "github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
)

// TestConformance checks every kind of playlist onair writes against the rules that
// checkMedia and checkMultivariant hold: live (both renditions), a blocking answer, a
// delta update, the multivariant playlist, "from the start", the ended run's, and the
// replay of its recording. The other tests here check how each is come to (when a
// blocking request is answered, what a delta skips, which codecs a multivariant names).
func TestConformance(t *testing.T) {
	video := expect{live: true, target: 1, partTarget: 200 * time.Millisecond, reports: []string{"audio2_stream.m3u8"}}
	audio := expect{live: true, target: 1, partTarget: 221340 * time.Microsecond, reports: []string{"video1_stream.m3u8"}}
	ended := expect{target: 1}

	// One run stays live; another, kept by an archive as a recording is, has ended.
	live := newHarness(t, harnessOpts{})
	live.feed(10 * time.Second)
	rec := &archive{}
	done := newHarness(t, harnessOpts{archive: rec, cfg: Config{ChunkSize: 40_000}})
	done.feed(10 * time.Second)
	done.end()

	// blocking asks for the part after the last one listed and feeds the run until it
	// is answered.
	blocking := func(t *testing.T, file string) []byte {
		pl := checkMedia(t, "before blocking", live.must(file), video)
		msn, part := pl.MediaSequence+len(pl.Segments), len(pl.Parts)
		got := make(chan response, 1)
		go func() {
			got <- live.get(fmt.Sprintf("%s?s=%s&_HLS_msn=%d&_HLS_part=%d", file, live.st.ID(), msn, part))
		}()
		live.feed(300 * time.Millisecond)
		r := <-got
		if r.code != 200 {
			t.Fatalf("blocking request: %d %s", r.code, r.body)
		}
		if got := checkMedia(t, "blocking", r.body, video); !hasPart(got, msn, part) {
			t.Fatalf("the blocking answer lacks part %d.%d:\n%s", msn, part, r.body)
		}
		return r.body
	}
	cases := []struct {
		name  string
		body  func(t *testing.T) []byte
		e     expect
		check func(t *testing.T, body []byte) // instead of checkMedia
		then  func(t *testing.T, pl *playlist.Media)
	}{
		{name: "live video", body: func(*testing.T) []byte { return live.must("video1_stream.m3u8") }, e: video,
			then: func(t *testing.T, pl *playlist.Media) { checkIndependent(t, live, pl) }},
		{name: "live audio", body: func(*testing.T) []byte { return live.must("audio2_stream.m3u8") }, e: audio,
			then: func(t *testing.T, pl *playlist.Media) { checkIndependent(t, live, pl) }},
		{name: "blocking", body: func(t *testing.T) []byte { return blocking(t, "video1_stream.m3u8") }, e: video},
		{name: "delta video", body: func(*testing.T) []byte { return live.must("video1_stream.m3u8?_HLS_skip=YES") }, e: video,
			then: func(t *testing.T, pl *playlist.Media) {
				if pl.Skip == nil {
					t.Fatal("no EXT-X-SKIP")
				}
			}},
		{name: "delta audio", body: func(*testing.T) []byte { return live.must("audio2_stream.m3u8?_HLS_skip=YES") }, e: audio},
		{name: "multivariant", body: func(*testing.T) []byte { return live.must("index.m3u8") },
			check: func(t *testing.T, body []byte) {
				checkMultivariant(t, body, h264AAC, `CODECS="avc1.64001f,mp4a.40.2"`, "RESOLUTION=1280x720", `CHANNELS="2"`)
			}},
		{name: "ended video", body: func(*testing.T) []byte { return done.must("video1_stream.m3u8") }, e: ended},
		{name: "ended audio", body: func(*testing.T) []byte { return done.must("audio2_stream.m3u8") }, e: ended},
		{name: "from the start, ended", body: func(*testing.T) []byte { return done.must("start.m3u8") }, e: expect{target: 1, sparseDates: true}},
		{name: "replay", body: func(*testing.T) []byte { return []byte(replayOf(rec)) },
			e:    expect{target: 1, replay: true, initSize: rec.initSize},
			then: func(t *testing.T, pl *playlist.Media) { checkReplayMedia(t, rec, pl) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := c.body(t)
			if c.check != nil {
				c.check(t, body)
				return
			}
			pl := checkMedia(t, c.name, body, c.e)
			if c.then != nil {
				c.then(t, pl)
			}
		})
	}
}

// replayOf is the replay playlist of what rec archived, as web writes it for the
// recording (whose object is the run's log).
func replayOf(rec *archive) string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	segs := make([]ReplaySegment, len(rec.segs))
	for i, s := range rec.segs {
		segs[i] = ReplaySegment{Offset: s.Offset, Size: s.Size(), Duration: s.Duration, Key: s.Independent}
	}
	return ReplayPlaylist("https://s3.example/recordings/r.mp4?X-Amz-Signature=abc", rec.initSize, segs, time.Date(2026, 12, 7, 13, 0, 0, 0, time.UTC))
}

// checkReplay checks what a replay playlist must be besides what every playlist must:
// VOD, nothing that invites blocking requests, TARGETDURATION rounded up from the longest
// segment, the init and the segments byte ranges of one object that follow each other.
func checkReplay(t *testing.T, name string, body []byte, pl *playlist.Media, e expect) {
	t.Helper()
	fail := func(format string, a ...any) {
		t.Helper()
		t.Fatalf("%s: %s\n%s", name, fmt.Sprintf(format, a...), body)
	}
	switch {
	case pl.PlaylistType == nil || *pl.PlaylistType != playlist.MediaPlaylistTypeVOD:
		fail("not PLAYLIST-TYPE VOD")
	case !pl.Endlist:
		fail("no EXT-X-ENDLIST")
	case pl.ServerControl != nil || pl.PartInf != nil || len(pl.Parts) > 0 || pl.PreloadHint != nil || len(pl.RenditionReport) > 0:
		fail("Low-Latency HLS tags in a replay")
	case len(pl.Segments) == 0:
		fail("no segments")
	case pl.Segments[0].DateTime == nil:
		fail("the first segment has no EXT-X-PROGRAM-DATE-TIME")
	case pl.Map.ByteRangeLength == nil || int64(*pl.Map.ByteRangeLength) != e.initSize || (pl.Map.ByteRangeStart != nil && *pl.Map.ByteRangeStart != 0):
		fail("EXT-X-MAP is not the object's first %d bytes", e.initSize)
	}
	longest := time.Duration(0)
	at := uint64(e.initSize)
	for _, s := range pl.Segments {
		longest = max(longest, s.Duration)
		if s.URI != pl.Map.URI {
			fail("segment %s is not in the object %s", s.URI, pl.Map.URI)
		}
		if s.ByteRangeLength == nil || s.ByteRangeStart == nil || *s.ByteRangeStart != at || *s.ByteRangeLength == 0 {
			fail("a segment's byte range does not follow the one before it (at %d)", at)
		}
		at += *s.ByteRangeLength
	}
	if want := int(math.Ceil(longest.Seconds())); pl.TargetDuration != want {
		fail("TARGETDURATION %d for a longest segment of %s", pl.TargetDuration, longest)
	}
}

// checkReplayMedia reads the replay's byte ranges from what the archive holds: each is
// whole fragments of both tracks, and EXT-X-INDEPENDENT-SEGMENTS is there exactly when
// every segment starts with a key frame.
func checkReplayMedia(t *testing.T, rec *archive, pl *playlist.Media) {
	t.Helper()
	all := true
	for i, s := range pl.Segments {
		rc, err := rec.Open(context.Background(), int64(*s.ByteRangeStart), int64(*s.ByteRangeLength))
		if err != nil {
			t.Fatalf("segment %d: %v", i, err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		var fr mcfmp4.Parts
		if err := fr.Unmarshal(b); err != nil || len(fr) == 0 {
			t.Fatalf("segment %d: %d fragments: %v", i, len(fr), err)
		}
		var ids []string
		key := false
		for _, p := range fr {
			for _, tr := range p.Tracks {
				ids = append(ids, fmt.Sprint(tr.ID))
				if tr.ID == 1 && len(ids) == 1 {
					key = len(tr.Samples) > 0 && !tr.Samples[0].IsNonSyncSample
				}
			}
		}
		if !strings.Contains(strings.Join(ids, ","), "1") || !strings.Contains(strings.Join(ids, ","), "2") {
			t.Fatalf("segment %d holds tracks %v, want both", i, ids)
		}
		all = all && key
	}
	if pl.IndependentSegments != all {
		t.Fatalf("EXT-X-INDEPENDENT-SEGMENTS %v, every segment starting with a key frame: %v", pl.IndependentSegments, all)
	}
}

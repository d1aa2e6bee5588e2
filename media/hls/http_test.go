package hls

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestCacheControl(t *testing.T) {
	tests := []struct {
		file          string
		kind          fileKind
		blocking      bool
		sessionPinned bool
		want          string
	}{
		{"index.m3u8", kindMultivariant, false, false, "public, max-age=1"},
		{"video1_stream.m3u8", kindMediaPlaylist, false, true, "public, max-age=1"},
		{"video1_stream.m3u8", kindMediaPlaylist, true, true, "public, max-age=60"},
		// Without the run id, a blocking answer could be served to a later run's viewers.
		{"video1_stream.m3u8", kindMediaPlaylist, true, false, "no-cache"},
		{"video1_stream.m3u8", kindMediaPlaylist, false, false, "no-cache"},
		{"main_stream.m3u8", kindMediaPlaylist, false, true, "public, max-age=1"},
		{"abc_video1_init.mp4", kindInit, false, true, "public, max-age=31536000, immutable"},
		{"abc_video1_part12.mp4", kindPart, false, true, "public, max-age=31536000, immutable"},
		{"abc_video1_seg3.mp4", kindSegment, false, true, "public, max-age=31536000, immutable"},
		{"abc_main_seg3.ts", kindSegment, false, true, "public, max-age=31536000, immutable"},
		{"../etc/passwd", kindUnknown, false, true, "no-store"},
		{"gap.mp4", kindUnknown, false, true, "no-store"},
		{"index.html", kindUnknown, false, true, "no-store"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			if got := classify(tt.file); got != tt.kind {
				t.Fatalf("classify(%q) = %v, want %v", tt.file, got, tt.kind)
			}
			if got := cacheControl(tt.kind, tt.blocking, tt.sessionPinned); got != tt.want {
				t.Fatalf("cacheControl = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestServeHTTPWithoutStream(t *testing.T) {
	s, err := New(Config{Directory: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/live/{name}/{file}", s)
	tests := []struct {
		method, path string
		code         int
		header       map[string]string
	}{
		{"GET", "/live/cam/index.m3u8", 404, map[string]string{"Cache-Control": "no-store", "Access-Control-Allow-Origin": "*"}},
		{"GET", "/live/cam/abc_video1_seg1.mp4", 404, map[string]string{"Cache-Control": "no-store"}},
		{"GET", "/live/cam/whatever.txt", 404, nil},
		{"OPTIONS", "/live/cam/index.m3u8", 204, map[string]string{"Access-Control-Allow-Methods": "GET, HEAD, OPTIONS", "Access-Control-Allow-Origin": "*"}},
		{"POST", "/live/cam/index.m3u8", 405, map[string]string{"Allow": "GET, HEAD, OPTIONS"}},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
			if rec.Code != tt.code {
				t.Fatalf("code = %d, want %d", rec.Code, tt.code)
			}
			for k, v := range tt.header {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestEndPlaylist(t *testing.T) {
	live := `#EXTM3U
#EXT-X-VERSION:10
#EXT-X-TARGETDURATION:1
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=6,PART-HOLD-BACK=0.50000
#EXT-X-PART-INF:PART-TARGET=0.20000
#EXT-X-MEDIA-SEQUENCE:3
#EXT-X-MAP:URI="p_video1_init.mp4?s=1"
#EXT-X-GAP
#EXTINF:1.00000,
gap.mp4
#EXT-X-PROGRAM-DATE-TIME:2026-11-22T10:00:00Z
#EXT-X-PART:DURATION=0.50000,URI="p_video1_part0.mp4?s=1",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.50000,URI="p_video1_part1.mp4?s=1"
#EXTINF:1.00000,
p_video1_seg10.mp4?s=1
#EXT-X-PART:DURATION=0.20000,URI="p_video1_part2.mp4?s=1",INDEPENDENT=YES
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="p_video1_part3.mp4?s=1"
`
	out, refs, err := endPlaylist([]byte(live))
	if err != nil {
		t.Fatal(err)
	}
	got := string(out)
	for _, gone := range []string{"SERVER-CONTROL", "PART-INF", "EXT-X-PART:", "PRELOAD-HINT"} {
		if strings.Contains(got, gone) {
			t.Errorf("final playlist still has %s:\n%s", gone, got)
		}
	}
	for _, kept := range []string{"#EXT-X-ENDLIST", "p_video1_seg10.mp4?s=1", "#EXT-X-MAP:URI=\"p_video1_init.mp4?s=1\"", "#EXT-X-MEDIA-SEQUENCE:3"} {
		if !strings.Contains(got, kept) {
			t.Errorf("final playlist lacks %s:\n%s", kept, got)
		}
	}
	if strings.Join(refs, " ") != "p_video1_init.mp4?s=1 p_video1_seg10.mp4?s=1" {
		t.Errorf("refs = %v", refs)
	}
}

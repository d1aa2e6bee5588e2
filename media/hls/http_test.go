package hls

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestParseFile(t *testing.T) {
	tests := []struct {
		file string
		want fileRef
	}{
		{"index.m3u8", fileRef{kind: kindMultivariant}},
		{"video1_stream.m3u8", fileRef{kind: kindMediaPlaylist, rendition: renditionVideo}},
		{"audio2_stream.m3u8", fileRef{kind: kindMediaPlaylist, rendition: renditionAudio}},
		{"start.m3u8", fileRef{kind: kindMediaPlaylist, rendition: renditionAV}},
		{"abc_video1_init.mp4", fileRef{kind: kindInit, rendition: renditionVideo, run: "abc"}},
		{"abc_av_init.mp4", fileRef{kind: kindInit, rendition: renditionAV, run: "abc"}},
		{"abc_video1_part12.mp4", fileRef{kind: kindPart, rendition: renditionVideo, run: "abc", n: 12}},
		{"abc_audio2_seg3.mp4", fileRef{kind: kindSegment, rendition: renditionAudio, run: "abc", n: 3}},
		{"abc_av_seg0.mp4", fileRef{kind: kindSegment, rendition: renditionAV, run: "abc"}},
		{"abc_av_part1.mp4", fileRef{}},
		{"abc_video1_seg03.mp4", fileRef{}},
		{"abc_video1_seg-1.mp4", fileRef{}},
		{"abc_video2_seg1.mp4", fileRef{}},
		{"other_stream.m3u8", fileRef{}},
		{"../etc/passwd", fileRef{}},
		{"gap.mp4", fileRef{}},
		{"index.html", fileRef{}},
	}
	for _, tt := range tests {
		if got := parseFile(tt.file); got != tt.want {
			t.Errorf("parseFile(%q) = %+v, want %+v", tt.file, got, tt.want)
		}
	}
	if got := parseFile(partName("r1", renditionVideo, 7)); got != (fileRef{kind: kindPart, rendition: renditionVideo, run: "r1", n: 7}) {
		t.Errorf("a part's name reads back as %+v", got)
	}
}

func TestServeHTTPWithoutStream(t *testing.T) {
	s, err := New(Config{Dir: t.TempDir()})
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

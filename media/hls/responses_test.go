package hls

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestSharedResponses(t *testing.T) {
	c := responses{entries: map[string]*sharedResponse{}}
	t0 := time.Now()
	first, produce := c.get("video1_stream.m3u8?_HLS_msn=9", t0)
	if !produce {
		t.Fatal("the first request must produce the answer")
	}
	second, produce := c.get("video1_stream.m3u8?_HLS_msn=9", t0)
	if produce || second != first {
		t.Fatal("a request while the answer is in flight must wait for it")
	}
	if _, produce := c.get("video1_stream.m3u8?_HLS_msn=10", t0); !produce {
		t.Fatal("another URL shares nothing")
	}
	c.done(first, shareBlocking)
	if e, produce := c.get("video1_stream.m3u8?_HLS_msn=9", time.Now()); produce || e != first {
		t.Fatal("a fresh answer is shared")
	}
	if _, produce := c.get("video1_stream.m3u8?_HLS_msn=9", time.Now().Add(2*shareBlocking)); !produce {
		t.Fatal("an expired answer is produced again")
	}
	if shareFor(kindMediaPlaylist, false) != sharePlaylist || shareFor(kindPart, false) != sharePart || shareFor(kindMediaPlaylist, true) != shareBlocking {
		t.Fatal("wrong sharing times")
	}
}

func TestOpenFinishedSegment(t *testing.T) {
	sess := &session{dir: t.TempDir()}
	for _, f := range []string{"p_video1_seg7.mp4", "p_video1_seg8.mp4"} {
		if err := os.WriteFile(filepath.Join(sess.dir, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		file string
		ok   bool
	}{
		{"p_video1_seg7.mp4", true},  // seg8 exists: seg7 is finished
		{"p_video1_seg8.mp4", false}, // still being written
		{"p_video1_seg6.mp4", false}, // gone from the window
		{"p_video1_segx.mp4", false},
		{"../p_video1_seg7.mp4", true}, // only the base name is used
		{"index.m3u8", false},
	}
	for _, tt := range tests {
		f, ok := sess.openFinishedSegment(tt.file)
		if ok != tt.ok {
			t.Errorf("openFinishedSegment(%q) = %v, want %v", tt.file, ok, tt.ok)
		}
		if f != nil {
			f.Close()
		}
	}
}

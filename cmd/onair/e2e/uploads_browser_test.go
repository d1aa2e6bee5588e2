package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"onair/scripts/testenv"
)

// TestBrowserUpload runs web/ui/e2e/uploads.mjs in Chromium against the local storage
// backend: a 200 MB MP4 goes through the dashboard's upload form in parts, is interrupted
// by a reload half-way and resumed, and its replay plays; a text file renamed .mp4 is
// refused with a reason. Nothing of either upload is left in storage.
func TestBrowserUpload(t *testing.T) {
	chromium := browserDeps(t)
	o, _ := startWithMongo(t)
	ann := newClient(t, o.HTTP)
	ann.signUp("ann")
	ann.createRoom("ann-vod")

	dir := t.TempDir()
	video := filepath.Join(dir, "conference-talk.mp4")
	// Noise does not compress: 16 s of it at 720p is about 200 MB.
	cmd := exec.Command("ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=s=1280x720:r=25", "-f", "lavfi",
		"-i", "sine=frequency=440:sample_rate=48000", "-t", "16", "-vf", "noise=alls=30:allf=t", "-c:v", "libx264",
		"-preset", "ultrafast", "-g", "50", "-crf", "20", "-c:a", "aac", "-shortest", video)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
	st, err := os.Stat(video)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("uploading a %d-byte MP4", st.Size())
	text := filepath.Join(dir, "notes.mp4")
	if err := os.WriteFile(text, bytes.Repeat([]byte("meeting notes, not a video\n"), 20000), 0o600); err != nil {
		t.Fatal(err)
	}
	runBrowserScript(t, "uploads.mjs", []string{"ONAIR_URL=" + o.HTTP, "ROOM=ann-vod", "VIDEO=" + video, "TEXT=" + text,
		"CHROMIUM=" + chromium}, func(command string, _ []string) string {
		t.Fatalf("the browser script asked for %s", command)
		return ""
	})

	// The uploaded files and their parts are gone from the local store; the recording stays.
	root := filepath.Join(o.DataDir, "objects")
	testenv.Eventually(t, 10*time.Second, func() (bool, string) {
		left, _ := filepath.Glob(filepath.Join(root, "objects", "uploads", "*", "*", "*"))
		parts, _ := filepath.Glob(filepath.Join(root, "uploads", "*"))
		return len(left) == 0 && len(parts) == 0, fmt.Sprintf("left in storage: %v %v", left, parts)
	})
	recs, _ := filepath.Glob(filepath.Join(root, "objects", "recordings", "*", "upload-*", "recording.mp4"))
	if len(recs) != 1 {
		t.Fatalf("recordings of uploads: %v, want one", recs)
	}
}

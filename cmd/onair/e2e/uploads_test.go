package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"onair/scripts/testenv"
	"onair/storage"
	"onair/storage/s3"
)

type apiUpload struct {
	ID          string `json:"id"`
	State       string `json:"state"`
	Reason      string `json:"reason"`
	Size        int64  `json:"size"`
	PartSize    int64  `json:"part_size"`
	PartCount   int    `json:"part_count"`
	BroadcastID string `json:"broadcast_id"`
	Uploaded    []int  `json:"uploaded"`
	Parts       []struct {
		Number int    `json:"number"`
		Size   int64  `json:"size"`
		URL    string `json:"url"`
	} `json:"parts"`
}

// uploadVideo makes an MP4 with ffmpeg: noisy video, so that it is large for its length.
func uploadVideo(t *testing.T, seconds int, args ...string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "talk.mp4")
	base := []string{"-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=s=640x360:r=25", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", fmt.Sprint(seconds), "-vf", "noise=alls=30:allf=t", "-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-c:a", "aac", "-shortest"}
	cmd := exec.Command("ffmpeg", append(append(base, args...), out)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
	return out
}

// putPart PUTs a part's bytes to its presigned URL, as a browser does.
func putPart(t *testing.T, url string, body []byte) int {
	t.Helper()
	req, err := http.NewRequest("PUT", url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitUpload polls an upload until it leaves state from.
func waitUpload(t *testing.T, c *client, path, from string) apiUpload {
	t.Helper()
	var u apiUpload
	testenv.Eventually(t, 90*time.Second, func() (bool, string) {
		c.must(200, "GET", path, nil, &u)
		return u.State != from, "upload is " + u.State
	})
	return u
}

// TestUploadsS3: a streamer uploads an MP4 in parts straight to MinIO through presigned
// URLs, interrupted and resumed; it becomes a past broadcast whose replay holds every frame
// of the file and can be clipped. A renamed text file is refused and deleted, an
// abandoned upload is aborted by the janitor, and nobody else uploads to the room.
func TestUploadsS3(t *testing.T) {
	srv := testenv.StartS3(t)
	o, _ := startWithMongo(t, append(s3Env(srv), "ONAIR_UPLOADS_MAX_BYTES=67108864", "ONAIR_UPLOADS_TTL=20s",
		"ONAIR_UPLOADS_JANITOR_INTERVAL=500ms")...)
	store, err := s3.New(context.Background(), s3.Config{Endpoint: srv.Endpoint, Bucket: "recordings", PathStyle: true,
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	ann := newClient(t, o.HTTP)
	ann.signUp("ann")
	bob := newClient(t, o.HTTP)
	bob.signUp("bob")
	room, _ := ann.createRoom("ann-talks")
	const uploads = "/api/v1/rooms/ann-talks/uploads"

	file := uploadVideo(t, 8)
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	req := map[string]any{"filename": "talk.mp4", "size": len(data), "content_type": "video/mp4", "title": "My talk"}

	// Nobody but the owner (or an admin) uploads; bad input changes nothing.
	var e apiErr
	if code, _ := bob.do("POST", uploads, req, &e); code != 403 {
		t.Fatalf("bob uploads to ann's room: %d", code)
	}
	for _, bad := range []struct {
		body  map[string]any
		code  int
		field string
	}{
		{map[string]any{"filename": "talk.mp4", "size": 65 << 20}, 413, "size"},
		{map[string]any{"filename": "notes.txt", "size": 1000}, 400, "filename"},
		{map[string]any{"filename": "talk.mp4", "size": 0}, 400, "size"},
		{map[string]any{"filename": "talk.mp4", "size": 1000, "content_type": "text/html"}, 400, "content_type"},
		{map[string]any{"filename": "talk.mp4", "size": 1000, "extra": 1}, 400, "extra"},
	} {
		if code, _ := ann.do("POST", uploads, bad.body, &e); code != bad.code || e.Error.Field != bad.field {
			t.Fatalf("upload %v: %d %+v, want %d on %s", bad.body, code, e, bad.code, bad.field)
		}
	}

	// Start, upload some parts, stop: the server says which parts the store has.
	var up apiUpload
	ann.must(201, "POST", uploads, req, &up)
	if up.PartCount < 3 || len(up.Parts) != up.PartCount || up.State != "uploading" {
		t.Fatalf("upload of %d bytes: %+v", len(data), up)
	}
	t.Logf("uploading %d bytes in %d parts of %d", len(data), up.PartCount, up.PartSize)
	part := func(n int) []byte {
		start := int64(n-1) * up.PartSize
		return data[start:min(start+up.PartSize, int64(len(data)))]
	}
	for _, p := range up.Parts[:2] {
		if code := putPart(t, p.URL, part(p.Number)); code != 200 {
			t.Fatalf("PUT part %d: %d", p.Number, code)
		}
	}
	path := uploads + "/" + up.ID
	if code, _ := ann.do("POST", path+"/complete", nil, &e); code != 409 || e.Error.Field != "parts" {
		t.Fatalf("complete with parts missing: %d %+v", code, e)
	}
	if code, _ := bob.do("GET", path, nil, &e); code != 403 {
		t.Fatalf("bob reads ann's upload: %d", code)
	}
	var resumed apiUpload
	ann.must(200, "GET", path, nil, &resumed)
	if fmt.Sprint(resumed.Uploaded) != "[1 2]" || len(resumed.Parts) != up.PartCount-2 || resumed.Parts[0].Number != 3 {
		t.Fatalf("resume: uploaded %v, %d URLs, want [1 2] and the rest", resumed.Uploaded, len(resumed.Parts))
	}
	for _, p := range resumed.Parts {
		if code := putPart(t, p.URL, part(p.Number)); code != 200 {
			t.Fatalf("PUT part %d: %d", p.Number, code)
		}
	}
	ann.must(202, "POST", path+"/complete", nil, &up)
	done := waitUpload(t, ann, path, "processing")
	if done.State != "ready" || done.BroadcastID == "" {
		t.Fatalf("upload after processing: %+v", done)
	}
	source := "uploads/" + room.ID + "/" + up.ID + "/source"
	if _, err := store.Head(context.Background(), source); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the uploaded file is still in the bucket: %v", err)
	}

	// It is a past broadcast of the room: listed, replayed frame for frame, clippable.
	var page struct {
		Broadcasts []apiBroadcast `json:"broadcasts"`
	}
	ann.must(200, "GET", "/api/v1/rooms/ann-talks/broadcasts", nil, &page)
	if len(page.Broadcasts) != 1 || page.Broadcasts[0].ID != done.BroadcastID {
		t.Fatalf("the room's broadcasts: %+v", page.Broadcasts)
	}
	b := page.Broadcasts[0]
	var full struct {
		Source string `json:"source"`
		Title  string `json:"title"`
	}
	bob.must(200, "GET", "/api/v1/broadcasts/"+b.ID, nil, &full)
	if b.Recording == nil || b.Recording.Status != "ready" || b.Ended == nil || b.Codecs.Video != "h264" || b.Codecs.Audio != "aac" ||
		full.Source != "upload" || full.Title != "My talk" {
		t.Fatalf("uploaded broadcast %+v %+v", b, full)
	}
	checkReplay(t, o, bob, b, 8, 200)
	sameVideo(t, videoPackets(t, file), o.HTTP+b.ReplayURL)
	var clip apiClip
	bob.must(201, "POST", "/api/v1/broadcasts/"+b.ID+"/clips", map[string]any{"at_ms": 7000, "seconds": 5}, &clip)

	// A text file named like a video is refused, with a reason, and deleted.
	text := bytes.Repeat([]byte("these are my notes, not a video\n"), 4000)
	ann.must(201, "POST", uploads, map[string]any{"filename": "notes.mp4", "size": len(text)}, &up)
	if code := putPart(t, up.Parts[0].URL, text); code != 200 {
		t.Fatalf("PUT text: %d", code)
	}
	ann.must(202, "POST", uploads+"/"+up.ID+"/complete", nil, nil)
	refused := waitUpload(t, ann, uploads+"/"+up.ID, "processing")
	if refused.State != "refused" || !strings.Contains(refused.Reason, "not an MP4") {
		t.Fatalf("text upload: %+v", refused)
	}
	testenv.Eventually(t, 10*time.Second, func() (bool, string) {
		_, err := store.Head(context.Background(), "uploads/"+room.ID+"/"+up.ID+"/source")
		return errors.Is(err, storage.ErrNotFound), fmt.Sprintf("refused file still in the bucket: %v", err)
	})

	// An upload left half-way is aborted once its TTL passes, its parts deleted.
	ann.must(201, "POST", uploads, req, &up)
	if code := putPart(t, up.Parts[0].URL, part(1)); code != 200 {
		t.Fatalf("PUT part 1: %d", code)
	}
	left := waitUpload(t, ann, uploads+"/"+up.ID, "uploading")
	if left.State != "expired" {
		t.Fatalf("abandoned upload: %+v", left)
	}
	testenv.Eventually(t, 10*time.Second, func() (bool, string) {
		ups, err := store.ListUploads(context.Background(), "uploads/"+room.ID+"/"+up.ID+"/")
		return err == nil && len(ups) == 0, fmt.Sprintf("multipart uploads left: %v %v", ups, err)
	})
	if code := putPart(t, up.Parts[1].URL, part(2)); code == 200 {
		t.Fatal("a part of an expired upload was taken")
	}
}

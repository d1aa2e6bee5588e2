package e2e

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"onair/rooms"
	"onair/scripts/testenv"
)

// A URL token's expiry stops a playing hls.js player in Chromium: the player plays a
// private room with the token, and once the token has expired onair refuses its next
// requests and the player stops (web/ui/e2e/token-expiry.mjs). The owner's API hands out
// tokens of at least a minute; this test signs one of 20 s with the cluster's secret, as
// read from MongoDB, to keep the wait short.
func TestBrowserURLTokenExpires(t *testing.T) {
	root := testenv.RepoRoot(t)
	e2eDir := filepath.Join(root, "web", "ui", "e2e")
	if _, err := os.Stat(filepath.Join(e2eDir, "node_modules", "playwright-core")); err != nil {
		t.Fatalf("playwright-core is not installed: run make e2e-deps (make test does): %v", err)
	}
	hlsJS := filepath.Join(root, "web", "ui", "node_modules", "hls.js", "dist", "hls.min.js")
	if _, err := os.Stat(hlsJS); err != nil {
		t.Fatalf("hls.js is not installed: run make ui (make test does): %v", err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is required for the browser test: %v", err)
	}
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}

	o, m := startWithMongo(t)
	ann := newClient(t, o.HTTP)
	me := ann.signUp("ann")
	var created struct {
		Room      privateRoom `json:"room"`
		StreamKey string      `json:"stream_key"`
	}
	ann.must(201, "POST", "/api/v1/rooms", map[string]any{"slug": "ann-private", "title": "Ann", "visibility": "private"}, &created)
	pid := created.Room.PlaybackID
	testenv.Publish(t, o.RTMP+"/"+created.StreamKey, testenv.PublishOptions{})

	var meta struct {
		Secret []byte `bson:"secret"`
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.Client(t).Database("onair").Collection("rooms_meta").FindOne(ctx, bson.D{{Key: "_id", Value: "playback_secret"}}).Decode(&meta); err != nil {
		t.Fatalf("read the playback secret: %v", err)
	}
	keys, err := rooms.NewPlaybackKeys(meta.Secret)
	if err != nil {
		t.Fatal(err)
	}
	expires := time.Now().Add(20 * time.Second).Truncate(time.Second)
	tok, err := keys.Sign(rooms.Grant{Room: pid, Viewer: me.ID, Expires: expires})
	if err != nil {
		t.Fatal(err)
	}
	hlsURL := o.HTTP + "/live/" + pid + "/index.m3u8?token=" + tok
	waitPlaylist(t, hlsURL, 15*time.Second)

	cmdCtx, stop := context.WithTimeout(context.Background(), 3*time.Minute)
	defer stop()
	cmd := exec.CommandContext(cmdCtx, node, filepath.Join(e2eDir, "token-expiry.mjs"))
	cmd.Dir = e2eDir
	cmd.Env = append(os.Environ(), "HLS_URL="+hlsURL, "EXPIRES_MS="+strconv.FormatInt(expires.UnixMilli(), 10),
		"HLS_JS="+hlsJS, "CHROMIUM="+chromium)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	t.Logf("player: %s", strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("the player did not stop as it should once its token expired: %v", err)
	}
	if code, _ := o.Get(t, strings.TrimPrefix(hlsURL, o.HTTP)); code != http.StatusForbidden {
		t.Fatalf("playlist with the expired token: %d, want %d", code, http.StatusForbidden)
	}
	if o.LogsContain(tok) {
		t.Fatal("the playback token was logged")
	}
}

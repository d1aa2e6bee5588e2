package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"onair/rooms"
	"onair/scripts/testenv"
)

// A private room in Chromium (web/ui/e2e/token-expiry.mjs): an invited viewer's page plays
// on its httpOnly playback cookie; a URL token's expiry stops a playing hls.js player: once
// the token has expired onair refuses the player's next requests and the player stops.
// The owner's API hands out tokens of at least a minute; this test signs one of 15 s with
// the cluster's secret, as read from MongoDB, to keep the wait short.
func TestBrowserPrivateRoom(t *testing.T) {
	chromium := browserDeps(t)
	hlsJS := filepath.Join(testenv.RepoRoot(t), "web", "ui", "node_modules", "hls.js", "dist", "hls.min.js")
	if _, err := os.Stat(hlsJS); err != nil {
		t.Fatalf("hls.js is not installed: run make ui (make test does): %v", err)
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
	newClient(t, o.HTTP).signUp("ivy")
	ann.must(200, "POST", "/api/v1/rooms/"+pid+"/viewers", map[string]string{"handle": "ivy"}, nil)
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
	ann.must(200, "POST", "/api/v1/rooms/"+pid+"/playback", nil, nil)
	testenv.Eventually(t, 20*time.Second, func() (bool, string) {
		code, _, _ := ann.get("/live/" + pid + "/index.m3u8")
		return code == 200, fmt.Sprintf("owner's playlist: %d", code)
	})

	var tok, hlsURL string
	runBrowserScript(t, "token-expiry.mjs", []string{"ONAIR_URL=" + o.HTTP, "PAGE=/watch/" + pid,
		"LOGIN=ivy", "PASSWORD=correct horse battery", "HLS_JS=" + hlsJS, "CHROMIUM=" + chromium,
	}, func(command string, _ []string) string {
		if command != "@token" {
			t.Fatalf("the browser script asked for %s", command)
		}
		// Short-lived: long enough for the player to start, short for the test to wait.
		expires := time.Now().Add(15 * time.Second).Truncate(time.Second)
		var err error
		if tok, err = keys.Sign(rooms.Grant{Room: pid, Viewer: me.ID, Expires: expires}); err != nil {
			t.Fatal(err)
		}
		hlsURL = o.HTTP + "/live/" + pid + "/index.m3u8?token=" + tok
		return fmt.Sprintf("%s %d", hlsURL, expires.UnixMilli())
	})
	if tok == "" {
		t.Fatal("the browser script never asked for the URL token")
	}
	if code, _ := o.Get(t, strings.TrimPrefix(hlsURL, o.HTTP)); code != http.StatusForbidden {
		t.Fatalf("playlist with the expired token: %d, want %d", code, http.StatusForbidden)
	}
	if o.LogsContain(tok) {
		t.Fatal("the playback token was logged")
	}
}

package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"onair/scripts/testenv"
)

// "From the start" and the home page's live previews in Chromium (web/ui/e2e/starts.mjs
// says what it checks), on one recorded room, live for longer than a short DVR window.
func TestBrowserFromStartAndPreviews(t *testing.T) {
	chromium := browserDeps(t)
	const window = 6 * time.Second
	o, _ := startWithMongo(t, "ONAIR_HLS_DVR_WINDOW="+window.String())
	ann := newClient(t, o.HTTP)
	ann.signUp("ann")
	_, key := ann.createRoom("ann-start")
	pub := testenv.Publish(t, o.RTMP+"/"+key, testenv.PublishOptions{Size: "320x180"})
	waitIndex(t, o, "ann-start")
	// Longer than the DVR window by a few segments (of a second): the live playlist's media
	// sequence numbers those that left it.
	testenv.Eventually(t, 60*time.Second, func() (bool, string) {
		_, pl := o.Get(t, "/live/ann-start/video1_stream.m3u8")
		seq := -1
		if _, after, ok := strings.Cut(string(pl), "#EXT-X-MEDIA-SEQUENCE:"); ok {
			fmt.Sscanf(after, "%d", &seq)
		}
		return seq >= int(window.Seconds())+4, fmt.Sprintf("media sequence %d", seq)
	})

	// Room answers name the start playlist while a recorded broadcast is live.
	var room struct {
		StartURL string `json:"start_url"`
	}
	testenv.Eventually(t, 15*time.Second, func() (bool, string) {
		newClient(t, o.HTTP).must(http.StatusOK, "GET", "/api/v1/rooms/ann-start", nil, &room)
		return room.StartURL == "/live/ann-start/start.m3u8", fmt.Sprintf("start_url is %q", room.StartURL)
	})

	runBrowserScript(t, "starts.mjs", []string{"ONAIR_URL=" + o.HTTP, "ROOM=ann-start", "CHROMIUM=" + chromium,
		fmt.Sprintf("DVR_WINDOW=%d", int(window.Seconds())),
	}, func(command string, _ []string) string {
		t.Fatalf("the browser script asked for %s", command)
		return ""
	})

	// Offline, and so without a start playlist.
	if err := pub.Stop(); err != nil {
		t.Errorf("ffmpeg: %v\n%s", err, pub.Stderr())
	}
	testenv.Eventually(t, 20*time.Second, func() (bool, string) {
		var offline map[string]any
		newClient(t, o.HTTP).must(http.StatusOK, "GET", "/api/v1/rooms/ann-start", nil, &offline)
		_, has := offline["start_url"]
		return offline["live"] == false && !has, fmt.Sprintf("offline room: live %v, start_url %v", offline["live"], offline["start_url"])
	})
}

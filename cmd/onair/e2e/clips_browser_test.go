package e2e

import (
	"fmt"
	"testing"
	"time"

	"onair/scripts/testenv"
)

// TestBrowserClip runs web/ui/e2e/clips.mjs in Chromium: the Clip form of a live room's
// page makes a clip, whose page plays at once, and the room page lists it.
func TestBrowserClip(t *testing.T) {
	chromium := browserDeps(t)
	o, _ := startWithMongo(t)
	ann := newClient(t, o.HTTP)
	ann.signUp("ann")
	_, key := ann.createRoom("ann-clip")
	bob := newClient(t, o.HTTP)
	bob.signUp("bob")
	pub := testenv.Publish(t, o.RTMP+"/"+key, testenv.PublishOptions{Duration: 60 * time.Second})
	t.Cleanup(func() { _ = pub.Stop() })
	waitBroadcastAt(t, ann, waitLive(t, ann, "ann-clip").ID, 10*time.Second)
	runBrowserScript(t, "clips.mjs", []string{"ONAIR_URL=" + o.HTTP, "ROOM=/rooms/ann-clip", "CHROMIUM=" + chromium},
		func(command string, _ []string) string {
			t.Fatalf("the browser script asked for %s", command)
			return ""
		})
}

// waitBroadcastAt waits until the live broadcast id is at least at, by its own clock (which
// its heartbeat writes).
func waitBroadcastAt(t *testing.T, c *client, id string, at time.Duration) {
	t.Helper()
	testenv.Eventually(t, at+30*time.Second, func() (bool, string) {
		var b struct {
			DurationMS int64 `json:"duration_ms"`
		}
		c.must(200, "GET", "/api/v1/broadcasts/"+id, nil, &b)
		return b.DurationMS >= at.Milliseconds(), fmt.Sprintf("broadcast at %d ms", b.DurationMS)
	})
}

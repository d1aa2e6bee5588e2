package e2e

import (
	"testing"
	"time"

	"onair/scripts/testenv"
)

// TestBrowserChatPagingAndReplay runs web/ui/e2e/chatreplay.mjs in Chromium: scrolling up
// in a room's chat loads its older messages, and a recorded broadcast's replay shows the
// message posted 12 s into it only from 12 s of the video on, and again not after a seek
// back.
func TestBrowserChatPagingAndReplay(t *testing.T) {
	chromium := browserDeps(t)
	o, _ := startWithMongo(t, "ONAIR_CHAT_RATE_LIMIT=1000", "ONAIR_CHAT_RATE_PER=1s")
	ann := newClient(t, o.HTTP)
	ann.signUp("ann")
	_, key := ann.createRoom("ann-replay")
	bob := newClient(t, o.HTTP)
	bob.signUp("bob")
	ws := bob.chat("ann-replay")
	ws.next("history")
	postMany(t, ws, "old", 120)

	pub := testenv.Publish(t, o.RTMP+"/"+key, testenv.PublishOptions{Duration: 20 * time.Second})
	live := waitLive(t, ann, "ann-replay")
	postAt(t, ws, live, 3*time.Second, "at three")
	postAt(t, ws, live, 12*time.Second, "at twelve")
	if err := pub.Wait(40 * time.Second); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, pub.Stderr())
	}
	b := waitReplay(t, ann, "ann-replay", 30*time.Second)
	if b.ID != live.ID {
		t.Fatalf("the replay is of broadcast %s, not %s", b.ID, live.ID)
	}
	ws.post("after")

	runBrowserScript(t, "chatreplay.mjs", []string{"ONAIR_URL=" + o.HTTP, "ROOM=/rooms/ann-replay", "REPLAY=" + b.ID, "CHROMIUM=" + chromium},
		func(command string, _ []string) string {
			t.Fatalf("the browser script asked for %s", command)
			return ""
		})
}

package e2e

import (
	"net/url"
	"os"
	"testing"

	"onair/scripts/testenv"
)

// TestQualityMenuBrowser plays a two-rendition simulcast on the watch page in Chromium
// (web/ui/e2e/quality.mjs says what it checks): the quality menu lists the renditions,
// forcing one switches hls.js's level, and with the network throttled hls.js's ABR goes
// down to the lowest rendition and back up when the throttle is lifted.
func TestQualityMenuBrowser(t *testing.T) {
	chromium := browserDeps(t)
	key := newKey(t)
	o := testenv.StartOnair(t, testenv.OnairOptions{Env: []string{streamsEnv(map[string]string{"cam": key})}})
	main := o.RTMP + "/" + key
	// hls.js measures a part's download as lasting at least 50 ms: on a fast network its
	// estimate is four times the bit rate of the rendition it plays (200 ms parts), and it
	// switches up when 0.7 of that exceeds the next rendition's BANDWIDTH. A ladder whose
	// steps are under about 2.8x apart (as real ladders are) lets it climb back.
	testenv.FFmpeg(t, simulcastArgs("testsrc2=size=640x360:rate=30",
		[4]string{"640x360", "30", "600k", main}, [4]string{"320x180", "30", "350k", main + "?rendition=180p"}))
	index := waitIndex(t, o, "cam")
	// The page loads the multivariant playlist once: the rendition must be offered by then.
	waitVariants(t, o, index, 2)
	runBrowserScript(t, "quality.mjs", []string{"ONAIR_URL=" + o.HTTP, "STREAM=cam", "CHROMIUM=" + chromium, "ABR_THROTTLE=" + os.Getenv("ABR_THROTTLE")},
		func(command string, _ []string) string {
			t.Fatalf("the quality script asked for %s", command)
			return ""
		})
}

// TestLadderDashboardBrowser: the room's dashboard shows the rendition ladder in its live
// health, each rendition with its resolution, bitrate, frame rate and codec
// (web/ui/e2e/ladder-dashboard.mjs).
func TestLadderDashboardBrowser(t *testing.T) {
	chromium := browserDeps(t)
	o, _ := startWithMongo(t)
	ann := newClient(t, o.HTTP)
	ann.signUp("ann")
	_, key := ann.createRoom("ann-rungs")
	main := o.RTMP + "/" + key
	testenv.FFmpeg(t, simulcastArgs("testsrc2=size=640x360:rate=30",
		[4]string{"640x360", "30", "400k", main}, [4]string{"320x180", "30", "150k", main + "?rendition=180p"}))
	waitVariants(t, o, waitIndex(t, o, "ann-rungs"), 2)
	u, err := url.Parse(o.HTTP)
	if err != nil {
		t.Fatal(err)
	}
	var session string
	for _, c := range ann.http.Jar.Cookies(u) {
		if c.Name == "onair_session" {
			session = c.Value
		}
	}
	if session == "" {
		t.Fatal("no session cookie after signing up")
	}
	runBrowserScript(t, "ladder-dashboard.mjs", []string{"ONAIR_URL=" + o.HTTP, "ROOM=ann-rungs", "SESSION=" + session, "CHROMIUM=" + chromium},
		func(command string, _ []string) string {
			t.Fatalf("the dashboard script asked for %s", command)
			return ""
		})
}

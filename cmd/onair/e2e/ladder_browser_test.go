package e2e

import (
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

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

// TestQualityMenuJoinBrowser: a rendition that joins the live stream while a viewer
// watches reaches the watch page without a reload, and so does its leaving
// (web/ui/e2e/quality-join.mjs): the page opens on the main rendition alone; once the
// test starts a second output on the same clock, the quality menu comes to list it, the
// video plays on, and the new rendition plays when chosen; when that output stops, the
// page plays the main rendition again.
func TestQualityMenuJoinBrowser(t *testing.T) {
	chromium := browserDeps(t)
	key := newKey(t)
	o := testenv.StartOnair(t, testenv.OnairOptions{Env: []string{streamsEnv(map[string]string{"cam": key})}})
	main := o.RTMP + "/" + key
	// Both outputs' timestamps are offset, the main's by a constant: with an offset of
	// zero, ffmpeg would shift the main's by the AAC encoder's delay (21 ms) to keep them
	// positive, and its key frames would be that far from the rendition's.
	const gop = time.Second // 30 frames at 30 fps, as the segments last
	const base = 10 * time.Second
	started := time.Now()
	testenv.FFmpeg(t, tsOffset(simulcastArgs("testsrc2=size=640x360:rate=30", [4]string{"640x360", "30", "600k", main}), base))
	waitVariants(t, o, waitIndex(t, o, "cam"), 1)
	var rendition *testenv.Publisher
	runBrowserScript(t, "quality-join.mjs", []string{"ONAIR_URL=" + o.HTTP, "STREAM=cam", "CHROMIUM=" + chromium},
		func(command string, _ []string) string {
			switch {
			case command == "@start-rendition" && rendition == nil:
				// An output the encoder adds later: another ffmpeg, whose timestamps are put
				// on the main's clock at one of its key frames, as one encoder's outputs
				// share a clock.
				args := simulcastArgs("testsrc2=size=640x360:rate=30", [4]string{"320x180", "30", "250k", main + "?rendition=180p"})
				rendition = testenv.FFmpeg(t, tsOffset(args, base+time.Since(started).Round(gop)))
			case command == "@stop-rendition" && rendition != nil:
				if err := rendition.Stop(); err != nil {
					t.Fatalf("stopping the 180p output: %v", err)
				}
			default:
				t.Fatalf("the script asked for %s", command)
			}
			return "ok"
		})
}

// tsOffset makes ffmpeg's single output (its URL last in args) start its timestamps at d.
func tsOffset(args []string, d time.Duration) []string {
	url := args[len(args)-1]
	return append(args[:len(args)-1:len(args)-1], "-output_ts_offset", fmt.Sprintf("%.3f", d.Seconds()), url)
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

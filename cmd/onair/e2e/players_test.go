package e2e

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gohlslib/v2/pkg/playlist"

	"onair/scripts/testenv"
)

// TestPlayers plays a recorded broadcast live with hls.js, Shaka Player and video.js in
// Chromium, each in low-latency mode (web/ui/e2e/players.mjs says what it checks;
// PLAYERS=hlsjs,shaka picks some; TRACE=1 logs what each did around the reconnect). This
// side plays OBS's part: it publishes, drops the connection and comes back when asked,
// telling the script how long the publisher was away, and says when "from the start" has
// something to show that left the DVR window and the disk, to be read from S3.
func TestPlayers(t *testing.T) {
	chromium := browserDeps(t)
	s3 := testenv.StartS3(t)
	// Long enough for hls.js to rewind a minute, short enough for "from the start" to have
	// something older than the window soon.
	const window = 70 * time.Second
	o, _ := startWithMongo(t, append(s3Env(s3),
		"ONAIR_HLS_DVR_WINDOW="+window.String(),
		// Chunks of S3's smallest part, so that the start of the run leaves the disk soon.
		"ONAIR_RECORDINGS_CHUNK_SIZE=5242880")...)
	ann := newClient(t, o.HTTP)
	ann.signUp("ann")
	_, key := ann.createRoom("ann-live")
	// 4 Mbit/s (filler data in a small picture, cheap for the players to decode): a chunk
	// of the recording every ten seconds or so.
	opts := testenv.PublishOptions{Size: "160x120", ExtraArgs: []string{"-b:v", "4M", "-minrate", "4M", "-maxrate", "4M",
		"-bufsize", "1M", "-x264-params", "nal-hrd=cbr"}}
	pub := testenv.Publish(t, o.RTMP+"/"+key, opts)
	index := waitIndex(t, o, "ann-live")
	started := time.Now()

	// The players are watched side by side for a minute at the live edge, at most 1.5 s
	// behind live (issue 13); MAX_BEHIND in the environment changes the bound.
	runBrowserScript(t, "players.mjs", []string{
		"ONAIR_HLS=" + index, "CHROMIUM=" + chromium, "WATCH=60", "GAP=3",
		"MAX_BEHIND=" + cmp.Or(os.Getenv("MAX_BEHIND"), "1.5"),
		"PLAYERS=" + cmp.Or(os.Getenv("PLAYERS"), "hlsjs,shaka,videojs"),
		fmt.Sprintf("DVR_WINDOW=%d", int(window.Seconds())),
	}, func(command string, args []string) string {
		switch command {
		case "@reconnect":
			// A network drop: the connection goes without unpublishing; OBS comes back
			// after its reconnect delay. The gap the players see is longer: the encoder
			// starting again, its handshake and first key frame, and onair's first part
			// of it. Measured up to that part, the answer tells the script the gap.
			killed := time.Now()
			pub.Kill()
			time.Sleep(3 * time.Second) // OBS's reconnect delay, part of the scenario
			pub = testenv.Publish(t, o.RTMP+"/"+key, opts)
			waitResumed(t, o.HTTP+"/live/ann-live/video1_stream.m3u8", 20*time.Second)
			gap := time.Since(killed)
			t.Logf("the publisher was away %.3f s (from the kill to its first part after the discontinuity)", gap.Seconds())
			return fmt.Sprintf("ok %.3f", gap.Seconds())
		case "@fromstart":
			testenv.Eventually(t, 60*time.Second, func() (bool, string) {
				first, _ := filepath.Glob(filepath.Join(o.DataDir, "runs", "*", "chunk-000001"))
				return time.Since(started) > window+10*time.Second && len(first) == 0,
					"the run's first chunk is still on disk"
			})
		default:
			t.Fatalf("the players script asked for %s", command)
		}
		return "ok"
	})
	if n := metric(t, o, `onair_storage_requests_total{op="GetObject",result="ok"}`); n < 1 {
		t.Errorf("from the start read nothing from S3 (%v GETs)", n)
	}
	if n := strings.Count(o.Logs(), "stream started"); n != 1 {
		t.Errorf("%d runs started: the reconnect must continue the run", n)
	}
}

// waitResumed follows a media playlist with blocking reloads, each answered as soon as
// the next part exists, until it lists a part after EXT-X-DISCONTINUITY: the returning
// publisher's first.
func waitResumed(t *testing.T, mediaURL string, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	url := mediaURL
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if ctx.Err() != nil {
			t.Fatalf("no part of the returning publisher in %s within %s", mediaURL, timeout)
		}
		if err != nil {
			t.Fatalf("get %s: %v", url, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("read %s: %v", url, err)
		}
		if resp.StatusCode == http.StatusServiceUnavailable {
			continue // the blocking reload's wait ran out in the gap: ask again
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("get %s: %s: %s", url, resp.Status, body)
		}
		if _, after, ok := strings.Cut(string(body), "#EXT-X-DISCONTINUITY\n"); ok && strings.Contains(after, "#EXT-X-PART:") {
			return
		}
		var pl playlist.Media
		if err := pl.Unmarshal(body); err != nil {
			t.Fatalf("%s: %v\n%s", url, err, body)
		}
		// The part after the newest: of the open segment, or the first of the next.
		url = fmt.Sprintf("%s?_HLS_msn=%d&_HLS_part=%d", mediaURL, pl.MediaSequence+len(pl.Segments), len(pl.Parts))
	}
}

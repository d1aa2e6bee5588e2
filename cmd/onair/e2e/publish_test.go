package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"onair/scripts/testenv"
)

// TestWrongKeyRefused: ffmpeg's publish fails, nothing is served, the key is not logged.
func TestWrongKeyRefused(t *testing.T) {
	good, wrong := newKey(t), newKey(t)
	o := testenv.StartOnair(t, testenv.OnairOptions{Env: []string{streamsEnv(map[string]string{"cam": good})}})

	pub := testenv.Publish(t, o.RTMP+"/"+wrong, testenv.PublishOptions{Duration: 30 * time.Second})
	select {
	case <-pub.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("ffmpeg was still publishing with a wrong key after 15 s")
	}
	if err := pub.Wait(0); err == nil {
		t.Fatalf("ffmpeg publishing with a wrong key succeeded; stderr:\n%s", pub.Stderr())
	}
	if code, _ := o.Get(t, "/live/cam/index.m3u8"); code != http.StatusNotFound {
		t.Fatalf("playlist after refused publish: %d, want 404", code)
	}
	testenv.Eventually(t, 5*time.Second, func() (bool, string) {
		return o.LogsContain("reason=unknown_key"), "no refusal logged"
	})
	if o.LogsContain(wrong) || o.LogsContain(good) {
		t.Fatal("a stream key appears in the logs")
	}
}

// TestDuplicatePublisherAndTakeover: a second publisher is refused while the first sends,
// and takes over once the first has been silent for 5 s (OBS reconnecting), continuing
// its run.
func TestDuplicatePublisherAndTakeover(t *testing.T) {
	key := newKey(t)
	o := testenv.StartOnair(t, testenv.OnairOptions{Env: []string{streamsEnv(map[string]string{"cam": key})}})
	url := o.RTMP + "/" + key

	first := testenv.Publish(t, url, testenv.PublishOptions{})
	waitPlaylist(t, o.HTTP+"/live/cam/index.m3u8", 15*time.Second)

	second := testenv.Publish(t, url, testenv.PublishOptions{Duration: 30 * time.Second})
	select {
	case <-second.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("a second publisher was accepted while the first was sending")
	}
	if !o.LogsContain("reason=busy") {
		t.Fatal("the refusal of the second publisher was not logged as busy")
	}
	select {
	case <-first.Done():
		t.Fatalf("the first publisher was disconnected by the refused second one:\n%s", first.Stderr())
	default:
	}

	// The first encoder freezes without closing its connection, as on a network drop.
	if err := first.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	frozen := time.Now()
	defer first.Signal(syscall.SIGCONT)

	// Within the 5 s window the stream is still the first publisher's.
	early := testenv.Publish(t, url, testenv.PublishOptions{Duration: 30 * time.Second})
	select {
	case <-early.Done():
	case <-time.After(4 * time.Second):
		t.Fatal("a new publisher was not refused within 4 s of the first one going quiet")
	}

	var third *testenv.Publisher
	testenv.Eventually(t, 20*time.Second, func() (bool, string) {
		if third != nil {
			select {
			case <-third.Done():
				third = nil
			default:
				return o.LogsContain("publisher taken over"), "third publisher connected, not yet taking over"
			}
		}
		third = testenv.Publish(t, url, testenv.PublishOptions{})
		return false, "starting a third publisher"
	})
	if took := time.Since(frozen); took < 5*time.Second {
		t.Fatalf("take-over after %s of silence, want at least 5 s", took)
	}
	// The new publisher continues the run: the same playlists go on.
	testenv.Eventually(t, 10*time.Second, func() (bool, string) {
		return strings.Count(o.Logs(), "stream resumed") == 1, "waiting for the new publisher to continue the run"
	})
	if n := strings.Count(o.Logs(), "stream started"); n != 1 {
		t.Fatalf("%d runs started, want the first one, continued", n)
	}
	r := readHLS(t, o.HTTP+"/live/cam/index.m3u8")
	testenv.Eventually(t, 20*time.Second, func() (bool, string) {
		v, a, problems := r.snapshot()
		return v >= 30 && a >= 30, fmt.Sprintf("received %d video, %d audio; %v", v, a, problems)
	})
}

// TestPublisherStopEndsPlaylist: when the publisher stops, the playlists get EXT-X-ENDLIST,
// and after the grace period the stream's URLs answer 404.
func TestPublisherStopEndsPlaylist(t *testing.T) {
	key := newKey(t)
	o := testenv.StartOnair(t, testenv.OnairOptions{Env: []string{
		streamsEnv(map[string]string{"cam": key}),
		"ONAIR_HLS_END_GRACE=3s",
	}})
	pub := testenv.Publish(t, o.RTMP+"/"+key, testenv.PublishOptions{})
	index := o.HTTP + "/live/cam/index.m3u8"
	waitPlaylist(t, index, 15*time.Second)
	testenv.Eventually(t, 15*time.Second, func() (bool, string) {
		_, media := mediaPlaylist(t, o, index)
		n := bytes.Count(media, []byte("#EXTINF"))
		return n >= 10, fmt.Sprintf("%d segments (7 are LL-HLS's initial gaps)", n)
	})
	path, _ := mediaPlaylist(t, o, index)

	// A player blocked on the next part must be released by the end, not left hanging.
	blocked := make(chan string, 1)
	_, live := o.Get(t, path)
	next := o.HTTP + nextBlockingRequest(path, live)
	go func() {
		resp, err := http.Get(next)
		if err != nil {
			blocked <- err.Error()
			return
		}
		defer resp.Body.Close()
		var body bytes.Buffer
		_, _ = body.ReadFrom(resp.Body)
		blocked <- fmt.Sprintf("%d\n%s", resp.StatusCode, body.Bytes())
	}()

	if err := pub.Stop(); err != nil {
		t.Fatalf("ffmpeg stop: %v", err)
	}
	var final []byte
	testenv.Eventually(t, 5*time.Second, func() (bool, string) {
		code, body := o.Get(t, path)
		final = body
		return code == http.StatusOK && bytes.Contains(body, []byte("#EXT-X-ENDLIST")), fmt.Sprintf("%d:\n%s", code, body)
	})
	if bytes.Contains(final, []byte("#EXT-X-PRELOAD-HINT")) || bytes.Contains(final, []byte("CAN-BLOCK-RELOAD")) {
		t.Fatalf("final playlist still invites blocking requests:\n%s", final)
	}
	select {
	case got := <-blocked:
		if !strings.HasPrefix(got, "200") || !strings.Contains(got, "#EXT-X-ENDLIST") {
			t.Fatalf("blocked playlist request answered %q, want the final playlist", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a blocking playlist request was still waiting 5 s after the stream ended")
	}
	// Segments of the final playlist are still served during the grace period.
	seg := lastSegment(t, final)
	if code, _ := o.Get(t, path[:strings.LastIndex(path, "/")+1]+seg); code != http.StatusOK {
		t.Fatalf("segment %s of the final playlist: %d", seg, code)
	}

	testenv.Eventually(t, 10*time.Second, func() (bool, string) {
		code, _ := o.Get(t, "/live/cam/index.m3u8")
		return code == http.StatusNotFound, fmt.Sprintf("index.m3u8: %d", code)
	})
	if code, _ := o.Get(t, path); code != http.StatusNotFound {
		t.Fatalf("media playlist after the grace period: %d, want 404", code)
	}
}

// nextBlockingRequest builds the LL-HLS request for the part after the last one listed.
func nextBlockingRequest(path string, media []byte) string {
	var seq, segments, parts int
	for _, line := range strings.Split(string(media), "\n") {
		switch {
		case strings.HasPrefix(line, "#EXT-X-MEDIA-SEQUENCE:"):
			fmt.Sscanf(line, "#EXT-X-MEDIA-SEQUENCE:%d", &seq)
		case strings.HasPrefix(line, "#EXTINF"):
			segments++
			parts = 0
		case strings.HasPrefix(line, "#EXT-X-PART:"):
			parts++
		}
	}
	// Parts listed after the last #EXTINF belong to the segment in progress.
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	return fmt.Sprintf("%s%s_HLS_msn=%d&_HLS_part=%d", path, sep, seq+segments, parts)
}

func lastSegment(t *testing.T, media []byte) string {
	t.Helper()
	var seg string
	for _, m := range uriLine.FindAllSubmatch(media, -1) {
		if u := string(m[1]); !strings.HasPrefix(u, "gap") {
			seg = u
		}
	}
	if seg == "" {
		t.Fatalf("no segment in:\n%s", media)
	}
	return seg
}

// testClip encodes a short clip once per test, to publish with -c copy (cheap enough to
// run many publishers at once).
func testClip(t *testing.T, seconds int) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "clip.flv")
	cmd := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin",
		"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", fmt.Sprint(seconds), "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
		"-g", "30", "-keyint_min", "30", "-sc_threshold", "0", "-b:v", "300k", "-c:a", "aac", "-b:a", "64k", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("encode test clip: %v\n%s", err, b)
	}
	if _, err := os.Stat(out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestManyPublishers: 20 concurrent publishers on distinct keys, all 20 playlists served.
func TestManyPublishers(t *testing.T) {
	const n = 20
	streams := map[string]string{}
	for i := range n {
		streams[fmt.Sprintf("cam%02d", i)] = newKey(t)
	}
	o := testenv.StartOnair(t, testenv.OnairOptions{Env: []string{
		streamsEnv(streams),
		// ffmpeg dials from 127.0.0.1: 20 publishers from one address, more than the default allows
		fmt.Sprintf("ONAIR_RTMP_MAX_CONNECTIONS_PER_ADDRESS=%d", n),
	}})
	clip := testClip(t, 10)
	for _, key := range streams {
		testenv.PublishFile(t, o.RTMP+"/"+key, clip, true)
	}
	var wg sync.WaitGroup
	for name := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			index := o.HTTP + "/live/" + name + "/index.m3u8"
			waitPlaylist(t, index, 30*time.Second)
			testenv.Eventually(t, 30*time.Second, func() (bool, string) {
				_, media := mediaPlaylist(t, o, index)
				n := bytes.Count(media, []byte("#EXTINF"))
				return n >= 10, fmt.Sprintf("%s: %d segments", name, n)
			})
		}()
	}
	wg.Wait()
	code, body := o.Get(t, "/")
	if code != http.StatusOK {
		t.Fatalf("home page: %d", code)
	}
	for name := range streams {
		if !bytes.Contains(body, []byte("/watch/"+name)) {
			t.Errorf("home page does not list %s", name)
		}
	}
}

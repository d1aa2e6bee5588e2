// Package e2e tests onair from the outside: the real binary on free ports, ffmpeg publishing
// as OBS would, and real HLS clients (gohlslib, ffprobe) reading what it serves.
package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gohlslib/v2"
	"github.com/bluenviron/gohlslib/v2/pkg/codecs"
	"github.com/bluenviron/gohlslib/v2/pkg/playlist"

	"onair/scripts/testenv"
)

func newKey(t *testing.T) string {
	t.Helper()
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

// streamsEnv configures static streams name→key.
func streamsEnv(streams map[string]string) string {
	var items []string
	for name, key := range streams {
		items = append(items, fmt.Sprintf("{key: %q, name: %q}", key, name))
	}
	return "ONAIR_STREAMS=[" + strings.Join(items, ", ") + "]"
}

// received counts what an HLS client got from each track.
type received struct {
	mu         sync.Mutex
	video      int
	audio      int
	videoCodec string
	audioCodec string
	lastVideo  int64
	lastAudio  int64
	problems   []string
	stop       func()
}

func (r *received) snapshot() (video, audio int, problems []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.video, r.audio, append([]string(nil), r.problems...)
}

// withHTTPClient makes readHLS's client fetch through hc.
func withHTTPClient(hc *http.Client) func(*gohlslib.Client) {
	return func(c *gohlslib.Client) { c.HTTPClient = hc }
}

// readHLS runs the gohlslib client on url until the test ends or Stop is called; opts
// adjust the client (its HTTP client, its User-Agent).
func readHLS(t *testing.T, url string, opts ...func(*gohlslib.Client)) *received {
	t.Helper()
	r := &received{lastVideo: -1 << 62, lastAudio: -1 << 62}
	var mu sync.Mutex
	var current *gohlslib.Client
	done := false
	var start func() error
	start = func() error {
		// Without these, the client logs every download: thousands of lines with many viewers.
		quiet := func(string) {}
		c := &gohlslib.Client{URI: url, OnDownloadPrimaryPlaylist: quiet,
			OnDownloadStreamPlaylist: quiet, OnDownloadSegment: quiet, OnDownloadPart: quiet}
		for _, o := range opts {
			o(c)
		}
		c.OnTracks = func(tracks []*gohlslib.Track) error {
			for _, track := range tracks {
				switch track.Codec.(type) {
				case *codecs.H264:
					r.mu.Lock()
					r.videoCodec = "h264"
					r.mu.Unlock()
					c.OnDataH26x(track, func(pts, dts int64, au [][]byte) {
						r.mu.Lock()
						defer r.mu.Unlock()
						if dts <= r.lastVideo {
							r.problems = append(r.problems, fmt.Sprintf("video dts %d after %d", dts, r.lastVideo))
						}
						if len(au) == 0 {
							r.problems = append(r.problems, "empty video access unit")
						}
						r.lastVideo = dts
						r.video++
					})
				case *codecs.MPEG4Audio:
					r.mu.Lock()
					r.audioCodec = "aac"
					r.mu.Unlock()
					c.OnDataMPEG4Audio(track, func(pts int64, aus [][]byte) {
						r.mu.Lock()
						defer r.mu.Unlock()
						if pts <= r.lastAudio {
							r.problems = append(r.problems, fmt.Sprintf("audio pts %d after %d", pts, r.lastAudio))
						}
						r.lastAudio = pts
						r.audio += len(aus)
					})
				default:
					r.mu.Lock()
					r.problems = append(r.problems, fmt.Sprintf("unexpected codec %T", track.Codec))
					r.mu.Unlock()
				}
			}
			return nil
		}
		if err := c.Start(); err != nil {
			return err
		}
		mu.Lock()
		current = c
		mu.Unlock()
		go func() {
			err := c.Wait2()
			mu.Lock()
			stop := done
			mu.Unlock()
			if stop {
				return
			}
			// gohlslib's client gives up on classic HLS when it reaches the live edge before
			// the next segment is listed; a player reloads and carries on, so do the same.
			if err != nil && strings.Contains(err.Error(), "not ready yet") {
				r.mu.Lock()
				r.lastVideo, r.lastAudio = -1<<62, -1<<62
				r.mu.Unlock()
				if start() == nil {
					return
				}
			}
			r.mu.Lock()
			r.problems = append(r.problems, fmt.Sprintf("client stopped: %v", err))
			r.mu.Unlock()
		}()
		return nil
	}
	if err := start(); err != nil {
		t.Fatalf("start HLS client: %v", err)
	}
	r.stop = func() {
		mu.Lock()
		stopped := done
		done = true
		c := current
		mu.Unlock()
		if !stopped {
			c.Close()
		}
	}
	t.Cleanup(r.Stop)
	return r
}

// Stop closes the client.
func (r *received) Stop() { r.stop() }

// waitPlaylist waits until url answers 200.
func waitPlaylist(t *testing.T, url string, timeout time.Duration) []byte {
	t.Helper()
	var body []byte
	testenv.Eventually(t, timeout, func() (bool, string) {
		resp, err := http.Get(url)
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		body = b.Bytes()
		return resp.StatusCode == http.StatusOK, fmt.Sprintf("%s: %s", url, resp.Status)
	})
	return body
}

var uriLine = regexp.MustCompile(`(?m)^([^#\s][^\s]*)$`)
var mapURI = regexp.MustCompile(`#EXT-X-MAP:URI="([^"]+)"`)

// TestLiveHLS publishes with ffmpeg and reads the LL-HLS stream with the gohlslib client
// (H.264 and AAC with increasing timestamps), ffprobe (a segment of each rendition) and
// ffmpeg's own HLS reader, a player without LL-HLS that plays the whole segments.
func TestLiveHLS(t *testing.T) {
	key := newKey(t)
	o := testenv.StartOnair(t, testenv.OnairOptions{Env: []string{streamsEnv(map[string]string{"cam": key})}})
	pub := testenv.Publish(t, o.RTMP+"/"+key, testenv.PublishOptions{})

	index := o.HTTP + "/live/cam/index.m3u8"
	waitPlaylist(t, index, 15*time.Second)
	r := readHLS(t, index)
	testenv.Eventually(t, 20*time.Second, func() (bool, string) {
		v, a, problems := r.snapshot()
		if len(problems) > 0 {
			t.Fatalf("HLS client saw problems: %v", problems)
		}
		return v >= 90 && a >= 100, fmt.Sprintf("received %d video and %d audio units", v, a)
	})
	if r.videoCodec != "h264" || r.audioCodec != "aac" {
		t.Fatalf("codecs = %q/%q, want h264/aac", r.videoCodec, r.audioCodec)
	}

	probeSegments(t, o, index)

	_, media := mediaPlaylist(t, o, index)
	for _, tag := range []string{"#EXT-X-PART-INF", "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES", "#EXT-X-PRELOAD-HINT", "#EXT-X-RENDITION-REPORT"} {
		if !bytes.Contains(media, []byte(tag)) {
			t.Errorf("LL-HLS media playlist lacks %s:\n%s", tag, media)
		}
	}

	// A classic HLS player plays the whole segments of the same playlists.
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-i", index,
		"-t", "4", "-map", "0:v", "-f", "framemd5", "-").CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg reading the HLS: %v\n%s", err, out)
	}
	if n := bytes.Count(out, []byte("\n0,")); n < 90 {
		t.Fatalf("ffmpeg read %d video frames in 4 s of the stream", n)
	}
	if err := pub.Stop(); err != nil {
		t.Logf("ffmpeg stop: %v", err)
	}
}

// mediaPlaylists fetches every media playlist the multivariant playlist names.
func mediaPlaylists(t *testing.T, o *testenv.Onair, index string) map[string][]byte {
	t.Helper()
	code, mv := o.Get(t, strings.TrimPrefix(index, o.HTTP))
	if code != http.StatusOK {
		t.Fatalf("multivariant playlist: %d", code)
	}
	base := strings.TrimSuffix(strings.TrimPrefix(index, o.HTTP), "index.m3u8")
	out := map[string][]byte{}
	uris := uriLine.FindAllSubmatch(mv, -1)
	uris = append(uris, mediaURI.FindAllSubmatch(mv, -1)...)
	for _, m := range uris {
		path := base + string(m[1])
		code, media := o.Get(t, path)
		if code != http.StatusOK {
			t.Fatalf("media playlist %s: %d", path, code)
		}
		out[path] = media
	}
	if len(out) == 0 {
		t.Fatalf("no media playlist in:\n%s", mv)
	}
	return out
}

var mediaURI = regexp.MustCompile(`#EXT-X-MEDIA:[^\n]*URI="([^"]+)"`)

// mediaPlaylist fetches the main (video) media playlist.
func mediaPlaylist(t *testing.T, o *testenv.Onair, index string) (string, []byte) {
	t.Helper()
	code, mv := o.Get(t, strings.TrimPrefix(index, o.HTTP))
	if code != http.StatusOK {
		t.Fatalf("multivariant playlist: %d", code)
	}
	m := uriLine.FindSubmatch(mv)
	if m == nil {
		t.Fatalf("no media playlist in:\n%s", mv)
	}
	path := strings.TrimSuffix(strings.TrimPrefix(index, o.HTTP), "index.m3u8") + string(m[1])
	code, media := o.Get(t, path)
	if code != http.StatusOK {
		t.Fatalf("media playlist %s: %d", path, code)
	}
	return path, media
}

// probeSegments downloads the newest complete segment of every media playlist (with its
// init file for fMP4) and checks that ffprobe finds H.264 and AAC among them.
func probeSegments(t *testing.T, o *testenv.Onair, index string) {
	t.Helper()
	seen := map[string]bool{}
	for path, media := range mediaPlaylists(t, o, index) {
		base := path[:strings.LastIndex(path, "/")+1]
		var data []byte
		if m := mapURI.FindSubmatch(media); m != nil {
			code, init := o.Get(t, base+string(m[1]))
			if code != http.StatusOK {
				t.Fatalf("init file: %d", code)
			}
			data = append(data, init...)
		}
		var seg string
		for _, m := range uriLine.FindAllSubmatch(media, -1) {
			if u := string(m[1]); !strings.HasPrefix(u, "gap") {
				seg = u
			}
		}
		if seg == "" {
			t.Fatalf("no segment in %s:\n%s", path, media)
		}
		code, body := o.Get(t, base+seg)
		if code != http.StatusOK {
			t.Fatalf("segment %s: %d", seg, code)
		}
		data = append(data, body...)
		file := filepath.Join(t.TempDir(), "segment")
		if err := os.WriteFile(file, data, 0o600); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-show_entries", "stream=codec_name",
			"-of", "csv=p=0", file).CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("ffprobe %s: %v\n%s", seg, err, out)
		}
		for _, c := range strings.Fields(string(out)) {
			seen[c] = true
		}
	}
	var found []string
	for c := range seen {
		found = append(found, c)
	}
	sort.Strings(found)
	if strings.Join(found, ",") != "aac,h264" {
		t.Fatalf("ffprobe found streams %v in the segments, want aac and h264", found)
	}
}

// TestDVRWindow: the playlists cover the whole DVR window, well beyond what a live player
// needs; its oldest segment still plays, delta updates (_HLS_skip=YES) describe the same
// window, and the window slides without leaving older segments on disk.
func TestDVRWindow(t *testing.T) {
	key := newKey(t)
	const window = 11 // segments: a 10 s DVR window of 1 s segments
	o := testenv.StartOnair(t, testenv.OnairOptions{Env: []string{
		streamsEnv(map[string]string{"cam": key}),
		"ONAIR_HLS_DVR_WINDOW=10s",
	}})
	testenv.Publish(t, o.RTMP+"/"+key, testenv.PublishOptions{})
	index := o.HTTP + "/live/cam/index.m3u8"
	waitPlaylist(t, index, 15*time.Second)
	path, _ := mediaPlaylist(t, o, index)

	// Once the window starts at msn 11, it has slid past eleven segments.
	var full playlist.Media
	testenv.Eventually(t, 45*time.Second, func() (bool, string) {
		_, body := o.Get(t, path)
		full = playlist.Media{}
		if err := full.Unmarshal(body); err != nil {
			return false, err.Error()
		}
		return full.MediaSequence >= 11 && len(full.Segments) == window,
			fmt.Sprintf("media sequence %d, %d segments:\n%s", full.MediaSequence, len(full.Segments), body)
	})

	base := path[:strings.LastIndex(path, "/")+1]
	oldest := full.Segments[0].URI
	code, seg := o.Get(t, base+oldest)
	if code != http.StatusOK {
		t.Fatalf("oldest segment %s: %d", oldest, code)
	}
	_, init := o.Get(t, base+full.Map.URI)
	clip := filepath.Join(t.TempDir(), "oldest.mp4")
	if err := os.WriteFile(clip, append(init, seg...), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := ffprobe(t, "-count_frames", "-show_entries", "stream=codec_name,nb_read_frames", "-of", "csv=p=0", clip); !strings.HasPrefix(got, "h264,") || strings.HasPrefix(got, "h264,0") {
		t.Fatalf("ffprobe of the oldest segment: %q, want H.264 frames", got)
	}

	// A delta update ends where the full playlist ends and starts the same window.
	_, body := o.Get(t, path+"&_HLS_skip=YES")
	var delta playlist.Media
	if err := delta.Unmarshal(body); err != nil {
		t.Fatalf("delta update: %v\n%s", err, body)
	}
	if delta.Skip == nil {
		t.Fatalf("delta update without EXT-X-SKIP:\n%s", body)
	}
	newestFull := full.MediaSequence + len(full.Segments)
	newestDelta := delta.MediaSequence + delta.Skip.SkippedSegments + len(delta.Segments)
	if moved := newestDelta - newestFull; moved < 0 || moved > 2 || delta.MediaSequence-full.MediaSequence != moved {
		t.Fatalf("delta update (sequence %d, %d skipped, %d listed) does not match the full playlist (sequence %d, %d listed)",
			delta.MediaSequence, delta.Skip.SkippedSegments, len(delta.Segments), full.MediaSequence, len(full.Segments))
	}

	// Segments that left the window are gone from disk: the run's log keeps the chunks the
	// window needs (a run no recording keeps is cut into eighths of the window), and the
	// one being written.
	files, _ := filepath.Glob(filepath.Join(o.DataDir, "runs", "*", "chunk-*"))
	if len(files) == 0 || len(files) > 8+3 || strings.HasSuffix(files[0], "chunk-000001") {
		t.Fatalf("%d chunks of the run's log on disk for a window of %d segments: %v", len(files), window, files)
	}
}

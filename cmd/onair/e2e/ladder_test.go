package e2e

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gohlslib/v2"
	"github.com/bluenviron/gohlslib/v2/pkg/codecs"
	"github.com/bluenviron/gohlslib/v2/pkg/playlist"

	"onair/scripts/testenv"
)

// simulcastArgs is one ffmpeg encoding a test pattern once per output, as a streamer's
// ffmpeg with several outputs does: each output is "WxH", the frames between key frames,
// the video bit rate and the RTMP URL.
func simulcastArgs(input string, outputs ...[4]string) []string {
	args := []string{"-hide_banner", "-loglevel", "warning", "-nostdin", "-re",
		"-f", "lavfi", "-i", input, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"}
	for _, o := range outputs {
		size, gop, rate, url := o[0], o[1], o[2], o[3]
		args = append(args, "-map", "0:v", "-map", "1:a", "-s", size,
			"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
			"-g", gop, "-keyint_min", gop, "-sc_threshold", "0", "-b:v", rate,
			"-c:a", "aac", "-b:a", "64k", "-ar", "48000", "-ac", "2", "-f", "flv", url)
	}
	return args
}

// TestSimulcastRenditions publishes a room's stream from one ffmpeg with two outputs, the
// main one and ?rendition=360p, with the same key frame interval: the multivariant
// playlist offers both, largest first, with their measured bandwidth, resolution, frame
// rate and codecs; each media playlist reports the other; ffprobe reads both renditions'
// segments; the dashboard's health lists both. A third output from another ffmpeg with
// another key frame interval is refused, with the reason in the log and the health.
func TestSimulcastRenditions(t *testing.T) {
	o, _ := startWithMongo(t)
	ann := newClient(t, o.HTTP)
	ann.signUp("ann")
	_, key := ann.createRoom("ann-ladder")
	main := o.RTMP + "/" + key
	pub := testenv.FFmpeg(t, simulcastArgs("testsrc2=size=854x480:rate=30",
		[4]string{"854x480", "30", "400k", main}, [4]string{"640x360", "30", "300k", main + "?rendition=360p"}))

	index := waitIndex(t, o, "ann-ladder")
	checkLadder(t, o, index, "avc1.", "mp4a.40.2", []variant{{"854x480", "video1_stream.m3u8"}, {"640x360", "r-360p_stream.m3u8"}})
	probeCodecs(t, o, index, "aac,h264,h264")

	// The dashboard's health lists both renditions.
	h := ladderHealth(t, ann, "ann-ladder")
	var got []string
	for _, r := range h.Renditions {
		got = append(got, r.Name+"="+strconv.Itoa(r.Width)+"x"+strconv.Itoa(r.Height)+"/"+r.Codec+"/"+strconv.FormatBool(r.Aligned))
		if r.Bitrate <= 0 || r.FPS < 25 {
			t.Errorf("rendition %q: %d bit/s, %.1f fps", r.Name, r.Bitrate, r.FPS)
		}
	}
	if g := strings.Join(got, ","); g != "=854x480/h264/true,360p=640x360/h264/true" {
		t.Errorf("health renditions: %s", g)
	}

	// Another encoder's output (its own clock, started later) is refused.
	other := testenv.FFmpeg(t, simulcastArgs("testsrc2=size=320x180:rate=30", [4]string{"320x180", "30", "100k", main + "?rendition=180p"}))
	waitRefused(t, o, other, ann, "ann-ladder", `rendition "180p" refused`, "timestamps are")
	if strings.Contains(string(must200(t, o, index)), "180p") {
		t.Error("the refused rendition is offered")
	}

	// The main's end ends the ladder.
	if err := pub.Stop(); err != nil {
		t.Logf("ffmpeg: %v", err)
	}
	testenv.Eventually(t, 15*time.Second, func() (bool, string) {
		return !ladderHealth(t, ann, "ann-ladder").Live, "still live"
	})

	// One encoder, a rendition with key frames every 1.5 s beside the main's every 1 s:
	// refused.
	bad := testenv.FFmpeg(t, simulcastArgs("testsrc2=size=640x360:rate=30",
		[4]string{"640x360", "30", "400k", main}, [4]string{"320x180", "45", "100k", main + "?rendition=180p"}))
	waitRefused(t, o, bad, ann, "ann-ladder", `rendition "180p" refused`, "from the main's nearest")
}

type ladderHealthView struct {
	Live         bool `json:"live"`
	PublishError *struct {
		Reason string `json:"reason"`
	} `json:"publish_error"`
	Renditions []struct {
		Name    string  `json:"name"`
		Codec   string  `json:"codec"`
		Width   int     `json:"width"`
		Height  int     `json:"height"`
		Bitrate int64   `json:"bitrate"`
		FPS     float64 `json:"fps"`
		Aligned bool    `json:"aligned"`
	} `json:"renditions"`
}

func ladderHealth(t *testing.T, c *client, room string) ladderHealthView {
	t.Helper()
	var h ladderHealthView
	if code, _ := c.do("GET", "/api/v1/rooms/"+room+"/health", nil, &h); code != http.StatusOK {
		t.Fatalf("health: %d", code)
	}
	return h
}

// waitRefused waits until a rendition's refusal naming each of want is in the log and in
// the room's live health.
func waitRefused(t *testing.T, o *testenv.Onair, pub *testenv.Publisher, c *client, room string, want ...string) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, func() (bool, string) {
		h := ladderHealth(t, c, room)
		if h.PublishError == nil {
			return false, "no publish error in the health"
		}
		for _, w := range want {
			if !strings.Contains(h.PublishError.Reason, w) {
				return false, "publish error: " + h.PublishError.Reason
			}
		}
		return true, ""
	})
	if !o.LogsContain("rendition refused") || !o.LogsContain("key frames not aligned") {
		t.Fatalf("no refusal in the log:\n%s", o.Logs())
	}
	select {
	case <-pub.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("ffmpeg is still publishing the refused rendition")
	}
}

func must200(t *testing.T, o *testenv.Onair, url string) []byte {
	t.Helper()
	code, b := o.Get(t, strings.TrimPrefix(url, o.HTTP))
	if code != http.StatusOK {
		t.Fatalf("%s: %d", url, code)
	}
	return b
}

// TestMultitrackRenditions publishes three HEVC video tracks and Opus audio as OBS's
// multitrack video does (Enhanced RTMP v2: track 0 plain, the others in multitrack
// wrappers): the multivariant playlist lists three renditions with their attributes in
// descending bandwidth, every media playlist reports the others, the gohlslib client
// plays each rendition, and ffprobe reads every rendition's segments.
func TestMultitrackRenditions(t *testing.T) {
	clip := testenv.EncodeEnhancedLadder(t, testenv.HEVC, testenv.Opus, 14, "640x360", "480x270", "320x180")
	key := newKey(t)
	o := testenv.StartOnair(t, testenv.OnairOptions{Env: []string{streamsEnv(map[string]string{"cam": key})}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	published := make(chan error, 1)
	go func() { published <- clip.Publish(ctx, o.RTMP+"/"+key) }()

	index := waitIndex(t, o, "cam")
	checkLadder(t, o, index, "hvc1.", "opus",
		[]variant{{"640x360", "video1_stream.m3u8"}, {"480x270", "r-270p_stream.m3u8"}, {"320x180", "r-180p_stream.m3u8"}})
	for path := range mediaPlaylists(t, o, index) {
		if !strings.Contains(path, "audio") {
			playFrames(t, o.HTTP+path, 45)
		}
	}
	probeCodecs(t, o, index, "hevc,hevc,hevc,opus")
	cancel()
	<-published
}

// playFrames plays a video media playlist with gohlslib's client until it has n frames in
// decode order.
func playFrames(t *testing.T, url string, n int) {
	t.Helper()
	f := newFrameCounter()
	c := &gohlslib.Client{URI: url}
	c.OnTracks = func(tracks []*gohlslib.Track) error {
		for _, track := range tracks {
			if _, ok := track.Codec.(*codecs.H265); !ok {
				f.problem(fmt.Sprintf("unexpected codec %T", track.Codec))
				continue
			}
			c.OnDataH26x(track, f.frame)
		}
		return nil
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	testenv.Eventually(t, 20*time.Second, func() (bool, string) {
		frames, problems := f.read()
		if len(problems) > 0 {
			t.Fatalf("client of %s: %v", url, problems)
		}
		return frames >= n, fmt.Sprintf("%s: %d frames", url, frames)
	})
}

// frameCounter counts the H.264 or H.265 frames a gohlslib client delivers and notes those
// whose decode time does not increase.
type frameCounter struct {
	mu       sync.Mutex
	frames   int
	last     int64
	problems []string
}

func newFrameCounter() *frameCounter { return &frameCounter{last: -1} }

// frame is a gohlslib OnDataH26x callback.
func (f *frameCounter) frame(_, dts int64, _ [][]byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if dts <= f.last {
		f.problems = append(f.problems, fmt.Sprintf("dts %d after %d", dts, f.last))
	}
	f.last = dts
	f.frames++
}

func (f *frameCounter) problem(p string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.problems = append(f.problems, p)
}

func (f *frameCounter) read() (int, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.frames, append([]string(nil), f.problems...)
}

// variant is a rendition a multivariant playlist must list: its RESOLUTION and URI.
type variant struct{ res, uri string }

// checkLadder waits until the multivariant playlist lists the renditions of want, then
// checks them (largest first, in descending BANDWIDTH, with AVERAGE-BANDWIDTH, a 30 fps
// FRAME-RATE, CODECS of the video's prefix and audio, the audio group) and that every
// media playlist reports each of the others.
func checkLadder(t *testing.T, o *testenv.Onair, index, video, audio string, want []variant) {
	t.Helper()
	mv := waitVariants(t, o, index, len(want))
	for i, v := range mv.Variants {
		if v.Resolution != want[i].res || !strings.HasPrefix(v.URI, want[i].uri) || v.FrameRate == nil || *v.FrameRate < 29 ||
			*v.FrameRate > 31 || v.AverageBandwidth == nil || v.Audio != "audio" || len(v.Codecs) != 2 ||
			!strings.HasPrefix(v.Codecs[0], video) || v.Codecs[1] != audio {
			t.Errorf("variant %d: %+v, want %+v", i, v, want[i])
		}
		if i > 0 && v.Bandwidth > mv.Variants[i-1].Bandwidth {
			t.Errorf("variants not in descending bandwidth: %d after %d", v.Bandwidth, mv.Variants[i-1].Bandwidth)
		}
	}
	for path, body := range mediaPlaylists(t, o, index) {
		reports := regexp.MustCompile(`#EXT-X-RENDITION-REPORT:URI="([^"?]+)`).FindAllSubmatch(body, -1)
		if len(reports) != len(want) {
			t.Errorf("%s reports %d renditions, want %d:\n%s", path, len(reports), len(want), body)
		}
	}
}

// waitVariants waits until the multivariant playlist lists n variants (a rendition is
// offered once its key frames are found aligned).
func waitVariants(t *testing.T, o *testenv.Onair, index string, n int) playlist.Multivariant {
	t.Helper()
	var mv playlist.Multivariant
	testenv.Eventually(t, 30*time.Second, func() (bool, string) {
		code, b := o.Get(t, strings.TrimPrefix(index, o.HTTP))
		mv = playlist.Multivariant{}
		if code != http.StatusOK || mv.Unmarshal(b) != nil {
			return false, fmt.Sprintf("%d %s", code, b)
		}
		return len(mv.Variants) == n, string(b)
	})
	return mv
}

// TestRenditionsAcrossNodes: renditions live on the node that holds the main rendition's
// lease. A rendition published to the other node is refused there with the reason, which
// the streamer's dashboard shows on either node (here: the node with the main); the
// ladder of the node that has it plays through the other node's proxy (the rendition's
// playlists and parts under the stream's own URLs).
func TestRenditionsAcrossNodes(t *testing.T) {
	bin := testenv.OnairBinary(t)
	m, s3 := testenv.StartMongoDB(t), testenv.StartS3(t)
	a := startNode(t, bin, m, s3)
	b := startNode(t, bin, m, s3)
	ann := newClient(t, a.HTTP)
	ann.signUp("ann")
	_, key := ann.createRoom("ann-nodes")
	mainA := a.RTMP + "/" + key
	testenv.FFmpeg(t, simulcastArgs("testsrc2=size=640x360:rate=30",
		[4]string{"640x360", "30", "400k", mainA}, [4]string{"320x180", "30", "150k", mainA + "?rendition=180p"}))
	waitIndex(t, a, "ann-nodes")

	// Through B's proxy: the ladder, and the rendition's playlist and a part of it.
	indexB := b.HTTP + "/live/ann-nodes/index.m3u8"
	waitPlaylist(t, indexB, 15*time.Second)
	checkLadder(t, b, indexB, "avc1.", "mp4a.40.2", []variant{{"640x360", "video1_stream.m3u8"}, {"320x180", "r-180p_stream.m3u8"}})
	for path, body := range mediaPlaylists(t, b, indexB) {
		if !strings.Contains(path, "r-180p") {
			continue
		}
		parts := regexp.MustCompile(`#EXT-X-PART:[^\n]*URI="([^"]+)"`).FindAllSubmatch(body, -1)
		if len(parts) == 0 {
			t.Fatalf("no parts in %s:\n%s", path, body)
		}
		if code, _ := b.Get(t, "/live/ann-nodes/"+string(parts[0][1])); code != http.StatusOK {
			t.Fatalf("a part of the rendition via B: %d", code)
		}
	}

	// A rendition sent to B, which does not have the main: refused there.
	other := testenv.FFmpeg(t, simulcastArgs("testsrc2=size=320x180:rate=30", [4]string{"320x180", "30", "100k", b.RTMP + "/" + key + "?rendition=240p"}))
	select {
	case <-other.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the rendition sent to the node without the main is still publishing")
	}
	if !b.LogsContain("reason=no_main_rendition") || !b.LogsContain("not being published to this node") {
		t.Fatalf("B's log lacks the refusal:\n%s", b.Logs())
	}
	if strings.Contains(string(must200(t, b, indexB)), "240p") {
		t.Error("the refused rendition is offered")
	}
	// The streamer's dashboard on A, the node with the main, shows B's refusal with its
	// reason: behind a load balancer it may be served by any node.
	testenv.Eventually(t, 15*time.Second, func() (bool, string) {
		h := ladderHealth(t, ann, "ann-nodes")
		if h.PublishError == nil {
			return false, "no publish error in A's health"
		}
		if !strings.Contains(h.PublishError.Reason, `rendition "240p"`) || !strings.Contains(h.PublishError.Reason, "not being published to this node") {
			return false, "A's publish error: " + h.PublishError.Reason
		}
		return true, ""
	})
}

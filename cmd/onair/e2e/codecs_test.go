package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gohlslib/v2"
	"github.com/bluenviron/gohlslib/v2/pkg/codecs"

	"onair/scripts/testenv"
)

// TestEnhancedVP9Opus publishes VP9 video with Opus, then FLAC, audio over Enhanced RTMP
// (FourCC vp09, Opus, fLaC) and reads them back: the multivariant playlist names both
// codecs, the gohlslib client gets VP9 frames and audio packets, and ffprobe finds frames
// of both in the segments.
func TestEnhancedVP9Opus(t *testing.T) {
	bin := testenv.OnairBinary(t)
	for _, tt := range []struct {
		audio                 testenv.EnhancedAudio
		codecs, probed, entry string
	}{
		{testenv.Opus, "opus", "opus,vp9", "opus"},
		{testenv.FLAC, "fLaC", "flac,vp9", "flac"},
	} {
		t.Run(string(tt.audio), func(t *testing.T) {
			clip := testenv.EncodeEnhancedAV(t, testenv.VP9, tt.audio, 12)
			key := newKey(t)
			o := testenv.StartOnair(t, testenv.OnairOptions{Binary: bin, Env: []string{streamsEnv(map[string]string{"cam": key})}})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			published := make(chan error, 1)
			go func() { published <- clip.Publish(ctx, o.RTMP+"/"+key) }()
			index := waitIndex(t, o, "cam")
			var mv string
			testenv.Eventually(t, 15*time.Second, func() (bool, string) {
				_, b := o.Get(t, strings.TrimPrefix(index, o.HTTP))
				mv = string(b)
				return strings.Contains(mv, "CODECS="), mv
			})
			wantCodecs := fmt.Sprintf(`CODECS="vp09.00.%02d.08,%s"`, testenv.VP9ClipLevel, tt.codecs)
			if !strings.Contains(mv, wantCodecs) {
				t.Fatalf("multivariant playlist lacks %s:\n%s", wantCodecs, mv)
			}
			readVP9Audio(t, o, index)
			if !strings.Contains(o.Logs(), "video=vp9") || !strings.Contains(o.Logs(), "audio="+tt.entry) {
				t.Fatalf("stream start not logged with vp9 video and %s audio", tt.entry)
			}
			probeCodecs(t, o, index, tt.probed)
			cancel()
			<-published
		})
	}
}

// readVP9Audio reads the video and the audio media playlists with gohlslib's client until
// it has 60 VP9 frames and 100 audio packets (Opus or FLAC). The client skips variants
// whose CODECS it does not list (vp09 among them), so it reads each media playlist on
// its own.
func readVP9Audio(t *testing.T, o *testenv.Onair, index string) {
	t.Helper()
	var videoURL, audioURL string
	for path := range mediaPlaylists(t, o, index) {
		if strings.Contains(path, "video") {
			videoURL = o.HTTP + path
		} else {
			audioURL = o.HTTP + path
		}
	}
	if videoURL == "" || audioURL == "" {
		t.Fatalf("media playlists: video %q, audio %q", videoURL, audioURL)
	}
	var mu sync.Mutex
	var videoFrames, audioPackets int
	var problems []string
	countAudio := func(_ int64, packets [][]byte) {
		mu.Lock()
		defer mu.Unlock()
		audioPackets += len(packets)
	}
	read := func(url string) {
		c := &gohlslib.Client{URI: url}
		c.OnTracks = func(tracks []*gohlslib.Track) error {
			for _, track := range tracks {
				switch track.Codec.(type) {
				case *codecs.VP9:
					c.OnDataVP9(track, func(_ int64, frame []byte) {
						mu.Lock()
						defer mu.Unlock()
						if len(frame) == 0 {
							problems = append(problems, "empty vp9 frame")
						}
						videoFrames++
					})
				case *codecs.Opus:
					c.OnDataOpus(track, countAudio)
				case *codecs.FLAC:
					c.OnDataFLAC(track, func(pts int64, frame []byte) { countAudio(pts, [][]byte{frame}) })
				default:
					mu.Lock()
					problems = append(problems, fmt.Sprintf("unexpected codec %T in %s", track.Codec, url))
					mu.Unlock()
				}
			}
			return nil
		}
		if err := c.Start(); err != nil {
			t.Fatalf("client of %s: %v", url, err)
		}
		t.Cleanup(c.Close)
		go func() {
			err := c.Wait2()
			mu.Lock()
			problems = append(problems, fmt.Sprintf("client of %s stopped: %v", url, err))
			mu.Unlock()
		}()
	}
	read(videoURL)
	read(audioURL)
	testenv.Eventually(t, 25*time.Second, func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		if len(problems) > 0 {
			t.Fatalf("client problems: %v", problems)
		}
		return videoFrames >= 60 && audioPackets >= 100, fmt.Sprintf("%d vp9 frames, %d audio packets", videoFrames, audioPackets)
	})
}

// TestEnhancedCodecRefused publishes VP9 with AC-3 audio, which onair cannot serve (no
// browser's Media Source Extensions play it): the publish is refused rather than going
// live silent, with the reason in the log and in the room's live health, where its
// streamer looks.
func TestEnhancedCodecRefused(t *testing.T) {
	clip := testenv.EncodeEnhancedAV(t, testenv.VP9, testenv.AC3, 4)
	o, _ := startWithMongo(t)
	ann := newClient(t, o.HTTP)
	ann.signUp("ann")
	_, key := ann.createRoom("ann-ac3")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := clip.Publish(ctx, o.RTMP+"/"+key); err == nil {
		t.Fatal("an AC-3 publish was sent to the end without being refused")
	}
	testenv.Eventually(t, 10*time.Second, func() (bool, string) {
		for _, line := range strings.Split(o.Logs(), "\n") {
			if strings.Contains(line, "rtmp connection refused") && strings.Contains(line, "reason=unsupported") &&
				strings.Contains(line, "AC-3") && strings.Contains(line, "audio codec cannot be served") {
				return true, ""
			}
		}
		return false, "no refusal naming AC-3 in the log"
	})
	var health struct {
		Live         bool `json:"live"`
		PublishError *struct {
			At     time.Time `json:"at"`
			Reason string    `json:"reason"`
		} `json:"publish_error"`
	}
	if code, _ := ann.do("GET", "/api/v1/rooms/ann-ac3/health", nil, &health); code != http.StatusOK {
		t.Fatalf("health: %d", code)
	}
	if health.Live || health.PublishError == nil || !strings.Contains(health.PublishError.Reason, "AC-3") ||
		!strings.Contains(health.PublishError.Reason, "cannot be served") {
		t.Fatalf("live health after the refused publish: live %v, publish error %+v", health.Live, health.PublishError)
	}
}

// probeCodecs downloads the newest complete segment of every media playlist with its
// init file and checks that ffprobe reads frames of exactly the codecs want lists
// (sorted, comma-separated).
func probeCodecs(t *testing.T, o *testenv.Onair, index, want string) {
	t.Helper()
	var found []string
	for path, media := range mediaPlaylists(t, o, index) {
		base := path[:strings.LastIndex(path, "/")+1]
		m := mapURI.FindSubmatch(media)
		if m == nil {
			t.Fatalf("no init file in %s", path)
		}
		code, data := o.Get(t, base+string(m[1]))
		if code != http.StatusOK {
			t.Fatalf("init file: %d", code)
		}
		var seg string
		for _, m := range uriLine.FindAllSubmatch(media, -1) {
			if u := string(m[1]); !strings.HasPrefix(u, "gap") {
				seg = u
			}
		}
		code, body := o.Get(t, base+seg)
		if seg == "" || code != http.StatusOK {
			t.Fatalf("segment %q of %s: %d", seg, path, code)
		}
		file := filepath.Join(t.TempDir(), "segment.mp4")
		if err := os.WriteFile(file, append(data, body...), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Fields(ffprobe(t, "-count_frames", "-show_entries", "stream=codec_name,nb_read_frames", "-of", "csv=p=0", file)) {
			name, frames, _ := strings.Cut(line, ",")
			if frames == "0" || frames == "" {
				t.Fatalf("ffprobe reads no %s frames in %s", name, seg)
			}
			found = append(found, name)
		}
	}
	sort.Strings(found)
	if got := strings.Join(found, ","); got != want {
		t.Fatalf("ffprobe found %s in the segments, want %s", got, want)
	}
}

// TestRecordingVP9Opus records a VP9 + Opus broadcast: the replay playlist and the MP4
// download carry both codecs, every frame of the clip (the recording goes through the
// same fMP4 write path as live HLS).
func TestRecordingVP9Opus(t *testing.T) {
	const seconds = 8
	clip := testenv.EncodeEnhancedAV(t, testenv.VP9, testenv.Opus, seconds)
	o, _ := startWithMongo(t)
	ann := newClient(t, o.HTTP)
	ann.signUp("ann")
	_, key := ann.createRoom("ann-vp9")
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	if err := clip.Publish(ctx, o.RTMP+"/"+key); err != nil {
		t.Fatalf("publish: %v", err)
	}
	b := waitReplay(t, ann, "ann-vp9", 30*time.Second)
	if b.Recording == nil || b.Recording.Status != "ready" || b.Codecs.Video != "vp9" || b.Codecs.Audio != "opus" {
		t.Fatalf("broadcast = %+v", b)
	}
	resp, err := ann.http.Get(o.HTTP + b.DownloadURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if strings.HasPrefix(loc, "/") {
		loc = o.HTTP + loc
	}
	for what, input := range map[string]string{"download": loc, "replay playlist": o.HTTP + b.ReplayURL} {
		// The replay's HLS lists a program per variant, the same streams in each.
		got := slices.Compact(slices.Sorted(slices.Values(strings.Fields(
			ffprobe(t, "-count_frames", "-show_entries", "stream=codec_name,nb_read_frames", "-of", "csv=p=0", input)))))
		// Every one of the clip's 30 fps pictures; Opus in 20 ms packets, give or take
		// those before the first key frame.
		if len(got) != 2 || !strings.HasPrefix(got[0], "opus,") || got[1] != fmt.Sprintf("vp9,%d", seconds*30) {
			t.Fatalf("ffprobe of the %s: %v, want opus frames and %d vp9 frames", what, got, seconds*30)
		}
	}
}

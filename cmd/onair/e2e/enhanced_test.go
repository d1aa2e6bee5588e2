package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gohlslib/v2"
	"github.com/bluenviron/gohlslib/v2/pkg/codecs"

	"onair/scripts/testenv"
)

// TestEnhancedRTMP publishes HEVC and AV1 as a current OBS does (Enhanced RTMP FourCC
// tags) and reads them back over LL-HLS with the gohlslib client.
func TestEnhancedRTMP(t *testing.T) {
	bin := testenv.OnairBinary(t)
	for _, codec := range []testenv.EnhancedCodec{testenv.HEVC, testenv.AV1} {
		t.Run(string(codec), func(t *testing.T) {
			clip := testenv.EncodeEnhanced(t, codec, 12)
			key := newKey(t)
			o := testenv.StartOnair(t, testenv.OnairOptions{Binary: bin, Env: []string{streamsEnv(map[string]string{"cam": key})}})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			published := make(chan error, 1)
			go func() { published <- clip.Publish(ctx, o.RTMP+"/"+key) }()

			index := waitIndex(t, o, "cam")
			url := index
			if codec == testenv.AV1 {
				// gohlslib's client skips multivariant variants whose CODECS it does not
				// list (av01 among them) but plays AV1 from a media playlist.
				path, _ := mediaPlaylist(t, o, index)
				url = o.HTTP + path
			}
			var mu sync.Mutex
			var got string
			frames := 0
			var last int64 = -1
			var problems []string
			c := &gohlslib.Client{URI: url}
			c.OnTracks = func(tracks []*gohlslib.Track) error {
				for _, track := range tracks {
					switch track.Codec.(type) {
					case *codecs.H265:
						got = "hevc"
						c.OnDataH26x(track, func(_, dts int64, _ [][]byte) {
							mu.Lock()
							defer mu.Unlock()
							if dts <= last {
								problems = append(problems, fmt.Sprintf("dts %d after %d", dts, last))
							}
							last = dts
							frames++
						})
					case *codecs.AV1:
						got = "av1"
						c.OnDataAV1(track, func(pts int64, _ [][]byte) {
							mu.Lock()
							defer mu.Unlock()
							if pts <= last {
								problems = append(problems, fmt.Sprintf("pts %d after %d", pts, last))
							}
							last = pts
							frames++
						})
					default:
						problems = append(problems, fmt.Sprintf("unexpected codec %T", track.Codec))
					}
				}
				return nil
			}
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			go func() {
				err := c.Wait2()
				mu.Lock()
				problems = append(problems, fmt.Sprintf("client stopped: %v", err))
				mu.Unlock()
			}()
			testenv.Eventually(t, 20*time.Second, func() (bool, string) {
				mu.Lock()
				defer mu.Unlock()
				if len(problems) > 0 {
					t.Fatalf("client problems: %v", problems)
				}
				return frames >= 60, fmt.Sprintf("%s: %d frames", got, frames)
			})
			want := map[testenv.EnhancedCodec]string{testenv.HEVC: "hevc", testenv.AV1: "av1"}[codec]
			if got != want {
				t.Fatalf("HLS carries %q, want %q", got, want)
			}
			if !strings.Contains(o.Logs(), "video="+map[string]string{"hevc": "h265", "av1": "av1"}[want]) {
				t.Fatalf("stream start not logged with the %s codec", want)
			}
			cancel()
			<-published
		})
	}
}

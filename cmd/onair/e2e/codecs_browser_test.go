package e2e

import (
	"context"
	"testing"

	"onair/scripts/testenv"
)

// TestEnhancedVP9OpusBrowser plays a VP9 + Opus publish with hls.js in Chromium
// (web/ui/e2e/codecs.mjs says what it checks).
func TestEnhancedVP9OpusBrowser(t *testing.T) {
	chromium := browserDeps(t)
	bin := testenv.OnairBinary(t)
	clip := testenv.EncodeEnhancedAV(t, testenv.VP9, testenv.Opus, 40)
	key := newKey(t)
	o := testenv.StartOnair(t, testenv.OnairOptions{Binary: bin, Env: []string{streamsEnv(map[string]string{"cam": key})}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	published := make(chan error, 1)
	go func() { published <- clip.Publish(ctx, o.RTMP+"/"+key) }()
	index := waitIndex(t, o, "cam")
	runBrowserScript(t, "codecs.mjs", []string{"ONAIR_HLS=" + index, "CHROMIUM=" + chromium, "WIDTH=320", "HEIGHT=240"},
		func(command string, _ []string) string {
			t.Fatalf("the codecs script asked for %s", command)
			return ""
		})
	cancel()
	<-published
}

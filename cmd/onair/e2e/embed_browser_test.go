package e2e

import (
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"onair/scripts/testenv"
)

// Embeds and sharing in Chromium (web/ui/e2e/embed.mjs), with the local storage backend:
// a page of another origin, served here by a second server, frames an offline room's
// embed, which plays the room's latest recording; the same replay plays in that origin's
// own hls.js; the chat embed connects; the replay page's share link carries the moment (?t=) and opens there.
func TestBrowserEmbedAndShare(t *testing.T) {
	chromium := browserDeps(t)
	hlsJS := filepath.Join(testenv.RepoRoot(t), "web", "ui", "node_modules", "hls.js", "dist", "hls.min.js")
	if _, err := os.Stat(hlsJS); err != nil {
		t.Fatalf("hls.js is not installed: run make ui (make test does): %v", err)
	}
	o, _ := startWithMongo(t)
	ann := newClient(t, o.HTTP)
	ann.signUp("ann")
	_, key := ann.createRoom("ann-embed")
	pub := testenv.Publish(t, o.RTMP+"/"+key, testenv.PublishOptions{Duration: 12 * time.Second})
	if err := pub.Wait(40 * time.Second); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, pub.Stderr())
	}
	b := waitReplay(t, ann, "ann-embed", 15*time.Second)
	if code, _ := o.Get(t, b.ReplayURL); code != http.StatusOK {
		t.Fatalf("replay playlist: %d", code)
	}
	_, _, page := newClient(t, o.HTTP).get("/replay/" + b.ID)
	if !strings.Contains(string(page), `<meta property="og:url" content="`+o.HTTP+`/replay/`+b.ID+`">`) ||
		!strings.Contains(string(page), `<meta property="og:title" content="Room ann-embed · replay">`) {
		t.Errorf("replay page's Open Graph tags:\n%s", page)
	}

	replayURL := o.HTTP + b.ReplayURL
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		switch r.URL.Path {
		case "/embed.html":
			fmt.Fprintf(w, `<!doctype html><title>a blog</title><h1>My blog</h1>
<iframe src="%[1]s/embed/ann-embed" width="640" height="400" allow="autoplay; fullscreen"></iframe>
<iframe src="%[1]s/embed/ann-embed/chat" width="320" height="400"></iframe>`, html.EscapeString(o.HTTP))
		case "/player.html":
			fmt.Fprintf(w, `<!doctype html><title>a player</title><video muted playsinline></video>
<script src="/hls.min.js"></script>
<script>
const v = document.querySelector('video');
const hls = new Hls({ enableWorker: false });
hls.on(Hls.Events.ERROR, (_, d) => { if (d.fatal) window.fatal = d.type + '/' + d.details + '/' + (d.response ? d.response.code : ''); });
hls.on(Hls.Events.MANIFEST_PARSED, () => v.play());
hls.loadSource(%q);
hls.attachMedia(v);
</script>`, replayURL)
		case "/hls.min.js":
			w.Header().Set("Content-Type", "text/javascript")
			http.ServeFile(w, r, hlsJS)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(other.Close)

	runBrowserScript(t, "embed.mjs", []string{"ONAIR_URL=" + o.HTTP, "OTHER_URL=" + other.URL,
		"ROOM=/rooms/ann-embed", "REPLAY=" + b.ID, "CHROMIUM=" + chromium,
	}, func(command string, _ []string) string {
		t.Fatalf("the browser script asked for %s", command)
		return ""
	})
}

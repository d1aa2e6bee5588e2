package e2e

import (
	"net/http"
	"strings"
	"testing"
)

// Embeds: /embed/<room> and /embed/<room>/chat may be framed by the configured origins,
// every other page still refuses framing, and a private room's embed admits whom its page
// admits.
func TestEmbedPages(t *testing.T) {
	o, _ := startWithMongo(t, `ONAIR_HTTP_EMBED_FRAME_ANCESTORS=["https://blog.example.com", "'self'"]`)
	ann := newClient(t, o.HTTP)
	ann.signUp("ann")
	ann.createRoom("ann-embed")
	var priv struct {
		Room privateRoom `json:"room"`
	}
	ann.must(201, "POST", "/api/v1/rooms", map[string]any{"slug": "ann-secret", "title": "Ann's secret", "visibility": "private"}, &priv)
	pid := priv.Room.PlaybackID
	anon := newClient(t, o.HTTP)

	for _, path := range []string{"/embed/ann-embed", "/embed/ann-embed/chat"} {
		code, h, body := anon.get(path)
		csp := h.Get("Content-Security-Policy")
		if code != http.StatusOK || !strings.Contains(csp, "frame-ancestors https://blog.example.com 'self';") ||
			h.Get("X-Frame-Options") != "" || !strings.Contains(csp, "script-src 'self';") {
			t.Fatalf("GET %s: %d, CSP %q, X-Frame-Options %q", path, code, csp, h.Get("X-Frame-Options"))
		}
		if !strings.Contains(string(body), "Room ann-embed") || strings.Contains(string(body), `class="site"`) {
			t.Fatalf("GET %s: not the bare embed of the room:\n%s", path, body)
		}
	}
	if _, _, body := anon.get("/embed/ann-embed"); !strings.Contains(string(body), "data-player") || !strings.Contains(string(body), `data-hls="/live/ann-embed/index.m3u8"`) {
		t.Fatalf("the player embed has no player:\n%s", body)
	}
	if _, _, body := anon.get("/embed/ann-embed/chat"); !strings.Contains(string(body), "data-chat-log") || strings.Contains(string(body), "data-player") {
		t.Fatalf("the chat embed is not the chat alone:\n%s", body)
	}
	// Every other page refuses to be framed.
	for _, path := range []string{"/", "/rooms/ann-embed", "/login", "/watch/" + pid, "/no-such-page"} {
		_, h, _ := anon.get(path)
		if !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") || h.Get("X-Frame-Options") != "DENY" {
			t.Errorf("GET %s may be framed: CSP %q, X-Frame-Options %q", path, h.Get("Content-Security-Policy"), h.Get("X-Frame-Options"))
		}
	}

	// A private room: no player nor chat for the anonymous or the uninvited, the owner's
	// embed plays; its slug reveals nothing.
	if code, _, body := anon.get("/embed/" + pid); code != http.StatusUnauthorized || strings.Contains(string(body), "data-player") ||
		strings.Contains(string(body), "Ann&#39;s secret") || strings.Contains(string(body), "/live/") {
		t.Fatalf("anonymous private embed: %d\n%s", code, body)
	}
	if code, _, body := anon.get("/embed/" + pid + "/chat"); code != http.StatusUnauthorized || strings.Contains(string(body), "data-chat") {
		t.Fatalf("anonymous private chat embed: %d\n%s", code, body)
	}
	bob := newClient(t, o.HTTP)
	bob.signUp("bob")
	if code, _, body := bob.get("/embed/" + pid); code != http.StatusForbidden || strings.Contains(string(body), "data-player") {
		t.Fatalf("uninvited private embed: %d\n%s", code, body)
	}
	if code, _, _ := anon.get("/embed/ann-secret"); code != http.StatusNotFound {
		t.Fatalf("private room's embed by slug: %d, want 404", code)
	}
	if code, _, body := ann.get("/embed/" + pid); code != http.StatusOK || !strings.Contains(string(body), `data-private="true"`) {
		t.Fatalf("owner's private embed: %d\n%s", code, body)
	}
	// Its media still needs the playback cookie the embed asks for: no bypass.
	if code, _, _ := anon.get("/live/" + pid + "/index.m3u8"); code == http.StatusOK {
		t.Fatalf("private playlist without a playback cookie: %d", code)
	}
}

// Open Graph tags: a public room's page says its title and live state in the HTML; a
// private room's says nothing of it, even to its owner's browser.
func TestOpenGraphTags(t *testing.T) {
	o, _ := startWithMongo(t)
	ann := newClient(t, o.HTTP)
	ann.signUp("ann")
	ann.createRoom("ann-og")
	var priv struct {
		Room privateRoom `json:"room"`
	}
	ann.must(201, "POST", "/api/v1/rooms", map[string]any{"slug": "ann-hidden", "title": "Ann hidden", "visibility": "private"}, &priv)

	_, _, body := newClient(t, o.HTTP).get("/rooms/ann-og")
	for _, want := range []string{`<meta property="og:title" content="Room ann-og">`, `<meta property="og:description" content="Offline · @ann">`,
		`<meta property="og:url" content="` + o.HTTP + `/rooms/ann-og">`, `<meta name="twitter:card" content="summary">`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("room page lacks %s", want)
		}
	}
	_, _, body = ann.get("/watch/" + priv.Room.PlaybackID)
	if !strings.Contains(string(body), `<meta property="og:title" content="A room on onair">`) || strings.Contains(string(body), `content="Ann hidden`) ||
		strings.Contains(string(body), `content="Offline`) {
		t.Errorf("private room's tags:\n%s", body)
	}
}

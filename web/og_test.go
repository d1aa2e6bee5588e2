package web

import (
	"bytes"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"onair/rooms"
)

func TestOpenGraphTags(t *testing.T) {
	s := testServer(t, nil)
	r := httptest.NewRequest("GET", "http://live.example.com/rooms/talks", nil)
	room := rooms.Room{Slug: "talks", Title: `Talks "live" <b>`, Description: "Go\nand more", Visibility: rooms.Public, Live: true,
		Owner: rooms.UserRef{Handle: "ann"}, PlaybackID: "pb123"}

	render := func(og *ogMeta) string {
		var b bytes.Buffer
		if err := s.site.pages.ExecuteTemplate(&b, "top", pageData{Title: "x", Script: "app.js", OG: og}); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	html := render(s.roomOG(r, room))
	for _, want := range []string{
		`<meta property="og:title" content="Talks &#34;live&#34; &lt;b&gt;">`,
		`<meta property="og:description" content="Live now · @ann · Go and more">`,
		`<meta property="og:url" content="http://live.example.com/rooms/talks">`,
		`<meta property="og:type" content="video.other">`,
		`<meta name="twitter:card" content="summary">`,
	} {
		if !strings.Contains(html, want) {
			t.Errorf("room tags lack %s:\n%s", want, html)
		}
	}
	if strings.Contains(html, "og:image") {
		t.Error("og:image without a thumbnail")
	}
	room.Live = false
	if html := render(s.roomOG(r, room)); !strings.Contains(html, `content="Offline · @ann`) {
		t.Errorf("offline room:\n%s", html)
	}

	b := rooms.Broadcast{ID: "b42", Started: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC), DurationMS: 125_000}
	if html := render(s.replayOG(r, room, b)); !strings.Contains(html, `content="Past broadcast of @ann, 1 Mar 2026, 2:05 long"`) ||
		!strings.Contains(html, `content="http://live.example.com/replay/b42"`) {
		t.Errorf("replay tags:\n%s", html)
	}

	// A stream title is the live broadcast's, and a past broadcast's title its replay's.
	room.Live, room.StreamTitle = true, "Episode 3"
	if html := render(s.roomOG(r, room)); !strings.Contains(html, `content="Live now: Episode 3 · @ann · Go and more"`) {
		t.Errorf("room with a stream title:\n%s", html)
	}
	b.Title = "Episode 2"
	if html := render(s.replayOG(r, room, b)); !strings.Contains(html, `<meta property="og:title" content="Episode 2 · replay">`) ||
		!strings.Contains(html, `content="Past broadcast of Talks &#34;live&#34; &lt;b&gt; (@ann), 1 Mar 2026, 2:05 long"`) {
		t.Errorf("replay of a titled broadcast:\n%s", html)
	}

	c := rooms.Clip{ID: "c7", Title: "The goal", Maker: rooms.UserRef{Handle: "bob"}, DurationMS: 30_000}
	if html := render(s.clipOG(r, room, c)); !strings.Contains(html, `<meta property="og:title" content="The goal · clip">`) ||
		!strings.Contains(html, `content="Clip of Talks &#34;live&#34; &lt;b&gt; (@ann) by @bob, 0:30 long"`) ||
		!strings.Contains(html, `content="http://live.example.com/clips/c7"`) {
		t.Errorf("clip tags:\n%s", html)
	}

	for _, v := range []rooms.Visibility{rooms.Unlisted, rooms.Private} {
		room.Visibility = v
		for _, html := range []string{render(s.roomOG(r, room)), render(s.replayOG(r, room, b)), render(s.clipOG(r, room, c))} {
			if strings.Contains(html, "Talks") || strings.Contains(html, "Episode") || strings.Contains(html, "ann") || strings.Contains(html, "Offline") || strings.Contains(html, "goal") ||
				!strings.Contains(html, `content="A room on onair"`) {
				t.Errorf("%s room's tags tell more than onair:\n%s", v, html)
			}
		}
	}
	if html := render(nil); strings.Contains(html, "og:") {
		t.Error("a page without tags has some")
	}
	if got := clip(strings.Repeat("é", 150), 200); len(got) > 200+len("…") || !strings.HasSuffix(got, "…") {
		t.Errorf("clip: %d bytes", len(got))
	}
}

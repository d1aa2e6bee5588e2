package e2e

import (
	"fmt"
	"html"
	"net/http"
	"strings"
	"testing"
	"time"

	"onair/scripts/testenv"
)

type titledRoom struct {
	Title       string `json:"title"`
	StreamTitle string `json:"stream_title"`
	Live        bool   `json:"live"`
	BroadcastID string `json:"broadcast_id"`
}

type titledBroadcast struct {
	ID    string     `json:"id"`
	Title string     `json:"title"`
	Ended *time.Time `json:"ended"`
}

// TestBroadcastTitles: the streamer sets the coming broadcast's title, the broadcast takes
// it when ffmpeg goes live, follows a change made while live, and keeps the last one once
// ended; a title too long is refused and changes nothing. The room and replay pages show
// them.
func TestBroadcastTitles(t *testing.T) {
	o, _ := startWithMongo(t)
	ann := newClient(t, o.HTTP)
	ann.signUp("ann")
	anon := newClient(t, o.HTTP)
	_, key := ann.createRoom("ann-titles")
	const path = "/api/v1/rooms/ann-titles"

	var room titledRoom
	ann.must(http.StatusOK, "PATCH", path, map[string]any{"stream_title": "  Episode 1 "}, &room)
	if room.StreamTitle != "Episode 1" || room.Title != "Room ann-titles" {
		t.Fatalf("after setting the stream title: %+v", room)
	}

	pub := testenv.Publish(t, o.RTMP+"/"+key, testenv.PublishOptions{})
	defer pub.Kill()
	testenv.Eventually(t, 20*time.Second, func() (bool, string) {
		anon.must(http.StatusOK, "GET", path, nil, &room)
		return room.Live && room.BroadcastID != "", "room not live yet"
	})
	id := room.BroadcastID
	broadcast := func() titledBroadcast {
		t.Helper()
		var b titledBroadcast
		anon.must(http.StatusOK, "GET", "/api/v1/broadcasts/"+id, nil, &b)
		return b
	}
	if b := broadcast(); b.Title != "Episode 1" {
		t.Fatalf("live broadcast title %q, want the stream title", b.Title)
	}

	// Retitled while live: the live broadcast and the room page change with it.
	const live = "Episode 1: Q&A <live>"
	ann.must(http.StatusOK, "PATCH", path, map[string]any{"stream_title": live}, &room)
	testenv.Eventually(t, 10*time.Second, func() (bool, string) {
		b := broadcast()
		return b.Title == live, fmt.Sprintf("live broadcast title %q, want %q", b.Title, live)
	})
	if _, _, page := anon.get("/rooms/ann-titles"); !strings.Contains(string(page), "<span data-stream-title>"+html.EscapeString(live)+"</span>") {
		t.Errorf("the room page's heading lacks the stream title:\n%s", page)
	}

	// Too long: 400 naming the field, and nothing changed.
	var e apiErr
	if code, _ := ann.do("PATCH", path, map[string]any{"stream_title": strings.Repeat("x", 101)}, &e); code != http.StatusBadRequest || e.Error.Field != "stream_title" {
		t.Fatalf("101-character stream title: %d %+v, want 400 on stream_title", code, e)
	}
	if anon.must(http.StatusOK, "GET", path, nil, &room); room.StreamTitle != live {
		t.Fatalf("refused title changed the room: %+v", room)
	}
	if b := broadcast(); b.Title != live {
		t.Fatalf("refused title changed the broadcast: %q", b.Title)
	}

	if err := pub.Stop(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() (bool, string) {
		b := broadcast()
		return b.Ended != nil, "broadcast not ended yet"
	})
	// The next broadcast's title is not the past one's.
	ann.must(http.StatusOK, "PATCH", path, map[string]any{"stream_title": "Episode 2"}, &room)
	if b := broadcast(); b.Title != live {
		t.Fatalf("past broadcast title %q, want %q", b.Title, live)
	}
	var list struct {
		Broadcasts []titledBroadcast `json:"broadcasts"`
	}
	anon.must(http.StatusOK, "GET", path+"/broadcasts", nil, &list)
	if len(list.Broadcasts) != 1 || list.Broadcasts[0].Title != live {
		t.Fatalf("listed: %+v", list.Broadcasts)
	}
	_, _, page := anon.get("/replay/" + id)
	for _, want := range []string{"<h1 data-broadcast-title>" + html.EscapeString(live) + "</h1>",
		`<meta property="og:title" content="` + html.EscapeString(live) + ` · replay">`} {
		if !strings.Contains(string(page), want) {
			t.Errorf("the replay page lacks %s:\n%s", want, page)
		}
	}

	// The owner renames the past broadcast; nobody else may, and a bad title changes nothing.
	const edited = "Episode 1: <the> edit"
	var b titledBroadcast
	ann.must(http.StatusOK, "PATCH", "/api/v1/broadcasts/"+id, map[string]any{"title": edited}, &b)
	if b.Title != edited {
		t.Fatalf("renamed broadcast: %+v", b)
	}
	if code, _ := anon.do("PATCH", "/api/v1/broadcasts/"+id, map[string]any{"title": "anon"}, nil); code != http.StatusUnauthorized {
		t.Fatalf("anonymous rename: %d, want 401", code)
	}
	if code, _ := ann.do("PATCH", "/api/v1/broadcasts/"+id, map[string]any{"title": strings.Repeat("x", 101)}, &e); code != http.StatusBadRequest || e.Error.Field != "title" {
		t.Fatalf("101-character title: %d %+v, want 400 on title", code, e)
	}
	anon.must(http.StatusOK, "GET", path+"/broadcasts", nil, &list)
	if len(list.Broadcasts) != 1 || list.Broadcasts[0].Title != edited {
		t.Fatalf("listed after the rename: %+v", list.Broadcasts)
	}
	if _, _, page := anon.get("/replay/" + id); !strings.Contains(string(page), "<h1 data-broadcast-title>"+html.EscapeString(edited)+"</h1>") {
		t.Errorf("the replay page does not show the new title")
	}
}

package e2e

import (
	"fmt"
	"net/url"
	"slices"
	"testing"
	"time"

	"onair/scripts/testenv"
)

// replayChatPage is a page of GET /api/v1/broadcasts/{id}/chat.
type replayChatPage struct {
	Messages []struct {
		ID       string `json:"id"`
		Text     string `json:"text"`
		Handle   string `json:"handle"`
		OffsetMS int64  `json:"offset_ms"`
	} `json:"messages"`
	Next string `json:"next"`
}

// postMany posts n messages "<prefix> 000", … and returns their ids.
func postMany(t *testing.T, ws *chatConn, prefix string, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		f := ws.post(fmt.Sprintf("%s %03d", prefix, i))
		if f.Type != "ack" || f.ID == "" {
			t.Fatalf("post %d: %s", i, f.Raw)
		}
		ids[i] = f.ID
	}
	return ids
}

// waitLive waits until the room's newest broadcast is live and returns it.
func waitLive(t *testing.T, c *client, slug string) apiBroadcast {
	t.Helper()
	var b apiBroadcast
	testenv.Eventually(t, 20*time.Second, func() (bool, string) {
		var page struct {
			Broadcasts []apiBroadcast `json:"broadcasts"`
		}
		c.must(200, "GET", "/api/v1/rooms/"+slug+"/broadcasts", nil, &page)
		if len(page.Broadcasts) == 0 {
			return false, "no broadcast yet"
		}
		b = page.Broadcasts[0]
		return b.Ended == nil, fmt.Sprintf("newest broadcast %+v has ended", b)
	})
	return b
}

// postAt posts text once the broadcast is at least d old, and returns its id.
func postAt(t *testing.T, ws *chatConn, b apiBroadcast, d time.Duration, text string) string {
	t.Helper()
	testenv.Eventually(t, d+30*time.Second, func() (bool, string) {
		return time.Since(b.Started) >= d, fmt.Sprintf("the broadcast is %s old", time.Since(b.Started))
	})
	f := ws.post(text)
	if f.Type != "ack" {
		t.Fatalf("post %q: %s", text, f.Raw)
	}
	return f.ID
}

// TestChatHistoryPagesAndBroadcastChat: the chat history pages back with before= and
// hands out every message once, in order; a broadcast's chat gives the message posted
// 12 s into it with its offset, by time window and page, and only to those who may watch.
func TestChatHistoryPagesAndBroadcastChat(t *testing.T) {
	o, _ := startWithMongo(t, "ONAIR_CHAT_RATE_LIMIT=1000", "ONAIR_CHAT_RATE_PER=1s")
	ann := newClient(t, o.HTTP)
	ann.signUp("ann")
	_, key := ann.createRoom("ann-pages")
	bob := newClient(t, o.HTTP)
	bob.signUp("bob")
	ws := bob.chat("ann-pages")
	ws.next("history")
	ids := postMany(t, ws, "old", 37)
	ann.must(204, "DELETE", "/api/v1/rooms/ann-pages/chat/messages/"+ids[20], nil, nil)
	want := slices.Delete(slices.Clone(ids), 20, 21)

	anon := newClient(t, o.HTTP)
	var got []string
	before := ""
	for pages := 1; ; pages++ {
		var page struct {
			Messages   []frame `json:"messages"`
			NextBefore string  `json:"next_before"`
		}
		anon.must(200, "GET", "/api/v1/rooms/ann-pages/chat/history?limit=8&before="+url.QueryEscape(before), nil, &page)
		if len(page.Messages) > 8 || pages > 10 {
			t.Fatalf("page %d: %d messages", pages, len(page.Messages))
		}
		var pageIDs []string
		for _, m := range page.Messages {
			pageIDs = append(pageIDs, m.ID)
		}
		got = append(pageIDs, got...)
		if page.NextBefore == "" {
			break
		}
		before = page.NextBefore
	}
	if !slices.Equal(got, want) {
		t.Fatalf("the pages give\n%v\nwant (every message but the deleted one, oldest first)\n%v", got, want)
	}
	var e apiErr
	if code, _ := anon.do("GET", "/api/v1/rooms/ann-pages/chat/history?before=nope", nil, &e); code != 400 || e.Error.Code != "invalid" {
		t.Errorf("before=nope: %d %+v, want 400 invalid", code, e)
	}

	// A broadcast of 15 s, with messages at 2 s and 12 s.
	pub := testenv.Publish(t, o.RTMP+"/"+key, testenv.PublishOptions{Duration: 15 * time.Second})
	b := waitLive(t, ann, "ann-pages")
	two := postAt(t, ws, b, 2*time.Second, "at two")
	twelve := postAt(t, ws, b, 12*time.Second, "at twelve")
	if err := pub.Wait(40 * time.Second); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, pub.Stderr())
	}
	testenv.Eventually(t, 20*time.Second, func() (bool, string) {
		ann.must(200, "GET", "/api/v1/broadcasts/"+b.ID, nil, &b)
		return b.Ended != nil, "the broadcast has not ended"
	})
	ws.post("after the broadcast")

	// Pages of one, by cursor: the broadcast's two messages, none of before or after it.
	var all replayChatPage
	path := "/api/v1/broadcasts/" + b.ID + "/chat?limit=1"
	for pages := 0; ; pages++ {
		var page replayChatPage
		anon.must(200, "GET", path, nil, &page)
		all.Messages = append(all.Messages, page.Messages...)
		if page.Next == "" || pages > 5 {
			break
		}
		path = "/api/v1/broadcasts/" + b.ID + "/chat?limit=1&cursor=" + url.QueryEscape(page.Next)
	}
	if len(all.Messages) != 2 || all.Messages[0].ID != two || all.Messages[1].ID != twelve {
		t.Fatalf("the broadcast's chat: %+v, want the messages at 2 s (%s) and 12 s (%s)", all.Messages, two, twelve)
	}
	// Posted once the broadcast was 12 s old: its offset says so (the upper bound is only
	// there to catch an offset from another origin than the broadcast's start).
	if off := all.Messages[1].OffsetMS; off < 12000 || off > 20000 {
		t.Errorf("the message posted at 12 s has offset %d ms", off)
	}
	var window replayChatPage
	anon.must(200, "GET", "/api/v1/broadcasts/"+b.ID+"/chat?from=5000&to=60000", nil, &window)
	if len(window.Messages) != 1 || window.Messages[0].ID != twelve || window.Next != "" {
		t.Fatalf("from 5 s: %+v", window)
	}
	anon.must(200, "GET", "/api/v1/broadcasts/"+b.ID+"/chat?from=0&to=5000", nil, &window)
	if len(window.Messages) != 1 || window.Messages[0].ID != two {
		t.Fatalf("to 5 s: %+v", window)
	}
	if code, _ := anon.do("GET", "/api/v1/broadcasts/"+b.ID+"/chat?cursor=12", nil, &e); code != 400 {
		t.Errorf("a bad cursor: %d, want 400", code)
	}

	// Once the room is private, its broadcast's chat is for its members only.
	ann.must(200, "PATCH", "/api/v1/rooms/ann-pages", map[string]any{"visibility": "private"}, nil)
	for who, c := range map[string]*client{"anonymous": anon, "bob, not invited": bob} {
		var page replayChatPage
		if code, _ := c.do("GET", "/api/v1/broadcasts/"+b.ID+"/chat", nil, &page); code != 401 && code != 403 && code != 404 || len(page.Messages) > 0 {
			t.Errorf("%s reads the private broadcast's chat: %d %+v", who, code, page)
		}
	}
	ann.must(200, "GET", "/api/v1/broadcasts/"+b.ID+"/chat", nil, &all)
	if len(all.Messages) != 2 {
		t.Errorf("the owner reads %d messages of the private broadcast's chat", len(all.Messages))
	}
}

package e2e

import (
	"fmt"
	"testing"
	"time"

	"onair/scripts/testenv"
)

const htmlPayload = `<img src=x onerror=alert(1)><script>alert("x")</script> & "quotes"`

func TestChat(t *testing.T) {
	o, _ := startWithMongo(t, "ONAIR_CHAT_RATE_LIMIT=5", "ONAIR_CHAT_RATE_PER=10s")
	ann := newClient(t, o.HTTP) // owner
	ann.signUp("ann")
	ann.createRoom("ann-live")
	bob := newClient(t, o.HTTP)
	bob.signUp("bob")
	carol := newClient(t, o.HTTP)
	carol.signUp("carol")

	// History on join: earlier messages come first, oldest first.
	early := bob.chat("ann-live")
	early.next("history")
	early.send("first!", "n0")
	if a := early.next("ack"); a.Nonce != "n0" || a.ID == "" {
		t.Fatalf("ack = %+v", a)
	}

	bobWS := bob.chat("ann-live")
	h := bobWS.next("history")
	if len(h.Messages) != 1 || h.Messages[0].Text != "first!" {
		t.Fatalf("history = %+v", h.Messages)
	}
	viewer := newClient(t, o.HTTP).chat("ann-live") // anonymous reader
	viewer.next("history")
	carolWS := carol.chat("ann-live")
	carolWS.next("history")

	// Messages arrive at everyone, in order, with ids; HTML is text, byte for byte.
	var ids []string
	for i, text := range []string{"hello", htmlPayload, "third"} {
		bobWS.send(text, fmt.Sprint("b", i))
		ack := bobWS.next("ack")
		ids = append(ids, ack.ID)
	}
	for _, ws := range []*chatConn{viewer, carolWS} {
		for i, want := range []string{"hello", htmlPayload, "third"} {
			m := ws.next("message")
			if m.Text != want || m.ID != ids[i] || m.Handle != "bob" {
				t.Fatalf("message %d = %+v, want %q with id %s", i, m, want, ids[i])
			}
		}
	}

	// Anonymous viewers read but cannot post.
	if e := viewer.post("hi"); e.Code != "unauthorized" {
		t.Fatalf("anonymous post: %+v", e)
	}

	// The owner deletes a message: it disappears for everyone and from history.
	ann.must(204, "DELETE", "/api/v1/rooms/ann-live/chat/messages/"+ids[1], nil, nil)
	for _, ws := range []*chatConn{viewer, carolWS, bobWS} {
		if d := ws.next("deleted"); d.ID != ids[1] {
			t.Fatalf("deleted frame = %+v", d)
		}
	}
	var hist struct {
		Messages []frame `json:"messages"`
	}
	ann.must(200, "GET", "/api/v1/rooms/ann-live/chat/history", nil, &hist)
	for _, m := range hist.Messages {
		if m.ID == ids[1] {
			t.Fatal("a deleted message is still in the history")
		}
	}

	// A non-moderator cannot moderate; a timed-out or banned user cannot post.
	var e apiErr
	if code, _ := carol.do("POST", "/api/v1/rooms/ann-live/chat/bans", map[string]string{"handle": "bob"}, &e); code != 403 {
		t.Fatalf("carol bans bob: %d", code)
	}
	ann.must(204, "POST", "/api/v1/rooms/ann-live/chat/timeouts", map[string]any{"handle": "carol", "seconds": 2, "reason": "cool down"}, nil)
	if e := carolWS.post("am I muted?"); e.Code != "timed_out" {
		t.Fatalf("timed-out post: %+v", e)
	}
	posts := func(ws *chatConn, text string) func() (bool, string) {
		return func() (bool, string) {
			f := ws.post(text)
			return f.Type == "ack", "post refused: " + f.Code
		}
	}
	testenv.Eventually(t, 10*time.Second, posts(carolWS, "back"))
	ann.must(204, "POST", "/api/v1/rooms/ann-live/chat/bans", map[string]string{"handle": "carol", "reason": "spam"}, nil)
	if e := carolWS.post("banned?"); e.Code != "banned" {
		t.Fatalf("banned post: %+v", e)
	}
	ann.must(204, "DELETE", "/api/v1/rooms/ann-live/chat/bans/carol", nil, nil)
	testenv.Eventually(t, 5*time.Second, posts(carolWS, "unbanned"))

	// Rate limit: 5 per 10 s, then an error event and the socket stays open.
	dave := newClient(t, o.HTTP)
	dave.signUp("dave")
	daveWS := dave.chat("ann-live")
	daveWS.next("history")
	for i := range 5 {
		if f := daveWS.post(fmt.Sprint("spam ", i)); f.Type != "ack" {
			t.Fatalf("post %d within the rate limit: %s", i, f.Raw)
		}
	}
	if e := daveWS.post("one too many"); e.Code != "rate_limited" || e.RetryAfter <= 0 {
		t.Fatalf("over the rate limit: %+v", e)
	}

	// Slow mode: one message per interval for viewers, moderators exempt.
	ann.must(204, "PUT", "/api/v1/rooms/ann-live/chat/slow-mode", map[string]int{"seconds": 30}, nil)
	bobWS.next("slow_mode")
	erin := newClient(t, o.HTTP)
	erin.signUp("erin")
	erinWS := erin.chat("ann-live")
	if f := erinWS.post("slow 1"); f.Type != "ack" {
		t.Fatalf("first post in slow mode: %s", f.Raw)
	}
	if e := erinWS.post("slow 2"); e.Code != "slow_mode" {
		t.Fatalf("slow mode: %+v", e)
	}
	annWS := ann.chat("ann-live")
	annWS.next("history")
	for i := range 2 {
		if f := annWS.post(fmt.Sprint("owner ", i)); f.Type != "ack" {
			t.Fatalf("owner in slow mode: %s", f.Raw)
		}
	}

	// Every moderation action is recorded; only moderators see the log.
	var log struct {
		Actions []struct {
			Action string `json:"action"`
		} `json:"actions"`
	}
	ann.must(200, "GET", "/api/v1/rooms/ann-live/chat/moderation", nil, &log)
	got := map[string]int{}
	for _, a := range log.Actions {
		got[a.Action]++
	}
	for _, want := range []string{"delete", "timeout", "ban", "unban", "slow_mode"} {
		if got[want] == 0 {
			t.Errorf("moderation log lacks %s: %+v", want, log.Actions)
		}
	}
	if code, _ := bob.do("GET", "/api/v1/rooms/ann-live/chat/moderation", nil, &e); code != 403 {
		t.Fatalf("bob reads the moderation log: %d", code)
	}
}

// MongoDB stops during a live stream: video keeps playing, chat says it is unavailable,
// and both recover when MongoDB is back, with no acknowledged message lost.
func TestMongoOutage(t *testing.T) {
	o, m := startWithMongo(t)
	ann := newClient(t, o.HTTP)
	ann.signUp("ann")
	_, key := ann.createRoom("ann-live")
	pub := testenv.Publish(t, o.RTMP+"/"+key, testenv.PublishOptions{})
	defer pub.Kill()
	r := readHLS(t, waitIndex(t, o, "ann-live"))
	ws := ann.chat("ann-live")
	ws.next("history")
	var acked []string
	acked = append(acked, ws.post("before").ID)

	m.Kill()
	if e := ws.post("during"); e.Code != "unavailable" {
		t.Fatalf("post while MongoDB is down: %+v", e)
	}
	var e apiErr
	if code, h := ann.do("GET", "/api/v1/rooms/ann-live", nil, &e); code != 503 || e.Error.Code != "unavailable" || h.Get("Retry-After") == "" {
		t.Fatalf("API while MongoDB is down: %d %+v", code, e)
	}
	v0, _, _ := r.snapshot()
	testenv.Eventually(t, 10*time.Second, func() (bool, string) {
		v, _, problems := r.snapshot()
		return v >= v0+60, fmt.Sprintf("video frames %d → %d while MongoDB is down; %v", v0, v, problems)
	})

	m.Restart(t)
	attempt := 0
	testenv.Eventually(t, 30*time.Second, func() (bool, string) {
		attempt++
		f := ws.post(fmt.Sprint("after ", attempt))
		if f.Type == "ack" {
			acked = append(acked, f.ID)
		}
		return f.Type == "ack", "chat still unavailable: " + f.Code
	})
	ann.must(200, "GET", "/api/v1/rooms/ann-live", nil, nil)
	var hist struct {
		Messages []frame `json:"messages"`
	}
	ann.must(200, "GET", "/api/v1/rooms/ann-live/chat/history", nil, &hist)
	have := map[string]bool{}
	for _, msg := range hist.Messages {
		have[msg.ID] = true
	}
	for _, id := range acked {
		if !have[id] {
			t.Fatalf("acknowledged message %s lost over the outage", id)
		}
	}
	v1, _, _ := r.snapshot()
	testenv.Eventually(t, 10*time.Second, func() (bool, string) {
		v, _, _ := r.snapshot()
		return v >= v1+30, "video stopped after MongoDB came back"
	})
}

package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"onair/scripts/testenv"
)

func TestTwoClientsSeeEachOtherInOrder(t *testing.T) {
	e := newEnv(t)
	th := e.hub("n1", func(c *Config) { c.RateLimit = 100 })
	a := dial(t, th, "r1", alice.ID)
	b := dial(t, th, "r1", bob.ID)

	// Both post concurrently; both sockets must see the same order, each poster's
	// messages in its own order, and acks carrying the stored ids.
	const each = 10
	var wg sync.WaitGroup
	for _, c := range []*client{a, b} {
		wg.Go(func() {
			for i := range each {
				msg := map[string]string{"type": "message", "text": fmt.Sprintf("%s %d", c.name, i), "nonce": fmt.Sprint(i)}
				if err := c.ws.WriteJSON(msg); err != nil {
					t.Errorf("%s: write: %v", c.name, err)
				}
			}
		})
	}
	wg.Wait()
	seen := map[*client][]inFrame{}
	for _, c := range []*client{a, b} {
		var msgs []inFrame
		var ackIDs []string
		for len(msgs) < 2*each || len(ackIDs) < each {
			f := c.next(5 * time.Second)
			switch f.Type {
			case typeMessage:
				if f.ID == "" || f.At.IsZero() || f.UserID == "" {
					t.Fatalf("incomplete message frame %s", f.raw)
				}
				msgs = append(msgs, f)
			case typeAck:
				ackIDs = append(ackIDs, f.ID)
			default:
				t.Fatalf("%s: unexpected frame %s", c.name, f.raw)
			}
		}
		seen[c] = msgs
		// The acks name this client's messages, in order.
		var mine []string
		for _, m := range msgs {
			if m.Handle == c.user() {
				mine = append(mine, m.ID)
			}
		}
		if !slices.Equal(mine, ackIDs) {
			t.Errorf("%s: acks %v, own messages %v", c.name, ackIDs, mine)
		}
	}
	ids := func(fs []inFrame) (out []string) {
		for _, f := range fs {
			out = append(out, f.ID)
		}
		return out
	}
	if !slices.Equal(ids(seen[a]), ids(seen[b])) {
		t.Fatalf("clients saw different orders:\n%v\n%v", ids(seen[a]), ids(seen[b]))
	}
	for _, c := range []*client{a, b} {
		n := 0
		for _, m := range seen[a] {
			if m.Handle == c.user() {
				if want := fmt.Sprintf("%s %d", c.name, n); m.Text != want {
					t.Errorf("got %q, want %q", m.Text, want)
				}
				n++
			}
		}
	}
	// The history holds the same messages in the same order.
	hist, err := th.History(ctxT(t), testRoom("r1"), 100)
	if err != nil {
		t.Fatal(err)
	}
	var histIDs []string
	for _, m := range hist {
		histIDs = append(histIDs, m.ID)
	}
	if !slices.Equal(histIDs, ids(seen[a])) {
		t.Fatalf("history order %v differs from live order %v", histIDs, ids(seen[a]))
	}
}

func (c *client) user() string { return c.name[:strings.IndexByte(c.name, '@')] }

func TestHistoryOnJoin(t *testing.T) {
	e := newEnv(t)
	th := e.hub("n1", func(c *Config) { c.RateLimit = 1000 })
	room := testRoom("r1")
	p := dial(t, th, "r1", alice.ID)
	var ids []string
	for i := range 55 {
		ids = append(ids, p.mustPost(fmt.Sprintf("m%02d", i)).ID)
	}
	if err := th.DeleteMessage(ctxT(t), room, mod, ids[52]); err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := 4; i < 55; i++ {
		if i != 52 {
			want = append(want, fmt.Sprintf("m%02d", i))
		}
	}
	texts := func(ms []Message) (out []string) {
		for _, m := range ms {
			out = append(out, m.Text)
		}
		return out
	}
	check := func(how string) {
		t.Helper()
		c := dialRaw(t, th, "r1", "", nil)
		f := c.next(5 * time.Second)
		if f.Type != typeHistory {
			t.Fatalf("%s: first frame %s", how, f.raw)
		}
		if got := texts(f.Messages); !slices.Equal(got, want) {
			t.Fatalf("%s: history\n got %v\nwant %v", how, got, want)
		}
		for _, m := range f.Messages {
			if m.Type != typeMessage || m.ID == "" || m.UserID != alice.ID || m.Handle != alice.Handle || m.At.IsZero() {
				t.Fatalf("%s: incomplete history entry %+v", how, m)
			}
		}
		if v := c.next(5 * time.Second); v.Type != typeViewers {
			t.Fatalf("%s: second frame %s", how, v.raw)
		}
		_ = c.ws.Close()
	}
	check("room in memory")
	hist, err := th.History(ctxT(t), room, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := texts(hist); !slices.Equal(got, want) {
		t.Fatalf("History\n got %v\nwant %v", got, want)
	}
	// Everyone leaves; the room is loaded from MongoDB again on the next join.
	_ = p.ws.Close()
	testenv.Eventually(t, 5*time.Second, func() (bool, string) {
		return th.Stats().Rooms == 0, fmt.Sprintf("%d rooms", th.Stats().Rooms)
	})
	check("room loaded from MongoDB")
}

func TestBanTimeoutUnban(t *testing.T) {
	e := newEnv(t)
	th := e.hub("n1", func(c *Config) { c.RateLimit = 100 })
	room := testRoom("r1")
	ctx := ctxT(t)
	tr := dial(t, th, "r1", troll.ID)
	watcher := dial(t, th, "r1", alice.ID)
	tr.mustPost("hello")

	// Who may do what.
	if err := th.Ban(ctx, room, alice, troll, ""); !errors.Is(err, ErrForbidden) {
		t.Fatalf("user bans: %v, want ErrForbidden", err)
	}
	if err := th.Ban(ctx, room, mod, owner, ""); !errors.Is(err, ErrForbidden) {
		t.Fatalf("moderator bans owner: %v, want ErrForbidden", err)
	}
	if err := th.Timeout(ctx, room, mod, admin, time.Minute, ""); !errors.Is(err, ErrForbidden) {
		t.Fatalf("moderator times out admin: %v, want ErrForbidden", err)
	}
	if err := th.Timeout(ctx, room, mod, troll, -time.Second, ""); !errors.Is(err, ErrInvalid) {
		t.Fatalf("negative timeout: %v, want ErrInvalid", err)
	}

	if err := th.Ban(ctx, room, mod, troll, "spam"); err != nil {
		t.Fatal(err)
	}
	f := watcher.waitType(typeUserBanned)
	if f.UserID != troll.ID || f.Reason != "spam" {
		t.Fatalf("ban frame %s", f.raw)
	}
	tr.expectError("still here", codeBanned)
	if err := th.Unban(ctx, room, owner, troll); err != nil {
		t.Fatal(err)
	}
	watcher.waitType(typeUserUnbanned)
	tr.mustPost("back again")

	if err := th.Timeout(ctx, room, admin, troll, 700*time.Millisecond, "cool down"); err != nil {
		t.Fatal(err)
	}
	f = watcher.waitType(typeUserTimeout)
	if f.UserID != troll.ID || f.DurationMS != 700 || f.Reason != "cool down" {
		t.Fatalf("timeout frame %s", f.raw)
	}
	f = tr.expectError("too soon", codeTimedOut)
	if f.RetryAfterMS <= 0 || f.RetryAfterMS > 700 {
		t.Fatalf("timed_out retry_after_ms %d", f.RetryAfterMS)
	}
	testenv.Eventually(t, 5*time.Second, func() (bool, string) {
		f := tr.post("after the timeout")
		return f.Type == typeAck, string(f.raw)
	})

	// The moderation log has every action, newest first.
	log, err := th.ModerationLog(ctx, room, owner, 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range log {
		got = append(got, string(a.Action)+":"+a.ActorID+">"+a.TargetID)
	}
	want := []string{"timeout:admin>troll", "unban:owner>troll", "ban:mod>troll"}
	if !slices.Equal(got, want) {
		t.Fatalf("moderation log %v, want %v", got, want)
	}
	if a := log[0]; a.Duration != 700*time.Millisecond || a.Reason != "cool down" || a.At.IsZero() || a.ID == "" || a.TargetHandle != troll.Handle {
		t.Fatalf("timeout entry %+v", a)
	}
	if a := log[2]; a.Reason != "spam" || a.ActorHandle != mod.Handle {
		t.Fatalf("ban entry %+v", a)
	}
}

func TestBanIsLoadedOnJoin(t *testing.T) {
	e := newEnv(t)
	th := e.hub("n1", nil)
	ctx := ctxT(t)
	// Banned while nobody is in the room on this node: the ban comes from MongoDB when
	// the room is loaded.
	if err := th.Ban(ctx, testRoom("r1"), owner, troll, ""); err != nil {
		t.Fatal(err)
	}
	if err := th.Timeout(ctx, testRoom("r1"), owner, bob, time.Hour, ""); err != nil {
		t.Fatal(err)
	}
	dial(t, th, "r1", troll.ID).expectError("hi", codeBanned)
	f := dial(t, th, "r1", bob.ID).expectError("hi", codeTimedOut)
	if f.RetryAfterMS < 3500_000 {
		t.Fatalf("retry_after_ms %d", f.RetryAfterMS)
	}
	dial(t, th, "r1", alice.ID).mustPost("hi")
}

func TestDeleteForEveryone(t *testing.T) {
	e := newEnv(t)
	th := e.hub("n1", nil)
	room := testRoom("r1")
	ctx := ctxT(t)
	a := dial(t, th, "r1", alice.ID)
	b := dial(t, th, "r1", bob.ID)
	keep := a.mustPost("keep me")
	gone := a.mustPost("delete me")
	b.waitFor(5*time.Second, "message", func(f inFrame) bool { return f.ID == gone.ID })

	if err := th.DeleteMessage(ctx, room, alice, gone.ID); !errors.Is(err, ErrForbidden) {
		t.Fatalf("user deletes: %v", err)
	}
	if err := th.DeleteMessage(ctx, testRoom("other"), mod, gone.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete in another room: %v", err)
	}
	if err := th.DeleteMessage(ctx, room, mod, "nonsense"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete bad id: %v", err)
	}
	if err := th.DeleteMessage(ctx, room, mod, gone.ID); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client{a, b} {
		if f := c.waitType(typeDeleted); f.ID != gone.ID {
			t.Fatalf("%s: deleted frame %s", c.name, f.raw)
		}
	}
	if err := th.DeleteMessage(ctx, room, mod, gone.ID); err != nil {
		t.Fatalf("deleting again: %v", err)
	}
	a.nothingBefore(th, "r1") // no second "deleted"

	hist, err := th.History(ctx, room, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 1 || hist[0].ID != keep.ID {
		t.Fatalf("history after delete: %+v", hist)
	}
	c := dialRaw(t, th, "r1", "", nil)
	if f := c.next(5 * time.Second); len(f.Messages) != 1 || f.Messages[0].ID != keep.ID {
		t.Fatalf("join history after delete: %s", f.raw)
	}
	log, err := th.ModerationLog(ctx, room, owner, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 1 || log[0].Action != ActionDelete || log[0].MessageID != gone.ID || log[0].TargetID != alice.ID {
		t.Fatalf("moderation log %+v", log)
	}
}

func TestRateLimit(t *testing.T) {
	e := newEnv(t)
	th := e.hub("n1", func(c *Config) { c.RateLimit, c.RatePer = 3, 1500*time.Millisecond })
	a := dial(t, th, "r1", alice.ID)
	for i := range 3 {
		a.mustPost(fmt.Sprint(i))
	}
	f := a.expectError("one too many", codeRateLimited)
	if f.RetryAfterMS <= 0 || f.RetryAfterMS > 1500 {
		t.Fatalf("retry_after_ms %d", f.RetryAfterMS)
	}
	// Another user is not affected; the limited one can post again once the window moved.
	dial(t, th, "r1", bob.ID).mustPost("me too")
	testenv.Eventually(t, 5*time.Second, func() (bool, string) {
		f := a.post("again")
		return f.Type == typeAck, string(f.raw)
	})
}

func TestSlowMode(t *testing.T) {
	e := newEnv(t)
	th := e.hub("n1", nil)
	room := testRoom("r1")
	ctx := ctxT(t)
	a := dial(t, th, "r1", alice.ID)
	m := dial(t, th, "r1", mod.ID)
	if err := th.SetSlowMode(ctx, room, alice, time.Second); !errors.Is(err, ErrForbidden) {
		t.Fatalf("user sets slow mode: %v", err)
	}
	if err := th.SetSlowMode(ctx, room, owner, 2*time.Hour); !errors.Is(err, ErrInvalid) {
		t.Fatalf("slow mode of 2h: %v", err)
	}
	if err := th.SetSlowMode(ctx, room, owner, 800*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if f := a.waitType(typeSlowMode); f.IntervalMS != 800 {
		t.Fatalf("slow_mode frame %s", f.raw)
	}
	a.mustPost("first")
	f := a.expectError("second", codeSlowMode)
	if f.RetryAfterMS <= 0 || f.RetryAfterMS > 800 {
		t.Fatalf("retry_after_ms %d", f.RetryAfterMS)
	}
	// Moderators are exempt.
	m.mustPost("mod 1")
	m.mustPost("mod 2")
	testenv.Eventually(t, 5*time.Second, func() (bool, string) {
		f := a.post("later")
		return f.Type == typeAck, string(f.raw)
	})
	// A new socket learns the slow mode on join.
	c := dialRaw(t, th, "r1", "", nil)
	if f := c.next(5 * time.Second); f.SlowModeMS != 800 {
		t.Fatalf("history frame slow_mode_ms: %s", f.raw)
	}
	// The owner's slow mode is the owner's to lift (see TestModerationRanks).
	if err := th.SetSlowMode(ctx, room, mod, 0); !errors.Is(err, ErrForbidden) {
		t.Fatalf("moderator lifts the owner's slow mode: %v", err)
	}
	if err := th.SetSlowMode(ctx, room, owner, 0); err != nil {
		t.Fatal(err)
	}
	a.waitType(typeSlowMode)
	a.mustPost("free 1")
	a.mustPost("free 2")
}

func TestAnonymousReadsOnly(t *testing.T) {
	e := newEnv(t)
	th := e.hub("n1", nil)
	anon := dial(t, th, "r1", "")
	anon.expectError("hello", codeUnauthorized)
	a := dial(t, th, "r1", alice.ID)
	sent := a.mustPost("for everyone")
	if f := anon.waitType(typeMessage); f.ID != sent.ID {
		t.Fatalf("anonymous got %s", f.raw)
	}
}

func TestTextIsText(t *testing.T) {
	e := newEnv(t)
	th := e.hub("n1", func(c *Config) { c.RateLimit = 100 })
	a := dial(t, th, "r1", alice.ID)
	b := dial(t, th, "r1", bob.ID)

	const html = `<img src=x onerror=alert(1)><script>alert(1)</script> & "quotes" 'too'`
	ack := a.mustPost(html)
	f := b.waitType(typeMessage)
	if f.Text != html || f.ID != ack.ID {
		t.Fatalf("html came back as %q", f.Text)
	}
	if !strings.Contains(string(f.raw), `<img src=x onerror=alert(1)><script>alert(1)</script>`) {
		t.Fatalf("frame escapes the text: %s", f.raw)
	}
	hist, err := th.History(ctxT(t), testRoom("r1"), 1)
	if err != nil || len(hist) != 1 || hist[0].Text != html {
		t.Fatalf("history %+v %v", hist, err)
	}

	a.mustPost("  a\x00b\tc\r\nd\u202ee\u2066f\u0085g\x7fh\nline  ")
	if f := b.waitType(typeMessage); f.Text != "abc\ndefgh\nline" {
		t.Fatalf("cleaned text %q", f.Text)
	}
	a.expectError(" \x00\t\u202e ", codeInvalid)
	a.expectError(strings.Repeat("x", 501), codeTooLong)
	long := strings.Repeat("é", 500) // 500 runes, 1000 bytes
	a.mustPost(long)
	if f := b.waitType(typeMessage); f.Text != long {
		t.Fatal("500 runes did not come back")
	}
}

func TestCleanText(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                  "plain",
		"  trim\n ":              "trim",
		"keep\nnewline":          "keep\nnewline",
		"tab\there":              "tabhere",
		"nul\x00 bell\a esc\x1b": "nul bell esc",
		"c1\u0080\u009f end":     "c1 end",
		"bidi\u202aa\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069": "bidia",
		"bad utf8 \xff":               "bad utf8 \ufffd",
		"<b>html</b>":                 "<b>html</b>",
		"emoji 🎉 and zero\u200bwidth": "emoji 🎉 and zero\u200bwidth",
		"\r\n\r\n":                    "",
	} {
		if got := cleanText(in); got != want {
			t.Errorf("cleanText(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMalformedFrames(t *testing.T) {
	e := newEnv(t)
	th := e.hub("n1", nil)
	a := dial(t, th, "r1", alice.ID)
	for _, bad := range []string{
		`not json`,
		`{"type":"message","text":"x","extra":1}`,
		`{"type":"shout","text":"x"}`,
		`{"type":"message"}`,
		`{"type":"message","text":42}`,
		`{"type":"message","text":"x"} {"type":"message","text":"y"}`,
		`[1,2,3]`,
		`{"type":"message","text":"x","nonce":"` + strings.Repeat("n", 65) + `"}`,
	} {
		a.sendRaw(websocket.TextMessage, []byte(bad))
		if f := a.next(5 * time.Second); f.Type != typeError || f.Code != codeBadRequest {
			t.Fatalf("%s: got %s", bad, f.raw)
		}
	}
	a.sendRaw(websocket.BinaryMessage, []byte(`{"type":"message","text":"x"}`))
	if f := a.next(5 * time.Second); f.Type != typeError || f.Code != codeBadRequest {
		t.Fatalf("binary: got %s", f.raw)
	}
	// Unknown type echoes the nonce; the socket is still usable.
	a.sendJSON(map[string]string{"type": "shout", "nonce": "n1"})
	if f := a.next(5 * time.Second); f.Code != codeBadRequest || f.Nonce != "n1" {
		t.Fatalf("got %s", f.raw)
	}
	a.mustPost("still here")
}

func TestFrameAboveReadLimitClosesSocket(t *testing.T) {
	e := newEnv(t)
	th := e.hub("n1", nil)
	a := dial(t, th, "r1", alice.ID)
	a.sendJSON(map[string]string{"type": "message", "text": strings.Repeat("x", 5000)})
	err := a.closed(5 * time.Second)
	if !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
		t.Fatalf("read error %v, want close 1009", err)
	}
	testenv.Eventually(t, 5*time.Second, func() (bool, string) {
		return th.Sockets() == 0, fmt.Sprintf("%d sockets", th.Sockets())
	})
}

func TestSlowReaderIsClosed(t *testing.T) {
	e := newEnv(t)
	th := e.hub("n1", func(c *Config) { c.SendQueue = 4 })
	fast := dial(t, th, "r1", alice.ID)
	// The slow client reads its join frames, then nothing: frames pile up in the TCP
	// buffers, then in its queue.
	slow, _, err := websocket.DefaultDialer.Dial(wsURL(th, "r1", bob.ID), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	for range 2 {
		if _, _, err := slow.ReadMessage(); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 5*time.Second, func() (bool, string) {
		return th.Sockets() == 2, fmt.Sprintf("%d sockets", th.Sockets())
	})

	r := th.lookup("r1")
	big := strings.Repeat("x", 32<<10)
	start := time.Now()
	sent := 0
	for th.Stats().SlowClosed == 0 {
		if sent == 5000 {
			t.Fatal("the slow reader was never closed")
		}
		r.publish(marshal(Message{Type: typeSystem, ID: fmt.Sprint(sent), Text: big}), nil)
		sent++
		// The fast client keeps up; the hub never waits for the slow one.
		f := fast.next(5 * time.Second)
		if f.ID != fmt.Sprint(sent-1) {
			t.Fatalf("fast client got %q, want %d", f.ID, sent-1)
		}
	}
	t.Logf("slow reader closed after %d frames of 32 KiB in %s", sent, time.Since(start).Round(time.Millisecond))
	testenv.Eventually(t, 5*time.Second, func() (bool, string) {
		return th.Sockets() == 1, fmt.Sprintf("%d sockets", th.Sockets())
	})
	if s := th.Stats(); s.SlowClosed != 1 || s.MessagesDropped == 0 {
		t.Fatalf("stats %+v", s)
	}
	// The slow client finds its socket closed: with 1013 if the close frame got through,
	// else (the usual case, its buffers being full) without a close frame.
	_ = slow.SetReadDeadline(time.Now().Add(10 * time.Second))
	for err == nil {
		_, _, err = slow.ReadMessage()
	}
	var ce *websocket.CloseError
	switch {
	case errors.As(err, &ce):
		if ce.Code != websocket.CloseTryAgainLater && ce.Code != websocket.CloseAbnormalClosure {
			t.Fatalf("close code %d, want 1013 (or 1006 when the close frame could not be sent)", ce.Code)
		}
	case errors.Is(err, os.ErrDeadlineExceeded):
		t.Fatal("the slow client's socket is still open")
	}
	fast.mustPost("unaffected")
}

func TestOriginCheck(t *testing.T) {
	e := newEnv(t)
	th := e.hub("n1", nil)
	h := http.Header{"Origin": {"https://evil.example"}}
	_, resp, err := websocket.DefaultDialer.Dial(wsURL(th, "r1", alice.ID), h)
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign origin: err %v, resp %v", err, resp)
	}
	h = http.Header{"Origin": {th.srv.URL}}
	ws, _, err := websocket.DefaultDialer.Dial(wsURL(th, "r1", alice.ID), h)
	if err != nil {
		t.Fatalf("same origin refused: %v", err)
	}
	ws.Close()

	// A custom check.
	th2 := e.hub("n2", func(c *Config) {
		c.CheckOrigin = func(r *http.Request) bool { return r.Header.Get("Origin") == "https://app.example" }
	})
	_, resp, err = websocket.DefaultDialer.Dial(wsURL(th2, "r1", ""), http.Header{"Origin": {th2.srv.URL}})
	if err == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("custom check let %s in", th2.srv.URL)
	}
	ws, _, err = websocket.DefaultDialer.Dial(wsURL(th2, "r1", ""), http.Header{"Origin": {"https://app.example"}})
	if err != nil {
		t.Fatalf("custom check refused its origin: %v", err)
	}
	ws.Close()
}

func TestViewersAndSystem(t *testing.T) {
	e := newEnv(t)
	th := e.hub("n1", nil)
	room := testRoom("r1")
	th.SetViewerCounts(map[string]int{room.Slug: 7, "slug-r2": 3}) // before anyone joined
	c := dialRaw(t, th, "r1", "", nil)
	c.next(5 * time.Second)
	if f := c.next(5 * time.Second); f.Type != typeViewers || f.Count != 7 {
		t.Fatalf("join viewers %s", f.raw)
	}
	th.SetViewerCounts(map[string]int{room.Slug: 7, "slug-r2": 4})
	th.SetViewerCounts(map[string]int{room.Slug: 9})
	if f := c.next(5 * time.Second); f.Type != typeViewers || f.Count != 9 {
		t.Fatalf("viewers %s", f.raw) // and no frame for the unchanged 7
	}
	th.SetViewerCounts(nil) // the room has no viewers any more
	if f := c.next(5 * time.Second); f.Type != typeViewers || f.Count != 0 {
		t.Fatalf("viewers %s", f.raw)
	}
	if err := th.System(ctxT(t), room, "went live"); err != nil {
		t.Fatal(err)
	}
	if f := c.next(5 * time.Second); f.Type != typeSystem || f.Text != "went live" || f.ID == "" {
		t.Fatalf("system %s", f.raw)
	}
	if err := th.System(ctxT(t), room, " \x00 "); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty system message: %v", err)
	}
	hist, err := th.History(ctxT(t), room, 0)
	if err != nil || len(hist) != 1 || hist[0].Type != typeSystem {
		t.Fatalf("history %+v %v", hist, err)
	}
}

func TestShutdownClosesSocketsGoingAway(t *testing.T) {
	e := newEnv(t)
	th := e.hub("n1", nil)
	a := dial(t, th, "r1", alice.ID)
	th.stop(t)
	th.done = make(chan error, 1) // for the cleanup's stop
	th.done <- nil
	err := a.closed(5 * time.Second)
	if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Fatalf("close %v, want 1001", err)
	}
	_, resp, err := websocket.DefaultDialer.Dial(wsURL(th, "r1", alice.ID), nil)
	if err == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("join after shutdown: %v", err)
	}
}

func TestPingKeepsReadersAndDropsTheSilent(t *testing.T) {
	e := newEnv(t)
	th := e.hub("n1", func(c *Config) { c.PingInterval, c.PongTimeout = 150*time.Millisecond, 150*time.Millisecond })
	a := dial(t, th, "r1", alice.ID) // its reader answers pings
	silent, _, err := websocket.DefaultDialer.Dial(wsURL(th, "r1", bob.ID), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	// The silent client reads nothing, so it never sees a ping nor answers one.
	testenv.Eventually(t, 5*time.Second, func() (bool, string) {
		return th.Sockets() == 1, fmt.Sprintf("%d sockets", th.Sockets())
	})
	time.Sleep(600 * time.Millisecond) // several ping intervals
	if th.Sockets() != 1 {
		t.Fatalf("%d sockets, want the answering one", th.Sockets())
	}
	a.mustPost("still connected")
}

func TestEnsureIndexes(t *testing.T) {
	e := newEnv(t)
	h, err := New(Config{DB: e.db, NodeID: "a"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	for range 2 { // idempotent
		if err := h.EnsureIndexes(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// An event log that is not capped cannot be tailed: refuse it clearly.
	other := e.client.Database(e.db.Name() + "_x")
	if _, err := other.Collection(collEvents).InsertOne(ctx, map[string]string{"type": "oops"}); err != nil {
		t.Fatal(err)
	}
	h2, err := New(Config{DB: e.db, NodeID: "a", EventDB: other})
	if err != nil {
		t.Fatal(err)
	}
	if err := h2.EnsureIndexes(ctx); err == nil || !strings.Contains(err.Error(), "not a capped collection") {
		t.Fatalf("EnsureIndexes with an uncapped event log: %v", err)
	}
	if _, err := New(Config{}); err == nil {
		t.Fatal("New without DB")
	}
	if _, err := New(Config{DB: e.db, NodeID: "a", SendQueue: 1}); err == nil {
		t.Fatal("New with SendQueue 1")
	}
}

func TestTLSSockets(t *testing.T) {
	// Chat over TLS: what a socket's writer sends goes through the TLS connection.
	e := newEnv(t)
	th := e.hub("n1", nil)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u := &User{ID: r.URL.Query().Get("user"), Handle: r.URL.Query().Get("user")}
		th.ServeWS(w, r, testRoom("r1"), u)
	}))
	defer srv.Close()
	d := &websocket.Dialer{TLSClientConfig: srv.Client().Transport.(*http.Transport).TLSClientConfig}
	url := "wss" + strings.TrimPrefix(srv.URL, "https") + "/ws?user="
	var cs []*websocket.Conn
	for _, u := range []string{alice.ID, bob.ID} {
		ws, _, err := d.Dial(url+u, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		for range 2 { // history, viewers
			if _, _, err := ws.ReadMessage(); err != nil {
				t.Fatal(err)
			}
		}
		cs = append(cs, ws)
	}
	if err := cs[0].WriteJSON(map[string]string{"type": "message", "text": "over tls", "nonce": "1"}); err != nil {
		t.Fatal(err)
	}
	var f inFrame
	for _, ws := range cs {
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		for f.Type != typeMessage {
			if err := ws.ReadJSON(&f); err != nil {
				t.Fatal(err)
			}
		}
		if f.Text != "over tls" {
			t.Fatalf("got %+v", f)
		}
		f = inFrame{}
	}
}

func TestActionJSON(t *testing.T) {
	b, err := json.Marshal(Action{ID: "x", Action: "timeout", ActorID: "mod", Duration: 90 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"duration_ms":90000`) || strings.Count(string(b), "duration_ms") != 1 {
		t.Fatalf("%s", b)
	}
}

// TestDBErrors: a MongoDB error says whether MongoDB was away (ErrUnavailable: retry) or
// refused the request (neither ErrUnavailable nor hidden: a retry does not help).
func TestDBErrors(t *testing.T) {
	for _, tc := range []struct {
		name        string
		err         error
		unavailable bool
	}{
		{"deadline", context.DeadlineExceeded, true},
		{"network", mongo.CommandError{Code: 6, Message: "host unreachable", Labels: []string{"NetworkError"}}, true},
		{"not primary", mongo.CommandError{Code: 10107, Message: "not primary"}, true},
		{"bad request", mongo.CommandError{Code: 2, Message: "BadValue"}, false},
		{"duplicate key", mongo.WriteException{WriteErrors: []mongo.WriteError{{Code: 11000, Message: "E11000"}}}, false},
	} {
		err := dbError("read history", tc.err)
		if errors.Is(err, ErrUnavailable) != tc.unavailable || !strings.HasSuffix(err.Error(), tc.err.Error()) {
			t.Errorf("%s: %v (unavailable %v), want unavailable %v, wrapping the driver's error", tc.name, err, errors.Is(err, ErrUnavailable), tc.unavailable)
		}
	}
}

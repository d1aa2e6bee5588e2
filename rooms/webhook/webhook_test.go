package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"onair/rooms/audit"
	"onair/scripts/testenv"
)

func TestSignature(t *testing.T) {
	body := []byte(`{"id":"evt_1","type":"stream.started"}`)
	now := time.Unix(1735787045, 0)
	valid := Sign(testSecret, now, body)
	if !strings.HasPrefix(valid, "t=1735787045,v1=") || len(valid) != len("t=1735787045,v1=")+64 {
		t.Fatalf("header = %q", valid)
	}
	tests := []struct {
		name    string
		secret  string
		header  string
		body    []byte
		now     time.Time
		wantErr bool
	}{
		{name: "round trip", secret: testSecret, header: valid, body: body, now: now},
		{name: "within tolerance", secret: testSecret, header: valid, body: body, now: now.Add(4 * time.Minute)},
		{name: "key rotation: second v1 matches", secret: testSecret,
			header: Sign("whsec_old", now, body) + "," + strings.Split(valid, ",")[1], body: body, now: now},
		{name: "body changed", secret: testSecret, header: valid, body: []byte(`{"id":"evt_2","type":"stream.started"}`), now: now, wantErr: true},
		{name: "body with a trailing newline", secret: testSecret, header: valid, body: append(body, '\n'), now: now, wantErr: true},
		{name: "wrong secret", secret: "whsec_other", header: valid, body: body, now: now, wantErr: true},
		{name: "replayed later", secret: testSecret, header: valid, body: body, now: now.Add(6 * time.Minute), wantErr: true},
		{name: "from the future", secret: testSecret, header: valid, body: body, now: now.Add(-6 * time.Minute), wantErr: true},
		{name: "timestamp changed", secret: testSecret, header: strings.Replace(valid, "t=1735787045", "t=1735787046", 1), body: body, now: now, wantErr: true},
		{name: "no signature", secret: testSecret, header: "t=1735787045", body: body, now: now, wantErr: true},
		{name: "empty header", secret: testSecret, header: "", body: body, now: now, wantErr: true},
		{name: "garbage", secret: testSecret, header: "t=x,v1=zz", body: body, now: now, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.secret, tt.header, tt.body, tt.now, DefaultTolerance)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Verify = %v, want error: %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrSignature) {
				t.Fatalf("error %v does not wrap ErrSignature", err)
			}
		})
	}
}

func TestSlackText(t *testing.T) {
	ev := func(typ string, data any) *event {
		b, _ := json.Marshal(data)
		return &event{id: "evt_1", typ: typ, room: roomA, data: b}
	}
	tests := []struct {
		name      string
		ev        *event
		publicURL string
		want      string
	}{
		{"started", ev(StreamStarted, map[string]any{"broadcast": map[string]any{"id": "b1"}}), "",
			"*Room &lt;A&gt; &amp; co* is live"},
		{"started with a title", ev(StreamStarted, map[string]any{"broadcast": map[string]any{"title": "Q&A <live>"}}), "",
			"*Room &lt;A&gt; &amp; co* is live: Q&amp;A &lt;live&gt;"},
		{"started with a link", ev(StreamStarted, nil), "https://live.example.com/",
			"*<https://live.example.com/watch/room-a|Room &lt;A&gt; &amp; co>* is live"},
		{"ended", ev(StreamEnded, map[string]any{"broadcast": map[string]any{"duration_ms": 754_400, "peak_viewers": 42}}), "",
			"*Room &lt;A&gt; &amp; co* stream ended after 12m34s (peak 42 viewers)"},
		{"recording", ev(RecordingReady, map[string]any{"broadcast": map[string]any{"recording": map[string]any{"size": 34_500_000, "duration_ms": 60_000}}}), "",
			"Recording of *Room &lt;A&gt; &amp; co* is ready: 1m0s, 34.5 MB"},
		{"ban", ev(ChatModeration, ModerationData{Action: "ban", Actor: UserRef{Handle: "mod"}, User: &UserRef{Handle: "troll"}, Reason: "spam <links>"}), "",
			"@mod banned @troll in *Room &lt;A&gt; &amp; co*: spam &lt;links&gt;"},
		{"timeout", ev(ChatModeration, ModerationData{Action: "timeout", Actor: UserRef{Handle: "mod"}, User: &UserRef{Handle: "troll"}, DurationMS: 600_000}), "",
			"@mod timed out @troll for 10m0s in *Room &lt;A&gt; &amp; co*"},
		{"delete", ev(ChatModeration, ModerationData{Action: "delete", Actor: UserRef{Handle: "mod"}, User: &UserRef{Handle: "troll"}, MessageID: "m1"}), "",
			"@mod deleted a message by @troll in *Room &lt;A&gt; &amp; co*"},
		{"unban", ev(ChatModeration, ModerationData{Action: "unban", Actor: UserRef{Handle: "mod"}, User: &UserRef{Handle: "troll"}}), "",
			"@mod unbanned @troll in *Room &lt;A&gt; &amp; co*"},
		{"slow mode", ev(ChatModeration, ModerationData{Action: "slow_mode", Actor: UserRef{Handle: "mod"}, DurationMS: 30_000}), "",
			"@mod set slow mode to 30s in *Room &lt;A&gt; &amp; co*"},
		{"slow mode off", ev(ChatModeration, ModerationData{Action: "slow_mode", Actor: UserRef{Handle: "mod"}}), "",
			"@mod turned slow mode off in *Room &lt;A&gt; &amp; co*"},
		{"purge", ev(ChatModeration, ModerationData{Action: "purge", Actor: UserRef{Handle: "mod"}, User: &UserRef{Handle: "troll"}, Count: 7}), "",
			"@mod deleted 7 recent messages by @troll in *Room &lt;A&gt; &amp; co*"},
		{"recording failed", ev(RecordingFailed, RecordingFailedData{Reason: "disk full"}), "",
			"Recording of *Room &lt;A&gt; &amp; co* failed: disk full"},
		{"recording cut", ev(RecordingFailed, RecordingFailedData{Reason: "disk full", Partial: true}), "",
			"Recording of *Room &lt;A&gt; &amp; co* stopped early: disk full; what was recorded is kept"},
		{"clip", ev(ClipCreated, ClipData{Clip: Clip{Title: "the <goal>", CreatedBy: UserRef{Handle: "fan"}}}), "",
			"@fan clipped *Room &lt;A&gt; &amp; co*: the &lt;goal&gt;"},
		{"room created", ev(RoomCreated, RoomData{Owner: UserRef{ID: "u1", Handle: "ann"}, Actor: UserRef{ID: "u1", Handle: "ann"}}), "",
			"@ann created *Room &lt;A&gt; &amp; co*"},
		{"room taken down", ev(RoomDeleted, RoomData{Owner: UserRef{ID: "u1", Handle: "ann"}, Actor: UserRef{ID: "u9", Handle: "root"}}), "",
			"@root took down *Room &lt;A&gt; &amp; co* of @ann"},
		{"test", ev(TestEvent, TestData{}), "",
			"Test event for *Room &lt;A&gt; &amp; co* from onair: this webhook works"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := slackText(tt.ev, tt.publicURL); got != tt.want {
				t.Fatalf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

// A room webhook in the Slack format gets {"text": ...} with a readable line, signed.
func TestSlackDelivery(t *testing.T) {
	e := newEnv(t)
	rcv := newReceiver(t, "", nil)
	d := e.dispatcher("n1", nil)
	hook, secret, err := d.CreateWebhook(ctxT(t), audit.Actor{ID: "u1", Handle: "ann"}, roomA,
		NewWebhook{URL: rcv.URL + "/slack", Format: FormatSlack, Events: []string{StreamStarted}})
	if err != nil {
		t.Fatal(err)
	}
	rcv.setSecret(secret)
	publish(t, d, ChatModeration, roomA, ModerationData{Action: "ban"}) // not subscribed
	publish(t, d, StreamStarted, roomA, map[string]any{"broadcast": map[string]any{"id": "b1"}})
	// The events are stored in the order published: once the second is delivered, the
	// first has been passed over.
	log := settled(t, DeliveryQuery{RoomID: roomA.ID}, 1, d)
	hits := rcv.all()
	if len(hits) != 1 || log[0].Type != StreamStarted || log[0].Status != StatusDelivered || log[0].Attempts != 1 {
		t.Fatalf("%d requests, delivery log %+v; want only the subscribed event, once", len(hits), log)
	}
	h := hits[0]
	var body map[string]string
	if err := json.Unmarshal(h.Body, &body); err != nil || len(body) != 1 || body["text"] != "*Room &lt;A&gt; &amp; co* is live" {
		t.Fatalf("slack body = %s (%v)", h.Body, err)
	}
	if h.Signature != nil || h.Header.Get(EventHeader) != StreamStarted || h.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("headers %v, signature: %v", h.Header, h.Signature)
	}
	if log[0].WebhookID != hook.ID || log[0].Format != FormatSlack {
		t.Fatalf("delivery = %+v", log[0])
	}
}

// A failing receiver is retried with growing waits until it recovers; the delivery log
// tells each step.
func TestRetriesWithBackoff(t *testing.T) {
	e := newEnv(t)
	rcv := newReceiver(t, testSecret, func(_ hit, n int) int {
		if n < 4 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	d := e.dispatcher("n1", func(c *Config) {
		c.Global = Endpoint{URL: rcv.URL, Secret: testSecret}
		c.BackoffMin, c.BackoffMax = 50*time.Millisecond, 400*time.Millisecond
	})
	id := publish(t, d, StreamStarted, roomA, map[string]any{"broadcast": map[string]any{"id": "b1"}})
	testenv.Eventually(t, 10*time.Second, func() (bool, string) {
		return len(rcv.delivered()) == 1, fmt.Sprintf("%d requests", len(rcv.all()))
	})
	hits := rcv.all()
	if len(hits) != 5 {
		t.Fatalf("%d requests, want 5 (4 failures, then success)", len(hits))
	}
	for i, h := range hits {
		if h.Signature != nil {
			t.Fatalf("request %d: %v", i, h.Signature)
		}
		if h.Event.ID != id || h.Header.Get(EventIDHeader) != id || h.Header.Get(DeliveryHeader) != hits[0].Header.Get(DeliveryHeader) {
			t.Fatalf("request %d is not the same event and delivery: %s %v", i, h.Body, h.Header)
		}
		if i > 0 && string(h.Body) != string(hits[0].Body) {
			t.Fatalf("request %d has another body:\n%s\n%s", i, h.Body, hits[0].Body)
		}
	}
	// Waits double from 50 ms (±20 %): about 50, 100, 200, 400 ms.
	for i, want := range []time.Duration{50, 100, 200, 400} {
		want *= time.Millisecond
		got := hits[i+1].At.Sub(hits[i].At)
		if got < want*3/4 || got > want*2+300*time.Millisecond {
			t.Errorf("wait before attempt %d: %s, want about %s", i+2, got, want)
		}
	}
	var page DeliveryPage
	testenv.Eventually(t, 5*time.Second, func() (bool, string) {
		var err error
		page, err = d.Deliveries(ctxT(t), DeliveryQuery{WebhookID: GlobalID, Bodies: true})
		return err == nil && len(page.Deliveries) == 1 && page.Deliveries[0].Status == StatusDelivered, fmt.Sprintf("%+v %v", page, err)
	})
	dl := page.Deliveries[0]
	if dl.Attempts != 5 || dl.LastStatus != 200 || dl.LastError != "" || dl.EventID != id || dl.Type != StreamStarted ||
		dl.RoomID != roomA.ID || dl.RoomSlug != roomA.Slug || dl.Node != "n1" || dl.Done == nil || dl.LastAttempt == nil ||
		dl.NextAttempt != nil || string(dl.Body) != string(hits[0].Body) {
		t.Fatalf("delivery log entry = %+v", dl)
	}
	if st := d.Stats(); st.Delivered != 1 || st.Failed != 0 || st.Pending != 0 {
		t.Fatalf("stats = %+v", st)
	}
}

// Deliveries that never succeed are given up after GiveUpAfter and marked failed, with
// the last answer in the log; a later event of the room then goes out.
func TestGiveUpAndDeliveryLog(t *testing.T) {
	e := newEnv(t)
	rcv := newReceiver(t, testSecret, func(h hit, _ int) int {
		if h.Event.Type == StreamStarted {
			return http.StatusServiceUnavailable
		}
		return http.StatusAccepted
	})
	d := e.dispatcher("n1", func(c *Config) {
		c.Global = Endpoint{URL: rcv.URL, Secret: testSecret}
		c.GiveUpAfter = 400 * time.Millisecond
	})
	publish(t, d, StreamStarted, roomA, nil)
	publish(t, d, StreamEnded, roomA, nil)
	testenv.Eventually(t, 10*time.Second, func() (bool, string) {
		return len(rcv.delivered()) == 1, fmt.Sprintf("%d requests", len(rcv.all()))
	})
	hits := rcv.all()
	last := hits[len(hits)-1]
	if last.Event.Type != StreamEnded || len(hits) < 3 {
		t.Fatalf("requests: %d, last %s", len(hits), last.Event.Type)
	}
	for _, h := range hits[:len(hits)-1] {
		if h.Event.Type != StreamStarted || h.At.After(last.At) {
			t.Fatal("stream.ended was sent before stream.started was given up")
		}
	}
	var page DeliveryPage
	testenv.Eventually(t, 5*time.Second, func() (bool, string) {
		var err error
		page, err = d.Deliveries(ctxT(t), DeliveryQuery{RoomID: roomA.ID})
		return err == nil && len(page.Deliveries) == 2 && page.Deliveries[0].Status == StatusDelivered, fmt.Sprintf("%+v %v", page, err)
	})
	failed, ok := page.Deliveries[1], page.Deliveries[0]
	if failed.Type != StreamStarted || failed.Status != StatusFailed || failed.Attempts != len(hits)-1 ||
		failed.LastStatus != 503 || !strings.HasPrefix(failed.LastError, "HTTP 503: receiver says no") || failed.Done == nil {
		t.Fatalf("failed delivery = %+v", failed)
	}
	if ok.Type != StreamEnded || ok.LastStatus != 202 || ok.Attempts != 1 {
		t.Fatalf("delivered = %+v", ok)
	}
	if failed.Done.Sub(failed.Queued) < 400*time.Millisecond {
		t.Fatalf("given up after %s, before GiveUpAfter", failed.Done.Sub(failed.Queued))
	}
	// Filters and pages.
	for _, tt := range []struct {
		q    DeliveryQuery
		want int
	}{
		{DeliveryQuery{Status: StatusFailed}, 1},
		{DeliveryQuery{Status: StatusDelivered, WebhookID: GlobalID}, 1},
		{DeliveryQuery{WebhookID: "665f00000000000000000000"}, 0},
		{DeliveryQuery{RoomID: roomB.ID}, 0},
	} {
		p, err := d.Deliveries(ctxT(t), tt.q)
		if err != nil || len(p.Deliveries) != tt.want {
			t.Errorf("%+v: %d deliveries, %v; want %d", tt.q, len(p.Deliveries), err, tt.want)
		}
	}
	p1, err := d.Deliveries(ctxT(t), DeliveryQuery{Limit: 1})
	if err != nil || len(p1.Deliveries) != 1 || p1.Next == "" {
		t.Fatalf("page 1: %+v %v", p1, err)
	}
	p2, err := d.Deliveries(ctxT(t), DeliveryQuery{Limit: 1, Cursor: p1.Next})
	if err != nil || len(p2.Deliveries) != 1 || p2.Next != "" || p2.Deliveries[0].ID != failed.ID {
		t.Fatalf("page 2: %+v %v", p2, err)
	}
	if _, err := d.Deliveries(ctxT(t), DeliveryQuery{Status: "lost"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad status: %v", err)
	}
	if _, err := d.Deliveries(ctxT(t), DeliveryQuery{Cursor: "nope"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad cursor: %v", err)
	}
	if st := d.Stats(); st.Failed != 1 || st.Delivered != 1 {
		t.Fatalf("stats = %+v", st)
	}
}

// Room A's events go out in order even while the first is retried; room B does not wait
// for room A.
func TestOrderPerRoomUnderRetries(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	failuresLeft := 3
	rcv := newReceiver(t, testSecret, func(h hit, _ int) int {
		mu.Lock()
		defer mu.Unlock()
		if h.Event.Room.ID == roomA.ID && failuresLeft > 0 {
			failuresLeft--
			return http.StatusBadGateway
		}
		return http.StatusOK
	})
	d := e.dispatcher("n1", func(c *Config) {
		c.Global = Endpoint{URL: rcv.URL, Secret: testSecret}
		c.BackoffMin, c.BackoffMax = 60*time.Millisecond, 120*time.Millisecond
	})
	var want []string
	for i := range 5 {
		want = append(want, publish(t, d, ChatModeration, roomA, ModerationData{Action: "ban", Reason: fmt.Sprint(i)}))
	}
	b1 := publish(t, d, StreamStarted, roomB, nil)
	testenv.Eventually(t, 10*time.Second, func() (bool, string) {
		return len(rcv.delivered()) == 6, fmt.Sprintf("%d delivered", len(rcv.delivered()))
	})
	var gotA []string
	var firstA, deliveredB time.Time
	for _, h := range rcv.all() {
		switch h.Event.Room.ID {
		case roomA.ID:
			if h.Status < 300 {
				gotA = append(gotA, h.Event.ID)
			} else if h.Event.ID != want[0] {
				t.Fatalf("a later event of room A (%s) was tried while the first was failing", h.Event.ID)
			}
			if firstA.IsZero() && h.Status < 300 {
				firstA = h.At
			}
		case roomB.ID:
			if h.Event.ID != b1 {
				t.Fatalf("unexpected event %s", h.Body)
			}
			deliveredB = h.At
		}
	}
	if !slices.Equal(gotA, want) {
		t.Fatalf("room A delivered in order %v, want %v", gotA, want)
	}
	if !deliveredB.Before(firstA) {
		t.Fatal("room B waited for room A's retries")
	}
}

// Pending deliveries survive a restart: a new Dispatcher on the same database (same node)
// delivers them, in order, with the same event ids and bodies.
func TestResumeAfterRestart(t *testing.T) {
	e := newEnv(t)
	rcv := newReceiver(t, testSecret, func(hit, int) int { return http.StatusServiceUnavailable })
	cfg := func(c *Config) {
		c.Global = Endpoint{URL: rcv.URL, Secret: testSecret}
		c.BackoffMin, c.BackoffMax = 100*time.Millisecond, 300*time.Millisecond
	}
	d1 := e.dispatcher("node-1", cfg)
	ids := publishPending(t, d1, rcv, StreamStarted, 2)
	d1.stop()
	before := len(rcv.all())
	rcv.setAnswer(func(hit, int) int { return http.StatusOK })

	d2 := e.dispatcher("node-1", cfg)
	testenv.Eventually(t, 10*time.Second, func() (bool, string) {
		return len(rcv.delivered()) == 3, fmt.Sprintf("%d delivered", len(rcv.delivered()))
	})
	var got []string
	for _, h := range rcv.all()[before:] {
		got = append(got, h.Event.ID)
		if h.Signature != nil {
			t.Fatal(h.Signature)
		}
	}
	if !slices.Equal(got, ids) {
		t.Fatalf("after the restart: %v, want %v in order", got, ids)
	}
	testenv.Eventually(t, 5*time.Second, func() (bool, string) {
		p, err := d2.Deliveries(ctxT(t), DeliveryQuery{Status: StatusDelivered})
		return err == nil && len(p.Deliveries) == 3, fmt.Sprintf("%d delivered in the log", len(p.Deliveries))
	})
	p, _ := d2.Deliveries(ctxT(t), DeliveryQuery{})
	for _, dl := range p.Deliveries {
		if dl.Attempts < 2 && dl.EventID == ids[0] {
			t.Fatalf("first delivery shows %d attempts; its failures before the restart were lost", dl.Attempts)
		}
	}
}

// Events published just before a shutdown are stored by Run's drain, and delivered by
// the next Dispatcher: none lost, none sent twice.
func TestPublishedEventsSurviveShutdown(t *testing.T) {
	e := newEnv(t)
	rcv := newReceiver(t, testSecret, nil)
	cfg := func(c *Config) { c.Global = Endpoint{URL: rcv.URL, Secret: testSecret} }
	d1 := e.dispatcher("node-1", cfg)
	var ids []string
	for range 20 {
		ids = append(ids, publish(t, d1, RecordingReady, roomB, nil))
	}
	d1.stop()
	if st := d1.Stats(); st.Queued != 0 || st.Dropped != 0 {
		t.Fatalf("after the shutdown: %+v", st)
	}
	d2 := e.dispatcher("node-1", cfg)
	for _, dl := range settled(t, DeliveryQuery{}, 20, d2) {
		if dl.Status != StatusDelivered || dl.Attempts != 1 {
			t.Fatalf("delivery %+v", dl)
		}
	}
	var got []string
	for _, h := range rcv.all() {
		got = append(got, h.Event.ID)
	}
	if !slices.Equal(got, ids) {
		t.Fatalf("delivered %v,\nwant %v", got, ids)
	}
}

// A node that stopped for good (its pod replaced, with a new node id) has its pending
// deliveries adopted by a live node, which claims each exactly once.
func TestAdoptDeadNodesDeliveries(t *testing.T) {
	e := newEnv(t)
	rcv := newReceiver(t, testSecret, func(hit, int) int { return http.StatusInternalServerError })
	cfg := func(c *Config) {
		c.Global = Endpoint{URL: rcv.URL, Secret: testSecret}
		c.BackoffMin, c.BackoffMax = 100*time.Millisecond, 200*time.Millisecond
	}
	dead := e.dispatcher("pod-old", cfg)
	ids := publishPending(t, dead, rcv, StreamEnded, 0)
	dead.stop()
	before := len(rcv.all())
	rcv.setAnswer(func(hit, int) int { return http.StatusOK })

	// Two live nodes race to adopt; each delivery goes out once, in order.
	a := e.dispatcher("pod-a", cfg)
	b := e.dispatcher("pod-b", cfg)
	// Settled: both live nodes hold nothing more, so a delivery adopted twice would have
	// been sent twice by now.
	for _, dl := range settled(t, DeliveryQuery{}, 3, a, b) {
		if dl.Status != StatusDelivered || (dl.Node != "pod-a" && dl.Node != "pod-b") {
			t.Fatalf("delivery %+v", dl)
		}
	}
	var got []string
	for _, h := range rcv.all()[before:] {
		got = append(got, h.Event.ID)
	}
	if !slices.Equal(got, ids) {
		t.Fatalf("adopted deliveries arrived as %v, want %v once each, in order", got, ids)
	}
}

// Two nodes publishing events of one room: a delivery waits for an earlier pending one
// held by the other node.
func TestOrderAcrossNodes(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	down := true
	rcv := newReceiver(t, testSecret, func(h hit, _ int) int {
		mu.Lock()
		defer mu.Unlock()
		if down {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	cfg := func(c *Config) {
		c.Global = Endpoint{URL: rcv.URL, Secret: testSecret}
		c.BackoffMin, c.BackoffMax = 100*time.Millisecond, 100*time.Millisecond
	}
	n1 := e.dispatcher("node-1", cfg)
	n2 := e.dispatcher("node-2", cfg)
	first := publish(t, n1, StreamStarted, roomA, nil)
	testenv.Eventually(t, 5*time.Second, func() (bool, string) { return len(rcv.all()) >= 1, "first event not tried yet" })
	second := publish(t, n2, ChatModeration, roomA, ModerationData{Action: "ban"})
	// Node-2 has stored the second event's delivery; it must hold it back while node-1
	// retries the first, attempt after attempt (node-2 checks every 50 ms).
	attempts := -1
	testenv.Eventually(t, 5*time.Second, func() (bool, string) {
		p, err := n1.Deliveries(ctxT(t), DeliveryQuery{RoomID: roomA.ID})
		if err != nil || len(p.Deliveries) != 2 {
			return false, fmt.Sprintf("%d deliveries, %v", len(p.Deliveries), err)
		}
		newer, older := p.Deliveries[0], p.Deliveries[1]
		if newer.EventID != second || older.EventID != first {
			t.Fatalf("the log, newest first: %s, %s", newer.EventID, older.EventID)
		}
		if newer.Attempts != 0 || newer.Node != "node-2" {
			t.Fatalf("node-2 tried the room's second event while node-1's first was pending: %+v", newer)
		}
		if attempts < 0 {
			attempts = older.Attempts
		}
		return older.Attempts >= attempts+3, fmt.Sprintf("node-1's first delivery: %d attempts", older.Attempts)
	})
	for _, h := range rcv.all() {
		if h.Event.ID == second {
			t.Fatal("node-2 sent the room's second event while node-1's first was pending")
		}
	}
	mu.Lock()
	down = false
	mu.Unlock()
	testenv.Eventually(t, 10*time.Second, func() (bool, string) {
		return len(rcv.delivered()) == 2, fmt.Sprintf("%d delivered", len(rcv.delivered()))
	})
	if got := rcv.delivered(); got[0].Event.ID != first || got[1].Event.ID != second {
		t.Fatalf("delivered %s then %s", got[0].Event.ID, got[1].Event.ID)
	}
}

func TestWebhookManagement(t *testing.T) {
	e := newEnv(t)
	var recorded []audit.Entry
	var mu sync.Mutex
	rec := audit.RecorderFunc(func(_ context.Context, en audit.Entry) {
		mu.Lock()
		recorded = append(recorded, en)
		mu.Unlock()
	})
	rcv := newReceiver(t, "", nil)
	strict := e.dispatcher("n1", func(c *Config) { c.AllowPrivate = false; c.Audit = rec })
	ann := audit.Actor{ID: "u1", Handle: "ann"}

	for _, tt := range []struct {
		name  string
		in    NewWebhook
		field string
	}{
		{"no url", NewWebhook{}, "url"},
		{"ftp", NewWebhook{URL: "ftp://example.com/x"}, "url"},
		{"relative", NewWebhook{URL: "/hooks"}, "url"},
		{"javascript", NewWebhook{URL: "javascript:alert(1)"}, "url"},
		{"credentials", NewWebhook{URL: "https://user:pw@example.com/"}, "url"},
		{"loopback", NewWebhook{URL: rcv.URL}, "url"},
		{"localhost", NewWebhook{URL: "http://localhost:9/x"}, "url"},
		{"private", NewWebhook{URL: "http://10.1.2.3/x"}, "url"},
		{"link-local metadata", NewWebhook{URL: "http://169.254.169.254/latest/meta-data"}, "url"},
		{"mapped loopback", NewWebhook{URL: "http://[::ffff:127.0.0.1]/x"}, "url"},
		{"bad format", NewWebhook{URL: "https://93.184.215.14/x", Format: "xml"}, "format"},
		{"bad event", NewWebhook{URL: "https://93.184.215.14/x", Events: []string{"stream.paused"}}, "events"},
		{"global event", NewWebhook{URL: "https://93.184.215.14/x", Events: []string{RoomDeleted}}, "events"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := strict.CreateWebhook(ctxT(t), ann, roomA, tt.in)
			var ie *ValidationError
			if !errors.As(err, &ie) || ie.Field != tt.field {
				t.Fatalf("error = %v, want an invalid %s", err, tt.field)
			}
		})
	}

	// With private addresses allowed (the tests' receivers are on loopback).
	d := e.dispatcher("n2", func(c *Config) { c.Audit = rec })
	h, secret, err := d.CreateWebhook(ctxT(t), ann, roomA, NewWebhook{URL: rcv.URL + "/in"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, "whsec_") || len(secret) != len("whsec_")+64 {
		t.Fatalf("secret %q", secret)
	}
	if h.Format != FormatJSON || !slices.Equal(h.Events, RoomEventTypes) || h.RoomID != roomA.ID || h.CreatedBy != ann {
		t.Fatalf("webhook = %+v", h)
	}
	list, err := d.Webhooks(ctxT(t), roomA.ID)
	if err != nil || len(list) != 1 || list[0].ID != h.ID {
		t.Fatalf("list = %+v, %v", list, err)
	}
	if b, _ := json.Marshal(list); strings.Contains(string(b), secret) || strings.Contains(string(b), "secret") {
		t.Fatalf("the list shows the secret: %s", b)
	}
	if other, _ := d.Webhooks(ctxT(t), roomB.ID); len(other) != 0 {
		t.Fatalf("room B lists %+v", other)
	}
	if _, err := d.GetWebhook(ctxT(t), roomB.ID, h.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("room B's view of room A's webhook: %v", err)
	}
	if err := d.DeleteWebhook(ctxT(t), ann, roomB, h.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete through room B: %v", err)
	}
	for range MaxPerRoom - 1 {
		if _, _, err := d.CreateWebhook(ctxT(t), ann, roomA, NewWebhook{URL: rcv.URL}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := d.CreateWebhook(ctxT(t), ann, roomA, NewWebhook{URL: rcv.URL}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("webhook %d: %v", MaxPerRoom+1, err)
	}
	if err := d.DeleteWebhook(ctxT(t), ann, roomA, h.ID); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteWebhook(ctxT(t), ann, roomA, h.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if _, _, err := d.CreateWebhook(ctxT(t), ann, roomB, NewWebhook{URL: rcv.URL}); err != nil {
		t.Fatal(err)
	}
	// The room is deleted: its webhooks go, other rooms' stay.
	if n, err := d.ForgetRoom(ctxT(t), roomA.ID); err != nil || n != MaxPerRoom-1 {
		t.Fatalf("ForgetRoom = %d, %v", n, err)
	}
	if left, _ := d.Webhooks(ctxT(t), roomA.ID); len(left) != 0 {
		t.Fatalf("room A keeps %d webhooks", len(left))
	}
	if left, _ := d.Webhooks(ctxT(t), roomB.ID); len(left) != 1 {
		t.Fatalf("room B has %d webhooks", len(left))
	}
	mu.Lock()
	defer mu.Unlock()
	if len(recorded) != MaxPerRoom+2 || recorded[0].Action != audit.WebhookCreate || recorded[MaxPerRoom].Action != audit.WebhookDelete {
		t.Fatalf("audit entries: %d", len(recorded))
	}
	if c := recorded[0]; c.Target == nil || c.Target.Kind != audit.KindWebhook || c.Target.ID != h.ID || c.Actor != ann ||
		c.Room == nil || c.Room.Slug != roomA.Slug || c.Details["format"] != "json" {
		t.Fatalf("create entry = %+v", c)
	}
	for _, en := range recorded {
		if b, _ := json.Marshal(en); strings.Contains(string(b), "whsec_") {
			t.Fatalf("an audit entry holds a secret: %s", b)
		}
	}
}

// A deleted webhook's pending deliveries are canceled, not sent.
func TestDeletedWebhookCancelsDeliveries(t *testing.T) {
	e := newEnv(t)
	rcv := newReceiver(t, "", func(hit, int) int { return http.StatusInternalServerError })
	d := e.dispatcher("n1", func(c *Config) { c.BackoffMin, c.BackoffMax = 100*time.Millisecond, 100*time.Millisecond })
	ann := audit.Actor{ID: "u1", Handle: "ann"}
	h, _, err := d.CreateWebhook(ctxT(t), ann, roomA, NewWebhook{URL: rcv.URL})
	if err != nil {
		t.Fatal(err)
	}
	publish(t, d, StreamStarted, roomA, nil)
	publish(t, d, StreamEnded, roomA, nil)
	testenv.Eventually(t, 5*time.Second, func() (bool, string) { return len(rcv.all()) >= 1, "not tried" })
	if err := d.DeleteWebhook(ctxT(t), ann, roomA, h.ID); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, func() (bool, string) {
		p, err := d.Deliveries(ctxT(t), DeliveryQuery{WebhookID: h.ID, Status: StatusCanceled})
		return err == nil && len(p.Deliveries) == 2, fmt.Sprintf("%d canceled", len(p.Deliveries))
	})
	// Every request the receiver got is an attempt in the log, and nothing is left to send.
	log := settled(t, DeliveryQuery{WebhookID: h.ID}, 2, d)
	attempts := 0
	for _, dl := range log {
		attempts += dl.Attempts
	}
	if n := len(rcv.all()); n != attempts || log[0].Attempts != 0 {
		t.Fatalf("%d requests, %d attempts in the log (%+v): requests after the webhook was deleted", n, attempts, log)
	}
}

// Outbound requests: no private addresses unless allowed (checked when connecting, after
// DNS), no redirects to other hosts, bounded answers.
func TestOutboundGuards(t *testing.T) {
	e := newEnv(t)
	other := newReceiver(t, "", nil)
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/same" {
			http.Redirect(w, r, "/final", http.StatusTemporaryRedirect)
			return
		}
		if r.URL.Path == "/final" {
			w.WriteHeader(http.StatusOK)
			return
		}
		if r.URL.Path == "/big" {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(strings.Repeat("x", 1<<20)))
			return
		}
		http.Redirect(w, r, other.URL+"/stolen", http.StatusTemporaryRedirect)
	}))
	t.Cleanup(redirector.Close)

	tests := []struct {
		name    string
		url     string
		private bool
		ok      bool
		err     string
	}{
		{name: "loopback refused at dial", url: other.URL + "/x", err: "not public"},
		{name: "redirect to another host", url: redirector.URL + "/elsewhere", private: true, err: "redirect to another host"},
		{name: "redirect on the same host", url: redirector.URL + "/same", private: true, ok: true},
		{name: "large error answer", url: redirector.URL + "/big", private: true, err: "HTTP 500: xxxx"},
	}
	for i, tt := range tests {
		func() {
			d := e.dispatcher(fmt.Sprint("guard-", i), func(c *Config) {
				c.Global = Endpoint{URL: tt.url, Secret: testSecret}
				c.AllowPrivate = tt.private
				c.GiveUpAfter = time.Millisecond // one attempt
			})
			room := Room{ID: fmt.Sprintf("665f0000000000000000%04d", i), Slug: "guard"}
			publish(t, d, StreamStarted, room, nil)
			var dl Delivery
			testenv.Eventually(t, 5*time.Second, func() (bool, string) {
				p, err := d.Deliveries(ctxT(t), DeliveryQuery{RoomID: room.ID})
				if err != nil || len(p.Deliveries) != 1 {
					return false, fmt.Sprint(err)
				}
				dl = p.Deliveries[0]
				return dl.Status != StatusPending, dl.Status
			})
			if tt.ok != (dl.Status == StatusDelivered) || !strings.Contains(dl.LastError, tt.err) {
				t.Fatalf("%s: delivery = %+v", tt.name, dl)
			}
			if len([]rune(dl.LastError)) > maxSnippet+20 || strings.Contains(dl.LastError, "/stolen") {
				t.Fatalf("%s: last error %q", tt.name, dl.LastError)
			}
			d.stop()
		}()
	}
	if n := len(other.all()); n != 0 {
		t.Fatalf("the refused receiver got %d requests", n)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	e := newEnv(t)
	for _, tt := range []struct {
		name string
		cfg  Config
	}{
		{"global without secret", Config{Global: Endpoint{URL: "https://example.com"}}},
		{"global ftp", Config{Global: Endpoint{URL: "ftp://example.com", Secret: testSecret}}},
		{"global bad format", Config{Global: Endpoint{URL: "https://example.com", Secret: testSecret, Format: "xml"}}},
		{"backoff", Config{BackoffMin: time.Hour, BackoffMax: time.Minute}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.DB, tt.cfg.Nodes = e.db, e.nodes("a")
			if _, err := New(tt.cfg); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	// Slack without a secret is fine.
	if _, err := New(Config{DB: e.db, Nodes: e.nodes("a"), Global: Endpoint{URL: "https://hooks.slack.com/services/T/B/X", Format: FormatSlack}}); err != nil {
		t.Fatal(err)
	}
}

func TestPublishValidatesAndBounds(t *testing.T) {
	e := newEnv(t)
	d, err := New(Config{DB: e.db, Nodes: e.nodes("a"), QueueSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Publish(Event{Type: "stream.paused", Room: roomA}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("unknown type: %v", err)
	}
	if err := d.Publish(Event{Type: StreamStarted}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("no room: %v", err)
	}
	for range 2 {
		if err := d.Publish(Event{Type: StreamStarted, Room: roomA}); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Publish(Event{Type: StreamStarted, Room: roomA}); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("third event in a queue of 2: %v", err)
	}
	if st := d.Stats(); st.Dropped != 1 || st.Queued != 2 {
		t.Fatalf("stats = %+v", st)
	}
}

// An owner edits a webhook, sends it a test event, and sends a failed delivery again: the
// test and the redelivery are in the delivery log, signed and delivered like any other;
// what is pending or canceled is not sent again.
func TestEditTestAndRedeliver(t *testing.T) {
	e := newEnv(t)
	var recorded []string
	var mu sync.Mutex
	rec := audit.RecorderFunc(func(_ context.Context, en audit.Entry) {
		mu.Lock()
		recorded = append(recorded, en.Action)
		mu.Unlock()
	})
	failing := true
	var fmu sync.Mutex
	var secret string
	rcv := newReceiver(t, "", func(hit, int) int {
		fmu.Lock()
		defer fmu.Unlock()
		if failing {
			return http.StatusBadGateway
		}
		return http.StatusNoContent
	})
	d := e.dispatcher("n1", func(c *Config) { c.Audit = rec; c.GiveUpAfter = 300 * time.Millisecond })
	ann := audit.Actor{ID: "u1", Handle: "ann"}
	h, secret, err := d.CreateWebhook(ctxT(t), ann, roomA, NewWebhook{URL: "http://127.0.0.1:9/old", Events: []string{StreamStarted}})
	if err != nil {
		t.Fatal(err)
	}
	rcv.setSecret(secret)

	// Edits: refused ones change nothing.
	bad := "ftp://example.com/"
	if _, err := d.UpdateWebhook(ctxT(t), ann, roomA, h.ID, WebhookUpdate{URL: &bad}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("edit to a bad URL: %v", err)
	}
	if _, err := d.UpdateWebhook(ctxT(t), ann, roomA, h.ID, WebhookUpdate{Events: []string{RoomCreated}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("edit to a global event: %v", err)
	}
	if _, err := d.UpdateWebhook(ctxT(t), ann, roomB, h.ID, WebhookUpdate{URL: &bad}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("edit through another room: %v", err)
	}
	url, slack := rcv.URL+"/new", FormatSlack
	edited, err := d.UpdateWebhook(ctxT(t), ann, roomA, h.ID, WebhookUpdate{URL: &url, Format: &slack, Events: []string{StreamEnded, RecordingFailed}})
	if err != nil || edited.URL != url || edited.Format != FormatSlack || !slices.Equal(edited.Events, []string{StreamEnded, RecordingFailed}) {
		t.Fatalf("edited = %+v, %v", edited, err)
	}
	if got, _ := d.GetWebhook(ctxT(t), roomA.ID, h.ID); got.URL != url || got.ID != h.ID {
		t.Fatalf("stored = %+v", got)
	}

	// A test event: fails, and is given up quickly here.
	test, err := d.SendTest(ctxT(t), ann, roomA, h.ID)
	if err != nil || test.Type != TestEvent || test.WebhookID != h.ID || test.Status != StatusPending {
		t.Fatalf("test = %+v, %v", test, err)
	}
	if _, err := d.Redeliver(ctxT(t), ann, Redelivery{DeliveryID: test.ID}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("redeliver a pending delivery: %v", err)
	}
	log := settled(t, DeliveryQuery{WebhookID: h.ID}, 1, d)
	if log[0].ID != test.ID || log[0].Status != StatusFailed || log[0].LastStatus != http.StatusBadGateway {
		t.Fatalf("log after the test = %+v", log)
	}
	first := rcv.all()[0]
	if first.Signature != nil || first.Header.Get(EventHeader) != TestEvent || !strings.Contains(first.Event.Text, "this webhook works") {
		t.Fatalf("test request: %v %s %s", first.Signature, first.Header.Get(EventHeader), first.Body)
	}

	// The receiver is fixed: the failed delivery is sent again, to a room B request it
	// does not exist.
	fmu.Lock()
	failing = false
	fmu.Unlock()
	if _, err := d.Redeliver(ctxT(t), ann, Redelivery{DeliveryID: test.ID, RoomID: roomB.ID}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("redeliver through another room: %v", err)
	}
	if _, err := d.Redeliver(ctxT(t), ann, Redelivery{DeliveryID: "nope"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("redeliver an unknown delivery: %v", err)
	}
	again, err := d.Redeliver(ctxT(t), ann, Redelivery{DeliveryID: test.ID, RoomID: roomA.ID, WebhookID: h.ID})
	if err != nil || again.RedeliveryOf != test.ID || again.EventID != test.EventID || again.ID == test.ID {
		t.Fatalf("redelivery = %+v, %v", again, err)
	}
	log = settled(t, DeliveryQuery{WebhookID: h.ID}, 2, d)
	if log[0].ID != again.ID || log[0].Status != StatusDelivered || log[1].Status != StatusFailed {
		t.Fatalf("log after the redelivery = %+v", log)
	}
	hits := rcv.delivered()
	if len(hits) != 1 || hits[0].Header.Get(EventIDHeader) != test.EventID || hits[0].Header.Get(DeliveryHeader) != again.ID || hits[0].Signature != nil {
		t.Fatalf("delivered: %+v", hits)
	}

	// Once its webhook is gone, nothing is sent again.
	if err := d.DeleteWebhook(ctxT(t), ann, roomA, h.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Redeliver(ctxT(t), ann, Redelivery{DeliveryID: test.ID}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("redeliver to a deleted webhook: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{audit.WebhookCreate, audit.WebhookUpdate, audit.WebhookTest, audit.WebhookRedeliver, audit.WebhookDelete}
	if !slices.Equal(recorded, want) {
		t.Fatalf("audit: %v, want %v", recorded, want)
	}
}

// Tests and redeliveries asked faster than a receiver answers stop at a bound.
func TestRequestedDeliveriesAreBounded(t *testing.T) {
	e := newEnv(t)
	rcv := newReceiver(t, "", func(hit, int) int { return http.StatusServiceUnavailable })
	d := e.dispatcher("n1", func(c *Config) { c.BackoffMin, c.BackoffMax = time.Minute, time.Minute })
	ann := audit.Actor{ID: "u1", Handle: "ann"}
	h, _, err := d.CreateWebhook(ctxT(t), ann, roomA, NewWebhook{URL: rcv.URL})
	if err != nil {
		t.Fatal(err)
	}
	for i := range maxPendingOnRequest {
		if _, err := d.SendTest(ctxT(t), ann, roomA, h.ID); err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
	}
	if _, err := d.SendTest(ctxT(t), ann, roomA, h.ID); !errors.Is(err, ErrInvalid) {
		t.Fatalf("test %d: %v, want invalid", maxPendingOnRequest+1, err)
	}
}

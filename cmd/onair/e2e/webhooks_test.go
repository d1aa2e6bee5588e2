package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"onair/rooms/webhook"
	"onair/scripts/testenv"
)

// hookReceiver is a webhook consumer: it records every request with its signature
// checked against secret.
type hookReceiver struct {
	*httptest.Server
	mu   sync.Mutex
	got  []hookRequest
	seen map[string]bool
}

type hookRequest struct {
	header    http.Header
	body      []byte
	signature error
	event     struct {
		ID      string    `json:"id"`
		Type    string    `json:"type"`
		Created time.Time `json:"created"`
		Room    struct {
			ID, Slug, Title string
		} `json:"room"`
		Data struct {
			Broadcast struct {
				ID        string     `json:"id"`
				Title     string     `json:"title"`
				RunID     string     `json:"run_id"`
				Started   time.Time  `json:"started"`
				Ended     *time.Time `json:"ended"`
				Bytes     int64      `json:"bytes"`
				Recording *struct {
					Size       int64 `json:"size"`
					DurationMS int64 `json:"duration_ms"`
				} `json:"recording"`
			} `json:"broadcast"`
			ReplayURL  string           `json:"replay_url"`
			Action     string           `json:"action"`
			User       *webhook.UserRef `json:"user"`
			Owner      webhook.UserRef  `json:"owner"`
			Visibility string           `json:"visibility"`
		} `json:"data"`
		Text string `json:"text"`
	}
}

func newHookReceiver(t *testing.T, secret func() string) *hookReceiver {
	h := &hookReceiver{seen: map[string]bool{}}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		req := hookRequest{header: r.Header.Clone(), body: b}
		req.signature = webhook.Verify(secret(), r.Header.Get(webhook.SignatureHeader), b, time.Now(), webhook.DefaultTolerance)
		_ = json.Unmarshal(b, &req.event)
		h.mu.Lock()
		h.got = append(h.got, req)
		h.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookReceiver) requests() []hookRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hookRequest(nil), h.got...)
}

func (h *hookReceiver) types() []string {
	var out []string
	for _, r := range h.requests() {
		out = append(out, r.header.Get(webhook.EventHeader))
	}
	return out
}

// A real publish: the global webhook (its secret read from a file, as from a Kubernetes
// Secret) receives stream.started, stream.ended and recording.ready, in order and signed;
// a room's Slack webhook added through the API gets chat moderation; the audit trail has
// the owner's actions.
func TestWebhooksForARealPublish(t *testing.T) {
	const secret = "whsec_e2e-global-secret-0123456789"
	secretFile := filepath.Join(t.TempDir(), "webhook-secret")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	global := newHookReceiver(t, func() string { return secret })
	var roomSecret string
	var roomSecretMu sync.Mutex
	slack := newHookReceiver(t, func() string {
		roomSecretMu.Lock()
		defer roomSecretMu.Unlock()
		return roomSecret
	})
	o, _ := startWithMongo(t,
		"ONAIR_WEBHOOKS_URL="+global.URL+"/onair", "ONAIR_WEBHOOKS_SECRET_FILE="+secretFile,
		"ONAIR_WEBHOOKS_ALLOW_PRIVATE=true", "ONAIR_WEBHOOKS_BACKOFF_MIN=200ms")

	ann := newClient(t, o.HTTP)
	ann.signUp("ann") // first account: admin
	bob := newClient(t, o.HTTP)
	bob.signUp("bob")
	room, key := ann.createRoom("ann-live")

	var hook struct {
		Webhook webhook.Webhook `json:"webhook"`
		Secret  string          `json:"secret"`
	}
	ann.must(201, "POST", "/api/v1/rooms/ann-live/webhooks",
		map[string]any{"url": slack.URL + "/slack", "format": "slack", "events": []string{"chat.moderation", "stream.started"}}, &hook)
	roomSecretMu.Lock()
	roomSecret = hook.Secret
	roomSecretMu.Unlock()
	if code, _ := bob.do("GET", "/api/v1/rooms/ann-live/webhooks", nil, nil); code != 403 {
		t.Fatalf("bob lists ann's webhooks: %d", code)
	}

	// Chat moderation: both webhooks hear of it.
	ann.must(204, "POST", "/api/v1/rooms/ann-live/chat/bans", map[string]any{"handle": "bob", "reason": "testing"}, nil)

	// The broadcast's own title goes with its events (the room's stays in "room").
	ann.must(200, "PATCH", "/api/v1/rooms/ann-live", map[string]any{"stream_title": "Launch day"}, nil)
	pub := testenv.Publish(t, o.RTMP+"/"+key, testenv.PublishOptions{Duration: 4 * time.Second})
	if err := pub.Wait(30 * time.Second); err != nil {
		t.Fatalf("ffmpeg: %v", err)
	}
	// The delivery logs settle: the global webhook's five deliveries and the room's two all
	// delivered, so nothing more is sent and what the receivers got is final.
	settled := func(path string, want int) (bool, string) {
		var log webhook.DeliveryPage
		ann.must(200, "GET", path, nil, &log)
		if len(log.Deliveries) < want {
			return false, fmt.Sprintf("%s: %d deliveries, want %d", path, len(log.Deliveries), want)
		}
		for _, d := range log.Deliveries {
			if d.Status != webhook.StatusDelivered {
				return false, fmt.Sprintf("%s: %s is %s", path, d.Type, d.Status)
			}
		}
		return true, ""
	}
	testenv.Eventually(t, 60*time.Second, func() (bool, string) {
		if ok, why := settled("/api/v1/admin/webhooks/deliveries?webhook=global", 5); !ok {
			return false, why
		}
		return settled("/api/v1/rooms/ann-live/webhooks/"+hook.Webhook.ID+"/deliveries", 2)
	})
	if n := metric(t, o, `onair_webhook_deliveries_total{result="delivered"}`); n != 7 {
		t.Fatalf("onair_webhook_deliveries_total{result=\"delivered\"} = %v, want the 7 deliveries made", n)
	}
	reqs := global.requests()
	if got := global.types(); strings.Join(got, ",") != "room.created,chat.moderation,stream.started,stream.ended,recording.ready" {
		t.Fatalf("global webhook got %v", got)
	}
	ids := map[string]bool{}
	for _, r := range reqs {
		ev := r.event
		if r.signature != nil {
			t.Fatalf("%s: %v", ev.Type, r.signature)
		}
		if ev.Room.ID != room.ID || ev.Room.Slug != "ann-live" || ev.Room.Title != "Room ann-live" || ev.ID == "" || ids[ev.ID] ||
			r.header.Get(webhook.EventIDHeader) != ev.ID || r.header.Get("Content-Type") != "application/json" {
			t.Fatalf("request %s: %s", ev.Type, r.body)
		}
		ids[ev.ID] = true
	}
	created := reqs[0].event
	if created.Data.Owner.Handle != "ann" || created.Data.Visibility != "public" {
		t.Fatalf("room.created: %s", reqs[0].body)
	}
	reqs = reqs[1:]
	started, ended, ready := reqs[1].event, reqs[2].event, reqs[3].event
	b := started.Data.Broadcast
	if b.ID == "" || b.RunID == "" || b.Ended != nil || b.Title != "Launch day" {
		t.Fatalf("stream.started: %s", reqs[1].body)
	}
	if eb := ended.Data.Broadcast; eb.ID != b.ID || eb.Title != b.Title || eb.Ended == nil || eb.Bytes == 0 || !ended.Created.Equal(*eb.Ended) {
		t.Fatalf("stream.ended: %s", reqs[2].body)
	}
	rb := ready.Data.Broadcast
	if rb.ID != b.ID || rb.Title != b.Title || rb.Recording == nil || rb.Recording.Size == 0 || rb.Recording.DurationMS < 3000 ||
		ready.Data.ReplayURL != "/api/v1/broadcasts/"+b.ID+"/replay.m3u8" {
		t.Fatalf("recording.ready: %s", reqs[3].body)
	}
	if mod := reqs[0].event.Data; mod.Action != "ban" || mod.User == nil || mod.User.Handle != "bob" {
		t.Fatalf("chat.moderation: %s", reqs[0].body)
	}
	if code, body := o.Get(t, ready.Data.ReplayURL); code != 200 || !strings.Contains(string(body), "#EXTM3U") {
		t.Fatalf("the announced replay: %d", code)
	}

	// The room's Slack webhook: readable lines, signed with the secret shown once.
	if got := slack.types(); len(got) != 2 {
		t.Fatalf("slack webhook got %v", got)
	}
	for i, want := range []string{"@ann banned @bob in *Room ann-live*: testing", "*Room ann-live* is live: Launch day"} {
		r := slack.requests()[i]
		if r.event.Text != want || r.signature != nil {
			t.Fatalf("slack %d: %s (%v), want text %q", i, r.body, r.signature, want)
		}
	}

	// The delivery logs: the owner sees her webhook's; the admin (ann, the first account)
	// sees the global one's.
	var log webhook.DeliveryPage
	ann.must(200, "GET", "/api/v1/rooms/ann-live/webhooks/"+hook.Webhook.ID+"/deliveries", nil, &log)
	if len(log.Deliveries) != 2 || log.Deliveries[0].Status != webhook.StatusDelivered || log.Deliveries[0].Format != webhook.FormatSlack {
		t.Fatalf("room webhook log: %+v", log)
	}
	ann.must(200, "GET", "/api/v1/admin/webhooks/deliveries?webhook=global", nil, &log)
	if len(log.Deliveries) != 5 || log.Deliveries[0].Type != webhook.RecordingReady {
		t.Fatalf("global webhook log: %+v", log)
	}

	// The audit trail, for admins only.
	if code, _ := bob.do("GET", "/api/v1/admin/audit", nil, nil); code != 403 {
		t.Fatalf("bob reads the audit trail: %d", code)
	}
	var trail struct {
		Entries []struct {
			Action string
			Actor  struct{ Handle string }
			IP     string
		} `json:"entries"`
	}
	ann.must(200, "GET", "/api/v1/admin/audit?room=ann-live", nil, &trail)
	var actions []string
	for _, en := range trail.Entries {
		actions = append(actions, en.Action)
		if en.Actor.Handle != "ann" || en.IP != "127.0.0.1" {
			t.Fatalf("entry %+v", en)
		}
	}
	if strings.Join(actions, ",") != "room.update,chat.ban,webhook.create,room.create" {
		t.Fatalf("audit trail of the room: %v", actions)
	}
	if o.LogsContain(secret) || o.LogsContain(hook.Secret) || o.LogsContain("/slack") {
		t.Fatal("a webhook secret or URL path reached the logs")
	}
}

package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"onair/chat"
	"onair/media"
	"onair/rooms"
	"onair/rooms/audit"
	"onair/rooms/cluster"
	"onair/rooms/webhook"
	"onair/scripts/testenv"
)

// eventsHLS is an HLS server without streams.
type eventsHLS struct{ http.Handler }

func (eventsHLS) Live(string) bool { return false }

func (eventsHLS) Immutable(string) bool { return false }

// eventsEnv is the web server over real services (rooms, chat, audit trail, webhooks) on
// a FerretDB of the test's own.
type eventsEnv struct {
	t        *testing.T
	srv      *httptest.Server
	db       *mongo.Database
	audit    *audit.Log
	webhooks *webhook.Dispatcher
	web      *Server
}

func newEventsEnv(t *testing.T) *eventsEnv {
	t.Helper()
	db := testenv.StartMongoDB(t).Database(t, "web")
	level := slog.LevelError + 1
	if testing.Verbose() {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	al, err := audit.New(audit.Config{DB: db, Logger: log, NodeID: "web-test"})
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := cluster.New(cluster.Config{DB: db, NodeID: "web-test"})
	if err != nil {
		t.Fatal(err)
	}
	wh, err := webhook.New(webhook.Config{DB: db, Logger: log, Nodes: nodes, AllowPrivate: true, Audit: al,
		BackoffMin: 50 * time.Millisecond, BackoffMax: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	hub, err := chat.New(chat.Config{DB: db, Logger: log, NodeID: "web-test",
		CheckOrigin: func(*http.Request) bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := rooms.New(rooms.Config{DB: db, Logger: log, Cluster: nodes, Audit: al,
		Password: rooms.PasswordParams{Time: 1, MemoryKiB: 64, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, ensure := range []func(context.Context) error{svc.EnsureIndexes, hub.EnsureIndexes, al.EnsureIndexes, wh.EnsureIndexes} {
		if err := ensure(ctx); err != nil {
			t.Fatal(err)
		}
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{}, 4)
	for _, run := range []func(context.Context) error{svc.Run, hub.Run, al.Run, wh.Run} {
		go func() {
			_ = run(runCtx)
			done <- struct{}{}
		}()
	}
	t.Cleanup(func() {
		stop()
		for range 4 {
			<-done
		}
	})
	s, err := New(Config{HLS: eventsHLS{http.NotFoundHandler()}, Hub: media.NewHub(media.HubConfig{}),
		Rooms: svc, Chat: hub, Audit: al, Webhooks: wh, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	testenv.Eventually(t, 5*time.Second, func() (bool, string) {
		resp, err := http.Get(srv.URL + "/api/v1/rooms/x/chat")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode != http.StatusServiceUnavailable, "chat not running"
	})
	return &eventsEnv{t: t, srv: srv, db: db, audit: al, webhooks: wh, web: s}
}

// apiClient is a browser-like client: cookies, the site's Origin, the CSRF token.
type apiClient struct {
	t      *testing.T
	base   string
	http   *http.Client
	csrf   string
	handle string
}

func (e *eventsEnv) client() *apiClient {
	jar, _ := cookiejar.New(nil)
	return &apiClient{t: e.t, base: e.srv.URL, http: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
}

func (c *apiClient) do(method, path string, body any, out any) int {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.base+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Origin", c.base)
	if c.csrf != "" {
		req.Header.Set(csrfHeader, c.csrf)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode
}

func (c *apiClient) must(want int, method, path string, body any, out any) {
	c.t.Helper()
	var raw json.RawMessage
	if code := c.do(method, path, body, &raw); code != want {
		c.t.Fatalf("%s %s as %s: %d %s, want %d", method, path, c.handle, code, raw, want)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			c.t.Fatal(err)
		}
	}
}

func (c *apiClient) signUp(handle string) {
	c.t.Helper()
	var me struct {
		CSRFToken string `json:"csrf_token"`
	}
	c.must(201, "POST", "/api/v1/auth/signup", map[string]string{
		"email": handle + "@example.com", "handle": handle, "password": "correct horse battery"}, &me)
	c.csrf, c.handle = me.CSRFToken, handle
}

// post sends a chat message over the room's websocket and returns its id.
func (c *apiClient) post(slug, text string) string {
	c.t.Helper()
	u := "ws" + strings.TrimPrefix(c.base, "http") + "/api/v1/rooms/" + slug + "/chat"
	h := http.Header{"Origin": {c.base}}
	for _, ck := range c.http.Jar.Cookies(mustParse(c.t, c.base)) {
		h.Add("Cookie", ck.Name+"="+ck.Value)
	}
	ws, resp, err := websocket.DefaultDialer.Dial(u, h)
	if err != nil {
		c.t.Fatalf("chat socket: %v (%v)", err, resp)
	}
	defer ws.Close()
	if err := ws.WriteJSON(map[string]string{"type": "message", "text": text, "nonce": "n1"}); err != nil {
		c.t.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		var f struct {
			Type, ID, Nonce, Message string
		}
		if err := ws.ReadJSON(&f); err != nil {
			c.t.Fatalf("chat socket: %v", err)
		}
		switch f.Type {
		case "ack":
			return f.ID
		case "error":
			c.t.Fatalf("chat post refused: %s", f.Message)
		}
	}
}

func mustParse(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

type auditPage struct {
	Entries []audit.Entry `json:"entries"`
	Next    string        `json:"next"`
}

// Every owner, moderator and admin action done through the API reaches the audit trail,
// with who, what, which target, and the client's address; only admins list it.
func TestAuditTrailThroughTheAPI(t *testing.T) {
	e := newEventsEnv(t)
	root, ann, bob, carol, anon := e.client(), e.client(), e.client(), e.client(), e.client()
	root.signUp("root") // the first account: admin
	ann.signUp("ann")
	bob.signUp("bob")
	carol.signUp("carol")

	var created struct {
		Room      rooms.Room `json:"room"`
		StreamKey string     `json:"stream_key"`
	}
	ann.must(201, "POST", "/api/v1/rooms", map[string]any{"slug": "ann-room", "title": "Ann's room"}, &created)
	room := created.Room
	var unlisted struct {
		PlaybackID string `json:"playback_id"`
	}
	ann.must(200, "PATCH", "/api/v1/rooms/ann-room", map[string]any{"title": "Ann's show", "visibility": "unlisted"}, &unlisted)
	pid := unlisted.PlaybackID // others reach an unlisted room by it, not by its slug
	var rotated struct {
		StreamKey string `json:"stream_key"`
	}
	ann.must(200, "POST", "/api/v1/rooms/ann-room/stream-key", nil, &rotated)
	ann.must(200, "POST", "/api/v1/rooms/ann-room/moderators", map[string]string{"handle": "carol"}, nil)
	ann.must(200, "DELETE", "/api/v1/rooms/ann-room/moderators/carol", nil, nil)
	ann.must(200, "POST", "/api/v1/rooms/ann-room/moderators", map[string]string{"handle": "bob"}, nil)
	ann.must(200, "POST", "/api/v1/rooms/ann-room/moderators", map[string]string{"handle": "bob"}, nil) // no change: no entry

	// Chat moderation by a moderator: chat reports it to its Config.Actions, which cmd/onair
	// turns into audit entries (cmd/onair's TestChatActions), not to the audit trail.
	msg := carol.post(pid, "buy cheap followers")
	bob.must(204, "DELETE", "/api/v1/rooms/ann-room/chat/messages/"+msg, nil, nil)
	bob.must(204, "POST", "/api/v1/rooms/ann-room/chat/timeouts", map[string]any{"handle": "carol", "seconds": 60, "reason": "spam"}, nil)
	bob.must(204, "POST", "/api/v1/rooms/ann-room/chat/bans", map[string]any{"handle": "carol", "reason": "again"}, nil)
	bob.must(204, "DELETE", "/api/v1/rooms/ann-room/chat/bans/carol", nil, nil)
	bob.must(204, "PUT", "/api/v1/rooms/ann-room/chat/slow-mode", map[string]any{"seconds": 30}, nil)
	if code := carol.do("PUT", "/api/v1/rooms/"+pid+"/chat/slow-mode", map[string]any{"seconds": 5}, nil); code != 403 {
		t.Fatalf("carol sets slow mode: %d", code)
	}

	// A past broadcast of the room, deleted by an admin.
	roomID, _ := bson.ObjectIDFromHex(room.ID)
	bid := bson.NewObjectID()
	started := time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond)
	ended := started.Add(10 * time.Minute)
	if _, err := e.db.Collection("broadcasts").InsertOne(context.Background(), bson.D{
		{Key: "_id", Value: bid}, {Key: "room_id", Value: roomID}, {Key: "room_slug", Value: "ann-room"},
		{Key: "run_id", Value: "run-1"}, {Key: "node", Value: "web-test"}, {Key: "started", Value: started},
		{Key: "ended", Value: ended}, {Key: "heartbeat", Value: ended},
	}); err != nil {
		t.Fatal(err)
	}
	// The API names broadcasts by their public ids only.
	if code := root.do("DELETE", "/api/v1/broadcasts/"+bid.Hex(), nil, nil); code != 404 {
		t.Fatalf("delete by ObjectID: %d, want 404", code)
	}
	var listed struct {
		Broadcasts []struct {
			ID string `json:"id"`
		} `json:"broadcasts"`
	}
	root.must(200, "GET", "/api/v1/rooms/ann-room/broadcasts", nil, &listed)
	if len(listed.Broadcasts) != 1 || !rooms.IsPlaybackID(listed.Broadcasts[0].ID) {
		t.Fatalf("broadcasts %+v", listed.Broadcasts)
	}
	publicID := listed.Broadcasts[0].ID
	root.must(204, "DELETE", "/api/v1/broadcasts/"+publicID, nil, nil)

	// A webhook added and removed by the owner.
	var hook struct {
		Webhook webhook.Webhook `json:"webhook"`
		Secret  string          `json:"secret"`
	}
	ann.must(201, "POST", "/api/v1/rooms/ann-room/webhooks", map[string]any{"url": "http://127.0.0.1:9/hook"}, &hook)
	ann.must(204, "DELETE", "/api/v1/rooms/ann-room/webhooks/"+hook.Webhook.ID, nil, nil)
	ann.must(204, "DELETE", "/api/v1/rooms/ann-room", nil, nil)

	// Only admins read the audit trail.
	if code := anon.do("GET", "/api/v1/admin/audit", nil, nil); code != 401 {
		t.Fatalf("anonymous: %d", code)
	}
	for _, c := range []*apiClient{ann, bob, carol} {
		var ae struct {
			Error struct{ Code string } `json:"error"`
		}
		if code := c.do("GET", "/api/v1/admin/audit", nil, &ae); code != 403 || ae.Error.Code != "forbidden" {
			t.Fatalf("%s reads the audit trail: %d %+v", c.handle, code, ae)
		}
	}
	want := []struct {
		action, actor, target string
		details               map[string]any
	}{
		{audit.RoomCreate, "ann", "", map[string]any{"visibility": "public", "recording": true}},
		{audit.RoomUpdate, "ann", "", map[string]any{"title": "Ann's show", "visibility": "unlisted"}},
		{audit.KeyRotate, "ann", "", map[string]any{"live_stopped": false}},
		{audit.ModeratorAdd, "ann", "user:carol", nil},
		{audit.ModeratorRemove, "ann", "user:carol", nil},
		{audit.ModeratorAdd, "ann", "user:bob", nil},
		{audit.BroadcastDelete, "root", "broadcast:" + publicID, map[string]any{"recording": false}},
		{audit.WebhookCreate, "ann", "webhook:" + hook.Webhook.ID, map[string]any{"format": "json"}},
		{audit.WebhookDelete, "ann", "webhook:" + hook.Webhook.ID, nil},
		{audit.RoomDelete, "ann", "", nil},
	}
	var page auditPage
	testenv.Eventually(t, 5*time.Second, func() (bool, string) {
		page = auditPage{}
		root.must(200, "GET", "/api/v1/admin/audit?limit=100", nil, &page)
		return len(page.Entries) == len(want), fmt.Sprintf("%d entries", len(page.Entries))
	})
	for i, w := range want {
		got := page.Entries[len(page.Entries)-1-i] // the list is newest first
		target := ""
		if got.Target != nil {
			target = got.Target.Kind + ":" + got.Target.ID
			if got.Target.Kind == audit.KindUser {
				target = got.Target.Kind + ":" + got.Target.Name
			}
		}
		if got.Action != w.action || got.Actor.Handle != w.actor || target != w.target || got.IP != "127.0.0.1" ||
			got.Room == nil || got.Room.ID != room.ID || got.Room.Slug != "ann-room" || got.At.IsZero() || got.Node != "web-test" {
			t.Errorf("entry %d = %+v (target %s), want %s by %s on %s", i, got, target, w.action, w.actor, w.target)
			continue
		}
		for k, v := range w.details {
			if got.Details[k] != v {
				t.Errorf("entry %d (%s): details[%s] = %#v, want %#v", i, w.action, k, got.Details[k], v)
			}
		}
	}
	if admin := page.Entries[len(page.Entries)-1-6]; !admin.Actor.Admin {
		t.Errorf("the admin's delete does not say it was an admin: %+v", admin.Actor)
	}
	raw, _ := json.Marshal(page)
	for _, secret := range []string{created.StreamKey, rotated.StreamKey, hook.Secret} {
		if strings.Contains(string(raw), secret) {
			t.Fatalf("the audit trail holds a secret (%.8s…)", secret)
		}
	}

	// Filters and pages.
	for _, tt := range []struct {
		query string
		want  int
	}{
		{"room=ann-room", len(want)},
		{"actor=ann", 9},
		{"actor=@root&action=broadcast.delete", 1},
		{"action=webhook.*", 2},
		{"action=room.*&room=" + room.ID, 7},
		{"room=nobody", 0},
	} {
		var p auditPage
		root.must(200, "GET", "/api/v1/admin/audit?"+tt.query, nil, &p)
		if len(p.Entries) != tt.want {
			t.Errorf("?%s: %d entries, want %d", tt.query, len(p.Entries), tt.want)
		}
	}
	var p1, p2 auditPage
	root.must(200, "GET", "/api/v1/admin/audit?limit=6", nil, &p1)
	root.must(200, "GET", "/api/v1/admin/audit?limit=6&cursor="+p1.Next, nil, &p2)
	if len(p1.Entries) != 6 || len(p2.Entries) != len(want)-6 || p2.Next != "" || p2.Entries[0].ID == p1.Entries[5].ID {
		t.Fatalf("pages: %d (next %q), %d", len(p1.Entries), p1.Next, len(p2.Entries))
	}
	var bad struct {
		Error struct{ Field string } `json:"error"`
	}
	if code := root.do("GET", "/api/v1/admin/audit?cursor=xyz", nil, &bad); code != 400 || bad.Error.Field != "cursor" {
		t.Fatalf("bad cursor: %d %+v", code, bad)
	}
	if code := root.do("GET", "/api/v1/admin/audit?limit=-1", nil, &bad); code != 400 {
		t.Fatalf("bad limit: %d", code)
	}
}

// Room webhooks through the API: only the owner (or an admin) lists, creates and deletes
// them and reads their delivery log; the secret is shown once.
func TestRoomWebhooksThroughTheAPI(t *testing.T) {
	e := newEventsEnv(t)
	root, ann, bob, anon := e.client(), e.client(), e.client(), e.client()
	root.signUp("root")
	ann.signUp("ann")
	bob.signUp("bob")
	var created struct {
		Room rooms.Room `json:"room"`
	}
	ann.must(201, "POST", "/api/v1/rooms", map[string]any{"slug": "ann-room", "title": "Ann's room"}, &created)
	ann.must(200, "POST", "/api/v1/rooms/ann-room/moderators", map[string]string{"handle": "bob"}, nil)

	got := make(chan *http.Request, 10)
	bodies := make(chan []byte, 10)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- r
		bodies <- b
	}))
	t.Cleanup(rcv.Close)

	// Not the owner: not even a moderator may.
	body := map[string]any{"url": rcv.URL + "/onair", "events": []string{"stream.started", "chat.moderation"}}
	if code := anon.do("POST", "/api/v1/rooms/ann-room/webhooks", body, nil); code != 401 {
		t.Fatalf("anonymous create: %d", code)
	}
	for _, req := range []struct{ method, path string }{
		{"GET", "/api/v1/rooms/ann-room/webhooks"}, {"POST", "/api/v1/rooms/ann-room/webhooks"},
	} {
		var b any
		if req.method == "POST" {
			b = body
		}
		if code := bob.do(req.method, req.path, b, nil); code != 403 {
			t.Fatalf("bob %s %s: %d, want 403", req.method, req.path, code)
		}
	}
	var bad struct {
		Error struct{ Code, Field string } `json:"error"`
	}
	if code := ann.do("POST", "/api/v1/rooms/ann-room/webhooks", map[string]any{"url": "gopher://x"}, &bad); code != 400 || bad.Error.Field != "url" {
		t.Fatalf("bad url: %d %+v", code, bad)
	}
	if code := ann.do("POST", "/api/v1/rooms/ann-room/webhooks", map[string]any{"url": rcv.URL, "secret": "mine"}, &bad); code != 400 || bad.Error.Field != "secret" {
		t.Fatalf("a chosen secret: %d %+v", code, bad)
	}
	if code := ann.do("POST", "/api/v1/rooms/nope/webhooks", body, nil); code != 404 {
		t.Fatalf("no such room: %d", code)
	}

	var hook struct {
		Webhook webhook.Webhook `json:"webhook"`
		Secret  string          `json:"secret"`
	}
	ann.must(201, "POST", "/api/v1/rooms/ann-room/webhooks", body, &hook)
	if hook.Secret == "" || hook.Webhook.ID == "" || hook.Webhook.URL != rcv.URL+"/onair" || len(hook.Webhook.Events) != 2 {
		t.Fatalf("created %+v", hook)
	}
	for _, c := range []*apiClient{ann, root} {
		var raw json.RawMessage
		c.must(200, "GET", "/api/v1/rooms/ann-room/webhooks", nil, &raw)
		if !strings.Contains(string(raw), hook.Webhook.ID) || strings.Contains(string(raw), hook.Secret) || strings.Contains(string(raw), "secret") {
			t.Fatalf("list as %s: %s", c.handle, raw)
		}
	}

	// An event of the room reaches the receiver, signed with the secret shown once.
	if err := e.webhooks.Publish(webhook.Event{Type: webhook.StreamStarted,
		Room: webhook.Room{ID: created.Room.ID, Slug: "ann-room", Title: "Ann's room"}, Data: map[string]any{"broadcast": map[string]any{"id": "b1"}}}); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-got:
		b := <-bodies
		if err := webhook.Verify(hook.Secret, r.Header.Get(webhook.SignatureHeader), b, time.Now(), webhook.DefaultTolerance); err != nil {
			t.Fatalf("signature: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no delivery")
	}
	var log webhook.DeliveryPage
	path := "/api/v1/rooms/ann-room/webhooks/" + hook.Webhook.ID + "/deliveries?bodies=true"
	testenv.Eventually(t, 5*time.Second, func() (bool, string) {
		log = webhook.DeliveryPage{}
		ann.must(200, "GET", path, nil, &log)
		return len(log.Deliveries) == 1 && log.Deliveries[0].Status == webhook.StatusDelivered, fmt.Sprintf("%+v", log)
	})
	if dl := log.Deliveries[0]; dl.Attempts != 1 || dl.LastStatus != 200 || dl.Type != webhook.StreamStarted || !strings.Contains(string(dl.Body), `"slug":"ann-room"`) {
		t.Fatalf("delivery = %+v", dl)
	}
	if code := bob.do("GET", path, nil, nil); code != 403 {
		t.Fatalf("bob reads the delivery log: %d", code)
	}
	var all webhook.DeliveryPage
	root.must(200, "GET", "/api/v1/admin/webhooks/deliveries?room=ann-room", nil, &all)
	if len(all.Deliveries) != 1 {
		t.Fatalf("admin's view: %+v", all)
	}
	if code := ann.do("GET", "/api/v1/admin/webhooks/deliveries", nil, nil); code != 403 {
		t.Fatalf("ann reads every delivery: %d", code)
	}
	if code := bob.do("DELETE", "/api/v1/rooms/ann-room/webhooks/"+hook.Webhook.ID, nil, nil); code != 403 {
		t.Fatalf("bob deletes: %d", code)
	}
	ann.must(204, "DELETE", "/api/v1/rooms/ann-room/webhooks/"+hook.Webhook.ID, nil, nil)
	if code := ann.do("DELETE", "/api/v1/rooms/ann-room/webhooks/"+hook.Webhook.ID, nil, nil); code != 404 {
		t.Fatalf("second delete: %d", code)
	}
	if code := ann.do("GET", path, nil, nil); code != 404 {
		t.Fatalf("a deleted webhook's log: %d", code)
	}
}

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"onair/scripts/testenv"
	"onair/web"
)

// bearer is a script's client of the API: an API token, no cookies, no Origin, no CSRF
// token.
type bearer struct {
	t      *testing.T
	base   string
	secret string
}

func (b bearer) do(method, path string, body any, out any) int {
	b.t.Helper()
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = strings.NewReader(string(raw))
	}
	req, err := http.NewRequest(method, b.base+path, rd)
	if err != nil {
		b.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+b.secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && len(raw) > 0 {
		_ = json.Unmarshal(raw, out)
	}
	return resp.StatusCode
}

// token makes an API token through the signed-in client's session.
func (c *client) token(name string, scopes ...string) (id, secret string) {
	c.t.Helper()
	var out struct {
		Token struct {
			ID string `json:"id"`
		} `json:"token"`
		Secret string `json:"secret"`
	}
	c.must(201, "POST", "/api/v1/tokens", map[string]any{"name": name, "scopes": scopes, "expires_in_days": 30}, &out)
	return out.Token.ID, out.Secret
}

// API tokens against the real server: a token with rooms:read cannot create a room, one
// with rooms:write can; a revoked or expired one is refused; none needs Origin or a CSRF
// token; admin scopes are for admins; no token makes tokens. The OpenAPI document's every
// operation reaches a handler of the real binary.
func TestAPITokensAndOpenAPI(t *testing.T) {
	o, m := startWithMongo(t)
	ann := newClient(t, o.HTTP)
	ann.signUp("ann") // the first account: admin
	bob := newClient(t, o.HTTP)
	bob.signUp("bob")

	_, readSecret := bob.token("reader", "rooms:read")
	writeID, writeSecret := bob.token("writer", "rooms:read", "rooms:write")
	reader := bearer{t, o.HTTP, readSecret}
	writer := bearer{t, o.HTTP, writeSecret}

	var e apiErr
	if code := reader.do("POST", "/api/v1/rooms", map[string]string{"slug": "bob-bot", "title": "Bot"}, &e); code != 403 || e.Error.Code != "forbidden" {
		t.Fatalf("rooms:read creates a room: %d %+v", code, e)
	}
	var created struct {
		Room      apiRoom `json:"room"`
		StreamKey string  `json:"stream_key"`
	}
	if code := writer.do("POST", "/api/v1/rooms", map[string]string{"slug": "bob-bot", "title": "Bot"}, &created); code != 201 || created.StreamKey == "" {
		t.Fatalf("rooms:write creates a room without Origin or CSRF token: %d %+v", code, created)
	}
	var list struct {
		Rooms []apiRoom `json:"rooms"`
	}
	if code := reader.do("GET", "/api/v1/rooms?owner=me", nil, &list); code != 200 || len(list.Rooms) != 1 || list.Rooms[0].Slug != "bob-bot" {
		t.Fatalf("rooms:read lists bob's rooms: %d %+v", code, list)
	}
	if code := reader.do("GET", "/api/v1/rooms/bob-bot/chat/moderation", nil, &e); code != 403 {
		t.Errorf("rooms:read reads the moderation log: %d", code)
	}
	if code := writer.do("POST", "/api/v1/tokens", map[string]any{"name": "more", "scopes": []string{"rooms:read"}}, &e); code != 403 {
		t.Errorf("a token makes a token: %d", code)
	}
	if code, _ := bob.do("POST", "/api/v1/tokens", map[string]any{"name": "ops", "scopes": []string{"admin:read"}}, &e); code != 403 {
		t.Errorf("bob gives his token an admin scope: %d", code)
	}
	if o.LogsContain(writeSecret) || o.LogsContain(readSecret) {
		t.Fatal("an API token is in the logs")
	}

	bob.must(204, "DELETE", "/api/v1/tokens/"+writeID, nil, nil)
	if code := writer.do("GET", "/api/v1/rooms/bob-bot", nil, &e); code != 401 || e.Error.Code != "unauthorized" {
		t.Errorf("a revoked token: %d %+v", code, e)
	}

	// Expiry: the shortest token lives a day; this one's expiry is moved into the past.
	_, soonSecret := bob.token("soon", "rooms:read")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := m.Client(t).Database("onair").Collection("api_tokens").UpdateOne(ctx, bson.D{{Key: "name", Value: "soon"}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "expires", Value: time.Now().Add(-time.Minute)}}}})
	if err != nil || res.MatchedCount != 1 {
		t.Fatalf("expire the token: %v %+v", err, res)
	}
	if code := (bearer{t, o.HTTP, soonSecret}).do("GET", "/api/v1/rooms", nil, &e); code != 401 {
		t.Errorf("an expired token: %d", code)
	}
	if code := (bearer{t, o.HTTP, "onair_pat_" + strings.Repeat("A", 43)}).do("GET", "/api/v1/rooms", nil, &e); code != 401 {
		t.Errorf("an unknown token: %d", code)
	}

	// The document names every operation, and each reaches a handler of the binary.
	code, _, doc := ann.get("/api/v1/openapi.json")
	if code != 200 {
		t.Fatalf("openapi.json: %d", code)
	}
	ops, err := web.DocumentedOperations(doc)
	if err != nil || len(ops) < 60 {
		t.Fatalf("%d documented operations: %v", len(ops), err)
	}
	for _, want := range []string{"POST /api/v1/tokens", "PATCH /api/v1/admin/users/{user}", "POST /api/v1/rooms/{slug}/chat/purges",
		"POST /api/v1/rooms/{slug}/webhooks/{id}/test", "GET /live/{name}/{file}"} {
		if !slices.Contains(ops, want) {
			t.Errorf("the document lacks %s", want)
		}
	}
	bad, err := web.Unanswered(ops, func(method, path string) (*http.Response, error) {
		req, err := http.NewRequest(method, o.HTTP+path, strings.NewReader("{}"))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", o.HTTP)
		return http.DefaultClient.Do(req)
	})
	if err != nil || len(bad) > 0 {
		t.Fatalf("documented operations the binary does not serve: %v %v", bad, err)
	}
}

// Admins on two nodes: an admin made by another admin does what admins do; disabling a
// user through one node ends their live publish on the other, their sessions and their
// API tokens; the audit trail has it all; taking a room down deletes it.
func TestAdminsAcrossNodes(t *testing.T) {
	bin := testenv.OnairBinary(t)
	m, s3 := testenv.StartMongoDB(t), testenv.StartS3(t)
	a := startNode(t, bin, m, s3)
	b := startNode(t, bin, m, s3)

	ann := newClient(t, a.HTTP)
	ann.signUp("ann") // admin
	bob := newClient(t, a.HTTP)
	bob.signUp("bob")
	carol := newClient(t, b.HTTP)
	carol.signUp("carol")
	_, carolSecret := carol.token("carol bot", "rooms:read")
	room, key := carol.createRoom("carol-live")
	pub := testenv.Publish(t, b.RTMP+"/"+key, testenv.PublishOptions{})
	waitIndex(t, b, "carol-live")
	testenv.Eventually(t, 20*time.Second, func() (bool, string) {
		var r apiRoom
		ann.must(200, "GET", "/api/v1/rooms/carol-live", nil, &r)
		return r.Live, "carol's room not live yet"
	})

	var e apiErr
	if code, _ := bob.do("GET", "/api/v1/admin/users", nil, &e); code != 403 {
		t.Fatalf("bob lists users before being made admin: %d", code)
	}
	var users struct {
		Users []apiUser `json:"users"`
	}
	ann.must(200, "GET", "/api/v1/admin/users?q=BO", nil, &users)
	if len(users.Users) != 1 || users.Users[0].Handle != "bob" {
		t.Fatalf("search bo: %+v", users)
	}
	var promoted apiUser
	ann.must(200, "PATCH", "/api/v1/admin/users/bob", map[string]bool{"admin": true}, &promoted)
	if !promoted.Admin {
		t.Fatalf("bob after the grant: %+v", promoted)
	}

	// Bob, admin now, uses a token of his with admin scopes, through node A: carol's
	// stream runs on node B, whose broadcast heartbeat ends it.
	_, bobSecret := bob.token("ops", "admin:read", "admin:write")
	ops := bearer{t, a.HTTP, bobSecret}
	var disabled apiUser
	asked := time.Now()
	if code := ops.do("PATCH", "/api/v1/admin/users/carol", map[string]bool{"disabled": true}, &disabled); code != 200 {
		t.Fatalf("bob disables carol: %d", code)
	}
	select {
	case <-pub.Done():
		t.Logf("carol's publish on node B ended %s after bob's request", time.Since(asked).Round(time.Millisecond))
	case <-time.After(15 * time.Second):
		t.Fatal("carol's live publish was not ended")
	}
	testenv.Eventually(t, 15*time.Second, func() (bool, string) {
		var r apiRoom
		ann.must(200, "GET", "/api/v1/rooms/carol-live", nil, &r)
		return !r.Live, "carol's room still live"
	})
	for _, node := range []*testenv.Onair{a, b} {
		if code, _ := carol.at(node.HTTP).do("GET", "/api/v1/auth/me", nil, &e); code != 401 {
			t.Errorf("carol's session on %s: %d, want 401", node.HTTP, code)
		}
	}
	if code := (bearer{t, a.HTTP, carolSecret}).do("GET", "/api/v1/rooms", nil, &e); code != 401 {
		t.Errorf("carol's API token: %d, want 401", code)
	}
	if code, _ := newClient(t, a.HTTP).do("POST", "/api/v1/auth/login", map[string]string{"login": "carol", "password": "correct horse battery"}, &e); code != 403 {
		t.Errorf("carol logs in: %d %+v, want 403", code, e)
	}
	again := testenv.Publish(t, b.RTMP+"/"+key, testenv.PublishOptions{Duration: 20 * time.Second})
	select {
	case <-again.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("carol's key still publishes")
	}

	// The audit trail, read by the admin that another admin made.
	var trail struct {
		Entries []struct {
			Action string `json:"action"`
			Actor  struct {
				Handle string `json:"handle"`
			} `json:"actor"`
			Target *struct {
				Name string `json:"name"`
			} `json:"target"`
		} `json:"entries"`
	}
	testenv.Eventually(t, 10*time.Second, func() (bool, string) {
		if code := ops.do("GET", "/api/v1/admin/audit?action=user.*", nil, &trail); code != 200 {
			return false, fmt.Sprint(code)
		}
		return len(trail.Entries) == 2, fmt.Sprintf("%+v", trail.Entries)
	})
	if en := trail.Entries[0]; en.Action != "user.disable" || en.Actor.Handle != "bob" || en.Target == nil || en.Target.Name != "carol" {
		t.Errorf("newest user entry: %+v", en)
	}
	if en := trail.Entries[1]; en.Action != "user.admin_grant" || en.Actor.Handle != "ann" {
		t.Errorf("oldest user entry: %+v", en)
	}

	// The cluster's health names both nodes; a room is taken down.
	var health struct {
		Nodes []struct {
			ID string `json:"id"`
		} `json:"nodes"`
	}
	if code := ops.do("GET", "/api/v1/admin/health", nil, &health); code != 200 || len(health.Nodes) != 2 {
		t.Errorf("health: %d %+v", code, health)
	}
	if code := ops.do("DELETE", "/api/v1/rooms/carol-live", nil, nil); code != 403 {
		t.Errorf("an admin:* token deletes a room through the owners' route: %d (its scope is rooms:write)", code)
	}
	if code := ops.do("DELETE", "/api/v1/admin/rooms/"+room.Slug, nil, nil); code != 204 {
		t.Errorf("an admin's admin:write token takes the room down: %d", code)
	}
	if code, _ := ann.do("GET", "/api/v1/rooms/carol-live", nil, &e); code != 404 {
		t.Errorf("the room taken down: %d", code)
	}
}

// flakyReceiver is a room's webhook receiver that refuses everything until told to accept.
type flakyReceiver struct {
	*hookReceiver
	mu sync.Mutex
	ok bool
}

func newFlakyReceiver(t *testing.T) *flakyReceiver {
	f := &flakyReceiver{hookReceiver: &hookReceiver{seen: map[string]bool{}}}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		req := hookRequest{header: r.Header.Clone(), body: b}
		_ = json.Unmarshal(b, &req.event)
		f.mu.Lock()
		ok := f.ok
		f.mu.Unlock()
		f.hookReceiver.mu.Lock()
		f.got = append(f.got, req)
		f.hookReceiver.mu.Unlock()
		if !ok {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *flakyReceiver) accept() {
	f.mu.Lock()
	f.ok = true
	f.mu.Unlock()
}

type apiDelivery struct {
	ID           string `json:"id"`
	EventID      string `json:"event_id"`
	Type         string `json:"type"`
	Status       string `json:"status"`
	LastStatus   int    `json:"last_status"`
	RedeliveryOf string `json:"redelivery_of"`
}

// A room's webhook edited, sent a test event that fails, then sent it again once its
// receiver is back: both are in its delivery log. Moderation through the API: slow mode,
// a ban with a purge of the user's messages, the list of bans, an unban, a timeout of a
// chosen length, the log. An account's password changed, its sessions ended, the account
// deleted with its live room; room.created and room.deleted reach the global webhook.
func TestWebhooksModerationAndAccount(t *testing.T) {
	const secret = "whsec_e2e-global-secret-0123456789"
	global := newHookReceiver(t, func() string { return secret })
	flaky := newFlakyReceiver(t)
	o, _ := startWithMongo(t, "ONAIR_WEBHOOKS_URL="+global.URL, "ONAIR_WEBHOOKS_SECRET="+secret,
		"ONAIR_WEBHOOKS_ALLOW_PRIVATE=true", "ONAIR_WEBHOOKS_BACKOFF_MIN=100ms", "ONAIR_WEBHOOKS_BACKOFF_MAX=200ms",
		"ONAIR_WEBHOOKS_GIVE_UP_AFTER=1s")
	ann := newClient(t, o.HTTP)
	ann.signUp("ann")
	ann.createRoom("ann-show")

	var hook struct {
		Webhook struct {
			ID     string   `json:"id"`
			Format string   `json:"format"`
			Events []string `json:"events"`
		} `json:"webhook"`
	}
	ann.must(201, "POST", "/api/v1/rooms/ann-show/webhooks", map[string]any{"url": flaky.URL + "/old"}, &hook)
	base := "/api/v1/rooms/ann-show/webhooks/" + hook.Webhook.ID
	var edited struct {
		URL    string   `json:"url"`
		Events []string `json:"events"`
	}
	ann.must(200, "PATCH", base, map[string]any{"url": flaky.URL + "/hooks", "events": []string{"chat.moderation", "stream.started"}}, &edited)
	if edited.URL != flaky.URL+"/hooks" || !slices.Equal(edited.Events, []string{"chat.moderation", "stream.started"}) {
		t.Fatalf("edited webhook: %+v", edited)
	}
	var e apiErr
	if code, _ := ann.do("PATCH", base, map[string]any{"events": []string{"room.deleted"}}, &e); code != 400 || e.Error.Field != "events" {
		t.Errorf("a room webhook subscribing to room.deleted: %d %+v", code, e)
	}

	var test apiDelivery
	ann.must(202, "POST", base+"/test", nil, &test)
	log := func(want int) []apiDelivery {
		t.Helper()
		var page struct {
			Deliveries []apiDelivery `json:"deliveries"`
		}
		testenv.Eventually(t, 15*time.Second, func() (bool, string) {
			ann.must(200, "GET", base+"/deliveries", nil, &page)
			if len(page.Deliveries) != want {
				return false, fmt.Sprintf("%d deliveries", len(page.Deliveries))
			}
			for _, d := range page.Deliveries {
				if d.Status == "pending" {
					return false, "a delivery is pending"
				}
			}
			return true, ""
		})
		return page.Deliveries
	}
	got := log(1)
	if got[0].ID != test.ID || got[0].Type != "webhook.test" || got[0].Status != "failed" || got[0].LastStatus != 503 {
		t.Fatalf("the test event's delivery: %+v", got[0])
	}
	flaky.accept()
	var again apiDelivery
	ann.must(202, "POST", base+"/deliveries/"+test.ID+"/redeliver", nil, &again)
	got = log(2)
	if got[0].ID != again.ID || got[0].Status != "delivered" || got[0].RedeliveryOf != test.ID || got[0].EventID != test.EventID {
		t.Fatalf("the redelivery: %+v", got[0])
	}
	reqs := flaky.requests()
	if last := reqs[len(reqs)-1]; last.event.Type != "webhook.test" || last.header.Get("Onair-Event-Id") != test.EventID {
		t.Errorf("the receiver's last request: %s %s", last.event.Type, last.header.Get("Onair-Event-Id"))
	}

	// Moderation.
	bob := newClient(t, o.HTTP)
	bob.signUp("bob")
	ws := bob.chat("ann-show")
	ws.next("history")
	for i := range 3 {
		if f := ws.post(fmt.Sprint("spam ", i)); f.Type != "ack" {
			t.Fatalf("bob's post: %+v", f)
		}
	}
	chat := "/api/v1/rooms/ann-show/chat"
	ann.must(204, "PUT", chat+"/slow-mode", map[string]int{"seconds": 10}, nil)
	ann.must(204, "POST", chat+"/bans", map[string]string{"handle": "bob", "reason": "spam"}, nil)
	var purged struct {
		Deleted int `json:"deleted"`
	}
	ann.must(200, "POST", chat+"/purges", map[string]any{"handle": "bob", "minutes": 60}, &purged)
	if purged.Deleted != 3 {
		t.Errorf("purged %d messages, want 3", purged.Deleted)
	}
	if code, _ := ann.do("POST", chat+"/purges", map[string]any{"handle": "bob", "minutes": 2000}, &e); code != 400 || e.Error.Field != "minutes" {
		t.Errorf("a purge of more than a day: %d %+v", code, e)
	}
	var history struct {
		Messages []frame `json:"messages"`
	}
	ann.must(200, "GET", chat+"/history", nil, &history)
	for _, m := range history.Messages {
		if m.Handle == "bob" {
			t.Errorf("bob's message survived the purge: %+v", m)
		}
	}
	var bans struct {
		Bans []struct {
			Handle string `json:"handle"`
			Banned bool   `json:"banned"`
		} `json:"bans"`
	}
	ann.must(200, "GET", chat+"/bans", nil, &bans)
	if len(bans.Bans) != 1 || bans.Bans[0].Handle != "bob" || !bans.Bans[0].Banned {
		t.Fatalf("bans: %+v", bans)
	}
	if code, _ := bob.do("GET", chat+"/bans", nil, &e); code != 403 {
		t.Errorf("bob lists the bans: %d", code)
	}
	ann.must(204, "DELETE", chat+"/bans/bob", nil, nil)
	ann.must(204, "POST", chat+"/timeouts", map[string]any{"handle": "bob", "seconds": 120}, nil)
	var modlog struct {
		Actions []struct {
			Action     string `json:"action"`
			DurationMS int64  `json:"duration_ms"`
			Count      int    `json:"count"`
		} `json:"actions"`
	}
	ann.must(200, "GET", chat+"/moderation", nil, &modlog)
	var actions []string
	for _, a := range modlog.Actions {
		actions = append(actions, a.Action)
	}
	if !slices.Equal(actions, []string{"timeout", "unban", "purge", "ban", "slow_mode"}) || modlog.Actions[0].DurationMS != 120_000 || modlog.Actions[2].Count != 3 {
		t.Errorf("moderation log: %+v", modlog.Actions)
	}
	testenv.Eventually(t, 10*time.Second, func() (bool, string) {
		for _, r := range flaky.requests() {
			if r.event.Type == "chat.moderation" && r.event.Data.Action == "purge" {
				return true, ""
			}
		}
		return false, "no chat.moderation purge at the room's webhook"
	})

	// An account: password, sessions, deletion with a live room.
	dave := newClient(t, o.HTTP)
	dave.signUp("dave")
	other := newClient(t, o.HTTP)
	other.must(200, "POST", "/api/v1/auth/login", map[string]string{"login": "dave", "password": "correct horse battery"}, nil)
	if code, _ := dave.do("POST", "/api/v1/auth/password", map[string]string{"current_password": "wrong password!", "new_password": "a brand new password"}, &e); code != 400 || e.Error.Field != "current_password" {
		t.Fatalf("a wrong current password: %d %+v", code, e)
	}
	dave.must(204, "POST", "/api/v1/auth/password", map[string]string{"current_password": "correct horse battery", "new_password": "a brand new password"}, nil)
	dave.must(200, "GET", "/api/v1/auth/me", nil, nil)
	if code, _ := other.do("GET", "/api/v1/auth/me", nil, &e); code != 401 {
		t.Errorf("dave's other session after the password change: %d", code)
	}
	dave.must(204, "DELETE", "/api/v1/auth/sessions", nil, nil)
	if code, _ := dave.do("GET", "/api/v1/auth/me", nil, &e); code != 401 {
		t.Errorf("dave after signing out everywhere: %d", code)
	}
	var me meResponse
	dave.must(200, "POST", "/api/v1/auth/login", map[string]string{"login": "dave", "password": "a brand new password"}, &me)
	dave.csrf = me.CSRFToken
	daveRoom, key := dave.createRoom("dave-live")
	pub := testenv.Publish(t, o.RTMP+"/"+key, testenv.PublishOptions{})
	waitIndex(t, o, "dave-live")
	if code, _ := dave.do("POST", "/api/v1/auth/account/delete", map[string]string{"handle": "ann", "password": "a brand new password"}, &e); code != 400 || e.Error.Field != "handle" {
		t.Fatalf("deletion confirmed with another handle: %d %+v", code, e)
	}
	dave.must(204, "POST", "/api/v1/auth/account/delete", map[string]string{"handle": "dave", "password": "a brand new password"}, nil)
	select {
	case <-pub.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("dave's live publish went on after the account was deleted")
	}
	if code, _ := ann.do("GET", "/api/v1/rooms/dave-live", nil, &e); code != 404 {
		t.Errorf("dave's room: %d", code)
	}
	// The recording of the broadcast stopped by the deletion goes too, once it completes.
	recordings := filepath.Join(o.DataDir, "objects", "objects", "recordings", daveRoom.ID)
	testenv.Eventually(t, 20*time.Second, func() (bool, string) {
		var files []string
		_ = filepath.WalkDir(recordings, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				files = append(files, p)
			}
			return nil
		})
		// The recording completes after the room is deleted and is deleted then, or (the
		// run's log is the recording, and it can complete first) is attached before and
		// goes with the room.
		attached := slices.ContainsFunc(strings.Split(o.Logs(), "\n"), func(l string) bool {
			return strings.Contains(l, `msg="recording attached"`) && strings.Contains(l, "room_id="+daveRoom.ID)
		})
		return len(files) == 0 && (attached || o.LogsContain("recording of a deleted room deleted")),
			fmt.Sprintf("dave's recordings left: %v (attached before the deletion: %v)", files, attached)
	})
	if code, _ := newClient(t, o.HTTP).do("POST", "/api/v1/auth/login", map[string]string{"login": "dave", "password": "a brand new password"}, &e); code != 401 {
		t.Errorf("dave logs in after deleting the account: %d", code)
	}
	testenv.Eventually(t, 10*time.Second, func() (bool, string) {
		types := global.types()
		return slices.Contains(types, "room.created") && slices.Contains(types, "room.deleted"), fmt.Sprint(types)
	})
	for _, r := range global.requests() {
		if r.signature != nil {
			t.Errorf("%s: %v", r.event.Type, r.signature)
		}
		if r.event.Type == "room.deleted" && r.event.Room.Slug != "dave-live" {
			t.Errorf("room.deleted of %s", r.event.Room.Slug)
		}
	}
}

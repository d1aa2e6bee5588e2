package e2e

import (
	"path/filepath"
	"testing"

	"onair/scripts/testenv"
)

// TestBrowserOps runs the operating scenario (web/ui/e2e/ops.mjs) in Chromium: an API
// token made, used and revoked in the settings; a room's webhook added, edited, tested
// and redelivered from its dashboard; chat moderation from the room page; the admin
// console (make admin, disable, take down, audit filters, redelivery, health); a password
// change, signing out everywhere and deleting an account. This side sets the accounts and
// rooms up, plays the webhook's receiver, and checks through the API what the clicks did.
func TestBrowserOps(t *testing.T) {
	chromium := browserDeps(t)
	hook := newFlakyReceiver(t)
	o, _ := startWithMongo(t, "ONAIR_WEBHOOKS_ALLOW_PRIVATE=true", "ONAIR_WEBHOOKS_BACKOFF_MIN=100ms",
		"ONAIR_WEBHOOKS_BACKOFF_MAX=200ms", "ONAIR_WEBHOOKS_GIVE_UP_AFTER=1s")
	root := newClient(t, o.HTTP)
	root.signUp("root") // the first account: admin
	root.createRoom("root-show")
	bob := newClient(t, o.HTTP)
	bob.signUp("bob")
	ws := bob.chat("root-show")
	ws.next("history")
	for _, text := range []string{"buy followers", "cheap followers", "followers here"} {
		if f := ws.post(text); f.Type != "ack" {
			t.Fatalf("bob's post: %+v", f)
		}
	}
	carol := newClient(t, o.HTTP)
	carol.signUp("carol")
	carol.createRoom("carol-room")
	newClient(t, o.HTTP).signUp("dave")

	runBrowserScript(t, "ops.mjs", []string{
		"ONAIR_URL=" + o.HTTP, "HOOK_URL=" + hook.URL, "CHROMIUM=" + chromium,
		"ONAIR_SCREENSHOTS=" + filepath.Join(testenv.RepoRoot(t), ".artifacts", "screenshots"),
	}, func(command string, _ []string) string {
		if command != "@accept" {
			t.Fatalf("the scenario asked for %s", command)
		}
		hook.accept()
		return "ok"
	})

	// What the clicks did, as the API sees it.
	var users struct {
		Users []apiUser `json:"users"`
	}
	root.must(200, "GET", "/api/v1/admin/users?q=carol", nil, &users)
	if len(users.Users) != 1 || !users.Users[0].Admin {
		t.Errorf("carol after the console: %+v", users.Users)
	}
	var e apiErr
	if code, _ := newClient(t, o.HTTP).do("POST", "/api/v1/auth/login", map[string]string{"login": "carol", "password": "correct horse battery"}, &e); code != 403 {
		t.Errorf("carol, disabled in the console, logs in: %d", code)
	}
	if code, _ := root.do("GET", "/api/v1/rooms/carol-room", nil, &e); code != 404 {
		t.Errorf("carol's room, taken down: %d", code)
	}
	if code, _ := newClient(t, o.HTTP).do("POST", "/api/v1/auth/login", map[string]string{"login": "dave", "password": "a brand new password"}, &e); code != 401 {
		t.Errorf("dave, who deleted his account, logs in: %d", code)
	}
	var bans struct {
		Bans []struct {
			Handle string `json:"handle"`
			Banned bool   `json:"banned"`
		} `json:"bans"`
	}
	root.must(200, "GET", "/api/v1/rooms/root-show/chat/bans", nil, &bans)
	if len(bans.Bans) != 1 || bans.Bans[0].Handle != "bob" || bans.Bans[0].Banned {
		t.Errorf("bob after the panel: %+v (want a timeout)", bans.Bans)
	}
	delivered := 0
	for _, r := range hook.requests() {
		if r.header.Get("Onair-Event") == "webhook.test" {
			delivered++
		}
	}
	if delivered < 3 {
		t.Errorf("the receiver got %d test requests, want the failed attempts and two redeliveries", delivered)
	}
}

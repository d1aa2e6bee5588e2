package web

import (
	"slices"
	"strings"
	"testing"
)

// Moderation refused by chat's rules answers 403 "forbidden" with the rule in the message,
// and records nothing (issue 12: a banned moderator lifted their own ban; a moderator
// deleted the owner's and an admin's messages).
func TestChatModerationRanksThroughTheAPI(t *testing.T) {
	e := newEventsEnv(t)
	root, ann, bob, carol := e.client(), e.client(), e.client(), e.client()
	root.signUp("root") // the first account: an admin
	ann.signUp("ann")
	bob.signUp("bob")
	carol.signUp("carol")
	ann.must(201, "POST", "/api/v1/rooms", map[string]any{"slug": "ranks", "title": "Ranks"}, nil)
	ann.must(200, "POST", "/api/v1/rooms/ranks/moderators", map[string]string{"handle": "bob"}, nil)
	annMsg := ann.post("ranks", "from the owner")
	rootMsg := root.post("ranks", "from an admin")

	type apiError struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	refused := func(c *apiClient, method, path string, body any, want string) {
		t.Helper()
		var e apiError
		if code := c.do(method, path, body, &e); code != 403 || e.Error.Code != "forbidden" || !strings.Contains(e.Error.Message, want) {
			t.Fatalf("%s %s as %s: %d %+v, want 403 forbidden saying %q", method, path, c.handle, code, e.Error, want)
		}
	}
	refused(bob, "DELETE", "/api/v1/rooms/ranks/chat/messages/"+annMsg, nil, "a moderator cannot delete a message of the room's owner")
	refused(bob, "DELETE", "/api/v1/rooms/ranks/chat/messages/"+rootMsg, nil, "a moderator cannot delete a message of an admin")

	ann.must(204, "POST", "/api/v1/rooms/ranks/chat/bans", map[string]any{"handle": "bob", "reason": "abuse"}, nil)
	refused(bob, "DELETE", "/api/v1/rooms/ranks/chat/bans/bob", nil, "you cannot lift your own ban")
	refused(bob, "POST", "/api/v1/rooms/ranks/chat/timeouts", map[string]any{"handle": "carol", "seconds": 60}, "you are banned in this room")
	refused(bob, "PUT", "/api/v1/rooms/ranks/chat/slow-mode", map[string]any{"seconds": 5}, "you are banned in this room")
	refused(bob, "GET", "/api/v1/rooms/ranks/chat/moderation", nil, "you are banned in this room")

	ann.must(204, "POST", "/api/v1/rooms/ranks/chat/bans", map[string]any{"handle": "carol"}, nil)
	ann.must(204, "DELETE", "/api/v1/rooms/ranks/chat/bans/bob", nil, nil)
	refused(bob, "DELETE", "/api/v1/rooms/ranks/chat/bans/carol", nil, "set by the room's owner")

	var log struct {
		Actions []struct {
			Action      string `json:"action"`
			ActorHandle string `json:"actor_handle"`
		} `json:"actions"`
	}
	bob.must(200, "GET", "/api/v1/rooms/ranks/chat/moderation", nil, &log)
	var got []string
	for _, a := range log.Actions {
		got = append(got, a.Action+":"+a.ActorHandle)
	}
	if want := []string{"unban:ann", "ban:ann", "ban:ann"}; !slices.Equal(got, want) {
		t.Fatalf("moderation log %v, want %v: refused actions are not actions", got, want)
	}
}

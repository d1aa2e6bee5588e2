package main

import (
	"reflect"
	"testing"
	"time"

	"onair/chat"
	"onair/rooms/audit"
	"onair/rooms/webhook"
)

// TestChatActions: each kind of chat moderation action becomes the audit entry and the
// chat.moderation webhook that describe it, from chat's typed report alone.
func TestChatActions(t *testing.T) {
	room := chat.Room{ID: "r1", Slug: "ann-room", Title: "Ann's show", OwnerID: "ann"}
	bob := chat.User{ID: "bob", Handle: "bob"}
	root := chat.User{ID: "root", Handle: "root", Admin: true}
	at := time.Date(2026, 11, 22, 20, 0, 0, 0, time.UTC)
	carol := &webhook.UserRef{ID: "carol", Handle: "carol"}
	cases := []struct {
		action  string // in the audit trail
		actor   chat.User
		act     chat.Action
		target  *audit.Target
		details map[string]any
		data    webhook.ModerationData
	}{
		{audit.ChatDelete, root, chat.Action{Action: chat.ActionDelete, TargetID: "carol", TargetHandle: "carol", MessageID: "m1"},
			&audit.Target{Kind: audit.KindMessage, ID: "m1"}, map[string]any{"author_id": "carol", "author_handle": "carol"},
			webhook.ModerationData{Action: "delete", User: carol, MessageID: "m1"}},
		{audit.ChatTimeout, bob, chat.Action{Action: chat.ActionTimeout, TargetID: "carol", TargetHandle: "carol", Duration: time.Minute, Reason: "spam"},
			&audit.Target{Kind: audit.KindUser, ID: "carol", Name: "carol"}, map[string]any{"duration_ms": int64(60000), "reason": "spam"},
			webhook.ModerationData{Action: "timeout", User: carol, DurationMS: 60000, Reason: "spam"}},
		{audit.ChatBan, bob, chat.Action{Action: chat.ActionBan, TargetID: "carol", TargetHandle: "carol", Reason: "again"},
			&audit.Target{Kind: audit.KindUser, ID: "carol", Name: "carol"}, map[string]any{"reason": "again"},
			webhook.ModerationData{Action: "ban", User: carol, Reason: "again"}},
		{audit.ChatUnban, bob, chat.Action{Action: chat.ActionUnban, TargetID: "carol", TargetHandle: "carol"},
			&audit.Target{Kind: audit.KindUser, ID: "carol", Name: "carol"}, nil,
			webhook.ModerationData{Action: "unban", User: carol}},
		{audit.ChatSlowMode, bob, chat.Action{Action: chat.ActionSlowMode, Duration: 30 * time.Second},
			nil, map[string]any{"interval_ms": int64(30000)},
			webhook.ModerationData{Action: "slow_mode", DurationMS: 30000}},
		{audit.ChatPurge, bob, chat.Action{Action: chat.ActionPurge, TargetID: "carol", TargetHandle: "carol", Duration: time.Hour, Count: 3},
			&audit.Target{Kind: audit.KindUser, ID: "carol", Name: "carol"}, map[string]any{"window_ms": int64(3600000), "count": 3},
			webhook.ModerationData{Action: "purge", User: carol, DurationMS: 3600000, Count: 3}},
	}
	for _, tc := range cases {
		t.Run(string(tc.act.Action), func(t *testing.T) {
			tc.act.At = at
			e := chatAuditEntry(room, tc.actor, tc.act)
			want := audit.Entry{
				At: at, Action: tc.action, Target: tc.target, Details: tc.details,
				Actor: audit.Actor{ID: tc.actor.ID, Handle: tc.actor.Handle, Admin: tc.actor.Admin},
				Room:  &audit.Room{ID: "r1", Slug: "ann-room", Title: "Ann's show"},
			}
			if !reflect.DeepEqual(e, want) {
				t.Errorf("audit entry\n got %+v\nwant %+v", e, want)
			}
			ev := moderationEvent(room, tc.actor, tc.act)
			tc.data.Actor = webhook.UserRef{ID: tc.actor.ID, Handle: tc.actor.Handle}
			wantEv := webhook.Event{Type: webhook.ChatModeration, Created: at,
				Room: webhook.Room{ID: "r1", Slug: "ann-room", Title: "Ann's show"}, Data: tc.data}
			if !reflect.DeepEqual(ev, wantEv) {
				t.Errorf("webhook event\n got %+v\nwant %+v", ev, wantEv)
			}
		})
	}
}

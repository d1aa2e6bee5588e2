package main

import (
	"context"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"onair/chat"
	"onair/media/record"
	"onair/rooms"
	"onair/rooms/audit"
	"onair/rooms/webhook"
)

// newEvents builds the audit trail and the webhook dispatcher on db.
func (a *app) newEvents(db *mongo.Database) error {
	var err error
	a.audit, err = audit.New(audit.Config{DB: db, Logger: a.log, NodeID: a.nodeID, QueueSize: a.cfg.Audit.QueueSize})
	if err != nil {
		return err
	}
	wh := a.cfg.Webhooks
	a.webhooks, err = webhook.New(webhook.Config{
		DB: db, Logger: a.log, Nodes: a.cluster, PublicURL: strings.TrimSuffix(a.cfg.HTTP.PublicURL, "/"),
		Global:       webhook.Endpoint{URL: wh.URL, Secret: wh.Secret, Format: webhook.Format(wh.Format), Events: wh.Events},
		AllowPrivate: wh.AllowPrivate, Timeout: wh.Timeout, BackoffMin: wh.BackoffMin, BackoffMax: wh.BackoffMax,
		GiveUpAfter: wh.GiveUpAfter, LogRetention: wh.LogRetention,
		Audit: a.audit,
	})
	return err
}

// roomCreated is rooms' OnRoomCreated: room.created.
func (a *app) roomCreated(c rooms.RoomChange) {
	a.publish(roomEvent(webhook.RoomCreated, c))
}

// roomDeleted is rooms' OnRoomDeleted: room.deleted, and the removal of the room's
// webhooks. room.deleted is queued before they go: it reaches the global webhook, which is
// all it is for (a room's own webhooks never take room.*).
func (a *app) roomDeleted(c rooms.RoomChange) {
	a.publish(roomEvent(webhook.RoomDeleted, c))
	if a.webhooks == nil {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := a.webhooks.ForgetRoom(ctx, c.Room.ID); err != nil {
			a.log.Warn("webhooks of a deleted room left behind (they never fire)", "room_id", c.Room.ID, "err", err)
		}
	}()
}

func roomEvent(typ string, c rooms.RoomChange) webhook.Event {
	r := c.Room
	return webhook.Event{Type: typ, Created: c.At, Room: webhookRoom(r), Data: webhook.RoomData{
		Actor:      webhook.UserRef{ID: c.Actor.ID, Handle: c.Actor.Handle},
		Owner:      webhook.UserRef{ID: r.Owner.ID, Handle: r.Owner.Handle},
		Visibility: string(r.Visibility),
	}}
}

// startEvents runs the audit writer and the webhook dispatcher on a context of their own,
// so that what the other parts do while stopping (a broadcast ended by the shutdown and
// its stream.ended event) is still stored. The returned stop ends them, once the other
// parts have stopped and before MongoDB is disconnected.
func (a *app) startEvents(ctx context.Context) (stop func()) {
	if a.audit == nil || a.webhooks == nil {
		return func() {}
	}
	ectx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { _ = a.audit.Run(ectx) })
	wg.Go(func() { _ = a.webhooks.Run(ectx) })
	return func() {
		cancel()
		wg.Wait()
	}
}

func webhookRoom(r rooms.Room) webhook.Room {
	return webhook.Room{ID: r.ID, Slug: r.Slug, Title: r.Title}
}

func (a *app) publish(e webhook.Event) {
	if a.webhooks == nil {
		return
	}
	if err := a.webhooks.Publish(e); err != nil {
		a.log.Warn("webhook event not published", "type", e.Type, "room_id", e.Room.ID, "err", err)
	}
}

// streamStarted and streamEnded are rooms' OnLive and OnEnded (with the chat notices).
func (a *app) streamStarted(r rooms.Room, b rooms.Broadcast) {
	msg := r.Title + " went live"
	if b.Title != "" && b.Title != r.Title {
		msg += ": " + b.Title
	}
	a.systemMessage(r, msg)
	a.publish(webhook.Event{Type: webhook.StreamStarted, Created: b.Started, Room: webhookRoom(r),
		Data: map[string]any{"broadcast": b}})
}

func (a *app) streamEnded(r rooms.Room, b rooms.Broadcast) {
	a.systemMessage(r, "The stream has ended")
	created := time.Now()
	if b.Ended != nil {
		created = *b.Ended
	}
	a.publish(webhook.Event{Type: webhook.StreamEnded, Created: created, Room: webhookRoom(r),
		Data: map[string]any{"broadcast": b}})
}

// recordingReady is rooms' OnRecording.
func (a *app) recordingReady(r rooms.Room, b rooms.Broadcast) {
	a.publish(webhook.Event{Type: webhook.RecordingReady, Room: webhookRoom(r), Data: map[string]any{
		"broadcast":  b,
		"replay_url": strings.TrimSuffix(a.cfg.HTTP.PublicURL, "/") + "/api/v1/broadcasts/" + b.ID + "/replay.m3u8",
	}})
}

// clipCreated is rooms' OnClip.
func (a *app) clipCreated(r rooms.Room, c rooms.Clip) {
	a.publish(webhook.Event{Type: webhook.ClipCreated, Room: webhookRoom(r), Created: c.Created, Data: webhook.ClipData{Clip: webhook.Clip{
		ID: c.ID, BroadcastID: c.BroadcastID, Title: c.Title, StartMS: c.StartMS, DurationMS: c.DurationMS,
		URL:       strings.TrimSuffix(a.cfg.HTTP.PublicURL, "/") + "/clips/" + c.ID,
		CreatedBy: webhook.UserRef{ID: c.Maker.ID, Handle: c.Maker.Handle}, Created: c.Created,
	}}})
}

// chatActions records chat's moderation actions in the audit trail and publishes them as
// chat.moderation webhooks.
type chatActions struct{ a *app }

func (c chatActions) Moderated(ctx context.Context, room chat.Room, actor chat.User, act chat.Action) {
	if c.a.audit != nil {
		c.a.audit.Record(ctx, chatAuditEntry(room, actor, act))
	}
	c.a.publish(moderationEvent(room, actor, act))
}

// chatAuditEntry is a moderation action as the audit trail keeps it: a deleted message's
// author, a timeout's length, slow mode's interval and a purge's window and count go into
// the details.
func chatAuditEntry(room chat.Room, actor chat.User, act chat.Action) audit.Entry {
	e := audit.Entry{
		At: act.At, Action: "chat." + string(act.Action),
		Actor: audit.Actor{ID: actor.ID, Handle: actor.Handle, Admin: actor.Admin},
		Room:  &audit.Room{ID: room.ID, Slug: room.Slug, Title: room.Title},
	}
	details := map[string]any{}
	switch {
	case act.MessageID != "":
		e.Target = &audit.Target{Kind: audit.KindMessage, ID: act.MessageID}
		if act.TargetID != "" {
			details["author_id"], details["author_handle"] = act.TargetID, act.TargetHandle
		}
	case act.TargetID != "":
		e.Target = &audit.Target{Kind: audit.KindUser, ID: act.TargetID, Name: act.TargetHandle}
	}
	switch act.Action {
	case chat.ActionTimeout:
		details["duration_ms"] = act.Duration.Milliseconds()
	case chat.ActionSlowMode:
		details["interval_ms"] = act.Duration.Milliseconds()
	case chat.ActionPurge:
		details["window_ms"], details["count"] = act.Duration.Milliseconds(), act.Count
	}
	if act.Reason != "" {
		details["reason"] = act.Reason
	}
	if len(details) > 0 {
		e.Details = details
	}
	return e
}

// moderationEvent is the chat.moderation webhook of a moderation action.
func moderationEvent(room chat.Room, actor chat.User, act chat.Action) webhook.Event {
	data := webhook.ModerationData{
		Action: string(act.Action), Actor: webhook.UserRef{ID: actor.ID, Handle: actor.Handle},
		MessageID: act.MessageID, DurationMS: act.Duration.Milliseconds(), Count: act.Count, Reason: act.Reason,
	}
	if act.TargetID != "" {
		data.User = &webhook.UserRef{ID: act.TargetID, Handle: act.TargetHandle}
	}
	return webhook.Event{Type: webhook.ChatModeration, Created: act.At,
		Room: webhook.Room{ID: room.ID, Slug: room.Slug, Title: room.Title}, Data: data}
}

// recordingFailed is the recorder's Failed: a broadcast that asked to be recorded is not,
// or not all of it. The reason is in words for the room's owner; the error, which can name
// paths of this node, is in the log.
func (a *app) recordingFailed(rec record.Recording, err error, partial bool) {
	a.log.Warn("recording failed", "stream", rec.StreamName, "run_id", rec.StreamID, "partial", partial, "err", err)
	if a.rooms == nil || rec.RoomID == "" {
		return
	}
	reason := "the recording could not start on its onair node"
	if partial {
		reason = "writing the recording failed on its onair node"
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		room, err := a.rooms.RoomByID(ctx, rec.RoomID)
		if err != nil {
			a.log.Warn("recording.failed not published: room not read", "room_id", rec.RoomID, "err", err)
			return
		}
		a.publish(webhook.Event{Type: webhook.RecordingFailed, Room: webhookRoom(room), Data: webhook.RecordingFailedData{
			RunID: rec.StreamID, Started: rec.StartedAt.UTC(), Reason: reason, Partial: partial,
		}})
	}()
}

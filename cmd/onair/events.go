package main

import (
	"context"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

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

// actions is what chat reports its moderators' actions to: the audit trail, and
// chat.moderation webhooks.
func (a *app) actions() audit.Recorder {
	return audit.Multi{a.audit, audit.RecorderFunc(a.moderationWebhook)}
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
	a.systemMessage(r, r.Title+" went live")
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

// moderationWebhook publishes chat.moderation for the chat actions of the audit trail:
// both come from chat.Hub's single report of each action.
func (a *app) moderationWebhook(_ context.Context, e audit.Entry) {
	name, ok := strings.CutPrefix(e.Action, "chat.")
	if !ok || e.Room == nil {
		return
	}
	data := webhook.ModerationData{Action: name, Actor: webhook.UserRef{ID: e.Actor.ID, Handle: e.Actor.Handle}}
	if t := e.Target; t != nil {
		switch t.Kind {
		case audit.KindUser:
			data.User = &webhook.UserRef{ID: t.ID, Handle: t.Name}
		case audit.KindMessage:
			data.MessageID = t.ID
			if id, _ := e.Details["author_id"].(string); id != "" {
				handle, _ := e.Details["author_handle"].(string)
				data.User = &webhook.UserRef{ID: id, Handle: handle}
			}
		}
	}
	for _, k := range []string{"duration_ms", "interval_ms", "window_ms"} {
		if n, ok := e.Details[k].(int64); ok {
			data.DurationMS = n
		}
	}
	data.Count, _ = e.Details["count"].(int)
	data.Reason, _ = e.Details["reason"].(string)
	a.publish(webhook.Event{Type: webhook.ChatModeration, Created: e.At,
		Room: webhook.Room{ID: e.Room.ID, Slug: e.Room.Slug, Title: e.Room.Title}, Data: data})
}

// recordingFailed is the recorder's Failed: a broadcast that asked to be recorded is not,
// or not all of it. The reason is in words for the room's owner; the error, which can name
// paths of this node, is in the log.
func (a *app) recordingFailed(rec record.Recording, err error, partial bool) {
	a.log.Warn("recording failed", "stream", rec.StreamName, "run_id", rec.StreamID, "partial", partial, "err", err)
	if a.rooms == nil || rec.Owner == "" {
		return
	}
	reason := "the recording could not start on its onair node"
	if partial {
		reason = "writing the recording failed on its onair node"
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		room, err := a.rooms.RoomByID(ctx, rec.Owner)
		if err != nil {
			a.log.Warn("recording.failed not published: room not read", "room_id", rec.Owner, "err", err)
			return
		}
		a.publish(webhook.Event{Type: webhook.RecordingFailed, Room: webhookRoom(room), Data: webhook.RecordingFailedData{
			RunID: rec.StreamID, Started: rec.StartedAt.UTC(), Reason: reason, Partial: partial,
		}})
	}()
}

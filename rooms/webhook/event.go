package webhook

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Event types.
const (
	StreamStarted   = "stream.started"
	StreamEnded     = "stream.ended"
	RecordingReady  = "recording.ready"
	RecordingFailed = "recording.failed"
	ChatModeration  = "chat.moderation"
	ClipCreated     = "clip.created"
	RoomCreated     = "room.created"
	RoomDeleted     = "room.deleted"
	// TestEvent is what SendTest posts to one webhook on request; nobody subscribes to it.
	TestEvent = "webhook.test"
)

// EventTypes lists every event type: the global webhook's default subscription.
var EventTypes = []string{StreamStarted, StreamEnded, RecordingReady, RecordingFailed, ChatModeration, ClipCreated, RoomCreated, RoomDeleted}

// RoomEventTypes are the event types a room's webhook subscribes to, all by default.
// room.created and room.deleted reach the global webhook only: a room's own webhooks do
// not exist before the room and are deleted with it.
var RoomEventTypes = []string{StreamStarted, StreamEnded, RecordingReady, RecordingFailed, ChatModeration, ClipCreated}

func knownType(t string) bool { return slices.Contains(EventTypes, t) }

// Room names the room an event is about.
type Room struct {
	ID    string `json:"id"`
	Slug  string `json:"slug"`
	Title string `json:"title"`
}

// Event is something that happened in a room, as published. The JSON format's body is
// the event itself: {"id", "type", "created", "room": {"id", "slug", "title"}, "data": {...}}.
type Event struct {
	// ID is set by Publish when empty ("evt_" and 24 hex digits).
	ID   string `json:"id"`
	Type string `json:"type"`
	// Created is when it happened (Publish sets now when zero); RFC 3339 in UTC, ms.
	Created time.Time `json:"created"`
	Room    Room      `json:"room"`
	// Data is the event's own payload, marshalled with encoding/json at Publish.
	Data any `json:"data"`
}

// UserRef names a user in event data.
type UserRef struct {
	ID     string `json:"id"`
	Handle string `json:"handle"`
}

// ModerationData is the data of chat.moderation events.
type ModerationData struct {
	// Action is delete, timeout, ban, unban, slow_mode or purge (a user's recent messages
	// deleted: Count of them, DurationMS back).
	Action string  `json:"action"`
	Actor  UserRef `json:"actor"`
	// User is the user acted on (for delete: the message's author, when known).
	User *UserRef `json:"user,omitempty"`
	// MessageID is the deleted message's id.
	MessageID string `json:"message_id,omitempty"`
	// DurationMS is a timeout's length, the slow-mode interval (0: off) or how far back a
	// purge reached.
	DurationMS int64  `json:"duration_ms,omitempty"`
	Count      int    `json:"count,omitempty"`
	Reason     string `json:"reason,omitempty"`
}

// RecordingFailedData is the data of recording.failed: a broadcast that asked to be
// recorded is not, or not all of it. What was recorded before a failure is kept, and
// announced with recording.ready once it is stored (Partial).
type RecordingFailedData struct {
	// RunID is the broadcast's stream run (its "run_id" in stream.* events).
	RunID   string    `json:"run_id"`
	Started time.Time `json:"started"`
	// Reason says what failed, in words for people (no paths or addresses).
	Reason string `json:"reason"`
	// Partial: the recording stopped growing, and what it holds so far is kept.
	Partial bool `json:"partial"`
}

// Clip is a clip as clip.created describes it.
type Clip struct {
	ID          string `json:"id"`
	BroadcastID string `json:"broadcast_id"`
	Title       string `json:"title"`
	// StartMS is where the clip starts in its broadcast; DurationMS its length.
	StartMS    int64 `json:"start_ms"`
	DurationMS int64 `json:"duration_ms"`
	// URL is the clip's page (absolute when onair knows its public URL).
	URL       string    `json:"url"`
	CreatedBy UserRef   `json:"created_by"`
	Created   time.Time `json:"created"`
}

// ClipData is the data of clip.created, which the clips feature publishes once a clip
// is stored (Event.Created: the clip's creation).
type ClipData struct {
	Clip Clip `json:"clip"`
}

// RoomData is the data of room.created and room.deleted.
type RoomData struct {
	Owner UserRef `json:"owner"`
	// Actor is who created or deleted the room: its owner, or an admin taking it down.
	Actor      UserRef `json:"actor"`
	Visibility string  `json:"visibility"`
}

// TestData is the data of webhook.test.
type TestData struct {
	WebhookID string  `json:"webhook_id"`
	Message   string  `json:"message"`
	Actor     UserRef `json:"actor"`
}

// jsonData marshals an event's data as Publish does.
func jsonData(v any) (json.RawMessage, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("marshal event data: %w", err)
	}
	return b, nil
}

// event is a published event with its payload fixed.
type event struct {
	id      string
	typ     string
	created time.Time
	room    Room
	data    json.RawMessage
}

func (e *event) jsonBody() []byte {
	b, _ := json.Marshal(struct {
		ID      string          `json:"id"`
		Type    string          `json:"type"`
		Created time.Time       `json:"created"`
		Room    Room            `json:"room"`
		Data    json.RawMessage `json:"data"`
	}{e.id, e.typ, e.created, e.room, e.data})
	return b
}

func (e *event) body(f Format, publicURL string) []byte {
	if f == FormatSlack {
		b, _ := json.Marshal(struct {
			Text string `json:"text"`
		}{slackText(e, publicURL)})
		return b
	}
	return e.jsonBody()
}

// slackFields are the parts of event data a Slack line uses.
type slackFields struct {
	Broadcast struct {
		Title       string `json:"title"`
		DurationMS  int64  `json:"duration_ms"`
		PeakViewers int    `json:"peak_viewers"`
		Recording   *struct {
			Size       int64 `json:"size"`
			DurationMS int64 `json:"duration_ms"`
		} `json:"recording"`
	} `json:"broadcast"`
	ModerationData
	Partial bool    `json:"partial"`
	Clip    Clip    `json:"clip"`
	Owner   UserRef `json:"owner"`
}

// slackEscape escapes the three characters Slack's mrkdwn treats as control characters.
var slackEscape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// slackText is one readable line per event, in Slack's mrkdwn.
func slackText(e *event, publicURL string) string {
	var f slackFields
	_ = json.Unmarshal(e.data, &f)
	title := e.room.Title
	if title == "" {
		title = e.room.Slug
	}
	room := "*" + slackEscape.Replace(title) + "*"
	if publicURL != "" {
		room = "*<" + strings.TrimSuffix(publicURL, "/") + "/watch/" + e.room.Slug + "|" + slackEscape.Replace(title) + ">*"
	}
	user := func(u *UserRef) string {
		if u == nil || u.Handle == "" {
			return "someone"
		}
		return "@" + slackEscape.Replace(u.Handle)
	}
	reason := ""
	if f.Reason != "" {
		reason = ": " + slackEscape.Replace(f.Reason)
	}
	ms := func(n int64) string { return (time.Duration(n) * time.Millisecond).Round(time.Second).String() }
	switch e.typ {
	case StreamStarted:
		if t := f.Broadcast.Title; t != "" && t != e.room.Title {
			return room + " is live: " + slackEscape.Replace(t)
		}
		return room + " is live"
	case StreamEnded:
		s := room + " stream ended after " + ms(f.Broadcast.DurationMS)
		if f.Broadcast.PeakViewers > 0 {
			s += fmt.Sprintf(" (peak %d viewers)", f.Broadcast.PeakViewers)
		}
		return s
	case RecordingReady:
		s := "Recording of " + room + " is ready"
		if r := f.Broadcast.Recording; r != nil {
			s += fmt.Sprintf(": %s, %.1f MB", ms(r.DurationMS), float64(r.Size)/1e6)
		}
		return s
	case RecordingFailed:
		if f.Partial {
			return "Recording of " + room + " stopped early" + reason + "; what was recorded is kept"
		}
		return "Recording of " + room + " failed" + reason
	case ClipCreated:
		s := user(&f.Clip.CreatedBy) + " clipped " + room
		if f.Clip.Title != "" {
			s += ": " + slackEscape.Replace(f.Clip.Title)
		}
		return s
	case RoomCreated:
		return user(&f.Actor) + " created " + room
	case RoomDeleted:
		if f.Owner.ID != "" && f.Actor.ID != f.Owner.ID {
			return user(&f.Actor) + " took down " + room + " of " + user(&f.Owner)
		}
		return user(&f.Actor) + " deleted " + room
	case TestEvent:
		return "Test event for " + room + " from onair: this webhook works"
	case ChatModeration:
		actor := user(&f.Actor)
		switch f.Action {
		case "delete":
			if f.User != nil {
				return actor + " deleted a message by " + user(f.User) + " in " + room
			}
			return actor + " deleted a message in " + room
		case "timeout":
			return actor + " timed out " + user(f.User) + " for " + ms(f.DurationMS) + " in " + room + reason
		case "ban":
			return actor + " banned " + user(f.User) + " in " + room + reason
		case "unban":
			return actor + " unbanned " + user(f.User) + " in " + room
		case "slow_mode":
			if f.DurationMS == 0 {
				return actor + " turned slow mode off in " + room
			}
			return actor + " set slow mode to " + ms(f.DurationMS) + " in " + room
		case "purge":
			return actor + fmt.Sprintf(" deleted %d recent messages by ", f.Count) + user(f.User) + " in " + room
		}
		return actor + " moderated the chat of " + room + " (" + slackEscape.Replace(f.Action) + ")"
	}
	return slackEscape.Replace(e.typ) + " in " + room
}

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
	StreamStarted  = "stream.started"
	StreamEnded    = "stream.ended"
	RecordingReady = "recording.ready"
	ChatModeration = "chat.moderation"
)

// EventTypes lists every event type, the default subscription of a webhook.
var EventTypes = []string{StreamStarted, StreamEnded, RecordingReady, ChatModeration}

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
	// Action is delete, timeout, ban, unban or slow_mode.
	Action string  `json:"action"`
	Actor  UserRef `json:"actor"`
	// User is the user acted on (for delete: the message's author, when known).
	User *UserRef `json:"user,omitempty"`
	// MessageID is the deleted message's id.
	MessageID string `json:"message_id,omitempty"`
	// DurationMS is a timeout's length or the slow-mode interval (0: off).
	DurationMS int64  `json:"duration_ms,omitempty"`
	Reason     string `json:"reason,omitempty"`
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
		DurationMS  int64 `json:"duration_ms"`
		PeakViewers int   `json:"peak_viewers"`
		Recording   *struct {
			Size       int64 `json:"size"`
			DurationMS int64 `json:"duration_ms"`
		} `json:"recording"`
	} `json:"broadcast"`
	ModerationData
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
		}
		return actor + " moderated the chat of " + room + " (" + slackEscape.Replace(f.Action) + ")"
	}
	return slackEscape.Replace(e.typ) + " in " + room
}

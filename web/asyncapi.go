package web

import (
	"encoding/json"
	"fmt"
	"reflect"
	"time"

	"onair/chat"
)

// The chat socket's protocol as an AsyncAPI 3.0 document, served at
// /api/v1/asyncapi.json beside the OpenAPI one. chat/doc.go is the protocol's reference;
// the frame types below restate it for the document (chat keeps its own unexported), and
// a frame added to chat belongs here too.

type chatClientMessage struct {
	Type  string `json:"type"` // message
	Text  string `json:"text"`
	Nonce string `json:"nonce,omitempty"`
}

type chatHistoryFrame struct {
	Type       string         `json:"type"` // history
	Messages   []chat.Message `json:"messages"`
	SlowModeMS int64          `json:"slow_mode_ms"`
}

type chatDeletedFrame struct {
	Type string `json:"type"` // deleted
	ID   string `json:"id"`
}

type chatUserFrame struct {
	Type       string     `json:"type"` // user_timeout, user_banned, user_unbanned
	UserID     string     `json:"user_id"`
	Handle     string     `json:"handle,omitempty"`
	Until      *time.Time `json:"until,omitempty"`
	DurationMS int64      `json:"duration_ms,omitempty"`
	Reason     string     `json:"reason,omitempty"`
}

type chatSlowModeFrame struct {
	Type       string `json:"type"` // slow_mode
	IntervalMS int64  `json:"interval_ms"`
}

type chatViewersFrame struct {
	Type  string `json:"type"` // viewers
	Count int    `json:"count"`
}

type chatAckFrame struct {
	Type  string    `json:"type"` // ack
	Nonce string    `json:"nonce"`
	ID    string    `json:"id"`
	At    time.Time `json:"at"`
}

type chatErrorFrame struct {
	Type         string `json:"type"` // error
	Code         string `json:"code"`
	Message      string `json:"message"`
	Nonce        string `json:"nonce,omitempty"`
	RetryAfterMS int64  `json:"retry_after_ms,omitempty"`
}

// asyncAPIDocument builds the chat socket's document.
func asyncAPIDocument() ([]byte, error) {
	sc := newSchemas()
	msg := func(name, summary string, v any) map[string]any {
		return map[string]any{"name": name, "summary": summary, "contentType": "application/json", "payload": sc.of(reflect.TypeOf(v))}
	}
	messages := map[string]any{
		"post":    msg("message", "A post (signed-in users; a token needs chat:write): stored, then acknowledged", chatClientMessage{}),
		"history": msg("history", "On join: the last messages, oldest first, and the slow mode", chatHistoryFrame{}),
		"message": msg("message", "A message, or a system notice (type system)", chat.Message{}),
		"deleted": msg("deleted", "A message deleted by a moderator (a purge sends one per message)", chatDeletedFrame{}),
		"user":    msg("user_timeout", "user_timeout, user_banned or user_unbanned", chatUserFrame{}),
		"slow":    msg("slow_mode", "Slow mode changed (0: off)", chatSlowModeFrame{}),
		"viewers": msg("viewers", "How many watch, over the cluster", chatViewersFrame{}),
		"ack":     msg("ack", "The sender's post was stored", chatAckFrame{}),
		"error": msg("error", "A refused post (codes bad_request, unauthorized, invalid, too_long, rate_limited, slow_mode, "+
			"banned, timed_out, unavailable), carrying its nonce", chatErrorFrame{}),
	}
	refs := func(names ...string) []map[string]any {
		var out []map[string]any
		for _, n := range names {
			out = append(out, map[string]any{"$ref": "#/channels/chat/messages/" + n})
		}
		return out
	}
	channelMessages := map[string]any{}
	for k := range messages {
		channelMessages[k] = map[string]any{"$ref": "#/components/messages/" + k}
	}
	doc := map[string]any{
		"asyncapi": "3.0.0",
		"info": map[string]any{
			"title":   "onair chat",
			"version": "1",
			"description": "A room's chat over a websocket. Every frame is one JSON text message with a type. Close codes: 1001 " +
				"server stopping, 1009/1002 oversize frame, 1013 the client does not keep up, 4403 the user may no longer " +
				"be in the room. The reference is chat/doc.go.",
		},
		"channels": map[string]any{
			"chat": map[string]any{
				"address":     "/api/v1/rooms/{slug}/chat",
				"description": "GET with an Upgrade: websocket (the page's Origin, or none); a session cookie or a bearer token with chat:read",
				"parameters":  map[string]any{"slug": map[string]any{"description": "a room's slug, or its playback id"}},
				"messages":    channelMessages,
			},
		},
		"operations": map[string]any{
			"post":    map[string]any{"action": "send", "channel": map[string]any{"$ref": "#/channels/chat"}, "messages": refs("post")},
			"receive": map[string]any{"action": "receive", "channel": map[string]any{"$ref": "#/channels/chat"}, "messages": refs("history", "message", "deleted", "user", "slow", "viewers", "ack", "error")},
		},
		"components": map[string]any{"messages": messages, "schemas": sc.defs},
	}
	b, err := json.MarshalIndent(doc, "", " ")
	if err != nil {
		return nil, fmt.Errorf("web: AsyncAPI document: %w", err)
	}
	return b, nil
}

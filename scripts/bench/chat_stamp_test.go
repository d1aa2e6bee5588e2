package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestChatStampRoundTrip(t *testing.T) {
	s := chatStamp{Phase: chatPhaseMeasure, Seq: 2999, SentNS: 1732300000123456789}
	text := chatText(s, 64)
	if len(text) != 64 {
		t.Fatalf("text of %d bytes, want 64: %q", len(text), text)
	}
	// As onair and the socket.io peer deliver it.
	onair, _ := json.Marshal(map[string]string{"type": "message", "id": "6650aa", "handle": "bench0", "text": text, "at": "2026-11-22T12:00:00.000Z"})
	sio := `2["msg",{"room":"bench","text":"` + text + `"}]`
	for _, frame := range []string{string(onair), sio} {
		got, ok := findChatStamp([]byte(frame))
		if !ok || got != s {
			t.Errorf("findChatStamp(%s) = %+v, %v; want %+v", frame, got, ok, s)
		}
	}
	if short := chatText(chatStamp{Phase: chatPhaseWarm, Seq: 1, SentNS: 5}, 0); short != "~w1.5~" {
		t.Errorf("unpadded text %q", short)
	}
}

func TestFindChatStampRejects(t *testing.T) {
	for _, frame := range []string{
		`{"type":"message","text":"hello"}`,
		`{"type":"message","text":"~x1.5~"}`,
		`{"type":"message","text":"~m.5~"}`,
		`{"type":"message","text":"~m1.~"}`,
		`{"type":"message","text":"~m1-5~"}`,
		`{"type":"message","text":"~m1.5`,
		`{"type":"message","text":"~m1.` + strings.Repeat("9", 25) + `~"}`,
		`{"type":"viewers","count":3}`,
	} {
		if s, ok := findChatStamp([]byte(frame)); ok {
			t.Errorf("findChatStamp(%s) = %+v, want no stamp", frame, s)
		}
	}
}

func TestChatNonceAndAckID(t *testing.T) {
	for _, phase := range []byte{chatPhaseWarm, chatPhaseMeasure} {
		for _, seq := range []int{0, 1, 2999} {
			if p, s, ok := parseChatNonce(chatNonce(phase, seq)); !ok || p != phase || s != seq {
				t.Errorf("nonce %q → %c %d %v", chatNonce(phase, seq), p, s, ok)
			}
			if p, s, ok := parseChatAckID(chatAckID(phase, seq)); !ok || p != phase || s != seq {
				t.Errorf("ack id %d → %c %d %v", chatAckID(phase, seq), p, s, ok)
			}
		}
	}
	for _, bad := range []string{"", "m", "x1", "m-1", "mx"} {
		if _, _, ok := parseChatNonce(bad); ok {
			t.Errorf("nonce %q accepted", bad)
		}
	}
	if _, _, ok := parseChatAckID(0); ok {
		t.Error("ack id 0 (the join) taken for a post")
	}
	if !hasPrefix([]byte(`{"type":"message","id":"1"}`), onairMessagePrefix) || hasPrefix([]byte(`{"type"`), onairMessagePrefix) {
		t.Error("hasPrefix")
	}
}

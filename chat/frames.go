package chat

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"
)

// Frame types.
const (
	typeMessage      = "message"
	typeSystem       = "system"
	typeDeleted      = "deleted"
	typeUserTimeout  = "user_timeout"
	typeUserBanned   = "user_banned"
	typeUserUnbanned = "user_unbanned"
	typeSlowMode     = "slow_mode"
	typeViewers      = "viewers"
	typeHistory      = "history"
	typeBatch        = "batch"
	typeAck          = "ack"
	typeError        = "error"
)

// Error codes of error frames.
const (
	codeBadRequest   = "bad_request"
	codeUnauthorized = "unauthorized"
	codeInvalid      = "invalid"
	codeTooLong      = "too_long"
	codeRateLimited  = "rate_limited"
	codeSlowMode     = "slow_mode"
	codeBanned       = "banned"
	codeTimedOut     = "timed_out"
	codeUnavailable  = "unavailable"
	codeInternal     = "internal"
)

const (
	maxNonce    = 64 // bytes
	maxInflight = 32 // posts of one socket being stored at once
)

// clientFrame is the one frame clients send.
type clientFrame struct {
	Type  string  `json:"type"`
	Text  *string `json:"text"`
	Nonce *string `json:"nonce"`
}

type errorFrame struct {
	Type         string `json:"type"`
	Code         string `json:"code"`
	Message      string `json:"message"`
	Nonce        string `json:"nonce,omitempty"`
	RetryAfterMS int64  `json:"retry_after_ms,omitempty"`
}

type ackFrame struct {
	Type  string    `json:"type"`
	Nonce string    `json:"nonce"`
	ID    string    `json:"id"`
	At    time.Time `json:"at"`
}

type historyFrame struct {
	Type       string    `json:"type"`
	Messages   []Message `json:"messages"`
	SlowModeMS int64     `json:"slow_mode_ms"`
}

type viewersFrame struct {
	Type  string `json:"type"`
	Count int    `json:"count"`
}

type deletedFrame struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// userFrame is user_timeout, user_banned and user_unbanned.
type userFrame struct {
	Type       string     `json:"type"`
	UserID     string     `json:"user_id"`
	Handle     string     `json:"handle,omitempty"`
	Until      *time.Time `json:"until,omitempty"`
	DurationMS int64      `json:"duration_ms,omitempty"`
	Reason     string     `json:"reason,omitempty"`
}

type slowModeFrame struct {
	Type       string `json:"type"`
	IntervalMS int64  `json:"interval_ms"`
}

// remoteFrame decodes any event frame of another node for the fields that change state.
type remoteFrame struct {
	Type       string    `json:"type"`
	ID         string    `json:"id"`
	UserID     string    `json:"user_id"`
	Handle     string    `json:"handle"`
	Text       string    `json:"text"`
	At         time.Time `json:"at"`
	Until      time.Time `json:"until"`
	IntervalMS int64     `json:"interval_ms"`
}

// marshal encodes v as JSON without HTML escaping: chat text is text, delivered verbatim.
func marshal(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only our own frame types are encoded; they always marshal.
		panic("chat: marshal frame: " + err.Error())
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// batchPayload is a batch frame of events (JSON frames), in order.
func batchPayload(events [][]byte) []byte {
	const head, tail = `{"type":"` + typeBatch + `","events":[`, `]}`
	n := len(head) + len(tail) + len(events) - 1
	for _, ev := range events {
		n += len(ev)
	}
	b := make([]byte, 0, n)
	b = append(b, head...)
	for i, ev := range events {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, ev...)
	}
	return append(b, tail...)
}

// errorMsg is an error frame.
func errorMsg(code, msg, nonce string, retry time.Duration) []byte {
	f := errorFrame{Type: typeError, Code: code, Message: msg, Nonce: nonce}
	if retry > 0 {
		f.RetryAfterMS = (retry + time.Millisecond - 1).Milliseconds()
	}
	return marshal(f)
}

// dropRune reports whether cleanText removes r.
func dropRune(r rune) bool {
	switch {
	case r == '\n':
		return false
	case r < 0x20:
		return true
	case r >= 0x7f && r <= 0x9f:
		return true
	case r >= 0x202a && r <= 0x202e: // LRE, RLE, PDF, LRO, RLO
		return true
	case r >= 0x2066 && r <= 0x2069: // LRI, RLI, FSI, PDI
		return true
	}
	return false
}

// cleanText removes control and bidi override characters and trims white space; see the
// package documentation. Invalid UTF-8 becomes U+FFFD.
func cleanText(s string) string {
	clean := utf8.ValidString(s)
	if clean {
		for _, r := range s {
			if dropRune(r) {
				clean = false
				break
			}
		}
	}
	if !clean {
		var b strings.Builder
		b.Grow(len(s))
		for _, r := range s { // invalid bytes come out as utf8.RuneError
			if !dropRune(r) {
				b.WriteRune(r)
			}
		}
		s = b.String()
	}
	return strings.TrimSpace(s)
}

// checkText cleans text and checks its length, returning an error code and message when
// it is not acceptable.
func checkText(raw string, max int) (text, code, msg string) {
	text = cleanText(raw)
	n := utf8.RuneCountInString(text)
	switch {
	case n == 0:
		return "", codeInvalid, "message is empty"
	case n > max:
		return "", codeTooLong, "message is too long"
	}
	return text, "", ""
}

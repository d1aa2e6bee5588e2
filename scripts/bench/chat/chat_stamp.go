package chat

import (
	"bytes"
	"strconv"
	"strings"
)

// Phases of a stamp.
const (
	chatPhaseWarm    = 'w' // warm-up: not counted
	chatPhaseMeasure = 'm' // the measured window
)

// chatStamp is what a message's text says about it.
type chatStamp struct {
	Phase  byte
	Seq    int
	SentNS int64
}

const chatFiller = " chat benchmark message of about the length people type, padded to size"

// chatText is the text of a message with stamp s, padded with filler to at least size
// bytes (the stamp alone is about 30).
func chatText(s chatStamp, size int) string {
	var b strings.Builder
	b.Grow(max(size, 48))
	b.WriteByte('~')
	b.WriteByte(s.Phase)
	b.WriteString(strconv.Itoa(s.Seq))
	b.WriteByte('.')
	b.WriteString(strconv.FormatInt(s.SentNS, 10))
	b.WriteByte('~')
	for b.Len() < size {
		n := min(size-b.Len(), len(chatFiller))
		b.WriteString(chatFiller[:n])
	}
	return b.String()
}

const chatStampMark = `"text":"~`

// findChatStamp finds the stamp in a frame holding a stamped text.
func findChatStamp(frame []byte) (chatStamp, bool) {
	i := bytes.Index(frame, []byte(chatStampMark))
	if i < 0 {
		return chatStamp{}, false
	}
	rest := frame[i+len(chatStampMark):]
	if len(rest) < 1 || (rest[0] != chatPhaseWarm && rest[0] != chatPhaseMeasure) {
		return chatStamp{}, false
	}
	s := chatStamp{Phase: rest[0]}
	seq, rest, ok := chatDigits(rest[1:], '.')
	if !ok || seq > 1<<31 {
		return chatStamp{}, false
	}
	ns, _, ok := chatDigits(rest, '~')
	if !ok {
		return chatStamp{}, false
	}
	s.Seq, s.SentNS = int(seq), ns
	return s, true
}

// chatDigits parses the decimal number at the start of b, which must end with end, and
// returns what follows end.
func chatDigits(b []byte, end byte) (int64, []byte, bool) {
	var n int64
	for i, c := range b {
		switch {
		case c >= '0' && c <= '9':
			if i >= 19 {
				return 0, nil, false
			}
			n = n*10 + int64(c-'0')
		case c == end && i > 0:
			return n, b[i+1:], true
		default:
			return 0, nil, false
		}
	}
	return 0, nil, false
}

// onair frames, as chat/frames.go marshals them (the type is the first field).
const (
	onairMessagePrefix = `{"type":"message",`
	onairHistoryPrefix = `{"type":"history",`
	onairBatchPrefix   = `{"type":"batch",`
)

// hasPrefix is bytes.HasPrefix for a string prefix, without a conversion.
func hasPrefix(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && string(b[:len(prefix)]) == prefix
}

// chatNonce is the nonce of an onair post: the phase and the sequence number.
func chatNonce(phase byte, seq int) string { return string(phase) + strconv.Itoa(seq) }

// parseChatNonce reverses chatNonce.
func parseChatNonce(nonce string) (phase byte, seq int, ok bool) {
	if len(nonce) < 2 || (nonce[0] != chatPhaseWarm && nonce[0] != chatPhaseMeasure) {
		return 0, 0, false
	}
	n, err := strconv.Atoi(nonce[1:])
	if err != nil || n < 0 {
		return 0, 0, false
	}
	return nonce[0], n, true
}

// Socket.IO acknowledgement ids of the posts: measured messages use seq+1, warm-up ones
// start above every measured id.
const chatWarmAckBase = 1 << 30

func chatAckID(phase byte, seq int) int {
	if phase == chatPhaseWarm {
		return chatWarmAckBase + seq
	}
	return seq + 1
}

func parseChatAckID(id int) (phase byte, seq int, ok bool) {
	switch {
	case id >= chatWarmAckBase:
		return chatPhaseWarm, id - chatWarmAckBase, true
	case id >= 1:
		return chatPhaseMeasure, id - 1, true
	}
	return 0, 0, false
}

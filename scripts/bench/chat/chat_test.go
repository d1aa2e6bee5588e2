package chat

import (
	"strconv"
	"testing"
	"time"
)

// TestStamped: a client counts a stamped message of the window once and its latency,
// and notes warm-up messages, in onair's and socket.io's frames alike.
func TestStamped(t *testing.T) {
	l := &load{spec: spec{TextBytes: 64}, n: 3}
	c := &client{l: l, counts: make([]uint8, 3)}
	c.lastWarm.Store(-1)
	sent := time.Now().Add(-20 * time.Millisecond).UnixNano()
	for _, frame := range []string{
		`{"type":"message","id":"x","text":"~m1.` + itoa(sent) + `~ filler","user":"a"}`,
		`42["msg",{"room":"bench","text":"~m1.` + itoa(sent) + `~ filler"}]`,
		`42["msg",{"room":"bench","text":"~w7.` + itoa(sent) + `~ filler"}]`,
		`{"type":"message","text":"~m9.1~"}`, // not a message of the window
	} {
		if err := c.frame([]byte(frame), time.Now().UnixNano()); err != nil {
			t.Fatal(err)
		}
	}
	if c.counts[1] != 2 || len(c.lat) != 1 || c.lat[0] < 20_000 || c.lastWarm.Load() != 7 || l.got.Load() != 1 {
		t.Errorf("counts %v, latencies %v µs, last warm-up %d", c.counts, c.lat, c.lastWarm.Load())
	}
}

func TestSummarize(t *testing.T) {
	us := make([]int32, 1000)
	for i := range us {
		us[i] = int32(1000 * (i + 1))
	}
	if l := summarize(us); l.P50MS != 500 || l.P99MS != 990 || l.P999MS != 999 || l.MaxMS != 1000 || l.Samples != 1000 {
		t.Errorf("%+v", l)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

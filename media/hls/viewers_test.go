package hls

import (
	"net/http/httptest"
	"testing"
	"time"
)

func TestViewerEstimate(t *testing.T) {
	v := newViewers()
	t0 := time.Now()
	req := func(addr, ua string) {
		r := httptest.NewRequest("GET", "/live/cam/video1_stream.m3u8", nil)
		r.RemoteAddr = addr
		r.Header.Set("User-Agent", ua)
		v.note(r, t0)
	}
	req("10.0.0.1:1000", "A")
	req("10.0.0.1:1001", "A") // same client, new connection
	req("10.0.0.1:1000", "B") // another browser behind the same address
	req("10.0.0.2:1000", "A")
	if c, p, total := v.count(t0); c != 3 || p != 3 || total != 3 {
		t.Fatalf("count = %d current, %d peak, %d total; want 3, 3, 3", c, p, total)
	}
	// Two clients keep watching, one leaves.
	later := t0.Add(viewerWindow - time.Second)
	for _, addr := range []string{"10.0.0.1:1000", "10.0.0.2:1000"} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = addr
		r.Header.Set("User-Agent", "A")
		v.note(r, later)
	}
	if c, p, total := v.count(t0.Add(viewerWindow + time.Second)); c != 2 || p != 3 || total != 3 {
		t.Fatalf("after one left: %d current, %d peak, %d total; want 2, 3, 3", c, p, total)
	}
}

package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"onair/chat"
	"onair/scripts/testenv"
)

// metric reads one sample of /metrics: name with its labels, e.g.
// `onair_chat_messages_total{event="received"}`.
func metric(t *testing.T, o *testenv.Onair, name string) float64 {
	t.Helper()
	code, body := o.Get(t, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	return 0
}

// chatUpgrade upgrades an anonymous chat socket by hand, as an attacker's client would,
// and reads nothing after the response's headers. It stays open until the test ends: a
// client closing a socket with unread data resets it, and the server would lose what it
// had not read yet.
func chatUpgrade(t *testing.T, o *testenv.Onair, slug string) net.Conn {
	t.Helper()
	u, err := url.Parse(o.HTTP)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	key := make([]byte, 16)
	_, _ = rand.Read(key)
	_ = nc.SetDeadline(time.Now().Add(time.Minute))
	_, err = fmt.Fprintf(nc, "GET /api/v1/rooms/%s/chat HTTP/1.1\r\nHost: %s\r\nOrigin: %s\r\nUpgrade: websocket\r\n"+
		"Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
		slug, u.Host, o.HTTP, base64.StdEncoding.EncodeToString(key))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: HTTP %d", resp.StatusCode)
	}
	return nc
}

// floodPings writes n bytes of pings on nc, then one message frame, which the server reads
// after every ping.
func floodPings(nc net.Conn, n int) error {
	// Masked client frames; the mask is all zeroes, which leaves the payload as it is.
	ping := append([]byte{0x89, 0x80 | 125, 0, 0, 0, 0}, bytes.Repeat([]byte("p"), 125)...)
	batch := bytes.Repeat(ping, 512)
	for sent := 0; sent < n; sent += len(batch) {
		if _, err := nc.Write(batch); err != nil {
			return fmt.Errorf("after %d bytes of pings: %w", sent, err)
		}
	}
	msg := []byte(`{"type":"message","text":"done"}`)
	_, err := nc.Write(append([]byte{0x81, 0x80 | byte(len(msg)), 0, 0, 0, 0}, msg...))
	return err
}

// TestChatPingFlood is the attack of issue 12 against the binary: anonymous chat sockets
// that send pings as fast as they can and never read grew the server by hundreds of MiB.
// Its heap must grow by no more than each socket's bound (chat.DefaultSendQueueBytes, which
// onair uses) plus the garbage the runtime keeps between collections.
func TestChatPingFlood(t *testing.T) {
	const (
		sockets = 3
		flood   = 48 << 20 // bytes of pings per socket
		// Collected garbage the heap may still count: GOGC=20 keeps it to a fifth of
		// the live heap (tens of MiB), with a few MiB of headroom.
		slack = 16 << 20
	)
	o, _ := startWithMongo(t, "GOGC=20")
	ann := newClient(t, o.HTTP)
	ann.signUp("ann")
	ann.createRoom("flood")
	ann.chat("flood").next("history") // the room's first join is not the attack's
	heap := func() float64 { return metric(t, o, "go_memstats_heap_alloc_bytes") }
	received := func() float64 { return metric(t, o, `onair_chat_messages_total{event="received"}`) }
	base, before := heap(), received()

	var wg sync.WaitGroup
	errs := make(chan error, sockets)
	for range sockets {
		nc := chatUpgrade(t, o, "flood")
		wg.Go(func() { errs <- floodPings(nc, flood) })
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	peak := base
	for flooding := true; flooding; {
		select {
		case <-done:
			flooding = false
		case <-time.After(50 * time.Millisecond):
		}
		peak = max(peak, heap())
	}
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 30*time.Second, func() (bool, string) {
		peak = max(peak, heap())
		return received()-before >= sockets, "the server has not read every ping yet"
	})
	peak = max(peak, heap())
	limit := float64(sockets*chat.DefaultSendQueueBytes + slack)
	t.Logf("%d sockets x %d MiB of pings: heap %.1f MiB, peak %.1f MiB", sockets, flood>>20, base/(1<<20), peak/(1<<20))
	if peak-base > limit {
		t.Fatalf("the heap grew by %.1f MiB, over %d x chat.DefaultSendQueueBytes + %d MiB", (peak-base)/(1<<20), sockets, slack>>20)
	}
	// The server is still serving chat.
	if f := ann.chat("flood").post("still here"); f.Type != "ack" {
		t.Fatalf("post after the flood: %s", f.Raw)
	}
}

package e2e

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"onair/chat"
	"onair/scripts/hostile"
	"onair/scripts/testenv"
)

// metric reads one sample of /metrics: name with its labels, e.g.
// `onair_chat_messages_total{event="received"}`.
func metric(t *testing.T, o *testenv.Onair, name string) float64 {
	t.Helper()
	code, body := o.GetMetrics(t)
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

// floodPings writes n bytes of pings on nc, then one message frame, which the server reads
// after every ping.
func floodPings(nc net.Conn, n int) error {
	batch := bytes.Repeat(hostile.MaskedFrame(0x9, bytes.Repeat([]byte("p"), 125), true), 512)
	for sent := 0; sent < n; sent += len(batch) {
		if _, err := nc.Write(batch); err != nil {
			return fmt.Errorf("after %d bytes of pings: %w", sent, err)
		}
	}
	_, err := nc.Write(hostile.MaskedFrame(0x1, []byte(`{"type":"message","text":"done"}`), true))
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
		// Anonymous, and reading nothing: the sockets stay open until the test ends.
		nc, _ := testenv.RawWebsocket(t, "ws"+strings.TrimPrefix(o.HTTP, "http")+"/api/v1/rooms/flood/chat",
			http.Header{"Origin": {o.HTTP}})
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

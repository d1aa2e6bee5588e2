package chat

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"onair/scripts/testenv"
)

// TestFlushDelayCoalescesWrites: with a FlushDelay, events of a room within the delay go
// out in one batch message, one write; without one, each is written at once, on its own.
func TestFlushDelayCoalescesWrites(t *testing.T) {
	const n = 5
	cases := []struct {
		name     string
		delay    time.Duration
		oneByOne bool // wait for each frame before publishing the next
		writes   func(w uint64) bool
		want     string
	}{
		// Nothing follows each frame, so a frame held back for company would never come.
		{"no delay, one at a time", 0, true, func(w uint64) bool { return w == n }, "one per frame"},
		// Each event is a message of its own, however quickly they come.
		{"no delay, back to back", 0, false, func(w uint64) bool { return w == n }, "one per frame"},
		// The first event waits for the others, within the delay.
		{"delay", time.Second, false, func(w uint64) bool { return w == 1 }, "1"},
	}
	e := newEnv(t)
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			th := e.hub(fmt.Sprintf("n%d", i), func(c *Config) { c.FlushDelay = tc.delay })
			room := fmt.Sprintf("coalesce%d", i)
			cl := dial(t, th, room, "") // waits for the join frames: their writes are done
			r := th.lookup(room)
			before := th.stats.writes.Load()
			for k := range n {
				r.publish(marshal(Message{Type: typeSystem, ID: fmt.Sprint(k), Text: "hi"}), nil)
				if tc.oneByOne {
					if f := cl.next(5 * time.Second); f.ID != fmt.Sprint(k) {
						t.Fatalf("frame %q, want %d", f.ID, k)
					}
				}
				if k == 0 && tc.delay > 0 {
					r.mu.Lock()
					held := len(r.pending)
					r.mu.Unlock()
					if held != 1 {
						t.Fatalf("the room holds %d events after the first, want it held", held)
					}
				}
			}
			if !tc.oneByOne {
				for k := range n {
					f := cl.next(5 * time.Second)
					if f.ID != fmt.Sprint(k) {
						t.Fatalf("frame %q, want %d", f.ID, k)
					}
					if tc.delay > 0 && f.batch != n {
						t.Fatalf("frame %d came in a message of %d events, want one batch of %d", k, f.batch, n)
					}
				}
			}
			if w := th.stats.writes.Load() - before; !tc.writes(w) {
				t.Fatalf("%d frames took %d writes, want %s", n, w, tc.want)
			}
		})
	}
}

// TestBunchGoesAtOnce: events that come faster than the room's pace go as soon as they
// are as many as a batch holds at that pace (batchGoal), in one message and in order,
// without waiting out FlushDelay; fewer than that wait for it.
func TestBunchGoesAtOnce(t *testing.T) {
	e := newEnv(t)
	th := e.hub("n1", func(c *Config) { c.FlushDelay = time.Second })
	cl := dial(t, th, "r1", "")
	r := th.lookup("r1")
	held := func() int {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.pending)
	}
	// The room has been quiet for an hour: one event per FlushDelay is its pace, so two
	// make a batch.
	r.mu.Lock()
	r.paceSince, r.paceEvents = time.Now().Add(-time.Hour), 0
	r.mu.Unlock()
	publish := func(k int) { r.publish(marshal(Message{Type: typeSystem, ID: fmt.Sprint(k), Text: "hi"}), nil) }
	publish(0)
	if n := held(); n != 1 {
		t.Fatalf("the room holds %d events after the first, want it held", n)
	}
	publish(1)
	if n := held(); n != 0 {
		t.Fatalf("the room holds %d events after the second, want both gone", n)
	}
	for k := range 2 {
		if f := cl.next(5 * time.Second); f.ID != fmt.Sprint(k) || f.batch != 2 {
			t.Fatalf("frame %s in a message of %d events, want event %d in a batch of 2", f.raw, f.batch, k)
		}
	}
	// Three events within the second are a faster pace: the goal rises, the next waits.
	publish(2)
	if n := held(); n != 1 {
		t.Fatalf("the room holds %d events after the third, want it held", n)
	}
	if f := cl.next(5 * time.Second); f.ID != "2" {
		t.Fatalf("frame %s, want event 2 after the delay", f.raw)
	}
}

// TestPaceSetsBatchGoal: the goal is one more than the events that come in FlushDelay at
// the pace of the last second, raised within the second when the pace quickens.
func TestPaceSetsBatchGoal(t *testing.T) {
	const delay = 15 * time.Millisecond
	r := &room{batchGoal: math.MaxInt}
	t0 := time.Now()
	for i := range 100 { // the first second: no pace known yet
		r.pace(t0.Add(time.Duration(i)*10*time.Millisecond), delay)
	}
	if r.batchGoal != math.MaxInt {
		t.Fatalf("goal %d before a second has passed, want none", r.batchGoal)
	}
	r.pace(t0.Add(time.Second), delay) // 101 events in a second: 1.5 per delay
	if r.batchGoal != 3 {
		t.Fatalf("goal %d at 100 events/s and a delay of %s, want 3", r.batchGoal, delay)
	}
	for i := range 20 { // a burst: 20 events in 10 ms, judged over paceWindow/8
		r.pace(t0.Add(time.Second+time.Duration(i)*500*time.Microsecond), delay)
	}
	if r.batchGoal != 4 {
		t.Fatalf("goal %d after 20 events in 10 ms, want 4 (20 per %s)", r.batchGoal, paceWindow/8)
	}
	for i := range 230 { // 250 events in 125 ms: 30 per delay
		r.pace(t0.Add(time.Second+10*time.Millisecond+time.Duration(i)*500*time.Microsecond), delay)
	}
	if r.batchGoal != 31 {
		t.Fatalf("goal %d after 250 events in 125 ms, want 31", r.batchGoal)
	}
}

// TestShutdownSendsWaitingEvents: events waiting for the room's FlushDelay reach the
// sockets before their close frame when the hub stops.
func TestShutdownSendsWaitingEvents(t *testing.T) {
	e := newEnv(t)
	th := e.hub("n1", func(c *Config) { c.FlushDelay = time.Second })
	cl := dial(t, th, "r1", "")
	r := th.lookup("r1")
	for k := range 3 {
		r.publish(marshal(Message{Type: typeSystem, ID: fmt.Sprint(k), Text: "hi"}), nil)
	}
	th.stop(t)
	th.done = make(chan error, 1) // for the cleanup's stop
	th.done <- nil
	for k := range 3 {
		if f := cl.next(5 * time.Second); f.ID != fmt.Sprint(k) {
			t.Fatalf("frame %s, want event %d", f.raw, k)
		}
	}
	if err := cl.closed(5 * time.Second); !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Fatalf("close %v, want 1001", err)
	}
}

// TestStalledSocketCatchesUp: a client that stops reading fills its socket's buffers, so
// that its writer waits and messages queue behind it; once the client reads again it gets
// every message, in order, and the queue empties.
func TestStalledSocketCatchesUp(t *testing.T) {
	e := newEnv(t)
	th := e.hub("n1", func(c *Config) { c.SendQueue, c.SendQueueBytes = 1<<14, 64<<20; c.WriteTimeout = 30 * time.Second })
	ws, _, err := websocket.DefaultDialer.Dial(wsURL(th, "r1", ""), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	for range 2 { // history, viewers
		if _, _, err := ws.ReadMessage(); err != nil {
			t.Fatal(err)
		}
	}
	c := socketOf(t, th, "r1")
	r := th.lookup("r1")
	queued := func() int {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.q)
	}

	big := strings.Repeat("x", 32<<10)
	sent := 0
	publish := func() {
		r.publish(marshal(Message{Type: typeSystem, ID: fmt.Sprint(sent), Text: big}), nil)
		sent++
	}
	// The writer takes one message at a time: ten waiting means it is stuck.
	for queued() < 10 {
		if sent == 8000 {
			t.Fatal("the socket's buffers never filled")
		}
		publish()
	}
	read := func(want int) {
		t.Helper()
		_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		for k := range want {
			_, data, err := ws.ReadMessage()
			if err != nil {
				t.Fatalf("after %d of %d frames: %v", k, want, err)
			}
			if id := fmt.Sprintf(`"id":"%d"`, k+(sent-want)); !strings.Contains(string(data[:min(len(data), 64)]), id) {
				t.Fatalf("frame %.64s, want %s", data, id)
			}
		}
	}
	read(sent)
	testenv.Eventually(t, 5*time.Second, func() (bool, string) { return queued() == 0, "still queued" })
	for range 3 {
		publish()
	}
	read(3)
	if s := th.Stats(); s.SlowClosed != 0 || s.MessagesDropped != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestFlushDelayBounds(t *testing.T) {
	client, err := mongo.Connect(options.Client().ApplyURI("mongodb://127.0.0.1:1")) // never used
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []time.Duration{-time.Millisecond, time.Second + 1} {
		if _, err := New(Config{DB: client.Database("flush"), NodeID: "a", FlushDelay: d}); err == nil {
			t.Errorf("New with FlushDelay %s: no error", d)
		}
	}
	for _, d := range []time.Duration{0, 20 * time.Millisecond, time.Second} {
		if _, err := New(Config{DB: client.Database("flush"), NodeID: "a", FlushDelay: d}); err != nil {
			t.Errorf("New with FlushDelay %s: %v", d, err)
		}
	}
}

// TestBatchesAreBounded: however many events come within the delay, a room holds at most
// batchBytes of them (and the one that crossed it) before sending them.
func TestBatchesAreBounded(t *testing.T) {
	e := newEnv(t)
	th := e.hub("n1", func(c *Config) { c.FlushDelay = time.Second })
	cl := dial(t, th, "r1", "")
	r := th.lookup("r1")
	limit := batchBytes(th.cfg.SendQueueBytes)
	ev := marshal(Message{Type: typeSystem, ID: "x", Text: strings.Repeat("\u2028", th.cfg.MaxLength)})
	n := th.cfg.SendQueueBytes / 2 / len(ev) // a burst the socket holds, however slowly it is written
	for range n {
		r.publish(ev, nil)
		r.mu.Lock()
		held := r.pendingBytes
		r.mu.Unlock()
		if held >= limit {
			t.Fatalf("the room holds %d bytes of events, over batchBytes %d", held, limit)
		}
	}
	for k := range n {
		if f := cl.next(5 * time.Second); f.Type != typeSystem || f.batch > limit/len(ev)+1 {
			t.Fatalf("event %d: %s in a batch of %d", k, f.Type, f.batch)
		}
	}
}

// TestJoinDuringDelay: a socket that joins while events wait for the delay finds them in
// its history and does not get them again; the sockets there before get them once.
func TestJoinDuringDelay(t *testing.T) {
	e := newEnv(t)
	th := e.hub("n1", func(c *Config) { c.FlushDelay = time.Second })
	a := dial(t, th, "r1", alice.ID)
	ack := a.mustPost("before the join")
	b := dialRaw(t, th, "r1", "", nil)
	if f := b.next(5 * time.Second); f.Type != typeHistory || len(f.Messages) != 1 || f.Messages[0].ID != ack.ID {
		t.Fatalf("history %s, want the message", f.raw)
	}
	b.waitType(typeViewers)
	a.waitFor(5*time.Second, "the message", func(f inFrame) bool { return f.ID == ack.ID })
	second := a.mustPost("after the join")
	if f := b.waitType(typeMessage); f.ID != second.ID {
		t.Fatalf("the joined socket got %s, want only the second message", f.raw)
	}
}

package chat

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"onair/scripts/testenv"
)

// awaitCrossNode posts from `from` until `to` receives one of those messages (the tails
// may still be opening) and returns that message's delivery latency.
func awaitCrossNode(t *testing.T, from, to *client, timeout time.Duration) time.Duration {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for i := 0; ; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("no message from %s reached %s within %s", from.name, to.name, timeout)
		}
		f := from.post(fmt.Sprintf("probe %d", i))
		if f.Type != typeAck {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		select {
		case g, ok := <-waitID(to, f.ID, time.Second):
			if ok {
				return g.received.Sub(f.received)
			}
		case <-time.After(time.Until(deadline)):
		}
	}
}

// waitID returns a channel that yields to's frame with id, or closes if none comes in d.
func waitID(to *client, id string, d time.Duration) <-chan inFrame {
	out := make(chan inFrame, 1)
	timer := time.After(d)
	for {
		select {
		case f, ok := <-to.frames:
			if !ok {
				close(out)
				return out
			}
			if f.ID == id {
				out <- f
				return out
			}
		case <-timer:
			close(out)
			return out
		}
	}
}

func TestCrossNode(t *testing.T) {
	e := newEnv(t)
	big := func(c *Config) { c.RateLimit = 1000 }
	A := e.hub("node-a", big)
	B := e.hub("node-b", big)
	room := testRoom("r1")
	ctx := ctxT(t)
	ca := dial(t, A, "r1", alice.ID)
	cb := dial(t, B, "r1", bob.ID)

	lat := awaitCrossNode(t, ca, cb, 10*time.Second)
	t.Logf("first cross-node delivery A→B: %s", lat)
	lat = awaitCrossNode(t, cb, ca, 10*time.Second)
	t.Logf("first cross-node delivery B→A: %s", lat)

	// A burst of 50 from A reaches B in order. Its latency is logged here and measured by
	// the cluster-chat benchmark (target 250 ms); a test only bounds it loosely, so that a
	// busy CI machine does not fail it.
	const n = 50
	for i := range n {
		ca.sendJSON(map[string]string{"type": "message", "text": fmt.Sprintf("burst %02d", i), "nonce": fmt.Sprintf("b%02d", i)})
	}
	acked := map[string]time.Time{}
	var ackOrder []string
	for len(ackOrder) < n {
		f := ca.next(10 * time.Second)
		if f.Type == typeAck {
			acked[f.ID] = f.received
			ackOrder = append(ackOrder, f.ID)
		}
		if f.Type == typeError {
			t.Fatalf("burst refused: %s", f.raw)
		}
	}
	var got []string
	var lats []time.Duration
	for len(got) < n {
		f := cb.next(10 * time.Second)
		if f.Type != typeMessage || !strings.HasPrefix(f.Text, "burst") {
			continue // probes
		}
		if want := fmt.Sprintf("burst %02d", len(got)); f.Text != want {
			t.Fatalf("B got %q, want %q", f.Text, want)
		}
		got = append(got, f.ID)
		if at, ok := acked[f.ID]; ok {
			lats = append(lats, f.received.Sub(at))
		}
	}
	if !slices.Equal(got, ackOrder) {
		t.Fatalf("B's order %v differs from A's acks %v", got, ackOrder)
	}
	slices.Sort(lats)
	t.Logf("burst of %d A→B: latency after the ack on A: min %s, median %s, max %s (from %d acks seen first)",
		n, lats[0], lats[len(lats)/2], lats[len(lats)-1], len(lats))
	if lats[len(lats)-1] > 5*time.Second {
		t.Errorf("cross-node latency %s: delivery stalled", lats[len(lats)-1])
	}

	// History on B includes A's messages.
	c := dialRaw(t, B, "r1", "", nil)
	if f := c.next(5 * time.Second); len(f.Messages) == 0 || f.Messages[len(f.Messages)-1].ID != got[n-1] {
		t.Fatalf("B's join history does not end with A's last message: %s", f.raw)
	}

	// Moderation on one node applies on the other: its cache follows the events.
	tb := dial(t, B, "r1", troll.ID)
	tb.mustPost("troll on B")
	if err := A.Ban(ctx, room, owner, troll, "cross-node"); err != nil {
		t.Fatal(err)
	}
	tb.waitType(typeUserBanned)
	tb.expectError("banned on A", codeBanned)
	if err := A.Unban(ctx, room, owner, troll); err != nil {
		t.Fatal(err)
	}
	tb.waitType(typeUserUnbanned)
	tb.mustPost("unbanned on A")

	m := ca.mustPost("delete me from B")
	cb.waitFor(5*time.Second, "A's message", func(f inFrame) bool { return f.ID == m.ID })
	if err := B.DeleteMessage(ctx, room, mod, m.ID); err != nil {
		t.Fatal(err)
	}
	if f := ca.waitType(typeDeleted); f.ID != m.ID {
		t.Fatalf("A got %s", f.raw)
	}
	if err := A.SetSlowMode(ctx, room, owner, time.Minute); err != nil {
		t.Fatal(err)
	}
	if f := cb.waitType(typeSlowMode); f.IntervalMS != 60000 {
		t.Fatalf("B got %s", f.raw)
	}
	carol := dial(t, B, "r1", "carol")
	carol.mustPost("first under slow mode")
	carol.expectError("second under slow mode", codeSlowMode)
	if err := B.System(ctx, room, "went live"); err != nil {
		t.Fatal(err)
	}
	if f := ca.waitType(typeSystem); f.Text != "went live" {
		t.Fatalf("A got %s", f.raw)
	}
	if s := B.Stats(); s.EventsReceived == 0 || s.EventsPublished == 0 {
		t.Fatalf("B stats %+v", s)
	}
}

func TestMongoOutage(t *testing.T) {
	e := newEnv(t)
	cfg := func(c *Config) { c.RateLimit, c.OpTimeout = 1000, time.Second }
	A := e.hub("node-a", cfg)
	B := e.hub("node-b", cfg)
	room := testRoom("r1")
	ca := dial(t, A, "r1", alice.ID)
	cb := dial(t, B, "r1", bob.ID)
	awaitCrossNode(t, ca, cb, 10*time.Second)
	acked := []string{ca.mustPost("before").ID}
	cb.waitFor(5*time.Second, "before", func(f inFrame) bool { return f.ID == acked[0] })

	e.mongo.Kill()
	f := ca.post("during the outage")
	if f.Type != typeError || f.Code != codeUnavailable {
		t.Fatalf("post during outage: %s", f.raw)
	}
	cb.nothingBefore(B, "r1") // nothing was broadcast
	// Joining a room that is not in memory: an error frame instead of history, socket open.
	c2 := dialRaw(t, A, "r2", alice.ID, nil)
	if f := c2.next(5 * time.Second); f.Type != typeError || f.Code != codeUnavailable {
		t.Fatalf("join during outage: %s", f.raw)
	}
	if f := c2.next(5 * time.Second); f.Type != typeViewers {
		t.Fatalf("join during outage: %s", f.raw)
	}
	c2.expectError("r2 during the outage", codeUnavailable)
	ctx := ctxT(t)
	if err := A.Ban(ctx, room, owner, troll, ""); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("ban during outage: %v", err)
	}
	if err := A.DeleteMessage(ctx, room, owner, acked[0]); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("delete during outage: %v", err)
	}
	if _, err := A.History(ctx, room, 0); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("history during outage: %v", err)
	}
	if err := A.System(ctx, room, "x"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("system during outage: %v", err)
	}
	if A.Sockets() != 2 || B.Sockets() != 1 {
		t.Fatalf("sockets closed during the outage: A %d, B %d", A.Sockets(), B.Sockets())
	}

	e.mongo.Restart(t)
	restarted := time.Now()
	// The same sockets post again, without reconnecting.
	testenv.Eventually(t, 20*time.Second, func() (bool, string) {
		f := ca.post("after the outage")
		if f.Type == typeAck {
			acked = append(acked, f.ID)
		}
		return f.Type == typeAck, string(f.raw)
	})
	t.Logf("posting works %s after the restart", time.Since(restarted).Round(time.Millisecond))
	// The tails resume: cross-node delivery works again, both ways.
	lat := awaitCrossNode(t, ca, cb, 20*time.Second)
	t.Logf("cross-node delivery works %s after the restart (latency %s)", time.Since(restarted).Round(time.Millisecond), lat)
	awaitCrossNode(t, cb, ca, 20*time.Second)
	// The socket that joined during the outage gets its history once the room loads.
	c2.waitFor(20*time.Second, "history", func(f inFrame) bool { return f.Type == typeHistory })
	c2.mustPost("r2 after the outage")

	hist, err := A.History(ctx, room, 500)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range hist {
		ids = append(ids, m.ID)
	}
	for _, id := range acked {
		if !slices.Contains(ids, id) {
			t.Errorf("acknowledged message %s is not in the history", id)
		}
	}
	if s := A.Stats(); s.TailRestarts == 0 {
		t.Errorf("A's tail never restarted: %+v", s)
	}
}

func TestEventLogWrapResumesFromNewest(t *testing.T) {
	e := newEnv(t)
	small := func(c *Config) { c.EventLogMaxDocs = 3 }
	A := e.hub("node-a", small)
	B := e.hub("node-b", small)
	room := testRoom("r1")
	ca := dial(t, A, "r1", alice.ID)
	cb := dial(t, B, "r1", bob.ID)
	awaitCrossNode(t, ca, cb, 10*time.Second)

	// Stall B's delivery (its tail waits on the room) while A fills the log many times
	// over, until every document B may have read is gone.
	ids := func() (map[any]bool, error) {
		ctx := ctxT(t)
		cur, err := A.events.Find(ctx, bson.D{})
		if err != nil {
			return nil, err
		}
		var docs []bson.M
		if err := cur.All(ctx, &docs); err != nil {
			return nil, err
		}
		out := map[any]bool{}
		for _, d := range docs {
			out[d["_id"]] = true
		}
		return out, nil
	}
	r := B.lookup("r1")
	r.mu.Lock()
	stalled := true
	defer func() {
		if stalled {
			r.mu.Unlock()
		}
	}()
	flood := func(n int) {
		for i := range n {
			if err := A.System(ctxT(t), room, fmt.Sprintf("flood %d", i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	flood(50) // B reads the first of these, then waits
	seen, err := ids()
	if err != nil {
		t.Fatal(err)
	}
	// Keep flooding until FerretDB's cleanup (every second in tests) has removed them all.
	testenv.Eventually(t, 20*time.Second, func() (bool, string) {
		flood(20)
		now, err := ids()
		if err != nil {
			return false, err.Error()
		}
		for id := range now {
			if seen[id] {
				return false, fmt.Sprintf("%d documents, some old", len(now))
			}
		}
		return true, ""
	})
	stalled = false
	r.mu.Unlock()

	testenv.Eventually(t, 15*time.Second, func() (bool, string) {
		s := B.Stats()
		return s.EventLogGaps > 0, fmt.Sprintf("B stats %+v", s)
	})
	// B follows the log again from its end.
	awaitCrossNode(t, ca, cb, 10*time.Second)
	if s := B.Stats(); s.EventLogGaps != 1 {
		t.Fatalf("gaps %d, want 1", s.EventLogGaps)
	}
}

// TestRateLimitAcrossNodes: a user's posts through one node count against their rate
// limit on every node, so that connecting to several nodes does not multiply it.
func TestRateLimitAcrossNodes(t *testing.T) {
	e := newEnv(t)
	limit := func(c *Config) { c.RateLimit = 3; c.RatePer = time.Minute }
	A := e.hub("node-a", limit)
	B := e.hub("node-b", limit)
	// bob opens the way: his probes show both tails are running.
	awaitCrossNode(t, dial(t, A, "r1", bob.ID), dial(t, B, "r1", bob.ID), 10*time.Second)

	onA := dial(t, A, "r1", alice.ID)
	onB := dial(t, B, "r1", alice.ID)
	var last inFrame
	for i := range 3 {
		last = onA.mustPost(fmt.Sprintf("through A %d", i))
	}
	// Once B has alice's third post, it refuses her fourth.
	onB.waitFor(10*time.Second, "alice's last post on B", func(f inFrame) bool { return f.ID == last.ID })
	onB.expectError("through B", codeRateLimited)
}

// TestNotePost: posts seen through other nodes are kept in order, within the window,
// and never in the future of this node's clock.
func TestNotePost(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	sec := func(s int) time.Time { return now.Add(time.Duration(s) * time.Second) }
	tests := []struct {
		name      string
		have      []time.Time
		at        time.Time
		wantPosts []time.Time
		wantLast  time.Time
	}{
		{"in order", []time.Time{sec(-5)}, sec(-2), []time.Time{sec(-5), sec(-2)}, sec(-2)},
		{"late arrival goes in its place", []time.Time{sec(-5), sec(-1)}, sec(-3), []time.Time{sec(-5), sec(-3), sec(-1)}, sec(-1)},
		{"older than the window: dropped", []time.Time{sec(-5)}, sec(-20), []time.Time{sec(-5)}, sec(-5)},
		{"the window's old posts go", []time.Time{sec(-15), sec(-5)}, sec(-1), []time.Time{sec(-5), sec(-1)}, sec(-1)},
		{"another clock ahead: now", nil, sec(3), []time.Time{now}, now},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &room{h: &Hub{cfg: Config{RateLimit: 5, RatePer: 10 * time.Second}}, users: map[string]*userState{}}
			if tt.have != nil {
				r.users["u"] = &userState{posts: slices.Clone(tt.have), last: tt.have[len(tt.have)-1]}
			}
			r.notePost("u", tt.at, now)
			u := r.users["u"]
			if u == nil {
				if tt.wantPosts != nil {
					t.Fatal("no state kept")
				}
				return
			}
			if !slices.Equal(u.posts, tt.wantPosts) || !u.last.Equal(tt.wantLast) {
				t.Fatalf("posts %v last %v, want %v last %v", u.posts, u.last, tt.wantPosts, tt.wantLast)
			}
		})
	}
}

// TestTailOnlyWithRooms: a node follows the event log only while it has rooms: not
// before its first socket, and not once its sockets have been gone for TailLinger. The
// next socket starts the tail again, and gets every message posted after its history.
func TestTailOnlyWithRooms(t *testing.T) {
	e := newEnv(t)
	cfg := func(c *Config) { c.RateLimit, c.TailLinger = 1000, 100*time.Millisecond }
	A := e.hub("node-a", cfg)
	B := e.hub("node-b", cfg)
	if A.tailing.Load() || B.tailing.Load() {
		t.Fatal("a node without rooms follows the event log")
	}
	ca := dial(t, A, "r1", alice.ID)
	cb := dial(t, B, "r1", bob.ID)
	awaitCrossNode(t, ca, cb, 10*time.Second)

	_ = cb.ws.Close()
	testenv.Eventually(t, 10*time.Second, func() (bool, string) {
		return !B.tailing.Load(), "B still follows the event log without a room"
	})
	if !A.tailing.Load() {
		t.Fatal("A stopped following the event log with a socket open")
	}
	cb = dial(t, B, "r1", bob.ID) // returns once it has its history
	m := ca.mustPost("after B's history")
	cb.waitFor(10*time.Second, "A's message", func(f inFrame) bool { return f.ID == m.ID })
}

// TestRoomLoadsWaitForTheTail: a room's first load waits until the tail has a position
// in the event log, or it could miss what other nodes post between its snapshot and the
// tail's start; a tail that stopped for want of rooms makes the next load wait again.
func TestRoomLoadsWaitForTheTail(t *testing.T) {
	client, err := mongo.Connect(options.Client().ApplyURI("mongodb://127.0.0.1:1")) // never used
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Config{DB: client.Database("tail"), NodeID: "a"})
	if err != nil {
		t.Fatal(err)
	}
	waits := func() bool {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		return errors.Is(h.awaitTail(ctx), ErrUnavailable)
	}
	if !waits() {
		t.Fatal("a load did not wait for a tail that never started")
	}
	h.tailPositioned()
	if waits() {
		t.Fatal("a load waits for a tail that has its position")
	}
	r := h.acquire(testRoom("r1"))
	if h.tailIdle(time.Now()) || waits() {
		t.Fatal("the tail stopped while the node has a room")
	}
	h.release(r)
	if !h.tailIdle(time.Now().Add(h.cfg.TailLinger)) || !waits() {
		t.Fatal("a stopped tail does not make the next load wait")
	}
}

package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"onair/scripts/testenv"
)

type env struct {
	mongo *testenv.MongoDB
	db    *mongo.Database
}

func newEnv(t *testing.T) *env {
	t.Helper()
	m := testenv.StartMongoDB(t)
	return &env{mongo: m, db: m.Database(t, "audit")}
}

func logger() *slog.Logger {
	level := slog.LevelError + 1
	if testing.Verbose() {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// start builds a Log and runs it until the returned stop is called (or the test ends).
func (e *env) start(t *testing.T, mod func(*Config)) (*Log, func()) {
	t.Helper()
	cfg := Config{DB: e.db, Logger: logger(), NodeID: "n1", OpTimeout: time.Second,
		RetryMin: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond, DrainTimeout: 2 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.EnsureIndexes(ctx); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		_ = l.Run(runCtx)
		close(done)
	}()
	stopped := func() {
		stop()
		<-done
	}
	t.Cleanup(stopped)
	return l, stopped
}

func list(t *testing.T, l *Log, q Query) Page {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p, err := l.List(ctx, q)
	if err != nil {
		t.Fatalf("List(%+v): %v", q, err)
	}
	return p
}

func waitEntries(t *testing.T, l *Log, n int) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		p, err := l.List(ctx, Query{Limit: 200})
		return err == nil && len(p.Entries) == n, fmt.Sprintf("%d entries, %v", len(p.Entries), err)
	})
}

func TestRecordAndList(t *testing.T) {
	e := newEnv(t)
	l, _ := e.start(t, nil)
	ann := Actor{ID: "a1", Handle: "ann"}
	admin := Actor{ID: "ad", Handle: "root", Admin: true}
	r1 := &Room{ID: "r1", Slug: "first", Title: "First"}
	r2 := &Room{ID: "r2", Slug: "second", Title: "Second"}
	base := time.Now().UTC().Truncate(time.Millisecond)
	ctx := WithClientIP(context.Background(), "203.0.113.7")
	entries := []Entry{
		{Action: RoomCreate, Actor: ann, Room: r1, Details: map[string]any{"visibility": "public", "recording": true}},
		{Action: KeyRotate, Actor: ann, Room: r1},
		{Action: ChatBan, Actor: ann, Room: r1, Target: &Target{Kind: KindUser, ID: "u9", Name: "troll"}, Details: map[string]any{"reason": "spam"}},
		{Action: ChatTimeout, Actor: admin, Room: r2, Target: &Target{Kind: KindUser, ID: "u9", Name: "troll"}, Details: map[string]any{"duration_ms": int64(60000)}},
		{Action: RoomDelete, Actor: admin, Room: r2},
	}
	for i, en := range entries {
		en.At = base.Add(time.Duration(i) * time.Second)
		l.Record(ctx, en)
	}
	l.Record(context.Background(), Entry{Action: WebhookCreate, Actor: ann, Room: r1, At: base.Add(10 * time.Second), IP: "198.51.100.1",
		Details: map[string]any{"events": []string{"stream.started", "stream.ended"}}})
	waitEntries(t, l, 6)

	all := list(t, l, Query{})
	if all.Entries[0].Action != WebhookCreate || all.Entries[5].Action != RoomCreate {
		t.Fatalf("not newest first: %v … %v", all.Entries[0].Action, all.Entries[5].Action)
	}
	first := all.Entries[5]
	if first.Actor != ann || *first.Room != *r1 || first.IP != "203.0.113.7" || first.Node != "n1" || first.ID == "" ||
		!first.At.Equal(base) || first.Details["visibility"] != "public" || first.Details["recording"] != true {
		t.Fatalf("entry = %+v", first)
	}
	if all.Entries[0].IP != "198.51.100.1" {
		t.Fatalf("an entry's own IP was replaced: %q", all.Entries[0].IP)
	}
	if ev, ok := all.Entries[0].Details["events"].([]any); !ok || len(ev) != 2 || ev[0] != "stream.started" {
		t.Fatalf("list detail = %#v", all.Entries[0].Details["events"])
	}
	if d := all.Entries[2].Details["duration_ms"]; d != int64(60000) {
		t.Fatalf("duration = %#v", d)
	}

	tests := []struct {
		name string
		q    Query
		want []string
	}{
		{"room by slug", Query{Room: "second"}, []string{RoomDelete, ChatTimeout}},
		{"room by id", Query{Room: "r1"}, []string{WebhookCreate, ChatBan, KeyRotate, RoomCreate}},
		{"actor by handle", Query{Actor: "@Root"}, []string{RoomDelete, ChatTimeout}},
		{"actor by id", Query{Actor: "a1", Action: KeyRotate}, []string{KeyRotate}},
		{"action family", Query{Action: "chat.*"}, []string{ChatTimeout, ChatBan}},
		{"action and room", Query{Action: "chat.*", Room: "first"}, []string{ChatBan}},
		{"nothing", Query{Room: "third"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, en := range list(t, l, tt.q).Entries {
				got = append(got, en.Action)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}

	// Pages of 2 walk the whole log once.
	var walked []string
	q := Query{Limit: 2}
	for range 10 {
		p := list(t, l, q)
		for _, en := range p.Entries {
			walked = append(walked, en.ID)
		}
		if p.Next == "" {
			break
		}
		q.Cursor = p.Next
	}
	if len(walked) != 6 || walked[0] != all.Entries[0].ID || walked[5] != all.Entries[5].ID {
		t.Fatalf("paged through %d entries", len(walked))
	}

	for _, bad := range []Query{{Cursor: "garbage"}, {Action: "chat.ban; drop"}, {Action: ".*"}} {
		if _, err := l.List(context.Background(), bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("List(%+v) = %v, want ErrInvalid", bad, err)
		}
	}
	if l.Written() != 6 || l.Dropped() != 0 {
		t.Fatalf("written %d, dropped %d", l.Written(), l.Dropped())
	}
}

// While MongoDB is down, Record neither blocks nor fails; the entries are written once it
// is back.
func TestWritesSurviveAnOutage(t *testing.T) {
	e := newEnv(t)
	var logs testenv.Buffer
	l, _ := e.start(t, func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	l.Record(context.Background(), Entry{Action: RoomCreate, Actor: Actor{ID: "a1", Handle: "ann"}})
	waitEntries(t, l, 1)

	e.mongo.Kill()
	start := time.Now()
	for i := range 20 {
		l.Record(context.Background(), Entry{Action: ChatBan, Actor: Actor{ID: "a1", Handle: "ann"}, Details: map[string]any{"n": i}})
	}
	// Blocking on MongoDB would take the OpTimeout (1 s) per call.
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("Record blocked for %s while MongoDB was down", d)
	}
	testenv.Eventually(t, 10*time.Second, func() (bool, string) {
		return logs.Contains("not written yet; will retry"), "the writer has not met the outage yet"
	})
	e.mongo.Restart(t)
	waitEntries(t, l, 21)
	if l.Dropped() != 0 || l.Written() != 21 {
		t.Fatalf("written %d, dropped %d", l.Written(), l.Dropped())
	}
}

// A full queue drops (and counts) instead of blocking; what is queued at shutdown is
// written by the drain.
func TestQueueBoundAndDrain(t *testing.T) {
	e := newEnv(t)
	l, err := New(Config{DB: e.db, Logger: logger(), QueueSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		l.Record(context.Background(), Entry{Action: ChatUnban, Actor: Actor{ID: "m", Handle: "mod"}})
	}
	if l.Dropped() != 2 || l.Queued() != 3 {
		t.Fatalf("dropped %d, queued %d", l.Dropped(), l.Queued())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // Run starts and stops at once: the drain writes the queue
	if err := l.Run(ctx); err != nil {
		t.Fatal(err)
	}
	p := list(t, l, Query{})
	if len(p.Entries) != 3 || l.Written() != 3 || l.Queued() != 0 {
		t.Fatalf("%d entries after the drain, written %d", len(p.Entries), l.Written())
	}
}

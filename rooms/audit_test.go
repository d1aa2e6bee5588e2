package rooms

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"onair/rooms/audit"
	"onair/scripts/testenv"
)

// auditSink records what the Service reports.
type auditSink struct {
	mu      sync.Mutex
	entries []audit.Entry
	ips     []string
}

func (s *auditSink) Record(ctx context.Context, e audit.Entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entries = append(s.entries, e)
	s.ips = append(s.ips, audit.ClientIP(ctx))
}

func (s *auditSink) all() []audit.Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]audit.Entry(nil), s.entries...)
}

func TestAuditHook(t *testing.T) {
	sink := &auditSink{}
	e := newEnv(t, func(c *Config) { c.Audit = sink })
	root := e.signUp("root").User // first account: admin
	ann := e.signUp("ann").User
	bob := e.signUp("bob").User
	ctx := audit.WithClientIP(e.ctx(), "192.0.2.10")

	room, key := e.createRoom(ann, "ann-room", "Ann")
	title := "Ann's show"
	if _, err := e.svc.UpdateRoom(ctx, ann, "ann-room", RoomUpdate{Title: &title}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.UpdateRoom(ctx, ann, "ann-room", RoomUpdate{}); err != nil { // nothing changed
		t.Fatal(err)
	}
	newKey, err := e.svc.RotateKey(ctx, ann, "ann-room")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second add changes nothing
		if _, err := e.svc.AddModerator(ctx, ann, "ann-room", "bob"); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if _, err := e.svc.RemoveModerator(ctx, root, "ann-room", "bob"); err != nil {
			t.Fatal(err)
		}
	}
	// Refused: not recorded.
	if _, err := e.svc.RotateKey(ctx, bob, "ann-room"); !errors.Is(err, ErrForbidden) {
		t.Fatalf("bob rotates: %v", err)
	}
	if err := e.svc.DeleteRoom(ctx, bob, "ann-room"); !errors.Is(err, ErrForbidden) {
		t.Fatalf("bob deletes: %v", err)
	}
	if err := e.svc.DeleteRoom(ctx, ann, "ann-room"); err != nil {
		t.Fatal(err)
	}

	want := []struct {
		action, actor, target string
	}{
		{audit.RoomCreate, "ann", ""},
		{audit.RoomUpdate, "ann", ""},
		{audit.KeyRotate, "ann", ""},
		{audit.ModeratorAdd, "ann", "bob"},
		{audit.ModeratorRemove, "root", "bob"},
		{audit.RoomDelete, "ann", ""},
	}
	got := sink.all()
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		target := ""
		if g.Target != nil {
			target = g.Target.Name
		}
		if g.Action != w.action || g.Actor.Handle != w.actor || target != w.target || g.Room == nil || g.Room.ID != room.ID ||
			g.Room.Slug != "ann-room" || g.At.IsZero() {
			t.Errorf("entry %d = %+v, want %v", i, g, w)
		}
		if i > 0 && sink.ips[i] != "192.0.2.10" {
			t.Errorf("entry %d: client IP %q", i, sink.ips[i])
		}
	}
	if got[1].Details["title"] != title || len(got[1].Details) != 1 {
		t.Errorf("update details = %v", got[1].Details)
	}
	if !got[4].Actor.Admin {
		t.Errorf("the admin's removal: %+v", got[4].Actor)
	}
	if got[5].Room.Title != title {
		t.Errorf("delete names the room as %+v", got[5].Room)
	}
	e.assertNotLogged(key, newKey)
}

// OnRecording is called once per recording, with the room and the broadcast as written.
func TestOnRecordingHook(t *testing.T) {
	objects := newObjects(t)
	type call struct {
		room Room
		b    Broadcast
	}
	calls := make(chan call, 4)
	e := newEnv(t, func(c *Config) {
		c.Objects = objects
		c.OnRecording = func(r Room, b Broadcast) { calls <- call{r, b} }
	})
	alice := e.signUp("alice").User
	room, key := e.createRoom(alice, "alice-live", "Alice live")
	h := newTestHub(e)
	p, st := h.goLive(key)
	live := e.waitLive(room.Slug, true)
	rec := putRecording(t, objects, room.ID, st.ID())
	p.Close()
	e.waitLive(room.Slug, false)
	testenv.Eventually(t, 2*time.Second, func() (bool, string) {
		err := e.svc.AttachRecording(e.ctx(), st.ID(), rec, time.Now())
		return err == nil, "recording attached: " + errString(err)
	})
	if err := e.svc.AttachRecording(e.ctx(), st.ID(), rec, time.Now()); err != nil { // again: harmless, not announced
		t.Fatal(err)
	}
	select {
	case c := <-calls:
		if c.room.ID != room.ID || c.room.Title != "Alice live" || c.b.ID != live.BroadcastID || c.b.Ended == nil ||
			c.b.Recording == nil || c.b.Recording.Size != 100 || len(c.b.Recording.Segments) != 0 {
			t.Fatalf("OnRecording(%+v, %+v)", c.room, c.b)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("OnRecording not called")
	}
	// OnRecording runs on AttachRecording's goroutine: the second attach has returned, so
	// a second call would be in the channel by now.
	select {
	case c := <-calls:
		t.Fatalf("OnRecording called again for the same recording: %+v", c.b)
	default:
	}
}

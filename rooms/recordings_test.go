package rooms

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"onair/scripts/testenv"
	"onair/storage"
	"onair/storage/local"
)

// newObjects is a real object store (the local directory backend) for recordings.
func newObjects(t *testing.T) *local.Store {
	t.Helper()
	s, err := local.New(local.Config{Root: t.TempDir(), Secret: bytes.Repeat([]byte("s"), 32)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func putRecording(t *testing.T, objects storage.Store, roomID, runID string) Recording {
	t.Helper()
	key := "recordings/" + roomID + "/" + runID + "/recording.mp4"
	body := bytes.Repeat([]byte("x"), 100)
	if err := objects.Put(context.Background(), key, bytes.NewReader(body), int64(len(body)), "video/mp4"); err != nil {
		t.Fatal(err)
	}
	return Recording{
		Status: RecordingReady, Key: key, Prefix: "recordings/" + roomID + "/" + runID + "/",
		ContentType: "video/mp4", Size: 100, InitSize: 10, DurationMS: 2000,
		Segments:  []RecordingSegment{{Size: 40, Duration: time.Second, Key: true}, {Size: 50, Duration: time.Second}},
		Completed: time.Now().UTC().Truncate(time.Millisecond),
	}
}

func exists(t *testing.T, objects storage.Store, key string) bool {
	t.Helper()
	_, err := objects.Head(context.Background(), key)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

func TestAttachRecording(t *testing.T) {
	objects := newObjects(t)
	e := newEnv(t, func(c *Config) { c.Objects = objects })
	alice := e.signUp("alice").User
	room, key := e.createRoom(alice, "alice-live", "Alice live")
	h := newTestHub(e)
	p, st := h.goLive(key)
	live := e.waitLive(room.Slug, true)
	rec := putRecording(t, objects, room.ID, st.ID())

	// While the broadcast is still being ended, the recording waits.
	if err := e.svc.AttachRecording(e.ctx(), st.ID(), rec, time.Now()); !errors.Is(err, ErrNotReady) {
		t.Fatalf("attach while live: %v, want ErrNotReady", err)
	}
	p.Close()
	e.waitLive(room.Slug, false)
	testenv.Eventually(t, 2*time.Second, func() (bool, string) {
		err := e.svc.AttachRecording(e.ctx(), st.ID(), rec, time.Now())
		return err == nil, "recording attached: " + errString(err)
	})
	b, err := e.svc.GetBroadcast(e.ctx(), live.BroadcastID)
	if err != nil {
		t.Fatal(err)
	}
	if b.Recording == nil || b.Recording.Status != RecordingReady || len(b.Recording.Segments) != 2 || b.Recording.Segments[1].Size != 50 {
		t.Fatalf("recording = %+v", b.Recording)
	}
	page, err := e.svc.ListBroadcasts(e.ctx(), room.Slug, BroadcastQuery{})
	if err != nil || len(page.Broadcasts) != 1 {
		t.Fatalf("list: %+v %v", page, err)
	}
	if r := page.Broadcasts[0].Recording; r == nil || r.Size != 100 || len(r.Segments) != 0 {
		t.Fatalf("listed recording = %+v, want it without its segment index", r)
	}
	if err := e.svc.AttachRecording(e.ctx(), "no-such-run", rec, time.Now()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("attach to an unknown run: %v", err)
	}

	// Only the owner (or an admin) deletes it; the object goes with the document.
	bob := e.signUp("bob").User
	if err := e.svc.DeleteBroadcast(e.ctx(), bob, b.ID); !errors.Is(err, ErrForbidden) {
		t.Fatalf("bob deletes alice's broadcast: %v", err)
	}
	if err := e.svc.DeleteBroadcast(e.ctx(), alice, b.ID); err != nil {
		t.Fatal(err)
	}
	if exists(t, objects, rec.Key) {
		t.Fatal("the recording object outlived its broadcast")
	}
	if _, err := e.svc.GetBroadcast(e.ctx(), b.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted broadcast: %v", err)
	}
}

// A broadcast written as ended whose room still shows it live (its end not announced
// yet) gets its recording only once the room is offline: stream.ended goes out before
// recording.ready.
func TestRecordingWaitsForTheAnnouncedEnd(t *testing.T) {
	objects := newObjects(t)
	e := newEnv(t, func(c *Config) { c.Objects = objects })
	alice := e.signUp("alice").User
	room, key := e.createRoom(alice, "alice-live", "Alice live")
	h := newTestHub(e)
	p, st := h.goLive(key)
	live := e.waitLive(room.Slug, true)
	rec := putRecording(t, objects, room.ID, st.ID())
	p.Close()
	e.waitLive(room.Slug, false)

	// The moment between the broadcast's end and its room going offline, held.
	rooms := e.db.Collection("rooms")
	roomOID, err := bson.ObjectIDFromHex(room.ID)
	if err != nil {
		t.Fatal(err)
	}
	show := func(v any) {
		t.Helper()
		if _, err := rooms.UpdateOne(e.ctx(), bson.D{{Key: "_id", Value: roomOID}}, bson.D{{Key: "$set", Value: bson.D{{Key: "broadcast_id", Value: v}}}}); err != nil {
			t.Fatal(err)
		}
	}
	show(e.broadcastOID(live.BroadcastID))
	if err := e.svc.AttachRecording(e.ctx(), st.ID(), rec, time.Now()); !errors.Is(err, ErrNotReady) {
		t.Fatalf("attach while the room still shows the broadcast: %v, want ErrNotReady", err)
	}
	show(nil)
	if err := e.svc.AttachRecording(e.ctx(), st.ID(), rec, time.Now()); err != nil {
		t.Fatalf("attach once the room is offline: %v", err)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// A recording completed after a crash ends its broadcast at the last fragment.
func TestAttachRecoveredRecording(t *testing.T) {
	objects := newObjects(t)
	e := newEnv(t, func(c *Config) { c.Objects = objects })
	alice := e.signUp("alice").User
	room, key := e.createRoom(alice, "alice-live", "Alice live")
	h := newTestHub(e)
	p, st := h.goLive(key)
	live := e.waitLive(room.Slug, true)

	rec := putRecording(t, objects, room.ID, st.ID())
	rec.Recovered = true
	b, err := e.svc.GetBroadcast(e.ctx(), live.BroadcastID)
	if err != nil {
		t.Fatal(err)
	}
	end := b.Started.Add(1500 * time.Millisecond)
	// Until the broadcast is written as ended (after a crash: by the restarted node or a
	// peer, from its last heartbeat), the recording waits.
	if err := e.svc.AttachRecording(e.ctx(), st.ID(), rec, end); !errors.Is(err, ErrNotReady) {
		t.Fatalf("attach to an open broadcast: %v", err)
	}
	p.Close()
	e.waitLive(room.Slug, false)
	testenv.Eventually(t, 2*time.Second, func() (bool, string) {
		err := e.svc.AttachRecording(e.ctx(), st.ID(), rec, end)
		return err == nil, "recovered recording attached: " + errString(err)
	})
	b, err = e.svc.GetBroadcast(e.ctx(), live.BroadcastID)
	if err != nil {
		t.Fatal(err)
	}
	if b.Ended == nil || !b.Ended.Equal(end.UTC().Truncate(time.Millisecond)) || b.DurationMS != 1500 || !b.Recording.Recovered {
		t.Fatalf("recovered broadcast = ended %v, %d ms, %+v", b.Ended, b.DurationMS, b.Recording)
	}
}

// Retention deletes exactly the recordings past their room's setting or the default.
func TestExpireRecordings(t *testing.T) {
	objects := newObjects(t)
	e := newEnv(t, func(c *Config) { c.Objects = objects; c.RetentionDays = 30 })
	alice := e.signUp("alice").User
	h := newTestHub(e)

	type made struct {
		rec     Recording
		id      string
		expires bool
	}
	var all []made
	record := func(slug string, retention *int, age time.Duration, expires bool) {
		room, key := e.createRoom(alice, slug, slug)
		if retention != nil {
			if _, err := e.svc.UpdateRoom(e.ctx(), alice, slug, RoomUpdate{RetentionDays: retention}); err != nil {
				t.Fatal(err)
			}
		}
		p, st := h.goLive(key)
		live := e.waitLive(slug, true)
		p.Close()
		e.waitLive(slug, false)
		rec := putRecording(t, objects, room.ID, st.ID())
		testenv.Eventually(t, 2*time.Second, func() (bool, string) {
			err := e.svc.AttachRecording(e.ctx(), st.ID(), rec, time.Now())
			return err == nil, "attach: " + errString(err)
		})
		// Age the broadcast by moving its end back.
		b, err := e.svc.GetBroadcast(e.ctx(), live.BroadcastID)
		if err != nil {
			t.Fatal(err)
		}
		ended := b.Ended.Add(-age)
		if _, err := e.db.Collection("broadcasts").UpdateOne(e.ctx(), map[string]any{"_id": e.broadcastOID(b.ID)},
			map[string]any{"$set": map[string]any{"ended": ended}}); err != nil {
			t.Fatal(err)
		}
		all = append(all, made{rec: rec, id: b.ID, expires: expires})
	}
	week := 7
	record("default-old", nil, 31*24*time.Hour, true)
	record("default-young", nil, 29*24*time.Hour, false)
	record("week-old", &week, 8*24*time.Hour, true)
	record("week-young", &week, 6*24*time.Hour, false)

	n, err := e.svc.ExpireRecordings(e.ctx())
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("expired %d recordings, want 2", n)
	}
	for _, m := range all {
		b, err := e.svc.GetBroadcast(e.ctx(), m.id)
		if err != nil {
			t.Fatal(err)
		}
		wantStatus := map[bool]string{true: RecordingExpired, false: RecordingReady}[m.expires]
		if b.Recording.Status != wantStatus || exists(t, objects, m.rec.Key) == m.expires {
			t.Errorf("%s: status %s, object exists %v; want %s", m.rec.Key, b.Recording.Status, exists(t, objects, m.rec.Key), wantStatus)
		}
	}
	if n, err := e.svc.ExpireRecordings(e.ctx()); err != nil || n != 0 {
		t.Fatalf("second pass expired %d (%v), want 0", n, err)
	}
}

// A room deleted while it records (with its owner's account, or taken down) keeps none of
// the broadcast that was live: its recording, attached once the broadcast has ended, goes
// with the broadcast, and the caller learns to delete its object.
func TestRecordingOfADeletedRoom(t *testing.T) {
	objects := newObjects(t)
	e := newEnv(t, func(c *Config) { c.Objects = objects })
	alice := e.signUp("alice").User
	room, key := e.createRoom(alice, "alice-live", "Alice live")
	_, st := newTestHub(e).goLive(key)
	live := e.waitLive(room.Slug, true)
	if err := e.svc.DeleteRoom(e.ctx(), alice, room.Slug); err != nil {
		t.Fatal(err)
	}
	<-st.Done()
	rec := putRecording(t, objects, room.ID, st.ID())
	testenv.Eventually(t, 5*time.Second, func() (bool, string) {
		err := e.svc.AttachRecording(e.ctx(), st.ID(), rec, time.Now())
		return errors.Is(err, ErrNotFound), "attach: " + errString(err)
	})
	if _, err := e.svc.GetBroadcast(e.ctx(), live.BroadcastID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the broadcast of the deleted room: %v", err)
	}
}

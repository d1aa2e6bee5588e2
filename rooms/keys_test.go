package rooms

import (
	"errors"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"onair/scripts/testenv"
)

func TestResolveAndRotateKey(t *testing.T) {
	e := newEnv(t, nil)
	alice := e.signUp("alice").User
	bob := e.signUp("bob").User
	room, key := e.createRoom(alice, "alice-live", "Alice live")
	ctx := e.ctx()

	route, err := e.svc.ResolveKey(ctx, key)
	if err != nil || route != (StreamRoute{Name: room.Slug, RoomID: room.ID, Record: true}) {
		t.Fatalf("resolve = %+v, %v", route, err)
	}
	for _, k := range []string{"", "nope", key + "x", string(make([]byte, 300))} {
		if _, err := e.svc.ResolveKey(ctx, k); !errors.Is(err, ErrUnknownKey) {
			t.Errorf("resolve %q: %v, want ErrUnknownKey", k, err)
		}
	}
	// Only the key's hash is stored.
	if n, _ := e.db.Collection("rooms").CountDocuments(ctx, bson.D{{Key: "key_hash", Value: key}}); n != 0 {
		t.Error("key stored in clear")
	}
	var d roomDoc
	if err := e.db.Collection("rooms").FindOne(ctx, bson.D{}).Decode(&d); err != nil || d.KeyHash != keyHash(key) {
		t.Errorf("stored key hash %q", d.KeyHash)
	}

	// Recording off changes the route.
	if _, err := e.svc.UpdateRoom(ctx, alice, room.Slug, RoomUpdate{Recording: ptr(false)}); err != nil {
		t.Fatal(err)
	}
	if route, _ := e.svc.ResolveKey(ctx, key); route.Record {
		t.Error("route still records")
	}

	// Rotation while live: the old key stops resolving and its publish is stopped.
	h := newTestHub(e)
	p, _ := h.goLive(key)
	e.waitLive(room.Slug, true)
	if _, err := e.svc.RotateKey(ctx, bob, room.Slug); !errors.Is(err, ErrForbidden) {
		t.Fatalf("stranger rotate: %v", err)
	}
	newKey, err := e.svc.RotateKey(ctx, alice, room.Slug)
	if err != nil || newKey == key || len(newKey) != 32 {
		t.Fatalf("rotate = %q, %v", newKey, err)
	}
	call := e.stopper.last()
	if call.name != room.Slug || !errors.Is(call.reason, ErrStopped) {
		t.Errorf("stopper called with %+v", call)
	}
	select {
	case <-p.Done():
	case <-time.After(time.Second):
		t.Fatal("publish with the old key still running")
	}
	e.waitLive(room.Slug, false)
	if _, err := e.svc.ResolveKey(ctx, key); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("old key: %v, want ErrUnknownKey", err)
	}
	if route, err := e.svc.ResolveKey(ctx, newKey); err != nil || route.Name != room.Slug {
		t.Errorf("new key: %+v %v", route, err)
	}

	// Deletion of a live room: its publish stops and the key no longer resolves.
	p, _ = h.goLive(newKey)
	e.waitLive(room.Slug, true)
	if err := e.svc.DeleteRoom(ctx, alice, room.Slug); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(time.Second):
		t.Fatal("publish in a deleted room still running")
	}
	if _, err := e.svc.ResolveKey(ctx, newKey); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("key of a deleted room: %v", err)
	}
	e.assertNotLogged(key, newKey)
}

// TestResolveCacheSurvivesOutage: OBS can reconnect with a recently resolved key while
// MongoDB is down, but never with a rotated key or one of a deleted room.
func TestResolveCacheSurvivesOutage(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.OpTimeout = 300 * time.Millisecond })
	alice := e.signUp("alice").User
	roomA, keyA := e.createRoom(alice, "room-a", "A")
	roomB, keyB := e.createRoom(alice, "room-b", "B")
	roomC, keyC := e.createRoom(alice, "room-c", "C")
	ctx := e.ctx()
	for _, k := range []string{keyA, keyB, keyC} {
		if _, err := e.svc.ResolveKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	keyB2, err := e.svc.RotateKey(ctx, alice, roomB.Slug)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.ResolveKey(ctx, keyB2); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.DeleteRoom(ctx, alice, roomC.Slug); err != nil {
		t.Fatal(err)
	}

	e.mongo.Kill()
	tests := []struct {
		name     string
		key      string
		wantName string
		wantErr  error
	}{
		{"cached key", keyA, roomA.Slug, nil},
		{"rotated key's successor", keyB2, roomB.Slug, nil},
		{"rotated key: evicted", keyB, "", ErrUnavailable},
		{"deleted room's key: evicted", keyC, "", ErrUnavailable},
		{"never resolved", newStreamKey(), "", ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			route, err := e.svc.ResolveKey(ctx, tt.key)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) || route.Name != tt.wantName {
				t.Fatalf("resolve = %+v, %v; want %q, %v", route, err, tt.wantName, tt.wantErr)
			}
			if err != nil && errors.Is(err, ErrUnknownKey) {
				t.Fatal("an outage must not look like an unknown key")
			}
		})
	}
	// Entries last KeyCacheTTL (1 h).
	e.clock.Advance(time.Hour)
	if _, err := e.svc.ResolveKey(ctx, keyA); !errors.Is(err, ErrUnavailable) {
		t.Errorf("expired cache entry: %v", err)
	}

	e.mongo.Restart(t)
	testenv.Eventually(t, 5*time.Second, func() (bool, string) {
		route, err := e.svc.ResolveKey(ctx, keyA)
		return err == nil && route.Name == roomA.Slug, "resolve after restart: " + Code(err)
	})
	if _, err := e.svc.ResolveKey(ctx, keyB); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("rotated key after restart: %v", err)
	}
	e.assertNotLogged(keyA, keyB, keyB2, keyC)
}

func TestKeyCacheBounded(t *testing.T) {
	c := newKeyCache(3, time.Hour)
	now := time.Now()
	for i, h := range []string{"h1", "h2", "h3", "h4"} {
		c.put(h, StreamRoute{Name: h, RoomID: "room" + string(rune('0'+i%2))}, now, c.currentEpoch())
	}
	if c.len() != 3 {
		t.Fatalf("len %d", c.len())
	}
	if _, ok := c.get("h1", now); ok {
		t.Error("least recently used entry kept")
	}
	c.evictRoom("room1") // h2, h4
	if _, ok := c.get("h2", now); ok {
		t.Error("h2 kept")
	}
	if _, ok := c.get("h3", now); !ok {
		t.Error("h3 lost")
	}
	// A resolve that started before an eviction does not cache.
	epoch := c.currentEpoch()
	c.evictRoom("room0")
	c.put("h5", StreamRoute{RoomID: "room0"}, now, epoch)
	if _, ok := c.get("h5", now); ok {
		t.Error("stale resolve cached")
	}
	c.put("h6", StreamRoute{RoomID: "room0"}, now, c.currentEpoch())
	c.prune(now.Add(time.Hour))
	if c.len() != 0 {
		t.Errorf("prune left %d", c.len())
	}
}

package rooms

import (
	"errors"
	"testing"
	"time"

	"onair/scripts/testenv"
)

// Two nodes on one database: the one without the stream learns where it is live, and
// stops pointing there once that node stops reporting.
func TestOriginURL(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.HeartbeatInterval = time.Hour })
	other, err := New(Config{DB: e.db, Cluster: e.node("node-b", "http://10.0.0.2:8080"), Now: e.clock.Now,
		Password: cheapPassword, OpTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	alice := e.signUp("alice").User
	room, key := e.createRoom(alice, "alice-live", "Alice live")

	if _, _, err := other.Origin(e.ctx(), room.Slug); !errors.Is(err, ErrNotLiveElsewhere) {
		t.Fatalf("offline room: %v", err)
	}
	if _, _, err := other.Origin(e.ctx(), "no-such-room"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown room: %v", err)
	}
	h := newTestHub(e)
	h.goLive(key)
	e.waitLive(room.Slug, true)
	testenv.Eventually(t, 2*time.Second, func() (bool, string) {
		url, id, err := other.Origin(e.ctx(), room.Slug)
		return url == "http://10.0.0.1:8080" && id == room.ID, "origin known to node b: " + errString(err)
	})
	// The node the room is live on serves it itself.
	if _, _, err := e.svc.Origin(e.ctx(), room.Slug); !errors.Is(err, ErrNotLiveElsewhere) {
		t.Fatalf("origin asked on the origin: %v", err)
	}

	// A node that stops reporting is not sent viewers any more (its broadcasts are ended
	// by EndStaleBroadcasts, tested with the broadcasts).
	e.clock.Advance(e.svc.cfg.Cluster.StaleAfter())
	if _, _, err := other.Origin(e.ctx(), room.Slug); !errors.Is(err, ErrNotLiveElsewhere) {
		t.Fatalf("origin on a silent node: %v", err)
	}
}

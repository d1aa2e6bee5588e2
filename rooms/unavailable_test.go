package rooms

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"onair/scripts/testenv"
)

// TestUnavailable: with MongoDB down every method fails quickly with ErrUnavailable, and
// the same Service works again once it is back.
func TestUnavailable(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.OpTimeout = 300 * time.Millisecond })
	alice := e.signUp("alice")
	room, _ := e.createRoom(alice.User, "alice-live", "Alice live")
	e.mongo.Kill()

	u := alice.User
	calls := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"SignUp", func(ctx context.Context) error {
			_, err := e.svc.SignUp(ctx, SignUp{Email: "bob@example.com", Handle: "bob", Password: "correct horse battery"})
			return err
		}},
		{"LogIn", func(ctx context.Context) error {
			_, err := e.svc.LogIn(ctx, LogIn{Login: "alice", Password: "correct horse battery", IP: "192.0.2.1"})
			return err
		}},
		{"Authenticate", func(ctx context.Context) error { _, _, err := e.svc.Authenticate(ctx, alice.Token); return err }},
		{"LogOut", func(ctx context.Context) error { return e.svc.LogOut(ctx, alice.Token) }},
		{"FindUser", func(ctx context.Context) error { _, err := e.svc.FindUser(ctx, u.ID); return err }},
		{"UserByHandle", func(ctx context.Context) error { _, err := e.svc.UserByHandle(ctx, "alice"); return err }},
		{"CreateRoom", func(ctx context.Context) error {
			_, _, err := e.svc.CreateRoom(ctx, u, NewRoom{Slug: "other", Title: "t"})
			return err
		}},
		{"GetRoom", func(ctx context.Context) error { _, err := e.svc.GetRoom(ctx, room.Slug); return err }},
		{"RoomByID", func(ctx context.Context) error { _, err := e.svc.RoomByID(ctx, room.ID); return err }},
		{"ListRooms", func(ctx context.Context) error { _, err := e.svc.ListRooms(ctx, User{}, RoomQuery{}); return err }},
		{"UpdateRoom", func(ctx context.Context) error {
			_, err := e.svc.UpdateRoom(ctx, u, room.Slug, RoomUpdate{Title: ptr("x")})
			return err
		}},
		{"DeleteRoom", func(ctx context.Context) error { return e.svc.DeleteRoom(ctx, u, room.Slug) }},
		{"RotateKey", func(ctx context.Context) error { _, err := e.svc.RotateKey(ctx, u, room.Slug); return err }},
		{"AddModerator", func(ctx context.Context) error { _, err := e.svc.AddModerator(ctx, u, room.Slug, "bob"); return err }},
		{"ResolveKey", func(ctx context.Context) error { _, err := e.svc.ResolveKey(ctx, newStreamKey()); return err }},
		{"ListBroadcasts", func(ctx context.Context) error {
			_, err := e.svc.ListBroadcasts(ctx, room.Slug, BroadcastQuery{})
			return err
		}},
		{"GetBroadcast", func(ctx context.Context) error {
			_, err := e.svc.GetBroadcast(ctx, e.svc.pkeys().BroadcastID(bson.NewObjectID()))
			return err
		}},
		{"DeleteExpiredSessions", func(ctx context.Context) error { _, err := e.svc.DeleteExpiredSessions(ctx); return err }},
		{"EndStaleBroadcasts", func(ctx context.Context) error { _, err := e.svc.EndStaleBroadcasts(ctx); return err }},
		{"EnsureIndexes", func(ctx context.Context) error { return e.svc.EnsureIndexes(ctx) }},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			err := c.call(context.Background())
			took := time.Since(start)
			if !errors.Is(err, ErrUnavailable) || Code(err) != CodeUnavailable {
				t.Fatalf("err = %v, want ErrUnavailable", err)
			}
			limit := time.Second // OpTimeout is 300 ms here
			if c.name == "EnsureIndexes" {
				limit = 2 * time.Second // it allows itself 4 × OpTimeout
			}
			if took > limit {
				t.Errorf("took %s", took)
			}
		})
	}

	// A caller's own short deadline also reads as unavailable, and a cancelled caller
	// as cancelled.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	_, err := e.svc.GetRoom(ctx, room.Slug)
	cancel()
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("caller deadline: %v", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	if _, err = e.svc.GetRoom(ctx, room.Slug); errors.Is(err, ErrUnavailable) || Code(err) != CodeCanceled {
		t.Errorf("cancelled caller: %v (code %s)", err, Code(err))
	}

	e.mongo.Restart(t)
	took := testenv.Eventually(t, 5*time.Second, func() (bool, string) {
		_, _, err := e.svc.Authenticate(context.Background(), alice.Token)
		return err == nil, "recovery: " + Code(err)
	})
	t.Logf("recovered %s after the restart", took)
	if _, err := e.svc.SignUp(e.ctx(), SignUp{Email: "bob@example.com", Handle: "bob", Password: "correct horse battery"}); err != nil {
		t.Fatalf("sign up after restart: %v", err)
	}
	if _, err := e.svc.GetRoom(e.ctx(), room.Slug); err != nil {
		t.Fatalf("get room after restart: %v", err)
	}
}

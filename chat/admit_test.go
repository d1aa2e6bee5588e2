package chat

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"onair/scripts/testenv"
)

// Sockets whose users Config.Admit stops admitting (a revoked invitation) are closed with
// 4403 at the next pass, which Recheck starts at once; the others stay; while Admit fails
// nobody is closed.
func TestAdmissionsCloseRevokedSockets(t *testing.T) {
	e := newEnv(t)
	var (
		mu      sync.Mutex
		revoked = map[string]bool{}
		failing bool
		asked   []Seat
	)
	th := e.hub("n1", func(c *Config) {
		c.AdmitInterval = time.Hour // passes come from Recheck only
		c.Admit = func(_ context.Context, seats []Seat) ([]bool, error) {
			mu.Lock()
			defer mu.Unlock()
			asked = append([]Seat{}, seats...)
			if failing {
				return nil, errors.New("database away")
			}
			out := make([]bool, len(seats))
			for i, s := range seats {
				out[i] = !revoked[s.RoomID+"/"+s.UserID]
			}
			return out, nil
		}
	})
	a := dial(t, th, "r1", alice.ID)
	a2 := dial(t, th, "r1", alice.ID) // a second tab: one seat
	b := dial(t, th, "r1", bob.ID)
	elsewhere := dial(t, th, "r2", alice.ID)
	anon := dial(t, th, "r1", "")

	set := func(f func()) {
		mu.Lock()
		f()
		mu.Unlock()
	}
	set(func() { failing, revoked["r1/alice"], revoked["r1/"] = true, true, true })
	th.Recheck()
	testenv.Eventually(t, 5*time.Second, func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return len(asked) > 0, "Admit not asked"
	})
	a.mustPost("still admitted while the answer cannot be had")

	set(func() { failing = false })
	th.Recheck()
	for _, c := range []*client{a, a2, anon} {
		if err := c.closed(5 * time.Second); !websocket.IsCloseError(err, CloseAccessRevoked) {
			t.Fatalf("%s: read error %v, want close %d", c.name, err, CloseAccessRevoked)
		}
	}
	b.mustPost("still here")
	elsewhere.mustPost("still here too")
	mu.Lock()
	defer mu.Unlock()
	// One seat per room and user: alice's two sockets in r1 are one.
	if len(asked) != 4 {
		t.Errorf("asked about %d seats, want 4 (r1: alice, bob, anonymous; r2: alice): %+v", len(asked), asked)
	}
}

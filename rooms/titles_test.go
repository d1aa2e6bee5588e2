package rooms

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"onair/scripts/testenv"
)

// TestStreamTitleValidation: the stream title takes the room title's rules, except that
// "" clears it; bad input changes nothing, and only the owner or an admin may set it.
func TestStreamTitleValidation(t *testing.T) {
	e := newEnv(t, nil)
	admin := e.signUp("admin").User
	alice := e.signUp("alice").User
	bob := e.signUp("bob").User
	room, _ := e.createRoom(alice, "alice-room", "Alice's room")
	if _, err := e.svc.AddModerator(e.ctx(), alice, room.Slug, "bob"); err != nil {
		t.Fatal(err)
	}
	const kept = "Kept title"
	for _, tc := range []struct {
		name  string
		actor User
		in    string
		want  string // the stream title after, on success
		err   error
	}{
		{"set", alice, "Building a compiler, part 3", "Building a compiler, part 3", nil},
		{"trimmed", alice, "  Q&A <live>  ", "Q&A <live>", nil},
		{"100 characters", alice, strings.Repeat("é", 100), strings.Repeat("é", 100), nil},
		{"cleared", alice, "", "", nil},
		{"spaces only clear it", alice, "   ", "", nil},
		{"by an admin", admin, "Taken over", "Taken over", nil},
		{"101 characters", alice, strings.Repeat("a", 101), "", ErrInvalid},
		{"control character", alice, "line\nbreak", "", ErrInvalid},
		{"bidi override", alice, "abc\u202edcba", "", ErrInvalid},
		{"invalid UTF-8", alice, "bad \xff", "", ErrInvalid},
		{"by a moderator", bob, "Mod title", "", ErrForbidden},
		{"anonymous", User{}, "Anon title", "", ErrUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := e.svc.UpdateRoom(e.ctx(), alice, room.Slug, RoomUpdate{StreamTitle: ptr(kept)}); err != nil {
				t.Fatal(err)
			}
			r, err := e.svc.UpdateRoom(e.ctx(), tc.actor, room.Slug, RoomUpdate{StreamTitle: ptr(tc.in)})
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				var v *ValidationError
				if errors.Is(tc.err, ErrInvalid) && (!errors.As(err, &v) || v.Field != "stream_title") {
					t.Errorf("error %v does not name stream_title", err)
				}
				if got, _ := e.svc.GetRoom(e.ctx(), room.Slug); got.StreamTitle != kept || got.Title != room.Title {
					t.Errorf("refused input changed the room: %q %q", got.StreamTitle, got.Title)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, _ := e.svc.GetRoom(e.ctx(), room.Slug)
			if r.StreamTitle != tc.want || got.StreamTitle != tc.want {
				t.Errorf("stream title %q (stored %q), want %q", r.StreamTitle, got.StreamTitle, tc.want)
			}
			if want := cmp(tc.want, room.Title); got.BroadcastTitle() != want {
				t.Errorf("broadcast title %q, want %q", got.BroadcastTitle(), want)
			}
		})
	}
}

func cmp(s, fallback string) string {
	if s != "" {
		return s
	}
	return fallback
}

// TestBroadcastTitle: a broadcast takes the room's broadcast title when it starts,
// follows changes while live (at once when the change is made on its node, at the next
// heartbeat from another node, at its end at the latest) and keeps the title it ended
// with.
func TestBroadcastTitle(t *testing.T) {
	const roomTitle = "Alice live"
	for _, tc := range []struct {
		name      string
		before    *string // the stream title set before going live
		change    *string // set while live
		elsewhere bool    // by a request to another node
		heartbeat time.Duration
		start     string // the broadcast's title at start
		live      string // once changed while live ("": no check)
		ended     string
	}{
		{name: "no stream title: the room's", start: roomTitle, ended: roomTitle},
		{name: "stream title at start", before: ptr("Episode 1"), start: "Episode 1", ended: "Episode 1"},
		{name: "changed while live on its node", before: ptr("Episode 1"), change: ptr("Episode 1: Q&A"),
			heartbeat: time.Hour, start: "Episode 1", live: "Episode 1: Q&A", ended: "Episode 1: Q&A"},
		{name: "cleared while live: the room's again", before: ptr("Episode 1"), change: ptr(""),
			heartbeat: time.Hour, start: "Episode 1", live: roomTitle, ended: roomTitle},
		{name: "changed on another node: at the heartbeat", change: ptr("From node B"), elsewhere: true,
			heartbeat: 50 * time.Millisecond, start: roomTitle, live: "From node B", ended: "From node B"},
		{name: "changed on another node: at the end at the latest", change: ptr("Last words"), elsewhere: true,
			heartbeat: time.Hour, start: roomTitle, ended: "Last words"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lives, ends := make(chan Broadcast, 1), make(chan Broadcast, 1)
			e := newEnv(t, func(c *Config) {
				if tc.heartbeat > 0 {
					c.HeartbeatInterval = tc.heartbeat
				}
				c.OnLive = func(_ Room, b Broadcast) { lives <- b }
				c.OnEnded = func(_ Room, b Broadcast) { ends <- b }
			})
			alice := e.signUp("alice").User
			room, key := e.createRoom(alice, "alice-live", roomTitle)
			svc := e.svc
			if tc.elsewhere {
				var err error
				svc, err = New(Config{DB: e.db, Cluster: e.node("node-b", ""), Now: e.clock.Now, Password: cheapPassword, OpTimeout: time.Second})
				if err != nil {
					t.Fatal(err)
				}
			}
			setTitle := func(s string) {
				t.Helper()
				if _, err := svc.UpdateRoom(e.ctx(), alice, room.Slug, RoomUpdate{StreamTitle: &s}); err != nil {
					t.Fatal(err)
				}
			}
			if tc.before != nil {
				setTitle(*tc.before)
			}
			h := newTestHub(e)
			h.goLive(key)
			r := e.waitLive(room.Slug, true)
			b, err := e.svc.GetBroadcast(e.ctx(), r.BroadcastID)
			if err != nil || b.Title != tc.start {
				t.Fatalf("broadcast at start: title %q, %v; want %q", b.Title, err, tc.start)
			}
			if b := <-lives; b.Title != tc.start {
				t.Errorf("OnLive broadcast title %q, want %q", b.Title, tc.start)
			}

			if tc.change != nil {
				setTitle(*tc.change)
			}
			if tc.live != "" {
				testenv.Eventually(t, 5*time.Second, func() (bool, string) {
					b, err := e.svc.GetBroadcast(e.ctx(), r.BroadcastID)
					return err == nil && b.Title == tc.live, fmt.Sprintf("live broadcast title %q, %v; want %q", b.Title, err, tc.live)
				})
			}

			h.end(key)
			e.waitLive(room.Slug, false)
			if b := <-ends; b.Title != tc.ended {
				t.Errorf("OnEnded broadcast title %q, want %q", b.Title, tc.ended)
			}
			// Later changes are the next broadcast's: the past one keeps its title.
			setTitle("Next time")
			if b, err := e.svc.GetBroadcast(e.ctx(), r.BroadcastID); err != nil || b.Ended == nil || b.Title != tc.ended {
				t.Errorf("past broadcast: title %q, ended %v, %v; want %q", b.Title, b.Ended, err, tc.ended)
			}
			page, err := e.svc.ListBroadcasts(e.ctx(), room.Slug, BroadcastQuery{})
			if err != nil || len(page.Broadcasts) != 1 || page.Broadcasts[0].Title != tc.ended {
				t.Errorf("listed: %+v %v", page.Broadcasts, err)
			}
		})
	}
}

// TestRetitleBroadcast: the owner or an admin changes a past broadcast's title; a live
// one follows its room's stream title instead; bad input and other users change nothing.
func TestRetitleBroadcast(t *testing.T) {
	e := newEnv(t, nil)
	admin := e.signUp("admin").User
	alice := e.signUp("alice").User
	bob := e.signUp("bob").User
	room, key := e.createRoom(alice, "alice-retitle", "Alice's room")
	h := newTestHub(e)
	h.goLive(key)
	id := e.waitLive(room.Slug, true).BroadcastID
	title := func() string {
		t.Helper()
		b, err := e.svc.GetBroadcast(e.ctx(), id)
		if err != nil {
			t.Fatal(err)
		}
		return b.Title
	}
	var conflict *ConflictError
	if _, err := e.svc.RetitleBroadcast(e.ctx(), alice, id, "While live"); !errors.As(err, &conflict) || title() != room.Title {
		t.Fatalf("retitle while live: %v, title %q", err, title())
	}
	h.end(key)
	e.waitLive(room.Slug, false)
	testenv.Eventually(t, 5*time.Second, func() (bool, string) {
		b, err := e.svc.GetBroadcast(e.ctx(), id)
		return err == nil && b.Ended != nil, fmt.Sprintf("broadcast %+v, %v", b, err)
	})
	for _, tc := range []struct {
		name  string
		actor User
		in    string
		want  string // the title after
		err   error
	}{
		{"by the owner, trimmed", alice, "  Talk: Go at scale  ", "Talk: Go at scale", nil},
		{"by an admin", admin, "Renamed by admin", "Renamed by admin", nil},
		{"empty", alice, " ", "Renamed by admin", ErrInvalid},
		{"101 characters", alice, strings.Repeat("a", 101), "Renamed by admin", ErrInvalid},
		{"control character", alice, "a\u202eb", "Renamed by admin", ErrInvalid},
		{"by another user", bob, "Bob's now", "Renamed by admin", ErrForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := e.svc.RetitleBroadcast(e.ctx(), tc.actor, id, tc.in)
			switch {
			case tc.err != nil && !errors.Is(err, tc.err):
				t.Fatalf("err = %v, want %v", err, tc.err)
			case tc.err == nil && (err != nil || b.Title != tc.want):
				t.Fatalf("retitle: %+v, %v", b, err)
			}
			if got := title(); got != tc.want {
				t.Fatalf("stored title %q, want %q", got, tc.want)
			}
		})
	}
	if _, err := e.svc.RetitleBroadcast(e.ctx(), alice, "nonexistent", "x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown broadcast: %v", err)
	}
}

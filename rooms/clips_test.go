package rooms

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"onair/scripts/testenv"
)

func TestCheckClip(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      ClipRequest
		field   string // "" when valid
		wantOut string
	}{
		{"shortest", ClipRequest{Seconds: 5}, "", ""},
		{"longest, title trimmed", ClipRequest{Seconds: 60, Title: "  the goal "}, "", "the goal"},
		{"too short", ClipRequest{Seconds: 4}, "seconds", ""},
		{"zero", ClipRequest{}, "seconds", ""},
		{"too long", ClipRequest{Seconds: 61}, "seconds", ""},
		{"title too long", ClipRequest{Seconds: 30, Title: strings.Repeat("é", maxTitle+1)}, "title", ""},
		{"title with a bidi override", ClipRequest{Seconds: 30, Title: "evil\u202etxt"}, "title", ""},
		{"title not UTF-8", ClipRequest{Seconds: 30, Title: "\xff"}, "title", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := CheckClip(tc.in)
			var ve *ValidationError
			switch {
			case tc.field == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.field == "" && out.Title != tc.wantOut:
				t.Fatalf("title %q, want %q", out.Title, tc.wantOut)
			case tc.field != "" && (!errors.As(err, &ve) || ve.Field != tc.field || !errors.Is(err, ErrInvalid)):
				t.Fatalf("err = %v, want a validation error on %s", err, tc.field)
			}
		})
	}
}

func TestCanDeleteClip(t *testing.T) {
	owner, mod, maker, other := User{ID: "o", Handle: "o"}, User{ID: "m", Handle: "m"}, User{ID: "k", Handle: "k"}, User{ID: "x", Handle: "x"}
	admin := User{ID: "a", Handle: "a", Admin: true}
	room := Room{Owner: UserRef{ID: "o"}, Moderators: []UserRef{{ID: "m"}}}
	c := Clip{Maker: UserRef{ID: "k"}}
	for _, tc := range []struct {
		who  User
		want bool
	}{{owner, true}, {mod, true}, {maker, true}, {admin, true}, {other, false}, {User{}, false}} {
		if got := CanDeleteClip(tc.who, room, c); got != tc.want {
			t.Errorf("%q may delete: %v, want %v", tc.who.Handle, got, tc.want)
		}
	}
}

// TestClips: clips are stored with their object in the room's folder, listed newest
// first, deleted by their maker and the room's moderators only, limited per user and
// hour, expired with the room's retention and removed with the room.
func TestClips(t *testing.T) {
	objects := newObjects(t)
	e := newEnv(t, func(c *Config) { c.Objects = objects; c.RetentionDays = 30 })
	alice, bob, carl, dave := e.signUp("alice").User, e.signUp("bob").User, e.signUp("carl").User, e.signUp("dave").User
	room, _ := e.createRoom(alice, "alice-live", "Alice live")
	if _, err := e.svc.AddModerator(e.ctx(), alice, "alice-live", "dave"); err != nil {
		t.Fatal(err)
	}
	room, _, err := e.svc.FindRoom(e.ctx(), "alice-live")
	if err != nil {
		t.Fatal(err)
	}
	b := Broadcast{ID: "b1", Title: "Launch"}
	clip := func(u User, title string) (Clip, error) {
		return e.svc.CreateClip(e.ctx(), u, room, b, ClipRequest{Seconds: 10, Title: title}, func(ctx context.Context, key string) (ClipMedia, error) {
			body := []byte("clip of " + u.Handle)
			if err := objects.Put(ctx, key, bytes.NewReader(body), int64(len(body)), "video/mp4"); err != nil {
				return ClipMedia{}, err
			}
			return ClipMedia{Media: Recording{InitSize: 3, Size: int64(len(body)), DurationMS: 10000}, StartMS: 5000}, nil
		})
	}
	c1, err := clip(bob, "")
	if err != nil {
		t.Fatal(err)
	}
	if c1.Title != "Launch" || c1.Maker.Handle != "bob" || c1.DurationMS != 10000 || c1.StartMS != 5000 || len(c1.ID) < 20 ||
		!strings.HasPrefix(c1.Media.Key, "recordings/"+room.ID+"/clips/") || !exists(t, objects, c1.Media.Key) {
		t.Fatalf("clip: %+v", c1)
	}
	e.clock.Advance(time.Second)
	c2, err := clip(carl, "carl's")
	if err != nil {
		t.Fatal(err)
	}
	page, err := e.svc.RoomClips(e.ctx(), room, 1, "")
	if err != nil || len(page.Clips) != 1 || page.Clips[0].ID != c2.ID || page.Next == "" {
		t.Fatalf("first page: %+v %v", page, err)
	}
	if page, err = e.svc.RoomClips(e.ctx(), room, 1, page.Next); err != nil || len(page.Clips) != 1 || page.Clips[0].ID != c1.ID {
		t.Fatalf("second page: %+v %v", page, err)
	}

	// Who may delete.
	if err := e.svc.DeleteClip(e.ctx(), carl, c1.ID); !errors.Is(err, ErrForbidden) {
		t.Fatalf("carl deletes bob's clip: %v", err)
	}
	if err := e.svc.DeleteClip(e.ctx(), dave, c1.ID); err != nil {
		t.Fatalf("a moderator deletes a clip: %v", err)
	}
	if _, err := e.svc.GetClip(e.ctx(), c1.ID); !errors.Is(err, ErrNotFound) || exists(t, objects, c1.Media.Key) {
		t.Fatalf("deleted clip: %v, object exists %v", err, exists(t, objects, c1.Media.Key))
	}

	// Anonymous viewers, and those a private room does not admit, make none.
	if _, err := clip(User{}, ""); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("anonymous clip: %v", err)
	}
	private := Private
	e.createRoom(alice, "alice-private", "Private")
	priv, err := e.svc.UpdateRoom(e.ctx(), alice, "alice-private", RoomUpdate{Visibility: &private})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CreateClip(e.ctx(), bob, priv, b, ClipRequest{Seconds: 10}, func(context.Context, string) (ClipMedia, error) {
		t.Fatal("cut for a viewer the room does not admit")
		return ClipMedia{}, nil
	}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("clip of a private room by a stranger: %v", err)
	}

	// The limit per user and hour.
	for i := 1; i < MaxClipsPerHour; i++ {
		if _, err := clip(bob, ""); err != nil {
			t.Fatalf("clip %d: %v", i+1, err)
		}
	}
	if _, err := clip(bob, ""); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("clip past the limit: %v", err)
	}
	e.clock.Advance(time.Hour)
	last, err := clip(bob, "")
	if err != nil {
		t.Fatalf("an hour later: %v", err)
	}

	// Retention: 30 days.
	e.clock.Advance(31 * 24 * time.Hour)
	if _, err := e.svc.ExpireRecordings(e.ctx()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.GetClip(e.ctx(), last.ID); !errors.Is(err, ErrNotFound) || exists(t, objects, last.Media.Key) {
		t.Fatalf("expired clip: %v", err)
	}

	// A deleted account takes the clips it made along, in every room.
	gone, err := clip(dave, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.DeleteAccount(e.ctx(), dave, AccountDeletion{Handle: "dave", Password: "correct horse battery"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.GetClip(e.ctx(), gone.ID); !errors.Is(err, ErrNotFound) || exists(t, objects, gone.Media.Key) {
		t.Fatalf("the clip of a deleted account: %v", err)
	}

	// A deleted room takes its clips along.
	fresh, err := clip(carl, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.DeleteRoom(e.ctx(), alice, "alice-live"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, func() (bool, string) {
		_, err := e.svc.GetClip(e.ctx(), fresh.ID)
		return errors.Is(err, ErrNotFound) && !exists(t, objects, fresh.Media.Key), "the deleted room's clip is still there"
	})
}

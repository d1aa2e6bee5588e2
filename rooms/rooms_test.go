package rooms

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestCreateRoomValidation(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.ReservedSlugs = []string{"demo", "studio"} })
	alice := e.signUp("alice").User
	off := false
	long := func(n int) string { return strings.Repeat("x", n) }
	tests := []struct {
		name      string
		in        NewRoom
		wantErr   error
		wantField string
	}{
		{"ok with defaults", NewRoom{Slug: "alice-live", Title: "  Alice live  "}, nil, ""},
		{"ok, uppercase slug lowered", NewRoom{Slug: "Alice-Two", Title: "Two", Visibility: Unlisted, Recording: &off}, nil, ""},
		{"ok, 40 characters", NewRoom{Slug: "a" + long(39), Title: long(100), Description: long(2000)}, nil, ""},
		{"slug too short", NewRoom{Slug: "ab", Title: "t"}, ErrInvalid, "slug"},
		{"slug too long", NewRoom{Slug: "a" + long(40), Title: "t"}, ErrInvalid, "slug"},
		{"slug starting with dash", NewRoom{Slug: "-abc", Title: "t"}, ErrInvalid, "slug"},
		{"slug with underscore", NewRoom{Slug: "ab_c", Title: "t"}, ErrInvalid, "slug"},
		{"slug with slash", NewRoom{Slug: "ab/c", Title: "t"}, ErrInvalid, "slug"},
		{"slug with dots", NewRoom{Slug: "..abc", Title: "t"}, ErrInvalid, "slug"},
		{"title empty after trim", NewRoom{Slug: "room-a", Title: "   "}, ErrInvalid, "title"},
		{"title too long", NewRoom{Slug: "room-a", Title: long(101)}, ErrInvalid, "title"},
		{"title with newline", NewRoom{Slug: "room-a", Title: "a\nb"}, ErrInvalid, "title"},
		{"title with a right-to-left override", NewRoom{Slug: "room-a", Title: "gpj.\u202eexe"}, ErrInvalid, "title"},
		{"title with a C1 control", NewRoom{Slug: "room-a", Title: "a\u0085b"}, ErrInvalid, "title"},
		{"description with a bidi isolate", NewRoom{Slug: "room-a", Title: "t", Description: "a\u2066b"}, ErrInvalid, "description"},
		{"slug of a configured stream", NewRoom{Slug: "demo", Title: "not the demo"}, ErrConflict, "slug"},
		{"slug of a configured stream, other case", NewRoom{Slug: "Studio", Title: "t"}, ErrConflict, "slug"},
		{"description too long", NewRoom{Slug: "room-a", Title: "t", Description: long(2001)}, ErrInvalid, "description"},
		{"bad visibility", NewRoom{Slug: "room-a", Title: "t", Visibility: "secret"}, ErrInvalid, "visibility"},
		{"slug taken", NewRoom{Slug: "alice-live", Title: "again"}, ErrConflict, "slug"},
		{"slug taken, other case", NewRoom{Slug: "ALICE-LIVE", Title: "again"}, ErrConflict, "slug"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, key, err := e.svc.CreateRoom(e.ctx(), alice, tt.in)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				var ve *ValidationError
				var ce *ConflictError
				field := ""
				if errors.As(err, &ve) {
					field = ve.Field
				} else if errors.As(err, &ce) {
					field = ce.Field
				}
				if field != tt.wantField {
					t.Errorf("field = %q, want %q", field, tt.wantField)
				}
				return
			}
			if len(key) != 32 {
				t.Errorf("stream key %q: want 32 hex digits", key)
			}
			if r.Slug != strings.ToLower(tt.in.Slug) || r.Title != strings.TrimSpace(tt.in.Title) {
				t.Errorf("room = %+v", r)
			}
			wantVis, wantRec := tt.in.Visibility, tt.in.Recording == nil || *tt.in.Recording
			if wantVis == "" {
				wantVis = Public
			}
			if r.Visibility != wantVis || r.Recording != wantRec || r.Live || r.Owner != (UserRef{alice.ID, "alice"}) {
				t.Errorf("room = %+v", r)
			}
			got, err := e.svc.GetRoom(e.ctx(), r.Slug)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(r) {
				t.Errorf("GetRoom = %+v\nwant %+v", got, r)
			}
			e.assertNotLogged(key)
		})
	}
	if _, _, err := e.svc.CreateRoom(e.ctx(), User{}, NewRoom{Slug: "anon-room", Title: "t"}); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("anonymous create: %v", err)
	}
	if _, err := e.svc.GetRoom(e.ctx(), "no-such-room"); !errors.Is(err, ErrNotFound) {
		t.Errorf("get missing: %v", err)
	}
}

func TestRoomPermissions(t *testing.T) {
	e := newEnv(t, nil)
	stopper := e.stopper
	admin := e.signUp("admin").User
	alice := e.signUp("alice").User
	bob := e.signUp("bob").User
	if !admin.Admin || alice.Admin {
		t.Fatal("admin is not the first account")
	}
	room, _ := e.createRoom(alice, "alice-room", "Alice's room")
	ctx := e.ctx()
	title := func(s string) RoomUpdate { return RoomUpdate{Title: &s} }

	// Strangers can do nothing but read.
	if _, err := e.svc.UpdateRoom(ctx, bob, room.Slug, title("hijacked")); !errors.Is(err, ErrForbidden) {
		t.Errorf("stranger update: %v", err)
	}
	if _, err := e.svc.RotateKey(ctx, bob, room.Slug); !errors.Is(err, ErrForbidden) {
		t.Errorf("stranger rotate (would learn the key): %v", err)
	}
	if _, err := e.svc.AddModerator(ctx, bob, room.Slug, "bob"); !errors.Is(err, ErrForbidden) {
		t.Errorf("stranger add moderator: %v", err)
	}
	if err := e.svc.DeleteRoom(ctx, bob, room.Slug); !errors.Is(err, ErrForbidden) {
		t.Errorf("stranger delete: %v", err)
	}
	if _, err := e.svc.UpdateRoom(ctx, User{}, room.Slug, title("anon")); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("anonymous update: %v", err)
	}
	if Code(fmt.Errorf("x: %w", ErrForbidden)) != CodeForbidden {
		t.Error("Code(forbidden)")
	}

	// A moderator moderates chat but cannot edit the room.
	r, err := e.svc.AddModerator(ctx, alice, room.Slug, "BOB")
	if err != nil {
		t.Fatal(err)
	}
	if !r.IsModerator(bob) || !r.CanModerate(bob) || r.CanEdit(bob) || len(r.Moderators) != 1 || r.Moderators[0] != (UserRef{bob.ID, "bob"}) {
		t.Fatalf("after add moderator: %+v", r.Moderators)
	}
	if r, err = e.svc.AddModerator(ctx, alice, room.Slug, "bob"); err != nil || len(r.Moderators) != 1 {
		t.Fatalf("adding twice: %v %+v", err, r.Moderators)
	}
	if _, err := e.svc.AddModerator(ctx, alice, room.Slug, "nobody"); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown moderator: %v", err)
	}
	if _, err := e.svc.AddModerator(ctx, alice, room.Slug, "alice"); !errors.Is(err, ErrInvalid) {
		t.Errorf("owner as moderator: %v", err)
	}
	if _, err := e.svc.UpdateRoom(ctx, bob, room.Slug, title("mod edit")); !errors.Is(err, ErrForbidden) {
		t.Errorf("moderator update: %v", err)
	}
	if _, err := e.svc.RotateKey(ctx, bob, room.Slug); !errors.Is(err, ErrForbidden) {
		t.Errorf("moderator rotate: %v", err)
	}
	got, _ := e.svc.GetRoom(ctx, room.Slug)
	if !got.CanModerate(bob) || !got.CanModerate(alice) || !got.CanModerate(admin) || got.CanModerate(User{}) {
		t.Errorf("CanModerate after reload")
	}

	// The owner edits; the slug stays.
	desc, vis, rec := "new description", Unlisted, false
	r, err = e.svc.UpdateRoom(ctx, alice, room.Slug, RoomUpdate{Title: ptr("  New title "), Description: &desc, Visibility: &vis, Recording: &rec})
	if err != nil {
		t.Fatal(err)
	}
	if r.Title != "New title" || r.Description != desc || r.Visibility != Unlisted || r.Recording || r.Slug != room.Slug || !r.Updated.After(room.Updated) && !r.Updated.Equal(room.Updated) {
		t.Errorf("after update: %+v", r)
	}
	bad := Visibility("secret")
	if _, err := e.svc.UpdateRoom(ctx, alice, room.Slug, RoomUpdate{Visibility: &bad}); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad update: %v", err)
	}
	if _, err := e.svc.UpdateRoom(ctx, alice, room.Slug, title("")); !errors.Is(err, ErrInvalid) {
		t.Errorf("empty title: %v", err)
	}

	// An admin may do what the owner may.
	if r, err = e.svc.UpdateRoom(ctx, admin, room.Slug, title("Moderated by admin")); err != nil || r.Title != "Moderated by admin" {
		t.Fatalf("admin update: %v", err)
	}
	if r, err = e.svc.RemoveModerator(ctx, admin, room.Slug, "bob"); err != nil || len(r.Moderators) != 0 || r.CanModerate(bob) {
		t.Fatalf("admin remove moderator: %v %+v", err, r.Moderators)
	}
	if _, err := e.svc.RotateKey(ctx, admin, room.Slug); err != nil {
		t.Fatalf("admin rotate: %v", err)
	}
	if err := e.svc.DeleteRoom(ctx, admin, room.Slug); err != nil {
		t.Fatalf("admin delete: %v", err)
	}
	if _, err := e.svc.GetRoom(ctx, room.Slug); !errors.Is(err, ErrNotFound) {
		t.Errorf("after delete: %v", err)
	}
	if err := e.svc.DeleteRoom(ctx, alice, room.Slug); !errors.Is(err, ErrNotFound) {
		t.Errorf("delete twice: %v", err)
	}
	// Unlisted, the room's stream is named by its playback id: the change of name stopped
	// the publish under the slug, the rotation and the delete the one under the playback id.
	if calls, want := strings.Join(stopper.names(), ","), "alice-room,"+r.PlaybackID+","+r.PlaybackID; calls != want {
		t.Errorf("stopper calls %v, want %s", calls, want)
	}
}

func ptr[T any](v T) *T { return &v }

func TestListRooms(t *testing.T) {
	e := newEnv(t, nil)
	alice := e.signUp("alice").User
	bob := e.signUp("bob").User
	ctx := e.ctx()

	// Created oldest first; activity is creation time until something happens.
	var keys = map[string]string{}
	for _, r := range []struct {
		owner User
		slug  string
		title string
		vis   Visibility
	}{
		{alice, "cooking", "Cooking with Alice", Public},
		{alice, "alice-secret", "Alice's secret cooking", Unlisted},
		{bob, "bob-games", "Bob plays games (live)", Public},
		{bob, "bob-music", "Music at night", Public},
		{alice, "alice-talks", "Talks", Public},
		{bob, "bob-quiet", "Quiet room", Public},
	} {
		e.clock.Advance(10 * time.Millisecond)
		_, key, err := e.svc.CreateRoom(ctx, r.owner, NewRoom{Slug: r.slug, Title: r.title, Visibility: r.vis})
		if err != nil {
			t.Fatal(err)
		}
		keys[r.slug] = key
	}
	// Two rooms go live, bob-games first.
	h := newTestHub(e)
	h.goLive(keys["bob-games"])
	e.clock.Advance(10 * time.Millisecond)
	h.goLive(keys["cooking"])
	e.waitLive("bob-games", true)
	e.waitLive("cooking", true)

	slugs := func(p RoomPage) string {
		var s []string
		for _, r := range p.Rooms {
			s = append(s, r.Slug)
		}
		return strings.Join(s, ",")
	}
	tests := []struct {
		name   string
		viewer User
		q      RoomQuery
		want   string
	}{
		{"public, live first then recent", User{}, RoomQuery{}, "cooking,bob-games,bob-quiet,alice-talks,bob-music"},
		{"live only", User{}, RoomQuery{LiveOnly: true}, "cooking,bob-games"},
		{"owner sees own unlisted", alice, RoomQuery{OwnerID: alice.ID}, "cooking,alice-talks,alice-secret"},
		{"others see only public of an owner", bob, RoomQuery{OwnerID: alice.ID}, "cooking,alice-talks"},
		{"anonymous sees only public of an owner", User{}, RoomQuery{OwnerID: alice.ID}, "cooking,alice-talks"},
		{"search is case-insensitive substring", User{}, RoomQuery{Search: "COOK"}, "cooking"},
		{"search does not list unlisted", User{}, RoomQuery{Search: "secret"}, ""},
		{"search with regexp characters is literal", User{}, RoomQuery{Search: "(live)"}, "bob-games"},
		{"search .* matches nothing literal", User{}, RoomQuery{Search: ".*"}, ""},
		{"owner search", alice, RoomQuery{OwnerID: alice.ID, Search: "cooking"}, "cooking,alice-secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := e.svc.ListRooms(ctx, tt.viewer, tt.q)
			if err != nil {
				t.Fatal(err)
			}
			if got := slugs(p); got != tt.want || p.Next != "" {
				t.Errorf("got %q (next %q), want %q", got, p.Next, tt.want)
			}
		})
	}

	t.Run("pagination", func(t *testing.T) {
		var all []string
		cursor := ""
		for pages := 0; ; pages++ {
			p, err := e.svc.ListRooms(ctx, User{}, RoomQuery{Limit: 2, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Rooms) > 2 || pages > 5 {
				t.Fatalf("page of %d", len(p.Rooms))
			}
			all = append(all, slugs(p))
			if p.Next == "" {
				break
			}
			cursor = p.Next
		}
		if got := strings.Join(all, "|"); got != "cooking,bob-games|bob-quiet,alice-talks|bob-music" {
			t.Errorf("pages %q", got)
		}
	})
	t.Run("bad cursor", func(t *testing.T) {
		_, err := e.svc.ListRooms(ctx, User{}, RoomQuery{Cursor: "not-a-cursor"})
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Field != "cursor" {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("activity reorders offline rooms", func(t *testing.T) {
		e.clock.Advance(10 * time.Millisecond)
		if _, err := e.svc.UpdateRoom(ctx, bob, "bob-music", RoomUpdate{Description: ptr("now with jazz")}); err != nil {
			t.Fatal(err)
		}
		p, err := e.svc.ListRooms(ctx, User{}, RoomQuery{})
		if err != nil {
			t.Fatal(err)
		}
		if got := slugs(p); got != "cooking,bob-games,bob-music,bob-quiet,alice-talks" {
			t.Errorf("got %q", got)
		}
	})
	t.Run("going offline keeps a room near the top", func(t *testing.T) {
		e.clock.Advance(10 * time.Millisecond)
		h.end(keys["cooking"])
		e.waitLive("cooking", false)
		p, err := e.svc.ListRooms(ctx, User{}, RoomQuery{})
		if err != nil {
			t.Fatal(err)
		}
		if got := slugs(p); got != "bob-games,cooking,bob-music,bob-quiet,alice-talks" {
			t.Errorf("got %q", got)
		}
	})
}

// A room made before its slug was configured as a stream cannot publish over the
// configured stream.
func TestReservedSlugRefusesPublish(t *testing.T) {
	e := newEnv(t, nil)
	alice := e.signUp("alice").User
	_, key := e.createRoom(alice, "studio", "Made before the config named a studio stream")
	later, err := New(Config{DB: e.db, Cluster: e.node("node-b", ""), Now: e.clock.Now, Password: cheapPassword,
		ReservedSlugs: []string{"studio"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := later.ResolveKey(e.ctx(), key); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("ResolveKey of a room named like a configured stream: %v, want ErrUnknownKey", err)
	}
}

// OnRoomCreated and OnRoomDeleted are told of what took effect, once, with who did it.
func TestRoomChangeHooks(t *testing.T) {
	var mu sync.Mutex
	var created, deleted []RoomChange
	e := newEnv(t, func(c *Config) {
		c.OnRoomCreated = func(rc RoomChange) { mu.Lock(); created = append(created, rc); mu.Unlock() }
		c.OnRoomDeleted = func(rc RoomChange) { mu.Lock(); deleted = append(deleted, rc); mu.Unlock() }
	})
	root := e.signUp("root").User // first account: admin
	ann := e.signUp("ann").User
	bob := e.signUp("bob").User
	room, _ := e.createRoom(ann, "ann-room", "Ann")
	if _, _, err := e.svc.CreateRoom(e.ctx(), bob, NewRoom{Slug: "ann-room", Title: "taken"}); !errors.Is(err, ErrConflict) {
		t.Fatalf("second room with the slug: %v", err)
	}
	if err := e.svc.DeleteRoom(e.ctx(), bob, room.Slug); !errors.Is(err, ErrForbidden) {
		t.Fatalf("bob deletes: %v", err)
	}
	if err := e.svc.DeleteRoom(e.ctx(), root, room.Slug); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(created) != 1 || created[0].Actor.ID != ann.ID || created[0].Room.ID != room.ID || created[0].Room.Owner.ID != ann.ID ||
		created[0].At.IsZero() {
		t.Errorf("created: %+v", created)
	}
	if len(deleted) != 1 || deleted[0].Actor.ID != root.ID || deleted[0].Room.ID != room.ID || deleted[0].Room.Owner.Handle != "ann" ||
		deleted[0].Room.Visibility != Public || deleted[0].At.IsZero() {
		t.Errorf("deleted: %+v", deleted)
	}
}

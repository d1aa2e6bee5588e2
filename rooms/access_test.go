package rooms

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"onair/scripts/testenv"
)

// The access rule, for every kind of user, visibility and way of naming the room.
func TestAdmit(t *testing.T) {
	owner := User{ID: bson.NewObjectID().Hex(), Handle: "ann"}
	mod := User{ID: bson.NewObjectID().Hex(), Handle: "mo"}
	invited := User{ID: bson.NewObjectID().Hex(), Handle: "ivy"}
	revoked := User{ID: bson.NewObjectID().Hex(), Handle: "rev"} // was invited: no longer listed
	other := User{ID: bson.NewObjectID().Hex(), Handle: "bob"}
	admin := User{ID: bson.NewObjectID().Hex(), Handle: "root", Admin: true}
	anon := User{}
	room := func(v Visibility) Room {
		return Room{Slug: "ann-room", Visibility: v, PlaybackID: "p", Owner: UserRef{ID: owner.ID},
			Moderators: []UserRef{{ID: mod.ID}}, Invited: []UserRef{{ID: invited.ID}}}
	}
	type want struct{ public, unlisted, private error }
	tests := []struct {
		name  string
		user  User
		slug  want // named by slug
		byPID want // named by playback id
	}{
		{"anonymous", anon, want{nil, ErrNotFound, ErrNotFound}, want{nil, nil, ErrUnauthorized}},
		{"another user", other, want{nil, ErrNotFound, ErrNotFound}, want{nil, nil, ErrForbidden}},
		{"invited", invited, want{nil, ErrNotFound, ErrNotFound}, want{nil, nil, nil}},
		{"revoked", revoked, want{nil, ErrNotFound, ErrNotFound}, want{nil, nil, ErrForbidden}},
		{"owner", owner, want{nil, nil, nil}, want{nil, nil, nil}},
		{"moderator", mod, want{nil, nil, nil}, want{nil, nil, nil}},
		{"admin", admin, want{nil, nil, nil}, want{nil, nil, nil}},
	}
	check := func(t *testing.T, v Visibility, via Via, u User, want error) {
		t.Helper()
		err := room(v).Admit(u, via)
		if (want == nil) != (err == nil) || (want != nil && !errors.Is(err, want)) {
			t.Errorf("%s via %d: Admit = %v, want %v", v, via, err, want)
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check(t, Public, ViaSlug, tt.user, tt.slug.public)
			check(t, Unlisted, ViaSlug, tt.user, tt.slug.unlisted)
			check(t, Private, ViaSlug, tt.user, tt.slug.private)
			check(t, Public, ViaPlaybackID, tt.user, tt.byPID.public)
			check(t, Unlisted, ViaPlaybackID, tt.user, tt.byPID.unlisted)
			check(t, Private, ViaPlaybackID, tt.user, tt.byPID.private)
		})
	}
	if r := room(Public); r.StreamName() != "ann-room" || r.Ref() != "ann-room" {
		t.Errorf("public room's stream %q", r.StreamName())
	}
	if r := room(Private); r.StreamName() != "p" {
		t.Errorf("private room's stream %q", r.StreamName())
	}
}

// Rooms are found by playback id whatever their visibility and by slug as stored; their
// stream is named by playback id unless public, and a change of visibility that renames
// it ends the live publish. Invitations are kept in the room and decide chat's seats.
func TestPrivateRooms(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	ann := e.signUp("ann").User
	bob := e.signUp("bob").User
	ivy := e.signUp("ivy").User
	room, key := e.createRoom(ann, "ann-room", "Ann")
	if !IsPlaybackID(room.PlaybackID) || room.StreamName() != "ann-room" {
		t.Fatalf("new room %+v", room)
	}
	if _, _, err := e.svc.CreateRoom(ctx, ann, NewRoom{Slug: room.PlaybackID, Title: "x"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a slug shaped like a playback id: %v", err)
	}
	for _, ref := range []string{"ann-room", room.PlaybackID} {
		got, _, err := e.svc.FindRoom(ctx, ref)
		if err != nil || got.ID != room.ID || got.PlaybackID != room.PlaybackID {
			t.Fatalf("FindRoom(%s) = %+v %v", ref, got, err)
		}
	}

	// Public: the stream is the slug. Private: the playback id, and the live publish under
	// the old name is stopped.
	h := newTestHub(e)
	h.goLive(key)
	e.waitLive("ann-room", true)
	priv := Private
	up, err := e.svc.UpdateRoom(ctx, ann, "ann-room", RoomUpdate{Visibility: &priv})
	if err != nil {
		t.Fatal(err)
	}
	if last := e.stopper.last(); last.name != "ann-room" || !errors.Is(last.reason, ErrStopped) {
		t.Fatalf("stopped %+v, want the stream called ann-room", last)
	}
	if up.StreamName() != room.PlaybackID {
		t.Fatalf("private room's stream %q", up.StreamName())
	}
	route, err := e.svc.ResolveKey(ctx, key)
	if err != nil || route.Name != room.PlaybackID {
		t.Fatalf("route %+v %v, want the playback id", route, err)
	}
	unl := Unlisted
	before := len(e.stopper.names())
	if _, err := e.svc.UpdateRoom(ctx, ann, room.PlaybackID, RoomUpdate{Visibility: &unl}); err != nil {
		t.Fatal(err)
	}
	if len(e.stopper.names()) != before {
		t.Fatal("private to unlisted keeps the stream's name, yet its publish was stopped")
	}
	if _, err := e.svc.UpdateRoom(ctx, ann, room.PlaybackID, RoomUpdate{Visibility: &priv}); err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct {
		name string
		want StreamAccess
	}{
		{"ann-room", StreamAccess{Room: true, Hidden: true}},
		{room.PlaybackID, StreamAccess{Room: true, PlaybackID: room.PlaybackID}},
		{"demo", StreamAccess{}},
	} {
		if got, err := e.svc.StreamAccess(ctx, tt.name); err != nil || got != tt.want {
			t.Errorf("StreamAccess(%s) = %+v %v, want %+v", tt.name, got, err, tt.want)
		}
	}

	// Invitations: by the owner, bounded by who exists; bob may not invite.
	if _, err := e.svc.InviteViewer(ctx, bob, room.PlaybackID, "ivy"); !errors.Is(err, ErrForbidden) {
		t.Fatalf("bob invites: %v", err)
	}
	if _, err := e.svc.InviteViewer(ctx, ann, "ann-room", "nobody"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("inviting nobody: %v", err)
	}
	if _, err := e.svc.InviteViewer(ctx, ann, "ann-room", "ann"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("inviting the owner: %v", err)
	}
	got, err := e.svc.InviteViewer(ctx, ann, "ann-room", "Ivy")
	if err != nil || len(got.Invited) != 1 || got.Invited[0].Handle != "ivy" {
		t.Fatalf("invite ivy: %+v %v", got.Invited, err)
	}
	if got, err = e.svc.InviteViewer(ctx, ann, "ann-room", "ivy"); err != nil || len(got.Invited) != 1 {
		t.Fatalf("invite ivy again: %+v %v", got.Invited, err)
	}
	seats := []Seat{{RoomID: room.ID, UserID: ivy.ID}, {RoomID: room.ID, UserID: bob.ID}, {RoomID: room.ID},
		{RoomID: room.ID, UserID: ann.ID}, {RoomID: bson.NewObjectID().Hex(), UserID: ivy.ID}}
	admitted, err := e.svc.Admitted(ctx, seats)
	if err != nil || len(admitted) != 5 || !admitted[0] || admitted[1] || admitted[2] || !admitted[3] || admitted[4] {
		t.Fatalf("admitted %v %v, want ivy and ann only", admitted, err)
	}
	if got, err = e.svc.RevokeViewer(ctx, ann, room.PlaybackID, "ivy"); err != nil || len(got.Invited) != 0 {
		t.Fatalf("revoke ivy: %+v %v", got.Invited, err)
	}
	if admitted, err = e.svc.Admitted(ctx, seats[:1]); err != nil || admitted[0] {
		t.Fatalf("ivy admitted after revocation: %v %v", admitted, err)
	}
}

// A crowd arriving at one room at once (everyone's chat connecting when a popular stream
// goes live) makes one query, not one each: while it runs, the others wait for its
// answer instead of queueing for the database's connections with their requests held.
func TestConcurrentLookupsShareOneQuery(t *testing.T) {
	e := newEnv(t, nil)
	ann := e.signUp("ann").User
	room, _ := e.createRoom(ann, "ann-room", "Ann")

	var finds atomic.Int32
	hold := make(chan struct{})
	mon := &event.CommandMonitor{Started: func(_ context.Context, ev *event.CommandStartedEvent) {
		if ev.CommandName == "find" && ev.Command.Lookup("find").StringValue() == "rooms" && finds.Add(1) == 1 {
			<-hold // the first lookup's query waits until the crowd has arrived
		}
	}}
	client, err := mongo.Connect(options.Client().ApplyURI(e.mongo.URI).SetMonitor(mon))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	svc, err := New(Config{DB: client.Database(e.db.Name()), Cluster: e.node("node-b", "http://10.0.0.2:8080"), Password: cheapPassword})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Playback(e.ctx()); err != nil { // read before the crowd: not a room lookup
		t.Fatal(err)
	}

	const crowd = 50
	errs := make(chan error, crowd)
	for range crowd {
		go func() {
			got, _, err := svc.FindRoom(e.ctx(), "ann-room")
			if err == nil && got.ID != room.ID {
				err = fmt.Errorf("found room %s, want %s", got.ID, room.ID)
			}
			errs <- err
		}()
	}
	// Every caller is inside the lookup (the first one running the query) before the
	// query may answer; none of them started another.
	testenv.Eventually(t, 10*time.Second, func() (bool, string) {
		inside := lookupsRunning()
		return inside == crowd, fmt.Sprintf("%d callers in the lookup, %d queries", inside, finds.Load())
	})
	close(hold)
	for range crowd {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := finds.Load(); n != 1 {
		t.Fatalf("%d callers made %d queries", crowd, n)
	}
}

// lookupsRunning counts the goroutines inside Service.findRoomDoc.
func lookupsRunning() int {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "onair/rooms.(*Service).findRoomDoc(")
}

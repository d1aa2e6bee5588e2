package chat

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"onair/scripts/testenv"
)

// mod2 is the second moderator of modRoom.
var mod2 = User{ID: "mod2", Handle: "Mod2"}

// modRoom is a room owned by owner with two moderators, mod and mod2.
func modRoom(id string) Room {
	return Room{ID: id, Slug: "slug-" + id, OwnerID: owner.ID, Moderators: []string{mod.ID, mod2.ID}}
}

// modFixture is one case's room, on a running hub.
type modFixture struct {
	t    *testing.T
	e    *env
	th   *testHub
	ctx  context.Context
	room Room
}

func (f *modFixture) must(err error) {
	f.t.Helper()
	if err != nil {
		f.t.Fatal(err)
	}
}

// post has u post a message through a socket and returns its id. The socket's user is
// what ServeWS was given: admins are admins.
func (f *modFixture) post(u User) string {
	f.t.Helper()
	return dial(f.t, f.th, f.room.ID, u.ID).mustPost("from " + u.Handle).ID
}

// restricted reports whether u is banned or timed out in the room, as stored.
func (f *modFixture) restricted(u User) bool {
	f.t.Helper()
	var b banDoc
	err := f.e.db.Collection(collBans).FindOne(f.ctx, bson.D{{Key: "_id", Value: banID(f.room.ID, u.ID)}}).Decode(&b)
	if err != nil {
		return false
	}
	return b.Banned || b.Until.After(time.Now())
}

// until is the end of u's timeout in the room, as stored.
func (f *modFixture) until(u User) time.Time {
	f.t.Helper()
	var b banDoc
	f.must(f.e.db.Collection(collBans).FindOne(f.ctx, bson.D{{Key: "_id", Value: banID(f.room.ID, u.ID)}}).Decode(&b))
	return b.Until
}

// expire waits until u's timeout in the room has ended.
func (f *modFixture) expire(u User) {
	f.t.Helper()
	until := f.until(u)
	testenv.Eventually(f.t, 5*time.Second, func() (bool, string) { return time.Now().After(until), "timeout still running" })
}

func (f *modFixture) deleted(id string) bool {
	f.t.Helper()
	oid, err := bson.ObjectIDFromHex(id)
	f.must(err)
	var m messageDoc
	f.must(f.e.db.Collection(collMessages).FindOne(f.ctx, bson.D{{Key: "_id", Value: oid}}).Decode(&m))
	return m.Deleted
}

func (f *modFixture) slowMode() time.Duration {
	f.t.Helper()
	var s settingsDoc
	err := f.e.db.Collection(collSettings).FindOne(f.ctx, bson.D{{Key: "_id", Value: f.room.ID}}).Decode(&s)
	if err != nil {
		return 0
	}
	return time.Duration(s.SlowModeMS) * time.Millisecond
}

// snapshot is everything moderation stores about the room: a refused action must change
// none of it.
func (f *modFixture) snapshot() string {
	f.t.Helper()
	var b strings.Builder
	dump := func(coll string, filter bson.D) {
		cur, err := f.e.db.Collection(coll).Find(f.ctx, filter, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
		f.must(err)
		var docs []bson.Raw
		f.must(cur.All(f.ctx, &docs))
		fmt.Fprintf(&b, "%s:", coll)
		for _, d := range docs {
			b.WriteString(d.String())
		}
		b.WriteString("\n")
	}
	dump(collBans, bson.D{{Key: "room", Value: f.room.ID}})
	dump(collSettings, bson.D{{Key: "_id", Value: f.room.ID}})
	dump(collMessages, bson.D{{Key: "room", Value: f.room.ID}})
	dump(collModlog, bson.D{{Key: "room", Value: f.room.ID}})
	return b.String()
}

// TestModerationRanks: who may moderate whom and what (see authorize). Each case sets the
// room up with actions that must succeed, then tries one action: a refusal is ErrForbidden
// and changes nothing stored; an allowed action takes effect.
func TestModerationRanks(t *testing.T) {
	type fx = *modFixture
	ban := func(actor, target User) func(fx) error {
		return func(f fx) error { return f.th.Ban(f.ctx, f.room, actor, target, "") }
	}
	timeout := func(actor, target User, d time.Duration) func(fx) error {
		return func(f fx) error { return f.th.Timeout(f.ctx, f.room, actor, target, d, "") }
	}
	unban := func(actor, target User) func(fx) error {
		return func(f fx) error { return f.th.Unban(f.ctx, f.room, actor, target) }
	}
	slow := func(actor User, d time.Duration) func(fx) error {
		return func(f fx) error { return f.th.SetSlowMode(f.ctx, f.room, actor, d) }
	}
	// msgs holds the id of the message of each author a case's setup posted.
	msgs := map[string]string{}
	posted := func(authors ...User) func(fx) error {
		return func(f fx) error {
			for _, a := range authors {
				msgs[f.room.ID+"/"+a.ID] = f.post(a)
			}
			return nil
		}
	}
	del := func(actor, author User) func(fx) error {
		return func(f fx) error { return f.th.DeleteMessage(f.ctx, f.room, actor, msgs[f.room.ID+"/"+author.ID]) }
	}
	purge := func(actor, target User) func(fx) error {
		return func(f fx) error { _, err := f.th.Purge(f.ctx, f.room, actor, target, time.Hour); return err }
	}
	readLog := func(actor User) func(fx) error {
		return func(f fx) error { _, err := f.th.ModerationLog(f.ctx, f.room, actor, 0); return err }
	}
	expired := func(u User) func(fx) error { return func(f fx) error { f.expire(u); return nil } }
	isRestricted := func(u User, want bool) func(fx) {
		return func(f fx) {
			f.t.Helper()
			if got := f.restricted(u); got != want {
				f.t.Fatalf("%s restricted: %v, want %v", u.ID, got, want)
			}
		}
	}
	isDeleted := func(author User) func(fx) {
		return func(f fx) {
			f.t.Helper()
			if !f.deleted(msgs[f.room.ID+"/"+author.ID]) {
				f.t.Fatalf("the message of %s is not deleted", author.ID)
			}
		}
	}
	slowIs := func(d time.Duration) func(fx) {
		return func(f fx) {
			f.t.Helper()
			if got := f.slowMode(); got != d {
				f.t.Fatalf("slow mode %s, want %s", got, d)
			}
		}
	}

	cases := []struct {
		name  string
		setup []func(fx) error // must succeed
		act   func(fx) error
		want  error // nil or ErrForbidden
		check func(fx)
	}{
		// Issue 12: a banned or timed-out moderator lifts their own ban, and bans and
		// timeouts of those who outrank them.
		{name: "moderator lifts own ban set by the owner", setup: []func(fx) error{ban(owner, mod)}, act: unban(mod, mod), want: ErrForbidden},
		{name: "moderator lifts own timeout set by an admin", setup: []func(fx) error{timeout(admin, mod, time.Hour)}, act: unban(mod, mod), want: ErrForbidden},
		{name: "moderator lifts the owner's ban of a user", setup: []func(fx) error{ban(owner, troll)}, act: unban(mod, troll), want: ErrForbidden},
		{name: "moderator lifts an admin's timeout of a user", setup: []func(fx) error{timeout(admin, troll, time.Hour)}, act: unban(mod, troll), want: ErrForbidden},
		{name: "moderator lifts the owner's ban of another moderator", setup: []func(fx) error{ban(owner, mod2)}, act: unban(mod, mod2), want: ErrForbidden},
		{name: "owner lifts an admin's ban of a user", setup: []func(fx) error{ban(admin, troll)}, act: unban(owner, troll), want: ErrForbidden},
		{name: "owner lifts own ban set by an admin", setup: []func(fx) error{ban(admin, owner)}, act: unban(owner, owner), want: ErrForbidden},
		{name: "moderator lifts another moderator's ban", setup: []func(fx) error{ban(mod2, troll)}, act: unban(mod, troll), check: isRestricted(troll, false)},
		{name: "owner lifts a moderator's ban", setup: []func(fx) error{ban(mod, troll)}, act: unban(owner, troll), check: isRestricted(troll, false)},
		{name: "admin lifts the owner's ban", setup: []func(fx) error{ban(owner, troll)}, act: unban(admin, troll), check: isRestricted(troll, false)},
		{name: "admin lifts the owner's ban of a moderator", setup: []func(fx) error{ban(owner, mod)}, act: unban(admin, mod), check: isRestricted(mod, false)},
		{name: "moderator lifts an ended timeout set by the owner", setup: []func(fx) error{timeout(owner, troll, time.Millisecond), expired(troll)}, act: unban(mod, troll), check: isRestricted(troll, false)},
		{name: "moderator lifts what the owner took over from a moderator", setup: []func(fx) error{timeout(mod, troll, time.Hour), ban(owner, troll)}, act: unban(mod, troll), want: ErrForbidden},

		// Nor may they shorten, or take over, what outranks them.
		{name: "moderator shortens the owner's timeout", setup: []func(fx) error{timeout(owner, troll, time.Hour)}, act: timeout(mod, troll, time.Millisecond), want: ErrForbidden},
		{name: "moderator takes over the owner's ban", setup: []func(fx) error{ban(owner, troll)}, act: ban(mod, troll), want: ErrForbidden},
		{name: "moderator times out a user the admin banned", setup: []func(fx) error{ban(admin, troll)}, act: timeout(mod, troll, time.Minute), want: ErrForbidden},
		{name: "moderator follows another moderator's timeout", setup: []func(fx) error{timeout(mod2, troll, time.Hour)}, act: timeout(mod, troll, time.Minute), check: isRestricted(troll, true)},
		{name: "owner bans over a moderator's timeout", setup: []func(fx) error{timeout(mod, troll, time.Minute)}, act: ban(owner, troll), check: isRestricted(troll, true)},
		{name: "moderator times out after the owner's timeout ended", setup: []func(fx) error{timeout(owner, troll, time.Millisecond), expired(troll)}, act: timeout(mod, troll, time.Minute), check: isRestricted(troll, true)},

		// A banned or timed-out moderator does not moderate at all meanwhile.
		{name: "banned moderator bans a user", setup: []func(fx) error{ban(owner, mod)}, act: ban(mod, troll), want: ErrForbidden},
		{name: "banned moderator times out a user", setup: []func(fx) error{ban(admin, mod)}, act: timeout(mod, troll, time.Minute), want: ErrForbidden},
		{name: "timed-out moderator lifts another user's ban", setup: []func(fx) error{ban(mod2, troll), timeout(owner, mod, time.Hour)}, act: unban(mod, troll), want: ErrForbidden},
		{name: "timed-out moderator deletes a message", setup: []func(fx) error{posted(alice), timeout(owner, mod, time.Hour)}, act: del(mod, alice), want: ErrForbidden},
		{name: "banned moderator sets slow mode", setup: []func(fx) error{ban(owner, mod)}, act: slow(mod, time.Minute), want: ErrForbidden},
		{name: "banned moderator reads the moderation log", setup: []func(fx) error{ban(owner, mod)}, act: readLog(mod), want: ErrForbidden},
		{name: "owner banned by an admin bans a user", setup: []func(fx) error{ban(admin, owner)}, act: ban(owner, troll), want: ErrForbidden},
		{name: "moderator moderates again once the timeout ended", setup: []func(fx) error{timeout(owner, mod, time.Millisecond), expired(mod)}, act: ban(mod, troll), check: isRestricted(troll, true)},

		// Issue 12: a moderator deletes the owner's and the admin's messages.
		{name: "moderator deletes the owner's message", setup: []func(fx) error{posted(owner)}, act: del(mod, owner), want: ErrForbidden},
		{name: "moderator deletes an admin's message", setup: []func(fx) error{posted(admin)}, act: del(mod, admin), want: ErrForbidden},
		{name: "moderator deletes another moderator's message", setup: []func(fx) error{posted(mod2)}, act: del(mod, mod2), want: ErrForbidden},
		{name: "owner deletes an admin's message", setup: []func(fx) error{posted(admin)}, act: del(owner, admin), want: ErrForbidden},
		{name: "user deletes own message", setup: []func(fx) error{posted(alice)}, act: del(alice, alice), want: ErrForbidden},
		{name: "moderator deletes a user's message", setup: []func(fx) error{posted(alice)}, act: del(mod, alice), check: isDeleted(alice)},
		{name: "moderator deletes own message", setup: []func(fx) error{posted(mod)}, act: del(mod, mod), check: isDeleted(mod)},
		{name: "owner deletes a moderator's message", setup: []func(fx) error{posted(mod)}, act: del(owner, mod), check: isDeleted(mod)},
		{name: "admin deletes the owner's message", setup: []func(fx) error{posted(owner)}, act: del(admin, owner), check: isDeleted(owner)},

		// Purges follow the ranks of deletes and bans.
		{name: "moderator purges the owner's messages", setup: []func(fx) error{posted(owner)}, act: purge(mod, owner), want: ErrForbidden},
		{name: "moderator purges another moderator's messages", setup: []func(fx) error{posted(mod2)}, act: purge(mod, mod2), want: ErrForbidden},
		{name: "user purges a user's messages", setup: []func(fx) error{posted(troll)}, act: purge(alice, troll), want: ErrForbidden},
		{name: "banned moderator purges a user's messages", setup: []func(fx) error{posted(troll), ban(owner, mod)}, act: purge(mod, troll), want: ErrForbidden},
		{name: "moderator purges a banned user's messages", setup: []func(fx) error{posted(troll), ban(mod, troll)}, act: purge(mod, troll), check: isDeleted(troll)},

		// Slow mode set by a higher rank stays until that rank changes it.
		{name: "moderator turns off the owner's slow mode", setup: []func(fx) error{slow(owner, 30*time.Second)}, act: slow(mod, 0), want: ErrForbidden},
		{name: "owner changes an admin's slow mode", setup: []func(fx) error{slow(admin, 30*time.Second)}, act: slow(owner, time.Second), want: ErrForbidden},
		{name: "moderator changes another moderator's slow mode", setup: []func(fx) error{slow(mod2, 30*time.Second)}, act: slow(mod, 0), check: slowIs(0)},
		{name: "moderator sets slow mode the owner turned off", setup: []func(fx) error{slow(owner, time.Minute), slow(owner, 0)}, act: slow(mod, 10*time.Second), check: slowIs(10 * time.Second)},
		{name: "admin changes the owner's slow mode", setup: []func(fx) error{slow(owner, time.Minute)}, act: slow(admin, 0), check: slowIs(0)},

		// Targets: nobody acts on themselves or on the same or a higher rank.
		{name: "moderator bans the owner", act: ban(mod, owner), want: ErrForbidden},
		{name: "moderator times out an admin", act: timeout(mod, admin, time.Minute), want: ErrForbidden},
		{name: "moderator bans another moderator", act: ban(mod, mod2), want: ErrForbidden},
		{name: "moderator times out themselves", act: timeout(mod, mod, time.Minute), want: ErrForbidden},
		{name: "owner bans an admin", act: ban(owner, admin), want: ErrForbidden},
		{name: "user bans a user", act: ban(alice, troll), want: ErrForbidden},
		{name: "user lifts own timeout", setup: []func(fx) error{timeout(mod, alice, time.Hour)}, act: unban(alice, alice), want: ErrForbidden},
		{name: "user reads the moderation log", act: readLog(alice), want: ErrForbidden},
		{name: "moderator reads the moderation log", setup: []func(fx) error{ban(owner, troll)}, act: readLog(mod)},
	}

	e := newEnv(t)
	th := e.hub("n1", func(c *Config) { c.RateLimit = 100 })
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &modFixture{t: t, e: e, th: th, ctx: ctxT(t), room: modRoom(fmt.Sprint("mr", i))}
			for _, s := range tc.setup {
				f.must(s(f))
			}
			before := f.snapshot()
			err := tc.act(f)
			switch {
			case tc.want == nil && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Fatalf("got %v, want %v", err, tc.want)
			case tc.want != nil:
				t.Logf("refused: %v", err)
				if after := f.snapshot(); after != before {
					t.Fatalf("a refused action changed what is stored:\nbefore %s\nafter  %s", before, after)
				}
			}
			if tc.check != nil {
				tc.check(f)
			}
		})
	}
}

// TestPurgeAndBans: banning a troll and purging their messages of the last hour removes
// them from every client and the history, leaves the others' messages, and both show in
// the moderation log and the list of bans.
func TestPurgeAndBans(t *testing.T) {
	e := newEnv(t)
	th := e.hub("n1", func(c *Config) { c.RateLimit = 100 })
	ctx := ctxT(t)
	room := testRoom("purge")
	watcher := dial(t, th, room.ID, "")
	trollSocket := dial(t, th, room.ID, troll.ID)
	keep := dial(t, th, room.ID, alice.ID).mustPost("hello").ID
	var spam []string
	for i := range 3 {
		spam = append(spam, trollSocket.mustPost(fmt.Sprint("spam ", i)).ID)
	}
	if err := th.Ban(ctx, room, mod, troll, "spam"); err != nil {
		t.Fatal(err)
	}
	if _, err := th.Purge(ctx, room, mod, troll, 0); !errors.Is(err, ErrInvalid) {
		t.Errorf("purge without a window: %v, want invalid", err)
	}
	if _, err := th.Purge(ctx, room, mod, troll, 25*time.Hour); !errors.Is(err, ErrInvalid) {
		t.Errorf("purge of more than a day: %v, want invalid", err)
	}
	n, err := th.Purge(ctx, room, mod, troll, time.Hour)
	if err != nil || n != 3 {
		t.Fatalf("purge: %d, %v; want 3", n, err)
	}
	gone := map[string]bool{}
	for len(gone) < 3 {
		f := watcher.waitType(typeDeleted)
		gone[f.ID] = true
	}
	for _, id := range spam {
		if !gone[id] {
			t.Errorf("no deleted frame for %s", id)
		}
	}
	hist, err := th.History(ctx, room, 0)
	if err != nil || len(hist) != 1 || hist[0].ID != keep {
		t.Fatalf("history after the purge: %+v %v", hist, err)
	}
	if n, err := th.Purge(ctx, room, mod, troll, time.Hour); err != nil || n != 0 {
		t.Errorf("second purge: %d %v, want nothing left", n, err)
	}

	bans, err := th.Bans(ctx, room, mod)
	if err != nil || len(bans) != 1 || bans[0].UserID != troll.ID || !bans[0].Banned || bans[0].Reason != "spam" || bans[0].By != mod.ID {
		t.Fatalf("bans: %+v %v", bans, err)
	}
	if err := th.Timeout(ctx, room, mod, bob, time.Hour, ""); err != nil {
		t.Fatal(err)
	}
	if bans, _ = th.Bans(ctx, room, owner); len(bans) != 2 || bans[0].UserID != bob.ID || bans[0].Until == nil {
		t.Fatalf("bans with a timeout: %+v", bans)
	}
	if _, err := th.Bans(ctx, room, alice); !errors.Is(err, ErrForbidden) {
		t.Errorf("a user lists the bans: %v, want forbidden", err)
	}
	log, err := th.ModerationLog(ctx, room, owner, 0)
	if err != nil || len(log) < 3 || log[1].Action != "purge" || log[1].Count != 3 || log[1].Duration != time.Hour {
		t.Fatalf("moderation log: %+v %v", log, err)
	}
}

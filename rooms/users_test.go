package rooms

import (
	"errors"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func TestAdminsManageUsers(t *testing.T) {
	e := newEnv(t, nil)
	alice := e.signUp("alice").User // the first account: admin
	bobLogin := e.signUp("bob")
	bob := bobLogin.User
	carolLogin := e.signUp("carol")
	carol := carolLogin.User
	yes, no := true, false

	if _, err := e.svc.ListUsers(e.ctx(), bob, UserQuery{}); !errors.Is(err, ErrForbidden) {
		t.Errorf("a user lists users: %v, want forbidden", err)
	}
	if _, err := e.svc.UpdateUser(e.ctx(), bob, "carol", UserUpdate{Disabled: &yes}); !errors.Is(err, ErrForbidden) {
		t.Errorf("a user disables another: %v, want forbidden", err)
	}
	if _, err := e.svc.UpdateUser(e.ctx(), alice, "alice", UserUpdate{Admin: &no}); !errors.Is(err, ErrConflict) {
		t.Errorf("an admin demotes themselves: %v, want conflict", err)
	}
	if _, err := e.svc.UpdateUser(e.ctx(), alice, "nobody", UserUpdate{Disabled: &yes}); !errors.Is(err, ErrNotFound) {
		t.Errorf("disable an unknown user: %v, want not found", err)
	}

	page, err := e.svc.ListUsers(e.ctx(), alice, UserQuery{Limit: 2})
	if err != nil || len(page.Users) != 2 || page.Users[0].Handle != "carol" || page.Next == "" {
		t.Fatalf("first page: %+v %v", page, err)
	}
	page, err = e.svc.ListUsers(e.ctx(), alice, UserQuery{Limit: 2, Cursor: page.Next})
	if err != nil || len(page.Users) != 1 || page.Users[0].Handle != "alice" || page.Next != "" {
		t.Fatalf("second page: %+v %v", page, err)
	}
	page, err = e.svc.ListUsers(e.ctx(), alice, UserQuery{Search: "@BO"})
	if err != nil || len(page.Users) != 1 || page.Users[0].ID != bob.ID {
		t.Fatalf("search bo: %+v %v", page, err)
	}
	page, _ = e.svc.ListUsers(e.ctx(), alice, UserQuery{Search: "a.*"})
	if len(page.Users) != 0 {
		t.Errorf("search is not a regular expression: %+v", page.Users)
	}

	// An admin made by another admin does what admins do.
	bob, err = e.svc.UpdateUser(e.ctx(), alice, "bob", UserUpdate{Admin: &yes})
	if err != nil || !bob.Admin {
		t.Fatalf("make bob admin: %+v %v", bob, err)
	}
	u, _, err := e.svc.Authenticate(e.ctx(), bobLogin.Token)
	if err != nil || !u.Admin {
		t.Fatalf("bob's session after the grant: %+v %v", u, err)
	}

	room, key := e.createRoom(carol, "carol-live", "Carol")
	h := newTestHub(e)
	_, st := h.goLive(key)
	e.waitLive(room.Slug, true)

	carol, err = e.svc.UpdateUser(e.ctx(), u, "carol", UserUpdate{Disabled: &yes})
	if err != nil || !carol.Disabled {
		t.Fatalf("bob disables carol: %+v %v", carol, err)
	}
	select {
	case <-st.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("carol's live stream was not stopped")
	}
	if !errors.Is(st.Err(), errOwnerDisabled) {
		t.Errorf("stream ended with %v", st.Err())
	}
	if _, _, err := e.svc.Authenticate(e.ctx(), carolLogin.Token); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("carol's session: %v, want unauthorized", err)
	}
	if _, err := e.svc.LogIn(e.ctx(), LogIn{Login: "carol", Password: "correct horse battery"}); !errors.Is(err, ErrAccountDisabled) {
		t.Errorf("carol logs in: %v, want the account disabled", err)
	}
	if _, err := e.svc.LogIn(e.ctx(), LogIn{Login: "carol", Password: "wrong password!"}); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("wrong password of a disabled account: %v, want unauthorized (nothing told)", err)
	}
	if _, err := e.svc.ResolveKey(e.ctx(), key); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("carol's key: %v, want unknown", err)
	}
	n, _ := e.db.Collection("sessions").CountDocuments(e.ctx(), bson.D{{Key: "user_id", Value: mustOID(t, carol.ID)}})
	if n != 0 {
		t.Errorf("carol has %d sessions left", n)
	}
	admitted, err := e.svc.Admitted(e.ctx(), []Seat{{RoomID: room.ID, UserID: carol.ID}, {RoomID: room.ID}, {RoomID: room.ID, UserID: alice.ID}})
	if err != nil || admitted[0] || !admitted[1] || !admitted[2] {
		t.Errorf("chat seats of carol, anonymous, alice: %v %v", admitted, err)
	}
	page, _ = e.svc.ListUsers(e.ctx(), alice, UserQuery{Disabled: true})
	if len(page.Users) != 1 || page.Users[0].ID != carol.ID {
		t.Errorf("disabled users: %+v", page.Users)
	}

	if _, err := e.svc.UpdateUser(e.ctx(), alice, carol.ID, UserUpdate{Disabled: &no}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.ResolveKey(e.ctx(), key); err != nil {
		t.Errorf("carol's key once enabled again: %v", err)
	}
	if _, err := e.svc.LogIn(e.ctx(), LogIn{Login: "carol", Password: "correct horse battery"}); err != nil {
		t.Errorf("carol logs in again: %v", err)
	}
}

func TestAccountSelfService(t *testing.T) {
	e := newEnv(t, nil)
	alice := e.signUp("alice").User
	first := e.signUp("bob")
	second, err := e.svc.LogIn(e.ctx(), LogIn{Login: "bob", Password: "correct horse battery"})
	if err != nil {
		t.Fatal(err)
	}
	bob := first.User

	err = e.svc.ChangePassword(e.ctx(), bob, PasswordChange{Current: "not my password", New: "a new long password", KeepSession: first.Token})
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Field != "current_password" {
		t.Fatalf("wrong current password: %v", err)
	}
	err = e.svc.ChangePassword(e.ctx(), bob, PasswordChange{Current: "correct horse battery", New: "short", KeepSession: first.Token})
	if !errors.As(err, &ve) || ve.Field != "new_password" {
		t.Fatalf("short new password: %v", err)
	}
	if err := e.svc.ChangePassword(e.ctx(), bob, PasswordChange{Current: "correct horse battery", New: "a new long password", KeepSession: first.Token}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.svc.Authenticate(e.ctx(), first.Token); err != nil {
		t.Errorf("the session that changed the password: %v", err)
	}
	if _, _, err := e.svc.Authenticate(e.ctx(), second.Token); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("another session after the change: %v, want unauthorized", err)
	}
	if _, err := e.svc.LogIn(e.ctx(), LogIn{Login: "bob", Password: "a new long password"}); err != nil {
		t.Errorf("log in with the new password: %v", err)
	}

	if n, err := e.svc.RevokeSessions(e.ctx(), bob); err != nil || n != 2 {
		t.Errorf("sign out everywhere: %d sessions, %v; want 2", n, err)
	}
	if _, _, err := e.svc.Authenticate(e.ctx(), first.Token); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("session after signing out everywhere: %v", err)
	}

	// Deleting the account takes its rooms, their live streams and its tokens.
	room, key := e.createRoom(bob, "bob-live", "Bob")
	_, secret, err := e.svc.CreateToken(e.ctx(), bob, NewToken{Name: "bot", Scopes: []Scope{ScopeRoomsRead}})
	if err != nil {
		t.Fatal(err)
	}
	h := newTestHub(e)
	_, st := h.goLive(key)
	e.waitLive(room.Slug, true)
	if err := e.svc.DeleteAccount(e.ctx(), bob, AccountDeletion{Handle: "alice", Password: "a new long password"}); !errors.As(err, &ve) || ve.Field != "handle" {
		t.Fatalf("deletion confirmed with another handle: %v", err)
	}
	if err := e.svc.DeleteAccount(e.ctx(), bob, AccountDeletion{Handle: "bob", Password: "correct horse battery"}); !errors.As(err, &ve) || ve.Field != "password" {
		t.Fatalf("deletion confirmed with the old password: %v", err)
	}
	if _, _, err := e.svc.AuthenticateToken(e.ctx(), secret); err != nil {
		t.Fatalf("a refused deletion changed something: %v", err)
	}
	if err := e.svc.DeleteAccount(e.ctx(), bob, AccountDeletion{Handle: "@BOB", Password: "a new long password"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-st.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("bob's live stream was not stopped")
	}
	if _, err := e.svc.GetRoom(e.ctx(), room.Slug); !errors.Is(err, ErrNotFound) {
		t.Errorf("bob's room: %v, want not found", err)
	}
	if _, err := e.svc.FindUser(e.ctx(), bob.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("bob's account: %v, want not found", err)
	}
	if _, _, err := e.svc.AuthenticateToken(e.ctx(), secret); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("bob's token: %v", err)
	}
	e.assertNotLogged(secret)

	// The only admin keeps their account.
	if err := e.svc.DeleteAccount(e.ctx(), alice, AccountDeletion{Handle: "alice", Password: "correct horse battery"}); !errors.Is(err, ErrConflict) {
		t.Errorf("the only admin deletes their account: %v, want conflict", err)
	}
	if _, err := e.svc.LogIn(e.ctx(), LogIn{Login: "alice", Password: "correct horse battery"}); err != nil {
		t.Errorf("alice after the refused deletion: %v", err)
	}
}

func mustOID(t *testing.T, id string) bson.ObjectID {
	t.Helper()
	oid, err := bson.ObjectIDFromHex(id)
	if err != nil {
		t.Fatal(err)
	}
	return oid
}

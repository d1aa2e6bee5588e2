package rooms

import (
	"errors"
	"strings"
	"testing"
)

func TestHandleFrom(t *testing.T) {
	tests := []struct {
		preferred, email, want string
	}{
		{"Ann.Lee", "x@example.com", "ann_lee"},
		{"", "Bob-Smith@example.com", "bob_smith"},
		{"é", "jo@example.com", "user_"}, // too short after cleaning, and so is "jo"
		{"a-very-long-user-name-from-the-provider", "", "a_very_long_user_name_fr"},
		{"test-user@localhost", "", "test_userlocalhost"},
	}
	for _, tt := range tests {
		t.Run(tt.preferred+"|"+tt.email, func(t *testing.T) {
			got := handleFrom(tt.preferred, tt.email)
			if !strings.HasPrefix(got, tt.want) || validateHandle(got) != nil {
				t.Fatalf("handleFrom(%q, %q) = %q, want a valid handle starting %q", tt.preferred, tt.email, got, tt.want)
			}
		})
	}
}

func TestLogInExternal(t *testing.T) {
	e := newEnv(t, nil)
	const iss = "https://idp.example.com/realms/main"
	alice := e.signUp("alice") // the first account: admin

	// A verified email of a local account does not open it: whoever signed up with the
	// address may not own it (account pre-hijacking). Its owner links the identity from
	// inside the account; from then on the provider signs in to it.
	aliceIdP := ExternalLogin{Issuer: iss, Subject: "s-alice", Email: "Alice@Example.com", EmailVerified: true, PreferredHandle: "alice"}
	if l, err := e.svc.LogInExternal(e.ctx(), aliceIdP); !errors.Is(err, ErrLinkRequired) || l.Token != "" {
		t.Fatalf("verified email of a local account: %+v %v, want ErrLinkRequired", l.User, err)
	}
	if err := e.svc.LinkExternal(e.ctx(), alice.User, aliceIdP); err != nil {
		t.Fatal(err)
	}
	l, err := e.svc.LogInExternal(e.ctx(), aliceIdP)
	if err != nil || l.User.ID != alice.User.ID || !l.User.Admin {
		t.Fatalf("after linking: %+v %v, want alice's account", l.User, err)
	}
	if err := e.svc.LinkExternal(e.ctx(), alice.User, aliceIdP); err != nil {
		t.Fatalf("linking again: %v", err)
	}
	bob := e.signUp("bob")
	if err := e.svc.LinkExternal(e.ctx(), bob.User, aliceIdP); !errors.Is(err, ErrConflict) {
		t.Fatalf("linking alice's identity to bob: %v, want ErrConflict", err)
	}

	// An unverified one does not: a new account, whose address can never be delivered,
	// and whose handle avoids the taken "alice".
	mallory, err := e.svc.LogInExternal(e.ctx(), ExternalLogin{Issuer: iss, Subject: "s-mallory", Email: "alice@example.com", PreferredHandle: "alice"})
	if err != nil || mallory.User.ID == alice.User.ID || mallory.User.Admin {
		t.Fatalf("unverified email: %+v %v, want a new account that is not admin", mallory.User, err)
	}
	if !strings.HasSuffix(mallory.User.Email, ".invalid") || !strings.HasPrefix(mallory.User.Handle, "alice_") {
		t.Fatalf("new account %+v: want a .invalid email and a handle alice_...", mallory.User)
	}

	// The same identity is the same account, whatever its email says now; the same
	// subject at another issuer is another identity.
	again, err := e.svc.LogInExternal(e.ctx(), ExternalLogin{Issuer: iss, Subject: "s-mallory", Email: "new@example.com", EmailVerified: true})
	if err != nil || again.User.ID != mallory.User.ID || again.Token == mallory.Token {
		t.Fatalf("second sign-in: %+v %v, want %s in a new session", again.User, err, mallory.User.ID)
	}
	other, err := e.svc.LogInExternal(e.ctx(), ExternalLogin{Issuer: "https://other.example.com", Subject: "s-mallory"})
	if err != nil || other.User.ID == mallory.User.ID {
		t.Fatalf("other issuer: %+v %v, want another account", other.User, err)
	}

	// A sign-in that made the account but failed before linking the identity (MongoDB
	// gone between the two writes): the next sign-in finds that account.
	orphan := ExternalLogin{Issuer: iss, Subject: "s-orphan", PreferredHandle: "orphan"}
	made, err := e.svc.accountFor(e.ctx(), orphan)
	if err != nil {
		t.Fatal(err)
	}
	if l, err := e.svc.LogInExternal(e.ctx(), orphan); err != nil || l.User.ID != made.ID.Hex() {
		t.Fatalf("after an unlinked first sign-in: %+v %v, want account %s", l.User, err, made.ID.Hex())
	}

	// Accounts made this way have no password to log in with.
	if _, err := e.svc.LogIn(e.ctx(), LogIn{Login: mallory.User.Handle, Password: "", IP: "192.0.2.9"}); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("password login of an external account: %v, want ErrInvalidCredentials", err)
	}
	if _, err := e.svc.LogInExternal(e.ctx(), ExternalLogin{Issuer: iss}); Code(err) != CodeInvalid {
		t.Fatalf("no subject: %v, want invalid", err)
	}
}

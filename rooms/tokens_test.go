package rooms

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func TestAPITokens(t *testing.T) {
	e := newEnv(t, nil)
	admin := e.signUp("alice").User
	bob := e.signUp("bob").User

	for _, tc := range []struct {
		name  string
		actor User
		in    NewToken
		want  error
		field string
	}{
		{"no name", bob, NewToken{Scopes: []Scope{ScopeRoomsRead}}, ErrInvalid, "name"},
		{"name too long", bob, NewToken{Name: strings.Repeat("n", 65), Scopes: []Scope{ScopeRoomsRead}}, ErrInvalid, "name"},
		{"control in name", bob, NewToken{Name: "a\u202eb", Scopes: []Scope{ScopeRoomsRead}}, ErrInvalid, "name"},
		{"no scope", bob, NewToken{Name: "ci"}, ErrInvalid, "scopes"},
		{"unknown scope", bob, NewToken{Name: "ci", Scopes: []Scope{"rooms:everything"}}, ErrInvalid, "scopes"},
		{"admin scope for a user", bob, NewToken{Name: "ci", Scopes: []Scope{ScopeAdminRead}}, ErrForbidden, ""},
		{"too long-lived", bob, NewToken{Name: "ci", Scopes: []Scope{ScopeRoomsRead}, TTL: 400 * 24 * time.Hour}, ErrInvalid, "expires_in_days"},
		{"too short-lived", bob, NewToken{Name: "ci", Scopes: []Scope{ScopeRoomsRead}, TTL: time.Minute}, ErrInvalid, "expires_in_days"},
		{"anonymous", User{}, NewToken{Name: "ci", Scopes: []Scope{ScopeRoomsRead}}, ErrUnauthorized, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, secret, err := e.svc.CreateToken(e.ctx(), tc.actor, tc.in)
			if !errors.Is(err, tc.want) || secret != "" {
				t.Fatalf("err = %v (secret %q), want %v", err, secret, tc.want)
			}
			var ve *ValidationError
			if tc.field != "" && (!errors.As(err, &ve) || ve.Field != tc.field) {
				t.Fatalf("err = %v, want field %s", err, tc.field)
			}
		})
	}

	tok, secret, err := e.svc.CreateToken(e.ctx(), bob, NewToken{Name: " deploy bot ", Scopes: []Scope{ScopeRoomsRead, ScopeRoomsWrite, ScopeRoomsRead}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, TokenPrefix) || tok.Name != "deploy bot" || len(tok.Scopes) != 2 || !tok.Allows(ScopeRoomsWrite) || tok.Allows(ScopeChatModerate) {
		t.Fatalf("token = %+v, secret %.14s…", tok, secret)
	}
	if d := tok.Expires.Sub(tok.Created); d != defaultTokenTTL {
		t.Errorf("lifetime %s, want the default %s", d, defaultTokenTTL)
	}
	// Stored as a hash only.
	n, err := e.db.Collection("api_tokens").CountDocuments(e.ctx(), bson.D{{Key: "_id", Value: tokenHash(secret)}})
	if err != nil || n != 1 {
		t.Fatalf("stored by hash: %d, %v", n, err)
	}
	if n, _ := e.db.Collection("api_tokens").CountDocuments(e.ctx(), bson.D{{Key: "_id", Value: secret}}); n != 0 {
		t.Fatal("the secret itself is stored")
	}
	e.assertNotLogged(secret)

	u, got, err := e.svc.AuthenticateToken(e.ctx(), secret)
	if err != nil || u.ID != bob.ID || got.ID != tok.ID {
		t.Fatalf("authenticate: %+v %+v %v", u, got, err)
	}
	// The secret's last character changed (to "A", or from "A" when it is one).
	other := secret[:len(secret)-1] + "A"
	if other == secret {
		other = secret[:len(secret)-1] + "E"
	}
	for _, bad := range []string{"", "onair_pat_", "onair_pat_short", strings.TrimPrefix(secret, TokenPrefix), other} {
		if _, _, err := e.svc.AuthenticateToken(e.ctx(), bad); !errors.Is(err, ErrUnauthorized) {
			t.Errorf("authenticate %q: %v, want unauthorized", bad, err)
		}
	}

	// Admins may give their tokens admin scopes.
	if _, _, err := e.svc.CreateToken(e.ctx(), admin, NewToken{Name: "ops", Scopes: []Scope{ScopeAdminRead, ScopeAdminWrite}, TTL: 24 * time.Hour}); err != nil {
		t.Fatalf("admin token: %v", err)
	}

	list, err := e.svc.Tokens(e.ctx(), bob)
	if err != nil || len(list) != 1 || list[0].ID != tok.ID {
		t.Fatalf("bob's tokens: %+v %v", list, err)
	}
	if err := e.svc.RevokeToken(e.ctx(), admin, tok.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("someone else revokes bob's token: %v, want not found", err)
	}

	// Expiry: a second token short-lived, then the clock moves on.
	_, short, err := e.svc.CreateToken(e.ctx(), bob, NewToken{Name: "short", Scopes: []Scope{ScopeRoomsRead}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(2 * time.Hour)
	if _, _, err := e.svc.AuthenticateToken(e.ctx(), short); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("expired token: %v, want unauthorized", err)
	}
	if list, _ := e.svc.Tokens(e.ctx(), bob); len(list) != 1 {
		t.Errorf("expired tokens are listed: %+v", list)
	}
	if n, err := e.svc.deleteExpiredTokens(e.ctx()); n != 1 || err != nil {
		t.Errorf("janitor deleted %d expired tokens (%v), want 1", n, err)
	}

	// A disabled account's tokens stop working, and work again once it is enabled.
	yes, no := true, false
	if _, err := e.svc.UpdateUser(e.ctx(), admin, "bob", UserUpdate{Disabled: &yes}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.svc.AuthenticateToken(e.ctx(), secret); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("token of a disabled account: %v, want unauthorized", err)
	}
	if _, err := e.svc.UpdateUser(e.ctx(), admin, "bob", UserUpdate{Disabled: &no}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.svc.AuthenticateToken(e.ctx(), secret); err != nil {
		t.Errorf("token after the account is enabled again: %v", err)
	}

	if err := e.svc.RevokeToken(e.ctx(), bob, tok.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.svc.AuthenticateToken(e.ctx(), secret); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("revoked token: %v, want unauthorized", err)
	}
	if err := e.svc.RevokeToken(e.ctx(), bob, tok.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("revoking twice: %v, want not found", err)
	}
}

func TestTokenLimitPerAccount(t *testing.T) {
	e := newEnv(t, nil)
	bob := e.signUp("bob").User
	for i := range maxTokensPerUser {
		if _, _, err := e.svc.CreateToken(e.ctx(), bob, NewToken{Name: "t", Scopes: []Scope{ScopeRoomsRead}}); err != nil {
			t.Fatalf("token %d: %v", i, err)
		}
	}
	if _, _, err := e.svc.CreateToken(e.ctx(), bob, NewToken{Name: "one too many", Scopes: []Scope{ScopeRoomsRead}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("token over the limit: %v, want invalid", err)
	}
}

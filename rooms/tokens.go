package rooms

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"onair/rooms/audit"
	"onair/rooms/mongodb"
)

// Personal API tokens let scripts and bots use the API as their user, within the scopes
// the token was given: they are sent as "Authorization: Bearer onair_pat_…", which no
// browser adds by itself, so they need no CSRF protection. A token is shown once, when it
// is made, and stored as its SHA-256 (like sessions). It stops working when it expires,
// is revoked, or its account is disabled or deleted; it never does more than its account
// may, whatever its scopes.
//
//	api_tokens  {_id: hex SHA-256 of the token, tid (its public id), user_id, name,
//	             scopes [], created, expires}
//	            unique tid {tid}, user {user_id, created}
//
// Tokens are inserted and deleted, never updated; the janitor deletes expired ones.

// Scope is what an API token may be used for; each API route names the one it needs.
type Scope string

// Scopes.
const (
	ScopeRoomsRead       Scope = "rooms:read"
	ScopeRoomsWrite      Scope = "rooms:write"
	ScopeBroadcastsRead  Scope = "broadcasts:read"
	ScopeBroadcastsWrite Scope = "broadcasts:write"
	ScopeChatRead        Scope = "chat:read"
	ScopeChatWrite       Scope = "chat:write"
	ScopeChatModerate    Scope = "chat:moderate"
	ScopeWebhooksRead    Scope = "webhooks:read"
	ScopeWebhooksWrite   Scope = "webhooks:write"
	ScopeAdminRead       Scope = "admin:read"
	ScopeAdminWrite      Scope = "admin:write"
)

// ScopeInfo describes a scope for the dashboard and the API's documentation.
type ScopeInfo struct {
	Scope       Scope  `json:"scope"`
	Description string `json:"description"`
	// AdminOnly scopes are granted by admins to their own tokens only.
	AdminOnly bool `json:"admin_only,omitempty"`
}

// Scopes lists every scope, in the order the dashboard shows them.
var Scopes = []ScopeInfo{
	{ScopeRoomsRead, "read rooms, including your unlisted and private ones, their health and invited viewers", false},
	{ScopeRoomsWrite, "create, edit and delete rooms, rotate stream keys, manage moderators, invitations and player links", false},
	{ScopeBroadcastsRead, "list past broadcasts, replay and download recordings", false},
	{ScopeBroadcastsWrite, "delete past broadcasts and their recordings", false},
	{ScopeChatRead, "read chat history and open a chat socket (read-only without chat:write)", false},
	{ScopeChatWrite, "post in chats through a chat socket", false},
	{ScopeChatModerate, "delete messages, time out, ban, unban, purge, slow mode, the moderation log", false},
	{ScopeWebhooksRead, "list your rooms' webhooks and their delivery logs", false},
	{ScopeWebhooksWrite, "add, edit, test and delete webhooks, redeliver deliveries", false},
	{ScopeAdminRead, "admins: users, all rooms, the audit trail, every delivery log, server health", true},
	{ScopeAdminWrite, "admins: disable users, make admins, take rooms down, redeliver any delivery", true},
}

// KnownScope reports whether s names a scope.
func KnownScope(s Scope) bool {
	return slices.ContainsFunc(Scopes, func(i ScopeInfo) bool { return i.Scope == s })
}

func adminOnly(s Scope) bool {
	return slices.ContainsFunc(Scopes, func(i ScopeInfo) bool { return i.Scope == s && i.AdminOnly })
}

// ErrAdminScope: a token asked for an admin scope by someone who is not an admin. It wraps
// ErrForbidden.
var ErrAdminScope = fmt.Errorf("%w: admin scopes are for admins", ErrForbidden)

// Limits of tokens.
const (
	// TokenPrefix starts every token, so that it is recognised in a leaked file.
	TokenPrefix      = "onair_pat_"
	maxTokensPerUser = 50
	maxTokenName     = 64
	// MaxTokenTTL is the longest a token may live: tokens always expire.
	MaxTokenTTL     = 366 * 24 * time.Hour
	defaultTokenTTL = 30 * 24 * time.Hour
)

// Token is an API token as its owner sees it: never its secret.
type Token struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Scopes  []Scope   `json:"scopes"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
}

// Allows reports whether the token carries scope.
func (t Token) Allows(scope Scope) bool { return slices.Contains(t.Scopes, scope) }

// NewToken is the input of CreateToken.
type NewToken struct {
	Name   string
	Scopes []Scope
	// TTL is how long the token lives (default 30 days, at most MaxTokenTTL).
	TTL time.Duration
}

type tokenDoc struct {
	ID      string        `bson:"_id"` // hex SHA-256 of the token
	TID     string        `bson:"tid"`
	UserID  bson.ObjectID `bson:"user_id"`
	Name    string        `bson:"name"`
	Scopes  []Scope       `bson:"scopes"`
	Created time.Time     `bson:"created"`
	Expires time.Time     `bson:"expires"`
}

func (d *tokenDoc) token() Token {
	return Token{ID: d.TID, Name: d.Name, Scopes: d.Scopes, Created: d.Created.UTC(), Expires: d.Expires.UTC()}
}

// CreateToken makes an API token for actor and returns it with its secret: the only time
// the secret is shown. Admin scopes are for admins only. Errors: *ValidationError (name,
// scopes, ttl, or too many tokens), ErrForbidden (an admin scope asked by a non-admin),
// ErrUnavailable.
func (s *Service) CreateToken(ctx context.Context, actor User, in NewToken) (Token, string, error) {
	uid, err := bson.ObjectIDFromHex(actor.ID)
	if err != nil {
		return Token{}, "", fmt.Errorf("create token: %w", ErrUnauthorized)
	}
	name := strings.TrimSpace(in.Name)
	if n := utf8.RuneCountInString(name); n < 1 || n > maxTokenName || !utf8.ValidString(name) || strings.ContainsFunc(name, isControl) {
		return Token{}, "", invalid("name", "must be 1 to %d characters of text", maxTokenName)
	}
	if len(in.Scopes) == 0 {
		return Token{}, "", invalid("scopes", "name at least one scope")
	}
	var scopes []Scope
	for _, sc := range in.Scopes {
		if !KnownScope(sc) {
			return Token{}, "", invalid("scopes", "unknown scope %q", sc)
		}
		if adminOnly(sc) && !actor.Admin {
			return Token{}, "", fmt.Errorf("create token with %s: %w", sc, ErrAdminScope)
		}
		if !slices.Contains(scopes, sc) {
			scopes = append(scopes, sc)
		}
	}
	ttl := in.TTL
	if ttl == 0 {
		ttl = defaultTokenTTL
	}
	if ttl < time.Hour || ttl > MaxTokenTTL {
		return Token{}, "", invalid("expires_in_days", "must be between 1 and %d days", int(MaxTokenTTL/(24*time.Hour)))
	}
	octx, cancel := s.op(ctx)
	n, err := s.tokens.CountDocuments(octx, bson.D{{Key: "user_id", Value: uid}})
	cancel()
	if err != nil {
		return Token{}, "", dbError("count tokens", err)
	}
	if n >= maxTokensPerUser {
		return Token{}, "", invalid("name", "an account has at most %d tokens: revoke one first", maxTokensPerUser)
	}
	secret := TokenPrefix + randomToken(tokenBytes)
	now := s.now()
	d := tokenDoc{ID: tokenHash(secret), TID: bson.NewObjectID().Hex(), UserID: uid, Name: name, Scopes: scopes,
		Created: now, Expires: now.Add(ttl)}
	octx, cancel = s.op(ctx)
	defer cancel()
	if _, err := s.tokens.InsertOne(octx, d); err != nil {
		return Token{}, "", dbError("create token", err)
	}
	t := d.token()
	s.log.Info("api token created", "user_id", actor.ID, "token_id", t.ID, "fingerprint", TokenFingerprint(secret), "scopes", scopes)
	s.record(ctx, actor, audit.TokenCreate, nil, &audit.Target{Kind: audit.KindToken, ID: t.ID, Name: name},
		map[string]any{"scopes": scopeStrings(scopes), "expires": t.Expires.Format(time.RFC3339)})
	return t, secret, nil
}

func scopeStrings(scopes []Scope) []string {
	out := make([]string, len(scopes))
	for i, sc := range scopes {
		out[i] = string(sc)
	}
	return out
}

// Tokens lists actor's tokens that have not expired, newest first.
func (s *Service) Tokens(ctx context.Context, actor User) ([]Token, error) {
	uid, err := bson.ObjectIDFromHex(actor.ID)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", ErrUnauthorized)
	}
	docs, err := findAll[tokenDoc](ctx, s, s.tokens, bson.D{{Key: "user_id", Value: uid}, {Key: "expires", Value: bson.D{{Key: "$gt", Value: s.now()}}}},
		options.Find().SetSort(bson.D{{Key: "created", Value: -1}}).SetLimit(maxTokensPerUser), "list tokens")
	if err != nil {
		return nil, err
	}
	out := make([]Token, len(docs))
	for i := range docs {
		out[i] = docs[i].token()
	}
	return out, nil
}

// RevokeToken deletes one of actor's tokens (ErrNotFound for another account's): it stops
// working at once, on every node.
func (s *Service) RevokeToken(ctx context.Context, actor User, id string) error {
	uid, err := bson.ObjectIDFromHex(actor.ID)
	if err != nil {
		return fmt.Errorf("revoke token: %w", ErrUnauthorized)
	}
	var d tokenDoc
	octx, cancel := s.op(ctx)
	defer cancel()
	err = s.tokens.FindOneAndDelete(octx, bson.D{{Key: "tid", Value: id}, {Key: "user_id", Value: uid}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return fmt.Errorf("token %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return dbError("revoke token", err)
	}
	s.log.Info("api token revoked", "user_id", actor.ID, "token_id", id)
	s.record(ctx, actor, audit.TokenRevoke, nil, &audit.Target{Kind: audit.KindToken, ID: id, Name: d.Name}, nil)
	return nil
}

// AuthenticateToken returns the account and token of an API token, or ErrUnauthorized for
// one that is malformed, unknown, revoked, expired, or whose account is disabled or gone.
func (s *Service) AuthenticateToken(ctx context.Context, secret string) (User, Token, error) {
	raw, ok := strings.CutPrefix(secret, TokenPrefix)
	if !ok || !wellFormedToken(raw) {
		return User{}, Token{}, fmt.Errorf("authenticate token: malformed: %w", ErrUnauthorized)
	}
	d, err := byHash[tokenDoc](ctx, s, s.tokens, secret, "authenticate token")
	if err != nil {
		return User{}, Token{}, err
	}
	u, err := s.holder(ctx, d.UserID, d.Expires, "authenticate token")
	if err != nil {
		return User{}, Token{}, err
	}
	return u, d.token(), nil
}

// deleteExpiredTokens is the janitor's (no TTL index: doc.go).
func (s *Service) deleteExpiredTokens(ctx context.Context) (int64, error) {
	octx, cancel := s.op(ctx)
	defer cancel()
	res, err := s.tokens.DeleteMany(octx, bson.D{{Key: "expires", Value: bson.D{{Key: "$lte", Value: s.now()}}}})
	if err != nil {
		return 0, dbError("delete expired tokens", err)
	}
	return res.DeletedCount, nil
}

// tokenIndexes are api_tokens' indexes, for EnsureIndexes.
func tokenIndexes() []mongodb.Index {
	return []mongodb.Index{
		{Name: "tid_unique", Unique: true, Keys: mongodb.Keys("tid", 1)},
		{Name: "user", Keys: mongodb.Keys("user_id", 1, "created", -1)},
		{Name: "expires", Keys: mongodb.Keys("expires", 1)},
	}
}

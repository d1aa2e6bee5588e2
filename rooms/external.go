package rooms

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"onair/rooms/mongodb"
)

// ExternalLogin is who an external identity provider (OpenID Connect) says signed in.
type ExternalLogin struct {
	Issuer  string
	Subject string
	// Email, when EmailVerified, is the new account's email. It never links the sign-in
	// to an existing account with a password: onair never verified that account's
	// address, so whoever signed up with it may not be the address's owner (LinkExternal
	// links from inside the account instead).
	Email         string
	EmailVerified bool
	// PreferredHandle seeds a new account's handle (e.g. preferred_username).
	PreferredHandle string
}

// identityDoc ties an external identity to an account. Its _id is the identity, so one
// identity can never belong to two accounts, even when its first sign-ins race.
type identityDoc struct {
	ID      string        `bson:"_id"` // issuer + " " + subject
	UserID  bson.ObjectID `bson:"user_id"`
	Created time.Time     `bson:"created"`
}

// ErrLinkRequired: an external identity's verified email belongs to an account with a
// password. Its owner logs in with the password and links the provider from there
// (LinkExternal); signing in through the provider alone never opens that account, so that
// someone who signed up with another person's address cannot pre-claim their sign-ins.
var ErrLinkRequired = &ConflictError{Field: "email", Message: "an account with this email already exists: log in with its password, then link the identity provider to it"}

// LogInExternal signs in the account of an external identity, first creating one (which
// has no password: it signs in through the provider only) unless the verified email
// belongs to an account with a password (ErrLinkRequired). The first account ever is the
// admin, however it was made.
func (s *Service) LogInExternal(ctx context.Context, in ExternalLogin) (Login, error) {
	if in.Issuer == "" || in.Subject == "" {
		return Login{}, &ValidationError{Field: "subject", Message: "the identity provider named no subject"}
	}
	id := in.Issuer + " " + in.Subject
	for range 3 {
		var ident identityDoc
		octx, cancel := s.op(ctx)
		err := s.identities.FindOne(octx, bson.D{{Key: "_id", Value: id}}).Decode(&ident)
		cancel()
		switch {
		case err == nil:
			var d userDoc
			octx, cancel := s.op(ctx)
			err := s.users.FindOne(octx, bson.D{{Key: "_id", Value: ident.UserID}}).Decode(&d)
			cancel()
			if errors.Is(err, mongo.ErrNoDocuments) {
				// The account was deleted: the identity starts afresh.
				if err := s.forgetIdentity(ctx, id); err != nil {
					return Login{}, err
				}
				continue
			}
			if err != nil {
				return Login{}, dbError("external login: find account", err)
			}
			if d.Disabled {
				return Login{}, fmt.Errorf("external login @%s: %w", d.Handle, ErrAccountDisabled)
			}
			s.log.Info("logged in through identity provider", "user_id", d.ID.Hex(), "issuer", in.Issuer)
			return s.startSession(ctx, &d)
		case !errors.Is(err, mongo.ErrNoDocuments):
			return Login{}, dbError("external login: find identity", err)
		}
		d, err := s.accountFor(ctx, in)
		if err != nil {
			return Login{}, err
		}
		octx, cancel = s.op(ctx)
		_, err = s.identities.InsertOne(octx, identityDoc{ID: id, UserID: d.ID, Created: s.now()})
		cancel()
		if mongodb.IsDup(err) {
			continue // a concurrent first sign-in linked it: use that
		}
		if err != nil {
			return Login{}, dbError("external login: link identity", err)
		}
		s.log.Info("identity linked", "user_id", d.ID.Hex(), "issuer", in.Issuer)
		return s.startSession(ctx, d)
	}
	return Login{}, dbError("external login", errors.New("the identity kept changing"))
}

// LinkExternal links an external identity to user's account, so that signing in through
// the provider opens it from then on. The caller has checked that user is signed in in
// the browser that went through the provider. An identity linked to another account is a
// conflict; linking it again to the same account is harmless.
func (s *Service) LinkExternal(ctx context.Context, user User, in ExternalLogin) error {
	if in.Issuer == "" || in.Subject == "" {
		return &ValidationError{Field: "subject", Message: "the identity provider named no subject"}
	}
	uid, err := bson.ObjectIDFromHex(user.ID)
	if err != nil {
		return fmt.Errorf("link identity: %w", ErrUnauthorized)
	}
	id := in.Issuer + " " + in.Subject
	octx, cancel := s.op(ctx)
	defer cancel()
	_, err = s.identities.InsertOne(octx, identityDoc{ID: id, UserID: uid, Created: s.now()})
	if mongodb.IsDup(err) {
		var ident identityDoc
		if err := s.identities.FindOne(octx, bson.D{{Key: "_id", Value: id}}).Decode(&ident); err != nil {
			return dbError("link identity: find it", err)
		}
		if ident.UserID != uid {
			return &ConflictError{Field: "identity", Message: "this identity already signs in to another account"}
		}
		return nil
	}
	if err != nil {
		return dbError("link identity", err)
	}
	s.log.Info("identity linked by its account", "user_id", user.ID, "issuer", in.Issuer)
	return nil
}

func (s *Service) forgetIdentity(ctx context.Context, id string) error {
	octx, cancel := s.op(ctx)
	defer cancel()
	_, err := s.identities.DeleteOne(octx, bson.D{{Key: "_id", Value: id}})
	return dbError("external login: forget identity", err)
}

// accountFor finds the account a new external identity belongs to, or creates it.
func (s *Service) accountFor(ctx context.Context, in ExternalLogin) (*userDoc, error) {
	email := normalizeEmail(in.Email)
	if !in.EmailVerified || validateEmail(email) != nil {
		// The provider does not vouch for an address: the account gets one of this
		// identity's own, which can never be delivered (RFC 2606 .invalid) nor match a
		// real one.
		sum := sha256.Sum256([]byte(in.Issuer + " " + in.Subject))
		email = "oidc-" + hex.EncodeToString(sum[:6]) + "@" + issuerHost(in.Issuer) + ".invalid"
	}
	// An account without a password that has the email was made for this identity by a
	// sign-in that failed before linking it. One with a password is someone's local
	// account, whose address onair never verified: it is linked only from inside it.
	var found userDoc
	octx, cancel := s.op(ctx)
	err := s.users.FindOne(octx, bson.D{{Key: "email", Value: email}}).Decode(&found)
	cancel()
	if err == nil && found.Password != "" {
		s.log.Warn("external sign-in refused: a local account has the email; it must link the provider itself",
			"user_id", found.ID.Hex(), "issuer", in.Issuer)
		return nil, ErrLinkRequired
	}
	if err == nil {
		return &found, nil
	}
	if !errors.Is(err, mongo.ErrNoDocuments) {
		return nil, dbError("external login: find account by email", err)
	}
	base := handleFrom(in.PreferredHandle, in.Email)
	for attempt := range 5 {
		handle := base
		if attempt > 0 {
			suffix := strings.Map(keepHandleRune, "_"+strings.ToLower(randomToken(4)[:4]))
			handle = base[:min(len(base), 24-len(suffix))] + suffix
		}
		d := userDoc{ID: bson.NewObjectID(), Email: email, Handle: handle, Created: s.now()}
		err := s.insertAccount(ctx, &d)
		if err == nil {
			return &d, nil
		}
		if !mongodb.IsDup(err) {
			return nil, err
		}
		if terr := s.checkTaken(ctx, email, handle); terr != nil {
			var ce *ConflictError
			if errors.As(terr, &ce) && ce.Field == "handle" {
				continue // another handle
			}
			return nil, terr
		}
	}
	return nil, &ConflictError{Field: "handle", Message: "no free handle could be made from the provider's user name"}
}

// handleFrom makes a valid handle from the provider's user name or the email's local part.
func handleFrom(preferred, email string) string {
	for _, c := range []string{preferred, strings.SplitN(email, "@", 2)[0]} {
		h := strings.Map(keepHandleRune, strings.ToLower(strings.TrimSpace(c)))
		if len(h) > 24 {
			h = h[:24]
		}
		if len(h) >= 3 {
			return h
		}
	}
	return strings.Map(keepHandleRune, "user_"+strings.ToLower(randomToken(6)[:6]))
}

// keepHandleRune maps a rune to what handles allow ([a-z0-9_]), or drops it.
func keepHandleRune(r rune) rune {
	switch {
	case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_':
		return r
	case r == '.', r == '-', r == ' ':
		return '_'
	}
	return -1
}

func issuerHost(issuer string) string {
	u, err := url.Parse(issuer)
	if err != nil || u.Hostname() == "" {
		return "oidc"
	}
	return strings.ReplaceAll(u.Hostname(), ":", "-")
}
